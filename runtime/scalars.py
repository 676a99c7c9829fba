"""Helpers that generated tick kernels call: scalar functions (NaN in gives NaN out, like numpy) and a
memory prefetch hint."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from llvmlite import ir
from numba import config, njit, types
from numba.extending import intrinsic


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


# numpy functions that a kernel calls, each compiled once into numba's disk cache here: a kernel that calls
# np.searchsorted itself has numba compile numpy's implementation again (0.6 s) each time it is compiled, and
# np.full and np.mean another 0.4 s; called through these, the implementations load from the cache.


@njit(cache=True, nogil=True)
def bar_stops(ts: np.ndarray, bar_ends: np.ndarray) -> np.ndarray:
    """One past each bar's last tick: ``np.searchsorted(ts, bar_ends)`` (ticks in time order)."""
    return np.searchsorted(ts, bar_ends)


@njit(cache=True, nogil=True)
def filled(n: int, value: float) -> np.ndarray:
    """A float64 array of ``n`` values ``value`` (``np.full``)."""
    return np.full(n, value)


@njit(cache=True, nogil=True)
def mean_of(values: np.ndarray) -> float:
    """``np.mean`` of a float64 array."""
    return np.mean(values)


@intrinsic
def prefetch(typingctx: Any, array: types.Type, index: types.Type) -> Any:
    """Start loading the cache line of ``array[index]`` (a 1-d contiguous array) without waiting for it.

    A hint with no result: it changes no value, and it never faults, even for an index past the end (the
    loop asks for a row a fixed distance ahead and does not check where the array ends). Without it the
    per-tick loop waits on memory more than it computes: ``python -m benchmarks.kernels`` on the benchmark's
    kernel and a copy without its prefetch lines gave 10.9 against 15.6 ms per 2M-tick call (median of 21).
    """
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


if config.DISABLE_JIT:  # generated kernels run as plain Python (to step through them): the hint does nothing

    def prefetch(array: Any, index: Any) -> None:  # type: ignore[no-redef]
        """No memory hint without compiled code."""
