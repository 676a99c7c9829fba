"""Event grids at run time: one day's events -> each event's reads of its instrument's market rows -> features.

The events of a day are the rows of the grid's events source inside the day's session, in time order (a file
out of order is sorted, stably, with a warning: events of one time keep their file order). Each event names
its instrument in the grid's instrument column; the market rows of that instrument (the event's session and
the one before it, so that windows and asof reach across the open) go through the grid's event kernels with
the events' cuts ``t - latency``; the features' trees are then evaluated over all the day's events at once (one
row, one column per event), like bar trees.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from fspec.errors import DataError
from fspec.files import display
from fspec.lazy import LazyModule
from fspec.manifest import GridDef, SourceDef
from fspec.runtime.evaluate import BarInputs, evaluate
from fspec.runtime.kernels import frozen, load_kernel
from fspec.runtime.sources import (
    DataWarning,
    Frame,
    Span,
    available_dates,
    file_columns,
    jsonl_needles,
    mapped_values,
    read_frame,
    row_values,
    source_exists,
    source_path,
    symbol_codes,
    symbol_text,
    time_range,
    utc_ns,
)
from fspec.session import DAY_NS

pc = LazyModule("pyarrow.compute")  # imported where a cast, a take or a filter needs it

Labels = tuple[np.ndarray, list[str]]  # each row's code (-1: none) into the names


@dataclass(frozen=True)
class Events:
    """Events in time order: their times, instrument codes (into ``symbols``; -1 for none), the numeric columns
    formulas read, and the kept columns as they are in the file."""

    ts: np.ndarray
    codes: np.ndarray
    symbols: list[str]
    columns: dict[str, np.ndarray]
    kept: pa.Table
    # by-column -> each event's code (-1 for none) into that column's texts
    keys: dict[str, Labels] = field(default_factory=dict)

    def take(self, rows: slice | np.ndarray) -> Events:
        kept = self.kept.slice(rows.start, rows.stop - rows.start) if isinstance(rows, slice) else self.kept.take(rows)
        return Events(
            self.ts[rows],
            self.codes[rows],
            self.symbols,
            {k: v[rows] for k, v in self.columns.items()},
            kept,
            {k: (codes[rows], names) for k, (codes, names) in self.keys.items()},
        )


@dataclass(frozen=True)
class EventDayResult:
    """A grid's features for one date: one value per event, with the events' times and kept columns."""

    date: str
    grid: GridDef
    ts_event: np.ndarray
    kept: pa.Table
    values: dict[str, np.ndarray]


@dataclass
class GridCounts:
    """What a run tells of a grid at its end."""

    events: int = 0
    days: int = 0
    ties: int = 0  # events with a market row at exactly their cut (not seen: strictly before)
    unmatched: int = 0  # events whose instrument column names no instrument of the grid
    examples: list[str] = field(default_factory=list)

    def add(self, other: GridCounts) -> None:
        """Count another engine's days too (a dask worker's)."""
        self.events += other.events
        self.days += other.days
        self.ties += other.ties
        self.unmatched += other.unmatched
        self.examples += [e for e in other.examples if e not in self.examples][: 3 - len(self.examples)]

    def summary(self, grid: GridDef) -> str:
        parts = [f"grid {grid.name}: {self.events:,} event(s) over {self.days} day(s)"]
        if self.ties:
            parts.append(f"{self.ties:,} with a market row at their cut, not seen (values use rows strictly before)")
        if self.unmatched:
            who = f"universe {grid.universe}" if grid.universe else "the project's instruments"
            parts.append(
                f"{self.unmatched:,} naming no instrument of {who} (e.g. {', '.join(map(repr, self.examples))}): NaN"
            )
        return "; ".join(parts)


def by_columns(grid: GridDef) -> list[str]:
    """The events' columns whose values group them for by= reads (each kernel over the events of one key)."""
    return list(dict.fromkeys(k.by for k in grid.kernels if k.by))


