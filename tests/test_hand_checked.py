"""Hand-checked values of the seed's formulas, computed without any fspec code.

1. On the real bundled SPY sample (2013-10-07): realized_vol, bipower_var, vwap and signed_volume of a few
   30s bars, written out step by step with plain pandas from the parquet files, against fspec's output.
2. On a tiny synthetic day with the shipped specs: literal numbers worked out by hand.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, FspecProject, make_project, shipped_specs

SAMPLE = REPO / "data" / "sample" / "spy"
NY = "America/New_York"
TRADING_DAYS = 252
SESSION_SECONDS = 6.5 * 3600  # 09:30 to 16:00
BARS = ["09:30:00", "11:15:00", "12:41:30", "15:59:30"]  # the open; bars with trades at the mid; the last bar


@pytest.fixture(scope="module")
def hand() -> pd.DataFrame:
    """Per trade of the regular session: its 30s bar, log return, prevailing mid and Lee-Ready sign."""
    trades = pd.read_parquet(SAMPLE / "20131007_trades.parquet")
    # The project's row filter: suspicious == 0 and price > 0 and size > 0.
    trades = trades[(trades["suspicious"] == 0) & (trades["price"] > 0) & (trades["size"] > 0)]
    # The regular session, 09:30 <= time < 16:00 New York time (the file is already in New York time).
    day = pd.Timestamp("2013-10-07 00:00", tz=NY)
    session_open = day + pd.Timedelta(hours=9, minutes=30)
    session_close = day + pd.Timedelta(hours=16)
    trades = trades[(trades["time"] >= session_open) & (trades["time"] < session_close)].reset_index(drop=True)
    # Each trade's bar is the 30s bar [t, t + 30s) it falls in.
    trades["bar"] = trades["time"].dt.floor("30s")
    # Tick log return r_i = ln p_i - ln p_(i-1); the session's first trade has none (no overnight return).
    trades["r"] = np.log(trades["price"]).diff()
    # The quote bars are stamped at their start and are 1s wide, so a quote is known 1s after its stamp.
    quotes = pd.read_parquet(SAMPLE / "20131007_quotes_1s.parquet")
    quotes["known"] = quotes["time"] + pd.Timedelta(seconds=1)
    # The prevailing quote of a trade: the last one known at or before the trade time.
    trades = pd.merge_asof(
        trades,
        quotes[["known", "bid_close", "ask_close"]],
        left_on="time",
        right_on="known",
        direction="backward",
    )
    trades["mid"] = (trades["bid_close"] + trades["ask_close"]) / 2
    # Tick rule: the sign of the last non-zero price change of the session so far, 0 before the first one.
    tick_sign = []
    last_sign, last_price = 0.0, None
    for price in trades["price"]:
        if last_price is not None and price != last_price:
            last_sign = 1.0 if price > last_price else -1.0
        last_price = price
        tick_sign.append(last_sign)
    trades["tick_sign"] = tick_sign
    # Lee-Ready: above the mid is a buy, below a sell, at the mid the tick rule decides.
    trades["sign"] = np.where(
        trades["price"] > trades["mid"], 1.0, np.where(trades["price"] < trades["mid"], -1.0, trades["tick_sign"])
    )
    return trades


def _bar(hand: pd.DataFrame, clock: str) -> pd.DataFrame:
    return hand[hand["bar"] == pd.Timestamp(f"2013-10-07 {clock}", tz=NY)]


def _fspec_row(sample_project: FspecProject, clock: str) -> pd.Series:
    out = sample_project.output("2013-10-07", 30)
    when = pd.Timestamp(f"2013-10-07 {clock}", tz=NY).tz_convert("UTC")
    return out.loc[out["ts_event"] == when].iloc[0]


@pytest.mark.parametrize("clock", BARS)
def test_realized_vol_by_hand(sample_project, hand, clock):
    bar = _bar(hand, clock)
    # Every return inside the bar, squared and summed (the first trade of the session contributes none).
    rv = (bar["r"].dropna() ** 2).sum()
    # Annualized: bars per year = 252 sessions * 23400 s / 30 s.
    periods_per_year = TRADING_DAYS * SESSION_SECONDS / 30
    expected = math.sqrt(rv * periods_per_year)
    got = _fspec_row(sample_project, clock)["realized_vol_30s_spy"]
    assert got == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("clock", BARS)
def test_bipower_var_by_hand(sample_project, hand, clock):
    bar = _bar(hand, clock)
    returns = bar["r"].dropna().abs().to_numpy()
    # Products of consecutive absolute returns inside the bar: |r_2||r_1| + |r_3||r_2| + ...
    products = returns[1:] * returns[:-1]
    expected = math.pi / 2 * products.sum() * TRADING_DAYS * SESSION_SECONDS / 30
    got = _fspec_row(sample_project, clock)["bipower_var_30s_spy"]
    assert got == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("clock", BARS)
def test_vwap_by_hand(sample_project, hand, clock):
    bar = _bar(hand, clock)
    expected = (bar["price"] * bar["size"]).sum() / bar["size"].sum()
    got = _fspec_row(sample_project, clock)["vwap_30s_spy"]
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("clock", BARS)
def test_signed_volume_by_hand(sample_project, hand, clock):
    bar = _bar(hand, clock)
    assert (bar["price"] == bar["mid"]).any(), "the bar should have trades at the mid (tick rule fallback)"
    expected = (bar["size"] * bar["sign"]).sum()
    got = _fspec_row(sample_project, clock)["signed_volume_30s_spy"]
    assert got == pytest.approx(expected, rel=1e-12)


# ---- literal values on a tiny synthetic day ------------------------------------------------------------


def _ny(clock: str) -> pd.Timestamp:
    return pd.Timestamp(f"2013-10-07 {clock}", tz=NY)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The shipped specs on hand-made data: 4 trades in the 09:30:00 bar and 1 in the 09:30:30 bar."""
    trades = pd.DataFrame(
        {
            "time": [
                _ny("09:29:59"),  # before the open: not in the session, and no return from it
                _ny("09:30:01"),
                _ny("09:30:05"),
                _ny("09:30:10"),
                _ny("09:30:15"),  # flagged suspicious: filtered out
                _ny("09:30:20"),
                _ny("09:30:40"),
            ],
            "price": [90.0, 100.0, 101.0, 100.0, 500.0, 102.0, 102.0],
            "size": [1000.0, 100.0, 200.0, 300.0, 999.0, 400.0, 500.0],
            "suspicious": np.array([0, 0, 0, 0, 1, 0, 0], dtype=np.int8),
        }
    )
    quotes = pd.DataFrame(  # 1s quote bars stamped at their start: known one second later
        {
            "time": [_ny("09:29:58"), _ny("09:30:08"), _ny("09:30:34")],
            "bid_close": [100.0, 99.0, 101.5],
            "ask_close": [101.0, 101.0, 102.5],
            "last_bid_size": [100.0, 100.0, 100.0],
            "last_ask_size": [100.0, 100.0, 100.0],
        }
    )
    bars = pd.DataFrame(
        {"time": [_ny("09:29:00")], "open": [100.0], "high": [100.0], "low": [100.0], "close": [100.0], "volume": [1.0]}
    )
    project = make_project(
        tmp_path_factory.mktemp("tiny"),
        shipped_specs(),
        {
            "data/sample/spy/20131007_trades.parquet": trades,
            "data/sample/spy/20131007_quotes_1s.parquet": quotes,
            "data/sample/spy/20131007_bars_1m.parquet": bars,
        },
    )
    project.compile()
    project.run(intervals=[30])
    return project.output("2013-10-07", 30)


