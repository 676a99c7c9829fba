"""Features of event grids: their specs -> resolved event trees -> a plan of event kernels and trees.

An event grid (``grids:``) has one output row per event; each event reads the market data of its own instrument
strictly before its cut ``t' = t - latency``. A formula on it is elementwise operators over event values:

* ``asof(x, ago=D)`` / ``age(x, ago=D)``: the last row with ``ts < t' - D`` where the tick expression ``x`` is not
  NaN (its value; seconds from it to ``t``);
* a reducer over a window in time, ``sum(x, window=W, ago=D)``: the rows with ``t' - D - W <= ts < t' - D``;
* the events' own columns (``fills.size``), other features of the grid, constants and parameters.

Resolving reuses the bar resolver for the tick expressions inside (names, columns, parameters and their errors);
the event level is resolved here. Planning turns each read into a slot of its source's event kernel (equal ones
shared across features) and each tree into one over those slots, which the runtime evaluates like a bar tree
(one row, one "bar" per event). Each stage is a pure function of the one before.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from graphlib import CycleError, TopologicalSorter

from fspec.compiler import ir
from fspec.compiler.codegen import is_stateless
from fspec.compiler.formula import (
    Call,
    Duration,
    FormulaSyntaxError,
    Name,
    Node,
    Num,
    Text,
    diagnostic_at,
    parse,
    to_source,
    transform,
)
from fspec.compiler.model import FeatureSpec, GridSpec, Project
from fspec.compiler.resolve import ResolveContext, Unavailable, formula_position, resolve_node
from fspec.compiler.unparse import resolved_source, to_formula
from fspec.errors import Diagnostic, Position
from fspec.grain import Grain, Time
from fspec.operators import CONSTANTS, ELEMENTWISE, EVENT, REDUCER, REGISTRY

EVENT_GRAIN = Grain(Time.EVENT)
NS = 1_000_000_000
MAX_LOOKBACK_NS = 24 * 3600 * NS  # the runtime reads the event's day and the day before


@dataclass(frozen=True)
class EventColumn(Node):
    """A column of the events themselves (``fills.size``): the event's own value."""

    source: str
    column: str
    grain: Grain = EVENT_GRAIN


@dataclass(frozen=True)
class EventRead(Node):
    """One read of a source at every event: ``op`` over ``args`` (tick expressions) in a window in time before
    the cut (``window_ns``, moved back by ``ago_ns``), or the last row before it (asof, age: no window), or over
    the event's whole bucket (``bucket_ns``: events after it included, so targets only). The rows are those of
    the event's instrument, or with ``by`` those whose column ``by`` holds the event's value (its own events)."""

    op: str
    args: tuple[Node, ...]
    window_ns: int = 0
    ago_ns: int = 0
    bucket_ns: int = 0
    by: str = ""
    grain: Grain = EVENT_GRAIN

    def children(self) -> tuple[Node, ...]:
        return self.args

    def with_children(self, children: tuple[Node, ...]) -> Node:
        return replace(self, args=tuple(children))

    @property
    def reach_ns(self) -> int:
        """How far before the cut its rows may lie."""
        return self.bucket_ns or self.window_ns + self.ago_ns


@dataclass(frozen=True)
class EventSlot:
    """One read of a market source at every event: ``op`` (a reducer over ``[t' - ago - window, t' - ago)``, or
    asof / age: the last row before ``t' - ago``) of tick expressions ``args`` (instruments stripped)."""

    index: int
    op: str
    args: tuple[Node, ...]
    window_ns: int  # 0 for asof and age: every row before the cut
    ago_ns: int
    users: tuple[str, ...] = ()
    bucket_ns: int = 0
    by: str = ""

    @property
    def text(self) -> str:
        return read_text(self.op, self.args, self.window_ns, self.ago_ns, self.bucket_ns, self.by)


def read_text(op: str, args: tuple[Node, ...], window: int, ago: int, bucket: int, by: str) -> str:
    inner = ", ".join(resolved_source(a) for a in args)
    extra = [f"window={duration_text(window)}"] if window and not bucket else []
    extra += [f"bucket={duration_text(bucket)}"] if bucket else []
    extra += [f"ago={duration_text(ago)}"] if ago else []
    extra += [f"by={by}"] if by else []
    return f"{op}({', '.join([inner, *extra])})"


