"""Scalar helpers that generated tick kernels call; NaN in gives NaN out, like numpy."""

from __future__ import annotations

import math

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
