"""The ten category II features of an option chain at 30 s and 60 s with pandas and numpy: the peer of
``benchmarks/chain.py``, run as its own program (``python benchmarks/chain_pandas.py ROOT``), imports nothing of
fspec.

The definitions are docs/options.md's ("Chains" and "Flows"), written the way a pandas user would, and tuned where
the quotes' 11.7M rows make pandas' generic path slow: contracts numbered by one hashed ``groupby.ngroup`` and
their rows grouped by a stable radix sort of 16-bit numbers, each contract's last quote strictly before a time by
``searchsorted(side="left")``, snapshots as (contract x bar end) matrices, the forward from put-call parity at the
strike of the smallest |C - P|, implied volatilities by a vectorised bisection and Newton on the out-of-the-money
price (the time value), the normal distribution from Cody's erfc in numpy, the smile reducers per bar end, the
book's changes as differences over the rows sorted by contract and summed per bar by ``bincount`` (bars from
integer nanoseconds), the trades' flows by ``groupby``.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pandas as pd

NY = "America/New_York"
YEAR = 365 * 86400.0
SQRT2 = math.sqrt(2.0)

# W. J. Cody's erfc (Math. Comp. 23, 1969; CALERF), his published coefficients, vectorised
_A = (3.1611237438705656, 113.864154151050156, 377.485237685302021, 3209.37758913846947, 0.185777706184603153)
_B = (23.6012909523441209, 244.024637934444173, 1282.61652607737228, 2844.23683343917062)
_C = (0.564188496988670089, 8.88314979438837594, 66.1191906371416295, 298.635138197400131, 881.95222124176909,
      1712.04761263407058, 2051.07837782607147, 1230.33935479799725, 2.15311535474403846e-8)  # fmt: skip
_D = (15.7449261107098347, 117.693950891312499, 537.181101862009858, 1621.38957456669019, 3290.79923573345963,
      4362.61909014324716, 3439.36767414372164, 1230.33935480374942)  # fmt: skip
_P = (0.305326634961232344, 0.360344899949804439, 0.125781726111229246, 0.0160837851487422766,
      6.58749161529837803e-4, 0.0163153871373020978)  # fmt: skip
_Q = (2.56852019228982242, 1.87295284992346047, 0.527905102951428412, 0.0605183413124413191, 0.00233520497626869185)


def erfc(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    y = np.abs(x)
    out = np.empty_like(y)
    small = y <= 0.46875
    mid = (y > 0.46875) & (y <= 4.0)
    big = y > 4.0
    ys = y[small] ** 2
    num, den = _A[4] * ys, ys.copy()
    for i in range(3):
        num, den = (num + _A[i]) * ys, (den + _B[i]) * ys
    out[small] = 1.0 - y[small] * (num + _A[3]) / (den + _B[3])
    ym = y[mid]
    num, den = _C[8] * ym, ym.copy()
    for i in range(7):
        num, den = (num + _C[i]) * ym, (den + _D[i]) * ym
    r = (num + _C[7]) / (den + _D[7])
    sq = np.trunc(ym * 16.0) / 16.0
    out[mid] = np.exp(-sq * sq) * np.exp(-(ym - sq) * (ym + sq)) * r
    yb = y[big]
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        inv = 1.0 / (yb * yb)
        num, den = _P[5] * inv, inv.copy()
        for i in range(4):
            num, den = (num + _P[i]) * inv, (den + _Q[i]) * inv
        r = (1.0 / math.sqrt(math.pi) - inv * (num + _P[4]) / (den + _Q[4])) / yb
        sq = np.trunc(yb * 16.0) / 16.0
        out[big] = np.where(yb < 26.543, np.exp(-sq * sq) * np.exp(-(yb - sq) * (yb + sq)) * r, 0.0)
    out = np.where(x < 0, 2.0 - out, out)
    return np.where(np.isnan(x), np.nan, out)


def Phi(x: np.ndarray) -> np.ndarray:
    return 0.5 * erfc(-np.asarray(x) / SQRT2)


def phi(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * np.asarray(x) ** 2) / math.sqrt(2 * math.pi)


def otm_price(F: np.ndarray, K: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Undiscounted Black price of the out-of-the-money option at K (call above F, put below), total vol s."""
    d1 = np.log(F / K) / s + 0.5 * s
    d2 = d1 - s
    call = F * Phi(d1) - K * Phi(d2)
    put = K * Phi(-d2) - F * Phi(-d1)
    return np.where(K >= F, call, put)


