"""What an operator is: its signature, grain rule, window rule, doc, edge cases, and every lowering it has.

An operator is one :class:`Operator` value, registered once (:func:`register`) in the module of its family
(``elementwise``, ``state``, ``reducers``, ``windows``, ``statistics``). Whatever compiles or runs a formula
reads the lowerings from it and has no table of its own:

* ``tick``: scalar code inside a generated kernel (elementwise operators), from the arguments' code;
* ``vector``: numpy code over whole columns, for the kernel's vectorised ``derive`` pass (elementwise);
* ``numexpr``: numexpr text over bar arrays (elementwise); an operator without it is evaluated by ``numpy``;
* ``numpy``: the operator on numpy arrays (elementwise): the bar evaluation's fallback;
* ``state``: the tick-level state machine of ``tick`` and ``shift`` operators (:class:`TickState`);
* ``reduce``: the per-bar code of a reducer (:class:`ReducerCode`) and its value for an empty bar;
* ``bar``: the compiled bar-level implementation over (rows, bars) arrays (:func:`bar_function`), with its
  constant parameters in call order;
* ``reference``: a plain numpy / pandas computation the tests check the compiled code against, written apart
  from ``bar``: elementwise operators take the arguments' values; reducers the ticks' values, ``bars`` (each
  tick's bar number) and ``n_bars``; bar operators one entity's bar series, ``session`` and their constants by
  name. ``examples`` are the formulas the tests compute both ways.

Grain rules (``kind``):
    elementwise  per row of whatever grain its inputs have (tick rows or bars); inputs must share a grain
    tick         tick grain in, tick grain out (state runs over the session's ticks in time order)
    shift        tick in -> tick out, or bar in -> bar out (``lag``, ``diff``)
    reducer      tick grain in -> one value per bar
    bar          bar grain in -> bar grain out (windows over bars)
    cross_section  bar grain in -> bar grain out, over the members of a universe at the same bar (``numpy``)
    event        tick grain in -> one value per event of an event grid: a row strictly before the event's cut
    chain        an option chain source in -> one value per bar of its instrument: a reducer over the chain's
                 snapshot at the bar end (``numpy``: the value of one expiry's contracts at one bar end)

Window rule: the bars an operator reads relative to the current bar, ``(left, right)``; ``left`` bars of
history, ``right`` bars of future. Rules compose up the tree and across features; ``right > 0`` is
lookahead and only targets may have it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ELEMENTWISE, TICK, SHIFT, REDUCER, BAR = "elementwise", "tick", "shift", "reducer", "bar"
CROSS = "cross_section"
EVENT = "event"
CHAIN = "chain"


@dataclass(frozen=True)
class Window:
    """Bars read around the current bar: ``left`` back, ``right`` ahead.

    ``sessions`` counts whole earlier sessions needed on top of ``left`` bars, and ``anchored`` marks a value
    that depends on its session's start (a session-local operator over an input with history): reading such
    a value even one bar back across a session boundary needs that whole earlier session.
    """

    left: int = 0
    right: int = 0
    sessions: int = 0
    anchored: bool = False

    def __or__(self, other: Window) -> Window:
        return Window(
            max(self.left, other.left),
            max(self.right, other.right),
            max(self.sessions, other.sessions),
            self.anchored or other.anchored,
        )


@dataclass(frozen=True)
class Param:
    """``expr`` parameters take formulas; ``int`` and ``number`` parameters take constants, at least
    ``minimum`` and at most ``maximum``; a ``flag`` takes true or false."""

    name: str
    kind: str = "expr"
    default: float | None = None
    minimum: float | None = None
    maximum: float | None = None


# session=true: the window restarts at each session open (reads no bar of an earlier session); its default is
# false (carry across sessions) except for operators whose ``session_default`` is true (the EWMs)
SESSION_FLAG = Param("session", "flag", 0.0)
SESSION_FLAG_TRUE = Param("session", "flag", 1.0)

WindowRule = Callable[[Window, dict[str, float]], Window]
Code = Callable[[list[str]], str]


def same_window(w: Window, _: dict[str, float]) -> Window:
    return w


@dataclass(frozen=True)
class StateVar:
    """A variable of a tick operator's state, carried through the session: a float, an int, or a float array
    of ``size``."""

    name: str
    init: str
    comment: str = ""
    size: int = 1
    is_int: bool = False
    is_array: bool = False


@dataclass(frozen=True)
class TickState:
    """A tick operator's code at one tick: its state, the statements that update it, and the value."""

    state: tuple[StateVar, ...]
    lines: tuple[str, ...]
    value: str


