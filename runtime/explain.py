"""`fspec explain COLUMN`: what a column is, where it comes from, and which kernel computes it."""

from __future__ import annotations

from typing import Any

from fspec.errors import UsageError
from fspec.manifest import EventFeatureDef, FeatureDef, GridDef
from fspec.naming import interval_token
from fspec.runtime.grid import column_name, column_of, history_sessions
from fspec.runtime.manifest import Manifest
from fspec.runtime.select import computed_at


def _find(manifest: Manifest, column: str) -> tuple[FeatureDef, str | None, int | None]:
    """The feature, member and interval a name means; names are lower snake_case, so case is ignored."""
    column = column.lower()
    for name, instrument in manifest.keys:
        f = manifest.feature(name, instrument)
        if column == name or column == column_name(name, None, instrument):
            return f, instrument, None
        for interval in computed_at(manifest, f):
            if column == column_of(f, instrument, interval):
                return f, instrument, interval
    for name, instrument in manifest.keys:  # a real column's name at an interval it is not computed at
        f = manifest.feature(name, instrument)
        if any(column == column_of(f, instrument, i) for i in manifest.intervals):
            at = computed_at(manifest, f)
            raise UsageError(
                f"no column '{column}': '{name}' is computed at {', '.join(interval_token(i) for i in at)} only",
                f"e.g. fspec explain {column_of(f, instrument, at[0])}",
            )
    names = sorted({column_of(f, k[1], i) for f in manifest.features for k in f.keys for i in computed_at(manifest, f)})
    import difflib

    close = difflib.get_close_matches(column, names, n=1)
    raise UsageError(f"no column '{column}' in this build", f"did you mean '{close[0]}'?" if close else "")


def _walk(tree: dict[str, Any]) -> list[dict[str, Any]]:
    out = [tree]
    for arg in tree.get("args", []):
        out += _walk(arg)
    return out


def _interval_text(interval: int | None, intervals: tuple[int, ...], publish: bool) -> str:
    if interval is not None:
        return interval_token(interval)
    shown = ", ".join(interval_token(i) for i in intervals)
    return shown if publish else f"{shown} (computed, not written)"


def event_window_text(grid: GridDef, f: EventFeatureDef) -> str:
    """What an event grid's feature reads around each event: rows strictly before its cut, or (a target's
    ``bucket=``) the event's whole bucket."""
    if "bucket=" in f.resolved:
        return "LOOKAHEAD (a target's): the event's whole bucket, rows after the event included"
    sessions = "two before it with data (a latency)" if grid.latency_ns else "one before it with data"
    return (
        f"no row at or after the cut; windows and ago reach {f.lookback_ns / 1e9:g} s before it (asof: the last "
        f"row before, from the event's session and the {sessions})"
    )


def event_lookahead_text(grid: GridDef, f: EventFeatureDef) -> str:
    """The no-lookahead rule of an event grid: every read is strictly before the event's cut (its time minus the
    grid's latency); ``bucket=``, which reads the whole bucket, is refused in features."""
    cut = f"the event's cut (its time minus the latency, {grid.latency_ns / 1e6:g} ms)"
    if "bucket=" in f.resolved:
        return f"a target: reads rows at and after {cut} in its bucket, which only targets may (no feature reads one)"
    if f.is_target:
        return f"a target that reads only rows strictly before {cut}"
    return f"none: every value reads only rows strictly before {cut} (fspec compile refuses bucket= in features)"


def _explain_event_column(manifest: Manifest, column: str) -> str | None:
    """An event grid's column: its reads, each strictly before the event's cut (its time minus the latency)."""
    for grid in manifest.data.grids:
        for f in grid.features:
            if column.lower() not in (grid.column(f.name), f.name):
                continue
            kernels = {k.slot_source: k for k in grid.kernels}
            slots = sorted({(n["source"], n["slot"]) for n in _walk(f.tree) if "slot" in n and n["source"]})
            lines = [
                f"column:      {grid.column(f.name)}",
                f"feature:     {f.name}" + (" (target)" if f.is_target else "") + ("" if f.publish else " (helper)"),
                f"grid:        {grid.name}: one row per event of '{grid.events}', the instrument in its column "
                f"'{grid.instrument_column}', latency {grid.latency_ns / 1e6:g} ms",
                f"defined at:  {f.file}:{f.line}",
                f"description: {f.description or '-'}",
                f"formula:     {f.formula}",
                f"resolved:    {f.resolved}",
                f"window:      {event_window_text(grid, f)}",
                "depends on:  " + (", ".join(f.deps) or "-"),
            ]
            for source, index in slots:
                k = kernels[source]
                lines.append(f"kernel:      {k.slot_path(index)} slot {index}: {k.slots[index]}")
            return "\n".join(lines)
    return None


