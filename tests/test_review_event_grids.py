"""Event grids at their edges (a review of issue 14): each test is a bug that was found, written before its fix.

Small hand-built projects; every expected value is written out by hand (or counted with numpy) from the data
the test builds, not from the kernels. Validate-only cases use ``check`` and compile nothing.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fspec
from fspec.compiler.build import check, compile_project
from fspec.runtime.manifest import load_manifest
from fspec.runtime.run import RunOptions, run
from tests.conftest import cli, expect, make_project

T0 = pd.Timestamp("2025-12-14 12:00:00", tz="UTC")

PROJECT = """\
spec_version: 1
sources:
  trades: {path: data/trades.parquet, symbol: token_id, time: ts, kind: events,
           columns: {price: float64, size: float64}}
  fills: {path: FILLS, time: ts, kind: events,
          columns: {price: float64, size: float64, big: {expr: "size > 1"}}}
universes:
  tokens: {from: trades, suffix: "t{symbol}", params: {mult: 2}}
grids:
  fills: {events: fills, instrument: token_id, universe: tokens, latency: LATENCY, keep: [event_key]}
session: {timezone: UTC, open: "00:00", close: "24:00", trading_days_per_year: 365}
"""


def _features(*pairs: tuple[str, str], bars: str = "") -> str:
    lines = ["spec_version: 1", "features:"]
    for name, formula in pairs:
        lines += [f"  - name: {name}", "    grid: fills", f'    formula: "{formula}"']
    return "\n".join(lines) + "\n" + bars


def _trades() -> pd.DataFrame:
    s = pd.Timedelta("1s")
    return pd.DataFrame(
        {
            "ts": [T0, T0 + 1 * s, T0 + 3 * s],
            "token_id": ["a", "a", "b"],
            "price": [0.5, 0.52, 0.7],
            "size": [10.0, 20.0, 5.0],
        }
    )


def _fills() -> pd.DataFrame:
    s = pd.Timedelta("1s")
    return pd.DataFrame(
        {
            "ts": [T0 + 2 * s, T0 + 4 * s, T0 + 5 * s, T0 + 6 * s],
            "token_id": ["a", "b", "a", "b"],
            "market_slug": ["m", "m", "m", "m"],
            "event_key": ["e0", "e1", "e2", "e3"],
            "price": [0.5, 0.7, 0.5, 0.7],
            "size": [1.0, 2.0, 3.0, 4.0],
        }
    )


def _project(
    root: Path,
    features: str,
    trades: pd.DataFrame | None = None,
    fills: pd.DataFrame | dict[str, pd.DataFrame] | None = None,
    latency: str = "0ms",
    extra: str = "",
) -> Path:
    """A universe grid over one trades file; ``fills`` one file, or per-day files (``{date}`` in the path)."""
    fills = _fills() if fills is None else fills
    per_day = isinstance(fills, dict)
    text = PROJECT.replace("FILLS", '"data/fills_{date}.parquet"' if per_day else "data/fills.parquet")
    data = {"data/trades.parquet": _trades() if trades is None else trades}
    data |= {f"data/fills_{d}.parquet": f for d, f in fills.items()} if per_day else {"data/fills.parquet": fills}
    project = make_project(root, {"project.yaml": text.replace("LATENCY", latency) + extra, "f.yaml": features}, data)
    return project.root


def _problems(root: Path) -> str:
    return "\n".join(p.render() for p in check(root).diagnostics)


def _run(root: Path, **options: object) -> dict[str, pd.DataFrame]:
    compile_project(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        written = run(load_manifest(root), RunOptions(**options))  # type: ignore[arg-type]
    return {p.name: pd.read_parquet(p) for p in written}


# ---- the audit -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bars_and_grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with a bar interval and an event grid (with a target that looks ahead), compiled once."""
    features = _features(("own_n", "count(fills.size, window=10s)")) + (
        "  - name: vol\n    formula: sum(trades.size)\n"
        "targets:\n  - name: target_bucket\n    grid: fills\n    formula: sum(fills.size, bucket=10s)\n"
    )
    stray = _fills().iloc[-1:].assign(ts=T0 + pd.Timedelta("7s"), token_id="zzz", event_key="e4")  # no member
    later = _fills().iloc[:1].assign(ts=T0 + pd.Timedelta("1D"), event_key="e5")  # a day without market data
    fills = pd.concat([_fills(), stray, later])
    root = _project(tmp_path_factory.mktemp("both"), features, fills=fills, extra="intervals: [60s]\n")
    compile_project(root)
    return root


