"""`fspec test`: spec unit tests (``specs/**/*.test.yaml``), made-up rows in, expected column values out.

Each test is one session: its ``given`` rows are written as the files the sources name (in a scratch folder,
with the build beside them), and the compiled features run over them exactly as ``fspec run`` would (column
mapping, filters, computed columns, asof, bar stamps, the same kernels). Then every ``expect`` column is
compared row by row: exactly, or within its ``tolerance``; null expects a missing value (NaN). The format is in
docs/writing-features.md#testing-features and schemas/spec_test.schema.json.
"""

from __future__ import annotations

import math
import re
import tempfile
import warnings
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from fspec.compiler.model import parse_interval
from fspec.compiler.schema import load_schema, validate_doc
from fspec.compiler.yamlsrc import SourceDoc, load_yaml
from fspec.errors import DataError, Diagnostic, Position, SpecError
from fspec.grain import natural_key
from fspec.manifest import Key, SourceDef
from fspec.naming import interval_token
from fspec.project import BUILD_DIR, display_path, spec_test_files
from fspec.runtime.columns import with_dependencies
from fspec.runtime.grid import column_name, column_of
from fspec.runtime.manifest import Manifest
from fspec.runtime.select import computed_at
from fspec.runtime.sources import (
    file_columns,  # the columns fspec run reads from a file
    source_path,
    symbol_text,
)
from fspec.session import NS, bar_starts

TIME_OF_DAY = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Given:
    key: str  # as written: SOURCE or INSTRUMENT.SOURCE
    source: SourceDef  # the source that holds the rows (the instrument's mapping applied)
    instrument: str
    rows: list[dict[str, Any]]
    pos: Position


@dataclass(frozen=True)
class Expected:
    key: Key  # (feature, instrument); for an event grid (feature, None)
    column: str
    values: dict[tuple[str, int], float | None]  # (date, row) -> value (None: a missing value)
    tolerance: float
    pos: Position


@dataclass(frozen=True)
class SpecTest:
    name: str
    pos: Position
    dates: tuple[str, ...]  # the sessions, in order: each computed after the ones before it (warm-up)
    interval: int  # 0 for an event grid
    instrument: str
    given: list[Given]
    expect: list[Expected]
    manifest: Manifest  # the build, with the universes' members the given rows hold
    grid: str = ""  # an event grid's name: one row per event

    @property
    def date(self) -> str:
        return self.dates[-1]


@dataclass(frozen=True)
class Mismatch:
    column: str
    row: int
    bar: str  # the bar's start (an event grid's: the event's time), local time; with its date in a test of several
    expected: float | None
    actual: float
    tolerance: float

    def render(self) -> str:
        want = "NaN (null)" if self.expected is None else repr(self.expected)
        within = f" (tolerance {self.tolerance!r})" if self.tolerance else ""
        what = "event" if self.bar.startswith("event ") else "bar"
        at = self.bar.removeprefix("event ")
        return f"{self.column} row {self.row} ({what} {at}): expected {want}, got {self.actual!r}{within}"


@dataclass
class TestResult:
    test: SpecTest
    checked: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


# ---- reading test files -------------------------------------------------------------------------------


def load_tests(manifest: Manifest) -> list[SpecTest]:
    """Every test under specs/, checked against the build; raises SpecError with every problem found."""
    root = manifest.root
    tests: list[SpecTest] = []
    problems: list[Diagnostic] = []
    for path in spec_test_files(root):
        doc, syntax = load_yaml(path, display_path(root, path))
        schema_problems = syntax or validate_doc(doc, load_schema("spec_test.schema.json"))
        problems += schema_problems
        if not schema_problems:
            tests += [t for i, raw in enumerate(doc.data["tests"]) if (t := _test(manifest, doc, i, raw, problems))]
    first: dict[str, Position] = {}
    for t in tests:
        if t.name in first:
            problems.append(Diagnostic(t.pos, f"a second test named '{t.name}'", f"the first is at {first[t.name]}"))
        first.setdefault(t.name, t.pos)
    if problems:
        raise SpecError(problems)
    return tests


class _Problems:
    """Diagnostics of one test, at positions inside it."""

    def __init__(self, doc: SourceDoc, at: tuple[Any, ...], name: str, out: list[Diagnostic]):
        self.doc, self.at, self.name, self.out, self.count = doc, at, name, out, 0

    def __call__(self, path: tuple[Any, ...], message: str, hint: str, key: bool = False) -> None:
        self.count += 1
        pos = self.doc.pos((*self.at, *path), key=key)
        self.out.append(Diagnostic(pos, f"test '{self.name}': {message}", hint, "test"))


