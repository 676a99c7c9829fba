"""Cross-sectional operators: each against pandas over the members of every bar, NaN members, ties, all-NaN
bars and lone members included; and end to end on a universe found in the data, against pandas groupby."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_project

from fspec.operators import CROSS, REGISTRY
from fspec.runtime.manifest import load_manifest
from fspec.runtime.run import RunOptions, run

CROSS_OPS = sorted(name for name, op in REGISTRY.items() if op.kind == CROSS)


def _panel(seed: int) -> np.ndarray:
    """12 members x 40 bars: rounded values (ties), NaN and inf members, a bar of NaN only, a bar of one member."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(0, 1, (12, 40)), 1)
    x[rng.random(x.shape) < 0.15] = np.nan
    x[3, 5] = np.inf
    x[:, 7] = np.nan
    x[1:, 9] = np.nan
    x[:, 11] = 2.5  # every member equal: ranks all 0.5, zscore NaN (std 0)
    return x


@pytest.mark.parametrize("name", CROSS_OPS)
@pytest.mark.parametrize("seed", [0, 1])
def test_each_cross_section_operator_matches_pandas(name: str, seed: int) -> None:
    op = REGISTRY[name]
    x = _panel(seed)
    args = [x, np.abs(_panel(seed + 10)) + 0.1] if len(op.params) == 2 else [x]
    np.testing.assert_allclose(op.numpy(*args), op.reference(*args), rtol=1e-12, atol=1e-15, equal_nan=True)


def test_rank_is_zero_to_one_with_ties_averaged() -> None:
    x = np.array([[3.0], [1.0], [3.0], [np.nan], [2.0]])
    np.testing.assert_array_equal(REGISTRY["cs_rank"].numpy(x)[:, 0], [5 / 6, 0.0, 5 / 6, np.nan, 1 / 3])


DAYS = ("2024-01-02", "2024-01-03")


def test_cross_sections_of_a_universe_end_to_end(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    frames = []
    for day, stocks in ((DAYS[0], (1, 2, 3, 4)), (DAYS[1], (1, 2, 4))):  # stock 3 absent on the second day
        for stock in stocks:
            n = 200
            ts = pd.Timestamp(f"{day} 09:30", tz="America/New_York") + pd.to_timedelta(
                np.sort(rng.uniform(0, 6.5 * 3600, n)), unit="s"
            )
            price = 10 * stock + np.round(np.cumsum(rng.normal(0, 0.05, n)), 2)
            frames.append(pd.DataFrame({"ts": ts, "sym": stock, "price": price, "size": rng.integers(1, 9, n)}))
    book = pd.concat(frames).sort_values("ts", kind="stable", ignore_index=True)
    project = {
        "spec_version": 1,
        "sources": {
            "book": {
                "path": "data/book.parquet",
                "symbol": "sym",
                "time": "ts",
                "columns": {"price": "float64", "size": "float64"},
            }
        },
        "universes": {"stocks": {"from": "book", "suffix": "s{symbol}", "params": {"weight": 2.0}}},
        "intervals": ["30m"],
        "session": {"timezone": "America/New_York", "open": "09:30", "close": "16:00"},
    }
    each = {"instruments": ["stocks"]}
    features = {
        "spec_version": 1,
        "features": [
            {"name": "vwap", "formula": "wmean(book.price, book.size)"},
            {"name": "volume", "formula": "sum(book.size)"},
            {"name": "vwap_rank", "formula": "cs_rank(vwap)"} | each,
            {"name": "vwap_vs_index", "formula": "vwap / cs_wmean(vwap, weight * volume)"} | each,
            {"name": "volume_z", "formula": "cs_zscore(volume)"} | each,
            {"name": "members", "formula": "cs_count(vwap)"} | each,
            {"name": "index_stocks", "formula": "cs_wmean(stocks.vwap, stocks.weight * stocks.volume)"},
        ],
    }
    made = make_project(tmp_path, {"project.yaml": project, "features.yaml": features}, {"data/book.parquet": book})
    made.compile()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # one member's cross-section alone still ranks it among all the members
        run(load_manifest(made.root), RunOptions(select=["volume_z_1800s_s2"]))
        alone = made.output(DAYS[0], 1800)["volume_z_1800s_s2"]
        for path in (made.root / "out").glob("*.parquet"):
            path.unlink()
        run(load_manifest(made.root), RunOptions(select=["index_stocks"]))  # the index alone reads every member
        index_alone = made.output(DAYS[1], 1800)["index_stocks_1800s"]
        for path in (made.root / "out").glob("*.parquet"):
            path.unlink()
        run(load_manifest(made.root), RunOptions())
    pd.testing.assert_series_equal(made.output(DAYS[0], 1800)["volume_z_1800s_s2"], alone)
    pd.testing.assert_series_equal(made.output(DAYS[1], 1800)["index_stocks_1800s"], index_alone)
    for day in DAYS:
        got = made.output(day, 1800)
        rows = book[book["ts"].dt.strftime("%Y-%m-%d") == day]
        bar = (rows["ts"] - pd.Timestamp(f"{day} 09:30", tz="America/New_York")) // pd.Timedelta("30min")
        by = rows.assign(bar=bar, pq=rows.price * rows["size"]).groupby(["bar", "sym"])
        vwap = (by.pq.sum() / by["size"].sum()).unstack("sym").reindex(index=range(13), columns=[1, 2, 3, 4])
        volume = by["size"].sum().unstack("sym").reindex(index=range(13), columns=[1, 2, 3, 4])
        if day == DAYS[1]:
            volume[3] = np.nan  # absent that day: unknown, not an empty day
        else:
            volume = volume.fillna(0.0)
        n = vwap.count(axis=1)
        rank = vwap.rank(axis=1, method="average").sub(1).div(n - 1, axis=0)
        index = (vwap * 2.0 * volume).sum(axis=1, min_count=1) / (2.0 * volume).where(vwap.notna()).sum(axis=1)
        z = volume.sub(volume.mean(axis=1), axis=0).div(volume.std(axis=1, ddof=1), axis=0)
        for stock in (1, 2, 3, 4):
            col = f"s{stock}"
            np.testing.assert_allclose(got[f"vwap_rank_1800s_{col}"], rank[stock], rtol=1e-12, equal_nan=True)
            np.testing.assert_allclose(
                got[f"vwap_vs_index_1800s_{col}"], vwap[stock] / index, rtol=1e-12, equal_nan=True
            )
            np.testing.assert_allclose(got[f"volume_z_1800s_{col}"], z[stock], rtol=1e-12, equal_nan=True)
            np.testing.assert_array_equal(got[f"members_1800s_{col}"], n.to_numpy(dtype=float))
        np.testing.assert_allclose(got["index_stocks_1800s"], index, rtol=1e-12, equal_nan=True)
