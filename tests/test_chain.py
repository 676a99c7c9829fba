"""Option chains (issue 16): the chain source, its snapshot at each bar end and the chain operators, against an
independent computation with pandas and the ``lets-be-rational`` package on the same quotes.

The reference below shares no code with fspec: it takes each bar end's snapshot with pandas (the last row of
each contract with a time strictly before the bar end), reads each expiry's forward from put-call parity,
inverts every mid with the package's Let's Be Rational, computes forward deltas with the standard library's
erfc and interpolates as docs/options.md says. It checks every bar of two grids, the statuses counted in the
day's one warning, the expiry rule's roll, the carry forward, the lookahead proof by truncating the file, and
the compile-time errors.
"""

from __future__ import annotations

import math
import re
import shutil
import warnings
from pathlib import Path

import lets_be_rational as oracle
import numpy as np
import pandas as pd
import pytest
from conftest import REPO, FspecProject, cli, expect, make_project

from fspec.runtime.manifest import load_manifest
from fspec.runtime.run import RunOptions, run

DAY = "2013-10-07"
NY = "America/New_York"
OPEN = pd.Timestamp(f"{DAY} 09:30", tz=NY)
RATE = 0.02
YEAR = 365 * 86400.0
EXPIRIES = {"2013-10-07": pd.Timestamp(f"{DAY} 16:00", tz=NY), "2013-10-09": pd.Timestamp("2013-10-09 16:00", tz=NY)}
RULE = "expiry=nearest(min_minutes=30)"

PROJECT = f"""
spec_version: 1
sources:
  chain:
    path: data/{{symbol}}/{{date}}_chain.parquet
    time: time
    contract: {{expiry: expiry, strike: strike, right: right, settlement: "16:00", rate: {RATE}}}
    columns: {{bid: float64, ask: float64}}
instruments:
  spxw: {{symbol: spxw, sources: [chain]}}
intervals: [5m, 30m]
session: {{timezone: {NY}, open: "09:30", close: "16:00"}}
"""
FEATURES = f"""
spec_version: 1
features:
  - name: atm
    formula: iv_atm(chain, {RULE})
  - name: call25
    formula: iv_delta(chain, 0.25, {RULE})
  - name: put25
    formula: iv_delta(chain, -0.25, {RULE})
  - name: put40
    formula: iv_delta(chain, delta=-0.4, {RULE})
  - name: rr25
    formula: iv_rr25(chain, {RULE})
  - name: slope
    formula: iv_slope(chain, {RULE})
  - name: skew
    formula: skew_index(chain, {RULE})
  - name: forward
    formula: chain_forward(chain, expiry=nearest(min_minutes=0))
  - name: rr25_points
    formula: 100 * iv_rr25(chain, {RULE})
"""
SEVEN = ("atm", "call25", "put25", "put40", "rr25", "slope", "skew", "forward")


def norm_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def black(F: float, K: float, T: float, sigma: float, call: bool, df: float) -> float:
    return df * oracle.black(F, K, sigma, T, 1.0 if call else -1.0)


