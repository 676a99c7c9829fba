"""Black implied volatility by Peter Jäckel's "Let's Be Rational" (Wilmott, 2015), ported to numba.

The algorithm, its branches, thresholds and constants are Jäckel's; this is a port of his reference
implementation of 2013-2014 (``LetsBeRational.7z`` at jaeckel.org, the version the vollib packages
``py_lets_be_rational``/``lets_be_rational`` follow), re-arranged for numba, with no runtime dependency. His
notice, which the licence asks to be kept:

======================================================================================
Copyright © 2013-2014 Peter Jäckel.

Permission to use, copy, modify, and distribute this software is freely granted,
provided that this notice is preserved.

WARRANTY DISCLAIMER
The Software is provided "as is" without warranty of any kind, either express or implied,
including without limitation any implied warranties of condition, uninterrupted use,
merchantability, fitness for a particular purpose, or non-infringement.
======================================================================================

Notation (Jäckel's): for a forward F, strike K, total volatility s = σ√T and x = ln(F/K), the normalised
Black call is b(x, s) = Φ(x/s + s/2)·e^{x/2} - Φ(x/s - s/2)·e^{-x/2}, the undiscounted price divided by √(FK).
The inversion maps an in-the-money option to the out-of-the-money one of the other kind (subtracting the
intrinsic value) and a put to a call (x -> -x), so it always solves b(x, s) = β for x <= 0. Four segments of
β, split at b(x, s_c) with s_c = √(2|x|) (the inflection point), get an initial guess from a rational cubic
interpolation of s(β) (the two middle ones) or of a transformed function of β whose inverse is explicit (the
lowest and the highest); then two Householder steps of third order on an objective function chosen per
segment give the machine-precision answer.

Two corrections against the pure-Python port: the upper segment's iteration is the C++ one (the Python one
resets its bracketing state on every step), and its guard on the second derivative is the C++ pair of
bounds. Re-arranged for speed, with the same mathematics: the coefficients of the asymptotic expansion are
computed from their closed form instead of being written out (the same numbers); the small-t expansion is
summed as two polynomials that do not wait for erfcx; b(x, s) and its vega share their exponential; and
multiply-adds may be fused (numba's fastmath flags ``contract`` and ``arcp`` only, so NaN and infinity keep
their IEEE behaviour). The result agrees with the package to about 1e-13 (docs/options.md).
"""

from __future__ import annotations

import math
from math import comb

import numpy as np

from fspec.jit import njit
from fspec.options.normal import (
    DBL_EPSILON,
    ONE_OVER_SQRT_TWO,
    ONE_OVER_SQRT_TWO_PI,
    erfcx,
    inverse_norm_cdf,
    norm_cdf,
    norm_pdf,
)

_JIT = {"cache": True, "nogil": True, "error_model": "numpy", "fastmath": {"contract", "arcp"}}

DBL_MIN = float(np.finfo(np.float64).tiny)
DBL_MAX = float(np.finfo(np.float64).max)
SQRT_DBL_MIN = math.sqrt(DBL_MIN)
SQRT_DBL_MAX = math.sqrt(DBL_MAX)
SQRT_DBL_EPSILON = math.sqrt(DBL_EPSILON)
FOURTH_ROOT_DBL_EPSILON = math.sqrt(SQRT_DBL_EPSILON)
SIXTEENTH_ROOT_DBL_EPSILON = math.sqrt(math.sqrt(FOURTH_ROOT_DBL_EPSILON))

# Jäckel's setting: 0 lets positive subnormal prices through (they cannot converge to full accuracy anyway).
DENORMALIZATION_CUTOFF = 0.0

SQRT_TWO_PI = 2.506628274631000502415765284811045253006986740610
TWO_PI = 6.283185307179586476925286766559005768394338798750
SQRT_PI_OVER_TWO = 1.253314137315500251207882642405522626503493370305
SQRT_THREE = 1.732050807568877293527446341505872366942805253810
SQRT_ONE_OVER_THREE = 0.577350269189625764509148780501957455647601751270
TWO_PI_OVER_SQRT_TWENTY_SEVEN = 1.209199576156145233729385505094770488189377498728
PI_OVER_SIX = 0.523598775598298873077107230546583814032861566563

