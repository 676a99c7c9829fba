"""Plan -> kernel source files. The template receives a typed :class:`KernelModel`, nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

import jinja2

from fspec import __version__
from fspec.compiler import ir
from fspec.compiler.formula import Node
from fspec.compiler.lower import TickKernel
from fspec.compiler.unparse import resolved_source

CODEGEN_VERSION = "4"


@dataclass(frozen=True)
class Step:
    code: str
    comment: str = ""

    @property
    def text(self) -> str:
        """The statement with its comment on the first line (where a reader looks for it)."""
        if not self.comment:
            return self.code
        first, newline, rest = self.code.partition("\n")
        return f"{first}  # {self.comment}{newline}{rest}"


@dataclass
class KernelModel:
    """Statements of one fused kernel, in the order the template lays them out."""

    init: list[str] = field(default_factory=list)
    state: list[str] = field(default_factory=list)
    # sums kept in locals while the bar lasts (ticks are in bar order), written to out[] when it changes
    accumulators: list[int] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    final: list[str] = field(default_factory=list)


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


class _Emitter:
    """Turns tick expressions into numbered locals, computing each distinct subexpression once."""

    def __init__(self, kernel: TickKernel, model: KernelModel):
        self.kernel = kernel
        self.model = model
        self.names: dict[Node, str] = {}

    def _fresh(self) -> str:
        return f"t{len(self.names)}"

    def value(self, node: Node) -> str:
        if isinstance(node, ir.Const):
            if node.value != node.value:
                return "nan"
            text = repr(float(node.value))  # inf and -inf print as names numba knows through np
            text = {"inf": "np.inf", "-inf": "-np.inf"}.get(text, text)
            return f"({text})" if node.value < 0 or text.startswith("-") else text  # -1.0 ** 2 would be -1
        if isinstance(node, ir.Column):
            return f"col_{node.column}[i]"
        if isinstance(node, ir.ParamRef):
            return f"params[{self.kernel.params.index(node.name)}]"
        if node in self.names:
            return self.names[node]
        assert isinstance(node, ir.Apply)
        args = [self.value(a) for a in node.args]
        code = self._expression(node, args)
        name = self._fresh()
        self.names[node] = name
        if isinstance(code, list):
            for line in code[:-1]:
                self.model.steps.append(Step(line))
            code = code[-1]
        self.model.steps.append(Step(f"{name} = {code}", resolved_source(node)))
        return name

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
            self.model.state.append(f"prev{n} = nan")
            value = f"{x} - prev{n}" if op == "diff" else f"prev{n}"
            return [f"cur{n} = {value}", f"prev{n} = {x}", f"cur{n}"]
        self.model.state += [f"ring{n} = np.full({k}, nan)", f"pos{n} = 0"]
        value = f"{x} - ring{n}[pos{n}]" if op == "diff" else f"ring{n}[pos{n}]"
        return [f"cur{n} = {value}", f"ring{n}[pos{n}] = {x}", f"pos{n} = (pos{n} + 1) % {k}", f"cur{n}"]

    def _vpin(self, price: str, size: str, bucket: str, n: int) -> list[str]:
        k = len(self.model.state)
        self.model.state += [
            f"vp_fill{k} = 0.0  # volume in the open bucket",
            f"vp_count{k} = 0  # completed buckets this session",
            f"vp_close{k} = nan  # price at the last bucket close (first trade before any)",
            f"vp_dp{k} = np.zeros({n})  # ring of bucket price changes",
            f"vp_oi{k} = np.zeros({n})  # ring of bucket order imbalances",
            f"vp_value{k} = nan",
        ]
        return [
            f"if {price} == {price} and {size} == {size} and {size} > 0.0 and {bucket} > 0.0:",
            f"    if vp_close{k} != vp_close{k}:",
            f"        vp_close{k} = {price}",
            f"    left{k} = {size}",
            f"    while left{k} > 0.0:",
            f"        take{k} = min(left{k}, {bucket} - vp_fill{k})",
            f"        vp_fill{k} += take{k}",
            f"        left{k} -= take{k}",
            f"        if vp_fill{k} >= {bucket}:  # the bucket is complete: classify it",
            f"            slot{k} = vp_count{k} % {n}",
            f"            vp_dp{k}[slot{k}] = {price} - vp_close{k}",
            f"            vp_close{k} = {price}",
            f"            vp_count{k} += 1",
            f"            vp_oi{k}[slot{k}] = vpin_imbalance(vp_dp{k}, min(vp_count{k}, {n}), slot{k})",
            f"            vp_fill{k} = 0.0",
            f"            if vp_count{k} >= {n}:",
            f"                vp_value{k} = np.mean(vp_oi{k})",
            f"vp_value{k}",
        ]

    def _tick_rule(self, x: str) -> list[str]:
        n = len(self.model.state)
        self.model.state += [f"last_px{n} = nan", f"sgn{n} = 0.0"]
        # Branch-free: on random ticks an if/elif on the price change is mispredicted about half the time.
        # A NaN price compares false both ways, so it keeps the sign and the last price.
        return [
            f"up{n} = 1.0 if {x} > last_px{n} else 0.0",
            f"down{n} = 1.0 if {x} < last_px{n} else 0.0",
            f"sgn{n} = sgn{n} * (1.0 - up{n} - down{n}) + (up{n} - down{n})",
            f"last_px{n} = {x} if {x} == {x} else last_px{n}",
            f"sgn{n}",
        ]


def _reduce(slot_index: int, reducer: str, args: list[str], model: KernelModel) -> None:
    s, v = slot_index, args[0]
    row = f"out[{s}, b]"
    if reducer in ("sum", "count", "bipower"):
        model.init.append(f"out[{s}, :] = 0.0")
    else:
        model.init.append(f"out[{s}, :] = nan")
    if reducer == "sum":
        model.accumulators.append(s)
        model.steps.append(Step(f"acc{s} += {v} if {v} == {v} else 0.0", f"slot {s}"))
    elif reducer == "count":
        model.accumulators.append(s)
        model.steps.append(Step(f"acc{s} += 1.0 if {v} == {v} else 0.0", f"slot {s}"))
    elif reducer == "first":
        model.steps.append(Step(f"if {v} == {v} and {row} != {row}:\n            {row} = {v}", f"slot {s}"))
    elif reducer == "last":
        model.steps.append(Step(f"if {v} == {v}:\n            {row} = {v}", f"slot {s}"))
    elif reducer == "min":
        model.steps.append(Step(f"if {v} == {v} and not ({row} <= {v}):\n            {row} = {v}", f"slot {s}"))
    elif reducer == "max":
        model.steps.append(Step(f"if {v} == {v} and not ({row} >= {v}):\n            {row} = {v}", f"slot {s}"))
    elif reducer == "mean":
        model.state.append(f"sum{s} = np.zeros(n_bars)")
        model.state.append(f"cnt{s} = np.zeros(n_bars)")
        model.steps.append(
            Step(f"if {v} == {v}:\n            sum{s}[b] += {v}\n            cnt{s}[b] += 1.0", f"slot {s}")
        )
        model.final.append(
            f"for j in range(n_bars):\n        if cnt{s}[j] > 0.0:\n            out[{s}, j] = sum{s}[j] / cnt{s}[j]"
        )
    elif reducer == "std":
        model.state += [f"cnt{s} = np.zeros(n_bars)", f"avg{s} = np.zeros(n_bars)", f"m2_{s} = np.zeros(n_bars)"]
        model.steps.append(
            Step(
                f"if {v} == {v}:  # Welford update\n"
                f"            cnt{s}[b] += 1.0\n"
                f"            delta{s} = {v} - avg{s}[b]\n"
                f"            avg{s}[b] += delta{s} / cnt{s}[b]\n"
                f"            m2_{s}[b] += delta{s} * ({v} - avg{s}[b])",
                f"slot {s}",
            )
        )
        model.final.append(
            f"for j in range(n_bars):\n        if cnt{s}[j] > 1.0:\n"
            f"            out[{s}, j] = np.sqrt(m2_{s}[j] / (cnt{s}[j] - 1.0))"
        )
    elif reducer == "wmean":
        w = args[1]
        model.state += [f"num{s} = np.zeros(n_bars)", f"den{s} = np.zeros(n_bars)"]
        model.steps.append(
            Step(
                f"if {v} == {v} and {w} == {w}:\n            num{s}[b] += {v} * {w}\n            den{s}[b] += {w}",
                f"slot {s}",
            )
        )
        model.final.append(
            f"for j in range(n_bars):\n        if den{s}[j] != 0.0:\n            out[{s}, j] = num{s}[j] / den{s}[j]"
        )
    elif reducer == "bipower":
        model.state += [f"prev_abs{s} = 0.0", f"prev_bar{s} = -1"]
        model.steps.append(
            Step(
                f"if {v} == {v}:\n"
                f"            if prev_bar{s} == b:\n"
                f"                {row} += abs({v}) * prev_abs{s}\n"
                f"            prev_abs{s} = abs({v})\n"
                f"            prev_bar{s} = b",
                f"slot {s}",
            )
        )
    else:
        raise NotImplementedError(f"no kernel code for reducer {reducer}")


def kernel_model(kernel: TickKernel) -> KernelModel:
    model = KernelModel()
    emitter = _Emitter(kernel, model)
    for slot in kernel.slots:
        args = [emitter.value(a) for a in slot.args]
        _reduce(slot.index, slot.reducer, args, model)
    return model


def _template() -> jinja2.Template:
    text = resources.files("fspec.compiler").joinpath("templates/tick_kernel.py.j2").read_text(encoding="utf-8")
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, trim_blocks=True, keep_trailing_newline=True, autoescape=False
    )
    return env.from_string(text)


def render_kernel(kernel: TickKernel) -> str:
    return _template().render(
        k=kernel, model=kernel_model(kernel), version=__version__, slot_texts=repr([s.text for s in kernel.slots])
    )
