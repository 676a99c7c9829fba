"""Read build/manifest.json into the typed manifest, and refuse a build that does not match the specs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from fspec import __version__
from fspec.errors import BuildError, UsageError
from fspec.manifest import (
    MANIFEST_VERSION,
    ChainDef,
    FeatureDef,
    KernelDef,
    Key,
    ManifestData,
    ProjectDef,
    UniverseDef,
    chain_inputs,
)
from fspec.project import BUILD_DIR, MANIFEST, spec_hash


@dataclass(frozen=True)
class Manifest:
    """A loaded build: the typed manifest, where it lives, and lookups the runtime makes often."""

    root: Path
    data: ManifestData
    # each universe's members, once a run has found them (:func:`fspec.runtime.universe.with_members`)
    members_of: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # the universes whose membership changes by day (their rule), once their members are found
    by_day: dict[str, UniverseDef] = field(default_factory=dict)

    @property
    def project(self) -> ProjectDef:
        return self.data.project

    @property
    def features(self) -> tuple[FeatureDef, ...]:
        return self.data.features

    @cached_property
    def kernels(self) -> dict[str, KernelDef]:
        return {k.source: k for k in self.data.kernels}

    @cached_property
    def chains(self) -> dict[str, ChainDef]:
        """The option chain sources' reducers, by source (their slots are computed by runtime/chain.py)."""
        return {c.source: c for c in self.data.chains}

    def slot_count(self, source: str) -> int:
        """How many slots a source's kernel (or chain) computes."""
        return len(self.chains[source].slots) if source in self.chains else len(self.kernels[source].slots)

    def slot_text(self, source: str, index: int) -> str:
        """What a slot computes, as formula text."""
        return self.chains[source].slots[index] if source in self.chains else self.kernels[source].slots[index]

    @cached_property
    def intervals(self) -> list[int]:
        """Every bar width some published column is computed at (project intervals and per-feature ones)."""
        grids = set(self.project.intervals)
        for f in self.features:
            grids |= set(f.intervals or ())
        return sorted(grids)

    def published_at(self, feature: FeatureDef, interval: int) -> bool:
        return feature.publish and interval in (feature.intervals or self.project.intervals)

    def feature(self, name: str, instrument: str | None) -> FeatureDef:
        """The compiled feature that writes the column of ``name`` for ``instrument`` (None: cross-asset)."""
        return self._by_key[(name, instrument)]

    @cached_property
    def keys(self) -> tuple[Key, ...]:
        """Every (feature, instrument) column of the build, in dependency order."""
        return tuple(key for f in self.features for key in f.keys)

    @cached_property
    def _by_key(self) -> dict[Key, FeatureDef]:
        return {key: f for f in self.features for key in f.keys}

    def deps(self, key: Key) -> tuple[Key, ...]:
        found = self._deps.get(key)
        if found is None:  # (found once: a run asks for a universe's thousands of columns several times)
            found = self._deps[key] = self._by_key[key].deps_of(key[1])
        return found

    @cached_property
    def _deps(self) -> dict[Key, tuple[Key, ...]]:
        return {}

    @cached_property
    def slot_reads(self) -> dict[Key, frozenset[tuple[str, str]]]:
        """For each column, the (source, instrument) pairs whose kernel slots its own bar tree reads."""
        found: dict[Key, frozenset[tuple[str, str]]] = {}
        for f in self.features:
            pairs = set(_slots_in(f.tree))
            for key in f.keys:
                found[key] = frozenset((source, inst or key[1] or "") for source, inst in pairs)
        return found

    @cached_property
    def source_reads(self) -> dict[Key, tuple[tuple[str, str], ...]]:
        """For each column, the (source, instrument) pairs whose rows its own values are computed from: those
        whose slots it reads, then the sources their values read in turn (a chain of trades' quotes, a carry
        chain's underlying: :func:`fspec.manifest.chain_inputs`), each once. Its lineage of sources."""
        found: dict[Key, tuple[tuple[str, str], ...]] = {}
        project = self.project
        for key, pairs in self.slot_reads.items():
            out: dict[tuple[str, str], None] = {}
            for source, inst in sorted(pairs, key=lambda p: (p[1], p[0])):
                out[(source, inst)] = None
                concrete = project.source_of(inst, source).name if inst in project.instruments else source
                out.update(dict.fromkeys((other, inst) for other in chain_inputs(project.sources, concrete)))
            found[key] = tuple(out)
        return found

    @cached_property
    def instruments_read(self) -> dict[Key, frozenset[str]]:
        """For each column, the instruments whose data it reads, itself or through the features it uses."""
        found: dict[Key, frozenset[str]] = {}
        for key in self.keys:  # dependency order: what a column reads is known before the column
            own = {instrument for _, instrument in self.slot_reads[key]}
            found[key] = frozenset(own.union(*(found[d] for d in self.deps(key) if d in found)))
        return found


def tree_nodes(tree: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of a resolved tree (JSON form), parents before their arguments."""
    yield tree
    for arg in tree.get("args", []):
        yield from tree_nodes(arg)


def _slots_in(tree: dict[str, Any]) -> Iterator[tuple[str, str]]:
    return ((node["source"], node["instrument"]) for node in tree_nodes(tree) if "slot" in node)


def _read(path: Path, shown: str, again: str) -> ManifestData:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BuildError(f"{shown} is unreadable: {exc}", again) from None
    if (
        not isinstance(raw, dict)
        or raw.get("manifest_version") != MANIFEST_VERSION
        or raw.get("fspec_version") != __version__
    ):
        raise BuildError(f"{shown} was written by another fspec version", again)
    try:
        return ManifestData.from_json(raw)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise BuildError(f"{shown} is damaged ({type(exc).__name__}: {exc})", again) from None


def read_manifest(path: Path) -> Manifest:
    """A previous build kept for comparison (``--state PATH``): a manifest file, a build folder or a project
    folder. Only its data is read: its kernel files need not exist and its specs need not match."""
    file = path
    for candidate in (path / MANIFEST, path / BUILD_DIR / MANIFEST):
        if path.is_dir() and candidate.is_file():
            file = candidate
            break
    if not file.is_file():
        raise UsageError(
            f"--state {path}: no manifest there",
            f"pass a {BUILD_DIR}/{MANIFEST} kept from an earlier 'fspec compile' (or the folder holding it)",
        )
    data = _read(file, f"--state {path}", f"compile the earlier specs again with this fspec and keep {MANIFEST}")
    return Manifest(file.parent, data)


def load_manifest(root: Path, *, check_fresh: bool = True) -> Manifest:
    path = root / BUILD_DIR / MANIFEST
    if not path.exists():
        raise BuildError(f"no build found at {BUILD_DIR}/{MANIFEST}", "run 'fspec compile' first")
    data = _read(path, f"{BUILD_DIR}/{MANIFEST}", "run 'fspec compile' again")
    if check_fresh and data.spec_hash != spec_hash(root):
        raise BuildError(
            "the build is stale: specs/ changed since the last 'fspec compile'",
            "run 'fspec compile' (or 'fspec compile && fspec run')",
        )
    for _, path, sha256 in (f for kernel in data.kernels for f in kernel.files):
        file = root / path
        if not file.exists():
            raise BuildError(f"kernel file {path} is missing", "run 'fspec compile' again")
        if hashlib.sha256(file.read_bytes()).hexdigest() != sha256:
            raise BuildError(
                f"kernel file {path} is not the file 'fspec compile' wrote (its hash differs)",
                "generated kernels are not to be edited; run 'fspec compile' again",
            )
    return Manifest(root, data)