# Householder steps: two give full machine precision everywhere (Jäckel, section 5).
MAXIMUM_ITERATIONS = 2
# Region 1 of the normalised Black function: h = x/s below η and t = s/2 below τ + |h| - |η|.
_ETA = -10.0
# Region 2: t = s/2 below τ = 2·ε^(1/16) ≈ 0.21, where the small-t expansion is accurate to ε.
_TAU = 2.0 * SIXTEENTH_ROOT_DBL_EPSILON

# The values the C++ returns to signal a price out of range.
VOLATILITY_VALUE_TO_SIGNAL_PRICE_IS_BELOW_INTRINSIC = -DBL_MAX
VOLATILITY_VALUE_TO_SIGNAL_PRICE_IS_ABOVE_MAXIMUM = DBL_MAX

# Rational cubic control parameter bounds (Delbourgo & Gregory's r > -1; large r means linear).
_MIN_RATIONAL_CUBIC_CONTROL = -(1.0 - SQRT_DBL_EPSILON)
_MAX_RATIONAL_CUBIC_CONTROL = 2.0 / (DBL_EPSILON * DBL_EPSILON)


def _double_factorial(n: int) -> int:
    out = 1
    while n > 1:
        out *= n
        n -= 2
    return out


def _asymptotic_coefficients(order: int = 17) -> np.ndarray:
    """Coefficients c[k, j] of A(h, t) = Σ_k q^k Σ_j c[k, j]·e^j (see _asymptotic_factor), from
    c[k, j] = (-1)^k (2k-1)!! · 2·C(2k+1, 2j+1): the series Y(z) ~ -1/z·Σ (-1)^n (2n-1)!!/z^(2n) of A&S (26.2.12)
    applied to Y(h+t) - Y(h-t). Exact integers, rounded once to double."""
    c = np.zeros((order + 1, order + 1))
    for k in range(order + 1):
        for j in range(k + 1):
            c[k, j] = float((-1) ** k * _double_factorial(2 * k - 1) * 2 * comb(2 * k + 1, 2 * j + 1))
    return c


_ASYMPTOTIC = _asymptotic_coefficients()


@njit(**_JIT)
def _is_below_horizon(x: float) -> bool:
    """Jäckel's guard against subnormal numbers; with his cutoff of 0 nothing is below it, so subnormal inputs
    run through the formulas like any other (and lose accuracy, as any method must)."""
    return abs(x) < DENORMALIZATION_CUTOFF


@njit(**_JIT)
def _householder_factor(newton: float, halley: float, hh3: float) -> float:
    """The step of Householder's method of order 3 over the Newton step: s += newton·factor."""
    return (1.0 + 0.5 * halley * newton) / (1.0 + newton * (halley + hh3 * newton / 6.0))


# ---- the normalised Black function ---------------------------------------------------------------------


@njit(**_JIT)
def normalised_intrinsic(x: float, q: float) -> float:
    """Intrinsic value of the normalised option, (e^{x/2} - e^{-x/2})⁺ for a call (q=1); a Taylor series for
    small |x|, where the difference of exponentials would cancel."""
    if q * x <= 0.0:
        return 0.0
    x2 = x * x
    sign = -1.0 if q < 0.0 else 1.0
    # 98 ≈ the fourth root of the last coefficient's denominator, 92897280.
    if x2 < 98.0 * FOURTH_ROOT_DBL_EPSILON:
        series = 1.0 + x2 * (1.0 / 24.0 + x2 * (1.0 / 1920.0 + x2 * (1.0 / 322560.0 + x2 / 92897280.0)))
        return abs(max(sign * x * series, 0.0))
    b_max = math.exp(0.5 * x)
    return abs(max(sign * (b_max - 1.0 / b_max), 0.0))


