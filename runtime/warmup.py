"""Compile (or load from numba's disk cache) every compiled function a run of the build will call, so that
``fspec run`` right after ``fspec compile`` compiles nothing: the tick kernels, and the bar operators the
features use, each called once on two bars with arguments typed exactly as a run types them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from fspec.manifest import KernelDef
from fspec.operators import REGISTRY
from fspec.runtime.evaluate import apply_bar_operator, operator_constants
from fspec.runtime.kernels import frozen, load_kernel, reduce_session
from fspec.runtime.manifest import Manifest, load_manifest, tree_nodes

Progress = Callable[[Iterable[Any], int], Iterable[Any]]


def warm_kernels(root: Path, on_progress: Progress | None = None) -> int:
    """Warm each generated kernel and each bar operator in use; returns how many functions were warmed."""
    return warm_manifest(load_manifest(root), on_progress)


def warm_manifest(manifest: Manifest, on_progress: Progress | None = None) -> int:
    """Warm each kernel and bar operator of a loaded manifest; returns how many functions were warmed.
    ``on_progress`` wraps the calls (each a numba compile or a load from its cache): ``fspec compile``'s bar."""
    root = manifest.root
    calls: list[Callable[[], object]] = [partial(_warm_tick_kernel, root, k) for k in manifest.kernels.values()]
    calls += [partial(_warm_event_kernel, root, k) for grid in manifest.data.grids for k in grid.kernels]
    for op, arity, consts in bar_operator_calls(manifest):
        calls.append(partial(apply_bar_operator, op, [np.ones((1, 2))] * arity, consts, np.zeros(2, dtype=np.int64)))
    for op in numpy_fallbacks(manifest):  # elementwise operators numexpr has not, some of them compiled by numba
        calls.append(partial(REGISTRY[op].numpy, *[np.ones((1, 2))] * len(REGISTRY[op].expr_params)))  # type: ignore[arg-type]
    if manifest.chains:  # the option chain kernels (fspec/options), compiled or loaded from numba's cache
        calls.append(_warm_chain)
    if any(s.holds_many_symbols for s in manifest.project.sources.values()):
        calls.append(_warm_regroup)  # a file of many symbols in time order is regrouped by compiled functions
    for call in on_progress(calls, len(calls)) if on_progress else calls:
        call()
    return len(calls)


def _warm_regroup() -> None:
    import fspec.runtime.regroup  # noqa: F401  (compiled for fixed types on import, or loaded from the cache)


def _warm_tick_kernel(root: Path, kernel: KernelDef) -> None:
    module = load_kernel(root / kernel.path, kernel.module)
    ts = np.zeros(2, dtype=np.int64)
    cols = [np.ones(2) for _ in kernel.columns]
    reduce_session(module, ts, np.ones(1, dtype=np.int64), cols, np.ones(len(kernel.params)))


def _warm_event_kernel(root: Path, kernel: KernelDef) -> None:
    """Typed as runtime/events.py calls it: read-only rows, writable events."""
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


def _warm_chain() -> None:
    from fspec.runtime.chain import warm_chain  # numba and fspec/options only when a build has a chain

    warm_chain()


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
