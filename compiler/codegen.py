"""Plan -> kernel source files. The template receives a typed :class:`KernelModel`, nothing else.

A kernel walks one session's ticks bar by bar. Four choices keep the per-tick loop short, because the cost
of turning ticks into bars is almost all of the compute stage:

* every reducer keeps its running value in locals while the bar lasts and writes ``out`` once per bar;
* ``first`` and ``last`` of a stateless tick expression are not computed per tick: when the bar is complete,
  the kernel evaluates the expression at the bar's first (or last) ticks until one is not NaN;
* ``log`` and ``exp`` of stateless tick expressions are computed once per call, vectorised, by the module's
  ``derive`` function (numpy's SIMD versions are several times faster than one libm call per tick), and the
  loop reads them as ``derived`` rows;
* the loop prefetches every array it reads (``loop_reads``) a fixed number of ticks ahead: it does little
  work per tick, and without the hint it spends more time waiting on memory than computing.
"""

from __future__ import annotations

import ast
import builtins
import functools
import keyword
import re
from dataclasses import dataclass, field, replace
from importlib import resources

import jinja2

import fspec.operators as ops
from fspec import __version__
from fspec.compiler import ir
from fspec.compiler.formula import Node
from fspec.compiler.lower import Slot, TickKernel
from fspec.compiler.unparse import resolved_source
from fspec.operators import ELEMENTWISE, REGISTRY

CODEGEN_VERSION = "13"  # 13: constants of tick formulas as parameters; empty bars set by a loop


@dataclass(frozen=True)
class Step:
    """A statement; continuation lines are indented relative to the first (4 spaces per level)."""

    code: str
    comment: str = ""

    @property
    def text(self) -> str:
        """The statement with its comment on the first line (where a reader looks for it)."""
        if not self.comment:
            return self.code
        first, newline, rest = self.code.partition("\n")
        return f"{first}  # {self.comment}{newline}{rest}"


@dataclass(frozen=True)
class StateVar:
    """A variable of a tick-level operator's state: a float, an int, or a float array of ``size``.

    State lives through the session; a session computed in two parts carries it from the first to the second
    in a float64 array (``carry[offset:offset + size]``; ints are exact there up to 2**53)."""

    name: str
    init: str
    comment: str = ""
    size: int = 1
    is_int: bool = False
    is_array: bool = False
    offset: int = 0

    @property
    def text(self) -> str:
        return f"{self.name} = {self.init}" + (f"  # {self.comment}" if self.comment else "")

    # Arrays are copied element by element: numba compiles a slice assignment between arrays with a shape
    # check whose error path alone costs it about a second per kernel; the loop gives the same values.

    @property
    def load(self) -> str:
        if self.is_array:
            return f"for q in range({self.size}):\n    {self.name}[q] = carry[{self.offset} + q]"
        carried = f"carry[{self.offset}]"
        return f"{self.name} = {'int(' + carried + ')' if self.is_int else carried}"

    @property
    def store(self) -> str:
        if self.is_array:
            return f"for q in range({self.size}):\n    carry[{self.offset} + q] = {self.name}[q]"
        return f"carry[{self.offset}] = {self.name}"


@dataclass(frozen=True)
class Derived:
    """A tick column computed once per call with numpy, before the loop: ``derived[index]``."""

    index: int
    statement: str  # numpy code writing whole columns into derived[index], or entity e's rows lo:hi
    text: str  # the formula it computes
    uses_params: bool = False  # parameters differ between entities: computed entity by entity


@dataclass(frozen=True)
class LazyScan:
    """``first``/``last`` of a stateless expression: evaluated at the complete bar's ticks, from one end."""

    slot: int
    reducer: str
    steps: tuple[Step, ...]  # compute ``value`` at tick j
    value: str
    text: str


@dataclass
class KernelModel:
    """Statements of one fused kernel, in the order the template lays them out."""

    init: list[str] = field(default_factory=list)  # empty-bar values of out[]
    state: list[StateVar] = field(default_factory=list)  # tick-level operator state, carried through the session
    bar_locals: list[str] = field(default_factory=list)  # reset when a bar starts
    steps: list[Step] = field(default_factory=list)  # per tick
    flush: list[Step] = field(default_factory=list)  # when a bar is complete
    lazy: list[LazyScan] = field(default_factory=list)
    derived: list[Derived] = field(default_factory=list)
    loop_reads: list[str] = field(default_factory=list)  # arrays the per-tick loop reads at i, in first-use order

    @property
    def carry_size(self) -> int:
        return sum(v.size for v in self.state)

    def add_state(self, *variables: StateVar) -> None:
        for v in variables:
            self.state.append(replace(v, offset=self.carry_size))


