"""Cross-sectional operators: over the members of a universe at the same bar (window ``(0, 0)``).

A feature of a universe is evaluated on a (members, bars) array, one row per member; these operators reduce
over the rows of each bar (the axis 0), never across bars, so they read no other bar than the current one.
A member whose value is NaN at a bar (absent that day, or no trade) is skipped there, and ``cs_count`` says
how many took part. A per-member result (``cs_rank``, ``cs_demean``, ``cs_zscore``) is NaN for a NaN member.
``cs_mean``, ``cs_sum`` and ``cs_wmean`` give every member the same bar value (an index each member can be
compared with: ``wap / cs_wmean(wap, weight)``). Each ``numpy`` implementation is plain numpy; each
``reference`` loops over the bars with pandas, written apart from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fspec.operators.core import CROSS, Operator, Param, register

if TYPE_CHECKING:
    import pandas as pd  # the references only: a run imports no pandas


def _valid(x: np.ndarray) -> np.ndarray:
    return np.isfinite(x)


def _count(x: np.ndarray) -> np.ndarray:
    return np.broadcast_to(_valid(x).sum(axis=0, keepdims=True).astype(np.float64), x.shape)


def _sum(x: np.ndarray) -> np.ndarray:
    """The sum over the valid members; NaN where none is valid (an unknown index, not a zero one)."""
    valid = _valid(x)
    total = np.where(valid, x, 0.0).sum(axis=0, keepdims=True)
    return np.broadcast_to(np.where(valid.any(axis=0, keepdims=True), total, np.nan), x.shape)


def _mean(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return _sum(x) / _count(x)


def _wmean(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """sum(w x) / sum(w) over the members where both are valid; NaN where the weights sum to 0."""
    x, w = np.broadcast_arrays(x, w)
    valid = _valid(x) & _valid(w)
    top = np.where(valid, x * w, 0.0).sum(axis=0, keepdims=True)
    bottom = np.where(valid, w, 0.0).sum(axis=0, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(bottom != 0, top / bottom, np.nan)
    return np.broadcast_to(value, x.shape)


def _demean(x: np.ndarray) -> np.ndarray:
    return np.where(_valid(x), x - _mean(x), np.nan)


def _zscore(x: np.ndarray) -> np.ndarray:
    """(x - mean) / std over the valid members (ddof 1); NaN with fewer than 2 or a std of 0."""
    n = _count(x)
    centred = _demean(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(_valid(x), centred**2, 0.0).sum(axis=0, keepdims=True) / (n - 1)
        std = np.sqrt(var)
        return np.where(_valid(x) & (n >= 2) & (std > 0), centred / std, np.nan)


def _rank(x: np.ndarray) -> np.ndarray:
    """(r - 1) / (n - 1) with r the average rank of ties among the n valid members: 0 for the lowest, 1 for
    the highest, 0.5 for a member alone."""
    x = np.asarray(x, dtype=np.float64)
    out = np.full(x.shape, np.nan)
    for b in range(x.shape[1]):
        column = x[:, b]
        valid = np.flatnonzero(_valid(column))
        n = len(valid)
        if n == 1:
            out[valid, b] = 0.5
        elif n > 1:
            values = column[valid]
            order = np.argsort(values, kind="stable")
            ranks = np.empty(n)
            ranks[order] = np.arange(1, n + 1, dtype=np.float64)
            # ties get the mean of their ranks: the sum of the ranks of each distinct value over its count
            _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
            ranks = np.bincount(inverse, weights=ranks) / counts
            out[valid, b] = (ranks[inverse] - 1) / (n - 1)
    return out


# ---- references: pandas over each bar's members -------------------------------------------------------


def _by_bar(x: np.ndarray, fn) -> np.ndarray:  # type: ignore[no-untyped-def]
    """``fn`` of each bar's members as a pandas Series (NaN members included), back as (members, bars)."""
    import pandas as pd

    frame = pd.DataFrame(np.asarray(x, dtype=np.float64))
    return np.column_stack([np.asarray(fn(frame[b].replace([np.inf, -np.inf], np.nan))) for b in frame.columns])


def _reference_rank(x: np.ndarray) -> np.ndarray:
    def rank(s: pd.Series) -> pd.Series:
        n = s.count()
        if n == 1:
            return s.where(s.isna(), 0.5)
        return (s.rank(method="average") - 1) / (n - 1)

    return _by_bar(x, rank)


def _reference_zscore(x: np.ndarray) -> np.ndarray:
    def z(s: pd.Series) -> pd.Series:
        std = s.std(ddof=1)
        return (s - s.mean()) / std if s.count() >= 2 and std > 0 else s * np.nan

    return _by_bar(x, z)


def _reference_wmean(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    import pandas as pd

    x, w = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64))
    out = np.empty(x.shape)
    for b in range(x.shape[1]):
        s = pd.DataFrame({"x": x[:, b], "w": w[:, b]}).replace([np.inf, -np.inf], np.nan).dropna()
        out[:, b] = (s.x * s.w).sum() / s.w.sum() if len(s) and s.w.sum() != 0 else np.nan
    return out


SKIP = "NaN or infinite members are skipped"
for op in (
    Operator(
        "cs_mean",
        (Param("x"),),
        CROSS,
        "mean of x over the members at this bar, the same value for each member",
        f"{SKIP}; NaN where no member is valid",
        numpy=_mean,
        reference=lambda x: _by_bar(x, lambda s: np.full(len(s), s.mean())),
    ),
    Operator(
        "cs_sum",
        (Param("x"),),
        CROSS,
        "sum of x over the members at this bar, the same value for each member",
        f"{SKIP}; NaN (not 0) where no member is valid",
        numpy=_sum,
        reference=lambda x: _by_bar(x, lambda s: np.full(len(s), s.sum(min_count=1))),
    ),
    Operator(
        "cs_count",
        (Param("x"),),
        CROSS,
        "how many members have a valid (finite) x at this bar, the same value for each member",
        "0 where none is",
        numpy=_count,
        reference=lambda x: _by_bar(x, lambda s: np.full(len(s), float(s.count()))),
    ),
    Operator(
        "cs_wmean",
        (Param("x"), Param("w")),
        CROSS,
        "weighted mean sum(w x) / sum(w) over the members at this bar (an index), the same value for each member",
        "members where x or w is NaN or infinite are skipped; NaN where the weights of the valid members sum to 0",
        numpy=_wmean,
        reference=_reference_wmean,
    ),
    Operator(
        "cs_rank",
        (Param("x"),),
        CROSS,
        "rank of each member's x among the members at this bar, in [0, 1]: (r - 1) / (n - 1), ties averaged",
        f"{SKIP} (NaN for them); 0.5 for a member alone at its bar",
        numpy=_rank,
        reference=_reference_rank,
    ),
    Operator(
        "cs_demean",
        (Param("x"),),
        CROSS,
        "x minus the mean of x over the members at this bar",
        f"{SKIP} (NaN for them)",
        numpy=_demean,
        reference=lambda x: _by_bar(x, lambda s: s - s.mean()),
    ),
    Operator(
        "cs_zscore",
        (Param("x"),),
        CROSS,
        "(x - mean) / standard deviation (ddof = 1) over the members at this bar",
        f"{SKIP} (NaN for them); NaN with fewer than 2 valid members or a standard deviation of 0",
        numpy=_zscore,
        reference=_reference_zscore,
    ),
):
    register(op)