def synthetic_chain(seed: int = 7) -> pd.DataFrame:
    """Quotes of two expiries (one settling today at 16:00) at random millisecond times, from a smile on a
    random-walk forward, rounded to 0.05, with defects put in: zero bids, crossed quotes, missing asks and mids
    below intrinsic value."""
    rng = np.random.default_rng(seed)
    rows = []
    strikes = np.arange(1600.0, 1761.0, 5.0)
    for expiry in EXPIRIES:
        for K in strikes:
            for right in "CP":
                n = rng.poisson(200)
                ms = np.sort(rng.choice(23_400_000, size=n, replace=False))
                rows += [(int(m), expiry, K, right) for m in ms]
    frame = pd.DataFrame(rows, columns=["ms", "expiry", "strike", "right"]).sort_values("ms", kind="stable")
    frame = frame.reset_index(drop=True)
    path = 1680.0 * np.exp(np.cumsum(rng.normal(0, 0.00012, 23_401)))
    time = OPEN + pd.to_timedelta(frame["ms"], unit="ms")
    F = path[frame["ms"].to_numpy() // 1000]
    T = (frame["expiry"].map(EXPIRIES) - time).dt.total_seconds().to_numpy() / YEAR
    K = frame["strike"].to_numpy()
    atm = 0.16 + 0.01 * np.sin(frame["ms"].to_numpy() / 3e6)
    z = np.log(K / F) / (atm * np.sqrt(T))
    sigma = np.maximum(atm * (1 - 0.15 * z + 0.03 * z * z), 0.05)
    call = (frame["right"] == "C").to_numpy()
    price = np.array([black(*a) for a in zip(F, K, T, sigma, call, np.exp(-RATE * T), strict=True)])
    half = 0.02 * price + 0.05
    bid = np.floor((price - half) / 0.05) * 0.05
    ask = np.ceil((price + half) / 0.05) * 0.05
    bid = np.where(bid < 0.05, 0.0, bid)
    draw = rng.random(len(frame))
    bid = np.where(draw < 0.01, ask + 0.05, bid)  # crossed
    ask = np.where((draw > 0.01) & (draw < 0.015), np.nan, ask)  # one-sided
    intrinsic = np.where(call, F - K, K - F) * np.exp(-RATE * T)
    low = (draw > 0.5) & (draw < 0.52) & (intrinsic > 5)  # deep in the money, quoted below intrinsic value
    bid = np.where(low, np.floor((intrinsic - 1.0) / 0.05) * 0.05, bid)
    ask = np.where(low, bid + 0.05, ask)
    return pd.DataFrame(
        {
            "time": time,
            "expiry": pd.to_datetime(frame["expiry"]).dt.date,
            "strike": K,
            "right": frame["right"],
            "bid": np.round(bid, 2),
            "ask": np.round(ask, 2),
        }
    )


# ---- the independent reference --------------------------------------------------------------------------


def _mid(bid: float, ask: float) -> float:
    ok = math.isfinite(bid) and math.isfinite(ask) and bid > 0 and ask > 0 and bid <= ask
    return 0.5 * (bid + ask) if ok else math.nan


def reference_snapshot(quotes: pd.DataFrame, bar_end: pd.Timestamp, rate: float = RATE) -> pd.DataFrame:
    """Every contract's last quote before ``bar_end``, with T, df, the expiry's forward, IV, status and delta."""
    before = quotes[quotes["time"] < bar_end]
    last = before.groupby(["expiry", "strike", "right"], sort=True).tail(1).copy()
    last["settle"] = pd.to_datetime(last["expiry"].astype(str)).dt.tz_localize(NY) + pd.Timedelta(hours=16)
    last["T"] = (last["settle"] - bar_end).dt.total_seconds() / YEAR
    last["df"] = np.exp(-rate * last["T"])
    last["mid"] = [_mid(b, a) for b, a in zip(last["bid"], last["ask"], strict=True)]
    forwards = {}
    for expiry, group in last.groupby("expiry"):
        calls = group[group.right == "C"].set_index("strike")["mid"]
        puts = group[group.right == "P"].set_index("strike")["mid"]
        both = pd.DataFrame({"c": calls, "p": puts}).dropna()
        if both.empty or group["T"].iloc[0] <= 0:
            forwards[expiry] = math.nan
            continue
        both["gap"] = (both.c - both.p).abs()
        best = both.reset_index().sort_values(["gap", "strike"]).iloc[0]
        forwards[expiry] = best.strike + (best.c - best.p) / group["df"].iloc[0]
    last["F"] = last["expiry"].map(forwards)
    ivs, statuses, deltas = [], [], []
    for row in last.itertuples():
        iv, status = math.nan, "ok"
        call = row.right == "C"
        if not (row.T > 0 and row.F > 0):
            status = "bad input"
        elif not (row.bid > 0 and row.ask > 0):
            status = "no quote"
        elif row.bid > row.ask:
            status = "crossed"
        else:
            price = row.mid / row.df
            if price <= max((row.F - row.strike) if call else (row.strike - row.F), 0.0):
                status = "below intrinsic"
            elif price >= (row.F if call else row.strike):
                status = "above maximum"
            else:
                iv = oracle.implied_volatility_from_a_transformed_rational_guess(
                    price, row.F, row.strike, row.T, 1.0 if call else -1.0
                )
        delta = math.nan
        if iv > 0:
            sd = iv * math.sqrt(row.T)
            d1 = math.log(row.F / row.strike) / sd + 0.5 * sd
            delta = norm_cdf(d1) if call else -norm_cdf(-d1)
        ivs.append(iv)
        statuses.append(status)
        deltas.append(delta)
    last["iv"], last["status"], last["delta"] = ivs, statuses, deltas
    return last


def reference_values(
    snap: pd.DataFrame, bar_end: pd.Timestamp, expiries: dict[str, pd.Timestamp] = EXPIRIES
) -> dict[str, float]:
    """The chain operators by their documented definitions, on one snapshot."""

    def chosen(minutes: float) -> pd.DataFrame:
        ahead = sorted(e for e, s in expiries.items() if s > bar_end and (s - bar_end).total_seconds() >= minutes * 60)
        return snap[snap["expiry"].astype(str) == ahead[0]] if ahead else snap.iloc[:0]

    def atm(ch: pd.DataFrame) -> float:
        if ch.empty:
            return math.nan
        F = ch["F"].iloc[0]
        good = ch[ch["iv"] > 0]
        puts = good[(good.right == "P") & (good.strike < F)]
        calls = good[(good.right == "C") & (good.strike >= F)]
        if not calls.empty and calls.strike.min() == F:
            return float(calls.loc[calls.strike.idxmin(), "iv"])
        if puts.empty or calls.empty:
            return math.nan
        lo, hi = puts.loc[puts.strike.idxmax()], calls.loc[calls.strike.idxmin()]
        w = (math.log(F) - math.log(lo.strike)) / (math.log(hi.strike) - math.log(lo.strike))
        return math.sqrt((1 - w) * lo.iv**2 + w * hi.iv**2)

    def at_delta(ch: pd.DataFrame, target: float) -> float:
        side = ch[(ch.right == ("C" if target > 0 else "P")) & (ch["iv"] > 0)]
        side = side.sort_values("strike", ascending=target > 0)  # from in to out of the money
        d, v = np.abs(side["delta"].to_numpy()), side["iv"].to_numpy()
        want = abs(target)
        for j in range(len(d)):
            if d[j] == want:
                return float(v[j])
            if j and d[j - 1] > want > d[j]:
                w = (d[j - 1] - want) / (d[j - 1] - d[j])
                return math.sqrt((1 - w) * v[j - 1] ** 2 + w * v[j] ** 2)
        return math.nan

    ch = chosen(30)
    front = chosen(0)
    return {
        "atm": atm(ch),
        "call25": at_delta(ch, 0.25),
        "put25": at_delta(ch, -0.25),
        "put40": at_delta(ch, -0.4),
        "rr25": at_delta(ch, 0.25) - at_delta(ch, -0.25),
        "slope": at_delta(ch, -0.10) - at_delta(ch, -0.40),
        "skew": at_delta(ch, -0.10) - at_delta(ch, 0.10),
        "forward": float(front["F"].iloc[0]) if not front.empty else math.nan,
    }


# ---- the project ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quotes() -> pd.DataFrame:
    return synthetic_chain()


@pytest.fixture(scope="module")
def chain_project(tmp_path_factory: pytest.TempPathFactory, quotes: pd.DataFrame) -> tuple[FspecProject, list]:
    project = make_project(
        tmp_path_factory.mktemp("chain"),
        {"project.yaml": PROJECT, "features.yaml": FEATURES},
        {f"data/spxw/{DAY.replace('-', '')}_chain.parquet": quotes},
    )
    project.compile()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(load_manifest(project.root), RunOptions())
    return project, [str(w.message) for w in caught]


@pytest.fixture(scope="module")
def references(quotes: pd.DataFrame) -> dict[int, pd.DataFrame]:
    """The reference snapshots at every bar end of both grids (the 30m bar ends are among the 5m ones)."""
    ends = [OPEN + pd.Timedelta(minutes=5 * (b + 1)) for b in range(78)]
    return {end: reference_snapshot(quotes, end) for end in ends}


@pytest.mark.parametrize("minutes", [5, 30])
def test_operators_match_the_independent_computation(chain_project, references, minutes: int) -> None:
    project, _ = chain_project
    out = project.output(DAY, minutes * 60)
    ends = [OPEN + pd.Timedelta(minutes=minutes * (b + 1)) for b in range(len(out))]
    want = pd.DataFrame([reference_values(references[e], e) for e in ends])
    for name in SEVEN:
        got = out[f"{name}_{minutes * 60}s_spxw"].to_numpy()
        np.testing.assert_allclose(got, want[name].to_numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
        assert np.isnan(got).sum() < len(got) // 4, name  # the chain reaches every point on most bars
    np.testing.assert_allclose(out[f"rr25_points_{minutes * 60}s_spxw"], 100 * want["rr25"], rtol=1e-9)


def test_the_expiry_rule_rolls_30_minutes_before_the_settlement(chain_project, references) -> None:
    project, _ = chain_project
    out = project.output(DAY, 300)
    forward = out["forward_300s_spxw"].to_numpy()
    ends = [OPEN + pd.Timedelta(minutes=5 * (b + 1)) for b in range(78)]
    # nearest(min_minutes=0) reads today's expiry until its settlement at the last bar end, where it has no
    # time left: the next one
    front = [references[e].query("expiry == @pd.Timestamp('2013-10-07').date()")["F"].iloc[0] for e in ends[:-1]]
    np.testing.assert_allclose(forward[:-1], front, rtol=1e-12)
    later = references[ends[-1]]
    assert forward[-1] == pytest.approx(later[later.expiry.astype(str) == "2013-10-09"]["F"].iloc[0], rel=1e-12)
    # the 30-minute rule leaves today's expiry at the bar ending 15:30 (exactly 30 minutes left still counts)
    atm = out["atm_300s_spxw"].to_numpy()
    snap = references[ends[71]]  # 15:30
    today = snap[snap.expiry.astype(str) == "2013-10-07"]
    assert not today.empty and atm[71] == pytest.approx(reference_values(snap, ends[71])["atm"], rel=1e-12)


def test_statuses_give_nan_and_one_warning_per_day(chain_project, references) -> None:
    _, messages = chain_project
    chain = [m for m in messages if "option chain 'chain'" in m]
    assert len(chain) == 1, messages  # one line for the day, for both grids
    text = chain[0]

    def read(end: pd.Timestamp, snap: pd.DataFrame) -> pd.DataFrame:
        """The entries of the expiries the project's rules (30 and 0 minutes) pick at this bar end."""
        picked = set()
        for minutes in (30, 0):
            ahead = [e for e, s in sorted(EXPIRIES.items()) if s > end and (s - end).total_seconds() >= minutes * 60]
            picked |= set(ahead[:1])
        return snap[snap["expiry"].astype(str).isin(picked)]

    snaps = pd.concat([read(end, snap) for end, snap in references.items()])
    counts = snaps["status"].value_counts()
    total = len(snaps)
    bad = int(total - counts.get("ok", 0))
    assert f"{bad:,} of the {total:,} contract quotes its operators read at the 300s bar ends" in text, text
    for status in ("crossed", "no quote", "below intrinsic"):
        assert counts.get(status, 0) > 50, counts  # the defects are there, and counted
        assert f"{counts[status]:,} {status}" in text, text
    ivs = snaps[snaps.status != "ok"]
    assert ivs["iv"].isna().all()
    # no rule reads an expiry past its settlement, and both expiries have a forward at every bar end
    assert "past their expiry" not in text and counts.get("bad input", 0) == 0


def test_no_expiry_for_the_rule_is_nan_with_the_warning(tmp_path: Path, quotes: pd.DataFrame) -> None:
    """A chain holding only today's expiry: the 30-minute rule finds none from the bar ending 15:30 on (it
    still reads today's there, 30 minutes before 16:00), nor at 16:00; NaN, counted in the day's warning."""
    today = quotes[quotes["expiry"].astype(str) == "2013-10-07"]
    project = make_project(
        tmp_path, {"project.yaml": PROJECT, "features.yaml": FEATURES}, {"data/spxw/20131007_chain.parquet": today}
    )
    project.compile()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(load_manifest(project.root), RunOptions(intervals=[1800]))
    atm = project.output(DAY, 1800)["atm_1800s_spxw"].to_numpy()
    assert np.isfinite(atm[:12]).all() and np.isnan(atm[12])  # bar ends 10:00 ... 15:30, then 16:00
    text = next(str(w.message) for w in caught if "option chain" in str(w.message))
    assert "1 bar end has no expiry for nearest(min_minutes=30), where it is NaN" in text, text
    assert "1 bar end has no expiry for nearest(min_minutes=0)" in text, text


def test_a_quote_at_or_after_the_bar_end_never_reaches_that_bar(chain_project, quotes, tmp_path: Path) -> None:
    """Truncation: the file cut at 12:00 gives the same values on every bar ending at or before 12:00, although
    a wild quote stamped exactly 12:00 (the bar end) is in the full file and changes the next bar."""
    project, _ = chain_project
    root = tmp_path / "p"
    shutil.copytree(project.root / "specs", root / "specs")
    shutil.copytree(project.root / "build", root / "build")
    cut = pd.Timestamp(f"{DAY} 12:00", tz=NY)
    F = float(reference_snapshot(quotes, cut).query("expiry == @pd.Timestamp('2013-10-09').date()")["F"].iloc[0])
    atm_strike = 5.0 * round(F / 5.0)
    wild = pd.DataFrame(
        {
            "time": [cut, cut],
            "expiry": [pd.Timestamp("2013-10-09").date()] * 2,
            "strike": [atm_strike] * 2,
            "right": ["C", "P"],
            "bid": [200.0, 200.0],
            "ask": [201.0, 201.0],
        }
    )
    full = pd.concat([quotes, wild]).sort_values("time", kind="stable").reset_index(drop=True)
    data = root / "data" / "spxw" / f"{DAY.replace('-', '')}_chain.parquet"
    data.parent.mkdir(parents=True)
    results = {}
    for name, frame in (("full", full), ("cut", full[full["time"] < cut])):
        frame.to_parquet(data, index=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run(load_manifest(root), RunOptions(output_dir=root / name))
        results[name] = {m: pd.read_parquet(root / name / f"features_20131007_{m}s.parquet") for m in (300, 1800)}
    for seconds in (300, 1800):
        full_out, cut_out = results["full"][seconds], results["cut"][seconds]
        done = (full_out["ts_event"] + pd.Timedelta(seconds=seconds)) <= cut
        pd.testing.assert_frame_equal(full_out[done], cut_out[done])
        after = full_out.index[~done][0]
        # the wild quotes count from the next bar on: the front expiry's ATM volatility jumps
        assert full_out.loc[after, f"atm_{seconds}s_spxw"] != cut_out.loc[after, f"atm_{seconds}s_spxw"]


def test_the_audit_finds_no_lookahead_in_the_chain(chain_project) -> None:
    project, _ = chain_project
    out = expect(cli("audit", "--project", project.root, "--cuts", "4", "--seed", "1"), 0)
    assert "violations            0" in out, out


def test_carry_forward_from_the_underlying(tmp_path: Path, quotes: pd.DataFrame) -> None:
    """forward: carry is S e^((r - q) T) with S the underlying's last price strictly before the bar end."""
    index_times = OPEN + pd.to_timedelta(np.arange(0, 23_400, 7) + 0.25, unit="s")
    index = pd.DataFrame({"time": index_times, "price": 1680 + np.cumsum(np.full(len(index_times), 0.01))})
    project_text = (
        PROJECT.replace(
            f"rate: {RATE}}}",
            f"rate: {RATE}, forward: carry, dividend_yield: 0.015, underlying: {{source: index, column: price}}}}",
        )
        .replace(
            "instruments:",
            "  index:\n    path: data/{symbol}/{date}_index.parquet\n    time: time\n    columns: {price: float64}\n"
            "instruments:",
        )
        .replace("sources: [chain]", "sources: [chain, index]")
    )
    project = make_project(
        tmp_path,
        {"project.yaml": project_text, "features.yaml": FEATURES},
        {"data/spxw/20131007_chain.parquet": quotes, "data/spxw/20131007_index.parquet": index},
    )
    project.compile()
    project.run()
    out = project.output(DAY, 1800)
    for b, value in enumerate(out["forward_1800s_spxw"]):
        end = OPEN + pd.Timedelta(minutes=30 * (b + 1))
        S = index.loc[index["time"] < end, "price"].iloc[-1]
        settle = EXPIRIES["2013-10-07"] if end < EXPIRIES["2013-10-07"] else EXPIRIES["2013-10-09"]
        T = (settle - end).total_seconds() / YEAR
        assert value == pytest.approx(S * math.exp((RATE - 0.015) * T), rel=1e-13)
    # (this index is not the chain's forward, so its volatilities mean little; they are computed on it)
    assert out["atm_1800s_spxw"].notna().sum() >= 10


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("last(chain.bid)", "reads the quotes of every contract of option chain 'chain' as one series"),
        ("iv_atm(chain)", "iv_atm is missing its argument 'expiry'"),
        ("iv_atm(chain, expiry=30)", "expiry is a rule, e.g. expiry=nearest(min_minutes=30)"),
        ("iv_atm(chain, expiry=nearest(min_minutes=-5))", "min_minutes is a number of minutes, 0 or more"),
        ("iv_delta(chain, 0, expiry=nearest(min_minutes=30))", "delta is a number from -0.5 to 0.5 other than 0"),
        ("iv_delta(chain, 0.7, expiry=nearest(min_minutes=30))", "delta is a number from -0.5 to 0.5"),
        ("iv_atm(chian, expiry=nearest(min_minutes=30))", "did you mean 'chain'?"),
        ("iv_atm(index, expiry=nearest(min_minutes=30))", "source 'index' is not one (it has no contract:)"),
        ("iv_atm(chain + 1, expiry=nearest(min_minutes=30))", "iv_atm() reads an option chain source: name it"),
    ],
)
def test_formula_errors(tmp_path: Path, formula: str, message: str) -> None:
    text = PROJECT.replace(
        "instruments:",
        "  index:\n    path: data/{symbol}/{date}_index.parquet\n    time: time\n    columns: {price: float64}\n"
        "instruments:",
    ).replace("sources: [chain]", "sources: [chain, index]")
    features = f"spec_version: 1\nfeatures:\n  - name: x\n    formula: {formula}\n"
    make_project(tmp_path, {"project.yaml": text, "features.yaml": features})
    out = expect(cli("validate", "--project", tmp_path), 1)
    assert message in out, out
    assert re.search(r"specs/features\.yaml:4:\d+", out), out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("columns: {bid: float64, ask: float64}", "columns: {bid: float64}"), "has no ask column"),
        (("rate: 0.02}", "rate: 0.02, forward: carry}"), "forward: carry reads the underlying's price"),
        (("rate: 0.02}", "rate: 0.02, dividend_yield: 0.01}"), "dividend_yield is used by forward: carry only"),
        (("rate: 0.02}", "rate: 0.02, underlying: {source: quotes, column: mid}}"), "unknown source 'quotes'"),
        (('settlement: "16:00"', 'settlement: "4pm"'), "settlement"),
        (("right: right,", "right: right, settle: x,"), "settle"),
    ],
)
def test_chain_source_errors(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    text = PROJECT.replace(*change)
    assert text != PROJECT
    make_project(tmp_path, {"project.yaml": text, "features.yaml": FEATURES})
    out = expect(cli("validate", "--project", tmp_path), 1)
    assert message in out, out
    assert "specs/project.yaml:" in out, out


def test_bad_rights_and_expiries_are_data_errors_naming_the_file(tmp_path: Path, quotes: pd.DataFrame) -> None:
    for column, value, message in (
        ("right", "X", "right column 'right' holds 'X' at row 3"),
        ("expiry", "soon", "expiry column 'expiry' is not dates"),
    ):
        frame = quotes.head(50).copy()
        frame[column] = frame[column].astype(str)
        frame.loc[3, column] = value
        root = tmp_path / column
        make_project(
            root, {"project.yaml": PROJECT, "features.yaml": FEATURES}, {"data/spxw/20131007_chain.parquet": frame}
        )
        expect(cli("compile", "--project", root), 0)
        out = expect(cli("run", "--project", root), 1)
        assert "data/spxw/20131007_chain.parquet" in out and message in out, out


def test_expiries_as_text_and_numbers_read_the_same(tmp_path: Path, quotes: pd.DataFrame) -> None:
    frame = quotes[quotes["time"] < OPEN + pd.Timedelta(hours=1)]
    outs = []
    for k, expiry in enumerate(
        (frame["expiry"], frame["expiry"].astype(str), frame["expiry"].astype(str).str.replace("-", "").astype(int))
    ):
        root = tmp_path / str(k)
        data = frame.assign(expiry=expiry.to_numpy(), right=frame["right"].str.lower().map({"c": "call", "p": "Put"}))
        project = make_project(
            root, {"project.yaml": PROJECT, "features.yaml": FEATURES}, {"data/spxw/20131007_chain.parquet": data}
        )
        project.compile()
        project.run()
        outs.append(project.output(DAY, 300))
    pd.testing.assert_frame_equal(outs[0], outs[1])
    pd.testing.assert_frame_equal(outs[0], outs[2])
    assert outs[0]["atm_300s_spxw"].iloc[:12].notna().all()


# ---- the shipped SPXW chain ------------------------------------------------------------------------------


SHIPPED = REPO / "data" / "sample" / "spxw" / "20131007_quotes.parquet"


def test_the_shipped_spxw_columns_match_the_reference(sample_project: FspecProject) -> None:
    """The root project's four category II columns on 10 bars of each grid, against the reference on the
    bundled chain (rate 0.001, parity forward, the 30-minute rule: 2013-10-11 all day)."""
    quotes = pd.read_parquet(SHIPPED)
    expiries = {e: pd.Timestamp(f"{e} 16:00", tz=NY) for e in ("2013-10-11", "2013-10-18", "2013-10-25")}
    rng = np.random.default_rng(0)
    for seconds in (30, 60):
        out = sample_project.output(DAY, seconds)
        names = {n: f"{n}_{seconds}s_spxw" for n in ("iv_atm", "iv_rr25", "iv_slope", "skew_index")}
        assert out[list(names.values())].notna().mean().min() > 0.99
        for b in sorted(rng.choice(len(out), 10, replace=False)):
            end = out["ts_event"].iloc[b].tz_convert(NY) + pd.Timedelta(seconds=seconds)
            want = reference_values(reference_snapshot(quotes, end, rate=0.001), end, expiries)
            for op, key in (("iv_atm", "atm"), ("iv_rr25", "rr25"), ("iv_slope", "slope"), ("skew_index", "skew")):
                assert out[names[op]].iloc[b] == pytest.approx(want[key], rel=1e-9, nan_ok=True), (op, end)
