"""Evaluate a feature's bar tree over bar arrays.

Maximal elementwise subtrees become one numexpr expression (no JIT compile, one pass over memory);
other operators their registry entry's ``numpy`` (elementwise ones numexpr has not) or compiled ``bar``
implementation (windows), which numba compiles, or loads from its cache, on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numexpr as ne
import numpy as np

from fspec.operators import CROSS, ELEMENTWISE, REGISTRY
from fspec.runtime.kernels import frozen, threads

NUMEXPR_MAX_INPUTS = 24
NUMEXPR_MAX_DEPTH = 24  # elementwise levels in one expression (each may add a few brackets)


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
        numexpr = REGISTRY[node["op"]].numexpr if "op" in node else None
        if numexpr is not None:
            return numexpr([self.build(arg, depth + 1) for arg in node["args"]])
        return self.leaf(evaluate(node, self.inputs))


def _leaf_value(node: dict[str, Any], inputs: BarInputs) -> Any:
    if "param" in node:
        return np.asarray(inputs.param(node["param"], node["instrument"]), dtype=np.float64)
    if "slot" in node:
        return inputs.slot(node["source"], int(node["slot"]), node["instrument"])
    return inputs.feature(node["feature"], node["instrument"])


def _as_bars(value: Any, shape: tuple[int, int]) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape == shape:
        return arr
    if arr.ndim == 2 and arr.shape[0] > shape[0] == 1:
        return arr  # a universe's members inside an index's cross-section: reduced to one row by it
    return np.ascontiguousarray(np.broadcast_to(arr, shape))


# Below this many values an expression is evaluated on one thread: handing blocks of a few thousand values to a
# second thread costs more than it saves (a universe's day of 200 x 55 bars: 45 us on one thread, 80 us on two,
# with a long tail on a busy machine). Threads never change a value (every operation is elementwise).
PARALLEL_VALUES = 1 << 20
_numexpr_state = {"threads": 0}


def _numexpr_threads(values: int) -> None:
    """numexpr's thread count for an expression of ``values`` results, changed only when it must (a change
    costs about 0.1 ms)."""
    wanted = 1 if values < PARALLEL_VALUES else min(threads(), ne.MAX_THREADS)
    if _numexpr_state["threads"] != wanted:
        ne.set_num_threads(wanted)
        _numexpr_state["threads"] = wanted


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
    op = REGISTRY[node["op"]]
    if op.numexpr is not None:
        builder = _NumexprBuilder(inputs)
        text = builder.build(node)
        _numexpr_threads(inputs.rows * inputs.n_bars)
        with np.errstate(all="ignore"):
            result = ne.evaluate(text, local_dict=builder.local, global_dict={})
        return _as_bars(result, inputs.shape)
    args = [evaluate(a, inputs) for a in node["args"]]
    if op.kind == CROSS:  # over the rows (the members) of each bar
        result = op.numpy(*args)  # type: ignore[misc]
        if inputs.rows == 1 and result.shape[0] > 1:
            result = result[:1]  # an index: every row holds the bar's one value
        return _as_bars(result, inputs.shape)
    if op.kind == ELEMENTWISE:  # numexpr has no such function: numpy's
        with np.errstate(all="ignore"):
            return _as_bars(op.numpy(*args), inputs.shape)  # type: ignore[misc]
    return apply_bar_operator(op.name, args, _in_bars(node["consts"], inputs), inputs.session)


def _in_bars(consts: dict[str, float], inputs: BarInputs) -> dict[str, float]:
    """Constants with each window given in time (``n_seconds``) counted in this grid's bars."""
    if not any(k.endswith("_seconds") for k in consts):
        return consts
    width = float(inputs.param("interval_seconds", None))
    timed = {k.removesuffix("_seconds"): v / width for k, v in consts.items() if k.endswith("_seconds")}
    return {**consts, **{k: float(round(v)) for k, v in timed.items()}}


def apply_bar_operator(op: str, args: list[np.ndarray], consts: dict[str, float], session: np.ndarray) -> np.ndarray:
    """Call a bar operator's compiled implementation with arguments typed as at compile-time warm-up (see
    ``kernels.frozen``): read-only (rows, bars) float64 series, its constants (whole numbers as int, ``number``
    parameters as float), read-only int64 session numbers."""
    fn = REGISTRY[op].bar
    if fn is None:
        raise NotImplementedError(f"no bar implementation for operator {op}")
    constants = operator_constants(op, consts)
    if not consts.get("session") or REGISTRY[op].session_default:  # an EWM takes its session flag itself
        return fn(*(frozen(a) for a in args), *constants, frozen(session, np.int64))
    # session=true: the operator over each session's bars on their own, as if no earlier bar were loaded
    edges = [0, *(np.flatnonzero(np.diff(session)) + 1), len(session)]
    parts = [
        fn(*(frozen(a[:, lo:hi]) for a in args), *constants, frozen(session[lo:hi], np.int64))
        for lo, hi in pairwise(edges)
    ]
    return np.concatenate(parts, axis=1)


def operator_constants(op: str, consts: dict[str, float]) -> list[int | float]:
    """An operator's constants in call order: ``int`` parameters as int, ``number`` parameters as float (or as
    its ``call_constants`` computes them)."""
    if REGISTRY[op].call_constants is not None:
        return REGISTRY[op].call_constants(consts)  # type: ignore[misc]
    kinds = {p.name: p.kind for p in REGISTRY[op].params}
    return [int(consts[name]) if kinds[name] == "int" else float(consts[name]) for name in REGISTRY[op].bar_constants]
