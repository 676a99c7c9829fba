"""Bar operators: rolling statistics over the last ``n`` bars of each entity (moments, order statistics,
ranks, regressions and the rescaled-range Hurst exponent).

Like :mod:`~fspec.operators.windows`, each implementation takes (rows, bars) arrays, one row per entity, and
``session``, the session number of each bar; windows run across session boundaries (warm-up) and never across
rows. Moments are computed in two passes (the window's mean first, then sums of centred powers), so that a
window far from zero loses no digits. Each ``reference`` is a plain numpy / pandas computation over
``sliding_window_view`` windows, written apart from the compiled loop.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from fspec.operators.core import BAR, Operator, Param, bar_function, register
from fspec.operators.windows import rolling_window


def _windows(x: np.ndarray, n: int) -> np.ndarray:
    """The (bars - n + 1, n) windows of one entity's series, the last bar of each last (none if it is shorter
    than n)."""
    x = np.asarray(x, dtype=np.float64)
    return sliding_window_view(x, n) if x.shape[0] >= n else np.empty((0, n))


def _place(values: np.ndarray, bars: int, n: int) -> np.ndarray:
    """Per-window values as a bar series: NaN until n bars exist."""
    out = np.full(bars, np.nan)
    if bars >= n:
        out[n - 1 :] = values
    return out


def _constant(w: np.ndarray) -> np.ndarray:
    """Windows whose values are all equal and finite."""
    return (w == w[:, :1]).all(axis=1) & np.isfinite(w[:, 0])


def _centred_moments(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """m2, m3, m4: the mean centred powers (ddof 0) of each window."""
    with np.errstate(invalid="ignore", over="ignore"):
        d = w - w.mean(axis=1, keepdims=True)
        return (d**2).mean(axis=1), (d**3).mean(axis=1), (d**4).mean(axis=1)


# ---- moments: skewness and kurtosis ---------------------------------------------------------------------


@bar_function
def rolling_skew(x, n, session):
    out = np.full(x.shape, np.nan)
    for r in range(x.shape[0]):
        for i in range(n - 1, x.shape[1]):
            lo = i - n + 1
            mean = 0.0
            constant = True
            for j in range(lo, i + 1):
                mean += x[r, j]
                constant = constant and x[r, j] == x[r, lo]
            if constant:
                continue  # no spread: NaN (a NaN first value is never equal to itself)
            mean /= n
            m2 = 0.0
            m3 = 0.0
            for j in range(lo, i + 1):
                d = x[r, j] - mean
                m2 += d * d
                m3 += d * d * d
            m2 /= n
            m3 /= n
            out[r, i] = np.sqrt(n * (n - 1.0)) / (n - 2.0) * m3 / m2**1.5
    return out


def _rolling_skew_reference(x: np.ndarray, session: np.ndarray, n: float) -> np.ndarray:
    k = int(n)
    w = _windows(x, k)
    m2, m3, _ = _centred_moments(w)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        g1 = m3 / m2**1.5  # the biased (Fisher-Pearson) coefficient
        skew = g1 * np.sqrt(k * (k - 1.0)) / (k - 2.0)  # pandas' adjusted G1
    return _place(np.where(_constant(w), np.nan, skew), len(x), k)


@bar_function
def rolling_kurt(x, n, session):
    out = np.full(x.shape, np.nan)
    for r in range(x.shape[0]):
        for i in range(n - 1, x.shape[1]):
            lo = i - n + 1
            mean = 0.0
            constant = True
            for j in range(lo, i + 1):
                mean += x[r, j]
                constant = constant and x[r, j] == x[r, lo]
            if constant:
                continue
            mean /= n
            m2 = 0.0
            m4 = 0.0
            for j in range(lo, i + 1):
                d2 = (x[r, j] - mean) ** 2
                m2 += d2
                m4 += d2 * d2
            m2 /= n
            m4 /= n
            out[r, i] = ((n * n - 1.0) * m4 / (m2 * m2) - 3.0 * (n - 1.0) ** 2) / ((n - 2.0) * (n - 3.0))
    return out


def _rolling_kurt_reference(x: np.ndarray, session: np.ndarray, n: float) -> np.ndarray:
    k = int(n)
    w = _windows(x, k)
    m2, _, m4 = _centred_moments(w)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        g2 = m4 / m2**2 - 3.0  # the biased excess kurtosis
        kurt = (k - 1.0) / ((k - 2.0) * (k - 3.0)) * ((k + 1.0) * g2 + 6.0)  # pandas' adjusted G2
    return _place(np.where(_constant(w), np.nan, kurt), len(x), k)


MOMENT_EDGE = (
    "NaN until n bars exist; a NaN or infinite value in the window gives NaN; a constant window (all values "
    "equal) gives NaN, as pandas does"
)
register(
    Operator(
        "rolling_skew",
        (Param("x"), Param("n", "int", None, 3)),
        BAR,
        "sample skewness over the last n bars, bias-corrected as pandas' rolling(n).skew(): "
        "sqrt(n (n - 1)) / (n - 2) * m3 / m2^1.5 with m_k the mean centred k-th power",
        MOMENT_EDGE,
        window=rolling_window,
        bar=rolling_skew,
        bar_constants=("n",),
        reference=_rolling_skew_reference,
        examples=("rolling_skew(last(trades.price), 3)", "rolling_skew(sum(trades.size), 5)"),
    )
)
register(
    Operator(
        "rolling_kurt",
        (Param("x"), Param("n", "int", None, 4)),
        BAR,
        "sample excess kurtosis over the last n bars, bias-corrected as pandas' rolling(n).kurt(): "
        "((n^2 - 1) m4 / m2^2 - 3 (n - 1)^2) / ((n - 2) (n - 3))",
        MOMENT_EDGE,
        window=rolling_window,
        bar=rolling_kurt,
        bar_constants=("n",),
        reference=_rolling_kurt_reference,
        examples=("rolling_kurt(last(trades.price), 4)", "rolling_kurt(sum(trades.size), 6)"),
    )
)


# ---- order statistics: quantile -------------------------------------------------------------------------


@bar_function
def rolling_quantile(x, n, q, session):
    out = np.full(x.shape, np.nan)
    window = np.empty(n)
    h = (n - 1) * q  # the position in the sorted window
    lo = min(int(np.floor(h)), n - 1)
    hi = min(lo + 1, n - 1)
    g = h - lo
    for r in range(x.shape[0]):
        for i in range(n - 1, x.shape[1]):
            complete = True
            for j in range(n):
                window[j] = x[r, i - n + 1 + j]
                if window[j] != window[j]:
                    complete = False
                    break
            if not complete:
                continue
            window.sort()
            a = window[lo]
            b = window[hi]
            if g == 0.0 or a == b:
                out[r, i] = a
            elif np.isinf(a) or np.isinf(b):
                out[r, i] = a + b  # the limit: the infinite side, or NaN between -inf and +inf
            elif g < 0.5:
                out[r, i] = a + (b - a) * g
            else:
                out[r, i] = b - (b - a) * (1.0 - g)  # numpy's lerp, from the nearer side
    return out


def _rolling_quantile_reference(x: np.ndarray, session: np.ndarray, n: float, q: float) -> np.ndarray:
    k = int(n)
    w = _windows(x, k)
    with np.errstate(invalid="ignore"):
        below = np.quantile(w, q, axis=1, method="lower")
        above = np.quantile(w, q, axis=1, method="higher")
        linear = np.quantile(w, q, axis=1)  # numpy's default, method="linear"
        limit = below + above
    value = np.where(below == above, below, np.where(np.isinf(below) | np.isinf(above), limit, linear))
    return _place(np.where(np.isnan(w).any(axis=1), np.nan, value), len(x), k)


register(
    Operator(
        "rolling_quantile",
        (Param("x"), Param("n", "int", None, 1), Param("q", "number", None, 0, 1)),
        BAR,
        "the q-quantile of the last n bars, linearly interpolated as numpy's default: position h = (n - 1) q in "
        "the sorted window, s[floor(h)] + (h - floor(h)) (s[floor(h) + 1] - s[floor(h)])",
        "NaN until n bars exist; a NaN inside the window gives NaN; q = 0 is the minimum, q = 1 the maximum, "
        "q = 0.5 the median; interpolating towards an infinite value gives that infinity, between -inf and +inf "
        "NaN",
        window=rolling_window,
        bar=rolling_quantile,
        bar_constants=("n", "q"),
        reference=_rolling_quantile_reference,
        examples=("rolling_quantile(last(trades.price), 4, 0.25)", "rolling_quantile(sum(trades.size), 5, q=0.9)"),
    )
)


# ---- rank and position of the extremes ------------------------------------------------------------------


@bar_function
def rolling_rank(x, n, session):
    out = np.full(x.shape, np.nan)
    for r in range(x.shape[0]):
        for i in range(n - 1, x.shape[1]):
            below = 0
            ties = 0
            complete = True
            for j in range(i - n + 1, i):
                if x[r, j] != x[r, j]:
                    complete = False
                    break
                if x[r, j] < x[r, i]:
                    below += 1
                elif x[r, j] == x[r, i]:
                    ties += 1
            if complete and x[r, i] == x[r, i]:
                out[r, i] = (below + 0.5 * ties) / (n - 1)
    return out


def _rolling_rank_reference(x: np.ndarray, session: np.ndarray, n: float) -> np.ndarray:
    k = int(n)
    w = _windows(x, k)
    current = w[:, -1:]
    below = (w < current).sum(axis=1)
    others_equal = (w == current).sum(axis=1) - 1  # the current value is equal to itself
    rank = (below + 0.5 * others_equal) / (k - 1)
    return _place(np.where(np.isnan(w).any(axis=1), np.nan, rank), len(x), k)


register(
    Operator(
        "rolling_rank",
        (Param("x"), Param("n", "int", None, 2)),
        BAR,
        "where this bar's x stands among the last n bars, in [0, 1]: (the number of the other n - 1 values "
        "below x + half the number equal to x) / (n - 1)",
        "NaN until n bars exist; a NaN inside the window gives NaN; 0 = the lowest of the window (strictly), "
        "1 = the highest (strictly); each tie counts one half, so a constant window gives 0.5 and "
        "(pandas' rolling(n).rank() - 1) / (n - 1) is the same number; n >= 2 (one value has no rank)",
        window=rolling_window,
        bar=rolling_rank,
        bar_constants=("n",),
        reference=_rolling_rank_reference,
        examples=("rolling_rank(last(trades.price), 4)", "rolling_rank(sum(trades.size), 3)"),
    )
)


@bar_function
def rolling_argmax(x, n, session):
    out = np.full(x.shape, np.nan)
    for r in range(x.shape[0]):
        for i in range(n - 1, x.shape[1]):
            best = x[r, i]
            since = 0
            for back in range(n):  # from the current bar backwards: a tie keeps the most recent
                v = x[r, i - back]
                if v != v:
                    since = -1
                    break
                if v > best:
                    best = v
                    since = back
            if since >= 0:
                out[r, i] = since
    return out


@bar_function
def rolling_argmin(x, n, session):
    out = np.full(x.shape, np.nan)
    for r in range(x.shape[0]):
        for i in range(n - 1, x.shape[1]):
            best = x[r, i]
            since = 0
            for back in range(n):
                v = x[r, i - back]
                if v != v:
                    since = -1
                    break
                if v < best:
                    best = v
                    since = back
            if since >= 0:
                out[r, i] = since
    return out


def _bars_since(x: np.ndarray, n: float, extreme) -> np.ndarray:
    k = int(n)
    w = _windows(x, k)
    newest_first = w[:, ::-1]
    since = extreme(newest_first, axis=1).astype(np.float64)  # the first occurrence: the most recent bar
    return _place(np.where(np.isnan(w).any(axis=1), np.nan, since), len(x), k)


def _rolling_argmax_reference(x: np.ndarray, session: np.ndarray, n: float) -> np.ndarray:
    return _bars_since(x, n, np.argmax)


def _rolling_argmin_reference(x: np.ndarray, session: np.ndarray, n: float) -> np.ndarray:
    return _bars_since(x, n, np.argmin)


for _name, _what, _fn, _ref in [
    ("rolling_argmax", "maximum", rolling_argmax, _rolling_argmax_reference),
    ("rolling_argmin", "minimum", rolling_argmin, _rolling_argmin_reference),
]:
    register(
        Operator(
            _name,
            (Param("x"), Param("n", "int", None, 1)),
            BAR,
            f"bars since the {_what} of the last n bars: 0 = this bar, n - 1 = the oldest bar of the window",
            f"NaN until n bars exist; a NaN inside the window gives NaN; ties: the most recent bar holding the "
            f"{_what} (a constant window gives 0); n = 1 gives 0",
            window=rolling_window,
            bar=_fn,
            bar_constants=("n",),
            reference=_ref,
            examples=(f"{_name}(last(trades.price), 4)", f"{_name}(sum(trades.size), 3)"),
        )
    )


# ---- covariance, regressions and the z-score ------------------------------------------------------------


@bar_function
def rolling_cov(x, y, n, session):
    out = np.full(x.shape, np.nan)
    for r in range(x.shape[0]):
        for i in range(n - 1, x.shape[1]):
            lo = i - n + 1
            mx = 0.0
            my = 0.0
            x_const = np.isfinite(x[r, lo])
            y_const = np.isfinite(y[r, lo])
            for j in range(lo, i + 1):
                mx += x[r, j]
                my += y[r, j]
                x_const = x_const and x[r, j] == x[r, lo]
                y_const = y_const and y[r, j] == y[r, lo]
            mx /= n
            my /= n
            sxy = 0.0
            for j in range(lo, i + 1):
                sxy += (x[r, j] - mx) * (y[r, j] - my)
            cov = sxy / (n - 1)
            if cov == cov and (x_const or y_const):
                cov = 0.0  # exactly, not the rounding residue of a centred sum
            out[r, i] = cov
    return out


@bar_function
def rolling_beta(y, x, n, session):
    out = np.full(x.shape, np.nan)
    for r in range(x.shape[0]):
        for i in range(n - 1, x.shape[1]):
            lo = i - n + 1
            mx = 0.0
            my = 0.0
            x_const = np.isfinite(x[r, lo])
            y_const = np.isfinite(y[r, lo])
            for j in range(lo, i + 1):
                mx += x[r, j]
                my += y[r, j]
                x_const = x_const and x[r, j] == x[r, lo]
                y_const = y_const and y[r, j] == y[r, lo]
            if x_const:
                continue  # no variance of x: NaN
            mx /= n
            my /= n
            sxy = 0.0
            sxx = 0.0
            for j in range(lo, i + 1):
                dx = x[r, j] - mx
                sxy += dx * (y[r, j] - my)
                sxx += dx * dx
            if sxx == 0.0:
                continue
            beta = sxy / sxx
            if beta == beta and y_const:
                beta = 0.0
            out[r, i] = beta
    return out


@bar_function
def rolling_slope(x, n, session):
    out = np.full(x.shape, np.nan)
    centre = (n - 1) / 2.0
    stt = n * (n * n - 1.0) / 12.0  # sum (t - centre)^2 over t = 0 .. n - 1
    for r in range(x.shape[0]):
        for i in range(n - 1, x.shape[1]):
            lo = i - n + 1
            mean = 0.0
            constant = np.isfinite(x[r, lo])
            for j in range(lo, i + 1):
                mean += x[r, j]
                constant = constant and x[r, j] == x[r, lo]
            mean /= n
            stx = 0.0
            for j in range(lo, i + 1):
                stx += (j - lo - centre) * (x[r, j] - mean)
            slope = stx / stt
            if slope == slope and constant:
                slope = 0.0
            out[r, i] = slope
    return out


@bar_function
def zscore(x, n, session):
    out = np.full(x.shape, np.nan)
    for r in range(x.shape[0]):
        for i in range(n - 1, x.shape[1]):
            lo = i - n + 1
            mean = 0.0
            constant = np.isfinite(x[r, lo])
            for j in range(lo, i + 1):
                mean += x[r, j]
                constant = constant and x[r, j] == x[r, lo]
            if constant:
                continue  # std = 0: NaN
            mean /= n
            ss = 0.0
            for j in range(lo, i + 1):
                ss += (x[r, j] - mean) ** 2
            std = np.sqrt(ss / (n - 1))
            if std > 0.0:
                out[r, i] = (x[r, i] - mean) / std
    return out


def _centred(w: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return w - w.mean(axis=1, keepdims=True)


def _rolling_cov_reference(x: np.ndarray, y: np.ndarray, session: np.ndarray, n: float) -> np.ndarray:
    k = int(n)
    wx, wy = _windows(x, k), _windows(y, k)
    with np.errstate(invalid="ignore", over="ignore"):
        cov = (_centred(wx) * _centred(wy)).sum(axis=1) / (k - 1)
    flat = (_constant(wx) | _constant(wy)) & ~np.isnan(cov)
    return _place(np.where(flat, 0.0, cov), len(x), k)


def _rolling_beta_reference(y: np.ndarray, x: np.ndarray, session: np.ndarray, n: float) -> np.ndarray:
    k = int(n)
    wx, wy = _windows(x, k), _windows(y, k)
    dx = _centred(wx)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        var_x = (dx * dx).sum(axis=1)
        beta = (dx * _centred(wy)).sum(axis=1) / var_x
    beta = np.where(_constant(wy) & ~np.isnan(beta), 0.0, beta)
    return _place(np.where(_constant(wx) | (var_x == 0), np.nan, beta), len(x), k)


def _rolling_slope_reference(x: np.ndarray, session: np.ndarray, n: float) -> np.ndarray:
    k = int(n)
    w = _windows(x, k)
    t = np.arange(k, dtype=np.float64)
    t -= t.mean()
    with np.errstate(invalid="ignore", over="ignore"):
        slope = (_centred(w) * t).sum(axis=1) / (t * t).sum()
    return _place(np.where(_constant(w) & ~np.isnan(slope), 0.0, slope), len(x), k)


def _zscore_reference(x: np.ndarray, session: np.ndarray, n: float) -> np.ndarray:
    k = int(n)
    w = _windows(x, k)
    d = _centred(w)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        std = np.sqrt((d * d).sum(axis=1) / (k - 1))
        z = d[:, -1] / std
    return _place(np.where(_constant(w) | (std == 0), np.nan, z), len(x), k)


N2 = Param("n", "int", None, 2)
COV_EDGE = (
    "NaN until n bars exist; a NaN or infinite value in either window gives NaN; 0 if either side is constant "
    "(all values equal and finite) in the window"
)
register(
    Operator(
        "rolling_cov",
        (Param("x"), Param("y"), N2),
        BAR,
        "sample covariance (ddof = 1) of x and y over the last n bars",
        COV_EDGE,
        window=rolling_window,
        bar=rolling_cov,
        bar_constants=("n",),
        reference=_rolling_cov_reference,
        examples=(
            "rolling_cov(last(trades.price), sum(trades.size), 4)",
            "rolling_cov(count(trades.price), last(trades.price) - first(trades.price), 3)",
        ),
    )
)
register(
    Operator(
        "rolling_beta",
        (Param("y"), Param("x"), N2),
        BAR,
        "OLS beta of y on x over the last n bars: cov(y, x) / var(x)",
        "NaN until n bars exist; a NaN or infinite value in either window gives NaN; NaN if x is constant in the "
        "window (var(x) = 0); 0 if y is constant (all values equal and finite) and x is not",
        window=rolling_window,
        bar=rolling_beta,
        bar_constants=("n",),
        reference=_rolling_beta_reference,
        examples=(
            "rolling_beta(last(trades.price), mean(trades.price), 4)",
            "rolling_beta(sum(trades.size), count(trades.price), 5)",
        ),
    )
)
register(
    Operator(
        "rolling_slope",
        (Param("x"), N2),
        BAR,
        "OLS slope of the last n bars of x on the bar index 0 .. n - 1 (oldest to this bar): x's trend per bar",
        "NaN until n bars exist; a NaN or infinite value in the window gives NaN; a constant window gives 0; "
        "n = 2 gives the last difference",
        window=rolling_window,
        bar=rolling_slope,
        bar_constants=("n",),
        reference=_rolling_slope_reference,
        examples=("rolling_slope(last(trades.price), 4)", "rolling_slope(sum(trades.size), 3)"),
    )
)
register(
    Operator(
        "zscore",
        (Param("x"), N2),
        BAR,
        "(x - rolling mean) / rolling standard deviation (ddof = 1), both over the last n bars (this one included)",
        "NaN until n bars exist; a NaN or infinite value in the window gives NaN; NaN where the standard deviation "
        "is 0 (a constant window)",
        window=rolling_window,
        bar=zscore,
        bar_constants=("n",),
        reference=_zscore_reference,
        examples=("zscore(last(trades.price), 4)", "zscore(sum(trades.size), 6)"),
    )
)


# ---- the rescaled-range Hurst exponent ------------------------------------------------------------------


@bar_function
def rolling_hurst(x, n, session):
    out = np.full(x.shape, np.nan)
    levels = 0  # sub-window sizes 8, 16, ..., the largest power of two <= n
    while 8 << levels <= n:
        levels += 1
    log_size = np.empty(levels)
    log_rs = np.empty(levels)
    for r in range(x.shape[0]):
        for i in range(n - 1, x.shape[1]):
            ok = True
            for j in range(i - n + 1, i + 1):
                if not np.isfinite(x[r, j]):
                    ok = False
                    break
            for level in range(levels):
                if not ok:
                    break
                size = 8 << level
                chunks = n // size
                total = 0.0
                for c in range(chunks):  # aligned to the window's end: the most recent chunks * size bars
                    lo = i + 1 - (chunks - c) * size
                    mean = 0.0
                    constant = True
                    for j in range(lo, lo + size):
                        mean += x[r, j]
                        constant = constant and x[r, j] == x[r, lo]
                    if constant:
                        ok = False
                        break
                    mean /= size
                    walk = 0.0
                    top = -np.inf
                    bottom = np.inf
                    ss = 0.0
                    for j in range(lo, lo + size):
                        d = x[r, j] - mean
                        walk += d
                        top = max(top, walk)
                        bottom = min(bottom, walk)
                        ss += d * d
                    spread = np.sqrt(ss / size)
                    if spread == 0.0:
                        ok = False
                        break
                    total += (top - bottom) / spread
                log_size[level] = np.log(size)
                log_rs[level] = np.log(total / chunks)
            if not ok:
                continue
            mx = 0.0
            my = 0.0
            for level in range(levels):
                mx += log_size[level]
                my += log_rs[level]
            mx /= levels
            my /= levels
            sxy = 0.0
            sxx = 0.0
            for level in range(levels):
                sxy += (log_size[level] - mx) * (log_rs[level] - my)
                sxx += (log_size[level] - mx) ** 2
            out[r, i] = sxy / sxx
    return out


def _rescaled_range(chunks: np.ndarray) -> float:
    """The mean R/S of the rows of ``chunks`` (NaN if one is constant)."""
    if (chunks == chunks[:, :1]).all(axis=1).any():
        return np.nan
    deviations = chunks - chunks.mean(axis=1, keepdims=True)
    walk = np.cumsum(deviations, axis=1)
    spread = np.sqrt((deviations**2).mean(axis=1))
    return float(np.mean((walk.max(axis=1) - walk.min(axis=1)) / spread))


def _rolling_hurst_reference(x: np.ndarray, session: np.ndarray, n: float) -> np.ndarray:
    k = int(n)
    sizes = [8 * 2**j for j in range(k.bit_length()) if 8 * 2**j <= k]
    values = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for w in _windows(x, k):
            if not np.isfinite(w).all():
                values.append(np.nan)
                continue
            rs = [_rescaled_range(w[len(w) - (k // s) * s :].reshape(k // s, s)) for s in sizes]
            if not np.isfinite(rs).all() or min(rs) <= 0:
                values.append(np.nan)
                continue
            values.append(np.polyfit(np.log(sizes), np.log(rs), 1)[0])
    return _place(np.array(values, dtype=np.float64), len(x), k)


register(
    Operator(
        "rolling_hurst",
        (Param("x"), Param("n", "int", None, 16)),
        BAR,
        "rescaled-range (R/S) Hurst exponent of the last n bars of x, read as returns: for each size s = 8, 16, "
        "32, ... <= n, the most recent floor(n / s) * s bars are cut into chunks of s; a chunk's R/S is "
        "(max - min of the running sum of its deviations from its mean) / its standard deviation (ddof = 0); "
        "the result is the OLS slope of log(mean R/S over the chunks) on log(s)",
        "NaN until n bars exist; a NaN or infinite value in the window gives NaN; NaN if any chunk is constant "
        "(its R/S is undefined); about 0.5 for white noise (slightly above for short chunks: classic R/S is "
        "not bias-corrected), towards 1 for trending, below 0.5 for mean-reverting returns; n >= 16 (two sizes)",
        window=rolling_window,
        bar=rolling_hurst,
        bar_constants=("n",),
        reference=_rolling_hurst_reference,
        examples=("rolling_hurst(sum(trades.size), 16)", "rolling_hurst(last(trades.price) - first(trades.price), 17)"),
    )
)
