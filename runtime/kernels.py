"""Load generated kernel files as modules, and call them.

numba's on-disk cache finds a kernel's cache only if its module is registered in ``sys.modules`` under a
stable name before the module runs; kernel file names are content hashes, so the name is stable.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from fspec.errors import UsageError

if TYPE_CHECKING:
    from fspec.manifest import KernelDef
    from fspec.runtime.manifest import Manifest

PACKAGE = "fspec_kernels"
POOL_PREFIX = "fspec-kernel"
T = TypeVar("T")


_loading = threading.Lock()  # a kernel module is executed once, whichever thread asks first (see warmup)


def load_kernel(path: Path, module: str) -> ModuleType:
    with _loading:
        return _load_kernel(path, module)


def _load_kernel(path: Path, module: str) -> ModuleType:
    name = f"{PACKAGE}.{module}"
    if name in sys.modules:
        return sys.modules[name]
    if PACKAGE not in sys.modules:
        package = ModuleType(PACKAGE)
        package.__path__ = []
        sys.modules[PACKAGE] = package
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load kernel {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[name]
        raise
    return mod


def load_tick_kernel(root: Path, kernel: KernelDef) -> ModuleType | PartedKernel:
    """A source's kernel: its module, or for a kernel in parts an object with a module's interface."""
    if not kernel.parts:
        return load_kernel(root / kernel.path, kernel.module)
    return PartedKernel(kernel, [load_kernel(root / p.path, p.module) for p in kernel.parts])


class PartedKernel:
    """A source's kernel in parts (compiler/parts.py) behind the interface of one kernel module: ``reduce_ticks``
    calls each part on the same rows, one after another, each with its own columns, parameters (its instruments'
    and its constants), derived columns and carried state, and puts its slots in their rows of ``out``."""

    def __init__(self, kernel: KernelDef, modules: list[ModuleType]) -> None:
        self.SLOTS = list(kernel.slots)
        self.COLUMNS = list(kernel.columns)
        self.PARAMS = list(kernel.params)
        self.DERIVED: list[str] = []  # each part derives its own
        self.CARRY = sum(m.CARRY for m in modules)
        self._parts = []
        offset = 0
        for part, module in zip(kernel.parts, modules, strict=True):
            own = part.params[: len(part.params) - len(part.constants)]
            columns = [self.COLUMNS.index(c) for c in part.columns]
            params = np.array([self.PARAMS.index(p) for p in own], dtype=np.int64)
            constants = np.array(part.constants, dtype=np.float64)
            self._parts.append((module, columns, params, constants, list(part.rows), offset))
            offset += module.CARRY

    def derive(self, *args: object) -> None:
        return None

    def reduce_ticks(self, ts: np.ndarray, starts: np.ndarray, bar_ends: np.ndarray, *rest: object) -> None:
        *columns, _derived, params, out, carry, resume = rest
        entities = starts.shape[0] - 1
        for module, cols, own, constants, rows, offset in self._parts:
            mine = [columns[c] for c in cols]
            values = np.concatenate([params[:, own], np.broadcast_to(constants, (entities, len(constants)))], axis=1)
            values = frozen(values)
            state = np.ascontiguousarray(carry[:, offset : offset + module.CARRY])
            slots = np.empty((entities, len(module.SLOTS), out.shape[2]), dtype=np.float64)
            derived = _derived_buffer(len(module.DERIVED), ts.shape[0])
            module.derive(*mine, starts, values, derived)
            module.reduce_ticks(ts, starts, bar_ends, *mine, derived, values, slots, state, resume)
            out[:, rows, :] = slots
            carry[:, offset : offset + module.CARRY] = state


class _NoScipyLinalg(importlib.abc.MetaPathFinder):
    """Makes ``import scipy.linalg`` fail at once (see :func:`load_numba_target`)."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname == "scipy.linalg" or fullname.startswith("scipy.linalg."):
            raise ModuleNotFoundError(f"{fullname} is not imported while numba's CPU target loads")


def load_numba_target(skip_blas_check: bool = False) -> None:
    """Load numba's CPU target, which the first compiled call of a process otherwise loads (0.2 s here).

    While it loads, numba checks whether scipy's BLAS is present by importing ``scipy.linalg`` (another 0.3 s
    where scipy is installed), to pick np.dot's implementation for 1-d arrays. No fspec kernel or operator
    calls BLAS, so with ``skip_blas_check`` (the command line, which owns its process) that import fails at
    once instead, unless scipy.linalg is imported already; numba then uses its own loop for a 1-d np.dot in this
    process, and linear algebra elsewhere still imports scipy when it is compiled."""
    from numba.core.compiler_lock import global_compiler_lock
    from numba.core.registry import cpu_target

    with global_compiler_lock:  # as numba's own compiles do: another thread may be loading a function
        finder = _NoScipyLinalg() if skip_blas_check and "scipy.linalg" not in sys.modules else None
        if finder is not None:
            sys.meta_path.insert(0, finder)
        try:
            cpu_target.target_context.refresh()
        finally:
            if finder is not None:
                sys.meta_path.remove(finder)


