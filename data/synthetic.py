"""Generate SYNTHETIC QQQ, VXX, MES and MNQ sample data for 2013-10-07.

None of the files written here is real market data. They exist only so that
cross-asset features (basis, lagged correlations, spreads between instruments)
can be exercised next to the one real instrument in the bundled sample, SPY.

Every synthetic price path is driven by SPY's REAL 1-second mid path
(``(bid_close + ask_close) / 2`` from ``data/sample/spy/20131007_quotes_1s.parquet``,
forward-filled over seconds without a quote bar) plus seeded random noise:

* ``qqq`` (ETF): log price = log(0.47 * SPY mid at 09:00) + 1.1 * SPY log move
  + idiosyncratic random walk; trades and 1-second quote bars in exactly the
  schema of the SPY files.
* ``vxx`` (ETF): log price = log(15.00) - 3.0 * SPY log move + idiosyncratic
  random walk; same schema, about 1 trade per second.
* ``mes`` (micro future): 1-second OHLCV bars, price = 10 * SPY mid + basis.
* ``mnq`` (micro future): 1-second OHLCV bars, price = 40 * QQQ fair price + basis.

The basis of each future is a slowly mean-reverting Ornstein-Uhlenbeck process
of a few index points. Everything covers 09:00:00 to 16:30:00 New York time
(bars and trades stamped 09:00:00 up to 16:29:59.999).

Usage (from the repository root)::

    python data/synthetic.py

The output is byte-for-byte the same on every run (fixed seeds, numpy
``Generator``). See ``data/README.md`` for the description of the files.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from prepare_sample import write_parquet  # the same file layout as the real sample (run as a script)

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = REPO_ROOT / "data" / "sample"
SPY_QUOTES = SAMPLE_DIR / "spy" / "20131007_quotes_1s.parquet"

DATE = pd.Timestamp("2013-10-07")
TZ = "America/New_York"
SEED = 20131007

START = pd.Timedelta("09:00:00")  # first second written (New York time)
N_SECONDS = 27_000  # 09:00:00 .. 16:29:59, one-second bars
REGULAR_OPEN = 1_800  # 09:30:00, seconds after START
REGULAR_CLOSE = 25_200  # 16:00:00, seconds after START
SUB = 10  # sub-steps per second (100 ms) for intra-second quote paths

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

QUOTE_COLUMNS = [
    "bid_open",
    "bid_high",
    "bid_low",
    "bid_close",
    "last_bid_size",
    "ask_open",
    "ask_high",
    "ask_low",
    "ask_close",
    "last_ask_size",
]


@dataclass(frozen=True)
class EtfSpec:
    """Parameters of one synthetic ETF (trades + 1-second quote bars)."""

    name: str
    seed_key: int
    beta: float  # loading on SPY's 1-second log mid returns
    idio_sd: float  # sd of the idiosyncratic log random walk per second
    spy_ratio: float | None  # start price = spy_ratio * SPY mid at 09:00, or ...
    fixed_start: float | None  # ... a fixed start price (dollars)
    trade_rate: tuple[float, float, float]  # mean trades/s: pre-open, regular, after close
    depth_median: float  # median of (bid size + ask size), shares
    wide_on: float  # P(1-tick -> 2-tick spread) per second, regular session
    wide_off: float  # P(2-tick -> 1-tick spread) per second
    quote_keep: tuple[float, float]  # P(row kept | no price change): regular, outside
    sweep_prob: float  # P(an arrival prints as several same-millisecond trades)
    lulls: tuple[tuple[str, str], ...]  # [start, end) New York times with no trades
    exchanges: tuple[str, ...]
    exchange_weights: tuple[float, ...]

    def start_price(self, spy_mid0: float) -> float:
        """Price at 09:00:00.0 from SPY's mid at that instant."""
        if self.fixed_start is not None:
            return self.fixed_start
        assert self.spy_ratio is not None
        return self.spy_ratio * spy_mid0


@dataclass(frozen=True)
class FutureSpec:
    """Parameters of one synthetic micro future (1-second OHLCV bars)."""

    name: str
    seed_key: int
    underlying: str  # "spy" or "qqq": whose fair price is scaled
    scale: float  # futures index points per ETF dollar
    basis_mean: float  # index points
    basis_sd: float  # stationary sd of the basis, index points
    basis_half_life: float  # seconds
    busy_fraction: float  # target share of seconds with at least one trade
    offhours_activity: float  # activity multiplier before 09:30 and from 16:00
    lulls: tuple[tuple[str, str], ...]


