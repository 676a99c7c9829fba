"""Parsed spec files -> the typed project model (sources, instruments, session, features)."""

from __future__ import annotations

import difflib
import keyword
import math
import re
from dataclasses import dataclass, field
from datetime import date
from itertools import product
from string import Formatter
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fspec import paths
from fspec.compiler.yamlsrc import SourceDoc
from fspec.errors import Diagnostic, Position
from fspec.manifest import (  # one type each for the model and the manifest
    ColumnDef,
    ContractDef,
    ParamsFile,
    UniverseDef,
)
from fspec.naming import SESSION_GRID
from fspec.operators import CONSTANTS
from fspec.session import Session

PROJECT_KEYS = (
    "sources",
    "instruments",
    "universes",
    "grids",
    "intervals",
    "session",
    "dates",
    "output",
    "constants",
)
# some file of the project must define them, and instruments or universes (intervals, unless it has grids)
REQUIRED_PROJECT_KEYS = ("sources", "intervals")
LATENCY = re.compile(r"^(-?)([0-9]+(?:\.[0-9]+)?)(ns|us|ms|s|m|h)$")
UNIT_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
DURATION = re.compile(r"^([0-9]+)(s|m|h)$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class SourceSpec:
    name: str
    path: str
    format: str
    time_column: str
    time_unit: str | None
    time_zone: str | None
    columns: tuple[ColumnDef, ...]
    filter: str | None
    filter_pos: Position | None
    bar_width: int | None  # seconds; None for a tick source
    bar_stamp: str | None
    unsorted: str
    asof_source: str | None
    asof_columns: tuple[str, ...]
    pos: Position
    symbol_column: str | None = None  # a file of many symbols: the column naming each row's symbol
    kind: str | None = None  # "events" or "bars" when the source says so
    time_date: str | None = None
    time_day: str | None = None
    first_date: str | None = None
    time_clock: str | None = None
    time_anchor: int = 0
    header: tuple[str, ...] | None = None
    filter_segments: tuple[tuple[int, int, int], ...] = ()
    # computed columns: (column, position of its formula, the formula's segments as in SourceDoc.segments)
    expr_at: tuple[tuple[str, Position, tuple[tuple[int, int, int], ...]], ...] = ()
    # the file columns the source names outright (time, date, day, symbol, mapped), and where it names each
    reads_at: tuple[tuple[str, Position], ...] = ()
    contract: ContractDef | None = None  # an option chain (compiler/chain.py)

    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns) + self.asof_columns


@dataclass(frozen=True)
class InstrumentSpec:
    key: str
    symbol: str
    params: tuple[tuple[str, float], ...]
    sources: tuple[str, ...]  # the source names formulas use for this instrument
    pos: Position
    use: tuple[tuple[str, str], ...] = ()  # source name in formulas -> the source holding this instrument's data
    universe: UniverseDef | None = None  # the stand-in of a universe's members, found in the data at run time
    params_from_at: tuple[Position, ...] = ()  # where each of the universe's params_from is declared
    membership_pos: Position | None = None  # where the universe's membership rule is declared

    def concrete(self, source: str) -> str:
        return dict(self.use).get(source, source)


@dataclass(frozen=True)
class FeatureSpec:
    """One concrete feature or target (families are already expanded)."""

    name: str
    formula: str
    description: str
    instruments: tuple[str, ...] | None
    publish: bool
    is_target: bool
    bindings: tuple[tuple[str, float], ...]  # expand variables -> constants
    file: str
    name_pos: Position
    formula_pos: Position
    formula_style: str | None
    formula_segments: tuple[tuple[int, int, int], ...] = ()
    instruments_pos: tuple[Position, ...] = ()
    intervals: tuple[int, ...] | None = None  # None: the project's intervals
    formula_for: tuple[tuple[str, str, Position, tuple[tuple[int, int, int], ...]], ...] = ()
    clock: str = "time"
    cross_asset: tuple[str, ...] | None = None
    expand_at: tuple[tuple[str, Position], ...] = ()  # the family's variables and where each is declared
    tags: tuple[str, ...] = ()  # words to select it by (--select tag:WORD)
    grid: str | None = None  # an event grid's name: one value per event (compiled by compiler/events.py)
    grid_pos: Position | None = None


@dataclass(frozen=True)
class GridSpec:
    """An event grid: one output row per row of the ``events`` source, each reading the market data of the
    instrument its ``instrument_column`` names (a member of ``universe``, or a listed instrument) strictly
    before ``t - latency``."""

    name: str
    events: str
    instrument_column: str
    universe: str | None
    latency_ns: int
    keep: tuple[str, ...]
    suffix: str  # the instrument token of its columns
    pos: Position
    reads_at: tuple[tuple[str, Position], ...] = ()  # the events' file columns it names, and where


@dataclass(frozen=True)
class Project:
    sources: dict[str, SourceSpec]
    instruments: dict[str, InstrumentSpec]
    intervals: tuple[int, ...]
    session: Session
    dates: tuple[str, ...]
    output_dir: str
    features: tuple[FeatureSpec, ...]
    constants: tuple[tuple[str, float], ...] = ()
    # features left out for schema errors, and families of them: a formula that reads one is not reported
    unchecked: frozenset[str] = frozenset()
    unchecked_families: frozenset[str] = frozenset()
    grids: dict[str, GridSpec] = field(default_factory=dict)
    event_features: tuple[FeatureSpec, ...] = ()  # features of event grids, apart from the bar features

    def is_unchecked(self, name: str) -> bool:
        return name in self.unchecked or any(name.startswith(f"{f}_") for f in self.unchecked_families)


MAX_FAMILY = 1_000  # features one expand may make
SAFE_SYMBOL = re.compile(r"(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._=-]*")
PATH_FIELDS = ("symbol", "date")


