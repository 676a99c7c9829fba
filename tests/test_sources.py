"""Loading a source file: parquet columns go to numpy straight from Arrow when they are plain numbers or
timestamps, and through pandas otherwise (text times, time zones to localise, nulls in the time column).
Every encoding of the same instants and values must load to the same UTC ns and float64 arrays, checked
against values built here independently of both readers (and against the CSV reader, which is all pandas).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fspec.errors import DataError
from fspec.manifest import SourceDef
from fspec.runtime.grid import NS
from fspec.runtime.sources import arrow_allocator, load_source

N = 1_000
# whole seconds from 2024-03-04 14:30 UTC (09:30 New York), 7 s apart: every unit can encode them exactly
SECONDS = 1_709_562_600 + 7 * np.arange(N, dtype=np.int64)
UTC_NS = SECONDS * 1_000_000_000
NEW_YORK = "America/New_York"


def source(time_unit: str | None = None, time_zone: str | None = None, columns: tuple[str, ...] = ("x",)) -> dict:
    return {
        "name": "trades",
        "path": "{symbol}_{date}.parquet",
        "format": "parquet",
        "time_column": "t",
        "time_unit": time_unit,
        "time_zone": time_zone,
        "columns": [{"name": c, "source_column": c, "dtype": "float64", "expr": None, "scale": 1.0} for c in columns],
        "column_trees": {},
        "filter_tree": None,
        "bar_width": None,
        "bar_stamp": None,
        "unsorted": "reject",
        "asof_source": None,
        "asof_columns": [],
        "events_declared": True,  # rows on whole seconds, which would otherwise look like bars
    }


def write(root: Path, columns: dict[str, Any], row_group_size: int = 300) -> Path:
    """A parquet file of several row groups (so several chunks per column, as real files have)."""
    path = root / "abc_20240304.parquet"
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return path


def load(root: Path, src: dict) -> Any:
    return load_source(root, SourceDef.from_json(src), "abc", "2024-03-04")


def values() -> pa.Array:
    return pa.array(np.linspace(100.0, 101.0, N))


TIME_ENCODINGS = {
    "int64 ns": (pa.array(UTC_NS), "ns", None),
    "int64 s": (pa.array(SECONDS), "s", None),
    "int32 ms offset": (pa.array((SECONDS - SECONDS[0]).astype(np.int32) * 1000), "ms", None),
    "uint64 us": (pa.array((SECONDS * 1_000_000).astype(np.uint64)), "us", None),
    "timestamp us UTC": (pa.array(UTC_NS // 1000, pa.timestamp("us", tz="UTC")), None, None),
    "timestamp ns New York": (pa.array(UTC_NS, pa.timestamp("ns", tz=NEW_YORK)), None, None),
    "timestamp ms naive, zone UTC": (pa.array(UTC_NS // 1_000_000, pa.timestamp("ms")), None, "UTC"),
    "timestamp us naive, New York wall clock": (
        pa.array(
            pd.DatetimeIndex(UTC_NS, tz="UTC").tz_convert(NEW_YORK).tz_localize(None).as_unit("us"),
            pa.timestamp("us"),
        ),
        None,
        NEW_YORK,
    ),
    "text, New York wall clock": (
        pa.array(pd.DatetimeIndex(UTC_NS, tz="UTC").tz_convert(NEW_YORK).strftime("%Y-%m-%d %H:%M:%S")),
        None,
        NEW_YORK,
    ),
}


@pytest.mark.parametrize("encoding", sorted(TIME_ENCODINGS))
def test_every_time_encoding_loads_the_same_utc_ns(tmp_path: Path, encoding: str) -> None:
    times, unit, zone = TIME_ENCODINGS[encoding]
    write(tmp_path, {"t": times, "x": values()})
    ticks = load(tmp_path, source(unit, zone))
    expected = UTC_NS - UTC_NS[0] if encoding == "int32 ms offset" else UTC_NS
    assert ticks.ts.dtype == np.int64
    np.testing.assert_array_equal(ticks.ts, expected)
    np.testing.assert_array_equal(ticks.columns["x"], np.linspace(100.0, 101.0, N))


VALUE_ENCODINGS = {
    "float64": (pa.array(np.arange(N) / 8.0), np.arange(N) / 8.0),
    "float32": (pa.array((np.arange(N) / 8.0).astype(np.float32)), np.arange(N) / 8.0),
    "int64 with nulls": (
        pa.array([None if i % 10 == 3 else i for i in range(N)], pa.int64()),
        np.where(np.arange(N) % 10 == 3, np.nan, np.arange(N)),
    ),
    "float64 with nulls": (
        pa.array([None if i % 7 == 0 else i / 4 for i in range(N)], pa.float64()),
        np.where(np.arange(N) % 7 == 0, np.nan, np.arange(N) / 4),
    ),
    "bool": (pa.array(np.arange(N) % 3 == 0), (np.arange(N) % 3 == 0).astype(np.float64)),
    "uint8": (pa.array((np.arange(N) % 200).astype(np.uint8)), (np.arange(N) % 200).astype(np.float64)),
    "int64 beyond 2**53": (pa.array(np.full(N, 2**60 + 1)), np.full(N, float(2**60 + 1))),
}


@pytest.mark.parametrize("encoding", sorted(VALUE_ENCODINGS))
def test_numeric_columns_load_as_float64_with_nulls_as_nan(tmp_path: Path, encoding: str) -> None:
    column, expected = VALUE_ENCODINGS[encoding]
    write(tmp_path, {"t": pa.array(UTC_NS), "x": column})
    ticks = load(tmp_path, source("ns"))
    assert ticks.columns["x"].dtype == np.float64
    np.testing.assert_array_equal(ticks.columns["x"], expected)


def test_parquet_and_csv_of_the_same_rows_load_identically(tmp_path: Path) -> None:
    frame = pd.DataFrame({"t": UTC_NS, "x": np.arange(N) / 3.0, "y": np.arange(N) % 5})
    write(tmp_path, {name: pa.array(frame[name].to_numpy()) for name in frame})
    (tmp_path / "abc_20240304.csv").write_text(frame.to_csv(index=False), encoding="utf-8")
    from_parquet = load(tmp_path, source("ns", columns=("x", "y")))
    from_csv = load(tmp_path, {**source("ns", columns=("x", "y")), "path": "{symbol}_{date}.csv", "format": "csv"})
    np.testing.assert_array_equal(from_parquet.ts, from_csv.ts)
    for name in ("x", "y"):
        np.testing.assert_array_equal(from_parquet.columns[name], from_csv.columns[name])


def test_one_row_group_and_empty_files_load(tmp_path: Path) -> None:
    write(tmp_path, {"t": pa.array(UTC_NS), "x": values()}, row_group_size=N)
    np.testing.assert_array_equal(load(tmp_path, source("ns")).ts, UTC_NS)
    write(tmp_path, {"t": pa.array([], pa.int64()), "x": pa.array([], pa.float64())})
    empty = load(tmp_path, source("ns"))
    assert len(empty) == 0 and empty.ts.dtype == np.int64 and empty.columns["x"].dtype == np.float64


BAD = {
    "null times": (
        {"t": pa.array([None, *UTC_NS[1:3], None, *UTC_NS[4:]], pa.int64())},
        "ns",
        "2 row(s) with a missing timestamp in column 't' (first at row 0)",
    ),
    "epochs out of range": ({"t": pa.array(SECONDS * 10**6)}, "s", "unparseable timestamps in column 't'"),
    "timestamps beyond 2262": (
        {"t": pa.array(np.full(N, 32_503_680_000), pa.timestamp("s", tz="UTC"))},
        None,
        "timestamps in column 't' outside the years 1677-2262",
    ),
    "naive timestamps without a declared zone": (
        {"t": pa.array(UTC_NS // 1_000_000, pa.timestamp("ms"))},
        None,
        "holds local times without a zone, and the source declares none",
    ),
    "naive text times without a declared zone": (
        {"t": pa.array([str(pd.Timestamp(v)) for v in UTC_NS])},
        None,
        "holds local times without a zone, and the source declares none",
    ),
    "numbers without a unit": ({"t": pa.array(UTC_NS)}, None, "holds numbers but the source gives no unit"),
    "text values": ({"t": pa.array(UTC_NS), "x": pa.array(["1.5"] * N)}, "ns", "column 'x' has type"),
    "decimal values": (
        {"t": pa.array(UTC_NS), "x": pa.array([1] * N, pa.decimal128(10, 2))},
        "ns",
        "column 'x' has type",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_columns_name_the_file_and_the_problem(tmp_path: Path, case: str) -> None:
    columns, unit, message = BAD[case]
    write(tmp_path, {"x": values(), **columns})
    with pytest.raises(DataError) as caught:
        load(tmp_path, source(unit))
    text = str(caught.value)
    assert "abc_20240304.parquet" in text and message in text, text


def test_a_truncated_parquet_file_is_a_data_error_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, {"t": pa.array(UTC_NS), "x": values()})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError) as caught:
        load(tmp_path, source("ns"))
    text = str(caught.value)
    assert "abc_20240304.parquet" in text and "cannot read parquet file" in text, text


def test_a_parquet_file_without_a_mapped_column_names_what_it_has(tmp_path: Path) -> None:
    write(tmp_path, {"t": pa.array(UTC_NS), "y": values()})
    with pytest.raises(DataError) as caught:
        load(tmp_path, source("ns"))
    text = str(caught.value)
    assert "abc_20240304.parquet" in text and "missing column(s) x; the file has: t, y" in text, text


def test_plain_parquet_columns_are_read_only_views_of_arrow_memory(tmp_path: Path) -> None:
    """Nothing may write into Arrow's immutable buffers: a loaded column refuses it."""
    write(tmp_path, {"t": pa.array(UTC_NS), "x": values()}, row_group_size=N)
    ticks = load(tmp_path, source("ns"))
    for array in (ticks.ts, ticks.columns["x"]):
        assert not array.flags.writeable
        with pytest.raises(ValueError):
            array[0] = 0


