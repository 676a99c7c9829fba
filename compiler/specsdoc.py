"""Render the spec-file JSON Schema as a reference page: docs/specs.md.

Every key of ``schemas/spec.schema.json`` with its type, whether it is required, its default, its allowed values
and its description; each nested mapping (a source, its bars, an instrument, a feature, ...) is a section of its
own. Regenerate with ``python -m fspec.compiler.specsdoc > docs/specs.md``; a test keeps the page in sync.
"""

from __future__ import annotations

import json
from typing import Any

from fspec.compiler.model import PROJECT_KEYS, REQUIRED_PROJECT_KEYS
from fspec.compiler.schema import spec_schema

Schema = dict[str, Any]
FORMATS = ("snake", "duration", "interval", "clock", "dtype")  # $defs shown as named value formats


def _def_name(node: Schema) -> str | None:
    ref = node.get("$ref", "")
    return ref.removeprefix("#/$defs/") if ref.startswith("#/$defs/") else None


def _resolve(node: Schema, root: Schema) -> Schema:
    """A property's schema with its $ref followed; the property's own keywords (description, default) win."""
    name = _def_name(node)
    if name is None:
        return node
    merged = dict(root["$defs"][name])
    merged.update({k: v for k, v in node.items() if k != "$ref"})
    return merged


def _properties(node: Schema, root: Schema) -> tuple[dict[str, Schema], list[str]]:
    """Properties and required keys of an object schema, those of its allOf parts first (own ones override)."""
    props: dict[str, Schema] = {}
    required: list[str] = []
    for part in node.get("allOf", []):
        sub_props, sub_required = _properties(_resolve(part, root), root)
        props.update(sub_props)
        required += sub_required
    props.update(node.get("properties", {}))
    required += [k for k in node.get("required", []) if k not in required]
    return props, required


def _is_record(node: Schema) -> bool:
    return "properties" in node or "allOf" in node