def implied_vol(mid: np.ndarray, F: np.ndarray, K: np.ndarray, T: np.ndarray, df: np.ndarray, call: np.ndarray):
    """Black-76 implied volatility of each discounted mid (NaN: no volatility), from its time value."""
    with np.errstate(invalid="ignore", divide="ignore"):
        price = mid / df
        intrinsic = np.maximum(np.where(call, F - K, K - F), 0.0)
        cap = np.where(call, F, K)
        ok = (T > 0) & (F > 0) & (K > 0) & (price > intrinsic) & (price < cap) & np.isfinite(price)
        tv = np.where(ok, price - intrinsic, np.nan)  # = the OTM option's price at K (put-call parity)
        f, k, t = np.where(ok, F, 1.0), np.where(ok, K, 1.0), np.where(ok, T, 1.0)
        lo, hi = np.full(len(mid), 1e-8), np.full(len(mid), 30.0)  # total volatility sigma sqrt(T)
        for _ in range(60):  # bisection in log total volatility
            m = np.sqrt(lo * hi)
            above = otm_price(f, k, m) > tv
            hi, lo = np.where(above, m, hi), np.where(above, lo, m)
        s = np.sqrt(lo * hi)
        for _ in range(3):  # Newton to the last digits: d price / d s = sqrt(FK) phi(d1) ... = F phi(d1)
            d1 = np.log(f / k) / s + 0.5 * s
            s = s - (otm_price(f, k, s) - tv) / (f * phi(d1))
        sigma = s / np.sqrt(t)
    return np.where(ok & (sigma > 0), sigma, np.nan)


