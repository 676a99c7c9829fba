"""Selectors: which published columns a command works on (``run``, ``audit``, ``ls``), one function for all.

A selection is one or more words (``--select`` is repeatable, and a word may hold several terms separated by
spaces); the result is the union of every term's columns. A term is

* a name: a feature (``realized_vol``), a column without its interval (``realized_vol_spy``) or a full
  column (``realized_vol_30s_spy``, which also narrows a run to that interval when every term is one);
* a glob over the same names: ``realized_*``, ``*_spy``;
* ``tag:WORD``: the features that list WORD under ``tags:`` in their spec;
* ``state:modified``: the columns whose definition differs from a previous build's (``--state PATH``, a
  ``build/manifest.json`` or the folder holding it): the resolved formula with what each kernel slot computes,
  the parameter and constant values it reads, the definitions and symbols of the sources it reads, its window,
  intervals, clock and publish flag. A column the previous build does not have is modified too. A change in a
  feature it reads is not a change of its own: ``state:modified+`` adds what depends on the modified ones;

and any term may be written ``+TERM`` (with everything it depends on) or ``TERM+`` (with everything that depends
on it), as in dbt. Only published columns are ever selected; a helper (``publish: false``) can be a term's
starting point (``mid+``) but is not itself written. Names are lower snake_case, so terms ignore case.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from fspec.errors import UsageError
from fspec.grain import natural_key
from fspec.manifest import FeatureDef, Key
from fspec.naming import interval_token
from fspec.runtime.columns import with_dependencies
from fspec.runtime.grid import column_name, column_of
from fspec.runtime.manifest import Manifest, read_manifest
from fspec.runtime.universe import with_members

_GLOB = re.compile(r"[*?\[]")


def computed_at(manifest: Manifest, feature: FeatureDef) -> tuple[int, ...]:
    """The intervals a feature's columns are computed at: its own, else the project's (a helper is computed
    there too, only not written)."""
    return tuple(feature.intervals or manifest.project.intervals)


def output_order(manifest: Manifest) -> list[Key]:
    """Published columns in output order: features by file and line, then targets."""
    keys = [key for f in manifest.features if f.publish for key in f.keys]
    keys.sort(key=partial(_output_rank, manifest))
    return keys


def _output_rank(manifest: Manifest, key: Key) -> tuple[bool, int, tuple[tuple[int, int | str], ...]]:
    feature = manifest.feature(*key)  # (looked up once: a universe's file sorts thousands of columns)
    return feature.is_target, feature.order, natural_key(key[1])


def select(
    manifest: Manifest,
    words: Sequence[str] | None,
    intervals: Sequence[int] | None = None,
    state: Path | None = None,
) -> list[Key]:
    """The published columns ``words`` select, in the order the terms name them (each term's in output order).

    ``intervals`` limits which full column names match (default: every interval a column is computed at);
    ``state`` is the previous build ``state:modified`` compares against. Raises UsageError on a name, glob or tag
    that matches nothing; ``state:modified`` may select nothing."""
    keys = output_order(manifest)
    if not words:
        return keys
    chosen: dict[Key, None] = {}
    for word in words:
        for term in word.split() or [word]:
            picked = _term(manifest, term, intervals, state)
            chosen.update((k, None) for k in keys if k in picked and k not in chosen)
    return list(chosen)


def columns_by_interval(
    manifest: Manifest,
    words: Sequence[str] | None,
    intervals: Sequence[int] | None = None,
    state: Path | None = None,
) -> dict[int, list[Key]]:
    """What a run writes: for each interval that gets a file, its selected columns in order. Without
    ``intervals``, terms that are all full column names narrow the run to their intervals."""
    if words and not intervals:
        intervals = _intervals_named(manifest, words)
    widths = list(intervals or manifest.intervals)
    roots = select(manifest, words, widths, state)
    at = {i: [k for k in roots if manifest.published_at(manifest.feature(*k), i)] for i in widths}
    return {i: keys for i, keys in at.items() if keys}


def _names(manifest: Manifest, key: Key, intervals: Sequence[int] | None) -> Iterator[str]:
    f = manifest.feature(*key)
    yield f.name
    yield column_name(f.name, None, key[1])
    for i in computed_at(manifest, f):
        if intervals is None or i in intervals:
            yield column_of(f, key[1], i)


def _term(manifest: Manifest, term: str, intervals: Sequence[int] | None, state: Path | None) -> set[Key]:
    atom = term
    up = atom.startswith("+")
    down = atom.endswith("+") and len(atom) > 1
    atom = atom.removeprefix("+") if up else atom
    atom = atom.removesuffix("+") if down else atom
    atom = atom.strip()
    if not atom:
        raise UsageError(f"--select {term}: no name", "write e.g. +vwap_deviation or vwap+")
    start = _atom(manifest, atom, term, intervals, state)
    found = set(start)
    if up:
        found.update(with_dependencies(manifest, list(start)))
    if down:
        found.update(_dependents(manifest, start))
    published = {k for k in found if manifest.feature(*k).publish}
    if not published and not atom.lower().startswith("state:"):
        helpers = sorted({manifest.feature(*k).name for k in start})
        raise UsageError(
            f"--select {term}: '{helpers[0]}' is a helper (publish: false): it is computed, not written",
            f"select what uses it with {atom}+, or set publish: true",
        )
    return published


def _atom(manifest: Manifest, atom: str, term: str, intervals: Sequence[int] | None, state: Path | None) -> set[Key]:
    if atom.lower().startswith("tag:"):
        tag = atom[4:].lower()
        found = {k for f in manifest.features if tag in f.tags for k in f.keys}
        if not found:
            tags = sorted({t for f in manifest.features for t in f.tags})
            raise UsageError(
                f"--select {term}: no feature has the tag '{tag}'",
                f"tags in this build: {', '.join(tags)}" if tags else "add e.g. tags: [volatility] to a feature",
            )
        return found
    if atom.lower().startswith("state:"):
        if atom.lower() != "state:modified":
            raise UsageError(f"--select {term}: unknown state selector", "the state selector is state:modified")
        if state is None:
            raise UsageError(
                f"--select {term} needs a previous build to compare with",
                "pass --state PATH (a build/manifest.json you kept, or the folder holding it)",
            )
        # a universe's members are found in this project's data, for the previous build as for this one
        return modified(manifest, with_members(Manifest(manifest.root, read_manifest(state).data)))
    atom = atom.lower()
    if _GLOB.search(atom):
        found = {k for k in manifest.keys if any(fnmatch.fnmatchcase(n, atom) for n in _names(manifest, k, intervals))}
        if not found:
            raise UsageError(f"--select {term}: the pattern matches no feature or column", "e.g. realized_* or *_spy")
        return found
    found = {k for k in manifest.keys if atom in set(_names(manifest, k, intervals))}
    grid = next((g for g in manifest.data.grids for f in g.features if atom in (f.name, g.column(f.name))), None)
    if not found and grid is not None:
        raise UsageError(
            f"--select {term}: '{atom}' is on event grid '{grid.name}': a selection picks bar columns",
            f"without a selection, fspec run writes every column of the grid to features_DATE_{grid.name}.parquet "
            "(and fspec audit cuts it)",
        )
    if not found:
        import difflib

        names = sorted({n for k in manifest.keys for n in _names(manifest, k, intervals)})
        close = difflib.get_close_matches(atom, names, n=1)
        raise UsageError(
            f"--select {term}: no feature or column has that name",
            f"did you mean '{close[0]}'?" if close else "list the columns with 'fspec ls'",
        )
    return found


def _dependents(manifest: Manifest, start: set[Key]) -> set[Key]:
    users: dict[Key, list[Key]] = {}
    for key in manifest.keys:
        for dep in manifest.deps(key):
            users.setdefault(dep, []).append(key)
    found, todo = set(start), list(start)
    while todo:
        for user in users.get(todo.pop(), ()):
            if user not in found:
                found.add(user)
                todo.append(user)
    return found


# ---- state:modified --------------------------------------------------------------------------------------


def modified(manifest: Manifest, previous: Manifest) -> set[Key]:
    """The columns of ``manifest`` whose definition differs from ``previous``'s, or that it does not have."""
    before = set(previous.keys)
    return {k for k in manifest.keys if k not in before or definition(manifest, k) != definition(previous, k)}


def definition(manifest: Manifest, key: Key) -> str:
    """What a column's values depend on, apart from the features it reads, as canonical JSON: two builds give
    the same text exactly when the column is defined the same (slot numbers and file positions aside)."""
    f = manifest.feature(*key)
    member = key[1]
    project = manifest.project
    reads: set[tuple[str, str]] = set(manifest.source_reads[key])  # a chain of trades' quotes too
    params: dict[str, Any] = {}

    def param(name: str, instrument: str | None) -> Any:
        if instrument is None:
            return project.constants.get(name)
        return project.instruments[instrument].params.get(name) if instrument in project.instruments else None

    def canonical(node: dict[str, Any]) -> dict[str, Any]:
        if "slot" in node:
            inst = node["instrument"] or member or ""
            text = manifest.slot_text(node["source"], node["slot"])
            for word in set(re.findall(r"[a-z_][a-z0-9_]*", text)):
                if inst in project.instruments and word in project.instruments[inst].params:
                    params[f"{inst}.{word}"] = param(word, inst)
            return {"slot": text, "source": node["source"], "instrument": inst}
        if "param" in node:
            inst = None if node["instrument"] is None else (node["instrument"] or member)
            params[f"{inst or ''}.{node['param']}"] = param(node["param"], inst)
            return {"param": node["param"], "instrument": inst}
        if "column" in node:
            reads.add((node["source"], node["instrument"] or member or ""))
            return {**node, "instrument": node["instrument"] or member}
        if "feature" in node:
            return {**node, "instrument": member if node["instrument"] == "" else node["instrument"]}
        if "args" in node:
            return {**node, "args": [canonical(a) for a in node["args"]]}
        return node

    tree = canonical(f.tree)
    sources = {}
    for source, inst in sorted(reads):
        if inst not in project.instruments:
            continue
        spec = project.source_of(inst, source)
        sources[f"{inst}.{source}"] = {
            "symbol": project.instruments[inst].symbol,
            "source": spec.to_json(),
            "asof": project.sources[spec.asof_source].to_json() if spec.asof_source else None,
            "params": dict(project.instruments[inst].params) if spec.column_trees else None,
        }
    return json.dumps(
        {
            "resolved": f.resolved_for(member),
            "tree": tree,
            "params": params,
            "sources": sources,
            "session": project.session.to_json(),
            "window": list(f.window),
            "warmup_sessions": f.warmup_sessions,
            "intervals": [interval_token(i) for i in computed_at(manifest, f)],
            "clock": f.clock,
            "publish": f.publish,
            "target": f.is_target,
        },
        sort_keys=True,
        default=str,
    )


def _intervals_named(manifest: Manifest, words: Sequence[str]) -> list[int]:
    """The intervals that the terms name, when every term is a full column name with an interval (+ aside)."""
    named: set[int] = set()
    for word in words:
        for term in word.split() or [word]:
            term = term.strip("+")
            hits = {
                i
                for k in manifest.keys
                for i in computed_at(manifest, manifest.feature(*k))
                if term.lower() == column_of(manifest.feature(*k), k[1], i)
            }
            if not hits:
                return []
            named |= hits
    return sorted(named)
