"""The session grid: which UTC nanoseconds a session day spans, and column names on that grid."""

from __future__ import annotations

from fspec.manifest import FeatureDef
from fspec.naming import column_name
from fspec.session import NS

__all__ = ["NS", "column_name", "column_of"]


def column_of(feature: FeatureDef, instrument: str | None, interval: int | None) -> str:
    """A manifest feature's column for one member at an interval; volume-clocked features carry no interval."""
    shown = None if feature.clock == "volume" else interval
    return column_name(feature.name, shown, instrument)
