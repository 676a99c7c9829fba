"""Generated kernels (and the runtime around them) against the plain pandas reference in reference.py.

(a) Every shipped feature on the bundled SPY sample, at every interval.
(b) Every operator of the registry, in one small synthetic project: two instruments, three session days
    across a DST change (Fri 2013-11-01 EDT, Mon 2013-11-04 EST, Tue 2013-11-05), a 5-minute session so
    that windows reach back over one or two earlier sessions, and data with empty bars (also the first
    bars of a session), NaN prices / sizes / quotes, zero sizes, same-timestamp ticks, ticks exactly at
    the open / bar edges / close, rows outside the session, filtered rows, rows out of time order, and
    bar sources that are known only at their end (stamped at the start or at the end); times given tz-aware,
    as naive local wall-clock times, and as integer epoch milliseconds.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import FspecProject, make_project
from reference import SUPPORTED, Reference, Result, column_name, mismatches

from fspec.compiler import ir
from fspec.operators import CHAIN, CROSS, EVENT, REGISTRY
from fspec.runtime.manifest import load_manifest
from fspec.runtime.run import RunOptions, run

# ---- (a) shipped features on the bundled sample -------------------------------------------------------


@pytest.fixture(scope="session")
def sample_reference(sample_project: FspecProject) -> Reference:
    return Reference(sample_project.root)


def _compare(project: FspecProject, ref: Reference, results: dict[int, Result], keys: list, days: list[str]):
    """Every (column, day) where fspec's file differs from the reference, with the first bad rows."""
    problems = []
    for interval, result in results.items():
        for day in days:
            got = project.output(day, interval)
            exp = result.frame(day)
            assert (got["ts_event"].to_numpy() == exp["ts_event"].to_numpy()).all(), (day, interval)
            for key in keys:
                name = column_name(key[0], interval, key[1])
                bad = mismatches(got[name].to_numpy(), exp[name].to_numpy())
                if bad:
                    rows = ", ".join(
                        f"row {i}: got {got[name].iloc[i]!r}, expected {exp[name].iloc[i]!r}" for i in bad[:3]
                    )
                    problems.append(f"{name} on {day}: {len(bad)} rows differ ({rows})")
    return problems


@pytest.mark.parametrize("interval", [1, 30, 60])
def test_shipped_features_match_reference(sample_project, sample_reference, interval):
    ref = sample_reference
    published = ref.published(interval)
    assert published, "no shipped features"
    got = sample_project.output("2013-10-07", interval)
    # the file holds ts_event and exactly the published columns, targets last
    expected_cols = [column_name(f, interval, i) for f, i in published]
    assert got.columns[0] == "ts_event"
    assert sorted(got.columns[1:]) == sorted(expected_cols)
    targets = [column_name(f, interval, i) for f, i in published if ref.instance((f, i)).spec.is_target]
    assert set(got.columns[len(got.columns) - len(targets) :]) == set(targets)
    assert len(got) == 23400 // interval
    # the option chain's columns (and those built on them) are checked against pandas and the lets-be-rational
    # package in test_chain.py and test_option_flows.py
    chained = ref.chained()
    compared = [k for k in published if k not in chained]
    assert len(compared) < len(published) or interval == 1
    problems = _compare(sample_project, ref, {interval: ref.evaluate(interval)}, compared, ["2013-10-07"])
    assert not problems, "\n".join(problems)


# ---- (b) every operator on synthetic data -------------------------------------------------------------

DAYS = ["2013-11-01", "2013-11-04", "2013-11-05"]
SYMBOLS = {"aaa": "AAA", "bbb": "BBB"}
SESSION_SECONDS = 300  # 09:30 to 09:35: 10 bars of 30s, 5 of 60s


def _stamps(day: str, seconds: np.ndarray) -> pd.Series:
    """New York wall-clock times, seconds after 09:30 (tz-aware, like the bundled sample)."""
    base = pd.Timestamp(f"{day} 09:30:00").tz_localize("America/New_York")
    return pd.Series(base + pd.to_timedelta(np.round(seconds * 1000).astype(np.int64), unit="ms"))


