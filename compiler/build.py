"""The compiler's tasks: ``validate`` (all checks, nothing written) and ``compile`` (kernels + manifest)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fspec import __version__
from fspec.compiler import ir, schema
from fspec.compiler.codegen import CODEGEN_VERSION, lift_constants, render_kernel
from fspec.compiler.dag import Graph, build_graph
from fspec.compiler.eventgen import render_event_kernel
from fspec.compiler.events import EventKernel, GridPlan, plan_grids
from fspec.compiler.formula import (
    Call,
    FormulaSyntaxError,
    Locator,
    Name,
    Node,
    Num,
    Span,
    Text,
    diagnostic_at,
    parse,
)
from fspec.compiler.lower import Plan, TickKernel, plan
from fspec.compiler.model import Project, build_project
from fspec.compiler.parts import Part, previous_kernels, split
from fspec.compiler.resolve import resolve_project, survivorship_problems
from fspec.compiler.yamlsrc import SourceDoc, load_yaml
from fspec.errors import Diagnostic, Position, SpecError
from fspec.files import follow_umask
from fspec.grain import EntityKind
from fspec.manifest import (
    ChainDef,
    EventFeatureDef,
    FeatureDef,
    GridDef,
    InstrumentDef,
    KernelDef,
    KernelPart,
    ManifestData,
    ProjectDef,
    SourceDef,
)
from fspec.operators import CROSS, REGISTRY
from fspec.project import BUILD_DIR, MANIFEST, display_path, spec_files, spec_hash


@dataclass(frozen=True)
class Checked:
    """Everything the checks produce; ``plan`` is None when there are errors."""

    project: Project | None
    graph: Graph | None
    plan: Plan | None
    filters: dict[str, dict[str, Any]]
    diagnostics: list[Diagnostic]
    grids: tuple[GridPlan, ...] = ()  # the event grids' plans


def _row_tree(
    text: str,
    pos: Position | Locator,
    source: str,
    problems: list[Diagnostic],
    params: frozenset[str] = frozenset(),
    what: str = "filter",
    computed: frozenset[str] = frozenset(),
    attached: frozenset[str] = frozenset(),
    dotted: bool = False,
) -> dict[str, Any] | None:
    """A row filter or computed column: a formula over the file's own columns (and, for computed columns,
    the instrument's params) with elementwise operators only. ``dotted``: a dotted name is one column (a
    nested field of a JSON-lines file: data.p)."""
    try:
        tree = parse(text)
    except FormulaSyntaxError as exc:
        problems.append(diagnostic_at(pos, exc.span, f"{what}: {exc.message}", exc.hint, "syntax"))
        return None

    def convert(node: Node) -> Node | None:
        if isinstance(node, Num):
            return ir.Const(node.value)
        if isinstance(node, Name) and node.parts == ("nan",):
            return ir.Const(float("nan"))
        if isinstance(node, Name) and len(node.parts) == 1 and node.parts[0] in params:
            return ir.ParamRef(node.parts[0], "")
        if isinstance(node, Name) and len(node.parts) == 1 and node.parts[0] in computed:
            problems.append(
                diagnostic_at(
                    pos,
                    node.span,
                    f"{what} reads '{node.parts[0]}', a computed column: {what}s see only the file's own columns",
                    f"write out the formula of '{node.parts[0]}' here",
                    "filter",
                )
            )
            return None
        if isinstance(node, Name) and len(node.parts) == 1 and node.parts[0] in attached:
            problems.append(
                diagnostic_at(
                    pos,
                    node.span,
                    f"{what} reads '{node.parts[0]}', a column attached by 'asof': {what}s see only the file's own "
                    "columns, before anything is attached",
                    "filter or compute it in the source it comes from, or use it in a feature's formula",
                    "filter",
                )
            )
            return None
        if isinstance(node, Name) and (len(node.parts) == 1 or dotted):
            return ir.Column(source, node.dotted, "")
        if isinstance(node, Call) and node.op in ("eq", "ne") and any(isinstance(a, Text) for a in node.args):
            return text_test(node)
        if isinstance(node, Call) and node.op in REGISTRY and REGISTRY[node.op].kind == "elementwise":
            args = [convert(a) for a in node.args]
            if any(a is None for a in args) or node.kwargs:
                return None
            return ir.Apply(node.op, tuple(args), (), ir.tick_grain(source))  # type: ignore[arg-type]
        problems.append(
            diagnostic_at(
                pos,
                node.span,
                f"{what}s use the file's column names, numbers and elementwise operators only",
                "e.g. suspicious == 0 and size > 0" if what == "filter" else "e.g. close - tick_size / 2",
                "filter",
            )
        )
        return None

    def text_test(node: Call) -> Node | None:
        """``column == 'text'`` (either way round): 1 where the file's text column holds that text."""
        text = next(a for a in node.args if isinstance(a, Text))
        other = next((a for a in node.args if a is not text), None)
        if not isinstance(other, Name) or (len(other.parts) != 1 and not dotted):
            shown = text.source()
            problems.append(
                diagnostic_at(
                    pos,
                    node.span,
                    f"text {shown} is compared with something other than a column of the file",
                    f"compare a column with it, e.g. side == {shown}",
                    "filter",
                )
            )
            return None
        column = convert(other)
        if not isinstance(column, ir.Column):
            return column if column is None else _not_a_file_column(other)
        return ir.Apply(node.op, (column, ir.Text(text.value)), (), ir.tick_grain(source))

    def _not_a_file_column(name: Name) -> None:
        problems.append(
            diagnostic_at(
                pos,
                name.span,
                f"'{name.dotted}' is not a column of the file: it cannot hold text",
                "compare a text column of the file, e.g. side == 'BUY'",
                "filter",
            )
        )
        return None

    converted = convert(tree)
    if converted is not None and not _text_and_number(converted, pos, what, problems):
        return None
    return ir.to_json(converted) if converted is not None else None


