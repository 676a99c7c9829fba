"""The session grid: which UTC nanoseconds a session day spans, and column names on that grid."""

from __future__ import annotations

from typing import Any

from fspec.session import NS, Session

__all__ = ["NS", "Session", "column_name", "column_of", "session_bounds", "session_of"]


def session_of(project: dict[str, Any]) -> Session:
    """The manifest's session as its type."""
    return Session.from_json(project["session"])


def session_bounds(day: str, session: dict[str, Any]) -> tuple[int, int]:
    """UTC ns of the open and close of the session dated ``day`` (YYYY-MM-DD), in the session's own time zone."""
    return Session.from_json(session).bounds(day)


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
