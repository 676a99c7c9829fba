"""Compile (or load from numba's disk cache) every compiled function a run of the build will call, so that
``fspec run`` right after ``fspec compile`` compiles nothing: the tick kernels, and the bar operators the
features use, each called once on two bars with arguments typed exactly as a run types them."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from fspec import __version__
from fspec.manifest import KernelDef
from fspec.operators import REGISTRY
from fspec.project import BUILD_DIR
from fspec.runtime.evaluate import apply_bar_operator, operator_constants
from fspec.runtime.kernels import frozen, load_kernel, reduce_session
from fspec.runtime.manifest import Manifest, load_manifest, tree_nodes

Progress = Callable[[Iterable[Any], int], Iterable[Any]]


WARMED = "warmed.json"  # under build/: what `fspec compile` warmed, in which environment


def warm_kernels(root: Path, on_progress: Progress | None = None, only_new: bool = True) -> int:
    """Warm each generated kernel and each bar operator in use; returns how many functions were warmed.

    With ``only_new`` (``fspec compile``), the functions an earlier compile of this build warmed in the same
    environment (build/warmed.json) are skipped: their machine code is in numba's cache already, and loading
    it only to prove so costs half a second of numba's import alone. A kernel is known by its content-addressed
    file name and its file's size and time (numba's cache of it is valid while these are), a bar operator by
    its name and argument types; the environment is fspec's and numba's versions, the interpreter and
    NUMBA_CACHE_DIR."""
    manifest = load_manifest(root)
    calls = warm_calls(manifest)
    stamp = root / BUILD_DIR / WARMED
    done = _warmed(stamp, root) if only_new else set()
    todo = [(key, call) for key, call in calls if key not in done]
    here, there = _split(todo, manifest) if _cores() > 1 else (todo, [])
    helper = _start_helper(root, there) if there else None
    steps = [call for _, call in here]
    for call in on_progress(steps, len(steps)) if on_progress else steps:
        call()
    if helper is not None:
        helper.result()  # a compile error raises here as it would have in this process
    _write_stamp(stamp, root, [key for key, _ in calls])
    return len(todo)


# numba compiles under a lock of its process, so a second process compiles beside this one: on two cores a
# cold compile's kernels and bar operators take the time of the larger half, not of both. Only worth the
# second process's start (numba's import, about a second of CPU) when there is that much to compile.
_HELPER_MIN_COST = 12  # estimated cost units (below) in the smaller half


def _cost(key: str, manifest: Manifest) -> int:
    """A rough compile cost: a kernel's slots (a 13-slot kernel compiles in about 2.5 s, a cold bar operator
    in about 0.3-1 s here), 2 for anything else."""
    if key.startswith("kernel "):
        module = key.split()[1]
        slots = [len(k.slots) for k in manifest.kernels.values() if k.module == module]
        slots += [len(k.slots) for g in manifest.data.grids for k in g.kernels if k.module == module]
        return 4 + sum(slots)
    return 2


def _split(
    todo: list[tuple[str, Callable[[], object]]], manifest: Manifest
) -> tuple[list[tuple[str, Callable[[], object]]], list[tuple[str, Callable[[], object]]]]:
    """The calls for this process and those for a helper process: largest first, each to the lighter half
    (the helper's half is empty when it would be too small to pay for its start)."""
    halves: tuple[list[tuple[str, Callable[[], object]]], ...] = ([], [])
    loads = [0, 0]
    for item in sorted(todo, key=lambda kc: -_cost(kc[0], manifest)):
        lighter = 0 if loads[0] <= loads[1] else 1
        halves[lighter].append(item)
        loads[lighter] += _cost(item[0], manifest)
    if min(loads) < _HELPER_MIN_COST:
        return todo, []
    order = {key: i for i, (key, _) in enumerate(todo)}  # each half in the manifest's order
    return tuple(sorted(h, key=lambda kc: order[kc[0]]) for h in halves)  # type: ignore[return-value]


def _cores() -> int:
    """The cores compile may use: FSPEC_THREADS if set (1: no helper process), else those of this process."""
    if os.environ.get("FSPEC_THREADS", "").strip():
        from fspec.runtime.kernels import threads

        return threads()
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _start_helper(root: Path, calls: list[tuple[str, Callable[[], object]]]) -> Any:
    """A process (spawned: numba in a forked process is not safe) that warms the calls named by their keys."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    future = pool.submit(warm_keys, str(root), [key for key, _ in calls])
    pool.shutdown(wait=False)  # the process ends once its one task is done
    return future


def warm_keys(root: str, keys: list[str]) -> int:
    """Warm the calls of the build under ``root`` that ``keys`` name (the helper process's task)."""
    from fspec.runtime.kernels import load_numba_target

    load_numba_target(skip_blas_check=True)  # its own process: no linear algebra is compiled here
    wanted = set(keys)
    calls = [call for key, call in warm_calls(load_manifest(Path(root))) if key in wanted]
    for call in calls:
        call()
    return len(calls)


def warm_manifest(manifest: Manifest, on_progress: Progress | None = None) -> int:
    """Warm each kernel and bar operator of a loaded manifest; returns how many functions were warmed.
    ``on_progress`` wraps the calls (each a numba compile or a load from its cache)."""
    calls = [call for _, call in warm_calls(manifest)]
    for call in on_progress(calls, len(calls)) if on_progress else calls:
        call()
    return len(calls)


def warm_calls(manifest: Manifest) -> list[tuple[str, Callable[[], object]]]:
    """Every compiled function a run of the manifest calls, each as (a key that names it, a call that compiles
    it or loads it from numba's cache)."""
    root = manifest.root
    calls: list[tuple[str, Callable[[], object]]] = [
        (_kernel_key(root, k), partial(_warm_tick_kernel, root, k)) for k in manifest.kernels.values()
    ]
    for grid in manifest.data.grids:
        calls += [(_kernel_key(root, k), partial(_warm_event_kernel, root, k)) for k in grid.kernels]
    for op, arity, consts in bar_operator_calls(manifest):
        types = ",".join(type(v).__name__ for v in operator_constants(op, consts))
        args = [np.ones((1, 2))] * arity
        calls.append((f"bar {op} {arity} {types}", partial(apply_bar_operator, op, args, consts, _BAR_STARTS)))
    for op in numpy_fallbacks(manifest):  # elementwise operators numexpr has not, some of them compiled by numba
        args = [np.ones((1, 2))] * len(REGISTRY[op].expr_params)
        calls.append((f"numpy {op}", partial(REGISTRY[op].numpy, *args)))  # type: ignore[arg-type]
    if manifest.chains:  # the option chain kernels (fspec/options), compiled or loaded from numba's cache
        calls.append(("chain", _warm_chain))
    if any(s.holds_many_symbols for s in manifest.project.sources.values()):
        calls.append(("regroup", _warm_regroup))  # a file of many symbols in time order is regrouped by numba
    return calls


_BAR_STARTS = np.zeros(2, dtype=np.int64)


def _kernel_key(root: Path, kernel: KernelDef) -> str:
    try:
        stat = (root / kernel.path).stat()
    except OSError:
        return f"kernel {kernel.module} missing"  # never in a stamp: the call reports the missing file
    return f"kernel {kernel.module} {stat.st_size} {stat.st_mtime_ns}"


def _environment(root: Path) -> dict[str, str]:
    """What numba's cache of a build depends on besides the files: a copy of the build elsewhere (numba may
    key its cache by the kernel's full path), another interpreter, numba or fspec, another cache folder."""
    from importlib.metadata import version  # the installed numba's version, without importing numba

    return {
        "build": str((root / BUILD_DIR).resolve()),
        "fspec": __version__,
        "numba": version("numba"),
        "python": sys.executable,
        "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", ""),
    }


def _warmed(stamp: Path, root: Path) -> set[str]:
    """The keys an earlier compile warmed, if it ran in this environment (else none)."""
    try:
        data = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    if not isinstance(data, dict) or data.get("environment") != _environment(root):
        return set()
    return set(data.get("warmed", ()))


def _write_stamp(stamp: Path, root: Path, keys: list[str]) -> None:
    data = {"environment": _environment(root), "warmed": sorted(k for k in keys if not k.endswith(" missing"))}
    tmp = stamp.with_name(f".{stamp.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, stamp)


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