@dataclass(frozen=True)
class ReducerCode:
    """One reducer slot ``s`` in a kernel: locals reset when a bar starts, the update at each tick, and the
    write of ``out[s, b]`` when the bar is complete. The locals are named after the slot (``ReduceCode``)."""

    locals: tuple[str, ...]
    step: str
    flush: str


StateCode = Callable[[int, list[str], dict[str, float]], TickState]  # (unique number, args, constants)
# (slot, the name of its locals, args): a reducer names its locals after the slot (``sum_size``, ``sum_size_cnt``:
# the name, or the name, "_" and a word), so that a generated kernel reads as what it computes
ReduceCode = Callable[[int, str, list[str]], ReducerCode]


@dataclass(frozen=True)
class Operator:
    name: str
    params: tuple[Param, ...]
    kind: str
    doc: str
    edge: str = ""
    window: WindowRule = same_window
    target_only: bool = False
    session_local: bool = False  # always restarts at each session start (no warm-up from earlier sessions)
    # The default of the ``session`` flag of a restartable operator. True for the EWMs (ewm_mean, ewm_std, rma):
    # they restart at each open unless ``session=false``, since carrying an infinite memory across sessions is a
    # truncation (see docs/semantics.md) and the specs written before they could carry keep their meaning.
    # Such an operator takes the flag itself (``call_constants``): its bar code is never split by session.
    session_default: bool = False
    # lowerings (see the module doc); each kind has those it needs
    tick: Code | None = None
    vector: Code | None = None
    numexpr: Code | None = None
    numpy: Callable[..., Any] | None = None
    hoist: bool = False  # tick code worth a vectorised pass of its own (a libm call per tick is slow)
    state: StateCode | None = None
    reduce: ReduceCode | None = None
    empty: str = "nan"  # a reducer's value for a bar with no ticks
    scan: bool = False  # a reducer read at the bar's first or last ticks instead of updated per tick
    bar: Callable[..., Any] | None = None
    # an event operator's write when the scan back from an event's cut finds its row j: (slot, value at j)
    event: Callable[[int, str], str] | None = None
    bar_constants: tuple[str, ...] = ()
    # the bar code's constants in call order computed from the node's constants (where they are not just the
    # values of ``bar_constants``: an EWM's warm-up horizon)
    call_constants: Callable[[dict[str, float]], list[int | float]] | None = None
    reference: Callable[..., Any] | None = None
    # formulas over a ``trades`` source (``price``, ``size``) that use it: shown in the docs, and computed by
    # the tests against ``reference`` on synthetic data with NaN, empty bars and several sessions
    examples: tuple[str, ...] = ()

    @property
    def restartable(self) -> bool:
        """A window over bars that may restart at each session open instead (``session=true``)."""
        return self.kind in (BAR, SHIFT) and not self.session_local

    @property
    def all_params(self) -> tuple[Param, ...]:
        """Its parameters, and ``session`` (a flag, default ``session_default``) where it is restartable."""
        if not self.restartable:
            return self.params
        return (*self.params, SESSION_FLAG_TRUE if self.session_default else SESSION_FLAG)

    def restarts(self, consts: dict[str, float]) -> bool:
        """Whether a node with these constants restarts at each session open (a flag is recorded in a tree
        only where it differs from its default)."""
        return self.session_local or bool(consts.get("session", float(self.session_default)))

    @property
    def signature(self) -> str:
        parts = []
        for p in self.all_params:
            if p.kind == "flag":
                parts.append(f"{p.name}={'true' if p.default else 'false'}")
            else:
                parts.append(p.name if p.default is None else f"{p.name}={p.default:g}")
        return f"{self.name}({', '.join(parts)})"

    @property
    def expr_params(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params if p.kind == "expr")


REGISTRY: dict[str, Operator] = {}


def register(op: Operator) -> Operator:
    if op.name in REGISTRY:
        raise ValueError(f"operator {op.name} registered twice")
    REGISTRY[op.name] = op
    return op


_compiling = threading.Lock()


class bar_function:
    """A bar operator's implementation, compiled by numba (``cache=True``) on its first call, so that
    validating specs never imports numba. Under ``NUMBA_DISABLE_JIT=1`` it runs as plain Python."""

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self._compiled: Callable[..., Any] | None = None

    @property
    def compiled(self) -> Callable[..., Any]:
        with _compiling:  # the warming thread and the run may ask at once: one dispatcher
            if self._compiled is None:
                from fspec.jit import njit  # numba's, or the ahead-of-time library's (fspec compile --aot)

                self._compiled = njit(cache=True)(self.fn)
        return self._compiled

    def __call__(self, *args: Any) -> Any:
        return self.compiled(*args)
