"""`fspec docs`: a static HTML catalog of every column a run writes (one self-contained ``index.html``).

Each column shows its description, formula, resolved formula and spec ``file:line``; its lineage as a graph drawn
here from the manifest's dependency DAG; its window, warm-up and the static no-lookahead proof (the texts of
``fspec explain``, runtime/explain.py); and a sparkline of its values in the run's output files, when they exist.
The columns are the ones ``fspec ls`` lists (runtime/ls.py) for the same selectors. The page needs no server and
loads nothing from the network: its style, its few lines of search code and every picture (inline SVG) are in
the file. The template (compiler/templates/catalog.html.j2) receives the typed :class:`Catalog` below and
nothing else; jinja2 escapes every text, so a description cannot inject markup.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from fspec import __version__
from fspec.errors import OutputError
from fspec.files import display, follow_umask
from fspec.grain import natural_key
from fspec.manifest import EventFeatureDef, GridDef, Key, chain_inputs
from fspec.naming import interval_token
from fspec.runtime.columns import with_dependencies
from fspec.runtime.explain import (
    event_lookahead_text,
    event_window_text,
    lookahead_text,
    warmup_text,
    window_text,
)
from fspec.runtime.grid import column_of
from fspec.runtime.ls import Row, list_columns
from fspec.runtime.manifest import Manifest, tree_nodes
from fspec.runtime.select import computed_at
from fspec.runtime.universe import with_members
from fspec.runtime.write import written_resolved

Progress = Callable[[Iterable[Any], int], Iterable[Any]]

MAX_DAYS = 10  # the sparkline reads at most the last 10 days' files of an interval: a picture, not a report
SPARK_WIDTH, SPARK_HEIGHT, SPARK_PAD = 360, 56, 3
MAX_BUCKETS = 120  # one bucket per three pixels: each draws the bucket's lowest and highest value
LAYER_CAP = 10  # lineage nodes drawn per layer; the rest become one "+N more" node
LINK_CAP = 12  # columns listed under "depends on" and "used by" (a cross-section reads every member's)
CHAR_WIDTH, NODE_HEIGHT, ROW_GAP, LAYER_GAP, NODE_PAD = 6.8, 22.0, 8.0, 36.0, 8.0


# ---- the typed model the template receives ------------------------------------------------------------------


@dataclass(frozen=True)
class GraphNode:
    x: float
    y: float
    width: float
    label: str
    kind: str  # self, feature, helper, target, source, more
    href: str | None  # the node's own entry in the catalog, if it has one

    @property
    def height(self) -> float:
        return NODE_HEIGHT

    @property
    def text_x(self) -> float:
        return self.x + NODE_PAD

    @property
    def text_y(self) -> float:
        return self.y + NODE_HEIGHT / 2 + 4  # the baseline that centres 11 px text in the box


@dataclass(frozen=True)
class GraphEdge:
    path: str  # SVG path data, from the dependency's right edge to its user's left edge
    arrow: str  # SVG polygon points of the arrowhead at the user


@dataclass(frozen=True)
class Lineage:
    width: float
    height: float
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]


@dataclass(frozen=True)
class Sparkline:
    width: int
    height: int
    path: str  # SVG path data: M x y L x y ..., a new M after a stretch without finite values
    low: float
    high: float
    last: float
    bars: int  # values read (bars of every day read)
    finite: int  # of them finite (NaN and inf are gaps)
    days: tuple[str, ...]  # the dates read, in order
    unit: str = "bars"  # what a value is of: bars, or an event grid's events

    @property
    def low_text(self) -> str:
        return _number(self.low)

    @property
    def high_text(self) -> str:
        return _number(self.high)

    @property
    def last_text(self) -> str:
        return _number(self.last)

    @property
    def days_text(self) -> str:
        return self.days[0] if len(self.days) == 1 else f"{self.days[0]} to {self.days[-1]} ({len(self.days)} days)"


@dataclass(frozen=True)
class Link:
    label: str
    href: str | None  # None: a column with no entry here (a helper, or not selected)


@dataclass(frozen=True)
class Entry:
    """One column of one file (a volume-clocked column is in every interval's file: one entry each)."""

    anchor: str
    column: str
    feature: str
    instrument: str
    interval: str
    target: bool
    description: str
    formula: str
    resolved: str
    spec: str
    tags: tuple[str, ...]
    window: str
    warmup: str
    lookahead: str
    depends: tuple[Link, ...]  # the first LINK_CAP
    depends_more: int  # how many more there are
    used_by: tuple[Link, ...]
    used_by_more: int
    lineage: Lineage
    plot: Sparkline | None
    plot_note: str  # why there is no plot, or which file it comes from

    @property
    def search(self) -> str:
        """What the search box matches words against: names and formulas (tags are matched on their own)."""
        return " ".join([self.column, self.feature, self.instrument, self.formula, self.resolved]).lower()


@dataclass(frozen=True)
class Catalog:
    project: str
    fspec_version: str
    spec_hash: str
    entries: tuple[Entry, ...]
    features: int
    files_read: tuple[str, ...]  # the output files the plots come from
    run_note: str  # empty, or what to do to get plots


# ---- building it --------------------------------------------------------------------------------------------


def build_catalog(
    manifest: Manifest,
    words: Sequence[str] | None = None,
    state: Path | None = None,
    on_progress: Progress | None = None,
) -> Catalog:
    """The catalog of the columns ``fspec run --select WORDS`` writes; plots from the project's output folder."""
    manifest = with_members(manifest)
    rows = list_columns(manifest, words, state)
    grids = {g.name: g for g in manifest.data.grids}
    bars = [r for r in rows if r.clock != "event"]
    anchors = {(r.interval, _key(r)): _anchor(r) for r in bars}
    users: dict[Key, list[Key]] = {}
    for key in manifest.keys:
        for dep in dict.fromkeys(manifest.deps(key)):
            users.setdefault(dep, []).append(key)
    resolved = {
        (r.interval, r.column): _event_feature(grids[r.interval], r.feature).resolved
        if r.clock == "event"
        else manifest.feature(*_key(r)).resolved_for(_key(r)[1])
        for r in rows
    }
    series, notes, files = _read_output(manifest, rows, resolved, on_progress)
    entries = []
    for row in rows:
        where = (row.interval, row.column)
        values = series.get(where)
        unit = "events" if row.clock == "event" else "bars"
        plot = _sparkline(values[0], values[1], unit) if values is not None else None
        note = notes.get(where, "")
        if values is not None and plot is None:
            note = f"no finite value in the {len(values[0])} {unit} read"
        if row.clock == "event":
            entries.append(_event_entry(grids[row.interval], row, plot, note))
            continue
        key = _key(row)
        f = manifest.feature(*key)
        interval = next(i for i in manifest.intervals if interval_token(i) == row.interval)

        def link(k: Key, interval: int = interval, row: Row = row) -> Link:
            return Link(column_of(manifest.feature(*k), k[1], interval), anchors.get((row.interval, k)))

        depends = [link(k) for k in dict.fromkeys(f.deps_of(key[1]))]
        used_by = [link(k) for k in users.get(key, []) if interval in computed_at(manifest, manifest.feature(*k))]
        entries.append(
            Entry(
                anchor=_anchor(row),
                column=row.column,
                feature=f.name,
                instrument=row.instrument,
                interval=row.interval,
                target=f.is_target,
                description=f.description,
                formula=f.formula,
                resolved=resolved[where],
                spec=row.spec,
                tags=f.tags,
                window=window_text(f),
                warmup=warmup_text(manifest, f, interval),
                lookahead=lookahead_text(f),
                depends=tuple(depends[:LINK_CAP]),
                depends_more=max(0, len(depends) - LINK_CAP),
                used_by=tuple(used_by[:LINK_CAP]),
                used_by_more=max(0, len(used_by) - LINK_CAP),
                lineage=lineage(manifest, key, interval, lambda k, i=row.interval: anchors.get((i, k))),
                plot=plot,
                plot_note=note,
            )
        )
    run_note = "" if files else f"no output files in {manifest.project.output_dir}/: run fspec run first for the plots"
    return Catalog(
        project=manifest.root.resolve().name,
        fspec_version=__version__,
        spec_hash=manifest.data.spec_hash[:12],
        entries=tuple(entries),
        features=len({(e.interval if e.interval in grids else "", e.feature) for e in entries}),
        files_read=tuple(files),
        run_note=run_note,
    )


def _event_feature(grid: GridDef, name: str) -> EventFeatureDef:
    return next(f for f in grid.features if f.name == name)


def _event_entry(grid: GridDef, row: Row, plot: Sparkline | None, note: str) -> Entry:
    """An event grid's column: one value per event; its windows are in time before the event's cut."""
    f = _event_feature(grid, row.feature)

    def anchor(name: str) -> str | None:
        dep = _event_feature(grid, name)
        return f"c-{grid.name}-{grid.column(name)}" if dep.publish else None

    depends = [Link(grid.column(d), anchor(d)) for d in dict.fromkeys(f.deps)]
    used_by = [Link(grid.column(u.name), anchor(u.name)) for u in grid.features if f.name in u.deps]
    return Entry(
        anchor=_anchor(row),
        column=row.column,
        feature=f.name,
        instrument=row.instrument,
        interval=row.interval,
        target=f.is_target,
        description=f.description,
        formula=f.formula,
        resolved=f.resolved,
        spec=row.spec,
        tags=f.tags,
        window=event_window_text(grid, f),
        warmup=f"one row per event of '{grid.events}' (the instrument in its column '{grid.instrument_column}'); "
        f"reads reach {f.lookback_ns / 1e9:g} s before each event's cut",
        lookahead=event_lookahead_text(grid, f),
        depends=tuple(depends[:LINK_CAP]),
        depends_more=max(0, len(depends) - LINK_CAP),
        used_by=tuple(used_by[:LINK_CAP]),
        used_by_more=max(0, len(used_by) - LINK_CAP),
        lineage=event_lineage(grid, f, lambda name: anchor(name)),
        plot=plot,
        plot_note=note,
    )


def write_catalog(
    manifest: Manifest,
    out_dir: Path,
    words: Sequence[str] | None = None,
    state: Path | None = None,
    on_progress: Progress | None = None,
) -> tuple[Path, Catalog]:
    """Build the catalog and write ``out_dir/index.html`` (through a temp file: never half a page)."""
    root = manifest.root
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(display(out_dir, root), "is a file, not a folder", "pass --out a folder (default build/docs)")
    catalog = build_catalog(manifest, words, state, on_progress)
    text = render_catalog(catalog)
    path = out_dir / "index.html"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".index.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        follow_umask(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        shown = display(path, root)
        raise OutputError(
            shown, f"cannot be written ({exc.strerror or exc})", "pass --out a folder you can write"
        ) from None
    return path, catalog


def render_catalog(catalog: Catalog) -> str:
    text = resources.files("fspec.compiler").joinpath("templates/catalog.html.j2").read_text(encoding="utf-8")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["px"] = lambda v: f"{v:.1f}".removesuffix(".0")
    return env.from_string(text).render(c=catalog)


def _key(row: Row) -> Key:
    return (row.feature, row.instrument or None)


def _anchor(row: Row) -> str:
    return f"c-{row.interval}-{row.column}"  # names are [a-z0-9_]: safe in an id and a URL fragment


def _number(value: float) -> str:
    return f"{value:.6g}"


# ---- lineage ------------------------------------------------------------------------------------------------


def lineage(manifest: Manifest, key: Key, interval: int, anchor: Callable[[Key], str | None]) -> Lineage:
    """The columns ``key`` is computed from, back to the sources they reduce, as a layered left-to-right graph:
    sources in the first layer, each column one layer right of the deepest thing it reads."""
    names: dict[Any, str] = {}
    kinds: dict[Any, str] = {}
    inputs: dict[Any, list[Any]] = {}
    for k in with_dependencies(manifest, [key]):  # dependencies first
        f = manifest.feature(*k)
        names[k] = column_of(f, k[1], interval)
        kinds[k] = "self" if k == key else "target" if f.is_target else "helper" if not f.publish else "feature"
        reads = []
        for node in tree_nodes(f.tree):
            if "slot" in node or "column" in node:
                inst = node["instrument"] or k[1] or ""
                source = ("source", inst, node["source"])
                names[source] = _source_label(manifest, inst, node["source"])
                kinds[source] = "source"
                reads.append(source)
                # what that source's values are computed from: a chain of trades' quotes, a carry underlying
                known = manifest.project.instruments.get(inst)
                concrete = known.concrete(node["source"]) if known else node["source"]
                for other in chain_inputs(manifest.project.sources, concrete):
                    read = ("source", inst, other)
                    names[read] = _source_label(manifest, inst, other)
                    kinds[read] = "source"
                    reads.append(read)
        inputs[k] = list(dict.fromkeys([*reads, *dict.fromkeys(f.deps_of(k[1]))]))
    return _layout(names, kinds, inputs, anchor)


def event_lineage(grid: GridDef, feature: EventFeatureDef, anchor: Callable[[str], str | None]) -> Lineage:
    """The same graph for a feature of an event grid: the grid's features it reads, back to the market sources
    and the events' own columns (source '' in its tree: the grid's events source)."""
    by_name = {f.name: f for f in grid.features}
    order: dict[str, None] = {}

    def visit(name: str) -> None:
        if name not in order:
            for dep in by_name[name].deps:
                visit(dep)
            order[name] = None

    visit(feature.name)
    names: dict[Any, str] = {}
    kinds: dict[Any, str] = {}
    inputs: dict[Any, list[Any]] = {}
    for name in order:  # dependencies first
        f = by_name[name]
        names[name] = grid.column(name)
        kinds[name] = "self" if f is feature else "target" if f.is_target else "helper" if not f.publish else "feature"
        reads = []
        for node in tree_nodes(f.tree):
            if "slot" in node or "column" in node:
                source = ("source", node["source"] or grid.events)
                names[source] = source[1] + ("" if node["source"] else " (the events)")
                kinds[source] = "source"
                reads.append(source)
        inputs[name] = list(dict.fromkeys([*reads, *f.deps]))
    return _layout(names, kinds, inputs, anchor)


def _layout(
    names: dict[Any, str], kinds: dict[Any, str], inputs: dict[Any, list[Any]], anchor: Callable[[Any], str | None]
) -> Lineage:
    """Boxes and edges of a graph whose ``inputs`` (each node's, nodes in dependency order) end at sources."""
    depth: dict[Any, int] = {n: 0 for n in names if kinds[n] == "source"}
    for node in inputs:  # dependency order: what a column reads has its depth already
        depth[node] = 1 + max((depth[i] for i in inputs[node]), default=0)
    layers: list[list[Any]] = [[] for _ in range(max(depth.values()) + 1)]
    for node in names:
        layers[depth[node]].append(node)
    layers = [layer for layer in layers if layer]  # no source (a column of constants): no first layer
    placed: dict[Any, int] = {}
    shown: list[list[tuple[Any, str, str]]] = []  # (node, label, kind) per layer
    for d, layer in enumerate(layers):
        # order each layer by the mean position of what it reads (fewer crossings), then by name; what reads
        # nothing drawn (its inputs folded into "+N more") comes last
        def centre(n: Any) -> float:
            seen = [placed[i] for i in inputs.get(n, []) if i in placed]
            return sum(seen) / len(seen) if seen else float("inf")

        layer.sort(key=lambda n: (centre(n) if d else 0.0, natural_key(names[n])))
        kept = layer if len(layer) <= LAYER_CAP else layer[: LAYER_CAP - 1]
        row = [(n, names[n], kinds[n]) for n in kept]
        if len(kept) < len(layer):
            row.append((("more", d), f"+{len(layer) - len(kept)} more", "more"))
        for i, (n, _, _) in enumerate(row):
            placed[n] = i
        shown.append(row)
    widths = [max(len(label) for _, label, _ in row) * CHAR_WIDTH + 2 * NODE_PAD for row in shown]
    tallest = max(len(row) for row in shown)
    height = tallest * NODE_HEIGHT + (tallest - 1) * ROW_GAP + 2 * NODE_PAD
    boxes: dict[Any, GraphNode] = {}
    x = NODE_PAD
    for row, width in zip(shown, widths, strict=True):
        top = (height - (len(row) * NODE_HEIGHT + (len(row) - 1) * ROW_GAP)) / 2
        for i, (n, label, kind) in enumerate(row):
            href = None if kind in ("self", "source", "more") else anchor(n)
            boxes[n] = GraphNode(x, top + i * (NODE_HEIGHT + ROW_GAP), width, label, kind, f"#{href}" if href else None)
        x += width + LAYER_GAP
    edges = []
    for n, ins in inputs.items():
        for i in ins:
            if n in boxes and i in boxes:
                edges.append(_edge(boxes[i], boxes[n]))
    return Lineage(x - LAYER_GAP + NODE_PAD, height, tuple(boxes.values()), tuple(edges))


def _source_label(manifest: Manifest, instrument: str, source: str) -> str:
    """``spy.trades``; with the source that holds the instrument's rows when it is another (``mes.quotes
    (futures_quotes)``)."""
    if not instrument:
        return source
    known = manifest.project.instruments.get(instrument)
    concrete = known.concrete(source) if known else source
    return f"{instrument}.{source}" + (f" ({concrete})" if concrete != source else "")


def _edge(start: GraphNode, end: GraphNode) -> GraphEdge:
    x1, y1 = start.x + start.width, start.y + NODE_HEIGHT / 2
    x2, y2 = end.x - 5, end.y + NODE_HEIGHT / 2
    mid = (x1 + x2) / 2
    path = f"M{x1:.1f} {y1:.1f} C{mid:.1f} {y1:.1f} {mid:.1f} {y2:.1f} {x2:.1f} {y2:.1f}"
    arrow = f"{x2:.1f},{y2 - 4:.1f} {x2 + 5:.1f},{y2:.1f} {x2:.1f},{y2 + 4:.1f}"
    return GraphEdge(path, arrow)


# ---- the run's output ---------------------------------------------------------------------------------------

_FILE = re.compile(r"features_(\d{4})(\d{2})(\d{2})_([a-z0-9_]+)\.parquet")  # a width, session or grid


def _read_output(
    manifest: Manifest, rows: list[Row], resolved: dict[tuple[str, str], str], on_progress: Progress | None
) -> tuple[dict[tuple[str, str], tuple[np.ndarray, tuple[str, ...]]], dict[tuple[str, str], str], list[str]]:
    """Each entry's values in the output files (the last MAX_DAYS days of its interval, in date order), a note
    for each entry without them, and the files read. A column is read only from a file whose metadata says it
    was written with today's resolved formula: values of an earlier definition would be a wrong picture."""
    import pyarrow.parquet as pq

    root = manifest.root
    out_dir = root / manifest.project.output_dir
    by_interval: dict[str, list[Row]] = {}
    for row in rows:
        by_interval.setdefault(row.interval, []).append(row)
    found: dict[str, list[tuple[str, Path]]] = {}
    for path in sorted(out_dir.glob("features_*.parquet")) if out_dir.is_dir() else []:
        match = _FILE.fullmatch(path.name)
        if match and match[4] in by_interval:
            found.setdefault(match[4], []).append((f"{match[1]}-{match[2]}-{match[3]}", path))
    jobs = [(token, day, path) for token, days in found.items() for day, path in days[-MAX_DAYS:]]
    parts: dict[tuple[str, str], list[tuple[str, np.ndarray]]] = {}
    notes: dict[tuple[str, str], str] = {}
    files = []
    iterator: Iterable[tuple[str, str, Path]] = on_progress(jobs, len(jobs)) if on_progress else jobs
    for token, day, path in iterator:
        shown = display(path, root)
        try:
            schema = pq.read_schema(path)
            meta = json.loads((schema.metadata or {}).get(b"fspec", b"{}"))
        except (OSError, ValueError) as exc:  # a damaged or foreign file: a note, not a failed catalog
            for row in by_interval[token]:
                notes[(token, row.column)] = f"{shown} is unreadable ({exc}): run fspec run again"
            continue
        wanted = []
        for row in by_interval[token]:
            written = written_resolved(meta, row.column)
            if written is None:
                notes.setdefault((token, row.column), f"not in {shown}: run fspec run first")
            elif written != resolved[(token, row.column)]:
                notes[(token, row.column)] = f"{shown} holds an earlier definition: run fspec run again"
            else:
                wanted.append(row.column)
        if not wanted:
            continue
        try:
            table = pq.read_table(path, columns=wanted)
        except (OSError, ValueError) as exc:
            for column in wanted:
                notes[(token, column)] = f"{shown} is unreadable ({exc}): run fspec run again"
            continue
        files.append(shown)
        for column in wanted:
            values = table.column(column).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
            parts.setdefault((token, column), []).append((day, values))
    series = {}
    for where, pieces in parts.items():
        if where in notes:  # some day's file lacks it or holds another definition: no partial picture
            continue
        series[where] = (np.concatenate([v for _, v in pieces]), tuple(d for d, _ in pieces))
    for row in rows:
        where = (row.interval, row.column)
        if where not in series and where not in notes:
            notes[where] = f"no {row.interval} output file in {manifest.project.output_dir}/: run fspec run first"
    return series, notes, files


def _sparkline(values: np.ndarray, days: tuple[str, ...], unit: str = "bars") -> Sparkline | None:
    """Values in time order as a line: each of at most MAX_BUCKETS equal runs of bars draws its lowest and
    highest finite value (so no spike is lost to the sampling), in the order they occur; a run with no finite
    value breaks the line. None if no value is finite."""
    finite = np.isfinite(values)
    if not finite.any():
        return None
    good = values[finite]
    low, high = float(good.min()), float(good.max())
    n = len(values)
    buckets = min(MAX_BUCKETS, n)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    inner_w, inner_h = SPARK_WIDTH - 2 * SPARK_PAD, SPARK_HEIGHT - 2 * SPARK_PAD

    def y_of(v: float) -> float:
        return SPARK_PAD + (inner_h / 2 if high == low else (high - v) / (high - low) * inner_h)

    commands: list[str] = []
    pen_down = False
    for b in range(buckets):
        seg = values[edges[b] : edges[b + 1]]
        ok = np.flatnonzero(np.isfinite(seg))
        if not ok.size:
            pen_down = False
            continue
        x = SPARK_PAD + (inner_w / 2 if buckets == 1 else b / (buckets - 1) * inner_w)
        lo_at, hi_at = ok[np.argmin(seg[ok])], ok[np.argmax(seg[ok])]
        for at in sorted({int(lo_at), int(hi_at)}):
            commands.append(f"{'L' if pen_down else 'M'}{x:.1f} {y_of(float(seg[at])):.1f}")
            pen_down = True
    if len(commands) == 1:  # a single point draws nothing as a path: a short flat stroke instead
        x, y = commands[0][1:].split()
        commands.append(f"L{float(x) + 1:.1f} {y}")
    return Sparkline(
        SPARK_WIDTH,
        SPARK_HEIGHT,
        " ".join(commands),
        low,
        high,
        float(good[-1]),
        n,
        int(finite.sum()),
        days,
        unit,
    )
