"""The fspec command line: thin commands over the compiler's and the runtime's tasks.

This is the one place that catches fspec errors and turns them into messages and exit codes
(0 ok, 1 spec or data error, 2 usage error).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from fspec import __version__
from fspec.errors import Diagnostic, FspecError, OutputError, SpecError, UsageError
from fspec.files import display
from fspec.project import find_root

F = TypeVar("F", bound=Callable[..., Any])


def _handle_errors(fn: F) -> F:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        caught: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    return fn(*args, **kwargs)
                finally:
                    _show_warnings(caught)
        except FspecError as exc:
            click.secho(exc.render(), fg="red", err=True)
            sys.exit(exc.exit_code)
        except Exception as exc:  # a bug in fspec, not in the user's input: say so without a traceback
            if os.environ.get("FSPEC_DEBUG"):
                raise
            click.secho(f"internal error: {type(exc).__name__}: {exc}", fg="red", err=True)
            click.secho("    hint: this is a bug in fspec; rerun with FSPEC_DEBUG=1 for the traceback", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def _show_warnings(caught: list[warnings.WarningMessage]) -> None:
    if not caught:
        return  # (the readers' module imports pyarrow: a compile has no need of it)
    from fspec.runtime.sources import DataWarning

    for w in caught:
        if issubclass(w.category, DataWarning):
            click.secho(f"warning: {w.message}", fg="yellow", err=True)


def _root(project: str | None) -> Path:
    return find_root(Path(project) if project else None)


def _progress(unit: str) -> Callable[[Iterable[Any], int], Iterable[Any]]:
    """A progress bar on stderr when it is a terminal, nothing otherwise: CI logs and pipes stay clean. The bar
    is cleared when it ends, so what the command prints (its summary lines, on stdout) reads as without it."""

    def wrap(items: Iterable[Any], total: int) -> Iterable[Any]:
        if not sys.stderr.isatty():
            return items
        from tqdm import tqdm

        return tqdm(items, total=total, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)

    return wrap


select_option = click.option(
    "--select",
    "select",
    multiple=True,
    help="Columns: a name, a glob (realized_*), tag:WORD, state:modified (needs --state), +NAME (with what it "
    "depends on), NAME+ (with what depends on it); repeatable (default: all).",
)
state_option = click.option(
    "--state",
    "state",
    type=click.Path(path_type=Path),
    default=None,
    help="A previous build/manifest.json (or its folder) for --select state:modified.",
)

project_option = click.option(
    "--project",
    "project",
    type=click.Path(file_okay=False),
    default=None,
    help="Project folder (default: the nearest folder with specs/).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fspec")
def main() -> None:
    """fspec compiles market-microstructure feature specs (YAML) into numba kernels and runs them into parquet.

    \b
    Example:
        fspec validate && fspec compile && fspec run
    """


def _github(d: Diagnostic) -> str:
    message = d.message + (f" (hint: {d.hint})" if d.hint else "")
    return f"::error file={d.position.file},line={d.position.line},col={d.position.col}::{message}"


@main.command()
@project_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="Output format; github prints workflow annotations.",
)
@click.option("--data", "with_data", is_flag=True, help="Also check each source's columns against its first data file.")
@_handle_errors
def validate(project: str | None, fmt: str, with_data: bool) -> None:
    """Check every spec: schema, names, grains, DAG and no-lookahead. Writes nothing.

    With --data, the first file each source's path matches is opened for its column names: a column a source
    reads that the file lacks is an error at the spec line, with a did-you-mean.

    Prints every problem as file:line:col: message (schema and semantic ones in one pass, the first 100), and
    exits 1 if there is any.

    \b
    Example:
        fspec validate --format github
    """
    from fspec.compiler.build import check

    root = _root(project)
    checked = check(root, data=with_data)
    error = SpecError(checked.diagnostics) if checked.diagnostics else None
    diagnostics = error.diagnostics if error else []
    if fmt == "json":
        total = error.total if error else 0
        shown = {"ok": not diagnostics, "errors": [d.as_dict() for d in diagnostics], "total": total}
        click.echo(json.dumps(shown, indent=2))
    elif fmt == "github":
        for d in diagnostics:
            click.echo(_github(d))
    if error:
        if fmt == "text":
            raise error
        sys.exit(1)
    if fmt == "text":
        assert checked.plan is not None
        features = checked.plan.features
        columns = sum(max(len(f.members), 1) for f in features)
        published = sum(max(len(f.members), 1) for f in features if f.publish)
        grids = "".join(
            f"; grid {g.grid.name}: {len(g.features)} feature(s) in {len(g.kernels)} event kernel(s)"
            for g in checked.grids
        )
        click.echo(
            f"ok: {len(features)} compiled feature(s) for {columns} feature instances ({published} published) in "
            f"{len(checked.plan.kernels)} tick kernel(s){grids}"
        )


@main.command()
@project_option
@click.option("--no-jit", is_flag=True, help="Only write the files; compile kernels with numba on first run.")
@click.option(
    "--aot",
    is_flag=True,
    help="Also build the kernels ahead of time into one extension module (needs a C compiler): runs then start "
    "without numba.",
)
@_handle_errors
def compile(project: str | None, no_jit: bool, aot: bool) -> None:
    """Compile specs/ into build/manifest.json and build/kernels/*.py (numba, cached on disk).

    \b
    Example:
        fspec compile
    """
    root = _root(project)
    started = time.perf_counter()
    if aot and no_jit:
        raise UsageError("--aot and --no-jit exclude each other", "--aot compiles everything now; drop one of them")
    if aot:
        from fspec.runtime.aot import check_toolchain, previous_library

        check_toolchain()  # before the compile, not after it
        previous = previous_library(root)
    if no_jit:
        from fspec.compiler.build import compile_project

        manifest_path, kernels = compile_project(root)
        warmed = ""
    else:
        from fspec.runtime.warmup import Ahead, likely_to_compile, warm_kernels

        # A worker loads numba on another core while this process imports the compiler, checks and writes the
        # build: from the start when the specs look as if they will compile something, else once a new kernel
        # file shows that they will.
        ahead = Ahead(root, skip_blas_check=True)
        if likely_to_compile(root):
            ahead.start()
        try:
            from fspec.compiler.build import compile_project

            manifest_path, kernels = compile_project(root, on_new_kernel=ahead.start)
            # Only what an earlier compile of this build has not warmed: unchanged kernels are in numba's cache.
            report = warm_kernels(root, on_progress=_progress("function"), skip_blas_check=True, ahead=ahead)
        finally:
            ahead.cancel()
        processes = f", on {report.processes} processes" if report.processes > 1 else ""
        warmed = f" ({report.functions} compiled function(s) new or changed{processes})"
    if aot:
        from fspec.runtime.aot import build_library

        library, built = build_library(root, previous)
        state = "built" if built else "unchanged"
        warmed += f"; library {library.file} {state} ({len(library.exports)} export(s))"
    else:
        from fspec.runtime.aot import remove_library

        remove_library(root)
    click.echo(
        f"compiled {len(kernels)} kernel(s) and {manifest_path.relative_to(root)} "
        f"in {time.perf_counter() - started:.1f}s{warmed}"
    )


def _parse_interval(text: str) -> int:
    from fspec.compiler.model import parse_interval

    try:
        return parse_interval(text)
    except ValueError:
        raise UsageError(f"--interval {text}: not a duration", "write it like 30s, 1m or 300s") from None


@main.command()
@project_option
@click.option("--date", "dates", multiple=True, help="Session date YYYY-MM-DD (repeatable; default: all dates).")
@click.option("--interval", "intervals", multiple=True, help="Bar width like 30s (repeatable; default: all).")
@select_option
@state_option
@click.option("--out", "out", type=click.Path(file_okay=False), default=None, help="Output folder (default: out/).")
@click.option(
    "--engine",
    type=click.Choice(["local", "dask"]),
    default="local",
    show_default=True,
    help="local: this process; dask: tasks per day (and entity group) on a dask cluster (pip install 'fspec[dask]').",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="With --engine dask: a running scheduler, e.g. tcp://host:8786 (default: start a local cluster).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 10_000),
    default=None,
    help="With --engine dask: worker processes of the local cluster (default: one per core); with --scheduler, "
    "the workers to wait for.",
)
@click.option(
    "--group-size",
    type=click.IntRange(1, 1_000_000),
    default=None,
    metavar="N",
    help="With --engine dask: tasks of N instruments of a day (instruments linked by a cross-section or a "
    "cross-asset feature stay together; default: whole days while the days keep every worker busy).",
)
@click.option(
    "--days-per-task",
    type=click.IntRange(1, 1_000_000),
    default=None,
    metavar="K",
    help="With --engine dask and whole days: K consecutive days a task, the later ones warmed up from the earlier "
    "ones' results (default: as many as leave every worker two tasks).",
)
@_handle_errors
def run(
    project: str | None,
    dates: tuple[str, ...],
    intervals: tuple[str, ...],
    select: tuple[str, ...],
    state: Path | None,
    out: str | None,
    engine: str,
    scheduler: str | None,
    workers: int | None,
    group_size: int | None,
    days_per_task: int | None,
) -> None:
    """Compute features into out/features_{YYYYMMDD}_{N}s.parquet, one file per date and interval.

    \b
    Example:
        fspec run --date 2013-10-07 --interval 30s --select realized_vol
        fspec run --select 'tag:volatility +vwap_deviation' --out out/subset
        fspec run --select state:modified+ --state prod/manifest.json --out out/changed
        fspec run --engine dask --scheduler tcp://host:8786
        fspec run --engine dask --workers 8 --group-size 25
    """
    from fspec.runtime.engines import run as run_task
    from fspec.runtime.kernels import start_warming
    from fspec.runtime.manifest import load_manifest
    from fspec.runtime.run import RunOptions

    root = _root(project)
    for d in dates:
        _check_date(d)
    manifest = load_manifest(root)
    _check_output_dir(Path(out) if out else root / manifest.project.output_dir, root)
    if engine == "local":  # the workers of another engine compute; this process only checks and follows them
        from fspec.runtime.aot import use_library

        note = use_library(manifest)  # a valid library of fspec compile --aot: numba is not imported
        if note is not None:
            click.echo(f"note: {note}", err=True)
        if manifest.data.library is None or note is not None:
            start_warming(manifest, skip_blas_check=True)
    options = RunOptions(
        dates=list(dates) or None,
        intervals=[_parse_interval(i) for i in intervals] or None,
        select=list(select) or None,
        state=state,
        output_dir=Path(out) if out else None,
        engine=engine,
        scheduler=scheduler,
        workers=workers,
        group_size=group_size,
        days_per_task=days_per_task,
        on_note=lambda text: click.echo(text, err=True),
        on_progress=_progress("day" if engine == "local" else "task"),
    )
    started = time.perf_counter()
    written = run_task(manifest, options)
    for path in written:
        click.echo(f"wrote {display(path, root)}")
    if not written and select:
        click.echo("nothing to write: the selection holds no column")
    click.echo(f"{len(written)} file(s) in {time.perf_counter() - started:.1f}s")


def _check_output_dir(path: Path, root: Path) -> None:
    """The output folder, or the nearest part of its path that exists, must be a folder (not a file)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise OutputError(
            display(path, root),
            f"the output folder cannot be made: {display(probe, root)} is a file",
            "set output: {dir: ...} in specs/project.yaml (or --out) to a folder",
        )


def _check_date(text: str) -> None:
    from datetime import date

    try:
        ok = bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", text)) and date.fromisoformat(text).isoformat() == text
    except ValueError:
        ok = False
    if not ok:
        raise UsageError(f"--date {text}: not a date", "write it as YYYY-MM-DD") from None


@main.command()
@project_option
@click.option("--cuts", default=8, show_default=True, type=click.IntRange(1, 10_000), help="Random cut points.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the cut points.")
@click.option("--date", "dates", multiple=True, help="Session date YYYY-MM-DD (repeatable; default: all dates).")
@select_option
@state_option
@_handle_errors
def audit(
    project: str | None, cuts: int, seed: int, dates: tuple[str, ...], select: tuple[str, ...], state: Path | None
) -> None:
    """Prove no lookahead dynamically: recompute every feature on data cut at random instants.

    Every value of a bar that ended before the cut must be bit-identical to the full run; exits 1 on any
    difference, naming the column, the cut and the first differing row.

    \b
    Example:
        fspec audit --cuts 20 --seed 1
        fspec audit --select 'realized_* tag:flow'
    """
    from fspec.runtime.audit import audit as audit_task
    from fspec.runtime.manifest import load_manifest

    root = _root(project)
    for d in dates:
        _check_date(d)
    report = audit_task(
        load_manifest(root),
        cuts=cuts,
        seed=seed,
        dates=list(dates) or None,
        on_progress=_progress("cut"),
        select=list(select) or None,
        state=state,
    )
    click.echo(report.render())
    if not report.ok:
        sys.exit(1)


@main.command()
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
def ops(fmt: str) -> None:
    """List every operator: signature, grain rule, window rule, doc and edge cases.

    \b
    Example:
        fspec ops --format markdown
    """
    from fspec.compiler.opsdoc import render_ops

    click.echo(render_ops(fmt))


@main.command()
@project_option
@click.argument("column")
@_handle_errors
def explain(project: str | None, column: str) -> None:
    """Show a column's formula, lineage, window and generated kernel.

    \b
    Example:
        fspec explain realized_vol_30s_spy
    """
    from fspec.runtime.explain import explain_column
    from fspec.runtime.manifest import load_manifest

    root = _root(project)
    from fspec.runtime.universe import with_members

    click.echo(explain_column(with_members(load_manifest(root, check_fresh=False)), column))


@main.command()
@click.argument("directory", type=click.Path(path_type=Path))
@_handle_errors
def init(directory: Path) -> None:
    """Write a small working project into DIRECTORY: specs, a day of sample data, a README.

    \b
    Example:
        fspec init my_features && cd my_features && fspec validate && fspec compile && fspec run
    """
    from fspec.scaffold import describe, init_project

    click.echo(describe(init_project(directory), directory))


@main.command(name="test")
@project_option
@_handle_errors
def test_command(project: str | None) -> None:
    """Run the spec tests (specs/**/*.test.yaml): given rows per source, expected values per column.

    Prints PASS or FAIL per test, and for a failure the column, the row and both values; exits 1 on any.

    \b
    Example:
        fspec compile && fspec test
    """
    from fspec.runtime.manifest import load_manifest
    from fspec.runtime.spectest import load_tests, render, run_tests

    manifest = load_manifest(_root(project))
    tests = load_tests(manifest)
    if not tests:
        click.echo("no spec tests: add specs/*.test.yaml (see docs/writing-features.md#testing-features)")
        return
    results = run_tests(manifest, tests, on_progress=_progress("test"))
    click.echo(render(results))
    if not all(r.ok for r in results):
        sys.exit(1)


@main.command(name="ls")
@project_option
@click.argument("selectors", nargs=-1)
@state_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@_handle_errors
def ls(project: str | None, selectors: tuple[str, ...], state: Path | None, fmt: str) -> None:
    """List the columns a run would write: column, feature, instrument, interval, spec file:line.

    SELECTORS are what --select takes (names, globs, tag:WORD, +NAME, NAME+, state:modified).

    \b
    Example:
        fspec ls 'realized_*' tag:flow +vwap_deviation
    """
    from fspec.runtime.ls import list_columns, render
    from fspec.runtime.manifest import load_manifest

    rows = list_columns(load_manifest(_root(project)), list(selectors) or None, state)
    if fmt == "json":
        click.echo(json.dumps([r.as_dict() for r in rows], indent=2))
    else:
        click.echo(render(rows))


@main.command(name="docs")
@project_option
@select_option
@state_option
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for index.html (default: build/docs).",
)
@_handle_errors
def docs_command(project: str | None, select: tuple[str, ...], state: Path | None, out: Path | None) -> None:
    """Write a static HTML catalog of every column a run writes: OUT/index.html, one file, no server needed.

    Each column: description, formula, resolved formula, spec file:line, lineage graph, window, warm-up, the
    no-lookahead proof, and a plot of its values from the output files of the last 'fspec run'. Searchable;
    index.html?q=WORDS opens it filtered.

    \b
    Example:
        fspec run && fspec docs && open build/docs/index.html
        fspec docs --select 'tag:volatility' --out /tmp/vol-docs
    """
    from fspec.project import BUILD_DIR
    from fspec.runtime.catalog import write_catalog
    from fspec.runtime.manifest import load_manifest

    root = _root(project)
    manifest = load_manifest(root)
    out_dir = out if out is not None else root / BUILD_DIR / "docs"
    path, catalog = write_catalog(manifest, out_dir, list(select) or None, state, on_progress=_progress("file"))
    click.echo(f"wrote {display(path, root)}: {len(catalog.entries)} column(s) of {catalog.features} feature(s)")
    if catalog.run_note:
        click.echo(catalog.run_note)


def entry() -> None:
    """The `fspec` command: the click application, then an immediate exit.

    Everything a command writes is complete (files renamed into place, output flushed) when it returns, so the
    process ends without the interpreter's teardown, which frees the run's arrays and the JIT's state object by
    object: about a quarter of a second of a small `fspec run`, measured here."""
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            click.echo(exc.code, err=True)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BrokenPipeError, OSError):  # e.g. `fspec ops | head`: the reader has gone
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
