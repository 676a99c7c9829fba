"""Resolved formula nodes: every name bound to a source column, a feature, or a parameter.

These are the typed intermediate model that lowering, code generation, the manifest and the reference
evaluator read. Every node has a :class:`fspec.grain.Grain`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from fspec.compiler.formula import Node
from fspec.grain import BAR, INVALID, SCALAR, Grain
from fspec.grain import tick as tick_grain

__all__ = ["BAR", "INVALID", "SCALAR", "Grain", "tick_grain"]


@dataclass(frozen=True)
class Const(Node):
    value: float
    grain: Grain = SCALAR


@dataclass(frozen=True)
class Text(Node):
    """A text compared with a file's text column (filters and computed columns only)."""

    value: str
    grain: Grain = SCALAR


@dataclass(frozen=True)
class Column(Node):
    """A column of a source for one instrument ('' inside a kernel, where the instrument is an argument)."""

    source: str
    column: str
    instrument: str

    @property
    def grain(self) -> Grain:
        # ticks of two instruments are different rows, even from the same source
        return tick_grain(self.source, self.instrument)


@dataclass(frozen=True)
class ParamRef(Node):
    """An instrument parameter (``instrument`` set) or a project constant like ``periods_per_year``."""

    name: str
    instrument: str | None
    grain: Grain = SCALAR


@dataclass(frozen=True)
class FeatureRef(Node):
    """The bar values of another feature; ``instrument`` is None for a cross-asset feature."""

    feature: str
    instrument: str | None
    grain: Grain = BAR


@dataclass(frozen=True)
class Apply(Node):
    """A registered operator on expression arguments, with its constant parameters (``k``, ``n``…)."""

    op: str
    args: tuple[Node, ...]
    consts: tuple[tuple[str, float], ...]
    grain: Grain

    def children(self) -> tuple[Node, ...]:
        return self.args

    def with_children(self, children: tuple[Node, ...]) -> Node:
        return replace(self, args=tuple(children))

    def const(self, name: str) -> float:
        return dict(self.consts)[name]


def to_json(node: Node) -> dict[str, Any]:
    """A plain-JSON form of a resolved tree (the manifest's format)."""
    if isinstance(node, Const):
        return {"const": node.value}
    if isinstance(node, Text):
        return {"text": node.value}
    if isinstance(node, Column):
        return {"column": node.column, "source": node.source, "instrument": node.instrument}
    if isinstance(node, ParamRef):
        return {"param": node.name, "instrument": node.instrument}
    if isinstance(node, FeatureRef):
        return {"feature": node.feature, "instrument": node.instrument}
    if isinstance(node, SlotRef):
        return {"slot": node.slot, "source": node.source, "instrument": node.instrument}
    if isinstance(node, Apply):
        return {
            "op": node.op,
            "args": [to_json(a) for a in node.args],
            "consts": dict(node.consts),
            "grain": node.grain.to_json(),
        }
    raise TypeError(f"not a resolved node: {node!r}")


def from_json(data: dict[str, Any]) -> Node:
    if "const" in data:
        return Const(float(data["const"]))
    if "text" in data:
        return Text(data["text"])
    if "column" in data:
        return Column(data["source"], data["column"], data["instrument"])
    if "param" in data:
        return ParamRef(data["param"], data["instrument"])
    if "feature" in data:
        return FeatureRef(data["feature"], data["instrument"])
    if "slot" in data:
        return SlotRef(data["source"], int(data["slot"]), data["instrument"])
    return Apply(
        data["op"],
        tuple(from_json(a) for a in data["args"]),
        tuple(sorted(data["consts"].items())),
        Grain.from_json(data["grain"]),
    )


@dataclass(frozen=True)
class SlotRef(Node):
    """The bar output of one reducer slot of a source's fused tick kernel, for one instrument."""

    source: str
    slot: int
    instrument: str
    grain: Grain = BAR


def relative(node: Node, own: str) -> Node:
    """The tree with instrument ``own`` written as '' (its member itself): columns, parameters, features,
    slots and tick grains of "the instance's own instrument", so that one tree serves every member."""
    if not own:
        return node
    from fspec.compiler.formula import transform

    def fn(n: Node) -> Node:
        if isinstance(n, Column | SlotRef | FeatureRef | ParamRef) and n.instrument == own:
            return replace(n, instrument="")
        if isinstance(n, Apply) and n.grain.entity is not None and n.grain.entity.key == own:
            return replace(n, grain=n.grain.for_any_entity())
        return n

    return transform(node, fn)


def bind(node: Node, own: str | None) -> Node:
    """The inverse of :func:`relative`: '' written as instrument ``own`` again (a tree of one instance)."""
    if not own:
        return node
    from fspec.compiler.formula import transform

    def fn(n: Node) -> Node:
        if isinstance(n, Column | SlotRef | FeatureRef | ParamRef) and n.instrument == "":
            return replace(n, instrument=own)
        return n

    return transform(node, fn)


def strip_instrument(node: Node) -> Node:
    """The same tick expression with instrument bindings removed (kernels take the instrument as input)."""
    from fspec.compiler.formula import transform

    def fn(n: Node) -> Node:
        if isinstance(n, Column):
            return replace(n, instrument="")
        if isinstance(n, ParamRef) and n.instrument is not None:
            return replace(n, instrument="")
        if isinstance(n, Apply):
            return replace(n, grain=n.grain.for_any_entity())
        return n

    return transform(node, fn)
