"""Point-in-time universe membership: ``sessions_before: N`` makes a symbol a member on a day only with rows that
day and on each of the N sessions before it; on other days its columns are NaN and it takes no part in
cross-sections, while its data still warms later days up. ``every_session`` (survivorship) is refused in
features and allowed in targets. References: the same project without the rule, and pandas."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from conftest import book_project, cli, expect, make_project

from fspec.runtime.manifest import load_manifest
from fspec.runtime.run import RunOptions, run

DAYS = ("2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05")
PRESENT = {1: {0, 1, 2, 3}, 2: {0, 1, 2, 3}, 3: {0, 2, 3}, 4: {0, 1, 2, 3}, 5: {2, 3}}  # 3 misses a day, 5 lists late
# with sessions_before: 1, a member the day after a session with rows and on that day
MEMBER = {1: {1, 2, 3}, 2: {1, 2, 3}, 3: {3}, 4: {1, 2, 3}, 5: {3}}
FEATURES = [
    {"name": "vwap", "formula": "wmean(book.price, book.size)"},
    {"name": "volume", "formula": "sum(book.size)"},
    {"name": "volume_mean", "formula": "rolling_mean(volume, 20)"},  # reaches into the session before
    {"name": "vwap_lag", "formula": "lag(vwap, 1)"},  # bar 0 reads the session before
    {"name": "vwap_ewm", "formula": "ewm_mean(vwap, 5, session=false)"},  # carried across sessions
    {"name": "vwap_rank", "formula": "cs_rank(vwap)", "instruments": ["stocks"]},
    {"name": "rank_mean", "formula": "rolling_mean(cs_rank(vwap), 3)", "instruments": ["stocks"]},
    {"name": "index_stocks", "formula": "cs_mean(stocks.vwap)"},
    {"name": "lag_count", "formula": "cs_count(stocks.vwap_lag)"},
    {"name": "weight_sum", "formula": "cs_sum(stocks.weight + 0 * stocks.vwap_lag)"},
]


def _book() -> pd.DataFrame:
    rng = np.random.default_rng(8)
    frames = []
    for stock, days in PRESENT.items():
        for k in sorted(days):
            n = 120
            ts = pd.Timestamp(f"{DAYS[k]} 09:30", tz="America/New_York") + pd.to_timedelta(
                np.sort(rng.uniform(0, 6.5 * 3600, n)), unit="s"
            )
            price = 10 * stock + np.round(np.cumsum(rng.normal(0, 0.05, n)), 2)
            frames.append(pd.DataFrame({"ts": ts, "sym": stock, "price": price, "size": rng.integers(1, 9, n)}))
    return pd.concat(frames).sort_values("ts", kind="stable", ignore_index=True)


def _project(root: Path, membership: dict | None, features: list[dict], targets: list[dict] | None = None):
    universe: dict = {"from": "book", "suffix": "s{symbol}", "params": {"weight": 1.0}}
    if membership:
        universe["membership"] = membership
    project = book_project(universes={"stocks": universe})
    specs = {"project.yaml": project, "features.yaml": {"spec_version": 1, "features": features}}
    if targets:
        specs["targets.yaml"] = {"spec_version": 1, "targets": targets}
    return make_project(root, specs, {"data/book.parquet": _book()})


def _outputs(root: Path, told: list[str] | None = None) -> dict[str, pd.DataFrame]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(load_manifest(root), RunOptions())
    if told is not None:
        told += [str(w.message) for w in caught]
    return {d: pd.read_parquet(root / "out" / f"features_{d.replace('-', '')}_1800s.parquet") for d in DAYS}


def test_members_by_day_are_nan_outside_and_keep_their_history(tmp_path: Path) -> None:
    ruled = _project(tmp_path / "ruled", {"sessions_before": 1}, FEATURES)
    free = _project(tmp_path / "free", None, FEATURES)
    for made in (ruled, free):
        made.compile()
    told: list[str] = []
    got, every = _outputs(ruled.root, told), _outputs(free.root)
    empty = [t for t in told if "no member" in t]  # the first day: no session before it, so no member
    assert empty == [
        f"universe 'stocks' has no member on {DAYS[0]} (membership sessions_before: 1): its columns are NaN that day"
    ]
    for k, day in enumerate(DAYS):
        members = [s for s in PRESENT if k in MEMBER[s]]
        for stock in PRESENT:
            for name in ("vwap", "volume", "volume_mean", "vwap_lag", "vwap_ewm"):
                column = f"{name}_1800s_s{stock}"
                if stock in members:  # its own columns as without the rule, warm-up from non-member days included
                    np.testing.assert_array_equal(got[day][column], every[day][column])
                else:
                    assert got[day][column].isna().all(), (day, column)
        vwap = pd.DataFrame({s: every[day][f"vwap_1800s_s{s}"] for s in members})
        n = vwap.count(axis=1)
        rank = vwap.rank(axis=1).sub(1).div(n - 1, axis=0)
        for stock in PRESENT:
            column = f"vwap_rank_1800s_s{stock}"
            expected = rank[stock] if stock in members else np.full(len(got[day]), np.nan)
            np.testing.assert_allclose(got[day][column], expected, rtol=1e-12, equal_nan=True)
        index = vwap.mean(axis=1) if members else np.full(len(got[day]), np.nan)
        np.testing.assert_allclose(got[day]["index_stocks_1800s"], index, rtol=1e-12, equal_nan=True)
        # a cross-section of what a member's history gives at bar 0 (lag) counts only today's members
        lagged = pd.DataFrame({s: every[day][f"vwap_lag_1800s_s{s}"] for s in members}, index=got[day].index)
        np.testing.assert_array_equal(got[day]["lag_count_1800s"], lagged.count(axis=1).to_numpy(dtype=float))
        np.testing.assert_array_equal(
            got[day]["weight_sum_1800s"], lagged.notna().sum(axis=1).where(lagged.notna().any(axis=1))
        )
    # a window over a cross-section reaches the day before with that day's members: the mean of the ranks written
    for k in range(1, len(DAYS)):
        for stock in (s for s in PRESENT if k in MEMBER[s] and k - 1 in MEMBER[s]):
            ranks = pd.concat(
                [got[DAYS[k - 1]][f"vwap_rank_1800s_s{stock}"], got[DAYS[k]][f"vwap_rank_1800s_s{stock}"]]
            )
            expected = ranks.rolling(3).mean().iloc[13:]
            np.testing.assert_allclose(got[DAYS[k]][f"rank_mean_1800s_s{stock}"], expected, rtol=1e-12, equal_nan=True)
    assert got[DAYS[0]].filter(like="_s").isna().all().all()  # no session before the first: no member yet


def test_every_session_is_refused_in_features_and_allowed_in_targets(tmp_path: Path) -> None:
    made = _project(tmp_path / "f", {"every_session": True}, FEATURES)
    out = expect(cli("validate", "--project", str(made.root)), 1)
    assert "reads universe 'stocks', whose membership every_session" in out and "survivorship" in out
    assert "features.yaml:" in out and "sessions_before: N" in out
    made = _project(
        tmp_path / "t", {"every_session": True}, [], [{"name": "target_volume", "formula": "sum(book.size)"}]
    )
    expect(cli("compile", "--project", str(made.root)), 0)
    got = _outputs(made.root)
    for day in DAYS:
        for stock in PRESENT:
            column = f"target_volume_1800s_s{stock}"
            assert got[day][column].isna().all() == (PRESENT[stock] != set(range(len(DAYS)))), (day, column)


def test_an_event_grid_over_a_universe_ruled_by_day_is_a_spec_error(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import test_event_grids as grids

    ruled = grids.PROJECT.replace(
        'suffix: "t{{symbol}}"}}', 'suffix: "t{{symbol}}", membership: {{sessions_before: 1}}}}'
    )
    assert ruled != grids.PROJECT
    monkeypatch.setattr(grids, "PROJECT", ruled)
    grids._project(tmp_path, grids._trades(), grids._fills())
    out = expect(cli("validate", "--project", str(tmp_path)), 1)
    assert "universe 'tokens' has a membership rule by day, which event grids do not apply" in out
    assert "project.yaml:" in out