TICK_ETF = 100  # price grid: 1/100 dollar
TICK_FUT = 4  # price grid: 1/4 index point

EXCHANGES = ("Q", "P", "Z", "D", "K", "T", "Y", "B")
EXCHANGE_WEIGHTS = (0.24, 0.22, 0.17, 0.15, 0.08, 0.06, 0.04, 0.04)

QQQ = EtfSpec(
    name="qqq",
    seed_key=1,
    beta=1.1,
    idio_sd=2.8e-5,
    spy_ratio=0.47,
    fixed_start=None,
    trade_rate=(0.4, 7.0, 1.5),
    depth_median=12_000.0,
    wide_on=0.01,
    wide_off=0.25,
    quote_keep=(0.85, 0.35),
    sweep_prob=0.2,
    lulls=(("12:31:10", "12:33:10"), ("14:05:40", "14:06:50")),
    exchanges=EXCHANGES,
    exchange_weights=EXCHANGE_WEIGHTS,
)
VXX = EtfSpec(
    name="vxx",
    seed_key=2,
    beta=-3.0,
    idio_sd=1.0e-4,
    spy_ratio=None,
    fixed_start=15.00,
    trade_rate=(0.05, 1.0, 0.2),
    depth_median=3_000.0,
    wide_on=0.02,
    wide_off=0.25,
    quote_keep=(0.6, 0.25),
    sweep_prob=0.15,
    lulls=(("11:58:20", "12:01:05"), ("13:20:00", "13:21:00")),
    exchanges=EXCHANGES,
    exchange_weights=EXCHANGE_WEIGHTS,
)
MES = FutureSpec(
    name="mes",
    seed_key=3,
    underlying="spy",
    scale=10.0,
    basis_mean=-2.5,
    basis_sd=0.75,
    basis_half_life=900.0,
    busy_fraction=0.7,
    offhours_activity=0.6,
    lulls=(("12:44:50", "12:46:10"),),
)
MNQ = FutureSpec(
    name="mnq",
    seed_key=4,
    underlying="qqq",
    scale=40.0,
    basis_mean=-4.0,
    basis_sd=2.0,
    basis_half_life=900.0,
    busy_fraction=0.7,
    offhours_activity=0.6,
    lulls=(("13:02:05", "13:03:35"),),
)


# --------------------------------------------------------------------------- helpers


def rng_for(key: int) -> np.random.Generator:
    """Independent, reproducible random stream for one component."""
    return np.random.default_rng([SEED, key])


def second_of(hhmmss: str) -> int:
    """Seconds after 09:00:00 of a New York wall-clock time ``HH:MM:SS``."""
    return int((pd.Timedelta(hhmmss) - START).total_seconds())


def lull_mask(lulls: tuple[tuple[str, str], ...]) -> BoolArray:
    """True for seconds inside any ``[start, end)`` lull."""
    mask = np.zeros(N_SECONDS, dtype=bool)
    for start, end in lulls:
        mask[second_of(start) : second_of(end)] = True
    return mask


def regular_mask() -> BoolArray:
    """True for seconds in the regular session, 09:30 <= t < 16:00."""
    s = np.arange(N_SECONDS)
    return (s >= REGULAR_OPEN) & (s < REGULAR_CLOSE)


def to_ny_time(ns_after_start: IntArray) -> pd.Series:
    """Nanoseconds after 09:00:00 New York time to tz-aware ns timestamps."""
    naive = DATE + START + pd.to_timedelta(ns_after_start, unit="ns")
    return pd.Series(naive.astype("datetime64[ns]").tz_localize(TZ), name="time")


def load_spy_log_mid() -> FloatArray:
    """SPY log mid at the close of every second 08:59:59 .. 16:29:59 (N_SECONDS + 1).

    The mid of a 1-second quote bar is ``(bid_close + ask_close) / 2``; seconds
    without a bar keep the previous mid.
    """
    quotes = pd.read_parquet(SPY_QUOTES, columns=["time", "bid_close", "ask_close"])
    mid = pd.Series(
        ((quotes["bid_close"] + quotes["ask_close"]) / 2.0).to_numpy(),
        index=pd.DatetimeIndex(quotes["time"]),
    )
    grid = pd.date_range(
        (DATE + START - pd.Timedelta(seconds=1)).tz_localize(TZ),
        periods=N_SECONDS + 1,
        freq="s",
    )
    per_second = mid.groupby(level=0).last()
    aligned = per_second.reindex(per_second.index.union(grid)).ffill().reindex(grid)
    if aligned.isna().any():
        raise ValueError("SPY mid is missing before 09:00")
    return np.log(aligned.to_numpy(dtype=np.float64))