def event_source(node: Node) -> str:
    """The canonical text of a resolved event tree (reads printed as written: window=60s, not nanoseconds)."""
    return to_source(_event_formula(node))


def _event_formula(node: Node) -> Node:
    if isinstance(node, EventRead):
        return Name((read_text(node.op, node.args, node.window_ns, node.ago_ns, node.bucket_ns, node.by),))
    if isinstance(node, EventColumn):
        return Name((node.source, node.column))
    if isinstance(node, ir.Apply):
        return Call(node.op, tuple(_event_formula(a) for a in node.args), ())
    return to_formula(node)


@dataclass(frozen=True)
class EventKernel:
    grid: str
    source: str
    module: str  # file stem under build/kernels, content-addressed
    columns: tuple[str, ...]
    params: tuple[str, ...]
    slots: tuple[EventSlot, ...]
    by: str = ""  # rows grouped by this column of the events ('': by the event's instrument)


@dataclass(frozen=True)
class PlannedEventFeature:
    spec: FeatureSpec
    tree: Node  # over SlotRefs (source '' for the events' own columns) and FeatureRefs of the grid
    resolved: str
    deps: tuple[str, ...]
    sources: tuple[str, ...]
    lookback_ns: int
    order: int


@dataclass(frozen=True)
class GridPlan:
    grid: GridSpec
    event_columns: tuple[str, ...]
    kernels: tuple[EventKernel, ...]
    features: tuple[PlannedEventFeature, ...]  # in dependency order
    by_at: tuple[tuple[str, Position], ...] = ()  # the events' columns by= reads, and where (validate --data)


def duration_text(ns: int) -> str:
    """A duration in nanoseconds as a spec writes it, in its largest whole unit: 30s, 250ms, 1h."""
    for unit, size in (("h", 3600 * NS), ("m", 60 * NS), ("s", NS), ("ms", 1_000_000)):
        if ns >= size and ns % size == 0:
            return f"{ns // size}{unit}"
    return f"{ns}ns"


# ---- resolve --------------------------------------------------------------------------------------------------
@dataclass
class _Event:
    """What resolving one event feature needs besides the bar resolver's context."""

    ctx: ResolveContext
    grid: GridSpec
    features: dict[str, FeatureSpec]  # the grid's features by name
    by_at: list[tuple[str, Position]] = field(default_factory=list)  # the by= columns read, and where

    def error(self, node: Node, message: str, hint: str = "", code: str = "formula") -> None:
        self.ctx.error(node.span, message, hint, code)


def _stand_in(project: Project, grid: GridSpec) -> str:
    """The instrument whose names the grid's formulas are resolved against: the universe's stand-in, or the first
    listed instrument (every listed instrument runs the same kernels)."""
    if grid.universe:
        return grid.universe
    return next(k for k, i in project.instruments.items() if i.universe is None)


def _invalid() -> Node:
    return ir.Const(float("nan"), grain=ir.INVALID)


def _seconds(ev: _Event, node: Node, op: str, param: str) -> int | None:
    """A window or ago given in time (``60s``; a bare number is seconds) in nanoseconds."""
    if isinstance(node, Duration):
        return round(node.seconds * NS)
    if isinstance(node, Num):
        return round(node.value * NS)
    bindings = dict(ev.ctx.spec.bindings)
    if isinstance(node, Name) and node.dotted in bindings:  # a family's variable: a number, in seconds
        return round(bindings[node.dotted] * NS)
    ev.error(node, f"{op}: '{param}' must be a duration", f"e.g. {op}(..., {param}=30s)")
    return None