def _quotes(rng: np.random.Generator, day: str) -> pd.DataFrame:
    # 1-second quote bars stamped at their start, from 09:29:55 to 09:35:02, with gaps
    secs = np.sort(rng.choice(np.arange(-5, 303), size=150, replace=False)).astype(float)
    mid = 100 + np.cumsum(rng.choice([-0.01, 0.0, 0.0, 0.01], size=secs.size))
    half = rng.choice([0.005, 0.01, 0.01, 0.02], size=secs.size)
    bid, ask = mid - half, mid + half
    bid_size = rng.choice([0.0, 100.0, 200.0, 300.0, 500.0], size=secs.size)
    ask_size = rng.choice([0.0, 100.0, 200.0, 400.0], size=secs.size)
    bid_size[(bid_size == 0) & (rng.random(secs.size) < 0.5)] = 100.0  # some rows with no depth at all remain
    bid[[7, 40, 41, 90]] = np.nan
    ask[[41, 120]] = np.nan
    bid_size[[15, 60]] = np.nan
    return pd.DataFrame(
        {
            "time": _stamps(day, secs).dt.tz_localize(None),  # naive New York wall-clock times
            "bid_close": bid,
            "ask_close": ask,
            "last_bid_size": bid_size,
            "last_ask_size": ask_size,
        }
    )


def _trades(rng: np.random.Generator, day_index: int, inst: str, quotes: pd.DataFrame) -> pd.DataFrame:
    day = DAYS[day_index]
    secs = np.round(rng.uniform(0, SESSION_SECONDS, size=70), 3)
    if inst == "aaa" and day_index == 0:
        secs = secs[(secs < 90) | (secs >= 120)]  # an empty 30s bar (09:31:30)
        secs = secs[(secs < 180) | (secs >= 240)]  # an empty 60s bar (09:33)
    if inst == "aaa" and day_index == 1:
        secs = secs[secs >= 60]  # the session starts with empty bars
    # outside the session (before the open, at and after the close) and exactly on bar edges
    edges = [-30.0, -0.001, 60.0, 60.0, 120.0, 299.999, 300.0, 310.0]
    if not (inst == "aaa" and day_index == 1):
        edges += [0.0, 0.0, 30.0, 45.25, 45.25, 45.25]  # two ticks exactly at the open; ties
    if not (inst == "aaa" and day_index == 0):
        edges += [200.5, 200.5]
    secs = np.sort(np.concatenate([secs, edges]))
    n = secs.size
    # price near the prevailing quote mid (at the mid often, so the tick rule decides), on a cent grid
    base = pd.Timestamp(f"{day} 09:30:00").tz_localize("America/New_York")
    known = (quotes["time"].dt.tz_localize("America/New_York") - base).dt.total_seconds().to_numpy() + 1.0
    idx = np.clip(np.searchsorted(known, secs, side="right") - 1, 0, len(known) - 1)
    mid = pd.Series(((quotes["bid_close"] + quotes["ask_close"]) / 2).to_numpy()[idx]).ffill().bfill()
    mid = np.round(mid.to_numpy(), 2)
    price = np.round(mid + rng.choice([-0.02, -0.01, 0.0, 0.0, 0.0, 0.01], size=n), 2)
    size = rng.choice([0.0, 50.0, 100.0, 100.0, 200.0, 300.0], size=n)
    flag = np.zeros(n, dtype=np.int8)
    price[[5, 17, n - 12]] = np.nan
    size[[9, 23]] = np.nan
    size[11] = 5000.0  # filtered out (size > 1000)
    flag[[3, 30]] = 1
    price[[3, 30]] = 999.0  # filtered out: would show everywhere if it leaked
    frame = pd.DataFrame({"time": _stamps(day, secs), "price": price, "size": size, "flag": flag})
    if inst == "bbb" and day_index == 1:
        order = np.arange(n)
        order[[20, 21]] = order[[21, 20]]  # two rows out of time order: sorted (stable) on load
        order[[40, 44]] = order[[44, 40]]
        frame = frame.iloc[order].reset_index(drop=True)
    return frame