def _test(manifest: Manifest, doc: SourceDoc, i: int, raw: dict[str, Any], out: list[Diagnostic]) -> SpecTest | None:
    at = ("tests", i)
    problem = _Problems(doc, at, raw["name"], out)
    dates = _dates(raw, problem)
    grid = _grid(manifest, raw, problem) if dates is not None else None
    membered = _with_given_members(manifest, raw, problem) if grid is not None else None
    if dates is None or grid is None or membered is None:
        return None
    manifest = membered
    instrument = _instrument(manifest, raw, grid, problem)
    interval = _interval(manifest, raw, grid, problem) if instrument is not None else None
    if instrument is None or interval is None:
        return None
    given = _given(manifest, doc, at, raw, instrument, dates, problem)
    expect = _expected(manifest, doc, at, raw, instrument, interval, dates, grid, problem)
    test = SpecTest(raw["name"], doc.pos((*at, "name")), dates, interval, instrument, given, expect, manifest, grid)
    if not problem.count and not grid:
        _check_inputs(manifest, test, problem)
    return None if problem.count else test


def _interval(manifest: Manifest, raw: dict[str, Any], grid: str, problem: _Problems) -> int | None:
    """The bar grid's width in seconds (the project's first interval by default); 0 for an event grid."""
    if grid:
        if "interval" in raw:
            problem(("interval",), "a test of an event grid has no interval", "remove interval: (or grid:)")
            return None
        return 0
    interval = parse_interval(raw["interval"]) if "interval" in raw else manifest.project.intervals[0]
    if interval not in manifest.intervals:
        shown = ", ".join(interval_token(i) for i in manifest.intervals)
        problem(("interval",), f"the build computes no {interval_token(interval)} grid", f"intervals: {shown}")
        return None
    return interval


def _given(
    manifest: Manifest,
    doc: SourceDoc,
    at: tuple[Any, ...],
    raw: dict[str, Any],
    instrument: str,
    dates: tuple[str, ...],
    problem: _Problems,
) -> list[Given]:
    """The given rows per source (SOURCE of the test's instrument, or INSTRUMENT.SOURCE), each row checked."""
    project = manifest.project
    instruments = list(project.instruments)
    given = []
    for name, rows in raw["given"].items():
        inst, _, source = name.rpartition(".")
        inst = inst or instrument
        if inst not in project.instruments:
            problem(("given", name), f"unknown instrument '{inst}'", f"instruments: {', '.join(instruments)}", True)
            continue
        if source in project.instruments[inst].sources:
            spec = project.source_of(inst, source)
        elif source in project.sources:
            spec = project.sources[source]
        else:
            known = ", ".join(project.instruments[inst].sources)
            problem(("given", name), f"instrument '{inst}' has no source '{source}'", f"its sources: {known}", True)
            continue
        spec_cols = set(_given_columns(manifest, spec)) | ({spec.symbol_column} if spec.symbol_column else set())
        for j, row in enumerate(rows):
            for column, message, hint in _row_problems(manifest, spec, row, dates, project.session):
                problem(("given", name, j, *column), message, hint, key=bool(column) and column[0] not in spec_cols)
        given.append(Given(name, spec, inst, rows, doc.pos((*at, "given", name), key=True)))
    return given


def _expected(
    manifest: Manifest,
    doc: SourceDoc,
    at: tuple[Any, ...],
    raw: dict[str, Any],
    instrument: str,
    interval: int,
    dates: tuple[str, ...],
    grid: str,
    problem: _Problems,
) -> list[Expected]:
    """The expected columns, their values by (date, row) and tolerances."""
    tolerances = raw.get("tolerance") or {}
    for name in tolerances:
        if name not in raw["expect"]:
            problem(("tolerance", name), f"a tolerance for '{name}', which expect does not list", "remove it", True)
    expect = []
    for name, values in raw["expect"].items():
        found = _grid_column(manifest, grid, name) if grid else _bar_column(manifest, name, instrument, interval)
        if found is None:
            if grid:
                problem(("expect", name), f"no column '{name}' of grid '{grid}'", "name a feature of the grid", True)
            else:
                where = f"at {interval_token(interval)} for {instrument}"
                hint = "name a feature (its column of the test's instrument and interval) or a full column name"
                problem(("expect", name), f"no column '{name}' {where}", hint, True)
            continue
        key, column = found
        rows = _expected_rows(manifest, values, dates, interval, grid, ("expect", name), problem)
        if rows is not None:
            pos = doc.pos((*at, "expect", name), key=True)
            expect.append(Expected(key, column, rows, float(tolerances.get(name, 0.0)), pos))
    return expect


