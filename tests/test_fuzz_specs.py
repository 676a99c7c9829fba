"""Fuzzing whole spec files: a mutated copy of the shipped project either validates and compiles, or fails
``fspec validate`` (exit 1) with positioned diagnostics, each with a hint -- never an internal error, a traceback
or a hang.

Each example starts from specs/*.yaml (read once as data) and applies one to four mutations of the kinds users
make: drop a key, give a value another type (a random scalar, list or mapping, huge and non-finite numbers,
random unicode), swap two values, duplicate a list item (two features of one name), rename a key, add an
unknown key, edit a string (a formula, a name, a path, a time) one character at a time; sometimes the YAML text
itself is edited (tabs, stray colons, quotes, anchors, tags, a second document). Whatever validate accepts must
compile. The examples are derandomized (the same ones on every run) and bounded by ``max_examples``; a shrunk
failure is a new case for tests/broken_specs/.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import signal
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fspec.cli import main
from fspec.project import spec_files

REPO = Path(__file__).resolve().parents[1]
SHIPPED = {p.name: yaml.safe_load(p.read_text(encoding="utf-8")) for p in spec_files(REPO)}  # tests aside
FILES = sorted(SHIPPED)

DIAGNOSTIC = re.compile(r"^[^\s:]+:\d+:\d+: .+$")
SUMMARY = re.compile(r"^\d+ errors? in specs$")
EXAMPLE_SECONDS = 20  # one validate + compile takes well under a second; this long is a hang
# CI runs the same 200 examples every time (about 20 s); hunt for more with e.g.
# FSPEC_FUZZ_EXAMPLES=5000 FSPEC_FUZZ_RANDOM=1 python -m pytest tests/test_fuzz_specs.py
EXAMPLES = int(os.environ.get("FSPEC_FUZZ_EXAMPLES", "200"))

# Words and values that mean something in the spec language, so mutations hit real rules, not only the schema.
WORDS = [
    "spy", "qqq", "mes", "trades", "quotes", "bars_1m", "mid", "vwap", "volume", "tick_size", "scale", "cost",
    "target_x", "resp_y", "ts_event", "nan", "pi", "k", "30s", "0s", "1s", "7s", "session", "09:30", "24:00",
    "16:00", "9:30", "America/New_York", "Mars/Olympus", "{symbol}", "{date}", "../x", "{other}", "float64",
    "int8", "start", "end", "volume", "time", "csv", "sort", "reject", "", " ", "é", "−", "２", "\t",
]  # fmt: skip
FORMULAS = [
    "last(trades.price)", "sum(trades.size)", "lag(mid, 0)", "lead(mid, 1)", "rolling_mean(vwap, 1.5)",
    "mid +", "(mid", "mid)", "bfill(mid)", "spy.mid - qqq.mid", "last(quotes.bid) × 2", "ｌast(trades.price)",
    "where(mid > 0, 1, 0)", "vpin(trades.price, trades.size, 100, 50)", "mid if mid else 0", "lag(mid, k)",
    "target_x", "mid[1]", "sqrt", "trades.price", "1e999", "9" * 400,
]  # fmt: skip
CHARS = [*"()[]{},.:#'\" \t-+*/=<>_0123456789azAZ", "é", "—", "−", "×", "\u00a0", "２", "ｌ", "\x00", "\n"]
TEXT_SNIPPETS = [": ", "---\n", " #", "&a ", "*a", "!!python/object ", "'", '"', "- ", "{", "]", "\n  x: 1\n", "\t"]

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.sampled_from([0, -1, 10**400, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(WORDS + FORMULAS),
    st.text(max_size=12),
)
VALUES = st.one_of(
    SCALARS,
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.sampled_from(WORDS), SCALARS, max_size=2),
)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into a YAML document, parents before children, in a fixed order."""
    yield path
    if isinstance(node, dict):
        for key in node:
            yield from _paths(node[key], (*path, key))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _paths(item, (*path, i))


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


def _set(node: Any, path: tuple[Any, ...], value: Any) -> None:
    _get(node, path[:-1])[path[-1]] = value


def _edit_string(data: st.DataObject, text: str) -> str:
    at = data.draw(st.integers(0, len(text)))
    how = data.draw(st.sampled_from(["insert", "delete", "replace"]))
    char = data.draw(st.sampled_from(CHARS))
    if how == "insert" or not text:
        return text[:at] + char + text[at:]
    at = min(at, len(text) - 1)
    return text[:at] + (char if how == "replace" else "") + text[at + 1 :]