# Session trades: 100 @ 09:30:01, 101 @ :05, 100 @ :10, 102 @ :20 (bar 0) and 102 @ :40 (bar 1).
LN_101_100 = 0.009950330853168092  # ln(101/100); ln(100/101) is its negative
LN_102_100 = 0.01980262729617973  # ln(102/100)
PERIODS_PER_YEAR = 196560.0  # 252 * 23400 / 30


def test_tiny_realized_vol(tiny):
    # Returns in bar 0: ln(101/100), ln(100/101), ln(102/100); 100 @ :01 opens the session, so no return.
    # RV = 2 * 0.0099503308531681^2 + 0.0198026272961797^2 = 1.980181e-4 + 3.921440e-4 = 5.901622e-4
    rv = 2 * LN_101_100**2 + LN_102_100**2
    assert rv == pytest.approx(5.901622e-4, rel=1e-6)
    # realized_vol = sqrt(RV * 196560) = sqrt(116.00229) = 10.770436
    assert tiny["realized_vol_30s_spy"].iloc[0] == pytest.approx(10.770436, rel=1e-6)
    assert tiny["realized_vol_30s_spy"].iloc[0] == pytest.approx(math.sqrt(rv * PERIODS_PER_YEAR), rel=1e-12)
    # bar 1: one trade, unchanged price: return 0
    assert tiny["realized_vol_30s_spy"].iloc[1] == 0.0
    # an empty bar: no returns, RV 0
    assert tiny["realized_vol_30s_spy"].iloc[2] == 0.0