def _read_columns(grid: GridDef) -> list[str]:
    """The events' columns formulas read: their own values, and the rows of kernels over the events."""
    found = [*grid.event_columns, *(c for k in grid.kernels if k.source == grid.events for c in k.columns)]
    return list(dict.fromkeys(found))


def _event_frame(root: Path, source: SourceDef, grid: GridDef, day: str, span: Span | None = None) -> tuple[Frame, str]:
    path = source_path(root, source, "", day)
    shown = display(path, root)
    wanted = [*file_columns(source), grid.instrument_column, *grid.keep, *by_columns(grid)]
    frame = read_frame(
        path,
        source.format,
        list(dict.fromkeys(wanted)),
        shown,
        header=source.header,
        needles=jsonl_needles(source),
        span=span,
    )
    return frame, shown


def _labels(frame: Frame, column: str) -> Labels:
    """A column's values as codes into its texts (-1 where missing): the keys of by= groups."""
    if isinstance(frame, pa.Table):
        encoded = pc.dictionary_encode(frame.column(column)).combine_chunks()
        indices = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        return indices, [symbol_text(u) for u in encoded.dictionary.to_pylist()]
    import pandas as pd

    codes, uniques = pd.factorize(frame[column])
    return codes.astype(np.int64), [symbol_text(u) for u in uniques]


def _merged(parts: list[Labels]) -> Labels:
    """Labels of rows from several files as codes into one list of names."""
    if len(parts) == 1:
        return parts[0]
    names = sorted({n for _, part_names in parts for n in part_names})
    index = {n: i for i, n in enumerate(names)}
    codes = [np.array([index[n] for n in part_names] + [-1], dtype=np.int64)[c] for c, part_names in parts]
    return np.concatenate(codes), names


