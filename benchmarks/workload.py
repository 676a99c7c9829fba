"""The synthetic trades workload of the benchmark, generated from a fixed seed.

Per instrument: int64 UTC-nanosecond timestamps inside one 6.5-hour session (sorted, with bursts of trades that
share a timestamp), a best bid that random-walks on a 0.01 grid (most ticks leave it unchanged) with a 1- or
2-cent spread, trades at the bid or the ask (bid/ask bounce, with runs on one side that give many zero-change
ticks, and a few trades at the mid of a 2-cent spread), lognormal trade sizes, and the prevailing bid, ask,
bid_size and ask_size on every row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

DAY = "2024-03-05"  # a Tuesday; New York is on EST (UTC-05:00) that day
TIMEZONE = "America/New_York"
OPEN, CLOSE = "09:30", "16:00"
COLUMNS = ("price", "size", "bid", "ask", "bid_size", "ask_size")
NS = 1_000_000_000


def session_bounds_ns(day: str = DAY) -> tuple[int, int]:
    """UTC nanoseconds of the session's open and close (computed here, independently of fspec)."""
    zone = ZoneInfo(TIMEZONE)
    y, m, d = (int(p) for p in day.split("-"))
    hours = [(int(t[:2]), int(t[3:])) for t in (OPEN, CLOSE)]
    return tuple(int(datetime(y, m, d, h, mi, tzinfo=zone).timestamp()) * NS for h, mi in hours)  # type: ignore[return-value]


def instrument_names(n: int) -> list[str]:
    return [f"s{i}" for i in range(n)]


@dataclass
class Workload:
    day: str
    open_ns: int
    close_ns: int
    # instrument -> {"ts": int64[n], "price": float64[n], ...}
    data: dict[str, dict[str, np.ndarray]]

    @property
    def rows(self) -> int:
        return sum(len(cols["ts"]) for cols in self.data.values())

    @property
    def instruments(self) -> list[str]:
        return list(self.data)

    def nbytes(self, columns: tuple[str, ...] = ("ts", *COLUMNS)) -> int:
        return sum(cols[c].nbytes for cols in self.data.values() for c in columns)


def _instrument(
    rng: np.random.Generator, n: int, open_ns: int, close_ns: int, start_cents: int
) -> dict[str, np.ndarray]:
    # Timestamps: sorted microsecond arrival times; about 1 in 5 trades shares the previous trade's timestamp.
    span_us = (close_ns - open_ns) // 1000
    ts = open_ns + np.sort(rng.integers(0, span_us, n)) * 1000
    burst = rng.random(n) < 0.2
    burst[0] = False
    keep = np.maximum.accumulate(np.where(burst, 0, np.arange(n)))
    ts = ts[keep]
    # Best bid in cents: a random walk that moves on 20% of the ticks; spread 1 or 2 cents.
    steps = rng.choice(np.array([-1, 0, 1], dtype=np.int64), size=n, p=[0.1, 0.8, 0.1])
    bid_c = start_cents + np.cumsum(steps)
    spread_c = np.where(rng.random(n) < 0.3, 2, 1)
    ask_c = bid_c + spread_c
    # Trade side: buys at the ask, sells at the bid, in runs (the side flips on 30% of the trades).
    flips = rng.random(n) < 0.3
    side = np.cumsum(flips) % 2
    price_c2 = np.where(side == 1, 2 * ask_c, 2 * bid_c)  # in half cents, to place mid trades exactly
    at_mid = (spread_c == 2) & (rng.random(n) < 0.05)
    price_c2 = np.where(at_mid, bid_c + ask_c, price_c2)
    return {
        "ts": ts.astype(np.int64),
        "price": price_c2 / 200.0,
        "size": rng.lognormal(mean=4.0, sigma=1.0, size=n),
        "bid": bid_c / 100.0,
        "ask": ask_c / 100.0,
        "bid_size": rng.lognormal(mean=6.0, sigma=0.8, size=n),
        "ask_size": rng.lognormal(mean=6.0, sigma=0.8, size=n),
    }


def generate(rows: int, instruments: int = 5, seed: int = 20240305, day: str = DAY) -> Workload:
    """``rows`` trades split evenly over ``instruments`` instruments (s0, s1, ...), deterministic in ``seed``."""
    open_ns, close_ns = session_bounds_ns(day)
    per = rows // instruments
    data = {}
    for k, name in enumerate(instrument_names(instruments)):
        rng = np.random.default_rng([seed, k])
        data[name] = _instrument(rng, per, open_ns, close_ns, start_cents=10_000 + 2_500 * k)
    return Workload(day, open_ns, close_ns, data)
