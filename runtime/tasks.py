"""A run's days as pure tasks: everything a worker process needs to compute (and write) a day on its own.

A task loads the build from the project folder (a shared filesystem: the manifest, the kernel files and
numba's on-disk cache that ``fspec compile`` wrote; a worker compiles nothing) and makes a fresh
:class:`~fspec.runtime.run.Engine`. The engine reads the day's files and, for rolling windows that reach into
earlier sessions, the files of as many earlier sessions as the static ``left`` windows need (its halo).

* :func:`run_day`: a whole day, every instrument and interval, written by the task itself.
* :func:`compute_group`: one entity group of a day (runtime/groups.py): only its instruments' files, of the day
  and of the halo sessions the client found for the whole day; it returns its columns and writes nothing.
* :func:`write_groups`: a day's groups assembled into the day's files, the same bytes as a whole day's.

Files are written by ``write_day`` (temp files renamed into place, all of the day's together), so a task killed
half-way leaves no output file, only a temp file that the run removes. Nothing here imports an engine's
scheduler.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from fspec import __version__
from fspec.errors import BuildError, ClusterError
from fspec.manifest import Key
from fspec.runtime.events import EventDayResult, GridCounts
from fspec.runtime.manifest import Manifest, load_manifest
from fspec.runtime.run import Engine, compute_day
from fspec.runtime.sources import DataWarning, arrow_allocator
from fspec.runtime.universe import with_members
from fspec.runtime.write import BarLayout, DayResult, write_day

# A worker started with several threads runs fspec's tasks one at a time: the engine spreads its kernel calls
# over every core itself (FSPEC_THREADS), and warnings and Arrow's allocator are the process's, not a thread's.
_one_at_a_time = threading.Lock()
_builds: dict[tuple[str, str], Manifest] = {}  # (project root, spec hash) -> the build, checked once per process
_with_members: dict[tuple[object, ...], Manifest] = {}  # ... with a run's universe members
_layouts_of: dict[tuple[object, ...], dict[int, BarLayout]] = {}  # a run's file layouts by interval


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
    # the days after ``day`` the same task computes, in order: their warm-up comes from the earlier days' slots,
    # as in the local engine, instead of from their files again
    then: tuple[str, ...] = ()


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
        from fspec.runtime.aot import use_library

        use_library(manifest)  # a library of fspec compile --aot, if valid here and numba is not loaded yet
    return _builds[key]


def run_day(task: DayTask) -> DayOutcome:
    """Compute and write one day (every interval). Raises what the local engine raises, with the same message."""
    return run_days(replace(task, then=()))[0]


def run_days(task: DayTask) -> list[DayOutcome]:
    """Compute and write ``task.day`` and the days after it (``task.then``) in order with one engine, each day's
    files written (whole) before the next day is computed: the first day's halo is read from files, the later
    days' from the slots the earlier days left, as the local engine does. Raises what the local engine raises."""
    check_version(task.fspec_version)
    outcomes: list[DayOutcome] = []
    with _one_at_a_time:
        manifest = _manifest(task.root, task.spec_hash, task.members)
        engine = Engine(manifest, days=(task.day, *task.then))  # (of a file of many days, its sessions' row groups)
        with arrow_allocator():
            for day in (task.day, *task.then):
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    results = compute_day(engine, day, list(task.intervals), task.at, list(task.grids))
                    written = write_day(manifest, results, task.at, Path(task.out_dir), _layouts(task))
                engine.forget_rows(day)  # the next days read its slots, not its rows
                shown = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
                outcomes.append(DayOutcome(day, [str(p) for p in written], shown))
    # the event grids' counts of every day, told once: with the last day
    counts = {g: engine.runners[g].counts for g in task.grids}
    outcomes[-1] = replace(outcomes[-1], grids=counts)
    return outcomes


def check_day(task: DayTask) -> None:
    """Compute one whole day and write nothing: raises the error the local engine raises for it (the client asks
    when two groups of a day failed with different errors, to report the one a whole day's run reports)."""
    check_version(task.fspec_version)
    with _one_at_a_time:
        manifest = _manifest(task.root, task.spec_hash, task.members)
        with warnings.catch_warnings(), arrow_allocator():
            warnings.simplefilter("ignore")
            compute_day(Engine(manifest, days=(task.day,)), task.day, list(task.intervals), task.at, list(task.grids))


@dataclass(frozen=True)
class GroupTask:
    """One entity group of one day: its columns, and the sessions each interval reads (the whole day's halo)."""

    root: str
    day: str
    group: int  # its place among the day's parts (their warnings are told in this order)
    intervals: tuple[int, ...]  # the run's, in its order
    at: dict[int, list[Key]]  # the group's columns at each interval it writes at
    sessions: dict[int, tuple[str, ...]]  # each interval's halo sessions, then the day: those of the whole day
    instruments: tuple[str, ...] | None  # whose rows it reads of files of many symbols (None: every instrument's)
    members: dict[str, list[str]]
    spec_hash: str
    fspec_version: str
    grids: tuple[str, ...] = ()  # the event grids it computes (a day's part of grids reads no bar group)