def test_arrow_allocator_switches_the_pool_and_restores_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    before = pa.default_memory_pool().backend_name
    with arrow_allocator():
        assert pa.default_memory_pool().backend_name in ("jemalloc", "system")
    assert pa.default_memory_pool().backend_name == before
    with pytest.raises(RuntimeError), arrow_allocator():
        raise RuntimeError("a failed read")
    assert pa.default_memory_pool().backend_name == before


def test_arrow_allocator_leaves_a_pool_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")
    before = pa.default_memory_pool().backend_name
    with arrow_allocator():
        assert pa.default_memory_pool().backend_name == before


def test_events_on_a_grid_of_whole_seconds_are_refused_unless_declared(tmp_path: Path) -> None:
    """A forgotten bars: is a whole bar of lookahead: rows 60 s apart read as events would be known at their
    start stamps. Refused, naming the grid and both ways out; kind: events keeps them."""
    minutes = UTC_NS[0] + np.arange(100, dtype=np.int64) * 60 * NS
    write(tmp_path, {"t": pa.array(minutes), "x": pa.array(np.arange(100.0))})
    undeclared = source("ns") | {"events_declared": False}
    with pytest.raises(DataError, match=r"all 100 times of source 'trades' sit on a 1m grid: these look like bars"):
        load(tmp_path, undeclared)
    assert len(load(tmp_path, source("ns"))) == 100
    jittered = minutes + np.arange(100) * 1_000  # one microsecond apart: events, whatever their spacing
    write(tmp_path, {"t": pa.array(jittered), "x": pa.array(np.arange(100.0))})
    assert len(load(tmp_path, undeclared)) == 100


