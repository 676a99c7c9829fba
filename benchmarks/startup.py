"""Compile cost and warm start of the shipped specs, measured from outside the process.

    python -m benchmarks.startup --repeat 5

In a temporary copy of the repository's specs/ and data/:

- cold compile: ``fspec compile`` with no build/ (so no kernel files and no numba cache for them), timed from
  before the process is started to its exit. Also "fully cold": the same with NUMBA_CACHE_DIR pointing at an
  empty folder, so no numba cache of any fspec module (scalar helpers, bar operators) is found either.
- warm compile: ``fspec compile`` again, with build/ and its cache in place.
- warm start of ``fspec run``, the first run right after that compile (which leaves numba's cache holding
  everything the run calls): a child process runs the real CLI (``fspec.cli.main(["run", ...])``) with the
  runtime's kernel calls (``fspec.runtime.calls``) wrapped so that the wall-clock instant of the first kernel
  call's entry and return is written to a file; the parent takes the instant before it starts the child.
  Start -> first kernel call entry is the time to "start computing"; the first call also loads the kernel's
  machine code from numba's cache (the return instant shows that cost). The wrapping costs microseconds.
- ``fspec compile --aot`` after that (the ahead-of-time library: docs/architecture.md, "Ahead of time"), timed
  the same way, and the same run from the library ("run --aot"), which must not import numba.
- ``--runs-only``: none of the compiles timed; one copy compiled with numba and one with ``--aot``, then
  ``--repeat`` rounds of the marked run of each, in alternating order (the start-up alone, over more rounds).
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

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
import fspec.runtime.calls as calls
marks = {}
def first_call(entry):
    # The run's kernel calls go through fspec.runtime.calls; warm-up calls elsewhere are not marked.
    def call(*args, **kwargs):
        marks.setdefault("entry", time.time())
        try:
            return entry(*args, **kwargs)
        finally:
            marks.setdefault("return", time.time())
    return call
calls.reduce_session = first_call(calls.reduce_session)
calls.reduce_entities = first_call(calls.reduce_entities)
from fspec.cli import main
try:
    main(sys.argv[2:], standalone_mode=False)
finally:
    marks["exit"] = time.time()
    marks["numba"] = "numba" in sys.modules
    with open(sys.argv[1], "w") as fh:
        json.dump(marks, fh)
"""


def copy_project(dest: Path) -> Path:
    shutil.copytree(REPO / "specs", dest / "specs")
    shutil.copytree(REPO / "data", dest / "data")
    return dest


def timed(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> float:
    started = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    elapsed = time.time() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def fspec_cmd(*args: str) -> list[str]:
    """The installed ``fspec`` command (what a user runs), else the same entry point through python -c."""
    exe = shutil.which("fspec")
    return [exe, *args] if exe else [sys.executable, "-c", "from fspec.cli import main; main()", *args]


def measure(repeat: int, workdir: Path) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {
        k: [] for k in ("cold compile", "fully cold compile", "warm compile", "run: start -> first kernel call")
    }
    results["run: first kernel call returns"] = []
    results["run: CLI command returns"] = []
    results["fspec run (unwrapped), process exit"] = []
    results["aot compile (library)"] = []
    results["run --aot: start -> first kernel call"] = []
    results["run --aot: first kernel call returns"] = []
    results["fspec run --aot (unwrapped), process exit"] = []
    for r in range(repeat):
        root = copy_project(workdir / f"p{r}")
        project = ["--project", str(root)]
        numba_dir = workdir / f"numba{r}"
        numba_dir.mkdir()
        cold_env = dict(os.environ, NUMBA_CACHE_DIR=str(numba_dir))
        results["fully cold compile"].append(timed(fspec_cmd("compile", *project), env=cold_env))
        shutil.rmtree(root / "build")
        results["cold compile"].append(timed(fspec_cmd("compile", *project)))
        results["warm compile"].append(timed(fspec_cmd("compile", *project)))
        marks_file = workdir / f"marks{r}.json"
        started = time.time()
        timed([sys.executable, "-c", CHILD, str(marks_file), "run", *project])
        marks = json.loads(marks_file.read_text())
        if "entry" not in marks:
            raise RuntimeError("the run made no kernel call through fspec.runtime.calls: the wrapping is stale")
        results["run: start -> first kernel call"].append(marks["entry"] - started)
        results["run: first kernel call returns"].append(marks["return"] - started)
        results["run: CLI command returns"].append(marks["exit"] - started)
        results["fspec run (unwrapped), process exit"].append(timed(fspec_cmd("run", *project)))
        results["aot compile (library)"].append(timed(fspec_cmd("compile", "--aot", *project)))
        started = time.time()
        timed([sys.executable, "-c", CHILD, str(marks_file), "run", *project])
        marks = json.loads(marks_file.read_text())
        if marks.get("numba", True):
            raise RuntimeError("the run from the library imported numba")
        results["run --aot: start -> first kernel call"].append(marks["entry"] - started)
        results["run --aot: first kernel call returns"].append(marks["return"] - started)
        results["fspec run --aot (unwrapped), process exit"].append(timed(fspec_cmd("run", *project)))
        shutil.rmtree(root)
    return results


def first_call(root: Path, marks_file: Path, library: bool = False) -> float:
    """Seconds from before the process starts to the run's first kernel call (the marked child); ``library``: the
    build has an --aot library, and the run must not have imported numba."""
    started = time.time()
    timed([sys.executable, "-c", CHILD, str(marks_file), "run", "--project", str(root), "--out", str(root / "o")])
    marks = json.loads(marks_file.read_text())
    if "entry" not in marks:
        raise RuntimeError("the run made no kernel call through fspec.runtime.calls: the wrapping is stale")
    if library and marks.get("numba", True):
        raise RuntimeError("the run from the library imported numba")
    return marks["entry"] - started


def measure_runs(rounds: int, workdir: Path) -> dict[str, list[float]]:
    """Only the runs' start: one copy compiled with numba, one with --aot, then ``rounds`` rounds of one run of
    each, in alternating order."""
    roots = {"JIT": copy_project(workdir / "jit"), "--aot": copy_project(workdir / "aot")}
    timed(fspec_cmd("compile", "--project", str(roots["JIT"])))
    timed(fspec_cmd("compile", "--aot", "--project", str(roots["--aot"])))
    results: dict[str, list[float]] = {f"run ({k}): start -> first kernel call": [] for k in roots}
    for r in range(rounds):
        order = list(roots) if r % 2 == 0 else list(reversed(roots))
        for name in order:
            seconds = first_call(roots[name], workdir / "m.json", library=name == "--aot")
            results[f"run ({name}): start -> first kernel call"].append(seconds)
        line = ", ".join(f"{k} {results[f'run ({k}): start -> first kernel call'][-1]:.3f} s" for k in roots)
        print(f"  round {r + 1} (load {os.getloadavg()[0]:.2f}): {line}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--runs-only", action="store_true", help="time only the runs' start (JIT and --aot builds, alternating)"
    )
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="fspec-startup-"))
    try:
        results = measure_runs(args.repeat, workdir) if args.runs_only else measure(args.repeat, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"shipped specs ({REPO / 'specs'}), {args.repeat} rounds, seconds from process start:")
    print(f"  {'':40} {'median':>8} {'min':>8} {'max':>8}")
    for name, values in results.items():
        print(f"  {name:40} {statistics.median(values):8.2f} {min(values):8.2f} {max(values):8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
