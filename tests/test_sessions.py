"""Sessions of any hours: whole days, sessions that cross midnight, clock changes, files holding many days.

The expected values are computed here with pandas from the raw rows, by the rules of docs (the session of date
D that crosses midnight opens on D - 1; bars are counted from the open; tick returns restart at the open),
independently of fspec's grid code.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fspec.runtime.cache import BudgetCache, memory_budget
from fspec.session import NS, Session
from tests.conftest import REPO, cli, expect, make_project

ES_TICKS = REPO / "tests" / "data" / "es_ticks" / "es_ticks.parquet"
CME = Session("America/Chicago", 17 * 3600, 16 * 3600, 252)


def utc(text: str) -> int:
    return pd.Timestamp(text, tz="UTC").value


# ---- the Session type ---------------------------------------------------------------------------------


def test_regular_session_bounds_follow_the_zone() -> None:
    nyse = Session()
    assert nyse.bounds("2013-10-07") == (utc("2013-10-07 13:30"), utc("2013-10-07 20:00"))  # EDT
    assert nyse.bounds("2013-12-02") == (utc("2013-12-02 14:30"), utc("2013-12-02 21:00"))  # EST
    assert nyse.length_seconds == 6.5 * 3600 and not nyse.crosses_midnight


def test_whole_day_session_ends_at_the_next_midnight() -> None:
    day = Session("UTC", 0, 24 * 3600, 365)
    assert day.bounds("2024-08-08") == (utc("2024-08-08"), utc("2024-08-09"))
    ends = day.bar_ends("2024-08-08", 60)
    assert len(ends) == 1440 and ends[0] == utc("2024-08-08 00:01") and ends[-1] == utc("2024-08-09")


def test_a_session_crossing_midnight_opens_the_day_before_its_date() -> None:
    assert CME.crosses_midnight and CME.length_seconds == 23 * 3600
    # Tuesday 2013-09-03's session: Monday 17:00 to Tuesday 16:00 Chicago (CDT, UTC-5)
    assert CME.bounds("2013-09-03") == (utc("2013-09-02 22:00"), utc("2013-09-03 21:00"))


def test_a_clock_change_day_has_the_bars_its_hours_hold() -> None:
    day = Session("America/New_York", 0, 24 * 3600, 365)
    open_ns, close_ns = day.bounds("2024-03-10")  # spring forward: a 23-hour day
    assert close_ns - open_ns == 23 * 3600 * NS
    ends = day.bar_ends("2024-03-10", 3600)
    assert len(ends) == 23 and ends[-1] == close_ns and np.all(np.diff(ends) == 3600 * NS)
    fall = day.bar_ends("2024-11-03", 3600)  # fall back: 25 hours
    assert len(fall) == 25


def test_session_dates_of_rows() -> None:
    ts = np.array(
        [utc("2013-09-01 22:00:01"), utc("2013-09-02 15:59"), utc("2013-09-02 21:30"), utc("2013-09-02 23:00")]
    )
    # 21:30 UTC (16:30 Chicago) lies between two sessions; 23:00 UTC belongs to Tuesday's
    assert CME.dates_of(ts) == ["2013-09-02", "2013-09-03"]
    assert CME.dates_of(np.array([], dtype=np.int64)) == []


# ---- byte budget --------------------------------------------------------------------------------------


def test_budget_cache_evicts_least_recently_used_by_bytes() -> None:
    cache: BudgetCache[np.ndarray] = BudgetCache(budget=3 * 8 * 100)
    for k in range(3):
        cache[k] = np.zeros(100)
    _ = cache[0]  # used: 1 is now the oldest
    cache[3] = np.zeros(100)
    assert 1 not in cache and all(k in cache for k in (0, 2, 3)) and cache.bytes == 2400
    cache["big"] = np.zeros(1000)  # larger than the budget alone: kept, everything else goes
    assert len(cache) == 1 and "big" in cache


def test_memory_budget_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FSPEC_MEMORY", "512M")
    assert memory_budget() == 512 << 20
    monkeypatch.setenv("FSPEC_MEMORY", "lots")
    from fspec.errors import UsageError

    with pytest.raises(UsageError, match="FSPEC_MEMORY"):
        memory_budget()


# ---- E-mini ticks across midnight ---------------------------------------------------------------------

ES_PROJECT = """\
spec_version: 1
sources:
  trades:
    path: data/es_ticks.parquet
    time: {column: time, timezone: America/Chicago}
    columns: {price: float64, size: float64}
instruments:
  es: {symbol: es}