def is_stateless(node: Node) -> bool:
    """True if the value at a tick depends on that tick's row alone (no lag, diff or tick state)."""
    return all(not isinstance(n, ir.Apply) or REGISTRY[n.op].kind == ELEMENTWISE for n in node.walk())


def _numpy_expressible(node: Node) -> bool:
    """True if every operator of ``node`` has numpy code over whole columns (its ``vector`` lowering)."""
    return all(
        isinstance(n, ir.Const | ir.Column | ir.ParamRef) or (isinstance(n, ir.Apply) and REGISTRY[n.op].vector)
        for n in node.walk()
    )


def _const(value: float) -> str:
    if value != value:
        return "nan"
    text = repr(float(value))  # inf and -inf print as names numba knows through np
    text = {"inf": "np.inf", "-inf": "-np.inf"}.get(text, text)
    return f"({text})" if value < 0 or text.startswith("-") else text  # -1.0 ** 2 would be -1


class Emitter:
    """Turns tick expressions at row ``index`` into numbered locals, computing each distinct subexpression once.

    ``per_tick`` (the per-tick loop only) moves log and exp of numpy-expressible expressions into ``derive``,
    and records the arrays the loop reads (``model.loop_reads``), which the loop prefetches.
    """

    def __init__(
        self, kernel: TickKernel, model: KernelModel, steps: list[Step], prefix: str, index: str, per_tick: bool
    ):
        self.kernel = kernel
        self.model = model
        self.steps = steps
        self.prefix = prefix
        self.index = index
        self.per_tick = per_tick
        self.names: dict[Node, str] = {}

    def _fresh(self) -> str:
        return f"{self.prefix}{len(self.names)}"

    def _param(self, node: ir.ParamRef) -> str:
        return f"param_{node.name}"  # read from params[] once, at the top of reduce_entity

    def value(self, node: Node) -> str:
        if isinstance(node, ir.Const):
            return _const(node.value)
        if isinstance(node, ir.Column):
            return self._read(f"col_{node.column}")
        if isinstance(node, ir.ParamRef):
            return self._param(node)
        if node in self.names:
            return self.names[node]
        assert isinstance(node, ir.Apply)
        if self.per_tick and REGISTRY[node.op].hoist and _numpy_expressible(node):
            name = self._read(f"derived_{self._derive(node)}")
            self.names[node] = name
            return name
        args = [self.value(a) for a in node.args]
        code = self._expression(node, args)
        name = self._fresh()
        self.names[node] = name
        if isinstance(code, list):
            for line in code[:-1]:
                self.steps.append(Step(line))
            code = code[-1]
        self.steps.append(Step(f"{name} = {code}", resolved_source(node)))
        return name

    def _read(self, array: str) -> str:
        if self.per_tick and array not in self.model.loop_reads:
            self.model.loop_reads.append(array)
        return f"{array}[{self.index}]"

    def _derive(self, node: ir.Apply) -> int:
        for d in self.model.derived:
            if d.text == resolved_source(node):
                return d.index
        index = len(self.model.derived)
        uses_params = any(isinstance(n, ir.ParamRef) for n in node.walk())
        code = self._numpy(node.args[0], per_entity=uses_params)
        target = f"out=derived[{index}, lo:hi]" if uses_params else f"out=derived[{index}]"
        statement = REGISTRY[node.op].vector([code, target])  # type: ignore[misc]
        self.model.derived.append(Derived(index, statement, resolved_source(node), uses_params))
        return index

    def _numpy(self, node: Node, per_entity: bool) -> str:
        """numpy code of ``node`` over whole columns, or (``per_entity``) over entity e's rows lo:hi."""
        if isinstance(node, ir.Const):
            return _const(node.value)
        if isinstance(node, ir.Column):
            return f"col_{node.column}[lo:hi]" if per_entity else f"col_{node.column}"
        if isinstance(node, ir.ParamRef):
            return f"params[e, {self.kernel.params.index(node.name)}]"
        assert isinstance(node, ir.Apply)
        return REGISTRY[node.op].vector([self._numpy(x, per_entity) for x in node.args])  # type: ignore[misc]

    def _expression(self, node: ir.Apply, a: list[str]) -> str | list[str]:
        """The operator's own tick code (its registry entry's ``tick`` or ``state`` lowering)."""
        op = REGISTRY[node.op]
        if op.tick is not None:
            return op.tick(a)
        if op.state is None:
            raise NotImplementedError(f"no tick code for operator {node.op}")
        code = op.state(len(self.model.state), a, dict(node.consts))
        self.model.add_state(*(_state_var(v) for v in code.state))
        return [*code.lines, code.value]


