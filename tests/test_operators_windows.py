"""The bar window operators of ``fspec.operators.windows`` against plain numpy computations written here, on
their edge cases: NaN inside a window, fewer bars than the window, ties, even windows, several rows."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from fspec.operators import REGISTRY, windows

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
    got = windows.rma(x, 2, session)[0]
    seed = 3.0
    expected = [np.nan, seed, seed, seed / 2 + 3.0, (seed / 2 + 3.0) / 2 + 4.5, np.nan, 1.0, 1.0]
    np.testing.assert_allclose(got, expected, equal_nan=True)


def test_rolling_wmean_of_zero_weights_is_nan() -> None:
    x, w = np.array([[1.0, 2.0, 3.0]]), np.array([[0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(windows.rolling_wmean(x, w, 2, SESSION[:3])[0], [np.nan, np.nan, 3.0])
