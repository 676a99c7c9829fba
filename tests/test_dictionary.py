"""The feature dictionary (seed 001, categories I, III and V without options) against plain pandas.

1. Every cross-asset feature, the futures' spread_pct, vpin_spy, every target and the SPY responders of the
   shipped specs, recomputed step by step from the raw parquet files in data/sample/ with plain pandas and
   numpy (no fspec code, not tests/reference.py), equal to fspec's output to rtol 1e-9 with the same NaN
   pattern, on every bar of the session.
2. Naming: every column of every output file parses back to exactly one (feature, interval, instrument) and
   the seed's example column names are there.
3. A feature that reads a target is rejected by ``fspec validate``.
4. A missing instrument on a day gives NaN columns and a warning, not a crash.

The time contract written out once (docs/semantics.md, "Sessions and bars" and "Conventions (edge cases)"):
- bars are [t, t + interval), the session is 09:30 to 16:00 New York time, ``ts_event`` is the bar start (UTC);
- a bar source (1s quote bars, 1s OHLCV bars) stamped at its start is known at its end, one second later:
  it counts in the output bar containing stamp + 1s, and in the session only if stamp + 1s is in it;
- trades are filtered with suspicious == 0, price > 0, size > 0, and kept if their time is in the session;
- tick state (log returns, quote size changes, the tick rule) restarts at the session open;
- "last known" values (prices, mids) carry forward within the session, never from before the open.
"""

from __future__ import annotations

import math
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, FspecProject, cli, expect, shipped_specs

SAMPLE = REPO / "data" / "sample"
DAY = "2013-10-07"
STAMP = DAY.replace("-", "")  # YYYYMMDD in file names
NY = "America/New_York"
OPEN = pd.Timestamp(f"{DAY} 09:30", tz=NY)
CLOSE = pd.Timestamp(f"{DAY} 16:00", tz=NY)
SESSION_SECONDS = 6.5 * 3600
ONE_SECOND = pd.Timedelta(seconds=1)
RTOL = 1e-9

PROJECT = yaml.safe_load((REPO / "specs" / "project.yaml").read_text(encoding="utf-8"))
PARAMS = {name: inst.get("params", {}) for name, inst in PROJECT["instruments"].items()}
INSTRUMENTS = tuple(PROJECT["instruments"])  # spy, qqq, vxx, mes, mnq, spxw
SINGLE_ASSET = tuple(i for i in INSTRUMENTS if i != "spxw")  # spxw is the option chain's: chain features only
TRADING_DAYS = PROJECT["session"]["trading_days_per_year"]
COST = PROJECT["constants"]["cost"]
DEAD_BAND = PROJECT["constants"]["dead_band"]


# ---- raw data, step by step -----------------------------------------------------------------------