def _mutate(data: st.DataObject, docs: dict[str, Any]) -> None:
    """One mutation, in place, of one of the documents."""
    name = data.draw(st.sampled_from(FILES))
    doc = docs[name]
    paths = [p for p in _paths(doc) if p and p != ("spec_version",)]
    strings = [p for p in paths if isinstance(_get(doc, p), str)]
    if not paths:
        return
    pool = strings if strings and data.draw(st.booleans()) else paths  # half the time a formula, name or path
    path = pool[data.draw(st.integers(0, len(pool) - 1))]
    parent = _get(doc, path[:-1])
    kind = data.draw(st.sampled_from(["edit", "retype", "drop", "swap", "duplicate", "rename", "add", "edit"]))
    if kind == "drop":
        del parent[path[-1]]
    elif kind == "retype":
        _set(doc, path, data.draw(VALUES))
    elif kind == "swap":
        other = paths[data.draw(st.integers(0, len(paths) - 1))]
        if other[: len(path)] != path and path[: len(other)] != other:  # neither inside the other
            a, b = _get(doc, path), _get(doc, other)
            _set(doc, path, b)
            _set(doc, other, a)
    elif kind == "duplicate" and isinstance(parent, list):  # e.g. two features of one name
        parent.insert(data.draw(st.integers(0, len(parent))), copy.deepcopy(parent[path[-1]]))
    elif kind == "rename" and isinstance(parent, dict):
        new = data.draw(st.sampled_from(WORDS) | st.text(min_size=1, max_size=8))
        parent[new] = parent.pop(path[-1])
    elif kind == "add":
        target = _get(doc, path)
        if isinstance(target, dict):
            target[data.draw(st.sampled_from([*WORDS, "formual", "publsh", "params", "expand"]))] = data.draw(VALUES)
        elif isinstance(target, list):
            target.append(data.draw(VALUES))
    else:
        value = _get(doc, path)
        if isinstance(value, str):
            _set(doc, path, _edit_string(data, value))
        else:
            _set(doc, path, data.draw(st.sampled_from(FORMULAS + WORDS)))


def _dump(data: st.DataObject, doc: Any) -> str:
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=100)
    if data.draw(st.integers(0, 9)) == 0:  # now and then, break the text itself
        at = data.draw(st.integers(0, len(text)))
        text = text[:at] + data.draw(st.sampled_from(TEXT_SNIPPETS)) + text[at:]
    return text


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _problem(result: Result, what: str) -> str:
    """Why a command's result breaks the contract, else ''."""
    if result.exception is not None and not isinstance(result.exception, SystemExit) and result.exc_info:
        return f"{what} raised:\n" + "".join(traceback.format_exception(*result.exc_info))
    if "internal error" in result.output or "Traceback" in result.output:
        return f"{what} printed an internal error:\n{result.output}"
    if result.exit_code not in (0, 1):
        return f"{what} exited {result.exit_code}:\n{result.output}"
    return ""


class _Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Hang(f"one example took over {EXAMPLE_SECONDS} s")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz_specs")


@settings(
    max_examples=EXAMPLES,
    derandomize=not os.environ.get("FSPEC_FUZZ_RANDOM"),
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(st.data())
def test_mutated_specs_validate_or_fail_with_positions(workdir: Path, data: st.DataObject) -> None:
    docs = copy.deepcopy(SHIPPED)
    for _ in range(data.draw(st.integers(1, 4))):
        _mutate(data, docs)
    texts = {name: _dump(data, doc) for name, doc in docs.items()}

    root = workdir / "project"
    shutil.rmtree(root, ignore_errors=True)
    (root / "specs").mkdir(parents=True)
    for name, text in texts.items():
        (root / "specs" / name).write_text(text, encoding="utf-8")

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(EXAMPLE_SECONDS)
    try:
        validated = _invoke("validate", "--project", str(root))
        problem = _problem(validated, "validate")
        if not problem and validated.exit_code == 1:
            lines = validated.output.rstrip("\n").split("\n")
            assert SUMMARY.match(lines[-1]), f"no 'N errors in specs' line:\n{validated.output}"
            for i, line in enumerate(lines[:-1]):
                assert line.startswith("    hint: ") or DIAGNOSTIC.match(line), f"not positioned: {line!r}"
                assert line.startswith("    hint: ") or lines[i + 1].startswith("    hint: "), f"no hint: {line!r}"
        if not problem and validated.exit_code == 0:
            compiled = _invoke("compile", "--no-jit", "--project", str(root))
            problem = _problem(compiled, "compile after validate ok")
            if not problem and compiled.exit_code != 0:
                problem = f"validate passed but compile failed:\n{compiled.output}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert not problem, problem + "\n" + "\n".join(f"--- {n}\n{t}" for n, t in texts.items())
