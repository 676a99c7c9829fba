"""Compile (or load from numba's disk cache) every compiled function a run of the build will call, so that
``fspec run`` right after ``fspec compile`` compiles nothing: the tick kernels, and the bar operators the
features use, each called once on two bars with arguments typed exactly as a run types them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fspec.operators import REGISTRY
from fspec.runtime.evaluate import apply_bar_operator, operator_constants
from fspec.runtime.kernels import frozen, load_kernel, reduce_session
from fspec.runtime.manifest import Manifest, load_manifest, tree_nodes


def warm_kernels(root: Path) -> int:
    """Warm each generated kernel and each bar operator in use; returns how many functions were warmed."""
    return warm_manifest(load_manifest(root))


def warm_manifest(manifest: Manifest) -> int:
    """Warm each kernel and bar operator of a loaded manifest; returns how many functions were warmed."""
    root = manifest.root
    for kernel in manifest.kernels.values():
        module = load_kernel(root / kernel.path, kernel.module)
        ts = np.zeros(2, dtype=np.int64)
        cols = [np.ones(2) for _ in kernel.columns]
        reduce_session(module, ts, np.ones(1, dtype=np.int64), cols, np.ones(len(kernel.params)))
    event_kernels = [k for grid in manifest.data.grids for k in grid.kernels]
    for kernel in event_kernels:  # typed as runtime/events.py calls them: read-only rows, writable events
        module = load_kernel(root / kernel.path, kernel.module)
        cols = [frozen(np.ones(2)) for _ in kernel.columns]
        events = np.zeros(1, dtype=np.int64)
        out = np.empty((len(kernel.slots), 1))
        module.reduce_events(
            frozen(np.zeros(2, dtype=np.int64), np.int64),
            *cols,
            np.ones(len(kernel.params)),
            events,
            events.copy(),
            out,
        )
    calls = bar_operator_calls(manifest)
    for op, arity, consts in calls:
        apply_bar_operator(op, [np.ones((1, 2))] * arity, consts, np.zeros(2, dtype=np.int64))
    compiled_fallbacks = numpy_fallbacks(manifest)
    for op in compiled_fallbacks:  # elementwise operators numexpr has not, some of them compiled by numba
        REGISTRY[op].numpy(*[np.ones((1, 2))] * len(REGISTRY[op].expr_params))  # type: ignore[misc]
    return len(manifest.kernels) + len(event_kernels) + len(calls) + len(compiled_fallbacks)


def numpy_fallbacks(manifest: Manifest) -> list[str]:
    """The elementwise operators of the features' bar trees that run as numpy code (no numexpr text)."""
    used = {n["op"] for f in manifest.features for n in tree_nodes(f.tree) if "op" in n}
    return sorted(op for op in used if REGISTRY[op].kind == "elementwise" and REGISTRY[op].numexpr is None)


def bar_operator_calls(manifest: Manifest) -> list[tuple[str, int, dict[str, float]]]:
    """The distinct (operator, number of series, constants' types) the features' bar trees call."""
    seen: dict[tuple[str, int, tuple[type, ...]], tuple[str, int, dict[str, float]]] = {}
    for feature in manifest.features:
        for node in (n for n in tree_nodes(feature.tree) if "op" in n and REGISTRY[n["op"]].bar is not None):
            op, arity, consts = node["op"], len(node["args"]), node["consts"]
            types = tuple(type(v) for v in operator_constants(op, consts))
            seen.setdefault((op, arity, types), (op, arity, consts))
    return list(seen.values())
