"""Load one source file for one instrument and date: columns mapped, time in UTC int64 ns, rows filtered,
sorted (or rejected), bar sources moved to the time their values become known."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fspec import paths
from fspec.errors import DataError
from fspec.files import display as display_path
from fspec.lazy import LazyModule
from fspec.manifest import TIME_RESIDUAL, ColumnDef, SourceDef, tree_columns
from fspec.operators import REGISTRY
from fspec.runtime.grid import NS
from fspec.runtime.kernels import run_all

pc = LazyModule("pyarrow.compute")  # imported where a cast, a take or a filter needs it

if TYPE_CHECKING:
    import pandas as pd

NS_PER_UNIT = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": NS}

# A file's rows as read: parquet as an Arrow table (its columns go to numpy without pandas when they are plain
# numbers or timestamps), CSV as a pandas frame. Anything unusual (text times, time zones to localise, nulls
# in the time column, non-numeric columns) goes through pandas, whose messages name the problem.
Frame: TypeAlias = "pa.Table | pd.DataFrame"
Column: TypeAlias = "pa.ChunkedArray | pd.Series"


class DataWarning(UserWarning):
    """Data that fspec fixed on load (e.g. unsorted rows), reported to the user."""


@dataclass
class Ticks:
    """One source's rows for one instrument and day: ``ts`` (UTC ns, ascending) and float64 columns."""

    ts: np.ndarray
    columns: dict[str, np.ndarray]
    # an option chain's contracts (expiry day, strike, 1 call / 0 put), which its rows' `_contract` numbers index
    contracts: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def take(self, mask_or_index: np.ndarray | slice) -> Ticks:
        return Ticks(self.ts[mask_or_index], {k: v[mask_or_index] for k, v in self.columns.items()}, self.contracts)


def empty_ticks(source: SourceDef) -> Ticks:
    """No rows of a source (an option chain's with no contracts)."""
    columns = {c.name: np.empty(0) for c in source.columns}
    if source.contract is None:
        return Ticks(np.empty(0, dtype=np.int64), columns)
    from fspec.runtime.chain import CONTRACT

    return Ticks(np.empty(0, dtype=np.int64), {**columns, CONTRACT: np.empty(0, dtype=np.int64)}, np.zeros((0, 3)))


@contextmanager
def arrow_allocator() -> Iterator[None]:
    """Inside, Arrow allocates with jemalloc (the system allocator where this pyarrow has no jemalloc), unless
    ARROW_DEFAULT_MEMORY_POOL names a pool; the previous pool is restored on the way out.

    Reading and joining parquet allocates a few large buffers per file. pyarrow's default on Linux, mimalloc,
    spent 1.2-2.7 s of system time on them in a 10M-row ``fspec run`` here, against about 0.8 s for jemalloc
    (and for the system allocator), and the run took 2.9-3.7 s instead of 2.5-2.6 s (six interleaved runs
    each, the benchmark's 10M project).
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        yield
        return
    previous = pa.default_memory_pool()
    try:
        preferred = pa.jemalloc_memory_pool()
    except NotImplementedError:
        preferred = pa.system_memory_pool()
    pa.set_memory_pool(preferred)
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def source_path(root: Path, source: SourceDef, symbol: str, date: str) -> Path:
    """The source's file of ``symbol`` and ``date``: a pattern (with ``*``) for the part files of a partition."""
    return root / paths.fill(source.path, symbol, date)


def source_exists(path: Path) -> bool:
    return any(path.parent.glob(path.name)) if paths.has_glob(path.name) else path.exists()


def available_dates(root: Path, source: SourceDef, symbol: str) -> list[str]:
    """Dates (YYYY-MM-DD) for which the source has a file for this symbol."""
    return sorted({day for _, _, day in paths.matches(root, source.path, symbol) if day is not None})


def dates_by_symbol(root: Path, source: SourceDef) -> dict[str, list[str]]:
    """For each symbol of a per-symbol path template (``{symbol}`` and ``{date}`` in it), the dates it has a file
    for: :func:`available_dates` of every symbol from one listing of the source's files."""
    found: dict[str, set[str]] = {}
    for _, symbol, day in paths.matches(root, source.path):
        if symbol is not None and day is not None:
            found.setdefault(symbol, set()).add(day)
    return {symbol: sorted(days) for symbol, days in found.items()}


def read_frame(
    path: Path,
    fmt: str,
    wanted: list[str],
    display: str,
    only: tuple[str, set[str]] | None = None,
    header: tuple[str, ...] | None = None,
    join: bool = True,
    check: list[str] | None = None,
    needles: tuple[tuple[str, ...], ...] = (),
    span: Span | None = None,
    text: tuple[str, ...] = (),
) -> Frame:
    """The ``wanted`` columns of a file. ``only`` = (symbol column, symbols): parquet row groups whose statistics
    say they hold none of these symbols are not read, and a text symbol column is read as a dictionary (codes,
    not millions of strings). ``join``: each parquet column in one chunk (else one chunk per row group).
    ``check``: the columns the file must have (default ``wanted``), when only some of them are read now.
    ``needles``: of a JSON-lines file, the texts the source's filter needs of a line (lines without are not
    decoded; see :func:`jsonlines.needles_of`). ``span``: of parquet, only the row groups whose time statistics
    may hold a row of its UTC interval are read (a file of many days, run for some of them). ``text``: parquet
    columns read as dictionaries where they hold text (an option's right: codes, not a string a row)."""
    if paths.has_glob(path.name):  # the part files of a partition, read in name order and joined
        parts = sorted(path.parent.glob(path.name))
        if not parts:
            raise DataError(display, "no file matches", "check the source's 'path' template, the symbol and the date")
        frames = [
            read_frame(part, fmt, wanted, display, only, header, False, check, needles, span, text) for part in parts
        ]
        if isinstance(frames[0], pa.Table):
            try:
                table = pa.concat_tables(frames, promote_options="permissive")
            except (pa.ArrowTypeError, pa.ArrowInvalid) as exc:  # (text in one part, numbers in another)
                raise DataError(
                    display,
                    f"the part files disagree on a column's type: {exc}",
                    "write each column with one type in every part file",
                ) from None
            return _joined(table) if join else table
        import pandas as pd

        return pd.concat(frames, ignore_index=True)
    if not path.exists():
        raise DataError(display, "file not found", "check the source's 'path' template, the symbol and the date")
    if fmt == "jsonl":
        from fspec import jsonlines

        columns = list(dict.fromkeys([*wanted, *(check or ())]))
        text = {only[0]} if only else set()
        return jsonlines.read(path, columns, header or (), text, display, needles).select(wanted)
    try:
        if fmt == "parquet":
            # ParquetFile, not pq.read_table: one open of the file, and no import of pyarrow.dataset (0.3 s).
            # A file of many symbols without pre-buffering: its row groups are large, and reading all of a row
            # group's column chunks in one buffer first (pyarrow's default) cost a third more system time and
            # 240 MB more peak memory for a 10M-row file here, while files of one symbol read alike either way.
            dictionaries = [*([only[0]] if only else []), *text] or None  # (pyarrow ignores a column of numbers)
            with pq.ParquetFile(path, read_dictionary=dictionaries, pre_buffer=not only) as file:
                names = file.schema_arrow.names
                missing = [c for c in check or wanted if c not in names]
                if missing:
                    raise DataError(
                        display,
                        f"missing column(s) {', '.join(missing)}; the file has: {', '.join(names)}",
                        "fix the column mapping ('from:') of this source",
                    )
                groups = _row_groups(file, only, span)
                if groups is not None:
                    table = file.read_row_groups(groups, columns=wanted)
                else:
                    table = file.read(columns=wanted)
                return _joined(table) if join else table
        from fspec.runtime.csvfile import read_csv  # pandas: a third of a second to import, only for CSV

        frame = read_csv(path, display, header, {only[0]: str} if only else None)  # symbols are text: 0700
    except DataError:
        raise
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise DataError(display, f"cannot read {fmt} file: {exc}", "check that the file is complete") from None
    missing = [c for c in check or wanted if c not in frame.columns]
    if missing:
        raise DataError(
            display,
            f"missing column(s) {', '.join(missing)}; the file has: {', '.join(frame.columns)}",
            "fix the column mapping ('from:') of this source",
        )
    return frame[wanted]


