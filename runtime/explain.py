"""`fspec explain COLUMN`: what a column is, where it comes from, and which kernel computes it."""

from __future__ import annotations

from typing import Any

from fspec.errors import UsageError
from fspec.manifest import FeatureDef
from fspec.naming import interval_token
from fspec.runtime.grid import column_name, column_of
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
                (
                    "window:      LOOKAHEAD (a target's): the event's whole bucket, rows after the event included"
                    if "bucket=" in f.resolved
                    else f"window:      no row at or after the cut; windows and ago reach {f.lookback_ns / 1e9:g} s "
                    "before it (asof: the last row before, from the event's session and the one before it)"
                ),
                "depends on:  " + (", ".join(f.deps) or "-"),
            ]
            for source, index in slots:
                k = kernels[source]
                lines.append(f"kernel:      {k.path} slot {index}: {k.slots[index]}")
            return "\n".join(lines)
    return None


def explain_column(manifest: Manifest, column: str) -> str:
    found = _explain_event_column(manifest, column)
    if found is not None:
        return found
    f, instrument, interval = _find(manifest, column)
    kernels = manifest.kernels
    slots = sorted({(n["source"], n["slot"]) for n in _walk(f.tree) if "slot" in n})
    deps = f.deps_of(instrument)  # a formula that reads a feature twice lists it twice: shown once
    lines = [
        f"column:      {column_of(f, instrument, interval) if interval else column_name(f.name, None, instrument)}",
        f"feature:     {f.name}" + (" (target)" if f.is_target else "") + ("" if f.publish else " (helper)"),
        f"instrument:  {instrument or '(cross-asset)'}",
        f"interval:    {_interval_text(interval, computed_at(manifest, f), f.publish)}",
        f"defined at:  {f.file}:{f.line}",
        f"description: {f.description or '-'}",
        f"formula:     {f.formula}",
        f"resolved:    {f.resolved_for(instrument)}",
        f"window:      ({f.window[0]}, {f.window[1]}) bars (left = warm-up history, right = future)",
        "depends on:  " + (", ".join(dict.fromkeys(f"{d[1]}.{d[0]}" if d[1] else d[0] for d in deps)) or "-"),
    ]
    for source, index in slots:
        k = kernels[source]
        lines.append(f"kernel:      {k.path} slot {index}: {k.slots[index]}")
    return "\n".join(lines)
