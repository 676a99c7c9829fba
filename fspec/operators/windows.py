"""Bar operators: windows over the bars of each entity.

Each implementation takes a (rows, bars) array, one row per entity of a feature (an instrument, or the one row
of a cross-asset feature), all on the same grid, and ``session``, the session number of each bar (warm-up
sessions first). Windows run across session boundaries, which is what warm-up is for, and never across rows;
operators marked session-local restart at each session. Each is compiled by numba on first use
(:class:`~fspec.operators.core.bar_function`).
"""

from __future__ import annotations

import numpy as np

from fspec.operators.core import BAR, Operator, Param, Window, bar_function, register


def rolling_window(w: Window, c: dict[str, float]) -> Window:
    """A window of the last ``n`` bars, this one included."""
    return Window(w.left + int(c["n"]) - 1, w.right, w.sessions, w.anchored)


def _lead_window(w: Window, c: dict[str, float]) -> Window:
    return Window(max(w.left - int(c["k"]), 0), w.right + int(c["k"]), w.sessions, w.anchored)


N = Param("n", "int", None, 1)
N2 = Param("n", "int", None, 2)  # a spread needs two values
NAN_INSIDE = "NaN until n bars exist; a NaN inside the window gives NaN"


@bar_function
def rolling_sum(x, n, session):
    out = np.full(x.shape, np.nan)
    for r in range(x.shape[0]):
        for i in range(n - 1, x.shape[1]):
            acc = 0.0
            for j in range(i - n + 1, i + 1):
                acc += x[r, j]
            out[r, i] = acc  # a NaN in the window makes the sum NaN
    return out


@bar_function
def rolling_mean(x, n, session):
    out = np.full(x.shape, np.nan)
    for r in range(x.shape[0]):
        for i in range(n - 1, x.shape[1]):
            acc = 0.0
            for j in range(i - n + 1, i + 1):
                acc += x[r, j]
            out[r, i] = acc / n
    return out


@bar_function
def rolling_std(x, n, session):
    out = np.full(x.shape, np.nan)
    for r in range(x.shape[0]):
        for i in range(n - 1, x.shape[1]):
            mean = 0.0
            for j in range(i - n + 1, i + 1):
                mean += x[r, j]
            mean /= n
            ss = 0.0
            for j in range(i - n + 1, i + 1):
                ss += (x[r, j] - mean) ** 2
            out[r, i] = np.sqrt(ss / (n - 1))
    return out


@bar_function
def rolling_min(x, n, session):
    out = np.full(x.shape, np.nan)
    for r in range(x.shape[0]):
        for i in range(n - 1, x.shape[1]):
            best = x[r, i]
            for j in range(i - n + 1, i + 1):
                if x[r, j] != x[r, j]:
                    best = np.nan
                    break
                if x[r, j] < best:
                    best = x[r, j]
            out[r, i] = best
    return out


@bar_function
def rolling_max(x, n, session):
    out = np.full(x.shape, np.nan)
    for r in range(x.shape[0]):
        for i in range(n - 1, x.shape[1]):
            best = x[r, i]
            for j in range(i - n + 1, i + 1):
                if x[r, j] != x[r, j]:
                    best = np.nan
                    break
                if x[r, j] > best:
                    best = x[r, j]
            out[r, i] = best
    return out


@bar_function
def rolling_corr(x, y, n, session):
    out = np.full(x.shape, np.nan)
    for r in range(x.shape[0]):
        for i in range(n - 1, x.shape[1]):
            mx = 0.0
            my = 0.0
            for j in range(i - n + 1, i + 1):
                mx += x[r, j]
                my += y[r, j]
            mx /= n
            my /= n
            sxy = 0.0
            sxx = 0.0
            syy = 0.0
            for j in range(i - n + 1, i + 1):
                dx = x[r, j] - mx
                dy = y[r, j] - my
                sxy += dx * dy
                sxx += dx * dx
                syy += dy * dy
            x_const = True
            y_const = True
            for j in range(i - n + 2, i + 1):
                x_const = x_const and x[r, j] == x[r, i - n + 1]
                y_const = y_const and y[r, j] == y[r, i - n + 1]
            # a constant side has no correlation; rounding must not turn it into a tiny number
            if not x_const and not y_const and sxx > 0.0 and syy > 0.0:
                out[r, i] = sxy / np.sqrt(sxx * syy)
    return out


@bar_function
def ewm_mean(x, span, session):
    alpha = 2.0 / (span + 1.0)
    out = np.full(x.shape, np.nan)
    for r in range(x.shape[0]):
        mean = np.nan
        for i in range(x.shape[1]):
            if i > 0 and session[i] != session[i - 1]:
                mean = np.nan
            if x[r, i] == x[r, i]:
                mean = x[r, i] if mean != mean else (1.0 - alpha) * mean + alpha * x[r, i]
            out[r, i] = mean
    return out