def _minute_bars(rng: np.random.Generator, day: str, in_session: bool) -> pd.DataFrame:
    # 1-minute bars stamped at their END, as integer epoch milliseconds (UTC)
    starts = np.array([-2, -1, 0, 1, 3, 4, 5], dtype=float)  # 09:32 missing; 09:34 is known only at 09:35
    if not in_session:
        starts = np.array([-3, -2], dtype=float)  # no bar inside the session at all
    close = 100 + np.cumsum(rng.choice([-0.05, -0.01, 0.0, 0.02], size=starts.size))
    close[min(4, starts.size - 1)] = np.nan
    volume = rng.choice([0.0, 1000.0, 2500.0, 4000.0], size=starts.size)
    ends = _stamps(day, (starts + 1) * 60).dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]")
    epoch_ms = ends.astype("int64") // 1_000_000
    return pd.DataFrame({"time": epoch_ms, "close": close, "volume": volume})


def synthetic_data() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(20131101)
    data = {}
    for i, day in enumerate(DAYS):
        ymd = day.replace("-", "")
        for inst, symbol in SYMBOLS.items():
            quotes = _quotes(rng, day)
            data[f"data/{symbol}/{ymd}_quotes.parquet"] = quotes
            data[f"data/{symbol}/{ymd}_trades.parquet"] = _trades(rng, i, inst, quotes)
            data[f"data/{symbol}/{ymd}_mbars.parquet"] = _minute_bars(rng, day, not (inst == "bbb" and i == 2))
    return data


PROJECT = {
    "spec_version": 1,
    "sources": {
        "trades": {
            "path": "data/{symbol}/{date}_trades.parquet",
            "time": "time",
            "columns": {"price": "float64", "size": "float64"},
            "filter": "flag == 0 and not (size > 1000)",  # a NaN size is kept
            "asof": {"source": "quotes", "columns": ["bid", "ask"]},
        },
        "quotes": {
            "path": "data/{symbol}/{date}_quotes.parquet",
            "time": {"column": "time", "timezone": "America/New_York"},
            "bars": {"width": "1s", "stamp": "start"},
            "columns": {
                "bid": {"from": "bid_close"},
                "ask": {"from": "ask_close"},
                "bid_size": {"from": "last_bid_size"},
                "ask_size": {"from": "last_ask_size", "scale": 0.01},
            },
        },
        "mbars": {
            "path": "data/{symbol}/{date}_mbars.parquet",
            "time": {"column": "time", "unit": "ms"},
            "bars": {"width": "1m", "stamp": "end"},
            "columns": {"close": "float64", "volume": "float64"},
        },
    },
    "instruments": {
        "aaa": {"symbol": "AAA", "params": {"scale": 2.0}},
        "bbb": {"symbol": "BBB", "params": {"scale": 0.5}},
    },
    "intervals": ["30s", "60s"],
    "session": {"timezone": "America/New_York", "open": "09:30", "close": "09:35", "trading_days_per_year": 252},
}

# Tick expressions per elementwise operator: inputs with NaN (price, size, asof bid/ask), zeros (price - 100,
# size - 100, sizes of 0) and values that hit each edge case (x/0, 0/0, log(0), log(<0), sqrt(<0), ...).
TICK_ELEMENTWISE = {
    "add": ["trades.price + trades.size"],
    "sub": ["trades.price - trades.bid"],
    "mul": ["(trades.price - 100) * trades.size"],
    "div": ["(trades.price - 100) / (trades.size - 100)"],
    "pow": ["(trades.price - 100) ** 1.5", "2 ** (trades.price - 100)"],
    "lt": ["trades.price < trades.ask"],
    "le": ["trades.price <= (trades.bid + trades.ask) / 2"],
    "gt": ["trades.price > trades.bid"],
    "ge": ["trades.price >= 100"],
    "eq": ["trades.price == (trades.bid + trades.ask) / 2"],
    "ne": ["trades.price != trades.bid"],
    "and_": ["(trades.price - 100) and (trades.size - 100)"],
    "or_": ["(trades.price - 100) or (trades.size - 100)"],
    "not_": ["not (trades.price - 100)"],
    "neg": ["-trades.price"],
    "log": ["log(trades.price - 100)"],
    "exp": ["exp(trades.price - 100)"],
    "sqrt": ["sqrt(trades.price - 100)"],
    "abs": ["abs(trades.price - 100)"],
    "sign": ["sign(trades.price - 100)"],
    "where": ["where(trades.price - 100, trades.size, -trades.size)"],
    "clip": ["clip(trades.price - 100, -0.01, 0.02)", "clip(trades.price, trades.bid, trades.ask)"],
    "min2": ["min2(trades.price, trades.bid)"],
    "max2": ["max2(trades.price, trades.ask)"],
}