def _tick_args(ev: _Event, node: Call, args: tuple[Node, ...]) -> list[Node] | None:
    """The tick expressions a read reduces, resolved by the bar resolver: one source's rows, no tick state."""
    resolved = []
    for arg in args:
        try:
            value = resolve_node(ev.ctx, arg)
        except Unavailable as exc:
            ev.error(arg, f"{node.op}(): {exc}", "the grid's instruments must all have the sources it reads")
            return None
        if value.grain == ir.INVALID:
            return None
        resolved.append(value)
    grains = {a.grain.rows for a in resolved if a.grain.is_tick}
    if not grains:
        ev.error(node, f"{node.op}() needs market data, e.g. {node.op}(trades.price)", "", "grain")
        return None
    if len(grains) > 1:
        ev.error(node, f"{node.op}() needs its inputs from one source's rows", "read each source on its own", "grain")
        return None
    source = next(n.source for a in resolved for n in a.walk() if isinstance(n, ir.Column))
    if not ev.grid.universe and source != ev.grid.events:  # listed instruments: each may have other sources
        for key, inst in ev.ctx.project.instruments.items():
            if inst.universe is not None or key == ev.ctx.instrument:
                continue
            other = replace(ev.ctx, instrument=key, problems=[])
            try:
                for arg in args:
                    resolve_node(other, arg)
            except Unavailable as exc:
                ev.error(node, f"{node.op}(): {exc}", "the grid's instruments must all have the sources it reads")
                return None
            if other.problems:  # e.g. a parameter the first instrument has and this one has not
                first = other.problems[0]
                ev.error(node, f"{node.op}() for instrument '{key}': {first.message}", first.hint)
                return None
    for a in resolved:
        if not is_stateless(a):
            ev.error(
                node,
                f"{node.op}(): a tick-level state operator inside an event window is not supported yet",
                "use a stateless expression of the rows (e.g. trades.price * trades.size)",
                "grain",
            )
            return None
    return resolved


def _options(ev: _Event, node: Call, allowed: tuple[str, ...]) -> tuple[dict[str, int], str] | None:
    """A read's durations (in ns) and its ``by`` column."""
    found: dict[str, int] = {}
    by = ""
    for key, value in node.kwargs:
        if key not in allowed:
            ev.error(
                value,
                f"{node.op}() on an event grid has no parameter '{key}'",
                f"on an event grid: {node.op}(x, {', '.join(f'{k}=...' for k in allowed)})",
            )
            return None
        if key == "by":
            if not isinstance(value, Name) or len(value.parts) != 1:
                ev.error(value, f"{node.op}: 'by' names a column of the events", f"e.g. {node.op}(..., by=market_slug)")
                return None
            by = value.parts[0]
            source = ev.ctx.project.sources[ev.grid.events]
            if any(c.name == by and c.expr is not None for c in source.columns):
                ev.error(
                    value,
                    f"{node.op}: by={by}: '{by}' is a computed column; by= groups by a column of the events' file",
                    "name a column of the file (its values are the groups), or leave by= out: the event's instrument",
                )
                return None
            ev.by_at.append((by, diagnostic_at(formula_position(ev.ctx.spec), value.span, "").position))
            continue
        ns = _seconds(ev, value, node.op, key)
        if ns is None:
            return None
        if ns < 0 or (key in ("window", "bucket") and ns == 0):
            ev.error(value, f"{node.op}: '{key}' must be {'at least 0' if key == 'ago' else 'positive'}")
            return None
        found[key] = ns
    return found, by


