"""The columns a set of columns needs, in dependency order (what they are is chosen by :mod:`select`)."""

from __future__ import annotations

from fspec.manifest import Key
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