def test_audit_cuts_the_grid_of_a_project_with_bars_too(bars_and_grid: Path) -> None:
    """A project with bar intervals and an event grid: the audit must cut the grid (it skipped it)."""
    from fspec.runtime.audit import audit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = audit(load_manifest(bars_and_grid), cuts=6, seed=1)
    assert report.ok, report.render()
    assert report.features == 2 + 1 and report.targets == 1  # vol on two members, own_n; the bucket target
    assert "target_bucket_tokens" not in report.static_targets  # it looks ahead: a cut at an event changes it


@pytest.mark.parametrize("options", [["--interval", "60s"], ["--select", "vol"]])
def test_a_run_of_bar_columns_says_it_writes_no_grid(bars_and_grid: Path, tmp_path: Path, options: list[str]) -> None:
    """--interval and --select pick bar columns: the grid's file is not written, and the run says so (it was
    silent)."""
    out = expect(cli("run", "--project", bars_and_grid, "--out", tmp_path, *options), 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features_20251214_60s.parquet"]
    assert "grid fills is not written" in out and "without --select and --interval" in out


@pytest.mark.parametrize("term", ["own_n", "own_n_tokens"])
def test_selecting_a_grid_column_says_what_it_is(bars_and_grid: Path, tmp_path: Path, term: str) -> None:
    """`fspec ls` lists own_n_tokens; --select own_n_tokens said no feature or column had that name."""
    out = expect(cli("run", "--project", bars_and_grid, "--out", tmp_path, "--select", term), 2)
    assert "is on event grid 'fills'" in out and "no feature or column has that name" not in out


def test_a_day_task_carries_the_grid_s_counts(bars_and_grid: Path, tmp_path: Path) -> None:
    """The dask engine's day task returns the grid's counts, so that its client tells the run's summary and the
    warning for events that name no instrument (the dask engine told neither)."""
    from fspec.runtime.tasks import DayTask, run_day
    from fspec.runtime.universe import universe_symbols

    manifest = load_manifest(bars_and_grid)
    task = DayTask(
        str(bars_and_grid),
        "2025-12-14",
        (),
        {},
        str(tmp_path),
        universe_symbols(manifest),
        manifest.data.spec_hash,
        fspec.__version__,
        ("fills",),
    )
    outcome = run_day(task)
    counts = outcome.grids["fills"]
    assert (counts.events, counts.unmatched, counts.examples) == (5, 1, ["zzz"])


def test_a_day_with_events_and_no_market_data_has_no_bars(bars_and_grid: Path, tmp_path: Path) -> None:
    """A day on which no instrument has data is not a session of bars (DESIGN.md, Grids): a day with events
    only wrote a bar file of NaN, with a warning that every instrument lacked data."""
    out = expect(cli("run", "--project", bars_and_grid, "--out", tmp_path), 0)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "features_20251214_60s.parquet",
        "features_20251214_fills.parquet",
        "features_20251215_fills.parquet",
    ]
    assert "have no data on 2025-12-15" not in out
    assert pd.read_parquet(tmp_path / "features_20251215_fills.parquet").own_n_tokens.tolist() == [0.0]


def test_the_audit_proves_the_latency_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel that read the rows of [t - latency, t) passed the audit: its cut runs kept the market rows up to
    the cut event's own time. They now end at the cut minus the latency."""
    from fspec.runtime import events
    from fspec.runtime.audit import audit

    s = pd.Timedelta("1s")
    trades = pd.DataFrame(
        {"ts": T0 + s * np.arange(0, 60, 0.5), "token_id": "a", "price": np.arange(120.0), "size": 1.0}
    )
    fills = pd.DataFrame(
        {
            "ts": T0 + s * np.arange(3, 60, 3),
            "token_id": "a",
            "market_slug": "m",
            "event_key": [f"e{i}" for i in range(19)],
            "price": 0.5,
            "size": 1.0,
        }
    )
    root = _project(tmp_path, _features(("last", "asof(trades.price)")), trades, fills, latency="2s")
    compile_project(root)
    assert audit(load_manifest(root), cuts=10, seed=0).ok
    leaky = dataclasses.replace  # a grid whose kernels see no latency, as a kernel that forgot it would read
    real = events.GridRunner._reads

    def forgetting(self: events.GridRunner, *args: object) -> np.ndarray:
        self.grid = leaky(self.grid, latency_ns=0)
        return real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(events.GridRunner, "_reads", forgetting)
    report = audit(load_manifest(root), cuts=10, seed=0)
    assert not report.ok and report.violations[0].column == "last_tokens"


