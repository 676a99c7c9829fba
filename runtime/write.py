"""Writing a day's output: one parquet file per interval, all of a day's files renamed into place together.

Each file is written to a temp file in the output folder first; only when every file of the day is complete
are they renamed over their targets, so a crash leaves either the old files or the new ones (a rename is
atomic), never a half-written file. Temp files left by a killed run are removed by the next run.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fspec import __version__
from fspec.errors import OutputError, UsageError
from fspec.files import display, follow_umask
from fspec.grain import EntityKind
from fspec.manifest import Key
from fspec.naming import interval_token
from fspec.runtime.columns import with_dependencies
from fspec.runtime.events import EventDayResult
from fspec.runtime.grid import column_of
from fspec.runtime.manifest import Manifest

TEMP_PREFIX = ".features_"
TEMP_SUFFIX = ".tmp"
UTC_NS = pa.timestamp("ns", tz="UTC")  # the type of every file's ts_event


@dataclass(frozen=True)
class DayResult:
    """Every computed feature for one date and interval, on that session's grid."""

    date: str
    interval: int
    ts_event: np.ndarray
    values: dict[Key, np.ndarray]


def output_path(out_dir: Path, date: str, interval: int | str) -> Path:
    """``features_{YYYYMMDD}_{N}s.parquet`` for a bar width, ``features_{YYYYMMDD}_{grid}.parquet`` for a grid."""
    token = interval if isinstance(interval, str) else interval_token(interval)
    return out_dir / f"features_{date.replace('-', '')}_{token}.parquet"


def _event_table(manifest: Manifest, result: EventDayResult) -> pa.Table:
    """An event grid's day: ts_event, the kept columns as the file has them, then one column per published
    feature (``feature_suffix``), each parsing back to (feature, grid, suffix) with the file's metadata."""
    grid = result.grid
    published = [f for f in grid.features if f.publish]
    fields = [pa.field("ts_event", pa.timestamp("ns", tz="UTC"))]
    arrays = [_arrow(result.ts_event, UTC_NS)]  # (an int64 of ns: no cast, which imports pyarrow.compute)
    for name in result.kept.column_names:
        fields.append(result.kept.schema.field(name))
        arrays.append(result.kept.column(name))
    columns, features = {}, {}
    for f in published:
        name = grid.column(f.name)
        fields.append(pa.field(name, pa.float64()))
        arrays.append(_arrow(result.values[f.name], pa.float64()))
        columns[name] = {
            "feature": f.name,
            "grid": grid.name,
            "instrument": grid.suffix,
            "lineage": [[d, grid.suffix] for d in f.deps],
        }
        features[f.name] = {
            "formula": f.formula,
            "resolved": f.resolved,
            "lookback_seconds": f.lookback_ns / 1e9,
            "target": f.is_target,
            "spec": f"{f.file}:{f.line}",
        }
    meta = {
        "fspec_version": __version__,
        "spec_hash": manifest.data.spec_hash,
        "date": result.date,
        "grid": grid.name,
        "events": grid.events,
        "instrument_column": grid.instrument_column,
        "latency_seconds": grid.latency_ns / 1e9,
        "kept": list(result.kept.column_names),
        "columns": columns,
        "features": features,
    }
    schema = pa.schema(fields, metadata={"fspec": json.dumps(meta, sort_keys=True)})
    return pa.Table.from_arrays(arrays, schema=schema)


@dataclass(frozen=True)
class BarLayout:
    """What every day's file of one interval shares in a run: the column names, the Arrow schema without its
    metadata, and the metadata's per-column and per-feature parts already as JSON (a universe's file has
    thousands of columns: building them once a run, not once a day, is most of a short day's write)."""

    names: list[str]
    schema: pa.Schema
    columns_json: str
    features_json: str


def bar_layout(manifest: Manifest, interval: int, keys: list[Key], lineage: Lineage) -> BarLayout:
    """Per column its feature, instrument and lineage; per feature (once, however many members write it) its
    formula, resolved formula (``{instrument}`` the column's), window and spec line."""
    names, columns, features = [], {}, {}
    found = _Lineages(manifest)
    for key in keys:
        f = manifest.feature(*key)
        if key not in lineage:
            lineage[key] = found.of(key)
        name = column_of(f, key[1], interval)
        names.append(name)
        columns[name] = {
            "feature": f.name,
            "instrument": key[1],
            "lineage": lineage[key],
            "sources": [[source, inst] for source, inst in manifest.source_reads[key]],
        }
        features[f.name] = {
            "formula": f.formula,
            "resolved": f.resolved,
            "window": list(f.window),
            "target": f.is_target,
            "spec": f"{f.file}:{f.line}",
        }
    fields = [pa.field("ts_event", pa.timestamp("ns", tz="UTC"))]
    fields += [pa.field(name, pa.float64()) for name in names]
    return BarLayout(
        names, pa.schema(fields), json.dumps(columns, sort_keys=True), json.dumps(features, sort_keys=True)
    )


