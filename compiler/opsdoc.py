"""Render the operator registry as a table (text, markdown or JSON): `fspec ops` and docs/operators.md."""

from __future__ import annotations

import json

from fspec.operators import CONSTANTS, REGISTRY, Window

GRAIN_RULES = {
    "elementwise": "same grain as inputs",
    "tick": "tick -> tick",
    "shift": "tick -> tick, bar -> bar",
    "reducer": "tick -> bar",
    "bar": "bar -> bar",
    "cross_section": "bar -> bar, over a universe's members",
    "event": "tick -> event (event grids)",
    "chain": "option chain -> bar, of its instrument",
}


def window_rule(name: str) -> str:
    """The rule written out by applying it to a symbolic input window (L, R) with constants 10."""
    op = REGISTRY[name]
    if op.kind in ("elementwise", "tick"):
        return "(L, R)"
    if op.kind in ("reducer", "chain"):  # the bar's own ticks, or the chain's snapshot at its end
        return "(0, 0)"
    if op.kind == "event":
        return "before the event"
    consts = {p.name: 10.0 for p in op.params if p.kind != "expr"}
    consts["_grain"] = "bar"  # type: ignore[assignment]
    w = op.window(Window(100, 0), consts)
    dl, dr = w.left - 100, w.right
    left = "L" if dl == 0 else f"L + {dl}" if dl > 0 else f"L - {-dl}"
    names = [p.name for p in op.params if p.kind != "expr"]
    if names and abs(dl) in (9, 10, 11):
        left = left.replace(str(abs(dl)), {9: f"{names[0]} - 1", 10: names[0], 11: f"{names[0]} + 1"}[abs(dl)])
    right = "R" if dr == 0 else f"R + {names[0]}" if dr > 0 else f"R - {names[0]}"
    return f"({left}, {right})"


def rows() -> list[dict[str, str]]:
    return [
        {
            "name": op.name,
            "signature": op.signature,
            "grain": GRAIN_RULES[op.kind],
            "window": window_rule(op.name)
            + (" session-local" if op.session_local or op.session_default else "")
            + ("; session=false: (L + W - 1, R)" if op.session_default else ""),
            "doc": op.doc + (" [targets only]" if op.target_only else ""),
            "edge": op.edge,
        }
        for op in REGISTRY.values()
    ]


def render_ops(fmt: str = "text") -> str:
    table = rows()
    if fmt == "json":
        return json.dumps({"operators": table, "constants": CONSTANTS}, indent=2)
    if fmt == "markdown":
        lines = ["| operator | grain | window (left, right) | what it does | edge cases |", "|---|---|---|---|---|"]
        lines += [f"| `{r['signature']}` | {r['grain']} | {r['window']} | {r['doc']} | {r['edge']} |" for r in table]
        lines += ["", "| constant | meaning |", "|---|---|"]
        lines += [f"| `{k}` | {v} |" for k, v in CONSTANTS.items()]
        return "\n".join(lines)
    width = max(len(r["signature"]) for r in table)
    lines = [f"{'operator'.ljust(width)}  {'grain'.ljust(26)}  {'window'.ljust(24)}  doc"]
    for r in table:
        lines.append(f"{r['signature'].ljust(width)}  {r['grain'].ljust(26)}  {r['window'].ljust(24)}  {r['doc']}")
        if r["edge"]:
            lines.append(f"{''.ljust(width)}  {''.ljust(26)}  {''.ljust(24)}  edge: {r['edge']}")
    return "\n".join(lines)


def operators_page() -> str:
    """The text of docs/operators.md (regenerate with `python -m fspec.compiler.opsdoc > docs/operators.md`)."""
    intro = [
        "# Operators",
        "",
        "Generated from the operator registry (`fspec/operators/`) by "
        "`python -m fspec.compiler.opsdoc > docs/operators.md`; a test keeps this file in sync.",
        "",
        "Window `(L, R)` is the window of the operator's input; the result reads `left` bars of history and "
        "`right` bars of future. Session-local operators restart at each session open; an EWM with "
        "`session=false` carries across sessions over its last W bars (its edge cases say what W is).",
        "",
    ]
    return "\n".join(intro) + render_ops("markdown") + "\n"


if __name__ == "__main__":
    print(operators_page(), end="")
