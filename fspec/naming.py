"""Column names: ``[feature]_[N]s_[instrument]``, written by the compiler's checks and the runtime's writer alike."""

from __future__ import annotations

SESSION_GRID = 0  # the width of the grid with one bar per session: its columns and files say "session"


def interval_token(interval: int) -> str:
    """How an interval is written in column and file names: ``30s``, or ``session`` for one bar a session."""
    return "session" if interval == SESSION_GRID else f"{interval}s"


def column_name(feature: str, interval: int | None, instrument: str | None) -> str:
    """``realized_vol_30s_spy``; no interval for a volume-clocked value (``vpin_spy``), no instrument for a
    cross-asset feature (``basis_mes_spy_30s``)."""
    parts = [feature]
    if interval is not None:
        parts.append(interval_token(interval))
    if instrument:
        parts.append(instrument)
    return "_".join(parts)
