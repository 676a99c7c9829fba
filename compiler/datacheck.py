"""``fspec validate --data``: the spec against the data's own column names, before any run.

For each source the first file its path template matches is opened for its column names only (the schema of a
parquet file, the header of a CSV, the fields of every line of a JSON-lines file): every column the source
reads (its time, date, day and symbol columns, its mapped columns, and those its filter and computed columns
use) must be there, else an error at the spec line that names it, with a did-you-mean from the file's columns.
An event grid's events source is read too, with the grid's instrument and kept columns.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from fspec import paths
from fspec.compiler.model import Project, SourceSpec
from fspec.errors import DataError, Diagnostic, Position
from fspec.manifest import tree_columns
from fspec.project import display_path


def data_problems(
    root: Path,
    project: Project,
    trees: dict[str, dict[str, Any]],
    formula_reads: dict[str, list[tuple[str, Position]]] | None = None,
) -> list[Diagnostic]:
    """``formula_reads``: file columns that formulas name, by source (an event grid's by= columns)."""
    problems = []
    read = {c for inst in project.instruments.values() for _, c in inst.use}
    read |= {project.sources[s].asof_source for s in read if project.sources[s].asof_source}
    grid_reads: dict[str, list[tuple[str, Any]]] = {}
    for grid in project.grids.values():  # an event grid reads its events' file: the instrument and kept columns
        if grid.events in project.sources:
            read.add(grid.events)
            grid_reads.setdefault(grid.events, []).extend(grid.reads_at)
    for src in project.sources.values():
        if src.name not in read:
            continue  # no instrument reads it: its files need not exist
        path = first_file(root, src)
        if path is None:
            problems.append(
                Diagnostic(
                    src.pos,
                    f"no file matches the path '{src.path}' of source '{src.name}'",
                    "check the path template against the data folder (paths are relative to the project root)",
                    "data",
                )
            )
            continue
        shown = display_path(root, path)
        try:
            if src.format == "jsonl":
                from fspec import jsonlines

                names = jsonlines.columns(path, src.header or (), shown)
            else:
                names = list(src.header) if src.header else file_columns(path, src.format)
        except DataError as exc:
            problems.append(Diagnostic(src.pos, f"{shown}: cannot read its columns: {exc.message}", exc.hint, "data"))
            continue
        except (OSError, ValueError) as exc:
            problems.append(Diagnostic(src.pos, f"{shown}: cannot read its columns: {exc}", "", "data"))
            continue
        used = list(src.reads_at) + grid_reads.get(src.name, []) + (formula_reads or {}).get(src.name, [])
        for key, where in ((src.name, src.filter_pos), *((f"{src.name}.{c}", p) for c, p, _ in src.expr_at)):
            if key in trees and where is not None:
                used += [(column, where) for column in tree_columns(trees[key])]
        for column, where in dict.fromkeys(used):
            if column not in names:
                what = f"column '{column}' is not in {shown} (the first file of '{src.name}')"
                problems.append(Diagnostic(where, what, _columns_hint(column, names)))
    return problems + _param_table_problems(root, project)


def _param_table_problems(root: Path, project: Project) -> list[Diagnostic]:
    """Each universe parameter read from a table: the table is there and has its symbol and value columns."""
    problems = []
    for inst in project.instruments.values():
        if inst.universe is None:
            continue
        for table, where in zip(inst.universe.params_from, inst.params_from_at, strict=True):
            path = root / table.path
            shown = display_path(root, path)
            if not path.is_file():
                problems.append(
                    Diagnostic(where, f"{shown}: file not found (parameter '{table.param}')", "check its path", "data")
                )
                continue
            try:
                names = file_columns(path, "parquet" if table.path.endswith(".parquet") else "csv")
            except (OSError, ValueError) as exc:
                problems.append(Diagnostic(where, f"{shown}: cannot read its columns: {exc}", "", "data"))
                continue
            for column in (table.symbol, table.value):
                if column not in names:
                    what = f"column '{column}' of parameter '{table.param}' is not in {shown}"
                    problems.append(Diagnostic(where, what, _columns_hint(column, names)))
    return problems


def _columns_hint(column: str, names: list[str]) -> str:
    """The file's column closest to a missing one, or its first columns."""
    close = difflib.get_close_matches(column, names, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else f"its columns: {', '.join(names[:20])}"


def first_file(root: Path, src: SourceSpec) -> Path | None:
    """The first file (in name order) that the source's path template matches."""
    found = paths.matches(root, src.path)
    return found[0][0] if found else None


def file_columns(path: Path, fmt: str) -> list[str]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    import pandas as pd

    return [str(c) for c in pd.read_csv(path, nrows=0).columns]
