"""Load YAML keeping the file position of every mapping key and value."""

from __future__ import annotations

import math
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
    dropped: frozenset[tuple[str, int]] = frozenset()  # (section, index) of items left out: schema errors

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


MAX_FILE_BYTES = 1 << 20  # a spec file of 1 MiB is far past any feature library; a bigger one is a mistake
MAX_VALUES = 100_000  # keys and values after YAML aliases are expanded ("billion laughs" stops here)


class _TooLarge(Exception):
    """The document expands past MAX_VALUES values, or an alias contains itself."""

    def __init__(self, message: str, position: Position):
        super().__init__(message)
        self.position = position


def _build(
    doc: SourceDoc, node: yaml.Node, path: PathKey, problems: list[Diagnostic], open_nodes: set[int] | None = None
) -> Any:
    open_nodes = set() if open_nodes is None else open_nodes
    if id(node) in open_nodes:
        raise _TooLarge(f"a YAML alias at {path_text(path)} contains itself", _mark(doc.file, node))
    if len(doc.value_pos) >= MAX_VALUES:
        raise _TooLarge(f"the file expands to more than {MAX_VALUES:,} values (YAML aliases?)", _mark(doc.file, node))
    doc.value_pos[path] = _mark(doc.file, node)
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        open_nodes.add(id(node))
        try:
            return _build_collection(doc, node, path, problems, open_nodes)
        finally:
            open_nodes.discard(id(node))
    doc.scalar_style[path] = node.style
    doc.segments[path] = _segments(doc.text, node)
    try:
        value = yaml.SafeLoader("").construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        problems.append(
            Diagnostic(
                _mark(doc.file, node),
                f"cannot read the value {node.value!r} with tag {node.tag}: {str(exc).splitlines()[0]}",
                "write plain values; spec files use no YAML tags",
            )
        )
        return None
    number = _number_problem(value, node.value)
    if number:
        problems.append(Diagnostic(_mark(doc.file, node), number, "spec files hold finite numbers of ordinary size"))
        return None
    if node.style is None and isinstance(value, date | datetime | int) and not isinstance(value, bool):
        raw = node.value
        if isinstance(value, date | datetime) or ":" in raw:
            # YAML 1.1 reads 2013-10-07 as a date and 9:30 as 570: keep what was written, flag it.
            doc.surprises[path] = (raw, "a date" if isinstance(value, date | datetime) else f"the number {value}")
            return raw
    return value


def _number_problem(value: Any, raw: str) -> str:
    """Why a YAML number cannot be used (NaN, an infinity, an integer past the float range), else ''."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    shown = raw if len(raw) <= 24 else f"{raw[:12]}... ({len(raw)} characters)"
    if isinstance(value, float) and not math.isfinite(value):
        return f"the number {shown} is not finite"
    if isinstance(value, int):
        try:
            float(value)
        except OverflowError:
            return f"the number {shown} is too large"
    return ""


def path_text(path: PathKey) -> str:
    return "/".join(str(p) for p in path) or "the top"


def _build_collection(
    doc: SourceDoc, node: yaml.Node, path: PathKey, problems: list[Diagnostic], open_nodes: set[int]
) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(
                    Diagnostic(
                        _mark(doc.file, key_node),
                        f"a key in {path_text(path)} is a YAML {'list' if key_node.id == 'sequence' else 'mapping'}",
                        "keys are plain names, e.g. name: spread",
                    )
                )
                continue
            key = key_node.value
            child = (*path, key)
            if key in out:
                problems.append(
                    Diagnostic(_mark(doc.file, key_node), f"duplicate key '{key}'", "each key may appear once")
                )
                continue
            doc.key_pos[child] = _mark(doc.file, key_node)
            out[key] = _build(doc, value_node, child, problems, open_nodes)
        return out
    return [_build(doc, item, (*path, i), problems, open_nodes) for i, item in enumerate(node.value)]


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
    elif problem == "mapping values are not allowed here":
        hint = 'quote text that holds ": ", e.g. description: "spread: over the mid"'
    elif context and "quoted scalar" in context and where:
        hint = f"close the quote opened at {where.line + 1}:{where.column + 1}"
    elif "another document" in problem:
        hint = "one document per spec file: remove the '---' line, or split the file in two"
    return Diagnostic(pos, message, hint, "yaml")


def load_yaml(path: Path, display: str) -> tuple[SourceDoc, list[Diagnostic]]:
    """Parse one file. Syntax errors become diagnostics with the parser's position."""
    doc = SourceDoc(display, None)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return doc, [Diagnostic(Position(display, 1, 1), f"cannot read file: {exc.strerror or exc}")]
    try:
        text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # universal newlines, as read_text
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        start = raw.rfind(b"\n", 0, exc.start) + 1
        column = len(raw[start : exc.start].decode("utf-8", errors="replace")) + 1
        return doc, [
            Diagnostic(
                Position(display, line, column),
                f"the file is not UTF-8: byte 0x{raw[exc.start]:02X} cannot start or continue a character",
                "save the file as UTF-8 (spec files are UTF-8 text)",
            )
        ]
    doc.text = text
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        return doc, [
            Diagnostic(Position(display, 1, 1), f"the file is larger than {MAX_FILE_BYTES >> 20} MiB", "split it up")
        ]
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        return doc, [Diagnostic(Position(display, 1, 1), "the file nests too deeply", "flatten the YAML")]
    except yaml.MarkedYAMLError as exc:
        return doc, [_syntax_diagnostic(exc, display)]
    except yaml.reader.ReaderError as exc:  # a NUL byte or another character YAML does not allow
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - text.rfind("\n", 0, exc.position)
        character = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return doc, [
            Diagnostic(
                Position(display, line, column),
                f"character U+{character:04X} is not allowed in YAML",
                "remove control characters from the file",
            )
        ]
    except yaml.YAMLError as exc:
        return doc, [Diagnostic(Position(display, 1, 1), f"YAML error: {exc}", "fix the YAML syntax")]
    if node is None:
        doc.data = {}
        return doc, []
    problems: list[Diagnostic] = []
    try:
        doc.data = _build(doc, node, (), problems)
    except _TooLarge as exc:
        return doc, [Diagnostic(exc.position, str(exc), "write the specs out without deep or nested aliases")]
    except RecursionError:
        return doc, [Diagnostic(Position(display, 1, 1), "the file nests too deeply", "flatten the YAML")]
    return doc, problems