def _joined(table: pa.Table) -> pa.Table:
    """The table with each column in one chunk (a file has one per row group), joined on the kernels' thread
    pool: joining is mostly first touches of fresh memory, which go faster on two threads (five 2M-row files
    in a fresh process: 0.42 s against 0.56 s on one). A file of one row group is returned as it is (500
    files of one instrument each rebuilt 500 tables of columns that were whole already)."""
    if all(column.num_chunks == 1 for column in table.columns):
        return table
    joined = run_all([partial(_one_chunk, column) for column in table.columns])
    return pa.Table.from_arrays(joined, names=table.column_names)


def _row_groups_holding(file: pq.ParquetFile, column: str, symbols: set[str]) -> list[int] | None:
    """The row groups whose min/max statistics of ``column`` may include one of ``symbols``; None when the
    statistics cannot tell (no statistics, or a column type other than text or integers)."""
    kind = file.schema_arrow.field(column).type
    if pa.types.is_dictionary(kind):  # text read as a dictionary
        kind = kind.value_type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        wanted: list[Any] = sorted(symbols)
    elif pa.types.is_integer(kind):
        wanted = sorted(int(s) for s in symbols if s.lstrip("-").isdigit())
    else:
        return None
    leaf = file.schema_arrow.get_field_index(column)  # a flat file: its leaf columns are its fields
    meta = file.metadata
    keep = []
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(leaf).statistics
        if stats is None or not stats.has_min_max:
            return None
        if any(stats.min <= s <= stats.max for s in wanted):
            keep.append(i)
    return keep


@dataclass(frozen=True)
class Span:
    """The UTC interval ``[lo, hi)`` (ns) of the rows a run needs of a file of many days, and how its time column
    is read (the row groups outside it, by their statistics, are not read)."""

    lo: int
    hi: int
    source: SourceDef


def _row_groups(file: pq.ParquetFile, only: tuple[str, set[str]] | None, span: Span | None) -> list[int] | None:
    """The row groups that may hold a wanted symbol (``only``) in the wanted time (``span``); None: all."""
    by_symbol = _row_groups_holding(file, *only) if only else None
    by_time = row_groups_in_span(file, span) if span is not None else None
    if by_time is None or by_symbol is None:
        return by_symbol if by_time is None else by_time
    return [g for g in by_symbol if g in set(by_time)]


# A naive time in a local zone is at most this far from UTC (UTC-12 to UTC+14, with a margin)
LOCAL_SLACK_NS = 26 * 3600 * NS


def _time_scale(file: pq.ParquetFile, source: SourceDef) -> tuple[int, int] | None:
    """(ns per unit of the time column's stored integers, slack for a local zone) where its statistics give UTC
    times; None when they cannot (text times, a date split from the time of day, a missing column)."""
    if source.splits_date_and_time or source.time_column not in file.schema_arrow.names:
        return None
    kind = file.schema_arrow.field(source.time_column).type
    if pa.types.is_integer(kind) and source.time_unit:
        return NS_PER_UNIT[source.time_unit], 0
    if pa.types.is_timestamp(kind) and (kind.tz is not None or source.time_zone):
        local = kind.tz is None and source.time_zone != "UTC"
        return NS_PER_UNIT[kind.unit], LOCAL_SLACK_NS if local else 0
    return None


def _group_times(file: pq.ParquetFile, source: SourceDef) -> list[tuple[int, int]] | None:
    """Each row group's earliest and latest time (UTC ns, widened by the slack of a local zone) by its
    statistics; None when they cannot tell (no statistics, or a time column they do not give in UTC)."""
    scale = _time_scale(file, source)
    if scale is None:
        return None
    factor, slack = scale
    leaf = file.schema_arrow.get_field_index(source.time_column)  # a flat file: its leaf columns are its fields
    found = []
    for i in range(file.metadata.num_row_groups):
        stats = file.metadata.row_group(i).column(leaf).statistics
        if stats is None or not stats.has_min_max or not isinstance(stats.min_raw, int):
            return None
        found.append((stats.min_raw * factor - slack, stats.max_raw * factor + slack))
    return found


def row_groups_in_span(file: pq.ParquetFile, span: Span) -> list[int] | None:
    """The row groups whose time statistics may hold a time in ``span``; None when they cannot tell."""
    times = _group_times(file, span.source)
    if times is None:
        return None
    return [i for i, (lo, hi) in enumerate(times) if lo < span.hi and hi >= span.lo]


def time_range(root: Path, source: SourceDef, symbol: str) -> tuple[int, int] | None:
    """The earliest and latest UTC ns of a parquet file of many days (all its part files), from its statistics
    alone; None when they cannot tell."""
    path = source_path(root, source, symbol, "")
    parts = sorted(path.parent.glob(path.name)) if paths.has_glob(path.name) else [path]
    times: list[tuple[int, int]] = []
    for part in parts:
        try:
            with pq.ParquetFile(part) as file:
                found = _group_times(file, source)
        except (OSError, ValueError, pa.ArrowException):
            return None  # (reading it names the problem)
        if found is None:
            return None
        times += found
    return (min(t[0] for t in times), max(t[1] for t in times)) if times else None


@dataclass
class SymbolRows:
    """One file of many symbols, read once: each wanted symbol's rows (in file order) as a frame of their own,
    which ``load_source`` reads like a file of that symbol alone. A frame holds the columns ``load_source``
    reads: the rows' UTC times (converted once for the file), the mapped columns and those of the source's
    filter and computed columns."""

    frames: dict[str, Frame]
    nbytes: int
    rows: int = 0  # the file's rows (of the row groups read), wanted or not

    def rows_between(self, lo: int, hi: int) -> int:
        """How many of the wanted symbols' rows have a time in ``[lo, hi)`` (UTC ns)."""
        found = 0
        for frame in self.frames.values():
            values = frame_column(frame, UTC_NS)
            parts = (
                [_as_numpy(pa.chunked_array([c]), pa.int64()) for c in values.chunks]
                if isinstance(values, pa.ChunkedArray)
                else [values.to_numpy()]
            )
            found += sum(int(np.count_nonzero((ts >= lo) & (ts < hi))) for ts in parts)
        return found

    def wanted_rows(self) -> int:
        return sum(len(frame) for frame in self.frames.values())


