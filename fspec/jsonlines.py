"""JSON lines (``format: jsonl``): one JSON object a line, fields picked by name, nested ones by a dotted path.

Feeds and capture tools write a line per message, often with fields of their own before it: a recorder's
receive time, ``1723161254087896568 {"stream": "btcusdt@trade", "data": {"p": "61837.63", ...}}``. A source's
``header:`` names those leading fields (separated by white space) in order; the rest of the line is the JSON
object. ``data.p`` is the field ``p`` of the object ``data``.

Values are typed per column over the whole file, as a CSV reader types them: JSON numbers are numbers (int64
when every one is whole, else float64), true/false are booleans, and text that is a number is a number too
(feeds quote decimals, ``"61837.63000000"``, to keep their digits; a leading field is always text on the
line). Other text stays text (usable in filters: ``stream == 'btcusdt@trade'``); the symbol column stays text
whatever it holds (0700 is not 700). A field absent from a line, null, or holding an object or a list there is
missing on that line (NaN, or no text). Lines of different kinds may share a file: a filter picks the kind a
source reads.
"""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path
from typing import Any

import pyarrow as pa

from fspec.errors import DataError
from fspec.lazy import LazyModule

pc = LazyModule("pyarrow.compute")  # imported where a cast, a take or a filter needs it

MAX_SHOWN_FIELDS = 30  # of the file's fields, in an error about a missing one


def read(
    path: Path,
    wanted: list[str],
    header: tuple[str, ...],
    text: set[str],
    display: str,
    needles: tuple[tuple[str, ...], ...] = (),
) -> pa.Table:
    """The ``wanted`` columns of a JSON-lines file (``header``: the names of the fields before each line's
    object; ``text``: columns kept as text). ``needles``: the source's filter needs, on each row it keeps, one
    text of each group (from :func:`needles_of`): a line holding none of a group's (as JSON, and no escape) is
    not decoded at all, since the filter would drop its row. Raises DataError naming the file, the bad lines
    and the fix."""
    lines = _lines(path, display)
    leading = [c for c in wanted if c in header]
    picked = [c for c in wanted if c not in header]
    at = {name: header.index(name) for name in leading}
    keys = {name: tuple(name.split(".")) for name in picked}
    values: dict[str, list[Any]] = {name: [] for name in wanted}
    seen = {name: False for name in picked}
    bad: list[tuple[int, str]] = []
    width = len(header)
    loads = json.loads
    skipped = False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if needles and "\\" not in line and not all(any(n in line for n in group) for group in needles):
            skipped = True
            continue
        fields = line.split(None, width) if width else [line]
        ahead = next((k for k, f in enumerate(fields[:width]) if f.startswith("{")), min(len(fields), width))
        if ahead < width:  # (the object starts early: a field is missing)
            bad.append((number, f"it has {ahead} field(s) before its JSON object, not {width}"))
            continue
        try:
            obj = loads(fields[width])
        except ValueError as exc:
            bad.append((number, f"it is not JSON ({exc})"))
            continue
        if not isinstance(obj, dict):
            bad.append((number, f"it holds a JSON {type(obj).__name__}, not an object"))
            continue
        for name in leading:
            values[name].append(fields[at[name]])
        for name in picked:
            value: Any = obj
            for key in keys[name]:
                if not isinstance(value, dict) or key not in value:
                    value = _ABSENT
                    break
                value = value[key]
            if value is _ABSENT:
                value = None
            else:
                seen[name] = True
                if isinstance(value, (dict, list)):
                    value = None  # not a value: missing on this line
            values[name].append(value)
    if bad:
        first, why = bad[0]
        raise DataError(
            display,
            f"{len(bad):,} bad line(s) of {len(lines):,}; the first, line {first}: {why}",
            "fix or drop those lines"
            + (f" (each line: {' '.join(header)} then one JSON object)" if header else " (one JSON object a line)"),
        )
    missing = [name for name in picked if not seen[name]]
    if missing:
        fields = fields_of(lines, width)  # (lines not decoded may have them: a column of no value then)
        missing = [name for name in missing if not skipped or name not in fields]
    if missing:
        names = [*header, *fields]
        shown = ", ".join(names[:MAX_SHOWN_FIELDS]) + (" ..." if len(names) > MAX_SHOWN_FIELDS else "")
        raise DataError(
            display,
            f"missing column(s) {', '.join(missing)}: no line has them; the file has: {shown}",
            "fix the column mapping ('from:') of this source (a nested field is a dotted path: data.p)",
        )
    return pa.Table.from_arrays([_typed(values[name], name in text) for name in wanted], names=wanted)


