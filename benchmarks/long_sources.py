"""What a long file of many symbols costs against one file per symbol, measured as a user runs it.

    python -m benchmarks.long_sources --rows 10M --instruments 50 --repeat 5 [--scratch DIR] [--profile]

The same ``--rows`` trades of one day over ``--instruments`` instruments, laid out three ways, each an fspec
project of the benchmark's features (``benchmarks/specs/features.yaml``):

* per-symbol: one parquet file per instrument (``path: data/{symbol}/{date}_trades.parquet``);
* long, by time: one parquet file of every instrument's rows in time order, as a consolidated feed is written,
  with a text ``symbol`` column (``symbol: symbol``, no ``{symbol}`` in the path);
* long, by symbol: the same file with its rows grouped by symbol (time order within each), as vendors'
  per-day extracts often are.

Each case runs in a fresh process (``fspec run``), parquet on disk to parquet on disk, in rounds that run every
case once in a rotating order; the load average is printed with every round, and the ratio of each long layout
to the per-symbol files is reported per round, for the wall time and for the CPU time of the run's process
(user and system, all threads: less disturbed by other jobs on the machine than the wall time), with each
case's peak memory (the run's own process: its ``VmHWM`` at exit, see ``benchmarks/scale.py``). The outputs of
the three are checked to be identical first. ``--scratch DIR`` builds the projects there and keeps them: a
later run with the same DIR, ``--rows`` and ``--instruments`` reuses them.
``--profile`` also times reading the day's rows as a run does, in a fresh process per layout, three times
(wall and CPU seconds): the per-symbol files on the thread pool, and ``read_symbols`` of each long file (its
read, the symbol codes and the regrouping).
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
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks import project as bench_project
from benchmarks.bars import rows as parse_rows
from benchmarks.scale import run_once
from benchmarks.workload import COLUMNS, DAY, generate, instrument_names

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


CASES = {"per-symbol files": "per_symbol", "long file, by time": "long_time", "long file, by symbol": "long_symbol"}


def build(scratch: Path, rows: int, instruments: int) -> dict[str, Path]:
    """The three compiled projects under ``scratch``; the ones built there before for the same rows and
    instruments are reused."""
    stamp = scratch / "built.json"
    wanted = {"rows": rows, "instruments": instruments}
    if stamp.exists() and json.loads(stamp.read_text()) == wanted:
        cases = {name: scratch / folder for name, folder in CASES.items()}
        for root in cases.values():
            _compile(root)  # (this fspec's build of the same specs)
        return cases
    for folder in CASES.values():
        shutil.rmtree(scratch / folder, ignore_errors=True)
    names = instrument_names(instruments)
    workload = generate(rows, instruments)
    cases: dict[str, Path] = {}
    root = bench_project.write_project(scratch / CASES["per-symbol files"], names)
    bench_project.write_data(root, workload)
    cases["per-symbol files"] = root
    for order in ("time", "symbol"):
        root = bench_project.write_project(scratch / CASES[f"long file, by {order}"], names)
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
    stamp.write_text(json.dumps(wanted))
    return cases


PROFILE = r"""
import json, sys, time
from pathlib import Path
from fspec.runtime.kernels import run_all
from fspec.runtime.manifest import load_manifest
from fspec.runtime.sources import arrow_allocator, load_source, read_symbols

root, day, repeat = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
manifest = load_manifest(root)
spec = manifest.project.sources["trades"]
symbols = sorted(i.symbol for i in manifest.project.instruments.values())
seconds = []
with arrow_allocator():
    for _ in range(repeat):
        started, cpu = time.perf_counter(), time.process_time()
        if spec.symbol_column is None:
            rows = run_all([lambda s=s: load_source(root, spec, s, day) for s in symbols])
        else:
            rows = read_symbols(root, spec, day, set(symbols))
        seconds.append((time.perf_counter() - started, time.process_time() - cpu))
        del rows
print(json.dumps(seconds))
"""


def _profile(cases: dict[str, Path], repeat: int = 3) -> None:
    """Seconds to read the day's rows as ``fspec run`` does (without its numba loading beside the reads), in a
    fresh process per layout: the first read pays for fresh memory and, for a file in time order, for loading
    the regrouping's compiled code from numba's cache."""
    print()
    print(f"reading the day's rows in a fresh process, {repeat} times (wall / CPU seconds of all threads):")
    for name, root in cases.items():
        done = subprocess.run(
            [sys.executable, "-c", PROFILE, str(root), DAY, str(repeat)], capture_output=True, text=True
        )
        if done.returncode:
            raise SystemExit(f"profiling '{name}' failed:\n{done.stderr}")
        seconds = json.loads(done.stdout.strip().splitlines()[-1])
        times = ", ".join(f"{wall:.2f} / {cpu:.2f}" for wall, cpu in seconds)
        print(f"  {name}: {times} (load {os.getloadavg()[0]:.2f})", flush=True)


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
    parser.add_argument("--scratch", type=Path, help="build the projects here and keep them (default: a temp dir)")
    parser.add_argument("--profile", action="store_true", help="also time reading the rows, layout by layout")
    args = parser.parse_args(argv)
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="fspec_long_"))
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        print(f"building projects under {scratch} ({args.rows:,} rows, {args.instruments} instruments) ...")
        cases = build(scratch, args.rows, args.instruments)
        names = list(cases)
        for root in cases.values():
            run_once(root, scratch)  # also the outputs to compare
        _same_output(cases)
        walls: dict[str, list[float]] = {n: [] for n in names}
        peaks: dict[str, list[float]] = {n: [] for n in names}
        cpus: dict[str, list[float]] = {n: [] for n in names}
        loads = []
        for r in range(args.repeat):
            for name in [names[(r + j) % len(names)] for j in range(len(names))]:
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                result = run_once(cases[name], scratch)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpus[name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
                walls[name].append(result["wall"])
                peaks[name].append(result["peak"] / 2**20)
            loads.append(os.getloadavg()[0])
            line = ", ".join(f"{n}: {walls[n][-1]:.2f} s" for n in names)
            print(f"round {r + 1} (load {loads[-1]:.2f}): {line}", flush=True)
        print()
        print(f"load average over the rounds: {min(loads):.2f}-{max(loads):.2f}")
        print(
            "| layout | wall median | min..max | vs per-symbol files, per round | CPU s (median) | CPU vs per-symbol, "
            "per round | peak memory (median) |"
        )
        print("|---|---:|---:|---|---:|---|---:|")
        base = walls[names[0]]
        for n in names:
            ratios = ", ".join(f"{w / b:.2f}x" for w, b in zip(walls[n], base, strict=True))
            w = walls[n]
            peak = statistics.median(peaks[n])
            cpu = ", ".join(f"{c / b:.2f}x" for c, b in zip(cpus[n], cpus[names[0]], strict=True))
            print(
                f"| {n} | {statistics.median(w):.2f} s | {min(w):.2f}..{max(w):.2f} s | {ratios} | "
                f"{statistics.median(cpus[n]):.2f} | {cpu} | {peak:,.0f} MiB |"
            )
        if args.profile:
            _profile(cases)
    finally:
        if args.scratch is None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