# Bar expressions per elementwise operator over helper features with NaN (px, bx: empty bars), zeros
# (bx, by, vol) and negatives (by).
BAR_ELEMENTWISE = {
    "add": ["bx + by"],
    "sub": ["px - mid"],
    "mul": ["bx * by"],
    "div": ["bx / by", "by / vol"],
    "pow": ["by ** 0.5", "bx ** 2"],
    "lt": ["bx < by"],
    "le": ["bx <= 0"],
    "gt": ["px > mid"],
    "ge": ["by >= 0"],
    "eq": ["bx == 0"],
    "ne": ["px != mid"],
    "and_": ["bx and by"],
    "or_": ["bx or by"],
    "not_": ["not bx"],
    "neg": ["-bx"],
    "log": ["log(by)"],
    "exp": ["exp(bx)"],
    "sqrt": ["sqrt(by)"],
    "abs": ["abs(bx)"],
    "sign": ["sign(by)", "sign(bx)"],
    "where": ["where(bx, px, mid)"],
    "clip": ["clip(by, -1, 1)", "clip(by, bx, 10)"],
    "min2": ["min2(bx, by)"],
    "max2": ["max2(px, mid)"],
}

HELPERS = {
    "px": "last(trades.price)",
    "vol": "sum(trades.size)",
    "cnt": "count(trades.price)",
    "bx": "last(trades.price) - first(trades.price)",
    "by": "count(trades.price) - 3",
    "mid": "ffill(last((quotes.bid + quotes.ask) / 2))",
    "flat": "ffill(last(trades.price * 0 + 100.1))",
    "vwap": "wmean(trades.price, trades.size)",
}