def _path_problems(src: SourceSpec, doc: SourceDoc) -> list[Diagnostic]:
    """A path template may use only {symbol} and {date}, each plainly (no format specs or attributes)."""
    pos = doc.pos(("sources", src.name, "path"))
    try:
        parts = [(f, spec, conv) for _, f, spec, conv in Formatter().parse(src.path) if f is not None]
    except ValueError as exc:
        return [
            Diagnostic(
                pos, f"path template '{src.path}' is malformed: {exc}", "write e.g. data/{symbol}/{date}.parquet"
            )
        ]
    unknown = [f for f, _, _ in parts if f not in PATH_FIELDS]
    # {date:%Y-%m-%d} writes the date as hive partitions do; nothing else takes a format spec or a conversion
    plain = all((spec == "" or f == "date") and conv is None for f, spec, conv in parts)
    if unknown or not plain:
        shown = ", ".join("{" + f + "}" for f in unknown) if unknown else "a format spec"
        return [
            Diagnostic(
                pos,
                f"path template '{src.path}' uses {shown}",
                "paths may use {symbol} and {date} (YYYYMMDD, or {date:%Y-%m-%d} in any order and separators) only; "
                "a path without {date} is one file of many days",
            )
        ]
    bad = paths.bad_date_format(src.path)
    if bad is not None:
        return [
            Diagnostic(
                pos,
                f"path template '{src.path}' writes the date as '{bad}'",
                "a date format holds %Y, %m and %d once each, with '-', '_', '.' or '/' between: {date:%Y-%m-%d}",
            )
        ]
    return []


def _time_problems(src: SourceSpec, doc: SourceDoc) -> list[Diagnostic]:
    """A time split into a date (or day number) and a time of day: what must come with it, what cannot."""
    at = ("sources", src.name, "time")
    problems = []
    split = src.time_date is not None or src.time_day is not None
    if src.time_date == "{date}" and not paths.date_formats(src.path):
        problems.append(
            Diagnostic(
                doc.pos((*at, "date")),
                'date: "{date}" is the date of each file, but the path has no {date}',
                "put {date} in the path, or name the column of the dates",
            )
        )
    if src.header is not None and src.format == "parquet":
        problems.append(
            Diagnostic(
                doc.pos(("sources", src.name, "header")),
                "'header' names the columns of a CSV without a header line (or the fields before each line's "
                "JSON object)",
                "remove it: a parquet file names its columns",
            )
        )
    if src.time_date is not None and src.time_day is not None:
        problems.append(Diagnostic(doc.pos((*at, "day")), "a time has a 'date' or a 'day' column, not both", ""))
    if src.time_day is not None and src.first_date is None:
        problems.append(
            Diagnostic(
                doc.pos((*at, "day")),
                f"day numbers in '{src.time_day}' need the date of day 0",
                'add first_date: "2020-01-01" (day n is n calendar days later)',
            )
        )
    if src.first_date is not None:
        try:
            date.fromisoformat(src.first_date)
        except ValueError:
            problems.append(Diagnostic(doc.pos((*at, "first_date")), f"'{src.first_date}' is not a calendar date", ""))
    if not split:
        for key, given in (
            ("clock", src.time_clock),
            ("anchor", src.time_anchor or None),
            ("first_date", src.first_date),
        ):
            if given is not None:
                problems.append(
                    Diagnostic(
                        doc.pos((*at, key)),
                        f"'{key}' is for a time of day beside a date or day column",
                        "add date: COLUMN (or day: COLUMN), or remove it",
                    )
                )
        return problems
    if src.time_zone is None:
        problems.append(
            Diagnostic(
                doc.pos(at),
                f"the times of '{src.name}' are local times of day without a zone",
                "say which zone they are in: timezone: America/New_York (or UTC)",
            )
        )
    if (src.time_clock is None) == (src.time_unit is None):
        problems.append(
            Diagnostic(
                doc.pos(at),
                f"say how '{src.time_column}' holds the time of day: clock (digits such as HHMM) or unit "
                "(time since the anchor), one of them",
                "e.g. clock: HHMM for 931 meaning 09:31, or unit: s for seconds after anchor: '15:50'",
            )
        )
    if src.time_clock is not None and src.time_anchor:
        problems.append(Diagnostic(doc.pos((*at, "anchor")), "a clock time of day has no anchor", "remove 'anchor'"))
    return problems


def _universes(
    doc: SourceDoc, sources: dict[str, SourceSpec], instruments: dict[str, InstrumentSpec]
) -> list[Diagnostic]:
    """Add each universe to ``instruments`` as the stand-in of its members (key: the universe's name)."""
    problems = []
    for key, raw in doc.data["universes"].items():
        at = ("universes", key)
        if key in instruments:
            problems.append(
                Diagnostic(
                    doc.pos(at, key=True),
                    f"'{key}' is both an instrument and a universe",
                    "give the universe another name",
                )
            )
            continue
        origin = raw["from"]
        listed = raw.get("sources", [origin])
        use = tuple(listed.items()) if isinstance(listed, dict) else tuple((n, n) for n in listed)
        bad = False
        for i, (name, concrete) in enumerate(use):
            if concrete not in sources:
                where = (*at, "sources", name if isinstance(listed, dict) else i)
                problems.append(
                    Diagnostic(
                        doc.pos(where),
                        f"universe '{key}' lists unknown source '{concrete}'",
                        _did_you_mean(concrete, list(sources)) or f"defined sources: {', '.join(sorted(sources))}",
                    )
                )
                bad = True
            elif sources[concrete].symbol_column is None and "{symbol}" not in sources[concrete].path:
                problems.append(
                    Diagnostic(
                        doc.pos((*at, "from") if concrete == origin else (*at, "sources")),
                        f"source '{concrete}' of universe '{key}' cannot tell its members apart: it has no symbol "
                        "column and no {symbol} in its path",
                        f"give source '{concrete}' the column of its symbols (symbol: SYMBOL), or put {{symbol}} in "
                        "its path",
                    )
                )
                bad = True
        if origin not in {c for _, c in use}:
            problems.append(
                Diagnostic(
                    doc.pos((*at, "from")),
                    f"universe '{key}' finds its members in '{origin}', which is not one of its sources",
                    f"add '{origin}' to its sources, or drop 'sources' (the default is [{origin}])",
                )
            )
            bad = True
        suffix = raw.get("suffix", "{symbol}")
        try:
            fields = [f for _, f, _, _ in Formatter().parse(suffix) if f is not None]
        except ValueError:
            fields = []
        if fields != ["symbol"] or not re.fullmatch(r"[a-z0-9_{}]+", suffix.replace("{symbol}", "") or "_"):
            problems.append(
                Diagnostic(
                    doc.pos((*at, "suffix")),
                    f"suffix '{suffix}' must hold {{symbol}} once, with lower-case letters, digits and '_' around it",
                    "e.g. suffix: 's{symbol}' (stock 17 is s17)",
                )
            )
            bad = True
        match = raw.get("match")
        if match is not None:
            try:
                re.compile(match)
            except re.error as exc:
                problems.append(
                    Diagnostic(
                        doc.pos((*at, "match")),
                        f"'{match}' is not a regular expression: {exc}",
                        "e.g. match: '[A-Z]+'",
                    )
                )
                bad = True
        if bad:  # reported; the universe still stands in its features, so that they are checked (not unknown)
            use = tuple((name, c) for name, c in use if c in sources)
        params, files, problem = _universe_params(doc, at, raw.get("params") or {})
        membership = raw.get("membership") or {}
        problems += problem
        instruments[key] = InstrumentSpec(
            key,
            "",
            params,
            tuple(name for name, _ in use),
            doc.pos(at, key=True),
            use,
            UniverseDef(
                origin,
                suffix,
                match,
                tuple(f for f, _ in files),
                int(membership.get("sessions_before", 0)),
                bool(membership.get("every_session", False)),
            ),
            tuple(pos for _, pos in files),
            doc.pos((*at, "membership")) if membership else None,
        )
    return problems


