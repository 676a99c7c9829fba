"""A cache of loaded data bounded by bytes, not by a count of entries.

A run over many days keeps what the next day may read again (its warm-up sessions' rows and slots) and
forgets the oldest entries once their arrays together pass the budget: one day of 500 instruments and one day
of 5 take the same count of entries but not the same memory.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

import numpy as np

from fspec.errors import UsageError

V = TypeVar("V")
DEFAULT_BUDGET = 2 << 30  # 2 GiB


def nbytes(value: object) -> int:
    """Bytes held by the numpy arrays of a value: an array, or an object with ``ts`` and ``columns``."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    size = getattr(value, "nbytes", None)  # e.g. a file's rows grouped by symbol
    if isinstance(size, int):
        return size
    total = 0
    ts = getattr(value, "ts", None)
    if isinstance(ts, np.ndarray):
        total += int(ts.nbytes)
    for column in getattr(value, "columns", {}).values():
        total += int(column.nbytes)
    return total


class BudgetCache(Generic[V]):
    """A mapping that evicts its least recently used entries when their arrays exceed ``budget`` bytes.

    The entry just stored is never evicted, even when it alone is larger than the budget."""

    def __init__(self, budget: int | None = None) -> None:
        self.budget = memory_budget() if budget is None else budget
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self.bytes = 0

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, key: Hashable) -> V:
        value, _ = self._items[key]
        self._items.move_to_end(key)
        return value

    def get(self, key: Hashable) -> V | None:
        return self[key] if key in self._items else None

    def __setitem__(self, key: Hashable, value: V) -> None:
        if key in self._items:
            self.bytes -= self._items.pop(key)[1]
        size = nbytes(value)
        self._items[key] = (value, size)
        self.bytes += size
        while self.bytes > self.budget and len(self._items) > 1:
            _, (_, dropped) = self._items.popitem(last=False)
            self.bytes -= dropped

    def __iter__(self) -> Iterator[Hashable]:
        return iter(list(self._items))

    def pop(self, key: Hashable) -> V:
        value, size = self._items.pop(key)
        self.bytes -= size
        return value


def memory_budget() -> int:
    """FSPEC_MEMORY (bytes, or with a K, M or G suffix), else 2 GiB: what the data caches of a run may hold."""
    text = os.environ.get("FSPEC_MEMORY", "").strip()
    if not text:
        return DEFAULT_BUDGET
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    number, scale = (text[:-1], units[text[-1].upper()]) if text[-1].upper() in units else (text, 1)
    if not number.isdigit() or int(number) < 1:
        raise UsageError(
            f"FSPEC_MEMORY={text!r} is not an amount of memory",
            "set it to bytes or e.g. 512M or 4G, or unset it for 2G",
        )
    return int(number) * scale