def _state_var(v: ops.StateVar) -> StateVar:
    return StateVar(v.name, v.init, v.comment, v.size, v.is_int, v.is_array)


# RESERVED: names a slot's locals must not take (the event kernels' code generator adds its own): the
# template's own, Python's builtins and keywords (the kernel calls min, max and abs); the kernel's other locals
# are numbered (t3, e2_0), prefixed (col_, param_, derived_) or carry a state operator's number, which a slot
# name (a reducer's name, "_", words) is checked against below.
_TEMPLATE_NAMES = frozenset(
    [
        "math",
        "np",
        "njit",
        "clip",
        "max2",
        "min2",
        "prefetch",
        "sign",
        "vpin_imbalance",
        "nan",
        "ts",
        "bar_ends",
        "params",
        "out",
        "carry",
        "resume",
        "ends",
        "start",
        "stop",
        "b",
        "i",
        "j",
        "e",
        "lo",
        "hi",
        "starts",
        "derived",
        "PREFETCH",
        "bar_stops",
        "filled",
        "mean_of",
        "q",
        "all_ts",
        "all_derived",
        "all_params",
        "all_out",
        "all_carry",
    ]
)
RESERVED = _TEMPLATE_NAMES | set(dir(builtins)) | set(keyword.kwlist)
_MAX_WORDS = 4  # of the slot's formula in its name: enough to tell slots apart, short enough to read


def slot_stem(slot: Slot) -> str:
    """A readable identifier for a slot: its reducer, then the named operators, columns and parameters of its
    argument in formula order, each once (``sum(trades.size)`` -> ``sum_size``, ``sum(diff(log(trades.price)))``
    -> ``sum_diff_log_price``). Operators written as symbols (``*``, ``-``) add no word."""
    text = slot.text
    words: list[str] = []
    for arg in slot.args:
        for node in arg.walk():
            if isinstance(node, ir.Apply) and f"{node.op}(" in text:
                word = node.op
            elif isinstance(node, ir.Column):
                word = node.column
            elif isinstance(node, ir.ParamRef):
                word = node.name
            else:
                continue
            word = re.sub(r"[^a-z0-9]+", "_", word.lower()).strip("_")
            if word and word not in words:
                words.append(word)
    return "_".join([slot.reducer, *words[:_MAX_WORDS]])


def _assigned(code: ops.ReducerCode) -> set[str]:
    """Every name a reducer's code binds (its locals and the temporaries of its step)."""
    text = "\n".join([*code.locals, code.step, code.flush])
    return {n.id for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def reduce_slot(slot: Slot, args: list[str], model: KernelModel, taken: set[str]) -> set[str]:
    """Per-bar locals, the per-tick update and the end-of-bar write of one slot (the reducer's own code), its
    locals named after the slot; a name already ``taken`` gets a number (``sum_size_2``). Returns its names."""
    code = REGISTRY[slot.reducer].reduce
    if code is None:
        raise NotImplementedError(f"no kernel code for reducer {slot.reducer}")
    stem = slot_stem(slot)
    name, k = stem, 1
    while True:
        parts = code(slot.index, name, args)
        names = _assigned(parts) | {name}
        if not names & taken:
            break
        k += 1
        name = f"{stem}_{k}"
    model.bar_locals.extend(parts.locals)
    model.steps.append(Step(parts.step, f"slot {slot.index}: {slot.text}"))
    model.flush.append(Step(parts.flush))
    return names


def _lazy(slot: Slot, kernel: TickKernel, model: KernelModel) -> LazyScan:
    steps: list[Step] = []
    emitter = Emitter(kernel, model, steps, prefix=f"e{slot.index}_", index="j", per_tick=False)
    value = emitter.value(slot.args[0])
    return LazyScan(slot.index, slot.reducer, tuple(steps), value, slot.text)


def kernel_model(kernel: TickKernel, avoid: frozenset[str] = frozenset()) -> KernelModel:
    model = KernelModel()
    per_tick = Emitter(kernel, model, model.steps, prefix="t", index="i", per_tick=True)
    taken = set(RESERVED | avoid)
    slot_names: set[str] = set()
    for slot in kernel.slots:
        model.init.append(f"out[{slot.index}, b] = {REGISTRY[slot.reducer].empty}")
        if REGISTRY[slot.reducer].scan and is_stateless(slot.args[0]):
            model.lazy.append(_lazy(slot, kernel, model))
            continue
        args = [per_tick.value(a) for a in slot.args]
        names = reduce_slot(slot, args, model, taken | {v.name for v in model.state})
        taken |= names
        slot_names |= names
    # A tick operator's state added after a slot was named could take one of its names. No operator's state
    # names (a prefix and a number: ring0, last_px2) start like a slot's (a reducer's name and "_") today, but
    # a clash would silently share a variable: name the slots again with those names kept out.
    clash = slot_names & {v.name for v in model.state}
    return kernel_model(kernel, avoid | clash) if clash else model


@functools.cache
def kernel_template(name: str) -> jinja2.Template:
    """A kernel template of compiler/templates (Python source: no autoescape; an undefined name is an error)."""
    text = resources.files("fspec.compiler").joinpath(f"templates/{name}").read_text(encoding="utf-8")
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, trim_blocks=True, keep_trailing_newline=True, autoescape=False
    )
    return env.from_string(text)


