"""A universe's parameters read per member from a table (index weights): the values reach both the kernels (a
tick formula) and the cross-sections (an index), against pandas; a missing member, a duplicate row, a missing
column and a wrong file are clear errors; a table's value is unknown when compiling (no window from it)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import book_project, cli, expect, make_project

from fspec.errors import DataError
from fspec.runtime.manifest import load_manifest
from fspec.runtime.run import RunOptions, run

DAY = "2024-01-02"
STOCKS = (1, 2, 3, 4, 5)
WEIGHTS = {1: 0.5, 2: 1.25, 3: 2.0, 4: 0.75, 5: 3.5}


def _book() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frames = []
    for stock in STOCKS:
        n = 150
        ts = pd.Timestamp(f"{DAY} 09:30", tz="America/New_York") + pd.to_timedelta(
            np.sort(rng.uniform(0, 6.5 * 3600, n)), unit="s"
        )
        price = 10 * stock + np.round(np.cumsum(rng.normal(0, 0.05, n)), 2)
        frames.append(pd.DataFrame({"ts": ts, "sym": stock, "price": price, "size": rng.integers(1, 9, n)}))
    return pd.concat(frames).sort_values("ts", kind="stable", ignore_index=True)


def _project(root: Path, weights: pd.DataFrame | None, param: dict | None = None, formula: str | None = None):
    param = param or {"file": "data/weights.csv", "symbol": "stock", "value": "w"}
    project = book_project(
        universes={"stocks": {"from": "book", "suffix": "s{symbol}", "params": {"weight": param, "lot": 100}}}
    )
    features = {
        "spec_version": 1,
        "features": [
            {"name": "vwap", "formula": "wmean(book.price, book.size)"},
            {"name": "weighted_size", "formula": formula or "sum(book.size * weight)"},
            {"name": "index_stocks", "formula": "cs_wmean(stocks.vwap, stocks.weight)"},
        ],
    }
    made = make_project(root, {"project.yaml": project, "features.yaml": features}, {"data/book.parquet": _book()})
    if weights is not None:
        weights.to_csv(root / "data" / "weights.csv", index=False)
    return made


def _weights(drop: int | None = None) -> pd.DataFrame:
    rows = [(s, w) for s, w in WEIGHTS.items() if s != drop]
    return pd.DataFrame({"stock": [s for s, _ in rows], "w": [w for _, w in rows], "other": 0})


def _run(root: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run(load_manifest(root), RunOptions())


def test_each_member_gets_its_own_value_in_kernels_and_cross_sections(tmp_path: Path) -> None:
    made = _project(tmp_path, _weights().iloc[::-1])  # row order is not member order
    made.compile()
    _run(made.root)
    got = made.output(DAY, 1800)
    book = _book()
    bar = (book["ts"] - pd.Timestamp(f"{DAY} 09:30", tz="America/New_York")) // pd.Timedelta("30min")
    by = book.assign(bar=bar, pq=book.price * book["size"]).groupby(["bar", "sym"])
    vwap = (by.pq.sum() / by["size"].sum()).unstack("sym").reindex(index=range(13), columns=list(STOCKS))
    size = by["size"].sum().unstack("sym").reindex(index=range(13), columns=list(STOCKS)).fillna(0.0)
    w = pd.Series(WEIGHTS)
    for s in STOCKS:
        np.testing.assert_allclose(got[f"weighted_size_1800s_s{s}"], size[s] * WEIGHTS[s], rtol=1e-12)
    index = (vwap * w).sum(axis=1, min_count=1) / vwap.notna().mul(w).sum(axis=1)
    np.testing.assert_allclose(got["index_stocks_1800s"], index, rtol=1e-12, equal_nan=True)


def test_a_member_without_a_row_is_an_error_naming_the_table_and_the_member(tmp_path: Path) -> None:
    made = _project(tmp_path, _weights(drop=4))
    made.compile()
    with pytest.raises(DataError) as caught:
        _run(made.root)
    text = str(caught.value)
    assert "data/weights.csv" in text and "1 of its 5 members" in text and "a value for stock = 4" in text
    assert not (made.root / "out").exists() or not list((made.root / "out").glob("*.parquet"))


def test_two_rows_for_one_symbol_are_an_error(tmp_path: Path) -> None:
    made = _project(tmp_path, pd.concat([_weights(), _weights().iloc[:1]]))
    made.compile()
    with pytest.raises(DataError, match="symbol '1' has two rows"):
        _run(made.root)


def test_validate_data_finds_a_misspelled_column_and_a_missing_table(tmp_path: Path) -> None:
    made = _project(tmp_path, _weights(), {"file": "data/weights.csv", "symbol": "stock", "value": "wt"})
    out = expect(cli("validate", "--project", str(made.root), "--data"), 1)
    assert "column 'wt' of parameter 'weight'" in out and "did you mean 'w'?" in out and "project.yaml:" in out
    (made.root / "data" / "weights.csv").unlink()
    out = expect(cli("validate", "--project", str(made.root), "--data"), 1)
    assert "file not found (parameter 'weight')" in out


def test_a_table_that_is_no_table_and_a_window_from_a_table_are_spec_errors(tmp_path: Path) -> None:
    made = _project(tmp_path, _weights(), {"file": "data/weights.xlsx", "symbol": "stock", "value": "w"})
    out = expect(cli("validate", "--project", str(made.root)), 1)
    assert "not a parquet or CSV table" in out and "project.yaml:" in out
    made = _project(tmp_path / "w", _weights(), formula="rolling_mean(sum(book.size), weight)")
    out = expect(cli("validate", "--project", str(made.root)), 1)
    assert "'weight' is read from a table per member" in out and "features.yaml:6:" in out


def test_a_table_parameter_inside_a_reducer_over_another_instruments_ticks_is_a_spec_error(tmp_path: Path) -> None:
    import yaml

    made = _project(tmp_path, _weights(), formula="sum(idx.book.size * weight)")
    project = yaml.safe_load((made.root / "specs" / "project.yaml").read_text())
    project["universes"]["stocks"]["match"] = "[2-5]"
    project["instruments"] = {"idx": {"symbol": "1"}}
    (made.root / "specs" / "project.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    features = yaml.safe_load((made.root / "specs" / "features.yaml").read_text())
    features["features"] = [
        f | {"instruments": ["stocks"]} for f in features["features"] if f["name"] != "index_stocks"
    ]
    (made.root / "specs" / "features.yaml").write_text(yaml.safe_dump(features, sort_keys=False))
    out = expect(cli("validate", "--project", str(made.root)), 1)
    assert "'weight' is read from a table per member, so it cannot be inside a reducer" in out
    assert "features.yaml:" in out and "sum(...) * weight" in out


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            pd.DataFrame({"stock": list(WEIGHTS), "w": ["heavy"] * len(WEIGHTS)}),
            "column 'w' of parameter 'weight' is not numbers",
        ),
        (pd.DataFrame({"stock": list(WEIGHTS), "wt": list(WEIGHTS.values())}), "no column 'w' for parameter 'weight'"),
    ],
)
def test_a_table_of_no_numbers_or_without_its_column_fails_the_run_naming_it(
    tmp_path: Path, table: pd.DataFrame, message: str
) -> None:
    made = _project(tmp_path, table)
    made.compile()
    with pytest.raises(DataError, match=message) as caught:
        _run(made.root)
    assert "data/weights.csv" in str(caught.value)
    assert not list((made.root / "out").glob("*.parquet")) if (made.root / "out").exists() else True
