"""Resolved instances -> dependency order, composed (left, right) windows and the static lookahead proof."""

from __future__ import annotations

from dataclasses import dataclass, replace
from graphlib import CycleError, TopologicalSorter

from fspec.compiler import ir
from fspec.compiler.formula import Node, diagnostic_at
from fspec.compiler.resolve import Instance, formula_position
from fspec.compiler.unparse import resolved_source
from fspec.errors import Diagnostic
from fspec.operators import REGISTRY, Window

Key = tuple[str, str | None]


@dataclass(frozen=True)
class Graph:
    order: tuple[Instance, ...]
    windows: dict[Key, Window]


def node_window(node: Node, windows: dict[Key, Window], own: str | None = None) -> Window:
    """The bars ``node`` reads around the current bar, composed from its operators' window rules (a feature
    of instrument '' is the instance's ``own``)."""
    if isinstance(node, ir.FeatureRef):
        return windows.get((node.feature, own if node.instrument == "" else node.instrument), Window())
    if not isinstance(node, ir.Apply):
        return Window()
    inner = Window()
    for arg in node.args:
        inner = inner | node_window(arg, windows, own)
    op = REGISTRY[node.op]
    consts = dict(node.consts)
    consts["_grain"] = "tick" if node.grain.is_tick else "bar"  # type: ignore[assignment]
    if node.grain.is_tick or op.kind == "reducer":
        return Window()  # tick state stays inside the session and the bar; nothing after the bar end
    if consts.get("session") and not op.session_default:
        # session=true on a window that carries by default: no earlier session, only its own start
        return replace(inner, anchored=True)
    outer = op.window(inner, consts)
    if outer.left > inner.left and inner.anchored:
        # looking back across a session boundary at a session-anchored value needs that whole session
        outer = replace(outer, sessions=inner.sessions + 1)
    local = op.session_local or (op.session_default and op.restarts(consts))  # restarts in its own bar code
    if local and (inner.left > 0 or inner.sessions > 0 or inner.anchored):
        outer = replace(outer, anchored=True)
    return outer


def _culprit(node: Node, windows: dict[Key, Window], own: str | None) -> Node:
    """The innermost sub-expression that reads past the bar end."""
    for child in node.children():
        if node_window(child, windows, own).right > 0:
            return _culprit(child, windows, own)
    return node


def _key_name(key: Key) -> str:
    return key[0] if key[1] is None else f"{key[1]}.{key[0]}"


def build_graph(instances: list[Instance]) -> tuple[Graph | None, list[Diagnostic]]:
    by_key = {i.key: i for i in instances}
    sorter: TopologicalSorter[Key] = TopologicalSorter()
    for inst in instances:
        sorter.add(inst.key, *[d for d in inst.deps() if d in by_key])
    try:
        order_keys = list(sorter.static_order())
    except CycleError as exc:
        cycle: list[Key] = exc.args[1]
        path = " -> ".join(_key_name(k) for k in reversed(cycle))
        first = by_key[cycle[0]]
        return None, [
            Diagnostic(
                first.spec.name_pos,
                f"features depend on each other in a cycle: {path}",
                "break the cycle, e.g. with lag(x, 1) on a feature that is not in it",
                "cycle",
            )
        ]
    windows: dict[Key, Window] = {}
    problems: list[Diagnostic] = []
    order = []
    # Members of a class share one tree: its window is composed once for each distinct set of dependency windows.
    composed: dict[tuple[int, tuple[Window, ...]], Window] = {}
    for key in order_keys:
        inst = by_key[key]
        memo = (id(inst.tree), tuple(windows.get(d, Window()) for d in inst.deps()))
        if memo not in composed:
            composed[memo] = node_window(inst.tree, windows, inst.instrument)
        window = composed[memo]
        windows[key] = window
        order.append(inst)
        if window.right > 0 and not inst.spec.is_target:
            bad = _culprit(inst.tree, windows, inst.instrument)
            problems.append(
                diagnostic_at(
                    formula_position(inst.spec),
                    bad.span,
                    f"'{resolved_source(bad)}' reads {window.right} bar(s) after the bar end (lookahead)",
                    "features see only data before their bar ends; labels belong under 'targets:'",
                    "lookahead",
                )
            )
    return Graph(tuple(order), windows), problems
