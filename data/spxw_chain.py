"""Generate a SYNTHETIC intraday SPXW option chain for 2013-10-07 (quotes and trades of every contract, 09:30 to
16:00).

None of it is real market data: it exists so that the chain operators (iv_atm, iv_rr25, iv_slope,
skew_index) run in the root project next to the real SPY sample. The chain is driven by SPY's REAL path:

* underlying: ``S = 10 * SPY mid`` at the close of each second (``(bid_close + ask_close) / 2`` of
  ``data/sample/spy/20131007_quotes_1s.parquet``, carried over seconds without a bar), the "index" the
  project reads as ``spx`` (see specs/project.yaml);
* expiries: the three Friday weeklies 2013-10-11, 2013-10-18 and 2013-10-25, PM-settled at 16:00 New York
  time; strikes every 5 points, wider for later expiries (about 3.8 standard deviations below and 2.8 above);
* forward: ``F = S * exp((RATE - DIVIDEND_YIELD) * T)``, T in years ACT/365 to the settlement;
* smile: ``sigma = atm * (1 + SKEW * z + CURVATURE * z**2)`` at the standardised moneyness
  ``z = ln(K / F) / (atm * sqrt(T))``, floored at 40% of ``atm``; ``atm`` of each expiry is its base level
  times ``exp(-SPOT_VOL_BETA * (ln S - ln S at 09:30))`` (volatility rises as the index falls) times
  ``exp(u)``, ``u`` a mean-reverting (Ornstein-Uhlenbeck) noise shared by the expiries;
* quotes: each contract is requoted at Poisson times (every 8 seconds on average at the money, every 90 in
  the wings), at its Black-76 price then: a spread of ``3% of the price + 0.10`` (at least one tick), the
  bid rounded down to the tick (0.05 below 3.00, else 0.10), no bid (0) below 0.05; sizes 1 to 500
  contracts. Defects are put in on purpose, as feeds have them: about 1 quote in 2,000 is crossed (bid one
  tick above the ask) and 1 in 5,000 has no ask (NaN).

Trades (a second file, ``20131007_option_trades.parquet``, drawn from their own generator after the quotes, so
the quotes file does not depend on them):

* how many: each contract trades at Poisson times, ``TRADES_ATM * exp(-z0**2 / (2 * TRADE_WIDTH**2))`` trades a
  day at the open's standardised moneyness ``z0`` (more near the money), times the expiry's weight
  (``TRADE_WEIGHT``: the front weekly trades most), times ``ITM_FACTOR`` for an in-the-money option, plus
  ``TRADES_WING`` a day in every contract: about 3,000 trades in the day;
* when: U-shaped over the day (60% uniform, 20% Beta(1, 6) after the open, 20% Beta(6, 1) before the close),
  in milliseconds; ``SAME_MS_SHARE`` of them are put at the exact millisecond of the contract's next quote, as
  feeds print a trade and the quote update it causes with one timestamp;
* at what price: the contract's quote prevailing strictly before the trade (a trade before the contract's first
  quote is not drawn). A buy (probability ``BUY_CALL``/``BUY_PUT``) pays the ask and a sell gets the bid
  (``AT_TOUCH``), or one tick inside it where the spread is at least two ticks (``INSIDE``), or the mid rounded
  down to the tick (the rest): at the mid exactly where it is on the tick grid. A buy against no ask or a sell
  against no bid is not drawn; a crossed quote is traded at its touch like any;
* how many contracts: lognormal, median ``SIZE_MEDIAN``, sd of its log ``SIZE_LOG_SD``, whole contracts from 1
  to 500; ``BLOCK_SHARE`` of them are blocks of 50 to 500.

Usage, from the repository root (after ``data/prepare_sample.py``)::

    python data/spxw_chain.py

It needs numpy, pandas and pyarrow. Every draw of the quotes comes from ``numpy.random.default_rng([20131007,
5])``, of the trades from ``numpy.random.default_rng([20131007, 6])``; the output is byte-for-byte the same on
every run. See ``data/README.md``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from prepare_sample import write_parquet  # the same file layout as the real sample (run as a script)

REPO_ROOT = Path(__file__).resolve().parent.parent
SPY_QUOTES = REPO_ROOT / "data" / "sample" / "spy" / "20131007_quotes_1s.parquet"
OUT = REPO_ROOT / "data" / "sample" / "spxw" / "20131007_quotes.parquet"
OUT_TRADES = REPO_ROOT / "data" / "sample" / "spxw" / "20131007_option_trades.parquet"

DAY = "2013-10-07"
TZ = "America/New_York"
SEED = [20131007, 5]
TRADE_SEED = [20131007, 6]
OPEN, CLOSE = pd.Timestamp(f"{DAY} 09:30", tz=TZ), pd.Timestamp(f"{DAY} 16:00", tz=TZ)
SECONDS = int((CLOSE - OPEN).total_seconds())  # 23,400
INDEX_PER_SPY = 10.0
RATE = 0.001  # continuously compounded, per year ACT/365 (T-bills were near 0.1% in October 2013)
DIVIDEND_YIELD = 0.02
# expiry -> (base ATM volatility, strikes below and above the open's forward in standard deviations)
EXPIRIES = {"2013-10-11": 0.175, "2013-10-18": 0.170, "2013-10-25": 0.165}
STRIKE_STEP = 5.0
BELOW, ABOVE = 3.8, 2.8  # strike range, in standard deviations of the expiry at the open
SKEW, CURVATURE, FLOOR = -0.16, 0.025, 0.4
SPOT_VOL_BETA = 6.0
NOISE_SD, NOISE_HALF_LIFE = 0.02, 1200.0  # OU noise of log ATM volatility: stationary sd, half-life in seconds
QUOTE_EVERY_ATM, QUOTE_EVERY_WING = 8.0, 90.0  # mean seconds between quotes at z = 0 and far out
CROSSED_EVERY, NO_ASK_EVERY = 2000, 5000
YEAR = 365 * 86400.0
# trades: per contract and day at the money, its width in standard deviations, the expiries' weights
TRADES_ATM, TRADE_WIDTH, TRADES_WING = 30.0, 1.5, 0.5
TRADE_WEIGHT = {"2013-10-11": 1.0, "2013-10-18": 0.45, "2013-10-25": 0.2}
ITM_FACTOR = 0.4
SAME_MS_SHARE = 0.05
BUY_CALL, BUY_PUT = 0.5, 0.55  # probability that a trade is a buy
AT_TOUCH, INSIDE = 0.65, 0.20  # price at the touch, one tick inside it; the rest at the mid rounded down
SIZE_MEDIAN, SIZE_LOG_SD, BLOCK_SHARE = 5.0, 1.0, 0.02


def norm_cdf(x: np.ndarray) -> np.ndarray:
    """Φ(x) with the standard library's erfc (no scipy)."""
    erfc = np.frompyfunc(math.erfc, 1, 1)
    return (0.5 * erfc(-np.asarray(x, dtype=np.float64) / math.sqrt(2.0))).astype(np.float64)