def find_column(manifest: Manifest, column: str) -> tuple[FeatureDef, str | None, int | None]:
    """The feature, member and interval (None: a name without one) that ``column`` means; UsageError with a
    suggestion if it means none."""
    return _find(manifest, column)


def window_text(f: FeatureDef) -> str:
    return f"({f.window[0]}, {f.window[1]}) bars (left = warm-up history, right = future)"


def warmup_text(manifest: Manifest, f: FeatureDef, interval: int | None) -> str:
    """The history a run loads for the column: its left window, and the earlier sessions that takes per interval."""
    intervals = [interval] if interval is not None else computed_at(manifest, f)
    sessions = ", ".join(
        f"{history_sessions(f, manifest.project.session, i)} at {interval_token(i)}" for i in intervals
    )
    return f"{f.window[0]} bar(s) back; earlier sessions loaded: {sessions}"


def lookahead_text(f: FeatureDef) -> str:
    """The static proof of no lookahead (compiler/dag.py composes every operator's window up the DAG): a
    feature's right edge is at most 0, or compile would have refused it; only a target may read ahead."""
    right = f.window[1]
    if f.is_target:
        if right > 0:
            return f"a target: reads {right} bar(s) after its bar end, which only targets may (no feature reads one)"
        return f"a target that reads nothing after its bar end (right edge {right})"
    return (
        f"none: the composed window's right edge is {right} (<= 0), so no value reads data after its bar ends "
        "(fspec compile refuses right > 0; fspec audit checks it on data)"
    )


def dependencies(f: FeatureDef, instrument: str | None) -> list[str]:
    """The columns a member reads, each once (a formula that reads a feature twice lists it twice)."""
    return list(dict.fromkeys(f"{d[1]}.{d[0]}" if d[1] else d[0] for d in f.deps_of(instrument)))


def source_lineage(manifest: Manifest, key: tuple[str, str | None]) -> list[str]:
    """``instrument.source`` of every source a column's own values are computed from (a chain of trades' quotes
    included), read directly by its formula, not through the features it depends on."""
    return [f"{inst}.{source}" if inst else source for source, inst in manifest.source_reads.get(key, ())]


def explain_column(manifest: Manifest, column: str) -> str:
    found = _explain_event_column(manifest, column)
    if found is not None:
        return found
    f, instrument, interval = _find(manifest, column)
    kernels = manifest.kernels
    slots = sorted({(n["source"], n["slot"]) for n in _walk(f.tree) if "slot" in n})
    lines = [
        f"column:      {column_of(f, instrument, interval) if interval else column_name(f.name, None, instrument)}",
        f"feature:     {f.name}" + (" (target)" if f.is_target else "") + ("" if f.publish else " (helper)"),
        f"instrument:  {instrument or '(cross-asset)'}",
        f"interval:    {_interval_text(interval, computed_at(manifest, f), f.publish)}",
        f"defined at:  {f.file}:{f.line}",
        f"description: {f.description or '-'}",
        f"formula:     {f.formula}",
        f"resolved:    {f.resolved_for(instrument)}",
        f"window:      {window_text(f)}",
        f"warm-up:     {warmup_text(manifest, f, interval)}",
        f"lookahead:   {lookahead_text(f)}",
        "depends on:  " + (", ".join(dependencies(f, instrument)) or "-"),
        "sources:     " + (", ".join(source_lineage(manifest, (f.name, instrument))) or "-"),
    ]
    for source, index in slots:
        if source in manifest.chains:  # an option chain's reducer over its snapshots (runtime/chain.py)
            lines.append(f"chain:       {source} slot {index}: {manifest.slot_text(source, index)}")
            contract = manifest.project.sources[source].contract if source in manifest.project.sources else None
            if contract is not None and contract.quotes is not None:  # a chain of trades reads its quotes' chain
                lines.append(f"             each trade signed and valued by the quotes of {contract.quotes} before it")
            continue
        k = kernels[source]
        lines.append(f"kernel:      {k.slot_path(index)} slot {index}: {k.slots[index]}")
    return "\n".join(lines)