TABLE_SUFFIXES = (".parquet", ".csv", ".csv.gz")


def _universe_params(
    doc: SourceDoc, at: tuple[str, str], raw: dict[str, Any]
) -> tuple[tuple[tuple[str, float], ...], list[tuple[ParamsFile, Position]], list[Diagnostic]]:
    """A universe's parameters: a number for every member, or a table of one value per member. A table's
    parameter is NaN in the build: its values are unknown until the run finds the members."""
    params, files, problems = [], [], []
    for name, value in raw.items():
        if not isinstance(value, dict):
            params.append((name, float(value)))
            continue
        params.append((name, math.nan))
        where = doc.pos((*at, "params", name))
        path = str(value["file"])
        if not path.endswith(TABLE_SUFFIXES):
            problems.append(
                Diagnostic(
                    doc.pos((*at, "params", name, "file")),
                    f"parameter '{name}' reads '{path}', which is not a parquet or CSV table",
                    f"name a file ending in {', '.join(TABLE_SUFFIXES)}",
                )
            )
        files.append((ParamsFile(name, path, str(value["symbol"]), str(value["value"])), where))
    return tuple(params), files, problems


def _shared_files(
    sources: dict[str, SourceSpec], instruments: dict[str, InstrumentSpec], doc: SourceDoc
) -> list[Diagnostic]:
    """A path without {symbol} is one file for every instrument that reads it: without a symbol column to tell
    their rows apart, each of them would read every row."""
    problems = []
    for src in sources.values():
        if src.symbol_column is not None or "{symbol}" in src.path or _path_problems(src, doc):
            continue
        readers = sorted(
            k for k, inst in instruments.items() if src.name in {s for _, s in inst.use} and inst.universe is None
        )
        if len(readers) > 1:
            problems.append(
                Diagnostic(
                    doc.pos(("sources", src.name, "path")),
                    f"'{src.name}' is read by {len(readers)} instruments ({', '.join(readers[:5])}"
                    f"{', ...' if len(readers) > 5 else ''}) but its path has no {{symbol}}: each would read every row",
                    "put {symbol} in the path, or name the file's symbol column (symbol: SYMBOL)",
                )
            )
    return problems


def parse_interval(text: str) -> int:
    """A bar width in seconds; ``session`` is the grid of one bar per session (width 0)."""
    return SESSION_GRID if text == "session" else parse_duration(text)


def parse_latency(text: str) -> int:
    """A latency (``250ms``, ``0ms``, ``1s``) in nanoseconds; negative if written so (an error for the caller)."""
    match = LATENCY.match(text)
    if not match:
        raise ValueError(text)
    sign, number, unit = match.groups()
    value = round(float(number) * UNIT_NS[unit])
    return -value if sign else value