@njit(**_JIT)
def _asymptotic_factor(h: float, t: float) -> float:
    """Region 1, h = x/s very negative and t - |h| very negative: b = e^{-(h²+t²)/2}/√(2π)·(t/r)·A(h, t), with
    r = (h+t)(h-t), q = (h/r)², e = (t/h)², and A summed to 17th order in q, which gives Φ relative accuracy
    1.64e-16 for h <= -10. One exponential instead of four keeps the last digits."""
    e = (t / h) * (t / h)
    r = (h + t) * (h - t)
    q = (h / r) * (h / r)
    n = _ASYMPTOTIC.shape[0]
    total = 0.0
    for k in range(n - 1, -1, -1):  # Horner's rule in q over polynomials in e
        c = 0.0
        for j in range(k, -1, -1):
            c = c * e + _ASYMPTOTIC[k, j]
        total = total * q + c
    return (t / r) * total


# The small-t expansion (region 2): [Y(h+t) - Y(h-t)]/(2t) = a + Σ_{k=1..6} w^k·(P_k(h²) + a·Q_k(h²))/n_k with
# w = t², a = 1 + h·Y(h). Jäckel's integer coefficients, lowest power of h² first.
_SMALL_T_N = (6.0, 120.0, 5040.0, 362880.0, 39916800.0, 6227020800.0)
_SMALL_T_P = (
    (-1.0,),
    (-7.0, -1.0),
    (-57.0, -18.0, -1.0),
    (-561.0, -285.0, -33.0, -1.0),
    (-6555.0, -4680.0, -840.0, -52.0, -1.0),
    (-89055.0, -82845.0, -20370.0, -1926.0, -75.0, -1.0),
)
_SMALL_T_Q = (
    (3.0, 1.0),
    (15.0, 10.0, 1.0),
    (105.0, 105.0, 21.0, 1.0),
    (945.0, 1260.0, 378.0, 36.0, 1.0),
    (10395.0, 17325.0, 6930.0, 990.0, 55.0, 1.0),
    (135135.0, 270270.0, 135135.0, 25740.0, 2145.0, 78.0, 1.0),
)


def _small_t_table(rows: tuple[tuple[float, ...], ...]) -> np.ndarray:
    """The coefficients over n_k in a square table (row k-1 for w^k, column j for h^(2j)), zero-padded."""
    table = np.zeros((6, 7))
    for k, row in enumerate(rows):
        table[k, : len(row)] = np.array(row) / _SMALL_T_N[k]
    return table


_SMALL_T_P_TABLE = _small_t_table(_SMALL_T_P)
_SMALL_T_Q_TABLE = _small_t_table(_SMALL_T_Q)


@njit(inline="always", **_JIT)
def _in_w(table: np.ndarray, w: float, h2: float) -> float:
    """Σ_k w^(k+1)·Σ_j table[k, j]·h2^j by Horner's rule in both."""
    total = 0.0
    for k in range(5, -1, -1):
        c = 0.0
        for j in range(6, -1, -1):
            c = c * h2 + table[k, j]
        total = (total + c) * w
    return total


@njit(**_JIT)
def _small_t_factor(h: float, t: float) -> float:
    """Region 2, t = s/2 < τ ≈ 0.21: b = e^{-(h²+t²)/2}/√(2π)·[Y(h+t) - Y(h-t)], the bracket expanded to
    12th order in t, with Y(z) = Φ(z)/φ(z) = √(π/2)·erfcx(-z/√2); accurate to ε for h <= 0. The weak spot is
    a = 1 + h·Y(h) for |h| > 1, which is why erfcx (no cancellation) gives Y. The sums over the polynomials
    in h² do not need a, so they run alongside erfcx; only two multiply-adds wait for it."""
    w = t * t
    h2 = h * h
    sum_p = _in_w(_SMALL_T_P_TABLE, w, h2)
    sum_q = _in_w(_SMALL_T_Q_TABLE, w, h2)
    a = 1.0 + h * (0.5 * SQRT_TWO_PI) * erfcx(-ONE_OVER_SQRT_TWO * h)
    return 2.0 * t * (a + (sum_p + a * sum_q))


@njit(**_JIT)
def _using_norm_cdf(x: float, s: float) -> float:
    """Region 3, b above ~85% of e^{x/2}: the first term dominates and the plain formula keeps accuracy."""
    h = x / s
    t = 0.5 * s
    b_max = math.exp(0.5 * x)
    b = norm_cdf(h + t) * b_max - norm_cdf(h - t) / b_max
    return abs(max(b, 0.0))