def _groups(labels: Labels, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The rows of each label (rows with none are in no group), each group in the rows' order (time order)."""
    codes, names = labels
    valid = np.flatnonzero(codes >= 0)
    if not len(valid):
        return {}
    order = valid[np.argsort(codes[valid], kind="stable")]
    sorted_codes = codes[order]
    edges = np.flatnonzero(sorted_codes[1:] != sorted_codes[:-1]) + 1
    return {
        names[int(sorted_codes[lo])]: rows[order[lo:hi]]
        for lo, hi in zip([0, *edges], [*edges, len(order)], strict=True)
    }


def _kept(frame: Frame, columns: tuple[str, ...]) -> pa.Table:
    if isinstance(frame, pa.Table):
        return frame.select(list(columns))
    return pa.Table.from_pandas(frame[list(columns)], preserve_index=False)


def load_events(root: Path, source: SourceDef, grid: GridDef, day: str, span: Span | None = None) -> Events:
    """A file of the events source (``day`` '' for one that holds every day), in time order (``span``: of a
    parquet file, only the row groups that may hold a time in it)."""
    frame, shown = _event_frame(root, source, grid, day, span)
    ts = utc_ns(frame, source, shown, day)
    mapped = {c.name: c for c in source.columns}
    columns = {}
    for name in _read_columns(grid):
        spec = mapped[name]
        if spec.expr:
            columns[name] = row_values(source.column_trees[name], frame, shown)
        else:
            columns[name] = mapped_values(frame, source, spec, ts, shown)
    codes, symbols = symbol_codes(frame, grid.instrument_column, shown)
    keys = {c: _labels(frame, c) for c in by_columns(grid)}
    events = Events(ts, codes.astype(np.int64), symbols, columns, _kept(frame, grid.keep), keys)
    if source.filter_tree is not None:
        events = events.take(np.flatnonzero(row_values(source.filter_tree, frame, shown) != 0))
    if len(events.ts) > 1 and not bool(np.all(events.ts[1:] >= events.ts[:-1])):
        first = int(np.flatnonzero(events.ts[1:] < events.ts[:-1])[0]) + 1
        if source.unsorted == "reject":
            raise DataError(
                shown,
                f"events are not in time order (row {first} is earlier than row {first - 1})",
                "sort the file by time, or set unsorted: sort on this source",
            )
        warnings.warn(
            f"{shown}: events are not in time order (first at row {first}); sorted them (stable: events of one time "
            "keep their file order)",
            DataWarning,
            stacklevel=2,
        )
        events = events.take(np.argsort(events.ts, kind="stable"))
    return events


@dataclass
class GridRunner:
    """Computes one grid's days for an engine, caching a file of many days' events between them."""

    engine: Any  # fspec.runtime.run.Engine (not imported: it imports this module)
    grid: GridDef
    counts: GridCounts = field(default_factory=GridCounts)
    _whole: Events | None = None
    # the latest day files read (a day reads the earlier days' events again): each file read and warned once
    _files: dict[str, Events] = field(default_factory=dict)
    # (day, utc ns) of the audit: the events after it do not exist yet, nor any row from the latency before it on
    # (the engine's cut of the market rows is there)
    cut: tuple[str, int] | None = None

    @property
    def source(self) -> SourceDef:
        return self.engine.project.sources[self.grid.events]

    def dates(self) -> list[str]:
        """The dates whose sessions hold events."""
        root, source = self.engine.manifest.root, self.source
        if source.holds_many_days:
            if not source_exists(source_path(root, source, "", "")):
                return []
            return sorted(set(self.engine.session.dates_of(self._all().ts)))
        return available_dates(root, source, "")

    def _all(self) -> Events:
        if self._whole is None:
            self._whole = self._many_days_events()
        return self._whole

    def _many_days_events(self) -> Events:
        """The events of a file of many days: all of them, or, for a run of some days of a parquet file whose time
        statistics tell, those of the row groups that may hold an event of the run's sessions and of the sessions
        with events before them that the reads of the grid's own events reach (:attr:`_back`): the span read
        reaches back, at least doubling, until it holds those sessions whole, or it covers the file."""
        engine, source = self.engine, self.source
        root, session = engine.manifest.root, engine.session
        found = time_range(root, source, "") if engine.days and source.format == "parquet" else None
        if found is None:
            return load_events(root, source, self.grid, "")
        first, hi = session.bounds(min(engine.days))[0], session.bounds(max(engine.days))[1]
        back = self._back if any(k.source == self.grid.events for k in self.grid.kernels) else 0
        lo = first
        while True:
            events = load_events(root, source, self.grid, "", Span(lo, hi, source))
            if lo <= found[0]:  # the file from its first row: every session whole
                return events
            # (the row groups read hold some events of the session the span's start cuts: not read as a session)
            events = events.take(slice(session.first_whole(events.ts, lo), len(events.ts)))
            if sum(1 for d in session.dates_of(events.ts) if d < min(engine.days)) >= back:
                return events
            lo = first - max(2 * (first - lo), (back + 1) * DAY_NS)

    def events(self, day: str) -> Events:
        source = self.source
        if source.holds_many_days:
            found = self._all()
        else:
            if day not in self._files:
                if len(self._files) > self._back:  # a run goes forward in time: the oldest is not read again
                    self._files.pop(min(self._files))
                self._files[day] = self._day_file(day)
            found = self._files[day]
        open_ns, close_ns = self.engine.session.bounds(day)
        lo, hi = np.searchsorted(found.ts, [open_ns, close_ns], side="left")
        day_events = found.take(slice(int(lo), int(hi)))
        cut = self.cut
        if cut is not None and cut[0] == day:  # the audit: events after the cut do not exist yet, but for the
            # events at the cut itself, which must not see the rows at their own time
            day_events = day_events.take(slice(0, int(np.searchsorted(day_events.ts, cut[1], side="right"))))
        return day_events

    def _day_file(self, day: str) -> Events:
        """The events of a day's file, told when it has none inside the day's session (as market files are)."""
        root, source = self.engine.manifest.root, self.source
        found = load_events(root, source, self.grid, day)
        shown = display(source_path(root, source, "", day), root)
        open_ns, close_ns = self.engine.session.bounds(day)
        if not len(found.ts):
            warnings.warn(f"{shown}: the file has no events", DataWarning, stacklevel=2)
        elif not np.any((found.ts >= open_ns) & (found.ts < close_ns)):
            warnings.warn(
                f"{shown}: none of its {len(found.ts):,} events falls inside the session of {day} (check the "
                "file's date and the time zone of its times)",
                DataWarning,
                stacklevel=2,
            )
        return found

    def members(self) -> dict[str, str]:
        """Symbol -> instrument key of the instruments events may name."""
        project = self.engine.project
        if self.grid.universe:
            keys = self.engine.manifest.members_of.get(self.grid.universe, ())
        else:
            keys = tuple(k for k, i in project.instruments.items() if i.universe is None)
        return {project.instruments[k].symbol: k for k in keys}

    def _instruments(self, events: Events) -> Labels:
        """Each event's instrument, as a code into the grid's instrument keys (-1 where its instrument column
        names none of them)."""
        members = self.members()
        keys = sorted(set(members.values()))
        index = {k: i for i, k in enumerate(keys)}
        lookup = np.array([index.get(members.get(s, ""), -1) for s in events.symbols] + [-1], dtype=np.int64)
        return lookup[events.codes], keys  # an event with no symbol (-1) reads the trailing -1

    def compute(self, day: str) -> EventDayResult:
        events = self.events(day)
        n = len(events.ts)
        instruments = self._instruments(events)
        unmatched = instruments[0] < 0
        self.counts.events += n
        self.counts.days += 1 if n else 0  # a day with no events writes no file
        if unmatched.any():
            self.counts.unmatched += int(unmatched.sum())
            for s in sorted({events.symbols[c] for c in np.unique(events.codes[unmatched]) if c >= 0})[:3]:
                if s not in self.counts.examples and len(self.counts.examples) < 3:
                    self.counts.examples.append(s)
        groups = _groups(instruments, np.arange(n))
        tied = np.zeros(n, dtype=bool)  # an event with a row at its cut in any of the market sources it reads
        slots = {
            k.slot_source: self._own_reads(k, day, events)
            if k.source == self.grid.events
            else self._reads(k, day, events, groups, tied)
            for k in self.grid.kernels
        }
        self.counts.ties += int(tied.sum())
        values = self._evaluate(events, slots, unmatched, groups)
        return EventDayResult(day, self.grid, events.ts, events.kept, values)

    @property
    def _back(self) -> int:
        """How many earlier sessions with data an event reads: the one before its own, and with a latency the one
        before that too (the cut may fall in the session before, whose rows may all lie after it)."""
        return 2 if self.grid.latency_ns else 1

    def _market_rows(self, source: str, instrument: str, day: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The instrument's rows of ``source`` in the session of ``day`` and the ones before it with data."""
        engine = self.engine
        dates = engine.instrument_dates(instrument)
        days = [d for d in dates if d < day][-self._back :] + ([day] if day in dates else [])
        parts = [engine.ticks(source, instrument, d) for d in days]
        if not parts:
            return np.empty(0, dtype=np.int64), {}
        if len(parts) == 1:
            return parts[0].ts, parts[0].columns
        ts = np.concatenate([p.ts for p in parts])
        return ts, {c: np.concatenate([p.columns[c] for p in parts]) for c in parts[-1].columns}

    def _reads(
        self, kernel: Any, day: str, events: Events, groups: dict[str, np.ndarray], tied: np.ndarray
    ) -> np.ndarray:
        module = load_kernel(self.engine.manifest.root / kernel.path, kernel.module)
        out = np.full((len(kernel.slots), len(events.ts)), np.nan)
        latency = np.int64(self.grid.latency_ns)
        for instrument, rows in groups.items():
            ts, columns = self._market_rows(kernel.source, instrument, day)
            event_t = np.ascontiguousarray(events.ts[rows])
            cut = event_t - latency
            if len(ts):
                tied[rows] |= np.searchsorted(ts, cut, side="right") > np.searchsorted(ts, cut, side="left")
            cols = [frozen(columns[c] if c in columns else np.full(len(ts), np.nan)) for c in kernel.columns]
            params = self.engine.params(instrument, 0)
            param_array = np.array([params.get(p, np.nan) for p in kernel.params], dtype=np.float64)
            part = np.empty((len(kernel.slots), len(rows)))
            module.reduce_events(frozen(ts, np.int64), *cols, param_array, event_t, cut, part)
            out[:, rows] = part
        return out

    def _own_reads(self, kernel: Any, day: str, events: Events) -> np.ndarray:
        """A kernel over the grid's own events: each event reads the earlier events of its group (its instrument,
        or its value of the column ``by``), of its day and the day before that has events (two with a latency)."""
        module = load_kernel(self.engine.manifest.root / kernel.path, kernel.module)
        earlier = [d for d in self.engine.grid_dates(self.grid.name) if d < day][-self._back :]
        parts = [*(self.events(d) for d in earlier), events]
        n_history = sum(len(p.ts) for p in parts[:-1])
        ts = np.concatenate([p.ts for p in parts])
        columns = {c: np.concatenate([p.columns[c] for p in parts]) for c in kernel.columns}
        labels = _merged([p.keys[kernel.by] if kernel.by else self._instruments(p) for p in parts])
        out = np.full((len(kernel.slots), len(events.ts)), np.nan)  # an event with no key value is in no group
        latency = np.int64(self.grid.latency_ns)
        # the audit's cut: the events up to it are rows of the output, but as rows read, those of the latency
        # before it on are not known yet
        known = self.cut[1] - latency if self.cut is not None else np.iinfo(np.int64).max
        for key, group in _groups(labels, np.arange(len(ts))).items():
            mine = group[group >= n_history]
            if not len(mine):
                continue
            rows = group[ts[group] < known]
            event_t = np.ascontiguousarray(ts[mine])
            cols = [frozen(np.ascontiguousarray(columns[c][rows])) for c in kernel.columns]
            params = self.engine.params(None if kernel.by else key, 0)
            param_array = np.array([params.get(p, np.nan) for p in kernel.params], dtype=np.float64)
            part = np.empty((len(kernel.slots), len(mine)))
            module.reduce_events(
                frozen(np.ascontiguousarray(ts[rows]), np.int64), *cols, param_array, event_t, event_t - latency, part
            )
            out[:, mine - n_history] = part
        return out

    def _evaluate(
        self, events: Events, slots: dict[str, np.ndarray], unmatched: np.ndarray, groups: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        n = len(events.ts)
        values: dict[str, np.ndarray] = {}

        def slot(source: str, index: int, _: str) -> np.ndarray:
            if source == "":
                return events.columns[self.grid.event_columns[index]][None, :]
            return slots[source][index][None, :]

        def feature(name: str, _: str | None) -> np.ndarray:
            return values[name][None, :]

        def param(name: str, owner: str | None) -> Any:
            if owner is None:
                return self.engine.params(None, 0)[name]
            per_event = np.full(n, np.nan)
            for key, rows in groups.items():
                per_event[rows] = self.engine.params(key, 0).get(name, np.nan)
            return per_event[None, :]

        inputs = BarInputs(1, n, np.zeros(n, dtype=np.int64), slot, feature, param)
        for f in self.grid.features:
            result = evaluate(f.tree, inputs)[0].copy()
            result[unmatched] = np.nan  # an event of no known instrument has no market: every value is NaN
            values[f.name] = result
        return values
