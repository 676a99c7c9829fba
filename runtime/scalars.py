"""Helpers that generated tick kernels call: scalar functions (NaN in gives NaN out, like numpy) and a
memory prefetch hint."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fspec.jit import intrinsic, jit_disabled, njit


@njit(cache=True, inline="always")
def sign(x: float) -> float:
    if x > 0.0:
        return 1.0
    if x < 0.0:
        return -1.0
    return x  # 0.0 stays 0.0 and NaN stays NaN


@njit(cache=True, inline="always")
def min2(x: float, y: float) -> float:
    if x != x or y != y:
        return np.nan
    return x if x < y else y


@njit(cache=True, inline="always")
def max2(x: float, y: float) -> float:
    if x != x or y != y:
        return np.nan
    return x if x > y else y


@njit(cache=True, inline="always")
def clip(x: float, lo: float, hi: float) -> float:
    if x != x or lo != lo or hi != hi:
        return np.nan
    y = hi if x > hi else x
    return lo if y < lo else y  # lo wins when lo > hi, as documented


@njit(cache=True)
def vpin_imbalance(changes: np.ndarray, count: int, latest: int) -> float:
    """|V_buy - V_sell| / V of the latest bucket by bulk classification: |2 * Phi(dP / sigma) - 1|.

    sigma is the sample standard deviation of the last ``count`` bucket price changes in ``changes`` (a ring);
    with fewer than 2 changes, or sigma = 0, the bucket counts as half buys (imbalance 0).
    """
    if count < 2:
        return 0.0
    mean = 0.0
    for j in range(count):
        mean += changes[j]
    mean /= count
    ss = 0.0
    for j in range(count):
        ss += (changes[j] - mean) ** 2
    sigma = math.sqrt(ss / (count - 1))
    if sigma == 0.0:
        return 0.0
    phi = 0.5 * (1.0 + math.erf(changes[latest] / sigma / math.sqrt(2.0)))
    return abs(2.0 * phi - 1.0)


# What a kernel would otherwise ask numpy for, written as loops: numba compiles numpy's implementations of
# np.searchsorted, np.full and np.mean (their typing for every dtype and shape, 0.6 s for searchsorted alone)
# wherever they are called, and these loops in a small fraction of that; each is also compiled once into
# numba's disk cache, so a kernel links it rather than compiling it again. They give numpy's values.


@njit(cache=True, nogil=True)
def bar_stops(ts: np.ndarray, bar_ends: np.ndarray) -> np.ndarray:
    """One past each bar's last tick: ``np.searchsorted(ts, bar_ends)`` (ticks in time order), each by a
    binary search for the first tick at or after the bar's end."""
    n = ts.shape[0]
    out = np.empty(bar_ends.shape[0], dtype=np.int64)
    for b in range(bar_ends.shape[0]):
        end = bar_ends[b]
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi) >> 1
            if ts[mid] < end:
                lo = mid + 1
            else:
                hi = mid
        out[b] = lo
    return out


@njit(cache=True, nogil=True)
def filled(n: int, value: float) -> np.ndarray:
    """A float64 array of ``n`` values ``value`` (``np.full``)."""
    out = np.empty(n, dtype=np.float64)
    for i in range(n):
        out[i] = value
    return out


@njit(cache=True, nogil=True)
def mean_of(values: np.ndarray) -> float:
    """``np.mean`` of a float64 array: the sum in order, divided by the count (NaN for no values)."""
    n = values.shape[0]
    if n == 0:
        return np.nan
    total = 0.0
    for i in range(n):
        total += values[i]
    return total / n


@intrinsic
def prefetch(typingctx: Any, array: Any, index: Any) -> Any:
    """Start loading the cache line of ``array[index]`` (a 1-d contiguous array) without waiting for it.

    A hint with no result: it changes no value, and it never faults, even for an index past the end (the
    loop asks for a row a fixed distance ahead and does not check where the array ends). Without it the
    per-tick loop waits on memory more than it computes: ``python -m benchmarks.kernels`` on the benchmark's
    kernel and a copy without its prefetch lines gave 10.9 against 15.6 ms per 2M-tick call (median of 21).
    """
    from llvmlite import ir  # numba's own (this runs while numba types a kernel)
    from numba import types

    if not (isinstance(array, types.Array) and array.ndim == 1 and array.layout == "C"):
        return None
    if not isinstance(index, types.Integer):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        address = builder.bitcast(builder.gep(data, [args[1]]), ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        function = builder.module.declare_intrinsic(
            "llvm.prefetch",
            [address.type],
            fnty=ir.FunctionType(ir.VoidType(), [address.type, i32, i32, i32]),
        )
        # read (0), keep in all cache levels (locality 3), data cache (1)
        builder.call(function, [address, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(array, index), codegen


if jit_disabled():  # generated kernels run as plain Python (to step through them): the hint does nothing

    def prefetch(array: Any, index: Any) -> None:  # type: ignore[no-redef]
        """No memory hint without compiled code."""