def read_symbols(
    root: Path, source: SourceDef, date: str, symbols: set[str], path_symbol: str = "", span: Span | None = None
) -> SymbolRows:
    """Read a file holding many symbols (``source.symbol_column``) once and group its rows by symbol: only the
    columns the source needs, in parquet only the row groups that may hold one of ``symbols``, and only the
    rows of ``symbols`` are kept. ``path_symbol`` fills a {symbol} of the path (a file per symbol that also
    names it in a column). ``span``: only the parquet row groups that may hold a time in it are read."""
    path = source_path(root, source, path_symbol, date)
    shown = display_path(path, root)
    column = source.symbol_column or ""
    only = (column, symbols)
    keys = list(dict.fromkeys([column, *_time_columns(source)]))
    wanted = list(dict.fromkeys([*keys, *file_columns(source)]))
    loaded = _loaded_columns(source)
    parquet = source.format == "parquet"
    # Parquet: the symbol and time columns first, the others once it is known whether the rows are grouped by
    # symbol already. Not joined: rows are regrouped chunk by chunk, and a symbol's rows of a file grouped by
    # symbol are views of their row group (joined by the loader only where they span two).
    needles = jsonl_needles(source)
    frame = read_frame(
        path, source.format, keys if parquet else wanted, shown, only, source.header, False, wanted, needles, span
    )
    frame = _with_utc_ns(frame, source, shown, date)  # once for the file, not once per symbol
    codes, names = symbol_codes(frame, column, shown)
    rest = [c for c in loaded if c not in keys] if parquet else []  # the columns not read yet
    frame = _select(frame, [UTC_NS, *(c for c in loaded if c not in rest)])  # symbol and time: read already
    frames: dict[str, Frame] = {}
    if not len(codes) or not bool(np.any(codes[1:] < codes[:-1])):  # grouped by symbol already (or empty)
        if rest:
            more = read_frame(path, "parquet", rest, shown, only, join=False, span=span)
            if more.num_rows != len(codes):
                raise _changed(shown)
            frame = pa.Table.from_arrays([*frame.columns, *more.columns], names=[*frame.column_names, *rest])
        frame = _select(frame, [UTC_NS, *loaded])
        edges = [0, *(np.flatnonzero(codes[1:] != codes[:-1]) + 1).tolist(), len(codes)]
        for lo, hi in pairwise(edges):
            if hi > lo and codes[lo] >= 0 and names[codes[lo]] in symbols:
                frames[names[codes[lo]]] = _rows(frame, lo, hi)
        return SymbolRows(frames, _nbytes(frame), len(codes))
    # Interleaved (a file in time order): a stable counting sort by symbol, whose rows keep their file order.
    from fspec.runtime import regroup  # numba, which a file grouped by symbol does not need

    # Rows of a symbol no instrument reads get code -1, as rows without a symbol have: they are not moved.
    keep = np.array([*(name in symbols for name in names), False])
    if not keep[:-1].all():  # (every symbol read: the codes stay as they are)
        lookup = np.where(keep, np.arange(len(keep), dtype=np.int32), np.int32(-1))
        codes = lookup[codes]  # (code -1 indexes the last entry: -1)
    codes = regroup.read_only(codes)
    starts = regroup.read_only(regroup.starts_of(codes, len(names)))
    if isinstance(frame, pa.Table):
        frame = _regrouped(frame, path, rest, shown, only, codes, starts, span)
        frame = _select(frame, [UTC_NS, *loaded])
    else:
        frame = frame.iloc[regroup.order_of(codes, starts)]
    for k, name in enumerate(names):
        if starts[k + 1] > starts[k]:
            frames[name] = _rows(frame, int(starts[k]), int(starts[k + 1]))
    return SymbolRows(frames, _nbytes(frame), len(codes))


def jsonl_needles(source: SourceDef) -> tuple[tuple[str, ...], ...]:
    """What the source's filter needs of a JSON-lines file's line (nothing for other formats)."""
    if source.format != "jsonl":
        return ()
    from fspec import jsonlines

    return jsonlines.needles_of(source.filter_tree, source.header or ())


def _time_columns(source: SourceDef) -> list[str]:
    return [
        source.time_column,
        *(c for c in (source.time_date, source.time_day) if c is not None and c != "{date}"),
    ]


def _loaded_columns(source: SourceDef) -> list[str]:
    """The file columns ``load_source`` reads of a frame whose times are converted: the mapped columns and
    those of the filter and computed columns (which may name the time or symbol column too)."""
    return list(
        dict.fromkeys(
            [
                *(c.source_column for c in source.columns if not c.expr),
                *tree_columns(source.filter_tree),
                *(c for tree in source.column_trees.values() for c in tree_columns(tree)),
            ]
        )
    )


def _select(frame: Frame, names: list[str]) -> Frame:
    return frame.select(names) if isinstance(frame, pa.Table) else frame[names]


def _rows(frame: Frame, lo: int, hi: int) -> Frame:
    return frame.slice(lo, hi - lo) if isinstance(frame, pa.Table) else frame.iloc[lo:hi]


def _nbytes(frame: Frame) -> int:
    return int(frame.nbytes if isinstance(frame, pa.Table) else frame.memory_usage(deep=False).sum())


def _changed(display: str) -> DataError:
    return DataError(display, "the file changed while it was read (its row count differs)", "run again")


# Rows decoded at a time: a batch's columns (2 MB each) are still in the cache when they are moved, and 10M
# rows are 40 batches to hand over. Reading the benchmark's 10M-row file took 1.8-2.1 CPU seconds in batches of
# 65,536 rows, 1.65-2.25 in these and 1.6-2.0 in batches of 1M rows (8 MB a column), on a busy machine.
REGROUP_BATCH_ROWS = 262_144


def _regrouped(
    table: pa.Table,
    path: Path,
    rest: list[str],
    display: str,
    only: tuple[str, set[str]],
    codes: np.ndarray,
    starts: np.ndarray,
    span: Span | None = None,
) -> pa.Table:
    """The rows of the wanted symbols (``codes`` >= 0), grouped by code in file order (``starts``: each code's
    first row): the columns of ``table`` (read already), then the file's columns ``rest``, decoded a batch of
    rows at a time and each batch moved at once, so that the file's columns are never held whole beside their
    regrouped copy. The next batch is decoded (by Arrow, on its threads) while this thread moves the last one:
    one hand-over per batch, where moving each column on the pool cost six waits a batch (twice the time on
    a busy machine, whose threads wait for a core at each). Each batch's rows get their places once, for all
    its columns."""
    from fspec.runtime import regroup

    parts = sorted(path.parent.glob(path.name)) if paths.has_glob(path.name) else [path]
    kinds = {name: table.schema.field(name).type for name in table.column_names}
    if rest:  # (part files' types are unified as read_frame's concatenation does)
        schema = pa.unify_schemas([_parquet_schema(p, display) for p in parts], promote_options="permissive")
        kinds.update({name: schema.field(name).type for name in rest})
    movers = {name: _Mover(kind, starts) for name, kind in kinds.items()}
    cursor = starts[:-1].copy()
    dest = np.empty(REGROUP_BATCH_ROWS, dtype=np.int64)

    def move(row: int, batch: pa.RecordBatch | None) -> None:
        """Rows ``row`` on of ``batch`` (or of ``table`` alone, ``REGROUP_BATCH_ROWS`` of them)."""
        n = batch.num_rows if batch is not None else min(REGROUP_BATCH_ROWS, len(codes) - row)
        if row + n > len(codes):
            raise _changed(display)
        where = dest if n <= len(dest) else np.empty(n, dtype=np.int64)
        regroup.destinations(codes[row : row + n], cursor, where[:n])
        places = regroup.read_only(where[:n])
        for name in table.column_names:  # the columns read already (the rows' times)
            at = 0
            for chunk in table.column(name).slice(row, n).chunks:
                movers[name].add(chunk, places[at : at + len(chunk)])
                at += len(chunk)
        if batch is not None:
            for k, name in enumerate(rest):
                movers[name].add(batch.column(k), places)

    row = 0
    if not rest:
        for row in range(0, len(codes), REGROUP_BATCH_ROWS):
            move(row, None)
    else:
        with ThreadPoolExecutor(1, thread_name_prefix="fspec-decode") as decoder:
            batches = _parquet_batches(parts, rest, display, only, span)
            pending = decoder.submit(next, batches, None)
            while (batch := pending.result()) is not None:
                pending = decoder.submit(next, batches, None)
                move(row, batch)
                row += batch.num_rows
        if row != len(codes):
            raise _changed(display)
    order = None
    if any(not m.width for m in movers.values()):
        order = _int64_array(regroup.order_of(codes, starts))
    return pa.Table.from_arrays([m.array(order) for m in movers.values()], names=list(movers))


def _parquet_schema(path: Path, display: str) -> pa.Schema:
    try:
        with pq.ParquetFile(path) as file:
            return file.schema_arrow
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise DataError(display, f"cannot read parquet file: {exc}", "check that the file is complete") from None


