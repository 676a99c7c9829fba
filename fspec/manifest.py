"""The manifest: the typed, versioned contract between ``fspec compile`` and ``fspec run``.

The compiler builds a :class:`ManifestData` and writes it as JSON (``build/manifest.json``); the runtime reads
it back into the same classes and nothing else. Formula trees inside it stay in their JSON form (what
:func:`fspec.compiler.ir.to_json` writes); every other value has a type here. A change of these classes or
their JSON is a new ``MANIFEST_VERSION``: the runtime refuses a manifest of another version.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from fspec import paths
from fspec.grain import EntityKind
from fspec.session import Session

MANIFEST_VERSION = 11

Tree = dict[str, Any]  # a resolved formula tree in its JSON form


def tree_columns(tree: Tree | None) -> list[str]:
    """The source columns a tree reads (a filter's or computed column's: the file's own), leaves in order."""
    if tree is None:
        return []
    if "column" in tree:
        return [tree["column"]]
    return [c for arg in tree.get("args", []) for c in tree_columns(arg)]


Key = tuple[str, str | None]  # (feature, instrument); None for a cross-asset feature


def chain_inputs(sources: Mapping[str, Any], name: str) -> tuple[str, ...]:
    """The other sources whose rows the values of source ``name`` are computed from, nearest first: a chain of
    trades is signed and valued by its chain of quotes (and what that reads), a chain of quotes with ``forward:
    carry`` reads its underlying. Empty for any other source. ``sources`` maps names to the compiler's or the
    manifest's source definitions (both have ``contract``)."""
    contract = getattr(sources.get(name), "contract", None)
    if contract is None:
        return ()
    if contract.quotes is not None:
        return (contract.quotes, *chain_inputs(sources, contract.quotes))
    if contract.forward == "carry" and contract.underlying_source is not None:
        return (contract.underlying_source,)
    return ()


@dataclass(frozen=True)
class ColumnDef:
    """A column of a source as formulas see it: mapped from a file column (times ``scale``) or computed."""

    name: str
    source_column: str
    dtype: str = "float64"
    scale: float = 1.0
    expr: str | None = None


# The column of a time value's rounding to float64 (``sent__residual`` beside a ``dtype: time`` column ``sent``): the
# exact nanoseconds minus the float64 value, a whole number of at most half the spacing of doubles there (128 ns from
# 2006 to 2043, 256 ns to 2116), exact in float64. The compiler writes a difference of two times as the difference of
# their values plus the difference of their residuals, which is exact (compiler/resolve.py,
# ``exact_time_differences``).
TIME_RESIDUAL = "__residual"


@dataclass(frozen=True)
class ContractDef:
    """What makes a source an option chain: the file columns that name each row's contract (expiry, strike,
    right) and the chain's terms. ``settlement`` is the expiry's settlement time in seconds after local
    midnight of the expiry date in ``timezone`` (None: the session's); ``rate`` and ``dividend_yield`` are
    continuously compounded per year, ACT/365 (the only ``day_count``); ``forward`` is ``parity`` (each
    expiry's forward from put-call parity on its own quotes) or ``carry`` (``S·e^((rate - dividend_yield)·T)``
    from the underlying's price as-of the bar end: ``underlying_column`` of the instrument's source
    ``underlying_source``); ``multiplier`` is the underlying's units per contract. A chain of trades names its
    chain of ``quotes`` (a source of the same instrument), whose terms it uses: its own are the defaults, unread.
    See docs/options.md."""

    expiry: str
    strike: str
    right: str
    settlement: int
    timezone: str | None = None
    rate: float = 0.0
    dividend_yield: float = 0.0
    forward: str = "parity"
    underlying_source: str | None = None
    underlying_column: str | None = None
    day_count: str = "ACT/365"
    multiplier: float = 100.0
    quotes: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass(frozen=True)
class SourceDef:
    name: str
    path: str  # template with {symbol} and {date}; without {date} one file holds every day
    format: str
    time_column: str
    time_unit: str | None
    time_zone: str | None
    columns: tuple[ColumnDef, ...]
    filter_tree: Tree | None
    column_trees: dict[str, Tree]  # computed columns
    bar_width: int | None  # seconds; None for a source of events (ticks, quotes)
    bar_stamp: str | None
    unsorted: str
    asof_source: str | None
    asof_columns: tuple[str, ...]
    symbol_column: str | None = None  # a file of many symbols: each instrument reads its symbol's rows
    events_declared: bool = False  # kind: events said: times on a whole-second grid are events all the same
    # a date (or day number) column with the time column as local time of day: digits (clock) or since anchor
    time_date: str | None = None
    time_day: str | None = None
    first_date: str | None = None
    time_clock: str | None = None
    time_anchor: int = 0  # seconds after local midnight
    header: tuple[str, ...] | None = None  # the names of a headerless CSV's columns
    contract: ContractDef | None = None  # an option chain: rows of many contracts (runtime/chain.py)

    @property
    def splits_date_and_time(self) -> bool:
        return self.time_date is not None or self.time_day is not None

    @property
    def holds_many_days(self) -> bool:
        return not paths.date_formats(self.path)

    @property
    def holds_many_symbols(self) -> bool:
        return self.symbol_column is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "format": self.format,
            "time_column": self.time_column,
            "time_unit": self.time_unit,
            "time_zone": self.time_zone,
            "columns": [vars(c) for c in self.columns],
            "filter_tree": self.filter_tree,
            "column_trees": self.column_trees,
            "bar_width": self.bar_width,
            "bar_stamp": self.bar_stamp,
            "unsorted": self.unsorted,
            "asof_source": self.asof_source,
            "asof_columns": list(self.asof_columns),
            "symbol_column": self.symbol_column,
            "events_declared": self.events_declared,
            "time_date": self.time_date,
            "time_day": self.time_day,
            "first_date": self.first_date,
            "time_clock": self.time_clock,
            "time_anchor": self.time_anchor,
            "header": list(self.header) if self.header else None,
            "contract": self.contract.to_json() if self.contract else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SourceDef:
        return cls(
            **(
                data
                | {
                    "columns": tuple(ColumnDef(**c) for c in data["columns"]),
                    "asof_columns": tuple(data["asof_columns"]),
                    "header": tuple(data["header"]) if data.get("header") else None,
                    "contract": ContractDef(**data["contract"]) if data.get("contract") else None,
                }
            )
        )


@dataclass(frozen=True)
class ParamsFile:
    """A universe parameter whose value differs by member (an index weight): the ``value`` column of the table at
    ``path`` (parquet or CSV, relative to the project root), on the row whose ``symbol`` column is the member's."""

    param: str
    path: str
    symbol: str
    value: str


@dataclass(frozen=True)
class UniverseDef:
    """How a universe finds its members: the symbols of one source's files (those matching ``match``), each a
    member whose column suffix is ``suffix`` with {symbol} the symbol in lower case (anything but letters and
    digits written as '_'). ``params_from``: parameters read per member from a table when the members are found
    (the stand-in's value is NaN: unknown when compiling).

    Membership by day (point in time): with ``sessions_before`` N, a symbol is a member on a day only when it
    has rows that day and on each of the N sessions of the universe before it (a new listing joins after N
    sessions); with ``every_session``, only when it has rows on every session of the data (survivorship:
    refused in features, as it reads later days)."""

    source: str
    suffix: str = "{symbol}"
    match: str | None = None
    params_from: tuple[ParamsFile, ...] = ()
    sessions_before: int = 0
    every_session: bool = False

    @property
    def by_day(self) -> bool:
        """Whether membership changes from day to day (beyond a member without rows being NaN that day)."""
        return self.sessions_before > 0 or self.every_session

    def member_key(self, symbol: str) -> str:
        return self.suffix.format(symbol=re.sub(r"[^a-z0-9]", "_", symbol.lower()))

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "suffix": self.suffix,
            "match": self.match,
            "params_from": [asdict(f) for f in self.params_from],
            "sessions_before": self.sessions_before,
            "every_session": self.every_session,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UniverseDef:
        files = tuple(ParamsFile(**f) for f in data["params_from"])
        membership = (int(data["sessions_before"]), bool(data["every_session"]))
        return cls(data["source"], data["suffix"], data["match"], files, *membership)


@dataclass(frozen=True)
class InstrumentDef:
    """An instrument; or, with ``universe``, the stand-in of a universe's members in a compiled build (the
    runtime puts each member found in the data in its place, with its params and sources)."""

    key: str
    symbol: str
    params: dict[str, float]
    sources: tuple[str, ...]  # the source names formulas use for this instrument
    use: dict[str, str]  # source name in formulas -> the source that holds this instrument's data
    universe: UniverseDef | None = None

    def concrete(self, source: str) -> str:
        return self.use.get(source, source)

    def to_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "params": self.params,
            "sources": list(self.sources),
            "use": self.use,
            "universe": self.universe.to_json() if self.universe else None,
        }

    @classmethod
    def from_json(cls, key: str, data: dict[str, Any]) -> InstrumentDef:
        universe = UniverseDef.from_json(data["universe"]) if data["universe"] else None
        return cls(key, data["symbol"], dict(data["params"]), tuple(data["sources"]), dict(data["use"]), universe)


