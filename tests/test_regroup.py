"""Regrouping a long file's rows by symbol (runtime/regroup.py and read_symbols), against numpy's stable argsort
and pandas' row selection of the same rows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fspec.manifest import ColumnDef, SourceDef
from fspec.runtime import regroup, sources
from fspec.runtime.sources import UTC_NS, read_symbols


def _reference(codes: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Each code's first row and the rows in regrouped order, by numpy: a stable sort of the rows that have a
    code (negative codes dropped)."""
    rows = np.flatnonzero(codes >= 0)
    order = rows[np.argsort(codes[rows], kind="stable")]
    starts = np.concatenate([[0], np.cumsum(np.bincount(codes[rows], minlength=count))])
    return starts, order


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_counting_sort_is_numpys_stable_sort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, count = 5_000, 7
    codes = rng.integers(-1, count, n).astype(np.int32)
    codes[rng.random(n) < 0.3] = 2  # uneven runs; code 5 absent altogether
    codes[codes == 5] = -1
    expected_starts, expected_order = _reference(codes, count)
    frozen = regroup.read_only(codes)
    starts = regroup.starts_of(frozen, count)
    np.testing.assert_array_equal(starts, expected_starts)
    starts = regroup.read_only(starts)
    np.testing.assert_array_equal(regroup.order_of(frozen, starts), expected_order)
    cursor = starts[:-1].copy()
    dest = np.empty(n, dtype=np.int64)
    for lo, hi in ((0, 1), (1, 1777), (1777, 1777), (1777, n)):  # batches, one of them empty
        regroup.destinations(frozen[lo:hi], cursor, dest[lo:hi])
    np.testing.assert_array_equal(cursor, starts[1:])  # every code's run filled exactly
    np.testing.assert_array_equal(dest[codes < 0], -1)
    places = regroup.read_only(dest)
    for dtype in (np.int64, np.int32, np.int8):
        values = rng.integers(-100, 100, n).astype(dtype)
        out = np.empty(int(starts[-1]), dtype=dtype)
        regroup.put(places, regroup.read_only(values), out)
        np.testing.assert_array_equal(out, values[expected_order])


def test_other_types_are_refused_not_compiled() -> None:
    """Compiled for its signatures only: a call with other types fails at once, never compiles mid-run."""
    codes = regroup.read_only(np.zeros(3, dtype=np.int32))
    with pytest.raises(TypeError):
        regroup.starts_of(regroup.read_only(np.zeros(3, dtype=np.int64)), 1)
    with pytest.raises(TypeError):
        regroup.put(regroup.read_only(np.zeros(3, np.int64)), regroup.read_only(np.zeros(3)), np.zeros(3))
    with pytest.raises(TypeError):
        regroup.destinations(codes, np.zeros(1, np.int32), np.zeros(3, np.int64))


def _source(**extra: object) -> SourceDef:
    fields = {
        "name": "trades",
        "path": "all.parquet",
        "format": "parquet",
        "time_column": "t",
        "time_unit": None,
        "time_zone": None,
        "columns": (ColumnDef("price", "price"), ColumnDef("size", "qty"), ColumnDef("n", "n")),
        "filter_tree": {"op": "eq", "args": [{"column": "side"}, {"text": "BUY"}]},
        "column_trees": {},
        "bar_width": None,
        "bar_stamp": None,
        "unsorted": "sort",
        "asof_source": None,
        "asof_columns": (),
        "symbol_column": "sym",
    }
    return SourceDef(**(fields | extra))  # type: ignore[arg-type]