def _read(ev: _Event, node: Call) -> Node:
    """asof / age of a tick expression, or a reducer over a window in time (or, in a target, a bucket)."""
    op = REGISTRY[node.op]
    expr_params = op.expr_params
    if len(node.args) != len(expr_params):
        ev.error(node, f"{node.op} takes {len(expr_params)} expression(s), got {len(node.args)}", op.signature)
        return _invalid()
    parsed = _options(ev, node, ("ago", "by") if op.kind == EVENT else ("window", "bucket", "ago", "by"))
    if parsed is None:
        return _invalid()
    options, by = parsed
    window, bucket, ago = options.get("window", 0), options.get("bucket", 0), options.get("ago", 0)
    if op.kind != EVENT and not window and not bucket:
        ev.error(
            node,
            f"{node.op}() on an event grid needs a window in time",
            f"e.g. {node.op}(..., window=60s): the rows of the 60 s before the event",
        )
        return _invalid()
    if window and bucket:
        ev.error(node, f"{node.op}() has both a window and a bucket", "keep window= (the rows before the event)")
        return _invalid()
    if bucket and ago:
        ev.error(node, f"{node.op}(): a bucket has no ago", "a bucket is the one holding the event's own time")
        return _invalid()
    if bucket and not ev.ctx.spec.is_target:
        ev.error(
            node,
            f"{node.op}(..., bucket={duration_text(bucket)}) reads the event's whole {duration_text(bucket)} bucket, "
            "events and rows after it included: lookahead",
            f"use window={duration_text(bucket)} for the rows strictly before the event, or declare it as a target "
            "(targets: with a target_ name)",
            "lookahead",
        )
        return _invalid()
    latency = 0 if bucket else ev.grid.latency_ns  # a window and an ago are counted back from the cut
    if latency + window + ago > MAX_LOOKBACK_NS or bucket > MAX_LOOKBACK_NS:
        with_latency = f" (the grid's latency {duration_text(latency)} included)" if latency else ""
        ev.error(
            node,
            f"{node.op}(): it reaches {duration_text(max(latency + window + ago, bucket))} before the event"
            f"{with_latency}",
            "an event reads its day and the day before: at most 24h",
        )
        return _invalid()
    args = _tick_args(ev, node, node.args)
    if args is None:
        return _invalid()
    params = [n for a in args for n in a.walk() if isinstance(n, ir.ParamRef)]
    bar = next((p.name for p in params if p.name in CONSTANTS and p.name != "pi"), None)
    if bar is not None:  # its value on bars depends on the bar width, which an event grid has not
        ev.error(node, f"'{bar}' is a constant of bar grids", "an event grid has no bars")
        return _invalid()
    mine = next((p.name for p in params if p.instrument is not None), None)
    if by and mine is not None:
        ev.error(
            node,
            f"{node.op}(..., by={by}): '{mine}' is a parameter of each instrument, and the rows of one {by} may be "
            "of several instruments",
            f"apply it outside the read, to the event's own instrument's value: {node.op}(...) * {mine}",
        )
        return _invalid()
    source = next(n.source for a in args for n in a.walk() if isinstance(n, ir.Column))
    if by and source != ev.grid.events:
        ev.error(
            node,
            f"{node.op}(): by={by} groups the grid's own events ('{ev.grid.events}'), not '{source}'",
            f"market rows are the event's instrument's: drop by=, or read {ev.grid.events}",
        )
        return _invalid()
    return EventRead(node.op, tuple(args), window, ago, bucket, by, span=node.span)


def _name(ev: _Event, node: Name) -> Node:
    project, ctx = ev.ctx.project, ev.ctx
    parts = node.parts
    head = parts[0]
    if len(parts) == 1:
        if head in ev.features:
            if head == ctx.spec.name:
                ev.error(node, f"feature '{head}' refers to itself", "", "cycle")
                return _invalid()
            if ev.features[head].is_target and not ctx.spec.is_target:
                message = f"feature '{ctx.spec.name}' reads target '{head}': targets see the future"
                ev.error(node, message, "features may not depend on targets", "lookahead")
            return ir.FeatureRef(head, None, grain=EVENT_GRAIN)
        if any(f.name == head for f in project.features):
            ev.error(
                node,
                f"'{head}' is a feature of bars: an event grid does not read bar features",
                "read the market data at the event: asof(...) or a reducer with window=",
            )
            return _invalid()
        grid = next((f.grid for f in project.event_features if f.name == head), None)
        if grid is not None:
            ev.error(
                node,
                f"'{head}' is a feature of grid '{grid}': a grid's formulas read only its own features",
                f"give '{ctx.spec.name}' grid: {grid}, or read the market data here",
            )
            return _invalid()
        if head in CONSTANTS and head != "pi":
            ev.error(node, f"'{head}' is a constant of bar grids", "an event grid has no bars")
            return _invalid()
        value = resolve_node(ctx, node)
        if isinstance(value, ir.ParamRef) and value.instrument is not None and not ev.grid.universe:
            lacking = [k for k, i in project.instruments.items() if i.universe is None and head not in dict(i.params)]
            if lacking:  # resolved against the first listed instrument: the others read it too
                ev.error(
                    node,
                    f"parameter '{head}' is not given for instrument '{lacking[0]}', whose events read it too",
                    "give it to every listed instrument (params:)",
                )
                return _invalid()
        return value
    if head == ev.grid.events and len(parts) == 2:
        columns = [c.name for c in project.sources[head].columns]
        if parts[1] not in columns:
            ev.error(node, f"source '{head}' has no column '{parts[1]}'", f"its columns: {', '.join(columns)}")
            return _invalid()
        return EventColumn(head, parts[1])
    if head in project.sources and len(parts) == 2:
        ev.error(
            node,
            f"'{node.dotted}' at an event needs a read of its rows before the event",
            f"asof({node.dotted}) for the last value, or a reducer over a window, e.g. sum({node.dotted}, window=60s)",
            "grain",
        )
        return _invalid()
    ev.error(node, f"unknown name '{node.dotted}' on event grid '{ev.grid.name}'", "write source.column or a feature")
    return _invalid()


