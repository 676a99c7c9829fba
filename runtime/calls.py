"""Kernel calls ready to run on any thread, and how a day's calls are shared out among the threads.

One call reduces one instrument's session (or half of one, to even out the threads); the short sessions of a
source and day run together in batches (the kernels take many entities with their row offsets), so a
universe of hundreds of members is a few calls a day, not hundreds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from types import ModuleType

import numpy as np

from fspec.runtime.kernels import reduce_entities, reduce_session


@dataclass
class KernelCall:
    """One instrument's session through its source's kernel, ready to run on any thread."""

    pair: tuple[str, str]
    block: int  # the day's position in the pair's blocks
    module: ModuleType
    ts: np.ndarray
    bar_ends: np.ndarray  # the grid's bar ends that day (UTC ns)
    columns: list[np.ndarray]
    params: np.ndarray
    out: np.ndarray | None = None  # where the slots go, (slots, bars); None: a new array

    @property
    def ticks(self) -> int:
        return int(self.ts.shape[0])

    def run(self) -> tuple[KernelCall, np.ndarray]:
        return self, reduce_session(self.module, self.ts, self.bar_ends, self.columns, self.params, out=self.out)

    def halves(self) -> tuple[Callable[[], None], Callable[[], tuple[KernelCall, np.ndarray]]] | None:
        """The session as two calls split at the bar edge before its middle tick; the second continues the
        first's tick-level state, so it must start after the first has started (it waits for it to end).
        None if there is no such edge."""
        n = self.ticks
        bar = int(np.searchsorted(self.bar_ends, self.ts[n // 2], side="right")) if n else 0
        if bar <= 0 or bar >= len(self.bar_ends):
            return None
        m = int(np.searchsorted(self.ts, self.bar_ends[bar - 1]))
        if m <= 0 or m >= n:
            return None
        carry = np.empty(self.module.CARRY, dtype=np.float64)
        first_done = threading.Event()
        first_out: list[np.ndarray] = []

        def first() -> None:
            try:
                part = [c[:m] for c in self.columns]
                ends = self.bar_ends[:bar]
                first_out.append(reduce_session(self.module, self.ts[:m], ends, part, self.params, carry))
            finally:
                first_done.set()

        def second() -> tuple[KernelCall, np.ndarray]:
            first_done.wait()
            if not first_out:
                raise RuntimeError("the first part of a split kernel call failed")
            part = [c[m:] for c in self.columns]
            rest = reduce_session(self.module, self.ts[m:], self.bar_ends[bar:], part, self.params, carry, True)
            return self, np.concatenate([first_out[0], rest], axis=1)

        return first, second


@dataclass
class BatchCall:
    """The sessions of several instruments of one source on one day in one kernel call (their rows one after
    another, with offsets): a universe of hundreds of short sessions is a few calls, not hundreds."""

    calls: list[KernelCall]

    @property
    def ticks(self) -> int:
        return sum(c.ticks for c in self.calls)

    def run(self) -> list[tuple[KernelCall, np.ndarray]]:
        first = self.calls[0]
        module, bar_ends = first.module, first.bar_ends
        starts = np.zeros(len(self.calls) + 1, dtype=np.int64)
        np.cumsum([c.ticks for c in self.calls], out=starts[1:])
        ts = np.concatenate([c.ts for c in self.calls])
        columns = [np.concatenate([c.columns[k] for c in self.calls]) for k in range(len(first.columns))]
        params = np.stack([c.params for c in self.calls]) if module.PARAMS else np.empty((len(self.calls), 0))
        carry = np.empty((len(self.calls), module.CARRY), dtype=np.float64)
        out = np.empty((len(self.calls), len(module.SLOTS), len(bar_ends)), dtype=np.float64)
        reduce_entities(module, ts, starts, bar_ends, columns, params, carry, False, out)
        return [(call, out[e]) for e, call in enumerate(self.calls)]


# A session of fewer ticks than this is run in a call with others of its source and day (see ``batched``);
# a longer one gets a call of its own (and may be split in two halves to share the threads out). A batch copies
# its sessions' rows into one run: worth it while the copy costs less than a call (about 0.1 ms), not for
# sessions of tens of thousands of ticks (500 instruments of 20,000 ticks copied 0.5 GB).
BATCH_TICKS = 2_000


def batched(calls: list[KernelCall], workers: int) -> tuple[list[KernelCall], list[BatchCall]]:
    """The calls that run alone, and batches of the short ones: per source and day, ``workers`` batches of about
    equal ticks (the instruments' order kept), when that makes batches of more than one call."""
    alone: list[KernelCall] = []
    groups: dict[tuple[str, int], list[KernelCall]] = {}
    for call in calls:
        if call.ticks < BATCH_TICKS:
            groups.setdefault((call.pair[0], id(call.bar_ends)), []).append(call)
        else:
            alone.append(call)
    batches: list[BatchCall] = []
    for group in groups.values():
        if len(group) <= workers:
            alone += group
            continue
        total = sum(c.ticks for c in group) or 1
        cuts = np.searchsorted(np.cumsum([c.ticks for c in group]), np.arange(1, workers) * total / workers)
        for part in np.split(np.arange(len(group)), np.unique(np.clip(cuts, 1, len(group) - 1))):
            batches.append(BatchCall([group[k] for k in part]))
    return alone, batches


Job = Callable[[], list[tuple[KernelCall, np.ndarray]]]


def schedule(calls: list[KernelCall], workers: int) -> list[Job]:
    """Jobs for ``workers`` threads taking them in order, each giving its calls' slots: the short sessions of a
    source in batches (``batched``); longest first, so that a big instrument does not start last and run alone;
    and when the calls do not share out evenly (5 on 2 threads), the smallest leftover ones split in two halves,
    the first halves first and the second halves last (they continue the first)."""
    alone, batches = batched(calls, workers)
    calls = sorted(alone, key=lambda c: -c.ticks)
    leftover = len(calls) % workers if workers > 1 and len(calls) > workers else 0
    firsts: list[Callable[[], None]] = []
    seconds: list[Job] = []
    whole: list[Job] = [b.run for b in sorted(batches, key=lambda b: -b.ticks)]
    for k, call in enumerate(calls):
        halves = call.halves() if k >= len(calls) - leftover else None
        if halves is None:
            whole.append(partial(_alone, call))
        else:
            firsts.append(halves[0])
            seconds.append(partial(_second_half, halves[1]))
    return [*(partial(_first_half, f) for f in firsts), *whole, *seconds]


def _alone(call: KernelCall) -> list[tuple[KernelCall, np.ndarray]]:
    return [call.run()]


def _first_half(run: Callable[[], None]) -> list[tuple[KernelCall, np.ndarray]]:
    run()
    return []


def _second_half(run: Callable[[], tuple[KernelCall, np.ndarray]]) -> list[tuple[KernelCall, np.ndarray]]:
    return [run()]
