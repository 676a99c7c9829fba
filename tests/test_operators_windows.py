"""The bar window operators of ``fspec.operators.windows`` against plain numpy computations written here, on
their edge cases: NaN inside a window, fewer bars than the window, ties, even windows, several rows."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from fspec.operators import REGISTRY, Window, windows

SESSION = np.repeat(np.arange(3), 7).astype(np.int64)  # three sessions of 7 bars


def _series(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=(3, SESSION.shape[0])), 1)  # rounded: ties
    x[0, 4] = np.nan
    x[2, 10:12] = np.nan
    return x


def _windowed_median(row: np.ndarray, n: int) -> np.ndarray:
    out = np.full(row.shape[0], np.nan)
    if row.shape[0] >= n:
        w = sliding_window_view(row, n)
        out[n - 1 :] = np.where(np.isnan(w).any(axis=1), np.nan, np.median(w, axis=1))
    return out


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 30])
def test_rolling_median(n: int) -> None:
    x = _series(n)
    got = windows.rolling_median(x, n, SESSION)
    expected = np.stack([_windowed_median(row, n) for row in x])
    np.testing.assert_array_equal(got, expected)
    reference = REGISTRY["rolling_median"].reference
    assert reference is not None
    np.testing.assert_allclose(np.stack([reference(row, session=SESSION, n=n) for row in x]), expected, rtol=1e-15)


def test_rolling_median_of_an_even_window_is_the_mean_of_the_middle_values() -> None:
    x = np.array([[4.0, 1.0, 3.0, 2.0]])
    assert windows.rolling_median(x, 4, SESSION[:4])[0, 3] == 2.5


def test_decay_linear_weighs_the_current_bar_heaviest() -> None:
    x = np.array([[1.0, 2.0, 4.0]])
    assert windows.decay_linear(x, 3, SESSION[:3])[0, 2] == (1 * 1 + 2 * 2 + 4 * 3) / 6


def test_rma_is_seeded_by_the_mean_of_the_first_n_values_and_restarts_each_session() -> None:
    x = np.array([[2.0, 4.0, np.nan, 6.0, 9.0, 1.0, 1.0, 1.0]])
    session = np.array([0, 0, 0, 0, 0, 1, 1, 1], dtype=np.int64)
    got = windows.rma(x, 2, 0, session)[0]  # horizon 0: session-local
    seed = 3.0
    expected = [np.nan, seed, seed, seed / 2 + 3.0, (seed / 2 + 3.0) / 2 + 4.5, np.nan, 1.0, 1.0]
    np.testing.assert_allclose(got, expected, equal_nan=True)


def test_rolling_wmean_of_zero_weights_is_nan() -> None:
    x, w = np.array([[1.0, 2.0, 3.0]]), np.array([[0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(windows.rolling_wmean(x, w, 2, SESSION[:3])[0], [np.nan, np.nan, 3.0])


# ---- EWMs: ewm_std against pandas, and the carry across sessions (session=false) against one continuous run ----


def _pandas_ewm(x: np.ndarray, session: np.ndarray, span: float, stat: str) -> np.ndarray:
    """pandas' ewm(span, adjust=False, ignore_na=True) mean or std of each row, within each session."""
    rows = []
    for row in x:
        grouped = pd.Series(row).groupby(session)
        rows.append(grouped.transform(lambda s: getattr(s.ewm(span=span, adjust=False, ignore_na=True), stat)()))
    return np.stack([r.to_numpy(dtype=np.float64) for r in rows])


def _noisy(seed: int, bars: int = 60) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3, bars)) * 10.0 + 5.0
    x[0, 4:9] = np.nan  # a run of NaN inside a session
    x[1, :3] = np.nan  # leading NaN
    x[2, ::7] = np.nan  # scattered NaN, a session's first bar among them
    return x


@pytest.mark.parametrize("span", [1.0, 1.5, 2.0, 3.0, 7.5, 40.0])
def test_ewm_std_is_pandas_bias_corrected_std_within_each_session(span: float) -> None:
    session = np.repeat(np.arange(3), 20).astype(np.int64)
    x = _noisy(int(span * 10))
    got = windows.ewm_std(x, span, 0, session)
    expected = _pandas_ewm(x, session, span, "std")
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    if span == 1.0:  # alpha = 1: all the weight on the current value, no deviation to measure
        assert np.isnan(got).all()
        return
    # NaN until a session's second value, then a value at every bar (NaN bars carry the std)
    for r in range(3):
        for day in range(3):
            rows = np.flatnonzero(session == day)
            values = np.flatnonzero(~np.isnan(x[r, rows]))
            assert np.isnan(got[r, rows[: values[1]]]).all() and not np.isnan(got[r, rows[values[1] :]]).any()