def _text_and_number(tree: Node, pos: Position | Locator, what: str, problems: list[Diagnostic]) -> bool:
    """A column compared with a text and elsewhere with a number (``side in ['BUY', 1]``) is one of them in
    the file, so one comparison would fail on every row: an error here rather than when the file is read."""
    texts, numbers = set(), set()
    for node in tree.walk():
        if isinstance(node, ir.Apply) and node.op in ("eq", "ne") and len(node.args) == 2:
            left, right = node.args
            for column, other in ((left, right), (right, left)):
                if isinstance(column, ir.Column) and isinstance(other, ir.Text):
                    texts.add(column.column)
                elif isinstance(column, ir.Column) and isinstance(other, ir.Const):
                    numbers.add(column.column)
    both = sorted(texts & numbers)
    if both:
        problems.append(
            diagnostic_at(
                pos,
                Span(),
                f"{what} compares column '{both[0]}' with a text and with a number: a column holds one or the other",
                f"quote the numbers if '{both[0]}' is text ('1'), or drop the quotes if it holds numbers",
                "filter",
            )
        )
    return not both


def _of_universe(project: Project, members: tuple[str, ...]) -> bool:
    return bool(members) and all(project.instruments[m].universe is not None for m in members)


def _locate(pos: Position, segments: tuple[tuple[int, int, int], ...], text: str) -> Position | Locator:
    """Where each character of a filter or computed column's formula stands in its file."""
    return Locator(pos.file, segments, text) if segments else pos