# ---- latency: the cut may fall in the day before ----------------------------------------------------------------


def test_latency_counts_in_the_reach_of_a_read(tmp_path: Path) -> None:
    """window + ago + latency is how far before the event rows are read: beyond 24 h is refused (it was run, and
    the rows of two days back were silently missing)."""
    root = _project(tmp_path, _features(("n", "count(trades.price, window=24h)")), latency="60m")
    text = _problems(root)
    assert "f.yaml:5" in text and "latency" in text and "at most 24h" in text


def test_asof_with_a_latency_reads_the_day_before_the_cut(tmp_path: Path) -> None:
    """An event at 00:30 with 60 m of latency cuts at 23:30 the day before; that day's only trade is after the
    cut, so the last trade before the cut is the one of two days back (asof read NaN)."""
    trades = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2025-12-13 23:45:00", "2025-12-14 23:45:00"], utc=True),
            "token_id": ["a", "a"],
            "price": [1.0, 2.0],
            "size": [1.0, 1.0],
        }
    )
    fills = _fills().iloc[:1].assign(ts=pd.Timestamp("2025-12-15 00:30:00", tz="UTC"))
    features = _features(("last", "asof(trades.price)"), ("age", "age(trades.price)"), ("own", "asof(fills.size)"))
    early = fills.assign(ts=pd.Timestamp("2025-12-13 22:00:00", tz="UTC"), event_key="e_early", size=7.0)
    late = fills.assign(ts=pd.Timestamp("2025-12-14 23:50:00", tz="UTC"), event_key="e_late", size=8.0)
    root = _project(tmp_path, features, trades, pd.concat([early, late, fills]), latency="60m")
    row = _run(root)["features_20251215_fills.parquet"].iloc[0]
    shown = expect(cli("explain", "--project", root, "last_tokens"), 0)
    assert "from the event's session and the two before it with data (a latency)" in shown
    assert row.last_tokens == 1.0
    assert row.age_tokens == pytest.approx(24 * 3600 + 45 * 60)  # from 12-13 23:45 to 12-15 00:30
    assert row.own_tokens == 7.0  # our fill of 12-13 22:00 (the one of 12-14 23:50 is after the cut)


# ---- parameters and constants in the tick expressions of a read --------------------------------------------------


def test_a_parameter_in_a_read_grouped_by_a_column_is_refused(tmp_path: Path) -> None:
    """Rows grouped by=market_slug are of several instruments: an instrument's parameter there has no one value
    (it read NaN, so the sum was 0)."""
    root = _project(tmp_path, _features(("x", "sum(fills.size * mult, window=10s, by=market_slug)")))
    text = _problems(root)
    assert "f.yaml:5" in text and "'mult'" in text and "by=market_slug" in text


def test_a_parameter_in_a_read_of_the_instrument(tmp_path: Path) -> None:
    """The same parameter in a read grouped by the event's instrument, and of market rows, is that instrument's."""
    features = _features(("own", "sum(fills.size * mult, window=10s)"), ("mkt", "sum(trades.size * mult, window=10s)"))
    got = _run(_project(tmp_path, features))["features_20251214_fills.parquet"]
    assert list(got.own_tokens) == [0.0, 0.0, 2.0 * 1, 2.0 * 2]  # e2 sees e0 (token a), e3 sees e1 (token b)
    assert list(got.mkt_tokens) == [2.0 * 30, 2.0 * 5, 2.0 * 30, 2.0 * 5]


@pytest.mark.parametrize("name", ["interval_seconds", "bars_per_session", "periods_per_year"])
def test_a_bar_constant_inside_a_read_is_refused(tmp_path: Path, name: str) -> None:
    """Refused at the top of a formula, a bar constant inside a read was taken at one bar per session (86400)."""
    root = _project(tmp_path, _features(("x", f"sum(trades.size * {name}, window=10s)")))
    text = _problems(root)
    assert "f.yaml:5" in text and f"'{name}' is a constant of bar grids" in text


