"""Resolved trees -> canonical formula text (for messages, the manifest and `fspec explain`)."""

from __future__ import annotations

from fspec.compiler import ir
from fspec.compiler.formula import Call, Duration, Name, Node, Num, Text, to_source
from fspec.operators import CHAIN, REGISTRY


def to_formula(node: Node) -> Node:
    """Map a resolved tree back onto plain formula nodes, fully qualified."""
    if isinstance(node, ir.Const):
        return Num(node.value)
    if isinstance(node, ir.Text):
        return Text(node.value)
    if isinstance(node, ir.Column):
        parts = (node.instrument, node.source, node.column) if node.instrument else (node.source, node.column)
        return Name(parts)
    if isinstance(node, ir.ParamRef):
        return Name((node.instrument, node.name) if node.instrument else (node.name,))
    if isinstance(node, ir.FeatureRef):
        return Name((node.instrument, node.feature) if node.instrument else (node.feature,))
    if isinstance(node, ir.Apply) and REGISTRY[node.op].kind == CHAIN:
        from fspec.compiler.chain import chain_formula

        return chain_formula(node)
    if isinstance(node, ir.Apply):
        args = tuple(to_formula(a) for a in node.args)
        consts = dict(node.consts)
        # a window given in time prints as written (5m), not as its bars at the finest interval
        kwargs = tuple(
            (k, Duration(consts[f"{k}_seconds"]) if f"{k}_seconds" in consts else _constant(k, v))
            for k, v in node.consts
            if not k.endswith("_seconds")
        )
        return Call(node.op, args, kwargs)
    return node


def _constant(name: str, value: float) -> Node:
    if name == "session":  # a flag is recorded only where it is not the operator's default
        return Name(("true" if value else "false",))
    return Num(value)


def resolved_source(node: Node) -> str:
    return to_source(to_formula(node))
