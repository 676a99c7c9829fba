"""Universes: instruments found in the data, compiled once, one column per member in natural order.

References: pandas on the raw rows, and fspec itself with the same members listed by hand (bit for bit).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import FspecProject, make_project

from fspec.errors import DataError
from fspec.runtime.manifest import load_manifest
from fspec.runtime.run import RunOptions, run

DAYS = ("2024-01-02", "2024-01-03")
FEATURES = {
    "spec_version": 1,
    "features": [
        {"name": "volume", "formula": "sum(book.size)"},
        {"name": "vwap", "formula": "wmean(book.price, book.size)"},
        {"name": "vwap_change", "formula": "diff(vwap, 1)"},
        {"name": "big", "formula": "sum(book.size) * lot"},
    ],
}


def _book(stocks_by_day: dict[str, tuple[int, ...]], seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for day, stocks in stocks_by_day.items():
        for stock in stocks:
            n = 300
            seconds = np.sort(rng.uniform(0, 6.5 * 3600, n))
            ts = pd.Timestamp(f"{day} 09:30", tz="America/New_York") + pd.to_timedelta(seconds, unit="s")
            price = 10 * stock + np.cumsum(rng.normal(0, 0.01, n))
            frames.append(pd.DataFrame({"ts": ts, "stock_id": stock, "price": price, "size": rng.integers(1, 9, n)}))
    return pd.concat(frames).sort_values("ts", kind="stable", ignore_index=True)


def _project(root: Path, book: pd.DataFrame, members: str | list[int], **universe: object) -> FspecProject:
    source = {
        "path": "data/book.parquet",
        "symbol": "stock_id",
        "time": "ts",
        "columns": {"price": "float64", "size": "float64"},
    }
    project: dict[str, object] = {
        "spec_version": 1,
        "sources": {"book": source},
        "intervals": ["30m"],
        "session": {"timezone": "America/New_York", "open": "09:30", "close": "16:00"},
    }
    if members == "universe":
        project["universes"] = {"stocks": {"from": "book", "suffix": "s{symbol}", "params": {"lot": 100}} | universe}
    else:
        project["instruments"] = {f"s{k}": {"symbol": str(k), "params": {"lot": 100}} for k in members}
    made = make_project(root, {"project.yaml": project, "features.yaml": FEATURES}, {"data/book.parquet": book})
    made.compile()
    return made


def _run(project: FspecProject) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(load_manifest(project.root), RunOptions())
    return [str(w.message) for w in caught]


def test_members_are_the_symbols_of_the_data_in_natural_order(tmp_path: Path) -> None:
    book = _book({DAYS[0]: (2, 10, 1), DAYS[1]: (2, 10)})
    project = _project(tmp_path, book, "universe")
    said = _run(project)
    assert [m for m in said if "no data" in m] == [
        "instrument 's1' has no data on 2024-01-03: its columns are NaN that day"
    ]
    got = project.output(DAYS[0], 1800)
    assert [c for c in got.columns if c.startswith("volume_")] == [
        "volume_1800s_s1",
        "volume_1800s_s2",
        "volume_1800s_s10",
    ]
    for day in DAYS:
        got = project.output(day, 1800)
        rows = book[book["ts"].dt.strftime("%Y-%m-%d") == day]
        bar = (rows["ts"] - pd.Timestamp(f"{day} 09:30", tz="America/New_York")) // pd.Timedelta("30min")
        for stock in (1, 2, 10):
            mine = rows[rows["stock_id"] == stock]
            if mine.empty:
                assert np.isnan(got[f"volume_1800s_s{stock}"]).all()
                continue
            volume = mine.groupby(bar[mine.index])["size"].sum().reindex(range(13), fill_value=0).to_numpy(float)
            np.testing.assert_array_equal(got[f"volume_1800s_s{stock}"], volume)
            np.testing.assert_array_equal(got[f"big_1800s_s{stock}"], volume * 100)


def test_a_universe_writes_what_the_same_members_listed_by_hand_write(tmp_path: Path) -> None:
    book = _book({DAYS[0]: (3, 1, 2), DAYS[1]: (1, 2, 3)})
    found = _project(tmp_path / "universe", book, "universe")
    listed = _project(tmp_path / "listed", book, [1, 2, 3])
    _run(found)
    _run(listed)
    for day in DAYS:
        pd.testing.assert_frame_equal(found.output(day, 1800), listed.output(day, 1800), check_exact=True)


def test_the_build_holds_one_stand_in_whatever_the_data(tmp_path: Path) -> None:
    """Compile reads no data: the manifest's size does not depend on how many members the data has."""
    sizes = []
    for n in (3, 30):
        root = tmp_path / str(n)
        _project(root, _book({DAYS[0]: tuple(range(1, n + 1))}), "universe")
        manifest = json.loads((root / "build" / "manifest.json").read_text())
        assert manifest["member_sets"] == [["stocks"]]
        sizes.append(len(json.dumps(manifest["features"])))
    assert sizes[0] == sizes[1]


