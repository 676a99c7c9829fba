"""The run task: manifest + kernels + data -> one parquet file per date and interval."""

from __future__ import annotations

import bisect
import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from fspec.errors import DataError, UsageError
from fspec.files import display
from fspec.grain import natural_key
from fspec.manifest import ProjectDef, SourceDef, UniverseDef
from fspec.naming import interval_token
from fspec.runtime.cache import BudgetCache
from fspec.runtime.calls import KernelCall, schedule
from fspec.runtime.chain import chain_slots
from fspec.runtime.columns import with_dependencies
from fspec.runtime.evaluate import BarInputs, evaluate
from fspec.runtime.events import EventDayResult, GridRunner
from fspec.runtime.grid import column_of, history_sessions
from fspec.runtime.kernels import PartedKernel, load_tick_kernel, run_all, threads
from fspec.runtime.manifest import Manifest
from fspec.runtime.select import columns_by_interval
from fspec.runtime.sources import (
    DataWarning,
    Span,
    SymbolRows,
    Ticks,
    arrow_allocator,
    attach_asof,
    available_dates,
    dates_by_symbol,
    empty_ticks,
    load_source,
    read_symbols,
    source_exists,
    source_path,
    time_range,
)
from fspec.runtime.universe import with_members
from fspec.runtime.write import (
    DayResult,
    DayWriter,
    output_path,
    refuse_shrinking,
    remove_leftovers,
    write_day,
)
from fspec.session import DAY_NS, NS, Session, bar_starts

Key = tuple[str, str | None]
__all__ = [
    "DayResult",
    "Engine",
    "RunOptions",
    "RunPlan",
    "compute_day",
    "compute_in_memory",
    "plan_run",
    "run",
    "with_dependencies",
    "write_day",
]


@dataclass
class RunOptions:
    dates: list[str] | None = None
    intervals: list[int] | None = None
    select: list[str] | None = None  # selector words (runtime/select.py)
    state: Path | None = None  # the previous build state:modified compares with
    output_dir: Path | None = None
    engine: str = "local"  # "local" (this process) or "dask" (runtime/dask_engine.py); see runtime/engines.py
    scheduler: str | None = None  # dask: a scheduler's address; None starts a LocalCluster for the run
    workers: int | None = None  # dask: worker processes of the LocalCluster (with --scheduler: wait for as many)
    group_size: int | None = None  # dask: instruments per task (None: whole days while they keep workers busy)
    days_per_task: int | None = None  # dask: consecutive whole days per task (None: from the days and workers)
    on_note: Callable[[str], None] | None = None  # where an engine says what it uses (cluster, dashboard)
    on_progress: Callable[[Iterable[Any], int], Iterable[Any]] | None = None


@dataclass
class _Stacked:
    """One source's slots of all its instruments on one day: ``values[row_of[instrument], slot, bar]``."""

    values: np.ndarray
    row_of: dict[str, int]

    def row(self, instrument: str) -> np.ndarray:
        return self.values[self.row_of[instrument]]

    def slot(self, index: int, members: list[str]) -> np.ndarray:
        """Slot ``index`` of ``members`` as (members, bars): a view when they are this source's instruments in
        order, else a gathered copy."""
        rows = [self.row_of[m] for m in members]
        if rows == list(range(len(self.row_of))):
            return self.values[:, index, :]
        return self.values[rows, index, :]


def _stamp_shift(spec: SourceDef) -> int:
    """How much later than its time in the file a row is known (ns): a bar stamped at its start, at its end."""
    return spec.bar_width * NS if spec.bar_width and spec.bar_stamp == "start" else 0


@dataclass(frozen=True)
class _Reads:
    """The instruments, (source, instrument) slot reads and warm-up sessions of a set of columns."""

    instruments: list[str]
    pairs: list[tuple[str, str]]
    history: int


