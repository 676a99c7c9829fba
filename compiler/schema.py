"""Validate spec files against the JSON Schema, reporting each problem at its YAML position."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from fspec.compiler.yamlsrc import SourceDoc
from fspec.errors import Diagnostic

_UNEXPECTED = re.compile(r"\('([^']+)'(?: was|, )")


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A JSON Schema shipped in fspec/schemas."""
    return json.loads(resources.files("fspec.schemas").joinpath(name).read_text(encoding="utf-8"))


def spec_schema() -> dict[str, Any]:
    return load_schema("spec.schema.json")


def _allowed_keys(schema: dict[str, Any], root: dict[str, Any]) -> list[str]:
    keys = list(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        ref = part.get("$ref", "")
        if ref.startswith("#/$defs/"):
            keys += list(root["$defs"][ref.removeprefix("#/$defs/")].get("properties", {}))
    return keys


def _describe(error: ValidationError, doc: SourceDoc, root: dict[str, Any]) -> list[Diagnostic]:
    path = tuple(error.absolute_path)
    where = "/".join(str(p) for p in path) or "top level"
    if error.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(error.instance, dict):
        allowed = _allowed_keys(error.schema, root)
        extra = [k for k in error.instance if k not in allowed]
        out = []
        for key in extra:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"allowed keys: {', '.join(sorted(allowed))}"
            out.append(Diagnostic(doc.pos((*path, key), key=True), f"unknown key '{key}' in {where}", hint, "schema"))
        return out  # nothing unknown: the keys were only unevaluated because a sibling error stopped allOf
    if error.validator == "oneOf" and error.context:
        deepest = best_match(error.context)
        return [Diagnostic(doc.pos(path), f"invalid value at {where}: {deepest.message}", _hint(deepest), "schema")]
    if error.validator == "required":
        return [Diagnostic(doc.pos(path), f"{error.message} in {where}", _hint(error), "schema")]
    if error.validator == "propertyNames":
        bad = error.instance
        return [
            Diagnostic(
                doc.pos((*path, bad), key=True),
                f"invalid name '{bad}' in {where}",
                "names are lower snake_case: ^[a-z][a-z0-9]*(_[a-z0-9]+)*$",
                "schema",
            )
        ]
    if path in doc.surprises and error.validator in ("type", "pattern"):
        raw, reading = doc.surprises[path]
        kind = "dates" if reading == "a date" else "times"
        example = 'dates: ["2013-10-07"]' if kind == "dates" else f'{path[-1]}: "09:30"'
        return [
            Diagnostic(
                doc.pos(path),
                f"invalid value at {where}: {raw} is not a string (YAML reads it as {reading})",
                f"quote {kind}, e.g. {example}",
                "schema",
            )
        ]
    return [Diagnostic(doc.pos(path), f"invalid value at {where}: {error.message}", _hint(error, path), "schema")]


_TYPE_HINTS = {
    "array": "write a list, e.g. [30s, 60s]",
    "boolean": "write true or false",
    "object": "write a mapping of keys, e.g. {key: value}",
    "string": "write text (quote it if YAML reads it as something else)",
    "number": "write a number",
}


def _hint(error: ValidationError, path: tuple[str | int, ...] = ()) -> str:
    if error.validator == "type":
        expected = error.validator_value if isinstance(error.validator_value, str) else error.validator_value[0]
        return _TYPE_HINTS.get(expected, "")
    if error.validator == "minProperties" and path and path[-1] == "instruments":
        return "add at least one instrument, e.g. spy: {symbol: SPY}"
    if error.validator == "minProperties":
        return "add at least one entry"
    if error.validator == "pattern" and ":[0-5]" in str(error.validator_value):
        return 'times are quoted 24-hour HH:MM or HH:MM:SS, e.g. "09:30"'
    if error.validator == "pattern" and "a-z" in str(error.validator_value):
        return "names are lower snake_case, e.g. realized_vol; targets start with target_ or resp_"
    if error.validator == "pattern" and "session" in str(error.validator_value):
        return "intervals are a whole number with a unit (30s, 1m, 1h) or session (one bar per session)"
    if error.validator == "pattern" and "(s|m|h)" in str(error.validator_value):
        return "durations are a whole number with a unit: 30s, 1m, 1h"
    if error.validator == "const" and error.validator_value == 1:
        return "set spec_version: 1"
    if error.validator == "required":
        return "add the missing key"
    if error.validator == "enum":
        return "use one of: " + ", ".join(map(str, error.validator_value))
    return ""


def validate_doc(doc: SourceDoc, root: dict[str, Any] | None = None) -> list[Diagnostic]:
    """The schema's diagnostics of one spec file (``root``: another shipped schema, e.g. spec tests'), each
    once, with the alternative the value was meant as (oneOf), plainer words for empty values and whole
    mappings, and a hint wherever the schema gives none."""
    if not isinstance(doc.data, dict):
        return [Diagnostic(doc.pos(()), "a spec file must be a mapping of keys", "start with 'spec_version: 1'")]
    root = root or spec_schema()
    validator = jsonschema.Draft202012Validator(root)
    out: list[Diagnostic] = []
    for error in sorted(validator.iter_errors(doc.data), key=lambda e: list(map(str, e.absolute_path))):
        out.extend(d for d in _explain(error, doc, root) if d not in out)  # allOf may report one problem twice
    return out


def _explain(error: ValidationError, doc: SourceDoc, root: dict[str, Any]) -> list[Diagnostic]:
    path = tuple(error.absolute_path)
    where = "/".join(str(p) for p in path) or "top level"
    if error.validator == "oneOf" and error.context:
        if isinstance(error.instance, dict) and {"from", "expr"} <= set(error.instance):
            return [
                Diagnostic(
                    doc.pos((*path, "expr"), key=True),
                    f"column '{path[-1]}' is read from the file ('from') or computed ('expr'), not both",
                    "keep one: {from: NAME} or {expr: FORMULA}",
                    "schema",
                )
            ]
        fitting = _fitting_branches(error)
        if fitting:  # the value has the shape of one alternative (e.g. a mapping): say what is wrong inside it
            return [d for e in fitting for d in _explain(e, doc, root)]
        deepest = best_match(error.context)
        return _explain(deepest, doc, root)
    if error.validator == "type" and error.validator_value != "string" and path in doc.surprises:
        # e.g. dates: 2013-10-07, kept as written: what is wrong is that it is not a list
        return [_improved(Diagnostic(doc.pos(path), f"invalid value at {where}: {error.message}"), error, path)]
    if error.instance is None and error.validator == "type":
        return [Diagnostic(doc.pos(path), f"{where} has no value", "write a value after the colon", "schema")]
    return [_improved(d, error, path) for d in _describe(error, doc, root)]


def _fitting_branches(error: ValidationError) -> list[ValidationError]:
    """The errors of the oneOf alternative the value is closest to, among those whose kind (type, enum) it has."""
    by_branch: dict[object, list[ValidationError]] = {}
    for e in error.context or ():
        by_branch.setdefault(e.relative_schema_path[0] if e.relative_schema_path else None, []).append(e)
    fitting = [
        errors
        for errors in by_branch.values()
        if not any(not e.relative_path and e.validator in ("type", "enum", "const") for e in errors)
    ]
    return min(fitting, key=len) if fitting else []  # the alternative the value is closest to


_LIST_EXAMPLES = {
    "sources": "[trades, quotes]",
    "instruments": "[spy, qqq]",
    "cross_asset": "[spy, qqq]",
    "columns": "[bid, ask]",
    "features": "- name: vwap (one item per feature)",
    "targets": "- name: target_x (one item per target)",
    "dates": '["2013-10-07"]',
}


def _improved(d: Diagnostic, error: ValidationError, path: tuple[str | int, ...]) -> Diagnostic:
    message, hint = d.message, d.hint
    shown = repr(error.instance)
    if len(shown) > 60 and shown in message:  # a whole mapping or list: say what it is instead
        message = message.replace(
            shown, {dict: "a mapping", list: "a list", str: "a long text"}.get(type(error.instance), "the value")
        )
    key = message.removeprefix("unknown key '").split("'")[0] if message.startswith("unknown key '") else None
    if key == "publish" and path[:1] == ("targets",):
        hint = "targets are always published: remove 'publish'"
    elif key == "<<":
        hint = "YAML merge keys (<<) are not supported: write the keys out"
    elif hint.startswith("allowed keys: "):
        hint = "allowed keys: " + ", ".join(dict.fromkeys(hint.removeprefix("allowed keys: ").split(", ")))
    if error.validator == "type" and error.validator_value == "array":
        if len(path) >= 2 and path[-2] == "expand":
            hint = f"write a list, e.g. {path[-1]}: [1, 2, 5]"
        elif path and path[-1] in _LIST_EXAMPLES:
            hint = f"write a list, e.g. {_LIST_EXAMPLES[str(path[-1])]}"
    if error.validator == "type" and error.validator_value == "string" and isinstance(error.instance, int | float):
        if len(path) >= 2 and path[-2] == "intervals":
            hint = f"an interval has a unit: {error.instance}s, 1m, 1h (or session)"
        elif path[-1:] == ("width",):
            hint = f"a duration has a unit: {error.instance}s, 1m, 1h"
    if error.validator == "const" and isinstance(error.instance, str) and error.instance == str(error.validator_value):
        message = f"invalid value at {'/'.join(map(str, path))}: the text '{error.instance}', not the number"
        hint = f"write {path[-1]}: {error.validator_value} without quotes"
    if not hint:
        hint = _extra_hint(error, path)
    return replace(d, message=message, hint=hint)


def _extra_hint(error: ValidationError, path: tuple[str | int, ...]) -> str:
    """A hint for the schema rules :mod:`schema` gives none for."""
    if error.validator in ("minimum", "exclusiveMinimum"):
        return "write a positive number" if error.validator_value == 0 else f"write at least {error.validator_value}"
    if error.validator == "minItems" and path == ("intervals",):
        return "list at least one bar width, e.g. [30s]"
    if error.validator == "minItems":
        return f"list at least {error.validator_value} value(s), or remove the key"
    if error.validator == "uniqueItems":
        return "list each value once"
    if error.validator == "minLength":
        return "write a formula, or remove the key" if any("formula" in str(p) for p in path) else "write some text"
    if error.validator == "pattern" and "\\d{4}" in str(error.validator_value):
        return 'dates are quoted YYYY-MM-DD, e.g. "2013-10-07"'
    return ""


_SECTIONS = ("features", "targets")


@dataclass(frozen=True)
class Salvaged:
    """What of a schema-invalid file the semantic checks can still read.

    ``doc`` is the file without its invalid features and targets (``doc.dropped``) and unknown top-level keys,
    or None when nothing can be trusted (a project key is invalid, or an invalid item has no readable name).
    ``names`` are the dropped items' names, ``families`` those of dropped items with ``expand`` (whose
    members are name_...): formulas that read them are not reported, their definition is."""

    doc: SourceDoc | None
    names: frozenset[str] = frozenset()
    families: frozenset[str] = frozenset()


def salvage(doc: SourceDoc) -> Salvaged:
    """The parts of a spec file with schema errors whose semantics can still be checked in the same pass."""
    if not isinstance(doc.data, dict):
        return Salvaged(None)
    validator = jsonschema.Draft202012Validator(spec_schema())
    allowed = set(spec_schema()["properties"])
    dropped: set[tuple[str, int]] = set()
    sections: set[str] = set()
    unknown: set[str] = set()
    for error in validator.iter_errors(doc.data):
        path = tuple(error.absolute_path)
        if not path:
            if error.validator == "additionalProperties":
                unknown |= {k for k in doc.data if k not in allowed}
            elif error.validator != "required":  # a missing spec_version is reported, and changes nothing here
                return Salvaged(None)
        elif path[0] == "spec_version":
            continue
        elif path[0] in _SECTIONS and len(path) >= 2 and isinstance(path[1], int):
            dropped.add((str(path[0]), path[1]))
        elif path[0] in _SECTIONS:
            sections.add(str(path[0]))
        else:
            return Salvaged(None)  # a project key: every formula would be checked against a guess
    if unknown and not any(key in doc.data for key in _SECTIONS):
        return Salvaged(None)  # e.g. a misspelt project key: its absence would be reported a second time
    names: set[str] = set()
    families: set[str] = set()
    for section, i in sorted(dropped):
        if section in sections:
            continue
        item = doc.data[section][i]
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            return Salvaged(None)  # an item of no known name: formulas that read it cannot be told apart
        names.add(name)
        if isinstance(item, dict) and "expand" in item:
            families.add(name)
    if any(doc.data[section] for section in sections):
        return Salvaged(None)  # a list that is not a list of items: what it defines is unknown
    data = _without(doc.data, unknown | sections)
    return Salvaged(replace(doc, data=data, dropped=frozenset(dropped)), frozenset(names), frozenset(families))


def _without(data: dict[str, Any], keys: set[str]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in keys}
