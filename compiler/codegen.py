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

from dataclasses import dataclass, field, replace
from importlib import resources

import jinja2

from fspec import __version__
from fspec.compiler import ir
from fspec.compiler.formula import Node
from fspec.compiler.lower import Slot, TickKernel
from fspec.compiler.operators import ELEMENTWISE, REGISTRY
from fspec.compiler.unparse import resolved_source

CODEGEN_VERSION = "10"


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

    @property
    def load(self) -> str:
        carried = f"carry[{self.offset}:{self.offset + self.size}]" if self.is_array else f"carry[{self.offset}]"
        if self.is_array:
            return f"{self.name}[:] = {carried}"
        return f"{self.name} = {'int(' + carried + ')' if self.is_int else carried}"

    @property
    def store(self) -> str:
        if self.is_array:
            return f"carry[{self.offset}:{self.offset + self.size}] = {self.name}"
        return f"carry[{self.offset}] = {self.name}"


@dataclass(frozen=True)
class Derived:
    """A tick column computed once per call with numpy, before the loop: ``derived[index]``."""

    index: int
    code: str  # a numpy expression over whole columns, or over entity e's rows ``lo:hi`` if it uses parameters
    function: str  # the numpy ufunc that writes into ``derived[index]``
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


_BINARY = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}
_COMPARE = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
_CALLS: dict[str, str] = {
    "log": "np.log",
    "exp": "np.exp",
    "sqrt": "np.sqrt",
    "abs": "abs",
    "sign": "sign",
    "clip": "clip",
    "min2": "min2",
    "max2": "max2",
}
# Worth a vectorised pass of their own: a libm call per tick costs several times numpy's SIMD loop.
_HOISTED = {"log": "np.log", "exp": "np.exp"}
# What the vectorised pass may contain below a hoisted call (plain numpy on whole columns).
_NUMPY_CALLS = {"log": "np.log", "exp": "np.exp", "sqrt": "np.sqrt", "abs": "np.abs"}


def is_stateless(node: Node) -> bool:
    """True if the value at a tick depends on that tick's row alone (no lag, diff or tick state)."""
    return all(not isinstance(n, ir.Apply) or REGISTRY[n.op].kind == ELEMENTWISE for n in node.walk())


def _numpy_expressible(node: Node) -> bool:
    return all(
        isinstance(n, ir.Const | ir.Column | ir.ParamRef)
        or (isinstance(n, ir.Apply) and (n.op in _BINARY or n.op == "neg" or n.op in _NUMPY_CALLS))
        for n in node.walk()
    )


def _const(value: float) -> str:
    if value != value:
        return "nan"
    text = repr(float(value))  # inf and -inf print as names numba knows through np
    text = {"inf": "np.inf", "-inf": "-np.inf"}.get(text, text)
    return f"({text})" if value < 0 or text.startswith("-") else text  # -1.0 ** 2 would be -1