def _parquet_batches(
    parts: list[Path], columns: list[str], display: str, only: tuple[str, set[str]], span: Span | None = None
) -> Iterator[pa.RecordBatch]:
    """The rows of ``columns`` that :func:`read_frame` reads with ``only`` (the same part files and row groups, in the
    same order), ``REGROUP_BATCH_ROWS`` at a time."""
    if not columns:
        return
    for part in parts:
        try:
            with pq.ParquetFile(part, pre_buffer=False) as file:  # (as read_frame reads a file of many symbols)
                groups = _row_groups(file, only, span)
                yield from file.iter_batches(REGROUP_BATCH_ROWS, row_groups=groups, columns=columns, use_threads=True)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise DataError(display, f"cannot read parquet file: {exc}", "check that the file is complete") from None


class _Mover:
    """One column's rows regrouped, filled chunk by chunk in file order. Fixed-width values (integers, floats,
    times, dates) are moved by :func:`regroup.put`, their validity (where a chunk has nulls) beside them;
    anything else (text, booleans) is kept and taken through the rows' order at the end."""

    def __init__(self, kind: pa.DataType, starts: np.ndarray) -> None:
        self.kind = kind
        self.rows = int(starts[-1])
        fixed = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_temporal(kind)
        width = kind.bit_width // 8 if fixed else 0  # (only fixed-width types have a bit width: text raises)
        self.width = width if width in (4, 8) else 0
        self.chunks: list[pa.Array] = []
        self.valid: np.ndarray | None = None  # 1 where a value is present, once a chunk had nulls
        if self.width:
            # Arrow's pool, not numpy's: the run's allocator, which reuses the memory of the columns freed
            # before (numpy asks the kernel for fresh, huge pages for arrays this size).
            self.buffer = pa.allocate_buffer(self.rows * self.width)
            self.out = np.frombuffer(self.buffer, dtype=f"i{self.width}")
            self.cursor = starts[:-1].copy()

    def add(self, chunk: pa.Array, places: np.ndarray) -> None:
        """Move ``chunk``'s rows to ``places`` (-1: not moved), from :func:`regroup.destinations`."""
        from fspec.runtime import regroup

        if chunk.type != self.kind:  # a part file of another type (int32 where the others have int64)
            chunk = pc.cast(chunk, self.kind)
        if not self.width:
            self.chunks.append(chunk)
            return
        if chunk.null_count:
            if self.valid is None:
                self.valid = np.ones(self.rows, dtype=np.int8)
            bits = np.unpackbits(np.frombuffer(chunk.buffers()[0], dtype=np.uint8), bitorder="little")
            regroup.put(
                places, regroup.read_only(bits[chunk.offset : chunk.offset + len(chunk)].view(np.int8)), self.valid
            )
        dtype = self.out.dtype
        values = np.frombuffer(chunk.buffers()[1], dtype=dtype, count=len(chunk), offset=chunk.offset * self.width)
        regroup.put(places, values, self.out)

    def array(self, order: pa.Array | None) -> pa.Array:
        if not self.width:
            assert order is not None
            column = _one_chunk(pa.chunked_array(self.chunks, self.kind))  # (dictionaries unified)
            self.chunks = []
            return pc.take(column.chunk(0) if column.num_chunks else pa.nulls(0, self.kind), order)
        if self.valid is None:
            return pa.Array.from_buffers(self.kind, self.rows, [None, self.buffer])
        nulls = int(self.rows - np.count_nonzero(self.valid))
        validity = pa.py_buffer(np.packbits(self.valid.view(bool), bitorder="little"))
        return pa.Array.from_buffers(self.kind, self.rows, [validity, self.buffer], null_count=nulls)


