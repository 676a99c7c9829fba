"""Kernel calls of many short sessions run in batches (one call for many instruments of a source and day):
the values are the same bits as one call per instrument, with members absent on a day, warm-up from an earlier
session, a parameter read per tick and one or two threads."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import book_project, make_project

import fspec.runtime.calls as calls_module
from fspec.runtime.manifest import load_manifest
from fspec.runtime.run import RunOptions, run

DAYS = ("2024-01-02", "2024-01-03", "2024-01-04")
STOCKS = tuple(range(1, 13))
FEATURES = {
    "spec_version": 1,
    "features": [
        {"name": "volume", "formula": "sum(book.size)"},
        {"name": "lots", "formula": "sum(book.size * lot)"},  # a parameter inside the kernel, per member
        {"name": "vwap", "formula": "wmean(book.price, book.size)"},
        {"name": "ret", "formula": "sum(diff(log(book.price)))"},
        {"name": "volume_mean", "formula": "rolling_mean(volume, 20)"},  # warm-up from the previous session
    ],
}


def _book() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    frames = []
    for k, day in enumerate(DAYS):
        for stock in STOCKS:
            if (stock, k) in {(3, 1), (7, 2)}:
                continue  # absent that day: NaN columns
            n = int(rng.integers(0, 400)) if stock != 5 else 0  # stock 5 trades on no day but is listed
            seconds = np.sort(rng.uniform(0, 6.5 * 3600, n))
            ts = pd.Timestamp(f"{day} 09:30", tz="America/New_York") + pd.to_timedelta(seconds, unit="s")
            price = 10 * stock + np.cumsum(rng.normal(0, 0.01, n))
            frames.append(pd.DataFrame({"ts": ts, "stock_id": stock, "price": price, "size": rng.integers(1, 9, n)}))
    return pd.concat(frames).sort_values("ts", kind="stable", ignore_index=True)


def _outputs(root: Path, monkeypatch: pytest.MonkeyPatch, batch_ticks: int, threads: str) -> dict[str, dict]:
    monkeypatch.setattr(calls_module, "BATCH_TICKS", batch_ticks)
    monkeypatch.setenv("FSPEC_THREADS", threads)
    out = root / f"out_{batch_ticks}_{threads}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        written = run(load_manifest(root), RunOptions(output_dir=out))
    return {p.name: pq.read_table(p).to_pydict() for p in written}


def _bits(tables: dict[str, dict]) -> dict[str, dict[str, bytes]]:
    return {
        name: {c: np.asarray(v, dtype=np.float64).tobytes() for c, v in t.items() if c != "ts_event"}
        for name, t in tables.items()
    }


def test_batched_calls_give_the_bits_of_one_call_per_instrument(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    instruments = {f"s{k}": {"symbol": str(k), "params": {"lot": 100 + k}} for k in STOCKS}
    project = book_project("stock_id", instruments=instruments)
    made = make_project(tmp_path, {"project.yaml": project, "features.yaml": FEATURES}, {"data/book.parquet": _book()})
    made.compile()
    batches: list[int] = []
    original = calls_module.BatchCall.run

    def counted(self: calls_module.BatchCall) -> list:
        batches.append(len(self.calls))
        return original(self)

    monkeypatch.setattr(calls_module.BatchCall, "run", counted)
    default = calls_module.BATCH_TICKS
    alone = _bits(_outputs(tmp_path, monkeypatch, 0, "1"))
    assert not batches
    for threads in ("1", "2"):
        batched = _bits(_outputs(tmp_path, monkeypatch, default, threads))
        assert batched == alone
    # the short sessions went through batches of several instruments
    assert batches and max(batches) > 2
    assert len(alone) == len(DAYS)
    day = _outputs(tmp_path, monkeypatch, default, "2")["features_20240102_1800s.parquet"]
    for k in (2, 9):  # each member's own parameter reached its rows of the batch
        np.testing.assert_array_equal(
            np.asarray(day[f"lots_1800s_s{k}"]), np.asarray(day[f"volume_1800s_s{k}"]) * (100 + k)
        )
    assert np.isnan(
        np.asarray(_outputs(tmp_path, monkeypatch, default, "2")["features_20240103_1800s.parquet"]["vwap_1800s_s3"])
    ).all()
