"""Validate spec files against the JSON Schema, reporting each problem at its YAML position."""

from __future__ import annotations

import difflib
import json
import re
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from fspec.compiler.yamlsrc import SourceDoc
from fspec.errors import Diagnostic

_UNEXPECTED = re.compile(r"\('([^']+)'(?: was|, )")


@cache
def spec_schema() -> dict[str, Any]:
    text = resources.files("fspec.schemas").joinpath("spec.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def _allowed_keys(schema: dict[str, Any], root: dict[str, Any]) -> list[str]:
    keys = list(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        ref = part.get("$ref", "")
        if ref.startswith("#/$defs/"):
            keys += list(root["$defs"][ref.removeprefix("#/$defs/")].get("properties", {}))
    return keys


def _describe(error: ValidationError, doc: SourceDoc) -> list[Diagnostic]:
    path = tuple(error.absolute_path)
    where = "/".join(str(p) for p in path) or "top level"
    if error.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(error.instance, dict):
        allowed = _allowed_keys(error.schema, spec_schema())
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


def validate_doc(doc: SourceDoc) -> list[Diagnostic]:
    """All schema problems of one parsed spec file."""
    if not isinstance(doc.data, dict):
        return [Diagnostic(doc.pos(()), "a spec file must be a mapping of keys", "start with 'spec_version: 1'")]
    validator = jsonschema.Draft202012Validator(spec_schema())
    diagnostics: list[Diagnostic] = []
    for error in sorted(validator.iter_errors(doc.data), key=lambda e: list(map(str, e.absolute_path))):
        diagnostics.extend(_describe(error, doc))
    return diagnostics
