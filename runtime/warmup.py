"""Compile (or load from numba's disk cache) every compiled function a run of the build will call, so that
``fspec run`` right after ``fspec compile`` compiles nothing: the tick kernels, and the bar operators the
features use, each called once on two bars with arguments typed exactly as a run types them."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from fspec import __version__
from fspec.manifest import KernelDef
from fspec.operators import REGISTRY
from fspec.project import BUILD_DIR
from fspec.runtime.evaluate import apply_bar_operator, operator_constants
from fspec.runtime.kernels import frozen, load_kernel, load_numba_target, reduce_session
from fspec.runtime.manifest import Manifest, load_manifest, tree_nodes

Progress = Callable[[Iterable[Any], int], Iterable[Any]]


WARMED = "warmed.json"  # under build/: what `fspec compile` warmed, in which environment


def warm_kernels(
    root: Path, on_progress: Progress | None = None, only_new: bool = True, skip_blas_check: bool = False
) -> int:
    """Warm each generated kernel and each bar operator in use; returns how many functions were warmed.

    With ``only_new`` (``fspec compile``), the functions an earlier compile of this build warmed in the same
    environment (build/warmed.json) are skipped: their machine code is in numba's cache already, and loading
    it only to prove so costs half a second of numba's import alone. A kernel is known by its content-addressed
    file name and its file's size and time (numba's cache of it is valid while these are), a bar operator by
    its name and argument types; the environment is the build's folder, fspec's and numba's versions, the
    newest time of fspec's sources, the interpreter and NUMBA_CACHE_DIR. ``skip_blas_check`` (the command line)
    loads numba's CPU target without its scipy.linalg import, as ``fspec run`` does (kernels.load_numba_target)."""
    manifest = load_manifest(root)
    calls = warm_calls(manifest)
    stamp = root / BUILD_DIR / WARMED
    earlier = _read_stamp(stamp, root) if only_new else _Stamp()
    done = earlier.valid()
    todo = [(key, call) for key, call in calls if key not in done]
    steps = [call for _, call in todo]
    if steps and skip_blas_check:
        load_numba_target(skip_blas_check=True)
    for call in on_progress(steps, len(steps)) if on_progress else steps:
        call()
    cache = {key: earlier.cache[key] for key, _ in calls if key in done and key in earlier.cache}
    helpers = earlier.helpers if not steps else _present(earlier.helpers) | _helper_cache_files()
    for key, _ in todo:
        if key.startswith("kernel "):
            cache[key] = sorted(_kernel_cache_files(key))
    _write_stamp(stamp, root, [key for key, _ in calls], cache, helpers)
    return len(steps)


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
        (_file_key(root, path, module), partial(_warm_tick_kernel, root, path, module, params))
        for k in manifest.kernels.values()
        for module, path, params in _tick_files(k)
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
    return _file_key(root, kernel.path, kernel.module)


def _file_key(root: Path, path: str, module: str) -> str:
    try:
        stat = (root / path).stat()
    except OSError:
        return f"kernel {module} missing"  # never in a stamp: the call reports the missing file
    return f"kernel {module} {stat.st_size} {stat.st_mtime_ns}"


def _tick_files(kernel: KernelDef) -> list[tuple[str, str, int]]:
    """(module, path, number of parameters) of each file of a tick kernel (each part of one in parts)."""
    if kernel.parts:
        return [(p.module, p.path, len(p.params)) for p in kernel.parts]
    return [(kernel.module, kernel.path, len(kernel.params))]


def _environment(root: Path) -> dict[str, str]:
    """What numba's cache of a build depends on besides the files: a copy of the build elsewhere (numba may
    key its cache by the kernel's full path), another interpreter, numba or fspec, another cache folder."""
    from importlib.metadata import version  # the installed numba's version, without importing numba

    return {
        "build": str((root / BUILD_DIR).resolve()),
        "fspec": __version__,
        "fspec sources": _sources_stamp(),
        "numba": version("numba"),
        "python": sys.executable,
        "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", ""),
    }


def _sources_stamp() -> str:
    """The newest time of fspec's own source files: numba's cache of a bar operator is stale once its module
    changes (an installed upgrade changes the version too, an edited checkout only this)."""
    import fspec
    import fspec.compiler
    import fspec.operators
    import fspec.options
    import fspec.runtime

    packages = (fspec, fspec.compiler, fspec.operators, fspec.options, fspec.runtime)
    folders = {Path(str(m.__file__)).parent for m in packages}
    return str(max(p.stat().st_mtime_ns for folder in folders for p in folder.glob("*.py")))


