"""The error function family and the standard normal distribution for numba kernels.

``erfc`` and ``erfcx`` (``exp(x²)·erfc(x)``) are W. J. Cody's rational Chebyshev approximations ("Rational
Chebyshev approximations for the error function", Math. Comp. 23, 1969, pp. 631-638; coefficients of his
CALERF routine of 1990), accurate to about 18 significant digits before rounding. ``norm_cdf`` uses them, and
below z = -10 the asymptotic series of Abramowitz & Stegun (26.2.12), as Peter Jäckel's "Let's Be Rational"
reference implementation does; ``inverse_norm_cdf`` is Wichura's algorithm AS241 (Appl. Statist. 37, 1988),
which is the one LBR uses (relative accuracy about 1e-16).

The arrangement follows Jäckel's C++ (see :mod:`fspec.options.lets_be_rational` for his notice); the
coefficients are Cody's and Wichura's.
"""

from __future__ import annotations

import math

import numpy as np

from fspec.jit import njit

# error_model="numpy": a division by zero gives inf/NaN as in C instead of raising, and the checks cost time.
_JIT = {"cache": True, "nogil": True, "error_model": "numpy", "fastmath": {"contract", "arcp"}}

DBL_EPSILON = float(np.finfo(np.float64).eps)
ONE_OVER_SQRT_TWO = 0.7071067811865475244008443621048490392848359376887
ONE_OVER_SQRT_TWO_PI = 0.3989422804014326779399460599343818684758586311649
_ONE_OVER_SQRT_PI = 0.56418958354775628695

# Cody's coefficients. |x| <= 0.46875: erf(x) = x·A(x²)/B(x²).
_A = np.array([3.1611237438705656, 113.864154151050156, 377.485237685302021, 3209.37758913846947, 0.185777706184603153])
_B = np.array([23.6012909523441209, 244.024637934444173, 1282.61652607737228, 2844.23683343917062])
# 0.46875 < |x| <= 4: erfcx(x) = C(x)/D(x).
_C = np.array(
    [
        0.564188496988670089,
        8.88314979438837594,
        66.1191906371416295,
        298.635138197400131,
        881.95222124176909,
        1712.04761263407058,
        2051.07837782607147,
        1230.33935479799725,
        2.15311535474403846e-8,
    ]
)
_D = np.array(
    [
        15.7449261107098347,
        117.693950891312499,
        537.181101862009858,
        1621.38957456669019,
        3290.79923573345963,
        4362.61909014324716,
        3439.36767414372164,
        1230.33935480374942,
    ]
)
# |x| > 4: erfcx(x) = (1/√π - P(1/x²)/Q(1/x²)/x²) / x.
_P = np.array(
    [
        0.305326634961232344,
        0.360344899949804439,
        0.125781726111229246,
        0.0160837851487422766,
        6.58749161529837803e-4,
        0.0163153871373020978,
    ]
)
_Q = np.array(
    [2.56852019228982242, 1.87295284992346047, 0.527905102951428412, 0.0605183413124413191, 0.00233520497626869185]
)

_THRESH = 0.46875
_XSMALL = 1.11e-16  # below this, x² does not change erf(x) = 2x/√π
_XBIG = 26.543  # erfc(x) underflows to 0 above this
_XHUGE = 6.71e7  # erfcx(x) = 1/(√π x) to machine precision above this
_XMAX = 2.53e307  # erfcx(x) underflows above this
_XNEG = -26.628  # erfcx(x) overflows below this


@njit(inline="always", **_JIT)
def _erf_small(x: float) -> float:
    """erf(x) for |x| <= 0.46875."""
    y = abs(x)
    ysq = y * y if y > _XSMALL else 0.0
    num = _A[4] * ysq
    den = ysq
    for i in range(3):
        num = (num + _A[i]) * ysq
        den = (den + _B[i]) * ysq
    return x * (num + _A[3]) / (den + _B[3])


@njit(inline="always", **_JIT)
def _erfcx_positive(y: float) -> float:
    """erfcx(y) for y > 0.46875, without any exponential (that is what keeps it accurate far out)."""
    if y <= 4.0:
        num = _C[8] * y
        den = y
        for i in range(7):
            num = (num + _C[i]) * y
            den = (den + _D[i]) * y
        return (num + _C[7]) / (den + _D[7])
    if y >= _XMAX:
        return 0.0
    if y >= _XHUGE:
        return _ONE_OVER_SQRT_PI / y
    ysq = 1.0 / (y * y)
    num = _P[5] * ysq
    den = ysq
    for i in range(4):
        num = (num + _P[i]) * ysq
        den = (den + _Q[i]) * ysq
    return (_ONE_OVER_SQRT_PI - ysq * (num + _P[4]) / (den + _Q[4])) / y


@njit(inline="always", **_JIT)
def _exp_minus_square(y: float) -> float:
    """exp(-y²) with y² split as a·a + (y-a)(y+a), a = y truncated to 1/16: a·a is exact in floating point, so
    the rounding of y² does not enter the exponent (Cody's trick; it matters for y of several units)."""
    a = np.floor(y * 16.0) / 16.0
    return math.exp(-a * a) * math.exp(-(y - a) * (y + a))


@njit(**_JIT)
def erfc(x: float) -> float:
    """The complementary error function 1 - erf(x)."""
    y = abs(x)
    if y <= _THRESH:
        return 1.0 - _erf_small(x)
    r = 0.0 if y >= _XBIG else _erfcx_positive(y) * _exp_minus_square(y)
    return 2.0 - r if x < 0.0 else r


