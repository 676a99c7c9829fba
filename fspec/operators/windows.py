"""Bar operators: windows over the bars of each entity.

Each implementation takes a (rows, bars) array, one row per entity of a feature (an instrument, or the one row
of a cross-asset feature), all on the same grid, and ``session``, the session number of each bar (warm-up
sessions first). Windows run across session boundaries, which is what warm-up is for, and never across rows;
operators marked session-local restart at each session. Each is compiled by numba on first use
(:class:`~fspec.operators.core.bar_function`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

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


def rolling_mean(x, n, session):
    """The window's sum divided by n (each value exactly as a loop dividing its own sum would give)."""
    return rolling_sum(x, n, session) / n


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
def rolling_extreme(x, n, session, largest):
    out = np.full(x.shape, np.nan)
    for r in range(x.shape[0]):
        for i in range(n - 1, x.shape[1]):
            best = x[r, i]
            for j in range(i - n + 1, i + 1):
                if x[r, j] != x[r, j]:
                    best = np.nan
                    break
                if (x[r, j] > best) if largest else (x[r, j] < best):
                    best = x[r, j]
            out[r, i] = best
    return out


def rolling_min(x, n, session):
    return rolling_extreme(x, n, session, False)


def rolling_max(x, n, session):
    return rolling_extreme(x, n, session, True)


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


# An EWM has infinite memory: with session=false it carries across sessions over a finite horizon, the fewest
# bars W after which the weight left on what came before is at most EWM_TOLERANCE (docs/semantics.md).
EWM_TOLERANCE = 1e-12


def ewm_horizon(alpha: float) -> int:
    """The fewest bars W with (1 - alpha)^W <= EWM_TOLERANCE (1 for alpha = 1, which remembers nothing)."""
    if alpha >= 1.0:
        return 1
    return max(1, math.ceil(math.log(EWM_TOLERANCE) / math.log1p(-alpha)))


def _carries(c: dict[str, float]) -> bool:
    return c.get("session", 1.0) == 0.0  # an EWM's flag is recorded only as session=false


def _span_horizon(c: dict[str, float]) -> int:
    return ewm_horizon(2.0 / (c["span"] + 1.0))


def _rma_horizon(c: dict[str, float]) -> int:
    return int(c["n"]) + ewm_horizon(1.0 / c["n"])  # n values seed it, then the seed's weight decays


def _ewm_window(horizon: Callable[[dict[str, float]], int]) -> Callable[[Window, dict[str, float]], Window]:
    def rule(w: Window, c: dict[str, float]) -> Window:
        """Session-local (the input's window), or with session=false W - 1 bars back: the session of that bar
        is loaded whole, and its open is where the recursion of the current bar starts at the latest."""
        if not _carries(c):
            return w
        return Window(w.left + horizon(c) - 1, w.right, w.sessions, w.anchored)

    return rule


def _ewm_constants(horizon: Callable[[dict[str, float]], int], name: str, kind: type) -> Callable[..., list]:
    def constants(c: dict[str, float]) -> list[int | float]:
        """The parameter, and the horizon in bars (0: restart at each session open)."""
        return [kind(c[name]), horizon(c) if _carries(c) else 0]

    return constants


# Where a bar's recursion starts (all three EWMs): session-local, at its session's open; carried, at the latest
# session open at least horizon - 1 bars before it (the first loaded bar if none is), so that it runs over at
# least `horizon` bars and depends on no bar before that open, however many sessions a run loads. The bars that
# share a start are one run of the recursion from it: a session's bars, or (carried) those from horizon - 1
# bars after an open to horizon - 1 bars after the next, which costs at most horizon - 1 bars per session more.


@bar_function
def ewm_mean(x, span, horizon, session):
    alpha = 2.0 / (span + 1.0)
    n = x.shape[1]
    out = np.full(x.shape, np.nan)
    for r in range(x.shape[0]):
        start = 0
        while start < n:
            stop = start + 1  # the next session's open
            while stop < n and session[stop] == session[stop - 1]:
                stop += 1
            first = start if horizon == 0 or start == 0 else start + horizon - 1  # the bars started here
            last = stop if horizon == 0 else min(n, stop + horizon - 1)
            mean = np.nan
            for i in range(start, last):
                if x[r, i] == x[r, i]:
                    mean = x[r, i] if mean != mean else (1.0 - alpha) * mean + alpha * x[r, i]
                if i >= first:
                    out[r, i] = mean
            start = stop
    return out