def _dates(raw: dict[str, Any], problem: _Problems) -> tuple[str, ...] | None:
    """The test's sessions: ``date``, or ``dates`` (several, in order: the later ones' warm-up reads the earlier)."""
    if ("date" in raw) == ("dates" in raw):
        problem(("name",), "give the session as date: (one) or dates: (several), not both", 'e.g. date: "2024-01-02"')
        return None
    listed = [raw["date"]] if "date" in raw else list(raw["dates"])
    for k, text in enumerate(listed):
        try:
            date.fromisoformat(text)
        except ValueError:
            where = ("date",) if "date" in raw else ("dates", k)
            problem(where, f"'{text}' is not a calendar date", 'write it as "YYYY-MM-DD"')
            return None
    if listed != sorted(set(listed)):
        problem(("dates",), "dates: are not in order, or one is listed twice", "list each session once, in order")
        return None
    return tuple(listed)


def _grid(manifest: Manifest, raw: dict[str, Any], problem: _Problems) -> str | None:
    """The event grid a test is of ('' for bars)."""
    name = raw.get("grid", "")
    grids = [g.name for g in manifest.data.grids]
    if name and name not in grids:
        problem(("grid",), f"unknown grid '{name}'", f"grids: {', '.join(grids)}" if grids else "the build has none")
        return None
    return name


def _with_given_members(manifest: Manifest, raw: dict[str, Any], problem: _Problems) -> Manifest | None:
    """The build with each universe's members: the symbols the given rows of its source hold (a universe is
    found in the data, and the rows are the test's only data)."""
    from fspec.runtime.universe import with_members

    project = manifest.project
    stand_ins = {k: i.universe for k, i in project.instruments.items() if i.universe is not None}
    if not stand_ins:
        return manifest
    symbols: dict[str, list[str]] = {}
    for key, rule in stand_ins.items():
        column = project.sources[rule.source].symbol_column
        found: set[str] = set()
        for name, rows in raw["given"].items():
            if name.rpartition(".")[2] != rule.source or not column:
                continue
            for j, row in enumerate(rows):
                if row.get(column) is None:
                    problem(
                        ("given", name, j), f"the row has no '{column}'", f"rows of '{rule.source}' name their symbol"
                    )
                else:
                    found.add(symbol_text(row[column]))
        symbols[key] = sorted(found, key=natural_key)
    if problem.count:
        return None
    try:
        return with_members(manifest, symbols)
    except DataError as exc:
        problem(("given",), exc.message, exc.hint)
        return None


def _instrument(manifest: Manifest, raw: dict[str, Any], grid: str, problem: _Problems) -> str | None:
    """The instrument whose columns the test's plain feature names mean: ``instrument``, a universe's ``member``
    (by its symbol), or the project's only instrument; an event grid's test needs none."""
    project = manifest.project
    if "member" in raw:
        symbol = str(raw["member"])
        found = [k for k, i in project.instruments.items() if i.symbol == symbol and k not in _plain(manifest)]
        if not found:
            members = [i.symbol for k, i in project.instruments.items() if k not in _plain(manifest)]
            hint = f"the given rows hold {', '.join(members)}" if members else "give rows of the universe's source"
            problem(("member",), f"no member with symbol '{symbol}' in the given rows", hint)
            return None
        return found[0]
    instruments = list(project.instruments)
    instrument = raw.get("instrument", instruments[0] if len(instruments) == 1 or grid else None)
    if instrument is None:
        problem(("name",), "say which instrument it is about", f"add instrument: {instruments[0]}")
        return None
    if instrument in manifest.members_of:
        problem(("instrument",), f"'{instrument}' is a universe: say which of its members", "add member: SYMBOL")
        return None
    if instrument not in project.instruments:
        problem(("instrument",), f"unknown instrument '{instrument}'", f"instruments: {', '.join(instruments)}")
        return None
    return instrument