def _split_source(**time: object) -> dict:
    fields = {"time_date": None, "time_day": None, "first_date": None, "time_clock": None, "time_anchor": 0}
    return source(time_zone=NEW_YORK) | fields | time


SPLIT_TIMES = {
    # Algoseek minute bars: a Date integer and an HHMM integer, New York wall clock
    "date + HHMM": (
        {"d": pa.array([20240102, 20240102, 20240103]), "t": pa.array([931, 1559, 930])},
        {"time_date": "d", "time_clock": "HHMM"},
        ["2024-01-02 09:31", "2024-01-02 15:59", "2024-01-03 09:30"],
    ),
    "text date + HHMMSSmmm": (
        {"d": pa.array(["2024-03-08", "2024-03-11", "2024-03-11"]), "t": pa.array([93015123, 93000000, 155959999])},
        {"time_date": "d", "time_clock": "HHMMSSmmm"},  # across the spring-forward weekend: EST, then EDT
        ["2024-03-08 09:30:15.123", "2024-03-11 09:30:00", "2024-03-11 15:59:59.999"],
    ),
    # Optiver's closing auction: anonymised day numbers and seconds after 15:50
    "day number + seconds after an anchor": (
        {"d": pa.array([0, 0, 1, 480]), "t": pa.array([0, 540, 10, 300])},
        {"time_day": "d", "first_date": "2023-01-02", "time_unit": "s", "time_anchor": 15 * 3600 + 50 * 60},
        ["2023-01-02 15:50", "2023-01-02 15:59", "2023-01-03 15:50:10", "2024-04-26 15:55"],
    ),
}