# name -> (the operator the feature is there to test, formula); the other operators in it are carriers
OTHER_FEATURES = {
    # tick shifts (k = 1 is a register, k > 1 a ring buffer) and the tick rule
    "tk_lag_a": ("lag", "sum(lag(trades.price))"),
    "tk_lag_b": ("lag", "count(lag(trades.price, 3))"),
    "tk_lag_c": ("lag", "first(lag(trades.price, 3))"),
    "tk_diff_a": ("diff", "sum(diff(trades.price))"),
    "tk_diff_b": ("diff", "count(diff(log(trades.price), 2))"),
    "tk_diff_c": ("diff", "first(diff(trades.size))"),
    "tk_vpin_a": ("vpin", "last(vpin(trades.price, trades.size, 300, 3))"),
    "tk_vpin_b": ("vpin", "mean(vpin(trades.price, trades.size, 77.5, n=2))"),
    "tk_vpin_c": ("vpin", "ffill(last(vpin((quotes.bid + quotes.ask) / 2, quotes.bid_size, 1000, 4)))"),
    # a bucket far below the trade sizes: each trade fills ~1e8 buckets of its own, counted without a loop
    "tk_vpin_d": ("vpin", "last(vpin(trades.price, trades.size, 0.000001, 3))"),
    "tk_vpin_e": ("vpin", "mean(vpin(trades.price, trades.size, 45, 4))"),
    "tk_rule_a": ("tick_rule", "sum(trades.size * tick_rule(trades.price))"),
    "tk_rule_b": ("tick_rule", "last(tick_rule(trades.price))"),
    "tk_rule_c": ("tick_rule", "sum(tick_rule((quotes.bid + quotes.ask) / 2))"),
    "lee_ready": (
        "tick_rule",
        "sum(trades.size * where(trades.price > (trades.bid + trades.ask) / 2, 1, "
        "where(trades.price < (trades.bid + trades.ask) / 2, -1, tick_rule(trades.price))))",
    ),
    # reducers on trades (NaN prices and sizes, zero sizes), quotes (NaN bids, sizes) and minute bars
    "rd_sum": ("sum", "sum(trades.size)"),
    "rd_count": ("count", "count(trades.size)"),
    "rd_mean": ("mean", "mean(trades.price)"),
    "rd_first": ("first", "first(trades.price)"),
    "rd_last": ("last", "last(trades.size)"),
    "rd_min": ("min", "min(trades.price)"),
    "rd_max": ("max", "max(trades.size)"),
    "rd_std": ("std", "std(trades.price)"),
    "rd_bipower": ("bipower", "bipower(diff(log(trades.price)))"),
    "rd_wmean": ("wmean", "wmean(trades.price, trades.size)"),
    "rd_q_mean": ("mean", "mean(quotes.bid)"),
    "rd_q_std": ("std", "std(quotes.bid_size)"),
    "rd_q_bipower": ("bipower", "bipower(quotes.bid - 100)"),
    "rd_q_wmean": ("wmean", "wmean(quotes.bid, quotes.bid_size)"),
    "rd_q_min": ("min", "min(quotes.ask_size)"),
    "rd_q_count": ("count", "count(quotes.bid)"),
    "rd_m_first": ("first", "first(mbars.close)"),
    "rd_m_last": ("last", "last(mbars.close)"),
    "rd_m_max": ("max", "max(mbars.volume)"),
    "rd_m_sum": ("sum", "sum(mbars.volume)"),
    # bar shifts: k beyond one session (10 bars at 30s, 5 at 60s) needs earlier sessions
    "br_lag_a": ("lag", "lag(px)"),
    "br_lag_b": ("lag", "lag(vol, 12)"),
    "br_lag_c": ("lag", "lag(bx, 3)"),
    "br_diff_a": ("diff", "diff(px)"),
    "br_diff_b": ("diff", "diff(vol, 11)"),
    # windows over bars
    "rl_sum_a": ("rolling_sum", "rolling_sum(vol, 3)"),
    "rl_sum_b": ("rolling_sum", "rolling_sum(bx, 4)"),
    "rl_sum_c": ("rolling_sum", "rolling_sum(by, 12)"),
    "rl_mean_a": ("rolling_mean", "rolling_mean(px, 3)"),
    "rl_mean_b": ("rolling_mean", "rolling_mean(by, 7)"),
    "rl_std_a": ("rolling_std", "rolling_std(by, 4)"),
    "rl_std_b": ("rolling_std", "rolling_std(px, 2)"),
    "rl_min_a": ("rolling_min", "rolling_min(bx, 3)"),
    "rl_min_b": ("rolling_min", "rolling_min(by, 11)"),
    "rl_max_a": ("rolling_max", "rolling_max(px, 2)"),
    "rl_max_b": ("rolling_max", "rolling_max(by, 12)"),
    "rl_corr_a": ("rolling_corr", "rolling_corr(vol, by, 5)"),
    "rl_corr_b": ("rolling_corr", "rolling_corr(px, cnt, 3)"),
    "rl_corr_c": ("rolling_corr", "rolling_corr(vol, flat, 3)"),  # flat: a constant 100.1 -> NaN
    "ewm_a": ("ewm_mean", "ewm_mean(bx, 3)"),
    "ewm_b": ("ewm_mean", "ewm_mean(px, 1)"),
    "ewm_c": ("ewm_mean", "ewm_mean(vol, 2.5)"),
    "ff_a": ("ffill", "ffill(bx)"),
    "ff_b": ("ffill", "ffill(px)"),
    "cs_a": ("session_cumsum", "session_cumsum(vol)"),
    "cs_b": ("session_cumsum", "session_cumsum(bx)"),
}

