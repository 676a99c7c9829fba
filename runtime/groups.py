"""Entity groups: the instruments of a run split into groups that share nothing, so each is computed on its own.

Two instruments are linked when one column reads both: a cross-asset feature (``basis_mes_spy``), a member of a
cross-section (its value depends on every member's), an index over a universe, or a feature of one instrument
that reads another's; the members of a universe whose membership is by day are linked too (a member's days of
membership count the sessions on which any member has rows). Linked instruments, and linked instruments of
linked ones, form an atom that is never split; the atoms are then packed in order into groups of about ``size``
instruments, or, given each instrument's weight (the dask engine weighs its input bytes), into as many groups of
about equal weight. The links are found from the manifest's typed dependencies (each column's ``deps`` and the
instruments its slots read), never from column names.

A group's columns are computed from its own instruments' data alone, and each of its values equals the one a
computation of every instrument together gives (rows of a bar tree are independent unless a cross-section
reads across them, and a cross-section's members are one atom), so a day's file assembled from its groups is
byte-identical to the file of the whole day. What the groups must share is the warm-up: each interval's halo
sessions are those of the whole day's columns (``Engine.sessions_of``), not of a group's, since an instrument
without data on a day is NaN that day, not a day skipped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from fspec.grain import natural_key
from fspec.manifest import Key
from fspec.runtime.columns import with_dependencies
from fspec.runtime.manifest import Manifest


@dataclass(frozen=True)
class EntityGroup:
    """Instruments computed together, and the columns of the run they write at each interval (in the run's
    order; an interval where they write nothing is absent)."""

    instruments: tuple[str, ...]
    at: dict[int, list[Key]]


class _Links:
    """Union-find over instrument names: each instrument's atom is the set of its representative."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]  # path halving: atoms of 2,000 members stay shallow
            x = self.parent[x]
        return x

    def link(self, names: set[str]) -> None:
        first, *rest = sorted(names)
        root = self.find(first)
        for name in rest:
            other = self.find(name)
            if other != root:
                self.parent[other] = root


def _touches(manifest: Manifest, key: Key) -> set[str]:
    """The instruments one column is about or reads: its own, those whose slots it (or what it uses) reads, and
    those of the columns it reads directly (a dependency that reads no data still ties them)."""
    found = set(manifest.instruments_read[key])
    found |= {inst for _, inst in manifest.deps(key) if inst is not None}
    if key[1] is not None:
        found.add(key[1])
    return found


def atoms(manifest: Manifest, keys: list[Key]) -> list[tuple[str, ...]]:
    """The smallest sets of instruments that computing ``keys`` (and what they need) never splits, each in
    natural order, ordered by their first instrument."""
    links = _Links()
    for key in with_dependencies(manifest, keys):
        touched = _touches(manifest, key)
        if touched:
            links.link(touched)
    for universe in manifest.by_day:  # membership by day counts the sessions of every member: read by one group
        members = set(manifest.members_of[universe])
        if members & links.parent.keys():
            links.link(members)
    by_root: dict[str, list[str]] = {}
    for name in links.parent:
        by_root.setdefault(links.find(name), []).append(name)
    found = [tuple(sorted(names, key=natural_key)) for names in by_root.values()]
    return sorted(found, key=lambda atom: natural_key(atom[0]))


def entity_groups(
    manifest: Manifest, at: dict[int, list[Key]], size: int, weights: Mapping[str, float] | None = None
) -> list[EntityGroup]:
    """The run's columns ``at`` (by interval) split into groups of about ``size`` instruments: atoms packed in
    order, an atom larger than ``size`` a group of its own. With ``weights`` (each instrument's share of the
    work, such as the bytes of its input files), as many groups as that gives, packed to about equal weight
    instead (:func:`_pack_by_weight`): a group of busy instruments is then no longer a task several times as
    long as a group of quiet ones. A column that reads no instrument's data (a constant without a suffix) goes
    to the first group. Every column of ``at`` is in exactly one group."""
    if size < 1:
        raise ValueError(f"group size {size} < 1")
    found = atoms(manifest, [k for keys in at.values() for k in keys])
    if weights is not None and sum(weights.get(i, 0.0) for atom in found for i in atom) > 0:
        packed = _pack_by_weight(found, size, weights)
    else:
        packed = _pack_by_count(found, size)
    if not packed:
        packed = [[]]
    group_of = {inst: g for g, names in enumerate(packed) for inst in names}
    columns: list[dict[int, list[Key]]] = [{} for _ in packed]
    for interval, keys in at.items():
        for key in keys:
            touched = _touches(manifest, key)
            g = group_of[next(iter(touched))] if touched else 0
            columns[g].setdefault(interval, []).append(key)
    return [EntityGroup(tuple(names), cols) for names, cols in zip(packed, columns, strict=True) if cols]


def _pack_by_count(found: list[tuple[str, ...]], size: int) -> list[list[str]]:
    packed: list[list[str]] = []
    for atom in found:
        if packed and len(packed[-1]) + len(atom) <= size:
            packed[-1] += atom
        else:
            packed.append(list(atom))
    return packed


def _pack_by_weight(found: list[tuple[str, ...]], size: int, weights: Mapping[str, float]) -> list[list[str]]:
    """Atoms packed in order into about ceil(instruments / size) groups of about equal weight: an atom joins the
    group being filled while its middle stays within that group's share of the total, else it starts the next
    group (so an atom heavier than a share is a group of its own, and a group never exceeds its share by more
    than half its last atom)."""
    instruments = sum(len(atom) for atom in found)
    share = sum(weights.get(i, 0.0) for atom in found for i in atom) / math.ceil(instruments / size)
    packed: list[list[str]] = []
    filled = 0.0
    for atom in found:
        weight = sum(weights.get(i, 0.0) for i in atom)
        if packed and filled + weight / 2 <= share:
            packed[-1] += atom
            filled += weight
        else:
            packed.append(list(atom))
            filled = weight
    return packed


def auto_group_size(instruments: int, days: int, workers: int) -> int:
    """Instruments per group when ``--group-size`` is not given: whole days while the days alone give every
    worker two tasks (a whole-day task costs least: one task, no assembly step); otherwise days split into as
    many groups as it takes for two tasks per worker."""
    per_day = max(1, math.ceil(2 * workers / max(1, days)))
    return max(1, math.ceil(instruments / per_day))
