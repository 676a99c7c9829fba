"""Formula trees -> resolved, grain-checked trees for every (feature, instrument) instance.

Binds each name to a source column, a feature, an instrument parameter or a constant; checks operator
signatures and grains; enforces the naming rules. Windows and lookahead are checked in :mod:`dag`, once
the features are in dependency order.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from fspec.compiler import ir
from fspec.compiler.chain import chain_column_error, resolve_chain
from fspec.compiler.formula import (
    INFIX,
    Call,
    Duration,
    FormulaSyntaxError,
    Locator,
    Name,
    Node,
    Num,
    Span,
    Text,
    diagnostic_at,
    parse,
    transform,
)
from fspec.compiler.model import FeatureSpec, Project
from fspec.compiler.unparse import resolved_source
from fspec.errors import Diagnostic, Position
from fspec.manifest import TIME_RESIDUAL
from fspec.naming import column_name
from fspec.operators import (
    BAR,
    BAR_CONSTANTS,
    CHAIN,
    CONSTANTS,
    CROSS,
    ELEMENTWISE,
    EVENT,
    FORBIDDEN,
    REDUCER,
    REGISTRY,
    SHIFT,
    TICK,
    Param,
)


def _invalid() -> Node:
    """Stands for a sub-expression already reported as an error; it silences follow-on grain errors."""
    return ir.Const(float("nan"), grain=ir.INVALID)


def _op_label(op: str) -> str:
    return f"'{INFIX[op][0]}'" if op in INFIX else f"{op}()"


INTERVAL_TOKEN = re.compile(r"^[0-9]+s$")
MAX_WINDOW = 1_000_000  # bars or ticks an operator may look back (lag, rolling windows, vpin buckets)
TARGET_PREFIXES = ("target_", "resp_")


@dataclass(frozen=True)
class Instance:
    """One feature bound to one instrument (``None``: a cross-asset feature with no suffix).

    In ``tree`` an instrument of '' is the instance's own: the members of a class of instruments (same sources,
    same parameter names) share one resolved tree object, and ``relative_deps`` is read from it once."""

    spec: FeatureSpec
    instrument: str | None
    tree: Node
    relative_deps: tuple[tuple[str, str | None], ...]

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.spec.name, self.instrument)

    def deps(self) -> list[tuple[str, str | None]]:
        return [(name, self.instrument if dep == "" else dep) for name, dep in self.relative_deps]


def feature_refs(tree: Node) -> tuple[tuple[str, str | None], ...]:
    """(feature, instrument) of every feature ``tree`` reads, '' for the instance's own instrument."""
    return tuple((n.feature, n.instrument) for n in tree.walk() if isinstance(n, ir.FeatureRef))


class Unavailable(Exception):
    """The instrument lacks a source or a feature this formula needs (drops a defaulted instance)."""


@dataclass
class ResolveContext:
    """What resolving one feature's formula for one instrument (or class of them) needs and collects: the
    project, the feature, the instrument ('' for a class's member, None for a cross-asset feature), every
    feature by name, and the problems found. compiler/events.py resolves event grid features with it too."""

    project: Project
    spec: FeatureSpec
    instrument: str | None
    specs: dict[str, FeatureSpec]
    problems: list[Diagnostic] = field(default_factory=list)
    # instrument parameters read as constants (a window of ``n``): their values shape the tree
    constant_params: set[str] = field(default_factory=set)
    # inside the arguments of a cross-sectional operator of a cross-asset feature: a universe's names
    # (stocks.wap, stocks.weight) stand for all its members there
    across: bool = False

    def error(self, span: Span, message: str, hint: str = "", code: str = "formula") -> None:
        self.problems.append(diagnostic_at(formula_position(self.spec), span, message, hint, code))


def formula_position(spec: FeatureSpec) -> Locator | Position:
    """Where each character of the formula stands in its file."""
    if spec.formula_segments:
        return Locator(spec.file, spec.formula_segments, spec.formula)
    return spec.formula_pos


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


def _known_names(ctx: ResolveContext) -> list[str]:
    names = list(ctx.specs) + list(CONSTANTS) + list(ctx.project.sources) + list(ctx.project.instruments)
    names += list(dict(ctx.project.constants))
    if ctx.instrument:
        names += [p for p, _ in ctx.project.instruments[ctx.instrument].params]
    return names


def _column(ctx: ResolveContext, node: Name, instrument: str, source: str, column: str) -> Node:
    src = ctx.project.sources[source]
    concrete = ctx.project.sources[ctx.project.instruments[instrument].concrete(source)]
    if concrete.contract is not None:  # an option chain: its operators read it (compiler/chain.py)
        return chain_column_error(ctx, node, source)
    if column in src.column_names() and column not in concrete.column_names():
        raise Unavailable(f"source '{concrete.name}' (its '{source}') has no column '{column}'")
    if concrete is not src:
        src = concrete
    if column not in src.column_names():
        ctx.error(
            node.span,
            f"source '{source}' has no column '{column}'",
            _suggest(column, list(src.column_names())) or f"its columns: {', '.join(src.column_names())}",
        )
        return _invalid()
    if source not in ctx.project.instruments[instrument].sources:
        raise Unavailable(f"instrument '{instrument}' has no source '{source}'")
    return ir.Column(source, column, instrument)


def _instrument_member(ctx: ResolveContext, node: Name, instrument: str, member: str) -> Node:
    inst = ctx.project.instruments[instrument]
    params = dict(inst.params)
    if member in params:
        return ir.ParamRef(member, instrument)
    if member in ctx.specs and member not in ctx.project.sources:
        return _feature_ref(ctx, node, member, instrument)
    if ctx.project.is_unchecked(member):
        return _invalid()  # a feature whose spec has schema errors, reported there
    choices = list(params) + list(ctx.specs)
    ctx.error(
        node.span,
        f"instrument '{instrument}' has no parameter or feature '{member}'",
        _suggest(member, choices) or "parameters are set under instruments: {key}: {params: {...}}",
    )
    return _invalid()