def _value(ev: _Event, node: Node) -> Node:
    if isinstance(node, Num):
        return ir.Const(node.value)
    if isinstance(node, Duration):
        ev.error(node, "a duration is a window or an age", "e.g. sum(x, window=60s) or asof(x, ago=30s)")
        return _invalid()
    if isinstance(node, Text):
        ev.error(node, "text is compared with text columns in filters only", "filter the source instead")
        return _invalid()
    if isinstance(node, Name):
        return _name(ev, node)
    assert isinstance(node, Call)
    op = REGISTRY.get(node.op)
    if op is not None and op.kind in (EVENT, REDUCER):
        return _read(ev, node)
    if op is not None and op.kind == ELEMENTWISE:
        if node.kwargs or any(p.kind != "expr" for p in op.params) or len(node.args) != len(op.params):
            ev.error(node, f"{node.op} takes {len(op.params)} argument(s) here", f"signature: {op.signature}")
            return _invalid()
        args = tuple(_value(ev, a) for a in node.args)
        if any(a.grain == ir.INVALID for a in args):
            return _invalid()
        grain = EVENT_GRAIN if any(a.grain != ir.SCALAR for a in args) else ir.SCALAR
        return ir.Apply(node.op, args, (), grain)
    if op is not None:
        ev.error(
            node,
            f"{node.op}() works on {'bars' if op.kind != 'tick' else 'ticks'}; an event grid has no bars",
            "on an event grid: asof(x), age(x), or a reducer with a window in time, e.g. sum(x, window=60s)",
            "grain",
        )
        return _invalid()
    return resolve_node(ev.ctx, node)  # the bar resolver's message for an unknown or forbidden name


def _resolve_feature(
    project: Project, spec: FeatureSpec, grid: GridSpec, by_at: list[tuple[str, Position]]
) -> tuple[Node, list[Diagnostic]]:
    specs = {f.name: f for f in project.features}
    stand_in = _stand_in(project, grid)
    # the events' own rows are read like a source of the event's instrument (grouped by it, or by by=)
    own = project.instruments[stand_in]
    reads = replace(own, sources=(*own.sources, grid.events)) if grid.events not in own.sources else own
    ctx = ResolveContext(replace(project, instruments={**project.instruments, stand_in: reads}), spec, stand_in, specs)
    features = {f.name: f for f in project.event_features if f.grid == grid.name}
    ev = _Event(ctx, grid, features, by_at)
    try:
        tree = parse(spec.formula)
    except FormulaSyntaxError as exc:
        return _invalid(), [diagnostic_at(formula_position(spec), exc.span, exc.message, exc.hint, "syntax")]
    value = _value(ev, tree)
    if not ctx.problems and value.grain != EVENT_GRAIN:
        ev.error(tree, f"'{spec.name}' reads nothing of the events", "e.g. asof(trades.price)", "grain")
    return value, ctx.problems


# ---- plan -----------------------------------------------------------------------------------------------------
def _order(resolved: dict[str, Node], specs: dict[str, FeatureSpec]) -> tuple[list[str], list[Diagnostic]]:
    graph = {name: {n.feature for n in tree.walk() if isinstance(n, ir.FeatureRef)} for name, tree in resolved.items()}
    try:
        return list(TopologicalSorter(graph).static_order()), []
    except CycleError as exc:
        names = list(dict.fromkeys(exc.args[1]))
        spec = specs[names[0]]
        message = f"event features read each other in a cycle: {' -> '.join(names)}"
        return [], [Diagnostic(spec.name_pos, message, "break the cycle", "cycle")]


def _lookback(tree: Node) -> int:
    return max((n.reach_ns for n in tree.walk() if isinstance(n, EventRead)), default=0)


def slot_source(source: str, by: str) -> str:
    """The name slots of an event kernel go by: its source, and ``@by`` where its rows are grouped by a column."""
    return f"{source}@{by}" if by else source