intervals: [300s]
session: {timezone: America/Chicago, open: "17:00", close: "16:00", trading_days_per_year: 252}
"""

ES_FEATURES = """\
spec_version: 1
features:
  - name: volume
    formula: sum(trades.size)
  - name: trade_count
    formula: count(trades.price)
  - name: last_price
    formula: last(trades.price)
  - name: interval_log_return
    formula: sum(diff(log(trades.price)))
  - name: volume_mean_24
    formula: rolling_mean(volume, 24)
"""


def _es_expected() -> dict[str, pd.DataFrame]:
    """Per session date, 300-second bars of the raw ticks, by the cross-midnight rule."""
    raw = pd.read_parquet(ES_TICKS)
    local = raw["time"]
    clock = local.dt.hour * 3600 + local.dt.minute * 60 + local.dt.second
    session_day = np.where(clock >= 17 * 3600, local.dt.normalize() + pd.Timedelta(days=1), local.dt.normalize())
    inside = (clock >= 17 * 3600) | (clock < 16 * 3600)
    frame = raw[inside].assign(day=pd.DatetimeIndex(session_day[inside]).strftime("%Y-%m-%d"))
    out = {}
    for day, rows in frame.groupby("day"):
        opened = pd.Timestamp(day) - pd.Timedelta(days=1) + pd.Timedelta(hours=17)
        bar = ((rows["time"] - opened) // pd.Timedelta(seconds=300)).to_numpy()
        returns = np.log(rows["price"].to_numpy())
        returns = np.concatenate([[0.0], np.diff(returns)])  # the session's first tick has no return
        grouped = pd.DataFrame({"bar": bar, "size": rows["size"].to_numpy(), "r": returns, "p": rows["price"]})
        per = grouped.groupby("bar").agg(volume=("size", "sum"), count=("size", "size"), ret=("r", "sum"))
        per["last"] = grouped.groupby("bar")["p"].last()
        full = per.reindex(range(23 * 12))
        full[["volume", "count", "ret"]] = full[["volume", "count", "ret"]].fillna(0.0)
        out[day] = full
    return out


@pytest.fixture(scope="module")
def es_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("es")
    project = make_project(
        root, {"project.yaml": ES_PROJECT, "features.yaml": ES_FEATURES}, links={"data/es_ticks.parquet": ES_TICKS}
    )
    project.compile()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        project.run()
    return root


def test_cross_midnight_sessions_are_the_dates_of_their_close(es_project: Path) -> None:
    names = sorted(p.name for p in (es_project / "out").glob("*.parquet"))
    assert names == ["features_20130902_300s.parquet", "features_20130903_300s.parquet"]


@pytest.mark.parametrize("day", ["2013-09-02", "2013-09-03"])
def test_cross_midnight_bars_match_pandas(es_project: Path, day: str) -> None:
    got = pd.read_parquet(es_project / "out" / f"features_{day.replace('-', '')}_300s.parquet")
    want = _es_expected()[day]
    opened = pd.Timestamp(day, tz="America/Chicago") - pd.Timedelta(hours=7)  # 17:00 the day before
    assert got["ts_event"].iloc[0] == opened and len(got) == 23 * 12
    np.testing.assert_array_equal(got["volume_300s_es"].to_numpy(), want["volume"].to_numpy())
    np.testing.assert_array_equal(got["trade_count_300s_es"].to_numpy(), want["count"].to_numpy())
    np.testing.assert_array_equal(got["last_price_300s_es"].to_numpy(), want["last"].to_numpy())
    np.testing.assert_allclose(got["interval_log_return_300s_es"].to_numpy(), want["ret"].to_numpy(), atol=1e-15)


def test_first_bar_after_the_overnight_halt_has_no_overnight_return(es_project: Path) -> None:
    """Tuesday's session opens at 17:00 Monday after Monday's 11:00 halt: its first return starts at its own
    first tick, not at Monday's last trade."""
    got = pd.read_parquet(es_project / "out" / "features_20130903_300s.parquet")
    raw = pd.read_parquet(ES_TICKS)
    first_bar = raw[(raw["time"] >= "2013-09-02 17:00") & (raw["time"] < "2013-09-02 17:05")]["price"].to_numpy()
    assert got["interval_log_return_300s_es"].iloc[0] == pytest.approx(np.log(first_bar[-1]) - np.log(first_bar[0]))