def _grids(
    doc: SourceDoc, sources: dict[str, SourceSpec], instruments: dict[str, InstrumentSpec]
) -> tuple[dict[str, GridSpec], list[Diagnostic]]:
    problems: list[Diagnostic] = []
    grids: dict[str, GridSpec] = {}
    for name, raw in doc.data["grids"].items():
        at = ("grids", name)
        if name == "session" or re.fullmatch(r"[0-9]+s", name):
            problems.append(
                Diagnostic(
                    doc.pos(at, key=True),
                    f"grid name '{name}' reads as an interval in file names (features_DATE_{name}.parquet)",
                    "name the grid after its events, e.g. fills",
                )
            )
        events = raw["events"]
        if events not in sources:
            problems.append(
                Diagnostic(
                    doc.pos((*at, "events")),
                    f"grid '{name}': unknown events source '{events}'",
                    _did_you_mean(events, list(sources)) or f"defined sources: {', '.join(sorted(sources))}",
                )
            )
        elif sources[events].bar_width is not None:
            problems.append(
                Diagnostic(
                    doc.pos((*at, "events")),
                    f"grid '{name}': source '{events}' holds bars, not events",
                    "an event grid has one row per event (a fill, an order): point it at a source of events",
                )
            )
        elif "{symbol}" in sources[events].path:  # its files are read per day (or one), never per instrument
            problems.append(
                Diagnostic(
                    doc.pos((*at, "events")),
                    f"grid '{name}': source '{events}' has {{symbol}} in its path, but a grid's events files hold "
                    f"every instrument's events, told apart by the column {raw['instrument']}",
                    "drop {symbol} from the path: one file (or one per {date}) of all the events",
                )
            )
        universe = raw.get("universe")
        if universe is not None and (universe not in instruments or instruments[universe].universe is None):
            universes = [k for k, i in instruments.items() if i.universe is not None]
            problems.append(
                Diagnostic(
                    doc.pos((*at, "universe")),
                    f"grid '{name}': '{universe}' is not a universe",
                    _did_you_mean(universe, universes)
                    or (f"universes: {', '.join(universes)}" if universes else "declare it under universes:"),
                )
            )
        elif universe is not None and instruments[universe].universe.by_day:  # type: ignore[union-attr]
            problems.append(
                Diagnostic(
                    doc.pos((*at, "universe")),
                    f"grid '{name}': universe '{universe}' has a membership rule by day, which event grids do not "
                    "apply (an event reads its instrument's market data whatever the day's members)",
                    f"give the grid a universe without 'membership:' (see {instruments[universe].membership_pos})",
                )
            )
        elif universe is None and not any(i.universe is None for i in instruments.values()):
            problems.append(
                Diagnostic(
                    doc.pos(at, key=True),
                    f"grid '{name}' names no universe and the project lists no instruments: its events can read none",
                    "add universe: NAME (the universe whose members the events name)",
                )
            )
        latency_text = raw.get("latency", "0ms")
        latency = parse_latency(latency_text)
        if latency < 0:
            problems.append(
                Diagnostic(
                    doc.pos((*at, "latency")),
                    f"grid '{name}': latency {latency_text} is below zero: values would see data after the event",
                    "a latency is how long before the event data must be known: 0ms or more, e.g. latency: 250ms",
                )
            )
        keep = tuple(raw.get("keep") or ())
        computed = {c.name for c in sources[events].columns if c.expr} if events in sources else set()
        for i, column in enumerate(keep):
            if column in computed:
                problems.append(
                    Diagnostic(
                        doc.pos((*at, "keep", i)),
                        f"'{column}' is a computed column of '{events}': keep passes the events' file columns through",
                        f"keep the file columns it is computed from, or write it as a feature: {events}.{column}",
                    )
                )
            if column == "ts_event":
                problems.append(
                    Diagnostic(
                        doc.pos((*at, "keep", i)),
                        "'ts_event' is the output's own time column (the event's time)",
                        "drop it from keep: the event's time is written as ts_event",
                    )
                )
        suffix = raw.get("suffix") or universe or name
        kept_at = [(column, doc.pos((*at, "keep", i))) for i, column in enumerate(keep)]
        reads_at = ((raw["instrument"], doc.pos((*at, "instrument"))), *kept_at)
        grids[name] = GridSpec(
            name, events, raw["instrument"], universe, max(latency, 0), keep, suffix, doc.pos(at, key=True), reads_at
        )
    return grids, problems


def parse_duration(text: str) -> int:
    match = DURATION.match(text)
    if not match:
        raise ValueError(text)
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


# Python's keywords cannot be names in formulas (trades.yield, class + 1 do not parse): never let one be defined.
RESERVED_WORDS = frozenset(keyword.kwlist)


def _reserved(
    doc: SourceDoc, path: tuple[str | int, ...], name: str, what: str, *, key: bool = True
) -> list[Diagnostic]:
    if name not in RESERVED_WORDS:
        return []
    return [
        Diagnostic(
            doc.pos(path, key=key),
            f"{what} '{name}' is a reserved word: formulas could not name it",
            f"pick another name, e.g. {name}_value",
        )
    ]


def _reserved_names(seen: dict[str, SourceDoc]) -> list[Diagnostic]:
    """Sources, columns, instruments, parameters and constants named like a keyword of the formula language."""
    problems = []
    sdoc = seen["sources"]
    for name, raw in sdoc.data["sources"].items():
        problems += _reserved(sdoc, ("sources", name), name, "source")
        for col in raw["columns"]:
            problems += _reserved(sdoc, ("sources", name, "columns", col), col, "column")
    for section, what in (("instruments", "instrument"), ("universes", "universe")):
        if section not in seen:
            continue
        idoc = seen[section]
        for key, raw in idoc.data[section].items():
            problems += _reserved(idoc, (section, key), key, what)
            for param in raw.get("params") or {}:
                problems += _reserved(idoc, (section, key, "params", param), param, "parameter")
    if "constants" in seen:
        for name in seen["constants"].data["constants"]:
            problems += _reserved(seen["constants"], ("constants", name), name, "constant")
    return problems


def contract_of(raw: dict[str, Any] | None) -> ContractDef | None:
    """A chain source's ``contract:`` (checked by the schema) as the manifest's type."""
    if raw is None:
        return None
    underlying = raw.get("underlying") or {}
    return ContractDef(
        expiry=raw["expiry"],
        strike=raw["strike"],
        right=raw["right"],
        settlement=_clock(raw["settlement"]) if "settlement" in raw else 0,  # a chain of trades has its quotes'
        timezone=raw.get("timezone"),
        rate=float(raw.get("rate", 0.0)),
        dividend_yield=float(raw.get("dividend_yield", 0.0)),
        forward=raw.get("forward", "parity"),
        underlying_source=underlying.get("source"),
        underlying_column=underlying.get("column"),
        day_count=raw.get("day_count", "ACT/365"),
        multiplier=float(raw.get("multiplier", 100.0)),
        quotes=raw.get("quotes"),
    )


def _clock(text: str) -> int:
    parts = [int(p) for p in text.split(":")]
    return parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) > 2 else 0)


def default_format(path: str) -> str:
    """The format a path's ending implies: CSV (a zip holding one), JSON lines, else parquet."""
    if path.endswith((".csv", ".csv.gz", ".zip")):
        return "csv"
    if path.endswith((".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")):
        return "jsonl"
    return "parquet"


