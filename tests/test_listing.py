"""A per-symbol source's files listed once for every symbol give each symbol the dates a listing of its own
gives: symbols that are prefixes of others, that hold an underscore, a dot or a dash, dates that are no
calendar dates, files of other names."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from fspec.files import display
from fspec.runtime.sources import available_dates, dates_by_symbol

FILES = [
    "data/A/20240102.parquet",
    "data/A/20240103.parquet",
    "data/AB/20240103.parquet",
    "data/A_B/20240104.parquet",
    "data/BRK.B/20240102.parquet",
    "data/ES-H4/20240105.parquet",
    "data/A/20241399.parquet",  # digits that are no date
    "data/A/notes.txt",
    "flat/A_20240102.csv",
    "flat/A_B_20240103.csv",
    "flat/AB_20240104.csv",
    "flat/A_B_C_20240105.csv",
]


@pytest.mark.parametrize("template", ["data/{symbol}/{date}.parquet", "flat/{symbol}_{date}.csv"])
def test_one_listing_gives_every_symbol_its_own_dates(tmp_path: Path, template: str) -> None:
    for name in FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    source = SimpleNamespace(path=template)
    listed = dates_by_symbol(tmp_path, source)  # type: ignore[arg-type]
    symbols = {"A", "AB", "A_B", "BRK.B", "ES-H4", "A_B_C", "MISSING"}
    for symbol in symbols:
        assert listed.get(symbol, []) == available_dates(tmp_path, source, symbol), symbol  # type: ignore[arg-type]
    assert listed  # the listing found files at all
    if template.startswith("data"):
        assert listed["A"] == ["2024-01-02", "2024-01-03"]


def test_display_names_a_file_under_the_project_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    assert display(tmp_path / "data" / "x.parquet", tmp_path) == "data/x.parquet"
    outside = tmp_path.parent / "elsewhere.csv"
    assert display(outside, tmp_path) == outside.as_posix()
    # a path through '..' is named as it resolves: under the project relative to it, else as given
    assert display(tmp_path / "data" / ".." / "y.csv", tmp_path) == "y.csv"
    up = tmp_path / ".." / "z.csv"
    assert display(up, tmp_path) == up.as_posix()