# ---- events in per-day files ---------------------------------------------------------------------------------------


def test_per_day_files_are_read_once_and_warned_once(tmp_path: Path) -> None:
    """A day's events file out of order is one warning, though the next day's reads of earlier events (two kernels
    of them) read it again (it was warned three times), and gives what one file of both days gives."""
    features = _features(
        ("own_n", "count(fills.size, window=24h)"),
        ("mkt_n", "count(fills.size, window=24h, by=market_slug)"),
        ("last", "asof(trades.price)"),
    )
    day2 = _fills().assign(ts=_fills().ts + pd.Timedelta("1D"), event_key=lambda f: f.event_key + "_2")
    files = {"20251214": _fills().iloc[[1, 0, 2, 3]], "20251215": day2}
    compile_project(root := _project(tmp_path / "per_day", features, fills=files))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        per_day = run(load_manifest(root), RunOptions())
    told = [str(w.message) for w in caught if "not in time order" in str(w.message)]
    assert len(told) == 1 and "fills_20251214.parquet" in told[0]
    one = _run(_project(tmp_path / "one", features, fills=pd.concat([_fills(), day2])))
    for path in per_day:
        pd.testing.assert_frame_equal(pd.read_parquet(path), one[path.name])
    got = one["features_20251215_fills.parquet"]
    assert list(got.own_n_tokens) == [2, 2, 2, 2]  # e0_2: e0 (24 h back exactly) and e2; e2_2: e2 and e0_2
    assert list(got.mkt_n_tokens) == [4, 4, 4, 4]  # the 24 h before each: the four latest fills of the market


# ---- validate: what a grid project may not hold -----------------------------------------------------------------


def test_a_bar_feature_in_a_project_without_intervals(tmp_path: Path) -> None:
    """intervals: may be left out when the project has grids, but then a bar feature is computed nowhere (it was
    accepted and silently never written)."""
    root = _project(tmp_path, _features(("x", "asof(trades.price)")) + "  - name: vol\n    formula: sum(trades.size)\n")
    text = _problems(root)
    assert "f.yaml:6" in text and "'vol' is a feature of bars" in text and "intervals:" in text


def test_by_a_computed_column_is_refused(tmp_path: Path) -> None:
    """by= groups by a column of the events' file; a computed one (big) passed validate and failed the run."""
    root = _project(tmp_path, _features(("x", "count(fills.size, window=10s, by=big)")))
    text = _problems(root)
    assert "f.yaml:5" in text and "'big' is a computed column" in text


def test_validate_data_checks_the_by_column(tmp_path: Path) -> None:
    """validate --data checked the grid's instrument and kept columns, not a by= column (the run failed, with a
    hint about 'from:' mappings)."""
    root = _project(tmp_path, _features(("x", "count(fills.size, window=10s, by=market_slg)")))
    assert not _problems(root)
    out = expect(cli("validate", "--project", root, "--data"), 1)
    assert "f.yaml:5" in out and "column 'market_slg' is not in data/fills.parquet" in out
    assert "did you mean 'market_slug'" in out


def test_a_feature_of_another_grid_is_named_as_such(tmp_path: Path) -> None:
    """A formula reading a feature of another grid, or a bar feature reading a grid's, said 'unknown name'."""
    features = _features(("x", "asof(trades.price)")) + (
        "  - name: y\n    grid: other\n    formula: x * 2\n  - name: z\n    formula: x * 2\n"
    )
    other = "  other: {events: fills, instrument: token_id, universe: tokens}\nsession:"
    root = _project(tmp_path, features, extra="intervals: [60s]\n")
    project = root / "specs" / "project.yaml"
    project.write_text(project.read_text().replace("session:", other, 1))
    text = _problems(root)
    assert "unknown name" not in text, text
    assert "f.yaml:8" in text and "'x' is a feature of grid 'fills'" in text  # from grid other
    assert "f.yaml:10" in text and "'x' is a feature of event grid 'fills'" in text  # from bars