def _source(name: str, raw: dict[str, Any], doc: SourceDoc, at: tuple[str, ...]) -> SourceSpec:
    time = raw["time"]
    time = {"column": time} if isinstance(time, str) else time
    columns = []
    for col, spec in raw["columns"].items():
        if isinstance(spec, str):
            columns.append(ColumnDef(col, col, spec))
        elif "expr" in spec:
            columns.append(ColumnDef(col, "", "float64", 1.0, spec["expr"]))
        else:
            columns.append(ColumnDef(col, spec["from"], spec.get("dtype", "float64"), float(spec.get("scale", 1.0))))
    path = raw["path"]
    fmt = raw.get("format") or default_format(path)
    bars = raw.get("bars")
    asof = raw.get("asof") or {}
    timed = isinstance(raw["time"], dict)
    reads_at = [(time["column"], doc.pos((*at, "time", "column") if timed else (*at, "time")))]
    reads_at += [(time[k], doc.pos((*at, "time", k))) for k in ("date", "day") if k in time and time[k] != "{date}"]
    if "symbol" in raw:
        reads_at.append((raw["symbol"], doc.pos((*at, "symbol"))))
    for col, spec in raw["columns"].items():
        if isinstance(spec, str):
            reads_at.append((col, doc.pos((*at, "columns", col), key=True)))
        elif "from" in spec:
            reads_at.append((spec["from"], doc.pos((*at, "columns", col, "from"))))
    contract = contract_of(raw.get("contract"))
    if contract is not None:
        reads_at += [(raw["contract"][k], doc.pos((*at, "contract", k))) for k in ("expiry", "strike", "right")]
    return SourceSpec(
        name=name,
        path=path,
        format=fmt,
        time_column=time["column"],
        time_unit=time.get("unit"),
        time_zone=time.get("timezone"),
        columns=tuple(columns),
        filter=raw.get("filter"),
        filter_pos=doc.pos((*at, "filter")) if raw.get("filter") else None,
        bar_width=parse_duration(bars["width"]) if bars else None,
        bar_stamp=bars["stamp"] if bars else None,
        unsorted=raw.get("unsorted", "sort"),
        asof_source=asof.get("source"),
        asof_columns=tuple(asof.get("columns", ())),
        pos=doc.pos(at, key=True),
        symbol_column=raw.get("symbol"),
        kind=raw.get("kind"),
        time_date=time.get("date"),
        time_day=time.get("day"),
        first_date=time.get("first_date"),
        time_clock=time.get("clock"),
        time_anchor=_clock(time["anchor"]) if "anchor" in time else 0,
        header=tuple(raw["header"]) if "header" in raw else None,
        filter_segments=doc.segments.get((*at, "filter"), ()),
        expr_at=tuple(
            (c.name, doc.pos((*at, "columns", c.name, "expr")), doc.segments.get((*at, "columns", c.name, "expr"), ()))
            for c in columns
            if c.expr is not None
        ),
        reads_at=tuple(reads_at),
        contract=contract,
    )


def _expand(
    raw: dict[str, Any], doc: SourceDoc, at: tuple[str | int, ...], is_target: bool, problems: list[Diagnostic]
) -> list[FeatureSpec]:
    expand = raw.get("expand") or {}
    keys = list(expand)
    size = math.prod(len(expand[k]) for k in keys) if keys else 1
    if size > MAX_FAMILY:
        problems.append(
            Diagnostic(
                doc.pos((*at, "expand"), key=True),
                f"'{raw['name']}' expands to {size:,} features, over the limit of {MAX_FAMILY:,}",
                "list fewer values, or split the family",
            )
        )
        return []
    for key in keys:
        for j, value in enumerate(expand[key]):
            earlier = [v for v in expand[key][:j] if type(v) is not bool and v == value]
            if earlier:
                problems.append(
                    Diagnostic(
                        doc.pos((*at, "expand", key, j)),
                        f"expand lists {earlier[0]!r} twice for '{key}'"
                        + (f" (as {earlier[0]!r} and {value!r})" if repr(earlier[0]) != repr(value) else ""),
                        "list each value once: each makes one feature",
                    )
                )
                return []
    problems.extend(_reserved(doc, (*at, "name"), raw["name"], "feature", key=False))
    for key in keys:
        problems.extend(_reserved(doc, (*at, "expand", key), key, "expand variable"))
    if raw.get("instruments") and raw.get("cross_asset"):
        problems.append(
            Diagnostic(
                doc.pos((*at, "cross_asset"), key=True),
                f"'{raw['name']}' has both instruments (one column per instrument) and cross_asset (one column)",
                "keep cross_asset for one column over several instruments, or instruments for per-instrument columns",
            )
        )
        return []
    widths: dict[int, str] = {}
    for j, text in enumerate(raw.get("intervals") or ()):
        seconds = parse_interval(text)
        if seconds in widths:
            problems.append(
                Diagnostic(
                    doc.pos((*at, "intervals", j)),
                    f"interval '{text}' is listed twice for '{raw['name']}' (as '{widths[seconds]}' too)",
                    "list each width once",
                )
            )
            return []
        widths[seconds] = text
    combos = list(product(*(expand[k] for k in keys))) if keys else [()]
    out = []
    for combo in combos:
        bindings = []
        for key, value in zip(keys, combo, strict=True):
            if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                problems.append(
                    Diagnostic(
                        doc.pos((*at, "expand", key, list(expand[key]).index(value))),
                        f"expand values must be numbers, got {value!r}",
                        "e.g. k: [1, 2, 5]",
                    )
                )
                return []
            bindings.append((key, float(value)))
        suffix = "".join(f"_{_num_token(v)}" for _, v in bindings)
        instruments = raw.get("instruments")
        out.append(
            FeatureSpec(
                name=raw["name"] + suffix,
                formula=raw["formula"],
                description=raw.get("description", ""),
                instruments=tuple(instruments) if instruments else None,
                publish=bool(raw.get("publish", True)),
                is_target=is_target,
                bindings=tuple(bindings),
                file=doc.file,
                name_pos=doc.pos((*at, "name")),
                formula_pos=doc.pos((*at, "formula")),
                formula_style=doc.scalar_style.get((*at, "formula")),
                formula_segments=doc.segments.get((*at, "formula"), ()),
                intervals=tuple(parse_interval(t) for t in raw["intervals"]) if raw.get("intervals") else None,
                clock=raw.get("clock", "time"),
                cross_asset=tuple(raw["cross_asset"]) if raw.get("cross_asset") else None,
                formula_for=tuple(
                    (inst, text, doc.pos((*at, "formula_for", inst)), doc.segments.get((*at, "formula_for", inst), ()))
                    for inst, text in (raw.get("formula_for") or {}).items()
                ),
                instruments_pos=tuple(doc.pos((*at, "instruments", i)) for i in range(len(instruments or []))),
                expand_at=tuple((k, doc.pos((*at, "expand", k), key=True)) for k in keys),
                tags=tuple(raw.get("tags") or ()),
                grid=raw.get("grid"),
                grid_pos=doc.pos((*at, "grid")) if "grid" in raw else None,
            )
        )
    return out