@dataclass
class Engine:
    """Computes features for (date, interval) pairs, caching loaded source data between them."""

    manifest: Manifest
    # the dates a run computes ((): every date): of a parquet file of many days only the row groups that may hold
    # their sessions and the warm-up sessions before them are read
    days: tuple[str, ...] = ()
    cache: BudgetCache[Ticks] = field(default_factory=BudgetCache)  # (source, instrument, day) -> rows
    # (source, instrument, day, interval) -> that session's slots: a later day's warm-up reads them, not the data
    slots: BudgetCache[np.ndarray] = field(default_factory=BudgetCache)
    # (source, instrument, "") -> the rows of a file that holds many days, before session clipping
    files: BudgetCache[Ticks] = field(default_factory=BudgetCache)
    # (source, path symbol, day, or "" and the span read of a file of many days) -> a file of many symbols, read
    # once, its rows grouped by symbol
    shared: BudgetCache[SymbolRows] = field(default_factory=BudgetCache)
    # (day, utc ns): pretend data ends at this instant on that day (used by the lookahead audit)
    cut: tuple[str, int] | None = None
    _dates: dict[str, list[str]] = field(default_factory=dict)
    _listings: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # per path template: symbol -> dates
    _absent: set[tuple[str, str, str]] = field(default_factory=set)  # (instrument, day, source or "" for all)
    # (day, source or "") -> instruments found absent, not yet told
    _absent_now: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    # (source, instrument) -> each session's rows lo:hi in its file of many days
    _slices: dict[tuple[str, str], dict[str, tuple[int, int]]] = field(default_factory=dict)
    _lacking: set[tuple[str, str, str]] = field(default_factory=set)  # (source, instrument, day): not in its file
    _told_files: set[tuple[str, str, str]] = field(default_factory=set)  # (source, path symbol, day) said empty
    _time_ranges: dict[tuple[str, str], tuple[int, int] | None] = field(default_factory=dict)  # files of many days
    _history: int | None = None  # the deepest warm-up of any feature, in sessions
    # parameter values by (instrument, interval), looked up for every feature of every compute
    _params: dict[tuple[str | None, int], dict[str, float]] = field(default_factory=dict)
    _chain_warned: set[tuple[str, str, str]] = field(default_factory=set)  # (source, instrument, day) told
    # a chain's contract numbers and snapshots of the day, shared by its operators and intervals (runtime/chain.py)
    _chain_memo: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    # each event grid's runner (its events' files, counts for the run's summary)
    runners: dict[str, GridRunner] = field(default_factory=dict)
    _grid_dates: dict[str, list[str]] = field(default_factory=dict)
    _needs: dict[tuple[Key, ...], list[Key]] = field(default_factory=dict)
    _reads_of: dict[tuple[tuple[Key, ...], int], _Reads] = field(default_factory=dict)
    _modules: dict[str, ModuleType | PartedKernel] = field(default_factory=dict)  # each source's loaded kernel
    _member_days: dict[str, set[str]] = field(default_factory=dict)  # of members of universes ruled by day
    # with a membership by day: where the span every instrument reads begins (None: whole), and its rows read
    _start: int | None = None
    _start_found: bool = False
    _span_rows: dict[tuple[str, str], tuple[Ticks, bool]] = field(default_factory=dict)
    _told_empty: set[tuple[str, str]] = field(default_factory=set)  # (universe, day) without a member, told
    _dates_of_set: dict[tuple[str, ...], list[str]] = field(default_factory=dict)  # their dates with data, sorted
    # A task of one entity group (runtime/tasks.py): the instruments whose rows it reads of a file of many symbols
    # (None: every instrument's), and where it logs (day, source, instrument) absences instead of warning, so
    # that its client words them as one engine of all instruments would
    only: frozenset[str] | None = None
    absent_log: list[tuple[str, str, str]] | None = None

    def __post_init__(self) -> None:
        self.runners = {g.name: GridRunner(self, g) for g in self.manifest.data.grids}

    def needs(self, keys: list[Key]) -> list[Key]:
        """The columns ``keys`` need, dependencies first: the same every day of a run, so found once."""
        found = self._needs.get(tuple(keys))
        if found is None:
            found = self._needs[tuple(keys)] = with_dependencies(self.manifest, keys)
        return found

    def grid_dates(self, grid: str) -> list[str]:
        if grid not in self._grid_dates:
            self._grid_dates[grid] = self.runners[grid].dates()
        return self._grid_dates[grid]

    @property
    def project(self) -> ProjectDef:
        return self.manifest.project

    @property
    def session(self) -> Session:
        return self.project.session

    # ---- dates and data -------------------------------------------------------------------------
    def instrument_dates(self, instrument: str) -> list[str]:
        if instrument not in self._dates:
            inst = self.project.instruments[instrument]
            found: set[str] = set()
            for source in inst.sources:
                concrete = self.project.source_of(instrument, source)
                if concrete.holds_many_days:
                    path = source_path(self.manifest.root, concrete, inst.symbol, "")
                    if source_exists(path):
                        rows = len(self._rows(source, instrument, ""))
                        days = self._day_slices(source, instrument)
                        if rows and not days:
                            self._outside_sessions(path, rows, instrument if concrete.holds_many_symbols else "")
                        found |= set(days)
                else:
                    found |= set(self._dated_files(concrete, inst.symbol))
            self._dates[instrument] = sorted(found)
        return self._dates[instrument]

    def _dated_files(self, source: SourceDef, symbol: str) -> list[str]:
        """The dates of ``symbol``'s files of a source. A per-symbol template is listed once a run for every
        symbol (a universe of 500 stocks walked its folders 500 times); a symbol with a '/' (a folder of its
        own in the template) is listed alone."""
        if "{symbol}" not in source.path or "/" in symbol:
            return available_dates(self.manifest.root, source, symbol)
        if source.path not in self._listings:
            self._listings[source.path] = dates_by_symbol(self.manifest.root, source)
        return self._listings[source.path].get(symbol, [])

    def _outside_sessions(self, path: Path, rows: int, instrument: str) -> None:
        """One warning for a file of many days none of whose rows (``instrument``'s, of a shared file) falls in
        any session."""
        s = self.session
        hours = "-".join(f"{t // 3600:02d}:{t % 3600 // 60:02d}" for t in (s.open_seconds, s.close_seconds))
        whose = f"the {rows:,} rows of '{instrument}'" if instrument else f"its {rows:,} rows"
        warnings.warn(
            f"{display(path, self.manifest.root)}: none of {whose} falls inside a session ({hours} "
            f"{s.timezone}): they are not read (check the time zone of its times and the session)",
            DataWarning,
            stacklevel=3,
        )

    def all_dates(self) -> list[str]:
        if self.project.dates:
            return list(self.project.dates)
        found = {d for inst in self.project.instruments for d in self.instrument_dates(inst)}
        return sorted(found.union(*(self.grid_dates(g) for g in self.runners)))

    def _rows(self, source: str, instrument: str, day: str) -> Ticks:
        """A source's rows of one file, in time order, with asof columns attached: the day's file, or the whole
        file of a source that holds many days (read once, whatever day asks)."""
        spec = self.project.source_of(instrument, source)
        many = spec.holds_many_days
        key = (source, instrument, "" if many else day)
        if key in self.files:
            return self.files[key]
        if not many:
            return self._with_asof(spec, instrument, day)
        # a file of many days is read once (as much of it as the run needs): the sessions' rows are kept in ``cache``
        self.files[key] = ticks = self._many_days_rows(spec, instrument)
        return ticks

    def _with_asof(self, spec: SourceDef, instrument: str, day: str, span: Span | None = None) -> Ticks:
        ticks = self._load(spec, instrument, day, span)
        if spec.asof_source:
            other = self.project.sources[spec.asof_source]
            if span is None:
                prevailing = self._load(other, instrument, day)
            else:
                prevailing = self._prevailing(other, instrument, span.lo + _stamp_shift(spec), span.hi)
            ticks = attach_asof(ticks, prevailing, list(spec.asof_columns))
        return ticks

    def _prevailing(self, spec: SourceDef, instrument: str, known: int, hi: int) -> Ticks:
        """The rows of an as-of source (a parquet file of many days) that the rows from ``known`` to ``hi`` (UTC ns)
        may take their prevailing values from: the row groups that may hold a time from ``lo`` to ``hi``, where
        ``lo`` reaches back from a day before ``known``, doubling, until the source has a row between ``lo`` and
        ``known`` (every later row is read, so each row from ``known`` on finds the last one at or before it) or
        it covers the file. A source whose statistics cannot tell is read whole."""
        earliest = self._earliest(spec, instrument)
        if earliest is None or spec.format != "parquet":
            return self._load(spec, instrument, "")
        shift, reach = _stamp_shift(spec), DAY_NS
        while True:
            lo = known - shift - reach
            rows = self._load(spec, instrument, "", Span(lo, hi, spec))
            first, last = np.searchsorted(rows.ts, [lo + shift, known], side="left")
            if last > first or lo <= earliest:
                return rows
            reach *= 2

    def _many_days_rows(self, spec: SourceDef, instrument: str) -> Ticks:
        """An instrument's rows of a file of many days: all of them, or, for a run of some days of a parquet file
        whose time statistics tell, those of the row groups that may hold a row of the run's sessions (from the
        open of the first to the close of the last) and of the warm-up sessions before them: the span read
        reaches back, at least doubling, until the instrument has as many sessions before the first day, each read
        whole, as the deepest warm-up of any feature, or it covers the file. The rows of an as-of source are read
        back to those prevailing at the span's start (:meth:`_prevailing`)."""
        if self.manifest.by_day and self.days and spec.format == "parquet":
            return self._by_day_rows(spec, instrument)
        span = self._first_span(spec, instrument)
        while True:
            ticks = self._with_asof(spec, instrument, "", span)
            if span is None:
                return ticks
            earliest, history = self._earliest(spec, instrument), self._deepest_history()
            if earliest is not None and span.lo <= earliest:  # the file from its first row: every session whole
                return ticks
            # (the row groups read hold some rows of the session the span's start cuts: not read as a session)
            ticks = ticks.take(slice(self.session.first_whole(ticks.ts, span.lo + _stamp_shift(spec)), None))
            before = sum(1 for d in self.session.day_slices(ticks.ts) if d < min(self.days))
            if before >= history:
                return ticks
            # (at least a calendar day per warm-up session at the first step: a session is hours of a day)
            span = Span(span.lo - max(2 * (span.hi - span.lo), (history + 1) * DAY_NS), span.hi, spec)

    def _first_span(self, spec: SourceDef, instrument: str) -> Span | None:
        """The run's sessions as a span of a parquet file of many days (None: read it whole)."""
        if not self.days or spec.format != "parquet":
            return None
        if self._earliest(spec, instrument) is None:
            return None
        # (a bar stamped at its start is known at its end: a bar stamped before the open may count in the first bar)
        opens = self.session.bounds(min(self.days))[0] - _stamp_shift(spec)
        return Span(opens, self.session.bounds(max(self.days))[1], spec)

    def _by_day_rows(self, spec: SourceDef, instrument: str) -> Ticks:
        """An instrument's rows of a parquet file of many days in a project with a universe's membership by day:
        those of the one span that every instrument shares (:meth:`_shared_start`), so that the universe's
        sessions counted in it are the same for all its members."""
        start = self._shared_start()
        if start is None:
            return self._with_asof(spec, instrument, "", None)
        key = (spec.name, instrument)
        if key not in self._span_rows:
            self._span_rows[key] = self._rows_from(spec, instrument, start)
        return self._span_rows.pop(key)[0]

    def _rows_from(self, spec: SourceDef, instrument: str, start: int) -> tuple[Ticks, bool]:
        """The instrument's rows of the span from ``start`` (UTC ns; a bar stamped at its start is read from one
        bar earlier) to the close of the run's last day, without the rows of a session that the span cuts, and
        whether the span covers the file from its first row (or the file's statistics cannot tell: read whole)."""
        if self._earliest(spec, instrument) is None:
            return self._with_asof(spec, instrument, "", None), True
        hi = self.session.bounds(max(self.days))[1]
        span = Span(start - _stamp_shift(spec), hi, spec)
        ticks = self._with_asof(spec, instrument, "", span)
        if span.lo <= self._earliest(spec, instrument):  # type: ignore[operator]
            return ticks, True
        return ticks.take(slice(self.session.first_whole(ticks.ts, start), None)), False

    def _shared_start(self) -> int | None:
        """Where the span that every instrument of a project with a membership by day reads begins (None: every
        file whole, for ``every_session``, which counts the sessions to the end of the data). It starts at the
        open of the run's first day and reaches back, at least doubling, until the file is covered or: every
        instrument has as many sessions before the first day as the deepest warm-up (H), and each universe has
        its N sessions (``sessions_before``) before the earliest warm-up session of any of its members, so that
        membership is that of a whole read on every session a run computes or warms up from. Also None where an
        instrument reads another kind of source besides (files by date, a CSV of many days): their sessions are
        not cut to the span, and counted with the span's they would pass for sessions the span lacks."""
        if self._start_found:
            return self._start
        self._start_found = True
        rules = self.manifest.by_day
        if any(rule.every_session for rule in rules.values()) or not self._only_parquet_of_many_days():
            return None
        first = min(self.days)
        start = self.session.bounds(first)[0]
        hi = self.session.bounds(max(self.days))[1]
        history = self._deepest_history()
        step = (history + max(r.sessions_before for r in rules.values()) + 1) * DAY_NS
        while True:
            days, whole = self._days_from(start)
            if whole or self._enough_sessions(days, first, history):
                self._start = start
                return start
            start -= max(2 * (hi - start), step)
            self._span_rows.clear()

    def _only_parquet_of_many_days(self) -> bool:
        """Whether every source of every instrument is a parquet file of many days (the files the span cuts)."""
        for instrument, inst in self.project.instruments.items():
            for source in inst.sources:
                spec = self.project.source_of(instrument, source)
                if not spec.holds_many_days or spec.format != "parquet":
                    return False
        return True

    def _days_from(self, start: int) -> tuple[dict[str, set[str]], bool]:
        """Each instrument's sessions with rows in the span from ``start``, and whether the span covers every file
        of many days. The rows read are kept for :meth:`_by_day_rows`."""
        days: dict[str, set[str]] = {}
        whole = True
        for instrument, inst in self.project.instruments.items():
            if self.only is not None and instrument not in self.only:  # (a group task reads its own rows alone)
                continue
            found: set[str] = set()
            for source in inst.sources:  # each a parquet file of many days (:meth:`_only_parquet_of_many_days`)
                spec = self.project.source_of(instrument, source)
                path = source_path(self.manifest.root, spec, inst.symbol, "")
                if not source_exists(path):
                    continue
                ticks, covers = self._span_rows[(spec.name, instrument)] = self._rows_from(spec, instrument, start)
                found |= set(self.session.day_slices(ticks.ts))
                whole &= covers
            days[instrument] = found
        return days, whole

    def _enough_sessions(self, days: dict[str, set[str]], first: str, history: int) -> bool:
        """Whether the sessions found before ``first`` let every warm-up and every membership be what a whole read
        gives (see :meth:`_shared_start`)."""
        before = {i: sorted(d for d in found if d < first) for i, found in days.items()}
        if any(len(b) < history for b in before.values()):
            return False
        for key, rule in self.manifest.by_day.items():
            members = [m for m in self.manifest.members_of[key] if m in before]
            # the earliest session any member's warm-up reads (the first day itself without a warm-up)
            earliest = min((before[m][-history] if history else first for m in members), default=first)
            sessions = set().union(*(before[m] for m in members))
            if sum(1 for d in sessions if d < earliest) < rule.sessions_before:
                return False
        return True

    def _earliest(self, spec: SourceDef, instrument: str) -> int | None:
        symbol = self.project.instruments[instrument].symbol if "{symbol}" in spec.path else ""
        if (spec.name, symbol) not in self._time_ranges:
            self._time_ranges[(spec.name, symbol)] = time_range(self.manifest.root, spec, symbol)
        found = self._time_ranges[(spec.name, symbol)]
        return None if found is None else found[0]

    def _deepest_history(self) -> int:
        """The most warm-up sessions any feature needs at any interval, or an event grid before an event's
        session (runtime/events.py: the session before, and the one before that with a latency)."""
        if self._history is None:
            bars = (
                history_sessions(f, self.session, interval)
                for f in self.manifest.features
                for interval in self.manifest.intervals
            )
            events = (2 if g.latency_ns else 1 for g in self.manifest.data.grids)
            self._history = max([*bars, *events], default=0)
        return self._history

    def _load(self, spec: SourceDef, instrument: str, day: str, span: Span | None = None) -> Ticks:
        """One instrument's rows of a source file: the file itself, or its symbol's rows of a file of many."""
        inst = self.project.instruments[instrument]
        if not spec.holds_many_symbols:
            return load_source(self.manifest.root, spec, inst.symbol, day, inst.params, span=span)
        path_symbol = inst.symbol if "{symbol}" in spec.path else ""
        frame = self._shared_file(spec, path_symbol, day, span).frames.get(inst.symbol)
        if frame is None:
            self._lacking.add((spec.name, instrument, day))
            return empty_ticks(spec)
        return load_source(self.manifest.root, spec, inst.symbol, day, inst.params, frame)

    def _shared_file(self, spec: SourceDef, path_symbol: str, day: str, span: Span | None = None) -> SymbolRows:
        key = (spec.name, path_symbol, day if span is None else f"@{span.lo}:{span.hi}")
        if key not in self.shared:
            rows = read_symbols(self.manifest.root, spec, day, self._symbols(), path_symbol, span)
            self._keep_shared(key, spec, day, rows)
        return self.shared[key]

    def _symbols(self) -> set[str]:
        """The symbols whose rows are kept of a file of many symbols: every instrument's, or a group's."""
        instruments = self.project.instruments
        return {i.symbol for k, i in instruments.items() if self.only is None or k in self.only}

    def _keep_shared(self, key: tuple[str, str, str], spec: SourceDef, day: str, rows: SymbolRows) -> None:
        """Keep a day's file of many symbols, saying once (for the file, not for each of its instruments) when
        none of its rows is an instrument's, or none of those falls inside the day's session."""
        self.shared[key] = rows
        if not day or (spec.name, *key[1:]) in self._told_files:
            return
        self._told_files.add((spec.name, *key[1:]))
        shown = display(source_path(self.manifest.root, spec, key[1], day), self.manifest.root)
        read = f"what reads source '{spec.name}' is NaN on {day}"
        if not rows.rows:
            warnings.warn(f"{shown}: the file has no rows: {read}", DataWarning, stacklevel=3)
        elif not rows.frames:
            if self.only is None:  # (a group's own symbols may be absent from it: others' rows are there)
                warnings.warn(
                    f"{shown}: none of its {rows.rows:,} rows has an instrument's symbol in column "
                    f"'{spec.symbol_column}': {read} (check the instruments' symbols against the file's)",
                    DataWarning,
                    stacklevel=3,
                )
        elif not rows.rows_between(*self.session.bounds(day)):
            warnings.warn(
                f"{shown}: none of its {rows.wanted_rows():,} rows of the instruments falls inside the session of "
                f"{day}: their bars are empty (check the file's date and the time zone of its times)",
                DataWarning,
                stacklevel=3,
            )

    def ticks(self, source: str, instrument: str, day: str) -> Ticks:
        """Session-clipped rows of a source (with asof columns attached), loaded once per day."""
        key = (source, instrument, day)
        if key not in self.cache:
            self.cache[key] = self._session_rows(source, instrument, day)
        ticks = self.cache[key]
        if self.cut is not None and self.cut[0] == day:
            ticks = ticks.take(ticks.ts < self.cut[1])
        return ticks

    def forget_rows(self, day: str) -> None:
        """Drop the rows of ``day`` from the cache: a run in date order needs only their slots afterwards."""
        for key in [k for k in self.cache if k[2] == day]:
            self.cache.pop(key)
        for key in [k for k in self.shared if k[2] == day]:
            self.shared.pop(key)

    def _session_rows(self, source: str, instrument: str, day: str) -> Ticks:
        ticks = self._rows(source, instrument, day)
        spec = self.project.source_of(instrument, source)
        if spec.holds_many_days:  # the file's sessions found once (one search), not once a day
            lo, hi = self._day_slices(source, instrument).get(day, (0, 0))
            return ticks.take(slice(lo, hi))
        open_ns, close_ns = self.session.bounds(day)
        # Rows are in time order here: the session is one slice (views, no copy).
        lo, hi = np.searchsorted(ticks.ts, [open_ns, close_ns], side="left")
        if hi == lo and len(ticks) and not spec.holds_many_symbols:  # (a shared file: said once, for the file)
            path = source_path(self.manifest.root, spec, self.project.instruments[instrument].symbol, day)
            warnings.warn(
                f"{display(path, self.manifest.root)}: none of its {len(ticks):,} rows falls inside the session of "
                f"{day} (check the file's date and the time zone of its times)",
                DataWarning,
                stacklevel=2,
            )
        return ticks.take(slice(int(lo), int(hi)))

    def _day_slices(self, source: str, instrument: str) -> dict[str, tuple[int, int]]:
        """The rows of each session in a file of many days (of one instrument's rows of one source)."""
        key = (source, instrument)
        if key not in self._slices:
            self._slices[key] = self.session.day_slices(self._rows(source, instrument, "").ts)
        return self._slices[key]

    def _read_ahead(self, pairs: list[tuple[str, str]], days: list[str], interval: int) -> None:
        """Read the day files the kernel calls will need on the thread pool (a file's read releases the GIL):
        many small files (one per instrument) read in parallel. Errors surface in the order of the calls."""
        todo = [
            (pair, d)
            for pair in pairs
            for d in days
            if (*pair, d) not in self.cache
            and (self.cut is not None or (*pair, d, interval) not in self.slots)
            and d in self.instrument_dates(pair[1])
            and not self.project.source_of(pair[1], pair[0]).holds_many_days
        ]
        if threads() < 2:
            return
        # A file of many symbols is read once, before its instruments' rows are taken from it in parallel.
        files: dict[tuple[str, str, str], tuple[SourceDef, str, str]] = {}
        for (source, instrument), d in todo:
            spec = self.project.source_of(instrument, source)
            for shared in (spec, self.project.sources.get(spec.asof_source or "")):
                if shared is not None and shared.holds_many_symbols:
                    path_symbol = self.project.instruments[instrument].symbol if "{symbol}" in shared.path else ""
                    if (shared.name, path_symbol, d) not in self.shared:
                        files[(shared.name, path_symbol, d)] = (shared, path_symbol, d)
        if files:
            symbols = self._symbols()
            root = self.manifest.root
            jobs = [partial(read_symbols, root, spec, d, symbols, p) for spec, p, d in files.values()]
            for key, rows in zip(files, run_all(jobs), strict=True):
                self._keep_shared(key, files[key][0], key[2], rows)
        if len(todo) < 2:
            return
        loaded = run_all([partial(self._session_rows, pair[0], pair[1], d) for pair, d in todo])
        for (pair, d), ticks in zip(todo, loaded, strict=True):
            self.cache[(*pair, d)] = ticks

    # ---- computing --------------------------------------------------------------------------------
    def params(self, instrument: str | None, interval: int) -> dict[str, float]:
        """Parameter values for an instrument's features at an interval (built ones; do not modify)."""
        if (instrument, interval) not in self._params:
            self._params[(instrument, interval)] = self._build_params(instrument, interval)
        return self._params[(instrument, interval)]

    def _build_params(self, instrument: str | None, interval: int) -> dict[str, float]:
        session = self.session
        length = session.length_seconds
        width = interval or length  # the session grid's one bar is the whole session
        values = {
            "pi": math.pi,
            "interval_seconds": float(width),
            "bars_per_session": float(length // width),
            "periods_per_year": session.trading_days_per_year * length / width,
        }
        values.update(self.project.constants)
        if instrument is not None:
            values.update(self.project.instruments[instrument].params)
        return values

    def warmup_sessions(self, keys: list[Key], interval: int) -> int:
        return max((history_sessions(self.manifest.feature(*k), self.session, interval) for k in keys), default=0)

    def _reads(self, keys: list[Key], interval: int) -> _Reads:
        """What computing ``keys`` at ``interval`` reads: the same every day of a run, so found once."""
        found = self._reads_of.get((tuple(keys), interval))
        if found is None:
            found = _Reads(
                sorted(set().union(*(self.manifest.instruments_read[k] for k in keys))),
                sorted(set().union(*(self.manifest.slot_reads[k] for k in keys))),
                self.warmup_sessions(keys, interval),
            )
            self._reads_of[(tuple(keys), interval)] = found
        return found

    def sessions_of(self, day: str, interval: int, keys: list[Key]) -> list[str]:
        """The sessions computing ``keys`` at ``interval`` on ``day`` reads: its warm-up (halo) sessions, then the
        day. A group of the day's instruments is given the whole day's, so that its values are the same."""
        reads = self._reads(keys, interval)
        return self._session_days(day, reads.instruments, reads.history)

    def compute(self, day: str, interval: int, keys: list[Key], sessions: list[str] | None = None) -> DayResult:
        """``keys`` at ``interval`` on ``day``, over ``sessions`` (by default: :meth:`sessions_of` the keys)."""
        days = sessions if sessions is not None else self.sessions_of(day, interval, keys)
        grids = [self.session.bar_ends(d, interval) for d in days]
        session_ids = np.concatenate([np.full(len(g), k, dtype=np.int64) for k, g in enumerate(grids)])
        pairs = self._reads(keys, interval).pairs
        slot_cache, stacked = self._reduce_all(pairs, days, grids, interval)
        self._warn_absent()
        members = self._membership(days, session_ids) if self.manifest.by_day else None
        if self.manifest.by_day:
            self._warn_no_member(day)
        per_bar = self._bar_constants(days, grids)

        values: dict[Key, np.ndarray] = {}
        wanted = set(keys)
        n_bars = len(session_ids)
        for feature in self.manifest.features:
            rows = [key[1] for key in feature.keys if key in wanted]
            if not rows:
                continue
            if feature.cross_section:  # each member's value depends on every member's
                rows = list(feature.members)
            # a cross-section (and an index, which reads a universe by name) takes only each day's members
            across = members if feature.cross_section or feature.members == () else None
            inputs = self._inputs(rows, n_bars, session_ids, slot_cache, stacked, values, interval, per_bar, across)
            result = evaluate(feature.tree, inputs)
            for r, instrument in enumerate(rows):
                values[(feature.name, instrument)] = result[r]
        n_today = len(grids[-1])
        ts_event = bar_starts(grids[-1], self.session.bounds(day)[0])
        # Views of today's bars (warm-up sessions come first); the writer reads them as they are.
        current = {k: v[n_bars - n_today :] for k, v in values.items()}
        for key in current if members is not None else ():
            if key[1] is not None and not self.is_member(key[1], day):  # no member today: unknown, like absent
                current[key] = np.full(n_today, np.nan)
        return DayResult(day, interval, ts_event, current)

    def _inputs(
        self,
        rows: list[str | None],
        n_bars: int,
        session_ids: np.ndarray,
        slot_cache: dict[tuple[str, str], np.ndarray],
        stacked: dict[str, _Stacked],
        values: dict[Key, np.ndarray],
        interval: int,
        per_bar: dict[str, np.ndarray],
        across: Callable[[list[str]], np.ndarray | None] | None = None,
    ) -> BarInputs:
        """What one compiled feature's tree reads, for its members ``rows`` (``[None]``: a cross-asset one).
        With ``across`` (a cross-section's or an index's membership by bar), what it reads of the members is NaN
        on the days they are no members, so that they take no part."""

        def only_members(values: np.ndarray, members: list[str]) -> np.ndarray:
            mask = across(members) if across is not None else None
            return values if mask is None else np.where(mask, values, np.nan)

        def slot(source: str, index: int, instrument: str) -> np.ndarray:
            if instrument:
                return slot_cache[(source, instrument)][index][None, :]
            if source in stacked:
                return only_members(stacked[source].slot(index, rows), rows)  # type: ignore[arg-type]
            return only_members(np.stack([slot_cache[(source, m)][index] for m in rows]), rows)  # type: ignore[index]

        members_of = self.manifest.members_of  # a universe's name stands for all its members (an index)

        def feature(name: str, instrument: str | None) -> np.ndarray:
            if instrument in members_of:
                universe = list(members_of[instrument])
                return only_members(np.stack([values[(name, m)] for m in universe]), universe)
            if instrument != "":
                return values[(name, instrument)][None, :]
            return only_members(np.stack([values[(name, m)] for m in rows]), rows)  # type: ignore[misc]

        def param(name: str, instrument: str | None) -> Any:
            if instrument is None and name in per_bar:
                return per_bar[name]
            if instrument in members_of:
                universe = list(members_of[instrument])
                return only_members(np.array([self.params(m, interval)[name] for m in universe])[:, None], universe)
            if instrument != "":
                return self.params(instrument, interval)[name]
            return only_members(np.array([self.params(m, interval)[name] for m in rows])[:, None], rows)  # type: ignore[misc]

        return BarInputs(len(rows), n_bars, session_ids, slot, feature, param)

    def is_member(self, instrument: str, day: str) -> bool:
        """Whether ``instrument`` is a member of its universe on ``day`` by the universe's membership rule
        (True for an instrument of no such universe)."""
        if not self.manifest.by_day:
            return True
        if not self._member_days:
            self._member_days = {"": set()}  # found, even if no universe has a member
            for key, rule in self.manifest.by_day.items():
                self._member_days.update(self._rule_days(self.manifest.members_of[key], rule))
        days = self._member_days.get(instrument)
        return days is None or day in days

    def _rule_days(self, members: tuple[str, ...], rule: UniverseDef) -> dict[str, set[str]]:
        """Each member's days of membership: the universe's sessions are the days any member has rows."""
        present = {m: set(self.instrument_dates(m)) for m in members}
        sessions = sorted(set().union(*present.values()))
        if rule.every_session:
            return {m: days if len(days) == len(sessions) else set() for m, days in present.items()}
        n = rule.sessions_before
        return {
            m: {d for k, d in enumerate(sessions) if k >= n and all(s in days for s in sessions[k - n : k + 1])}
            for m, days in present.items()
        }

    def _warn_no_member(self, day: str) -> None:
        """One warning for each universe that has no member on ``day`` by its membership rule."""
        for key, rule in self.manifest.by_day.items():
            if (key, day) in self._told_empty or any(self.is_member(m, day) for m in self.manifest.members_of[key]):
                continue
            self._told_empty.add((key, day))
            why = f"sessions_before: {rule.sessions_before}" if rule.sessions_before else "every_session"
            warnings.warn(
                f"universe '{key}' has no member on {day} (membership {why}): its columns are NaN that day",
                DataWarning,
                stacklevel=2,
            )

    def _membership(self, days: list[str], session_ids: np.ndarray) -> Callable[[list[str]], np.ndarray | None]:
        """For the instruments of rows: (rows, bars) True where the instrument is a member on that bar's day, or
        None when every row is a member on every day (instruments of no universe ruled by day always are)."""
        by_row: dict[str | None, np.ndarray | None] = {}

        def bars_of(instrument: str | None) -> np.ndarray | None:
            if instrument not in by_row:
                if instrument is None:
                    by_row[instrument] = None
                else:
                    member = np.array([self.is_member(instrument, d) for d in days])
                    by_row[instrument] = None if member.all() else member[session_ids]
            return by_row[instrument]

        def mask(rows: list[str]) -> np.ndarray | None:
            found = [bars_of(m) for m in rows]
            if all(f is None for f in found):
                return None
            return np.stack([np.ones(len(session_ids), dtype=bool) if f is None else f for f in found])

        return mask

    def _bar_constants(self, days: list[str], grids: list[np.ndarray]) -> dict[str, np.ndarray]:
        """``bar_index`` and ``time_of_day`` of every bar of ``days`` (warm-up sessions first), as (1, bars)."""
        index, seconds = [], []
        for day, bar_ends in zip(days, grids, strict=True):
            open_ns = self.session.bounds(day)[0]
            index.append(np.arange(len(bar_ends), dtype=np.float64))
            seconds.append((bar_starts(bar_ends, open_ns) - open_ns) / 1e9)
        return {"bar_index": np.concatenate(index)[None, :], "time_of_day": np.concatenate(seconds)[None, :]}

    def require_data(self, day: str) -> None:
        """A day on which no instrument has any file is an error (one absent instrument is only a warning)."""
        if any(day in self.instrument_dates(inst) for inst in self.project.instruments):
            return
        if any(day in self.grid_dates(g) for g in self.runners):
            return
        inst = next(iter(self.project.instruments.values()))
        concrete = self.project.source_of(inst.key, inst.sources[0])
        path = source_path(self.manifest.root, concrete, inst.symbol, day)
        if concrete.holds_many_days and source_exists(path):  # the file is there: no instrument's row that day
            raise DataError(
                display(path, self.manifest.root),
                f"no instrument has a row in the session of {day}",
                "check the date (the file's days are those of its instruments' rows) and the instruments' symbols",
            )
        raise DataError(
            display(path, self.manifest.root),
            f"file not found: no instrument has data on {day}",
            "check the date and the sources' 'path' templates",
        )

    def _source_lacks(self, source: str, instrument: str, day: str) -> bool:
        """Whether the instrument's file of this source holds none of its rows on ``day``: its symbol is not in
        that day's shared file, or a file of many days has no row of that session."""
        spec = self.project.source_of(instrument, source)
        if (spec.name, instrument, day) in self._lacking:
            return True
        if not spec.holds_many_days:
            return False
        return day not in self._day_slices(source, instrument)

    def _note_absent(self, instrument: str, day: str, source: str = "") -> None:
        if (instrument, day, source) not in self._absent:
            self._absent.add((instrument, day, source))
            self._absent_now.setdefault((day, source), []).append(instrument)

    def _warn_absent(self) -> None:
        """One warning line per day (and source) for the instruments found without data on it (a universe of
        500 with 20 absent is one line, not 20)."""
        for day, source in sorted(self._absent_now):
            if self.absent_log is not None:
                self.absent_log += [(day, source, name) for name in self._absent_now[(day, source)]]
            else:
                warnings.warn(absent_text(day, source, self._absent_now[(day, source)]), DataWarning, stacklevel=2)
        self._absent_now.clear()

    def _session_days(self, day: str, instruments: list[str], history: int) -> list[str]:
        """The ``history`` sessions before ``day`` on which any of ``instruments`` has data, then ``day``."""
        if not history:
            return [day]
        key = tuple(instruments)
        if key not in self._dates_of_set:  # found once a run: a run of 480 days asked 480 times
            self._dates_of_set[key] = sorted(set().union(*(self.instrument_dates(i) for i in instruments)))
        dates = self._dates_of_set[key]
        return [*dates[max(0, bisect.bisect_left(dates, day) - history) : bisect.bisect_left(dates, day)], day]

    def _reduce_all(
        self, pairs: list[tuple[str, str]], days: list[str], grids: list[np.ndarray], interval: int
    ) -> tuple[dict[tuple[str, str], np.ndarray], dict[str, _Stacked]]:
        """Slots of every (source, instrument) pair over ``days`` (``grids``: each day's bar ends). A session
        reduced before (an earlier output day, now warm-up) is taken from ``slots``; the others' files are read
        here (day files ahead on the thread pool: a failing file's error is raised in the order of the calls, but
        the warnings of files read in parallel may come in either order), then the kernel calls run on the pool.

        On a single day every source's slots of all its instruments are one (instruments, slots, bars) array
        (the kernels write into it), so a feature of many members reads a slot of all of them without a copy."""
        stacked: dict[str, _Stacked] = {}
        if len(days) == 1:
            wanted = set(pairs)
            for source in sorted({s for s, _ in pairs}):
                # in the order of a feature's members
                members = sorted((i for s, i in wanted if s == source), key=natural_key)
                shape = (len(members), self.manifest.slot_count(source), len(grids[0]))
                stacked[source] = _Stacked(np.empty(shape), {m: r for r, m in enumerate(members)})
        self._read_ahead(pairs, days, interval)
        blocks: dict[tuple[str, str], list[np.ndarray]] = {}
        calls: list[KernelCall] = []
        for pair in pairs:
            blocks[pair] = []
            target = stacked[pair[0]].row(pair[1]) if stacked else None
            for d, bar_ends in zip(days, grids, strict=True):
                known = self.slots.get((*pair, d, interval)) if self.cut is None else None
                call = known if known is not None else self._kernel_call(pair, d, bar_ends, interval, len(blocks[pair]))
                if isinstance(call, KernelCall):
                    call.out = target
                    calls.append(call)
                    blocks[pair].append(np.empty(0))  # filled in below
                elif target is not None:
                    target[...] = call
                    blocks[pair].append(target)
                else:
                    blocks[pair].append(call)
        for results in run_all(schedule(calls, threads())):
            for call, out in results:
                if call.out is not None and out is not call.out:
                    call.out[...] = out  # a batch, or a call split in two halves, computed into its own arrays
                blocks[call.pair][call.block] = call.out if call.out is not None else out
        if self.cut is None:
            for pair, found in blocks.items():
                for d, out in zip(days, found, strict=True):
                    self.slots[(*pair, d, interval)] = out
        joined = {pair: b[0] if len(b) == 1 else np.concatenate(b, axis=1) for pair, b in blocks.items()}
        return joined, stacked

    def _kernel_call(
        self, pair: tuple[str, str], day: str, bar_ends: np.ndarray, interval: int, block: int
    ) -> np.ndarray | KernelCall:
        """The kernel call for one instrument's session, ready to run; or the slots already, when there is
        nothing to run."""
        source, instrument = pair
        if source in self.manifest.chains:  # an option chain: its reducers over its snapshots
            return chain_slots(self, source, instrument, day, bar_ends, interval)
        kernel = self.manifest.kernels[source]
        if day not in self.instrument_dates(instrument):
            # The instrument has no data that day at all: its values are unknown, not empty bars.
            self._note_absent(instrument, day)
            return np.full((len(kernel.slots), len(bar_ends)), np.nan)
        ticks = self.ticks(source, instrument, day)
        if self._source_lacks(source, instrument, day):
            # This source has no rows of the instrument that day (its other sources have): unknown as well.
            self._note_absent(instrument, day, source)
            return np.full((len(kernel.slots), len(bar_ends)), np.nan)
        assert ticks is not None
        module = self._modules.get(source)
        if module is None:
            module = self._modules[source] = load_tick_kernel(self.manifest.root, kernel)
        params = self.params(instrument, interval)
        param_array = np.array(kernel.param_values(params), dtype=np.float64)
        # A column this instrument's data lacks is needed only by slots it never reads: NaN is safe there.
        cols = [
            np.ascontiguousarray(ticks.columns[c], dtype=np.float64)
            if c in ticks.columns
            else np.full(len(ticks), np.nan)
            for c in kernel.columns
        ]
        return KernelCall(pair, block, module, ticks.ts, bar_ends, cols, param_array)


def absent_text(day: str, source: str, instruments: Iterable[str]) -> str:
    """The warning for the instruments without data (of ``source``, or "" for none at all) on ``day``."""
    names = sorted(set(instruments), key=natural_key)
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    if source and len(names) == 1:
        return f"instrument '{names[0]}' has no '{source}' rows on {day}: what reads them is NaN that day"
    if source:
        return f"{len(names)} instruments have no '{source}' rows on {day} ({shown}): what reads them is NaN"
    if len(names) == 1:
        return f"instrument '{names[0]}' has no data on {day}: its columns are NaN that day"
    return f"{len(names)} instruments have no data on {day} ({shown}): their columns are NaN that day"


def run(manifest: Manifest, options: RunOptions) -> list[Path]:
    """Compute and write every requested (date, interval). A date whose data fails writes nothing."""
    with arrow_allocator():
        return _run(manifest, options)


@dataclass
class RunPlan:
    """What a run computes, checked before any day is: the manifest with its universes' members, the dates in
    order, the intervals, each interval's columns (without their dependencies) and the output folder. Every
    engine starts from one (``plan_run``), so they refuse the same things with the same messages."""

    manifest: Manifest
    dates: list[str]
    intervals: list[int]
    at: dict[int, list[Key]]
    out_dir: Path
    engine: Engine  # the engine the checks used (it has listed every instrument's dates)

    grids: list[str] = field(default_factory=list)  # the event grids it writes

    def compute_day(self, engine: Engine, day: str) -> list[DayResult | EventDayResult]:
        return compute_day(engine, day, self.intervals, self.at, self.grids)


def compute_day(
    engine: Engine, day: str, intervals: list[int], at: dict[int, list[Key]], grids: list[str] | None = None
) -> list[DayResult | EventDayResult]:
    """Every interval and event grid of ``day``, computed before any is written: bad data writes nothing for the
    day. A grid with no events that day writes no file, and a day on which no instrument has data (events only)
    is no session of bars."""
    bars = any(day in engine.instrument_dates(inst) for inst in engine.project.instruments)
    results: list[DayResult | EventDayResult] = [
        engine.compute(day, i, engine.needs(at[i])) for i in (intervals if bars else ())
    ]
    computed = [engine.runners[g].compute(day) for g in grids or () if day in engine.grid_dates(g)]
    return results + [r for r in computed if len(r.ts_event)]


def plan_run(manifest: Manifest, options: RunOptions) -> RunPlan:
    """The checks of a run before it computes anything (intervals, dates with data, the --select guard), and the
    removal of temp files a stopped run left."""
    manifest = with_members(manifest)
    engine = Engine(manifest, days=tuple(options.dates or ()))
    intervals = options.intervals or manifest.intervals
    for interval in intervals:
        if interval not in manifest.intervals:
            raise UsageError(
                f"--interval {interval_token(interval)} is not in the project's intervals "
                f"({', '.join(interval_token(i) for i in manifest.intervals)})",
                "add it to 'intervals:' and compile",
            )
    dates = options.dates or engine.all_dates()
    if not dates:
        raise DataError(
            "specs/project.yaml", "no data files found for any instrument", "check the sources' 'path' templates"
        )
    at = columns_by_interval(manifest, options.select, options.intervals, options.state)
    intervals = [i for i in intervals if i in at]
    # a selection or an interval picks bar columns: event grids are written by a run of the whole project
    grids = [] if options.select or options.intervals else [g.name for g in manifest.data.grids]
    out_dir = options.output_dir or manifest.root / manifest.project.output_dir
    for day in dates:
        engine.require_data(day)
    if options.select:
        refuse_shrinking(
            manifest,
            out_dir,
            {
                output_path(out_dir, day, i): [column_of(manifest.feature(*k), k[1], i) for k in at[i]]
                for day in dates
                for i in intervals
            },
        )
    for path in remove_leftovers(out_dir):
        shown = display(path, manifest.root)
        warnings.warn(f"removed {shown}, left by a run that was stopped", DataWarning, stacklevel=2)
    return RunPlan(manifest, sorted(dates), intervals, at, out_dir, engine, grids)


def _run(manifest: Manifest, options: RunOptions) -> list[Path]:
    plan = plan_run(manifest, options)
    engine = plan.engine
    days: Iterable[str] = plan.dates
    if options.on_progress:
        days = options.on_progress(days, len(plan.dates))
    writer = DayWriter(plan.manifest, plan.at, plan.out_dir, writers=min(2, threads()) if threads() > 1 else 0)
    try:
        for day in days:
            writer.submit(plan.compute_day(engine, day))  # written while the next day is computed
            engine.forget_rows(day)  # later days read this one's slots for warm-up, not its rows
    except BaseException:
        writer.abandon()
        raise
    writer.close()
    tell_grids(engine, plan.grids, options)
    return writer.written


def tell_grids(engine: Engine, grids: list[str], options: RunOptions) -> None:
    """The run summary of each event grid; events that named no instrument are a warning too. A grid the run
    does not write (it picks bar columns) is told as well."""
    if options.on_note:
        for grid in engine.manifest.data.grids:
            if grid.name not in grids:
                options.on_note(
                    f"grid {grid.name} is not written: --select and --interval pick bar columns (run without "
                    f"--select and --interval to write features_DATE_{grid.name}.parquet)"
                )
    for name in grids:
        runner = engine.runners[name]
        if options.on_note:
            options.on_note(runner.counts.summary(runner.grid))
        if runner.counts.unmatched:
            warnings.warn(
                f"grid {name}: {runner.counts.unmatched:,} event(s) name no instrument "
                f"(e.g. {', '.join(map(repr, runner.counts.examples))}): their features are NaN",
                DataWarning,
                stacklevel=2,
            )


def compute_in_memory(
    manifest: Manifest, day: str, interval: int, data: dict[tuple[str, str], Ticks], keys: list[Key] | None = None
) -> DayResult:
    """The compute stage alone: ticks already in memory -> feature arrays for one session, no file access.

    ``data`` maps (source, instrument) to that session's rows: time-ordered, inside the session, with any asof
    columns attached (what :meth:`Engine.ticks` returns). No warm-up sessions are read.
    """
    engine = Engine(manifest)
    for (source, instrument), ticks in data.items():
        engine.cache[(source, instrument, day)] = ticks
    engine._dates = {inst: [day] for inst in manifest.project.instruments}
    chosen = keys or with_dependencies(manifest, columns_by_interval(manifest, None, [interval]).get(interval, []))
    return engine.compute(day, interval, chosen)