def _plain(manifest: Manifest) -> set[str]:
    """The instruments listed by hand (not a universe's members)."""
    members = {m for ms in manifest.members_of.values() for m in ms}
    return set(manifest.project.instruments) - members


def _expected_rows(
    manifest: Manifest,
    values: list[Any] | dict[str, Any],
    dates: tuple[str, ...],
    interval: int,
    grid: str,
    where: tuple[Any, ...],
    problem: _Problems,
) -> dict[tuple[str, int], float | None] | None:
    """(date, row) -> value: a list is the last date's values from its first row; a mapping's keys are bar starts
    ("09:31:00", or "2024-01-03 09:31:00" in a test of several dates) or dates, each with a list of its bars."""
    session = manifest.project.session
    rows: dict[tuple[str, int], float | None] = {}
    if isinstance(values, list):
        rows = {(dates[-1], k): v for k, v in enumerate(values)}
        return rows if grid else _within_sessions(rows, session, dates, interval, where, problem)
    if grid:
        problem(where, "an event grid's values are a list, one per event in time order", "write [v1, v2, ...]")
        return None
    for text, value in values.items():
        day, _, clock = text.rpartition(" ") if " " in text else ("", "", text)
        if DATE.match(text):
            day, clock = text, ""
        day = day or (dates[0] if len(dates) == 1 else "")
        if day not in dates:
            hint = (
                f'write the date too, e.g. "{dates[-1]} {clock or "09:30:00"}"'
                if not day
                else f"dates: {', '.join(dates)}"
            )
            problem((*where, text), f"'{text}' is on no date of the test", hint, True)
            continue
        bounds = session.bounds(day)
        starts = bar_starts(session.bar_ends(day, interval), bounds[0])
        if not clock:
            if not isinstance(value, list):
                problem(
                    (*where, text), "a date's values are a list, from its first bar on", "write [v1, v2, ...]", True
                )
                continue
            if len(value) > len(starts):
                problem((*where, text), f"{len(value)} values for a session of {len(starts)} bars", "list fewer values")
                continue
            rows.update({(day, k): v for k, v in enumerate(value)})
            continue
        if isinstance(value, list):
            problem((*where, text), "a bar's value is one number (or null)", "write the value alone", True)
            continue
        ns = _utc_ns(day, clock, session.timezone, bounds)
        hits = np.flatnonzero(starts == ns) if ns is not None else ()
        if not len(hits):
            grid_name = interval_token(interval)
            problem((*where, text), f"no bar starts at {text} on the {grid_name} grid", "bars start at the open", True)
            continue
        rows[(day, int(hits[0]))] = value
    return _within_sessions(rows, session, dates, interval, where, problem)


def _within_sessions(
    rows: dict[tuple[str, int], float | None],
    session: Any,
    dates: tuple[str, ...],
    interval: int,
    where: tuple[Any, ...],
    problem: _Problems,
) -> dict[tuple[str, int], float | None] | None:
    """The rows, if each date's lie within its session's bars."""
    for day in dates:
        n = len(session.bar_ends(day, interval))
        if any(d == day and row >= n for d, row in rows):
            count = 1 + max(r for d, r in rows if d == day)
            problem(where, f"{count} values for a session of {n} bars", "list fewer values")
            return None
    return rows


def _bar_column(manifest: Manifest, name: str, instrument: str, interval: int) -> tuple[Key, str] | None:
    key = _column_key(manifest, name, instrument, interval)
    return None if key is None else (key, column_of(manifest.feature(*key), key[1], interval))


def _grid_column(manifest: Manifest, grid: str, name: str) -> tuple[Key, str] | None:
    """A feature of the event grid, by its name or its column's (``<feature>_<suffix>``)."""
    g = next(g for g in manifest.data.grids if g.name == grid)
    for f in g.features:
        if name.lower() in (f.name, g.column(f.name)):
            return (f.name, None), g.column(f.name)
    return None


def _column_key(manifest: Manifest, name: str, instrument: str, interval: int) -> Key | None:
    """The column ``name`` means in a test of ``instrument``: a feature (the instrument's column, or a
    cross-asset feature's), or a column's name with or without the interval."""
    name = name.lower()
    for key in manifest.keys:
        f = manifest.feature(*key)
        if interval not in computed_at(manifest, f):
            continue
        if (name == f.name and key[1] in (instrument, None)) or name in (
            column_name(f.name, None, key[1]),
            column_of(f, key[1], interval),
        ):
            return key
    return None


