"""How validate's work grows with the number of instruments, measured as a user runs it.

    python -m benchmarks.compile_time --instruments 5 500 --repeat 5

For each count, the benchmark's project (``benchmarks/specs/features.yaml`` over that many instruments, no
data) is written once; every round then runs ``fspec validate`` in a fresh process for each count, in a
rotating order. Reported per count: the median and range of the process's own time inside ``check()`` (read
the specs, validate them, resolve, order, lower: everything ``compile`` does before writing kernels) and of
the wall time of the whole process, plus the size of the manifest's features (each members list is written
once) from one ``fspec compile``. The load average is printed with every round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import project as bench_project
from benchmarks.workload import instrument_names

CHILD = r"""
import json, sys, time
from pathlib import Path
from fspec.compiler.build import check
started = time.perf_counter()
checked = check(Path(sys.argv[1]))
assert checked.plan is not None, [d.render() for d in checked.diagnostics]
print(json.dumps({"check": time.perf_counter() - started}))
"""


def _check_once(root: Path) -> tuple[float, float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, str(root)], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"check failed in {root}:\n{done.stdout}{done.stderr}")
    return json.loads(done.stdout)["check"], wall


def _features_bytes(root: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-m", "fspec.cli", "compile", "--project", str(root)], capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"fspec compile failed in {root}:\n{done.stdout}{done.stderr}")
    manifest = json.loads((root / "build" / "manifest.json").read_text())
    return len(json.dumps(manifest["features"])) + len(json.dumps(manifest["member_sets"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instruments", type=int, nargs="+", default=[5, 500])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fspec-compile-time-") as tmp:
        roots = {n: bench_project.write_project(Path(tmp) / f"i{n}", instrument_names(n)) for n in args.instruments}
        sizes = {n: _features_bytes(root) for n, root in roots.items()}
        times: dict[int, list[tuple[float, float]]] = {n: [] for n in args.instruments}
        for r in range(args.repeat):
            order = args.instruments[r % len(args.instruments) :] + args.instruments[: r % len(args.instruments)]
            for n in order:
                times[n].append(_check_once(roots[n]))
            print(f"round {r + 1}: load {os.getloadavg()[0]:.2f}", flush=True)
    print("| instruments | check() median | range | process wall median | manifest features + member_sets |")
    print("|---:|---:|---:|---:|---:|")
    for n in args.instruments:
        checks = [c for c, _ in times[n]]
        walls = [w for _, w in times[n]]
        print(
            f"| {n} | {statistics.median(checks):.3f} s | {min(checks):.3f}-{max(checks):.3f} s "
            f"| {statistics.median(walls):.2f} s | {sizes[n]:,} B |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
