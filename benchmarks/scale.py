"""How `fspec run` scales with instruments and with days, measured as a user runs it.

    python -m benchmarks.scale --rows 10M --instruments 5 500 --days 1 10 --repeat 3

Two comparisons, each in fresh processes (``python -m fspec.cli run``), parquet on disk to parquet on disk, in
rounds that run every case once in a rotating order (so that a busy moment of this shared machine does not
fall on one case only):

* instruments: the same ``--rows`` trades of one day spread over 5 or over 500 instruments (one file each, the
  benchmark's features of ``benchmarks/specs/features.yaml``). The ratio of wall times is reported per round.
* days: 1 day or 10 days of ``--rows`` trades each (5 instruments), all days in one ``fspec run``. Wall time and
  the process's peak resident memory (``VmHWM`` read by the child itself at exit) are reported; the ratios
  to one day are what the run is judged by (days x time, bounded memory).

With every round the load average is printed, and each case's CPU time (user and system, every thread of the
run's process, read by the child at its end): the CPU ratio is less disturbed by other jobs on the machine than
the wall ratio, and is reported beside it. Each project is compiled once before timing (``fspec compile``,
not timed) and lives in a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import project as bench_project
from benchmarks.bars import rows as parse_rows
from benchmarks.workload import generate, instrument_names

# The child's own peak is VmHWM of /proc/self/status (Linux): the high-water mark of this process's memory since
# its exec. Not ru_maxrss of RUSAGE_SELF: Linux carries the peak of the memory an exec replaces into it, and
# subprocess starts the child by vfork, so that memory is the benchmark's own (the 10M-row workload it
# generated): every layout read the driver's 1,941 MiB, whatever its run used.
CHILD = r"""
import json, resource, sys, time
started = time.perf_counter()
from fspec.cli import main

def peak_bytes():
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # (elsewhere: may include the parent's)

try:
    main(["run", "--project", sys.argv[2]], standalone_mode=False)
finally:
    with open(sys.argv[1], "w") as fh:
        usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of the run's process
        cpu = usage.ru_utime + usage.ru_stime
        json.dump({"seconds": time.perf_counter() - started, "peak_bytes": peak_bytes(), "cpu": cpu}, fh)
"""


def _days(first: str, n: int) -> list[str]:
    """``n`` weekdays from ``first`` on (the session calendar of the workload)."""
    import datetime as dt

    day = dt.date.fromisoformat(first)
    out = []
    while len(out) < n:
        if day.weekday() < 5:
            out.append(day.isoformat())
        day += dt.timedelta(days=1)
    return out


def build(root: Path, rows: int, instruments: int, days: int, aot: bool = False) -> Path:
    """A compiled project of ``days`` days of ``rows`` trades over ``instruments`` instruments (with ``aot``, its
    ahead-of-time library too: ``fspec compile --aot``)."""
    names = instrument_names(instruments)
    bench_project.write_project(root, names)
    for k, day in enumerate(_days("2024-03-04", days)):
        bench_project.write_data(root, generate(rows, instruments, seed=20240305 + k, day=day))
    done = subprocess.run(
        [sys.executable, "-m", "fspec.cli", "compile", "--project", str(root), *(["--aot"] if aot else [])],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"fspec compile failed in {root}:\n{done.stdout}{done.stderr}")
    return root


def run_once(root: Path, scratch: Path) -> dict[str, float]:
    shutil.rmtree(root / "out", ignore_errors=True)
    report = scratch / "child.json"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, str(report), str(root)], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"fspec run failed in {root}:\n{done.stdout}{done.stderr}")
    data = json.loads(report.read_text())
    return {"wall": wall, "peak": data["peak_bytes"], "cpu": data["cpu"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=parse_rows, default=10_000_000, help="trades per day (default 10M)")
    parser.add_argument("--instruments", type=int, nargs=2, default=[5, 500], metavar=("FEW", "MANY"))
    parser.add_argument("--days", type=int, nargs=2, default=[1, 10], metavar=("ONE", "MANY"))
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--aot", action="store_true", help="compile the projects with --aot (runs without numba)")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="fspec_scale_"))
    try:
        few, many = args.instruments
        one, lots = args.days
        print(f"building projects under {scratch} ({args.rows:,} rows a day) ...", flush=True)
        cases = {
            f"{few} instruments, {one} day": build(scratch / "few", args.rows, few, one, args.aot),
            f"{many} instruments, {one} day": build(scratch / "many", args.rows, many, one, args.aot),
            f"{few} instruments, {lots} days": build(scratch / "days", args.rows, few, lots, args.aot),
        }
        names = list(cases)
        results: dict[str, list[dict[str, float]]] = {n: [] for n in names}
        for r in range(args.repeat):
            order = [names[(r + j) % len(names)] for j in range(len(names))]
            for name in order:
                results[name].append(run_once(cases[name], scratch))
            load = os.getloadavg()[0]
            line = ", ".join(f"{n}: {results[n][-1]['wall']:.2f} s ({results[n][-1]['cpu']:.2f} s CPU)" for n in names)
            print(f"round {r + 1} (load {load:.2f}): {line}", flush=True)
        print()
        print("| case | wall median | wall min..max | CPU median | CPU min..max | peak memory (median) |")
        print("|---|---:|---:|---:|---:|---:|")
        for n in names:
            walls, cpus = [x["wall"] for x in results[n]], [x["cpu"] for x in results[n]]
            peak = statistics.median(x["peak"] for x in results[n]) / 2**20
            print(
                f"| {n} | {statistics.median(walls):.2f} s | {min(walls):.2f}..{max(walls):.2f} s "
                f"| {statistics.median(cpus):.2f} s | {min(cpus):.2f}..{max(cpus):.2f} s | {peak:,.0f} MiB |"
            )
        base, wide, long = (results[n] for n in names)
        ratios = [w["wall"] / b["wall"] for b, w in zip(base, wide, strict=True)]
        cpu_ratios = [w["cpu"] / b["cpu"] for b, w in zip(base, wide, strict=True)]
        day_ratios = [d["wall"] / b["wall"] for b, d in zip(base, long, strict=True)]
        mem_ratios = [d["peak"] / b["peak"] for b, d in zip(base, long, strict=True)]
        print()
        print(f"{many} vs {few} instruments, wall time per round: {', '.join(f'{x:.2f}x' for x in ratios)}")
        print(f"{many} vs {few} instruments, CPU time per round: {', '.join(f'{x:.2f}x' for x in cpu_ratios)}")
        print(f"{lots} days vs {one}, wall time per round: {', '.join(f'{x:.2f}x' for x in day_ratios)}")
        print(f"{lots} days vs {one}, peak memory per round: {', '.join(f'{x:.2f}x' for x in mem_ratios)}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
