"""The trading session: which UTC instants a session day spans, and the bars of a grid inside it.

Shared by the compiler (which checks and writes it into the manifest) and the runtime (which builds each day's
grid from it). A session may be any hours of the exchange's day, a whole day (``close`` 24:00), or cross
midnight (``close`` before ``open``): then the session of date D opens on the calendar day before D, and its
date is the date of its close (CME's 17:00-16:00 Chicago session of Monday opens on Sunday).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date as Date
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

NS = 1_000_000_000
DAY_SECONDS = 86_400
DAY_NS = DAY_SECONDS * NS


@dataclass(frozen=True)
class Session:
    timezone: str = "America/New_York"
    open_seconds: int = 9 * 3600 + 30 * 60  # local clock time of the open, seconds after midnight
    close_seconds: int = 16 * 3600  # up to 86400 (24:00); at or before the open: the session crosses midnight
    trading_days_per_year: float = 252.0

    @property
    def crosses_midnight(self) -> bool:
        return self.close_seconds <= self.open_seconds

    @property
    def length_seconds(self) -> int:
        """The session's nominal length (a day that changes to or from daylight saving time may differ)."""
        return self.close_seconds - self.open_seconds + (DAY_SECONDS if self.crosses_midnight else 0)

    @lru_cache(maxsize=8192)  # noqa: B019 - sessions are few, frozen and live as long as the run
    def bounds(self, day: str) -> tuple[int, int]:
        """UTC ns of the open and the close of the session dated ``day`` (YYYY-MM-DD)."""
        close_day = Date.fromisoformat(day)
        open_day = close_day - timedelta(days=1) if self.crosses_midnight else close_day
        return _local_ns(open_day, self.open_seconds, self.timezone), _local_ns(
            close_day, self.close_seconds, self.timezone
        )

    def bar_ends(self, day: str, width: int) -> np.ndarray:
        """The ends of the session's bars of ``width`` seconds (UTC ns), counted in elapsed time from the open;
        the last one is the close (on a day shortened by a clock change, the bars past the close are dropped).
        A width of 0 is the grid of one bar per session, from the open to the close."""
        open_ns, close_ns = self.bounds(day)
        if width == 0:
            return np.array([close_ns], dtype=np.int64)
        step = width * NS
        count = -(-(close_ns - open_ns) // step)
        return np.minimum(open_ns + step * np.arange(1, count + 1, dtype=np.int64), close_ns)

    def dates_of(self, ts: np.ndarray) -> list[str]:
        """The dates (YYYY-MM-DD) of the sessions that hold at least one of the ascending UTC ns ``ts``: how a file
        of many days is split. Rows outside every session belong to none; a day without rows is not a session."""
        return list(self.day_slices(ts))

    def day_slices(self, ts: np.ndarray) -> dict[str, tuple[int, int]]:
        """Each session holding rows of the ascending UTC ns ``ts`` -> the rows ``lo:hi`` inside it, in date
        order (one search for every day the times span)."""
        if not len(ts):
            return {}
        zone = ZoneInfo(self.timezone)
        first = datetime.fromtimestamp(int(ts[0]) // NS, zone).date()
        last = datetime.fromtimestamp(int(ts[-1]) // NS, zone).date()
        # a session crossing midnight is dated by the day after its open
        days = [(first + timedelta(days=k)).isoformat() for k in range((last - first).days + 2)]
        edges = np.searchsorted(ts, np.array([self.bounds(d) for d in days], dtype=np.int64).ravel())
        return {d: (int(lo), int(hi)) for d, lo, hi in zip(days, edges[0::2], edges[1::2], strict=True) if hi > lo}

    def first_whole(self, ts: np.ndarray, known: int) -> int:
        """Where rows read from ``known`` on (UTC ns; the ascending ``ts`` of a file's row groups that may hold a
        time from then on) begin to hold their sessions whole: the first row at or after ``known`` of a session
        that opens at or after it (the row groups read hold some of the rows of one that opens before)."""
        start = int(np.searchsorted(ts, known, side="left"))
        slices = self.day_slices(ts[start:])
        return start + max((hi for d, (_, hi) in slices.items() if self.bounds(d)[0] < known), default=0)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Session:
        return cls(**data)


def bar_starts(bar_ends: np.ndarray, open_ns: int) -> np.ndarray:
    """Each bar's start: the session open, then the previous bar's end."""
    starts = np.empty_like(bar_ends)
    if len(bar_ends):
        starts[0] = open_ns
        starts[1:] = bar_ends[:-1]
    return starts


def _local_ns(day: Date, seconds: int, zone_name: str) -> int:
    zone = ZoneInfo(zone_name)
    local = datetime.combine(day, time(0)) + timedelta(seconds=seconds)  # 24:00 is the next day's midnight
    return int(local.replace(tzinfo=zone).timestamp()) * NS