def _num_token(value: float) -> str:
    """A family value as a name token: 5 -> 5, 0.5 -> 0p5, -1 -> m1 (names stay lower snake_case)."""
    text = str(int(value)) if value == int(value) else repr(value).replace(".", "p")
    return text.replace("-", "m")


BUILTIN_CONSTANTS = (*CONSTANTS, "nan")  # the registry's constants, and nan (a literal of filters)


def _shadowing(
    seen: dict[str, SourceDoc], sources: dict[str, SourceSpec], instruments: dict[str, InstrumentSpec]
) -> list[Diagnostic]:
    """Project constants and instrument parameters may not take a name that already means something."""
    problems = []
    constants = seen["constants"].data["constants"] if "constants" in seen else {}
    for name in constants:
        if name in BUILTIN_CONSTANTS:
            problems.append(
                Diagnostic(
                    seen["constants"].pos(("constants", name), key=True),
                    f"constant '{name}' would replace the built-in '{name}'",
                    "pick another name; built-ins: " + ", ".join(BUILTIN_CONSTANTS),
                )
            )
    for name in constants:
        if name in sources or name in instruments:
            problems.append(
                Diagnostic(
                    seen["constants"].pos(("constants", name), key=True),
                    f"constant '{name}' has the name of {'a source' if name in sources else 'an instrument'}",
                    "pick another name: formulas could not tell them apart",
                )
            )
    for inst in instruments.values():
        section = "universes" if inst.universe is not None else "instruments"
        idoc = seen[section]
        if inst.key in sources:
            problems.append(
                Diagnostic(
                    inst.pos,
                    f"instrument '{inst.key}' has the name of a source",
                    "pick another key: formulas could not tell trades.price (a column) from an instrument's feature",
                )
            )
        for param, _ in inst.params:
            if param in sources or param in instruments:
                problems.append(
                    Diagnostic(
                        idoc.pos((section, inst.key, "params", param), key=True),
                        f"parameter '{param}' of '{inst.key}' has the name of "
                        + ("a source" if param in sources else "an instrument"),
                        "pick another name for the parameter",
                    )
                )
            if param in BUILTIN_CONSTANTS or param in constants:
                where = "the built-in" if param in BUILTIN_CONSTANTS else "the project constant"
                problems.append(
                    Diagnostic(
                        idoc.pos((section, inst.key, "params", param), key=True),
                        f"parameter '{param}' of '{inst.key}' would replace {where} '{param}'",
                        "pick another name for the parameter",
                    )
                )
    return problems