@pytest.mark.parametrize("case", sorted(SPLIT_TIMES))
def test_a_date_and_a_time_of_day_in_two_columns_load_as_utc_ns(tmp_path: Path, case: str) -> None:
    columns, time, wall = SPLIT_TIMES[case]
    n = len(wall)
    write(tmp_path, {**columns, "x": pa.array(np.arange(float(n)))})
    ticks = load(tmp_path, _split_source(**time) | {"unsorted": "sort"})
    expected = pd.DatetimeIndex(wall).tz_localize(NEW_YORK).tz_convert("UTC").as_unit("ns").asi8
    np.testing.assert_array_equal(ticks.ts, np.sort(expected))


def test_a_time_of_day_that_is_no_clock_time_is_an_error_naming_the_row(tmp_path: Path) -> None:
    write(tmp_path, {"d": pa.array([20240102, 20240102]), "t": pa.array([931, 975]), "x": pa.array([1.0, 2.0])})
    with pytest.raises(DataError, match=r"'t' at row 1 is 975, not a HHMM time of day"):
        load(tmp_path, _split_source(time_date="d", time_clock="HHMM"))


def test_unreadable_dates_and_missing_times_of_day_are_counted_naming_the_first(tmp_path: Path) -> None:
    dates = pa.array([20240102, None, 20240102, 20241399])  # a missing date and a 13th month
    write(tmp_path, {"d": dates, "t": pa.array([931, 932, 933, 934]), "x": pa.array([1.0, 2.0, 3.0, 4.0])})
    with pytest.raises(DataError, match=r"2 unreadable value\(s\) in the date column 'd' \(first at row 1\)"):
        load(tmp_path, _split_source(time_date="d", time_clock="HHMM"))
    days, seconds = pa.array([0, 0, 1]), pa.array([10, None, None])
    write(tmp_path, {"d": days, "t": seconds, "x": pa.array([1.0, 2.0, 3.0])})
    split = _split_source(time_day="d", first_date="2023-01-02", time_unit="s", time_anchor=15 * 3600)
    with pytest.raises(DataError, match=r"2 row\(s\) with a missing timestamp in column 't' \(first at row 1\)"):
        load(tmp_path, split)


def test_hhmm_2400_is_the_end_of_the_day_and_2401_no_time(tmp_path: Path) -> None:
    write(tmp_path, {"d": pa.array([20240102, 20240102]), "t": pa.array([2359, 2400]), "x": pa.array([1.0, 2.0])})
    ticks = load(tmp_path, _split_source(time_date="d", time_clock="HHMM"))
    midnight = pd.Timestamp("2024-01-03", tz=NEW_YORK).value
    assert ticks.ts[-1] == midnight and ticks.ts[-1] - ticks.ts[0] == 60 * NS
    write(tmp_path, {"d": pa.array([20240102]), "t": pa.array([2401]), "x": pa.array([1.0])})
    with pytest.raises(DataError, match=r"'t' at row 0 is 2401, not a HHMM time of day"):
        load(tmp_path, _split_source(time_date="d", time_clock="HHMM"))


def test_a_local_time_that_does_not_exist_is_an_error_naming_the_file(tmp_path: Path) -> None:
    """02:30 on 2024-03-10 does not exist in New York (the clocks go from 02:00 to 03:00)."""
    write(tmp_path, {"d": pa.array([20240310]), "t": pa.array([230]), "x": pa.array([1.0])})
    with pytest.raises(DataError, match=r"abc_20240304.parquet: local times that do not exist or repeat in America"):
        load(tmp_path, _split_source(time_date="d", time_clock="HHMM"))


def test_part_files_that_match_nothing_are_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no file matches"):
        load(tmp_path, source("ns") | {"path": "parts/{date}/part-*.parquet"})


# ---- JSON lines and CSV booleans ------------------------------------------------------------------------