def _int64_array(values: np.ndarray) -> pa.Array:
    """An int64 numpy array as an Arrow array, without a copy; not pa.array(values), which imports pandas
    (0.2-0.5 s) to ask whether ``values`` is a Series."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


UTC_NS = "__fspec_utc_ns"  # the column of a shared file's rows' times, converted once


def _with_utc_ns(frame: Frame, source: SourceDef, display: str, file_date: str) -> Frame:
    if isinstance(frame, pa.Table):
        return frame.append_column(UTC_NS, _utc_ns_column(frame, source, display, file_date))
    return frame.assign(**{UTC_NS: utc_ns(frame, source, display, file_date)})


def _utc_ns_column(table: pa.Table, source: SourceDef, display: str, file_date: str) -> pa.ChunkedArray:
    """The rows' UTC ns as a column of ``table``: chunk by chunk (a chunk per row group read) where each chunk
    converts straight from Arrow, so that epoch nanoseconds and UTC timestamps are not copied into one piece
    first (the regrouping moves them anyway); else converted whole."""
    column = table.column(source.time_column) if source.time_column in table.column_names else None
    if column is not None and column.num_chunks > 1 and not source.splits_date_and_time:
        unit, zone, name = source.time_unit, source.time_zone, source.time_column
        parts = [_arrow_utc_ns(pa.chunked_array([chunk]), unit, zone, display, name) for chunk in column.chunks]
        if all(part is not None for part in parts):
            return pa.chunked_array([_int64_array(part) for part in parts if part is not None], pa.int64())
    return pa.chunked_array([_int64_array(utc_ns(table, source, display, file_date))], pa.int64())


def utc_ns(frame: Frame, source: SourceDef, display: str, file_date: str = "") -> np.ndarray:
    """The rows' times as UTC ns (converted already when ``frame`` is a symbol's rows of a shared file)."""
    names = frame.column_names if isinstance(frame, pa.Table) else frame.columns
    if UTC_NS in names:
        values = frame_column(frame, UTC_NS)
        return _as_numpy(values, pa.int64()) if isinstance(values, pa.ChunkedArray) else values.to_numpy()
    if not len(frame):  # (a CSV of a header line alone has columns of no type: no times to convert)
        return np.empty(0, dtype=np.int64)
    if source.splits_date_and_time:
        return _split_utc_ns(frame, source, display, file_date)
    return _to_utc_ns(frame_column(frame, source.time_column), source, display)


def symbol_codes(frame: Frame, column: str, display: str) -> tuple[np.ndarray, list[str]]:
    """Each row's symbol as a code (``-1``: no symbol, dropped with a warning) and the symbols of the codes, as
    the text instruments give (an integer column's 17 is '17')."""
    values = frame_column(frame, column)
    if isinstance(values, pa.ChunkedArray):
        encoded = values if pa.types.is_dictionary(values.type) else pc.dictionary_encode(values)
        # (each row group read has a dictionary of its own: one for all of them, then the indices in one piece)
        encoded = encoded.unify_dictionaries().combine_chunks() if encoded.num_chunks else pa.nulls(0, encoded.type)
        indices = encoded.indices.fill_null(-1) if encoded.null_count else encoded.indices
        indices = indices.cast(pa.int32())  # a file's own dictionary may have narrower indices (int8: a category)
        codes = np.frombuffer(indices.buffers()[1], dtype=np.int32, count=len(indices), offset=indices.offset * 4)
        uniques = encoded.dictionary.to_pylist()
    else:
        import pandas as pd

        found, index = pd.factorize(values)
        codes, uniques = found.astype(np.int32), list(index)
    missing = int(np.count_nonzero(codes < 0))
    if missing:
        warnings.warn(
            f"{display}: {missing:,} row(s) with no value in the symbol column '{column}' (first at row "
            f"{int(np.flatnonzero(codes < 0)[0])}) belong to no instrument and are ignored (fill in their symbol "
            "to read them)",
            DataWarning,
            stacklevel=3,
        )
    return codes, [symbol_text(u) for u in uniques]


def symbol_text(value: object) -> str:
    """A symbol as instruments name it: the text of a value of a symbol column (17 and 17.0 are '17'), the one
    rule for the run, the universes found in the data and the spec tests."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a CSV integer column with a gap is read as floats
    return str(value)


def _one_chunk(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if column.num_chunks == 1:
        return column
    if pa.types.is_dictionary(column.type):  # each row group has its own dictionary: one for all of them
        column = column.unify_dictionaries()
    return pa.chunked_array([pa.concat_arrays(column.chunks)], column.type)


def frame_column(frame: Frame, name: str) -> Column:
    return frame.column(name) if isinstance(frame, pa.Table) else frame[name]


def _split_utc_ns(frame: Frame, source: SourceDef, display: str, file_date: str = "") -> np.ndarray:
    """UTC ns of a time split into a calendar date (or a day number from ``first_date``) and a local time of
    day: digits (``clock``: 931 is 09:31 for HHMM) or a count of ``unit`` after the ``anchor`` time."""
    import pandas as pd

    def series(name: str) -> pd.Series:
        values = frame_column(frame, name)
        return values.to_pandas() if isinstance(values, pa.ChunkedArray) else values.reset_index(drop=True)

    if source.time_date == "{date}":  # the date of the file
        days = pd.Series(pd.Timestamp(file_date), index=range(len(frame)))
        bad, what = days.isna(), "file's date"
    elif source.time_date is not None:
        dates = series(source.time_date)
        if isinstance(dates.dtype, pd.DatetimeTZDtype):  # a date written as a zone's midnight: its local date
            dates = dates.dt.tz_convert(source.time_zone).dt.tz_localize(None).dt.normalize()
        text = dates.astype("Int64").astype(str) if pd.api.types.is_numeric_dtype(dates) else dates.astype(str)
        days = pd.to_datetime(text, format="%Y%m%d" if pd.api.types.is_numeric_dtype(dates) else None, errors="coerce")
        bad, what = days.isna(), f"date column '{source.time_date}'"
    else:
        numbers = pd.to_numeric(series(source.time_day or ""), errors="coerce")
        days = pd.Timestamp(source.first_date or "") + pd.to_timedelta(numbers, unit="D")
        bad, what = numbers.isna() | (numbers != numbers.round()), f"day column '{source.time_day}'"
    if bad.any():
        count, row = int(bad.sum()), int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            display, f"{count:,} unreadable value(s) in the {what} (first at row {row})", "fix or drop those rows"
        )
    clock = pd.to_numeric(series(source.time_column), errors="coerce")
    if source.time_clock is not None:
        offset = _clock_offset(clock.to_numpy(dtype=np.float64), source, display)
    else:
        if clock.isna().any():
            raise _missing_times(clock.isna().to_numpy(), display, source.time_column)
        offset = np.round(clock.to_numpy(dtype=np.float64) * NS_PER_UNIT[source.time_unit or "s"]).astype(np.int64)
    local = days.to_numpy(dtype="datetime64[ns]").view(np.int64) + source.time_anchor * NS + offset
    try:
        stamps = pd.Series(local.view("datetime64[ns]")).dt.tz_localize(
            source.time_zone, ambiguous="raise", nonexistent="raise"
        )
    except (ValueError, TypeError) as exc:
        raise DataError(display, f"local times that do not exist or repeat in {source.time_zone}: {exc}", "") from None
    return stamps.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().view(np.int64).copy()


def _clock_offset(values: np.ndarray, source: SourceDef, display: str) -> np.ndarray:
    """Nanoseconds after midnight of times of day written as digits (HHMM, HHMMSS, HHMMSSmmm)."""
    whole = np.nan_to_num(values, nan=-1).astype(np.int64)
    milliseconds = whole % 1_000 if source.time_clock == "HHMMSSmmm" else np.zeros_like(whole)
    digits = whole // 1_000 if source.time_clock == "HHMMSSmmm" else whole
    if source.time_clock == "HHMM":
        hours, minutes, seconds = digits // 100, digits % 100, np.zeros_like(digits)
    else:
        hours, minutes, seconds = digits // 10_000, (digits // 100) % 100, digits % 100
    end_of_day = (hours == 24) & (minutes == 0) & (seconds == 0) & (milliseconds == 0)  # 2400: midnight, the end
    bad = (values != np.floor(values)) | np.isnan(values) | (whole < 0) | (minutes > 59) | (seconds > 59)
    bad |= (hours > 23) & ~end_of_day
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            display,
            f"'{source.time_column}' at row {row} is {float(values[row]):g}, not a {source.time_clock} time of day",
            f"write times of day as {source.time_clock} digits (931 is 09:31 for HHMM), or set the clock format",
        )
    return ((hours * 3600 + minutes * 60 + seconds) * 1_000 + milliseconds) * 1_000_000


def _to_utc_ns(values: Column, source: SourceDef, display: str) -> np.ndarray:
    unit, zone = source.time_unit, source.time_zone
    if isinstance(values, pa.ChunkedArray):
        direct = _arrow_utc_ns(values, unit, zone, display, source.time_column)
        if direct is not None:
            return direct
        values = values.to_pandas()
    return _pandas_utc_ns(values, source, display)


def _no_zone(display: str, column: str) -> DataError:
    return DataError(
        display,
        f"time column '{column}' holds local times without a zone, and the source declares none",
        f"say which zone they are in: time: {{column: {column}, timezone: America/New_York}} (or UTC)",
    )


def _arrow_utc_ns(
    values: pa.ChunkedArray, unit: str | None, zone: str | None, display: str, column: str
) -> np.ndarray | None:
    """UTC ns straight from Arrow for integer epochs with a unit and for timestamps that need no time zone
    rules (zone-aware ones are stored in UTC; naive ones only when the zone is UTC); None for anything else."""
    if values.null_count:
        return None
    kind = values.type
    if pa.types.is_signed_integer(kind) and unit:
        return _epochs_ns(_as_numpy(values, pa.int64()), unit)
    if pa.types.is_timestamp(kind) and kind.tz is None and zone is None:
        raise _no_zone(display, column)
    if pa.types.is_timestamp(kind) and (kind.tz is not None or zone == "UTC"):
        # A timestamp is an int64 epoch of its unit (in UTC when it has a zone): its values are read as one.
        epochs = pa.chunked_array([chunk.view(pa.int64()) for chunk in values.chunks], pa.int64())
        return _epochs_ns(_as_numpy(epochs, pa.int64()), kind.unit)
    return None


def _epochs_ns(epochs: np.ndarray, unit: str) -> np.ndarray | None:
    """Integer epochs of ``unit`` as UTC ns; None when one is out of the ns range (pandas then names it)."""
    factor = NS_PER_UNIT[unit]
    if factor == 1:
        return epochs
    limit = np.iinfo(np.int64).max // factor
    if epochs.size and (epochs.max() > limit or epochs.min() < -limit):
        return None
    return epochs * factor


def _as_numpy(values: pa.ChunkedArray, kind: pa.DataType) -> np.ndarray:
    """The column cast to ``kind`` as one read-only numpy array (nulls NaN for float64): a view of Arrow's
    memory when the column is one chunk of ``kind`` without nulls."""
    dtype = np.dtype(np.int64 if kind == pa.int64() else np.float64)
    chunks = [chunk if chunk.type == kind else _cast_chunk(chunk, kind) for chunk in values.chunks]
    if not chunks:
        array = np.empty(0, dtype=dtype)
    else:
        joined = chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks)
        if joined.null_count and kind != pa.float64():
            joined = pc.fill_null(joined, np.nan)
        # The values buffer itself, not Array.to_numpy: that imports pandas (0.2 s) even for plain numbers.
        values_buffer = joined.buffers()[1]
        array = np.frombuffer(values_buffer, dtype=dtype, count=len(joined), offset=joined.offset * dtype.itemsize)
        if joined.null_count and kind == pa.float64():
            array = _nulls_as_nan(array, joined)
    array.flags.writeable = False  # Arrow's memory is immutable
    return array


def _cast_chunk(chunk: pa.Array, kind: pa.DataType) -> pa.Array:
    """``chunk`` as ``kind`` (float64 or int64), as pyarrow's unsafe cast gives it: integers and floats without
    nulls converted by numpy (the same rounding), so that a run of such columns never imports pyarrow.compute
    (40 ms of its start); anything else by pyarrow's cast."""
    plain = pa.types.is_integer(chunk.type) or (pa.types.is_floating(chunk.type) and chunk.type != pa.float16())
    if not plain or chunk.null_count:
        return pc.cast(chunk, kind, safe=False)
    dtype = np.dtype(chunk.type.to_pandas_dtype())
    values = np.frombuffer(chunk.buffers()[1], dtype=dtype, count=len(chunk), offset=chunk.offset * dtype.itemsize)
    converted = values.astype(np.int64 if kind == pa.int64() else np.float64)
    return pa.Array.from_buffers(kind, len(converted), [None, pa.py_buffer(converted)])


def _nulls_as_nan(values: np.ndarray, array: pa.Array) -> np.ndarray:
    """A copy of a float64 column's values with NaN where Arrow's validity bitmap marks a null. By hand, since
    pyarrow's fill_null with a NaN makes a pyarrow scalar, and making one imports pandas (0.3 s in a run)."""
    filled = values.copy()
    filled[~valid_rows(array)] = np.nan
    return filled


def valid_rows(array: pa.Array) -> np.ndarray:
    """Arrow's validity bitmap of ``array`` as one bool a row (True: a value, False: a null)."""
    if not array.null_count:
        return np.ones(len(array), dtype=bool)
    bits = np.frombuffer(array.buffers()[0], dtype=np.uint8)
    return np.unpackbits(bits, count=array.offset + len(array), bitorder="little")[array.offset :].view(bool)


def _missing_times(missing: np.ndarray, display: str, column: str) -> DataError:
    """A time column (the rows' times, which every row needs) with missing values: how many, and the first."""
    count, row = int(missing.sum()), int(np.flatnonzero(missing)[0])
    return DataError(
        display,
        f"{count:,} row(s) with a missing timestamp in column '{column}' (first at row {row})",
        "drop or fix those rows (a row without a time cannot be placed in a bar)",
    )


def _pandas_utc_ns(values: pd.Series, source: SourceDef, display: str) -> np.ndarray:
    import pandas as pd

    unit, zone = source.time_unit, source.time_zone
    column = source.time_column
    try:
        if pd.api.types.is_integer_dtype(values) or (unit and pd.api.types.is_numeric_dtype(values)):
            if not unit:
                raise DataError(
                    display,
                    f"time column '{column}' holds numbers but the source gives no unit",
                    "set time: {column: ..., unit: ns|us|ms|s}",
                )
            stamps = pd.to_datetime(values, unit=unit, utc=True)
        elif isinstance(values.dtype, pd.DatetimeTZDtype):
            stamps = values.dt.tz_convert("UTC")
        else:
            stamps = _text_times(values, display, column)
            if stamps.dt.tz is None:
                if zone is None:
                    raise _no_zone(display, column)
                stamps = stamps.dt.tz_localize(zone, ambiguous="raise", nonexistent="raise")
            stamps = stamps.dt.tz_convert("UTC")
    except DataError:
        raise
    except (ValueError, TypeError, OverflowError) as exc:
        raise _unparseable(values, display, column, exc) from None
    if stamps.isna().any():
        raise _missing_times(stamps.isna().to_numpy(), display, column)
    try:
        naive = stamps.dt.tz_localize(None).astype("datetime64[ns]")
    except (ValueError, OverflowError):  # pandas' OutOfBoundsDatetime is a ValueError
        raise DataError(
            display,
            f"timestamps in column '{column}' outside the years 1677-2262 (UTC nanoseconds), e.g. {stamps.max()}",
            "check the time column and its unit",
        ) from None
    return naive.to_numpy().view(np.int64).copy()


def _text_times(values: pd.Series, display: str, column: str) -> pd.Series:
    """Text (or objects) parsed as times: naive, or aware with one offset, as pandas reads them; times whose
    offsets differ each to UTC by their own (looked at only when pandas cannot read them with one)."""
    import pandas as pd

    problem: ValueError | None = None
    try:
        with warnings.catch_warnings():  # (pandas 2 warns of offsets that differ, and returns objects)
            warnings.simplefilter("ignore", FutureWarning)
            stamps = pd.to_datetime(values, utc=False)
        if pd.api.types.is_datetime64_any_dtype(stamps):
            return stamps
    except ValueError as exc:  # (pandas 3 refuses offsets that differ)
        problem = exc
    if _with_offsets(values, display, column):  # (and raises for some with a zone and some without)
        return pd.to_datetime(values, utc=True)
    raise problem or ValueError("not times that one zone or offset can read")


# a time of day followed by a zone: Z or a UTC offset (+05, -0500, -05:00), as ISO-8601 and RFC 3339 write it
_OFFSET = r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$"


def _with_offsets(values: pd.Series, display: str, column: str) -> bool:
    """Whether every text time carries its zone (then each is converted to UTC by its own offset: one column
    crosses a clock change with two offsets). Some with a zone and some without is an error: which zone the
    others are in is a guess."""
    import pandas as pd

    if not pd.api.types.is_string_dtype(values) or not len(values):
        return False
    text = values.astype("string")
    zoned = text.str.contains(_OFFSET, regex=True).fillna(False).to_numpy(dtype=bool)
    if zoned.all() or not zoned.any() or values.isna().to_numpy()[~zoned].all():
        return bool(zoned.any())
    with warnings.catch_warnings():  # (each parsed on its own: only on the way to an error)
        warnings.simplefilter("ignore")
        times = pd.to_datetime(values, errors="coerce", format="mixed", utc=True).notna().to_numpy(dtype=bool)
    if (~times & values.notna().to_numpy()).any():
        return False  # some are no times at all: unparseable, not a mix of zones
    naive = int(np.flatnonzero(~zoned & values.notna().to_numpy())[0])
    aware = int(np.flatnonzero(zoned)[0])
    raise DataError(
        display,
        f"{int((~zoned & values.notna().to_numpy()).sum()):,} time(s) in column '{column}' have no zone (first at "
        f"row {values.index[naive]}: {values.iloc[naive]!r}) while {int(zoned.sum()):,} have one (row "
        f"{values.index[aware]}: {values.iloc[aware]!r})",
        "write every time with its UTC offset (or Z), or none of them and declare the source's timezone:",
    )


def _unparseable(values: pd.Series, display: str, column: str, exc: Exception) -> DataError:
    """Text that is no time counted (each value parsed on its own) and the first named; other values that
    pandas cannot read as times (epochs out of range) with pandas' reason."""
    import pandas as pd

    if pd.api.types.is_string_dtype(values) or values.dtype == object:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(values, errors="coerce", format="mixed", utc=True)
        bad = (parsed.isna() & values.notna()).to_numpy(dtype=bool)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            return DataError(
                display,
                f"unparseable timestamps in column '{column}': {int(bad.sum()):,} value(s) are no times (first at "
                f"row {values.index[row]}: {values.iloc[row]!r})",
                "fix or drop those rows: give ISO-8601 times, or integer epochs with time.unit",
            )
    return DataError(
        display,
        f"unparseable timestamps in column '{column}' ({exc}){_first_bad_timestamp(values)}",
        "give ISO-8601 times, or integer epochs with time.unit",
    )


def _first_bad_timestamp(values: pd.Series) -> str:
    import pandas as pd

    for i, v in enumerate(values.head(100_000)):
        try:
            pd.Timestamp(v)
        except (ValueError, TypeError):
            return f"; first bad value at row {i}: {v!r}"
    return ""


def numeric_values(frame: Frame, column: str, display: str) -> np.ndarray:
    series = frame_column(frame, column)
    if isinstance(series, pa.ChunkedArray):
        kind = series.type
        if pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_boolean(kind):
            return _as_numpy(series, pa.float64())
        series = series.to_pandas()
    import pandas as pd

    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    if series.dtype == object and series.notna().any() and series.map(_bool_or_missing).all():
        # True/False with empty cells: pandas keeps Python objects (booleans and NaN); 1, 0 and NaN here
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_string_dtype(series):  # numbers but for some rows, which made the column text
        numbers = pd.to_numeric(series, errors="coerce")
        bad = (numbers.isna() & series.notna()).to_numpy()
        if 0 < bad.sum() < len(series):
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                display,
                f"{int(bad.sum()):,} value(s) of column '{column}' are not numbers (first at row "
                f"{series.index[row]}: {series.iloc[row]!r})",
                "fix or drop those rows, or map a numeric column",
            )
    raise DataError(
        display, f"column '{column}' has type {series.dtype}, not numbers", "map a numeric column, or clean the file"
    )


