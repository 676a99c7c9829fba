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
from fspec.manifest import Key, SourceDef
from fspec.naming import interval_token
from fspec.project import BUILD_DIR, display_path, spec_test_files
from fspec.runtime.columns import with_dependencies
from fspec.runtime.grid import column_name, column_of
from fspec.runtime.manifest import Manifest
from fspec.runtime.select import computed_at
from fspec.runtime.sources import _wanted_columns as file_columns  # the columns fspec run reads from a file
from fspec.runtime.sources import source_path
from fspec.session import NS, bar_starts

TIME_OF_DAY = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?$")


@dataclass(frozen=True)
class Given:
    key: str  # as written: SOURCE or INSTRUMENT.SOURCE
    source: SourceDef  # the source that holds the rows (the instrument's mapping applied)
    instrument: str
    rows: list[dict[str, Any]]
    pos: Position


@dataclass(frozen=True)
class Expected:
    key: Key
    column: str
    values: dict[int, float | None]  # row -> value (None: a missing value)
    tolerance: float
    pos: Position


@dataclass(frozen=True)
class SpecTest:
    name: str
    pos: Position
    date: str
    interval: int
    instrument: str
    given: list[Given]
    expect: list[Expected]


@dataclass(frozen=True)
class Mismatch:
    column: str
    row: int
    bar: str  # the bar's start, local time
    expected: float | None
    actual: float
    tolerance: float

    def render(self) -> str:
        want = "NaN (null)" if self.expected is None else repr(self.expected)
        within = f" (tolerance {self.tolerance!r})" if self.tolerance else ""
        return f"{self.column} row {self.row} (bar {self.bar}): expected {want}, got {self.actual!r}{within}"


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
    project = manifest.project
    problem = _Problems(doc, at, raw["name"], out)
    instruments = list(project.instruments)
    instrument = raw.get("instrument", instruments[0] if len(instruments) == 1 else None)
    if instrument is None:
        problem(("name",), "say which instrument it is about", f"add instrument: {instruments[0]}")
        return None
    if instrument not in project.instruments:
        problem(("instrument",), f"unknown instrument '{instrument}'", f"instruments: {', '.join(instruments)}")
        return None
    try:
        date.fromisoformat(raw["date"])
    except ValueError:
        problem(("date",), f"'{raw['date']}' is not a calendar date", 'write it as "YYYY-MM-DD"')
        return None
    interval = parse_interval(raw["interval"]) if "interval" in raw else project.intervals[0]
    if interval not in manifest.intervals:
        shown = ", ".join(interval_token(i) for i in manifest.intervals)
        problem(("interval",), f"the build computes no {interval_token(interval)} grid", f"intervals: {shown}")
        return None
    session = project.session
    bounds = session.bounds(raw["date"])

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
        spec_cols = set(file_columns(spec))
        for j, row in enumerate(rows):
            for column, message, hint in _row_problems(spec, row, raw["date"], session.timezone, bounds):
                problem(("given", name, j, *column), message, hint, key=bool(column) and column[0] not in spec_cols)
        given.append(Given(name, spec, inst, rows, doc.pos((*at, "given", name), key=True)))

    tolerances = raw.get("tolerance") or {}
    for name in tolerances:
        if name not in raw["expect"]:
            problem(("tolerance", name), f"a tolerance for '{name}', which expect does not list", "remove it", True)
    starts = bar_starts(session.bar_ends(raw["date"], interval), bounds[0])
    expect = []
    for name, values in raw["expect"].items():
        key = _column_key(manifest, name, instrument, interval)
        if key is None:
            problem(
                ("expect", name),
                f"no column '{name}' at {interval_token(interval)} for {instrument}",
                "name a feature (its column of the test's instrument and interval) or a full column name",
                True,
            )
            continue
        rows: dict[int, float | None] = {}
        if isinstance(values, list):
            rows = dict(enumerate(values))
        for bar, value in values.items() if isinstance(values, dict) else ():
            ns = _utc_ns(raw["date"], bar, session.timezone, bounds)
            hits = np.flatnonzero(starts == ns) if ns is not None else ()
            if not len(hits):
                grid = interval_token(interval)
                problem(
                    ("expect", name, bar), f"no bar starts at {bar} on the {grid} grid", "bars start at the open", True
                )
                continue
            rows[int(hits[0])] = value
        if rows and max(rows) >= len(starts):
            problem(("expect", name), f"{len(values)} values for a session of {len(starts)} bars", "list fewer values")
            continue
        column = column_of(manifest.feature(*key), key[1], interval)
        pos = doc.pos((*at, "expect", name), key=True)
        expect.append(Expected(key, column, rows, float(tolerances.get(name, 0.0)), pos))
    test = SpecTest(raw["name"], doc.pos((*at, "name")), raw["date"], interval, instrument, given, expect)
    if not problem.count:
        _check_inputs(manifest, test, problem)
    return None if problem.count else test


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
    source: SourceDef, row: dict[str, Any], day: str, zone: str, bounds: tuple[int, int]
) -> list[tuple[tuple[str, ...], str, str]]:
    """(where in the row, message, hint) for each problem of one given row."""
    wanted = file_columns(source)
    out: list[tuple[tuple[str, ...], str, str]] = []
    missing = [c for c in wanted if c not in row]
    if missing:
        out.append(((), f"the row has no '{missing[0]}'", f"rows of '{source.name}' give {', '.join(wanted)}"))
    for column, value in row.items():
        if column not in wanted:
            hint = f"rows of '{source.name}' give {', '.join(wanted)}"
            out.append(((column,), f"'{column}' is not a column '{source.name}' reads from its file", hint))
        elif column == source.time_column:
            if not isinstance(value, str) or _utc_ns(day, value, zone, bounds) is None:
                hint = 'write a time of day ("09:30:01.250", quoted) or an ISO time with its zone'
                out.append(((column,), f"the time {value!r} is not a time", hint))
        elif isinstance(value, bool):
            hint = "write a number (or text, for a column a filter compares with text), or null for a missing value"
            out.append(((column,), f"'{column}' is {value!r}, not a number", hint))
    return out