def _jsonl(root: Path, lines: list[str], name: str = "abc_20240304.jsonl") -> Path:
    path = root / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_json_lines_type_each_column_over_the_file(tmp_path: Path) -> None:
    """Whole numbers (and text of them: nanosecond epochs keep every digit) as int64, decimals and text of
    decimals as float64, booleans as booleans, other text as text; a field absent, null, or an object or a
    list on a line is missing there; the symbol column stays text (0700 is not 700)."""
    from fspec import jsonlines

    lines = [
        '1723161254087896568 {"s": "0700", "n": 1, "p": "61837.63000000", "m": true, "k": "BUY", "d": {"x": 2}}',
        '1723161254087896569 {"s": "0700", "n": 2, "p": 1.5, "m": false, "k": null, "d": {"x": [1]}}',
        '1723161254087896570 {"s": 17, "n": 3, "m": null, "k": "SELL", "d": 4}',
    ]
    path = _jsonl(tmp_path, lines)
    table = jsonlines.read(path, ["t", "s", "n", "p", "m", "k", "d.x"], ("t",), {"s"}, "f")
    assert table.column("t").type == pa.int64()
    assert table.column("t").to_pylist() == [1723161254087896568, 1723161254087896569, 1723161254087896570]
    assert table.column("s").to_pylist() == ["0700", "0700", "17"]
    assert table.column("n").type == pa.int64() and table.column("n").to_pylist() == [1, 2, 3]
    assert table.column("p").type == pa.float64() and table.column("p").to_pylist() == [61837.63, 1.5, None]
    assert table.column("m").to_pylist() == [True, False, None]
    assert table.column("k").to_pylist() == ["BUY", None, "SELL"]
    assert table.column("d.x").to_pylist() == [2, None, None]  # a list, and d not an object: missing


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['1 {"p": 1}', '2 {"p": 2', '3 {"p": 3}', "4 [1, 2]"], r"2 bad line\(s\) of 4; the first, line 2: it is not"),
        (['1 {"p": 1}', '{"p": 2}'], r"1 bad line\(s\) of 2; the first, line 2: it has 0 field\(s\) before its JSON"),
        (['1 {"p": 1}', '2 {"p": 2}'], r"missing column\(s\) q: no line has them; the file has: t, p"),
    ],
)
def test_bad_json_lines_name_the_file_the_count_and_the_first(tmp_path: Path, lines: list[str], message: str) -> None:
    from fspec import jsonlines

    path = _jsonl(tmp_path, lines)
    with pytest.raises(DataError, match=message) as caught:
        jsonlines.read(path, ["t", "p", "q"] if "missing" in message else ["t", "p"], ("t",), set(), "data/x.jsonl")
    assert caught.value.file == "data/x.jsonl" and caught.value.hint


