"""Broken specs: every folder in tests/broken_specs/ is a small project with one kind of mistake, and
``expected.txt`` holds the exact text ``fspec validate`` must print for it (stdout + stderr).

An expected.txt states what fspec *should* print: the right message, at the offending key, name or
sub-expression, with a useful hint. It is written by hand from the product's output, never accepted
blindly. To (re)write expected files from the current product, then review every diff:

    FSPEC_REGEN=1 python -m pytest -q tests/test_broken_specs.py                 # every case
    FSPEC_REGEN=cycle_two_features,yaml_duplicate_key python -m pytest -q tests/test_broken_specs.py

To add a case: make tests/broken_specs/<case>/specs/*.yaml (a complete project; data paths need not
exist, validate never reads data), regenerate it by name, and check its expected.txt line by line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import traceback
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from fspec.cli import main

HERE = Path(__file__).resolve().parent
CASES_DIR = HERE / "broken_specs"
REPO = HERE.parent
CASES = sorted(p.name for p in CASES_DIR.iterdir() if (p / "specs").is_dir())

DIAGNOSTIC = re.compile(r"^(?P<file>[^\s:]+):(?P<line>\d+):(?P<col>\d+): (?P<message>.+)$")
HINT = "    hint: "
SUMMARY = re.compile(r"^(\d+) errors? in specs$")


def _regen(case: str) -> bool:
    flag = os.environ.get("FSPEC_REGEN", "")
    return flag == "1" or case in {c.strip() for c in flag.split(",") if c.strip()}


def _copy(case: str, tmp_path: Path) -> Path:
    """The case's specs/ in a fresh folder, so nothing (build/, caches) is written into tests/."""
    project = tmp_path / case
    shutil.copytree(CASES_DIR / case / "specs", project / "specs")
    return project


def _validate(project: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["validate", "--project", str(project), *args])


def _crash(result: Result) -> str:
    """The traceback of an exception that escaped the CLI (CliRunner swallows it), else ''."""
    if result.exception is None or isinstance(result.exception, SystemExit) or result.exc_info is None:
        return ""
    return "".join(traceback.format_exception(*result.exc_info))


def _parse_text(text: str) -> list[dict[str, object]]:
    """The diagnostics of text output as dicts like the JSON format's, checking its shape on the way."""
    lines = text.rstrip("\n").split("\n")
    summary = SUMMARY.match(lines[-1])
    assert summary, f"last line is not 'N error(s) in specs': {lines[-1]!r}"
    out: list[dict[str, object]] = []
    for line in lines[:-1]:
        if line.startswith(HINT):
            assert out and not out[-1]["hint"], f"hint without a diagnostic, or two hints: {line!r}"
            out[-1]["hint"] = line.removeprefix(HINT)
            continue
        m = DIAGNOSTIC.match(line)
        assert m, f"not 'file:line:col: message': {line!r}"
        out.append(
            {"file": m["file"], "line": int(m["line"]), "col": int(m["col"]), "message": m["message"], "hint": ""}
        )
    assert len(out) == int(summary.group(1)), f"summary says {summary.group(1)} errors, found {len(out)}"
    return out


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 30
    for case in CASES:
        assert list((CASES_DIR / case / "specs").glob("*.yaml")), case


@pytest.mark.parametrize("case", CASES)
def test_expected_file_is_well_formed(case: str) -> None:
    expected = CASES_DIR / case / "expected.txt"
    if not expected.exists() and _regen(case):
        pytest.skip("written by the regeneration run")
    text = expected.read_text(encoding="utf-8")
    assert text.endswith("\n") and not text.endswith("\n\n")
    diagnostics = _parse_text(text)
    assert diagnostics, "a broken spec must produce at least one error"
    for d in diagnostics:
        assert d["line"] > 0 and d["col"] > 0, f"no position: {d}"
        assert (CASES_DIR / case / str(d["file"])).is_file(), f"points at a file that is not in the case: {d}"


@pytest.mark.parametrize("case", CASES)
def test_broken_spec(case: str, tmp_path: Path) -> None:
    result = _validate(_copy(case, tmp_path))
    crash = _crash(result)
    assert not crash, f"fspec validate crashed:\n{crash}"
    output = result.output
    expected_file = CASES_DIR / case / "expected.txt"
    if _regen(case):
        expected_file.write_text(output, encoding="utf-8")
    assert "Traceback" not in output
    assert result.exit_code == 1, output
    assert output == expected_file.read_text(encoding="utf-8")


def test_json_and_github_formats_agree_with_text(tmp_path: Path) -> None:
    project = _copy("multiple_errors_one_file", tmp_path)
    text = _validate(project)
    as_json = _validate(project, "--format", "json")
    github = _validate(project, "--format", "github")
    for result in (text, as_json, github):
        assert not _crash(result), _crash(result)
        assert result.exit_code == 1, result.output

    data = json.loads(as_json.output)
    assert data["ok"] is False
    errors = data["errors"]
    assert len(errors) == 4
    assert all(e["code"] for e in errors)
    assert [{k: e[k] for k in ("file", "line", "col", "message", "hint")} for e in errors] == _parse_text(text.output)

    annotations = [
        f"::error file={e['file']},line={e['line']},col={e['col']}::{e['message']}"
        + (f" (hint: {e['hint']})" if e["hint"] else "")
        for e in errors
    ]
    assert github.output.splitlines() == annotations


def test_shipped_specs_validate_clean(tmp_path: Path) -> None:
    project = tmp_path / "shipped"
    shutil.copytree(REPO / "specs", project / "specs")
    result = _validate(project)
    assert not _crash(result), _crash(result)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: "), result.output
    summary = r"ok: \d+ compiled feature\(s\) for \d+ feature instances \(\d+ published\) in \d+ tick kernel\(s\)\n"
    assert re.fullmatch(summary, result.output)


def test_validate_shows_the_first_hundred_of_many_errors(tmp_path: Path) -> None:
    project = tmp_path / "many"
    (project / "specs").mkdir(parents=True)
    shutil.copy(CASES_DIR / "multiple_errors_one_file" / "specs" / "project.yaml", project / "specs")
    items = "".join(f"  - name: f{i}\n    formula: frobnicate(trades.price)\n" for i in range(150))
    items += "  - name: f150\n    formula: 5\n"  # a schema error, reported with the others
    (project / "specs" / "features.yaml").write_text(f"spec_version: 1\nfeatures:\n{items}", encoding="utf-8")
    text = _validate(project)
    assert not _crash(text) and text.exit_code == 1, text.output
    lines = text.output.rstrip("\n").split("\n")
    assert lines[-1] == "151 errors in specs (the first 100 shown: fix them and validate again)"
    assert len([line for line in lines if DIAGNOSTIC.match(line)]) == 100
    assert lines[0].startswith("specs/features.yaml:4:14: unknown operator 'frobnicate'")
    data = json.loads(_validate(project, "--format", "json").output)
    assert data["total"] == 151 and len(data["errors"]) == 100