def test_ewm_std_of_a_constant_is_zero_and_an_infinite_value_poisons_the_session() -> None:
    session = np.array([0, 0, 0, 0, 1, 1], dtype=np.int64)
    constant = windows.ewm_std(np.full((1, 6), 0.1), 3.0, 0, session)[0]
    np.testing.assert_array_equal(constant, [np.nan, 0.0, 0.0, 0.0, np.nan, 0.0])  # exactly 0, not rounding
    got = windows.ewm_std(np.array([[1.0, 2.0, np.inf, 3.0, 1.0, 2.0]]), 3.0, 0, session)[0]
    assert not np.isnan(got[1]) and np.isnan(got[2:4]).all()  # inf - inf from the infinite bar on
    assert np.isnan(got[4]) and np.isfinite(got[5])  # the next session starts afresh
    # carried over 3 bars: bars 0-5 start at bar 0 (no open is 2 bars before them), bars 6-7 at the open at 4
    session = np.array([0, 0, 0, 0, 1, 1, 1, 1], dtype=np.int64)
    carried = windows.ewm_std(np.array([[1.0, 2.0, np.inf, 3.0, 1.0, 2.0, 4.0, 1.0]]), 3.0, 3, session)[0]
    assert np.isnan(carried[2:6]).all() and np.isfinite(carried[6:]).all()


@pytest.mark.parametrize("alpha", [1.0, 0.999, 0.8, 0.5, 2 / 21, 1 / 14, 1e-3])
def test_ewm_horizon_is_the_fewest_bars_that_leave_at_most_the_tolerance_outside(alpha: float) -> None:
    w = windows.ewm_horizon(alpha)
    assert (1.0 - alpha) ** w <= windows.EWM_TOLERANCE
    assert w == 1 or (1.0 - alpha) ** (w - 1) > windows.EWM_TOLERANCE


def _starts(session: np.ndarray, w: int) -> np.ndarray:
    """The documented start of each bar's carried recursion: the latest session open at least w - 1 bars before
    it, or the first bar where there is none."""
    opens = np.flatnonzero(np.r_[True, session[1:] != session[:-1]])
    latest = np.searchsorted(opens, np.arange(session.size) - w + 1, side="right") - 1
    return np.where(latest >= 0, opens[np.maximum(latest, 0)], 0)


