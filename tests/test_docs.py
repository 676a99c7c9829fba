"""Documentation generated from the code stays in sync with it, and the README stays the front door."""

import json
import re
from pathlib import Path

import pytest

from fspec.compiler.opsdoc import operators_page
from fspec.compiler.specsdoc import specs_page

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_operator_docs_match_the_registry() -> None:
    page = (REPO / "docs" / "operators.md").read_text(encoding="utf-8")
    assert page == operators_page(), "regenerate: python -m fspec.compiler.opsdoc > docs/operators.md"


def test_spec_docs_match_the_schema() -> None:
    page = (REPO / "docs" / "specs.md").read_text(encoding="utf-8")
    assert page == specs_page(), "regenerate: python -m fspec.compiler.specsdoc > docs/specs.md"


def test_spec_docs_list_every_key_of_the_schema() -> None:
    """Every property name anywhere in the schema is a row of docs/specs.md."""
    schema = json.loads((REPO / "schemas" / "spec.schema.json").read_text(encoding="utf-8"))
    keys: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            keys.update(node.get("properties", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    page = specs_page()
    missing = sorted(k for k in keys if f"| `{k}` |" not in page)
    assert not missing, f"docs/specs.md has no row for {missing}"


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    heads = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    text = re.sub(r"```.*?```|`[^`\n]*`", "", page.read_text(encoding="utf-8"), flags=re.S)  # code is not links
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists() or (anchor and dest.suffix == ".md" and anchor not in _anchors(dest)):
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"


def test_readme_is_the_front_door() -> None:
    """The README's first command installs and runs the sample, its second is CI's test command, and it links
    every page under docs/; the rest lives in docs/ (at most about 10 KB here)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    assert blocks[0].strip() == "pip install -e . && fspec validate && fspec compile && fspec run"
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "pip install --quiet -e '.[dev]'" in ci and "\npython -m pytest -q\n" in ci
    assert blocks[1].strip() == "pip install -e '.[dev]' && python -m pytest -q"
    for doc in sorted((REPO / "docs").glob("*.md")):
        assert f"](docs/{doc.name})" in readme, f"README does not link docs/{doc.name}"
    assert len(readme.encode("utf-8")) <= 10 * 1024, "the README is the front door: move details to docs/"