def _feature_ref(ctx: ResolveContext, node: Name, name: str, instrument: str | None) -> Node:
    target = ctx.specs[name]
    if target.is_target and not ctx.spec.is_target:
        ctx.error(
            node.span,
            f"feature '{ctx.spec.name}' reads target '{name}': targets see the future",
            "features may not depend on targets; compute the input as a feature instead",
            "lookahead",
        )
    if name == ctx.spec.name and instrument == ctx.instrument:
        ctx.error(node.span, f"feature '{name}' refers to itself", "use lag(x, 1) of another feature", "cycle")
        return _invalid()
    return ir.FeatureRef(name, instrument)


def _name(ctx: ResolveContext, node: Name) -> Node:
    parts = node.parts
    project = ctx.project
    bindings = dict(ctx.spec.bindings)
    head = parts[0]
    if len(parts) == 1:
        if head in bindings:
            return ir.Const(bindings[head])
        if head in ctx.specs:
            if ctx.instrument is None and _is_per_instrument(ctx, head):
                ctx.error(
                    node.span,
                    f"'{head}' is per instrument: a cross-asset formula must say which",
                    f"write e.g. {next(iter(project.instruments))}.{head}",
                )
                return _invalid()
            return _feature_ref(ctx, node, head, ctx.instrument if _is_per_instrument(ctx, head) else None)
        if head in BAR_CONSTANTS:
            return ir.ParamRef(head, None, grain=ir.BAR)  # one value per bar: never inside a tick expression
        if head in CONSTANTS or head in dict(project.constants):
            return ir.ParamRef(head, None)
        if head == "nan":  # the missing value, e.g. where(cond, x, nan)
            return ir.Const(float("nan"), span=node.span)
        if ctx.instrument and head in dict(project.instruments[ctx.instrument].params):
            return ir.ParamRef(head, ctx.instrument)
        if head in project.sources:
            cols = project.sources[head].column_names()
            ctx.error(node.span, f"source '{head}' needs a column", f"e.g. {head}.{cols[0]}")
            return _invalid()
        if project.is_unchecked(head):
            return _invalid()  # a feature whose spec has schema errors, reported there
        grid = next((f.grid for f in project.event_features if f.name == head), None)
        if grid is not None:
            ctx.error(
                node.span,
                f"'{head}' is a feature of event grid '{grid}': one value per event, not per bar",
                "a bar reads the market data itself; the grid's file has the event's values",
            )
            return _invalid()
        hint = f"'{head}' is an operator: call it, e.g. {REGISTRY[head].signature}" if head in REGISTRY else ""
        ctx.error(
            node.span,
            f"unknown name '{head}'",
            hint or _suggest(head, _known_names(ctx)) or "names are features, constants, parameters or source.column",
        )
        return _invalid()
    if head in project.instruments and project.instruments[head].universe is not None and ctx.across:
        if len(parts) == 2:
            return _instrument_member(ctx, node, head, parts[1])  # the feature or parameter of every member
        if len(parts) == 3 and parts[1] in project.sources:
            ctx.error(
                node.span,
                f"'{node.dotted}' reads a universe's ticks across members",
                f"reduce them in a feature of the universe first, e.g. last({parts[1]}.{parts[2]}), and use it here",
            )
            return _invalid()
    if head in project.instruments and project.instruments[head].universe is not None:
        ctx.error(
            node.span,
            f"'{node.dotted}' names universe '{head}', whose members are found in the data: it has no one value",
            f"a feature of every member lists it, instruments: [{head}], and reads its own columns "
            f"(book.wap, not stocks.book.wap); across the members, a cross-section does: cs_mean({head}.wap)",
        )
        return _invalid()
    if head in project.instruments:
        if len(parts) == 2:
            return _instrument_member(ctx, node, head, parts[1])
        if len(parts) == 3 and parts[1] in project.sources:
            return _column(ctx, node, head, parts[1], parts[2])
        ctx.error(node.span, f"cannot resolve '{node.dotted}'", "write instrument.source.column or instrument.feature")
        return _invalid()
    if head in project.sources and len(parts) == 2:
        if ctx.instrument is None:
            ctx.error(
                node.span,
                f"cross-asset formula reads '{node.dotted}' without an instrument",
                f"write e.g. {next(iter(project.instruments))}.{node.dotted}",
            )
            return _invalid()
        return _column(ctx, node, ctx.instrument, head, parts[1])
    choices = list(project.sources) + list(project.instruments)
    ctx.error(
        node.span,
        f"unknown name '{node.dotted}'",
        _suggest(head, choices) or "write source.column, instrument.feature or instrument.source.column",
    )
    return _invalid()


def _is_per_instrument(ctx: ResolveContext, name: str) -> bool:
    return not is_cross_asset(ctx.specs[name], ctx.project)


def is_cross_asset(spec: FeatureSpec, project: Project) -> bool:
    """A formula that names instruments explicitly defines one column with no instrument suffix."""
    try:
        tree = parse(spec.formula)
    except FormulaSyntaxError:
        return False
    return spec.instruments is None and (
        spec.cross_asset is not None
        or any(isinstance(n, Name) and n.parts[0] in project.instruments for n in tree.walk())
    )


def _is_instrument(project: Project, key: str) -> bool:
    """An instrument named in a formula (a universe is not one: it has no single column)."""
    return key in project.instruments and project.instruments[key].universe is None


def _bind_args(ctx: ResolveContext, node: Call) -> dict[str, Node] | None:
    op = REGISTRY[node.op]
    names = [p.name for p in op.all_params]
    bound: dict[str, Node] = {}
    if len(node.args) > len(names):
        ctx.error(
            node.span,
            f"{node.op} takes at most {len(names)} argument(s), got {len(node.args)}",
            f"signature: {op.signature}",
        )
        return None
    for name, arg in zip(names, node.args, strict=False):
        bound[name] = arg
    for i, (key, value) in enumerate(node.kwargs):
        if key not in names:
            span = node.kwarg_spans[i] if i < len(node.kwarg_spans) else value.span
            ctx.error(span, f"{node.op} has no parameter '{key}'", f"signature: {op.signature}")
            return None
        if key in bound:
            ctx.error(value.span, f"{node.op} got '{key}' twice", f"signature: {op.signature}")
            return None
        bound[key] = value
    for p in op.all_params:
        if p.name not in bound and p.default is None:
            ctx.error(node.span, f"{node.op} is missing its argument '{p.name}'", f"signature: {op.signature}")
            return None
    return bound