class _Emitter:
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
        return f"params[{self.kernel.params.index(node.name)}]"

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
        if self.per_tick and node.op in _HOISTED and _numpy_expressible(node):
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
        self.model.derived.append(Derived(index, code, _HOISTED[node.op], resolved_source(node), uses_params))
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
        a = [self._numpy(x, per_entity) for x in node.args]
        if node.op in _BINARY:
            return f"({a[0]} {_BINARY[node.op]} {a[1]})"
        if node.op == "neg":
            return f"(-{a[0]})"
        return f"{_NUMPY_CALLS[node.op]}({a[0]})"

    def _expression(self, node: ir.Apply, a: list[str]) -> str | list[str]:
        op = node.op
        if op in _BINARY:
            return f"{a[0]} {_BINARY[op]} {a[1]}"
        if op in _COMPARE:
            return f"1.0 if {a[0]} {_COMPARE[op]} {a[1]} else 0.0"
        if op == "neg":
            return f"-{a[0]}"
        if op == "and_":
            return f"1.0 if ({a[0]} != 0.0) and ({a[1]} != 0.0) else 0.0"
        if op == "or_":
            return f"1.0 if ({a[0]} != 0.0) or ({a[1]} != 0.0) else 0.0"
        if op == "not_":
            return f"1.0 if {a[0]} == 0.0 else 0.0"
        if op == "where":
            return f"{a[1]} if {a[0]} != 0.0 else {a[2]}"
        if op in _CALLS:
            return f"{_CALLS[op]}({', '.join(a)})"
        if op in ("lag", "diff"):
            return self._shift(op, int(node.const("k")), a[0])
        if op == "tick_rule":
            return self._tick_rule(a[0])
        if op == "vpin":
            return self._vpin(a[0], a[1], a[2], int(node.const("n")))
        raise NotImplementedError(f"no tick code for operator {op}")

    def _shift(self, op: str, k: int, x: str) -> list[str]:
        n = len(self.model.state)
        if k == 1:
            self.model.add_state(StateVar(f"prev{n}", "nan"))
            value = f"{x} - prev{n}" if op == "diff" else f"prev{n}"
            return [f"cur{n} = {value}", f"prev{n} = {x}", f"cur{n}"]
        self.model.add_state(
            StateVar(f"ring{n}", f"np.full({k}, nan)", size=k, is_array=True), StateVar(f"pos{n}", "0", is_int=True)
        )
        value = f"{x} - ring{n}[pos{n}]" if op == "diff" else f"ring{n}[pos{n}]"
        return [f"cur{n} = {value}", f"ring{n}[pos{n}] = {x}", f"pos{n} = (pos{n} + 1) % {k}", f"cur{n}"]

    def _vpin(self, price: str, size: str, bucket: str, n: int) -> list[str]:
        k = len(self.model.state)
        self.model.add_state(
            StateVar(f"vp_fill{k}", "0.0", "volume in the open bucket"),
            StateVar(f"vp_count{k}", "0", "completed buckets this session", is_int=True),
            StateVar(f"vp_close{k}", "nan", "price at the last bucket close (first trade before any)"),
            StateVar(f"vp_dp{k}", f"np.zeros({n})", "ring of bucket price changes", size=n, is_array=True),
            StateVar(f"vp_oi{k}", f"np.zeros({n})", "ring of bucket order imbalances", size=n, is_array=True),
            StateVar(f"vp_value{k}", "nan"),
        )
        # A trade that fills the open bucket closes it at its price; what it has left fills whole buckets of its
        # own (dP = 0, so imbalance 0) and opens the next. Whole buckets are counted, not looped over: only
        # the last n reach the rings, so a tiny bucket cannot make one trade cost size / bucket steps.
        return [
            f"if {price} == {price} and 0.0 < {size} < np.inf and {bucket} > 0.0:",
            f"    if vp_close{k} != vp_close{k}:",
            f"        vp_close{k} = {price}",
            f"    room{k} = {bucket} - vp_fill{k}",
            f"    if {size} < room{k}:",
            f"        vp_fill{k} += {size}",
            "    else:",
            f"        slot{k} = vp_count{k} % {n}",
            f"        vp_dp{k}[slot{k}] = {price} - vp_close{k}",
            f"        vp_close{k} = {price}",
            f"        vp_count{k} += 1",
            f"        vp_oi{k}[slot{k}] = vpin_imbalance(vp_dp{k}, min(vp_count{k}, {n}), slot{k})",
            f"        rest{k} = {size} - room{k}",
            f"        whole{k} = np.floor(rest{k} / {bucket})",
            f"        for step{k} in range(int(min(whole{k}, {n}.0))):",
            f"            vp_dp{k}[(vp_count{k} + step{k}) % {n}] = 0.0",
            f"            vp_oi{k}[(vp_count{k} + step{k}) % {n}] = 0.0",
            f"        vp_count{k} += int(min(whole{k}, 1e18))",
            f"        vp_fill{k} = max(rest{k} - whole{k} * {bucket}, 0.0)",
            f"        if vp_count{k} >= {n}:",
            f"            vp_value{k} = np.mean(vp_oi{k})",
            f"vp_value{k}",
        ]

    def _tick_rule(self, x: str) -> list[str]:
        n = len(self.model.state)
        self.model.add_state(StateVar(f"last_px{n}", "nan"), StateVar(f"sgn{n}", "0.0"))
        # Two selects, not an if/elif: on random ticks a branch on the price change is mispredicted about half
        # the time. A change that is NaN (a NaN price, or inf - inf) compares false both ways and keeps the
        # sign, and a NaN price keeps the last price.
        return [
            f"move{n} = {x} - last_px{n}",
            f"sgn{n} = 1.0 if move{n} > 0.0 else sgn{n}",
            f"sgn{n} = -1.0 if move{n} < 0.0 else sgn{n}",
            f"last_px{n} = {x} if {x} == {x} else last_px{n}",
            f"sgn{n}",
        ]


def _empty_value(reducer: str) -> str:
    return "0.0" if reducer in ("sum", "count", "bipower") else "nan"


