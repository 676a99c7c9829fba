"""Compile (or load from numba's disk cache) every compiled function a run of the build will call, so that
``fspec run`` right after ``fspec compile`` compiles nothing: the tick kernels, and the bar operators the
features use, each called once on two bars with arguments typed exactly as a run types them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from fspec import __version__
from fspec.manifest import KernelDef
from fspec.operators import REGISTRY
from fspec.project import BUILD_DIR, spec_shape
from fspec.runtime.evaluate import apply_bar_operator, operator_constants
from fspec.runtime.kernels import frozen, load_kernel, load_numba_target, reduce_session, threads
from fspec.runtime.manifest import Manifest, load_manifest, tree_nodes

Progress = Callable[[Iterable[Any], int], Iterable[Any]]


WARMED = "warmed.json"  # under build/: what `fspec compile` warmed, in which environment


@dataclass(frozen=True)
class WarmReport:
    functions: int  # warmed (compiled, or loaded from numba's cache)
    processes: int  # that warmed them: this one, or the workers that did (:class:`Ahead`)


def warm_kernels(
    root: Path,
    on_progress: Progress | None = None,
    only_new: bool = True,
    skip_blas_check: bool = False,
    ahead: Ahead | None = None,
) -> WarmReport:
    """Warm each generated kernel and each bar operator in use; says how many functions, on how many processes.

    With ``only_new`` (``fspec compile``), the functions an earlier compile of this build warmed in the same
    environment (build/warmed.json) are skipped: their machine code is in numba's cache already, and loading
    it only to prove so costs half a second of numba's import alone. A kernel is known by its content-addressed
    file name and its file's size and time (numba's cache of it is valid while these are), a bar operator by
    its name and argument types; the environment is the build's folder, fspec's and numba's versions, the
    newest time of fspec's sources, the interpreter and NUMBA_CACHE_DIR. ``skip_blas_check`` (the command line)
    loads numba's CPU target without its scipy.linalg import, as ``fspec run`` does (kernels.load_numba_target).
    With more than one core (:func:`processes`) forked workers warm them, side by side (:class:`Ahead`):
    ``ahead`` if ``fspec compile`` started them while the build was being written; they are stopped if nothing
    is to be warmed."""
    manifest = load_manifest(root)
    calls = warm_calls(manifest)
    stamp = root / BUILD_DIR / WARMED
    earlier = _read_stamp(stamp, root) if only_new else _Stamp()
    done = earlier.valid()
    todo = [(key, call) for key, call in calls if key not in done]
    cache = {key: earlier.cache[key] for key, _ in calls if key in done and key in earlier.cache}
    helpers = earlier.helpers
    used = 1
    if todo:
        ahead = ahead or Ahead(root, skip_blas_check)
        ahead.start()  # started already if the build was being written while it loaded numba
        done_there = ahead.warm(todo, on_progress) if ahead.started else None
        if done_there is None:  # no worker (one core, or no fork here), or it failed: warmed here, errors raised
            load_numba_target(skip_blas_check)
            for _, call in on_progress(todo, len(todo)) if on_progress else todo:
                call()
            cache.update(_warmed_cache(todo))
            helpers = _present(helpers) | _helper_cache_files()
        else:
            cache.update(done_there.cache)
            helpers = _present(helpers) | done_there.helpers | _helper_cache_files()
            used = done_there.processes
    elif ahead is not None:
        ahead.cancel()
    _write_stamp(stamp, root, [key for key, _ in calls], cache, helpers)
    return WarmReport(len(todo), used)


def processes() -> int:
    """``fspec compile`` warms on this many processes: as many as kernel calls run on threads (FSPEC_THREADS,
    else every core). numba compiles one function at a time in a process (its compiler lock), so the kernels
    of a cold build are compiled side by side in forked workers, each writing numba's cache files of its own
    functions."""
    return threads()


def _can_fork() -> bool:
    """A worker is a fork (it starts with what this process has imported, in milliseconds), on Linux only and
    only while this process runs no other thread: a thread holding a lock at the fork (numba's compiler lock, a
    pool's) would hold it in the worker for ever."""
    return sys.platform.startswith("linux") and hasattr(os, "fork") and threading.active_count() == 1


# What a warm call costs numba, roughly, to share the calls out evenly: a kernel by its file's size (its key
# holds it), anything else (a bar operator, a numpy fallback, the chain's or the regrouping's functions) a fixed
# time. Fitted to compiles with an empty cache on this machine kind (docs/performance.md, "The edit loop"):
# kernels of 4, 8 and 16 KB took 0.45-0.6, 1.9 and 2.4 s of CPU, bar operators 0.16-0.6 s.
KERNEL_SECONDS = 0.15
KERNEL_SECONDS_PER_BYTE = 1.5e-4
OTHER_SECONDS = {"chain": 6.0, "regroup": 1.5}
DEFAULT_SECONDS = 0.4

WarmCall = tuple[str, Callable[[], object]]


def _cost(key: str) -> float:
    words = key.split()
    if words[0] == "kernel":
        size = int(words[2]) if len(words) == 4 and words[2].isdigit() else 10_000
        return KERNEL_SECONDS + KERNEL_SECONDS_PER_BYTE * size
    return OTHER_SECONDS.get(key, DEFAULT_SECONDS)


def _group(key: str) -> str:
    """Calls that may compile one function for different argument types go to one process: numba keeps a
    function's types in one index file, which two processes adding to at once could each write without the
    other's entry (a bar operator's calls, by its name; the numpy fallbacks together)."""
    words = key.split()
    return key if words[0] == "kernel" else " ".join(words[:2]) if words[0] == "bar" else words[0]


def shares(calls: list[WarmCall], count: int) -> list[list[WarmCall]]:
    """The calls in at most ``count`` shares of about equal cost (largest first, each into the cheapest share;
    the calls of one :func:`_group` together), each share in the calls' order; the first holds the costliest
    group."""
    grouped: dict[str, list[WarmCall]] = {}
    for call in calls:
        grouped.setdefault(_group(call[0]), []).append(call)
    groups = sorted(grouped.values(), key=lambda g: -sum(_cost(k) for k, _ in g))
    out: list[list[WarmCall]] = [[] for _ in range(max(1, min(count, len(groups))))]
    load = [0.0] * len(out)
    for group in groups:
        i = load.index(min(load))
        out[i] += group
        load[i] += sum(_cost(k) for k, _ in group)
    order = {key: n for n, (key, _) in enumerate(calls)}
    return [sorted(share, key=lambda c: order[c[0]]) for share in out]


@dataclass(frozen=True)
class _Warmed:
    cache: dict[str, list[str]]  # kernel key -> its numba cache files
    helpers: set[str]  # cache files of fspec's own compiled functions that the workers compiled or loaded
    processes: int = 1  # how many worker processes warmed them

    def to_json(self) -> str:
        return json.dumps({"cache": self.cache, "helpers": sorted(self.helpers), "processes": self.processes})

    @staticmethod
    def from_json(text: str) -> _Warmed | None:
        try:
            data = json.loads(text)
            cache = {str(k): [str(f) for f in v] for k, v in data["cache"].items()}
            return _Warmed(cache, {str(f) for f in data["helpers"]}, int(data["processes"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def _run(calls: list[WarmCall], progress: int = -1) -> _Warmed:
    """Run the calls in this process; after each, its key and a newline on ``progress`` (a pipe shared by the
    workers: a line is one write, under the pipe's atomic size, so lines never interleave)."""
    for key, call in calls:
        call()
        if progress >= 0:
            os.write(progress, (key + "\n").encode("utf-8"))
    return _Warmed(_warmed_cache(calls), _helper_cache_files())


class _Worker:
    """A forked process that runs a share of the calls (writing progress lines to ``progress``) and sends what
    they warmed back through a pipe of its own."""

    def __init__(self, pid: int, pipe: int) -> None:
        self.pid, self.pipe = pid, pipe

    @classmethod
    def fork(cls, calls: list[WarmCall], progress: int = -1) -> _Worker | None:
        sys.stdout.flush()
        sys.stderr.flush()
        read, write = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read)
            os.close(write)
            return None
        if pid:
            os.close(write)
            return cls(pid, read)
        code = 1  # the worker never returns into the caller's code (os._exit: no interpreter teardown)
        try:
            os.close(read)
            text = _run(calls, progress).to_json()
            with os.fdopen(write, "w", encoding="utf-8") as fh:
                fh.write(text)
            code = 0
        finally:
            os._exit(code)

    def result(self, kill: bool = False) -> _Warmed | None:
        """What the worker warmed, once it has exited; None if it failed (or was killed, with ``kill``)."""
        if kill:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
        with os.fdopen(self.pipe, "r", encoding="utf-8") as fh:
            text = fh.read()
        _, status = os.waitpid(self.pid, 0)
        return None if status or kill else _Warmed.from_json(text)


class Ahead:
    """Workers that warm the build's new functions while this process waits, showing their progress.

    ``start`` forks the first of them, which loads numba (half a second) and waits. ``fspec compile`` calls it
    before the build is written when there is no earlier build to warm from, and as the first new kernel file
    is written (an edit that adds slots), so that numba loads while this process checks, plans and writes;
    nothing starts it when nothing is to be compiled (an edit of a constant). :meth:`warm` sends it the calls'
    keys (it reads the written manifest itself): it forks a worker for each share but the first, runs the
    first, and reports. This process then never imports numba."""

    def __init__(self, root: Path, skip_blas_check: bool = False) -> None:
        self.root = root
        self.skip_blas_check = skip_blas_check
        self.pid = 0
        self._request = self._report = -1

    @property
    def started(self) -> bool:
        return self.pid > 0 and self._request >= 0

    def start(self) -> None:
        """Fork the worker (once; not with one core, nor where a fork is unsafe)."""
        if self.pid or processes() < 2 or not _can_fork():
            return
        sys.stdout.flush()
        sys.stderr.flush()
        request, self._request = os.pipe()
        self._report, report = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            for fd in (request, self._request, self._report, report):
                os.close(fd)
            self._request = self._report = -1
            return
        if pid:
            os.close(request)
            os.close(report)
            self.pid = pid
            return
        code = 1  # the worker never returns into the caller's code
        try:
            os.close(self._request)
            os.close(self._report)
            load_numba_target(self.skip_blas_check)
            with os.fdopen(request, "r", encoding="utf-8") as fh:
                wanted = json.loads(fh.read() or "[]")
            if wanted:
                warmed = self._serve(wanted, report)
                if warmed is not None:
                    with os.fdopen(report, "w", encoding="utf-8") as fh:
                        fh.write(warmed.to_json() + "\n")
                    code = 0
            else:
                code = 0
        finally:
            os._exit(code)

    def _serve(self, wanted: list[list[str]], progress: int) -> _Warmed | None:
        """In the worker: the shares of keys, the first here and the others in workers of its own."""
        calls = dict(warm_calls(load_manifest(self.root)))
        if any(key not in calls for share in wanted for key in share):
            return None  # a file changed since the keys were made: the compile's own process warms it all
        groups = [[(key, calls[key]) for key in share] for share in wanted]
        workers = [_Worker.fork(share, progress) for share in groups[1:]]
        failed = True
        try:
            warmed = [_run(groups[0], progress)]
            failed = False
        finally:
            results = [w.result(kill=failed) if w is not None else None for w in workers]
        for share, result in zip(groups[1:], results, strict=True):
            warmed.append(result if result is not None else _run(share, progress))  # a failed worker's share here
        cache = {k: v for w in warmed for k, v in w.cache.items()}
        return _Warmed(cache, {f for w in warmed for f in w.helpers}, 1 + sum(r is not None for r in results))

    def warm(self, calls: list[WarmCall], on_progress: Progress | None = None) -> _Warmed | None:
        """Have the workers warm ``calls`` (shared out by :func:`shares`), showing their progress with
        ``on_progress``; what they warmed, or None if they failed (this process then runs the calls itself)."""
        wanted = [[key for key, _ in share] for share in shares(calls, processes())]
        try:
            with os.fdopen(self._request, "w", encoding="utf-8") as fh:
                json.dump(wanted, fh)
        except OSError:
            pass  # it has exited already: it failed, and the calls are run here
        self._request = -1
        lines = _lines(self._report)
        progress = (line for line in lines if not line.startswith("{"))
        for _ in on_progress(progress, len(calls)) if on_progress else progress:
            pass
        final = lines.last
        self._report = -1
        _, status = os.waitpid(self.pid, 0)
        return None if status or final is None else _Warmed.from_json(final)

    def cancel(self) -> None:
        """Stop the worker if it was started and given nothing (nothing to warm, or the compile failed)."""
        if not self.started:
            return
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        os.close(self._request)
        os.close(self._report)
        os.waitpid(self.pid, 0)
        self._request = self._report = -1


class _lines:
    """The lines read from a pipe until it closes (the fd is closed then); ``last`` is a final line that starts
    with "{" (the workers' report), if one came."""

    def __init__(self, fd: int) -> None:
        self.fh = os.fdopen(fd, "r", encoding="utf-8")
        self.last: str | None = None

    def __iter__(self) -> Iterator[str]:
        with self.fh:
            for line in self.fh:
                line = line.rstrip("\n")
                if line.startswith("{"):
                    self.last = line
                yield line


def _warmed_cache(calls: list[WarmCall]) -> dict[str, list[str]]:
    """The numba cache files of each kernel among the calls, warmed in this process."""
    return {key: sorted(_kernel_cache_files(key)) for key, _ in calls if key.startswith("kernel ")}


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

    from fspec.runtime.aot import sources_stamp  # one definition: the library's stamp holds it too

    return {
        "build": str((root / BUILD_DIR).resolve()),
        "fspec": __version__,
        "fspec sources": sources_stamp(),
        "numba": version("numba"),
        "python": sys.executable,
        "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", ""),
    }


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


def likely_to_compile(root: Path) -> bool:
    """Whether ``fspec compile`` will probably compile something (so that a worker is worth starting before
    the build is written): there is no stamp of an earlier compile's warming, or the specs changed since in
    more than their numbers (a new feature, a formula of a new form). A guess, for speed only: a compile that
    turns out to compile nothing stops the worker, and one that compiles without this starts it then."""
    try:
        data = json.loads((root / BUILD_DIR / WARMED).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    return not isinstance(data, dict) or data.get("spec_shape") != spec_shape(root)


def _write_stamp(stamp: Path, root: Path, keys: list[str], cache: dict[str, list[str]], helpers: set[str]) -> None:
    warmed = sorted(k for k in keys if not k.endswith(" missing"))
    data = {
        "spec_shape": spec_shape(root),
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