def test_a_day_without_events_writes_no_file_and_a_misdated_file_is_warned(tmp_path: Path) -> None:
    """A day file with no events, or none inside its session (a wrong date or time zone), wrote an empty file
    silently; as with one file of many days, a day with no events writes no file, and each is a warning."""
    misdated = _fills().assign(ts=_fills().ts + pd.Timedelta("3D"))  # in the file of 12-16, times of 12-17
    files = {"20251214": _fills(), "20251215": _fills().iloc[:0], "20251216": misdated}
    root = _project(tmp_path, _features(("last", "asof(trades.price)")), fills=files)
    compile_project(root)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = run(load_manifest(root), RunOptions())
    assert [p.name for p in written] == ["features_20251214_fills.parquet"]
    told = "\n".join(str(w.message) for w in caught)
    assert "data/fills_20251215.parquet: the file has no events" in told
    assert "data/fills_20251216.parquet: none of its 4 events falls inside the session of 2025-12-16" in told


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ([("x", "asof(trades.price)"), ("x", "asof(trades.size)")], "feature name 'x' is already used at"),
        ([("target_x", "asof(trades.price)")], "'target_x' is named like a target but is a feature"),
        ([("trades", "asof(trades.price)")], "'trades' is already the name of a source"),
        ([("pi", "asof(trades.price)")], "'pi' is already the name of a source, instrument, constant"),
    ],
)
def test_the_naming_rules_hold_on_grids(tmp_path: Path, features: list[tuple[str, str]], message: str) -> None:
    """Names on a grid were not checked: the first of two features named x was silently dropped."""
    text = _problems(_project(tmp_path, _features(*features)))
    assert message in text, text


def test_a_grid_s_name_may_hold_a_window_and_a_bar_name_not_the_grid_s(tmp_path: Path) -> None:
    root = _project(tmp_path, _features(("mt_return_30s", "asof(trades.price)")))
    assert not _problems(root)
    features = _features(("x", "asof(trades.price)")) + "  - name: x\n    formula: sum(trades.size)\n"
    text = _problems(_project(tmp_path / "both", features, extra="intervals: [60s]\n"))
    assert "f.yaml:3" in text and "feature name 'x' is already used at" in text


def test_a_family_variable_is_a_window_in_seconds(tmp_path: Path) -> None:
    """window=10 is 10 s; window=w of a family (expand: {w: [1, 3]}) was 'must be a duration', once per member."""
    features = "spec_version: 1\nfeatures:\n  - name: vol\n    grid: fills\n    expand: {w: [1, 3]}\n"
    features += "    formula: sum(trades.size, window=w, ago=w)\n"
    got = _run(_project(tmp_path, features))["features_20251214_fills.parquet"]
    # trades a: 0 s (10), 1 s (20); b: 3 s (5). w reads [t - 2w, t - w): e0 (a, 2 s) [0, 1) with w=1
    assert list(got.vol_1_tokens) == [10.0, 0.0, 0.0, 0.0]
    assert list(got.vol_3_tokens) == [0.0, 0.0, 30.0, 0.0]  # e2 (a, 5 s): [-1, 2); e3 (b, 6 s): [0, 3), not 3 s


def test_a_latency_in_hours(tmp_path: Path) -> None:
    """Windows take h (window=1h); a latency of 1h was a schema error without a hint."""
    text = _problems(_project(tmp_path, _features(("n", "count(trades.price, window=23h)")), latency="1h"))
    assert not text, text
    text = _problems(_project(tmp_path / "more", _features(("n", "count(trades.price, window=24h)")), latency="1h"))
    assert "it reaches 25h before the event (the grid's latency 1h included)" in text


def test_ties_count_events_not_reads(tmp_path: Path) -> None:
    """The summary counts the events with a market row at their cut: with two market sources each event with a
    tie in both was counted twice (more ties than events)."""
    s = pd.Timedelta("1s")
    fills = _fills().assign(ts=[T0 + 1 * s, T0 + 3 * s, T0 + 5 * s, T0 + 6 * s])  # e0 at a's 1 s, e1 at b's 3 s
    features = _features(("p", "asof(trades.price)"), ("q", "asof(quotes.price)"))
    root = _project(tmp_path, features, fills=fills)
    project = root / "specs" / "project.yaml"
    text = project.read_text().replace(
        "universes:",
        "  quotes: {path: data/trades.parquet, symbol: token_id, time: ts, kind: events, columns: {price: float64}}"
        "\nuniverses:",
    )
    project.write_text(text.replace('suffix: "t{symbol}",', 'suffix: "t{symbol}", sources: [trades, quotes],'))
    compile_project(root)
    notes: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run(load_manifest(root), RunOptions(on_note=notes.append))
    assert any("4 event(s) over 1 day(s); 2 with a market row at their cut" in n for n in notes), notes


