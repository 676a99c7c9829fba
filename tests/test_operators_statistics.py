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


# ---- rank -----------------------------------------------------------------------------------------------


def _rank_by_counting(w: np.ndarray) -> float:
    """Pairwise: each other value of the window below scores 1, each one equal scores 1/2."""
    scores = [1.0 if v < w[-1] else 0.5 if v == w[-1] else 0.0 for v in w[:-1]]
    return sum(scores) / (len(w) - 1)


@pytest.mark.parametrize("n", [2, 3, 5, 8, 30])
def test_rolling_rank(n: int) -> None:
    x = _series(n)
    got = statistics.rolling_rank(x, n, SESSION)
    expected = np.stack([_per_window(row, n, _rank_by_counting) for row in x])
    np.testing.assert_allclose(got, expected, rtol=1e-15)
    np.testing.assert_allclose(np.stack([_own_reference("rolling_rank", row, n=n) for row in x]), expected, rtol=1e-15)
    assert ((got >= 0) & (got <= 1))[~np.isnan(got)].all()
    if n <= 10:
        assert got[1, 19] == 0.5  # a constant window


def test_rolling_rank_is_pandas_average_rank_rescaled() -> None:
    x = np.round(np.random.default_rng(3).normal(size=(1, 60)), 1)  # many ties
    pandas_rank = pd.Series(x[0]).rolling(5).rank(method="average").to_numpy()
    np.testing.assert_allclose(statistics.rolling_rank(x, 5, np.zeros(60, dtype=np.int64))[0], (pandas_rank - 1) / 4)


def test_rolling_rank_by_hand() -> None:
    x = np.array([[3.0, 1.0, 2.0, 2.0, 5.0, np.inf, -np.inf]])
    got = statistics.rolling_rank(x, 3, SESSION[:7])[0]
    # windows ending at bars 2..6: [3 1 2] -> 1/2; [1 2 2] -> 1.5/2; [2 2 5], [2 5 inf] -> 1; [5 inf -inf] -> 0
    np.testing.assert_array_equal(got, [np.nan, np.nan, 0.5, 0.75, 1.0, 1.0, 0.0])
    x[0, 3] = np.nan
    assert np.isnan(statistics.rolling_rank(x, 3, SESSION[:7])[0, 3:6]).all()


# ---- bars since the maximum / minimum -------------------------------------------------------------------


def _bars_since_by_scan(w: np.ndarray, pick) -> float:
    target = pick(w)
    return float(min(len(w) - 1 - j for j in range(len(w)) if w[j] == target))  # the most recent holder


@pytest.mark.parametrize("n", [1, 2, 3, 6, 30])
@pytest.mark.parametrize("name, pick", [("rolling_argmax", np.max), ("rolling_argmin", np.min)])
def test_rolling_argmax_and_argmin(name: str, pick, n: int) -> None:
    x = _series(n)
    got = getattr(statistics, name)(x, n, SESSION)
    expected = np.stack([_per_window(row, n, lambda w: _bars_since_by_scan(w, pick)) for row in x])
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(np.stack([_own_reference(name, row, n=n) for row in x]), expected)
    if n == 1:
        assert (got[~np.isnan(got)] == 0).all()
    if 1 < n <= 10:
        assert got[1, 19] == 0  # a constant window: the current bar