def _metadata_json(manifest: Manifest, result: DayResult, layout: BarLayout) -> str:
    """The file's ``fspec`` metadata: the bytes ``json.dumps(meta, sort_keys=True)`` gives, from the layout's
    encoded parts and the day's own fields."""
    parts = {
        "columns": layout.columns_json,
        "date": json.dumps(result.date),
        "features": layout.features_json,
        "fspec_version": json.dumps(__version__),
        "interval_seconds": json.dumps(result.interval),
        "spec_hash": json.dumps(manifest.data.spec_hash),
    }
    return "{" + ", ".join(f"{json.dumps(k)}: {parts[k]}" for k in sorted(parts)) + "}"


Lineage = dict[Key, list[list[str | None]]]  # each column's lineage, computed once a run (the same every day)


def written_resolved(meta: dict[str, Any], column: str) -> str | None:
    """The resolved formula a file's metadata (its ``fspec`` JSON) records for ``column``, or None."""
    entry = meta.get("columns", {}).get(column)
    feature = meta.get("features", {}).get(entry["feature"]) if entry else None
    if feature is None:
        return None
    return str(feature["resolved"]).replace("{instrument}", entry.get("instrument") or "")


Entry = tuple[str, str | None]  # (feature, instrument); instrument "*": every member of a universe's feature


class _Lineages:
    """Every column's lineage (:func:`_lineage`) from its dependencies' lineages, each found once: linear in the
    columns, where one search per column was quadratic in a universe's members (every member's target reads an
    index of all of them; 2,000 stocks took 19 s). A cross-section's lineage is the same for every member, so it
    is found once per feature. Where a shortcut could differ from the definition (a universe's feature that also
    has instruments outside the universe), that column's lineage is found by the definition."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self._memo: dict[Key, list[Entry] | None] = {}
        self._cross: dict[int, list[Entry] | None] = {}  # by id of a cross-section's feature
        self._star: dict[str, frozenset[str | None]] = {}  # the members "*" stands for, by feature name

    def of(self, key: Key) -> list[list[str | None]]:
        found = self._entries(key)
        return _lineage(self.manifest, key) if found is None else [list(e) for e in found]

    def _entries(self, key: Key) -> list[Entry] | None:
        if key in self._memo:
            return self._memo[key]
        feature = self.manifest.feature(*key)
        if feature.cross_section and id(feature) in self._cross:
            return self._cross[id(feature)]
        parts: list[Entry] | None = []
        for dep in self.manifest.deps(key):
            sub = self._entries(dep)
            if sub is None:
                parts = None
                break
            parts += [*sub, dep]
        found = None if parts is None else self._collapse(parts)
        self._memo[key] = found
        if feature.cross_section:
            self._cross[id(feature)] = found
        return found

    def _collapse(self, parts: list[Entry]) -> list[Entry] | None:
        """``parts`` in order, each once, a feature read for every member of its universe as one "*" entry at
        its first place; None where a "*" would have to be undone (the name is not whole here)."""
        ordered = list(dict.fromkeys(parts))
        if len({name for name, _ in ordered}) == len(ordered) and all(i != "*" for _, i in ordered):
            return ordered  # each name once, none a "*": nothing to collapse (a member's own columns)
        sets: dict[str, set[str | None]] = {}
        for name, instrument in ordered:
            covered = self._star[name] if instrument == "*" else {instrument}
            sets.setdefault(name, set()).update(covered)
        starred = {name for name, instrument in ordered if instrument == "*"}
        whole = set()
        for name, instruments in sets.items():
            feature = self.manifest.feature(name, next(iter(instruments)))
            if feature.entity == EntityKind.UNIVERSE and len(instruments) > 1 and instruments == set(feature.members):
                whole.add(name)
                self._star[name] = frozenset(instruments)
            elif name in starred:
                return None
        out: list[Entry] = []
        placed: set[str] = set()
        for name, instrument in ordered:
            if name not in whole:
                out.append((name, instrument))
            elif name not in placed:  # its first place: its later entries are in the "*"
                placed.add(name)
                out.append((name, "*"))
        return out


def _lineage(manifest: Manifest, key: Key) -> list[list[str | None]]:
    """The columns ``key`` depends on, dependencies first. Where it reads a feature of a universe for every
    member (a cross-section), that feature is one entry with instrument "*", not one per member."""
    found = with_dependencies(manifest, [key])[:-1]
    by_name: dict[str, set[str | None]] = {}
    for name, instrument in found:
        by_name.setdefault(name, set()).add(instrument)
    whole = {
        name
        for name, instruments in by_name.items()
        if manifest.feature(name, next(iter(instruments))).entity == EntityKind.UNIVERSE
        and len(instruments) > 1
        and instruments == set(manifest.feature(name, next(iter(instruments))).members)
    }
    lineage: list[list[str | None]] = []
    for name, instrument in found:
        if name not in whole:
            lineage.append([name, instrument])
        elif [name, "*"] not in lineage:
            lineage.append([name, "*"])
    return lineage


def _arrow(values: np.ndarray, kind: pa.DataType) -> pa.Array:
    """A numpy array as an Arrow array of ``kind`` (int64, UTC ns or float64; NaN stays a value, not a null), sharing
    its memory. Not ``pa.array``: that imports pandas (0.2 s) to ask whether the array is a pandas object."""
    values = np.ascontiguousarray(values, dtype=np.int64 if kind in (pa.int64(), UTC_NS) else np.float64)
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values)])


def _float_columns(values: list[np.ndarray]) -> list[pa.Array]:
    """Columns of one length as float64 Arrow arrays: slices of one array over one block of them all. A
    universe's file has thousands of columns; one slice each costs a third of one array each."""
    if not values:
        return []
    block = np.stack(values).astype(np.float64, copy=False)
    rows = block.shape[1]
    flat = pa.Array.from_buffers(pa.float64(), block.size, [None, pa.py_buffer(block)])
    return [flat.slice(i * rows, rows) for i in range(len(values))]


