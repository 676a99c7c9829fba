"""How `fspec run --engine dask` scales with workers, and what one task costs beyond its computation.

    python -m benchmarks.dask_scale --days 20 --instruments 50 --rows 500k --workers 1 2 8 --repeat 2

One project of ``--days`` days of ``--rows`` synthetic trades a day (benchmarks/workload.py) over
``--instruments`` instruments (one file each, the features of benchmarks/specs/features.yaml), compiled once
(``fspec compile``, not timed). Then, in rounds that run every case once in a rotating order:

* ``local``: the local engine's ``run`` in this process (every core), after the same warm-up as a worker's.
* ``dask W``: a LocalCluster of W worker processes (one thread each, FSPEC_THREADS = cores // W, at least 1) is
  started and warmed before timing (each worker loads numba and the kernels' cached machine code, what a cold
  worker's first task does; that time is reported as "worker warm-up"); the run is the dask engine's
  ``run`` in this process against it, one task per day. More workers than cores simulates a larger cluster's
  scheduling on this machine: the tasks then share the cores.

Reported per case: the run's wall time (median), speed-up over 1 worker, parallel efficiency (speed-up over
min(W, cores)), the median task's compute time (the scheduler's task stream: inside ``run_day``) and the
per-task overhead, (W x wall - sum of task compute) / tasks: worker time per task not spent computing
(scheduling, sending the task and its result, waiting at the end for the last task). Each day's task also
reduces the earlier sessions its windows reach into (its halo) that the local engine takes from its cache:
the sum of task compute against the local run's wall time shows that cost. The load average is printed with
every round.
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


def run_dask(root: Path, out: Path, workers: int) -> dict[str, float]:
    """One timed dask run on a fresh, warmed LocalCluster of ``workers`` processes."""
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
            options = RunOptions(engine="dask", scheduler=cluster.scheduler_address, output_dir=out)
            manifest = load_manifest(root)
            with get_task_stream(client=client) as stream, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                started = time.perf_counter()
                written = run(manifest, options)
                wall = time.perf_counter() - started
            computes = [
                s["stop"] - s["start"]
                for t in stream.data
                if str(t.get("key", "")).startswith("fspec-day-")
                for s in t.get("startstops", [])
                if s.get("action") == "compute"
            ]
    finally:
        cluster.close()
    tasks = len(written) and len(computes)
    return {
        "wall": wall,
        "task_median": statistics.median(computes) if computes else float("nan"),
        "task_sum": sum(computes),
        "overhead": (workers * wall - sum(computes)) / tasks if tasks else float("nan"),
        "tasks": float(tasks),
        "warm": warm,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--instruments", type=int, default=50)
    parser.add_argument("--rows", type=parse_rows, default=500_000, help="trades per day (default 500k)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 8])
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
        names = ["local", *(f"dask {w}" for w in args.workers)]
        results: dict[str, list[dict[str, float]]] = {n: [] for n in names}
        for r in range(args.repeat):
            for j in range(len(names)):
                name = names[(r + j) % len(names)]
                if name == "local":
                    results[name].append({"wall": run_local(root, scratch / "out_local")})
                else:
                    results[name].append(run_dask(root, scratch / "out_dask", int(name.split()[1])))
            load = os.getloadavg()[0]
            line = ", ".join(f"{n}: {results[n][-1]['wall']:.2f} s" for n in names)
            print(f"round {r + 1} (load {load:.2f}): {line}", flush=True)
        base = statistics.median(x["wall"] for x in results[f"dask {args.workers[0]}"])
        base_workers = args.workers[0]
        print()
        print(f"{args.days} tasks (days) of {args.instruments} instruments, {cores} cores")
        print()
        print(
            "| case | wall median | speed-up | efficiency | task compute median | task compute sum | overhead/task "
            "| worker warm-up |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for n in names:
            wall = statistics.median(x["wall"] for x in results[n])
            if n == "local":
                print(f"| local | {wall:.2f} s | | | | | | |")
                continue
            w = int(n.split()[1])
            speedup = base / wall
            efficiency = speedup / (min(w, cores) / min(base_workers, cores))
            med = statistics.median(x["task_median"] for x in results[n])
            total = statistics.median(x["task_sum"] for x in results[n])
            overhead = statistics.median(x["overhead"] for x in results[n])
            warm = statistics.median(x["warm"] for x in results[n])
            print(
                f"| dask {w} | {wall:.2f} s | {speedup:.2f}x | {efficiency:.0%} | {med:.3f} s | {total:.2f} s | "
                f"{overhead * 1000:.0f} ms | {warm:.2f} s |"
            )
        print(f"\nload average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