def spy_substep_path(spy_log_mid: FloatArray) -> FloatArray:
    """SPY log mid on the 100 ms grid.

    Within second ``s`` the mid jumps from its previous value to its value at the
    close of ``s`` at a random sub-step, so the close of every second is exact.
    """
    rng = rng_for(0)
    jump_at = rng.integers(0, SUB, size=N_SECONDS)
    sub = np.arange(SUB)[None, :]
    before, after = spy_log_mid[:-1, None], spy_log_mid[1:, None]
    return np.where(sub < jump_at[:, None], before, after).reshape(-1)


def activity(rng: np.random.Generator, log_price: FloatArray) -> FloatArray:
    """Per-second trading activity with mean 1 over the regular session.

    U-shaped intraday profile x a persistent log-AR(1) burst factor x a factor
    growing with the size of the driving price's move in that second.
    ``log_price`` holds N_SECONDS + 1 closes (the first is the second before 09:00).
    """
    s = np.arange(N_SECONDS, dtype=np.float64)
    u = s - REGULAR_OPEN
    profile = 1.0 + 1.5 * np.exp(-np.clip(u, 0, None) / 1_200.0)
    profile += 0.8 * np.exp(-np.clip(REGULAR_CLOSE - s, 0, None) / 900.0)
    phi, stationary_sd = 0.97, 0.6
    shocks = rng.normal(0.0, stationary_sd * np.sqrt(1 - phi**2), size=N_SECONDS)
    log_burst = np.empty(N_SECONDS)
    log_burst[0] = rng.normal(0.0, stationary_sd)
    for i in range(1, N_SECONDS):
        log_burst[i] = phi * log_burst[i - 1] + shocks[i]
    move = np.abs(np.diff(log_price))
    move_factor = 1.0 + move / move.std()
    level = profile * np.exp(log_burst) * move_factor
    return level / level[regular_mask()].mean()


def ou_path(rng: np.random.Generator, n: int, dt: float, mean: float, sd: float, half_life: float) -> FloatArray:
    """Exact discretisation of a stationary Ornstein-Uhlenbeck path, started at ``mean``."""
    decay = np.exp(-np.log(2.0) * dt / half_life)
    eps = rng.normal(0.0, sd * np.sqrt(1.0 - decay**2), size=n)
    out = np.zeros(n)
    for i in range(1, n):
        out[i] = decay * out[i - 1] + eps[i]
    return mean + out


# --------------------------------------------------------------------------- ETFs


@dataclass(frozen=True)
class EtfPaths:
    """Fair price and quotes of one ETF on the 100 ms grid."""

    fair: FloatArray  # latent fair price, dollars
    bid: IntArray  # best bid, cents
    ask: IntArray  # best ask, cents


def etf_paths(spec: EtfSpec, rng: np.random.Generator, spy_sub: FloatArray) -> EtfPaths:
    """Fair price = start * exp(beta * SPY log move + idiosyncratic walk); quotes on a cent grid."""
    start = spec.start_price(float(np.exp(spy_sub[0])))
    idio = np.cumsum(rng.normal(0.0, spec.idio_sd / np.sqrt(SUB), size=spy_sub.size))
    fair = start * np.exp(spec.beta * (spy_sub - spy_sub[0]) + idio - idio[0])

    # Two-state spread regime per second (1 or 2 ticks), wider outside the session.
    u = rng.random(N_SECONDS)
    on = np.where(regular_mask(), spec.wide_on, 4.0 * spec.wide_on)
    wide = np.zeros(N_SECONDS, dtype=bool)
    for i in range(1, N_SECONDS):
        wide[i] = u[i] >= spec.wide_off if wide[i - 1] else u[i] < on[i]
    wide_sub = np.repeat(wide, SUB)

    x = fair * TICK_ETF
    narrow_bid = np.floor(x).astype(np.int64)
    centre = np.rint(x).astype(np.int64)
    bid = np.where(wide_sub, centre - 1, narrow_bid)
    ask = np.where(wide_sub, centre + 1, narrow_bid + 1)
    return EtfPaths(fair=fair, bid=bid, ask=ask)


