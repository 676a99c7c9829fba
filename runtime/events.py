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
import pyarrow.compute as pc

from fspec.errors import DataError
from fspec.files import display
from fspec.manifest import GridDef, SourceDef
from fspec.runtime.evaluate import BarInputs, evaluate
from fspec.runtime.kernels import frozen, load_kernel
from fspec.runtime.sources import (
    DataWarning,
    Frame,
    _numeric,
    _read,
    _row_values,
    _scaled,
    _symbol_codes,
    _symbol_text,
    _utc_ns,
    _wanted_columns,
    source_exists,
    source_path,
)


@dataclass(frozen=True)
class Events:
    """Events in time order: their times, instrument codes (into ``symbols``; -1 for none), the numeric columns
    formulas read, and the kept columns as they are in the file."""

    ts: np.ndarray
    codes: np.ndarray
    symbols: list[str]
    columns: dict[str, np.ndarray]
    kept: pa.Table
    keys: dict[str, np.ndarray] = field(default_factory=dict)  # by-column -> each event's text ('' for none)

    def take(self, rows: slice | np.ndarray) -> Events:
        kept = self.kept.slice(rows.start, rows.stop - rows.start) if isinstance(rows, slice) else self.kept.take(rows)
        return Events(
            self.ts[rows],
            self.codes[rows],
            self.symbols,
            {k: v[rows] for k, v in self.columns.items()},
            kept,
            {k: v[rows] for k, v in self.keys.items()},
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


def _by_columns(grid: GridDef) -> list[str]:
    return list(dict.fromkeys(k.by for k in grid.kernels if k.by))


def _read_columns(grid: GridDef) -> list[str]:
    """The events' columns formulas read: their own values, and the rows of kernels over the events."""
    found = [*grid.event_columns, *(c for k in grid.kernels if k.source == grid.events for c in k.columns)]
    return list(dict.fromkeys(found))


def _event_frame(root: Path, source: SourceDef, grid: GridDef, day: str) -> tuple[Frame, str]:
    path = source_path(root, source, "", day)
    shown = display(path, root)
    wanted = [*_wanted_columns(source), grid.instrument_column, *grid.keep, *_by_columns(grid)]
    return _read(path, source.format, list(dict.fromkeys(wanted)), shown, header=source.header), shown


def _texts(frame: Frame, column: str) -> np.ndarray:
    """A column's values as text (an object array; '' where missing): the keys of by= groups."""
    if isinstance(frame, pa.Table):
        encoded = pc.dictionary_encode(frame.column(column)).combine_chunks()
        uniques = np.array([_symbol_text(u) for u in encoded.dictionary.to_pylist()] + [""], dtype=object)
        indices = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        return uniques[indices]
    values = frame[column]
    return np.where(values.isna(), "", values.astype(str)).astype(object)


def _kept(frame: Frame, columns: tuple[str, ...]) -> pa.Table:
    if isinstance(frame, pa.Table):
        return frame.select(list(columns))
    return pa.Table.from_pandas(frame[list(columns)], preserve_index=False)


def load_events(root: Path, source: SourceDef, grid: GridDef, day: str) -> Events:
    """A file of the events source (``day`` '' for one that holds every day), in time order."""
    frame, shown = _event_frame(root, source, grid, day)
    ts = _utc_ns(frame, source, shown, day)
    mapped = {c.name: c for c in source.columns}
    columns = {}
    for name in _read_columns(grid):
        spec = mapped[name]
        if spec.expr:
            columns[name] = _row_values(source.column_trees[name], frame, shown)
        else:
            columns[name] = _scaled(_numeric(frame, spec.source_column, shown), spec.scale)
    codes, symbols = _symbol_codes(frame, grid.instrument_column, shown)
    keys = {c: _texts(frame, c) for c in _by_columns(grid)}
    events = Events(ts, codes.astype(np.int64), symbols, columns, _kept(frame, grid.keep), keys)
    if source.filter_tree is not None:
        events = events.take(np.flatnonzero(_row_values(source.filter_tree, frame, shown) != 0))
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
        from fspec.runtime.sources import available_dates

        return available_dates(root, source, "")

    def _all(self) -> Events:
        if self._whole is None:
            self._whole = load_events(self.engine.manifest.root, self.source, self.grid, "")
        return self._whole

    def events(self, day: str) -> Events:
        source, root = self.source, self.engine.manifest.root
        found = self._all() if source.holds_many_days else load_events(root, source, self.grid, day)
        open_ns, close_ns = self.engine.session.bounds(day)
        lo, hi = np.searchsorted(found.ts, [open_ns, close_ns], side="left")
        day_events = found.take(slice(int(lo), int(hi)))
        cut = self.engine.cut
        if cut is not None and cut[0] == day:  # the audit: data from the cut on does not exist yet, but for
            # the events at the cut itself, which must not see the rows at their own time
            day_events = day_events.take(slice(0, int(np.searchsorted(day_events.ts, cut[1], side="right"))))
        return day_events

    def members(self) -> dict[str, str]:
        """Symbol -> instrument key of the instruments events may name."""
        project = self.engine.project
        if self.grid.universe:
            keys = self.engine.manifest.members_of.get(self.grid.universe, ())
        else:
            keys = tuple(k for k, i in project.instruments.items() if i.universe is None)
        return {project.instruments[k].symbol: k for k in keys}

    def _instruments(self, events: Events) -> np.ndarray:
        """Each event's instrument key ('' where its instrument column names none of the grid's)."""
        members = self.members()
        lookup = np.array([members.get(s, "") for s in events.symbols] + [""], dtype=object)
        return lookup[events.codes]  # -1 (no symbol) reads the trailing ''

    def compute(self, day: str) -> EventDayResult:
        events = self.events(day)
        n = len(events.ts)
        instrument = self._instruments(events)
        unmatched = instrument == ""
        self.counts.events += n
        self.counts.days += 1
        if unmatched.any():
            self.counts.unmatched += int(unmatched.sum())
            for s in sorted({events.symbols[c] for c in np.unique(events.codes[unmatched]) if c >= 0})[:3]:
                if s not in self.counts.examples and len(self.counts.examples) < 3:
                    self.counts.examples.append(s)
        groups = _groups(instrument[~unmatched], np.flatnonzero(~unmatched))
        slots = {
            k.slot_source: self._own_reads(k, day, events, instrument)
            if k.source == self.grid.events
            else self._reads(k, day, events, groups)
            for k in self.grid.kernels
        }
        values = self._evaluate(events, slots, instrument, groups)
        return EventDayResult(day, self.grid, events.ts, events.kept, values)

    def _market_rows(self, source: str, instrument: str, day: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The instrument's rows of ``source`` in the session of ``day`` and the one before it with data."""
        engine = self.engine
        dates = engine.instrument_dates(instrument)
        days = [d for d in dates if d < day][-1:] + ([day] if day in dates else [])
        parts = [engine.ticks(source, instrument, d) for d in days]
        if not parts:
            return np.empty(0, dtype=np.int64), {}
        if len(parts) == 1:
            return parts[0].ts, parts[0].columns
        ts = np.concatenate([p.ts for p in parts])
        return ts, {c: np.concatenate([p.columns[c] for p in parts]) for c in parts[-1].columns}

    def _reads(self, kernel: Any, day: str, events: Events, groups: dict[str, np.ndarray]) -> np.ndarray:
        module = load_kernel(self.engine.manifest.root / kernel.path, kernel.module)
        out = np.full((len(kernel.slots), len(events.ts)), np.nan)
        latency = np.int64(self.grid.latency_ns)
        for instrument, rows in groups.items():
            ts, columns = self._market_rows(kernel.source, instrument, day)
            event_t = np.ascontiguousarray(events.ts[rows])
            cut = event_t - latency
            if len(ts):
                self.counts.ties += int(
                    np.count_nonzero(np.searchsorted(ts, cut, side="right") > np.searchsorted(ts, cut, side="left"))
                )
            cols = [frozen(columns[c]) if c in columns else np.full(len(ts), np.nan) for c in kernel.columns]
            params = self.engine.params(instrument, 0)
            param_array = np.array([params.get(p, np.nan) for p in kernel.params], dtype=np.float64)
            part = np.empty((len(kernel.slots), len(rows)))
            module.reduce_events(frozen(ts, np.int64), *cols, param_array, event_t, cut, part)
            out[:, rows] = part
        return out

    def _own_reads(self, kernel: Any, day: str, events: Events, instrument: np.ndarray) -> np.ndarray:
        """A kernel over the grid's own events: each event reads the earlier events of its group (its instrument,
        or its value of the column ``by``), of its day and the day before that has events."""
        module = load_kernel(self.engine.manifest.root / kernel.path, kernel.module)
        earlier = [d for d in self.engine.grid_dates(self.grid.name) if d < day][-1:]
        history = self.events(earlier[0]) if earlier else None
        n_history = len(history.ts) if history is not None else 0
        parts = [history, events] if history is not None else [events]
        ts = np.concatenate([p.ts for p in parts])
        columns = {c: np.concatenate([p.columns[c] for p in parts]) for c in kernel.columns}
        if kernel.by:
            keys = np.concatenate([p.keys[kernel.by] for p in parts])
        else:
            keys = np.concatenate([self._instruments(p) for p in parts])
        out = np.full((len(kernel.slots), len(events.ts)), np.nan)
        latency = np.int64(self.grid.latency_ns)
        for key, rows in _groups(keys, np.arange(len(ts))).items():
            if key == "":
                continue  # no value: no group (NaN)
            mine = rows[rows >= n_history]
            if not len(mine):
                continue
            event_t = np.ascontiguousarray(ts[mine])
            cols = [frozen(np.ascontiguousarray(columns[c][rows])) for c in kernel.columns]
            params = self.engine.params(None if kernel.by else instrument[mine[0] - n_history], 0)
            param_array = np.array([params.get(p, np.nan) for p in kernel.params], dtype=np.float64)
            part = np.empty((len(kernel.slots), len(mine)))
            module.reduce_events(
                frozen(np.ascontiguousarray(ts[rows]), np.int64), *cols, param_array, event_t, event_t - latency, part
            )
            out[:, mine - n_history] = part
        return out

    def _evaluate(
        self, events: Events, slots: dict[str, np.ndarray], instrument: np.ndarray, groups: dict[str, np.ndarray]
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
        unmatched = instrument == ""
        for f in self.grid.features:
            result = evaluate(f.tree, inputs)[0].copy()
            result[unmatched] = np.nan  # an event of no known instrument has no market: every value is NaN
            values[f.name] = result
        return values


def _groups(instruments: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The event rows of each instrument, in time order (rows are in time order)."""
    if not len(rows):
        return {}
    order = np.argsort(instruments, kind="stable")
    keys = instruments[order]
    edges = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    return {str(keys[lo]): rows[order[lo:hi]] for lo, hi in zip([0, *edges], [*edges, len(keys)], strict=True)}