def _check_inputs(manifest: Manifest, test: SpecTest, problem: _Problems) -> None:
    """Every source the expected columns read (and the sources they attach asof) has given rows."""
    project = manifest.project
    have = {(g.source.name, g.instrument) for g in test.given}
    needed = with_dependencies(manifest, [e.key for e in test.expect])
    pairs = {(project.source_of(inst, s).name, inst) for key in needed for s, inst in manifest.slot_reads[key]}
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


def run_tests(manifest: Manifest, tests: list[SpecTest]) -> list[TestResult]:
    """Each test on its own rows; data problems in the rows raise DataError naming the test and source."""
    from fspec.runtime.run import Engine

    results = []
    with tempfile.TemporaryDirectory(prefix="fspec-test-") as scratch:
        for k, test in enumerate(tests):
            root = Path(scratch) / str(k)
            root.mkdir()
            (root / BUILD_DIR).symlink_to((manifest.root / BUILD_DIR).resolve(), target_is_directory=True)
            files = _write_given(manifest, test, root)
            engine = Engine(Manifest(root, manifest.data))
            keys = with_dependencies(manifest, [e.key for e in test.expect])
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    result = engine.compute(test.date, test.interval, keys)
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
            results.append(_compare(manifest, test, result.values, result.ts_event))
    return results


def _write_given(manifest: Manifest, test: SpecTest, root: Path) -> dict[str, str]:
    """The rows as the files their sources name (the rows of instruments that share a file of many symbols in
    one file, its symbol column filled in); returns each file's name, as messages show it, -> where its rows
    are in the test file."""
    import pyarrow as pa

    project = manifest.project
    bounds = project.session.bounds(test.date)
    files: dict[Path, tuple[SourceDef, list[tuple[str, dict[str, Any]]]]] = {}
    shown: dict[str, str] = {}
    for g in test.given:
        symbol = project.instruments[g.instrument].symbol
        path = source_path(root, g.source, symbol, test.date)
        files.setdefault(path, (g.source, []))[1].extend((symbol, row) for row in g.rows)
        shown.setdefault(path.relative_to(root).as_posix(), str(g.pos))
    for path, (spec, rows) in files.items():
        zone = project.session.timezone
        ts = np.array([_utc_ns(test.date, str(r[spec.time_column]), zone, bounds) for _, r in rows], dtype=np.int64)
        arrays = {spec.time_column: pa.array(ts, pa.int64()).cast(pa.timestamp("ns", "UTC"))}
        if spec.symbol_column:
            arrays[spec.symbol_column] = pa.array([symbol for symbol, _ in rows], pa.string())
        for c in file_columns(spec):
            if c != spec.time_column:
                arrays[c] = _column_array([r[c] for _, r in rows])
        _write_table(pa.table(arrays), path, spec.format)
    return shown


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


def _compare(manifest: Manifest, test: SpecTest, values: dict[Key, np.ndarray], ts_event: np.ndarray) -> TestResult:
    result = TestResult(test)
    zone = ZoneInfo(manifest.project.session.timezone)
    for e in test.expect:
        column = values[e.key]
        for row, want in sorted(e.values.items()):
            got = float(column[row])
            result.checked += 1
            same = math.isnan(got) if want is None else (not math.isnan(got) and abs(got - want) <= e.tolerance)
            if not same:
                bar = datetime.fromtimestamp(int(ts_event[row]) / NS, zone).strftime("%H:%M:%S")
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
