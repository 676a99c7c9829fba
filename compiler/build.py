"""The compiler's tasks: ``validate`` (all checks, nothing written) and ``compile`` (kernels + manifest)."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fspec import __version__
from fspec.compiler import ir
from fspec.compiler.codegen import CODEGEN_VERSION, render_kernel
from fspec.compiler.dag import Graph, build_graph
from fspec.compiler.formula import Call, FormulaSyntaxError, Name, Node, Num, diagnostic_at, parse
from fspec.compiler.lower import Plan, plan
from fspec.compiler.model import Project, build_project
from fspec.compiler.operators import REGISTRY
from fspec.compiler.resolve import resolve_project
from fspec.compiler.schema import validate_doc
from fspec.compiler.yamlsrc import SourceDoc, load_yaml
from fspec.errors import Diagnostic, Position, SpecError
from fspec.files import follow_umask
from fspec.project import BUILD_DIR, MANIFEST, display_path, spec_files, spec_hash

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class Checked:
    """Everything the checks produce; ``plan`` is None when there are errors."""

    project: Project | None
    graph: Graph | None
    plan: Plan | None
    filters: dict[str, dict[str, Any]]
    diagnostics: list[Diagnostic]


def _row_tree(
    text: str,
    pos: Position,
    source: str,
    problems: list[Diagnostic],
    params: frozenset[str] = frozenset(),
    what: str = "filter",
) -> dict[str, Any] | None:
    """A row filter or computed column: a formula over the file's own columns (and, for computed columns,
    the instrument's params) with elementwise operators only."""
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
        if isinstance(node, Name) and len(node.parts) == 1:
            return ir.Column(source, node.parts[0], "")
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
                "e.g. suspicious == 0 and size > 0",
                "filter",
            )
        )
        return None

    converted = convert(tree)
    return ir.to_json(converted) if converted is not None else None


def check(root: Path) -> Checked:
    """Run every check on the specs under ``root``; never raises for spec problems."""
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
    for path in files:
        doc, syntax = load_yaml(path, display_path(root, path))
        problems += syntax
        if not syntax:
            schema_problems = validate_doc(doc)
            problems += schema_problems
            if not schema_problems:
                docs.append(doc)
    if problems:
        return Checked(None, None, None, {}, problems)
    project, model_problems = build_project(docs)
    problems += model_problems
    if project is None:
        return Checked(None, None, None, {}, problems)
    filters = {}
    for src in project.sources.values():
        if src.filter and src.filter_pos:
            tree = _row_tree(src.filter, src.filter_pos, src.name, problems)
            if tree is not None:
                filters[src.name] = tree
        params = frozenset(p for inst in project.instruments.values() for p, _ in inst.params)
        for col in src.columns:
            if col.expr is not None:
                tree = _row_tree(col.expr, src.pos, src.name, problems, params, "computed column")
                if tree is not None:
                    filters[f"{src.name}.{col.name}"] = tree
    instances, resolve_problems = resolve_project(project)
    problems += resolve_problems
    graph, graph_problems = build_graph(instances)
    problems += graph_problems
    if problems or graph is None:
        return Checked(project, graph, None, filters, problems)
    return Checked(project, graph, plan(project, graph), filters, [])


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    follow_umask(tmp)
    os.replace(tmp, path)


def manifest_data(root: Path, checked: Checked) -> dict[str, Any]:
    assert checked.project is not None and checked.plan is not None
    project = checked.project
    kernels = [
        {
            "source": k.source,
            "module": k.module,
            "path": f"{BUILD_DIR}/kernels/{k.module}.py",
            "columns": list(k.columns),
            "params": list(k.params),
            "slots": [s.text for s in k.slots],
        }
        for k in checked.plan.kernels
    ]
    features = [
        {
            "name": f.name,
            "instrument": f.instrument,
            "tree": ir.to_json(f.tree),
            "formula": f.formula,
            "resolved": f.resolved,
            "description": f.description,
            "window": [f.window.left, f.window.right],
            "warmup_sessions": f.window.sessions,
            "publish": f.publish,
            "is_target": f.is_target,
            "deps": [list(d) for d in f.deps],
            "sources": list(f.sources),
            "file": f.file,
            "line": f.line,
            "order": f.order,
            "intervals": list(f.intervals) if f.intervals else None,
            "clock": f.clock,
        }
        for f in checked.plan.features
    ]
    return {
        "manifest_version": MANIFEST_VERSION,
        "fspec_version": __version__,
        "codegen_version": CODEGEN_VERSION,
        "spec_hash": spec_hash(root),
        "project": {
            "sources": {
                n: dataclasses.asdict(s)
                | {
                    "pos": None,
                    "filter_pos": None,
                    "filter_tree": checked.filters.get(n),
                    "column_trees": {c.name: checked.filters[f"{n}.{c.name}"] for c in s.columns if c.expr},
                }
                for n, s in project.sources.items()
            },
            "instruments": {
                k: {"symbol": i.symbol, "params": dict(i.params), "sources": list(i.sources), "use": dict(i.use)}
                for k, i in project.instruments.items()
            },
            "intervals": list(project.intervals),
            "session": dataclasses.asdict(project.session),
            "dates": list(project.dates),
            "constants": dict(project.constants),
            "output_dir": project.output_dir,
        },
        "kernels": kernels,
        "features": features,
    }


def compile_project(root: Path) -> tuple[Path, list[Path]]:
    """Check, then write build/kernels/*.py and build/manifest.json. Raises SpecError on any problem."""
    checked = check(root)
    if checked.diagnostics:
        raise SpecError(checked.diagnostics)
    assert checked.plan is not None
    kernel_dir = root / BUILD_DIR / "kernels"
    kernel_dir.mkdir(parents=True, exist_ok=True)
    written = []
    keep = set()
    for kernel in checked.plan.kernels:
        path = kernel_dir / f"{kernel.module}.py"
        keep.add(path.name)
        text = render_kernel(kernel)
        # Content-addressed names: an unchanged kernel keeps its file (and its numba cache) untouched.
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            _write_atomic(path, text)
        written.append(path)
    for stale in kernel_dir.glob("*.py"):
        if stale.name not in keep:
            stale.unlink()
    manifest_path = root / BUILD_DIR / MANIFEST
    _write_atomic(manifest_path, json.dumps(manifest_data(root, checked), indent=1, sort_keys=True) + "\n")
    return manifest_path, written