# Parameters, constants, feature chains, per-instrument lists, cross-asset features, targets: checked by
# the all-columns test.
MORE_FEATURES = {
    "restart_roll": "rolling_sum(vol, 3, session=true) + lag(px, 2, session=true)",
    "restart_tick": "sum(diff(trades.price, session=true)) + diff(px, session=true)",
    "time_window": "rolling_sum(vol, 2m)",  # 4 bars at 30s, 2 at 60s
    "time_lag": "lag(px, 1m) + rolling_mean(cnt, 60s)",
    "per_bar_consts": "bar_index + time_of_day / 1000",
    "per_bar_window": "rolling_sum(bar_index * vol, 3) + lag(time_of_day, 2)",
    "prm_tick": "sum(trades.size * scale)",
    "prm_bar": "px * scale + interval_seconds",
    "ann_rv": "sqrt(sum(diff(log(trades.price)) ** 2) * periods_per_year)",
    "ann_bv": "pi / 2 * bipower(diff(log(trades.price))) * periods_per_year / bars_per_session",
    "chain_a": "lag(rolling_sum(vol, 4), 2)",
    "chain_b": "abs(diff(rolling_std(by, 4))) / lag(rolling_std(by, 4), 1)",
    "chain_c": "rolling_mean(lag(ff_b, 1), 6) - ewm_mean(ff_b, 4)",
    "mret": "sum(diff(log(mbars.close)))",
    "mrv": "sqrt(rolling_sum(mret ** 2, 4))",
    "vwap_dev": "(vwap - mid) / mid",
    # kernel code paths: first/last of a stateless expression are read at the complete bar's ends (past NaN
    # ticks), of a stateful one per tick; log/exp of column arithmetic are vectorised before the loop
    "lazy_last_expr": "last(trades.price * trades.size)",
    "lazy_first_expr": "first(where(trades.size > 1, trades.price, trades.size / 0))",
    "tick_last_state": "last(tick_rule(trades.price))",
    "tick_first_state": "first(diff(trades.price))",
    "tick_max_state": "max(diff(trades.price, 2))",
    "hoist_param": "sum(diff(log(trades.price / scale)))",
    "hoist_exp": "max(exp(trades.price / 100 - 1))",
    "hoist_nested": "std(log(sqrt(abs(trades.price - 100)) + 1))",
    "hoist_zero_neg": "sum(log(trades.size)) + count(log(trades.size - 1))",
    "hoist_stateful": "sum(log(tick_rule(trades.price) + 2))",
}

CROSS_ASSET = {
    "spread_aaa_bbb": "aaa.px - bbb.px",
    "ratio_aaa_bbb": "last(aaa.trades.price) / bbb.vwap",
    "scaled_aaa_bbb": "sum(aaa.trades.size * bbb.scale)",  # another instrument's parameter in a tick expression
    "lagged_aaa_bbb": "lag(aaa.vol, 2) - rolling_mean(bbb.vol, 3)",
}

TARGETS = {  # lead is target-only
    "target_lead_a": "lead(px)",
    "target_lead_b": "lead(vol, 3) - vol",
    "target_lead_c": "lead(rolling_sum(vol, 3), 2)",
}


def features_under_test() -> dict[str, list[str]]:
    """operator -> the features that are there to test it."""
    tested: dict[str, list[str]] = {}
    for op, exprs in TICK_ELEMENTWISE.items():
        for j in range(len(exprs)):
            stem = f"tk_{op.rstrip('_')}_{'ab'[j]}"
            tested.setdefault(op, []).extend([f"{stem}_sum", f"{stem}_count"])
    for op, exprs in BAR_ELEMENTWISE.items():
        tested.setdefault(op, []).extend(f"br_{op.rstrip('_')}_{'ab'[j]}" for j in range(len(exprs)))
    for name, (op, _) in OTHER_FEATURES.items():
        tested.setdefault(op, []).append(name)
    tested["lead"] = list(TARGETS)
    for name, (op, _) in registry_examples().items():
        tested.setdefault(op, []).append(name)
    return tested


def registry_examples() -> dict[str, tuple[str, str]]:
    """Features from the operators' own ``examples`` (formulas over trades.price and trades.size)."""
    return {
        f"ex_{name}_{j}": (name, formula)
        for name, op in REGISTRY.items()
        if op.kind != EVENT  # event grids' operators: tests/test_event_grids.py
        for j, formula in enumerate(op.examples)
    }


