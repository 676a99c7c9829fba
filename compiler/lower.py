"""Ordered graph -> plan: one fused tick kernel per source, and a bar tree per feature instance.

Every reducer over tick data becomes a *slot* of its source's kernel; equal reducers (same operator on the
same tick expression) share one slot across features and instruments. Bar trees then read slots through
``SlotRef`` nodes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from fspec.compiler import ir
from fspec.compiler.dag import Graph
from fspec.compiler.formula import Node, transform
from fspec.compiler.model import Project
from fspec.compiler.operators import REGISTRY, Window
from fspec.compiler.unparse import resolved_source


@dataclass(frozen=True)
class Slot:
    index: int
    reducer: str
    args: tuple[Node, ...]  # tick expressions with instruments stripped

    @property
    def text(self) -> str:
        return resolved_source(ir.Apply(self.reducer, self.args, (), ir.BAR))


@dataclass(frozen=True)
class TickKernel:
    source: str
    module: str  # file stem under build/kernels, content-addressed
    columns: tuple[str, ...]
    params: tuple[str, ...]
    slots: tuple[Slot, ...]


@dataclass(frozen=True)
class PlannedFeature:
    name: str
    instrument: str | None
    tree: Node  # bar tree with SlotRefs
    formula: str
    resolved: str
    description: str
    window: Window
    publish: bool
    is_target: bool
    deps: tuple[tuple[str, str | None], ...]
    sources: tuple[str, ...]
    file: str
    line: int
    order: int  # position in the spec files: the output column order
    intervals: tuple[int, ...] | None
    clock: str


@dataclass(frozen=True)
class Plan:
    kernels: tuple[TickKernel, ...]
    features: tuple[PlannedFeature, ...]


def _slot_key(node: ir.Apply, project: Project) -> tuple[str, str, tuple[Node, ...]]:
    source = next(n.source for n in node.walk() if isinstance(n, ir.Column))
    own = _instrument_of(node)

    def freeze(n: Node) -> Node:
        # The kernel receives the parameters of the instrument whose ticks it reads; another instrument's
        # parameter inside the tick expression is a constant of this plan.
        if isinstance(n, ir.ParamRef) and n.instrument not in (None, own):
            return ir.Const(dict(project.instruments[n.instrument].params)[n.name])
        return n

    return source, node.op, tuple(ir.strip_instrument(transform(a, freeze)) for a in node.args)


def _instrument_of(node: ir.Apply) -> str:
    return next(n.instrument for n in node.walk() if isinstance(n, ir.Column))


def plan(project: Project, graph: Graph) -> Plan:
    slots: dict[str, dict[tuple[str, tuple[Node, ...]], int]] = {}

    def lower_node(node: Node) -> Node:
        if isinstance(node, ir.Apply) and REGISTRY[node.op].kind == "reducer":
            source, reducer, args = _slot_key(node, project)
            table = slots.setdefault(source, {})
            index = table.setdefault((reducer, args), len(table))
            return ir.SlotRef(source, index, _instrument_of(node))
        return node

    spec_order = {spec.name: i for i, spec in enumerate(project.features)}
    features = []
    for inst in graph.order:
        tree = transform(inst.tree, lower_node)
        sources = sorted({n.source for n in inst.tree.walk() if isinstance(n, ir.Column)})
        features.append(
            PlannedFeature(
                name=inst.spec.name,
                instrument=inst.instrument,
                tree=tree,
                formula=inst.spec.formula.strip(),
                resolved=resolved_source(inst.tree),
                description=inst.spec.description,
                window=graph.windows[inst.key],
                publish=inst.spec.publish,
                is_target=inst.spec.is_target,
                deps=tuple(inst.deps()),
                sources=tuple(sources),
                file=inst.spec.file,
                line=inst.spec.name_pos.line,
                order=spec_order[inst.spec.name],
                intervals=inst.spec.intervals,
                clock=inst.spec.clock,
            )
        )
    kernels = []
    for source in sorted(slots):
        table = slots[source]
        slot_list = tuple(Slot(i, reducer, args) for (reducer, args), i in sorted(table.items(), key=lambda kv: kv[1]))
        nodes = [n for s in slot_list for a in s.args for n in a.walk()]
        columns = tuple(sorted({n.column for n in nodes if isinstance(n, ir.Column)}))
        params = tuple(sorted({n.name for n in nodes if isinstance(n, ir.ParamRef)}))
        digest = hashlib.sha256(json.dumps([s.text for s in slot_list] + list(columns) + list(params)).encode())
        kernels.append(TickKernel(source, f"{source}_{digest.hexdigest()[:12]}", columns, params, slot_list))
    return Plan(tuple(kernels), tuple(features))
