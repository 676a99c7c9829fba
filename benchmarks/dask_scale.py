"""How `fspec run --engine dask` scales with workers and task size, and what one task costs beyond its computation.

    python -m benchmarks.dask_scale --days 20 --instruments 50 --rows 500k --workers 1 2 8 --groups 0 10 \
        --days-per-task 1 5 --repeat 2

One project of ``--days`` days of ``--rows`` synthetic trades a day (benchmarks/workload.py) over
``--instruments`` instruments (one file each, the features of benchmarks/specs/features.yaml), compiled once
(``fspec compile``, not timed). Then, in rounds that run every case once in a rotating order:

* ``local``: the local engine's ``run`` in this process (every core), after the same warm-up as a worker's.
* ``dask W``: a LocalCluster of W worker processes (one thread each, FSPEC_THREADS = cores // W, at least 1) is
  started and warmed before timing (each worker loads numba and the kernels' cached machine code, what a cold
  worker's first task does; that time is reported as "worker warm-up"); the run is the dask engine's
  ``run`` in this process against it, one task per day. More workers than cores simulates a larger cluster's
  scheduling on this machine: the tasks then share the cores.
* ``dask W / N``: the same with tasks per (day, entity group) of N instruments (``--group-size N``) and a write
  step per day that assembles the groups' columns into the day's files (``--groups``: the sizes; 0 is whole
  days).
* ``dask W x K``: tasks of K consecutive whole days (``--days-per-task K``): the later days of a task take their
  warm-up from the earlier days' slots instead of reducing their files again.

Reported per case: the run's wall time (median and range), speed-up over the first dask case, parallel
efficiency (speed-up over min(W, cores) / min(W0, cores)), the tasks, the median compute task's time (the
scheduler's task stream: inside ``run_day`` or ``compute_group``), the sum of every task's compute (write steps
included) and the per-task overhead, (W x wall - sum of task compute) / tasks: worker time per task not spent
computing (scheduling, sending the task and its result, waiting at the end for the last task). Each task also
reduces the earlier sessions its windows reach into (its halo) that the local engine takes from its cache: the
sum of task compute against the local run's wall time shows that cost. The load average is printed with every
round.
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
import warnings
from pathlib import Path
from typing import Any

from benchmarks import project as bench_project
from benchmarks.bars import rows as parse_rows
from benchmarks.scale import _days
from benchmarks.workload import generate, instrument_names


def build(root: Path, rows: int, instruments: int, days: int) -> Path:
    bench_project.write_project(root, instrument_names(instruments))
    for k, day in enumerate(_days("2024-03-04", days)):
        bench_project.write_data(root, generate(rows, instruments, seed=20240305 + k, day=day))
    done = subprocess.run(
        [sys.executable, "-m", "fspec.cli", "compile", "--project", str(root)], capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"fspec compile failed in {root}:\n{done.stdout}{done.stderr}")
    return root


def run_local(root: Path, out: Path) -> float:
    """The local engine in this process (warmed as a worker is), every core: the baseline without a cluster."""
    from fspec.runtime.engines import run
    from fspec.runtime.manifest import load_manifest
    from fspec.runtime.run import RunOptions

    shutil.rmtree(out, ignore_errors=True)
    _warm(str(root))
    manifest = load_manifest(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        run(manifest, RunOptions(output_dir=out))
        return time.perf_counter() - started


def _warm(root: str) -> None:
    """What a worker's first task does once: import numba, load its CPU target and the kernels' cached code."""
    from fspec.runtime.kernels import load_numba_target
    from fspec.runtime.manifest import load_manifest
    from fspec.runtime.warmup import warm_manifest

    load_numba_target()
    warm_manifest(load_manifest(Path(root)))


def run_dask(root: Path, out: Path, workers: int, group_size: int, per_task: int = 1) -> dict[str, float]:
    """One timed dask run on a fresh, warmed LocalCluster of ``workers`` processes; tasks of ``per_task`` whole
    days (``group_size`` 0) or of (day, group of ``group_size`` instruments)."""
    from distributed import Client, LocalCluster, get_task_stream

    from fspec.runtime.engines import run
    from fspec.runtime.manifest import load_manifest
    from fspec.runtime.run import RunOptions

    shutil.rmtree(out, ignore_errors=True)
    cores = os.cpu_count() or 1
    env = {"FSPEC_THREADS": str(max(1, cores // workers))}
    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", env=env, silence_logs=40
    )
    try:
        with Client(cluster, set_as_default=False) as client:
            warm_started = time.perf_counter()
            client.run(_warm, str(root))
            warm = time.perf_counter() - warm_started
            size = group_size or 1 << 30  # whole days: one group of every instrument
            options = RunOptions(
                engine="dask",
                scheduler=cluster.scheduler_address,
                output_dir=out,
                group_size=size,
                days_per_task=per_task if not group_size else None,
            )
            manifest = load_manifest(root)
            with get_task_stream(client=client) as stream, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                started = time.perf_counter()
                run(manifest, options)
                wall = time.perf_counter() - started
            computes = _computes(stream.data)
    finally:
        cluster.close()
    every = [t for times in computes.values() for t in times]
    main = computes.get("day", []) + computes.get("group", [])
    tasks = len(every)
    return {
        "wall": wall,
        "task_median": statistics.median(main) if main else float("nan"),
        "write_median": statistics.median(computes["write"]) if computes.get("write") else float("nan"),
        "task_sum": sum(every),
        "overhead": (workers * wall - sum(every)) / tasks if tasks else float("nan"),
        "tasks": float(tasks),
        "warm": warm,
    }


def _computes(stream: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Each kind of fspec task's compute times (day, group, write), from the scheduler's task stream."""
    found: dict[str, list[float]] = {}
    for t in stream:
        key = str(t.get("key", ""))
        if not key.startswith("fspec-"):
            continue
        kind = key.split("-")[1].rstrip("0123456789")  # fspec-group3-2024-03-04-...: group
        for s in t.get("startstops", []):
            if s.get("action") == "compute":
                found.setdefault(kind, []).append(s["stop"] - s["start"])
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--instruments", type=int, default=50)
    parser.add_argument("--rows", type=parse_rows, default=500_000, help="trades per day (default 500k)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 8])
    parser.add_argument(
        "--groups", type=int, nargs="+", default=[0], help="instruments per task (0: whole days; default 0)"
    )
    parser.add_argument(
        "--days-per-task", type=int, nargs="+", default=[1], help="consecutive days per task of whole days"
    )
    parser.add_argument("--repeat", type=int, default=2, help="interleaved rounds")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="fspec_dask_scale_"))
    cores = os.cpu_count() or 1
    try:
        print(
            f"building {args.days} days x {args.instruments} instruments ({args.rows:,} rows a day) under {scratch}",
            flush=True,
        )
        root = build(scratch / "p", args.rows, args.instruments, args.days)
        cases = [(w, g, k) for w in args.workers for g in args.groups for k in (args.days_per_task if not g else [1])]
        names = ["local", *(_name(*case) for case in cases)]
        results: dict[str, list[dict[str, float]]] = {n: [] for n in names}
        for r in range(args.repeat):
            for j in range(len(names)):
                name = names[(r + j) % len(names)]
                if name == "local":
                    results[name].append({"wall": run_local(root, scratch / "out_local")})
                else:
                    results[name].append(run_dask(root, scratch / "out_dask", *cases[names.index(name) - 1]))
            load = os.getloadavg()[0]
            line = ", ".join(f"{n}: {results[n][-1]['wall']:.2f} s" for n in names)
            print(f"round {r + 1} (load {load:.2f}): {line}", flush=True)
        base_workers = args.workers[0]
        base = statistics.median(x["wall"] for x in results[names[1]])
        print()
        print(f"{args.days} days of {args.instruments} instruments, {cores} cores")
        print()
        print(
            "| case | wall median | speed-up | efficiency | tasks | task compute median | write median "
            "| task compute sum | overhead/task | worker warm-up |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n in names:
            walls = [x["wall"] for x in results[n]]
            wall = statistics.median(walls)
            spread = f"{min(walls):.2f}-{max(walls):.2f} s"
            if n == "local":
                print(f"| local | {wall:.2f} s ({spread}) | | | | | | | | |")
                continue
            w = cases[names.index(n) - 1][0]
            speedup = base / wall
            efficiency = speedup / (min(w, cores) / min(base_workers, cores))

            def med(field: str, n: str = n) -> float:
                return statistics.median(x[field] for x in results[n])

            write = med("write_median")
            shown = "" if write != write else f"{write:.3f} s"  # NaN: whole days write in their task
            print(
                f"| {n} | {wall:.2f} s ({spread}) | {speedup:.2f}x | {efficiency:.0%} | {med('tasks'):.0f} | "
                f"{med('task_median'):.3f} s | {shown} | {med('task_sum'):.2f} s | "
                f"{med('overhead') * 1000:.0f} ms | {med('warm'):.2f} s |"
            )
        print(f"\nload average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def _name(workers: int, group_size: int, per_task: int) -> str:
    if group_size:
        return f"dask {workers} / {group_size}"
    return f"dask {workers}" if per_task == 1 else f"dask {workers} x {per_task}"


if __name__ == "__main__":
    raise SystemExit(main())