def check(root: Path, data: bool = False) -> Checked:
    """Run every check on the specs under ``root``; never raises for spec problems. With ``data``, also check
    the columns each source reads against the first file it matches (:mod:`fspec.compiler.datacheck`)."""
    files = spec_files(root)
    if not files:
        return Checked(
            None,
            None,
            None,
            {},
            [Diagnostic(Position("specs"), "no spec files (*.yaml) in specs/", "add specs/project.yaml")],
        )
    docs: list[SourceDoc] = []
    problems: list[Diagnostic] = []
    unchecked: set[str] = set()
    families: set[str] = set()
    whole = True  # every file can be checked further, if only in part
    for path in files:
        doc, syntax = load_yaml(path, display_path(root, path))
        problems += syntax
        if syntax:
            whole = False  # what the file defines is unknown: its names would be reported as unknown elsewhere
            continue
        schema_problems = schema.validate_doc(doc)
        problems += schema_problems
        if not schema_problems:
            docs.append(doc)
            continue
        # One pass reports everything: the features and targets whose schema is valid are still checked.
        salvaged = schema.salvage(doc)
        if salvaged.doc is None:
            whole = False
        else:
            docs.append(salvaged.doc)
            unchecked |= salvaged.names
            families |= salvaged.families
    if not whole:
        return Checked(None, None, None, {}, problems)
    project, model_problems = build_project(docs)
    problems += model_problems
    if project is None:
        return Checked(None, None, None, {}, problems)
    project = replace(project, unchecked=frozenset(unchecked), unchecked_families=frozenset(families))
    filters = {}
    for src in project.sources.values():
        if src.filter and src.filter_pos:
            where = _locate(src.filter_pos, src.filter_segments, src.filter)
            computed = frozenset(c.name for c in src.columns if c.expr is not None)
            attached = frozenset(src.asof_columns)
            dotted = src.format == "jsonl"
            tree = _row_tree(src.filter, where, src.name, problems, computed=computed, attached=attached, dotted=dotted)
            if tree is not None:
                filters[src.name] = tree
        params = frozenset(p for inst in project.instruments.values() for p, _ in inst.params)
        expr_at = {name: (pos, segments) for name, pos, segments in src.expr_at}
        computed = {c.name for c in src.columns if c.expr is not None}
        for col in src.columns:
            if col.expr is not None:
                pos, segments = expr_at.get(col.name, (src.pos, ()))
                where = _locate(pos, segments, col.expr)
                others = frozenset(computed - {col.name})  # a column computed from the file's own of its name is fine
                tree = _row_tree(
                    col.expr,
                    where,
                    src.name,
                    problems,
                    params,
                    "computed column",
                    others,
                    frozenset(src.asof_columns),
                    src.format == "jsonl",
                )
                if tree is not None:
                    filters[f"{src.name}.{col.name}"] = tree
    checked_specs = len(problems)  # data problems come after the specs' own, as before the formulas'
    instances, resolve_problems = resolve_project(project)
    problems += resolve_problems + survivorship_problems(project, instances)
    graph, graph_problems = build_graph(instances)
    problems += graph_problems
    grids, grid_problems = plan_grids(project)
    problems += grid_problems
    if data:  # after the grids' plans: their formulas' by= columns are read from the events' files too
        from fspec.compiler.datacheck import data_problems

        by_at = {g.grid.events: list(g.by_at) for g in grids}
        problems[checked_specs:checked_specs] = data_problems(root, project, filters, by_at)
    if problems or graph is None:
        return Checked(project, graph, None, filters, problems)
    return Checked(project, graph, plan(project, graph), filters, [], tuple(grids))


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    follow_umask(tmp)
    os.replace(tmp, path)