def feature_specs() -> dict[str, object]:
    features = [{"name": name, "formula": f} for name, f in HELPERS.items()]
    for op, exprs in TICK_ELEMENTWISE.items():
        for j, e in enumerate(exprs):
            stem = f"tk_{op.rstrip('_')}_{'ab'[j]}"
            features.append({"name": f"{stem}_sum", "formula": f"sum({e})"})
            features.append({"name": f"{stem}_count", "formula": f"count({e})"})
    for op, exprs in BAR_ELEMENTWISE.items():
        for j, e in enumerate(exprs):
            features.append({"name": f"br_{op.rstrip('_')}_{'ab'[j]}", "formula": e})
    features += [{"name": name, "formula": f} for name, (_, f) in OTHER_FEATURES.items()]
    features += [{"name": name, "formula": f} for name, (_, f) in registry_examples().items()]
    features += [{"name": name, "formula": f} for name, f in MORE_FEATURES.items()]
    features.append({"name": "only_aaa", "formula": "rolling_sum(cnt, 2)", "instruments": ["aaa"]})
    features += [{"name": name, "formula": f} for name, f in CROSS_ASSET.items()]
    targets = [{"name": name, "formula": f} for name, f in TARGETS.items()]
    return {"spec_version": 1, "features": features, "targets": targets}


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[FspecProject, Reference, dict[int, Result]]:
    project = make_project(
        tmp_path_factory.mktemp("synthetic"),
        {"project.yaml": PROJECT, "features.yaml": feature_specs()},
        synthetic_data(),
    )
    project.compile()
    project.run()
    ref = Reference(project.root)
    assert ref.dates() == DAYS
    return project, ref, {interval: ref.evaluate(interval) for interval in (30, 60)}


def _uses(tree: ir.Node, op: str) -> list[ir.Apply]:
    return [n for n in tree.walk() if isinstance(n, ir.Apply) and n.op == op]


# Cross-sectional operators need a universe's members at each bar, which this project of instruments listed by
# hand has not: tests/test_operators_cross.py checks each against pandas, on its own and in a universe's run.
# Event operators (asof, age) exist on event grids only: tests/test_event_grids.py checks each against its reference.
# The option chain operators need a chain: tests/test_chain.py checks each against pandas and lets-be-rational.
@pytest.mark.parametrize("op", sorted(n for n, o in REGISTRY.items() if o.kind not in (CROSS, EVENT, CHAIN)))
def test_operator_matches_reference(synthetic, op):
    """Iterates the registry: a new operator fails here until the reference and a test feature cover it."""
    project, ref, results = synthetic
    assert op in SUPPORTED, f"reference.py has no implementation of operator '{op}': add it (and its edge cases)"
    names = features_under_test().get(op, [])
    users = [i for i in ref.instances if i.spec.name in names]
    assert users, f"operator '{op}' has no test feature in the synthetic project: add one to features_under_test()"
    assert all(_uses(i.tree, op) for i in users), f"a test feature of '{op}' does not use it"
    if REGISTRY[op].kind in ("elementwise", "shift"):
        grains = {n.grain.time.value for i in users for n in _uses(i.tree, op)}
        assert {"tick", "bar"} <= grains, f"'{op}' must be exercised on ticks and on bars, got {grains}"
    problems = _compare(project, ref, results, [i.key for i in users], DAYS)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("threads", ["1", "4", "5"])
