"""The oracles of tests/oracles/pretrade.py (issue 14's event grid): the three market-context implementations
agree with each other on the bundled data of examples/pretrade_fills and give the values written out by
hand on small frames, one edge case each; the complete-set labels on hand-built fills; and the bundled data
has what the example promises (ties, fills before the tape, empty windows, a token with no tape at all).

Nothing here runs fspec: these are the references its event grid is compared with.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.oracles.pretrade import (
    EXAMPLE,
    FEATURES,
    KEEP,
    SECOND,
    complete_set_bucket,
    complete_set_trailing,
    context_duckdb,
    context_numpy,
    context_polars,
    fills_file,
    load_bundled,
)

Oracle = Callable[[pd.DataFrame, pd.DataFrame, int], pd.DataFrame]
ORACLES: dict[str, Oracle] = {"numpy": context_numpy, "duckdb": context_duckdb, "polars": context_polars}
MS = 1_000_000
T = pd.Timestamp("2025-12-15 00:00:00", tz="UTC")  # the hand-built fills are near T


def at(seconds: float) -> pd.Timestamp:
    return T + pd.Timedelta(seconds=seconds)


def market(*rows: tuple[str, float, float, float]) -> pd.DataFrame:
    """Market trades (token, seconds after T, price, size)."""
    return pd.DataFrame(
        {
            "ts": pd.DatetimeIndex([at(s) for _, s, _, _ in rows]).as_unit("ns"),
            "token_id": [tok for tok, _, _, _ in rows],
            "price": [p for _, _, p, _ in rows],
            "size": [z for _, _, _, z in rows],
        }
    )


def fills_at(*rows: tuple[str, float]) -> pd.DataFrame:
    """Fills (token, seconds after T)."""
    return pd.DataFrame(
        {
            "ts": pd.DatetimeIndex([at(s) for _, s in rows]).as_unit("ns"),
            "token_id": [tok for tok, _ in rows],
        }
    )


def assert_same(got: pd.DataFrame, want: pd.DataFrame, columns: list[str], rtol: float = 1e-12) -> None:
    """Equal to ``rtol`` relative, NaN exactly where NaN, column by column (the first difference named)."""
    for name in columns:
        a = got[name].to_numpy(dtype="float64")
        b = want[name].to_numpy(dtype="float64")
        assert (np.isnan(a) == np.isnan(b)).all(), f"{name}: NaN at rows {np.flatnonzero(np.isnan(a) != np.isnan(b))}"
        ok = ~np.isnan(b)
        bad = np.flatnonzero(np.abs(a[ok] - b[ok]) > rtol * np.abs(b[ok]))
        assert not len(bad), f"{name}: row {np.flatnonzero(ok)[bad[0]]}: {a[ok][bad[0]]!r} != {b[ok][bad[0]]!r}"


def expected(rows: list[dict[str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=FEATURES, dtype="float64")


NAN = float("nan")
NOTHING_SEEN = {  # a member of the universe with no market row before t'
    "mt_last_price": NAN,
    "mt_last_age_ms": NAN,
    "mt_return_30s": NAN,
    "mt_return_5m": NAN,
    "mt_trades_60s": 0.0,
    "mt_volume_60s": 0.0,
    "mt_notional_60s": 0.0,
}
NOT_A_MEMBER = dict.fromkeys(FEATURES, NAN)


# ---- the three oracles agree on the bundled data ----------------------------------------------------------


@pytest.fixture(scope="module")
def bundled() -> tuple[pd.DataFrame, pd.DataFrame]:
    return load_bundled()


@pytest.fixture(scope="module")
def results(bundled: tuple[pd.DataFrame, pd.DataFrame]) -> dict[tuple[str, int], pd.DataFrame]:
    fills, trades = bundled
    return {(name, lat): fn(fills, trades, lat) for name, fn in ORACLES.items() for lat in (0, 250 * MS)}


@pytest.mark.parametrize("latency", [0, 250 * MS], ids=["0ms", "250ms"])
@pytest.mark.parametrize("other", ["duckdb", "polars"])
def test_oracles_agree_on_bundled_data(results: dict, bundled: tuple, other: str, latency: int) -> None:
    fills, _ = bundled
    base = results[("numpy", latency)]
    got = results[(other, latency)]
    assert len(got) == len(fills) and (got.index == fills.index).all()
    pd.testing.assert_frame_equal(got[list(fills.columns)], fills)  # the fills' own columns, unchanged
    assert_same(got, base, FEATURES)


def test_bundled_results_are_not_trivial(results: dict, bundled: tuple) -> None:
    """The comparison above means something: few NaN, real counts, and latency changes values."""
    fills, trades = bundled
    base = results[("numpy", 0)]
    lone = ~fills["token_id"].isin(set(trades["token_id"]))
    assert base.loc[lone, FEATURES].isna().all().all()  # the token with no tape: NaN everywhere
    assert base.loc[~lone, "mt_trades_60s"].notna().all()
    assert base["mt_last_price"].notna().mean() > 0.9
    assert base["mt_trades_60s"].max() > 100
    assert (base["mt_trades_60s"] == 0).sum() > 100  # empty windows
    later = results[("numpy", 250 * MS)]
    assert (later.loc[~lone, "mt_trades_60s"] != base.loc[~lone, "mt_trades_60s"]).sum() > 1000


# ---- hand-built edge cases, each oracle ------------------------------------------------------------------

oracle = pytest.mark.parametrize("name", list(ORACLES))


@oracle
def test_a_tie_is_not_seen(name: str) -> None:
    """Our own fill printed on the tape at exactly t is not before t (the seed's side="right" reads it)."""
    trades = market(("A", -40, 0.30, 1.0), ("A", -10, 0.40, 5.0), ("A", -2, 0.42, 10.0), ("A", 0, 0.55, 100.0))
    got = ORACLES[name](fills_at(("A", 0)), trades, 0)
    want = expected(
        [
            {
                "mt_last_price": 0.42,
                "mt_last_age_ms": 2000.0,
                "mt_return_30s": 0.42 - 0.30,
                "mt_return_5m": NAN,  # nothing 5 minutes before
                "mt_trades_60s": 3.0,
                "mt_volume_60s": 16.0,
                "mt_notional_60s": 0.30 * 1.0 + 0.40 * 5.0 + 0.42 * 10.0,
            }
        ]
    )
    assert_same(got, want, FEATURES)


@oracle
def test_a_fill_before_the_first_market_row(name: str) -> None:
    trades = market(("A", 0.001, 0.50, 1.0), ("A", 5, 0.51, 2.0))
    got = ORACLES[name](fills_at(("A", 0), ("A", 10)), trades, 0)
    want = expected(
        [
            NOTHING_SEEN,
            {
                "mt_last_price": 0.51,
                "mt_last_age_ms": 5000.0,
                "mt_return_30s": NAN,
                "mt_return_5m": NAN,
                "mt_trades_60s": 2.0,
                "mt_volume_60s": 3.0,
                "mt_notional_60s": 0.50 * 1.0 + 0.51 * 2.0,
            },
        ]
    )
    assert_same(got, want, FEATURES)


@oracle
def test_an_empty_window(name: str) -> None:
    """Nothing in the last 60 s: count and sums are 0; as-of values still read older rows."""
    trades = market(("A", -310, 0.50, 2.0), ("A", -90, 0.60, 3.0))
    got = ORACLES[name](fills_at(("A", 0)), trades, 0)
    want = expected(
        [
            {
                "mt_last_price": 0.60,
                "mt_last_age_ms": 90_000.0,
                "mt_return_30s": 0.0,  # the last row before t - 30 s is the same row
                "mt_return_5m": 0.60 - 0.50,
                "mt_trades_60s": 0.0,
                "mt_volume_60s": 0.0,
                "mt_notional_60s": 0.0,
            }
        ]
    )
    assert_same(got, want, FEATURES)


@oracle
def test_latency_moves_both_edges(name: str) -> None:
    """With 250 ms latency t' = t - 250 ms: a row at t' is not seen (upper edge, strict), a row at t' - 60 s is
    (lower edge, inclusive); age is still measured from t."""
    trades = market(
        ("A", -60.25, 0.40, 7.0),
        ("A", -1, 0.45, 4.0),
        ("A", -0.25, 0.46, 5.0),
        ("A", -0.2, 0.47, 6.0),
    )
    fills = fills_at(("A", 0))
    late = ORACLES[name](fills, trades, 250 * MS)
    want_late = expected(
        [
            {
                "mt_last_price": 0.45,
                "mt_last_age_ms": 1000.0,
                "mt_return_30s": 0.45 - 0.40,
                "mt_return_5m": NAN,
                "mt_trades_60s": 2.0,
                "mt_volume_60s": 11.0,
                "mt_notional_60s": 0.40 * 7.0 + 0.45 * 4.0,
            }
        ]
    )
    assert_same(late, want_late, FEATURES)
    now = ORACLES[name](fills, trades, 0)
    want_now = expected(
        [
            {
                "mt_last_price": 0.47,
                "mt_last_age_ms": 200.0,
                "mt_return_30s": 0.47 - 0.40,
                "mt_return_5m": NAN,
                "mt_trades_60s": 3.0,  # t - 60.25 s is now before the window
                "mt_volume_60s": 15.0,
                "mt_notional_60s": 0.45 * 4.0 + 0.46 * 5.0 + 0.47 * 6.0,
            }
        ]
    )
    assert_same(now, want_now, FEATURES)


@oracle
def test_a_nan_price_row(name: str) -> None:
    """A NaN price is skipped by asof, age, the count of prices and price * size; its size still counts in
    sum(size). A token whose only rows have NaN prices has no as-of value but a volume."""
    trades = market(("A", -3, 0.52, 8.0), ("A", -1, NAN, 20.0), ("B", -5, NAN, 2.5))
    got = ORACLES[name](fills_at(("A", 0), ("B", 0)), trades, 0)
    want = expected(
        [
            {
                "mt_last_price": 0.52,
                "mt_last_age_ms": 3000.0,
                "mt_return_30s": NAN,
                "mt_return_5m": NAN,
                "mt_trades_60s": 1.0,
                "mt_volume_60s": 28.0,
                "mt_notional_60s": 0.52 * 8.0,
            },
            {**NOTHING_SEEN, "mt_volume_60s": 2.5},
        ]
    )
    assert_same(got, want, FEATURES)


@oracle
def test_a_token_with_no_market_data(name: str) -> None:
    """Each fill reads only its own token: B (a member, but nothing before t) gets NaN as-of values and zero
    counts; C (no market row anywhere: not a member) gets NaN everywhere, even the count."""
    trades = market(("A", -1, 0.50, 1.0), ("B", 30, 0.70, 2.0))
    got = ORACLES[name](fills_at(("B", 0), ("C", 0)), trades, 0)
    assert_same(got, expected([NOTHING_SEEN, NOT_A_MEMBER]), FEATURES)


@oracle
def test_rows_at_one_time_and_fills_in_any_order(name: str) -> None:
    """Of two market rows at one time the as-of value is the later in the frame; fills out of time order and
    with their own index come back in their order with their index."""
    trades = market(("A", -1, 0.30, 1.0), ("A", -1, 0.35, 2.0), ("B", -4, 0.90, 1.0))
    fills = fills_at(("A", 0), ("B", -2), ("A", -3)).set_axis([7, 3, 5])
    got = ORACLES[name](fills, trades, 0)
    assert list(got.index) == [7, 3, 5]
    row = {"mt_return_30s": NAN, "mt_return_5m": NAN}
    want = expected(
        [
            {**row, "mt_last_price": 0.35, "mt_last_age_ms": 1000.0, "mt_trades_60s": 2.0, "mt_volume_60s": 3.0}
            | {"mt_notional_60s": 0.30 + 0.35 * 2.0},
            {**row, "mt_last_price": 0.90, "mt_last_age_ms": 2000.0, "mt_trades_60s": 1.0, "mt_volume_60s": 1.0}
            | {"mt_notional_60s": 0.90},
            NOTHING_SEEN,
        ]
    )
    assert_same(got, want, FEATURES)


@oracle
def test_windows_across_midnight(name: str) -> None:
    """The first fills of a day read the previous day's tape."""
    trades = market(("A", -400, 0.20, 1.0), ("A", -100, 0.25, 1.0), ("A", -20, 0.27, 4.0))
    got = ORACLES[name](fills_at(("A", 1)), trades, 0)
    want = expected(
        [
            {
                "mt_last_price": 0.27,
                "mt_last_age_ms": 21_000.0,
                "mt_return_30s": 0.27 - 0.25,
                "mt_return_5m": 0.27 - 0.20,
                "mt_trades_60s": 1.0,
                "mt_volume_60s": 4.0,
                "mt_notional_60s": 0.27 * 4.0,
            }
        ]
    )
    assert_same(got, want, FEATURES)


# ---- complete-set labels ---------------------------------------------------------------------------------


def our_fills(*rows: tuple[float, str, str, str, float]) -> pd.DataFrame:
    """Fills (seconds after T, market_slug, side, outcome, size)."""
    return pd.DataFrame(
        {
            "ts": pd.DatetimeIndex([at(s) for s, *_ in rows]).as_unit("ns"),
            "market_slug": [r[1] for r in rows],
            "side": [r[2] for r in rows],
            "outcome": [r[3] for r in rows],
            "size": [r[4] for r in rows],
        }
    )


# Market X: Up at :01, Down at :04 and Up at :04 (one second), a SELL at :05, Up at :12; market Y: Down at :03.
LEAK = our_fills(
    (1, "X", "BUY", "Up", 10.0),
    (4, "X", "BUY", "Down", 5.0),
    (4, "X", "BUY", "Up", 3.0),
    (5, "X", "SELL", "Down", 7.0),
    (12, "X", "BUY", "Up", 2.0),
    (3, "Y", "BUY", "Down", 4.0),
)


def labels(rows: list[tuple[float, float]]) -> pd.DataFrame:
    up = np.array([u for u, _ in rows])
    down = np.array([d for _, d in rows])
    return pd.DataFrame(
        {
            "up_shares": up,
            "down_shares": down,
            "complete_set_flag": ((up > 0) & (down > 0)).astype(float),
            "complete_set_shares": np.minimum(up, down),
        }
    )


LABEL_COLUMNS = ["up_shares", "down_shares", "complete_set_flag", "complete_set_shares"]


def test_complete_set_bucket_leaks() -> None:
    """The seed's label: the bucket [:00, :10) of X holds Up 10 + 3 and Down 5, so the Up fill at :01 is
    labelled a complete set because of the Down fill three seconds after it."""
    got = complete_set_bucket(LEAK)
    want = labels([(13.0, 5.0), (13.0, 5.0), (13.0, 5.0), (13.0, 5.0), (2.0, 0.0), (0.0, 4.0)])
    assert_same(got, want, LABEL_COLUMNS)
    assert got["complete_set_flag"].iloc[0] == 1.0
    alone = complete_set_bucket(LEAK.iloc[[0]])  # without the later fills the same fill is not
    assert alone["complete_set_flag"].iloc[0] == 0.0


def test_complete_set_trailing_sees_only_earlier_fills() -> None:
    """For each fill, the BUY fills of its market in [t - 10 s, t): not itself, not a fill of the same second,
    nothing later."""
    got = complete_set_trailing(LEAK)
    want = labels(
        [
            (0.0, 0.0),  # :01, nothing before
            (10.0, 0.0),  # :04, the Up at :01 (the Up at :04 is not earlier)
            (10.0, 0.0),  # :04, likewise
            (13.0, 5.0),  # :05 (a SELL is labelled too): both fills of :04 and the Up of :01
            (3.0, 5.0),  # :12, [:02, :12): the fills of :04 (the SELL does not count)
            (0.0, 0.0),  # Y, :03: X's fills are another market
        ]
    )
    assert_same(got, want, LABEL_COLUMNS)
    # the first fill's label does not change when later fills are removed
    assert_same(complete_set_trailing(LEAK.iloc[[0]]), want.iloc[[0]], LABEL_COLUMNS)


def test_complete_set_trailing_with_latency() -> None:
    got = complete_set_trailing(LEAK, latency_ns=2 * SECOND)
    want = labels([(0.0, 0.0), (10.0, 0.0), (10.0, 0.0), (10.0, 0.0), (13.0, 5.0), (0.0, 0.0)])
    assert_same(got, want, LABEL_COLUMNS)


def _seed_complete_set(fills: pd.DataFrame, seconds: int = 10) -> pd.DataFrame:
    """The seed's own code (004, "Regime labels"), as it is."""
    features = fills.copy()
    mask_ud_buy = (features["side"] == "BUY") & (features["outcome"].isin(["Up", "Down"]))
    tmp = features.loc[mask_ud_buy, ["market_slug", "ts", "outcome", "size"]].copy()
    tmp["bucket"] = tmp["ts"].dt.floor(f"{int(seconds)}s")
    by_bucket = (
        tmp.pivot_table(
            index=["market_slug", "bucket"], columns="outcome", values="size", aggfunc="sum", fill_value=0.0
        )
        .rename(columns={"Up": "up_shares", "Down": "down_shares"})
        .reset_index()
    )
    by_bucket["complete_set_flag"] = (by_bucket["up_shares"] > 0) & (by_bucket["down_shares"] > 0)
    by_bucket["complete_set_shares"] = np.minimum(by_bucket["up_shares"], by_bucket["down_shares"])
    features["bucket"] = features["ts"].dt.floor(f"{int(seconds)}s")
    features = features.merge(
        by_bucket[["market_slug", "bucket", "complete_set_flag", "complete_set_shares"]],
        how="left",
        on=["market_slug", "bucket"],
    )
    features["complete_set_flag"] = features["complete_set_flag"].astype("boolean").fillna(False).astype(float)
    features["complete_set_shares"] = features["complete_set_shares"].fillna(0.0)
    return features


def test_complete_set_bucket_is_the_seeds_label(bundled: tuple) -> None:
    fills, _ = bundled
    got = complete_set_bucket(fills)
    seed = _seed_complete_set(fills)
    assert_same(got.reset_index(drop=True), seed, ["complete_set_flag", "complete_set_shares"])
    # and it leaks on the bundled data: some fills are complete sets only because of later fills
    trailing = complete_set_trailing(fills)
    buy = fills["side"] == "BUY"
    assert (got.loc[buy, "complete_set_flag"] > trailing.loc[buy, "complete_set_flag"]).sum() > 100
    assert trailing.loc[buy, "complete_set_flag"].mean() > 0.3  # both sides within 10 s: often


# ---- the bundled data: what the example promises ---------------------------------------------------------


def test_bundled_data_has_the_promised_shape(bundled: tuple) -> None:
    fills, trades = bundled
    assert 3_500 <= len(fills) <= 4_500 and 35_000 <= len(trades) <= 45_000
    assert list(fills.columns) == ["ts", *KEEP, "seconds_to_end"]
    assert list(trades.columns) == ["ts", "token_id", "market_slug", "price", "size"]
    for frame in (fills, trades):
        assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"
        assert frame["ts"].is_monotonic_increasing
    assert fills["event_key"].is_unique
    assert (fills["ts"].dt.microsecond == 0).all() and (fills["ts"].dt.nanosecond == 0).all()
    assert (trades["ts"].dt.as_unit("ns").astype("int64") % MS == 0).all()  # millisecond prints
    assert set(fills["side"]) == {"BUY", "SELL"} and (fills["side"] == "BUY").mean() > 0.85
    assert set(fills["outcome"]) == {"Up", "Down"}
    assert set(fills["exec_type"]) == {"MAKER_LIKE", "TAKER_LIKE", "INSIDE", "UNKNOWN"}
    for prices in (fills["price"], trades["price"].dropna()):
        assert ((prices > 0) & (prices < 1)).all()
        assert np.allclose(prices * 100, np.round(prices * 100), rtol=0, atol=1e-9)
    assert all(len(tok) > 70 and tok.isdigit() for tok in fills["token_id"].unique())
    assert fills.groupby("market_slug")["token_id"].nunique().value_counts().to_dict() == {2: 4, 1: 1}
    assert 5 <= trades["price"].isna().sum() <= 20
    assert fills["ts"].dt.strftime("%Y-%m-%d").unique().tolist() == ["2025-12-14", "2025-12-15"]
    size = sum((EXAMPLE / "data" / name).stat().st_size for name in ("fills.parquet", "market_trades.parquet"))
    assert size < 1_000_000


def test_bundled_data_has_the_edge_cases(bundled: tuple) -> None:
    fills, trades = bundled
    first = trades.groupby("token_id")["ts"].min()
    members = fills["token_id"].isin(first.index)
    assert fills.loc[~members, "token_id"].nunique() == 1  # one token with no tape at all
    assert (fills.loc[members, "ts"] < fills.loc[members, "token_id"].map(first)).sum() > 20
    ties = fills.merge(trades[["token_id", "ts"]], on=["token_id", "ts"])
    assert len(ties) > 200
    # NaN prices right before fills: the as-of value must skip them
    nan_rows = trades[trades["price"].isna()]
    near = fills.merge(nan_rows[["token_id", "ts"]].rename(columns={"ts": "nan_ts"}), on="token_id")
    assert ((near["ts"] - near["nan_ts"] > pd.Timedelta(0)) & (near["ts"] - near["nan_ts"] < pd.Timedelta("1s"))).any()
    # the first fills of 2025-12-15 need the tape of 2025-12-14 for their 5 minutes
    midnight = pd.Timestamp("2025-12-15", tz="UTC")
    early = fills[(fills["ts"] >= midnight) & (fills["ts"] < midnight + pd.Timedelta("5min")) & members]
    before = trades[(trades["ts"] < midnight) & trades["token_id"].isin(early["token_id"])]
    assert len(early) > 20 and before["token_id"].nunique() == early["token_id"].nunique()


def test_the_generator_gives_the_bundled_data(bundled: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    """data/generate.py is seeded: it gives the bundled rows again (the frames, not the bytes, which depend on
    the parquet writer's version)."""
    spec = importlib.util.spec_from_file_location("pretrade_generate", EXAMPLE / "data" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    fills, trades = module.generate()
    pd.testing.assert_frame_equal(fills.reset_index(drop=True), bundled[0], check_dtype=False)
    pd.testing.assert_frame_equal(trades.reset_index(drop=True), bundled[1], check_dtype=False)


def test_fills_file_layout(results: dict) -> None:
    """The layout fspec writes: one day's fills in time order, ts_event, the keep columns, <feature>_tokens."""
    day = fills_file(results[("numpy", 0)], "2025-12-15")
    assert list(day.columns) == ["ts_event", *KEEP, *(f"{f}_tokens" for f in FEATURES)]
    assert str(day["ts_event"].dtype) == "datetime64[ns, UTC]"
    assert day["ts_event"].is_monotonic_increasing
    assert (day["ts_event"] >= pd.Timestamp("2025-12-15", tz="UTC")).all()
    other = fills_file(results[("numpy", 0)], "2025-12-14")
    assert len(day) + len(other) == len(results[("numpy", 0)])


def test_the_specs_are_the_agreed_ones() -> None:
    """examples/pretrade_fills/specs: the grid and the features this module computes, one feature each."""
    import yaml

    project = yaml.safe_load((EXAMPLE / "specs" / "project.yaml").read_text(encoding="utf-8"))
    features = yaml.safe_load((EXAMPLE / "specs" / "features.yaml").read_text(encoding="utf-8"))
    assert project["spec_version"] == 1 and features["spec_version"] == 1
    assert project["grids"]["fills"]["keep"] == KEEP
    assert [f["name"] for f in features["features"]] == FEATURES
    assert all(f["grid"] == "fills" and f["description"] for f in features["features"])
    for source in project["sources"].values():
        assert (EXAMPLE / source["path"]).is_file()
    assert Path(EXAMPLE / "data" / "README.md").is_file()


def test_the_data_readme_tells_the_bundled_numbers(bundled: tuple, results: dict) -> None:
    """data/README.md's counts are those of the bundled files."""
    fills, trades = bundled
    text = (EXAMPLE / "data" / "README.md").read_text(encoding="utf-8")
    first = trades.groupby("token_id")["ts"].min()
    members = fills["token_id"].isin(first.index)
    day = fills["ts"].dt.strftime("%Y-%m-%d")
    tape_day = trades["ts"].dt.strftime("%Y-%m-%d")
    nan_rows = trades[trades["price"].isna()]
    near = fills.merge(nan_rows[["token_id", "ts"]].rename(columns={"ts": "nan_ts"}), on="token_id")
    gap = near["ts"] - near["nan_ts"]
    told = {
        "fills": len(fills),
        "market trades": len(trades),
        "fills and": (day == "2025-12-14").sum(),
        "market trades on 2025-12-14": (tape_day == "2025-12-14").sum(),
        "and": (day == "2025-12-15").sum(),
        "on 2025-12-15": (tape_day == "2025-12-15").sum(),
        "market trades sit": len(trades.merge(fills[["token_id", "ts"]].drop_duplicates(), on=["token_id", "ts"])),
        "fills have one": len(fills.merge(trades[["token_id", "ts"]], on=["token_id", "ts"])),
        "fills of member tokens": (fills.loc[members, "ts"] < fills.loc[members, "token_id"].map(first)).sum(),
        "have no market trade": (results[("numpy", 0)]["mt_trades_60s"] == 0).sum(),
        "market trades have a NaN price": len(nan_rows),
        "of them less than a second": near.loc[
            (gap > pd.Timedelta(0)) & (gap < pd.Timedelta("1s")), "nan_ts"
        ].nunique(),
        "share a second": fills.duplicated(["token_id", "ts"]).sum(),
        "fills have **no market trade": (~members).sum(),
    }
    for words, number in told.items():
        pattern = rf"{number:,}[^0-9]{{0,40}}{re.escape(words)}|{re.escape(words)}[^0-9]{{0,3}}{number:,}"
        assert re.search(pattern, text.replace("\n", " ")), f"data/README.md should say {number:,} ... {words}"