def manifest_data(
    root: Path, checked: Checked, kernel_texts: dict[str, str], parted: dict[str, list[Part]] | None = None
) -> ManifestData:
    """The typed manifest of a checked project; ``kernel_texts`` maps each kernel module to its file's text
    (the first part's, for a kernel in ``parted`` parts)."""
    assert checked.project is not None and checked.plan is not None
    project = checked.project
    parted = parted or {}
    kernels = tuple(
        _parted_def(k, parted[k.module]) if k.module in parted else _kernel_def(k, kernel_texts)
        for k in checked.plan.kernels
    )
    features = tuple(
        FeatureDef(
            name=f.name,
            members=f.members,
            tree=ir.to_json(f.tree),
            formula=f.formula,
            resolved=f.resolved,
            description=f.description,
            window=(f.window.left, f.window.right),
            warmup_sessions=f.window.sessions,
            publish=f.publish,
            is_target=f.is_target,
            deps=f.deps,
            sources=f.sources,
            file=f.file,
            line=f.line,
            order=f.order,
            intervals=f.intervals,
            clock=f.clock,
            entity=EntityKind.UNIVERSE if _of_universe(project, f.members) else EntityKind.INSTRUMENT,
            # a feature of a universe's members whose tree reduces across them (an index has one column: not so)
            cross_section=bool(f.members)
            and any(isinstance(n, ir.Apply) and REGISTRY[n.op].kind == CROSS for n in f.tree.walk()),
            tags=f.tags,
        )
        for f in checked.plan.features
    )
    chains = tuple(
        ChainDef(
            c.source, tuple((op, dict(consts)) for op, consts in c.slots), tuple(map(c.slot_text, range(len(c.slots))))
        )
        for c in checked.plan.chains
    )
    sources = {
        n: SourceDef(
            name=s.name,
            path=s.path,
            format=s.format,
            time_column=s.time_column,
            time_unit=s.time_unit,
            time_zone=s.time_zone,
            columns=s.columns,
            filter_tree=checked.filters.get(n),
            column_trees={c.name: checked.filters[f"{n}.{c.name}"] for c in s.columns if c.expr},
            bar_width=s.bar_width,
            bar_stamp=s.bar_stamp,
            unsorted=s.unsorted,
            asof_source=s.asof_source,
            asof_columns=s.asof_columns,
            symbol_column=s.symbol_column,
            events_declared=s.kind == "events",
            time_date=s.time_date,
            time_day=s.time_day,
            first_date=s.first_date,
            time_clock=s.time_clock,
            time_anchor=s.time_anchor,
            header=s.header,
            contract=s.contract,
        )
        for n, s in project.sources.items()
    }
    instruments = {
        k: InstrumentDef(k, i.symbol, dict(i.params), i.sources, dict(i.use), i.universe)
        for k, i in project.instruments.items()
    }
    grids = tuple(_grid_def(g, kernel_texts) for g in checked.grids)
    return ManifestData(
        fspec_version=__version__,
        codegen_version=CODEGEN_VERSION,
        spec_hash=spec_hash(root),
        project=ProjectDef(
            sources=sources,
            instruments=instruments,
            intervals=project.intervals,
            session=project.session,
            dates=project.dates,
            constants=dict(project.constants),
            output_dir=project.output_dir,
        ),
        kernels=kernels,
        features=features,
        grids=grids,
        chains=chains,
    )


def kernel_stem(kernel: TickKernel | EventKernel, text: str) -> str:
    """The kernel file's name (and module): its source (and grid) and the first 12 hex digits of the sha256 of
    its generated text. Keyed by the text, not by the plan: a kernel whose code is unchanged keeps its file,
    so numba's cache of it stays valid, and any change (a formula, the code generator, fspec's version in the
    header) gives a new name that no stale cache can match."""
    prefix = kernel.module.rsplit("_", 1)[0]  # the plan's name without its digest: trades, events_fills_trades
    return f"{prefix}_{hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]}"


def _kernel_def(kernel: TickKernel | EventKernel, kernel_texts: dict[str, str], by: str = "") -> KernelDef:
    """A generated kernel file as the manifest records it: where it is, its sha256 (checked before the runtime
    executes it), its columns, parameters and what each slot computes."""
    text = kernel_texts[kernel.module]
    stem = kernel_stem(kernel, text)
    params, constants = kernel.params, ()
    if isinstance(kernel, TickKernel):  # its file reads the formulas' constants from params (codegen)
        params, constants = lift_constants(kernel)[0].params, lift_constants(kernel)[1]
    return KernelDef(
        source=kernel.source,
        module=stem,
        path=f"{BUILD_DIR}/kernels/{stem}.py",
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        columns=kernel.columns,
        params=params,
        slots=tuple(s.text for s in kernel.slots),
        by=by,
        constants=constants,
    )


