"""Evaluate a feature's bar tree over bar arrays.

Maximal elementwise subtrees become one numexpr expression (no JIT compile, one pass over memory);
window operators call the numba operators in :mod:`fspec.runtime.operators`, imported on first use (reading
data, which also uses this module's numexpr text, does not wait for numba).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numexpr as ne
import numpy as np

from fspec.runtime.kernels import frozen

ELEMENTWISE = {
    "add",
    "sub",
    "mul",
    "div",
    "pow",
    "lt",
    "le",
    "gt",
    "ge",
    "eq",
    "ne",
    "and_",
    "or_",
    "not_",
    "neg",
    "log",
    "exp",
    "sqrt",
    "abs",
    "sign",
    "where",
    "clip",
    "min2",
    "max2",
}
NUMEXPR_MAX_INPUTS = 24
NUMEXPR_MAX_DEPTH = 24  # elementwise levels in one expression (each may add a few brackets)
_BINARY = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}
_COMPARE = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}


@dataclass
class BarInputs:
    """What a bar tree can read: slots, other features, parameters, and the session of each bar.

    A tree is evaluated for ``rows`` entities at once (the members of one feature; one row for a cross-asset
    feature), each over the same ``n_bars``. The instrument of a leaf is '' for "each row's own entity": a slot
    or feature is then a (rows, n_bars) array and a parameter a (rows, 1) column; a named instrument gives a
    (1, n_bars) row or a number, the same for every row."""

    rows: int
    n_bars: int
    session: np.ndarray
    slot: Callable[[str, int, str], np.ndarray]
    feature: Callable[[str, str | None], np.ndarray]
    param: Callable[[str, str | None], Any]

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.n_bars)


class _NumexprBuilder:
    def __init__(self, inputs: BarInputs):
        self.inputs = inputs
        self.local: dict[str, Any] = {"nan": np.nan}

    def leaf(self, array: Any) -> str:
        name = f"v{len(self.local)}"
        self.local[name] = array
        return name

    def build(self, node: dict[str, Any], depth: int = 0) -> str:
        if "op" in node and (depth > NUMEXPR_MAX_DEPTH or len(self.local) > NUMEXPR_MAX_INPUTS):
            # numexpr takes at most 32 inputs and a bounded nesting: a larger subtree is its own expression
            return self.leaf(evaluate(node, self.inputs))
        if "param" in node or ("slot" in node and node["instrument"]) or ("feature" in node and node["instrument"]):
            # a named instrument's row or a parameter column: numexpr broadcasts it over the rows
            return self.leaf(_leaf_value(node, self.inputs))
        if "const" in node:
            # A variable, not a literal: numexpr folds literal-only subexpressions such as (2 != 2) into
            # Python booleans, which it then cannot combine with array terms.
            return self.leaf(np.float64(node["const"]))
        if "op" in node and node["op"] in ELEMENTWISE:
            a = [self.build(arg, depth + 1) for arg in node["args"]]
            return _numexpr_text(node["op"], a)
        return self.leaf(evaluate(node, self.inputs))


def _leaf_value(node: dict[str, Any], inputs: BarInputs) -> Any:
    if "param" in node:
        return np.asarray(inputs.param(node["param"], node["instrument"]), dtype=np.float64)
    if "slot" in node:
        return inputs.slot(node["source"], int(node["slot"]), node["instrument"])
    return inputs.feature(node["feature"], node["instrument"])


def _numexpr_text(op: str, a: list[str]) -> str:
    if op in _BINARY:
        return f"({a[0]} {_BINARY[op]} {a[1]})"
    if op in _COMPARE:
        return f"where({a[0]} {_COMPARE[op]} {a[1]}, 1.0, 0.0)"
    if op == "neg":
        return f"(-{a[0]})"
    if op == "and_":
        return f"where(({a[0]} != 0) & ({a[1]} != 0), 1.0, 0.0)"
    if op == "or_":
        return f"where(({a[0]} != 0) | ({a[1]} != 0), 1.0, 0.0)"
    if op == "not_":
        return f"where({a[0]} == 0, 1.0, 0.0)"
    if op == "where":
        return f"where({a[0]} != 0, {a[1]}, {a[2]})"
    if op in ("log", "exp", "sqrt", "abs"):
        return f"{op}({a[0]})"
    if op == "sign":
        x = a[0]
        return f"where({x} > 0, 1.0, where({x} < 0, -1.0, {x}))"
    if op == "clip":
        x, lo, hi = a
        capped = f"where({x} > {hi}, {hi}, {x})"
        clipped = f"where({capped} < {lo}, {lo}, {capped})"  # lo wins when lo > hi, as documented
        return f"where(({x} != {x}) | ({lo} != {lo}) | ({hi} != {hi}), nan, {clipped})"
    if op in ("min2", "max2"):
        x, y = a
        pick = f"where({x} < {y}, {x}, {y})" if op == "min2" else f"where({x} > {y}, {x}, {y})"
        return f"where(({x} != {x}) | ({y} != {y}), nan, {pick})"
    raise NotImplementedError(op)


def _as_bars(value: Any, shape: tuple[int, int]) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape == shape:
        return arr
    return np.ascontiguousarray(np.broadcast_to(arr, shape))


def evaluate(node: dict[str, Any], inputs: BarInputs) -> np.ndarray:
    """The bar values of a resolved tree (JSON form) as float64[rows, n_bars]."""
    if "slot" in node:
        return _as_bars(inputs.slot(node["source"], int(node["slot"]), node["instrument"]), inputs.shape)
    if "feature" in node:
        return _as_bars(inputs.feature(node["feature"], node["instrument"]), inputs.shape)
    if "param" in node:
        return _as_bars(inputs.param(node["param"], node["instrument"]), inputs.shape)
    if "const" in node:
        return np.full(inputs.shape, float(node["const"]))
    op = node["op"]
    if op in ELEMENTWISE:
        builder = _NumexprBuilder(inputs)
        text = builder.build(node)
        with np.errstate(all="ignore"):
            result = ne.evaluate(text, local_dict=builder.local, global_dict={})
        return _as_bars(result, inputs.shape)
    return apply_bar_operator(op, [evaluate(a, inputs) for a in node["args"]], node["consts"], inputs.session)


def apply_bar_operator(op: str, args: list[np.ndarray], consts: dict[str, float], session: np.ndarray) -> np.ndarray:
    """Call a numba bar operator with arguments typed as at compile-time warm-up (see ``kernels.frozen``):
    read-only (rows, bars) float64 series, integer windows, a float ``span``, read-only int64 session numbers."""
    from fspec.runtime.operators import BAR_OPERATORS

    fn = BAR_OPERATORS[op][0]
    return fn(*(frozen(a) for a in args), *operator_constants(op, consts), frozen(session, np.int64))


def operator_constants(op: str, consts: dict[str, float]) -> list[int | float]:
    """An operator's constants in call order: whole windows and lags as int, ``span`` always float."""
    from fspec.runtime.operators import BAR_OPERATORS

    return [
        int(consts[name]) if consts[name] == int(consts[name]) and name != "span" else float(consts[name])
        for name in BAR_OPERATORS[op][1]
    ]
