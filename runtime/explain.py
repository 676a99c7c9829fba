"""`fspec explain COLUMN`: what a column is, where it comes from, and which kernel computes it."""

from __future__ import annotations

from typing import Any

from fspec.errors import UsageError
from fspec.manifest import FeatureDef
from fspec.naming import interval_token
from fspec.runtime.grid import column_name, column_of
from fspec.runtime.manifest import Manifest


def _find(manifest: Manifest, column: str) -> tuple[FeatureDef, str | None, int | None]:
    for name, instrument in manifest.keys:
        f = manifest.feature(name, instrument)
        if column == name or column == column_name(name, None, instrument):
            return f, instrument, None
        for interval in manifest.intervals:
            if column == column_of(f, instrument, interval):
                return f, instrument, interval
    names = sorted({column_of(manifest.feature(*k), k[1], i) for k in manifest.keys for i in manifest.intervals})
    import difflib

    close = difflib.get_close_matches(column, names, n=1)
    raise UsageError(f"no column '{column}' in this build", f"did you mean '{close[0]}'?" if close else "")


def _walk(tree: dict[str, Any]) -> list[dict[str, Any]]:
    out = [tree]
    for arg in tree.get("args", []):
        out += _walk(arg)
    return out


def _interval_text(interval: int | None, intervals: list[int]) -> str:
    if interval is not None:
        return interval_token(interval)
    return "every interval: " + ", ".join(interval_token(i) for i in intervals)


def explain_column(manifest: Manifest, column: str) -> str:
    f, instrument, interval = _find(manifest, column)
    kernels = manifest.kernels
    slots = sorted({(n["source"], n["slot"]) for n in _walk(f.tree) if "slot" in n})
    lines = [
        f"column:      {column}",
        f"feature:     {f.name}" + (" (target)" if f.is_target else "") + ("" if f.publish else " (helper)"),
        f"instrument:  {instrument or '(cross-asset)'}",
        f"interval:    {_interval_text(interval, manifest.intervals)}",
        f"defined at:  {f.file}:{f.line}",
        f"description: {f.description or '-'}",
        f"formula:     {f.formula}",
        f"resolved:    {f.resolved_for(instrument)}",
        f"window:      ({f.window[0]}, {f.window[1]}) bars (left = warm-up history, right = future)",
        "depends on:  " + (", ".join(f"{d[1]}.{d[0]}" if d[1] else d[0] for d in f.deps_of(instrument)) or "-"),
    ]
    for source, index in slots:
        k = kernels[source]
        lines.append(f"kernel:      {k.path} slot {index}: {k.slots[index]}")
    return "\n".join(lines)
