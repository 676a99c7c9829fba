"""An independent computation of the option flow operators (docs/options.md, "Flows") with pandas, numpy, the
standard library's erfc and the ``lets-be-rational`` package; it imports nothing of fspec.

Inputs are plain frames as the files hold them: quotes (time, expiry, strike, right, bid, ask, bid_size,
ask_size) and trades (time, expiry, strike, right, price, size), times zone-aware, already the session's rows.
The steps, each written out as the docs define it:

- a trade's quote: ``pandas.merge_asof(..., by=contract, allow_exact_matches=False)``, the last quote of its
  contract strictly before it;
- its expiry's forward strictly before it: every contract's last quote before the trade (``searchsorted`` with
  ``side="left"`` per contract), put-call parity at the strike of the smallest |C - P| (ties: lowest strike);
- its greeks: the mid's implied volatility from ``lets_be_rational`` (NaN at or below intrinsic, at or above the
  maximum, without a two-sided quote), Black-76 closed forms: delta = df Phi(d1) (call) or -df Phi(-d1) (put),
  gamma = df phi(d1) / (F sigma sqrt T), vega = df F phi(d1) sqrt T;
- the bar values by ``groupby`` on the bar start: sums 0 for a bar without terms and NaN for a bar whose terms
  are all NaN (``min_count=1``), every column NaN on a day without quotes.
"""

from __future__ import annotations

import math

import lets_be_rational as lbr
import numpy as np
import pandas as pd

YEAR = 365 * 86400.0
KEY = ["expiry", "strike", "right"]


def _phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _Phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def two_sided_mid(bid: np.ndarray, ask: np.ndarray) -> np.ndarray:
    """The mid where both sides are finite and > 0 and bid <= ask, else NaN."""
    bid, ask = np.asarray(bid, dtype=float), np.asarray(ask, dtype=float)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(bid) & np.isfinite(ask) & (bid > 0) & (ask > 0) & (bid <= ask)
    return np.where(ok, (bid + ask) / 2, np.nan)


def _key(frame: pd.DataFrame) -> pd.Series:
    return frame["expiry"].astype(str) + "|" + frame["strike"].astype(str) + "|" + frame["right"].astype(str)


def trade_quotes(quotes: pd.DataFrame, trades: pd.DataFrame) -> pd.DataFrame:
    """The trades (in time order) with bid and ask of their contract's last quote strictly before them."""
    q = quotes.assign(k=_key(quotes))[["time", "k", "bid", "ask"]].sort_values("time", kind="stable")
    t = trades.assign(k=_key(trades), row=np.arange(len(trades))).sort_values("time", kind="stable")
    merged = pd.merge_asof(t, q, on="time", by="k", allow_exact_matches=False, direction="backward")
    return merged.sort_values("row").drop(columns=["k", "row"]).reset_index(drop=True)


def _state(quotes: pd.DataFrame, expiry: object, times: np.ndarray) -> tuple[np.ndarray, dict]:
    """Per strike of the expiry: (call mid, put mid) of the last quotes strictly before each of ``times``."""
    of = quotes[quotes["expiry"] == expiry]
    mids = {}
    for (strike, right), g in of.groupby(["strike", "right"], sort=True):
        at = np.searchsorted(g["time"].to_numpy(dtype="datetime64[ns]").astype(np.int64), times, side="left") - 1
        bid = np.where(at >= 0, g["bid"].to_numpy()[np.maximum(at, 0)], np.nan)
        ask = np.where(at >= 0, g["ask"].to_numpy()[np.maximum(at, 0)], np.nan)
        mids[(strike, right)] = two_sided_mid(bid, ask)
    strikes = np.array(sorted({k for k, r in mids if (k, "C") in mids and (k, "P") in mids}))
    return strikes, mids


