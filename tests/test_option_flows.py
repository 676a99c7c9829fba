"""Option flows (issue 16): a chain of trades signed and valued by its quotes strictly before each trade, the flow
operators and the category III features on the chain, against tests/oracles/option_flows.py (pandas, numpy and
the ``lets-be-rational`` package, no fspec code) on the same quotes and trades.

Checked: every bar of a 1-minute and a 5-minute grid of a synthetic two-expiry chain with defects (crossed,
one-sided and zero-bid quotes, NaN sizes, trades stamped at a quote's own millisecond, trades before their
contract's first quote, empty bars); a hand-written chain whose values are worked out below; the shipped SPXW
columns on every bar; the lookahead audit; the errors at spec lines.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import test_dictionary as dictionary  # its raw-data readers (module attribute: no test collected twice)
from conftest import REPO, FspecProject, cli, expect, make_project
from oracles import option_flows as oracle

from fspec.runtime.manifest import load_manifest
from fspec.runtime.run import RunOptions, run

DAY = "2013-10-07"
STAMP = DAY.replace("-", "")
NY = "America/New_York"
OPEN = pd.Timestamp(f"{DAY} 09:30", tz=NY)
CLOSE = pd.Timestamp(f"{DAY} 16:00", tz=NY)
RATE = 0.02
MULTIPLIER = 50.0
SETTLE = {"2013-10-07": pd.Timestamp(f"{DAY} 16:00", tz=NY), "2013-10-09": pd.Timestamp("2013-10-09 16:00", tz=NY)}
RTOL = 1e-9
FLOWS = (
    "net_delta_flow",
    "net_gamma_flow",
    "net_vega_flow",
    "option_ofi",
    "option_spread_pct_vw",
    "option_vwap_deviation",
)

PROJECT = f"""
spec_version: 1
sources:
  chain:
    path: data/{{symbol}}/{{date}}_chain.parquet
    time: time
    contract: {{expiry: expiry, strike: strike, right: right, settlement: "16:00", rate: {RATE},
                multiplier: {MULTIPLIER}}}
    columns: {{bid: float64, ask: float64, bid_size: float64, ask_size: float64}}
  chain_trades:
    path: data/{{symbol}}/{{date}}_chain_trades.parquet
    time: time
    contract: {{expiry: expiry, strike: strike, right: right, quotes: chain}}
    columns: {{price: float64, size: float64}}
instruments:
  spxw: {{symbol: spxw, sources: [chain, chain_trades]}}
intervals: [1m, 5m]
session: {{timezone: {NY}, open: "09:30", close: "16:00"}}
"""
FEATURES = """
spec_version: 1
features:
  - name: net_delta_flow
    formula: net_delta_flow(chain_trades)
  - name: net_gamma_flow
    formula: net_gamma_flow(chain_trades)
  - name: net_vega_flow
    formula: net_vega_flow(trades=chain_trades)
  - name: option_ofi
    formula: option_ofi(chain)
  - name: option_spread_pct_vw
    formula: option_spread_pct_vw(chain_trades)
  - name: option_vwap_deviation
    formula: option_vwap_deviation(chain_trades, expiry=nearest(min_minutes=30))
  - name: chain_forward
    formula: chain_forward(chain, expiry=nearest(min_minutes=30))
