"""Operators of event grids: the value of a market source prevailing strictly before an event.

On an event grid (``grids:``) each output row is one event at time ``t``; with the grid's ``latency`` L its
cut is ``t' = t - L``, and a value at the event may read only rows with ``ts < t'``. Reducers (``sum``,
``count``, ``wmean``, ``last``...) take a window in time there (``sum(trades.size, window=60s)`` over
``[t' - 60s, t')``); the two operators here read one row: the last one before the cut (or before
``t' - ago``) whose value is not NaN.

Their kernel code (``event``) is the write made when the backward scan from the cut finds that row ``j``:
``value`` is the expression at ``j``; ``event_t[b]`` is event ``b``'s own time and ``ts[j]`` the row's.
"""

from __future__ import annotations

import numpy as np

from fspec.operators.core import EVENT, Operator, Param, register

AGO = Param("ago", "number", 0.0, 0.0)


def _asof_code(slot: int, value: str) -> str:
    return f"out[{slot}, b] = {value}"


def _age_code(slot: int, value: str) -> str:
    return f"out[{slot}, b] = (event_t[b] - ts[j]) / 1e9"


def _last_before(ts: np.ndarray, values: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Index of the last row with ts < cut and a non-NaN value, or -1 (the reference, written apart)."""
    keep = np.flatnonzero(~np.isnan(values))
    pos = np.searchsorted(ts[keep], cuts, side="left") - 1
    return np.where(pos >= 0, keep[np.maximum(pos, 0)], -1)


def _asof_reference(ts: np.ndarray, x: np.ndarray, event_t: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    row = _last_before(ts, x, cuts)
    return np.where(row >= 0, x[np.maximum(row, 0)] if len(x) else np.nan, np.nan)


def _age_reference(ts: np.ndarray, x: np.ndarray, event_t: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    row = _last_before(ts, x, cuts)
    seen = ts[np.maximum(row, 0)] if len(ts) else np.zeros(len(cuts), dtype=np.int64)
    return np.where(row >= 0, (event_t - seen) / 1e9, np.nan)


register(
    Operator(
        "asof",
        (Param("x"), AGO),
        EVENT,
        "at an event: the last non-NaN value of x strictly before the event's cut t - latency (with ago=D, "
        "before t - latency - D)",
        "no such row (an event before its instrument's first row) -> NaN; a row at exactly the cut is not seen",
        event=_asof_code,
        reference=_asof_reference,
        examples=("asof(trades.price)", "asof(trades.price, ago=30s)"),
    )
)
register(
    Operator(
        "age",
        (Param("x"), AGO),
        EVENT,
        "at an event: seconds from the row asof(x) reads to the event's own time t (latency included)",
        "no such row -> NaN",
        event=_age_code,
        reference=_age_reference,
        examples=("age(trades.price)",),
    )
)
