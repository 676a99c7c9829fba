"""Benchmark: 30-second bars from synthetic trades with fspec, idiomatic pandas and idiomatic polars.

    python -m benchmarks.bars --rows 1M 10M 30M --repeat 5 --profile --e2e

For each size, in one process: generate the workload (fixed seed), write and compile its fspec project, build
the three engines' in-memory inputs (not timed), check that all three agree on every feature (relative 1e-9,
same NaN pattern), then time, interleaved and in a rotating order, the compute stage of each engine and the
memory floor (one numpy sum over every needed input column, on as many threads as fspec's kernels use, and
for reference on one thread; best of three back-to-back reads per round).
Peak memory is measured in a fresh subprocess per engine (see :func:`memory_child`), so its allocator
settings do not touch the timings. ``--e2e`` also times parquet on disk -> features parquet on disk, stage
by stage; ``--profile`` breaks fspec's compute time down.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import project as bench_project
from benchmarks.workload import COLUMNS, Workload, generate, instrument_names

Key = tuple[str, str | None]
ENGINES = ("fspec", "polars-tuned", "polars", "pandas")
RTOL = 1e-9
FLOORS = ["floor", "floor-1t"]  # reading the input once on fspec's number of threads, and on one


# ---- inputs and the engines' compute stages -------------------------------------------------------------


@dataclass
class Setup:
    workload: Workload
    root: Path
    interval: int
    manifest: Any = None
    compile_seconds: float = 0.0
    inputs: dict[str, Any] = field(default_factory=dict)

    @property
    def pair(self) -> tuple[str, str]:
        names = self.workload.instruments
        return names[0], names[1]


def prepare(rows: int, instruments: int, seed: int, interval: int, root: Path, engines: list[str]) -> Setup:
    workload = generate(rows, instruments, seed)
    setup = Setup(workload, root, interval)
    bench_project.write_project(root, workload.instruments, interval)
    setup.manifest, setup.compile_seconds = bench_project.compile_and_warm(root)
    for engine in engines:
        setup.inputs[engine] = build_input(engine, workload)
    return setup


def build_input(engine: str, workload: Workload) -> Any:
    if engine == "fspec":
        from fspec.runtime.sources import Ticks

        return {
            ("trades", name): Ticks(cols["ts"], {c: cols[c] for c in COLUMNS}) for name, cols in workload.data.items()
        }
    if engine == "pandas":
        from benchmarks import pandas_impl

        return pandas_impl.to_frame(workload)
    if engine in ("polars", "polars-tuned"):
        from benchmarks import polars_impl

        return polars_impl.to_frame(workload)
    raise ValueError(engine)


def runner(engine: str, setup: Setup) -> Callable[[], Any]:
    """A no-argument function that computes every published feature from the engine's in-memory input (or,
    for "floor", reads every needed input column once and returns the seconds that took)."""
    w, data = setup.workload, setup.inputs.get(engine)
    if engine == "fspec":
        from fspec.runtime.run import compute_in_memory

        return lambda: compute_in_memory(setup.manifest, w.day, setup.interval, data).values
    if engine == "pandas":
        from benchmarks import pandas_impl

        return lambda: pandas_impl.compute(data, w.open_ns, w.close_ns, setup.interval, setup.pair)
    if engine == "polars":
        from benchmarks import polars_impl

        return lambda: polars_impl.compute(data, w.open_ns, w.close_ns, setup.interval, setup.pair)
    if engine == "polars-tuned":
        from benchmarks import polars_tuned

        return lambda: polars_tuned.compute(data, w.open_ns, w.close_ns, setup.interval, setup.pair)
    if engine in FLOORS:
        from fspec.runtime.kernels import threads

        arrays = [cols[c] for cols in w.data.values() for c in ("ts", *COLUMNS)]
        # "floor": as many readers as fspec has kernel threads (numpy's sum releases the GIL), each summing
        # every workers-th column; on this 2-core machine one reader alone ("floor-1t") takes twice as long.
        workers = threads() if engine == "floor" else 1
        shares = [arrays[k::workers] for k in range(workers)]
        pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None

        def read(share: list[np.ndarray]) -> None:
            for a in share:
                np.add.reduce(a)

        def floor() -> float:
            # Best of three back-to-back reads, timed here: one read right after a multi-second pandas run is
            # often 2x slower (a transient of the machine, not of the read).
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                if pool is None:
                    read(arrays)
                else:
                    list(pool.map(read, shares))
                best = min(best, time.perf_counter() - started)
            return best

        return floor
    raise ValueError(engine)


# ---- agreement -------------------------------------------------------------------------------------------


@dataclass
class Agreement:
    problems: list[str]
    worst: dict[str, float]  # feature -> largest relative difference seen (over instruments and engines)
    floored: int  # values beyond RTOL of themselves but within RTOL of their column's median magnitude
    values: int


def compare(reference: dict[Key, np.ndarray], others: dict[str, dict[Key, np.ndarray]]) -> Agreement:
    """Every key of ``reference`` in every other engine: same NaN pattern, and values equal to a relative 1e-9.

    "Relative" is to the larger of the two values and the column's median magnitude: a difference of two
    nearly equal numbers (``vwap - mid`` in ``vwap_deviation``) can be far smaller than its operands, and a
    one-ulp difference in an operand is then a large relative difference of the result. Values that pass only
    thanks to the column's median magnitude are counted and reported.
    """
    problems: list[str] = []
    worst: dict[str, float] = {}
    floored = values = 0
    for engine, result in others.items():
        for key, ref in reference.items():
            label = f"{engine}: {key[0]}" + (f"[{key[1]}]" if key[1] else "")
            if key not in result:
                problems.append(f"{label}: missing")
                continue
            got = np.asarray(result[key], dtype=np.float64)
            if got.shape != ref.shape:
                problems.append(f"{label}: {got.shape[0]} bars, fspec has {ref.shape[0]}")
                continue
            nan_ref, nan_got = np.isnan(ref), np.isnan(got)
            if (nan_ref != nan_got).any():
                row = int(np.flatnonzero(nan_ref != nan_got)[0])
                problems.append(f"{label}: NaN pattern differs first at bar {row} (fspec {ref[row]}, {got[row]})")
                continue
            ok = ~nan_ref
            a, b = ref[ok], got[ok]
            if (np.isinf(a) != np.isinf(b)).any() or (a[np.isinf(a)] != b[np.isinf(b)]).any():
                problems.append(f"{label}: infinities differ")
                continue
            fin = np.isfinite(a)
            a, b = a[fin], b[fin]
            values += a.size
            if not a.size:
                continue
            diff = np.abs(a - b)
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.where(diff == 0, 0.0, diff / np.maximum(np.abs(a), np.abs(b)))
            worst[key[0]] = max(worst.get(key[0], 0.0), float(rel.max()))
            column_scale = float(np.median(np.abs(a)))
            bad = (rel > RTOL) & (diff > RTOL * column_scale)
            floored += int(((rel > RTOL) & ~bad).sum())
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                x, y = float(a[row]), float(b[row])
                problems.append(f"{label}: relative difference {rel[row]:.2e} at value {row} ({x!r} vs {y!r})")
    return Agreement(problems, worst, floored, values)


# ---- timing ----------------------------------------------------------------------------------------------


def interleaved(fns: dict[str, Callable[[], Any]], repeat: int) -> dict[str, list[float]]:
    """``repeat`` rounds; each round runs every function once, in an order rotated by one per round."""
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeat):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            gc.collect()
            started = time.perf_counter()
            result = fns[name]()
            elapsed = time.perf_counter() - started
            times[name].append(result if isinstance(result, float) else elapsed)  # the floor times itself
    return times


# ---- memory: one fresh process per engine ----------------------------------------------------------------


def _status_kib(field_name: str) -> int:
    with open("/proc/self/status") as fh:
        match = re.search(rf"^{field_name}:\s+(\d+) kB", fh.read(), re.M)
    return int(match.group(1)) if match else -1


def memory_child(engine: str, rows: int, instruments: int, seed: int, interval: int, root: Path) -> dict[str, Any]:
    """Extra peak resident memory of one compute call, measured in this (fresh) process.

    The compute runs once to warm up (JIT, caches), then glibc is told to serve every allocation of 64 KiB
    or more with mmap and to return freed memory (so a temporary shows in the resident set and leaves it when
    freed), the peak counter (VmHWM) is reset, and the compute runs again: extra = VmHWM - VmRSS before.
    polars' jemalloc is told by the parent, through the environment, to return freed pages at once.
    """
    setup = prepare(rows, instruments, seed, interval, root, [engine])
    fn = runner(engine, setup)
    fn()
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 128 * 1024)  # M_TRIM_THRESHOLD
    gc.collect()
    libc.malloc_trim(0)
    before = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset VmHWM to the current resident set
    result = fn()
    peak = _status_kib("VmHWM")
    del result
    return {
        "engine": engine,
        "extra_peak_bytes": (peak - before) * 1024,
        "input_bytes": setup.workload.nbytes(),
    }


def measure_memory(engine: str, args: argparse.Namespace, rows: int, root: Path) -> dict[str, Any] | None:
    env = dict(os.environ, _RJEM_MALLOC_CONF="dirty_decay_ms:0,muzzy_decay_ms:0")
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.bars",
        "--memory-child",
        engine,
        "--rows",
        str(rows),
        "--instruments",
        str(args.instruments),
        "--seed",
        str(args.seed),
        "--interval",
        str(args.interval),
        "--workdir",
        str(root),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        print(f"  memory ({engine}) failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---- fspec profile ---------------------------------------------------------------------------------------


def profile_fspec(setup: Setup, repeat: int) -> dict[str, float]:
    """Where fspec's compute time goes: ticks to bars (wall time of the kernel calls on their thread pool, and
    inside it the kernel loops and the vectorised ``derive`` summed over threads), bar-tree evaluation
    (numexpr and numba bar operators) and Python overhead (the rest). The run with the median total of
    ``repeat`` runs, in seconds."""
    import fspec.runtime.evaluate as evaluate_module
    import fspec.runtime.run as run_module
    from fspec.runtime.kernels import load_kernel, threads

    kernel = next(iter(setup.manifest.kernels.values()))
    module = load_kernel(setup.manifest.root / kernel.path, kernel.module)
    clock: dict[str, float] = {}
    lock = threading.Lock()  # kernel calls run on a thread pool

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*a: Any, **k: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                with lock:
                    clock[name] = clock.get(name, 0.0) + time.perf_counter() - started

        return wrapper

    original_kernel = module.reduce_ticks
    original_derive = module.derive
    original_reduce = run_module.Engine._reduce_all
    original_ne = evaluate_module.ne.evaluate
    original_bar_ops = evaluate_module.apply_bar_operator
    samples: dict[str, list[float]] = {}
    try:
        module.reduce_ticks = timed("kernel", original_kernel)
        module.derive = timed("derive", original_derive)
        run_module.Engine._reduce_all = timed("reduce", original_reduce)  # type: ignore[method-assign]
        evaluate_module.ne.evaluate = timed("numexpr", original_ne)
        evaluate_module.apply_bar_operator = timed("bar_ops", original_bar_ops)
        fn = runner("fspec", setup)
        for _ in range(repeat):
            clock.clear()
            gc.collect()
            started = time.perf_counter()
            fn()
            total = time.perf_counter() - started
            parts = {
                "total": total,
                f"ticks -> bars, wall time on {threads()} thread(s)": clock.get("reduce", 0.0),
                "  kernel loops (summed over threads)": clock.get("kernel", 0.0),
                "  derive: vectorised log/exp (summed)": clock.get("derive", 0.0),
                "bar trees: numexpr": clock.get("numexpr", 0.0),
                "bar trees: compiled bar operators": clock.get("bar_ops", 0.0),
            }
            parts["python overhead (rest)"] = total - sum(
                v for k, v in parts.items() if k != "total" and not k.startswith(" ")
            )
            for k, v in parts.items():
                samples.setdefault(k, []).append(v)
    finally:
        module.reduce_ticks = original_kernel
        module.derive = original_derive
        run_module.Engine._reduce_all = original_reduce  # type: ignore[method-assign]
        evaluate_module.ne.evaluate = original_ne
        evaluate_module.apply_bar_operator = original_bar_ops
    # The parts of one run add up to its total, so report the run with the median total (not medians of parts).
    order = sorted(range(repeat), key=lambda i: samples["total"][i])
    middle = order[(repeat - 1) // 2]
    return {k: v[middle] for k, v in samples.items()}


# ---- end to end ------------------------------------------------------------------------------------------


def e2e_fspec(setup: Setup, out_dir: Path) -> dict[str, float]:
    """``fspec run`` for the day, stage by stage, as :func:`fspec.runtime.run.run` does it."""
    from fspec.runtime.run import Engine, with_dependencies, write_day
    from fspec.runtime.select import select
    from fspec.runtime.sources import arrow_allocator

    manifest, day = setup.manifest, setup.workload.day
    t0 = time.perf_counter()
    engine = Engine(manifest)
    roots = select(manifest, None)
    keys = with_dependencies(manifest, roots)
    with arrow_allocator():  # as run() reads
        for name in setup.workload.instruments:
            engine.ticks("trades", name, day)
    t1 = time.perf_counter()
    result = engine.compute(day, setup.interval, keys)
    t2 = time.perf_counter()
    write_day(manifest, [result], {result.interval: roots}, out_dir)
    t3 = time.perf_counter()
    return {"read": t1 - t0, "compute": t2 - t1, "write": t3 - t2, "total": t3 - t0}


def e2e_fspec_run(setup: Setup, out_dir: Path) -> dict[str, float]:
    """The whole ``fspec run`` task (what the CLI calls), for its total."""
    from fspec.runtime.run import RunOptions, run

    started = time.perf_counter()
    run(setup.manifest, RunOptions(dates=[setup.workload.day], output_dir=out_dir))
    return {"total": time.perf_counter() - started}


def _wide(values: dict[Key, np.ndarray], interval: int) -> dict[str, np.ndarray]:
    return {f"{n}_{interval}s" + (f"_{i}" if i else ""): v for (n, i), v in values.items()}


def e2e_pandas(setup: Setup, out_dir: Path) -> dict[str, float]:
    import pandas as pd

    from benchmarks import pandas_impl

    w = setup.workload
    t0 = time.perf_counter()
    parts = [pd.read_parquet(p).assign(instrument=name) for name, p in _data_files(setup)]
    trades = pd.concat(parts, ignore_index=True)
    trades["instrument"] = trades["instrument"].astype("category")
    trades["ts"] = pd.to_datetime(trades["ts"], unit="ns", utc=True)
    t1 = time.perf_counter()
    values = pandas_impl.compute(trades, w.open_ns, w.close_ns, setup.interval, setup.pair)
    t2 = time.perf_counter()
    grid = pd.date_range(pd.Timestamp(w.open_ns, tz="UTC"), periods=len(next(iter(values.values()))), freq="30s")
    frame = pd.DataFrame({"ts_event": grid, **_wide(values, setup.interval)})
    frame.to_parquet(out_dir / "pandas_features.parquet", index=False, compression="zstd")
    t3 = time.perf_counter()
    return {"read": t1 - t0, "compute": t2 - t1, "write": t3 - t2, "total": t3 - t0}


def e2e_polars(setup: Setup, out_dir: Path) -> dict[str, float]:
    import polars as pl

    from benchmarks import polars_impl

    w = setup.workload
    t0 = time.perf_counter()
    parts = [pl.read_parquet(p).with_columns(instrument=pl.lit(name)) for name, p in _data_files(setup)]
    trades = pl.concat(parts).with_columns(
        pl.col("instrument").cast(pl.Categorical), pl.col("ts").cast(pl.Datetime("ns", "UTC"))
    )
    t1 = time.perf_counter()
    values = polars_impl.compute(trades, w.open_ns, w.close_ns, setup.interval, setup.pair)
    t2 = time.perf_counter()
    n = len(next(iter(values.values())))
    ts = pl.Series("ts_event", w.open_ns + np.arange(n, dtype=np.int64) * setup.interval * 10**9)
    frame = pl.DataFrame([ts.cast(pl.Datetime("ns", "UTC"))]).with_columns(
        **{k: pl.Series(v) for k, v in _wide(values, setup.interval).items()}
    )
    frame.write_parquet(out_dir / "polars_features.parquet", compression="zstd")
    t3 = time.perf_counter()
    return {"read": t1 - t0, "compute": t2 - t1, "write": t3 - t2, "total": t3 - t0}


def _data_files(setup: Setup) -> list[tuple[str, Path]]:
    day = setup.workload.day.replace("-", "")
    return [
        (name, setup.root / bench_project.PATH.format(symbol=name.upper(), date=day))
        for name in setup.workload.instruments
    ]


# ---- main ------------------------------------------------------------------------------------------------


def rows(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmM]?)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text}: give a row count like 1000000, 1M or 500k")
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    return int(float(match.group(1)) * scale)


def _fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.2f} s"


def _mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def run_size(args: argparse.Namespace, rows: int, workdir: Path, engines: list[str]) -> dict[str, Any]:
    root = workdir / f"rows_{rows}"
    print(f"\n=== {rows:,} rows: {args.instruments} instruments x {rows // args.instruments:,} ticks ===")
    started = time.perf_counter()
    setup = prepare(rows, args.instruments, args.seed, args.interval, root, engines)
    print(
        f"workload + inputs built in {time.perf_counter() - started:.1f}s; input columns "
        f"{_mib(setup.workload.nbytes())}; workload specs compiled + kernel warmed in {setup.compile_seconds:.2f}s"
    )
    fns = {e: runner(e, setup) for e in [*engines, *FLOORS]}
    results = {e: fns[e]() for e in engines}  # also the warm-up run (JIT, caches)
    reference = {k: v for k, v in results["fspec"].items() if k[0] != "mid"} if "fspec" in results else {}
    agreement = compare(reference, {e: results[e] for e in engines if e != "fspec"}) if reference else None
    if agreement is not None:
        status = "OK" if not agreement.problems else f"{len(agreement.problems)} PROBLEM(S)"
        print(
            f"agreement ({', '.join(e for e in engines if e != 'fspec')} vs fspec, {agreement.values:,} values): "
            f"{status}; worst relative difference per feature: "
            + ", ".join(f"{k} {v:.1e}" for k, v in sorted(agreement.worst.items(), key=lambda kv: -kv[1]))
            + f"; {agreement.floored} value(s) within 1e-9 only of their column's median magnitude"
        )
        for p in agreement.problems[:20]:
            print("  " + p)
    del results
    times = interleaved(fns, args.repeat)
    summary: dict[str, Any] = {"rows": rows, "input_bytes": setup.workload.nbytes(), "engines": {}}
    floor_med = statistics.median(times["floor"])
    fspec_med = statistics.median(times["fspec"]) if "fspec" in times else None
    print(f"\ncompute stage, {args.repeat} interleaved rounds:")
    print(f"  {'engine':8} {'median':>10} {'min':>10} {'/floor':>8} {'ns/row':>8} {'vs fspec':>9}")
    for e in [*FLOORS, *engines]:
        med, low = statistics.median(times[e]), min(times[e])
        vs = f"{med / fspec_med:.1f}x" if fspec_med and e not in FLOORS else ""
        print(f"  {e:8} {_fmt_s(med):>10} {_fmt_s(low):>10} {med / floor_med:>7.1f}x {med / rows * 1e9:>8.2f} {vs:>9}")
        summary["engines"][e] = {"median": med, "min": low, "times": times[e]}
    if args.profile and "fspec" in engines:
        prof = profile_fspec(setup, args.repeat)
        summary["profile"] = prof
        print("\nfspec compute profile (the run with the median total, instrumented):")
        for k, v in prof.items():
            print(f"  {k:40} {_fmt_s(v):>10}  {v / prof['total'] * 100:5.1f}%")
    if args.e2e and "fspec" in engines:
        summary["e2e"] = run_e2e(setup, engines, args.e2e_repeat)
    del setup, fns
    gc.collect()
    if not args.no_memory:
        print("\nextra peak memory of one compute call (fresh process per engine):")
        for e in engines:
            mem = measure_memory(e, args, rows, workdir / f"mem_{e}_{rows}")
            if mem:
                summary["engines"][e]["extra_peak_bytes"] = mem["extra_peak_bytes"]
                share = mem["extra_peak_bytes"] / mem["input_bytes"]
                print(f"  {e:8} {_mib(mem['extra_peak_bytes']):>12}  ({share:.2f}x the input columns)")
    bench_project.clean(root)
    return summary


def run_e2e(setup: Setup, engines: list[str], repeat: int) -> dict[str, dict[str, float]]:
    paths = bench_project.write_data(setup.root, setup.workload)
    on_disk = sum(p.stat().st_size for p in paths)
    out_dir = setup.root / "out"
    out_dir.mkdir(exist_ok=True)
    stages = {"fspec": e2e_fspec, "fspec run": e2e_fspec_run, "pandas": e2e_pandas, "polars": e2e_polars}
    chosen = {k: v for k, v in stages.items() if k.split()[0] in engines}
    samples: dict[str, list[dict[str, float]]] = {k: [] for k in chosen}
    for fn in chosen.values():  # warm-up (first read of the files, JIT of bar operators)
        fn(setup, out_dir)
    for r in range(repeat):
        names = list(chosen)
        for k in names[r % len(names) :] + names[: r % len(names)]:
            gc.collect()
            samples[k].append(chosen[k](setup, out_dir))
    print(f"\nend to end, parquet ({_mib(on_disk)} zstd on disk) -> features parquet, median of {repeat}:")
    result = {}
    for k, runs in samples.items():
        med = {stage: statistics.median(run[stage] for run in runs) for stage in runs[0]}
        result[k] = med
        parts = ", ".join(f"{stage} {_fmt_s(v)}" for stage, v in med.items() if stage != "total")
        print(f"  {k:10} total {_fmt_s(med['total']):>10}" + (f"  ({parts})" if parts else ""))
    return result


def markdown_table(summaries: list[dict[str, Any]], engines: list[str]) -> str:
    lines = [
        "| rows | engine | median | min | median / floor | ns per row | fspec is faster by | extra peak memory |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        floor_med = s["engines"]["floor"]["median"]
        fspec_med = s["engines"].get("fspec", {}).get("median")
        for e in [*FLOORS, *engines]:
            d = s["engines"][e]
            faster = f"{d['median'] / fspec_med:.1f}x" if fspec_med and e not in (*FLOORS, "fspec") else ""
            mem = d.get("extra_peak_bytes")
            mem_text = f"{_mib(mem)} ({mem / s['input_bytes']:.2f}x input)" if mem is not None else ""
            lines.append(
                f"| {s['rows']:,} | {e} | {_fmt_s(d['median'])} | {_fmt_s(d['min'])} | "
                f"{d['median'] / floor_med:.2f}x | {d['median'] / s['rows'] * 1e9:.1f} | {faster} | {mem_text} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bars",
        description="fspec vs idiomatic pandas and polars on synthetic trades -> 30-second bars.",
        epilog="example: python -m benchmarks.bars --rows 1M 10M --repeat 5 --profile --e2e",
    )
    parser.add_argument("--rows", type=rows, nargs="+", default=[10_000_000], help="total rows (e.g. 1M 10M 30M)")
    parser.add_argument("--instruments", type=int, default=5, help="instruments (rows are split evenly)")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument("--interval", type=int, default=30, help="bar width in seconds")
    parser.add_argument("--seed", type=int, default=20240305, help="workload seed")
    parser.add_argument(
        "--engines", default=",".join(ENGINES), help="comma list of fspec, polars-tuned, polars, pandas"
    )
    parser.add_argument("--profile", action="store_true", help="break fspec's compute time down")
    parser.add_argument("--e2e", action="store_true", help="also time parquet on disk -> features parquet")
    parser.add_argument("--e2e-repeat", type=int, default=3, help="rounds of the end-to-end timing")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--workdir", type=Path, help="folder for the generated projects (default: a temp dir)")
    parser.add_argument("--memory-child", choices=ENGINES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - set(ENGINES)
    if unknown or not engines:
        parser.error(f"--engines: unknown {', '.join(sorted(unknown)) or '(none given)'}")
    if args.instruments < 2:
        parser.error("--instruments: at least 2 (the correlation feature uses s0 and s1)")
    if args.memory_child:
        root = args.workdir or Path(tempfile.mkdtemp(prefix="fspec-bench-mem-"))
        out = memory_child(args.memory_child, args.rows[0], args.instruments, args.seed, args.interval, root)
        bench_project.clean(root)
        print(json.dumps(out))
        return 0
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fspec-bench-"))
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s); instruments {instrument_names(args.instruments)}; "
        f"engines {engines}; {args.interval}s bars; seed {args.seed}"
    )
    _versions()
    summaries = [run_size(args, rows, workdir, engines) for rows in args.rows]
    print("\n" + markdown_table(summaries, engines))
    if args.json:
        args.json.write_text(json.dumps(summaries, indent=1), encoding="utf-8")
    if not args.workdir:
        bench_project.clean(workdir)
    return 0


def _versions() -> None:
    import numba
    import pandas

    from fspec import __version__

    found = [f"fspec {__version__}", f"numpy {np.__version__}", f"numba {numba.__version__}"]
    found.append(f"pandas {pandas.__version__}")
    try:
        import polars

        found.append(f"polars {polars.__version__} ({polars.thread_pool_size()} threads)")
    except ImportError:
        found.append("polars not installed")
    print("versions: " + ", ".join(found))


if __name__ == "__main__":
    sys.exit(main())