def two_sided_mid(bid: np.ndarray, ask: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(bid) & np.isfinite(ask) & (bid > 0) & (ask > 0) & (bid <= ask)
    return np.where(ok, 0.5 * (bid + ask), np.nan)


class Chain:
    """The quotes grouped by contract (each contract's rows in time order) and the contract table."""

    def __init__(self, quotes: pd.DataFrame, settle: dict) -> None:
        quotes = quotes.assign(put=quotes["right"] != "C")
        # Contracts numbered by one hashed groupby over (expiry, strike, call), in the table's order: by expiry,
        # then strike, the put before the call. The group keys in that order are the contract table.
        by = quotes.groupby([quotes["expiry"], quotes["strike"], (~quotes["put"]).rename("call")], sort=True)
        quotes["contract"] = by.ngroup().to_numpy()
        keys = by.size().index
        table = pd.DataFrame(
            {"expiry": keys.get_level_values(0), "strike": keys.get_level_values(1), "put": ~keys.get_level_values(2)}
        )
        table["contract"] = np.arange(len(table))
        number = quotes["contract"].to_numpy()
        # A stable sort of 16-bit keys is numpy's radix sort (7x faster here than a stable sort of int64 keys).
        order = np.argsort(number.astype(np.int16) if len(table) < 2**15 else number, kind="stable")
        self.contract = quotes["contract"].to_numpy()[order]
        self.ts = quotes["ns"].to_numpy()[order]
        self.bid, self.ask = quotes["bid"].to_numpy()[order], quotes["ask"].to_numpy()[order]
        self.starts = np.searchsorted(self.contract, np.arange(len(table) + 1))
        self.order = order
        self.table = table
        self.expiries = sorted(table["expiry"].unique())
        self.settle_ns = np.array([settle[str(e)] for e in self.expiries], dtype=np.int64)
        self.quotes = quotes

    def state(self, contracts: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(contracts x times) bid and ask of each contract's last quote strictly before each time."""
        bid = np.full((len(contracts), len(times)), np.nan)
        ask = np.full((len(contracts), len(times)), np.nan)
        for r, c in enumerate(contracts):
            lo, hi = self.starts[c], self.starts[c + 1]
            at = np.searchsorted(self.ts[lo:hi], times, side="left") - 1
            has = at >= 0
            bid[r, has], ask[r, has] = self.bid[lo:hi][at[has]], self.ask[lo:hi][at[has]]
        return bid, ask

    def of_expiry(self, e: int) -> pd.DataFrame:
        return self.table[self.table["expiry"] == self.expiries[e]]

    def forward(self, e: int, times: np.ndarray, df: np.ndarray) -> np.ndarray:
        """Parity forward of expiry e strictly before each time: F = K* + (C - P)/df, K* the smallest |C - P|."""
        rows = self.of_expiry(e)
        both = rows.groupby("strike")["put"].nunique()
        strikes = np.array(sorted(both[both == 2].index))
        out = np.full(len(times), np.nan)
        if not len(strikes):
            return out
        ids = rows.set_index(["strike", "put"])["contract"]
        cb, ca = self.state(ids.loc[[(k, False) for k in strikes]].to_numpy(), times)
        pb, pa = self.state(ids.loc[[(k, True) for k in strikes]].to_numpy(), times)
        c, p = two_sided_mid(cb, ca), two_sided_mid(pb, pa)
        gap = np.where(np.isnan(c - p), np.inf, np.abs(c - p))
        best = np.argmin(gap, axis=0)
        cols = np.arange(len(times))
        return np.where(np.isfinite(gap[best, cols]), strikes[best] + (c[best, cols] - p[best, cols]) / df, np.nan)


def chosen_expiry(chain: Chain, ends: np.ndarray, minutes: float) -> np.ndarray:
    ok = (chain.settle_ns[:, None] >= ends[None, :] + int(minutes * 60e9)) & (chain.settle_ns[:, None] > ends[None, :])
    return np.where(ok.any(axis=0), np.argmax(ok, axis=0), -1)


def atm(strike, put, iv, F) -> float:
    lo = np.flatnonzero(put & (strike < F) & (iv > 0))
    hi = np.flatnonzero(~put & (strike >= F) & (iv > 0))
    if not len(hi):
        return np.nan
    h = hi[np.argmin(strike[hi])]
    if strike[h] == F:
        return iv[h]
    if not len(lo):
        return np.nan
    low = lo[np.argmax(strike[lo])]
    w = (math.log(F) - math.log(strike[low])) / (math.log(strike[h]) - math.log(strike[low]))
    return math.sqrt((1 - w) * iv[low] ** 2 + w * iv[h] ** 2)


def at_delta(strike, put, iv, delta, target) -> float:
    want = abs(target)
    pick = (put == (target < 0)) & (iv > 0) & np.isfinite(delta)
    idx = np.flatnonzero(pick)
    idx = idx if target > 0 else idx[::-1]  # in to out of the money
    d, v = np.abs(delta[idx]), iv[idx]
    for j in range(len(idx)):
        if d[j] == want:
            return v[j]
        if j and d[j - 1] > want > d[j]:
            w = (d[j - 1] - want) / (d[j - 1] - d[j])
            return math.sqrt((1 - w) * v[j - 1] ** 2 + w * v[j] ** 2)
    return np.nan


def smile(chain: Chain, ends: np.ndarray, rate: float) -> tuple[pd.DataFrame, dict]:
    """iv_atm, iv_rr25, iv_slope, skew_index at each bar end, and (expiry, straddle) for the vwap deviation."""
    chosen = chosen_expiry(chain, ends, 30.0)
    out = {n: np.full(len(ends), np.nan) for n in ("iv_atm", "iv_rr25", "iv_slope", "skew_index")}
    straddle = np.full(len(ends), np.nan)
    for e in np.unique(chosen[chosen >= 0]):
        cols = np.flatnonzero(chosen == e)
        t_end = ends[cols]
        T = (chain.settle_ns[e] - t_end) / 1e9 / YEAR
        df = np.exp(-rate * T)
        F = chain.forward(e, t_end, df)
        rows = chain.of_expiry(e)
        bid, ask = chain.state(rows["contract"].to_numpy(), t_end)
        mid = two_sided_mid(bid, ask)
        K, put = rows["strike"].to_numpy()[:, None], rows["put"].to_numpy()[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            mid_iv = np.where(np.isnan(mid), np.nan, mid)
            iv = implied_vol(
                mid_iv.ravel(), np.broadcast_to(F, mid.shape).ravel(), np.broadcast_to(K, mid.shape).ravel(),
                np.broadcast_to(T, mid.shape).ravel(), np.broadcast_to(df, mid.shape).ravel(),
                np.broadcast_to(~put, mid.shape).ravel(),
            ).reshape(mid.shape)  # fmt: skip
            sd = iv * np.sqrt(T)
            d1 = np.log(F / K) / sd + 0.5 * sd
            delta = np.where(put, -Phi(-d1), Phi(d1))
        k, p = rows["strike"].to_numpy(), rows["put"].to_numpy()
        pairs = [(i, i + 1) for i in range(len(k) - 1) if p[i] and not p[i + 1] and k[i] == k[i + 1]]
        for j, b in enumerate(cols):
            v, dl = iv[:, j], delta[:, j]
            out["iv_atm"][b] = atm(k, p, v, F[j]) if F[j] > 0 else np.nan
            at = {x: at_delta(k, p, v, dl, x) for x in (0.25, -0.25, -0.10, -0.40, 0.10)}
            out["iv_rr25"][b] = at[0.25] - at[-0.25]
            out["iv_slope"][b] = at[-0.10] - at[-0.40]
            out["skew_index"][b] = at[-0.10] - at[0.10]
            best = math.inf
            for i, c in pairs:
                if np.isnan(mid[i, j]) or np.isnan(mid[c, j]) or not F[j] > 0:
                    continue
                if abs(k[i] - F[j]) < best:
                    best, straddle[b] = abs(k[i] - F[j]), mid[i, j] + mid[c, j]
    return pd.DataFrame(out), {"chosen": chosen, "straddle": straddle}


def trades_enriched(chain: Chain, trades: pd.DataFrame, rate: float) -> pd.DataFrame:
    """Each trade's quote, sign, greeks from the chain strictly before it."""
    t = trades.assign(put=trades["right"] != "C").merge(chain.table, on=["expiry", "strike", "put"], how="left")
    t["bid"], t["ask"], t["F"] = np.nan, np.nan, np.nan
    for c, g in t.groupby("contract"):
        b, a = chain.state(np.array([int(c)]), g["ns"].to_numpy())
        t.loc[g.index, "bid"], t.loc[g.index, "ask"] = b[0], a[0]
    t["e"] = t["expiry"].map({e: i for i, e in enumerate(chain.expiries)})
    t["T"] = (chain.settle_ns[t["e"].to_numpy()] - t["ns"].to_numpy()) / 1e9 / YEAR
    t["df"] = np.exp(-rate * t["T"])
    for e, g in t.groupby("e"):
        t.loc[g.index, "F"] = chain.forward(int(e), g["ns"].to_numpy(), g["df"].to_numpy())
    t.loc[t["T"] <= 0, "F"] = np.nan
    mid = two_sided_mid(t["bid"].to_numpy(), t["ask"].to_numpy())
    price = t["price"].to_numpy()
    t["sign"] = np.where(np.isnan(mid), 0.0, np.sign(price - np.nan_to_num(mid)))
    F, K, T, df = (t[c].to_numpy() for c in ("F", "strike", "T", "df"))
    call = ~t["put"].to_numpy()
    iv = implied_vol(mid, F, K, T, df, call)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = iv * np.sqrt(T)
        d1 = np.log(F / K) / sd + 0.5 * sd
        t["delta"] = df * np.where(call, Phi(d1), -Phi(-d1))
        t["gamma"] = df * phi(d1) / (F * sd)
        t["vega"] = df * F * phi(d1) * np.sqrt(T)
    t["mid"] = mid
    return t


def features(chain: Chain, trades: pd.DataFrame, quotes: pd.DataFrame, grid: pd.DatetimeIndex, seconds: int,
             rate: float, multiplier: float) -> pd.DataFrame:  # fmt: skip
    ends = (grid + pd.Timedelta(seconds=seconds)).as_unit("ns").asi8
    out, vw = smile(chain, ends, rate)
    out.index = grid
    t = trades
    bar = pd.Series(t["time"].dt.floor(f"{seconds}s").to_numpy(), index=t.index)
    for greek in ("delta", "gamma", "vega"):  # 0 for a bar without trades, NaN for one whose trades none is valued
        term = t["sign"] * t["size"] * t[greek] * multiplier
        out[f"net_{greek}_flow"] = term.groupby(bar).sum(min_count=1).reindex(grid, fill_value=0.0)
    later = quotes["later"].to_numpy()  # a contract's first quote is no change
    quote_bar = (quotes["ns"].to_numpy()[later] - grid[0].value) // (seconds * 10**9)
    out["option_ofi"] = bar_sums(quotes["ofi_change"].to_numpy()[later], quote_bar, len(grid))
    spread = (t["ask"] - t["bid"]) / t["mid"]
    use = spread.notna() & t["size"].notna()
    out["option_spread_pct_vw"] = ((spread * t["size"])[use].groupby(bar[use]).sum() / t["size"][use].groupby(
        bar[use]).sum()).reindex(grid)  # fmt: skip
    chosen = pd.Series(vw["chosen"], index=grid)
    mine = t["e"].to_numpy() == chosen.reindex(bar.to_numpy()).to_numpy()
    m = t[mine]
    vwap = (m["price"] * m["size"]).groupby(bar[mine]).sum() / m["size"].groupby(bar[mine]).sum()
    out["option_vwap_deviation"] = vwap.reindex(grid).to_numpy() / vw["straddle"] - 1.0
    return out


def book_changes(chain: Chain, bid_size: np.ndarray, ask_size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each quote's bid size change minus its ask size change since its contract's previous quote, and whether
    it has a previous quote, in the quotes' own order: differences over the rows sorted by contract (a groupby
    diff, without the groupby), put back in place."""
    bid, ask = bid_size[chain.order], ask_size[chain.order]
    change = np.empty(len(bid))
    change[1:] = (bid[1:] - bid[:-1]) - (ask[1:] - ask[:-1])
    later = np.ones(len(bid), dtype=bool)
    later[chain.starts[:-1][np.diff(chain.starts) > 0]] = False  # each contract's first quote
    change[~later] = np.nan
    in_place, later_in_place = np.empty_like(change), np.empty_like(later)
    in_place[chain.order], later_in_place[chain.order] = change, later
    return in_place, later_in_place


def bar_sums(values: np.ndarray, bar: np.ndarray, bars: int) -> np.ndarray:
    """groupby(bar).sum(min_count=1).reindex(range(bars), fill_value=0) by bincount, in the rows' order: 0 for a
    bar without rows, NaN for a bar whose values are all NaN."""
    valued = ~np.isnan(values)
    sums = np.bincount(bar[valued], weights=values[valued], minlength=bars)
    rows, counted = np.bincount(bar, minlength=bars), np.bincount(bar[valued], minlength=bars)
    return np.where((rows > 0) & (counted == 0), np.nan, sums)


def main(root: str, day: str, rate: float, multiplier: float) -> None:
    stamp = day.replace("-", "")
    quotes = pd.read_parquet(f"{root}/data/spxw/{stamp}_quotes.parquet")
    trades = pd.read_parquet(f"{root}/data/spxw/{stamp}_option_trades.parquet")
    open_, close = pd.Timestamp(f"{day} 09:30", tz=NY), pd.Timestamp(f"{day} 16:00", tz=NY)
    quotes = quotes[(quotes["time"] >= open_) & (quotes["time"] < close)].reset_index(drop=True)
    trades = trades[(trades["time"] >= open_) & (trades["time"] < close)].reset_index(drop=True)
    quotes["ns"] = quotes["time"].dt.as_unit("ns").astype("int64")
    trades["ns"] = trades["time"].dt.as_unit("ns").astype("int64")
    settle = {str(e): pd.Timestamp(f"{e} 16:00", tz=NY).value for e in quotes["expiry"].unique()}
    chain = Chain(quotes, settle)
    q = chain.quotes
    q["ofi_change"], q["later"] = book_changes(chain, q["bid_size"].to_numpy(), q["ask_size"].to_numpy())
    enriched = trades_enriched(chain, trades, rate)
    for seconds in (30, 60):
        grid = pd.date_range(open_, close, freq=f"{seconds}s", inclusive="left")
        out = features(chain, enriched, q, grid, seconds, rate, multiplier)
        out.columns = [f"{c}_{seconds}s_spxw" for c in out.columns]
        out.index.name = "ts_event"
        out.reset_index().to_parquet(f"{root}/out_pandas_{seconds}s.parquet")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "2013-10-07", 0.001, 100.0)