CONST_PREFIX = "const__"  # a lifted constant's parameter name: a double underscore no spec name can have


@functools.cache
def lift_constants(kernel: TickKernel) -> tuple[TickKernel, tuple[float, ...]]:
    """The kernel with the constants of its tick formulas as parameters, and their values.

    A constant that is an argument of an elementwise operator (``where(... , 1, ...)``, ``size >= 500``,
    ``(bid + ask) / 2``) becomes the parameter ``const__k``: the generated file then reads it from ``params``
    and holds no value of it, so an edit of a constant renders the same file, whose machine code numba has
    cached, and compiles nothing. The values are recorded in the manifest (``KernelDef.constants``) and passed
    with each call; the arithmetic is the same IEEE operation on the same value, so results are identical.
    An exponent stays in the code (``x ** 2`` is a multiplication after LLVM, ``x ** p`` a call of pow, which
    need not round alike), and so do the constants of other operators (a reducer's, a tick state's).

    Equal subexpressions stay equal (each distinct one is rewritten once), so the kernel still computes them
    once; constants are numbered in slot order, so one whose value changes keeps its number."""
    values: list[float] = []
    done: dict[Node, Node] = {}

    def lift(node: Node) -> Node:
        if not isinstance(node, ir.Apply):
            return node
        if node in done:
            return done[node]
        elementwise = REGISTRY[node.op].kind == ELEMENTWISE
        args = []
        for position, arg in enumerate(node.args):
            if isinstance(arg, ir.Const) and elementwise and not (node.op == "pow" and position == 1):
                args.append(ir.ParamRef(f"{CONST_PREFIX}{len(values)}", None, arg.grain))
                values.append(arg.value)
            else:
                args.append(lift(arg))
        done[node] = replace(node, args=tuple(args))
        return done[node]

    slots = tuple(replace(s, args=tuple(lift(a) for a in s.args)) for s in kernel.slots)
    names = tuple(f"{CONST_PREFIX}{k}" for k in range(len(values)))
    return replace(kernel, params=(*kernel.params, *names), slots=slots), tuple(values)


def render_kernel(kernel: TickKernel, single: bool = False) -> str:
    """The kernel's file: its constants lifted into parameters (:func:`lift_constants`). ``single``: the slots an
    edit added to a source (compiler/parts.py), in one compiled function rather than a function per entity and
    its caller: numba compiles it faster, and the run of a few slots is short either way."""
    kernel, constants = lift_constants(kernel)
    # the single function's arguments (all_col_price) must not be a slot's name either
    model = kernel_model(kernel, frozenset(f"all_col_{c}" for c in kernel.columns) if single else frozenset())
    return kernel_template("tick_kernel.py.j2").render(
        k=kernel,
        single=single,
        constants=len(constants),
        model=model,
        version=__version__,
        slot_texts=repr([s.text for s in kernel.slots]),
        derived_texts=repr([d.text for d in model.derived]),
    )