def _row_problems(
    manifest: Manifest, source: SourceDef, row: dict[str, Any], dates: tuple[str, ...], session: Any
) -> list[tuple[tuple[str, ...], str, str]]:
    """(where in the row, message, hint) for each problem of one given row."""
    wanted = _given_columns(manifest, source)
    known = [*wanted, *([source.symbol_column] if source.symbol_column else [])]
    out: list[tuple[tuple[str, ...], str, str]] = []
    missing = [c for c in wanted if c not in row]
    if missing:
        out.append(((), f"the row has no '{missing[0]}'", f"rows of '{source.name}' give {', '.join(wanted)}"))
    for column, value in row.items():
        if column not in known:
            hint = f"rows of '{source.name}' give {', '.join(wanted)}"
            out.append(((column,), f"'{column}' is not a column '{source.name}' reads from its file", hint))
        elif column == source.time_column and not (_numeric_time(source) and _is_number(value)):
            if not isinstance(value, str) or _row_time(value, dates, session) is None:
                hint = 'write a time of day ("09:30:01.250", quoted) or an ISO time with its zone'
                if len(dates) > 1:
                    hint = f'write its date and time of day ("{dates[-1]} 09:30:01.250", quoted) or an ISO time'
                out.append(((column,), f"the time {value!r} is not a time of the test's dates", hint))
        elif isinstance(value, bool):
            hint = "write a number (or text, for a column a filter compares with text), or null for a missing value"
            out.append(((column,), f"'{column}' is {value!r}, not a number", hint))
    return out


def _given_columns(manifest: Manifest, source: SourceDef) -> list[str]:
    """The columns a given row of ``source`` has: those ``fspec run`` reads from its file (for the events of an
    event grid also their instrument column, kept columns and by= keys)."""
    from fspec.runtime.events import by_columns

    columns = file_columns(source)
    for grid in manifest.data.grids:
        if grid.events == source.name:
            columns += [grid.instrument_column, *grid.keep, *by_columns(grid)]
    return list(dict.fromkeys(columns))


def _numeric_time(source: SourceDef) -> bool:
    """A source whose times are numbers in its file (day numbers, times of day as digits or units after an
    anchor, epochs): its given rows give them as the file has them."""
    return bool(source.time_day or source.time_date or source.time_clock or source.time_anchor or source.time_unit)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _row_time(text: str, dates: tuple[str, ...], session: Any) -> tuple[str, int] | None:
    """(the session date of the row's file, UTC ns) of a given row's time: a time of day (a test of one date),
    a date and a time of day in the session's zone ("2024-01-03 09:30:01"), or an ISO time with its zone."""
    day, _, clock = text.partition(" ")
    if DATE.match(day) and clock:
        if day not in dates:
            return None
        ns = _utc_ns(day, clock, session.timezone, session.bounds(day))
        return None if ns is None else (day, ns)
    if TIME_OF_DAY.match(text):
        if len(dates) > 1:
            return None  # which of the dates: say it
        ns = _utc_ns(dates[0], text, session.timezone, session.bounds(dates[0]))
        return None if ns is None else (dates[0], ns)
    ns = _utc_ns(dates[0], text, session.timezone, session.bounds(dates[0]))
    if ns is None:
        return None
    inside = [d for d in dates if session.bounds(d)[0] <= ns < session.bounds(d)[1]]
    return (inside or [dates[0]])[0], ns


def _check_inputs(manifest: Manifest, test: SpecTest, problem: _Problems) -> None:
    """Every source the expected columns read (and the sources they attach asof) has given rows."""
    project = manifest.project
    have = {(g.source.name, g.instrument) for g in test.given}
    by_symbol = {i.symbol: k for k, i in project.instruments.items()}
    for g in test.given:  # the rows of a file of many symbols that name theirs (a universe's) are theirs
        column = g.source.symbol_column
        have |= {(g.source.name, by_symbol[symbol_text(r[column])]) for r in g.rows if column in r}
    needed = with_dependencies(manifest, [e.key for e in test.expect])
    pairs = {(project.source_of(inst, s).name, inst) for key in needed for s, inst in manifest.source_reads[key]}
    pairs |= {(asof, inst) for name, inst in set(pairs) if (asof := project.sources[name].asof_source)}
    for source, inst in sorted(pairs, key=lambda p: (p[1], p[0])):
        if (source, inst) in have:
            continue
        names = [n for n in project.instruments[inst].sources if project.source_of(inst, n).name == source]
        label = names[0] if names else source
        label = label if inst == test.instrument else f"{inst}.{label}"
        problem(("given",), f"no rows for '{label}', which the expected columns read", f"add {label}: [...] (or [])")


