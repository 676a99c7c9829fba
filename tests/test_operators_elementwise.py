"""Elementwise operators on their edge cases: every lowering an operator has (numexpr text, numpy code, the
vectorised kernel code) against values computed here with Python's math and statistics modules."""

from __future__ import annotations

import math
from pathlib import Path
from statistics import NormalDist

import numexpr as ne
import numpy as np
import pytest

from fspec.compiler import ir
from fspec.compiler.build import check
from fspec.operators import REGISTRY
from tests.conftest import make_project

EDGES = np.array([-np.inf, -3.0, -1.0, -0.5, -1e-12, 0.0, 1e-12, 0.5, 1.5, 2.5, 1.96, 40.0, np.inf, np.nan])


def _python(fn: object) -> np.ndarray:
    return np.array([fn(v) for v in EDGES])  # type: ignore[operator]


def _nan_or(fn: object) -> object:
    return lambda v: math.nan if math.isnan(v) else fn(v)  # type: ignore[operator]


def _log1p(v: float) -> float:
    if v == -1.0:
        return -math.inf
    return math.nan if v < -1.0 or math.isnan(v) else math.log1p(v) if math.isfinite(v) else math.inf


EXPECTED = {
    "norm_cdf": _python(_nan_or(NormalDist().cdf)),
    "norm_pdf": _python(_nan_or(lambda v: 0.0 if math.isinf(v) else NormalDist().pdf(v))),
    "log1p": _python(_log1p),
    "expm1": _python(_nan_or(lambda v: -1.0 if v == -math.inf else math.expm1(v) if v < 700 else math.inf)),
    "tanh": _python(_nan_or(math.tanh)),
    "floor": _python(_nan_or(lambda v: v if math.isinf(v) else float(math.floor(v)))),
    "round": _python(_nan_or(lambda v: v if math.isinf(v) else float(round(v)))),
    "isnan": _python(lambda v: 1.0 if math.isnan(v) else 0.0),
}


def _lowerings(name: str) -> dict[str, np.ndarray]:
    op = REGISTRY[name]
    out = {}
    with np.errstate(all="ignore"):
        if op.numexpr is not None:
            out["numexpr"] = ne.evaluate(op.numexpr(["x"]), local_dict={"x": EDGES, "nan": np.nan}, global_dict={})
        if op.numpy is not None:
            out["numpy"] = np.asarray(op.numpy(EDGES[None, :]))[0]
        if op.reference is not None:
            out["reference"] = op.reference(EDGES)
        if op.vector is not None:
            target = np.empty_like(EDGES)
            vector_call = op.vector(["x", "out=target"]).split("(", 1)[0]  # e.g. np.log1p
            getattr(np, vector_call.removeprefix("np."))(EDGES, out=target)
            out["vector"] = target
    return out


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_lowering_gives_the_documented_values(name: str) -> None:
    lowerings = _lowerings(name)
    assert lowerings, name
    for how, got in lowerings.items():
        np.testing.assert_allclose(got, EXPECTED[name], rtol=1e-14, atol=1e-300, err_msg=f"{name} by {how}")


def test_round_halves_to_even() -> None:
    values = np.array([0.5, 1.5, 2.5, -0.5, -2.5])
    np.testing.assert_array_equal(REGISTRY["round"].numpy(values), [0.0, 2.0, 2.0, -0.0, -2.0])  # type: ignore[misc]


def test_fillna_replaces_only_missing_values() -> None:
    op = REGISTRY["fillna"]
    x, v = np.array([1.0, np.nan, np.inf, np.nan]), np.array([9.0, 9.0, 9.0, np.nan])
    expected = np.array([1.0, 9.0, np.inf, np.nan])
    got = ne.evaluate(op.numexpr(["x", "v"]), local_dict={"x": x, "v": v}, global_dict={})  # type: ignore[misc]
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(op.numpy(x, v), expected)  # type: ignore[misc]


PROJECT = """\
spec_version: 1
sources:
  trades:
    path: data/{symbol}/{date}.parquet
    time: {column: ts, unit: ns}
    columns: {price: float64, size: float64}
instruments:
  abc: {symbol: ABC}
intervals: [60s]
session: {timezone: America/New_York, open: "09:30", close: "10:30"}
"""


def test_nan_is_a_literal_of_formulas(tmp_path: Path) -> None:
    features = {"spec_version": 1, "features": [{"name": "f", "formula": "where(sum(trades.size) > 0, 1, nan)"}]}
    make_project(tmp_path, {"project.yaml": PROJECT, "features.yaml": features})
    checked = check(tmp_path)
    assert checked.plan is not None, [d.render() for d in checked.diagnostics]
    (feature,) = checked.plan.features
    consts = [n.value for n in feature.tree.walk() if isinstance(n, ir.Const)]
    assert consts[:2] == [0.0, 1.0] and math.isnan(consts[2])


def test_bar_constants_are_bar_values_not_tick_values(tmp_path: Path) -> None:
    """bar_index and time_of_day are known per bar: a tick expression cannot read them (validate says so)."""
    features = {"spec_version": 1, "features": [{"name": "f", "formula": "sum(trades.size * bar_index)"}]}
    make_project(tmp_path, {"project.yaml": PROJECT, "features.yaml": features})
    messages = [d.message for d in check(tmp_path).diagnostics]
    assert messages == ["'*' mixes tick-level and bar-level values"], messages