def position_in_spread(fair: FloatArray, bid: IntArray, ask: IntArray, ticks: int) -> FloatArray:
    """Where the fair price sits between bid (0) and ask (1)."""
    return np.clip((fair * ticks - bid) / (ask - bid), 0.0, 1.0)


def etf_quotes(spec: EtfSpec, rng: np.random.Generator, paths: EtfPaths) -> pd.DataFrame:
    """1-second quote bars stamped at bar start; some unchanged seconds have no row."""
    bid = paths.bid.reshape(N_SECONDS, SUB)
    ask = paths.ask.reshape(N_SECONDS, SUB)
    frac = position_in_spread(paths.fair, paths.bid, paths.ask, TICK_ETF).reshape(N_SECONDS, SUB)[:, -1]

    # Depth: lognormal total, split by where the fair price sits (drives micro-price).
    depth = spec.depth_median * np.exp(rng.normal(0.0, 0.8, size=N_SECONDS))
    share = np.clip(frac + rng.normal(0.0, 0.15, size=N_SECONDS), 0.05, 0.95)
    bid_size = np.maximum(1.0, np.rint(depth * share / 100.0)) * 100.0
    ask_size = np.maximum(1.0, np.rint(depth * (1.0 - share) / 100.0)) * 100.0

    def changed(px: IntArray) -> BoolArray:
        prev_close = np.concatenate([px[:1, -1], px[:-1, -1]])
        return (px.min(axis=1) != px.max(axis=1)) | (px[:, 0] != prev_close)

    keep_prob = np.where(regular_mask(), spec.quote_keep[0], spec.quote_keep[1])
    keep = changed(bid) | changed(ask) | (rng.random(N_SECONDS) < keep_prob)
    keep[0] = True

    seconds = np.flatnonzero(keep)
    out = pd.DataFrame({"time": to_ny_time(seconds.astype(np.int64) * 1_000_000_000)})
    cols: dict[str, FloatArray] = {
        "bid_open": bid[:, 0] / TICK_ETF,
        "bid_high": bid.max(axis=1) / TICK_ETF,
        "bid_low": bid.min(axis=1) / TICK_ETF,
        "bid_close": bid[:, -1] / TICK_ETF,
        "last_bid_size": bid_size,
        "ask_open": ask[:, 0] / TICK_ETF,
        "ask_high": ask.max(axis=1) / TICK_ETF,
        "ask_low": ask.min(axis=1) / TICK_ETF,
        "ask_close": ask[:, -1] / TICK_ETF,
        "last_ask_size": ask_size,
    }
    for name in QUOTE_COLUMNS:
        out[name] = cols[name][seconds].astype(np.float64)
    return out


def share_sizes(rng: np.random.Generator, n: int) -> FloatArray:
    """Trade sizes: mostly lognormal round lots (100s), some odd and mixed lots."""
    lots = np.maximum(1, np.rint(np.exp(rng.normal(0.2, 0.9, size=n)))).astype(np.int64)
    odd = rng.integers(1, 100, size=n)
    kind = rng.random(n)
    size = np.where(kind < 0.80, lots * 100, np.where(kind < 0.95, odd, lots * 100 + odd))
    return size.astype(np.float64)


def etf_trades(spec: EtfSpec, rng: np.random.Generator, paths: EtfPaths, spy_log_mid: FloatArray) -> pd.DataFrame:
    """Poisson trade arrivals at the bid or the ask; sweeps print several trades in one ms."""
    reg = regular_mask()
    pre = np.arange(N_SECONDS) < REGULAR_OPEN
    rate = np.where(pre, spec.trade_rate[0], np.where(reg, spec.trade_rate[1], spec.trade_rate[2]))
    mean_cluster = 1.0 + 2.0 * spec.sweep_prob  # 1 + P(sweep) * E[1 + Poisson(1)]
    lam = rate * activity(rng, spy_log_mid) / mean_cluster
    lam[lull_mask(spec.lulls)] = 0.0
    arrivals = rng.poisson(lam)

    second = np.repeat(np.arange(N_SECONDS, dtype=np.int64), arrivals)
    ms = rng.integers(0, 1_000, size=second.size)
    order = np.lexsort((ms, second))
    second, ms = second[order], ms[order]
    sub = second * SUB + ms // (1_000 // SUB)

    frac = position_in_spread(paths.fair[sub], paths.bid[sub], paths.ask[sub], TICK_ETF)
    buy = rng.random(second.size) < 0.2 + 0.6 * frac
    cluster = 1 + np.where(rng.random(second.size) < spec.sweep_prob, 1 + rng.poisson(1.0, size=second.size), 0)

    idx = np.repeat(np.arange(second.size), cluster)
    n = idx.size
    cents = np.where(buy, paths.ask[sub], paths.bid[sub])[idx]
    p = np.asarray(spec.exchange_weights, dtype=np.float64)
    exchange = np.asarray(spec.exchanges)[rng.choice(len(spec.exchanges), size=n, p=p / p.sum())]
    ns = (second[idx] * 1_000 + ms[idx]) * 1_000_000
    return pd.DataFrame(
        {
            "time": to_ny_time(ns),
            "price": cents / TICK_ETF,
            "size": share_sizes(rng, n),
            "exchange": pd.array(exchange, dtype="string"),
            "condition": np.zeros(n, dtype=np.int64),
            "suspicious": np.zeros(n, dtype=np.int8),
        }
    )