def build_project(docs: list[SourceDoc]) -> tuple[Project | None, list[Diagnostic]]:
    """Merge schema-valid spec files into one project. Project keys may each appear in one file only."""
    problems: list[Diagnostic] = []
    seen: dict[str, SourceDoc] = {}
    # project.yaml owns the project keys: a copy elsewhere is the one reported
    for doc in sorted(docs, key=lambda d: not d.file.endswith("/project.yaml")):
        for key in PROJECT_KEYS:
            if key in doc.data:
                if key in seen:
                    problems.append(
                        Diagnostic(
                            doc.pos((key,), key=True),
                            f"'{key}' is already defined in {seen[key].file}",
                            "define project keys once, in specs/project.yaml",
                        )
                    )
                else:
                    seen[key] = doc
    if "instruments" not in seen and "universes" not in seen:
        where = docs[0].file if docs else "specs"
        problems.append(
            Diagnostic(
                Position(where, 1, 1),
                "the project defines no 'instruments' and no 'universes'",
                "add instruments (or a universe found in the data) to specs/project.yaml",
            )
        )
    for required in REQUIRED_PROJECT_KEYS:
        if required not in seen and not (required == "intervals" and "grids" in seen):
            where = docs[0].file if docs else "specs"
            problems.append(
                Diagnostic(
                    Position(where, 1, 1), f"the project defines no '{required}'", "add it to specs/project.yaml"
                )
            )
    if problems:
        return None, problems
    problems += _reserved_names(seen)

    sources = {
        n: _source(n, raw, seen["sources"], ("sources", n)) for n, raw in seen["sources"].data["sources"].items()
    }
    for src in sources.values():
        if src.asof_source == src.name:
            problems.append(
                Diagnostic(
                    seen["sources"].pos(("sources", src.name, "asof", "source")),
                    f"source '{src.name}' attaches its own columns (asof: {{source: {src.name}}})",
                    "asof attaches another source's values, e.g. the quotes prevailing at each trade",
                )
            )
        elif src.asof_source and src.asof_source not in sources:
            problems.append(
                Diagnostic(
                    seen["sources"].pos(("sources", src.name, "asof", "source")),
                    f"asof source '{src.asof_source}' is not defined",
                    f"defined sources: {', '.join(sorted(sources))}",
                )
            )
        elif src.asof_source:
            other = sources[src.asof_source]
            for i, col in enumerate(src.asof_columns):
                if col not in {c.name for c in other.columns}:
                    problems.append(
                        Diagnostic(
                            seen["sources"].pos(("sources", src.name, "asof", "columns", i)),
                            f"source '{src.asof_source}' has no column '{col}'",
                            f"its columns: {', '.join(c.name for c in other.columns)}",
                        )
                    )
                if col in {c.name for c in src.columns}:
                    problems.append(
                        Diagnostic(
                            seen["sources"].pos(("sources", src.name, "asof", "columns", i)),
                            f"asof column '{col}' clashes with a column of '{src.name}'",
                            "rename one of them",
                        )
                    )

    for src in sources.values():
        problems += _path_problems(src, seen["sources"])
        if src.time_zone is not None and not _known_zone(src.time_zone):
            problems.append(
                Diagnostic(
                    seen["sources"].pos(("sources", src.name, "time", "timezone")),
                    f"unknown time zone '{src.time_zone}' for the naive times of '{src.name}'",
                    "use an IANA name like America/New_York",
                )
            )
        problems += _time_problems(src, seen["sources"])
        if src.kind == "bars" and src.bar_width is None:
            problems.append(
                Diagnostic(
                    seen["sources"].pos(("sources", src.name, "kind")),
                    f"source '{src.name}' says its rows are bars but gives no 'bars:'",
                    "add bars: {width: 1m, stamp: start} (or stamp: end): a bar's values are known when it ends",
                )
            )
        if src.kind == "events" and src.bar_width is not None:
            problems.append(
                Diagnostic(
                    seen["sources"].pos(("sources", src.name, "kind")),
                    f"source '{src.name}' says its rows are events but declares bars",
                    "remove one of kind: events and bars:",
                )
            )
        if src.bar_width is not None and src.bar_width <= 0:
            problems.append(
                Diagnostic(
                    seen["sources"].pos(("sources", src.name, "bars", "width")),
                    f"source '{src.name}' declares bars of width {src.bar_width}s",
                    "a bar source has a positive width, e.g. bars: {width: 1s, stamp: start}",
                )
            )
    for src in sources.values():
        other = sources.get(src.asof_source or "")
        malformed = other is not None and (
            _path_problems(src, seen["sources"]) or _path_problems(other, seen["sources"])
        )
        if (
            other is not None
            and not malformed
            and bool(paths.date_formats(src.path)) != bool(paths.date_formats(other.path))
        ):
            problems.append(
                Diagnostic(
                    seen["sources"].pos(("sources", src.name, "asof", "source")),
                    f"'{src.name}' and its asof source '{other.name}' split days differently "
                    "(one path has {date}, the other does not)",
                    "give both paths {date}, or neither (one file holding every day)",
                )
            )

    instruments: dict[str, InstrumentSpec] = {}
    idoc = seen.get("instruments")
    for key, raw in (idoc.data["instruments"] if idoc else {}).items():
        if re.fullmatch(r"[0-9]+s", key.split("_")[-1]) or any(re.fullmatch(r"[0-9]+s", t) for t in key.split("_")):
            problems.append(
                Diagnostic(
                    idoc.pos(("instruments", key), key=True),
                    f"instrument key '{key}' looks like an interval",
                    "column names must parse back; avoid tokens like 30s",
                )
            )
        listed = raw.get("sources", list(sources))
        use = tuple(listed.items()) if isinstance(listed, dict) else tuple((n, n) for n in listed)
        own = tuple(name for name, _ in use)
        if not use:
            problems.append(
                Diagnostic(
                    idoc.pos(("instruments", key, "sources")),
                    f"instrument '{key}' has no sources: no feature can be computed for it",
                    "list the sources that hold its data, e.g. sources: [trades, quotes], or remove the instrument",
                )
            )
        for i, (name, s) in enumerate(use):
            if name not in sources and isinstance(listed, dict):
                problems.append(
                    Diagnostic(
                        idoc.pos(("instruments", key, "sources", name), key=True),
                        f"instrument '{key}' maps unknown source '{name}'",
                        _did_you_mean(name, list(sources)) or f"defined sources: {', '.join(sorted(sources))}",
                    )
                )
            if s not in sources:
                problems.append(
                    Diagnostic(
                        idoc.pos(("instruments", key, "sources", name if isinstance(listed, dict) else i)),
                        f"instrument '{key}' lists unknown source '{s}'",
                        _did_you_mean(s, list(sources)) or f"defined sources: {', '.join(sorted(sources))}",
                    )
                )
        if not SAFE_SYMBOL.fullmatch(str(raw["symbol"])):
            problems.append(
                Diagnostic(
                    idoc.pos(("instruments", key, "symbol")),
                    f"symbol {raw['symbol']!r} cannot be part of a file path",
                    "symbols are letters, digits, '.', '-', '_' and '=' (no path separators, no '..')",
                )
            )
        params = tuple((k, float(v)) for k, v in (raw.get("params") or {}).items())
        # an unknown source is reported above; formulas then see the instrument without it (no second error)
        use = tuple((name, s) for name, s in use if name in sources and s in sources)
        own = tuple(name for name, _ in use)
        instruments[key] = InstrumentSpec(
            key, raw["symbol"], params, own, idoc.pos(("instruments", key), key=True), use
        )

    if "universes" in seen:
        problems += _universes(seen["universes"], sources, instruments)
    problems += _shared_files(sources, instruments, seen["sources"])
    from fspec.compiler.chain import chain_problems  # it reads this module's types

    problems += chain_problems(sources, instruments, seen["sources"])

    session = Session()
    if "session" in seen:
        raw = seen["session"].data["session"]
        session = Session(
            timezone=raw.get("timezone", session.timezone),
            open_seconds=_clock(raw["open"]) if "open" in raw else session.open_seconds,
            close_seconds=_clock(raw["close"]) if "close" in raw else session.close_seconds,
            trading_days_per_year=float(raw.get("trading_days_per_year", session.trading_days_per_year)),
        )
        if not _known_zone(session.timezone):
            problems.append(
                Diagnostic(
                    seen["session"].pos(("session", "timezone")),
                    f"unknown time zone '{session.timezone}'",
                    "use an IANA name like America/New_York",
                )
            )
        if session.open_seconds >= 24 * 3600:
            problems.append(
                Diagnostic(
                    seen["session"].pos(("session", "open")),
                    f"a session cannot open at {raw['open']}, the end of the day",
                    "a session that starts at midnight opens at '00:00'",
                )
            )
        elif session.close_seconds == session.open_seconds:
            problems.append(
                Diagnostic(
                    seen["session"].pos(("session", "close" if "close" in raw else "open")),
                    f"a session from {raw.get('open', '09:30')} to {raw.get('close', '16:00')} is empty",
                    "a whole day is open: '00:00', close: '24:00'; a close before the open crosses midnight "
                    "(e.g. open: '17:00', close: '16:00')",
                )
            )

    intervals: list[int] = []
    ivdoc = seen.get("intervals")
    for i, text in enumerate(ivdoc.data["intervals"] if ivdoc else ()):
        seconds = parse_interval(text)
        pos = ivdoc.pos(("intervals", i))  # type: ignore[union-attr]
        if seconds == SESSION_GRID:
            if seconds in intervals:
                problems.append(Diagnostic(pos, "interval 'session' is listed twice", "list each width once"))
            else:
                intervals.append(seconds)
        elif seconds <= 0:
            problems.append(Diagnostic(pos, f"interval '{text}' is empty", "use a positive width like 30s"))
        elif session.length_seconds > 0 and session.length_seconds % seconds:
            problems.append(
                Diagnostic(
                    pos,
                    f"interval '{text}' does not divide the {session.length_seconds}s session",
                    "pick a width whose bars tile the session, e.g. 30s, 60s, 300s",
                )
            )
        elif seconds in intervals:
            problems.append(Diagnostic(pos, f"interval '{text}' is listed twice ({seconds}s)", "list each width once"))
        else:
            intervals.append(seconds)

    features: list[FeatureSpec] = []
    for doc in docs:
        for section, is_target in (("features", False), ("targets", True)):
            for i, raw in enumerate(doc.data.get(section, [])):
                if (section, i) in doc.dropped:
                    continue  # reported by the schema check
                features.extend(_expand(raw, doc, (section, i), is_target, problems))

    for spec in features:
        for seconds in spec.intervals or ():
            if seconds != SESSION_GRID and (seconds <= 0 or session.length_seconds % seconds):
                problems.append(
                    Diagnostic(
                        spec.name_pos,
                        f"'{spec.name}' asks for a {seconds}s interval that does not tile the session",
                        "pick a width that divides the session, e.g. 1s, 5s, 30s",
                    )
                )
    problems += _shadowing(seen, sources, instruments)
    if any(key in sources for key in instruments):
        return None, problems  # every formula that reads such a source would be misread: stop here
    dates = tuple(seen["dates"].data["dates"]) if "dates" in seen else ()
    if "dates" in seen and not dates:  # an empty list would mean "every date" silently
        problems.append(
            Diagnostic(
                seen["dates"].pos(("dates",)),
                "'dates' is an empty list",
                "list the dates to run, or remove 'dates' to run every date that has data",
            )
        )
    for i, day in enumerate(dates):
        try:
            date.fromisoformat(day)
        except ValueError:
            problems.append(
                Diagnostic(
                    seen["dates"].pos(("dates", i)),
                    f"'{day}' is not a calendar date",
                    'dates are quoted YYYY-MM-DD days that exist, e.g. "2013-10-07"',
                )
            )
    output = seen["output"].data["output"].get("dir", "out") if "output" in seen else "out"
    constants = (
        tuple((k, float(v)) for k, v in seen["constants"].data["constants"].items()) if "constants" in seen else ()
    )
    grids: dict[str, GridSpec] = {}
    if "grids" in seen:
        grids, found = _grids(seen["grids"], sources, instruments)
        problems += found
    problems += _grid_features(features, grids)
    bar_features = tuple(f for f in features if f.grid is None)
    if not intervals and ivdoc is None:  # a project of grids only: a feature of bars would be computed nowhere
        problems += [
            Diagnostic(
                f.name_pos,
                f"'{f.name}' is a feature of bars, and the project lists no intervals",
                "add intervals: (e.g. intervals: [60s]) to specs/project.yaml, or give it grid: NAME",
            )
            for f in bar_features
            if not f.intervals
        ]
    event_features = tuple(f for f in features if f.grid is not None and f.grid in grids)
    project = Project(
        sources,
        instruments,
        tuple(intervals),
        session,
        dates,
        output,
        bar_features,
        constants,
        grids=grids,
        event_features=event_features,
    )
    return project, problems