@njit(**_JIT)
def _erfcx_factor(h: float, t: float) -> float:
    """Region 4, the rest: b = ½·e^{-(h²+t²)/2}·[erfcx(-(h+t)/√2) - erfcx(-(h-t)/√2)], one exponential and a
    difference of two rational functions, instead of products of exponentials with ~14 good digits each."""
    return erfcx(-ONE_OVER_SQRT_TWO * (h + t)) - erfcx(-ONE_OVER_SQRT_TWO * (h - t))


@njit(inline="always", **_JIT)
def _black_and_vega_otm(x: float, s: float) -> tuple[float, float]:
    """b(x, s) and its vega ∂b/∂s = e^{-(h²+t²)/2}/√(2π) for x <= 0, h = x/s, t = s/2. Regions 1, 2 and 4 of b
    carry the vega's exponential as a factor, so the pair costs one exponential; where only b is used the
    compiler drops the vega."""
    ax = abs(x)
    if s <= 0.0 or s <= ax * SQRT_DBL_MIN:  # s = 0, or x/s would overflow: b is the intrinsic value (0)
        return normalised_intrinsic(x, 1.0), ONE_OVER_SQRT_TWO_PI if ax <= 0.0 else 0.0
    h = x / s
    t = 0.5 * s
    e = math.exp(-0.5 * (h * h + t * t))
    vega = ONE_OVER_SQRT_TWO_PI * e
    # h < η and t < τ + |h| - |η|, written without dividing by s.
    if x < s * _ETA and 0.5 * s * s + x < s * (_TAU + _ETA):
        b = vega * _asymptotic_factor(h, t)
    elif t < _TAU:
        b = vega * _small_t_factor(h, t)
    elif x + 0.5 * s * s > s * 0.85:  # h + t > 0.85, written without dividing by s
        b = _using_norm_cdf(x, s)
    else:
        b = 0.5 * e * _erfcx_factor(h, t)
    return abs(max(b, 0.0)), vega


@njit(**_JIT)
def _normalised_black_call_otm(x: float, s: float) -> float:
    """b(x, s) for x <= 0, choosing among the four regions."""
    return _black_and_vega_otm(x, s)[0]


@njit(**_JIT)
def normalised_black_call(x: float, s: float) -> float:
    """b(x, s); an in-the-money call is its intrinsic value plus the out-of-the-money one (put-call parity)."""
    if x > 0.0:
        return normalised_intrinsic(x, 1.0) + _normalised_black_call_otm(-x, s)
    return _normalised_black_call_otm(x, s)


@njit(**_JIT)
def normalised_vega(x: float, s: float) -> float:
    """∂b/∂s = e^{-(x²/s² + s²/4)/2}/√(2π); 0 where x/s would overflow."""
    ax = abs(x)
    if ax <= 0.0:
        return ONE_OVER_SQRT_TWO_PI * math.exp(-0.125 * s * s)
    if s <= 0.0 or s <= ax * SQRT_DBL_MIN:
        return 0.0
    return ONE_OVER_SQRT_TWO_PI * math.exp(-0.5 * ((x / s) * (x / s) + (0.5 * s) * (0.5 * s)))


@njit(**_JIT)
def normalised_black(x: float, s: float, q: float) -> float:
    """Normalised call (q=1) or put (q=-1): a put at x is a call at -x (reciprocal-strike equivalence)."""
    return normalised_black_call(-x if q < 0.0 else x, s)


@njit(**_JIT)
def black(F: float, K: float, sigma: float, T: float, q: float) -> float:
    """Undiscounted Black price of a call (q=1) or put (q=-1)."""
    intrinsic = abs(max(K - F if q < 0.0 else F - K, 0.0))
    if q * (F - K) > 0.0:  # in the money: intrinsic plus the other kind, out of the money
        q = -q
    return intrinsic + max(
        0.0, math.sqrt(F) * math.sqrt(K) * normalised_black(math.log(F / K), sigma * math.sqrt(T), q)
    )