def test_match_keeps_only_the_symbols_it_matches(tmp_path: Path) -> None:
    project = _project(tmp_path, _book({DAYS[0]: (1, 2, 11, 12)}), "universe", match="1[0-9]")
    _run(project)
    got = project.output(DAYS[0], 1800)
    assert [c for c in got.columns if c.startswith("volume_")] == ["volume_1800s_s11", "volume_1800s_s12"]


def test_members_of_per_symbol_files_are_the_symbols_in_their_paths(tmp_path: Path) -> None:
    book = _book({DAYS[0]: (1, 2)})
    data = {f"data/S{k}/20240102.parquet": book[book["stock_id"] == k] for k in (1, 2)}
    project = {
        "spec_version": 1,
        "sources": {"book": {"path": "data/{symbol}/{date}.parquet", "time": "ts", "columns": {"size": "float64"}}},
        "universes": {"stocks": {"from": "book"}},
        "intervals": ["30m"],
    }
    features = {"spec_version": 1, "features": [{"name": "volume", "formula": "sum(book.size)"}]}
    made = make_project(tmp_path, {"project.yaml": project, "features.yaml": features}, data)
    made.compile()
    _run(made)
    assert list(made.output(DAYS[0], 1800).columns) == ["ts_event", "volume_1800s_s1", "volume_1800s_s2"]


def test_a_symbol_that_makes_no_valid_suffix_is_an_error_naming_it(tmp_path: Path) -> None:
    project = _project(tmp_path, _book({DAYS[0]: (1, 2)}), "universe", suffix="{symbol}")
    with pytest.raises(DataError, match=r"symbol '1' gives the column suffix '1', which is not a valid one"):
        run(load_manifest(project.root), RunOptions())


def test_ls_and_state_modified_see_the_members(tmp_path: Path) -> None:
    from conftest import cli, expect

    book = _book({DAYS[0]: (2, 10, 1)})
    project = _project(tmp_path, book, "universe")
    listed = json.loads(expect(cli("ls", "--project", project.root, "volume", "--format", "json"), 0))
    assert [r["column"] for r in listed] == ["volume_1800s_s1", "volume_1800s_s2", "volume_1800s_s10"]
    build = project.root / "build"
    unchanged = expect(cli("ls", "--project", project.root, "state:modified", "--state", build), 0)
    assert unchanged.splitlines()[-1].startswith("0 column(s)"), unchanged  # the members are not new


def test_a_universe_without_a_member_or_with_two_symbols_on_one_suffix_is_an_error(tmp_path: Path) -> None:
    book = _book({DAYS[0]: (1, 2)})
    project = _project(tmp_path / "none", book, "universe", match="9[0-9]")
    with pytest.raises(DataError, match=r"universe 'stocks' found no member: no symbol matches '9\[0-9\]'"):
        run(load_manifest(project.root), RunOptions())
    clash = book.assign(stock_id=book["stock_id"].map({1: "A.B", 2: "A_B"}))  # both written a_b: s{symbol} is sa_b
    project = _project(tmp_path / "clash", clash, "universe")
    with pytest.raises(DataError, match=r"symbol 'A_B' and symbol 'A.B' both give the column suffix 'sa_b'"):
        run(load_manifest(project.root), RunOptions())