def _const_value(ctx: ResolveContext, node: Node, op: str, param: str) -> float | None:
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Call) and node.op == "neg" and isinstance(node.args[0], Num):
        return -node.args[0].value
    if isinstance(node, Name) and len(node.parts) == 1 and node.parts[0] in dict(ctx.spec.bindings):
        return dict(ctx.spec.bindings)[node.parts[0]]
    if isinstance(node, Name) and len(node.parts) == 1:
        # instrument parameters and project constants are known when compiling
        known = dict(ctx.project.constants)
        if ctx.instrument:
            # a universe's parameter read from a table is NaN here: unknown until the run
            own = {k: v for k, v in ctx.project.instruments[ctx.instrument].params if not math.isnan(v)}
            known |= own
            if node.parts[0] in own:
                ctx.constant_params.add(node.parts[0])
        if node.parts[0] in known:
            return known[node.parts[0]]
        if ctx.instrument and node.parts[0] in dict(ctx.project.instruments[ctx.instrument].params):
            ctx.error(
                node.span,
                f"{op}: '{param}' must be a constant number, and '{node.parts[0]}' is read from a table per member "
                "when the run finds them",
                f"e.g. {op}(x, {param}=10), a parameter with one value for every member, or a project constant",
            )
            return None
    ctx.error(
        node.span,
        f"{op}: '{param}' must be a constant number",
        f"e.g. {op}(x, {param}=10), an instrument parameter or a project constant",
    )
    return None


def _reducer_hint(args: list[Node]) -> str:
    """Name the reducers to use on the tick-level operand itself."""
    tick = next((a for a in args if getattr(a, "grain", ir.SCALAR).is_tick), None)
    if tick is None:
        return "reduce the tick expression to bars first, e.g. last(...), mean(...) or sum(...)"
    text = resolved_source(ir.strip_instrument(tick))
    return f"reduce the tick side to one value per bar first, e.g. last({text}), mean({text}) or sum({text})"


def _call(ctx: ResolveContext, node: Call) -> Node:
    if node.op in FORBIDDEN:
        message, hint = FORBIDDEN[node.op]
        ctx.error(node.span, message, hint, "lookahead")
        return _invalid()
    if node.op not in REGISTRY and node.op in ctx.specs:
        ctx.error(
            node.span,
            f"'{node.op}' is a feature, not an operator: it cannot be called",
            f"write {node.op} for its value, lag({node.op}, k) for k bars earlier",
        )
        return _invalid()
    if node.op not in REGISTRY:
        ctx.error(
            node.span,
            f"unknown operator '{node.op}'",
            _suggest(node.op, list(REGISTRY)) or "run 'fspec ops' to list operators",
        )
        return _invalid()
    op = REGISTRY[node.op]
    if op.kind == EVENT:
        ctx.error(
            node.span,
            f"{node.op}() reads the last row before an event: it is for features of an event grid",
            "give the feature grid: NAME (see grids: in specs/project.yaml); on bars, last(x) or ffill(last(x))",
            "grain",
        )
        return _invalid()
    bound = _bind_args(ctx, node)
    if bound is None:
        return _invalid()
    if op.kind == CHAIN:  # its arguments are a chain source and an expiry rule, not formulas
        return resolve_chain(ctx, node, bound)
    args: list[Node] = []
    consts: list[tuple[str, float]] = []
    across = ctx.across
    ctx.across = across or (op.kind == CROSS and ctx.instrument is None)
    for p in op.all_params:
        if p.kind == "expr":
            args.append(resolve_node(ctx, bound[p.name]))
            continue
        if p.kind == "flag":
            flag = _flag_value(ctx, node, p, bound.get(p.name))
            if flag is None:
                return _invalid()
            if flag != bool(p.default):  # only a flag that is not its default is recorded
                consts.append((p.name, float(flag)))
            continue
        if isinstance(bound.get(p.name), Duration):
            window = _time_window(ctx, node, p, bound[p.name], args)  # type: ignore[arg-type]
            if window is None:
                return _invalid()
            consts += window
            continue
        value = p.default if p.name not in bound else _const_value(ctx, bound[p.name], node.op, p.name)
        if value is None:
            return _invalid()
        if not math.isfinite(value) or (p.kind == "int" and abs(value) > MAX_WINDOW):
            ctx.error(
                bound[p.name].span,
                f"{node.op}: '{p.name}' must be a finite number of at most {MAX_WINDOW:,}, got {value:g}",
                f"signature: {op.signature}",
            )
            return _invalid()
        if p.kind == "int" and value != int(value):
            ctx.error(
                bound[p.name].span,
                f"{node.op}: '{p.name}' must be a whole number, got {value:g}",
                f"signature: {op.signature}",
            )
            return _invalid()
        if p.minimum is not None and value < p.minimum:
            ctx.error(
                bound[p.name].span,
                f"{node.op}: '{p.name}' must be at least {p.minimum:g}, got {value:g}",
                f"signature: {op.signature}",
            )
            return _invalid()
        if p.maximum is not None and value > p.maximum:
            ctx.error(
                bound[p.name].span,
                f"{node.op}: '{p.name}' must be at most {p.maximum:g}, got {value:g}",
                f"signature: {op.signature}",
            )
            return _invalid()
        consts.append((p.name, float(value)))
    if op.target_only and not ctx.spec.is_target:
        ctx.error(
            node.span,
            f"{node.op}() reads future bars: only targets may use it",
            "declare this under 'targets:' with a target_ name, or use lag() for past bars",
            "lookahead",
        )
    ctx.across = across
    grain = _grain(ctx, node, op.kind, args)
    if grain is None:
        return _invalid()
    return ir.Apply(node.op, tuple(args), tuple(sorted(consts)), grain)