@bar_function
def ewm_std(x, span, horizon, session):
    # pandas' ewmcov recursion for adjust=False, ignore_na=True, bias=False, operation for operation (it divides
    # by the weights' sum 1 - alpha + alpha, which rounding may put a hair off 1), so the values match it
    alpha = 2.0 / (span + 1.0)
    keep = 1.0 - alpha
    total = keep + alpha
    n = x.shape[1]
    out = np.full(x.shape, np.nan)
    for r in range(x.shape[0]):
        start = 0
        while start < n:
            stop = start + 1  # the next session's open
            while stop < n and session[stop] == session[stop - 1]:
                stop += 1
            first = start if horizon == 0 or start == 0 else start + horizon - 1  # the bars started here
            last = stop if horizon == 0 else min(n, stop + horizon - 1)
            mean = np.nan
            var = 0.0
            squares = 1.0  # the sum of the squared weights, for the bias correction 1 / (1 - squares)
            for i in range(start, last):
                v = x[r, i]
                if v == v:
                    if mean != mean:
                        mean = v
                    else:
                        old = mean
                        if mean != v:  # a constant series keeps its mean exactly, and so a zero deviation
                            mean = (keep * old + alpha * v) / total
                        var = (keep * (var + (old - mean) * (old - mean)) + alpha * ((v - mean) * (v - mean))) / total
                        squares = (squares * (keep * keep) + alpha * alpha) / (total * total)
                if i >= first and mean == mean and 1.0 - squares > 0.0:  # one value has no deviation
                    out[r, i] = np.sqrt((1.0 / (1.0 - squares)) * var)
            start = stop
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
CARRY_EDGE = (
    "; session=false: carries across sessions (warm-up sessions loaded): a bar's recursion starts at the latest "
    "session open at least W - 1 bars before it, W = {w}, so what came before weighs (1 - alpha)^v, v the values "
    "since that open (NaN bars do not decay it; none: NaN), at most 1e-12 when none is NaN; the data's first session "
    "starts at its open (day 1 is the session-local value)"
)


def _ewm_std_reference(x: np.ndarray, session: np.ndarray, span: float) -> np.ndarray:
    """pandas' ``ewm(span, adjust=False, ignore_na=True).std()`` (bias-corrected) within each session."""
    import pandas as pd  # tests only: a run imports no pandas

    ewm = pd.Series(x).groupby(session).transform(lambda s: s.ewm(span=span, adjust=False, ignore_na=True).std())
    return ewm.to_numpy(dtype=np.float64)