def _utc_ns(day: str, text: str, zone: str, bounds: tuple[int, int]) -> int | None:
    """UTC ns of a time of day in the session's zone on the session of ``day`` (the calendar day before, for a
    session that crosses midnight, when that puts it inside the session), or of an ISO time with its zone."""
    m = TIME_OF_DAY.match(text)
    if m:
        hour, minute, second = int(m[1]), int(m[2]), int(m[3] or 0)
        if hour > 23 or minute > 59 or second > 59:
            return None
        fraction = int((m[4] or "0").ljust(9, "0"))
        session_day = date.fromisoformat(day)
        found = []
        for d in (session_day, session_day - timedelta(days=1)):
            found.append(_epoch_ns(datetime.combine(d, time(hour, minute, second), tzinfo=ZoneInfo(zone))) + fraction)
        inside = [ns for ns in found if bounds[0] <= ns < bounds[1]]
        return (inside or found)[0]
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return _epoch_ns(parsed) if parsed.tzinfo is not None else None


def _epoch_ns(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS + delta.microseconds * 1_000


# ---- running ----------------------------------------------------------------------------------------------


def run_tests(manifest: Manifest, tests: list[SpecTest], on_progress: Any = None) -> list[TestResult]:
    """Each test on its own rows; data problems in the rows raise DataError naming the test and source.
    ``on_progress`` wraps the tests (``fspec test``'s bar on a terminal)."""
    results = []
    with tempfile.TemporaryDirectory(prefix="fspec-test-") as scratch:
        for k, test in enumerate(on_progress(tests, len(tests)) if on_progress else tests):
            root = Path(scratch) / str(k)
            root.mkdir()
            (root / BUILD_DIR).symlink_to((manifest.root / BUILD_DIR).resolve(), target_is_directory=True)
            files = _write_given(test.manifest, test, root)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    computed = _compute(Manifest(root, test.manifest.data, test.manifest.members_of), test)
                except DataError as exc:
                    raise DataError(
                        files.get(exc.file, exc.file), f"test '{test.name}': {exc.message}", exc.hint
                    ) from None
            for w in caught:  # e.g. crossed quotes: said naming the test, not the scratch file
                text = str(w.message)
                if text.endswith("the file has no rows"):
                    continue  # given: [] says so
                for shown, where in files.items():
                    text = text.replace(shown, f"{where}: test '{test.name}'")
                warnings.warn_explicit(text, w.category, w.filename, w.lineno)
            results.append(_compare(test.manifest, test, computed))
    return results


def _compute(manifest: Manifest, test: SpecTest) -> dict[str, tuple[np.ndarray, dict[Key, np.ndarray]]]:
    """Each date's (row times, values by key), the dates in order on one engine: a later date's warm-up reads
    the earlier sessions as a run's would."""
    from fspec.runtime.run import Engine

    engine = Engine(manifest)
    out: dict[str, tuple[np.ndarray, dict[Key, np.ndarray]]] = {}
    if test.grid:
        runner = engine.runners[test.grid]
        for day in test.dates:
            result = runner.compute(day)
            out[day] = (result.ts_event, {(name, None): v for name, v in result.values.items()})
        return out
    keys = with_dependencies(manifest, [e.key for e in test.expect])
    for day in test.dates:
        result = engine.compute(day, test.interval, keys)
        out[day] = (result.ts_event, result.values)
    return out


def _write_given(manifest: Manifest, test: SpecTest, root: Path) -> dict[str, str]:
    """The rows as the files their sources name, each date's in its own file where the path has {date} (the rows
    of instruments that share a file of many symbols in one file, its symbol column filled in; a universe's rows
    name their symbols); returns each file's name, as messages show it, -> where its rows are in the test file."""
    import pyarrow as pa

    project = manifest.project
    files: dict[Path, tuple[SourceDef, list[tuple[str, int | None, dict[str, Any]]]]] = {}
    shown: dict[str, str] = {}
    for g in test.given:
        inst = project.instruments[g.instrument]
        for row in g.rows:
            symbol = symbol_text(row[g.source.symbol_column]) if g.source.symbol_column in row else inst.symbol
            value = row.get(g.source.time_column)
            when = _row_time(value, test.dates, project.session) if isinstance(value, str) else None
            day, ns = when if when is not None else (test.dates[0], None)
            path = source_path(root, g.source, symbol, day)
            files.setdefault(path, (g.source, []))[1].append((symbol, ns, row))
            shown.setdefault(path.relative_to(root).as_posix(), str(g.pos))
        if not g.rows:  # given: [] is a file with no rows
            path = source_path(root, g.source, inst.symbol, test.dates[0])
            files.setdefault(path, (g.source, []))
            shown.setdefault(path.relative_to(root).as_posix(), str(g.pos))
    for path, (spec, rows) in files.items():
        if rows and rows[0][1] is None and _numeric_time(spec):
            arrays = {spec.time_column: _number_array([r[spec.time_column] for _, _, r in rows])}
        else:
            ts = np.array([ns for _, ns, _ in rows], dtype=np.int64)
            arrays = {spec.time_column: pa.array(ts, pa.int64()).cast(pa.timestamp("ns", "UTC"))}
        if spec.symbol_column:
            arrays[spec.symbol_column] = pa.array([symbol for symbol, _, _ in rows], pa.string())
        for c in _given_columns(manifest, spec):
            if c in (spec.time_day, spec.time_date):
                arrays[c] = _number_array([r[c] for _, _, r in rows])
            elif c != spec.time_column:
                arrays[c] = _column_array([r[c] for _, _, r in rows])
        _write_table(pa.table(arrays), path, spec.format)
    return shown


def _number_array(values: list[Any]) -> Any:
    """Day numbers, dates as digits, times as units: whole numbers as int64 (as a vendor's file has them)."""
    import pyarrow as pa

    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pa.array(values, pa.int64())
    if any(isinstance(v, str) for v in values):
        return pa.array([None if v is None else str(v) for v in values], pa.string())
    return pa.array([math.nan if v is None else float(v) for v in values], pa.float64())


def _column_array(values: list[Any]) -> Any:
    """Numbers as float64 (null: NaN); a column with text (e.g. a side that a filter compares) as text."""
    import pyarrow as pa

    if any(isinstance(v, str) for v in values):
        return pa.array([None if v is None else str(v) for v in values], pa.string())
    return pa.array([math.nan if v is None else float(v) for v in values], pa.float64())


def _write_table(table: Any, path: Path, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, path)
    else:
        import pyarrow.parquet as pq

        pq.write_table(table, path)


def _compare(
    manifest: Manifest, test: SpecTest, computed: dict[str, tuple[np.ndarray, dict[Key, np.ndarray]]]
) -> TestResult:
    result = TestResult(test)
    zone = ZoneInfo(manifest.project.session.timezone)
    shape = "%Y-%m-%d %H:%M:%S" if len(test.dates) > 1 else "%H:%M:%S"
    if test.grid:
        shape = "event " + ("%Y-%m-%d %H:%M:%S.%f" if len(test.dates) > 1 else "%H:%M:%S.%f")
    for e in test.expect:
        for (day, row), want in sorted(e.values.items()):
            ts_event, values = computed[day]
            column = values[e.key]
            result.checked += 1
            if row >= len(column):  # an event grid's test lists more values than it has events
                result.mismatches.append(
                    Mismatch(e.column, row, f"{'event ' if test.grid else ''}{day} (none)", want, math.nan, e.tolerance)
                )
                continue
            got = float(column[row])
            same = math.isnan(got) if want is None else (not math.isnan(got) and abs(got - want) <= e.tolerance)
            if not same:
                bar = datetime.fromtimestamp(int(ts_event[row]) / NS, zone).strftime(shape)
                result.mismatches.append(Mismatch(e.column, row, bar, want, got, e.tolerance))
    return result


def render(results: list[TestResult]) -> str:
    lines = []
    for r in results:
        if r.ok:
            lines.append(f"PASS {r.test.name} ({r.checked} value(s))")
            continue
        lines.append(f"FAIL {r.test.name} at {r.test.pos}")
        lines += [f"    {m.render()}" for m in r.mismatches[:20]]
        if len(r.mismatches) > 20:
            lines.append(f"    ... and {len(r.mismatches) - 20} more")
    failed = sum(not r.ok for r in results)
    lines.append(f"{len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)