_BAR_ONLY_KEYS = ("instruments", "intervals", "cross_asset", "formula_for", "clock")


def _grid_features(features: list[FeatureSpec], grids: dict[str, GridSpec]) -> list[Diagnostic]:
    """A feature's grid exists, and the keys that place a column on bars are not given with it."""
    problems = []
    for spec in features:
        if spec.grid is None:
            continue
        assert spec.grid_pos is not None
        if spec.grid not in grids:
            problems.append(
                Diagnostic(
                    spec.grid_pos,
                    f"'{spec.name}' is on grid '{spec.grid}', which is not defined",
                    _did_you_mean(spec.grid, list(grids))
                    or (f"defined grids: {', '.join(grids)}" if grids else "declare it under grids: in project.yaml"),
                )
            )
        given = [
            k
            for k, v in (
                ("instruments", spec.instruments),
                ("intervals", spec.intervals),
                ("cross_asset", spec.cross_asset),
                ("formula_for", spec.formula_for),
                ("clock", spec.clock != "time"),
            )
            if v
        ]
        for key in given:
            problems.append(
                Diagnostic(
                    spec.grid_pos,
                    f"'{spec.name}' is on event grid '{spec.grid}' and gives '{key}', which places columns on bars",
                    "an event-grid feature reads each event's own instrument, one value per event: remove it",
                )
            )
    return problems