def _bool_or_missing(value: object) -> bool:
    return isinstance(value, bool) or (isinstance(value, float) and value != value)


def _text_test(frame: Frame, node: dict[str, Any], display: str) -> np.ndarray:
    """``column == 'text'`` or ``!=`` over a file's rows as 1.0 / 0.0; a missing value equals no text."""
    column = next(a["column"] for a in node["args"] if "column" in a)
    text = next(a["text"] for a in node["args"] if "text" in a)
    values = frame_column(frame, column)
    if isinstance(values, pa.ChunkedArray):
        kind = values.type.value_type if pa.types.is_dictionary(values.type) else values.type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            raise _not_text(display, column, str(values.type), text)
        same = pc.fill_null(pc.equal(values, pa.scalar(text, kind)), False)
        equal = _as_numpy(same, pa.float64()) != 0  # stays in Arrow: no pandas import
    else:
        import pandas as pd

        if pd.api.types.is_numeric_dtype(values) and not values.isna().all():
            raise _not_text(display, column, str(values.dtype), text)
        equal = (values == text).to_numpy(dtype=bool)
    return (equal if node["op"] == "eq" else ~equal).astype(np.float64)


def _not_text(display: str, column: str, kind: str, text: str) -> DataError:
    return DataError(
        display,
        f"column '{column}' holds {kind}, not text, but is compared with {text!r}",
        f"compare it with a number, or check that '{column}' is the text column you mean",
    )