def test_rolling_argmax_ties_take_the_most_recent() -> None:
    x = np.array([[5.0, 1.0, 5.0, 2.0, 1.0, -np.inf]])
    np.testing.assert_array_equal(statistics.rolling_argmax(x, 4, SESSION[:6])[0], [np.nan] * 3 + [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(statistics.rolling_argmin(x, 4, SESSION[:6])[0], [np.nan] * 3 + [2.0, 0.0, 0.0])
    np.testing.assert_array_equal(statistics.rolling_argmin(x, 5, SESSION[:6])[0], [np.nan] * 4 + [0.0, 0.0])


# ---- covariance, beta, slope, z-score -------------------------------------------------------------------


def _pairs(seed: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = _series(seed), _series(seed + 100)
    y[1, 10:20] = np.round(np.linspace(-1, 1, 10), 1)  # y varies where x is constant
    y[0, 14:21] = -0.3  # y constant where x varies
    return x, y


def _pairwise(xrow: np.ndarray, yrow: np.ndarray, n: int, fn) -> np.ndarray:
    out = np.full(xrow.shape[0], np.nan)
    for i in range(n - 1, xrow.shape[0]):
        wx, wy = xrow[i - n + 1 : i + 1], yrow[i - n + 1 : i + 1]
        if not (np.isnan(wx).any() or np.isnan(wy).any()):
            out[i] = fn(wx, wy)
    return out


def _flat(w: np.ndarray) -> bool:
    return bool((w == w[0]).all())


@pytest.mark.parametrize("n", [2, 3, 5, 7, 30])
def test_rolling_cov(n: int) -> None:
    x, y = _pairs(n)
    got = statistics.rolling_cov(x, y, n, SESSION)

    def cov(wx: np.ndarray, wy: np.ndarray) -> float:
        return 0.0 if _flat(wx) or _flat(wy) else np.cov(wx, wy)[0, 1]

    expected = np.stack([_pairwise(a, b, n, cov) for a, b in zip(x, y, strict=True)])
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-15)
    ref = np.stack([_own_reference("rolling_cov", a, b, n=n) for a, b in zip(x, y, strict=True)])
    np.testing.assert_allclose(ref, expected, rtol=1e-9, atol=1e-15)
    if n <= 7:
        assert got[0, 20] == 0.0 and got[1, 19] == 0.0  # one side constant: exactly 0


@pytest.mark.parametrize("n", [2, 3, 5, 7, 30])
def test_rolling_beta(n: int) -> None:
    x, y = _pairs(n)
    got = statistics.rolling_beta(y, x, n, SESSION)

    def beta(wx: np.ndarray, wy: np.ndarray) -> float:
        if _flat(wx):
            return np.nan
        return 0.0 if _flat(wy) else np.polyfit(wx, wy, 1)[0]  # least squares, independently

    expected = np.stack([_pairwise(a, b, n, beta) for a, b in zip(x, y, strict=True)])
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    ref = np.stack([_own_reference("rolling_beta", b, a, n=n) for a, b in zip(x, y, strict=True)])
    np.testing.assert_allclose(ref, expected, rtol=1e-9, atol=1e-12)
    if n <= 10:
        assert np.isnan(got[1, 19])  # x constant: var(x) = 0


def test_rolling_beta_of_a_line_and_argument_order() -> None:
    x = np.array([[1.0, 2.0, 4.0, 8.0, 3.0]])
    y = 3.0 * x - 1.0
    np.testing.assert_allclose(statistics.rolling_beta(y, x, 3, SESSION[:5])[0, 2:], 3.0, rtol=1e-14)
    np.testing.assert_allclose(statistics.rolling_beta(x, y, 3, SESSION[:5])[0, 2:], 1 / 3, rtol=1e-14)


@pytest.mark.parametrize("n", [2, 3, 5, 7, 30])
def test_rolling_slope(n: int) -> None:
    x = _series(n)
    got = statistics.rolling_slope(x, n, SESSION)
    t = np.arange(n, dtype=np.float64)
    expected = np.stack([_per_window(row, n, lambda w: 0.0 if _flat(w) else np.polyfit(t, w, 1)[0]) for row in x])
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    ref = np.stack([_own_reference("rolling_slope", row, n=n) for row in x])
    np.testing.assert_allclose(ref, expected, rtol=1e-9, atol=1e-12)
    if n <= 10:
        assert got[1, 19] == 0.0


def test_rolling_slope_by_hand() -> None:
    x = np.array([[5.0, 7.0, 9.0, 8.0, 1e6 + 1.0, 1e6 + 3.0, 1e6 + 5.0]])
    got = statistics.rolling_slope(x, 2, SESSION[:7])[0]
    np.testing.assert_array_equal(got[1:], np.diff(x[0]))  # n = 2: the last difference
    got = statistics.rolling_slope(x, 3, SESSION[:7])[0]
    assert got[2] == 2.0 and got[6] == 2.0  # a line, also far from zero
    assert np.isnan(statistics.rolling_slope(x, 8, SESSION[:7])).all()


def _zscore_in_numpy(w: np.ndarray) -> float:
    std = np.std(w, ddof=1)
    return np.nan if _flat(w) else (w[-1] - np.mean(w)) / std


@pytest.mark.parametrize("n", [2, 3, 5, 7, 30])
def test_zscore(n: int) -> None:
    x = _series(n)
    got = statistics.zscore(x, n, SESSION)
    expected = np.stack([_per_window(row, n, _zscore_in_numpy) for row in x])
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(np.stack([_own_reference("zscore", row, n=n) for row in x]), expected, rtol=1e-9)
    if n <= 10:
        assert np.isnan(got[1, 19])  # std = 0
    if n == 2:  # two values: +-1/sqrt(2) unless they are equal
        finite = got[np.isfinite(got)]
        np.testing.assert_allclose(np.abs(finite), np.sqrt(0.5), rtol=1e-14)


def test_zscore_is_the_rolling_formula_it_replaces() -> None:
    """(x - rolling_mean(x, n)) / rolling_std(x, n): the hint zscore used to give when it was forbidden."""
    from fspec.operators import windows

    x = _series(5)
    with np.errstate(invalid="ignore"):
        expected = (x - windows.rolling_mean(x, 5, SESSION)) / windows.rolling_std(x, 5, SESSION)
    got = statistics.zscore(x, 5, SESSION)
    np.testing.assert_allclose(got[np.isfinite(expected)], expected[np.isfinite(expected)], rtol=1e-12)


@pytest.mark.parametrize("name", ["rolling_cov", "rolling_beta", "rolling_slope", "zscore"])
def test_infinities_give_nan(name: str) -> None:
    x = np.array([[1.0, np.inf, 2.0, 3.0, 5.0], [np.inf] * 5])
    args = (x, x[::-1].copy()) if name in ("rolling_cov", "rolling_beta") else (x,)
    got = getattr(statistics, name)(*args, 3, SESSION[:5])
    assert np.isnan(got[:, :4]).all()
    assert np.isnan(got[1]).all()  # a constant infinite window is not constant


# ---- Hurst exponent -------------------------------------------------------------------------------------


def _hurst_by_loops(w: np.ndarray) -> float:
    """Classic R/S written out: sizes 8, 16, ... <= n, end-aligned chunks, slope by least squares."""
    n = len(w)
    points = []
    size = 8
    while size <= n:
        ratios = []
        for c in range(n // size):
            chunk = w[n - (c + 1) * size : n - c * size]
            if np.all(chunk == chunk[0]):
                return np.nan
            deviations = chunk - chunk.mean()
            walk = np.cumsum(deviations)
            ratios.append((walk.max() - walk.min()) / np.std(chunk))
        points.append((np.log(size), np.log(np.mean(ratios))))
        size *= 2
    design = np.array([[1.0, p[0]] for p in points])
    return float(np.linalg.lstsq(design, np.array([p[1] for p in points]), rcond=None)[0][1])


@pytest.mark.parametrize("n", [16, 17, 31, 40, 64])
def test_rolling_hurst(n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.normal(size=(3, 150))
    x[0, 70] = np.nan
    x[1, 100] = np.inf
    x[2, 20:30] = 0.25  # 10 constant bars: a window with a chunk of 8 inside them is NaN
    session = np.zeros(150, dtype=np.int64)
    got = statistics.rolling_hurst(x, n, session)
    expected = np.stack(
        [_per_window(row, n, lambda w: _hurst_by_loops(w) if np.isfinite(w).all() else np.nan) for row in x]
    )
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        np.stack([_own_reference("rolling_hurst", row, session=session, n=n) for row in x]), expected, rtol=1e-9
    )
    assert np.isnan(got[0, 70 : 70 + n]).all() and np.isnan(got[1, 100 : 100 + n]).all()
    assert np.isnan(got[:, : n - 1]).all()
    assert np.isnan(got[2, 29 : 29 + n]).any()
    assert np.isfinite(got[2, 29 + n :]).all()  # the constant stretch has left the window


def test_rolling_hurst_with_two_sizes_by_hand() -> None:
    """n = 16: sizes 8 and 16, so H = (log RS16 - log RS8) / log 2."""
    w = np.random.default_rng(5).normal(size=16)

    def rs(chunk: np.ndarray) -> float:
        walk = np.cumsum(chunk - chunk.mean())
        return (walk.max() - walk.min()) / chunk.std()

    expected = np.log(rs(w) / ((rs(w[:8]) + rs(w[8:])) / 2)) / np.log(2)
    got = statistics.rolling_hurst(w[None, :], 16, np.zeros(16, dtype=np.int64))[0]
    assert np.isnan(got[:15]).all()
    assert got[15] == pytest.approx(expected, rel=1e-12)


def test_rolling_hurst_of_white_noise_trends_and_mean_reversion() -> None:
    rng = np.random.default_rng(2026)
    session = np.zeros(4096, dtype=np.int64)
    noise = rng.normal(size=(1, 4096))
    h = statistics.rolling_hurst(noise, 512, session)[0, 511:]
    assert abs(np.mean(h) - 0.5) < 0.1  # classic R/S: about 0.55 at these sizes
    trend = np.cumsum(rng.normal(size=(1, 4096)), axis=1)  # a random walk read as returns: persistent
    assert np.mean(statistics.rolling_hurst(trend, 512, session)[0, 511:]) > 0.9
    reverting = np.diff(rng.normal(size=(1, 4097)), axis=1)  # differenced noise: anti-persistent
    assert np.mean(statistics.rolling_hurst(reverting, 512, session)[0, 511:]) < 0.3
    # scale and shift do not change it
    np.testing.assert_allclose(
        statistics.rolling_hurst(noise * 3 + 7, 64, session), statistics.rolling_hurst(noise, 64, session), rtol=1e-9
    )
