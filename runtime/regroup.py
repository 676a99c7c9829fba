"""Rows of a file of many symbols regrouped by symbol: a stable counting sort by symbol code.

A file in time order interleaves its symbols. Each row's symbol is a small integer code (its dictionary
index); one pass counts the rows of each code; then, a batch of rows at a time, one pass gives each row its
place (the next free row of its symbol's run) and one pass per column moves the column's values there, read
in file order. Rows keep their file order within a symbol (the sort is stable), and a row whose code is
negative (no symbol, or a symbol no instrument reads) is not moved at all. Nothing here sorts: the cost is a
few sequential streams per column, against a comparison or radix sort of the codes followed by a gather or
scatter through a whole-file permutation.

The functions are compiled once, for the exact types below, into numba's on-disk cache (``cache=True``, no
other signatures: a call with other types is a TypeError, never a compile in the middle of a run; the first
import in an environment without that cache compiles them, a few seconds). They release the GIL.
This module imports numba (unless the run uses a library of `fspec compile --aot`): it is imported only when a
file's rows need regrouping.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fspec.jit import njit

# The exact types, as functions of numba.types (so that this module imports without numba in a run from an
# ahead-of-time library, fspec compile --aot).


def _codes(t: Any) -> Any:
    return t.Array(t.int32, 1, "C", readonly=True)


def _counts(t: Any) -> Any:
    return t.Array(t.int64, 1, "C")


def _dest(t: Any) -> Any:
    return t.Array(t.int64, 1, "C", readonly=True)


def _values(t: Any, kind: Any) -> tuple[Any, Any]:
    return t.Array(kind, 1, "C", readonly=True), t.Array(kind, 1, "C")


@njit(lambda t: _counts(t)(_codes(t), t.int64), cache=True, nogil=True)
def starts_of(codes: np.ndarray, count: int) -> np.ndarray:  # pragma: no cover - compiled
    """``starts[k]``: the first row of code ``k``'s run in the regrouped rows, for ``k`` in ``0..count``;
    ``starts[count]`` is the number of rows with a code (negative codes are not counted)."""
    starts = np.zeros(count + 1, dtype=np.int64)
    for i in range(codes.shape[0]):
        code = codes[i]
        if code >= 0:
            starts[code + 1] += 1
    for k in range(count):
        starts[k + 1] += starts[k]
    return starts


@njit(lambda t: t.void(_codes(t), _counts(t), _counts(t)), cache=True, nogil=True)
def destinations(codes: np.ndarray, cursor: np.ndarray, dest: np.ndarray) -> None:  # pragma: no cover - compiled
    """``dest[i]``: where row ``i`` goes, the next free row of its code's run (``cursor``, advanced; -1 for a
    negative code). Called once per batch of rows, in file order, with the same ``cursor`` (``starts[:-1]``
    at the first batch); every column of the batch is then moved by :func:`put` with the same ``dest``."""
    for i in range(codes.shape[0]):
        code = codes[i]
        if code >= 0:
            dest[i] = cursor[code]
            cursor[code] += 1
        else:
            dest[i] = -1


@njit(
    lambda t: [t.void(_dest(t), *_values(t, kind)) for kind in (t.int64, t.int32, t.int8)],
    cache=True,
    nogil=True,
)
def put(dest: np.ndarray, values: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """``out[dest[i]] = values[i]`` where ``dest[i] >= 0``. Fixed-width values of any kind are moved as integers
    of their width (float64 as int64: bits unchanged; int8 for a validity mask of one byte a row). Each
    iteration is independent of the others (the cursors were advanced by :func:`destinations`), so the moves
    of a column pipeline: 0.6x the time of advancing the cursors in every column's own pass, here."""
    for i in range(dest.shape[0]):
        target = dest[i]
        if target >= 0:
            out[target] = values[i]


@njit(lambda t: _counts(t)(_codes(t), _dest(t)), cache=True, nogil=True)
def order_of(codes: np.ndarray, starts: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """The regrouped rows as indices of the file's rows, for what :func:`put` does not move (text and boolean
    columns, and the rows of a CSV file, read through pandas)."""
    order = np.empty(starts[-1], dtype=np.int64)
    cursor = starts[:-1].copy()
    for i in range(codes.shape[0]):
        code = codes[i]
        if code >= 0:
            order[cursor[code]] = i
            cursor[code] += 1
    return order


def read_only(values: np.ndarray) -> np.ndarray:
    """A read-only view (the type these functions are compiled for), C-contiguous."""
    values = np.ascontiguousarray(values)
    if values.flags.writeable:
        values = values.view()
        values.flags.writeable = False
    return values
