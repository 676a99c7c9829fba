"""A run of one day of a long file of many days: what reading only that day's row groups saves.

    python -m benchmarks.many_days --rows 1M --instruments 50 --days 10 --repeat 4 [--baseline PYTHON] [--scratch DIR]

One parquet file holds ``--days`` weekdays of ``--rows`` trades a day over ``--instruments`` instruments, in time
order with a text ``symbol`` column (``path`` without ``{date}`` or ``{symbol}``), row groups of pyarrow's
default size, zstd. The benchmark's features (``benchmarks/specs/features.yaml``) are run for the last day
(``fspec run --date``) in a fresh process per run, and for every day once, to check that the day's file is the
same. ``--baseline PYTHON``: another interpreter with another fspec installed (e.g. one that reads the whole
file), run on its own copy of the project in the same interleaved rounds; its day file is checked to have the
same columns. Wall time, the CPU time of the run's process (user and system, all threads) and its peak memory
(``VmHWM``, as ``benchmarks/scale.py`` reads it) per round, with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks import project as bench_project
from benchmarks.bars import rows as parse_rows
from benchmarks.long_sources import _long_table
from benchmarks.scale import CHILD, _days
from benchmarks.workload import generate, instrument_names

LONG_PATH = "data/all_trades.parquet"


def build(root: Path, rows: int, instruments: int, days: int) -> list[str]:
    """The project (not compiled) and its file of ``days`` days; the days."""
    names = instrument_names(instruments)
    bench_project.write_project(root, names)
    project = root / "specs" / "project.yaml"
    text = project.read_text(encoding="utf-8").replace(
        f"    path: {bench_project.PATH}\n", f"    path: {LONG_PATH}\n    symbol: symbol\n"
    )
    project.write_text(text, encoding="utf-8")
    dates = _days("2024-03-04", days)
    (root / "data").mkdir(parents=True, exist_ok=True)
    writer = None
    for k, day in enumerate(dates):  # (a day at a time: one day's rows in memory)
        table = _long_table(generate(rows, instruments, seed=20240305 + k, day=day).data, "time")
        writer = writer or pq.ParquetWriter(root / LONG_PATH, table.schema, compression="zstd")
        writer.write_table(table.cast(writer.schema))
    if writer is not None:
        writer.close()
    return dates


def _fspec(python: str, root: Path, *args: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([python, "-m", "fspec.cli", *args, "--project", str(root)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{python} fspec {' '.join(args)} failed in {root}:\n{done.stdout}{done.stderr}")
    return time.perf_counter() - started


def _run_day(python: str, root: Path, day: str, report: Path) -> tuple[float, float]:
    """``fspec run --date day`` in a fresh process: its wall seconds and its peak memory (MiB, VmHWM)."""
    child = CHILD.replace(
        '["run", "--project", sys.argv[2]]', '["run", "--project", sys.argv[2], "--date", sys.argv[3]]'
    )
    started = time.perf_counter()
    done = subprocess.run([python, "-c", child, str(report), str(root), day], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{python} fspec run failed in {root}:\n{done.stdout}{done.stderr}")
    return wall, json.loads(report.read_text())["peak_bytes"] / 2**20


def _columns(path: Path) -> pa.Table:
    return pq.read_table(path)


def _same(a: Path, b: Path) -> bool:
    first, second = _columns(a), _columns(b)
    return first.column_names == second.column_names and all(
        np.array_equal(first[c].to_numpy(), second[c].to_numpy(), equal_nan=c != "ts_event") for c in first.column_names
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=parse_rows, default=1_000_000, help="trades a day (default 1M)")
    parser.add_argument("--instruments", type=int, default=50)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=4, help="interleaved rounds")
    parser.add_argument("--baseline", help="another interpreter with another fspec, run in the same rounds")
    parser.add_argument("--scratch", type=Path, help="build the project here and keep it (default: a temp dir)")
    args = parser.parse_args(argv)
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="fspec_days_"))
    try:
        root = scratch / "project"
        shutil.rmtree(root, ignore_errors=True)
        print(f"building {root} ({args.days} days of {args.rows:,} rows, {args.instruments} instruments) ...")
        dates = build(root, args.rows, args.instruments, args.days)
        groups = pq.ParquetFile(root / LONG_PATH).metadata.num_row_groups
        print(f"{LONG_PATH}: {groups} row groups, {(root / LONG_PATH).stat().st_size / 2**20:,.0f} MiB")
        runs = {"this fspec": (sys.executable, root)}
        if args.baseline:
            other = scratch / "baseline"
            shutil.rmtree(other, ignore_errors=True)
            shutil.copytree(root / "specs", other / "specs")
            (other / "data").mkdir(parents=True)
            (other / LONG_PATH).symlink_to(root / LONG_PATH)
            runs["baseline"] = (args.baseline, other)
        day = dates[-1]
        name = f"features_{day.replace('-', '')}_{bench_project.INTERVAL}s.parquet"
        for python, where in runs.values():
            _fspec(python, where, "compile")
        _fspec(sys.executable, root, "run")  # every day: the file read whole
        shutil.copy(root / "out" / name, scratch / "whole.parquet")
        walls: dict[str, list[float]] = {n: [] for n in runs}
        peaks: dict[str, list[float]] = {n: [] for n in runs}
        cpus: dict[str, list[float]] = {n: [] for n in runs}
        loads = []
        for r in range(args.repeat):
            order = list(runs) if r % 2 == 0 else list(reversed(runs))
            for label in order:
                python, where = runs[label]
                shutil.rmtree(where / "out", ignore_errors=True)
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                wall, peak = _run_day(python, where, day, scratch / "child.json")
                walls[label].append(wall)
                peaks[label].append(peak)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpus[label].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
                if not _same(where / "out" / name, scratch / "whole.parquet"):
                    raise SystemExit(f"{label}: the day's file differs from the run of every day")
            loads.append(os.getloadavg()[0])
            line = ", ".join(
                f"{n}: {walls[n][-1]:.2f} s wall, {cpus[n][-1]:.2f} s CPU, {peaks[n][-1]:,.0f} MiB" for n in runs
            )
            print(f"round {r + 1} (load {loads[-1]:.2f}): {line}", flush=True)
        print(f"\nload average over the rounds: {min(loads):.2f}-{max(loads):.2f}")
        for n in runs:
            w, c = walls[n], cpus[n]
            print(
                f"{n}: wall {min(w):.2f}..{max(w):.2f} s (median {statistics.median(w):.2f}), "
                f"CPU {min(c):.2f}..{max(c):.2f} s (median {statistics.median(c):.2f}), "
                f"peak memory {min(peaks[n]):,.0f}..{max(peaks[n]):,.0f} MiB"
            )
    finally:
        if args.scratch is None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
