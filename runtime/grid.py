"""The session grid: which UTC nanoseconds a session day spans, and column names on that grid."""

from __future__ import annotations

from datetime import date as Date
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

NS = 1_000_000_000


def session_bounds(day: str, session: dict[str, Any]) -> tuple[int, int]:
    """UTC ns of the open and close of ``day`` (YYYY-MM-DD), in the session's own time zone."""
    zone = ZoneInfo(session["timezone"])
    d = Date.fromisoformat(day)
    midnight = datetime.combine(d, time(0), tzinfo=zone)
    open_local = midnight + timedelta(seconds=session["open_seconds"])
    close_local = midnight + timedelta(seconds=session["close_seconds"])
    # Re-attach the zone so a DST change between midnight and the open is honoured.
    open_local = open_local.replace(tzinfo=None).replace(tzinfo=zone)
    close_local = close_local.replace(tzinfo=None).replace(tzinfo=zone)
    return int(open_local.timestamp()) * NS, int(close_local.timestamp()) * NS


def bar_starts(open_ns: int, close_ns: int, interval: int) -> np.ndarray:
    return np.arange(open_ns, close_ns, interval * NS, dtype=np.int64)


def column_name(feature: str, interval: int | None, instrument: str | None) -> str:
    parts = [feature]
    if interval is not None:
        parts.append(f"{interval}s")
    if instrument:
        parts.append(instrument)
    return "_".join(parts)


def column_of(feature: dict[str, Any], interval: int | None) -> str:
    """A manifest feature's column at an interval; volume-clocked features carry no interval."""
    shown = None if feature.get("clock") == "volume" else interval
    return column_name(feature["name"], shown, feature["instrument"])