# ---- rational cubic interpolation (Delbourgo & Gregory 1985, as in Jäckel's rationalcubic.cpp) ----------


@njit(**_JIT)
def _is_zero(x: float) -> bool:
    return abs(x) < DBL_MIN


@njit(**_JIT)
def rational_cubic_interpolation(
    x: float, x_l: float, x_r: float, y_l: float, y_r: float, d_l: float, d_r: float, r: float
) -> float:
    """The rational cubic through (x_l, y_l) and (x_r, y_r) with slopes d_l, d_r and control parameter r
    (r = 3 is the cubic Hermite; r -> ∞ the straight line, used directly so nothing overflows)."""
    h = x_r - x_l
    if abs(h) <= 0.0:
        return 0.5 * (y_l + y_r)
    t = (x - x_l) / h
    if not (r >= _MAX_RATIONAL_CUBIC_CONTROL):  # also lets NaN through, as the C++ does
        omt = 1.0 - t
        t2 = t * t
        omt2 = omt * omt
        num = y_r * t2 * t + (r * y_r - h * d_r) * t2 * omt + (r * y_l + h * d_l) * t * omt2 + y_l * omt2 * omt
        return num / (1.0 + (r - 3.0) * t * omt)
    return y_r * t + y_l * (1.0 - t)


@njit(**_JIT)
def _control_to_fit_second_derivative_left(
    x_l: float, x_r: float, y_l: float, y_r: float, d_l: float, d_r: float, second_l: float
) -> float:
    h = x_r - x_l
    numerator = 0.5 * h * second_l + (d_r - d_l)
    if _is_zero(numerator):
        return 0.0
    denominator = (y_r - y_l) / h - d_l
    if _is_zero(denominator):
        return _MAX_RATIONAL_CUBIC_CONTROL if numerator > 0.0 else _MIN_RATIONAL_CUBIC_CONTROL
    return numerator / denominator


@njit(**_JIT)
def _control_to_fit_second_derivative_right(
    x_l: float, x_r: float, y_l: float, y_r: float, d_l: float, d_r: float, second_r: float
) -> float:
    h = x_r - x_l
    numerator = 0.5 * h * second_r + (d_r - d_l)
    if _is_zero(numerator):
        return 0.0
    denominator = d_r - (y_r - y_l) / h
    if _is_zero(denominator):
        return _MAX_RATIONAL_CUBIC_CONTROL if numerator > 0.0 else _MIN_RATIONAL_CUBIC_CONTROL
    return numerator / denominator


@njit(**_JIT)
def _minimum_control_for_shape(d_l: float, d_r: float, s: float, prefer_shape: bool) -> float:
    """The least r that keeps the interpolant monotone (their 3.8) and convex or concave (3.18) where the
    data are."""
    monotonic = d_l * s >= 0.0 and d_r * s >= 0.0
    convex = d_l <= s <= d_r
    concave = d_l >= s >= d_r
    if not monotonic and not convex and not concave:
        return _MIN_RATIONAL_CUBIC_CONTROL
    r1 = -DBL_MAX
    r2 = -DBL_MAX
    if monotonic:
        if not _is_zero(s):
            r1 = (d_r + d_l) / s
        elif prefer_shape:
            r1 = _MAX_RATIONAL_CUBIC_CONTROL
    if convex or concave:
        s_minus_d_l = s - d_l
        d_r_minus_s = d_r - s
        if not (_is_zero(s_minus_d_l) or _is_zero(d_r_minus_s)):
            d_r_minus_d_l = d_r - d_l
            r2 = max(abs(d_r_minus_d_l / d_r_minus_s), abs(d_r_minus_d_l / s_minus_d_l))
        elif prefer_shape:
            r2 = _MAX_RATIONAL_CUBIC_CONTROL
    elif monotonic and prefer_shape:
        r2 = _MAX_RATIONAL_CUBIC_CONTROL
    return max(_MIN_RATIONAL_CUBIC_CONTROL, max(r1, r2))