def needles_of(tree: dict[str, Any] | None, header: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """What a filter tree needs of a line, as groups of JSON texts: one group for each term of its top-level
    ``and`` that is ``field == 'text'`` (or an ``or`` of them: ``field in [...]``) on a field of the object.
    Such a row is kept only where the field holds the text, and a line whose object holds it without an
    escape has the text's JSON spelling in it; a line with a backslash is always decoded."""
    if tree is None:
        return ()
    if tree.get("op") == "and_":
        return tuple(g for arg in tree["args"] for g in needles_of(arg, header))
    group = _texts_equal(tree, header)
    return (group,) if group else ()


def _texts_equal(tree: dict[str, Any], header: tuple[str, ...]) -> tuple[str, ...]:
    """The texts one of which a field must equal for ``tree`` to hold; () when it is no such test."""
    if tree.get("op") == "or_":
        groups = [_texts_equal(arg, header) for arg in tree["args"]]
        return tuple(t for g in groups for t in g) if all(groups) else ()
    if tree.get("op") != "eq":
        return ()
    columns = [a["column"] for a in tree["args"] if "column" in a]
    texts = [a["text"] for a in tree["args"] if "text" in a]
    if len(columns) != 1 or len(texts) != 1 or columns[0] in header:
        return ()
    return (json.dumps(texts[0], ensure_ascii=False),)


class _Absent:
    """A field not on a line (distinct from JSON null, which is on it)."""


_ABSENT = _Absent()


def columns(path: Path, header: tuple[str, ...], display: str) -> list[str]:
    """The file's columns: the leading fields, then the dotted path of every field that holds a value (not an
    object) on some line, in the order first seen. Reads the whole file: a kind of line may come late."""
    return [*header, *fields_of(_lines(path, display), len(header))]


def fields_of(lines: list[str], width: int) -> list[str]:
    found: dict[str, None] = {}
    for line in lines:
        if not line.strip():
            continue
        fields = line.split(None, width) if width else [line]
        if len(fields) <= width:
            continue
        try:
            obj = json.loads(fields[width])
        except ValueError:
            continue
        if isinstance(obj, dict):
            _leaves(obj, "", found)
    return list(found)


def _leaves(obj: dict[str, Any], prefix: str, found: dict[str, None]) -> None:
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _leaves(value, f"{name}.", found)
        else:
            found.setdefault(name)


def _lines(path: Path, display: str) -> list[str]:
    """The file's lines: gzip and zip (one member) by their magic bytes, else plain text; UTF-8, decoded once
    for the file (json.loads of bytes guesses each line's encoding)."""
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
        if magic[:2] == b"\x1f\x8b":
            with gzip.open(path, "rb") as fh:
                data = fh.read()
        elif magic == b"PK\x03\x04":
            with zipfile.ZipFile(path) as archive:
                members = [m for m in archive.namelist() if not m.endswith("/")]
                if len(members) != 1:
                    raise DataError(display, f"a zip of {len(members)} files, not one", "zip one JSON-lines file")
                data = archive.read(members[0])
        else:
            data = path.read_bytes()
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(display, f"cannot read jsonl file: {exc}", "check that the file is complete") from None
    try:
        lines = data.decode("utf-8").split("\n")  # (not splitlines: a JSON text may hold a U+2028)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(display, f"line {line} is not UTF-8 text ({exc.reason})", "write the file as UTF-8") from None
    return lines[:-1] if lines and not lines[-1] else lines


def _typed(values: list[Any], text: bool) -> pa.Array:
    """One column's values as an Arrow array of the type they all fit (see the module's doc)."""
    kinds = {type(v) for v in values if v is not None}
    if text or str in kinds:
        if kinds - {str}:  # numbers or booleans among text: their JSON spelling
            values = [v if v is None or isinstance(v, str) else json.dumps(v) for v in values]
        strings = pa.array(values, pa.string())
        return strings if text else _number_or_text(strings)
    if kinds == {bool}:
        return pa.array(values, pa.bool_())
    if kinds == {int}:
        try:
            return pa.array(values, pa.int64())
        except (OverflowError, pa.ArrowInvalid):
            pass  # beyond int64: floats
    return pa.array(values, pa.float64())  # (all missing: a column of NaN)


def _number_or_text(strings: pa.Array) -> pa.Array:
    """Text whose every value is a whole number as int64, a number as float64, else the text itself."""
    if strings.null_count == len(strings):
        return pa.nulls(len(strings), pa.float64())
    for kind in (pa.int64(), pa.float64()):
        try:
            return pc.cast(strings, kind)
        except pa.ArrowInvalid:
            continue
    return strings