def _well_formed(project: Project, grid: GridSpec) -> bool:
    """Whether the grid's events source and instruments exist (the model reported it where they do not)."""
    if grid.events not in project.sources:
        return False
    if grid.universe:
        return grid.universe in project.instruments and project.instruments[grid.universe].universe is not None
    return any(i.universe is None for i in project.instruments.values())


def plan_grid(project: Project, grid: GridSpec) -> tuple[GridPlan | None, list[Diagnostic]]:
    if not _well_formed(project, grid):
        return None, []
    specs = [f for f in project.event_features if f.grid == grid.name]
    problems: list[Diagnostic] = []
    resolved: dict[str, Node] = {}
    by_at: list[tuple[str, Position]] = []
    for spec in specs:
        tree, found = _resolve_feature(project, spec, grid, by_at)
        problems += found
        resolved[spec.name] = tree
    for spec in specs:
        if spec.publish and spec.name + "_" + grid.suffix in grid.keep:  # a helper writes no column
            problems.append(
                Diagnostic(spec.name_pos, f"column '{spec.name}_{grid.suffix}' is also a kept column of the events")
            )
    if problems:
        return None, problems
    by_name = {s.name: s for s in specs}
    order, cycle = _order(resolved, by_name)
    if cycle:
        return None, cycle
    event_columns: list[str] = []
    slots: dict[tuple[str, str], dict[tuple[str, tuple[Node, ...], int, int, int], int]] = {}
    users: dict[tuple[str, str, int], list[str]] = {}
    planned = []
    for name in [n for n in order if n in by_name]:
        spec = by_name[name]
        sources: list[str] = []

        def to_slot(node: Node, spec: FeatureSpec = spec, sources: list[str] = sources) -> Node:
            if isinstance(node, EventColumn):
                if node.column not in event_columns:
                    event_columns.append(node.column)
                return ir.SlotRef("", event_columns.index(node.column), "", grain=EVENT_GRAIN)
            if isinstance(node, EventRead):
                args = tuple(ir.strip_instrument(a) for a in node.args)
                source = next(n.source for a in args for n in a.walk() if isinstance(n, ir.Column))
                key = (node.op, args, node.window_ns, node.ago_ns, node.bucket_ns)
                table = slots.setdefault((source, node.by), {})
                index = table.setdefault(key, len(table))
                users.setdefault((source, node.by, index), []).append(spec.name)
                if source not in sources:
                    sources.append(source)
                return ir.SlotRef(slot_source(source, node.by), index, "", grain=EVENT_GRAIN)
            return node

        relative = ir.relative(resolved[name], _stand_in(project, grid))
        text = event_source(relative)
        tree = transform(relative, to_slot)
        deps = tuple(dict.fromkeys(n.feature for n in tree.walk() if isinstance(n, ir.FeatureRef)))
        planned.append(
            PlannedEventFeature(spec, tree, text, deps, tuple(sources), _lookback(relative), specs.index(spec))
        )
    kernels = []
    for (source, by), table in slots.items():
        built = tuple(
            EventSlot(index, op, args, window, ago, tuple(dict.fromkeys(users[(source, by, index)])), bucket, by)
            for (op, args, window, ago, bucket), index in table.items()
        )
        columns = tuple(sorted({n.column for s in built for a in s.args for n in a.walk() if isinstance(n, ir.Column)}))
        params = tuple(sorted({n.name for s in built for a in s.args for n in a.walk() if isinstance(n, ir.ParamRef)}))
        digest = hashlib.sha256(
            json.dumps([grid.name, source, by, [s.text for s in built], columns, params]).encode()
        ).hexdigest()[:12]
        module = f"events_{grid.name}_{source}{'_by_' + by if by else ''}_{digest}"
        kernels.append(EventKernel(grid.name, source, module, columns, params, built, by))
    return GridPlan(grid, tuple(event_columns), tuple(kernels), tuple(planned), tuple(by_at)), []


def plan_grids(project: Project) -> tuple[list[GridPlan], list[Diagnostic]]:
    plans, problems = [], []  # names (unique across bars and grids) are checked with the bar features'
    for grid in project.grids.values():
        plan, found = plan_grid(project, grid)
        problems += found
        if plan is not None:
            plans.append(plan)
    return plans, problems
