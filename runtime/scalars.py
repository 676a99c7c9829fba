"""Scalar helpers that generated tick kernels call; NaN in gives NaN out, like numpy."""

from __future__ import annotations

import numpy as np
from numba import njit


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
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x