def test_json_lines_come_plain_gzip_or_zipped_alike(tmp_path: Path) -> None:
    import gzip
    import zipfile

    from fspec import jsonlines

    text = '5 {"a": {"b": "x\u2028y"}, "p": 1}\n6 {"a": {"b": "z"}, "p": 2}\n'  # (a U+2028 inside a text)
    (tmp_path / "plain.jsonl").write_text(text, encoding="utf-8")
    with gzip.open(tmp_path / "packed.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write(text)
    with zipfile.ZipFile(tmp_path / "zipped.zip", "w") as archive:
        archive.writestr("inside.jsonl", text)
    for name in ("plain.jsonl", "packed.jsonl.gz", "zipped.zip"):
        table = jsonlines.read(tmp_path / name, ["t", "a.b", "p"], ("t",), set(), name)
        assert table.to_pydict() == {"t": [5, 6], "a.b": ["x\u2028y", "z"], "p": [1, 2]}, name


def test_lines_a_filter_cannot_keep_are_not_decoded_and_change_nothing(tmp_path: Path) -> None:
    """A line without the filter's text (and no escape) is skipped undecoded, even a broken one; a line with
    an escape is decoded whatever it holds; a column found only on skipped lines is no error."""
    from fspec import jsonlines

    lines = ['1 {"k": "a", "p": 1}', '2 {"k": "b", "q": [}', '3 {"k": "\\u0061", "p": 3}', '4 {"k": "b", "r": 1}']
    path = _jsonl(tmp_path, lines)
    tree = {"op": "and_", "args": [{"op": "eq", "args": [{"column": "k"}, {"text": "a"}]}, {"op": "gt", "args": []}]}
    needles = jsonlines.needles_of(tree, ("t",))
    assert needles == (('"a"',),)
    table = jsonlines.read(path, ["t", "k", "p", "r"], ("t",), set(), "f", needles)
    assert table.column("t").to_pylist() == [1, 3] and table.column("k").to_pylist() == ["a", "a"]
    with pytest.raises(DataError, match=r"1 bad line\(s\) of 4; the first, line 2"):
        jsonlines.read(path, ["t", "k", "p"], ("t",), set(), "f")  # without the filter every line is decoded
    either = {"op": "or_", "args": [{"op": "eq", "args": [{"column": "k"}, {"text": t}]} for t in ("a", "b")]}
    assert jsonlines.needles_of(either, ("t",)) == (('"a"', '"b"'),)
    on_header = {"op": "eq", "args": [{"column": "t"}, {"text": "1"}]}  # a leading field is not JSON text
    assert jsonlines.needles_of(on_header, ("t",)) == ()


def test_csv_true_false_text_reads_as_booleans_with_empty_cells_missing(tmp_path: Path) -> None:
    """The Binance extracts write is_buyer_maker as True/False: 1 and 0 in expressions; an empty cell is NaN."""
    frame = pd.DataFrame({"t": UTC_NS[:4], "x": [1.0, 2.0, 3.0, 4.0]})
    text = frame.to_csv(index=False).splitlines()
    flags = ["m", "True", "", "False", "true"]
    (tmp_path / "abc_20240304.csv").write_text(
        "\n".join(f"{line},{flag}" for line, flag in zip(text, flags, strict=True)) + "\n", encoding="utf-8"
    )
    src = source("ns") | {"path": "{symbol}_{date}.csv", "format": "csv"}
    src["columns"] = [{"name": "m", "source_column": "m", "dtype": "float64", "expr": None, "scale": 1.0}]
    src["column_trees"] = {
        "side": {"op": "sub", "args": [{"const": 1.0}, {"op": "mul", "args": [{"const": 2.0}, {"column": "m"}]}]}
    }
    ticks = load(tmp_path, src)
    np.testing.assert_array_equal(ticks.columns["m"], [1.0, np.nan, 0.0, 1.0])
    np.testing.assert_array_equal(ticks.columns["side"], [-1.0, np.nan, 1.0, -1.0])


# ---- conversions by numpy where pyarrow.compute would be imported ----------------------------------------


@pytest.mark.parametrize(
    "array",
    [
        pa.array([1, -2, 2**53 + 1, -(2**62)], pa.int64()),
        pa.array([1, -2, 127], pa.int8()),
        pa.array([0, 2**64 - 1, 2**63], pa.uint64()),
        pa.array([1.5, -2.25, 3.4e38], pa.float32()),
        pa.array([5, 6, 7, 8, 9], pa.int32()).slice(2),  # an offset into the buffer
    ],
)
def test_numbers_cast_as_pyarrow_casts_them(array: pa.Array) -> None:
    import pyarrow.compute as pc

    from fspec.runtime.sources import _cast_chunk

    for kind in (pa.float64(), pa.int64()):
        if kind == pa.int64() and not pa.types.is_integer(array.type):
            continue
        ours = _cast_chunk(array, kind)
        assert ours.type == kind
        assert ours.equals(pc.cast(array, kind, safe=False))


def test_zone_aware_times_of_any_unit_are_utc_ns() -> None:
    from fspec.runtime.sources import _arrow_utc_ns

    ns = np.array([1_381_152_600_123_456_789, 1_381_152_601_000_000_000], dtype=np.int64)
    for unit, factor in (("s", 10**9), ("ms", 10**6), ("us", 10**3), ("ns", 1)):
        values = pa.chunked_array([pa.array(ns // factor, pa.timestamp(unit, tz="America/New_York"))])
        got = _arrow_utc_ns(values, None, "America/New_York", "f.parquet", "time")
        assert got is not None and got.tolist() == ((ns // factor) * factor).tolist()
    far = pa.chunked_array([pa.array([2**62], pa.timestamp("s", tz="UTC"))])  # beyond the ns range
    assert _arrow_utc_ns(far, None, "UTC", "f.parquet", "time") is None


def test_an_option_s_rights_as_codes_with_nulls_and_small_indices() -> None:
    from fspec.runtime.chain import _right_codes

    small = pa.DictionaryArray.from_arrays(pa.array([0, 1, None, 1], pa.int8()), pa.array(["C", "P"]))
    codes, words = _right_codes(pa.chunked_array([small]))
    assert words == ["C", "P"] and codes.tolist() == [0, 1, 2, 1] and codes.dtype == np.int32
    plain = pa.chunked_array([pa.array(["P", "C", None]), pa.array(["C"])])
    codes, words = _right_codes(plain)
    assert [words[c] if c < len(words) else None for c in codes] == ["P", "C", None, "C"]
