"""Bar-level window operators, written once by hand and compiled by numba.

Each operator is written once for the bar series of one entity over the loaded sessions (warm-up sessions
first) and ``session``, the session number of each bar; the runtime calls it on a (rows, bars) array, one row
per entity of a feature (an instrument, or the one row of a cross-asset feature), all on the same grid.
Windows (``lag``, ``rolling_*``) run across session boundaries, which is what warm-up is for, and never
across rows; operators marked session-local in the registry restart at each session. Edge cases are
documented in the registry (`fspec ops`).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _lag(x, k, session):
    out = np.full(x.shape[0], np.nan)
    for i in range(k, x.shape[0]):
        out[i] = x[i - k]
    return out


@njit(cache=True)
def _diff(x, k, session):
    out = np.full(x.shape[0], np.nan)
    for i in range(k, x.shape[0]):
        out[i] = x[i] - x[i - k]
    return out


@njit(cache=True)
def _lead(x, k, session):
    out = np.full(x.shape[0], np.nan)
    for i in range(x.shape[0] - k):
        if session[i + k] == session[i]:
            out[i] = x[i + k]
    return out


@njit(cache=True)
def _rolling_sum(x, n, session):
    out = np.full(x.shape[0], np.nan)
    for i in range(n - 1, x.shape[0]):
        acc = 0.0
        for j in range(i - n + 1, i + 1):
            acc += x[j]
        out[i] = acc  # a NaN in the window makes the sum NaN
    return out


@njit(cache=True)
def _rolling_mean(x, n, session):
    out = _rolling_sum(x, n, session)
    for i in range(out.shape[0]):
        out[i] = out[i] / n
    return out


@njit(cache=True)
def _rolling_std(x, n, session):
    out = np.full(x.shape[0], np.nan)
    for i in range(n - 1, x.shape[0]):
        mean = 0.0
        for j in range(i - n + 1, i + 1):
            mean += x[j]
        mean /= n
        ss = 0.0
        for j in range(i - n + 1, i + 1):
            ss += (x[j] - mean) ** 2
        out[i] = np.sqrt(ss / (n - 1))
    return out


@njit(cache=True)
def _rolling_min(x, n, session):
    out = np.full(x.shape[0], np.nan)
    for i in range(n - 1, x.shape[0]):
        best = x[i]
        for j in range(i - n + 1, i + 1):
            if x[j] != x[j]:
                best = np.nan
                break
            if x[j] < best:
                best = x[j]
        out[i] = best
    return out


@njit(cache=True)
def _rolling_max(x, n, session):
    out = np.full(x.shape[0], np.nan)
    for i in range(n - 1, x.shape[0]):
        best = x[i]
        for j in range(i - n + 1, i + 1):
            if x[j] != x[j]:
                best = np.nan
                break
            if x[j] > best:
                best = x[j]
        out[i] = best
    return out


@njit(cache=True)
def _rolling_corr(x, y, n, session):
    out = np.full(x.shape[0], np.nan)
    for i in range(n - 1, x.shape[0]):
        mx = 0.0
        my = 0.0
        for j in range(i - n + 1, i + 1):
            mx += x[j]
            my += y[j]
        mx /= n
        my /= n
        sxy = 0.0
        sxx = 0.0
        syy = 0.0
        for j in range(i - n + 1, i + 1):
            dx = x[j] - mx
            dy = y[j] - my
            sxy += dx * dy
            sxx += dx * dx
            syy += dy * dy
        x_const = True
        y_const = True
        for j in range(i - n + 2, i + 1):
            x_const = x_const and x[j] == x[i - n + 1]
            y_const = y_const and y[j] == y[i - n + 1]
        # a constant side has no correlation; rounding must not turn it into a tiny number
        if not x_const and not y_const and sxx > 0.0 and syy > 0.0:
            out[i] = sxy / np.sqrt(sxx * syy)
    return out


@njit(cache=True)
def _ewm_mean(x, span, session):
    alpha = 2.0 / (span + 1.0)
    out = np.full(x.shape[0], np.nan)
    mean = np.nan
    for i in range(x.shape[0]):
        if i > 0 and session[i] != session[i - 1]:
            mean = np.nan
        if x[i] == x[i]:
            mean = x[i] if mean != mean else (1.0 - alpha) * mean + alpha * x[i]
        out[i] = mean
    return out


@njit(cache=True)
def _ffill(x, session):
    out = np.empty(x.shape[0])
    last = np.nan
    for i in range(x.shape[0]):
        if i > 0 and session[i] != session[i - 1]:
            last = np.nan
        if x[i] == x[i]:
            last = x[i]
        out[i] = last
    return out


@njit(cache=True)
def _session_cumsum(x, session):
    out = np.empty(x.shape[0])
    acc = 0.0
    for i in range(x.shape[0]):
        if i > 0 and session[i] != session[i - 1]:
            acc = 0.0
        if x[i] == x[i]:
            acc += x[i]
        out[i] = acc
    return out


# ---- the operators as the runtime calls them: on every row (entity) of a (rows, bars) array ----------------


@njit(cache=True)
def lag(x, k, session):
    out = np.empty(x.shape)
    for r in range(x.shape[0]):
        out[r] = _lag(x[r], k, session)
    return out


@njit(cache=True)
def diff(x, k, session):
    out = np.empty(x.shape)
    for r in range(x.shape[0]):
        out[r] = _diff(x[r], k, session)
    return out


@njit(cache=True)
def lead(x, k, session):
    out = np.empty(x.shape)
    for r in range(x.shape[0]):
        out[r] = _lead(x[r], k, session)
    return out


@njit(cache=True)
def rolling_sum(x, n, session):
    out = np.empty(x.shape)
    for r in range(x.shape[0]):
        out[r] = _rolling_sum(x[r], n, session)
    return out


@njit(cache=True)
def rolling_mean(x, n, session):
    out = np.empty(x.shape)
    for r in range(x.shape[0]):
        out[r] = _rolling_mean(x[r], n, session)
    return out


@njit(cache=True)
def rolling_std(x, n, session):
    out = np.empty(x.shape)
    for r in range(x.shape[0]):
        out[r] = _rolling_std(x[r], n, session)
    return out


@njit(cache=True)
def rolling_min(x, n, session):
    out = np.empty(x.shape)
    for r in range(x.shape[0]):
        out[r] = _rolling_min(x[r], n, session)
    return out


@njit(cache=True)
def rolling_max(x, n, session):
    out = np.empty(x.shape)
    for r in range(x.shape[0]):
        out[r] = _rolling_max(x[r], n, session)
    return out


@njit(cache=True)
def rolling_corr(x, y, n, session):
    out = np.empty(x.shape)
    for r in range(x.shape[0]):
        out[r] = _rolling_corr(x[r], y[r], n, session)
    return out


@njit(cache=True)
def ewm_mean(x, span, session):
    out = np.empty(x.shape)
    for r in range(x.shape[0]):
        out[r] = _ewm_mean(x[r], span, session)
    return out


@njit(cache=True)
def ffill(x, session):
    out = np.empty(x.shape)
    for r in range(x.shape[0]):
        out[r] = _ffill(x[r], session)
    return out


@njit(cache=True)
def session_cumsum(x, session):
    out = np.empty(x.shape)
    for r in range(x.shape[0]):
        out[r] = _session_cumsum(x[r], session)
    return out


# name -> (function, names of its constant parameters in call order)
BAR_OPERATORS = {
    "lag": (lag, ("k",)),
    "diff": (diff, ("k",)),
    "lead": (lead, ("k",)),
    "rolling_sum": (rolling_sum, ("n",)),
    "rolling_mean": (rolling_mean, ("n",)),
    "rolling_std": (rolling_std, ("n",)),
    "rolling_min": (rolling_min, ("n",)),
    "rolling_max": (rolling_max, ("n",)),
    "rolling_corr": (rolling_corr, ("n",)),
    "ewm_mean": (ewm_mean, ("span",)),
    "ffill": (ffill, ()),
    "session_cumsum": (session_cumsum, ()),
}
