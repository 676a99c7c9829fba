"""A/B of generated kernel files: one instrument's kernel call on the benchmark workload, interleaved.

    python -m benchmarks.kernels A.py B.py [--ticks 2M] [--rounds 41]

Kernel files are what ``fspec compile`` writes to ``build/kernels/`` for the benchmark's specs (write the
project with ``benchmarks.project.write_project`` and compile it); a variant is a hand-edited copy (it takes
the constants, ``const__k`` parameters, that build/manifest.json lists for the first file). Each
round calls every file once through :func:`fspec.runtime.kernels.reduce_session` (``derive`` and the tick
loop, one thread), in a rotating order. The files must agree bit for bit on the workload's bars, or nothing
is timed. This is how a change to the generated code is measured before it goes into the template: for
instance, a copy of the benchmark kernel without its ``prefetch(...)`` lines against the original.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np

from benchmarks.bars import rows
from benchmarks.project import INTERVAL
from benchmarks.workload import generate
from fspec.runtime.grid import NS
from fspec.runtime.kernels import frozen, reduce_session

INTERVAL_NS = INTERVAL * NS


def load(path: Path, index: int) -> ModuleType:
    """The kernel file as a module of its own (registered, so that numba can cache it beside the file)."""
    spec = importlib.util.spec_from_file_location(f"fspec_kernel_ab_{index}", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def constants(path: Path) -> tuple[float, ...] | None:
    """The values of a kernel file's constants (its params const__0, ...: the benchmark's instruments have no
    parameters of their own), from the build/manifest.json beside its folder; None for a copy it does not list
    (a hand-edited variant takes the first listed file's)."""
    import json

    try:
        data = json.loads((path.resolve().parent.parent / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for kernel in data.get("kernels", ()):
        for part in [kernel, *kernel.get("parts", ())]:
            if part.get("module") == path.stem and "constants" in part:
                return tuple(part["constants"])
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kernels", nargs="+", type=Path, help="kernel files generated for the benchmark's specs")
    parser.add_argument(
        "--ticks", type=rows, default=2_000_000, help="ticks of the one instrument (default 2M, as at 10M rows)"
    )
    parser.add_argument("--rounds", type=int, default=41, help="interleaved rounds")
    args = parser.parse_args(argv)

    workload = generate(args.ticks, 1)  # the benchmark's seed
    cols = next(iter(workload.data.values()))
    bar_ends = np.arange(workload.open_ns + INTERVAL_NS, workload.close_ns + 1, INTERVAL_NS, dtype=np.int64)
    modules = [load(path, k) for k, path in enumerate(args.kernels)]
    found = [constants(path) for path in args.kernels]
    known = next((c for c in found if c is not None), ())
    params = [frozen(np.array(known if c is None else c, dtype=np.float64)) for c in found]
    by_module = {id(m): p for m, p in zip(modules, params, strict=True)}

    def call(module: ModuleType) -> np.ndarray:
        columns = [cols[c] for c in module.COLUMNS]
        return reduce_session(module, cols["ts"], bar_ends, columns, by_module[id(module)])

    first = call(modules[0])  # also compiles
    for path, module in zip(args.kernels[1:], modules[1:], strict=True):
        if not np.array_equal(call(module), first, equal_nan=True):
            raise SystemExit(f"{path} disagrees with {args.kernels[0]}: nothing timed")
    times: list[list[float]] = [[] for _ in modules]
    for r in range(args.rounds):
        for k in [(r + j) % len(modules) for j in range(len(modules))]:
            started = time.perf_counter()
            call(modules[k])
            times[k].append(time.perf_counter() - started)
    ticks = len(cols["ts"])
    print(f"{ticks:,} ticks, {len(bar_ends)} bars of {INTERVAL} s, {args.rounds} interleaved rounds, one thread")
    for path, t in zip(args.kernels, times, strict=True):
        print(f"  {path.name:40s} median {statistics.median(t) * 1e3:7.2f} ms   min {min(t) * 1e3:7.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
