"""The lineage written in each file's metadata, found from the dependencies' lineages once each, is the one its
definition gives (one search per column, a universe's feature of every member as one "*" entry): on the shipped
project, the closing-auction example, and a project mixing a universe, cross-sections, an index and a listed
instrument that shares the universe's feature names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, book_project, make_project

from fspec.compiler.build import compile_project
from fspec.runtime.manifest import load_manifest
from fspec.runtime.universe import with_members
from fspec.runtime.write import _lineage, _Lineages


def _same(root: Path) -> tuple[int, bool]:
    """How many columns agree, and whether the shortcut fell back to the definition for any."""
    manifest = with_members(load_manifest(root))
    found = _Lineages(manifest)
    for key in manifest.keys:
        assert found.of(key) == _lineage(manifest, key), key
    return len(manifest.keys), None in found._memo.values()


def test_the_closing_auction_example(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(
        REPO / "examples" / "closing_auction", tmp_path / "p", ignore=shutil.ignore_patterns("build", "out")
    )
    compile_project(tmp_path / "p")
    assert _same(tmp_path / "p") == (3201, False)


def test_the_shipped_project(sample_project) -> None:  # type: ignore[no-untyped-def]
    assert _same(sample_project.root)[0] > 100


@pytest.mark.parametrize("listed", [False, True])
def test_a_universe_with_cross_sections_an_index_and_a_listed_instrument(tmp_path: Path, listed: bool) -> None:
    rng = np.random.default_rng(2)
    frames = []
    for stock in ("1", "2", "3", "4", "SPY"):
        n = 50
        ts = pd.Timestamp("2024-01-02 09:30", tz="America/New_York") + pd.to_timedelta(
            np.sort(rng.uniform(0, 6.5 * 3600, n)), unit="s"
        )
        frames.append(pd.DataFrame({"ts": ts, "sym": stock, "price": 10 + rng.random(n), "size": 1.0}))
    book = pd.concat(frames).sort_values("ts", kind="stable", ignore_index=True)
    project: dict = book_project(
        universes={"stocks": {"from": "book", "suffix": "s{symbol}", "match": "[0-9]+", "params": {"weight": 1.0}}}
    )
    own = ["stocks", "spy"] if listed else ["stocks"]
    if listed:
        project["instruments"] = {"spy": {"symbol": "SPY", "params": {"weight": 1.0}}}
    features = {
        "spec_version": 1,
        "features": [
            {"name": "vwap", "formula": "wmean(book.price, book.size)", "instruments": own},
            {"name": "ret", "formula": "diff(log(vwap), 1)", "instruments": own},
            {"name": "ret_rank", "formula": "cs_rank(ret)", "instruments": ["stocks"]},
            {"name": "index_stocks", "formula": "cs_wmean(stocks.vwap, stocks.weight)"},
            {"name": "vs_index", "formula": "vwap / index_stocks + ret_rank", "instruments": ["stocks"]},
        ]
        + ([{"name": "spy_vs_index", "formula": "spy.vwap / index_stocks"}] if listed else []),
    }
    made = make_project(tmp_path, {"project.yaml": project, "features.yaml": features}, {"data/book.parquet": book})
    made.compile()
    # with spy, vwap and ret have five members: the universe's four are no "*" (not every member), as defined
    assert _same(made.root) == ((20, False) if listed else (17, False))
