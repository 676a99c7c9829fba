"""The session grid: which UTC nanoseconds a session day spans, and column names on that grid."""

from __future__ import annotations

import math

from fspec.manifest import FeatureDef
from fspec.naming import column_name
from fspec.session import NS, Session

__all__ = ["NS", "column_name", "column_of", "history_sessions"]


def column_of(feature: FeatureDef, instrument: str | None, interval: int | None) -> str:
    """A manifest feature's column for one member at an interval; volume-clocked features carry no interval."""
    shown = None if feature.clock == "volume" else interval
    return column_name(feature.name, shown, instrument)


def history_sessions(feature: FeatureDef, session: Session, interval: int) -> int:
    """The earlier sessions a run loads before a day to compute ``feature`` at ``interval``: enough for its
    ``left`` window in bars (a session grid has one bar per session), and the whole sessions it needs on top."""
    per_session = session.length_seconds // interval if interval else 1
    return math.ceil(feature.window[0] / per_session) + feature.warmup_sessions