@bar_function
def ffill(x, session):
    out = np.empty(x.shape)
    for r in range(x.shape[0]):
        last = np.nan
        for i in range(x.shape[1]):
            if i > 0 and session[i] != session[i - 1]:
                last = np.nan
            if x[r, i] == x[r, i]:
                last = x[r, i]
            out[r, i] = last
    return out


@bar_function
def session_cumsum(x, session):
    out = np.empty(x.shape)
    for r in range(x.shape[0]):
        acc = 0.0
        for i in range(x.shape[1]):
            if i > 0 and session[i] != session[i - 1]:
                acc = 0.0
            if x[r, i] == x[r, i]:
                acc += x[r, i]
            out[r, i] = acc
    return out


@bar_function
def lead(x, k, session):
    out = np.full(x.shape, np.nan)
    for r in range(x.shape[0]):
        for i in range(x.shape[1] - k):
            if session[i + k] == session[i]:
                out[r, i] = x[r, i + k]
    return out


for _name, _doc, _fn, _n in [
    ("rolling_sum", "sum over the last n bars", rolling_sum, N),
    ("rolling_mean", "mean over the last n bars", rolling_mean, N),
    (
        "rolling_std",
        "sample standard deviation (ddof = 1) over the last n bars",
        rolling_std,
        Param("n", "int", None, 2),
    ),
    ("rolling_min", "minimum over the last n bars", rolling_min, N),
    ("rolling_max", "maximum over the last n bars", rolling_max, N),
]:
    register(
        Operator(_name, (Param("x"), _n), BAR, _doc, NAN_INSIDE, window=rolling_window, bar=_fn, bar_constants=("n",))
    )
register(
    Operator(
        "rolling_corr",
        (Param("x"), Param("y"), Param("n", "int", None, 2)),
        BAR,
        "Pearson correlation of x and y over the last n bars",
        "NaN until n bars exist, if any NaN is in the window, or if either side is constant",
        window=rolling_window,
        bar=rolling_corr,
        bar_constants=("n",),
    )
)
register(
    Operator(
        "ewm_mean",
        (Param("x"), Param("span", "number", None, 1)),
        BAR,
        "exponentially weighted mean, alpha = 2 / (span + 1), restarting each session",
        "starts at the session's first non-NaN value; NaN values are skipped (carry the mean); "
        "m = (1 - alpha) m + alpha x in IEEE arithmetic, so an infinite input stays infinite",
        session_local=True,
        bar=ewm_mean,
        bar_constants=("span",),
    )
)
register(
    Operator(
        "ffill",
        (Param("x"),),
        BAR,
        "carry the last non-NaN value forward within the session",
        "NaN until the session's first non-NaN value",
        session_local=True,
        bar=ffill,
    )
)
register(
    Operator(
        "session_cumsum",
        (Param("x"),),
        BAR,
        "running sum since the session open",
        "NaN values count as 0",
        session_local=True,
        bar=session_cumsum,
    )
)
register(
    Operator(
        "lead",
        (Param("x"), Param("k", "int", 1, 1)),
        BAR,
        "x from k bars later, within the session (targets only)",
        "NaN for the last k bars of the session",
        window=_lead_window,
        target_only=True,
        session_local=True,
        bar=lead,
        bar_constants=("k",),
    )
)


@bar_function
def rolling_median(x, n, session):
    out = np.full(x.shape, np.nan)
    window = np.empty(n)
    for r in range(x.shape[0]):
        for i in range(n - 1, x.shape[1]):
            complete = True
            for j in range(n):
                window[j] = x[r, i - n + 1 + j]
                if window[j] != window[j]:
                    complete = False
                    break
            if complete:
                out[r, i] = np.median(window)  # an even n: the mean of the two middle values
    return out


def _rolling_median_reference(x: np.ndarray, session: np.ndarray, n: float) -> np.ndarray:
    import pandas as pd  # only the tests call it: `fspec run` on plain parquet must not import pandas

    return pd.Series(x).rolling(int(n)).median().to_numpy(dtype=np.float64)


register(
    Operator(
        "rolling_median",
        (Param("x"), N),
        BAR,
        "median over the last n bars (an even n: the mean of the two middle values)",
        NAN_INSIDE,
        window=rolling_window,
        bar=rolling_median,
        bar_constants=("n",),
        reference=_rolling_median_reference,
        examples=("rolling_median(last(trades.price), 3)", "rolling_median(sum(trades.size), 4)"),
    )
)
