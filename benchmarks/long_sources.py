"""What a long file of many symbols costs against one file per symbol, measured as a user runs it.

    python -m benchmarks.long_sources --rows 10M --instruments 50 --repeat 5

The same ``--rows`` trades of one day over ``--instruments`` instruments, laid out three ways, each an fspec
project of the benchmark's features (``benchmarks/specs/features.yaml``):

* per-symbol: one parquet file per instrument (``path: data/{symbol}/{date}_trades.parquet``);
* long, by time: one parquet file of every instrument's rows in time order, as a consolidated feed is written,
  with a text ``symbol`` column (``symbol: symbol``, no ``{symbol}`` in the path);
* long, by symbol: the same file with its rows grouped by symbol (time order within each), as vendors'
  per-day extracts often are.

Each case runs in a fresh process (``fspec run``), parquet on disk to parquet on disk, in rounds that run every
case once in a rotating order; the load average is printed with every round, and the ratio of each long layout
to the per-symbol files is reported per round. The outputs of the three are checked to be identical first.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks import project as bench_project
from benchmarks.bars import rows as parse_rows
from benchmarks.scale import run_once
from benchmarks.workload import COLUMNS, generate, instrument_names

LONG_PATH = "data/all/{date}_trades.parquet"


def _compile(root: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fspec.cli", "compile", "--project", str(root)], capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"fspec compile failed in {root}:\n{done.stdout}{done.stderr}")


def _long_table(data: dict[str, dict[str, np.ndarray]], order: str) -> pa.Table:
    names = list(data)
    ts = np.concatenate([data[n]["ts"] for n in names])
    codes = np.concatenate([np.full(len(data[n]["ts"]), k, dtype=np.int32) for k, n in enumerate(names)])
    columns = {c: np.concatenate([data[n][c] for n in names]) for c in COLUMNS}
    if order == "time":
        index = np.argsort(ts, kind="stable")
        ts, codes, columns = ts[index], codes[index], {c: v[index] for c, v in columns.items()}
    symbols = pa.DictionaryArray.from_arrays(pa.array(codes), pa.array([n.upper() for n in names])).cast(pa.string())
    return pa.table({"ts": ts, "symbol": symbols, **columns})


def build(scratch: Path, rows: int, instruments: int) -> dict[str, Path]:
    names = instrument_names(instruments)
    workload = generate(rows, instruments)
    cases: dict[str, Path] = {}
    root = bench_project.write_project(scratch / "per_symbol", names)
    bench_project.write_data(root, workload)
    cases["per-symbol files"] = root
    for order in ("time", "symbol"):
        root = bench_project.write_project(scratch / f"long_{order}", names)
        project = root / "specs" / "project.yaml"
        text = project.read_text(encoding="utf-8").replace(
            f"    path: {bench_project.PATH}\n", f"    path: {LONG_PATH}\n    symbol: symbol\n"
        )
        project.write_text(text, encoding="utf-8")
        path = root / LONG_PATH.format(date=workload.day.replace("-", ""))
        path.parent.mkdir(parents=True)
        pq.write_table(_long_table(workload.data, order), path, compression="zstd")
        cases[f"long file, by {order}"] = root
    for root in cases.values():
        _compile(root)
    return cases


def _same_output(cases: dict[str, Path]) -> None:
    """The columns, bit for bit (NaN where NaN), not the metadata: each project has its own spec hash."""
    tables = {name: pq.read_table(next((root / "out").glob("*.parquet"))) for name, root in cases.items()}
    (first, reference), *others = tables.items()
    for name, table in others:
        same = table.column_names == reference.column_names and all(
            np.array_equal(table[c].to_numpy(), reference[c].to_numpy(), equal_nan=c != "ts_event")
            for c in reference.column_names
        )
        if not same:
            raise SystemExit(f"'{name}' and '{first}' wrote different columns")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=parse_rows, default=10_000_000, help="trades in the day (default 10M)")
    parser.add_argument("--instruments", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="fspec_long_"))
    try:
        print(f"building projects under {scratch} ({args.rows:,} rows, {args.instruments} instruments) ...")
        cases = build(scratch, args.rows, args.instruments)
        names = list(cases)
        for root in cases.values():
            run_once(root, scratch)  # also the outputs to compare
        _same_output(cases)
        walls: dict[str, list[float]] = {n: [] for n in names}
        for r in range(args.repeat):
            for name in [names[(r + j) % len(names)] for j in range(len(names))]:
                walls[name].append(run_once(cases[name], scratch)["wall"])
            line = ", ".join(f"{n}: {walls[n][-1]:.2f} s" for n in names)
            print(f"round {r + 1} (load {os.getloadavg()[0]:.2f}): {line}", flush=True)
        print()
        print("| layout | wall median | min..max | vs per-symbol files, per round |")
        print("|---|---:|---:|---|")
        base = walls[names[0]]
        for n in names:
            ratios = ", ".join(f"{w / b:.2f}x" for w, b in zip(walls[n], base, strict=True))
            w = walls[n]
            print(f"| {n} | {statistics.median(w):.2f} s | {min(w):.2f}..{max(w):.2f} s | {ratios} |")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