def _since(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The number of non-NaN values of each row from each bar's start to the bar."""
    valid = np.concatenate([np.zeros((x.shape[0], 1), dtype=np.int64), np.cumsum(~np.isnan(x), axis=1)], axis=1)
    return valid[:, 1:] - valid[:, starts]


def _fresh(x: np.ndarray, starts: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Each bar's value by the definition: ``fn`` over the bars from its start to it, the last value."""
    return np.array([[fn(row[starts[t] : t + 1])[-1] for t in range(row.size)] for row in x])


@pytest.mark.parametrize("span", [1.5, 3.0, 6.0])
def test_carried_ewm_mean_and_std_match_one_continuous_pandas_ewm_within_the_truncation_bound(span: float) -> None:
    """With session=false each bar's recursion starts at the latest session open at least W - 1 bars back: its
    value is pandas' ewm over the bars from there. Against one continuous pandas ewm over all the sessions, the
    bars before that open weigh eps = (1 - alpha)^v (v the values since it): the mean differs by at most eps * R
    (R the range of x), the biased variance by at most 1.25 eps R^2 and the bias correction by at most eps^2."""
    session = np.repeat(np.arange(10), 20).astype(np.int64)  # 200 bars, more than twice W for these spans
    x = _noisy(int(span * 7), bars=200)
    alpha = 2.0 / (span + 1.0)
    w = windows.ewm_horizon(alpha)
    assert w < x.shape[1] // 2  # the truncation is exercised, not only the data's first bars
    starts = _starts(session, w)
    assert (np.arange(200) - starts >= w - 1).sum() > 100  # most bars start W - 1 or more bars back
    one = np.zeros_like(session)
    eps = (1.0 - alpha) ** _since(x, starts)
    spread = np.nanmax(x) - np.nanmin(x)

    def ewm(part: np.ndarray) -> pd.core.window.ewm.ExponentialMovingWindow:
        return pd.Series(part).ewm(span=span, adjust=False, ignore_na=True)

    mean = windows.ewm_mean(x, span, w, session)
    np.testing.assert_allclose(mean, _fresh(x, starts, lambda p: ewm(p).mean().to_numpy()), rtol=1e-13)
    continuous = _pandas_ewm(x, one, span, "mean")
    assert np.array_equal(np.isnan(mean), np.isnan(continuous))
    ok = ~np.isnan(mean)
    assert (np.abs(mean - continuous)[ok] <= eps[ok] * spread + 1e-12 * spread).all()
    # the first session's bars and the bars up to W - 1 after the next open start at the data's first bar
    np.testing.assert_allclose(mean[:, : 20 + w - 1], continuous[:, : 20 + w - 1], rtol=1e-13, equal_nan=True)
    # the bound is not vacuous: somewhere NaN bars leave more than 1e-12 of weight outside
    assert (np.abs(mean - continuous)[ok] > 1e-12 * spread).any()

    std = windows.ewm_std(x, span, w, session)
    np.testing.assert_allclose(std, _fresh(x, starts, lambda p: ewm(p).std().to_numpy()), rtol=1e-12, atol=1e-12)
    continuous = _pandas_ewm(x, one, span, "std")
    assert np.array_equal(np.isnan(std), np.isnan(continuous))
    # both bias corrections are at most 1 / (1 - (1 - alpha)^2 - alpha^2) for two or more values
    f = 1.0 / (1.0 - (1.0 - alpha) ** 2 - alpha**2)
    bound = f * 1.25 * eps * spread**2 + continuous**2 * f * eps**2 + 1e-10 * spread**2
    ok = ~np.isnan(std)
    assert (np.abs(std**2 - continuous**2)[ok] <= bound[ok]).all()
    np.testing.assert_allclose(std[:, : 20 + w - 1], continuous[:, : 20 + w - 1], rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_carried_rma_matches_one_continuous_rma_within_the_truncation_bound(n: int) -> None:
    session = np.repeat(np.arange(8), 15).astype(np.int64)
    x = _noisy(n, bars=120)
    w = n + windows.ewm_horizon(1.0 / n)
    got = windows.rma(x, n, w, session)
    reference = REGISTRY["rma"].reference
    assert reference is not None
    starts = _starts(session, w)
    by_definition = _fresh(x, starts, lambda p: reference(p, session=np.zeros_like(p, dtype=np.int64), n=n))
    np.testing.assert_allclose(got, by_definition, rtol=1e-13, equal_nan=True)
    continuous = np.stack([reference(row, session=np.zeros_like(session), n=n) for row in x])
    assert np.array_equal(np.isnan(got), np.isnan(continuous))
    eps = (1.0 - 1.0 / n) ** np.maximum(_since(x, starts) - n, 0)  # the seed's weight after the values after it
    spread = np.nanmax(x) - np.nanmin(x)
    ok = ~np.isnan(got)
    assert (np.abs(got - continuous)[ok] <= eps[ok] * spread + 1e-12 * spread).all()
    np.testing.assert_allclose(got[:, : 15 + w - 1], continuous[:, : 15 + w - 1], rtol=1e-13, equal_nan=True)


def test_the_static_window_of_a_carried_ewm_is_its_horizon() -> None:
    """The warm-up the runtime loads comes from the window: W - 1 bars back with session=false, none without."""
    spans = {"ewm_mean": ("span", 5.0), "ewm_std": ("span", 5.0), "rma": ("n", 14.0)}
    for op, (name, value) in spans.items():
        w = REGISTRY[op].window(Window(3, 0), {name: value, "session": 0.0})
        expected = windows.ewm_horizon(2 / 6) if op != "rma" else 14 + windows.ewm_horizon(1 / 14)
        assert w == Window(3 + expected - 1, 0)
        assert REGISTRY[op].window(Window(3, 0), {name: value}) == Window(3, 0)  # session-local by default