@njit(**_JIT)
def _convex_control_left(
    x_l: float, x_r: float, y_l: float, y_r: float, d_l: float, d_r: float, second_l: float, prefer_shape: bool
) -> float:
    r = _control_to_fit_second_derivative_left(x_l, x_r, y_l, y_r, d_l, d_r, second_l)
    return max(r, _minimum_control_for_shape(d_l, d_r, (y_r - y_l) / (x_r - x_l), prefer_shape))


@njit(**_JIT)
def _convex_control_right(
    x_l: float, x_r: float, y_l: float, y_r: float, d_l: float, d_r: float, second_r: float, prefer_shape: bool
) -> float:
    r = _control_to_fit_second_derivative_right(x_l, x_r, y_l, y_r, d_l, d_r, second_r)
    return max(r, _minimum_control_for_shape(d_l, d_r, (y_r - y_l) / (x_r - x_l), prefer_shape))


# ---- the transformed maps for the lowest and highest segments -------------------------------------------


@njit(**_JIT)
def _f_lower_map(x: float, s: float) -> tuple[float, float, float]:
    """f(β) = 2π/√27·|x|·Φ(-z)³ with z = |x|/(√3 s), and its first two derivatives in β. Near β = 0 the
    price behaves like this f, whose inverse is explicit (_inverse_f_lower_map)."""
    ax = abs(x)
    z = SQRT_ONE_OVER_THREE * ax / s
    y = z * z
    s2 = s * s
    phi_cdf = norm_cdf(-z)
    phi = norm_pdf(z)
    growth = math.exp(y + 0.125 * s2)  # squared, it is fpp's exp(2y + s²/4): one exponential less
    fpp = (
        PI_OVER_SIX
        * y
        / (s2 * s)
        * phi_cdf
        * (8.0 * SQRT_THREE * s * ax + (3.0 * s2 * (s2 - 8.0) - 8.0 * x * x) * phi_cdf / phi)
        * (growth * growth)
    )
    if _is_below_horizon(s):
        return 0.0, 1.0, fpp
    phi2 = phi_cdf * phi_cdf
    fp = TWO_PI * y * phi2 * growth
    f = 0.0 if _is_below_horizon(x) else TWO_PI_OVER_SQRT_TWENTY_SEVEN * ax * (phi2 * phi_cdf)
    return f, fp, fpp


@njit(**_JIT)
def _inverse_f_lower_map(x: float, f: float) -> float:
    if _is_below_horizon(f):
        return 0.0
    return abs(x / (SQRT_THREE * inverse_norm_cdf((f / (TWO_PI_OVER_SQRT_TWENTY_SEVEN * abs(x))) ** (1.0 / 3.0))))


@njit(**_JIT)
def _f_upper_map(x: float, s: float) -> tuple[float, float, float]:
    """f(β) = Φ(-s/2) and its first two derivatives in β: near b_max the price behaves like this."""
    f = norm_cdf(-0.5 * s)
    if _is_below_horizon(x):
        return f, -0.5, 0.0
    w = (x / s) * (x / s)
    return f, -0.5 * math.exp(0.5 * w), SQRT_PI_OVER_TWO * math.exp(w + 0.125 * s * s) * w / s


@njit(**_JIT)
def _inverse_f_upper_map(f: float) -> float:
    return -2.0 * inverse_norm_cdf(f)


# ---- the inversion ---------------------------------------------------------------------------------------
#
# Householder(3): s += newton·[1 + halley·newton/2]/[1 + newton·(halley + hh3·newton/6)], newton = -g/g',
# halley = g''/g', hh3 = g'''/g' for the segment's objective g. Each loop keeps a bracket [s_left, s_right];
# a step that leaves it, or a third change of direction, falls back to bisection (only for |x| > ~500).

_LOWER = 0
_MIDDLE = 1
_UPPER = 2