def test_warm_up_comes_from_the_earlier_session_not_a_recompute(es_project: Path) -> None:
    """rolling_mean over 24 bars reads the previous session; the day before's slots are reused, so each
    session's ticks go through the kernel once in a run of both days."""
    from fspec.runtime import calls as calls_module
    from fspec.runtime import run as run_module
    from fspec.runtime.manifest import load_manifest

    calls: list[int] = []
    one, many = calls_module.reduce_session, calls_module.reduce_entities

    def counting(module, ts, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(ts))
        return one(module, ts, *args, **kwargs)

    def counting_batch(module, ts, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(ts))  # a batch of short sessions: their ticks one after another
        return many(module, ts, *args, **kwargs)

    calls_module.reduce_session, calls_module.reduce_entities = counting, counting_batch
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run_module.run(load_manifest(es_project), run_module.RunOptions(output_dir=es_project / "again"))
    finally:
        calls_module.reduce_session, calls_module.reduce_entities = one, many
    raw = pd.read_parquet(ES_TICKS)
    clock = raw["time"].dt.hour * 60 + raw["time"].dt.minute
    inside = int(((clock >= 17 * 60) | (clock < 16 * 60)).sum())
    assert sum(calls) == inside  # every tick of both sessions once
    first = pd.read_parquet(es_project / "again" / "features_20130903_300s.parquet")
    previous = pd.read_parquet(es_project / "again" / "features_20130902_300s.parquet")
    window = np.concatenate([previous["volume_300s_es"].to_numpy()[-23:], first["volume_300s_es"].to_numpy()[:1]])
    assert first["volume_mean_24_300s_es"].iloc[0] == pytest.approx(window.mean())


def test_interval_must_tile_a_cross_midnight_session(tmp_path: Path) -> None:
    bad = ES_PROJECT.replace("intervals: [300s]", "intervals: [7m]")
    make_project(tmp_path, {"project.yaml": bad, "features.yaml": ES_FEATURES})
    out = expect(cli("validate", "--project", tmp_path), 1)
    assert "interval '7m' does not divide the 82800s session" in out and "project.yaml:" in out


def test_a_family_of_negative_values_keeps_snake_case_names(tmp_path: Path) -> None:
    features = ES_FEATURES + "  - name: shifted\n    expand: {k: [-1, 2.5]}\n    formula: volume + k\n"
    make_project(tmp_path, {"project.yaml": ES_PROJECT, "features.yaml": features})
    from fspec.compiler.build import check

    checked = check(tmp_path)
    assert not checked.diagnostics
    assert {f.name for f in checked.project.features} >= {"shifted_m1", "shifted_2p5"}


# ---- one bar per session ------------------------------------------------------------------------------

SESSION_FEATURES = """\
spec_version: 1
features:
  - name: volume
    formula: sum(trades.size)
  - name: realized_var
    formula: sum(diff(log(trades.price)) ** 2)
  - name: bars_seen
    formula: bars_per_session + 0 * volume
  - name: volume_prev
    formula: lag(volume, 1)
"""


def test_session_interval_gives_one_row_per_session(tmp_path: Path) -> None:
    project = ES_PROJECT.replace("intervals: [300s]", "intervals: [300s, session]")
    make_project(
        tmp_path,
        {"project.yaml": project, "features.yaml": SESSION_FEATURES},
        links={"data/es_ticks.parquet": ES_TICKS},
    )
    expect(cli("validate", "--project", tmp_path), 0)
    expect(cli("compile", "--project", tmp_path), 0)
    expect(cli("run", "--project", tmp_path), 0)
    raw = pd.read_parquet(ES_TICKS)
    local = raw["time"]
    clock = local.dt.hour * 3600 + local.dt.minute * 60 + local.dt.second
    day = np.where(clock >= 17 * 3600, local.dt.normalize() + pd.Timedelta(days=1), local.dt.normalize())
    inside = ((clock >= 17 * 3600) | (clock < 16 * 3600)).to_numpy()
    frame = raw[inside].assign(day=pd.DatetimeIndex(day[inside]).strftime("%Y-%m-%d"))
    previous = np.nan
    for date, rows in frame.groupby("day"):
        got = pd.read_parquet(tmp_path / "out" / f"features_{date.replace('-', '')}_session.parquet")
        assert list(got.columns) == [
            "ts_event",
            "volume_session_es",
            "realized_var_session_es",
            "bars_seen_session_es",
            "volume_prev_session_es",
        ]
        assert len(got) == 1 and got["ts_event"].iloc[0] == pd.Timestamp(date, tz="America/Chicago") - pd.Timedelta(
            hours=7
        )
        assert got["volume_session_es"].iloc[0] == rows["size"].sum()
        r = np.diff(np.log(rows["price"].to_numpy()))
        assert got["realized_var_session_es"].iloc[0] == pytest.approx((r**2).sum(), rel=1e-12)
        assert got["bars_seen_session_es"].iloc[0] == 1.0
        np.testing.assert_equal(got["volume_prev_session_es"].iloc[0], previous)  # lag reaches the session before
        previous = rows["size"].sum()
    expect(cli("audit", "--project", tmp_path, "--cuts", "4"), 0)
    explained = expect(cli("explain", "--project", tmp_path, "volume_session_es"), 0)
    assert "interval:    session" in explained