def _in_session(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Rows whose ``column`` time is in the regular session [09:30, 16:00) New York time."""
    return frame[(frame[column] >= OPEN) & (frame[column] < CLOSE)].reset_index(drop=True)


def etf_trades(symbol: str) -> pd.DataFrame:
    """Trade ticks of an ETF in the session: time, price, size and the tick log return r (NaN for the first)."""
    trades = pd.read_parquet(SAMPLE / symbol / f"{STAMP}_trades.parquet")
    trades = trades[(trades["suspicious"] == 0) & (trades["price"] > 0) & (trades["size"] > 0)]
    trades = trades.sort_values("time", kind="stable")
    trades = _in_session(trades, "time")[["time", "price", "size"]]
    trades["r"] = np.log(trades["price"]).diff()  # no return for the session's first trade
    return trades


def futures_trades(symbol: str) -> pd.DataFrame:
    """1s OHLCV bars as trades (the dictionary: close is the price, volume the size), at their known time."""
    bars = pd.read_parquet(SAMPLE / symbol / f"{STAMP}_ohlcv_1s.parquet")
    bars["time"] = bars["time"] + ONE_SECOND  # stamped at the start, known at the end
    trades = _in_session(bars, "time").rename(columns={"close": "price", "volume": "size"})
    trades = trades[["time", "price", "size"]].copy()
    trades["r"] = np.log(trades["price"]).diff()
    # Tick rule: the sign of the last non-zero price change in the session, 0 before the first change.
    change = np.sign(trades["price"].diff())
    trades["tick_sign"] = change.where(change != 0).ffill().fillna(0.0)
    return trades


def etf_quotes(symbol: str) -> pd.DataFrame:
    """1s quote bars at their known time (stamp + 1s) in the session: time, bid, ask, bid_size, ask_size."""
    quotes = pd.read_parquet(SAMPLE / symbol / f"{STAMP}_quotes_1s.parquet")
    quotes["time"] = quotes["time"] + ONE_SECOND
    quotes = _in_session(quotes, "time")
    return pd.DataFrame(
        {
            "time": quotes["time"],
            "bid": quotes["bid_close"],
            "ask": quotes["ask_close"],
            "bid_size": quotes["last_bid_size"],
            "ask_size": quotes["last_ask_size"],
        }
    )


# ---- per-bar values on the session grid ------------------------------------------------------------


def grid(seconds: int) -> pd.DatetimeIndex:
    return pd.date_range(OPEN, CLOSE, freq=f"{seconds}s", inclusive="left")


def by_bar(frame: pd.DataFrame, seconds: int) -> pd.core.groupby.DataFrameGroupBy:
    """Rows grouped by the bar [t, t + seconds) that holds their time."""
    return frame.groupby(frame["time"].dt.floor(f"{seconds}s"))


def bar_sum(frame: pd.DataFrame, column: str, seconds: int) -> pd.Series:
    """Sum of the bar's values, NaN skipped, 0 for an empty bar."""
    return by_bar(frame, seconds)[column].sum().reindex(grid(seconds), fill_value=0.0)


def last_known(frame: pd.DataFrame, column: str, seconds: int) -> pd.Series:
    """The last value at or before the bar end, carried forward within the session."""
    return by_bar(frame, seconds)[column].last().reindex(grid(seconds)).ffill()


def vwap(trades: pd.DataFrame, seconds: int) -> pd.Series:
    """Volume-weighted average price of the bar's trades; NaN for an empty bar."""
    notional = (trades["price"] * trades["size"]).groupby(trades["time"].dt.floor(f"{seconds}s")).sum()
    volume = trades.groupby(trades["time"].dt.floor(f"{seconds}s"))["size"].sum()
    return (notional / volume).reindex(grid(seconds))


def interval_log_return(trades: pd.DataFrame, seconds: int) -> pd.Series:
    return bar_sum(trades, "r", seconds)


def realized_vol(trades: pd.DataFrame, seconds: int) -> pd.Series:
    periods_per_year = TRADING_DAYS * SESSION_SECONDS / seconds
    squares = trades.assign(r2=trades["r"] ** 2)
    return np.sqrt(bar_sum(squares, "r2", seconds) * periods_per_year)


def mid(quotes: pd.DataFrame, seconds: int) -> pd.Series:
    return last_known(quotes.assign(mid=(quotes["bid"] + quotes["ask"]) / 2), "mid", seconds)


def lead(series: pd.Series, k: int = 1) -> pd.Series:
    """The value k bars later in the session; NaN for the session's last k bars."""
    return series.shift(-k)


def change_class(change: pd.Series) -> pd.Series:
    """1 above +dead_band, -1 below -dead_band, 0 in between, NaN where the change is unknown."""
    out = pd.Series(0.0, index=change.index)
    out[change > DEAD_BAND] = 1.0
    out[change < -DEAD_BAND] = -1.0
    out[change.isna()] = np.nan
    return out


def window_sum(series: pd.Series, n: int) -> pd.Series:
    """Sum over the last n bars (each window summed afresh, no running total); NaN until n bars exist."""
    sums = np.lib.stride_tricks.sliding_window_view(series.to_numpy(), n).sum(axis=1)
    return pd.Series(np.concatenate([np.full(n - 1, np.nan), sums]), index=series.index)


def rolling_pearson(x: pd.Series, y: pd.Series, n: int) -> pd.Series:
    """Pearson correlation over the last n bars; NaN with fewer bars, a NaN in the window or a constant side."""
    xs, ys = x.to_numpy(), y.to_numpy()
    out = np.full(len(xs), np.nan)
    for end in range(n, len(xs) + 1):
        a, b = xs[end - n : end], ys[end - n : end]
        if np.isnan(a).any() or np.isnan(b).any() or np.ptp(a) == 0 or np.ptp(b) == 0:
            continue
        da, db = a - a.mean(), b - b.mean()
        out[end - 1] = (da * db).sum() / math.sqrt((da * da).sum() * (db * db).sum())
    return pd.Series(out, index=x.index)


def vpin_at_bar_ends(trades: pd.DataFrame, bucket: float, n: int, seconds: int) -> pd.Series:
    """VPIN after the last trade at or before each bar end (Easley, Lopez de Prado & O'Hara 2012).

    Equal-volume buckets of ``bucket`` shares, filled by the session's trades in order: bucket k closes at the
    trade whose cumulative volume first reaches k * bucket (one big trade can close several buckets, all at its
    price). dP of a bucket is its close minus the previous bucket's close (the first bucket: minus the session's
    first trade price); sigma is the std (ddof 1) of dP over the last n buckets up to and including this one;
    bulk volume classification V_buy = V * Phi(dP / sigma) gives the imbalance |V_buy - V_sell| / V =
    |2 Phi(dP / sigma) - 1| (0, i.e. half buys, if sigma = 0 or is undefined with a single change). VPIN is the
    mean imbalance of the last n buckets, NaN before n buckets exist.
    """
    volume = trades["size"].to_numpy()
    price = trades["price"].to_numpy()
    cumulative = np.cumsum(volume)
    closed_before = np.concatenate([[0.0], np.floor(cumulative[:-1] / bucket)])
    closed_by = (np.floor(cumulative / bucket) - closed_before).astype(int)  # buckets each trade closes
    closing_trade = np.repeat(np.arange(len(price)), closed_by)
    close = price[closing_trade]
    dp = np.diff(np.concatenate([[price[0]], close]))
    imbalance = np.zeros(len(dp))
    for k in range(len(dp)):
        window = dp[max(0, k - n + 1) : k + 1]
        sigma = np.std(window, ddof=1) if len(window) >= 2 else 0.0
        if sigma > 0:
            phi = 0.5 * math.erfc(-dp[k] / sigma / math.sqrt(2.0))
            imbalance[k] = abs(2.0 * phi - 1.0)
    vpin = pd.Series(imbalance).rolling(n, min_periods=n).mean().to_numpy()
    buckets = pd.DataFrame({"time": trades["time"].to_numpy()[closing_trade], "vpin": vpin})
    return last_known(buckets.dropna(), "vpin", seconds)


# ---- the independent values, column by column ------------------------------------------------------


class Independent:
    """Expected columns, computed once per module from the raw files."""

    def __init__(self) -> None:
        self.trades = {s: etf_trades(s) for s in ("spy", "qqq", "vxx")}
        self.trades |= {s: futures_trades(s) for s in ("mes", "mnq")}
        self.quotes = {s: etf_quotes(s) for s in ("spy", "qqq")}

    def last_price(self, symbol: str, seconds: int) -> pd.Series:
        return last_known(self.trades[symbol], "price", seconds)

    def column(self, name: str, seconds: int) -> pd.Series:
        t, q = self.trades, self.quotes
        if name == "basis_mes_spy":
            return self.last_price("mes", seconds) / PARAMS["mes"]["scale"] - vwap(t["spy"], seconds)
        if name == "basis_mnq_qqq":
            return self.last_price("mnq", seconds) / PARAMS["mnq"]["scale"] - vwap(t["qqq"], seconds)
        if name == "lagged_corr_spy_mes_1":
            spy = interval_log_return(t["spy"], seconds)
            mes_prev = interval_log_return(t["mes"], seconds).shift(1)  # no bar before the first one loaded
            return rolling_pearson(spy, mes_prev, 20)
        if name == "ofi_spread_spy_mes":
            # SPY: change in bid size minus change in ask size per quote bar (the session's first has none),
            # summed over the bar's quote bars. MES: tick-rule signed volume of the 1s closes.
            quotes = q["spy"].assign(ofi=q["spy"]["bid_size"].diff() - q["spy"]["ask_size"].diff())
            spy_ofi = bar_sum(quotes, "ofi", seconds)
            mes = t["mes"].assign(signed=t["mes"]["size"] * t["mes"]["tick_sign"])
            return spy_ofi - bar_sum(mes, "signed", seconds)
        if name == "vol_hedge_spread":
            return (
                self.last_price("spy", seconds)
                + 0.5 * self.last_price("qqq", seconds)
                - self.last_price("vxx", seconds)
            )
        if name == "spread_pct_mes":
            # The dictionary: for OHLCV data with a tick_size, tick_size / last close price.
            return PARAMS["mes"]["tick_size"] / self.last_price("mes", seconds)
        if name == "vpin_spy":
            return vpin_at_bar_ends(t["spy"], PARAMS["spy"]["vpin_bucket"], 50, seconds)
        if name == "target_next_window_return":
            return lead(interval_log_return(t["spy"], seconds)) - COST
        if name.startswith("target_next_rv_change"):
            rv = realized_vol(t["spy"], seconds)
            change = lead(rv) - rv
            return change if name.endswith("regr") else change_class(change)
        if name.startswith("target_next_qqq_spy_spread_change"):
            spread = np.log(mid(q["qqq"], seconds)) - np.log(mid(q["spy"], seconds))
            change = lead(spread) - spread
            return change if name.endswith("regr") else change_class(change)
        if name.startswith("target_next_spy_qqq_vxx_spread_change"):
            spread = self.column("vol_hedge_spread", seconds)
            change = lead(spread) - spread
            return change if name.endswith("regr") else change_class(change)
        if name.startswith("resp_mid_"):
            h = int(name.removeprefix("resp_mid_"))
            m = mid(q["spy"], seconds)
            return np.log(lead(m, h) / m)
        if name.startswith("resp_vwap_"):
            # VWAP of the trades in the h seconds after the bar, over the bar's mid: bars t+1 .. t+h.
            h = int(name.removeprefix("resp_vwap_"))
            trades = t["spy"].assign(notional=t["spy"]["price"] * t["spy"]["size"])
            notional = window_sum(bar_sum(trades, "notional", seconds), h)
            volume = window_sum(bar_sum(trades, "size", seconds), h)
            forward = lead(notional / volume, h)  # 0 / 0 (no trade in those seconds) is NaN
            return np.log(forward / mid(q["spy"], seconds))
        raise KeyError(name)


@pytest.fixture(scope="module")
def independent() -> Independent:
    return Independent()


def _compare(name: str, got: pd.Series, expected: pd.Series, frame: pd.DataFrame, atol: float = 0.0) -> None:
    """rtol 1e-9 (plus ``atol``) and the identical NaN pattern, reporting the first differing rows by time."""
    g, e = got.to_numpy(dtype=float), expected.to_numpy(dtype=float)
    assert g.shape == e.shape, f"{name}: {g.shape} rows, expected {e.shape}"
    when = frame["ts_event"].dt.tz_convert(NY).dt.strftime("%H:%M:%S").to_numpy()
    nan_diff = np.flatnonzero(np.isnan(g) != np.isnan(e))
    assert nan_diff.size == 0, f"{name}: NaN pattern differs on {nan_diff.size} rows, first " + ", ".join(
        f"row {i} ({when[i]}): expected {e[i]!r}, got {g[i]!r}" for i in nan_diff[:5]
    )
    both = ~np.isnan(e)
    assert both.sum() > 0.5 * len(e), f"{name}: only {both.sum()} of {len(e)} values to compare"
    close = np.isclose(g[both], e[both], rtol=RTOL, atol=atol) | (g[both] == e[both])
    bad = np.flatnonzero(both)[~close]
    assert bad.size == 0, f"{name}: {bad.size} rows differ beyond rtol {RTOL}, first " + ", ".join(
        f"row {i} ({when[i]}): expected {e[i]!r}, got {g[i]!r}" for i in bad[:5]
    )


def _output(project: FspecProject, seconds: int) -> pd.DataFrame:
    frame = project.output(DAY, seconds)
    expected_grid = grid(seconds).tz_convert("UTC")
    assert frame["ts_event"].tolist() == expected_grid.tolist(), "the output grid is not the session grid"
    return frame


# (name for Independent.column, output column with {s} for the interval's seconds)
CROSS_ASSET = ["basis_mes_spy", "basis_mnq_qqq", "lagged_corr_spy_mes_1", "ofi_spread_spy_mes", "vol_hedge_spread"]
TARGETS_SPY = ["target_next_window_return", "target_next_rv_change_regr", "target_next_rv_change_class"]
TARGETS_CROSS = [
    "target_next_qqq_spy_spread_change_regr",
    "target_next_qqq_spy_spread_change_class",
    "target_next_spy_qqq_vxx_spread_change_regr",
    "target_next_spy_qqq_vxx_spread_change_class",
]
CHECKED = (
    [(name, f"{name}_{{s}}s") for name in CROSS_ASSET]
    + [("spread_pct_mes", "spread_pct_{s}s_mes"), ("vpin_spy", "vpin_spy")]
    + [(name, f"{name}_{{s}}s_spy") for name in TARGETS_SPY]
    + [(name, f"{name}_{{s}}s") for name in TARGETS_CROSS]
)


@pytest.mark.parametrize("seconds", [30, 60])
@pytest.mark.parametrize(("name", "pattern"), CHECKED, ids=[c[0] for c in CHECKED])
def test_against_plain_pandas(sample_project, independent, name, pattern, seconds):
    frame = _output(sample_project, seconds)
    column = pattern.format(s=seconds)
    _compare(column, frame[column], independent.column(name, seconds), frame)


@pytest.mark.parametrize("name", ["resp_mid_5", "resp_mid_30", "resp_vwap_5", "resp_vwap_30"])
def test_spy_responders_on_the_1s_grid(sample_project, independent, name):
    frame = _output(sample_project, 1)
    column = f"{name}_1s_spy"
    # log(VWAP / mid) with VWAP close to the mid: the ratio is rounded to about one ulp of 1 (2.2e-16) whatever
    # the summation order, so a log return near 0 is compared with that absolute tolerance on top of rtol.
    _compare(column, frame[column], independent.column(name, 1), frame, atol=4 * np.finfo(float).eps)


@pytest.mark.parametrize("seconds", [30, 60])
def test_class_targets_use_all_classes(sample_project, seconds):
    """Not vacuous: the -1/0/1 targets take more than one class, only those values, NaN on the last bar."""
    frame = _output(sample_project, seconds)
    for column in [c for c in frame.columns if c.startswith("target_") and "_class_" in c]:
        values = frame[column]
        assert set(values.dropna().unique()) <= {-1.0, 0.0, 1.0}, column
        assert {-1.0, 1.0} <= set(values.dropna().unique()), column
        assert np.isnan(values.iloc[-1]), column


def test_vpin_spy_is_the_same_in_every_file(sample_project):
    """vpin is volume-clocked: one definition, read at each bar end, so the 60s file is the 30s file's odd rows."""
    v30 = _output(sample_project, 30)["vpin_spy"].to_numpy()
    v60 = _output(sample_project, 60)["vpin_spy"].to_numpy()
    np.testing.assert_array_equal(v30[1::2], v60)
    assert np.isnan(v30[0]) and not np.isnan(v30[-1])


# ---- naming ------------------------------------------------------------------------------------------

# The example column names of the feature dictionary (seed 001, categories I, II and III), with the targets
# named as docs/semantics.md says ("Naming": single instrument: suffix; cross-asset: none).
SEED_EXAMPLES_30S = [
    "log_mid_price_30s_spy",
    "micro_price_30s_spy",
    "spread_pct_30s_spy",
    "depth_ratio_30s_spy",
    "volume_30s_spy",
    "trade_count_30s_spy",
    "signed_volume_30s_spy",
    "ofi_30s_spy",
    "vwap_deviation_30s_spy",
    "realized_vol_30s_spy",
    "bipower_var_30s_spy",
    "interval_log_return_30s_spy",
    "vpin_spy",
    "basis_mes_spy_30s",
    "basis_mnq_qqq_30s",
    "lagged_corr_spy_mes_1_30s",
    "ofi_spread_spy_mes_30s",
    "vol_hedge_spread_30s",
    "iv_atm_30s_spxw",
    "iv_rr25_30s_spxw",
    "iv_slope_30s_spxw",
    "skew_index_30s_spxw",
    "net_delta_flow_30s_spxw",
    "net_gamma_flow_30s_spxw",
    "net_vega_flow_30s_spxw",
    "option_ofi_30s_spxw",
    "option_spread_pct_vw_30s_spxw",
    "option_vwap_deviation_30s_spxw",
    "iv_rv_spread_30s",
    "gamma_participation_30s",
    "delta_drift_30s",
    "skew_return_interaction_30s",
    "target_next_iv_rv_spread_30s",
    "target_next_window_return_30s_spy",
    "target_next_rv_change_regr_30s_spy",
    "target_next_rv_change_class_30s_spy",
    "target_next_qqq_spy_spread_change_regr_30s",
    "target_next_qqq_spy_spread_change_class_30s",
    "target_next_spy_qqq_vxx_spread_change_regr_30s",
    "target_next_spy_qqq_vxx_spread_change_class_30s",
]
RESPONDERS_1S = [f"resp_{kind}_{h}_1s_{s}" for kind in ("mid", "vwap") for h in (5, 30) for s in ("spy", "qqq", "vxx")]
BASE_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")  # docs/semantics.md, Naming


def _declared() -> tuple[set[str], set[str], dict[str, set[str]]]:
    """Feature and target base names declared in the shipped specs (families expanded), and the instruments
    that items with an explicit ``cross_asset:`` list read."""
    features: set[str] = set()
    targets: set[str] = set()
    cross: dict[str, set[str]] = {}
    for text in shipped_specs().values():
        spec = yaml.safe_load(text)
        for key, names in (("features", features), ("targets", targets)):
            for item in spec.get(key) or []:
                expand = item.get("expand") or {}
                if expand:
                    ((_, values),) = expand.items()
                    expanded = [f"{item['name']}_{v}" for v in values]
                else:
                    expanded = [item["name"]]
                names.update(expanded)
                for name in expanded:
                    if item.get("cross_asset"):
                        cross[name] = set(item["cross_asset"])
    return features, targets, cross


def instruments_read(feature: str, instrument: str | None, cross: dict[str, set[str]]) -> set[str]:
    """The instruments a column reads: its suffix, or those named in a cross-asset base name or declared."""
    if instrument is not None:
        return {instrument}
    return (set(feature.split("_")) & set(INSTRUMENTS)) | cross.get(feature, set())


def parse_column(column: str, names: set[str]) -> list[tuple[str, int | None, str | None]]:
    """Every reading of ``column`` as feature[_{N}s][_instrument] with a declared feature name."""
    tokens = column.split("_")
    readings = []
    for cut in range(1, len(tokens) + 1):
        feature, rest = "_".join(tokens[:cut]), tokens[cut:]
        if feature not in names:
            continue
        interval = instrument = None
        if rest and rest[-1] in INSTRUMENTS:
            instrument = rest.pop()
        if rest and rest[-1].endswith("s") and rest[-1][:-1].isdigit():
            interval = int(rest.pop()[:-1])
        if not rest:
            readings.append((feature, interval, instrument))
    return readings


def compose(feature: str, interval: int | None, instrument: str | None) -> str:
    return feature + (f"_{interval}s" if interval is not None else "") + (f"_{instrument}" if instrument else "")


@pytest.mark.parametrize("seconds", [1, 30, 60])
def test_every_column_parses_back(sample_project, seconds):
    features, targets, cross = _declared()
    frame = sample_project.output(DAY, seconds)
    columns = list(frame.columns)
    assert columns[0] == "ts_event"
    assert len(set(columns)) == len(columns), "duplicate columns"
    parsed = []
    for column in columns[1:]:
        readings = parse_column(column, features | targets)
        assert len(readings) == 1, f"{column!r} parses as {readings} (need exactly one reading)"
        feature, interval, instrument = readings[0]
        assert compose(feature, interval, instrument) == column
        assert BASE_NAME.fullmatch(feature), feature
        # An interval is the file's, except for volume-clocked features, which have none but an instrument.
        if interval is None:
            assert instrument is not None and feature == "vpin", column
        else:
            assert interval == seconds, column
        # A cross-asset column (no suffix) names at least two instruments in its base name, or (the seed's
        # vol_hedge_spread, target_next_spy_qqq_vxx_...) declares them in an explicit cross_asset list.
        if instrument is None:
            assert len(instruments_read(feature, None, cross)) >= 2, column
            assert feature in cross or len(set(feature.split("_")) & set(INSTRUMENTS)) >= 2, column
        parsed.append((feature, interval, instrument))
    # Features first, then targets; the 1s grid carries only the responders.
    kinds = ["target" if f in targets else "feature" for f, _, _ in parsed]
    assert kinds == sorted(kinds), f"a feature after a target: {columns}"
    assert all((f in targets) == f.startswith(("target_", "resp_")) for f, _, _ in parsed)
    if seconds == 1:
        assert set(columns[1:]) == set(RESPONDERS_1S)
    else:
        assert not any(f.startswith("resp_") for f, _, _ in parsed)
        assert len(set(parsed)) == len(parsed)


@pytest.mark.parametrize("seconds", [30, 60])
def test_seed_example_names(sample_project, seconds):
    columns = set(sample_project.output(DAY, seconds).columns)
    expected = {name.replace("_30s", f"_{seconds}s") for name in SEED_EXAMPLES_30S}
    assert sorted(expected - columns) == []
    # The single-asset features exist for every instrument, and vpin without an interval.
    for instrument in SINGLE_ASSET:
        assert f"realized_vol_{seconds}s_{instrument}" in columns
        assert f"vpin_{instrument}" in columns
        assert f"vpin_{seconds}s_{instrument}" not in columns


# ---- a feature reading a target ----------------------------------------------------------------------


LEAKY = """\
spec_version: 1
features:
  - name: leaky_rv
    instruments: [spy]
    formula: realized_vol + target_next_rv_change_regr

  - name: leaky_spy_qqq
    formula: qqq.vwap - spy.target_next_window_return

  - name: leaky_vol_hedge
    cross_asset: [spy, qqq, vxx]
    formula: lag(target_next_spy_qqq_vxx_spread_change_regr, 1)
"""


def test_feature_reading_a_target_is_rejected(tmp_path):
    project = tmp_path / "leaky"
    (project / "specs").mkdir(parents=True)
    for name, text in shipped_specs().items():
        (project / "specs" / name).write_text(text, encoding="utf-8")
    expect(cli("validate", "--project", project), 0)  # the shipped library alone is fine
    (project / "specs" / "leaky.yaml").write_text(LEAKY, encoding="utf-8")
    out = expect(cli("validate", "--project", project), 1)
    for position, feature, target in [
        ("5:29", "leaky_rv", "target_next_rv_change_regr"),
        ("8:25", "leaky_spy_qqq", "target_next_window_return"),
        ("12:18", "leaky_vol_hedge", "target_next_spy_qqq_vxx_spread_change_regr"),
    ]:
        assert (
            f"specs/leaky.yaml:{position}: feature '{feature}' reads target '{target}': targets see the future" in out
        ), out
    assert "hint: features may not depend on targets" in out
    assert out.rstrip().endswith("3 errors in specs"), out
    assert not (project / "build").exists()


# ---- a missing instrument ----------------------------------------------------------------------------


def _reads_mes(column: str) -> bool:
    """mes's own columns (suffix _mes) and the cross-asset columns reading mes (named or declared)."""
    features, targets, cross = _declared()
    ((feature, _, instrument),) = parse_column(column, features | targets)
    return "mes" in instruments_read(feature, instrument, cross)


def test_missing_instrument_gives_nan_columns_and_a_warning(tmp_path, sample_project):
    project = tmp_path / "no_mes"
    (project / "specs").mkdir(parents=True)
    for name, text in shipped_specs().items():
        (project / "specs" / name).write_text(text, encoding="utf-8")
    for symbol in INSTRUMENTS:
        if symbol == "mes":
            (project / "data" / "sample" / "mes").mkdir(parents=True)  # the folder is there, the day's file not
        else:
            (project / "data" / "sample" / symbol).parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(SAMPLE / symbol, project / "data" / "sample" / symbol)
    expect(cli("compile", "--project", project), 0)
    out = expect(cli("run", "--project", project), 0)
    warnings = [line for line in out.splitlines() if "warning" in line.lower()]
    assert any("mes" in line and DAY in line for line in warnings), out
    assert not any("mnq" in line or "spy" in line for line in warnings), out

    for seconds in (1, 30, 60):
        full = sample_project.output(DAY, seconds)
        partial = pd.read_parquet(project / "out" / f"features_{STAMP}_{seconds}s.parquet")
        assert list(partial.columns) == list(full.columns)
        pd.testing.assert_series_equal(partial["ts_event"], full["ts_event"])
        mes_columns = [c for c in full.columns[1:] if _reads_mes(c)]
        if seconds != 1:
            assert {
                f"basis_mes_spy_{seconds}s",
                f"lagged_corr_spy_mes_1_{seconds}s",
                f"ofi_spread_spy_mes_{seconds}s",
                f"realized_vol_{seconds}s_mes",
                "vpin_mes",
            } <= set(mes_columns)
            # Not vacuous: the full run has values in every mes column (depth_ratio aside: OHLCV has no depth).
            with_values = [c for c in mes_columns if not c.startswith("depth_ratio_")]
            assert full[with_values].notna().any().all(), full[with_values].isna().all()
        for column in mes_columns:
            assert partial[column].isna().all(), f"{column} should be all NaN without mes data"
        # Every other column (spy, qqq, vxx, mnq and the cross-asset ones without mes) is the full run's.
        for column in [c for c in full.columns[1:] if not _reads_mes(c)]:
            np.testing.assert_array_equal(partial[column].to_numpy(), full[column].to_numpy(), err_msg=column)