@njit(**_JIT)
def _iterate(
    beta: float, x: float, s: float, s_left: float, s_right: float, b_max: float, objective: int, n: int
) -> float:
    """Up to n Householder(3) steps from s on b(x, s) = β (x <= 0), objective per segment:
    lower   g = 1/ln b(s) - 1/ln β          (b spans many orders of magnitude there)
    middle  g = b(s) - β
    upper   g = ln(b_max - β) - ln(b_max - b(s))   (b close to its supremum b_max = e^{x/2})."""
    ds = -DBL_MAX
    ds_previous = 0.0
    reversals = 0
    iterations = 0
    while iterations < n and abs(ds) > DBL_EPSILON * s:
        if ds * ds_previous < 0.0:
            reversals += 1
        if iterations > 0 and (reversals == 3 or not (s_left < s < s_right)):
            s = 0.5 * (s_left + s_right)
            if s_right - s_left <= DBL_EPSILON * s:
                break
            reversals = 0
            ds = 0.0
        ds_previous = ds
        b, bp = _black_and_vega_otm(x, s)
        if b > beta and s < s_right:
            s_right = s
        elif b < beta and s > s_left:
            s_left = s
        # b''/b' and b'''/b' of the normalised Black function, in closed form.
        b_halley = (x / s) * (x / s) / s - 0.25 * s
        b_hh3 = b_halley * b_halley - 3.0 * (x / (s * s)) * (x / (s * s)) - 0.25
        if objective == _LOWER:
            if b <= 0.0 or bp <= 0.0:  # underflow: bisect this once
                ds = 0.5 * (s_left + s_right) - s
            else:
                ln_b = math.log(b)
                ln_beta = math.log(beta)
                bpob = bp / b
                newton = (ln_beta - ln_b) * ln_b / ln_beta / bpob
                halley = b_halley - bpob * (1.0 + 2.0 / ln_b)
                hh3 = (
                    b_hh3
                    + 2.0 * bpob * bpob * (1.0 + 3.0 / ln_b * (1.0 + 1.0 / ln_b))
                    - 3.0 * b_halley * bpob * (1.0 + 2.0 / ln_b)
                )
                ds = newton * _householder_factor(newton, halley, hh3)
        elif objective == _UPPER:
            if b >= b_max or bp <= DBL_MIN:  # no room left below b_max: bisect this once
                ds = 0.5 * (s_left + s_right) - s
            else:
                b_max_minus_b = b_max - b
                g = math.log((b_max - beta) / b_max_minus_b)
                gp = bp / b_max_minus_b
                newton = -g / gp
                halley = b_halley + gp
                hh3 = b_hh3 + gp * (2.0 * gp + 3.0 * b_halley)
                ds = newton * _householder_factor(newton, halley, hh3)
        else:
            newton = (beta - b) / bp
            ds = newton * _householder_factor(newton, b_halley, b_hh3)
        ds = max(-0.5 * s, ds)  # never more than halve s
        s += ds
        iterations += 1
    return s