def black(F: np.ndarray, K: np.ndarray, T: np.ndarray, sigma: np.ndarray, call: np.ndarray) -> np.ndarray:
    """Discounted Black-76 prices."""
    sd = sigma * np.sqrt(T)
    d1 = np.log(F / K) / sd + 0.5 * sd
    d2 = d1 - sd
    value = np.where(call, F * norm_cdf(d1) - K * norm_cdf(d2), K * norm_cdf(-d2) - F * norm_cdf(-d1))
    return np.exp(-RATE * T) * value


def index_path() -> np.ndarray:
    """10 x SPY's mid at the end of each second of the session (index s: the value known at OPEN + s + 1)."""
    q = pd.read_parquet(SPY_QUOTES)
    mid = ((q["bid_close"] + q["ask_close"]) / 2).to_numpy()
    known = (q["time"] + pd.Timedelta(seconds=1)).to_numpy()  # a 1 s bar stamped at its start ends 1 s later
    ends = (OPEN + pd.to_timedelta(np.arange(1, SECONDS + 1), unit="s")).to_numpy()
    idx = np.searchsorted(known, ends, side="right") - 1
    return INDEX_PER_SPY * mid[idx]


def ou_noise(rng: np.random.Generator) -> np.ndarray:
    phi = 0.5 ** (1.0 / NOISE_HALF_LIFE)
    shocks = rng.normal(0.0, NOISE_SD * math.sqrt(1 - phi * phi), SECONDS)
    u = np.empty(SECONDS)
    u[0] = rng.normal(0.0, NOISE_SD)
    for s in range(1, SECONDS):
        u[s] = phi * u[s - 1] + shocks[s]
    return u