def start_warming(manifest: Manifest, skip_blas_check: bool = False) -> threading.Thread:
    """Import numba, load its CPU target and the machine code of every kernel and bar operator a run calls,
    on a thread of its own, while the run reads its data (reading parquet releases the GIL): the first kernel
    call then finds its code loaded. A failure here is left to the run's own call, which reports it where it
    belongs."""

    def warm() -> None:
        try:
            load_numba_target(skip_blas_check)
            from fspec.runtime.warmup import warm_manifest

            warm_manifest(manifest)
        except Exception:  # only an optimisation: the run's own call raises the same error
            pass

    thread = threading.Thread(target=warm, name="fspec-warm", daemon=True)
    thread.start()
    return thread


# ---- calling a kernel -----------------------------------------------------------------------------------


def frozen(values: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """The array as every compiled function receives it: C-contiguous, of ``dtype`` and read-only.

    numba compiles one machine-code version per argument type, and read-only is part of the type. Data comes
    read-only from some sources (pandas hands out views of its blocks) and writable from others (computed or
    asof columns), so without one convention the first ``fspec run`` after ``fspec compile`` would compile its
    kernels again. A view, not a copy, whenever the array is already contiguous and of ``dtype``."""
    values = np.ascontiguousarray(values, dtype=dtype)
    if values.flags.writeable:
        values = values.view()
        values.flags.writeable = False
    return values


_scratch = threading.local()


def _derived_buffer(rows: int, n: int) -> np.ndarray:
    """A (rows, n) float64 array, reused across calls on the same thread (the derived columns of one call)."""
    need = rows * n
    buffer = getattr(_scratch, "buffer", None)
    if buffer is None or buffer.size < need:
        buffer = np.empty(max(need, 1), dtype=np.float64)
        _scratch.buffer = buffer
    return buffer[:need].reshape(rows, n)


def reduce_session(
    module: ModuleType,
    ts: np.ndarray,
    bar_ends: np.ndarray,
    columns: list[np.ndarray],
    params: np.ndarray,
    carry: np.ndarray | None = None,
    resume: bool = False,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """One session's ticks of one instrument -> the kernel's slots, shape (len(SLOTS), len(bar_ends)).

    ``bar_ends`` are the grid's bar ends in UTC ns (bar b holds the ticks before ``bar_ends[b]`` and from
    ``bar_ends[b - 1]`` on). The ticks may also be a part of a session that starts and ends at bar edges: the
    tick-level state at the end is left in ``carry``, and ``resume`` starts from it. ``out``, if given, is a
    C-contiguous float64 array of that shape to write the slots into."""
    if out is None:
        out = np.empty((len(module.SLOTS), len(bar_ends)), dtype=np.float64)
    if carry is None:
        carry = np.empty(module.CARRY, dtype=np.float64)
    starts = np.array([0, len(ts)], dtype=np.int64)
    reduce_entities(module, ts, starts, bar_ends, columns, params[None, :], carry[None, :], resume, out[None])
    return out


def reduce_entities(
    module: ModuleType,
    ts: np.ndarray,
    starts: np.ndarray,
    bar_ends: np.ndarray,
    columns: list[np.ndarray],
    params: np.ndarray,
    carry: np.ndarray,
    resume: bool,
    out: np.ndarray,
) -> None:
    """The sessions of several entities in one kernel call: entity e's ticks are rows ``starts[e]`` to
    ``starts[e + 1] - 1`` (each in time order); its parameters are ``params[e]``, its carried state
    ``carry[e]`` (shape (entities, CARRY)) and its slots go to ``out[e]`` (shape (entities, slots, bars),
    C-contiguous float64)."""
    ts = frozen(ts, np.int64)
    starts = frozen(starts, np.int64)
    bar_ends = frozen(bar_ends, np.int64)
    columns = [frozen(c) for c in columns]
    params = frozen(params)
    derived = _derived_buffer(len(module.DERIVED), ts.shape[0])
    module.derive(*columns, starts, params, derived)
    module.reduce_ticks(ts, starts, bar_ends, *columns, derived, params, out, carry, resume)


_pool: tuple[ThreadPoolExecutor, int] | None = None  # and its number of threads


def run_all(calls: list[Callable[[], T]]) -> list[T]:
    """Run kernel calls on ``threads()`` threads, results in order. The pool lives as long as the process, so
    its threads keep their derived-column buffers from one compute to the next (no fresh pages to fault in)."""
    global _pool
    workers = threads()
    if workers == 1 or len(calls) < 2 or threading.current_thread().name.startswith(POOL_PREFIX):
        return [call() for call in calls]  # (from inside a pool thread: waiting on the pool could deadlock)
    if _pool is None or _pool[1] != workers:
        if _pool is not None:
            _pool[0].shutdown(wait=True)
        _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=POOL_PREFIX), workers
    return list(_pool[0].map(lambda call: call(), calls))


def threads() -> int:
    """Kernel calls run on this many threads (the kernels release the GIL): FSPEC_THREADS, else every core."""
    value = os.environ.get("FSPEC_THREADS", "").strip()
    if not value:
        return os.cpu_count() or 1
    if not value.isdigit() or int(value) < 1:
        raise UsageError(
            f"FSPEC_THREADS={value!r} is not a number of threads",
            "set it to a whole number of at least 1, or unset it to use every core",
        )
    return int(value)
