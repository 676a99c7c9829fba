"""Documentation generated from the code stays in sync with it."""

from pathlib import Path

from fspec.compiler.opsdoc import operators_page

REPO = Path(__file__).resolve().parents[1]


def test_operator_docs_match_the_registry() -> None:
    page = (REPO / "docs" / "operators.md").read_text(encoding="utf-8")
    assert page == operators_page(), "regenerate: python -m fspec.compiler.opsdoc > docs/operators.md"