def _code(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return f"`{text}`"


def _placeholder(path: str) -> str:
    """The name of one entry of a mapping at ``path``: sources -> <source>, columns -> <column>."""
    return "<" + path.rsplit(".", 1)[-1].removesuffix("[]").removesuffix("s") + ">"


def _type(node: Schema, root: Schema, path: str) -> str:
    """The type of a value, as a reader writes it: a format, a list, a mapping, one of several forms."""
    name = _def_name(node)
    if name in FORMATS:
        return f"[{name}](#value-formats)"
    node = _resolve(node, root)
    if "const" in node:
        return _code(node["const"])
    if "enum" in node:
        return " | ".join(_code(v) for v in node["enum"])
    if "oneOf" in node:
        forms = [_type(v, root, path) for v in node["oneOf"]]
        return " or ".join(dict.fromkeys(forms))
    if _is_record(node):
        return f"mapping, see `{path}`"
    kind = node.get("type")
    if isinstance(kind, list):
        return " or ".join(kind)
    limits = []
    if kind == "array":
        if "minItems" in node:
            limits.append(f"at least {node['minItems']}")
        if node.get("uniqueItems"):
            limits.append("unique")
        head, tail = "list", " of " + _type(node.get("items", {}), root, path + "[]")
    elif kind == "object" and isinstance(node.get("additionalProperties"), dict):
        if "minProperties" in node:
            limits.append(f"at least {node['minProperties']}")
        keys = _type(node["propertyNames"], root, path) if "propertyNames" in node else "string"
        values = _type(node["additionalProperties"], root, f"{path}.{_placeholder(path)}")
        head, tail = "mapping", f" of {keys} to {values}"
    else:
        head, tail = kind or "any", ""
        if "minLength" in node:
            limits.append("not empty" if node["minLength"] == 1 else f"at least {node['minLength']} characters")
        if "exclusiveMinimum" in node:
            limits.append(f"> {node['exclusiveMinimum']}")
        if "pattern" in node:
            limits.append(f"matching `{node['pattern']}`")
    return head + (f" ({', '.join(limits)})" if limits else "") + tail


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _nested(node: Schema, root: Schema, path: str) -> list[tuple[str, Schema, str]]:
    """The mappings inside a value that get a section of their own: (path, schema, form)."""
    node = _resolve(node, root)
    if "oneOf" in node:
        records = [v for v in (_resolve(v, root) for v in node["oneOf"]) if _is_record(v)]
        if len(records) == 1:
            return [(path, records[0], "as a mapping")]
        return [(path, v, f"the form with `{v['required'][0]}`") for v in records]
    if _is_record(node):
        return [(path, node, "")]
    if node.get("type") == "array" and isinstance(node.get("items"), dict):
        return _nested(node["items"], root, path + "[]")
    if node.get("type") == "object" and isinstance(node.get("additionalProperties"), dict):
        return _nested(node["additionalProperties"], root, f"{path}.{_placeholder(path)}")
    return []


def _table(node: Schema, root: Schema, path: str, top: bool = False) -> list[str]:
    props, required = _properties(node, root)
    head = "| key | type | required | default | description |"
    lines = [head, "|---|---|---|---|---|"]
    for key, prop in props.items():
        resolved = _resolve(prop, root)
        sub = f"{path}.{key}" if path else key
        if key in required:
            needed = "yes"
        elif top and key in REQUIRED_PROJECT_KEYS:
            needed = "in the project"
        else:
            needed = ""
        default = _code(resolved["default"]) if "default" in resolved else ""
        text = resolved.get("description", "")
        cells = [f"`{key}`", _type(prop, root, sub), needed, default, text]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def _sections(node: Schema, root: Schema, path: str) -> list[str]:
    """Sections for every mapping nested in ``node``, depth first, in key order."""
    out: list[str] = []
    props, _ = _properties(node, root)
    for key, prop in props.items():
        for sub_path, sub, form in _nested(prop, root, f"{path}.{key}" if path else key):
            title = f"`{sub_path}`" + (f", {form}" if form else "")
            text = sub.get("description") or _resolve(prop, root).get("description", "")
            out += ["", f"## {title}", ""]
            out += [text, ""] if text else []
            out += _table(sub, root, sub_path)
            out += _sections(sub, root, sub_path)
    return out


def _formats(root: Schema) -> list[str]:
    lines = ["", "## Value formats", "", "| format | values | meaning |", "|---|---|---|"]
    for name in FORMATS:
        node = root["$defs"][name]
        values = " | ".join(_code(v) for v in node["enum"]) if "enum" in node else f"`{node['pattern']}`"
        lines.append(f"| {name} | {_cell(values)} | {_cell(node.get('description', ''))} |")
    return lines


def specs_page() -> str:
    """The text of docs/specs.md (regenerate with `python -m fspec.compiler.specsdoc > docs/specs.md`)."""
    root = spec_schema()
    lines = [
        "# Spec files",
        "",
        "Generated from the JSON Schema (`schemas/spec.schema.json`) by "
        "`python -m fspec.compiler.specsdoc > docs/specs.md`; a test keeps this file in sync. "
        "What the values mean in a run is in [semantics.md](semantics.md); "
        "a worked example is in [writing-features.md](writing-features.md).",
        "",
        root["description"],
        "",
        "Project keys (" + ", ".join(f"`{k}`" for k in PROJECT_KEYS) + ") may each appear in one file only, "
        "by convention `specs/project.yaml`; "
        + ", ".join(f"`{k}`" for k in REQUIRED_PROJECT_KEYS)
        + " must appear in some file (`intervals` may be left out by a project of event grids only, `grids:` "
        "without features of bars). `features` and `targets` may be in any file. "
        "A key that is not listed here is an error (with a did-you-mean).",
        "",
        "## Top-level keys",
        "",
    ]
    lines += _table(root, root, "", top=True)
    lines += _sections(root, root, "")
    lines += _formats(root)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(specs_page(), end="")
