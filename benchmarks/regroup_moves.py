"""What the regrouping's moves cost by themselves: ``regroup.destinations`` and ``regroup.put`` over random
symbol codes, as ``read_symbols`` calls them for a long file in time order, against moving two columns in one
pass over the places.

    python -m benchmarks.regroup_moves [--rows 10M] [--symbols 50] [--columns 7] [--repeat 3]

Each way runs once to compile and warm its memory, then ``--repeat`` times interleaved; CPU seconds of this
process (the moves run on one thread) and the load average are printed per run.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from numba import njit

from benchmarks.bars import rows as parse_rows
from fspec.runtime import regroup
from fspec.runtime.sources import REGROUP_BATCH_ROWS


@njit(nogil=True)
def _put_two(dest, a, b, out_a, out_b):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    for i in range(dest.shape[0]):
        target = dest[i]
        if target >= 0:
            out_a[target] = a[i]
            out_b[target] = b[i]


def _moves(
    codes: np.ndarray, starts: np.ndarray, columns: list[np.ndarray], outs: list[np.ndarray], pairs: bool
) -> None:
    cursor = starts[:-1].copy()
    dest = np.empty(REGROUP_BATCH_ROWS, dtype=np.int64)
    for row in range(0, len(codes), REGROUP_BATCH_ROWS):
        n = min(REGROUP_BATCH_ROWS, len(codes) - row)
        regroup.destinations(codes[row : row + n], cursor, dest[:n])
        places = regroup.read_only(dest[:n])
        k = 0
        while k < len(columns):
            if pairs and k + 1 < len(columns):
                _put_two(places, columns[k][row : row + n], columns[k + 1][row : row + n], outs[k], outs[k + 1])
                k += 2
            else:
                regroup.put(places, columns[k][row : row + n], outs[k])
                k += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=parse_rows, default=10_000_000)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--columns", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(1)
    codes = regroup.read_only(rng.integers(0, args.symbols, args.rows).astype(np.int32))
    starts = regroup.read_only(regroup.starts_of(codes, args.symbols))
    columns = [regroup.read_only(rng.integers(0, 1 << 60, args.rows)) for _ in range(args.columns)]
    outs = [np.empty(args.rows, dtype=np.int64) for _ in columns]  # reused: warm memory, as moves alone cost
    ways = {"one pass a column": False, "two columns a pass": True}
    for pairs in ways.values():
        _moves(codes, starts, columns, outs, pairs)
    for r in range(args.repeat):
        for name, pairs in ways.items():
            cpu = time.process_time()
            _moves(codes, starts, columns, outs, pairs)
            print(f"round {r + 1}: {name}: {time.process_time() - cpu:.3f} CPU s (load {os.getloadavg()[0]:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
