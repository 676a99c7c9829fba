"""Column names: ``[feature]_[N]s_[instrument]``, written by the compiler's checks and the runtime's writer alike."""

from __future__ import annotations


def column_name(feature: str, interval: int | None, instrument: str | None) -> str:
    """``realized_vol_30s_spy``; no interval for a volume-clocked value (``vpin_spy``), no instrument for a
    cross-asset feature (``basis_mes_spy_30s``)."""
    parts = [feature]
    if interval is not None:
        parts.append(f"{interval}s")
    if instrument:
        parts.append(instrument)
    return "_".join(parts)