@njit(**_JIT)
def _normalised_iv_otm_call(beta: float, x: float, n: int) -> float:
    """s with b(x, s) = β for x <= 0 and 0 < β < e^{x/2}: the four-segment initial guess, then _iterate."""
    b_max = math.exp(0.5 * x)
    s_c = math.sqrt(abs(2.0 * x))  # the inflection point of b in s
    b_c, v_c = _black_and_vega_otm(x, s_c)
    if beta < b_c:
        s_l = s_c - b_c / v_c  # where the tangent at s_c meets b = 0
        b_l, v_l = _black_and_vega_otm(x, s_l)
        if beta < b_l:
            # Lowest segment: interpolate f(β) between (0, 0) with slope 1 and (b_l, f_l), then invert f.
            f_l, fp_l, fpp_l = _f_lower_map(x, s_l)
            r = _convex_control_right(0.0, b_l, 0.0, f_l, 1.0, fp_l, fpp_l, True)
            f = rational_cubic_interpolation(beta, 0.0, b_l, 0.0, f_l, 1.0, fp_l, r)
            if not (f > 0.0):  # round-off for extreme |x|: the quadratic with f(0)=0, f'(0)=1, f(b_l)=f_l
                t = beta / b_l
                f = (f_l * t + b_l * (1.0 - t)) * t
            s = _inverse_f_lower_map(x, f)
            return _iterate(beta, x, s, DBL_MIN, s_l, b_max, _LOWER, n)
        # Lower middle segment: interpolate s(β) itself, slopes 1/vega.
        r = _convex_control_right(b_l, b_c, s_l, s_c, 1.0 / v_l, 1.0 / v_c, 0.0, False)
        s = rational_cubic_interpolation(beta, b_l, b_c, s_l, s_c, 1.0 / v_l, 1.0 / v_c, r)
        return _iterate(beta, x, s, s_l, s_c, b_max, _MIDDLE, n)
    s_h = s_c + (b_max - b_c) / v_c if v_c > DBL_MIN else s_c  # where the tangent at s_c meets b = b_max
    b_h, v_h = _black_and_vega_otm(x, s_h)
    if beta <= b_h:
        r = _convex_control_left(b_c, b_h, s_c, s_h, 1.0 / v_c, 1.0 / v_h, 0.0, False)
        s = rational_cubic_interpolation(beta, b_c, b_h, s_c, s_h, 1.0 / v_c, 1.0 / v_h, r)
        return _iterate(beta, x, s, s_c, s_h, b_max, _MIDDLE, n)
    # Highest segment: interpolate f(β) = Φ(-s/2) between (b_h, f_h) and (b_max, 0) with slope -1/2 there.
    f_h, fp_h, fpp_h = _f_upper_map(x, s_h)
    f = -DBL_MAX
    if -SQRT_DBL_MAX < fpp_h < SQRT_DBL_MAX:
        r = _convex_control_left(b_h, b_max, f_h, 0.0, fp_h, -0.5, fpp_h, True)
        f = rational_cubic_interpolation(beta, b_h, b_max, f_h, 0.0, fp_h, -0.5, r)
    if f <= 0.0:  # the quadratic with f(b_h)=f_h, f(b_max)=0, f'(b_max)=-1/2
        h = b_max - b_h
        t = (beta - b_h) / h
        f = (f_h * (1.0 - t) + 0.5 * h * t) * (1.0 - t)
    s = _inverse_f_upper_map(f)
    # Below half of b_max the plain objective b - β converges better than the logarithmic one.
    return _iterate(beta, x, s, s_h, DBL_MAX, b_max, _UPPER if beta > 0.5 * b_max else _MIDDLE, n)


@njit(**_JIT)
def normalised_implied_volatility(beta: float, x: float, q: float, n: int = MAXIMUM_ITERATIONS) -> float:
    """s = σ√T with normalised_black(x, s, q) = β; 0 for a price at or below intrinsic (no check: the caller
    decides what a price below intrinsic means), VOLATILITY_VALUE_TO_SIGNAL_PRICE_IS_ABOVE_MAXIMUM at or above
    the maximum."""
    if q * x > 0.0:  # in the money: subtract the intrinsic value, solve for the other kind
        beta = abs(max(beta - normalised_intrinsic(x, q), 0.0))
        q = -q
    if q < 0.0:  # a put at x is a call at -x
        x = -x
    if beta <= 0.0 or beta < DENORMALIZATION_CUTOFF:
        return 0.0
    if beta >= math.exp(0.5 * x):
        return VOLATILITY_VALUE_TO_SIGNAL_PRICE_IS_ABOVE_MAXIMUM
    return _normalised_iv_otm_call(beta, x, n)


@njit(**_JIT)
def implied_volatility(price: float, F: float, K: float, T: float, q: float) -> float:
    """σ of an undiscounted Black price of a call (q=1) or put (q=-1), with Jäckel's signals: -DBL_MAX below
    intrinsic, DBL_MAX at or above the maximum (F for a call, K for a put)."""
    intrinsic = abs(max(K - F if q < 0.0 else F - K, 0.0))
    if price < intrinsic:
        return VOLATILITY_VALUE_TO_SIGNAL_PRICE_IS_BELOW_INTRINSIC
    if price >= (K if q < 0.0 else F):
        return VOLATILITY_VALUE_TO_SIGNAL_PRICE_IS_ABOVE_MAXIMUM
    x = math.log(F / K)
    if q * x > 0.0:
        price = abs(max(price - intrinsic, 0.0))
        q = -q
    return normalised_implied_volatility(price / (math.sqrt(F) * math.sqrt(K)), x, q) / math.sqrt(T)
