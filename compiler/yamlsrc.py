"""Load YAML keeping the file position of every mapping key and value."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fspec.errors import Diagnostic, Position

PathKey = tuple[str | int, ...]


@dataclass
class SourceDoc:
    """One spec file: its data and where each piece of it stands."""

    file: str
    data: Any
    value_pos: dict[PathKey, Position] = field(default_factory=dict)
    key_pos: dict[PathKey, Position] = field(default_factory=dict)
    scalar_style: dict[PathKey, str | None] = field(default_factory=dict)

    def pos(self, path: PathKey, *, key: bool = False) -> Position:
        """The position of ``path`` (its key if ``key``), falling back to the nearest parent."""
        table = self.key_pos if key else self.value_pos
        probe = tuple(path)
        while probe:
            if probe in table:
                return table[probe]
            if probe in self.value_pos:
                return self.value_pos[probe]
            probe = probe[:-1]
        return self.value_pos.get((), Position(self.file, 1, 1))


def _mark(file: str, node: yaml.Node) -> Position:
    return Position(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _build(doc: SourceDoc, node: yaml.Node, path: PathKey, problems: list[Diagnostic]) -> Any:
    doc.value_pos[path] = _mark(doc.file, node)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            child = (*path, key)
            if key in out:
                problems.append(
                    Diagnostic(_mark(doc.file, key_node), f"duplicate key '{key}'", "each key may appear once")
                )
                continue
            doc.key_pos[child] = _mark(doc.file, key_node)
            out[key] = _build(doc, value_node, child, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(doc, item, (*path, i), problems) for i, item in enumerate(node.value)]
    doc.scalar_style[path] = node.style
    return yaml.SafeLoader("").construct_object(node, deep=True)


def load_yaml(path: Path, display: str) -> tuple[SourceDoc, list[Diagnostic]]:
    """Parse one file. Syntax errors become diagnostics with the parser's position."""
    doc = SourceDoc(display, None)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return doc, [Diagnostic(Position(display), f"cannot read file: {exc}")]
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = Position(display, mark.line + 1, mark.column + 1) if mark else Position(display)
        return doc, [Diagnostic(pos, f"YAML syntax error: {exc.problem or exc.context}", "fix the YAML syntax")]
    if node is None:
        doc.data = {}
        return doc, []
    problems: list[Diagnostic] = []
    doc.data = _build(doc, node, (), problems)
    return doc, problems
