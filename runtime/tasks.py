"""One day of a run as a pure task: everything a worker process needs to compute and write a day on its own.

A task loads the build from the project folder (a shared filesystem: the manifest, the kernel files and
numba's on-disk cache that ``fspec compile`` wrote; a worker compiles nothing), makes a fresh
:class:`~fspec.runtime.run.Engine` and computes every interval of its day. The engine reads the day's files
and, for rolling windows that reach into earlier sessions, the files of as many earlier sessions as the
static ``left`` windows need (``Engine.warmup_sessions``): its halo. The day's files are written by
``write_day`` (temp files renamed into place, all of the day's together), so a task killed half-way leaves no
output file, only a temp file that the run removes. Nothing here imports an engine's scheduler.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from fspec import __version__
from fspec.errors import BuildError, ClusterError
from fspec.manifest import Key
from fspec.runtime.events import GridCounts
from fspec.runtime.manifest import Manifest, load_manifest
from fspec.runtime.run import Engine, compute_day
from fspec.runtime.sources import DataWarning, arrow_allocator
from fspec.runtime.universe import with_members
from fspec.runtime.write import write_day

# A worker started with several threads runs fspec's tasks one at a time: the engine spreads its kernel calls
# over every core itself (FSPEC_THREADS), and warnings and Arrow's allocator are the process's, not a thread's.
_one_at_a_time = threading.Lock()
_builds: dict[tuple[str, str], Manifest] = {}  # (project root, spec hash) -> the build, checked once per process


@dataclass(frozen=True)
class DayTask:
    """What the client sends for one day: small, plain data (the build itself is read from the shared folder)."""

    root: str  # the project folder, an absolute path that the workers see too
    day: str
    intervals: tuple[int, ...]
    at: dict[int, list[Key]]  # each interval's columns, without their dependencies
    out_dir: str  # absolute
    members: dict[str, list[str]]  # each universe's symbols, found once by the client
    spec_hash: str  # of the build the client checked
    fspec_version: str  # the client's
    grids: tuple[str, ...] = ()  # the event grids it writes


@dataclass(frozen=True)
class DayOutcome:
    day: str
    written: list[str]  # in the order of the task's intervals
    warnings: list[str]  # the data warnings of the day's computation, as text (the client shows each once)
    grids: dict[str, GridCounts] = field(default_factory=dict)  # what each event grid counted (the client adds them)


def check_version(client_version: str, where: str = "this worker") -> None:
    if client_version != __version__:
        raise ClusterError(
            f"{where} runs fspec {__version__}, the client fspec {client_version}: refused",
            "install the same fspec version on every worker and on the client",
        )


def worker_build(root: Path, spec_hash: str) -> Manifest:
    """The build as this process sees it in the shared folder, checked as ``fspec run`` checks it (fresh, kernel
    hashes), and the very build the client checked."""
    key = (str(root), spec_hash)
    if key not in _builds:
        manifest = load_manifest(root)
        if manifest.data.spec_hash != spec_hash:
            raise BuildError(
                f"the build a worker reads at {root} is not the one the client checked (its spec hash differs)",
                "run 'fspec compile' once, then 'fspec run' without compiling while it runs; workers must see "
                "the client's project folder at the same path",
            )
        _builds.clear()  # one build per process at a time
        _builds[key] = manifest
    return _builds[key]


def run_day(task: DayTask) -> DayOutcome:
    """Compute and write one day (every interval). Raises what the local engine raises, with the same message."""
    check_version(task.fspec_version)
    with _one_at_a_time:
        manifest = with_members(worker_build(Path(task.root), task.spec_hash), task.members)
        with warnings.catch_warnings(record=True) as caught, arrow_allocator():
            warnings.simplefilter("always")
            engine = Engine(manifest, days=(task.day,))  # (of a file of many days, the row groups of its sessions)
            results = compute_day(engine, task.day, list(task.intervals), task.at, list(task.grids))
            written = write_day(manifest, results, task.at, Path(task.out_dir))
    shown = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    counts = {g: engine.runners[g].counts for g in task.grids}
    return DayOutcome(task.day, [str(p) for p in written], shown, counts)
