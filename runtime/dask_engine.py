"""The dask engine: tasks per day, or per (day, entity group), on a dask cluster (``fspec run --engine dask``).

Without ``--scheduler`` a ``LocalCluster`` of ``--workers`` processes (default: one per core) is started for the
run and closed after it; with an address the run uses that cluster and leaves it running. The client makes the
local run's checks first (``plan_run``: dates with data, ``--select`` guard, leftovers), checks every worker's
fspec version, then submits one :func:`~fspec.runtime.tasks.run_day` per day, or per day one
:func:`~fspec.runtime.tasks.compute_group` per entity group (runtime/groups.py) and a
:func:`~fspec.runtime.tasks.write_groups` reading their columns, and follows the futures. A task that fails on
bad data fails the run with the local engine's message; a worker lost mid-task (killed, out of memory) makes the
scheduler run its task again elsewhere, and the temp file it left is removed.

This module imports ``distributed``: only ``--engine dask`` imports it (see runtime/engines.py).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

from distributed import Client, Future, LocalCluster, as_completed
from distributed.scheduler import KilledWorker

from fspec import __version__
from fspec.errors import ClusterError, FspecError
from fspec.files import display
from fspec.paths import has_glob
from fspec.runtime.groups import EntityGroup, auto_group_size, entity_groups
from fspec.runtime.manifest import Manifest
from fspec.runtime.run import RunOptions, RunPlan, absent_text, plan_run, tell_grids
from fspec.runtime.sources import DataWarning, source_path
from fspec.runtime.tasks import (
    DayOutcome,
    DayTask,
    GroupDayOutcome,
    GroupTask,
    WriteTask,
    check_day,
    compute_group,
    run_days,
    write_groups,
)
from fspec.runtime.universe import universe_symbols
from fspec.runtime.write import remove_leftovers

CONNECT_SECONDS = 5  # reaching a scheduler given by --scheduler
WORKERS_SECONDS = 30  # a reached cluster's workers (--workers N of them, at least one)


def run(manifest: Manifest, options: RunOptions) -> list[Path]:
    """Compute and write every requested (date, interval) on a dask cluster: a task per day, or per (day, entity
    group) and a write step per day."""
    plan = plan_run(manifest, options)
    members = universe_symbols(manifest)  # found once: every day of the run has the same members
    outcomes: dict[str, DayOutcome | GroupDayOutcome] = {}
    try:
        with _client(options) as client:
            _check_versions(client)
            workers = max(options.workers or 0, len(client.scheduler_info()["workers"]), 1)
            groups = _groups(plan, options.group_size, workers)
            sent = _Sent(client, plan, members)
            if len(groups) <= 1:  # one group (or only event grids): whole days, one or more a task
                sent.whole_days(options.days_per_task or auto_days_per_task(len(plan.dates), workers))
            else:
                sent.groups(groups)
            if options.on_note:
                options.on_note(f"dask: {sent.summary(groups)}")
            done: Iterator[object] = as_completed(list(sent.day_of), loop=client.loop)
            if options.on_progress:
                done = iter(options.on_progress(done, len(sent.day_of)))
            for future in done:
                if future.status == "error":  # type: ignore[attr-defined]
                    raise sent.earliest_error(sent.day_of[future])  # type: ignore[index]
                if future in sent.writes:
                    found = future.result()  # type: ignore[attr-defined]
                    for outcome in found if isinstance(found, list) else [found]:
                        outcomes[outcome.day] = outcome
                        sent.forget(outcome.day)  # its groups' columns are written: let the workers drop them
    except KilledWorker as exc:
        raise ClusterError(
            f"a day's task was lost with every worker that ran it ({exc})",
            "a worker dies on that day: check the workers' logs and memory (FSPEC_MEMORY bounds a run's caches)",
        ) from None
    finally:
        for path in remove_leftovers(plan.out_dir):  # the temp file of a task whose worker was lost
            shown = display(path, plan.manifest.root)
            warnings.warn(f"removed {shown}, left by a worker that was lost", DataWarning, stacklevel=2)
    told = _Told()
    written: list[Path] = []
    for day in plan.dates:  # in date order, as the local engine gives them; each warning once
        told.tell(outcomes[day])
        written += [plan.out_dir / Path(p).name for p in outcomes[day].written]
        for name, counts in outcomes[day].grids.items():
            plan.engine.runners[name].counts.add(counts)
    tell_grids(plan.engine, plan.grids, options)
    return written


def _groups(plan: RunPlan, size: int | None, workers: int) -> list[EntityGroup]:
    """The run's entity groups: as many as groups of ``size`` instruments make (``--group-size``; else sized from
    the workers and days), of about equal input bytes."""
    if size is None:
        instruments = sum(len(g.instruments) for g in entity_groups(plan.manifest, plan.at, 1 << 30))
        size = auto_group_size(instruments, len(plan.dates), workers)
        if size >= instruments:
            return entity_groups(plan.manifest, plan.at, size)  # whole days: no files to weigh
    return entity_groups(plan.manifest, plan.at, size, input_bytes(plan))


SAMPLED_DAYS = 16  # the days whose files weigh the instruments (evenly spread over the run's)


def input_bytes(plan: RunPlan) -> dict[str, float]:
    """Each instrument's bytes of input over some of the run's days (``SAMPLED_DAYS``): the size of its own files,
    and of a file that holds many symbols an equal share among the instruments that read it (its rows per symbol
    are not known without reading it). What a group task reads, and roughly what it computes."""
    engine = plan.engine
    days = plan.dates[:: max(1, len(plan.dates) // SAMPLED_DAYS)][:SAMPLED_DAYS]
    readers: dict[Path, list[str]] = {}
    for name, inst in engine.project.instruments.items():
        for source in inst.sources:
            concrete = engine.project.source_of(name, source)
            for day in [""] if concrete.holds_many_days else days:
                path = source_path(plan.manifest.root, concrete, inst.symbol, day)
                readers.setdefault(path, []).append(name)
    found = dict.fromkeys(engine.project.instruments, 0.0)
    for path, names in readers.items():
        size = _file_bytes(path)
        for name in names:
            found[name] += size / len(names)
    return found


def _file_bytes(path: Path) -> int:
    """The bytes of a file, of the part files a pattern matches, or 0 where there is none."""
    files = sorted(path.parent.glob(path.name)) if has_glob(path.name) else [path]
    return sum(f.stat().st_size for f in files if f.is_file())


def auto_days_per_task(days: int, workers: int) -> int:
    """Consecutive days per task of whole days when ``--days-per-task`` is not given: as many as leave every
    worker two tasks (a task's later days take their warm-up from the earlier days' slots, not their files)."""
    return max(1, days // (2 * workers))


class _Sent:
    """The run's tasks on the cluster: each future's day, the write steps (whose outcomes are the days'), and
    each day's futures whose results a write step reads."""

    def __init__(self, client: Client, plan: RunPlan, members: dict[str, list[str]]) -> None:
        self.client, self.plan, self.members = client, plan, members
        self.root = str(plan.manifest.root.resolve())
        self.out_dir = str(plan.out_dir.resolve())
        self.day_of: dict[Future, str] = {}
        self.writes: set[Future] = set()
        self.parts: dict[str, list[Future]] = {}
        self.per_task = 1  # days per task of whole days

    def _key(self, kind: str, day: str) -> str:
        return f"fspec-{kind}-{day}-{os.urandom(4).hex()}"

    def day_task(self, day: str, then: tuple[str, ...] = ()) -> DayTask:
        p = self.plan
        common = (self.members, p.manifest.data.spec_hash, __version__)
        return DayTask(self.root, day, tuple(p.intervals), p.at, self.out_dir, *common, tuple(p.grids), then)

    def whole_days(self, per_task: int) -> None:
        """Tasks of ``per_task`` consecutive days of the run: each computes every instrument and writes its days'
        files itself. Its future stands for its first day: a task's days come after an earlier task's, so the
        earliest failing task holds the earliest failing day, and it stops at that day as the local engine does."""
        dates = self.plan.dates
        self.per_task = per_task
        for k in range(0, len(dates), per_task):
            days = dates[k : k + per_task]
            task = self.day_task(days[0], tuple(days[1:]))
            future = self.client.submit(run_days, task, key=self._key("day", days[0]), pure=False)
            self.day_of[future] = days[0]
            self.writes.add(future)

    def groups(self, groups: list[EntityGroup]) -> None:
        """Per day, a task per entity group (and one for the event grids), then a write step reading their
        columns. Submitted day by day: the scheduler runs a day's write before the later days' groups."""
        p, engine = self.plan, self.plan.engine
        common = (self.members, p.manifest.data.spec_hash, __version__)
        for day in p.dates:
            parts: list[Future] = []
            if any(day in engine.instrument_dates(i) for i in p.manifest.project.instruments):  # a day of bars
                sessions = {i: tuple(engine.sessions_of(day, i, engine.needs(p.at[i]))) for i in p.intervals}
                for g, group in enumerate(groups):
                    task = GroupTask(
                        self.root,
                        day,
                        g,
                        tuple(p.intervals),
                        group.at,
                        {i: sessions[i] for i in group.at},
                        group.instruments,
                        *common,
                    )
                    parts.append(self.client.submit(compute_group, task, key=self._key(f"group{g}", day), pure=False))
            if p.grids:
                task = GroupTask(self.root, day, len(groups), tuple(p.intervals), {}, {}, None, *common, tuple(p.grids))
                parts.append(self.client.submit(compute_group, task, key=self._key("grids", day), pure=False))
            write = WriteTask(self.root, day, tuple(p.intervals), p.at, self.out_dir, *common)
            future = self.client.submit(write_groups, write, *parts, key=self._key("write", day), pure=False)
            self.day_of.update({f: day for f in [*parts, future]})
            self.writes.add(future)
            self.parts[day] = parts

    def summary(self, groups: list[EntityGroup]) -> str:
        days = len(self.plan.dates)
        if len(groups) <= 1:
            return (
                f"{len(self.day_of)} task(s) of up to {self.per_task} day(s)"
                if self.per_task > 1
                else (f"{days} task(s), one per day")
            )
        sizes = sorted({len(g.instruments) for g in groups})
        shown = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"
        return (
            f"{len(self.day_of)} task(s): {days} day(s) x {len(groups)} group(s) of {shown} instrument(s)"
            f"{' and the event grids' if self.plan.grids else ''}, and a write step per day"
        )

    def forget(self, day: str) -> None:
        for future in self.parts.pop(day, []):
            del self.day_of[future]

    def earliest_error(self, day: str) -> BaseException:
        """After a task of ``day`` failed: the later days' tasks are cancelled, the earlier days' finish, and the
        error is the earliest failing day's, the one the local engine (in date order) reports. Where two groups
        of that day failed differently, the day is computed whole once more (nothing written) for its error."""
        later = [f for f, d in self.day_of.items() if d > day and not f.done()]
        self.client.cancel(later)
        for earlier in [f for f, d in self.day_of.items() if d <= day]:  # the day's other groups too
            earlier.exception()  # until it is done (its own error or none)
        failed = {f: d for f, d in self.day_of.items() if d <= day and f.status == "error"}
        first = min(failed.values())
        of_first = [f for f, d in failed.items() if d == first]
        # A write step fails with its groups' error, or with its own when they all passed.
        chosen = [f.exception() for f in ([f for f in of_first if f not in self.writes] or of_first)]
        if len({_shown(e) for e in chosen}) == 1:
            return chosen[0]
        probe = self.client.submit(check_day, self.day_task(first), key=self._key("check", first), pure=False)
        return probe.exception() or chosen[0]


def _shown(error: BaseException) -> str:
    return f"{type(error).__name__}: {error.render() if isinstance(error, FspecError) else error}"


class _Told:
    """The days' warnings told as the local engine tells them: each text once, in date order; an instrument's
    absence on a day once, the absences of a day's groups worded together (``absent_text``)."""

    def __init__(self) -> None:
        self.texts: set[str] = set()
        self.absent: set[tuple[str, str, str]] = set()

    def tell(self, outcome: DayOutcome | GroupDayOutcome) -> None:
        if isinstance(outcome, DayOutcome):
            self._texts(outcome.warnings)
            return
        for step in sorted({s for s, _ in outcome.warnings} | {a[0] for a in outcome.absent}):
            self._texts([text for s, text in outcome.warnings if s == step])
            new: dict[tuple[str, str], list[str]] = {}
            for _, day, source, instrument in (a for a in outcome.absent if a[0] == step):
                if (day, source, instrument) not in self.absent:
                    self.absent.add((day, source, instrument))
                    new.setdefault((day, source), []).append(instrument)
            for (day, source), names in sorted(new.items()):
                warnings.warn(absent_text(day, source, names), DataWarning, stacklevel=3)

    def _texts(self, texts: list[str]) -> None:
        for text in texts:
            if text not in self.texts:
                self.texts.add(text)
                warnings.warn(text, DataWarning, stacklevel=3)


@contextlib.contextmanager
def _client(options: RunOptions) -> Iterator[Client]:
    """A client of the given scheduler, or of a LocalCluster started (and closed) here."""
    note = options.on_note or (lambda text: None)
    if options.scheduler:
        try:
            client = Client(options.scheduler, timeout=CONNECT_SECONDS, set_as_default=False)
        except Exception as exc:  # refused, timed out, a malformed address, or not a dask scheduler answering
            raise ClusterError(
                f"--scheduler {options.scheduler}: cannot connect to a dask scheduler there "
                f"({type(exc).__name__}: {exc}; waited at most {CONNECT_SECONDS} s)",
                "start one ('dask scheduler', then 'dask worker ADDRESS' on each machine) and pass its address "
                "like tcp://host:8786, or leave out --scheduler to start a local cluster",
            ) from None
        with client:
            _wait_for_workers(client, options.workers or 1, options.scheduler)
            note(f"dask: {len(client.scheduler_info()['workers'])} worker(s) at {options.scheduler}")
            note(f"dashboard: {_dashboard(client)}")
            yield client
        return
    workers = options.workers or os.cpu_count() or 1
    # Each worker's engine spreads kernel calls over threads: share the cores out, unless FSPEC_THREADS says.
    env = {"FSPEC_THREADS": os.environ.get("FSPEC_THREADS") or str(max(1, (os.cpu_count() or 1) // workers))}
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        env=env,
        silence_logs=40,
    )
    with cluster, Client(cluster, set_as_default=False) as client:
        note(f"dask: a local cluster of {workers} worker process(es)")
        note(f"dashboard: {_dashboard(client)}")
        yield client


def _wait_for_workers(client: Client, n: int, address: str) -> None:
    try:
        client.wait_for_workers(n, timeout=WORKERS_SECONDS)
    except TimeoutError:
        have = len(client.scheduler_info()["workers"])
        raise ClusterError(
            f"--scheduler {address}: {have} worker(s) after {WORKERS_SECONDS} s, the run needs {n}",
            "start workers with 'dask worker ADDRESS' (or ask for fewer with --workers)",
        ) from None


def _dashboard(client: Client) -> str:
    try:
        import bokeh  # noqa: F401  (the dashboard needs it)
    except ImportError:
        return "not available (pip install bokeh)"
    return str(client.dashboard_link)


def _check_versions(client: Client) -> None:
    """Refuse a cluster whose workers run another fspec version than this client (each task checks it too)."""
    versions = client.get_versions(packages=["fspec"])
    for address, info in sorted(versions.get("workers", {}).items()):
        found = info.get("packages", {}).get("fspec")
        if found is None:
            raise ClusterError(
                f"worker {address} has no fspec installed (the client runs fspec {__version__}): refused",
                "install the same fspec version on every worker and on the client",
            )
        if found != __version__:
            raise ClusterError(
                f"worker {address} runs fspec {found}, the client fspec {__version__}: refused",
                "install the same fspec version on every worker and on the client",
            )