# --------------------------------------------------------------------------- futures


def future_bars(spec: FutureSpec, rng: np.random.Generator, underlying_fair: FloatArray) -> pd.DataFrame:
    """1-second OHLCV bars of trades at a 1-tick bid/ask around scale * underlying + basis."""
    basis = ou_path(rng, underlying_fair.size, 1.0 / SUB, spec.basis_mean, spec.basis_sd, spec.basis_half_life)
    fair = spec.scale * underlying_fair + basis
    bid = np.floor(fair * TICK_FUT).astype(np.int64)
    ask = bid + 1

    log_close = np.log(np.concatenate([underlying_fair[:1], underlying_fair[SUB - 1 :: SUB]]))
    level = activity(rng, log_close)
    level = np.where(regular_mask(), level, spec.offhours_activity * level)
    level[lull_mask(spec.lulls)] = 0.0
    # Scale so that the expected share of seconds with a trade is busy_fraction.
    lo, hi = 0.0, 100.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if np.mean(np.exp(-mid * level)) > 1.0 - spec.busy_fraction else (lo, mid)
    counts = rng.poisson(hi * level)

    second = np.repeat(np.arange(N_SECONDS, dtype=np.int64), counts)
    sub = second * SUB + rng.integers(0, SUB, size=second.size)
    sub = sub[np.lexsort((sub, second))]
    frac = np.clip(fair[sub] * TICK_FUT - bid[sub], 0.0, 1.0)
    buy = rng.random(sub.size) < 0.2 + 0.6 * frac
    ticks = np.where(buy, ask[sub], bid[sub])
    size = np.maximum(1, np.rint(np.exp(rng.normal(0.3, 0.9, size=sub.size)))).astype(np.float64)

    trades = pd.DataFrame({"second": second, "ticks": ticks, "size": size})
    g = trades.groupby("second", sort=True)
    bars = g["ticks"].agg(["first", "max", "min", "last"])
    seconds = bars.index.to_numpy(dtype=np.int64)
    return pd.DataFrame(
        {
            "time": to_ny_time(seconds * 1_000_000_000),
            "open": bars["first"].to_numpy() / TICK_FUT,
            "high": bars["max"].to_numpy() / TICK_FUT,
            "low": bars["min"].to_numpy() / TICK_FUT,
            "close": bars["last"].to_numpy() / TICK_FUT,
            "volume": g["size"].sum().to_numpy(dtype=np.float64),
        }
    )


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    """Regenerate every synthetic file under data/sample/{qqq,vxx,mes,mnq}/."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)

    spy_log_mid = load_spy_log_mid()
    spy_sub = spy_substep_path(spy_log_mid)
    fair: dict[str, FloatArray] = {"spy": np.exp(spy_sub)}

    for spec in (QQQ, VXX):
        rng = rng_for(spec.seed_key)
        paths = etf_paths(spec, rng, spy_sub)
        fair[spec.name] = paths.fair
        out = SAMPLE_DIR / spec.name
        write_parquet(etf_trades(spec, rng, paths, spy_log_mid), out / "20131007_trades.parquet")
        write_parquet(etf_quotes(spec, rng, paths), out / "20131007_quotes_1s.parquet")

    for fut in (MES, MNQ):
        bars = future_bars(fut, rng_for(fut.seed_key), fair[fut.underlying])
        write_parquet(bars, SAMPLE_DIR / fut.name / "20131007_ohlcv_1s.parquet")


if __name__ == "__main__":
    main()