@dataclass(frozen=True)
class ProjectDef:
    sources: dict[str, SourceDef]
    instruments: dict[str, InstrumentDef]
    intervals: tuple[int, ...]
    session: Session
    dates: tuple[str, ...]
    constants: dict[str, float]
    output_dir: str

    def source_of(self, instrument: str, source: str) -> SourceDef:
        """The source that holds ``instrument``'s data for the source name formulas use."""
        return self.sources[self.instruments[instrument].concrete(source)]

    def to_json(self) -> dict[str, Any]:
        return {
            "sources": {n: s.to_json() for n, s in self.sources.items()},
            "instruments": {k: i.to_json() for k, i in self.instruments.items()},
            "intervals": list(self.intervals),
            "session": self.session.to_json(),
            "dates": list(self.dates),
            "constants": self.constants,
            "output_dir": self.output_dir,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProjectDef:
        return cls(
            {n: SourceDef.from_json(s) for n, s in data["sources"].items()},
            {k: InstrumentDef.from_json(k, i) for k, i in data["instruments"].items()},
            tuple(data["intervals"]),
            Session.from_json(data["session"]),
            tuple(data["dates"]),
            dict(data["constants"]),
            data["output_dir"],
        )


@dataclass(frozen=True)
class KernelPart:
    """One file of a source's kernel in parts: a complete kernel module of some of the source's slots (``rows``:
    which of the kernel's slots its own slots are, in order), with its own columns, parameters and constants."""

    module: str
    path: str
    sha256: str
    columns: tuple[str, ...]
    params: tuple[str, ...]  # its instruments' parameters, then its constants' names
    constants: tuple[float, ...]
    rows: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "path": self.path,
            "sha256": self.sha256,
            "columns": list(self.columns),
            "params": list(self.params),
            "constants": list(self.constants),
            "rows": list(self.rows),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KernelPart:
        return cls(
            data["module"],
            data["path"],
            data["sha256"],
            tuple(data["columns"]),
            tuple(data["params"]),
            tuple(float(v) for v in data["constants"]),
            tuple(int(r) for r in data["rows"]),
        )


@dataclass(frozen=True)
class KernelDef:
    """One source's fused tick kernel: a generated module under build/kernels."""

    source: str
    module: str  # content-addressed file stem
    path: str  # relative to the project root
    sha256: str  # of the file's text, checked before the runtime executes it
    columns: tuple[str, ...]
    params: tuple[str, ...]
    slots: tuple[str, ...]  # what each slot computes, as formula text
    # an event kernel over the grid's own events: the events' column grouping its rows ('' for the instrument)
    by: str = ""
    # the values of the formulas' constants its file reads as its last parameters (const__0, ...: the file holds
    # no value of them, so that an edit of one compiles nothing)
    constants: tuple[float, ...] = ()
    # a kernel in parts (compile kept an earlier build's kernel file and put the slots it lacks in a second
    # one): module, path and sha256 are then the first part's, params the instruments' parameters of all parts
    parts: tuple[KernelPart, ...] = ()

    @property
    def files(self) -> tuple[tuple[str, str, str], ...]:
        """(module, path, sha256) of every generated file of the kernel."""
        if self.parts:
            return tuple((p.module, p.path, p.sha256) for p in self.parts)
        return ((self.module, self.path, self.sha256),)

    def slot_path(self, slot: int) -> str:
        """The file whose code computes one of the kernel's slots."""
        return next((p.path for p in self.parts if slot in p.rows), self.path)

    def param_values(self, params: Mapping[str, float]) -> list[float]:
        """The kernel's ``params`` row of one entity: its instrument's parameters (``params``), then the
        constants."""
        own = self.params[: len(self.params) - len(self.constants)]
        return [params[p] for p in own] + list(self.constants)

    @property
    def slot_source(self) -> str:
        """The source name event trees' slots of this kernel go by (``fills@market_slug``)."""
        return f"{self.source}@{self.by}" if self.by else self.source

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "module": self.module,
            "path": self.path,
            "sha256": self.sha256,
            "columns": list(self.columns),
            "params": list(self.params),
            "slots": list(self.slots),
            "by": self.by,
            "constants": list(self.constants),
            "parts": [p.to_json() for p in self.parts],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KernelDef:
        return cls(
            data["source"],
            data["module"],
            data["path"],
            data["sha256"],
            tuple(data["columns"]),
            tuple(data["params"]),
            tuple(data["slots"]),
            data["by"],
            tuple(float(v) for v in data.get("constants", ())),
            tuple(KernelPart.from_json(p) for p in data.get("parts", ())),
        )


@dataclass(frozen=True)
class ChainDef:
    """One option chain source's reducers over its snapshot at each bar end (the chain's "kernel"): slot ``s``
    is ``ops[s]`` (an operator of :mod:`fspec.operators.chain`) with its constants; ``slots`` say what each
    computes, as formula text. Bar trees read them through slot nodes, like a tick kernel's slots."""

    source: str
    ops: tuple[tuple[str, dict[str, float]], ...]
    slots: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "ops": [[op, consts] for op, consts in self.ops], "slots": list(self.slots)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChainDef:
        ops = tuple((str(op), {k: float(v) for k, v in consts.items()}) for op, consts in data["ops"])
        return cls(data["source"], ops, tuple(data["slots"]))


@dataclass(frozen=True)
class FeatureDef:
    """One feature (or target), compiled once for the entities that share its bar tree over kernel slots.

    ``members`` are its instruments, one column each; none for a cross-asset feature (one column without a
    suffix). An instrument of '' in ``tree`` and ``deps`` is each member itself, and ``resolved`` is a
    template whose {instrument} is the member."""

    name: str
    members: tuple[str, ...]
    tree: Tree
    formula: str
    resolved: str
    description: str
    window: tuple[int, int]  # (left, right) bars read around the current bar
    warmup_sessions: int
    publish: bool
    is_target: bool
    deps: tuple[Key, ...]
    sources: tuple[str, ...]
    file: str
    line: int
    order: int  # position in the spec files: the output column order
    intervals: tuple[int, ...] | None  # None: the project's intervals
    clock: str  # "time", or "volume" for a volume-clocked value whose column has no interval
    entity: EntityKind = EntityKind.INSTRUMENT
    # its tree reduces over the members at each bar (cs_rank...): all members are computed together, and each
    # member's column reads its dependencies of every member
    cross_section: bool = False
    tags: tuple[str, ...] = ()  # words to select it by (--select tag:WORD)

    @property
    def keys(self) -> tuple[Key, ...]:
        """One (feature, instrument) per column it writes."""
        return tuple((self.name, m) for m in self.members) if self.members else ((self.name, None),)

    def resolved_for(self, instrument: str | None) -> str:
        return self.resolved.format(instrument=instrument or "")

    def deps_of(self, instrument: str | None) -> tuple[Key, ...]:
        """The (feature, instrument) columns one member reads (of every member, for a cross-section)."""
        if self.cross_section:
            return tuple((name, m) for name, dep in self.deps for m in (self.members if dep == "" else (dep,)))
        return tuple((name, instrument if dep == "" else dep) for name, dep in self.deps)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "members": list(self.members),
            "entity": self.entity.value,
            "tree": self.tree,
            "formula": self.formula,
            "resolved": self.resolved,
            "description": self.description,
            "window": list(self.window),
            "warmup_sessions": self.warmup_sessions,
            "publish": self.publish,
            "is_target": self.is_target,
            "deps": [list(d) for d in self.deps],
            "sources": list(self.sources),
            "file": self.file,
            "line": self.line,
            "order": self.order,
            "intervals": list(self.intervals) if self.intervals else None,
            "clock": self.clock,
            "cross_section": self.cross_section,
            "tags": list(self.tags),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeatureDef:
        return cls(
            name=data["name"],
            members=tuple(data["members"]),
            entity=EntityKind(data["entity"]),
            tree=data["tree"],
            formula=data["formula"],
            resolved=data["resolved"],
            description=data["description"],
            window=(int(data["window"][0]), int(data["window"][1])),
            warmup_sessions=int(data["warmup_sessions"]),
            publish=bool(data["publish"]),
            is_target=bool(data["is_target"]),
            deps=tuple((d[0], d[1]) for d in data["deps"]),
            sources=tuple(data["sources"]),
            file=data["file"],
            line=int(data["line"]),
            order=int(data["order"]),
            intervals=tuple(data["intervals"]) if data["intervals"] else None,
            clock=data["clock"],
            cross_section=bool(data["cross_section"]),
            tags=tuple(data["tags"]),
        )


@dataclass(frozen=True)
class EventFeatureDef:
    """A feature of an event grid: one value per event. ``tree`` reads slots of its grid's kernels (one per
    market source, ``source`` their source) and the events' own columns (slots of source ''), and other
    features of the grid; ``lookback_ns`` is how far before an event's cut its windows reach."""

    name: str
    tree: Tree
    formula: str
    resolved: str
    description: str
    publish: bool
    is_target: bool
    deps: tuple[str, ...]  # features of the same grid it reads
    sources: tuple[str, ...]
    lookback_ns: int
    file: str
    line: int
    order: int
    tags: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return vars(self) | {"deps": list(self.deps), "sources": list(self.sources), "tags": list(self.tags)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EventFeatureDef:
        return cls(
            **(data | {"deps": tuple(data["deps"]), "sources": tuple(data["sources"]), "tags": tuple(data["tags"])})
        )


@dataclass(frozen=True)
class GridDef:
    """An event grid: one output row per row of source ``events`` (in time order, ties in file order), each the
    event of the instrument whose symbol its ``instrument_column`` holds. ``event_columns`` are the events' own
    columns that formulas read (slot k of source ''); ``keep`` are file columns passed through unchanged."""

    name: str
    events: str
    instrument_column: str
    universe: str | None
    latency_ns: int
    keep: tuple[str, ...]
    suffix: str
    event_columns: tuple[str, ...]
    kernels: tuple[KernelDef, ...]
    features: tuple[EventFeatureDef, ...]  # in dependency order

    @property
    def lookback_ns(self) -> dict[str, int]:
        """How far before a cut each market source is read (the widest window and ago over it)."""
        found: dict[str, int] = {}
        for f in self.features:
            for s in f.sources:
                found[s] = max(found.get(s, 0), f.lookback_ns)
        return found

    def column(self, feature: str) -> str:
        return f"{feature}_{self.suffix}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "events": self.events,
            "instrument_column": self.instrument_column,
            "universe": self.universe,
            "latency_ns": self.latency_ns,
            "keep": list(self.keep),
            "suffix": self.suffix,
            "event_columns": list(self.event_columns),
            "kernels": [k.to_json() for k in self.kernels],
            "features": [f.to_json() for f in self.features],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GridDef:
        return cls(
            data["name"],
            data["events"],
            data["instrument_column"],
            data["universe"],
            int(data["latency_ns"]),
            tuple(data["keep"]),
            data["suffix"],
            tuple(data["event_columns"]),
            tuple(KernelDef.from_json(k) for k in data["kernels"]),
            tuple(EventFeatureDef.from_json(f) for f in data["features"]),
        )


@dataclass(frozen=True)
class ExportDef:
    """One function of the ahead-of-time library: a compiled function (``module:qualname``), the argument types
    it is exported for (:func:`fspec.jit.type_key`), and the export's name in the library."""

    function: str
    args: tuple[str, ...]
    name: str

    def to_json(self) -> dict[str, Any]:
        return {"function": self.function, "args": list(self.args), "name": self.name}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExportDef:
        return cls(str(data["function"]), tuple(str(a) for a in data["args"]), str(data["name"]))


@dataclass(frozen=True)
class LibraryDef:
    """The extension module of ``fspec compile --aot``: its file (relative to the project), its sha256, and the
    stamp of what it was built from (the kernel files' contents, numba's, Python's and fspec's versions, fspec's
    sources, the CPU). ``fspec run`` uses it only while the stamp is what the run's environment gives."""

    file: str
    module: str  # the extension's module name
    sha256: str
    stamp: dict[str, str]
    exports: tuple[ExportDef, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "module": self.module,
            "sha256": self.sha256,
            "stamp": dict(self.stamp),
            "exports": [e.to_json() for e in self.exports],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LibraryDef:
        return cls(
            str(data["file"]),
            str(data["module"]),
            str(data["sha256"]),
            {str(k): str(v) for k, v in data["stamp"].items()},
            tuple(ExportDef.from_json(e) for e in data["exports"]),
        )


@dataclass(frozen=True)
class ManifestData:
    fspec_version: str
    codegen_version: str
    spec_hash: str
    project: ProjectDef
    kernels: tuple[KernelDef, ...]
    features: tuple[FeatureDef, ...]  # in dependency order
    chains: tuple[ChainDef, ...] = ()  # the option chain sources' reducers, one entry per source
    manifest_version: int = field(default=MANIFEST_VERSION)
    grids: tuple[GridDef, ...] = ()
    library: LibraryDef | None = None  # fspec compile --aot's extension module; a build without it has no key

    def to_json(self) -> dict[str, Any]:
        """Each distinct list of members is written once (``member_sets``), and a feature names it by its index:
        the features of 500 instruments do not repeat 500 names each."""
        sets: dict[tuple[str, ...], int] = {}
        features = []
        for f in self.features:
            features.append(f.to_json() | {"members": sets.setdefault(f.members, len(sets))})
        library = {"library": self.library.to_json()} if self.library is not None else {}
        return library | {
            "manifest_version": self.manifest_version,
            "fspec_version": self.fspec_version,
            "codegen_version": self.codegen_version,
            "spec_hash": self.spec_hash,
            "project": self.project.to_json(),
            "kernels": [k.to_json() for k in self.kernels],
            "chains": [c.to_json() for c in self.chains],
            "member_sets": [list(members) for members in sets],
            "features": features,
            "grids": [g.to_json() for g in self.grids],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ManifestData:
        """Raises KeyError, TypeError or ValueError on a manifest that does not have this version's shape."""
        return cls(
            fspec_version=data["fspec_version"],
            codegen_version=str(data["codegen_version"]),
            spec_hash=data["spec_hash"],
            project=ProjectDef.from_json(data["project"]),
            kernels=tuple(KernelDef.from_json(k) for k in data["kernels"]),
            features=tuple(
                FeatureDef.from_json(f | {"members": data["member_sets"][f["members"]]}) for f in data["features"]
            ),
            chains=tuple(ChainDef.from_json(c) for c in data["chains"]),
            manifest_version=int(data["manifest_version"]),
            grids=tuple(GridDef.from_json(g) for g in data["grids"]),
            library=LibraryDef.from_json(data["library"]) if "library" in data else None,
        )