@dataclass(frozen=True)
class GroupOutcome:
    """A group's computed day, for the day's write step; what it warned, by step (an interval's place in the
    run's intervals; the event grids after them)."""

    day: str
    group: int
    results: list[DayResult | EventDayResult]
    warnings: list[tuple[int, str]]
    absent: list[tuple[int, str, str, str]]  # (step, day, source or "", instrument): told by the client, merged
    grids: dict[str, GridCounts] = field(default_factory=dict)


@dataclass(frozen=True)
class WriteTask:
    """A day's write step: every column of the day (the order of the files), where they go."""

    root: str
    day: str
    intervals: tuple[int, ...]
    at: dict[int, list[Key]]
    out_dir: str
    members: dict[str, list[str]]
    spec_hash: str
    fspec_version: str


@dataclass(frozen=True)
class GroupDayOutcome:
    """A day written from its groups: its files, and its groups' warnings and absences (the client words and
    tells each once)."""

    day: str
    written: list[str]
    warnings: list[tuple[int, str]]
    absent: list[tuple[int, str, str, str]]
    grids: dict[str, GridCounts] = field(default_factory=dict)


def compute_group(task: GroupTask) -> GroupOutcome:
    """Compute one group's columns of one day, reading only its instruments' rows; nothing is written."""
    check_version(task.fspec_version)
    with _one_at_a_time:
        manifest = _manifest(task.root, task.spec_hash, task.members)
        only = None if task.instruments is None else frozenset(task.instruments)
        engine = Engine(manifest, days=(task.day,), only=only, absent_log=[])
        steps: list[tuple[int, Callable[[], DayResult | EventDayResult | None]]] = [
            (task.intervals.index(i), partial(_interval, engine, task, i)) for i in task.at
        ]
        steps += [(len(task.intervals) + k, partial(_grid, engine, task.day, g)) for k, g in enumerate(task.grids)]
        results: list[DayResult | EventDayResult] = []
        told: list[tuple[int, str]] = []
        absent: list[tuple[int, str, str, str]] = []
        with arrow_allocator():
            for place, compute in steps:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    result = compute()
                if result is not None:
                    results.append(result)
                told += [(place, str(w.message)) for w in caught if issubclass(w.category, DataWarning)]
                absent += [(place, *record) for record in engine.absent_log or ()]
                engine.absent_log = []
    counts = {g: engine.runners[g].counts for g in task.grids}
    return GroupOutcome(task.day, task.group, results, told, absent, counts)


def _interval(engine: Engine, task: GroupTask, interval: int) -> DayResult:
    return engine.compute(task.day, interval, engine.needs(task.at[interval]), list(task.sessions[interval]))


def _grid(engine: Engine, day: str, grid: str) -> EventDayResult | None:
    """An event grid's day, as ``compute_day`` computes it: none on a day without its events."""
    if day not in engine.grid_dates(grid):
        return None
    result = engine.runners[grid].compute(day)
    return result if len(result.ts_event) else None


def write_groups(task: WriteTask, *parts: GroupOutcome) -> GroupDayOutcome:
    """Write one day's files from its groups' columns: each interval's file holds every group's, in the run's
    column order, byte-identical to a whole day's (temp files renamed, as :func:`run_day` writes)."""
    check_version(task.fspec_version)
    merged: list[DayResult | EventDayResult] = []
    for interval in task.intervals:
        found = [r for p in parts for r in p.results if isinstance(r, DayResult) and r.interval == interval]
        if found:  # none: a day without bars (events only)
            values = {k: v for r in found for k, v in r.values.items()}
            merged.append(DayResult(task.day, interval, found[0].ts_event, values))
    merged += [r for p in parts for r in p.results if isinstance(r, EventDayResult)]
    with _one_at_a_time:
        manifest = _manifest(task.root, task.spec_hash, task.members)
        written = write_day(manifest, merged, task.at, Path(task.out_dir), _layouts(task))
    counts: dict[str, GridCounts] = {}
    for part in parts:
        for name, grid in part.grids.items():
            counts.setdefault(name, GridCounts()).add(grid)
    told = [w for p in parts for w in p.warnings]
    absent = [a for p in parts for a in p.absent]
    return GroupDayOutcome(task.day, [str(p) for p in written], told, absent, counts)


def _manifest(root: str, spec_hash: str, members: dict[str, list[str]]) -> Manifest:
    """The build with its universes' members, made once per process and run (members: a universe's parameter
    tables are read to make it)."""
    key = (root, spec_hash, tuple((k, tuple(v)) for k, v in sorted(members.items())))
    if key not in _with_members:
        _with_members.clear()
        _with_members[key] = with_members(worker_build(Path(root), spec_hash), members)
    return _with_members[key]


def _layouts(task: DayTask | WriteTask) -> dict[int, BarLayout]:
    """Each interval's file layout (names, schema, metadata parts), built on the run's first day in this process
    and kept for its other days, as the local engine's writer keeps them."""
    key = (task.root, task.spec_hash, tuple((i, tuple(task.at[i])) for i in task.intervals))
    if key not in _layouts_of:
        _layouts_of.clear()
        _layouts_of[key] = {}
    return _layouts_of[key]