def _parted_def(kernel: TickKernel, parts: list[Part]) -> KernelDef:
    """A source's kernel in parts: the first part's file stands for it; each part lists its slots' rows."""
    defs = []
    for part in parts:
        stem = kernel_stem(part.kernel, part.text)
        lifted, constants = lift_constants(part.kernel)
        sha = hashlib.sha256(part.text.encode("utf-8")).hexdigest()
        path = f"{BUILD_DIR}/kernels/{stem}.py"
        defs.append(KernelPart(stem, path, sha, part.kernel.columns, lifted.params, constants, part.rows))
    first = defs[0]
    return KernelDef(
        source=kernel.source,
        module=first.module,
        path=first.path,
        sha256=first.sha256,
        columns=kernel.columns,
        params=kernel.params,
        slots=tuple(s.text for s in kernel.slots),
        parts=tuple(defs),
    )


def _grid_def(plan: GridPlan, kernel_texts: dict[str, str]) -> GridDef:
    grid = plan.grid
    kernels = tuple(_kernel_def(k, kernel_texts, k.by) for k in plan.kernels)
    features = tuple(
        EventFeatureDef(
            name=f.spec.name,
            tree=ir.to_json(f.tree),
            formula=f.spec.formula.strip(),
            resolved=f.resolved,
            description=f.spec.description,
            publish=f.spec.publish,
            is_target=f.spec.is_target,
            deps=f.deps,
            sources=f.sources,
            lookback_ns=f.lookback_ns,
            file=f.spec.file,
            line=f.spec.name_pos.line,
            order=f.order,
            tags=f.spec.tags,
        )
        for f in plan.features
    )
    return GridDef(
        grid.name,
        grid.events,
        grid.instrument_column,
        grid.universe,
        grid.latency_ns,
        grid.keep,
        grid.suffix,
        plan.event_columns,
        kernels,
        features,
    )


def compile_project(root: Path, on_new_kernel: Callable[[], None] | None = None) -> tuple[Path, list[Path]]:
    """Check, then write build/kernels/*.py and build/manifest.json. Raises SpecError on any problem.
    ``on_new_kernel`` is called before each kernel file that is new (or not as generated) is written: numba
    will compile it once the build is written, and ``fspec compile`` starts loading numba on another core."""
    checked = check(root)
    if checked.diagnostics:
        raise SpecError(checked.diagnostics)
    assert checked.plan is not None
    kernel_dir = root / BUILD_DIR / "kernels"
    kernel_dir.mkdir(parents=True, exist_ok=True)
    written = []
    keep = set()
    texts: dict[str, str] = {}
    manifest_path = root / BUILD_DIR / MANIFEST
    previous = previous_kernels(manifest_path)
    parted: dict[str, list[Part]] = {}
    planned: list[TickKernel | EventKernel] = [*checked.plan.kernels, *(k for g in checked.grids for k in g.kernels)]
    for kernel in planned:
        if isinstance(kernel, TickKernel) and (parts := split(kernel, previous.get(kernel.source), kernel_dir)):
            parted[kernel.module] = parts  # the earlier kernel kept, the slots it lacks in a small one (parts.py)
            files = [(part.kernel, part.text) for part in parts]
            texts[kernel.module] = parts[0].text
        else:
            text = texts[kernel.module] = (
                render_kernel(kernel) if isinstance(kernel, TickKernel) else render_event_kernel(kernel)
            )
            files = [(kernel, text)]
        for planned_file, text in files:
            path = kernel_dir / f"{kernel_stem(planned_file, text)}.py"
            keep.add(path.name)
            # Content-addressed names: an unchanged kernel keeps its file (and its numba cache) untouched.
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                if on_new_kernel is not None:
                    on_new_kernel()
                _write_atomic(path, text)
            written.append(path)
    for stale in kernel_dir.glob("*.py"):
        if stale.name not in keep:
            stale.unlink()
    manifest = manifest_data(root, checked, texts, parted).to_json()
    _write_atomic(manifest_path, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest_path, written