"""


def _black(F: float, K: float, T: float, sigma: float, call: bool, df: float) -> float:
    sd = sigma * math.sqrt(T)
    d1 = math.log(F / K) / sd + 0.5 * sd
    d2 = d1 - sd
    n = oracle._Phi
    return df * (F * n(d1) - K * n(d2) if call else K * n(-d2) - F * n(-d1))


def synthetic_chain(seed: int = 11) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Quotes of two expiries (one settling today at 16:00) from a smile on a random-walk forward, with defects
    (zero bids, crossed quotes, missing asks, NaN sizes); and trades priced off the quote before them (at the
    touch, inside it or at the mid), some at a quote's own millisecond, some before their contract's first
    quote, some against a crossed quote, a few hundred in all with quiet minutes."""
    rng = np.random.default_rng(seed)
    strikes = np.arange(1640.0, 1721.0, 5.0)
    rows = []
    for expiry in SETTLE:
        for K in strikes:
            for right in "CP":
                start = rng.integers(0, 3_600_000)  # first quote up to an hour after the open
                ms = np.sort(rng.choice(np.arange(start, 23_400_000), size=rng.poisson(120), replace=False))
                rows += [(int(m), expiry, K, right) for m in ms]
    q = pd.DataFrame(rows, columns=["ms", "expiry", "strike", "right"]).sort_values("ms", kind="stable")
    q = q.reset_index(drop=True)
    path = 1680.0 * np.exp(np.cumsum(rng.normal(0, 0.00012, 23_401)))
    time = OPEN + pd.to_timedelta(q["ms"], unit="ms")
    F = path[q["ms"].to_numpy() // 1000]
    T = (q["expiry"].map(SETTLE) - time).dt.total_seconds().to_numpy() / oracle.YEAR
    K = q["strike"].to_numpy()
    z = np.log(K / F) / (0.16 * np.sqrt(T))
    sigma = np.maximum(0.16 * (1 - 0.15 * z + 0.03 * z * z), 0.05)
    call = (q["right"] == "C").to_numpy()
    price = np.array([_black(*a) for a in zip(F, K, T, sigma, call, np.exp(-RATE * T), strict=True)])
    half = 0.02 * price + 0.05
    bid = np.floor((price - half) / 0.05) * 0.05
    ask = np.ceil((price + half) / 0.05) * 0.05
    bid = np.where(bid < 0.05, 0.0, bid)
    draw = rng.random(len(q))
    bid = np.where(draw < 0.01, ask + 0.05, bid)  # crossed
    ask = np.where((draw > 0.01) & (draw < 0.015), np.nan, ask)  # one-sided
    sizes = rng.integers(1, 200, (2, len(q))).astype(float)
    sizes[0, (draw > 0.9) & (draw < 0.905)] = np.nan  # a size missing now and then
    quotes = pd.DataFrame(
        {
            "time": time,
            "expiry": pd.to_datetime(q["expiry"]).dt.date,
            "strike": K,
            "right": q["right"],
            "bid": np.round(bid, 2),
            "ask": np.round(ask, 2),
            "bid_size": sizes[0],
            "ask_size": sizes[1],
        }
    )
    # trades: a random contract each, at random times, in bursts so that many minutes have none
    n = 600
    bursts = rng.choice(np.arange(0, 23_400_000, 60_000), size=120, replace=False)
    ms = np.sort(rng.choice(bursts, n) + rng.integers(0, 60_000, n))
    pick = rng.integers(0, len(strikes) * 4, n)
    t = pd.DataFrame(
        {
            "time": OPEN + pd.to_timedelta(ms, unit="ms"),
            "expiry": pd.to_datetime(np.array(list(SETTLE))[pick // (2 * len(strikes))]).date,
            "strike": strikes[pick // 2 % len(strikes)],
            "right": np.where(pick % 2 == 0, "C", "P"),
        }
    )
    # a tenth at the exact time of a quote of their contract (the quote update the trade causes)
    same = rng.random(n) < 0.1
    keyed = quotes.assign(k=oracle._key(quotes))
    for i in np.flatnonzero(same):
        times = keyed.loc[keyed["k"] == oracle._key(t.iloc[[i]]).iloc[0], "time"]
        later = times[times > t["time"].iloc[i]]
        if len(later):
            t.loc[i, "time"] = later.iloc[0]
    t = t.sort_values("time", kind="stable").reset_index(drop=True)
    prior = oracle.trade_quotes(quotes, t)
    how = rng.random(n)
    buy = rng.random(n) < 0.5
    touch = np.where(buy, prior["ask"], prior["bid"])
    mid = (prior["bid"] + prior["ask"]) / 2
    price = np.where(how < 0.6, touch, np.where(how < 0.8, np.round(mid, 2), touch + np.where(buy, -0.05, 0.05)))
    price = np.where(np.isfinite(price) & (price > 0), price, 1.0)  # before any quote: some price all the same
    t["price"] = np.round(price, 2)
    t["size"] = rng.integers(1, 40, n).astype(float)
    return quotes, t


@pytest.fixture(scope="module")
def chain() -> tuple[pd.DataFrame, pd.DataFrame]:
    return synthetic_chain()


@pytest.fixture(scope="module")
def flows_project(tmp_path_factory: pytest.TempPathFactory, chain) -> tuple[FspecProject, list[str]]:
    quotes, trades = chain
    project = make_project(
        tmp_path_factory.mktemp("flows"),
        {"project.yaml": PROJECT, "features.yaml": FEATURES},
        {f"data/spxw/{STAMP}_chain.parquet": quotes, f"data/spxw/{STAMP}_chain_trades.parquet": trades},
    )
    project.compile()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(load_manifest(project.root), RunOptions())
    return project, [str(w.message) for w in caught]


def _compare(name: str, got: np.ndarray, want: np.ndarray, atol: float = 0.0) -> None:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    nan = np.flatnonzero(np.isnan(got) != np.isnan(want))
    assert not nan.size, f"{name}: NaN differs at rows {nan[:5]}: got {got[nan[:5]]}, want {want[nan[:5]]}"
    both = ~np.isnan(want)
    bad = np.flatnonzero(both)[~np.isclose(got[both], want[both], rtol=RTOL, atol=atol)]
    assert not bad.size, f"{name}: {bad.size} rows differ, first {bad[:5]}: got {got[bad[:5]]}, want {want[bad[:5]]}"


@pytest.mark.parametrize("seconds", [60, 300])
def test_flows_match_the_independent_computation(flows_project, chain, seconds: int) -> None:
    project, _ = flows_project
    quotes, trades = chain
    grid = pd.date_range(OPEN, CLOSE, freq=f"{seconds}s", inclusive="left")
    want = oracle.flows(quotes, trades, grid, seconds, SETTLE, RATE, MULTIPLIER, 30.0)
    out = project.output(DAY, seconds)
    for name in (*FLOWS, "chain_forward"):
        column = out[f"{name}_{seconds}s_spxw"].to_numpy()
        # sums of terms of both signs: a value near 0 is rounded at the terms' scale, not its own
        scale = np.nanmax(np.abs(want[name].to_numpy())) if name.startswith("net_") or name == "option_ofi" else 0
        _compare(name, column, want[name].to_numpy(), atol=1e-12 * scale)
    if seconds == 60:  # not vacuous: empty bars, both signs, unsigned trades, NaN straddles all occur
        assert (out["net_delta_flow_60s_spxw"] == 0).sum() > 100
        assert (out["net_delta_flow_60s_spxw"] > 0).sum() > 20 and (out["net_delta_flow_60s_spxw"] < 0).sum() > 20
        assert out["option_spread_pct_vw_60s_spxw"].isna().sum() > 100
        assert out["option_vwap_deviation_60s_spxw"].notna().sum() > 30
        enriched = oracle.enriched_trades(quotes, trades, SETTLE, RATE)
        assert (enriched["bid"].isna()).sum() >= 5, "no trade before its contract's first quote"
        assert (enriched["sign"] == 0).sum() >= 20 and enriched["delta"].isna().sum() >= 5
        assert out["net_delta_flow_60s_spxw"].isna().sum() >= 10, "no bar of trades none of which is valued"


def test_trades_at_a_quote_time_are_signed_by_the_quote_before(chain) -> None:
    """Not vacuous: the synthetic trades include trades stamped at their contract's quote, whose sign differs
    when the quote of that same time is read instead."""
    quotes, trades = chain
    strict = oracle.trade_quotes(quotes, trades)
    q = quotes.assign(k=oracle._key(quotes)).sort_values("time", kind="stable")
    t = trades.assign(k=oracle._key(trades))
    loose = pd.merge_asof(t, q[["time", "k", "bid", "ask"]], on="time", by="k", allow_exact_matches=True)
    at_quote = t.merge(q[["time", "k"]], on=["time", "k"]).shape[0]
    assert at_quote >= 20
    s1 = np.sign(strict["price"] - oracle.two_sided_mid(strict["bid"], strict["ask"]))
    s2 = np.sign(loose["price"] - oracle.two_sided_mid(loose["bid"], loose["ask"]))
    assert (s1.fillna(0) != s2.fillna(0)).sum() >= 5


HAND_QUOTES = [  # time after 09:30, right, bid, ask, bid size, ask size (expiry 2013-10-18, strike 100)
    ("00:10", "C", 1.00, 1.20, 10, 20),
    ("00:05", "P", 1.00, 1.20, 8, 8),
    ("00:20", "C", 2.00, 2.20, 15, 5),
    ("01:10", "C", 2.50, 2.30, 7, 9),  # crossed
    ("02:05", "C", 0.00, 2.20, 7, 9),  # no bid
]
HAND_TRADES = [  # time after 09:30, price, size (the call)
    ("00:01", 1.10, 3),  # before the call's first quote: unsigned, no greeks, no spread
    ("00:20", 1.20, 2),  # at the second quote's own time: signed by the first, +1 above 1.10
    ("00:40", 2.10, 4),  # at the mid of 2.00/2.20: 0
    ("01:15", 2.40, 1),  # against the crossed quote: unsigned
    ("02:30", 2.20, 5),  # against the one-sided quote: unsigned
]


def _hand_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    def at(mm_ss: str) -> pd.Timestamp:
        m, s = mm_ss.split(":")
        return OPEN + pd.Timedelta(minutes=int(m), seconds=int(s))

    expiry = pd.Timestamp("2013-10-18").date()
    quotes = pd.DataFrame(
        [(at(t), expiry, 100.0, r, b, a, bs, az) for t, r, b, a, bs, az in HAND_QUOTES],
        columns=["time", "expiry", "strike", "right", "bid", "ask", "bid_size", "ask_size"],
    ).sort_values("time", kind="stable")
    trades = pd.DataFrame(
        [(at(t), expiry, 100.0, "C", p, s) for t, p, s in HAND_TRADES],
        columns=["time", "expiry", "strike", "right", "price", "size"],
    )
    return quotes.reset_index(drop=True), trades


def test_hand_worked_values(tmp_path: Path) -> None:
    quotes, trades = _hand_frames()
    project = make_project(
        tmp_path,
        {"project.yaml": PROJECT.replace("[1m, 5m]", "[1m]"), "features.yaml": FEATURES},
        {f"data/spxw/{STAMP}_chain.parquet": quotes, f"data/spxw/{STAMP}_chain_trades.parquet": trades},
    )
    project.compile()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(load_manifest(project.root), RunOptions())
    out = project.output(DAY, 60)
    col = {n: out[f"{n}_60s_spxw"].to_numpy() for n in (*FLOWS, "chain_forward")}
    # The trade at 00:20: the call's quote before it is 1.00/1.20 (mid 1.10), the put's 1.00/1.20: F = 100 + 0.
    t = (pd.Timestamp("2013-10-18 16:00", tz=NY) - (OPEN + pd.Timedelta(seconds=20))).total_seconds() / oracle.YEAR
    df = math.exp(-RATE * t)
    _, delta, gamma, vega = oracle.greeks(1.10, 100.0, 100.0, t, df, True)
    assert 0.4 < delta < 0.6
    assert col["net_delta_flow"][0] == pytest.approx(+1 * 2 * delta * MULTIPLIER, rel=1e-12)
    assert col["net_gamma_flow"][0] == pytest.approx(2 * gamma * MULTIPLIER, rel=1e-12)
    assert col["net_vega_flow"][0] == pytest.approx(2 * vega * MULTIPLIER, rel=1e-12)
    # the spread of the two trades with a two-sided quote before them: 0.20/1.10 (size 2) and 0.20/2.10 (size 4)
    assert col["option_spread_pct_vw"][0] == pytest.approx((2 * 0.2 / 1.1 + 4 * 0.2 / 2.1) / 6, rel=1e-12)
    # the minutes after: minutes 1 and 2 have a trade each, neither signed nor valued (a crossed and a one-sided
    # quote before them): their flow is unknown, NaN; minute 3 has no trade: 0. The spread is undefined in all three
    for flow in ("net_delta_flow", "net_gamma_flow", "net_vega_flow"):
        np.testing.assert_array_equal(col[flow][1:4], [np.nan, np.nan, 0.0])
    assert np.isnan(col["option_spread_pct_vw"][1:4]).all()
    # OFI per contract: the call's second quote (15 - 10) - (5 - 20) = 20; the crossed one (7 - 15) - (9 - 5) = -12;
    # the no-bid one (7 - 7) - (9 - 9) = 0; each contract's first quote adds nothing, nor does the put's
    np.testing.assert_array_equal(col["option_ofi"][:4], [20.0, -12.0, 0.0, 0.0])
    # VWAP of the first minute's trades (1.10 x 3 + 1.20 x 2 + 2.10 x 4) / 9 over the straddle at 09:31: call mid
    # 2.10 plus put mid 1.10 (the only strike); the second minute's call is crossed at its end: no straddle
    assert col["option_vwap_deviation"][0] == pytest.approx((14.1 / 9) / 3.2 - 1, rel=1e-12)
    assert np.isnan(col["option_vwap_deviation"][1])
    assert np.isnan(col["option_vwap_deviation"][3])  # no trade in that minute
    # empty bars: sums 0, means NaN
    assert (col["net_gamma_flow"][5:] == 0).all() and (col["option_ofi"][5:] == 0).all()
    assert np.isnan(col["option_spread_pct_vw"][5:]).all() and np.isnan(col["option_vwap_deviation"][5:]).all()
    told = [str(w.message) for w in caught if "option trades 'chain_trades'" in str(w.message)]
    assert len(told) == 1 and "3 of 5 trades have no two-sided quote before them (1 no quote at all)" in told[0]


def test_one_warning_per_day_counts_unsigned_trades_and_missing_greeks(flows_project, chain) -> None:
    _, messages = flows_project
    quotes, trades = chain
    told = [m for m in messages if "option trades 'chain_trades' of spxw on 2013-10-07" in m]
    assert len(told) == 1, messages
    enriched = oracle.enriched_trades(quotes, trades, SETTLE, RATE)
    unsigned = int(enriched["mid"].isna().sum())
    assert f"{unsigned:,} of {len(trades):,} trades have no two-sided quote before them" in told[0]
    no_greeks = int((enriched["mid"].notna() & enriched["iv"].isna()).sum())
    if no_greeks:
        assert f"{no_greeks:,} have no implied volatility" in told[0]


def test_the_audit_finds_no_lookahead_in_chain_trades(flows_project) -> None:
    project, _ = flows_project
    out = expect(cli("audit", "--project", project.root, "--cuts", "4", "--seed", "3"), 0)
    assert "violations            0" in out, out


def test_a_trade_at_the_bar_end_never_reaches_that_bar(flows_project, chain, tmp_path: Path) -> None:
    """Truncation: files cut at 12:00 give the same values on every bar ending at or before 12:00, though the
    full files hold a wild trade and a wild quote of a traded contract stamped exactly 12:00."""
    quotes, trades = chain
    noon = pd.Timestamp(f"{DAY} 12:00", tz=NY)
    wild_trade = trades.iloc[[0]].assign(time=noon, price=999.0, size=1e6)
    wild_quote = quotes.iloc[[0]].assign(time=noon, bid=500.0, ask=900.0, bid_size=1e6, ask_size=0.0)
    full_t = pd.concat([trades, wild_trade]).sort_values("time", kind="stable")
    full_q = pd.concat([quotes, wild_quote]).sort_values("time", kind="stable")
    results = {}
    for name, q, t in (
        ("full", full_q, full_t),
        ("cut", full_q[full_q.time < noon], full_t[full_t.time < noon]),
    ):
        project = make_project(
            tmp_path / name,
            {"project.yaml": PROJECT, "features.yaml": FEATURES},
            {f"data/spxw/{STAMP}_chain.parquet": q, f"data/spxw/{STAMP}_chain_trades.parquet": t},
        )
        project.compile()
        project.run()
        results[name] = project.output(DAY, 60)
    ends = results["full"]["ts_event"].dt.tz_convert(NY) + pd.Timedelta(minutes=1)
    before = (ends <= noon).to_numpy()
    for name in FLOWS:
        a, b = (results[k][f"{name}_60s_spxw"].to_numpy()[before] for k in ("full", "cut"))
        np.testing.assert_array_equal(a, b, err_msg=name)
    at_noon = int(np.flatnonzero(~before)[0])
    assert (
        results["full"]["net_delta_flow_60s_spxw"].iloc[at_noon]
        != results["cut"]["net_delta_flow_60s_spxw"].iloc[at_noon]
    )


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("net_delta_flow(chain)", "net_delta_flow() reads an option chain's trades, and 'chain' is a chain of quotes"),
        ("iv_atm(chain_trades, expiry=nearest(min_minutes=30))", "and 'chain_trades' is a chain of trades"),
        ("option_ofi(chain_trades)", "option_ofi() reads an option chain's quotes"),
        ("option_vwap_deviation(chain_trades)", "option_vwap_deviation is missing its argument 'expiry'"),
        ("net_gamma_flow(chain_trades, expiry=nearest(min_minutes=30))", "net_gamma_flow has no parameter 'expiry'"),
        ("sum(chain_trades.size)", "reads the quotes of every contract of option chain 'chain_trades'"),
        ("net_vega_flow(index)", "source 'index' is not one (it has no contract:)"),
        ("net_delta_flow(chain_trade)", "did you mean 'chain_trades'?"),
    ],
)
def test_formula_errors(tmp_path: Path, formula: str, message: str) -> None:
    text = PROJECT.replace(
        "instruments:",
        "  index:\n    path: data/{symbol}/{date}_index.parquet\n    time: time\n    columns: {price: float64}\n"
        "instruments:",
    ).replace("sources: [chain, chain_trades]", "sources: [chain, chain_trades, index]")
    make_project(
        tmp_path,
        {"project.yaml": text, "features.yaml": f"spec_version: 1\nfeatures:\n  - name: x\n    formula: {formula}\n"},
    )
    out = expect(cli("validate", "--project", tmp_path), 1)
    assert message in out, out
    assert re.search(r"specs/features\.yaml:4:\d+", out), out


def test_option_ofi_needs_the_sizes(tmp_path: Path) -> None:
    text = PROJECT.replace(
        "columns: {bid: float64, ask: float64, bid_size: float64, ask_size: float64}",
        "columns: {bid: float64, ask: float64}",
    )
    features = "spec_version: 1\nfeatures:\n  - name: x\n    formula: option_ofi(chain)\n"
    make_project(tmp_path, {"project.yaml": text, "features.yaml": features})
    out = expect(cli("validate", "--project", tmp_path), 1)
    assert "option_ofi() reads each contract's bid and ask sizes, and 'chain' has no bid_size and no ask_size" in out
    assert re.search(r"specs/features\.yaml:4:\d+", out), out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("quotes: chain}", "quotes: chain, rate: 0.01}"), "'rate' of option trades 'chain_trades' is a term of"),
        (("quotes: chain}", 'quotes: chain, settlement: "16:00"}'), "'settlement' of option trades"),
        (("quotes: chain}", "quotes: chian}"), "name unknown source 'chian'"),
        (("quotes: chain}", "quotes: chain_trades}"), "are 'chain_trades', itself a chain of trades"),
        (("columns: {price: float64, size: float64}", "columns: {price: float64}"), "have no size column"),
        (("sources: [chain, chain_trades]", "sources: [chain_trades]"), "reads option trades 'chain_trades' but not"),
        (('settlement: "16:00", ', ""), "option chain 'chain' has no settlement"),
        (("multiplier: 50.0", "multiplier: 0"), "multiplier"),
    ],
)
def test_chain_of_trades_source_errors(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    text = PROJECT.replace(*change)
    assert text != PROJECT
    make_project(tmp_path, {"project.yaml": text, "features.yaml": FEATURES})
    out = expect(cli("validate", "--project", tmp_path), 1)
    assert message in out, out
    assert "specs/project.yaml:" in out, out


# ---- the shipped SPXW chain -------------------------------------------------------------------------------

SHIPPED = REPO / "data" / "sample" / "spxw"
SHIPPED_SETTLE = {e: pd.Timestamp(f"{e} 16:00", tz=NY) for e in ("2013-10-11", "2013-10-18", "2013-10-25")}


@pytest.fixture(scope="module")
def shipped() -> dict[int, pd.DataFrame]:
    """The oracle's flow columns on the bundled chain, on both grids."""
    quotes = pd.read_parquet(SHIPPED / f"{STAMP}_quotes.parquet")
    trades = pd.read_parquet(SHIPPED / f"{STAMP}_option_trades.parquet")
    out = {}
    for seconds in (30, 60):
        grid = pd.date_range(OPEN, CLOSE, freq=f"{seconds}s", inclusive="left")
        out[seconds] = oracle.flows(quotes, trades, grid, seconds, SHIPPED_SETTLE, 0.001, 100.0, 30.0)
    return out


@pytest.mark.parametrize("seconds", [30, 60])
def test_the_shipped_flow_columns_match_the_oracle(sample_project: FspecProject, shipped, seconds: int) -> None:
    out = sample_project.output(DAY, seconds)
    want = shipped[seconds]
    for name in FLOWS:
        scale = np.nanmax(np.abs(want[name].to_numpy())) if name.startswith("net_") or name == "option_ofi" else 0
        _compare(name, out[f"{name}_{seconds}s_spxw"].to_numpy(), want[name].to_numpy(), atol=1e-12 * scale)
    assert out[f"option_vwap_deviation_{seconds}s_spxw"].notna().mean() > 0.5


def _lagged_beta(y: np.ndarray, x: np.ndarray, n: int) -> np.ndarray:
    """OLS slope of y on x over the n bars before each bar (not the bar itself); NaN with a NaN in the window or
    a constant x, 0 for a constant y."""
    out = np.full(len(y), np.nan)
    for i in range(n, len(y)):
        a, b = y[i - n : i], x[i - n : i]
        if not (np.isfinite(a).all() and np.isfinite(b).all()) or np.ptp(b) == 0:
            continue
        out[i] = 0.0 if np.ptp(a) == 0 else ((a - a.mean()) * (b - b.mean())).sum() / ((b - b.mean()) ** 2).sum()
    return out


@pytest.mark.parametrize("seconds", [30, 60])
def test_category_three_with_options(sample_project: FspecProject, shipped, seconds: int) -> None:
    """iv_rv_spread, gamma_participation, delta_drift, skew_return_interaction and the target, from the oracle's
    flows and forward, SPY's raw trades (tests/test_dictionary.py's readers) and the chain's iv columns (checked
    against their own reference in tests/test_chain.py)."""
    out = sample_project.output(DAY, seconds)
    want = shipped[seconds]
    spy = dictionary.etf_trades("spy")
    r = dictionary.interval_log_return(spy, seconds).to_numpy()
    rv = dictionary.realized_vol(spy, seconds).to_numpy()
    dollars = dictionary.bar_sum(spy.assign(d=spy["price"] * spy["size"]), "d", seconds).to_numpy()
    iv_atm, rr25 = out[f"iv_atm_{seconds}s_spxw"].to_numpy(), out[f"iv_rr25_{seconds}s_spxw"].to_numpy()
    spread = iv_atm - rv
    ndf, ngf = want["net_delta_flow"].to_numpy(), want["net_gamma_flow"].to_numpy()
    forward = want["chain_forward"].to_numpy()
    expected = {
        "iv_rv_spread": spread,
        "gamma_participation": np.where(
            dollars > 0, ngf * forward**2 / 100 / np.where(dollars > 0, dollars, 1), np.nan
        ),
        "delta_drift": ndf - _lagged_beta(ndf, r, 20) * r,
        "skew_return_interaction": np.concatenate([[np.nan], np.diff(rr25)]) * r,
        "target_next_iv_rv_spread": np.concatenate([spread[1:], [np.nan]]),
    }
    for name, values in expected.items():
        got = out[f"{name}_{seconds}s"].to_numpy()
        scale = np.nanmax(np.abs(ndf)) * 1e-9 if name == "delta_drift" else 0.0
        _compare(name, got, values, atol=scale)
        # delta_drift: a bar whose flow is unknown (trades, none valued: 4 of the day's 30 s bars) is NaN, and so
        # is each of the 20 bars whose beta window holds it
        assert np.isfinite(got).mean() > (0.85 if name == "delta_drift" else 0.9), name


def test_trades_without_any_quote_of_their_contract_or_of_the_day(tmp_path: Path) -> None:
    """A contract that trades but is never quoted, and a day whose quotes all precede the open: its trades are
    unsigned; on that day no flow is known (every column NaN), nothing fails."""
    quotes, trades = _hand_frames()
    never = trades.assign(strike=105.0, right="P")  # a contract without a quote
    trades = pd.concat([trades, never]).sort_values("time", kind="stable")
    early = quotes.assign(time=quotes["time"] - pd.Timedelta(hours=2))  # 07:30: outside the session
    for name, q in (("never", quotes), ("early", early)):
        project = make_project(
            tmp_path / name,
            {"project.yaml": PROJECT.replace("[1m, 5m]", "[1m]"), "features.yaml": FEATURES},
            {f"data/spxw/{STAMP}_chain.parquet": q, f"data/spxw/{STAMP}_chain_trades.parquet": trades},
        )
        project.compile()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run(load_manifest(project.root), RunOptions())
        out = project.output(DAY, 60)
        told = " ".join(str(w.message) for w in caught)
        if name == "never":  # the hand-worked minute is unchanged: the never-quoted put adds nothing
            first = _first_minute_delta_flow()
            assert out["net_delta_flow_60s_spxw"].iloc[0] == pytest.approx(first, rel=1e-12)
            assert "8 of 10 trades have no two-sided quote before them (6 no quote at all)" in told
        else:
            for name in FLOWS:
                assert out[f"{name}_60s_spxw"].isna().all(), name
            assert "none of the 10 trades can be signed or valued: their columns are NaN that day" in told
            assert "has no quotes in the session" in told


def _edge_frames(case: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The hand-worked chain changed for one edge case: its trades all after the close (a day of quotes only), its
    quotes all before the open (a day of trades only), or three more quotes for the book's edges: at 05:10 the
    first quote of another contract (no change: minute 5's OFI is 0), at 06:10 the put requoted with a NaN bid
    size (its only change unknown: NaN), at 07:10 that NaN again and the call requoted (a known change: its sum)."""
    quotes, trades = _hand_frames()
    if case == "quotes only":
        return quotes, trades.assign(time=trades["time"] + pd.Timedelta(hours=7))
    if case == "trades only":
        return quotes.assign(time=quotes["time"] - pd.Timedelta(hours=2)), trades
    expiry = quotes["expiry"].iloc[0]
    more = pd.DataFrame(
        [
            (OPEN + pd.Timedelta("5min10s"), expiry, 105.0, "C", 0.40, 0.50, 5.0, 5.0),
            (OPEN + pd.Timedelta("6min10s"), expiry, 100.0, "P", 1.00, 1.20, np.nan, 8.0),
            (OPEN + pd.Timedelta("7min10s"), expiry, 100.0, "P", 1.00, 1.20, np.nan, 6.0),
            (OPEN + pd.Timedelta("7min20s"), expiry, 100.0, "C", 0.00, 2.20, 9.0, 4.0),
        ],
        columns=quotes.columns,
    )
    return pd.concat([quotes, more], ignore_index=True).sort_values("time", kind="stable"), trades


@pytest.mark.parametrize("case", ["quotes only", "trades only", "book edges"])
def test_edge_bars_and_days_against_the_oracle(tmp_path: Path, case: str) -> None:
    """Sums are 0 over nothing and NaN over terms all unknown; means are NaN over nothing; a day of trades without
    a quote in the session is NaN throughout (nothing signs or values them); each as the oracle computes it."""
    quotes, trades = _edge_frames(case)
    project = make_project(
        tmp_path,
        {"project.yaml": PROJECT.replace("[1m, 5m]", "[1m]"), "features.yaml": FEATURES},
        {f"data/spxw/{STAMP}_chain.parquet": quotes, f"data/spxw/{STAMP}_chain_trades.parquet": trades},
    )
    project.compile()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run(load_manifest(project.root), RunOptions())
    out = project.output(DAY, 60)
    grid = pd.date_range(OPEN, CLOSE, freq="60s", inclusive="left")
    session = [f[(f["time"] >= OPEN) & (f["time"] < CLOSE)].reset_index(drop=True) for f in (quotes, trades)]
    want = oracle.flows(*session, grid, 60, {"2013-10-18": pd.Timestamp("2013-10-18 16:00", tz=NY)}, RATE,
                        MULTIPLIER, 30.0)  # fmt: skip
    col = {n: out[f"{n}_60s_spxw"].to_numpy() for n in FLOWS}
    for name in FLOWS:
        _compare(name, col[name], want[name].to_numpy())
    if case == "quotes only":  # no trade in the session: flows 0, means NaN; the book's changes as on any day
        for flow in ("net_delta_flow", "net_gamma_flow", "net_vega_flow"):
            assert (col[flow] == 0).all(), flow
        assert np.isnan(col["option_spread_pct_vw"]).all() and np.isnan(col["option_vwap_deviation"]).all()
        np.testing.assert_array_equal(col["option_ofi"][:4], [20.0, -12.0, 0.0, 0.0])
    elif case == "trades only":
        for name in FLOWS:
            assert np.isnan(col[name]).all(), name
    else:
        np.testing.assert_array_equal(col["option_ofi"][4:9], [0.0, 0.0, np.nan, (9 - 7) - (4 - 9), 0.0])


TRADE_FLOWS = ("net_delta_flow", "net_gamma_flow", "net_vega_flow", "option_spread_pct_vw", "option_vwap_deviation")


def test_the_lineage_of_a_flow_names_the_quotes_that_sign_it(flows_project, tmp_path: Path) -> None:
    """A flow of trades is computed from the trades and the quotes strictly before them: the manifest, explain,
    the file's metadata and the catalog's graph name both sources, and a change of the quotes' terms (the rate)
    is a change of every flow's definition (state:modified). option_ofi and chain_forward read the quotes only."""
    import json
    import shutil

    import pyarrow.parquet as pq

    from fspec.compiler.build import compile_project
    from fspec.runtime.catalog import lineage
    from fspec.runtime.select import select

    project, _ = flows_project
    manifest = load_manifest(project.root)
    built = {f["name"]: f["sources"] for f in json.loads((project.root / "build" / "manifest.json").read_text())[
        "features"]}  # fmt: skip
    for name in TRADE_FLOWS:
        assert built[name] == ["chain", "chain_trades"], name
        assert manifest.source_reads[(name, "spxw")] == (("chain_trades", "spxw"), ("chain", "spxw"))
    assert built["option_ofi"] == built["chain_forward"] == ["chain"]
    explained = expect(cli("explain", "net_gamma_flow_60s_spxw", "--project", project.root), 0)
    assert re.search(r"^sources:\s+spxw\.chain_trades, spxw\.chain$", explained, flags=re.M), explained
    meta = json.loads(pq.read_schema(project.root / "out" / f"features_{STAMP}_60s.parquet").metadata[b"fspec"])
    assert meta["columns"]["net_vega_flow_60s_spxw"]["sources"] == [["chain_trades", "spxw"], ["chain", "spxw"]]
    assert meta["columns"]["option_ofi_60s_spxw"]["sources"] == [["chain", "spxw"]]
    graph = lineage(manifest, ("net_delta_flow", "spxw"), 60, lambda key: None)
    sources = sorted(node.label for node in graph.nodes if node.kind == "source")
    assert sources == ["spxw.chain", "spxw.chain_trades"], graph
    # the quotes' rate changes every flow of the trades (their greeks), and what reads the quotes
    edited = tmp_path / "edited"
    shutil.copytree(project.root / "specs", edited / "specs")
    spec = edited / "specs" / "project.yaml"
    spec.write_text(spec.read_text().replace(f"rate: {RATE},", "rate: 0.03,"))
    compile_project(edited)
    changed = {name for name, _ in select(load_manifest(edited), ["state:modified"], state=project.root)}
    assert changed == {*TRADE_FLOWS, "chain_forward", "option_ofi"}, changed


def test_the_lineage_of_a_carry_chain_names_its_underlying(tmp_path: Path) -> None:
    """With forward: carry the quotes' values read the underlying's price, and so do the trades' flows."""
    carry = (
        PROJECT.replace(
            f"rate: {RATE},", f"rate: {RATE}, forward: carry, underlying: {{source: index, column: price}},"
        )
        .replace(
            "instruments:\n",
            "  index:\n    path: data/{symbol}/{date}_index.parquet\n    time: time\n    columns: {price: float64}\n"
            "instruments:\n",
        )
        .replace("sources: [chain, chain_trades]", "sources: [chain, chain_trades, index]")
    )
    project = make_project(tmp_path, {"project.yaml": carry, "features.yaml": FEATURES})
    project.compile()
    manifest = load_manifest(project.root)
    assert manifest.source_reads[("net_delta_flow", "spxw")] == (
        ("chain_trades", "spxw"), ("chain", "spxw"), ("index", "spxw")
    )  # fmt: skip
    assert manifest.source_reads[("chain_forward", "spxw")] == (("chain", "spxw"), ("index", "spxw"))
    assert manifest.feature("chain_forward", "spxw").sources == ("chain", "index")


def _first_minute_delta_flow() -> float:
    """The first minute's net delta flow of the hand-worked chain: the trade at 00:20, +1 x 2 x delta x 50."""
    t = (pd.Timestamp("2013-10-18 16:00", tz=NY) - (OPEN + pd.Timedelta(seconds=20))).total_seconds() / oracle.YEAR
    _, delta, _, _ = oracle.greeks(1.10, 100.0, 100.0, t, math.exp(-RATE * t), True)
    assert delta > 0
    return 2 * delta * MULTIPLIER


@pytest.mark.parametrize("distinct", [7, 70_000])
def test_contract_numbers_are_those_of_sorting(distinct: int) -> None:
    """The hashed contract numbering gives np.unique's ranks of (expiry, strike, right), with few distinct strikes
    and with more than it hashes (its fallback), read-only inputs included."""
    from fspec.options.chain import contract_ids

    rng = np.random.default_rng(distinct)
    n = 200_000
    expiry = rng.integers(15_980, 15_990, n).astype(float)
    strike = rng.choice(rng.uniform(1000, 2000, distinct).round(2), n)
    call = rng.integers(0, 2, n).astype(float)
    strike.flags.writeable = False
    got, table = contract_ids(expiry, strike, call)
    rows = np.column_stack([expiry, strike, call])
    found, want = np.unique(rows, axis=0, return_inverse=True)
    np.testing.assert_array_equal(got, want.reshape(-1))
    np.testing.assert_array_equal(table, found)


@pytest.mark.parametrize("bad", [0.0, -5.0, np.nan, np.inf])
def test_contract_ids_refuse_a_row_array_with_a_strike_that_is_no_positive_number(bad: float) -> None:
    """Row arrays come from a chain source whose loading checked its strikes: one that slipped through is an
    error naming its row, not a contract numbered from it."""
    from fspec.options.chain import contract_ids

    strike = np.array([100.0, 105.0, bad, 110.0])
    with pytest.raises(ValueError, match="at row 2 is not a positive number"):
        contract_ids(np.full(4, 19_000.0), strike, np.array([0.0, 1.0, 1.0, 0.0]))


@pytest.mark.parametrize("distinct", [7, 70_000])
def test_contract_numbers_of_a_files_columns_are_those_of_sorting(distinct: int) -> None:
    """Numbering from the columns as read (int32 day numbers, strikes, right codes of a dictionary of texts)
    gives np.unique's ranks of (expiry, strike, is_call) too, past the hashed limit as well; the codes' words
    may be in any order and repeat a right ('C' and 'call')."""
    from fspec.options.chain import NO_RIGHT, contract_numbers

    rng = np.random.default_rng(distinct + 1)
    n = 200_000
    expiry = rng.integers(15_980, 15_990, n).astype(np.int32)
    strike = rng.choice(rng.uniform(1000, 2000, distinct).round(2), n)
    words = np.array([1, 0, 1, 0], dtype=np.int8)  # e.g. 'C', 'P', 'call', 'put'
    right = rng.integers(0, 4, n).astype(np.int32)
    strike.flags.writeable = False
    got, table, bad_strike, bad_right = contract_numbers(expiry, strike, right, np.append(words, NO_RIGHT))
    assert (bad_strike, bad_right) == (-1, -1)
    rows = np.column_stack([expiry.astype(float), strike, words[right].astype(float)])
    found, want = np.unique(rows, axis=0, return_inverse=True)
    np.testing.assert_array_equal(got, want.reshape(-1))
    np.testing.assert_array_equal(table, found)


@pytest.mark.parametrize("distinct", [7, 70_000])
def test_contract_numbers_name_the_first_bad_strike_and_right(distinct: int) -> None:
    from fspec.options.chain import NO_RIGHT, contract_numbers

    rng = np.random.default_rng(distinct)
    n = 100_000
    expiry = np.full(n, 15_985, dtype=np.int32)
    strike = rng.choice(np.arange(1, distinct + 1, dtype=float), n)
    right = rng.integers(0, 2, n).astype(np.int32)
    calls = np.array([1, 0, NO_RIGHT], dtype=np.int8)  # 'C', 'P', a missing right
    for value in (0.0, -5.0, np.nan, np.inf):
        bad = strike.copy()
        bad[[n - 7, n - 3]] = value
        assert contract_numbers(expiry, bad, right, calls)[2] == n - 7
    wrong = right.copy()
    wrong[[n - 9, n - 2]] = 2
    assert contract_numbers(expiry, strike, wrong, calls)[2:] == (-1, n - 9)
    bad = strike.copy()
    bad[n - 1] = 0.0
    assert contract_numbers(expiry, bad, wrong, calls)[2:] == (n - 1, n - 9)  # the caller reports the strike
