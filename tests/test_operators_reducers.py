"""medrv, minrv and median3 on hand-computed cases (their compiled code is checked against these references on
the synthetic project by test_kernels_vs_reference)."""

from __future__ import annotations

import math

import numpy as np

from fspec.operators import REGISTRY

MEDRV = math.pi / (6 - 4 * math.sqrt(3) + math.pi)
MINRV = math.pi / (math.pi - 2)


def _one_bar(name: str, values: list[float]) -> float:
    x = np.array(values, dtype=np.float64)
    return float(REGISTRY[name].reference(x, bars=np.zeros(len(x), dtype=np.int64), n_bars=1)[0])  # type: ignore[misc]


def test_medrv_by_hand() -> None:
    # |r| = 1, 2, 3, 4: medians of the neighbour triples are 2 and 3; N = 4 returns
    assert math.isclose(_one_bar("medrv", [1, -2, 3, -4]), MEDRV * 4 / 2 * (4 + 9))
    assert math.isclose(_one_bar("medrv", [1, -2, math.nan, 3, -4]), MEDRV * 4 / 2 * (4 + 9))  # NaN skipped
    assert math.isnan(_one_bar("medrv", [1, 2]))


def test_minrv_by_hand() -> None:
    # |r| = 1, 2, 3: minimums of neighbour pairs are 1 and 2; N = 3
    assert math.isclose(_one_bar("minrv", [1, -2, 3]), MINRV * 3 / 2 * (1 + 4))
    assert math.isnan(_one_bar("minrv", [5]))


def test_median3_by_hand() -> None:
    got = REGISTRY["median3"].reference(np.array([3.0, 1.0, 2.0, np.nan, 5.0, 4.0, 6.0]))  # type: ignore[misc]
    np.testing.assert_array_equal(got, [np.nan, np.nan, 2.0, np.nan, np.nan, np.nan, 5.0])