@dataclass
class _Stamp:
    """What build/warmed.json says an earlier compile warmed, with the numba cache files that hold it: each
    kernel's (its functions' index and data files) and those of fspec's own compiled functions (bar operators,
    scalar helpers, chains, regrouping) loaded in that compile's process."""

    warmed: set[str] = field(default_factory=set)
    cache: dict[str, list[str]] = field(default_factory=dict)  # kernel key -> its cache files
    helpers: set[str] = field(default_factory=set)

    def valid(self) -> set[str]:
        """The warmed keys whose machine code is still in numba's cache: a cache folder deleted by hand (build/
        kernels/__pycache__, fspec's own __pycache__, NUMBA_CACHE_DIR) leaves the stamp stale, and what it held
        is warmed again rather than compiled by the first run. A kernel without its files listed counts as missing;
        any of fspec's own files missing makes every non-kernel key missing."""
        helpers_ok = all(os.path.exists(p) for p in self.helpers)

        def kept(key: str) -> bool:
            if key.startswith("kernel "):
                return key in self.cache and all(os.path.exists(p) for p in self.cache[key])
            return helpers_ok

        return {key for key in self.warmed if kept(key)}


def _read_stamp(stamp: Path, root: Path) -> _Stamp:
    """The earlier compile's stamp, if it ran in this environment (else an empty one)."""
    try:
        data = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return _Stamp()
    if not isinstance(data, dict) or data.get("environment") != _environment(root) or "cache" not in data:
        return _Stamp()  # another environment, or an older fspec's stamp that lists no cache files
    cache = data["cache"]
    return _Stamp(set(data.get("warmed", ())), {k: list(v) for k, v in cache.items()}, set(data.get("helpers", ())))


def _write_stamp(stamp: Path, root: Path, keys: list[str], cache: dict[str, list[str]], helpers: set[str]) -> None:
    warmed = sorted(k for k in keys if not k.endswith(" missing"))
    data = {
        "environment": _environment(root),
        "warmed": warmed,
        "cache": {k: cache[k] for k in warmed if k in cache},
        "helpers": sorted(helpers),
    }
    tmp = stamp.with_name(f".{stamp.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, stamp)


def _present(paths: set[str]) -> set[str]:
    return {p for p in paths if os.path.exists(p)}


def _cache_files(dispatcher: Any) -> set[str]:
    """The files of numba's on-disk cache of one compiled function (its index and data files), as they exist
    now; none for a function without a disk cache (or with the JIT disabled)."""
    cache = getattr(dispatcher, "_cache", None)
    index = getattr(getattr(cache, "_cache_file", None), "_index_path", None)
    if not index or not os.path.exists(index):
        return set()
    base = Path(index)
    stem = base.name.removesuffix(".nbi")
    return {str(base), *(str(p) for p in base.parent.glob(f"{stem}.*.nbc"))}


def _kernel_cache_files(key: str) -> set[str]:
    """The cache files of the compiled functions of a kernel module warmed in this process (key ``kernel NAME
    SIZE TIME``)."""
    from fspec.runtime.kernels import PACKAGE

    module = sys.modules.get(f"{PACKAGE}.{key.split()[1]}")
    return {f for value in vars(module).values() for f in _cache_files(value)} if module is not None else set()


def _helper_cache_files() -> set[str]:
    """The cache files of fspec's own compiled functions that this process compiled or loaded (those a run of the
    build calls were all warmed here or in an earlier compile whose files are kept)."""
    found: set[str] = set()
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "fspec" or name.startswith("fspec.")):
            continue
        for value in list(vars(module).values()):
            if getattr(value, "overloads", None):  # a numba dispatcher with machine code in this process
                found |= _cache_files(value)
    return found


def _warm_regroup() -> None:
    import fspec.runtime.regroup  # noqa: F401  (compiled for fixed types on import, or loaded from the cache)


def _warm_tick_kernel(root: Path, path: str, name: str, params: int) -> None:
    """One kernel file (a part of a kernel in parts is one: PartedKernel calls it with the same types)."""
    module = load_kernel(root / path, name)
    ts = np.zeros(2, dtype=np.int64)
    cols = [np.ones(2) for _ in module.COLUMNS]
    reduce_session(module, ts, np.ones(1, dtype=np.int64), cols, np.ones(params))


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
