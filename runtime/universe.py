"""Universes found in the data: a build's stand-in of a universe replaced by the members its source holds.

A universe is compiled once, as one instrument (its stand-in), whatever its size. Before a run reads any data,
each stand-in becomes the instruments whose symbols the universe's source holds in any of its files (not only
the run's dates, so that a day's file has the same columns whichever dates a run covers): the same params and
sources, one column each, in natural order. A member absent on a day is NaN that day, like an instrument.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fspec import paths
from fspec.errors import DataError
from fspec.files import display
from fspec.grain import natural_key
from fspec.lazy import LazyModule
from fspec.manifest import FeatureDef, InstrumentDef, ParamsFile, SourceDef
from fspec.runtime.manifest import Manifest
from fspec.runtime.sources import available_dates, source_path, symbol_text

pc = LazyModule("pyarrow.compute")  # imported where a cast, a take or a filter needs it

SUFFIX = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
INTERVAL_LIKE = re.compile(r"[0-9]+s")


def with_members(manifest: Manifest, symbols: dict[str, list[str]] | None = None) -> Manifest:
    """The manifest with each universe's stand-in replaced by its members (the manifest itself if it has none).

    ``symbols`` (from :func:`universe_symbols`) are each universe's symbols found already: an engine's tasks
    receive the ones the client found, so that every day of a run has the same members and no task lists the
    universes' files again."""
    project = manifest.project
    stand_ins = {k: i for k, i in project.instruments.items() if i.universe is not None}
    if not stand_ins:
        return manifest
    found = symbols if symbols is not None else universe_symbols(manifest)
    instruments = {k: i for k, i in project.instruments.items() if i.universe is None}
    members_of: dict[str, list[str]] = {}
    for key, stand_in in stand_ins.items():
        members = _members(found[key], key, stand_in, instruments)
        members = _with_table_params(manifest.root, key, stand_in, members)
        instruments.update(members)
        members_of[key] = list(members)
    features = tuple(_with_members(f, members_of) for f in manifest.features)
    data = replace(manifest.data, project=replace(project, instruments=instruments), features=features)
    by_day = {k: i.universe for k, i in stand_ins.items() if i.universe is not None and i.universe.by_day}
    return Manifest(manifest.root, data, {k: tuple(v) for k, v in members_of.items()}, by_day)


def _with_members(feature: FeatureDef, members_of: dict[str, list[str]]) -> FeatureDef:
    """The feature with a stand-in among its members or dependencies replaced by the universe's members (a
    feature of an index reads the feature of every member)."""
    if any(m in members_of for m in feature.members):
        feature = replace(feature, members=_expand(feature.members, members_of))
    if any(dep in members_of for _, dep in feature.deps):
        deps = [(name, m) for name, dep in feature.deps for m in members_of.get(dep or "", [dep])]  # type: ignore[list-item]
        feature = replace(feature, deps=tuple(deps))
    return feature


def _with_table_params(
    root: Path, key: str, stand_in: InstrumentDef, members: dict[str, InstrumentDef]
) -> dict[str, InstrumentDef]:
    """The members with each parameter the universe reads from a table (``params_from``) set to their row's value."""
    assert stand_in.universe is not None
    for table in stand_in.universe.params_from:
        values = read_param_table(root, table)
        lacking = sorted((m.symbol for m in members.values() if m.symbol not in values), key=natural_key)
        if lacking:
            shown = ", ".join(lacking[:10]) + (f" and {len(lacking) - 10} more" if len(lacking) > 10 else "")
            raise DataError(
                display(root / table.path, root),
                f"universe '{key}': {len(lacking)} of its {len(members)} members have no '{table.value}' for "
                f"parameter '{table.param}' (no row with a value for {table.symbol} = {shown})",
                f"add a row with a {table.value} for each, or leave them out of the universe with its 'match:'",
            )
        members = {k: replace(m, params={**m.params, table.param: values[m.symbol]}) for k, m in members.items()}
    return members


def read_param_table(root: Path, table: ParamsFile) -> dict[str, float]:
    """symbol -> value of a parameter table; every symbol once, every value a number."""
    path = root / table.path
    shown = display(path, root)
    if not path.is_file():
        hint = f"check the path of parameter '{table.param}' (relative to the project root)"
        raise DataError(shown, "file not found", hint)
    try:
        if table.path.endswith(".parquet"):
            frame = pq.read_table(path)
        else:
            from pyarrow import csv

            frame = csv.read_csv(path, convert_options=csv.ConvertOptions(column_types={table.symbol: pa.string()}))
    except (OSError, pa.ArrowException) as exc:
        raise DataError(shown, f"cannot read it: {exc}", "check the file") from None
    for column in (table.symbol, table.value):
        if column not in frame.column_names:
            raise DataError(
                shown,
                f"no column '{column}' for parameter '{table.param}'; the file has: {', '.join(frame.column_names)}",
                "fix the parameter's 'symbol:' or 'value:'",
            )
    symbols = [None if v is None else symbol_text(v) for v in frame.column(table.symbol).to_pylist()]
    try:
        values = pc.cast(frame.column(table.value), pa.float64()).to_pylist()
    except pa.ArrowException:
        raise DataError(
            shown, f"column '{table.value}' of parameter '{table.param}' is not numbers", "give it numbers"
        ) from None
    found: dict[str, float] = {}
    for row, (symbol, value) in enumerate(zip(symbols, values, strict=True), start=1):
        if symbol is None or value is None or math.isnan(value):
            continue  # an empty or NaN cell is no value (a member left without one is the error above)
        if symbol in found:
            raise DataError(
                shown,
                f"symbol {symbol!r} has two rows (the second in data row {row}) for parameter '{table.param}'",
                "keep one row per symbol",
            )
        found[symbol] = float(value)
    return found