def test_a_kept_column_may_have_the_name_of_a_helper_s_column(tmp_path: Path) -> None:
    """A helper (publish: false) writes no column: a kept column of its name clashes with nothing."""
    features = _features(("y", "x * 2")) + "  - name: x\n    grid: fills\n    publish: false\n"
    features += "    formula: asof(trades.price)\n"
    root = _project(tmp_path, features)
    project = root / "specs" / "project.yaml"
    project.write_text(project.read_text().replace("keep: [event_key]", "keep: [event_key, x_tokens]"))
    assert not _problems(root)
    project.write_text(project.read_text().replace("keep: [event_key, x_tokens]", "keep: [event_key, y_tokens]"))
    assert "column 'y_tokens' is also a kept column of the events" in _problems(root)


def test_a_categorical_instrument_column(tmp_path: Path) -> None:
    """pandas writes a category as a dictionary with int8 indices: reading the events' instrument column from it
    was an internal error (the codes were read as int32)."""
    fills = _fills().astype({"token_id": "category", "market_slug": "category"})
    features = _features(("last", "asof(trades.price)"), ("n", "count(fills.size, window=10s, by=market_slug)"))
    got = _run(_project(tmp_path, features, fills=fills))["features_20251214_fills.parquet"]
    assert list(got.last_tokens) == [0.52, 0.7, 0.52, 0.7] and list(got.n_tokens) == [0, 1, 2, 3]


def test_an_events_source_with_symbol_in_its_path_is_refused(tmp_path: Path) -> None:
    """Events files per symbol (data/{symbol}_fills.parquet) were read as none: the run wrote no file, exit 0."""
    root = _project(tmp_path, _features(("x", "asof(trades.price)")))
    project = root / "specs" / "project.yaml"
    project.write_text(project.read_text().replace("path: data/fills.parquet", "path: 'data/{symbol}_fills.parquet'"))
    text = _problems(root)
    assert "project.yaml:10" in text and "{symbol}" in text and "column token_id" in text


def test_every_listed_instrument_must_have_the_source_a_read_reads(tmp_path: Path) -> None:
    """Without a universe, formulas were checked against the first listed instrument only: one without the source
    passed validate and the run failed on a file it never declared (data/b_trades.parquet: file not found)."""
    project = """\
spec_version: 1
sources:
  trades: {path: "data/{symbol}_trades.parquet", time: ts, kind: events, columns: {price: float64}}
  quotes: {path: "data/{symbol}_quotes.parquet", time: ts, kind: events, columns: {bid: float64}}
  fills: {path: data/fills.parquet, time: ts, kind: events, columns: {size: float64}}
instruments:
  aaa: {symbol: a, sources: [trades]}
  bbb: {symbol: b, sources: [quotes]}
grids:
  fills: {events: fills, instrument: token_id, keep: [event_key]}
session: {timezone: UTC, open: "00:00", close: "24:00"}
"""
    features = _features(("x", "asof(trades.price)"), ("own", "sum(fills.size, window=10s)"))
    root = make_project(tmp_path, {"project.yaml": project, "f.yaml": features}).root
    text = _problems(root)
    assert "f.yaml:5" in text and "instrument 'bbb' has no source 'trades'" in text
    assert "f.yaml:8" not in text  # the grid's own events are every instrument's
    with_params = project.replace("[trades]}", "[trades], params: {mult: 2}}").replace("[quotes]}", "[trades, quotes]}")
    (root / "specs" / "project.yaml").write_text(with_params)
    (root / "specs" / "f.yaml").write_text(
        _features(("x", "sum(trades.price * mult, window=10s)"), ("y", "asof(trades.price) * mult"))
    )
    text = _problems(root)
    assert "f.yaml:5" in text and "sum() for instrument 'bbb': unknown name 'mult'" in text  # it read NaN
    assert "f.yaml:8" in text and "parameter 'mult' is not given for instrument 'bbb'" in text