def _table(manifest: Manifest, result: DayResult, keys: list[Key], layout: BarLayout) -> pa.Table:
    arrays = [_arrow(result.ts_event, UTC_NS)]  # (an int64 of ns: no cast, which imports pyarrow.compute)
    arrays += _float_columns([result.values[k] for k in keys])
    schema = layout.schema.with_metadata({"fspec": _metadata_json(manifest, result, layout)})
    return pa.Table.from_arrays(arrays, schema=schema)


# Below this many rows a file's column chunks are written with snappy, not zstd: zstd's cost per chunk is
# nearly fixed (a universe's day of 55 bars and 3,200 columns writes in twice the time), while on so few values
# it saves under 2% of the bytes; from a few hundred values on it saves 10-15%.
SHORT_FILE_ROWS = 256


def codec(rows: int) -> str:
    return "zstd" if rows >= SHORT_FILE_ROWS else "snappy"


def write_day(
    manifest: Manifest,
    results: list[DayResult | EventDayResult],
    keys: dict[int, list[Key]],
    out_dir: Path,
    layouts: dict[int, BarLayout] | None = None,
    before_rename: Callable[[], None] | None = None,
) -> list[Path]:
    """Write one day's files (one per interval and event grid): every file to a temp file first, then all renamed.
    ``layouts`` keeps each interval's layout from one day to the next (see :class:`DayWriter`); ``before_rename``
    is called when every temp file is complete, and if it raises nothing is renamed (the temp files are removed)."""
    layouts = {} if layouts is None else layouts
    lineage: Lineage = {}  # a column's lineage is the same at every interval
    out_dir.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[str, Path]] = []
    try:
        for result in results:
            if isinstance(result, EventDayResult):
                target = output_path(out_dir, result.date, result.grid.name)
                table = _event_table(manifest, result)
                text = list(result.kept.column_names)
            else:
                target = output_path(out_dir, result.date, result.interval)
                if result.interval not in layouts:
                    layouts[result.interval] = bar_layout(manifest, result.interval, keys[result.interval], lineage)
                table = _table(manifest, result, keys[result.interval], layouts[result.interval])
                text = []
            fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f"{TEMP_PREFIX}{target.name}.", suffix=TEMP_SUFFIX)
            os.close(fd)
            staged.append((tmp, target))
            # Feature values are floats that dictionaries rarely shorten, and statistics of ts_event are what readers
            # prune on: a wide file of short sessions (a universe's 3,200 columns of 55 bars) writes in half the time.
            pq.write_table(
                table,
                tmp,
                compression=codec(table.num_rows),
                use_dictionary=text or False,
                write_statistics=["ts_event", *text],
            )
            follow_umask(tmp)
        if before_rename is not None:
            before_rename()
        for tmp, target in staged:
            os.replace(tmp, target)
    except OSError as exc:
        target = staged[-1][1] if staged else out_dir
        raise OutputError(
            display(target, manifest.root),
            f"cannot write output: {exc.strerror or exc}",
            "check free disk space and permissions of the output folder",
        ) from None
    finally:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
    return [target for _, target in staged]


