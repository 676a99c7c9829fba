"""Ordered graph -> plan: one fused tick kernel per source, and a bar tree per feature instance.

Every reducer over tick data becomes a *slot* of its source's kernel; equal reducers (same operator on the
same tick expression) share one slot across features and instruments. Bar trees then read slots through
``SlotRef`` nodes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from graphlib import CycleError, TopologicalSorter

from fspec.compiler import ir
from fspec.compiler.dag import Graph
from fspec.compiler.formula import Node, transform
from fspec.compiler.model import Project
from fspec.compiler.unparse import resolved_source
from fspec.grain import natural_key
from fspec.manifest import chain_inputs
from fspec.operators import CHAIN, REGISTRY, Window


@dataclass(frozen=True)
class Slot:
    index: int
    reducer: str
    args: tuple[Node, ...]  # tick expressions with instruments stripped
    users: tuple[str, ...] = ()  # the features whose bar trees read it

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
    """One feature compiled once for a group of entities that share its bar tree.

    ``members`` are the instruments it is computed for (empty: a cross-asset feature, one column without a
    suffix). In ``tree``, ``resolved`` and ``deps`` an instrument of '' is each member itself."""

    name: str
    members: tuple[str, ...]
    tree: Node  # bar tree with SlotRefs
    formula: str
    resolved: str  # a template: {instrument} is the member
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
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChainPlan:
    """An option chain source's reducers (slots) over its snapshot at each bar end: (operator, constants)."""

    source: str
    slots: tuple[tuple[str, tuple[tuple[str, float], ...]], ...]

    def slot_text(self, index: int) -> str:
        from fspec.compiler.chain import CHAIN_COLUMN

        op, consts = self.slots[index]
        return resolved_source(ir.Apply(op, (ir.Column(self.source, CHAIN_COLUMN, ""),), consts, ir.BAR))


@dataclass(frozen=True)
class Plan:
    kernels: tuple[TickKernel, ...]
    features: tuple[PlannedFeature, ...]
    chains: tuple[ChainPlan, ...] = ()


def _chain_slot(node: ir.Apply, chains: dict[str, dict[tuple[str, tuple[tuple[str, float], ...]], int]]) -> Node:
    """A chain operator as a slot of its chain source: equal ones (same operator and constants) share it."""
    leaf = node.args[0]
    assert isinstance(leaf, ir.Column)
    table = chains.setdefault(leaf.source, {})
    return ir.SlotRef(leaf.source, table.setdefault((node.op, node.consts), len(table)), leaf.instrument)


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


SELF = "\x00"  # stands for the member while a resolved text is made into a template


def _template(tree: Node) -> str:
    """The resolved formula text with {instrument} where it names the member ('' in a member-relative tree;
    ``str.format`` fills it in)."""

    def fn(n: Node) -> Node:
        if isinstance(n, ir.Column | ir.FeatureRef | ir.ParamRef) and n.instrument == "":
            return replace(n, instrument=SELF)
        return n

    text = resolved_source(transform(tree, fn)).replace("{", "{{").replace("}", "}}")
    return text.replace(SELF, "{instrument}")


def _in_dependency_order(features: list[PlannedFeature]) -> tuple[PlannedFeature, ...]:
    """Groups ordered so that every feature comes after those it reads, for every member."""
    provider: dict[tuple[str, str | None], int] = {}
    for i, f in enumerate(features):
        for member in f.members or (None,):
            provider[(f.name, member)] = i
    sorter: TopologicalSorter[int] = TopologicalSorter()
    for i, f in enumerate(features):
        needs = set()
        for name, dep in f.deps:
            for member in [dep] if dep != "" else list(f.members):
                if (name, member) in provider:
                    needs.add(provider[(name, member)])
        sorter.add(i, *needs)
    return tuple(features[i] for i in sorter.static_order())


def _instrument_of(node: ir.Apply) -> str:
    return next(n.instrument for n in node.walk() if isinstance(n, ir.Column))


def _sources_read(project: Project, instrument: str | None, tree: Node) -> tuple[str, ...]:
    """The sources a tree reads, sorted: its leaves' and what their values are computed from (a chain of trades'
    quotes, a carry chain's underlying: :func:`fspec.manifest.chain_inputs`)."""
    found = set()
    for node in tree.walk():
        if isinstance(node, ir.Column):
            found.add(node.source)
            owner = project.instruments.get(node.instrument or instrument or "")
            found.update(chain_inputs(project.sources, owner.concrete(node.source) if owner else node.source))
    return tuple(sorted(found))