def test_tiny_bipower_and_returns(tiny):
    # |r2||r1| + |r3||r2| = 0.00995033^2 + 0.00995033 * 0.01980263 = 9.900908e-5 + 1.970427e-4 = 2.960518e-4
    products = LN_101_100 * LN_101_100 + LN_101_100 * LN_102_100
    assert products == pytest.approx(2.960518e-4, rel=1e-6)
    # BV = pi / 2 * 2.960518e-4 * 196560 = 91.40768
    assert tiny["bipower_var_30s_spy"].iloc[0] == pytest.approx(91.40768, rel=1e-6)
    # interval_log_return: the returns sum to ln(102/100); bar_return: ln(last / first) = ln(102/100)
    assert tiny["interval_log_return_30s_spy"].iloc[0] == pytest.approx(LN_102_100, rel=1e-12)
    assert tiny["bar_return_30s_spy"].iloc[0] == pytest.approx(LN_102_100, rel=1e-12)
    assert tiny["interval_log_return_30s_spy"].iloc[1] == 0.0
    assert np.isnan(tiny["bar_return_30s_spy"].iloc[2])  # empty bar
    # the target is the next bar's return less 1 bp
    assert tiny["target_next_window_return_30s_spy"].iloc[0] == pytest.approx(0.0 - 0.0001, abs=1e-15)


def test_tiny_volume_vwap(tiny):
    # volume 100 + 200 + 300 + 400 = 1000 (the 999 suspicious and the pre-open 1000 are out)
    assert tiny["volume_30s_spy"].iloc[0] == 1000.0
    assert tiny["trade_count_30s_spy"].iloc[0] == 4.0
    # VWAP (100*100 + 101*200 + 100*300 + 102*400) / 1000 = 101000 / 1000 = 101
    assert tiny["vwap_30s_spy"].iloc[0] == pytest.approx(101.0, rel=1e-15)
    assert tiny["volume_30s_spy"].iloc[2] == 0.0 and np.isnan(tiny["vwap_30s_spy"].iloc[2])


def test_tiny_signed_volume(tiny):
    # Quotes known at 09:29:59 (mid 100.5), 09:30:09 (mid 100.0) and 09:30:35 (mid 102.0).
    # 100 @ :01 vs 100.5 -> sell  -100
    # 101 @ :05 vs 100.5 -> buy   +200
    # 100 @ :10 vs 100.0 -> at the mid: tick rule, 101 -> 100 is down -> -300
    # 102 @ :20 vs 100.0 -> buy   +400
    assert tiny["signed_volume_30s_spy"].iloc[0] == -100 + 200 - 300 + 400
    # 102 @ :40 vs 102.0 -> at the mid, no change since 102 @ :20: the last non-zero change (100 -> 102) is up
    assert tiny["signed_volume_30s_spy"].iloc[1] == 500.0


def test_tiny_quote_features(tiny):
    # bar 0 sees the quotes known at 09:30:09 (09:29:59 is before the open); the mid 100.0 carries forward
    mid = pd.Series([100.0, 102.0, 102.0])
    assert tiny["log_mid_price_30s_spy"].iloc[:3].tolist() == pytest.approx(np.log(mid).tolist(), rel=1e-15)
    # (vwap - mid) / mid = (101 - 100) / 100
    assert tiny["vwap_deviation_30s_spy"].iloc[0] == pytest.approx(0.01, rel=1e-12)
    # spread / mid = 2 / 100 in bar 0, 1 / 102 after
    assert tiny["spread_pct_30s_spy"].iloc[0] == pytest.approx(0.02, rel=1e-12)
    assert tiny["spread_pct_30s_spy"].iloc[5] == pytest.approx(1 / 102, rel=1e-12)


def test_sample_is_the_documented_file():
    """The hand checks read the bundled files directly; make sure they are the documented ones."""
    assert len(pd.read_parquet(SAMPLE / "20131007_trades.parquet", columns=["price"])) == 250_601
    assert Path(SAMPLE / "20131007_quotes_1s.parquet").exists()
