"""Cold end to end, as a user runs it: `fspec run` against the tuned polars script, each in a fresh process.

    python -m benchmarks.e2e --rows 1M 10M 30M --repeat 5

For each size: the benchmark's project (5 instruments, one parquet file each, ``benchmarks/specs/features.yaml``)
is written and compiled once (not timed); then each round starts ``python -m fspec.cli run`` and ``python -m
benchmarks.polars_tuned`` once each, in alternating order, and times them from before the process starts to its
exit (imports, reading, computing, writing the features parquet). Before timing, the two output files are
checked to agree on every shared column (same NaN pattern; relative difference at most 1e-8 of the larger value
or of the column's median magnitude). The load average is printed with every round.

``--aot`` also times ``fspec run`` of a second copy of the project compiled with ``fspec compile --aot`` (the same
data, linked), in the same rounds: a run that starts without numba. Its output is checked to be the same bytes
as the first copy's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from benchmarks import project as bench_project
from benchmarks.bars import rows as parse_rows
from benchmarks.workload import generate, instrument_names


def _commands(root: Path, aot_root: Path | None = None) -> dict[str, list[str]]:
    commands = {
        "fspec run": [sys.executable, "-m", "fspec.cli", "run", "--project", str(root)],
        "polars tuned": [sys.executable, "-m", "benchmarks.polars_tuned", str(root), str(root / "polars.parquet")],
    }
    if aot_root is not None:
        commands["fspec run, aot"] = [sys.executable, "-m", "fspec.cli", "run", "--project", str(aot_root)]
    return commands


def _compile(root: Path, aot: bool = False) -> None:
    command = [sys.executable, "-m", "fspec.cli", "compile", "--project", str(root), *(["--aot"] if aot else [])]
    subprocess.run(command, check=True, capture_output=True)


def _aot_copy(root: Path) -> Path:
    """A copy of the project's specs beside it, its data linked, compiled with --aot."""
    copy = root.with_name(root.name + "_aot")
    shutil.copytree(root / "specs", copy / "specs")
    (copy / "data").symlink_to(root / "data", target_is_directory=True)
    _compile(copy, aot=True)
    return copy


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    return wall


def _agree(fspec_file: Path, polars_file: Path) -> int:
    a, b = pq.read_table(fspec_file), pq.read_table(polars_file)
    shared = [c for c in a.column_names if c in b.column_names and c != "ts_event"]
    if len(shared) < len(a.column_names) - 1:
        raise SystemExit(f"the polars output lacks columns: {sorted(set(a.column_names) - set(b.column_names))}")
    for name in shared:
        x, y = a[name].to_numpy(), b[name].to_numpy()
        if not np.array_equal(np.isnan(x), np.isnan(y)):
            raise SystemExit(f"{name}: NaN patterns differ")
        ok = ~np.isnan(x)
        scale = np.maximum(np.maximum(np.abs(x[ok]), np.abs(y[ok])), np.median(np.abs(x[ok])) if ok.any() else 0)
        if np.any(np.abs(x[ok] - y[ok]) > 1e-8 * scale):
            raise SystemExit(f"{name}: values differ beyond 1e-8")
    return len(shared)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=parse_rows, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds per size")
    parser.add_argument("--aot", action="store_true", help="also time a copy compiled with --aot")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="fspec_e2e_"))
    try:
        for rows in args.rows:
            root = scratch / f"r{rows}"
            bench_project.write_project(root, instrument_names(5))
            workload = generate(rows, 5)
            bench_project.write_data(root, workload)
            _compile(root)
            aot_root = _aot_copy(root) if args.aot else None
            commands = _commands(root, aot_root)
            for command in commands.values():  # warm-up: the OS file cache, numba's cache in place
                _timed(command)
            output = f"out/features_{workload.day.replace('-', '')}_{bench_project.INTERVAL}s.parquet"
            n = _agree(root / output, root / "polars.parquet")
            if aot_root is not None and (aot_root / output).read_bytes() != (root / output).read_bytes():
                raise SystemExit("the --aot copy wrote other bytes than the numba run")
            print(f"\n{rows:,} rows: outputs agree on {n} columns", flush=True)
            times: dict[str, list[float]] = {k: [] for k in commands}
            for r in range(args.repeat):
                names = list(commands)
                order = names[r % len(names) :] + names[: r % len(names)]  # rotating: each first in turn
                for name in order:
                    times[name].append(_timed(commands[name]))
                line = ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items())
                print(f"  round {r + 1} (load {os.getloadavg()[0]:.2f}): {line}", flush=True)
            for name, t in times.items():
                print(f"  {name:15} median {statistics.median(t):.2f} s  min {min(t):.2f} s  max {max(t):.2f} s")
            for fspec in (k for k in commands if k.startswith("fspec")):
                ratios = [p / f for f, p in zip(times[fspec], times["polars tuned"], strict=True)]
                print(f"  polars tuned / {fspec} per round: {', '.join(f'{x:.2f}x' for x in ratios)}")
            shutil.rmtree(root)
            if aot_root is not None:
                shutil.rmtree(aot_root)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