def plan(project: Project, graph: Graph) -> Plan:
    slots: dict[str, dict[tuple[str, tuple[Node, ...]], int]] = {}
    chains: dict[str, dict[tuple[str, tuple[tuple[str, float], ...]], int]] = {}

    def lower_node(node: Node) -> Node:
        if isinstance(node, ir.Apply) and REGISTRY[node.op].kind == CHAIN:
            return _chain_slot(node, chains)
        if isinstance(node, ir.Apply) and REGISTRY[node.op].kind == "reducer":
            source, reducer, args = _slot_key(node, project)
            table = slots.setdefault(source, {})
            index = table.setdefault((reducer, args), len(table))
            return ir.SlotRef(source, index, _instrument_of(node))
        return node

    spec_order = {spec.name: i for i, spec in enumerate(project.features)}
    # Members share one compiled feature when everything but the member itself is the same.
    groups: dict[tuple[str, ...], tuple[PlannedFeature, list[str]]] = {}
    in_order: list[tuple[tuple[str, ...], str]] = []  # (group, member) of every instance, in dependency order
    # The members of a class of instruments share one member-relative tree: it is lowered once.
    lowered: dict[int, tuple[Node, tuple[str, ...], str]] = {}
    for inst in graph.order:
        own = inst.instrument or ""
        if id(inst.tree) not in lowered:
            tree = transform(inst.tree, lower_node)
            sources = _sources_read(project, inst.instrument, inst.tree)
            lowered[id(inst.tree)] = (tree, sources, json.dumps(ir.to_json(tree), sort_keys=True))
        tree, sources, tree_key = lowered[id(inst.tree)]
        window = graph.windows[inst.key]
        deps = tuple((name, "" if own and dep == own else dep) for name, dep in inst.relative_deps)
        formula = inst.spec.formula.strip()
        key = (inst.spec.name, tree_key, formula, repr(window), repr(deps))
        if key not in groups:
            planned = PlannedFeature(
                name=inst.spec.name,
                members=(),
                tree=tree,
                formula=formula,
                resolved=_template(inst.tree),
                description=inst.spec.description,
                window=window,
                publish=inst.spec.publish,
                is_target=inst.spec.is_target,
                deps=deps,
                sources=sources,
                file=inst.spec.file,
                line=inst.spec.name_pos.line,
                order=spec_order[inst.spec.name],
                intervals=inst.spec.intervals,
                clock=inst.spec.clock,
                tags=inst.spec.tags,
            )
            groups[key] = (planned, [])
        if own:
            groups[key][1].append(own)
        in_order.append((key, own))
    try:
        features = _in_dependency_order(
            [replace(first, members=tuple(sorted(members, key=natural_key))) for first, members in groups.values()]
        )
    except CycleError:  # members that read each other across features: one feature per member, as resolved
        features = tuple(replace(groups[key][0], members=(own,) if own else ()) for key, own in in_order)
    users: dict[tuple[str, int], set[str]] = {}
    for f in features:
        for n in f.tree.walk():
            if isinstance(n, ir.SlotRef):
                users.setdefault((n.source, n.slot), set()).add(f.name)
    kernels = []
    for source in sorted(slots):
        table = slots[source]
        slot_list = tuple(
            Slot(i, reducer, args, tuple(sorted(users.get((source, i), ()))))
            for (reducer, args), i in sorted(table.items(), key=lambda kv: kv[1])
        )
        nodes = [n for s in slot_list for a in s.args for n in a.walk()]
        columns = tuple(sorted({n.column for n in nodes if isinstance(n, ir.Column)}))
        params = tuple(sorted({n.name for n in nodes if isinstance(n, ir.ParamRef)}))
        digest = hashlib.sha256(json.dumps([s.text for s in slot_list] + list(columns) + list(params)).encode())
        kernels.append(TickKernel(source, f"{source}_{digest.hexdigest()[:12]}", columns, params, slot_list))
    chain_plans = tuple(
        ChainPlan(source, tuple(key for key, _ in sorted(chains[source].items(), key=lambda kv: kv[1])))
        for source in sorted(chains)
    )
    return Plan(tuple(kernels), tuple(features), chain_plans)