@njit(**_JIT)
def erfcx(x: float) -> float:
    """The scaled complementary error function exp(x²)·erfc(x)."""
    y = abs(x)
    if y <= _THRESH:
        return (1.0 - _erf_small(x)) * math.exp(x * x)
    r = _erfcx_positive(y)
    if x >= 0.0:
        return r
    if x < _XNEG:
        return np.inf
    # erfcx(-y) = 2·exp(y²) - erfcx(y), exp(y²) split as in _exp_minus_square.
    a = np.floor(y * 16.0) / 16.0
    e = math.exp(a * a) * math.exp((y - a) * (y + a))
    return 2.0 * e - r


@njit(**_JIT)
def norm_pdf(x: float) -> float:
    return ONE_OVER_SQRT_TWO_PI * math.exp(-0.5 * x * x)


_ASYMPTOTIC_FIRST = -10.0
_ASYMPTOTIC_SECOND = -1.0 / math.sqrt(DBL_EPSILON)  # below this, Φ(z) = φ(z)/|z| to machine precision


@njit(**_JIT)
def norm_cdf(z: float) -> float:
    """Φ(z). Below z = -10 the asymptotic series φ(z)/|z|·[1 - 1/z² + 3/z⁴ - ...] (A&S 26.2.12) is summed,
    two terms at a time, while its terms shrink and matter; it needs at most about nine steps there and is
    never less accurate than erfc."""
    if z > _ASYMPTOTIC_FIRST:
        return 0.5 * erfc(-z * ONE_OVER_SQRT_TWO)
    total = 1.0
    if z >= _ASYMPTOTIC_SECOND:
        zsq = z * z
        i = 1.0
        g = 1.0
        last = np.inf
        while True:
            x = (4.0 * i - 3.0) / zsq
            y = x * ((4.0 * i - 1.0) / zsq)
            a = g * (x - y)
            total -= a
            g *= y
            i += 1.0
            a = abs(a)
            if not (last > a >= abs(total * DBL_EPSILON)):
                break
            last = a
    return -norm_pdf(z) * total / z


# AS241 (PPND16) coefficients.
_SPLIT1 = 0.425
_SPLIT2 = 5.0
_CONST1 = 0.180625
_CONST2 = 1.6
_AS_A = np.array(
    [
        3.3871328727963666080e0,
        1.3314166789178437745e2,
        1.9715909503065514427e3,
        1.3731693765509461125e4,
        4.5921953931549871457e4,
        6.7265770927008700853e4,
        3.3430575583588128105e4,
        2.5090809287301226727e3,
    ]
)
_AS_B = np.array(
    [
        1.0,
        4.2313330701600911252e1,
        6.8718700749205790830e2,
        5.3941960214247511077e3,
        2.1213794301586595867e4,
        3.9307895800092710610e4,
        2.8729085735721942674e4,
        5.2264952788528545610e3,
    ]
)
_AS_C = np.array(
    [
        1.42343711074968357734e0,
        4.63033784615654529590e0,
        5.76949722146069140550e0,
        3.64784832476320460504e0,
        1.27045825245236838258e0,
        2.41780725177450611770e-1,
        2.27238449892691845833e-2,
        7.74545014278341407640e-4,
    ]
)
_AS_D = np.array(
    [
        1.0,
        2.05319162663775882187e0,
        1.67638483018380384940e0,
        6.89767334985100004550e-1,
        1.48103976427480074590e-1,
        1.51986665636164571966e-2,
        5.47593808499534494600e-4,
        1.05075007164441684324e-9,
    ]
)
_AS_E = np.array(
    [
        6.65790464350110377720e0,
        5.46378491116411436990e0,
        1.78482653991729133580e0,
        2.96560571828504891230e-1,
        2.65321895265761230930e-2,
        1.24266094738807843860e-3,
        2.71155556874348757815e-5,
        2.01033439929228813265e-7,
    ]
)
_AS_F = np.array(
    [
        1.0,
        5.99832206555887937690e-1,
        1.36929880922735805310e-1,
        1.48753612908506148525e-2,
        7.86869131145613259100e-4,
        1.84631831751005468180e-5,
        1.42151175831644588870e-7,
        2.04426310338993978564e-15,
    ]
)


@njit(inline="always", **_JIT)
def _ratio7(num: np.ndarray, den: np.ndarray, r: float) -> float:
    """num(r)/den(r) for two polynomials of degree 7, coefficients lowest first, by Horner's rule."""
    n = num[7]
    d = den[7]
    for i in range(6, -1, -1):
        n = n * r + num[i]
        d = d * r + den[i]
    return n / d


@njit(**_JIT)
def inverse_norm_cdf(u: float) -> float:
    """Φ⁻¹(u) by AS241; -inf at 0 and +inf at 1 (log of 0), NaN outside [0, 1]."""
    if u <= 0.0:
        return math.log(u) if u == 0.0 else np.nan
    if u >= 1.0:
        return -math.log(1.0 - u) if u == 1.0 else np.nan
    q = u - 0.5
    if abs(q) <= _SPLIT1:
        return q * _ratio7(_AS_A, _AS_B, _CONST1 - q * q)
    r = math.sqrt(-math.log(u if q < 0.0 else 1.0 - u))
    z = _ratio7(_AS_C, _AS_D, r - _CONST2) if r < _SPLIT2 else _ratio7(_AS_E, _AS_F, r - _SPLIT2)
    return -z if q < 0.0 else z
