"""Which columns a run computes and writes: published features in output order, --select, dependencies."""

from __future__ import annotations

from fspec.errors import UsageError
from fspec.grain import natural_key
from fspec.manifest import Key
from fspec.runtime.grid import column_name, column_of
from fspec.runtime.manifest import Manifest


def with_dependencies(manifest: Manifest, roots: list[Key]) -> list[Key]:
    """The columns ``roots`` need, dependencies before dependents (what ``Engine.compute`` takes)."""
    seen: dict[Key, None] = {}  # insertion-ordered, with constant-time membership

    def visit(key: Key) -> None:
        if key in seen:
            return
        for dep in manifest.deps(key):
            visit(dep)
        seen[key] = None

    for key in roots:
        visit(key)
    return list(seen)


def published(manifest: Manifest, select: list[str] | None, intervals: list[int]) -> list[Key]:
    """Published columns in output order (features by file and line, then targets), filtered by --select."""
    keys = [key for f in manifest.features if f.publish for key in f.keys]
    keys.sort(key=lambda k: (manifest.feature(*k).is_target, manifest.feature(*k).order, natural_key(k[1])))
    if not select:
        return keys
    chosen = []
    for word in select:
        matches = [k for k in keys if word in (k[0], column_name(k[0], None, k[1]))]
        matches += [k for k in keys if any(word == column_of(manifest.feature(*k), k[1], i) for i in intervals)]
        if not matches:
            raise UsageError(
                f"--select {word}: no published feature or column has that name",
                "list them with 'fspec explain' or see build/manifest.json",
            )
        chosen += [m for m in matches if m not in chosen]
    return chosen


def _intervals_named(manifest: Manifest, select: list[str]) -> list[int]:
    """The intervals that --select words name, when every word is a full column name with an interval."""
    named = set()
    for word in select:
        hits = {
            i for k in manifest.keys for i in manifest.intervals if word == column_of(manifest.feature(*k), k[1], i)
        }
        if not hits:
            return []
        named |= hits
    return sorted(named)