def row_values(tree: dict[str, Any], frame: Frame, display: str, params: dict[str, float] | None = None) -> np.ndarray:
    """Evaluate a filter or computed-column tree over a file's rows (numexpr, elementwise)."""
    import numexpr as ne

    local: dict[str, Any] = {"nan": np.nan}

    def build(node: dict[str, Any]) -> str:
        if "const" in node:  # a variable, not a literal (numexpr folds literal-only terms into bools)
            name = f"c{len(local)}"
            local[name] = np.float64(node["const"])
            return name
        if "column" in node:
            name = f"c{len(local)}"
            local[name] = numeric_values(frame, node["column"], display)
            return name
        if "param" in node:
            if params is None or node["param"] not in params:
                raise DataError(
                    display,
                    f"the instrument has no parameter '{node['param']}'",
                    "add it under the instrument's params",
                )
            name = f"c{len(local)}"
            local[name] = np.float64(params[node["param"]])
            return name
        if any("text" in a for a in node["args"]):  # a text column compared with a text: its 0/1 mask
            name = f"c{len(local)}"
            local[name] = _text_test(frame, node, display)
            return name
        op = REGISTRY[node["op"]]
        args = [build(a) for a in node["args"]]
        if op.numexpr is not None:
            return op.numexpr(args)
        name = f"c{len(local)}"  # numexpr has no such function: this node is computed with numpy
        with np.errstate(all="ignore"):
            local[name] = op.numpy(*(ne.evaluate(a, local_dict=local, global_dict={}) for a in args))  # type: ignore[misc]
        return name

    text = build(tree)
    with np.errstate(all="ignore"):
        result = ne.evaluate(text, local_dict=local, global_dict={})
    return np.array(np.broadcast_to(result, (len(frame),)), dtype=np.float64)


TIME_DTYPE = "time"  # a mapped column read as times: UTC ns since the epoch, as a value
RESIDUAL = TIME_RESIDUAL  # beside each time value, its rounding (fspec/manifest.py)


def mapped_values(frame: Frame, source: SourceDef, spec: ColumnDef, ts: np.ndarray, display: str) -> np.ndarray:
    """A mapped column's values (float64): numbers times the column's scale, or times (``dtype: time``)."""
    if spec.dtype == TIME_DTYPE:
        return time_columns(*_time_ns(frame, source, spec.source_column, ts, display))[0]
    return _scaled(numeric_values(frame, spec.source_column, display), spec.scale)