def universe_symbols(manifest: Manifest) -> dict[str, list[str]]:
    """Each universe's symbols in its source's files (all of them, not only a run's dates), matched, sorted."""
    project = manifest.project
    found: dict[str, list[str]] = {}
    for key, stand_in in project.instruments.items():
        rule = stand_in.universe
        if rule is None:
            continue
        source = project.sources[rule.source]
        symbols = sorted(_symbols(manifest.root, source))
        if rule.match is not None:
            symbols = [s for s in symbols if re.fullmatch(rule.match, s)]
        if not symbols:
            raise DataError(
                display(manifest.root / source.path, manifest.root),
                f"universe '{key}' found no member: no symbol{' matches ' + repr(rule.match) if rule.match else ''} "
                f"in the files of '{rule.source}'",
                "check the source's path and symbol column, and the universe's match",
            )
        found[key] = symbols
    return found


def _expand(members: tuple[str, ...], members_of: dict[str, list[str]]) -> tuple[str, ...]:
    found = [m for key in members for m in members_of.get(key, [key])]
    return tuple(sorted(found, key=natural_key))


def _members(
    symbols: list[str], key: str, stand_in: InstrumentDef, taken: dict[str, InstrumentDef]
) -> dict[str, InstrumentDef]:
    assert stand_in.universe is not None
    rule = stand_in.universe
    members: dict[str, InstrumentDef] = {}
    by_key: dict[str, str] = {}
    for symbol in symbols:
        member = rule.member_key(symbol)
        if not SUFFIX.fullmatch(member) or any(INTERVAL_LIKE.fullmatch(t) for t in member.split("_")):
            raise DataError(
                f"universe '{key}'",
                f"symbol {symbol!r} gives the column suffix '{member}', which is not a valid one (lower-case "
                "letters, digits and '_', starting with a letter, no token like 30s)",
                "set the universe's suffix to put a letter first, e.g. suffix: 's{symbol}'",
            )
        if member in by_key or member in taken:
            other = f"symbol {by_key[member]!r}" if member in by_key else "an instrument"
            raise DataError(
                f"universe '{key}'",
                f"symbol {symbol!r} and {other} both give the column suffix '{member}'",
                "rename the instrument, or choose a suffix rule (or match) that keeps them apart",
            )
        by_key[member] = symbol
        members[member] = replace(stand_in, key=member, symbol=symbol, universe=None)
    return members


def _symbols(root: Path, source: SourceDef) -> set[str]:
    """Every symbol the source's files hold: the {symbol} of its file names, or the values of its symbol column."""
    if "{symbol}" in source.path:
        return {symbol for _, symbol, _ in paths.matches(root, source.path) if symbol is not None}
    days = [""] if source.holds_many_days else available_dates(root, source, "")
    found = set()
    for day in days:
        found |= _column_symbols(root, source, day)
    return found


def _column_symbols(root: Path, source: SourceDef, day: str) -> set[str]:
    path = source_path(root, source, "", day)
    shown = display(path, root)
    column = source.symbol_column or ""
    if not path.exists():
        raise DataError(shown, "file not found", "check the source's 'path' template")
    try:
        if source.format == "parquet":
            with pq.ParquetFile(path, read_dictionary=[column]) as file:
                if column not in file.schema_arrow.names:
                    raise DataError(
                        shown,
                        f"no symbol column '{column}'; the file has: {', '.join(file.schema_arrow.names)}",
                        "fix the source's 'symbol:'",
                    )
                values = file.read(columns=[column]).column(column)
            if pa.types.is_dictionary(values.type):  # the entries rows use: a dictionary may hold more
                used = (c.dictionary.take(pc.unique(c.indices.drop_null())) for c in values.chunks)
                return {symbol_text(v) for entries in used for v in entries.to_pylist() if v is not None}
            return {symbol_text(v) for v in pc.unique(values).to_pylist() if v is not None}
        import pandas as pd

        frame = pd.read_csv(path, usecols=[column], dtype={column: str})
    except DataError:
        raise
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise DataError(shown, f"cannot read the symbol column '{column}': {exc}", "check the file") from None
    return {symbol_text(v) for v in frame[column].dropna().unique()}
