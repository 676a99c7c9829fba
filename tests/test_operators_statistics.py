"""The rolling statistics of ``fspec.operators.statistics`` against numpy / pandas computations written here, on
their edge cases: NaN inside a window, fewer bars than the window, ties, constant windows, several rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fspec.operators import REGISTRY, statistics

SESSION = np.repeat(np.arange(3), 7).astype(np.int64)  # three sessions of 7 bars
BARS = SESSION.shape[0]


def _series(seed: int) -> np.ndarray:
    """Three rows, rounded (ties), with NaN inside and a constant stretch."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=(3, BARS)), 1)
    x[0, 4] = np.nan
    x[2, 10:12] = np.nan
    x[1, 10:20] = 0.7  # a constant stretch of 10 bars
    return x


def _own_reference(name: str, *rows: np.ndarray, session: np.ndarray = SESSION, **consts: float) -> np.ndarray:
    reference = REGISTRY[name].reference
    assert reference is not None
    return reference(*rows, session=session, **consts)


def _per_window(row: np.ndarray, n: int, fn) -> np.ndarray:
    """fn(window) at every bar with n bars behind it and no NaN in the window; NaN elsewhere."""
    out = np.full(row.shape[0], np.nan)
    for i in range(n - 1, row.shape[0]):
        w = row[i - n + 1 : i + 1]
        if not np.isnan(w).any():
            out[i] = fn(w)
    return out


# ---- skewness and kurtosis ------------------------------------------------------------------------------


def _pandas_moment(w: np.ndarray, which: str) -> float:
    if (w == w[0]).all():
        return np.nan  # pandas: a constant window has no skewness / kurtosis
    s = pd.Series(w)
    return float(s.skew() if which == "skew" else s.kurt())


@pytest.mark.parametrize("which, n", [("skew", 3), ("skew", 4), ("skew", 7), ("kurt", 4), ("kurt", 5), ("kurt", 9)])
def test_rolling_skew_and_kurt(which: str, n: int) -> None:
    x = _series(n)
    fn = statistics.rolling_skew if which == "skew" else statistics.rolling_kurt
    got = fn(x, n, SESSION)
    expected = np.stack([_per_window(row, n, lambda w: _pandas_moment(w, which)) for row in x])
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    name = f"rolling_{which}"
    np.testing.assert_allclose(np.stack([_own_reference(name, row, n=n) for row in x]), expected, rtol=1e-9, atol=1e-12)
    assert np.isnan(got[1, 19])  # a window inside the constant stretch
    assert np.isnan(got[0, 4 : 4 + n]).all()  # the NaN at bar 4 is in these windows
    assert np.isnan(got[:, : n - 1]).all()


@pytest.mark.parametrize("which, n", [("skew", 5), ("kurt", 6)])
def test_rolling_moments_are_pandas_rolling(which: str, n: int) -> None:
    """Well-conditioned data near 0: the same numbers as pandas' own rolling(n).skew() / .kurt()."""
    x = np.random.default_rng(7).normal(size=(1, 200))
    rolling = pd.Series(x[0]).rolling(n)
    expected = (rolling.skew() if which == "skew" else rolling.kurt()).to_numpy()
    fn = statistics.rolling_skew if which == "skew" else statistics.rolling_kurt
    np.testing.assert_allclose(fn(x, n, np.zeros(200, dtype=np.int64))[0], expected, rtol=1e-7, atol=1e-9)


def test_rolling_moments_lose_no_digits_far_from_zero() -> None:
    """Two-pass moments: a window around 1e6 gives the shape of the same window around 0."""
    base = np.array([[0.01, 0.03, 0.02, 0.07, 0.01, 0.05, 0.02]])
    for fn, n in [(statistics.rolling_skew, 5), (statistics.rolling_kurt, 5)]:
        near = fn(base, n, SESSION[:7])
        far = fn(base + 1e6, n, SESSION[:7])
        np.testing.assert_allclose(far[:, n - 1 :], near[:, n - 1 :], rtol=1e-6)


def test_rolling_moments_of_short_series_and_infinities() -> None:
    x = np.array([[1.0, 2.0, 4.0], [1.0, np.inf, 2.0]])
    assert np.isnan(statistics.rolling_kurt(x, 4, SESSION[:3])).all()  # n larger than the series
    skew = statistics.rolling_skew(x, 3, SESSION[:3])
    assert np.isnan(skew[1, 2])  # an infinite value in the window
    assert skew[0, 2] == pytest.approx(pd.Series([1.0, 2.0, 4.0]).skew(), rel=1e-12)


def test_rows_are_independent() -> None:
    x = _series(11)
    for name in ("rolling_skew", "rolling_kurt"):
        fn = getattr(statistics, name)
        together = fn(x, 4, SESSION)
        alone = np.concatenate([fn(x[r : r + 1], 4, SESSION) for r in range(3)])
        np.testing.assert_array_equal(together, alone)


@pytest.mark.parametrize("name", ["rolling_skew", "rolling_kurt"])
def test_references_of_series_shorter_than_the_window(name: str) -> None:
    assert np.isnan(_own_reference(name, np.array([1.0, 2.0]), session=SESSION[:2], n=5)).all()


# ---- quantile -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 4, 7, 30])
@pytest.mark.parametrize("q", [0.0, 0.1, 0.25, 0.5, 0.7, 0.9, 1.0])
def test_rolling_quantile(n: int, q: float) -> None:
    x = _series(n)
    got = statistics.rolling_quantile(x, n, q, SESSION)
    expected = np.stack([_per_window(row, n, lambda w: np.quantile(w, q)) for row in x])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        np.stack([_own_reference("rolling_quantile", row, n=n, q=q) for row in x]), expected, rtol=1e-12, atol=1e-15
    )
    if q == 0.5:
        np.testing.assert_allclose(got, np.stack([_per_window(row, n, np.median) for row in x]), rtol=1e-12)


def test_rolling_quantile_by_hand_and_its_bounds() -> None:
    x = np.array([[4.0, 1.0, 3.0, 2.0, 2.0]])
    # sorted window of the last 4 bars at bar 3: 1, 2, 3, 4; h = 3 q
    assert statistics.rolling_quantile(x, 4, 0.5, SESSION[:5])[0, 3] == 2.5
    assert statistics.rolling_quantile(x, 4, 0.25, SESSION[:5])[0, 3] == 1.75
    assert statistics.rolling_quantile(x, 4, 0.0, SESSION[:5])[0, 3] == 1.0
    assert statistics.rolling_quantile(x, 4, 1.0, SESSION[:5])[0, 3] == 4.0
    # ties: sorted 1, 2, 2, 3 at bar 4
    assert statistics.rolling_quantile(x, 4, 0.5, SESSION[:5])[0, 4] == 2.0
    assert np.isnan(statistics.rolling_quantile(x, 6, 0.5, SESSION[:5])).all()  # n larger than the series


def test_rolling_quantile_with_infinities() -> None:
    inf = np.inf
    x = np.array([[1.0, inf, 2.0, -inf, inf]])
    got = statistics.rolling_quantile(x, 2, 0.5, SESSION[:5])[0]
    np.testing.assert_array_equal(got, [np.nan, inf, inf, -inf, np.nan])  # between -inf and +inf: NaN
    got = statistics.rolling_quantile(x, 3, 1.0, SESSION[:5])[0]
    np.testing.assert_array_equal(got, [np.nan, np.nan, inf, inf, inf])  # exact positions need no interpolation
    ref = _own_reference("rolling_quantile", x[0], session=SESSION[:5], n=3, q=1.0)
    np.testing.assert_array_equal(ref, got)