def tick_of(price: np.ndarray) -> np.ndarray:
    return np.where(price < 3.0, 0.05, 0.10)


def main() -> None:
    rng = np.random.default_rng(SEED)
    S = index_path()
    u = ou_noise(rng)
    settle = {e: pd.Timestamp(f"{e} 16:00", tz=TZ) for e in EXPIRIES}
    frames = []
    for expiry, base in EXPIRIES.items():
        T0 = (settle[expiry] - OPEN).total_seconds() / YEAR
        F0 = S[0] * math.exp((RATE - DIVIDEND_YIELD) * T0)
        sd0 = base * math.sqrt(T0)
        lo = STRIKE_STEP * math.floor(F0 * math.exp(-BELOW * sd0) / STRIKE_STEP)
        hi = STRIKE_STEP * math.ceil(F0 * math.exp(ABOVE * sd0) / STRIKE_STEP)
        for strike in np.arange(lo, hi + STRIKE_STEP / 2, STRIKE_STEP):
            z0 = math.log(strike / F0) / sd0
            every = QUOTE_EVERY_WING + (QUOTE_EVERY_ATM - QUOTE_EVERY_WING) * math.exp(-0.5 * z0 * z0)
            for right in ("C", "P"):
                count = rng.poisson(SECONDS / every)
                ms = np.sort(rng.choice(SECONDS * 1000, size=count, replace=False))
                frames.append(pd.DataFrame({"ms": ms, "expiry": expiry, "strike": strike, "right": right}))
    rows = pd.concat(frames, ignore_index=True).sort_values(["ms", "expiry", "strike", "right"], kind="stable")
    rows = rows.reset_index(drop=True)
    second = (rows["ms"].to_numpy() // 1000).astype(np.int64)
    # the index prevailing at a quote: the last whole second's close before it (the first second: 09:30:00's)
    spot = S[np.maximum(second - 1, 0)]
    expiry_end = rows["expiry"].map(settle)
    when = OPEN + pd.to_timedelta(rows["ms"].to_numpy(), unit="ms")
    T = (expiry_end - when).dt.total_seconds().to_numpy() / YEAR
    F = spot * np.exp((RATE - DIVIDEND_YIELD) * T)
    base = rows["expiry"].map(EXPIRIES).to_numpy()
    atm = base * np.exp(-SPOT_VOL_BETA * (np.log(spot) - math.log(S[0])) + u[second])
    K = rows["strike"].to_numpy()
    z = np.log(K / F) / (atm * np.sqrt(T))
    sigma = np.maximum(atm * (1 + SKEW * z + CURVATURE * z * z), FLOOR * atm)
    call = (rows["right"] == "C").to_numpy()
    price = black(F, K, T, sigma, call)
    spread = 0.03 * price + 0.10
    tick = tick_of(price)
    bid = np.floor((price - spread / 2) / tick + 1e-9) * tick
    bid = np.where(bid < 0.05, 0.0, bid)
    ask = np.maximum(np.ceil((price + spread / 2) / tick - 1e-9) * tick, bid + tick)
    crossed = rng.integers(0, CROSSED_EVERY, len(rows)) == 0
    bid = np.where(crossed & (bid > 0), ask + tick, bid)
    ask = np.where(rng.integers(0, NO_ASK_EVERY, len(rows)) == 0, np.nan, ask)
    sizes = np.maximum(1, np.round(np.exp(rng.normal(3.0, 1.0, (2, len(rows)))))).clip(1, 500)
    out = pd.DataFrame(
        {
            "time": when.as_unit("ns"),
            "expiry": pd.to_datetime(rows["expiry"]).dt.date,
            "strike": K,
            "right": rows["right"].to_numpy(),
            "bid": np.round(bid, 2),
            "ask": np.round(ask, 2),
            "bid_size": sizes[0],
            "ask_size": sizes[1],
        }
    )
    write_parquet(out, OUT)
    write_parquet(trades(out, S), OUT_TRADES)


def trade_times(rng: np.random.Generator, count: int) -> np.ndarray:
    """Milliseconds after the open, U-shaped over the day."""
    kind = rng.choice(3, size=count, p=[0.6, 0.2, 0.2])
    u = np.where(kind == 0, rng.random(count), np.where(kind == 1, rng.beta(1, 6, count), rng.beta(6, 1, count)))
    return np.minimum((u * SECONDS * 1000).astype(np.int64), SECONDS * 1000 - 1)


def trades(quotes: pd.DataFrame, S: np.ndarray) -> pd.DataFrame:
    """The day's trades of every contract, priced off its quote prevailing strictly before each (module doc)."""
    rng = np.random.default_rng(TRADE_SEED)
    ms_of = ((quotes["time"] - OPEN).dt.total_seconds() * 1000).round().astype(np.int64).to_numpy()
    keys = quotes[["expiry", "strike", "right"]].astype(str).agg("|".join, axis=1).to_numpy()
    frames = []
    for key in dict.fromkeys(sorted(set(keys), key=lambda k: (k.split("|")[0], float(k.split("|")[1]), k[-1]))):
        expiry, strike_text, right = key.split("|")
        strike, rows = float(strike_text), np.flatnonzero(keys == key)
        T0 = (pd.Timestamp(f"{expiry} 16:00", tz=TZ) - OPEN).total_seconds() / YEAR
        F0 = S[0] * math.exp((RATE - DIVIDEND_YIELD) * T0)
        z0 = math.log(strike / F0) / (EXPIRIES[expiry] * math.sqrt(T0))
        itm = (strike < F0) if right == "C" else (strike > F0)
        rate = TRADES_ATM * math.exp(-0.5 * z0 * z0 / TRADE_WIDTH**2) * TRADE_WEIGHT[expiry]
        rate = rate * (ITM_FACTOR if itm else 1.0) + TRADES_WING
        count = rng.poisson(rate)
        ms = np.sort(trade_times(rng, count))
        q_ms = ms_of[rows]
        nxt = np.searchsorted(q_ms, ms, side="left")  # the first quote at or after the trade
        same = (rng.random(count) < SAME_MS_SHARE) & (nxt < len(rows))
        ms = np.where(same, q_ms[np.minimum(nxt, len(rows) - 1)], ms)
        prev = np.searchsorted(q_ms, ms, side="left") - 1  # the quote strictly before it
        buy = rng.random(count) < (BUY_CALL if right == "C" else BUY_PUT)
        how = rng.random(count)
        size = np.round(np.exp(rng.normal(math.log(SIZE_MEDIAN), SIZE_LOG_SD, count))).clip(1, 500)
        size = np.where(rng.random(count) < BLOCK_SHARE, rng.integers(50, 501, count), size).astype(np.float64)
        ok = prev >= 0
        q = quotes.iloc[rows[np.maximum(prev, 0)]]
        bid, ask = q["bid"].to_numpy(), q["ask"].to_numpy()
        tick = tick_of(np.where(np.isfinite(ask), ask, bid))
        touch = np.where(buy, ask, bid)
        inside = np.where((ask - bid) >= 2 * tick - 1e-9, touch + np.where(buy, -tick, tick), touch)
        mid = np.floor((bid + ask) / 2 / tick + 1e-9) * tick
        price = np.where(how < AT_TOUCH, touch, np.where(how < AT_TOUCH + INSIDE, inside, mid))
        ok &= np.isfinite(price) & (price > 0)
        frames.append(
            pd.DataFrame(
                {"ms": ms[ok], "expiry": expiry, "strike": strike, "right": right, "price": price[ok], "size": size[ok]}
            )
        )
    rows = pd.concat(frames, ignore_index=True).sort_values(["ms", "expiry", "strike", "right"], kind="stable")
    return pd.DataFrame(
        {
            "time": (OPEN + pd.to_timedelta(rows["ms"].to_numpy(), unit="ms")).as_unit("ns"),
            "expiry": pd.to_datetime(rows["expiry"]).dt.date.to_numpy(),
            "strike": rows["strike"].to_numpy(),
            "right": rows["right"].to_numpy(),
            "price": np.round(rows["price"].to_numpy(), 2),
            "size": rows["size"].to_numpy(),
        }
    )


if __name__ == "__main__":
    main()