def time_columns(ns: np.ndarray, missing: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Times (UTC ns, int64) as a value (float64: the nearest double) and that value's residual (the exact
    nanoseconds minus the value, a small whole number); both NaN where the time is ``missing``."""
    values = ns.astype(np.float64)
    residual = (ns - values.astype(np.int64)).astype(np.float64)
    if missing is not None:
        values[missing] = np.nan
        residual[missing] = np.nan
    return values, residual


def _time_ns(
    frame: Frame, source: SourceDef, column: str, ts: np.ndarray, display: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """A file column read as times by the source's rules (its unit for integer epochs, its zone for naive times),
    as UTC nanoseconds since the epoch, and where it is missing (None: nowhere). The source's time column is its
    rows' times themselves (before a bar source's stamps are moved to the bar end), whatever its encoding (a date
    and a time of day too). A missing time (a null, an empty cell) is a missing value, not an error."""
    if column == source.time_column:
        return ts, None
    if not len(frame):
        return np.empty(0, dtype=np.int64), None
    other = replace(source, time_column=column, time_date=None, time_day=None)
    values = frame_column(frame, column)
    if isinstance(values, pa.ChunkedArray):
        missing = _as_numpy(values.is_null(), pa.int64()) != 0 if values.null_count else None
        present = values.filter(pc.invert(values.is_null())) if missing is not None else values
    else:
        missing = values.isna().to_numpy() if bool(values.isna().any()) else None
        present = values[~missing] if missing is not None else values
    if missing is None:
        return _to_utc_ns(present, other, display), None
    ns = np.zeros(len(missing), dtype=np.int64)
    if not missing.all():
        ns[~missing] = _to_utc_ns(present, other, display)
    return ns, missing


def _scaled(values: np.ndarray, scale: float) -> np.ndarray:
    """``values * scale``; for a scale that is the reciprocal of a whole number (0.0001 for deci-cents), a
    division by that number: the correctly rounded value of x / 10,000, which x * 0.0001 (0.0001 is not a
    binary number) misses by a unit in the last place for some x."""
    if scale == 1.0:
        return values
    inverse = 1.0 / scale
    if inverse == round(inverse) and abs(inverse) < 2**53 and 1.0 / round(inverse) == scale:
        return values / round(inverse)
    return values * scale


def file_columns(source: SourceDef) -> list[str]:
    """The file columns a source reads: its time, its mapped columns and what its filter and computed columns use
    (what ``fspec run`` reads of a file, and what a spec test writes of one)."""
    return list(
        dict.fromkeys(
            [
                source.time_column,
                *(c for c in (source.time_date, source.time_day) if c is not None and c != "{date}"),
                *(c.source_column for c in source.columns if not c.expr),
                *tree_columns(source.filter_tree),
                *(c for tree in source.column_trees.values() for c in tree_columns(tree)),
                *((source.contract.expiry, source.contract.strike, source.contract.right) if source.contract else ()),
            ]
        )
    )


def load_source(
    root: Path,
    source: SourceDef,
    symbol: str,
    date: str,
    params: dict[str, float] | None = None,
    frame: Frame | None = None,
    span: Span | None = None,
) -> Ticks:
    """Read, map, convert, filter and order one source file (or ``frame``: one symbol's rows of a file of many,
    from :func:`read_symbols`; ``span``: of a parquet file, only the row groups that may hold a time in it).
    Raises DataError naming the file."""
    path = source_path(root, source, symbol, date)
    shown = display_path(path, root)
    mapped = {c.name: c for c in source.columns if not c.expr}
    computed = source.column_trees
    wanted = file_columns(source)
    keyed: dict[str, np.ndarray] = {}
    contracts = None
    if frame is None and source.contract is not None and source.format == "parquet":
        # An option chain's contract columns first, alone: once numbered, their decoded memory is reused by the
        # other columns' (a chain of millions of quotes touched 180 MB less of fresh memory).
        keys = _contract_keys(source)
        rest = [c for c in wanted if c not in keys or _reads_otherwise(source, c)]
        right = (source.contract.right,)
        key_frame = read_frame(path, "parquet", keys, shown, check=wanted, span=span, text=right)
        keyed, contracts = _contract_numbers(key_frame, source, shown)
        del key_frame
        frame = read_frame(path, "parquet", rest, shown, span=span)
    elif frame is None:
        frame = read_frame(
            path, source.format, wanted, shown, header=source.header, needles=jsonl_needles(source), span=span
        )
    ts = utc_ns(frame, source, shown, date)
    columns = {}
    for name, spec in mapped.items():
        if spec.dtype == TIME_DTYPE:  # its value, and the value's residual for exact differences
            columns[name], columns[name + RESIDUAL] = time_columns(
                *_time_ns(frame, source, spec.source_column, ts, shown)
            )
        else:
            columns[name] = mapped_values(frame, source, spec, ts, shown)
    for name, tree in computed.items():
        columns[name] = row_values(tree, frame, shown, params)
    if source.contract is not None and contracts is None:
        keyed, contracts = _contract_numbers(frame, source, shown)
    columns.update(keyed)
    ticks = Ticks(ts, columns, contracts)
    if not len(ticks):
        warnings.warn(f"{shown}: the file has no rows", DataWarning, stacklevel=2)
    if source.bar_width is None and not source.events_declared:
        _refuse_undeclared_bars(ts, source, shown)
    if source.filter_tree is not None:
        ticks = ticks.take(row_values(source.filter_tree, frame, shown) != 0)
    _clean_values(ticks, shown)
    if source.bar_width and source.bar_stamp == "start":
        # A bar's values are known only when it ends.
        ticks.ts = ticks.ts + np.int64(source.bar_width) * NS
    return _ordered(ticks, source, shown)


def _contract_keys(source: SourceDef) -> list[str]:
    contract = source.contract
    assert contract is not None
    return list(dict.fromkeys([contract.expiry, contract.strike, contract.right]))


def _reads_otherwise(source: SourceDef, column: str) -> bool:
    """Whether a file column is read for something besides naming the contract (its time, a mapped column, a
    filter's or computed column's input)."""
    others = replace(source, contract=None)
    return column in file_columns(others)


def _contract_numbers(frame: Frame, source: SourceDef, shown: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """An option chain's rows' contract numbers and its contracts (runtime/chain.py)."""
    from fspec.runtime.chain import contract_columns

    assert source.contract is not None
    return contract_columns(frame, source.contract, shown)


GRID_CHECK_ROWS = 50  # fewer rows on whole seconds may be chance; bar files of a day have more


def _refuse_undeclared_bars(ts: np.ndarray, source: SourceDef, display: str) -> None:
    """A source of events whose times all sit on a grid of one second or wider looks like bars: read as events,
    each bar's values would be known at its stamp, a whole bar early when it is stamped at its start."""
    if len(ts) < GRID_CHECK_ROWS or bool(np.any(ts[:1000] % NS)) or bool(np.any(ts % NS)):
        return
    steps = np.diff(np.unique(ts))
    width = int(np.gcd.reduce(steps // NS)) if len(steps) else 0
    if width < 1:
        return
    shown = f"{width // 60}m" if width % 60 == 0 else f"{width}s"
    raise DataError(
        display,
        f"all {len(ts):,} times of source '{source.name}' sit on a {shown} grid: these look like bars, but the "
        "source declares none (read as events, a bar stamped at its start would be known a whole bar early)",
        f"declare them: bars: {{width: {shown}, stamp: start}} (or stamp: end); if they are events stamped to the "
        "second, say kind: events",
    )


SIZE_COLUMNS = ("size", "volume", "qty")  # and every column ending in _size: quantities, never negative


def _clean_values(ticks: Ticks, display: str) -> None:
    """The data rules of docs (each a counted warning naming the file): infinite values are missing values
    (NaN, which reducers skip); a negative size is a missing value; a crossed quote (bid above ask) is kept."""
    for name, values in list(ticks.columns.items()):
        if values.dtype.kind != "f":  # (a chain's contract numbers)
            continue
        infinite = np.isinf(values)
        if infinite.any():
            ticks.columns[name] = values = np.where(infinite, np.nan, values)
            count = int(infinite.sum())
            warnings.warn(
                f"{display}: {count:,} infinite value(s) in column '{name}' (first at row "
                f"{int(np.flatnonzero(infinite)[0])}) are treated as missing",
                DataWarning,
                stacklevel=3,
            )
        if name in SIZE_COLUMNS or name.endswith("_size"):
            negative = values < 0
            if negative.any():
                ticks.columns[name] = np.where(negative, np.nan, values)
                warnings.warn(
                    f"{display}: {int(negative.sum()):,} negative value(s) in size column '{name}' (first at row "
                    f"{int(np.flatnonzero(negative)[0])}) are treated as missing",
                    DataWarning,
                    stacklevel=3,
                )
    # (an option chain's crossed quotes are counted with its other statuses, runtime/chain.py)
    if "bid" in ticks.columns and "ask" in ticks.columns and ticks.contracts is None:
        crossed = ticks.columns["bid"] > ticks.columns["ask"]
        if crossed.any():
            warnings.warn(
                f"{display}: {int(crossed.sum()):,} crossed quote(s), bid above ask (first at row "
                f"{int(np.flatnonzero(crossed)[0])}); kept as they are",
                DataWarning,
                stacklevel=3,
            )


def _ordered(ticks: Ticks, source: SourceDef, display: str) -> Ticks:
    if len(ticks) < 2 or bool(np.all(ticks.ts[1:] >= ticks.ts[:-1])):
        return ticks
    first = int(np.flatnonzero(ticks.ts[1:] < ticks.ts[:-1])[0]) + 1
    if source.unsorted == "reject":
        raise DataError(
            display,
            f"rows are not in time order (row {first} is earlier than row {first - 1})",
            "sort the file by time, or set unsorted: sort on this source",
        )
    if bool(np.all(ticks.ts[1:] <= ticks.ts[:-1])):
        # A file written newest first: reversed, so that rows of one timestamp keep their true order too.
        warnings.warn(f"{display}: rows are in descending time order; reversed them", DataWarning, stacklevel=2)
        return ticks.take(slice(None, None, -1))
    warnings.warn(
        f"{display}: rows are not in time order (first at row {first}); sorted them (stable)", DataWarning, stacklevel=2
    )
    return ticks.take(np.argsort(ticks.ts, kind="stable"))


def attach_asof(ticks: Ticks, other: Ticks, columns: list[str]) -> Ticks:
    """Add the values of ``other`` prevailing at each row: the last row of ``other`` known at or before it."""
    idx = np.searchsorted(other.ts, ticks.ts, side="right") - 1
    valid = idx >= 0
    safe = np.where(valid, idx, 0)
    for col in [*columns, *(c + RESIDUAL for c in columns if c + RESIDUAL in other.columns)]:  # times' residuals
        values = other.columns[col][safe] if len(other) else np.full(len(ticks), np.nan)
        ticks.columns[col] = np.where(valid, values, np.nan)
    return ticks