def _reduce(s: int, reducer: str, args: list[str], model: KernelModel) -> None:
    """Per-bar locals, the per-tick update and the end-of-bar write of one slot."""
    v = args[0]
    local, step, flush = model.bar_locals, model.steps, model.flush
    if reducer in ("sum", "count"):
        local.append(f"acc{s} = 0.0")
        add = v if reducer == "sum" else "1.0"
        step.append(Step(f"acc{s} += {add} if {v} == {v} else 0.0", f"slot {s}"))
        flush.append(Step(f"out[{s}, b] = acc{s}"))
    elif reducer in ("first", "last", "min", "max"):
        local.append(f"val{s} = nan")
        condition = {
            "first": f"val{s} != val{s}",
            "last": "",
            "min": f"not (val{s} <= {v})",
            "max": f"not (val{s} >= {v})",
        }[reducer]
        test = f"{v} == {v}" + (f" and {condition}" if condition else "")
        step.append(Step(f"if {test}:\n    val{s} = {v}", f"slot {s}"))
        flush.append(Step(f"out[{s}, b] = val{s}"))
    elif reducer == "mean":
        local += [f"sum{s} = 0.0", f"cnt{s} = 0.0"]
        step.append(Step(f"sum{s} += {v} if {v} == {v} else 0.0\ncnt{s} += 1.0 if {v} == {v} else 0.0", f"slot {s}"))
        flush.append(Step(f"if cnt{s} > 0.0:\n    out[{s}, b] = sum{s} / cnt{s}"))
    elif reducer == "std":
        local += [f"cnt{s} = 0.0", f"avg{s} = 0.0", f"m2_{s} = 0.0"]
        step.append(
            Step(
                f"if {v} == {v}:  # Welford update\n"
                f"    cnt{s} += 1.0\n"
                f"    delta{s} = {v} - avg{s}\n"
                f"    avg{s} += delta{s} / cnt{s}\n"
                f"    m2_{s} += delta{s} * ({v} - avg{s})",
                f"slot {s}",
            )
        )
        flush.append(Step(f"if cnt{s} > 1.0:\n    out[{s}, b] = np.sqrt(m2_{s} / (cnt{s} - 1.0))"))
    elif reducer == "wmean":
        w = args[1]
        local += [f"num{s} = 0.0", f"den{s} = 0.0"]
        step.append(
            Step(
                f"ok{s} = {v} == {v} and {w} == {w}\n"
                f"num{s} += {v} * {w} if ok{s} else 0.0\n"
                f"den{s} += {w} if ok{s} else 0.0",
                f"slot {s}",
            )
        )
        flush.append(Step(f"if den{s} != 0.0:\n    out[{s}, b] = num{s} / den{s}"))
    elif reducer == "bipower":
        local += [f"acc{s} = 0.0", f"paired{s} = False", f"prev_abs{s} = 0.0"]
        step.append(
            Step(
                f"if {v} == {v}:\n"
                f"    if paired{s}:\n"
                f"        acc{s} += abs({v}) * prev_abs{s}\n"
                f"    prev_abs{s} = abs({v})\n"
                f"    paired{s} = True",
                f"slot {s}",
            )
        )
        flush.append(Step(f"out[{s}, b] = acc{s}"))
    else:
        raise NotImplementedError(f"no kernel code for reducer {reducer}")


def _lazy(slot: Slot, kernel: TickKernel, model: KernelModel) -> LazyScan:
    steps: list[Step] = []
    emitter = _Emitter(kernel, model, steps, prefix=f"e{slot.index}_", index="j", per_tick=False)
    value = emitter.value(slot.args[0])
    return LazyScan(slot.index, slot.reducer, tuple(steps), value, slot.text)


def kernel_model(kernel: TickKernel) -> KernelModel:
    model = KernelModel()
    per_tick = _Emitter(kernel, model, model.steps, prefix="t", index="i", per_tick=True)
    for slot in kernel.slots:
        model.init.append(f"out[{slot.index}, :] = {_empty_value(slot.reducer)}")
        if slot.reducer in ("first", "last") and is_stateless(slot.args[0]):
            model.lazy.append(_lazy(slot, kernel, model))
            continue
        args = [per_tick.value(a) for a in slot.args]
        _reduce(slot.index, slot.reducer, args, model)
    return model


def _template() -> jinja2.Template:
    text = resources.files("fspec.compiler").joinpath("templates/tick_kernel.py.j2").read_text(encoding="utf-8")
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, trim_blocks=True, keep_trailing_newline=True, autoescape=False
    )
    return env.from_string(text)


def render_kernel(kernel: TickKernel) -> str:
    model = kernel_model(kernel)
    return _template().render(
        k=kernel,
        model=model,
        version=__version__,
        slot_texts=repr([s.text for s in kernel.slots]),
        derived_texts=repr([d.text for d in model.derived]),
    )