SPAN = Param("span", "number", None, 1)
register(
    Operator(
        "ewm_mean",
        (Param("x"), SPAN),
        BAR,
        "exponentially weighted mean, alpha = 2 / (span + 1), restarting each session (session=true) unless "
        "session=false; pandas' ewm(span, adjust=False, ignore_na=True).mean()",
        "starts at the session's first non-NaN value; NaN values are skipped (carry the mean); "
        "m = (1 - alpha) m + alpha x in IEEE arithmetic, so an infinite input stays infinite"
        + CARRY_EDGE.format(w="ceil(ln 1e-12 / ln(1 - alpha))"),
        window=_ewm_window(_span_horizon),
        session_default=True,
        bar=ewm_mean,
        call_constants=_ewm_constants(_span_horizon, "span", float),
        examples=("ewm_mean(last(trades.price), 3, session=false)",),
    )
)
register(
    Operator(
        "ewm_std",
        (Param("x"), SPAN),
        BAR,
        "exponentially weighted standard deviation, alpha = 2 / (span + 1), bias-corrected, restarting each "
        "session (session=true) unless session=false; pandas' ewm(span, adjust=False, ignore_na=True).std()",
        "NaN until the session's second non-NaN value (one value has no deviation), and always for span = 1 "
        "(all the weight on the current value); NaN values are skipped "
        "(carry the std); a constant series gives 0; an infinite input makes it NaN for the rest of the session "
        "(inf - inf; carried: until a start after it)" + CARRY_EDGE.format(w="ceil(ln 1e-12 / ln(1 - alpha))"),
        window=_ewm_window(_span_horizon),
        session_default=True,
        bar=ewm_std,
        call_constants=_ewm_constants(_span_horizon, "span", float),
        reference=_ewm_std_reference,
        examples=(
            "ewm_std(last(trades.price), 3)",
            "ewm_std(sum(trades.size), 1.5)",
            "ewm_std(last(trades.price) - first(trades.price), 2, session=false)",
        ),
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
    import pandas as pd  # tests only: a run imports no pandas

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


@bar_function
def rolling_wmean(x, w, n, session):
    out = np.full(x.shape, np.nan)
    for r in range(x.shape[0]):
        for i in range(n - 1, x.shape[1]):
            num = 0.0
            den = 0.0
            for j in range(i - n + 1, i + 1):
                num += x[r, j] * w[r, j]
                den += w[r, j]
            if den != 0.0:  # a NaN in the window makes both sums NaN, and so the result
                out[r, i] = num / den
    return out


def _rolling_wmean_reference(x: np.ndarray, w: np.ndarray, session: np.ndarray, n: float) -> np.ndarray:
    import pandas as pd

    num = pd.Series(x * w).rolling(int(n)).sum().to_numpy()
    den = pd.Series(w).rolling(int(n)).sum().to_numpy()
    with np.errstate(all="ignore"):
        return np.where(den == 0.0, np.nan, num / den)


register(
    Operator(
        "rolling_wmean",
        (Param("x"), Param("w"), N),
        BAR,
        "weighted mean sum(x * w) / sum(w) over the last n bars",
        NAN_INSIDE + " (of x or w); sum(w) = 0 gives NaN",
        window=rolling_window,
        bar=rolling_wmean,
        bar_constants=("n",),
        reference=_rolling_wmean_reference,
        examples=("rolling_wmean(last(trades.price), sum(trades.size), 3)",),
    )
)


@bar_function
def decay_linear(x, n, session):
    out = np.full(x.shape, np.nan)
    total = n * (n + 1) / 2.0
    for r in range(x.shape[0]):
        for i in range(n - 1, x.shape[1]):
            acc = 0.0
            for j in range(n):
                acc += x[r, i - n + 1 + j] * (j + 1.0)  # the oldest weighs 1, the current bar n
            out[r, i] = acc / total
    return out


def _decay_linear_reference(x: np.ndarray, session: np.ndarray, n: float) -> np.ndarray:
    k = int(n)
    weights = np.arange(1, k + 1, dtype=np.float64)
    out = np.full(x.shape[0], np.nan)
    for i in range(k - 1, x.shape[0]):
        out[i] = float(np.dot(x[i - k + 1 : i + 1], weights)) / weights.sum()
    return out


register(
    Operator(
        "decay_linear",
        (Param("x"), N),
        BAR,
        "linearly decaying weighted mean of the last n bars: weights 1..n, the current bar heaviest, normalised",
        NAN_INSIDE,
        window=rolling_window,
        bar=decay_linear,
        bar_constants=("n",),
        reference=_decay_linear_reference,
        examples=("decay_linear(last(trades.price), 4)",),
    )
)


@bar_function
def rma(x, n, horizon, session):
    alpha = 1.0 / n
    bars = x.shape[1]
    out = np.full(x.shape, np.nan)
    for r in range(x.shape[0]):
        start = 0
        while start < bars:  # where each bar's recursion starts: see ewm_mean
            stop = start + 1
            while stop < bars and session[stop] == session[stop - 1]:
                stop += 1
            first = start if horizon == 0 or start == 0 else start + horizon - 1
            last = stop if horizon == 0 else min(bars, stop + horizon - 1)
            mean = np.nan
            seen = 0
            for i in range(start, last):
                if x[r, i] == x[r, i]:
                    seen += 1
                    if seen < n:
                        mean = x[r, i] if seen == 1 else mean + x[r, i]
                    elif seen == n:
                        mean = (x[r, i] if n == 1 else mean + x[r, i]) / n  # seeded by the mean of the first n
                    else:
                        mean = mean * (1.0 - alpha) + x[r, i] * alpha
                if i >= first and seen >= n:
                    out[r, i] = mean
            start = stop
    return out


def _rma_reference(x: np.ndarray, session: np.ndarray, n: float) -> np.ndarray:
    """TTR's EMA(x, n, wilder = TRUE) within each session, NaN values left out."""
    k = int(n)
    out = np.full(x.shape[0], np.nan)
    for day in np.unique(session):
        rows = np.flatnonzero((session == day) & ~np.isnan(x))
        if len(rows) < k:
            continue
        mean = float(np.mean(x[rows[:k]]))
        out[rows[k - 1]] = mean
        for i in rows[k:]:
            mean = mean * (1.0 - 1.0 / k) + x[i] * (1.0 / k)
            out[i] = mean
        day_rows = np.flatnonzero(session == day)
        filled = out[day_rows]
        known = ~np.isnan(filled)
        last = np.maximum.accumulate(np.where(known, np.arange(len(filled)), -1))
        out[day_rows] = np.where(last >= 0, filled[np.maximum(last, 0)], np.nan)  # NaN bars carry the mean
    return out


register(
    Operator(
        "rma",
        (Param("x"), N),
        BAR,
        "Wilder's moving average (RSI, ATR): alpha = 1/n, seeded by the mean of the session's first n values, "
        "as TTR and TA-Lib do; restarts each session (session=true) unless session=false",
        "NaN until n non-NaN values of the session; a NaN value is skipped (the mean carries)"
        + CARRY_EDGE.format(w="n + ceil(ln 1e-12 / ln(1 - 1/n))")
        + " (NaN until n non-NaN values in them)",
        window=_ewm_window(_rma_horizon),
        session_default=True,
        bar=rma,
        call_constants=_ewm_constants(_rma_horizon, "n", int),
        reference=_rma_reference,
        examples=(
            "rma(sum(trades.size), 3)",
            "rma(last(trades.price) - first(trades.price), 2)",
            "rma(sum(trades.size), 2, session=false)",
        ),
    )
)