def _flag_value(ctx: ResolveContext, node: Call, p: Param, given: Node | None) -> bool | None:
    if given is None:
        return bool(p.default)
    if isinstance(given, Name) and given.dotted in ("true", "false"):
        return given.dotted == "true"
    ctx.error(
        given.span,
        f"{node.op}: '{p.name}' is true or false",
        f"e.g. {node.op}(..., {p.name}=true) to restart at each session open",
    )
    return None


def _time_window(
    ctx: ResolveContext, node: Call, p: Param, given: Duration, args: list[Node]
) -> list[tuple[str, float]] | None:
    """A window given in time (``rolling_sum(x, 5m)``) as constants: ``n`` in bars of the feature's finest
    interval (what the static window algebra uses; coarser grids need fewer bars) and ``n_seconds``, which the
    runtime divides by each grid's width. Every interval of the feature must divide the window."""
    text = given.source()
    if p.kind != "int" or REGISTRY[node.op].kind not in (BAR, SHIFT):
        ctx.error(
            given.span, f"{node.op}: '{p.name}' cannot be a duration", f"signature: {REGISTRY[node.op].signature}"
        )
        return None
    if any(getattr(a, "grain", ir.SCALAR).is_tick for a in args):
        ctx.error(
            given.span,
            f"{node.op}: a window of {text} needs bars, but this {node.op} runs over ticks",
            f"count the ticks (e.g. {node.op}(x, 3)), or apply it to a bar value",
        )
        return None
    intervals = list(ctx.spec.intervals or ctx.project.intervals)
    millis = round(given.seconds * 1000)
    for interval in intervals:
        if interval == 0:
            ctx.error(given.span, f"{node.op}: a window of {text} on the session grid", "count it in sessions (bars)")
            return None
        if millis % (interval * 1000) or millis == 0:
            ctx.error(
                given.span,
                f"{node.op}: the window {text} is not a whole number of {interval}s bars",
                "give a window that every interval of the feature divides, or count it in bars",
            )
            return None
        bars = millis // (interval * 1000)
        if (p.minimum is not None and bars < p.minimum) or bars > MAX_WINDOW:
            ctx.error(
                given.span,
                f"{node.op}: the window {text} is {bars:,} bar(s) of {interval}s; "
                f"'{p.name}' must be {p.minimum or 1:g} to {MAX_WINDOW:,}",
                f"signature: {REGISTRY[node.op].signature}",
            )
            return None
    return [(p.name, float(millis // (min(intervals) * 1000))), (f"{p.name}_seconds", given.seconds)]


def _grain_order(grain: ir.Grain) -> tuple[str, tuple[str, str]]:
    return (grain.time.value, grain.rows)


def _grain(ctx: ResolveContext, node: Call, kind: str, args: list[Node]) -> ir.Grain | None:
    grains = [getattr(a, "grain", ir.SCALAR) for a in args]
    if ir.INVALID in grains:
        return None
    non_scalar = sorted({g for g in grains if g != ir.SCALAR}, key=_grain_order)
    if kind == ELEMENTWISE:
        if len(non_scalar) <= 1:
            return non_scalar[0] if non_scalar else ir.SCALAR
        ticks = [g for g in non_scalar if g.is_tick]
        if len(ticks) > 1:
            same_instrument = len({g.rows[1] for g in ticks}) == 1
            names = " and ".join(g.label(with_entity=not same_instrument) for g in ticks)
            ctx.error(
                node.span,
                f"{_op_label(node.op)} mixes ticks of {names}, which have different rows",
                _reducer_hint(args) + ", or attach columns with the source's 'asof'",
                "grain",
            )
        else:
            ctx.error(
                node.span,
                f"{_op_label(node.op)} mixes tick-level and bar-level values",
                _reducer_hint(args),
                "grain",
            )
        return None
    grain = grains[0]
    if kind == REDUCER:
        if len(non_scalar) > 1:
            ctx.error(
                node.span,
                f"{node.op}() needs all its inputs from one source's ticks",
                "attach the other source's columns with 'asof', or reduce each source on its own",
                "grain",
            )
            return None
        if grain == ir.BAR:
            ctx.error(
                node.span,
                f"{node.op}() of a bar expression is a statistic over the whole sample",
                f"use rolling_{node.op}(x, n) over past bars"
                if f"rolling_{node.op}" in REGISTRY
                else "reduce tick data only, or use a rolling_* window over past bars",
                "lookahead",
            )
            return None
        if not grain.is_tick:
            ctx.error(
                node.span,
                f"{node.op}() needs tick data, e.g. {node.op}(trades.price)",
                "reducers turn a source's rows into one value per bar; a constant needs no reducer",
                "grain",
            )
            return None
        return ir.BAR
    if node.op == "vpin" and getattr(args[2], "grain", ir.SCALAR) != ir.SCALAR:
        ctx.error(
            node.span,
            "vpin(): 'bucket' must be a number or a parameter, not a column",
            "e.g. vpin(trades.price, trades.size, vpin_bucket, 50)",
            "grain",
        )
        return None
    bucket = _known_value(ctx, args[2]) if node.op == "vpin" else None
    if bucket is not None and not bucket > 0:
        where = (
            f" ('{args[2].name}' of {args[2].instrument or 'the project'})" if isinstance(args[2], ir.ParamRef) else ""
        )
        ctx.error(
            node.args[2].span if len(node.args) > 2 else node.span,
            f"vpin(): 'bucket' must be a positive volume, got {bucket:g}{where}",
            "a bucket is the volume of one VPIN bucket, e.g. 1/50 of a day's volume",
        )
        return None
    if kind == TICK:
        ticks = sorted({g for g in grains if g != ir.SCALAR}, key=_grain_order)
        if len(ticks) > 1 or any(g == ir.BAR for g in grains):
            ctx.error(
                node.span,
                f"{node.op}() needs its inputs from one source's ticks (or constants)",
                "attach the other source's columns with 'asof'; bar values go to bar operators",
                "grain",
            )
            return None
        if not grain.is_tick:
            ctx.error(
                node.span,
                f"{node.op}() works on ticks, e.g. {node.op}(trades.price)",
                "apply it to a source column, then reduce it to bars",
                "grain",
            )
            return None
        return grain
    if kind == SHIFT:
        if grain == ir.SCALAR:
            ctx.error(
                node.span, f"{node.op}() of a constant is meaningless", "apply it to a column or feature", "grain"
            )
            return None
        return grain
    if kind == CROSS and ctx.instrument is None:  # an index: one column over the members of a universe
        if node.op not in BROADCAST_CROSS:
            ctx.error(
                node.span,
                f"{node.op}() gives each member its own value: a feature with one column cannot hold it",
                f"list the universe, instruments: [...], for a column per member; or use {', '.join(BROADCAST_CROSS)}",
                "grain",
            )
            return None
        if not any(_universe_leaf(ctx, a) for a in args):
            ctx.error(
                node.span,
                f"{node.op}() of a cross-asset feature reads a universe's members: name one",
                f"e.g. {node.op}(stocks.wap)",
                "grain",
            )
            return None
        kind = BAR
    elif kind == CROSS:
        stand_in = ctx.project.instruments.get(ctx.instrument or "")
        if stand_in is None or stand_in.universe is None or ctx.spec.instruments != (ctx.instrument,):
            ctx.error(
                node.span,
                f"{node.op}() is over the members of a universe at each bar: the feature must be one universe's",
                "list the universe as its only instrument, e.g. instruments: [stocks]",
                "grain",
            )
            return None
        kind = BAR  # otherwise a bar operator: bars in, bars out
    if kind == BAR:
        if grain.is_tick:
            ctx.error(node.span, f"{node.op}() works on bars, not ticks", _reducer_hint(args), "grain")
            return None
        if len(non_scalar) == 0:
            ctx.error(node.span, f"{node.op}() of a constant is meaningless", "apply it to a feature", "grain")
            return None
        return ir.BAR
    raise AssertionError(kind)


BROADCAST_CROSS = ("cs_mean", "cs_sum", "cs_count", "cs_wmean")  # one value per bar, the same for every member


def _universe_leaf(ctx: ResolveContext, node: Node) -> bool:
    """Whether the tree reads a universe's features or parameters (for all its members)."""
    instruments = ctx.project.instruments
    return any(
        isinstance(n, ir.FeatureRef | ir.ParamRef)
        and n.instrument in instruments
        and instruments[n.instrument].universe is not None
        for n in node.walk()
    )


def _known_value(ctx: ResolveContext, node: Node) -> float | None:
    """The value of a resolved constant or parameter, if the compiler knows it."""
    if isinstance(node, ir.Const):
        return node.value
    if isinstance(node, ir.ParamRef) and node.instrument in ctx.project.instruments:
        value = dict(ctx.project.instruments[node.instrument].params).get(node.name)
        if value is None or math.isnan(value):
            return None  # NaN: a universe's parameter from a table, unknown until the run
        if node.instrument == ctx.instrument:  # its value is checked: members with another value resolve apart
            ctx.constant_params.add(node.name)
        return value
    if isinstance(node, ir.ParamRef) and node.instrument is None:
        return dict(ctx.project.constants).get(node.name)
    return None


def resolve_node(ctx: ResolveContext, node: Node) -> Node:
    """A formula node with its names bound (columns, features, parameters, constants) and its grain inferred;
    a node that cannot be resolved is reported to ``ctx`` and comes back invalid, so that one pass finds every
    problem of a formula."""
    if isinstance(node, Num):
        return ir.Const(node.value, span=node.span)
    if isinstance(node, Text):
        ctx.error(
            node.span,
            f"text {node.source()} in a feature's formula: formulas compute with numbers",
            f'compare a text column in its source, e.g. columns: {{is_buy: {{expr: "side == {node.source()}"}}}}, '
            "or filter: on it",
        )
        return _invalid()
    if isinstance(node, Duration):
        ctx.error(
            node.span,
            f"a duration ({node.source()}) is only a window, e.g. rolling_sum(x, {node.source()})",
            "write a number here; interval_seconds is the bar width in seconds",
        )
        return _invalid()
    if isinstance(node, Name):
        return _name(ctx, node)
    if isinstance(node, Call):
        return _call(ctx, node)
    raise AssertionError(node)


VOLUME_CLOCKED = frozenset({"vpin"})  # operators whose values move with traded volume, not with time


def _calls(spec: FeatureSpec, ops: frozenset[str]) -> bool:
    """Whether any of the feature's formulas calls one of ``ops`` (True when one does not parse: reported there)."""
    for text in (spec.formula, *(t for _, t, _, _ in spec.formula_for)):
        try:
            if any(isinstance(n, Call) and n.op in ops for n in parse(text).walk()):
                return True
        except FormulaSyntaxError:
            return True
    return False


def _family_problems(project: Project) -> list[Diagnostic]:
    """A family variable must be used by the formula, and may not hide a name that already means something."""
    problems = []
    features = {spec.name for spec in project.features}
    params = {p for inst in project.instruments.values() for p, _ in inst.params}
    taken = [
        (features, "a feature"),
        (set(project.sources), "a source"),
        (set(project.instruments), "an instrument"),
        (set(CONSTANTS) | set(dict(project.constants)), "a constant"),
        (params, "an instrument parameter"),
    ]
    done: set[Position] = set()
    for spec in project.features:
        for variable, pos in spec.expand_at:
            if pos in done:
                continue
            done.add(pos)
            what = next((label for names, label in taken if variable in names), None)
            if what:
                problems.append(
                    Diagnostic(
                        pos,
                        f"expand variable '{variable}' has the name of {what}, which the formula could no longer read",
                        "pick another variable name, e.g. k or n",
                        "naming",
                    )
                )
                continue
            used = False
            for text in (spec.formula, *(t for _, t, _, _ in spec.formula_for)):
                try:
                    used = used or any(isinstance(n, Name) and n.parts == (variable,) for n in parse(text).walk())
                except FormulaSyntaxError:
                    used = True  # reported with the formula
            if not used:
                problems.append(
                    Diagnostic(
                        pos,
                        f"expand variable '{variable}' is not in the formula: the family's features are all the same",
                        f"use {variable} in the formula, e.g. lag(x, {variable}), or remove the expand",
                        "naming",
                    )
                )
    return problems


def check_names(project: Project) -> list[Diagnostic]:
    """Naming rules: unique names, target prefixes, no interval-like tokens, cross-asset names."""
    problems = []
    seen: dict[str, FeatureSpec] = {}
    params = {p: key for key, inst in project.instruments.items() for p, _ in inst.params}
    reserved = set(project.sources) | set(project.instruments) | set(CONSTANTS) | set(dict(project.constants))
    reserved |= set(params)
    problems += _family_problems(project)
    for spec in (*project.features, *project.event_features):
        if spec.name in seen:
            other = seen[spec.name]
            problems.append(
                Diagnostic(
                    spec.name_pos,
                    f"feature name '{spec.name}' is already used at {other.name_pos}",
                    "names are unique across all spec files (families add _k suffixes)",
                    "naming",
                )
            )
            continue
        seen[spec.name] = spec
        if spec.name in reserved:
            problems.append(
                Diagnostic(
                    spec.name_pos,
                    f"'{spec.name}' is already the name of a source, instrument, constant or parameter"
                    + (f" (a parameter of '{params[spec.name]}')" if spec.name in params else ""),
                    "pick another name",
                    "naming",
                )
            )
        tokens = spec.name.split("_")
        if spec.grid is None and any(INTERVAL_TOKEN.match(t) for t in tokens):  # a grid's column has no interval
            problems.append(
                Diagnostic(
                    spec.name_pos,
                    f"'{spec.name}' contains an interval-like token",
                    "the compiler adds the interval to column names; drop tokens like 30s",
                    "naming",
                )
            )
        if not spec.is_target and spec.name.startswith(TARGET_PREFIXES):
            problems.append(
                Diagnostic(
                    spec.name_pos,
                    f"'{spec.name}' is named like a target but is a feature",
                    "move it under 'targets:' or rename it",
                    "naming",
                )
            )
        if spec.is_target and not spec.publish:
            problems.append(Diagnostic(spec.name_pos, "targets are always published", "remove 'publish'", "naming"))
        if spec.grid is not None:
            continue  # what follows places columns on bars: refused on an event grid (compiler/model.py)
        if spec.clock == "volume" and not _calls(spec, VOLUME_CLOCKED):
            problems.append(
                Diagnostic(
                    spec.name_pos,
                    f"'{spec.name}' is declared clock: volume but uses no volume-clocked operator "
                    f"({', '.join(sorted(VOLUME_CLOCKED))})",
                    "remove 'clock: volume': a time-clocked value's columns carry their interval",
                    "naming",
                )
            )
        if spec.instruments:
            for inst in spec.instruments:
                if inst not in project.instruments:
                    problems.append(
                        Diagnostic(
                            spec.instruments_pos[spec.instruments.index(inst)]
                            if spec.instruments_pos
                            else spec.name_pos,
                            f"'{spec.name}' lists unknown instrument '{inst}'",
                            _suggest(inst, list(project.instruments))
                            or f"instruments: {', '.join(project.instruments)}",
                            "naming",
                        )
                    )
        for inst, _, pos, _ in spec.formula_for:
            allowed = spec.instruments or tuple(project.instruments)
            if inst not in allowed or is_cross_asset(spec, project):
                problems.append(
                    Diagnostic(
                        pos,
                        f"'{spec.name}' has a formula for '{inst}', which it is not computed for",
                        _suggest(inst, list(allowed)) or "formula_for keys are instruments of the feature",
                        "naming",
                    )
                )
        if is_cross_asset(spec, project):
            named = {
                n.parts[0]
                for n in parse(spec.formula).walk()
                if isinstance(n, Name) and _is_instrument(project, n.parts[0])
            }
            missing = sorted(i for i in named if i not in tokens)
            if spec.cross_asset is not None:
                unknown = [i for i in spec.cross_asset if i not in project.instruments]
                if unknown:
                    problems.append(
                        Diagnostic(
                            spec.name_pos,
                            f"'{spec.name}' lists unknown instrument(s) {', '.join(unknown)} in cross_asset",
                            _suggest(unknown[0], list(project.instruments))
                            or f"instruments: {', '.join(project.instruments)}",
                            "naming",
                        )
                    )
                if not set(spec.cross_asset) >= named:
                    problems.append(
                        Diagnostic(
                            spec.name_pos,
                            f"'{spec.name}' reads {', '.join(sorted(named - set(spec.cross_asset)))} "
                            "but its cross_asset list does not name them",
                            f"cross_asset: [{', '.join(sorted(named | set(spec.cross_asset)))}]",
                            "naming",
                        )
                    )
            elif missing:
                problems.append(
                    Diagnostic(
                        spec.name_pos,
                        f"cross-asset feature '{spec.name}' must name its instruments "
                        f"({', '.join(sorted(named))}) in its name",
                        f"e.g. {spec.name}_{'_'.join(missing)}",
                        "naming",
                    )
                )
    return problems


def check_columns(project: Project, instances: list[Instance]) -> list[Diagnostic]:
    """Every column a run writes has its own name: two features that would write the same column (or one named
    ts_event) are an error naming both."""
    problems = []
    owner: dict[str, Instance | None] = {"ts_event": None}
    for inst in instances:
        if not inst.spec.publish:
            continue
        intervals = [None] if inst.spec.clock == "volume" else list(inst.spec.intervals or project.intervals)
        for interval in intervals:
            name = column_name(inst.spec.name, interval, inst.instrument)
            if name not in owner:
                owner[name] = inst
                continue
            other = owner[name]
            if other is inst:
                continue
            where = "the time column" if other is None else f"'{other.spec.name}' at {other.spec.name_pos}"
            problems.append(
                Diagnostic(
                    inst.spec.name_pos,
                    f"column '{name}' of '{inst.spec.name}' is also written by {where}",
                    "rename one of the features: every column name must be unique",
                    "naming",
                )
            )
            break
    return problems


def _for_instrument(spec: FeatureSpec, instrument: str | None) -> FeatureSpec:
    """The spec with its instrument-specific formula (``formula_for``), if it has one for ``instrument``."""
    for inst, text, pos, segments in spec.formula_for:
        if inst == instrument:
            return replace(spec, formula=text, formula_pos=pos, formula_segments=segments, formula_style=None)
    return spec


def resolve_project(project: Project) -> tuple[list[Instance], list[Diagnostic]]:
    """Every (feature, instrument) instance with its resolved tree, plus all problems found.

    A feature is resolved once per class of its instruments (:func:`_classes`), not once per instrument, so
    compile time does not grow with the number of instruments; the members of a class share the tree."""
    problems = check_names(project)
    specs: dict[str, FeatureSpec] = {}
    for spec in project.features:
        specs.setdefault(spec.name, spec)
    instances: list[Instance] = []
    defaulted: set[tuple[str, str | None]] = set()
    refs: dict[int, tuple[tuple[str, str | None], ...]] = {}  # by tree: the members of a class share it
    for spec in specs.values():
        try:
            parse(spec.formula)
        except FormulaSyntaxError as exc:
            problems.append(diagnostic_at(formula_position(spec), exc.span, exc.message, exc.hint, "syntax"))
            continue
        if is_cross_asset(spec, project):
            classes: list[list[str | None]] = [[None]]
        else:
            members = [i for i in (spec.instruments or project.instruments) if i in project.instruments]
            classes = list(_classes(spec, project, members))
        for members_of_class in classes:
            for instrument, tree in _resolve_class(project, spec, specs, members_of_class, problems):
                if spec.instruments is None and instrument is not None:
                    defaulted.add((spec.name, instrument))
                if id(tree) not in refs:
                    refs[id(tree)] = feature_refs(tree)
                instances.append(Instance(_for_instrument(spec, instrument), instrument, tree, refs[id(tree)]))
    kept = _drop_unavailable(instances, defaulted, problems)
    problems += check_columns(project, kept)
    return kept, _dedupe(problems)


def _classes(spec: FeatureSpec, project: Project, members: list[str]) -> Iterable[list[str | None]]:
    """The instruments of a feature in classes that resolve alike: the same sources (and the sources standing
    for them) and the same parameter names. An instrument with its own ``formula_for`` or named in the formula
    is a class of its own."""
    own = {inst for inst, *_ in spec.formula_for}
    named = {n.parts[0] for n in parse(spec.formula).walk() if isinstance(n, Name)}
    classes: dict[tuple[object, ...], list[str | None]] = {}
    for key in members:
        inst = project.instruments[key]
        if key in own or key in named:
            signature: tuple[object, ...] = ("own", key)
        else:
            signature = (inst.sources, inst.use, tuple(sorted(p for p, _ in inst.params)))
        classes.setdefault(signature, []).append(key)
    return classes.values()


def _resolve_class(
    project: Project,
    spec: FeatureSpec,
    specs: dict[str, FeatureSpec],
    members: list[str | None],
    problems: list[Diagnostic],
) -> Iterable[tuple[str | None, Node]]:
    """(instrument, tree) for the members of one class, the tree resolved for the first member and shared.

    Members whose parameters read as constants (a window ``n``) differ from the first member's are grouped by
    those values, and each group is resolved once on its own (a queue, not recursion: a thousand instruments
    may have a thousand windows). Every member of a group whose first member has problems is resolved alone,
    so that each message names its instrument as it would alone."""
    queue: list[list[str | None]] = [members]
    while queue:
        group = queue.pop(0)
        first = group[0]
        resolved = _resolve_one(project, spec, specs, first)
        if resolved is None:  # what it lacks (a source, a column) the whole class lacks
            continue
        if resolved[1].problems:
            yield from _each(project, spec, specs, group, problems, resolved)
            continue
        tree, ctx = resolved
        shared = ir.relative(tree, first or "")
        others: dict[tuple[str, ...], list[str | None]] = {}
        own = _constant_values(project, ctx.constant_params, first)
        for member in group:
            values = _constant_values(project, ctx.constant_params, member)
            if member is first or values == own:
                yield member, shared
            else:
                others.setdefault(values, []).append(member)
        queue.extend(others.values())


def _constant_values(project: Project, names: set[str], member: str | None) -> tuple[str, ...]:
    """The values of the parameters ``names`` of ``member`` that shape its tree (repr: NaN equals NaN)."""
    if not names or member is None:
        return ()
    params = dict(project.instruments[member].params)
    return tuple(repr(params.get(n)) for n in sorted(names))


def _each(
    project: Project,
    spec: FeatureSpec,
    specs: dict[str, FeatureSpec],
    members: list[str | None],
    problems: list[Diagnostic],
    first: tuple[Node, ResolveContext] | None,
) -> Iterable[tuple[str | None, Node]]:
    """Members resolved one by one (the first one's result reused), their problems reported."""
    for k, member in enumerate(members):
        resolved = first if k == 0 else _resolve_one(project, spec, specs, member)
        if resolved is None:
            continue
        tree, ctx = resolved
        problems.extend(ctx.problems)
        if not ctx.problems:
            yield member, ir.relative(tree, member or "")


def _resolve_one(
    project: Project, spec: FeatureSpec, specs: dict[str, FeatureSpec], instrument: str | None
) -> tuple[Node, ResolveContext] | None:
    """The tree of ``spec`` for one instrument and the context holding its problems; None if the instrument
    lacks what the formula needs (reported here when the feature lists its instruments)."""
    bound = _for_instrument(spec, instrument)
    ctx = ResolveContext(project, bound, instrument, specs)
    try:
        tree = resolve_node(ctx, parse(bound.formula))
    except FormulaSyntaxError as exc:
        ctx.problems.append(diagnostic_at(formula_position(bound), exc.span, exc.message, exc.hint, "syntax"))
        return _invalid(), ctx
    except Unavailable as exc:
        if spec.instruments is not None:
            ctx.problems.append(
                Diagnostic(
                    spec.name_pos,
                    f"'{spec.name}' for instrument '{instrument}': {exc}",
                    "remove the instrument from the list or give it the source",
                )
            )
            return _invalid(), ctx
        return None
    if not ctx.problems:
        tree = _check_top(bound, tree, ctx.problems)
        tree = _own_params_in_foreign_ticks(ctx, tree)
        tree = exact_time_differences(project, tree)
    return tree, ctx


# Operators whose value is one of their argument's values (of a tick, or of a bar): a time through them keeps
# its residual, the same operator of the residual's column.
TIME_PICKS = frozenset({"first", "last", "lag", "lead", "ffill"})


def exact_time_differences(project: Project, tree: Node) -> Node:
    """A difference of two times (``trades.stamp - trades.sent``, ``last(trades.stamp) - last(trades.sent)``,
    ``lag`` of either) as the difference of their float64 values plus the difference of their residuals (each
    time column's rounding to float64, a column of its own: fspec/manifest.py, ``TIME_RESIDUAL``). Both values
    are whole numbers, so their difference is exact whenever it is below 2**53 ns (104 days), and so is the sum
    with the residuals': the difference of the exact nanoseconds, where the values alone miss it by up to 256 ns."""

    def residual(node: Node) -> Node | None:
        if isinstance(node, ir.Column):
            return replace(node, column=node.column + TIME_RESIDUAL) if _is_time(project, node) else None
        if isinstance(node, ir.Apply) and node.op in TIME_PICKS and node.args:
            inner = residual(node.args[0])
            return None if inner is None else replace(node, args=(inner, *node.args[1:]))
        return None

    def fn(node: Node) -> Node:
        if isinstance(node, ir.Apply) and node.op == "sub" and len(node.args) == 2:
            left, right = residual(node.args[0]), residual(node.args[1])
            if left is not None and right is not None:
                return ir.Apply("add", (node, ir.Apply("sub", (left, right), (), node.grain)), (), node.grain)
        return node

    return transform(tree, fn)


def _is_time(project: Project, column: ir.Column) -> bool:
    """Whether a column is read as a time (``dtype: time``), in its own source or attached by its ``asof``."""
    inst = project.instruments.get(column.instrument)
    source = project.sources.get(inst.concrete(column.source) if inst else column.source)
    if source is not None and column.column in source.asof_columns and source.asof_source:
        source = project.sources.get(source.asof_source)
    return source is not None and any(c.name == column.column and c.dtype == "time" for c in source.columns)


def _own_params_in_foreign_ticks(ctx: ResolveContext, tree: Node) -> Node:
    """Inside a reducer over another instrument's ticks (``sum(es.trades.size * n)`` for nq), the member's own
    parameters become their values: that kernel runs with es's parameters, so the slot is per value (and the
    class of instruments splits by it)."""
    own = ctx.instrument
    if own is None:
        return tree

    def freeze(node: Node) -> Node:
        if isinstance(node, ir.ParamRef) and node.instrument == own:
            value = dict(ctx.project.instruments[own].params)[node.name]
            if math.isnan(value):  # a universe's parameter from a table: no one value to run that kernel with
                ctx.error(
                    node.span,
                    f"'{node.name}' is read from a table per member, so it cannot be inside a reducer over another "
                    "instrument's ticks (that kernel runs once, with that instrument's parameters)",
                    f"apply it outside the reducer, e.g. sum(...) * {node.name}",
                )
                return node
            ctx.constant_params.add(node.name)
            return ir.Const(value, span=node.span)
        return node

    def fn(node: Node) -> Node:
        if isinstance(node, ir.Apply) and REGISTRY[node.op].kind == REDUCER:
            columns = {n.instrument for n in node.walk() if isinstance(n, ir.Column)}
            if columns and own not in columns:
                return transform(node, freeze)
        return node

    return transform(tree, fn)


def _check_top(spec: FeatureSpec, tree: Node, problems: list[Diagnostic]) -> Node:
    grain = getattr(tree, "grain", ir.SCALAR)
    if grain.is_tick:
        problems.append(
            diagnostic_at(
                formula_position(spec),
                Span(),
                "this formula gives one value per tick, a feature needs one per bar",
                "wrap it in a reducer, e.g. last(...), sum(...) or mean(...)",
                "grain",
            )
        )
    return tree


def _drop_unavailable(
    instances: list[Instance], defaulted: set[tuple[str, str | None]], problems: list[Diagnostic]
) -> list[Instance]:
    """Remove defaulted instances whose dependencies do not exist for their instrument, to a fixpoint."""
    by_key = {i.key: i for i in instances}
    changed = True
    while changed:
        changed = False
        for key, inst in list(by_key.items()):
            missing = [d for d in inst.deps() if d not in by_key]
            if missing and key in defaulted:
                del by_key[key]
                changed = True
    for inst in by_key.values():
        for dep in inst.deps():
            if dep not in by_key:
                where = f" for instrument '{dep[1]}'" if dep[1] else ""
                problems.append(
                    Diagnostic(
                        inst.spec.name_pos,
                        f"'{inst.spec.name}' needs '{dep[0]}'{where}, which is not computed there",
                        "check the instruments lists of both features",
                    )
                )
    return [i for i in instances if i.key in by_key]


def _dedupe(problems: list[Diagnostic]) -> list[Diagnostic]:
    seen = set()
    out = []
    for p in problems:
        key = (p.position, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def survivorship_problems(project: Project, instances: list[Instance]) -> list[Diagnostic]:
    """A universe whose membership knows later sessions (``every_session``) may be read by targets only: a
    feature of its members, or one reading them across (an index), would know on each day which symbols survive."""
    survivors = {k for k, i in project.instruments.items() if i.universe is not None and i.universe.every_session}
    problems: list[Diagnostic] = []
    told: set[str] = set()
    for inst in instances if survivors else ():
        if inst.spec.is_target or inst.spec.name in told:
            continue
        reads = {inst.instrument} | {getattr(node, "instrument", None) for node in inst.tree.walk()}
        hit = sorted(k for k in reads if k in survivors)
        if hit:
            told.add(inst.spec.name)
            problems.append(
                Diagnostic(
                    inst.spec.name_pos,
                    f"feature '{inst.spec.name}' reads universe '{hit[0]}', whose membership every_session knows on "
                    "each day which symbols trade on every later session (survivorship bias): a feature may use "
                    "only what is known at its bar's end",
                    f"give universe '{hit[0]}' membership: {{sessions_before: N}} (rows on each of the N sessions "
                    "before the day), or read it in targets only",
                    "lookahead",
                )
            )
    return problems
