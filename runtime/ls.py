"""`fspec ls [SELECTOR]`: the columns a run would write, one row per column and file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from fspec.naming import interval_token
from fspec.runtime.grid import column_of
from fspec.runtime.manifest import Manifest
from fspec.runtime.select import columns_by_interval
from fspec.runtime.universe import with_members


@dataclass(frozen=True)
class Row:
    column: str
    feature: str
    instrument: str  # '' for a cross-asset column
    interval: str  # the file's bar width (30s, session) or event grid; a volume-clocked column is sampled on it
    clock: str
    target: bool
    spec: str  # file:line of its definition

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def list_columns(manifest: Manifest, words: Sequence[str] | None, state: Path | None = None) -> list[Row]:
    """What ``fspec run --select WORDS`` writes, file by file (intervals in order), columns in file order; a
    universe's members are found in the data, as the run finds them."""
    manifest = with_members(manifest)
    rows = []
    for interval, keys in sorted(columns_by_interval(manifest, words, None, state).items()):
        for key in keys:
            f = manifest.feature(*key)
            rows.append(
                Row(
                    column_of(f, key[1], interval),
                    f.name,
                    key[1] or "",
                    interval_token(interval),
                    f.clock,
                    f.is_target,
                    f"{f.file}:{f.line}",
                )
            )
    if not words:  # a run writes event grids in full (a selection picks bar columns)
        for grid in manifest.data.grids:
            for g in grid.features:
                if g.publish:
                    rows.append(
                        Row(
                            grid.column(g.name),
                            g.name,
                            grid.suffix,
                            grid.name,
                            "event",
                            g.is_target,
                            f"{g.file}:{g.line}",
                        )
                    )
    return rows


def render(rows: list[Row]) -> str:
    """An aligned table and a count line."""
    head = ("column", "feature", "instrument", "interval", "spec")  # an event grid's name for its columns
    table = [head] + [
        (
            r.column,
            r.feature + (" (target)" if r.target else ""),
            r.instrument or "-",
            r.interval + (" (volume clock)" if r.clock == "volume" else ""),
            r.spec,
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in table]
    files = len({r.interval for r in rows})
    lines.append(f"{len(rows)} column(s) of {len({r.feature for r in rows})} feature(s) in {files} file(s) per date")
    return "\n".join(lines)