class DayWriter:
    """Writes each day's files on threads of their own while the engine computes the next days (parquet encoding
    and compression release the GIL). With ``writers`` threads at most that many days wait to be written, so the
    extra memory is that many days' output; with none (FSPEC_THREADS=1) days are written in turn. Days are
    written whole or not at all each (see :func:`write_day`), and an error is raised in the order of the days."""

    def __init__(self, manifest: Manifest, keys: dict[int, list[Key]], out_dir: Path, writers: int) -> None:
        self.manifest, self.keys, self.out_dir = manifest, keys, out_dir
        self.written: list[Path] = []
        self.layouts: dict[int, BarLayout] = {}  # each interval's, built on its first day (by the caller's thread)
        self._lineage: Lineage = {}
        self._writers = writers
        self._pool = ThreadPoolExecutor(max_workers=writers, thread_name_prefix="fspec-write") if writers else None
        self._pending: deque[Future[list[Path]]] = deque()

    def submit(self, results: list[DayResult | EventDayResult]) -> None:
        for result in results:
            if isinstance(result, DayResult) and result.interval not in self.layouts:
                keys = self.keys[result.interval]
                self.layouts[result.interval] = bar_layout(self.manifest, result.interval, keys, self._lineage)
        if self._pool is None:
            self.written += write_day(self.manifest, results, self.keys, self.out_dir, self.layouts)
            return
        self._raise_failed()
        while len(self._pending) >= self._writers:
            self._wait_oldest()
        # renamed into place after the day before: a failed day is never followed by a later one on disk
        after = partial(_renamed, self._pending[-1]) if self._pending else None
        self._pending.append(
            self._pool.submit(write_day, self.manifest, results, self.keys, self.out_dir, self.layouts, after)
        )

    def _raise_failed(self) -> None:
        """A day in flight that failed already: its error now (and the days before it written), not after the
        next day is computed."""
        if any(f.done() and f.exception() is not None for f in self._pending):
            while self._pending:
                self._wait_oldest()

    def _wait_oldest(self) -> None:
        """Until the oldest day in flight is written; its error, if it failed, is raised here."""
        self.written += self._pending.popleft().result()

    def wait(self) -> None:
        """Until every day in flight is written, in order; the first error is raised."""
        while self._pending:
            self._wait_oldest()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)

    def abandon(self) -> None:
        """After a failure elsewhere: the days in flight are still written whole (or fail whole), never half, and
        the failure being raised stays the one reported."""
        with contextlib.suppress(Exception):
            self.close()


def _renamed(previous: Future[list[Path]]) -> None:
    """Until the day before is renamed into place; its error if it failed (this day then writes nothing)."""
    previous.result()


def remove_leftovers(out_dir: Path) -> list[Path]:
    """Delete temp files that a killed run left in the output folder (a live run's own are not there yet)."""
    if not out_dir.is_dir():
        return []
    found = sorted(p for p in out_dir.glob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}") if p.is_file())
    for path in found:
        path.unlink(missing_ok=True)
    return found


def refuse_shrinking(manifest: Manifest, out_dir: Path, planned: dict[Path, list[str]]) -> None:
    """A run that writes a subset (--select) never replaces a file that holds columns it would drop."""
    for target, columns in planned.items():
        if not target.exists():
            continue
        try:
            existing = pq.read_schema(target).names
        except (OSError, pa.ArrowException):
            continue  # not a readable parquet file: it holds no columns to lose
        dropped = [c for c in existing if c not in set(columns) and c != "ts_event"]
        if dropped:
            raise UsageError(
                f"{display(target, manifest.root)} holds {len(existing) - 1} columns; this run would replace it "
                f"with {len(columns)} and drop {len(dropped)} (e.g. {dropped[0]})",
                "write the subset elsewhere with --out DIR, or run without --select",
            )