def test_split_kernel_calls_give_the_same_files(synthetic, threads, tmp_path, monkeypatch):
    """With more threads than the calls share out evenly, some sessions run as two halves, the second
    continuing the first's tick state (lag and diff rings, tick_rule, vpin): the files must not change a byte."""
    project, _, _ = synthetic
    monkeypatch.setenv("FSPEC_THREADS", threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the synthetic data's unsorted rows, as in the first run
        paths = run(load_manifest(project.root), RunOptions(output_dir=tmp_path))
    assert len(paths) == len(DAYS) * 2
    for path in paths:
        assert path.read_bytes() == (project.root / "out" / path.name).read_bytes(), path.name


def test_every_synthetic_column_matches_reference(synthetic):
    project, ref, results = synthetic
    problems = _compare(project, ref, results, ref.published(), DAYS)
    assert not problems, f"{len(problems)} column-days differ:\n" + "\n".join(problems)


def test_synthetic_data_has_the_edge_cases(synthetic):
    """Guards the test data itself: the cases the brief asks for are really in it."""
    _, ref, results = synthetic
    frame = results[30].frame
    d0, d1 = frame(DAYS[0]), frame(DAYS[1])
    assert d0["vol_30s_aaa"].iloc[3] == 0 and np.isnan(d0["px_30s_aaa"].iloc[3])  # empty bar mid-session
    assert d1["cnt_30s_aaa"].iloc[0] == 0 and d1["cnt_30s_aaa"].iloc[1] == 0  # empty session start
    ticks = ref.ticks("trades", "aaa", DAYS[0])
    assert ticks["ts"].duplicated().any()  # ties
    assert ticks["price"].isna().any() and ticks["size"].isna().any() and (ticks["size"] == 0).any()
    assert any(ref.ticks("trades", i, d)["bid"].isna().any() for i in SYMBOLS for d in DAYS)  # NaN asof quote
    assert (ticks["ts"] == ref.session_bounds(DAYS[0])[0]).any()  # a tick exactly at the open
    assert not (ticks["price"] == 999.0).any() and not (ticks["size"] > 1000).any()  # filtered rows are gone
    assert len(ref.ticks("mbars", "bbb", DAYS[2])) == 0  # a source with no rows in a session
    # DST: the same wall-clock open is 13:30 UTC on Friday and 14:30 UTC on Monday
    assert ref.session_bounds(DAYS[0])[0].hour == 13 and ref.session_bounds(DAYS[1])[0].hour == 14


def test_warmup_rows_use_previous_sessions(synthetic):
    """The first bars of a day read the bars of the days before it (lag, rolling); session-local ops restart."""
    project = synthetic[0]
    d0, d1, d2 = (project.output(day, 30) for day in DAYS)
    for inst in SYMBOLS:

        def col(feature: str, inst: str = inst) -> str:
            return f"{feature}_30s_{inst}"

        # lag 1 at the open is the previous session's last bar
        np.testing.assert_equal(d1[col("br_lag_a")].iloc[0], d0[col("px")].iloc[-1])
        # a 3-bar window at the open spans two sessions
        assert d1[col("rl_sum_a")].iloc[0] == pytest.approx(d0[col("vol")].iloc[-2:].sum() + d1[col("vol")].iloc[0])
        # lag 12 at the open of the third day reads the first day (two sessions back, 10 bars each)
        assert d2[col("br_lag_b")].iloc[0] == d0[col("vol")].iloc[8]
        assert not np.isnan(d2[col("rl_max_b")].iloc[0])
        # session-local operators restart at the open
        assert d1[col("cs_a")].iloc[0] == d1[col("vol")].iloc[0]
    # aaa's second session opens with empty bars: ffill carries nothing over from the day before
    assert np.isnan(d1["ff_b_30s_aaa"].iloc[0]) and not np.isnan(d0["ff_b_30s_aaa"].iloc[-1])


def test_another_instruments_parameter_in_a_tick_expression(synthetic):
    """sum(aaa.trades.size * bbb.scale) multiplies aaa's sizes by bbb's scale (0.5), not by aaa's (2.0)."""
    project, ref, results = synthetic
    for interval in (30, 60):
        for day in DAYS:
            out = project.output(day, interval)
            np.testing.assert_allclose(
                out[f"scaled_aaa_bbb_{interval}s"], 0.5 * out[f"vol_{interval}s_aaa"], rtol=1e-12, err_msg=day
            )
    assert not _compare(project, ref, results, [("scaled_aaa_bbb", None)], DAYS)


def test_reference_refuses_ticks_of_two_instruments():
    """A reducer over ticks of two instruments has no defined rows; the reference says so."""
    node = ir.Apply(
        "sum",
        (
            ir.Apply(
                "sub",
                (ir.Column("trades", "price", "aaa"), ir.Column("trades", "price", "bbb")),
                (),
                "tick:trades",
            ),
        ),
        (),
        "bar",
    )
    from reference import ReferenceError, _Context

    ctx = _Context(None, 30, DAYS, 10, np.zeros(30))  # type: ignore[arg-type]
    with pytest.raises(ReferenceError):
        ctx.reduce(node)


def test_mixing_instruments_in_one_tick_expression_is_rejected(tmp_path: Path):
    """Two instruments' trades have different rows, like two sources: the compiler must refuse, not pair
    them up row by row (or silently read one instrument twice)."""
    from fspec.compiler.build import check

    project = make_project(
        tmp_path,
        {
            "project.yaml": PROJECT,
            "features.yaml": {
                "spec_version": 1,
                "features": [{"name": "gap_aaa_bbb", "formula": "sum(aaa.trades.price - bbb.trades.price)"}],
            },
        },
    )
    checked = check(project.root)
    assert checked.diagnostics, "sum(aaa.trades.price - bbb.trades.price) compiled without an error"
