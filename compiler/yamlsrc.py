"""Load YAML keeping the file position of every mapping key and value."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
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
    surprises: dict[PathKey, tuple[str, str]] = field(default_factory=dict)
    scalar_style: dict[PathKey, str | None] = field(default_factory=dict)
    # For each scalar: where each source line of its value starts, as (line, col, length) segments; the
    # value is the segments joined by one character (a space or a newline), as YAML folds them.
    segments: dict[PathKey, tuple[tuple[int, int, int], ...]] = field(default_factory=dict)
    text: str = ""

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
    doc.segments[path] = _segments(doc.text, node)
    value = yaml.SafeLoader("").construct_object(node, deep=True)
    if node.style is None and isinstance(value, date | datetime | int) and not isinstance(value, bool):
        raw = node.value
        if isinstance(value, date | datetime) or ":" in raw:
            # YAML 1.1 reads 2013-10-07 as a date and 9:30 as 570: keep what was written, flag it.
            doc.surprises[path] = (raw, "a date" if isinstance(value, date | datetime) else f"the number {value}")
            return raw
    return value


def _segments(text: str, node: yaml.ScalarNode) -> tuple[tuple[int, int, int], ...]:
    """(line, col, length) of each source line of a scalar's content, 1-based."""
    start, end = node.start_mark, node.end_mark
    raw_lines = text[start.index : end.index].split("\n")
    segments: list[tuple[int, int, int]] = []
    if node.style in ("|", ">"):
        body = raw_lines[1:]
        content = [line for line in body if line.strip()]
        indent = len(content[0]) - len(content[0].lstrip(" ")) if content else 0
        for offset, line in enumerate(body):
            if line.strip():  # a block keeps indentation beyond the block's own
                segments.append((start.line + 2 + offset, indent + 1, len(line.rstrip()) - indent))
        return tuple(segments)
    first_col = start.column + (2 if node.style in ("'", '"') else 1)
    for offset, line in enumerate(raw_lines):
        if offset == 0:
            content = line[1:] if node.style in ("'", '"') else line
            segments.append((start.line + 1, first_col, len(content.rstrip())))
            continue
        stripped = line.lstrip(" ")
        if stripped:
            segments.append((start.line + 1 + offset, len(line) - len(stripped) + 1, len(stripped.rstrip())))
    return tuple(segments)


_OPENERS = {"flow sequence": ("[", "]"), "flow mapping": ("{", "}")}


def _syntax_diagnostic(exc: yaml.MarkedYAMLError, display: str) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    pos = Position(display, mark.line + 1, mark.column + 1) if mark else Position(display)
    problem = exc.problem or exc.context or "invalid YAML"
    message = f"YAML syntax error: {problem}"
    hint = "fix the YAML syntax (indentation, colons, brackets, quotes)"
    context, where = exc.context, exc.context_mark
    if context and where and exc.problem:
        message += f" ({context} started at {where.line + 1}:{where.column + 1})"
        for name, (opener, closer) in _OPENERS.items():
            if name in context:
                hint = f"close the {opener} at {where.line + 1}:{where.column + 1} with {closer}"
    if "\\t" in problem or "\t" in problem:
        hint = "indent with spaces; YAML does not allow tabs"
    return Diagnostic(pos, message, hint, "yaml")


def load_yaml(path: Path, display: str) -> tuple[SourceDoc, list[Diagnostic]]:
    """Parse one file. Syntax errors become diagnostics with the parser's position."""
    doc = SourceDoc(display, None)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return doc, [Diagnostic(Position(display), f"cannot read file: {exc}")]
    doc.text = text
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        return doc, [_syntax_diagnostic(exc, display)]
    if node is None:
        doc.data = {}
        return doc, []
    problems: list[Diagnostic] = []
    doc.data = _build(doc, node, (), problems)
    return doc, problems