def _long_frame(n: int = 3_000, seed: int = 4) -> pd.DataFrame:
    """Rows in time order of five symbols, as a consolidated feed: zone-aware times, a float column with nulls
    (moved, its validity beside it), int32 counts (moved as 4-byte values), text sides (taken), rows without a
    symbol."""
    rng = np.random.default_rng(seed)
    times = pd.Timestamp("2024-01-02 14:30", tz="UTC") + pd.to_timedelta(np.sort(rng.uniform(0, 23_400, n)), "s")
    frame = pd.DataFrame(
        {
            "t": times,
            "sym": pd.Series(rng.choice(["A", "B", "C", "D", "E"], n), dtype=object),
            "price": 100 + rng.normal(0, 1, n),
            "qty": rng.integers(1, 500, n).astype(float),
            "n": rng.integers(0, 9, n).astype(np.int32),
            "side": rng.choice(["BUY", "SELL"], n),
        }
    )
    frame.loc[(rng.random(n) < 0.1) & (np.arange(n) > n // 2), "qty"] = np.nan  # the first row groups have none
    frame.loc[[3, n // 3, n - 1], "sym"] = None
    return frame


@pytest.mark.parametrize("batch", [65_536, 97])
@pytest.mark.parametrize("order", ["time", "symbol"])
def test_each_symbols_rows_are_its_rows_in_file_order(
    tmp_path: Path, order: str, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "REGROUP_BATCH_ROWS", batch)  # batches of whole row groups, or of parts of one
    frame = _long_frame()
    if order == "symbol":
        frame = frame.sort_values("sym", kind="stable", na_position="first", ignore_index=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "all.parquet", row_group_size=700)
    with pytest.warns(UserWarning, match=r"3 row\(s\) with no value in the symbol column 'sym'"):
        rows = read_symbols(tmp_path, _source(), "", {"A", "C", "E", "Z"})
    _check(rows.frames, frame, {"A", "C", "E"})  # B and D are not wanted, Z is not in the file


def test_part_files_in_time_order_are_one_file(tmp_path: Path) -> None:
    """Part files are read in name order as one file; a column that is int32 in one part and int64 in the
    others is int64, as concatenating the parts gives."""
    frame = _long_frame()
    (tmp_path / "parts").mkdir()
    for k, lo in enumerate(range(0, len(frame), 1_000)):
        part = pa.Table.from_pandas(frame.iloc[lo : lo + 1_000], preserve_index=False)
        if k:
            part = part.set_column(part.schema.get_field_index("n"), "n", part.column("n").cast(pa.int64()))
        pq.write_table(part, tmp_path / "parts" / f"part-{k}.parquet", row_group_size=300)
    with pytest.warns(UserWarning, match="no value in the symbol column"):
        rows = read_symbols(tmp_path, _source(path="parts/part-*.parquet"), "", {"B", "D"})
    _check(rows.frames, frame, {"B", "D"}, n_type=pa.int64())


def _check(frames: dict, frame: pd.DataFrame, symbols: set[str], n_type: pa.DataType | None = None) -> None:
    assert set(frames) == symbols
    for symbol, got in frames.items():
        mine = frame[frame["sym"] == symbol]
        assert got.column_names == [UTC_NS, "price", "qty", "n", "side"]
        np.testing.assert_array_equal(got.column(UTC_NS).to_numpy(), mine["t"].astype("int64").to_numpy())
        np.testing.assert_array_equal(got.column("price").to_numpy(), mine["price"].to_numpy())
        np.testing.assert_array_equal(got.column("qty").to_numpy(), mine["qty"].to_numpy())  # NaN where null
        assert got.column("qty").null_count == mine["qty"].isna().sum() > 0
        assert got.column("n").type == (n_type or pa.int32())  # moved as 4-byte values, or cast to the parts' type
        np.testing.assert_array_equal(got.column("n").to_numpy(), mine["n"].to_numpy())
        assert got.column("side").to_pylist() == mine["side"].tolist()


def test_csv_rows_in_time_order_are_regrouped_too(tmp_path: Path) -> None:
    frame = _long_frame(n=500).drop(columns=["n"])
    frame.to_csv(tmp_path / "all.csv", index=False)
    source = _source(path="all.csv", format="csv", columns=(ColumnDef("price", "price"),))
    with pytest.warns(UserWarning, match="no value in the symbol column"):
        rows = read_symbols(tmp_path, source, "", {"B", "D"})
    for symbol, got in rows.frames.items():
        mine = frame[frame["sym"] == symbol]
        np.testing.assert_array_equal(got[UTC_NS].to_numpy(), mine["t"].astype("int64").to_numpy())
        np.testing.assert_array_equal(got["price"].to_numpy(), mine["price"].to_numpy())
        assert got["side"].tolist() == mine["side"].tolist()


def test_regrouping_a_parquet_file_imports_no_pandas(tmp_path: Path) -> None:
    """pa.array(numpy) imports pandas (0.2-0.5 s of a run) to ask whether it was given a Series."""
    frame = _long_frame(n=400).drop(columns=["qty", "side"]).dropna()
    frame["t"] = frame["t"].astype("int64")
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "all.parquet", row_group_size=100)
    code = (
        "import sys\nfrom pathlib import Path\n"
        "from fspec.manifest import ColumnDef, SourceDef\nfrom fspec.runtime.sources import read_symbols\n"
        "source = SourceDef('trades', 'all.parquet', 'parquet', 't', 'ns', None, (ColumnDef('price', 'price'),),"
        " None, {}, None, None, 'sort', None, (), 'sym')\n"
        f"rows = read_symbols(Path({str(tmp_path)!r}), source, '', {{'A', 'B'}})\n"
        "assert sorted(rows.frames) == ['A', 'B'] and 'fspec.runtime.regroup' in sys.modules\n"
        "print('pandas' in sys.modules)\n"
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "False"


def test_a_file_without_rows_or_without_a_wanted_symbol_gives_no_frames(tmp_path: Path) -> None:
    frame = _long_frame(n=300)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table.slice(0, 0), tmp_path / "empty.parquet")
    pq.write_table(table, tmp_path / "all.parquet", row_group_size=100)
    assert read_symbols(tmp_path, _source(path="empty.parquet"), "", {"A"}).frames == {}
    assert read_symbols(tmp_path, _source(), "", {"Z"}).frames == {}  # no row group may hold Z: none read
    with pytest.warns(UserWarning, match="no value in the symbol column"):  # BB may be in any: all read
        assert read_symbols(tmp_path, _source(), "", {"BB"}).frames == {}
