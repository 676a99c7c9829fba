"""numba's ``njit`` and ``intrinsic``, or the ahead-of-time library's functions in their place.

Every function fspec compiles (the generated kernels, the bar operators, the scalar helpers, the option chain's
math, the regrouping) is decorated through this module. In a normal process (``jit`` mode) the decorators are
numba's own: each returns a real dispatcher, exactly as ``from numba import njit`` would.

``fspec run`` of a build compiled with ``fspec compile --aot`` switches this module to ``library`` mode before any
of those modules is imported (:func:`use_library`): the decorators then return :class:`StandIn` objects, and numba
is not imported. A stand-in called from Python finds the library's export for its arguments' types (dtype, ndim,
layout, read-only; :func:`type_key`) and calls it. A call the library lacks falls back to numba: numba is imported
then, and every stand-in made so far gets its real dispatcher (:func:`_realize`), compiled from the same Python
function; numba's on-disk cache from the compile usually holds its machine code. A real dispatcher's function is a
copy of the original whose globals are its module's with each stand-in replaced by its real dispatcher, so the
functions it calls (a kernel's scalar helpers, the option math's nested functions) compile as they would in
``jit`` mode, while Python code keeps calling the stand-ins (which call the exports where they have them).

``record`` mode (the ``--aot`` build's own process, :mod:`fspec.runtime.aot`) is ``library`` mode with an empty
library: every call falls back, and each stand-in notes that Python called it. The functions Python called are the
library's entry points, each exported with every signature numba compiled it for.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import types as pytypes
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

JIT, LIBRARY, RECORD = "jit", "library", "record"

_mode = JIT
_exports: dict[str, dict[tuple[str, ...], Callable[..., Any]]] = {}  # function id -> type key -> export
_standins: list[StandIn] = []
_lock = threading.RLock()
_shadows: dict[str, dict[str, Any]] = {}  # module name -> the globals its real dispatchers see


def mode() -> str:
    return _mode


def standins() -> list[StandIn]:
    """Every stand-in made in this process, in the order they were made."""
    return list(_standins)


def njit(*args: Any, **options: Any) -> Any:
    """``numba.njit``: ``@njit``, ``@njit(**options)`` or ``@njit(signatures, **options)``. ``signatures`` may be a
    function of the module ``numba.types`` returning them, so that a module with explicit types imports without
    numba."""
    if _is_plain(args):
        return njit(**options)(args[0])
    signatures = args[0] if args else None

    def decorate(fn: Callable[..., Any]) -> Any:
        if _mode == JIT:
            import numba

            sigs = signatures(numba.types) if callable(signatures) else signatures
            return (numba.njit(sigs, **options) if sigs is not None else numba.njit(**options))(fn)
        return _register(StandIn(fn, "njit", options, signatures))

    return decorate


def _is_plain(args: tuple[Any, ...]) -> bool:
    """``@njit`` without parentheses: one argument, a Python function that is no signature factory (a factory
    is a lambda; a decorated function is a ``def``)."""
    return len(args) == 1 and isinstance(args[0], pytypes.FunctionType) and args[0].__name__ != "<lambda>"


def intrinsic(fn: Callable[..., Any]) -> Any:
    """``numba.extending.intrinsic``; in library mode a stand-in that only compiled code calls."""
    if _mode == JIT:
        from numba.extending import intrinsic as numba_intrinsic

        return numba_intrinsic(fn)
    return _register(StandIn(fn, "intrinsic", {}, None))


def jit_disabled() -> bool:
    """``NUMBA_DISABLE_JIT`` is set (compiled functions run as Python); never in library mode."""
    if _mode != JIT:
        return False
    from numba import config

    return bool(config.DISABLE_JIT)


def _register(standin: StandIn) -> StandIn:
    with _lock:
        _standins.append(standin)
    return standin


def use_library(module: Any, exports: Iterable[tuple[str, tuple[str, ...], str]]) -> bool:
    """Switch to library mode: ``exports`` are (function id, argument type keys, name of the export in
    ``module``). Refused (False, nothing changes) once a compiled function has been made in ``jit`` mode, or
    with ``NUMBA_DISABLE_JIT`` set (the functions are to run as Python)."""
    global _mode
    if _mode != JIT or "numba" in sys.modules or os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"):
        return False
    table: dict[str, dict[tuple[str, ...], Callable[..., Any]]] = {}
    for function, args, name in exports:
        table.setdefault(function, {})[tuple(args)] = getattr(module, name)
    _exports.clear()
    _exports.update(table)
    _mode = LIBRARY
    return True


def record() -> None:
    """Switch to record mode (the ``--aot`` build's process, before anything compiled is imported)."""
    global _mode
    if _mode != JIT or "numba" in sys.modules:
        raise RuntimeError("record mode must be chosen before any compiled function is made")
    _mode = RECORD


class StandIn:
    """A compiled function's place in library mode: it calls the library's export for its arguments' types, or
    its real numba dispatcher (made on the first call the library lacks)."""

    def __init__(
        self, fn: Callable[..., Any], kind: str, options: dict[str, Any], signatures: Any | None = None
    ) -> None:
        self.py_func = fn
        self.kind = kind
        self.options = options
        self.signatures_given = signatures
        self.id = function_id(fn)
        self.__name__ = fn.__name__
        self.__qualname__ = fn.__qualname__
        self.__doc__ = fn.__doc__
        self.__module__ = fn.__module__
        self.called = False  # from Python (record mode)
        self._real: Any = None
        self._exports = _exports.get(self.id, {})

    def __repr__(self) -> str:
        return f"<compiled function {self.id} ({_mode} mode)>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not kwargs and self._exports:
            key = tuple(map(type_key, args))
            export = self._exports.get(key)  # type: ignore[arg-type]
            if export is None and self.signatures_given is not None:
                export = self._converted(key)  # type: ignore[arg-type]
            if export is not None:
                return export(*args)
        self.called = True
        return self.real(*args, **kwargs)

    def _converted(self, key: tuple[str | None, ...]) -> Callable[..., Any] | None:
        """A function of explicit signatures takes what numba converts to one of them (a writable array where a
        read-only one is declared, any layout where ``A`` is): the first such export, remembered."""
        for declared, export in list(self._exports.items()):
            if len(declared) == len(key) and all(_fits(a, d) for a, d in zip(key, declared, strict=True)):
                self._exports[key] = export  # type: ignore[index]
                return export
        return None

    @property
    def real(self) -> Any:
        """The numba dispatcher (or intrinsic) of this function; numba is imported on the first use."""
        if self._real is None:
            _realize()
        return self._real


def function_id(fn: Callable[..., Any]) -> str:
    """What names a compiled function in the library: its module and qualified name."""
    return f"{fn.__module__}:{fn.__qualname__}"


def _realize() -> None:
    """Give every stand-in that has none its real numba object, compiled from a copy of its Python function
    whose globals are its module's with every stand-in replaced by its real object (:data:`_shadows`)."""
    with _lock:
        pending = [s for s in _standins if s._real is None]
        if not pending:
            return
        import numba
        from numba.extending import intrinsic as numba_intrinsic

        made: dict[StandIn, Any] = {}
        for standin in pending:
            fn = standin.py_func
            module = fn.__module__
            if module not in _shadows:
                _shadows[module] = dict(fn.__globals__)
            copy = pytypes.FunctionType(fn.__code__, _shadows[module], fn.__name__, fn.__defaults__, fn.__closure__)
            copy.__qualname__ = fn.__qualname__
            copy.__doc__ = fn.__doc__
            copy.__kwdefaults__ = fn.__kwdefaults__
            copy.__annotations__ = fn.__annotations__
            copy.__module__ = module
            njit_copy = numba_intrinsic if standin.kind == "intrinsic" else numba.njit(**standin.options)
            made[standin] = njit_copy(copy)
        for shadow in _shadows.values():
            for name, value in list(shadow.items()):
                if isinstance(value, StandIn) and (value in made or value._real is not None):
                    shadow[name] = made.get(value, value._real)
        for standin in pending:  # explicit signatures: compiled now that every global is real, and no others
            sigs = standin.signatures_given
            if sigs is not None:
                sigs = sigs(numba.types) if callable(sigs) else sigs
                for sig in sigs if isinstance(sigs, list | tuple) else [sigs]:
                    made[standin].compile(sig)
                made[standin].disable_compile()
        # Published last: another thread that reads ``real`` without the lock finds either None (and waits on the
        # lock in here) or a dispatcher whose globals are all real already.
        for standin in pending:
            standin._real = made[standin]


# ---- argument types --------------------------------------------------------------------------------------

_SCALARS = {bool: "bool", int: "int64", float: "float64"}
_ARRAY_KEYS: dict[tuple[Any, ...], str] = {}  # (dtype, ndim, flags) -> key: most calls cost a lookup
_C, _F, _ALIGNED, _WRITEABLE = 0x1, 0x2, 0x100, 0x400  # numpy's NPY_ARRAY_* flag bits
_FLAGS = _C | _F | _ALIGNED | _WRITEABLE


def type_key(value: Any) -> str | None:
    """An argument's type as numba's ``typeof`` would name it, for the types the library exports (arrays of
    numbers, numbers, tuples of them); None for anything else (the call falls back to numba)."""
    if isinstance(value, np.ndarray):
        probe = (value.dtype, value.ndim, value.flags.num & _FLAGS)
        key = _ARRAY_KEYS.get(probe)
        if key is None:
            flags = probe[2]
            layout = "C" if flags & _C else "F" if flags & _F else "A"
            readonly, aligned = not flags & _WRITEABLE, bool(flags & _ALIGNED)
            # Only native numbers, dates and times: a big-endian float64 is named float64 too, and an export would
            # read its bytes as native ones ("": no export; numba refuses such an array as its JIT does).
            plain = value.dtype.isnative and value.dtype.kind in "biufcmM"
            named = _array_key(value.dtype.name, value.ndim, layout, readonly, aligned) if plain else ""
            key = _ARRAY_KEYS.setdefault(probe, named)
        return key or None
    scalar = _SCALARS.get(type(value))
    if scalar is not None:
        return scalar
    if isinstance(value, np.generic):
        return value.dtype.name
    if type(value) is tuple:
        keys = [type_key(v) for v in value]
        return None if None in keys else "(" + ",".join(keys) + ")"  # type: ignore[arg-type]
    return None


def _array_key(dtype: str, ndim: int, layout: str, readonly: bool, aligned: bool) -> str:
    return f"array({dtype},{ndim},{layout}{',readonly' if readonly else ''}{'' if aligned else ',unaligned'})"


_ARRAY = re.compile(r"array\((\w+),(\d+),([CFA])(,readonly)?(,unaligned)?\)")


def _fits(actual: str | None, declared: str) -> bool:
    """Whether numba converts an argument of type ``actual`` to ``declared`` without a copy (:func:`type_key`
    names): the same type, or an array of the same dtype and dimensions that is writable where a read-only one
    is declared, of any layout where ``A`` is, aligned where an unaligned one is."""
    if actual is None or actual == declared:
        return actual is not None
    a, d = _ARRAY.fullmatch(actual), _ARRAY.fullmatch(declared)
    if a is None or d is None or a.group(1, 2) != d.group(1, 2):
        return False
    layout = d.group(3) == "A" or a.group(3) == d.group(3)
    return layout and (bool(d.group(4)) or not a.group(4)) and (bool(d.group(5)) or not a.group(5))


def numba_type_key(t: Any) -> str | None:
    """:func:`type_key` of a numba type (the build side); None for a type the library does not export."""
    from numba import types
    from numba.np.numpy_support import as_dtype

    if isinstance(t, types.Array):
        try:
            dtype = as_dtype(t.dtype).name
        except NotImplementedError:
            return None
        return _array_key(dtype, t.ndim, t.layout, not t.mutable, t.aligned)
    if isinstance(t, types.Boolean):
        return "bool"
    if isinstance(t, types.Integer | types.Float) and not isinstance(t, types.Literal):
        return str(t)
    if isinstance(t, types.BaseTuple) and not isinstance(t, types.BaseNamedTuple):
        keys = [numba_type_key(x) for x in t.types]
        return None if None in keys else "(" + ",".join(keys) + ")"  # type: ignore[arg-type]
    return None