def parity_forward(quotes: pd.DataFrame, expiry: object, times: np.ndarray, df: np.ndarray) -> np.ndarray:
    """The expiry's forward from every contract's last quote strictly before each time (ns): F = K* + (C - P)/df."""
    strikes, mids = _state(quotes, expiry, times)
    out = np.full(len(times), np.nan)
    if not len(strikes):
        return out
    call = np.vstack([mids[(k, "C")] for k in strikes])  # (strikes, times)
    put = np.vstack([mids[(k, "P")] for k in strikes])
    gap = np.where(np.isnan(call - put), np.inf, np.abs(call - put))
    best = np.argmin(gap, axis=0)  # the first, i.e. the lowest strike among equal gaps
    cols = np.arange(len(times))
    found = np.isfinite(gap[best, cols])
    return np.where(found, strikes[best] + (call[best, cols] - put[best, cols]) / df, np.nan)


def atm_straddle(quotes: pd.DataFrame, expiry: object, times: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Call mid + put mid at the strike nearest the forward among strikes with both two-sided (ties: lower)."""
    strikes, mids = _state(quotes, expiry, times)
    out = np.full(len(times), np.nan)
    for j in range(len(times)):
        best = math.inf
        for k in strikes:
            c, p = mids[(k, "C")][j], mids[(k, "P")][j]
            if math.isnan(c) or math.isnan(p) or not forward[j] > 0:
                continue
            if abs(k - forward[j]) < best:
                best, out[j] = abs(k - forward[j]), c + p
    return out


def greeks(mid: float, F: float, K: float, T: float, df: float, call: bool) -> tuple[float, float, float, float]:
    """(iv, delta, gamma, vega) of a discounted mid; NaN without a volatility."""
    nan = (math.nan,) * 4
    if not (T > 0 and F > 0 and mid > 0):
        return nan
    price = mid / df
    if price <= max(F - K if call else K - F, 0.0) or price >= (F if call else K):
        return nan
    iv = lbr.implied_volatility_from_a_transformed_rational_guess(price, F, K, T, 1.0 if call else -1.0)
    if not iv > 0:
        return nan
    sd = iv * math.sqrt(T)
    d1 = math.log(F / K) / sd + 0.5 * sd
    delta = df * (_Phi(d1) if call else -_Phi(-d1))
    return iv, delta, df * _phi(d1) / (F * sd), df * F * _phi(d1) * math.sqrt(T)


def enriched_trades(
    quotes: pd.DataFrame, trades: pd.DataFrame, settle: dict[str, pd.Timestamp], rate: float
) -> pd.DataFrame:
    """Each trade with its quote, sign, T, df, forward and greeks, all from the chain strictly before it."""
    t = trade_quotes(quotes, trades)
    mid = two_sided_mid(t["bid"], t["ask"])
    t["sign"] = np.where(np.isnan(mid), 0.0, np.sign(t["price"].to_numpy() - np.nan_to_num(mid)))
    t["settle"] = t["expiry"].astype(str).map(settle)
    t["T"] = (t["settle"] - t["time"]).dt.total_seconds() / YEAR
    t["df"] = np.exp(-rate * t["T"])
    t["F"] = np.nan
    ns = t["time"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    for expiry, rows in t.groupby("expiry").groups.items():
        at = t.index.get_indexer(rows)
        t.loc[rows, "F"] = parity_forward(quotes, expiry, ns[at], t["df"].to_numpy()[at])
    t.loc[t["T"] <= 0, "F"] = np.nan
    values = [
        greeks(m, F, K, T, df, r == "C")
        for m, F, K, T, df, r in zip(mid, t["F"], t["strike"], t["T"], t["df"], t["right"], strict=True)
    ]
    t[["iv", "delta", "gamma", "vega"]] = np.array(values, dtype=float).reshape(-1, 4)
    t["mid"] = mid
    return t


def _bar(frame: pd.DataFrame, grid: pd.DatetimeIndex, seconds: int) -> pd.Series:
    return frame["time"].dt.floor(f"{seconds}s").where(lambda s: s.isin(grid))


def flows(
    quotes: pd.DataFrame,
    trades: pd.DataFrame,
    grid: pd.DatetimeIndex,
    seconds: int,
    settle: dict[str, pd.Timestamp],
    rate: float,
    multiplier: float,
    min_minutes: float,
) -> pd.DataFrame:
    """The six flow columns on ``grid`` (bar starts, zone-aware), by their documented definitions."""
    if quotes.empty:  # trades only: nothing signs or values them, no bar's value is known
        names = ("net_delta_flow", "net_gamma_flow", "net_vega_flow", "option_spread_pct_vw", "option_ofi")
        return pd.DataFrame({n: np.nan for n in (*names, "chain_forward", "option_vwap_deviation")}, index=grid)
    t = enriched_trades(quotes, trades, settle, rate)
    t["bar"] = _bar(t, grid, seconds)
    out = pd.DataFrame(index=grid)
    for greek in ("delta", "gamma", "vega"):
        term = t["sign"] * t["size"] * t[greek] * multiplier  # NaN without a greek (or a price): skipped by sum
        # a bar with trades none of which is valued: NaN (min_count); a bar without trades: 0 (the reindex)
        out[f"net_{greek}_flow"] = term.groupby(t["bar"]).sum(min_count=1).reindex(grid, fill_value=0.0)
    spread = (t["ask"] - t["bid"]) / t["mid"]
    use = spread.notna() & t["size"].notna()
    num = (spread * t["size"])[use].groupby(t["bar"][use]).sum()
    den = t["size"][use].groupby(t["bar"][use]).sum()
    out["option_spread_pct_vw"] = (num / den).reindex(grid)
    out["option_ofi"] = ofi(quotes, grid, seconds)
    # the straddle and the chosen expiry at each bar end
    ends = grid + pd.Timedelta(seconds=seconds)
    ends_ns = ends.as_unit("ns").asi8  # UTC ns
    chosen = []
    for end in ends:
        ahead = sorted(e for e, s in settle.items() if s > end and (s - end).total_seconds() >= min_minutes * 60)
        chosen.append(ahead[0] if ahead else None)
    straddle = np.full(len(grid), np.nan)
    forward = np.full(len(grid), np.nan)
    for expiry in {c for c in chosen if c is not None}:
        cols = np.array([c == expiry for c in chosen])
        T = (settle[expiry] - ends[cols]).total_seconds().to_numpy() / YEAR
        match = [e for e in quotes["expiry"].unique() if str(e) == expiry]
        if not match:
            continue
        F = parity_forward(quotes, match[0], ends_ns[cols], np.exp(-rate * T))
        forward[cols] = F
        straddle[cols] = atm_straddle(quotes, match[0], ends_ns[cols], F)
    out["chain_forward"] = forward
    mine = t["bar"].map(dict(zip(grid, chosen, strict=True))) == t["expiry"].astype(str)
    m = t[mine]
    vwap = (m["price"] * m["size"]).groupby(m["bar"]).sum() / m["size"].groupby(m["bar"]).sum()
    out["option_vwap_deviation"] = vwap.reindex(grid).to_numpy() / straddle - 1.0
    return out


def ofi(quotes: pd.DataFrame, grid: pd.DatetimeIndex, seconds: int) -> pd.Series:
    """Per contract (in time order), diff(bid_size) - diff(ask_size) of every quote but its first, summed over the
    bar (NaN skipped): 0 for a bar without such a quote, NaN for a bar whose changes are all NaN."""
    q = quotes.sort_values("time", kind="stable")
    by = q.groupby(KEY, sort=False)
    change = by["bid_size"].diff() - by["ask_size"].diff()
    later = by.cumcount() > 0  # a contract's first quote is no change
    bar = _bar(q, grid, seconds)
    return change[later].groupby(bar[later]).sum(min_count=1).reindex(grid, fill_value=0.0)
