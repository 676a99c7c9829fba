"""`fspec audit`: the dynamic proof of no lookahead.

Every published feature is recomputed with the input cut at random bar boundaries (all rows at or after
the cut removed, on that day); each value of a bar that ended at or before the cut must be bit-identical to the
full run. Targets are expected to change: a target that never changes under any cut does not look ahead
and is flagged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fspec.runtime.grid import NS, column_name, column_of
from fspec.runtime.manifest import Manifest
from fspec.runtime.run import Engine, Key, with_dependencies
from fspec.runtime.select import columns_by_interval, output_order
from fspec.runtime.sources import arrow_allocator
from fspec.runtime.universe import with_members


@dataclass(frozen=True)
class Violation:
    column: str
    day: str
    cut_ns: int
    row: int
    ts_event_ns: int
    full: float
    truncated: float

    def render(self) -> str:
        cut = np.datetime64(self.cut_ns, "ns")
        ts = np.datetime64(self.ts_event_ns, "ns")
        return (
            f"{self.column}: cut at {cut}Z changed row {self.row} (ts_event {ts}Z) "
            f"from {self.full!r} to {self.truncated!r}"
        )


@dataclass
class AuditReport:
    cuts: int = 0
    features: int = 0
    targets: int = 0
    rows_compared: int = 0
    violations: list[Violation] = field(default_factory=list)
    static_targets: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def render(self) -> str:
        lines = [
            f"{'features checked':<22}{self.features}",
            f"{'targets checked':<22}{self.targets}",
            f"{'cuts':<22}{self.cuts}",
            f"{'rows compared':<22}{self.rows_compared}",
            f"{'violations':<22}{len(self.violations)}",
        ]
        for v in self.violations[:20]:
            lines.append("LOOKAHEAD " + v.render())
        for t in self.static_targets:
            lines.append(f"note: target {t} never changed under any cut: it does not look ahead")
        return "\n".join(lines)


def _bits(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float64).view(np.int64)


def audit(
    manifest: Manifest,
    cuts: int = 8,
    seed: int = 0,
    dates: list[str] | None = None,
    intervals: list[int] | None = None,
    on_progress: Callable[[Iterable[Any], int], Iterable[Any]] | None = None,
    select: list[str] | None = None,
    state: Path | None = None,
) -> AuditReport:
    """Audit the selected columns (selectors as in runtime/select.py; default: every published column)."""
    manifest = with_members(manifest)
    engine = Engine(manifest)
    at = columns_by_interval(manifest, select, intervals, state)
    whole = not select and not intervals  # a selection or an interval picks bar columns: no event grid
    intervals = [i for i in (intervals or manifest.intervals) if i in at]
    chosen = {k for i in intervals for k in at[i]}
    roots = [k for k in output_order(manifest) if k in chosen]
    # the sessions of bars: the days on which some instrument has data (a day of events only is none)
    days = [
        d
        for d in dates or engine.all_dates()
        if any(d in engine.instrument_dates(i) for i in engine.project.instruments)
    ]
    keys = {i: with_dependencies(manifest, at[i]) for i in intervals}
    features = [k for k in roots if not manifest.feature(*k).is_target]
    targets = [k for k in roots if manifest.feature(*k).is_target]
    report = AuditReport(cuts=cuts if intervals else 0, features=len(features), targets=len(targets))
    with arrow_allocator():  # every file is read here; the cuts reuse what was read
        full = {(d, i): engine.compute(d, i, keys[i]) for d in days for i in intervals}
    rng = np.random.default_rng(seed)
    target_changed: dict[Key, bool] = {k: False for k in targets}
    # Cuts fall on bar boundaries of the finest interval: the strictest test, since the bar that ends at the
    # cut may use everything before it and nothing at or after it.
    bar_widths = [i for i in intervals if i]
    finest = min(bar_widths) if bar_widths else 1  # on the session grid alone: cuts at whole seconds
    plan = [(days[int(rng.integers(len(days)))], float(rng.random())) for _ in range(cuts if days and intervals else 0)]
    iterator: Iterable[tuple[str, float]] = on_progress(plan, len(plan)) if on_progress else plan
    for day, where in iterator:
        open_ns, close_ns = manifest.project.session.bounds(day)
        n_bars = (close_ns - open_ns) // (finest * NS)
        cut_ns = open_ns + (1 + int(where * (n_bars - 1))) * finest * NS
        engine.cut = (day, cut_ns)
        for interval in intervals:
            result = engine.compute(day, interval, keys[interval])
            reference = full[(day, interval)]
            ends = manifest.project.session.bar_ends(day, interval)
            complete = ends <= cut_ns
            n = int(complete.sum())
            for key in (k for k in features if k in at[interval]):
                report.rows_compared += n
                a, b = _bits(reference.values[key][:n]), _bits(result.values[key][:n])
                diff = np.flatnonzero(a != b)
                if diff.size:
                    row = int(diff[0])
                    report.violations.append(
                        Violation(
                            column_of(manifest.feature(*key), key[1], interval),
                            day,
                            cut_ns,
                            row,
                            int(reference.ts_event[row]),
                            float(reference.values[key][row]),
                            float(result.values[key][row]),
                        )
                    )
            for key in (k for k in targets if k in at[interval]):
                if not np.array_equal(_bits(reference.values[key][:n]), _bits(result.values[key][:n])):
                    target_changed[key] = True
        engine.cut = None
    report.static_targets = [column_name(k[0], None, k[1]) for k, changed in target_changed.items() if not changed]
    if whole:
        for grid in manifest.data.grids:
            _audit_grid(engine, grid.name, cuts, rng, dates, report)
    return report


def _audit_grid(
    engine: Engine, name: str, cuts: int, rng: np.random.Generator, dates: list[str] | None, report: AuditReport
) -> None:
    """An event grid's features recomputed with the data cut at random event times: every event up to the cut
    (those at the cut included, which must not see the rows of their own time) must keep its values bit for bit."""
    runner = engine.runners[name]
    grid = runner.grid
    days = [d for d in (dates or engine.grid_dates(name)) if d in engine.grid_dates(name)]
    full = {d: runner.compute(d) for d in days}
    days = [d for d in days if len(full[d].ts_event)]
    features = [f for f in grid.features if f.publish and not f.is_target]
    targets = [f for f in grid.features if f.publish and f.is_target]
    report.features += len(features)
    report.targets += len(targets)
    changed = {f.name: False for f in targets}
    for _ in range(cuts if days else 0):
        day = days[int(rng.integers(len(days)))]
        reference = full[day]
        cut_ns = int(reference.ts_event[int(rng.integers(len(reference.ts_event)))])
        # events after the cut do not exist yet, and market rows end the grid's latency before it: an event at
        # the cut may read only those, so a read of the rows of [t - latency, t) changes its value
        runner.cut, engine.cut = (day, cut_ns), (day, cut_ns - grid.latency_ns)
        result = runner.compute(day)
        runner.cut = engine.cut = None
        n = len(result.ts_event)
        for f in features:
            report.rows_compared += n
            diff = np.flatnonzero(_bits(reference.values[f.name][:n]) != _bits(result.values[f.name]))
            if diff.size:
                row = int(diff[0])
                report.violations.append(
                    Violation(
                        grid.column(f.name),
                        day,
                        cut_ns,
                        row,
                        int(reference.ts_event[row]),
                        float(reference.values[f.name][row]),
                        float(result.values[f.name][row]),
                    )
                )
        for f in targets:
            if not np.array_equal(_bits(reference.values[f.name][:n]), _bits(result.values[f.name])):
                changed[f.name] = True
    report.cuts += cuts if days else 0
    report.static_targets += [grid.column(n) for n, c in changed.items() if not c]
