"""Sources as vendors ship them: one file holding many symbols (``symbol: COLUMN``), and many days too.

The reference is fspec itself on per-symbol files: the same rows, laid out long, must give the same columns
bit for bit, whatever the order of the long file's rows.
"""

from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import REPO, FspecProject, cli, expect, make_project, shipped_specs

from fspec.manifest import ColumnDef, SourceDef
from fspec.runtime.sources import UTC_NS, DataWarning, read_symbols

STOCKS = ("spy", "qqq", "vxx")
DAY = "2013-10-07"


def _long(kind: str, order: str) -> pd.DataFrame:
    """The sample's per-symbol files of ``kind`` as one table with a ``sym`` column: interleaved in time order
    (as a consolidated feed is), or grouped by symbol."""
    frames = []
    for symbol in STOCKS:
        frame = pd.read_parquet(REPO / "data" / "sample" / symbol / f"20131007_{kind}.parquet")
        frames.append(frame.assign(sym=symbol))
    table = pd.concat(frames, ignore_index=True)
    if order == "time":
        table = table.sort_values("time", kind="stable", ignore_index=True)
    return table


def _long_project(root: Path, order: str) -> FspecProject:
    specs = shipped_specs()
    project = yaml.safe_load(specs["project.yaml"])
    for source, kind in (("trades", "trades"), ("quotes", "quotes_1s")):
        project["sources"][source]["path"] = f"data/long/{{date}}_{kind}.parquet"
        project["sources"][source]["symbol"] = "sym"
    specs["project.yaml"] = yaml.safe_dump(project, sort_keys=False)
    root.mkdir()
    for kind in ("trades", "quotes_1s"):
        path = root / "data" / "long" / f"20131007_{kind}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        # small row groups, so that a row group holds several symbols or only one
        pq.write_table(pa.Table.from_pandas(_long(kind, order), preserve_index=False), path, row_group_size=40_000)
    links = {f"data/sample/{s}": REPO / "data" / "sample" / s for s in ("spy", "mes", "mnq", "spxw")}
    made = make_project(root, specs, links=links)
    made.compile()
    made.run()
    return made


@pytest.mark.parametrize("order", ["time", "symbol"])
def test_a_long_file_of_many_symbols_gives_the_per_symbol_files_columns(
    tmp_path: Path, order: str, sample_project: FspecProject
) -> None:
    project = _long_project(tmp_path / order, order)
    for interval in (30, 60):
        expected = sample_project.output(DAY, interval)
        got = project.output(DAY, interval)
        assert list(got.columns) == list(expected.columns)
        pd.testing.assert_frame_equal(got, expected, check_exact=True)


def _source(path: str, **extra: object) -> SourceDef:
    fields = {
        "name": "trades",
        "path": path,
        "format": "parquet",
        "time_column": "t",
        "time_unit": "ns",
        "time_zone": None,
        "columns": (ColumnDef("price", "price"),),
        "filter_tree": None,
        "column_trees": {},
        "bar_width": None,
        "bar_stamp": None,
        "unsorted": "sort",
        "asof_source": None,
        "asof_columns": (),
        "symbol_column": "sym",
    }
    return SourceDef(**(fields | extra))  # type: ignore[arg-type]


def test_only_the_row_groups_that_may_hold_a_wanted_symbol_are_read(tmp_path: Path) -> None:
    symbols = np.repeat(np.array(["A", "B", "C", "D"]), 100)
    table = pa.table({"t": np.arange(400, dtype=np.int64), "price": np.arange(400.0), "sym": symbols})
    pq.write_table(table, tmp_path / "all.parquet", row_group_size=100)
    rows = read_symbols(tmp_path, _source("all.parquet"), "", {"B", "D"})
    assert sorted(rows.frames) == ["B", "D"]  # A's and C's row groups were never read
    assert rows.frames["B"].column("price").to_pylist() == list(np.arange(100.0, 200.0))


def test_integer_symbols_match_instruments_by_their_text(tmp_path: Path) -> None:
    """Optiver's stock_id is an integer: instrument symbol '17' reads the rows of stock 17."""
    table = pa.table({"t": np.arange(6, dtype=np.int64), "price": np.arange(6.0), "sym": [17, 3, 17, 3, 17, 3]})
    pq.write_table(table, tmp_path / "all.parquet", row_group_size=2)
    rows = read_symbols(tmp_path, _source("all.parquet"), "", {"17", "3"})
    assert rows.frames["17"].column("price").to_pylist() == [0.0, 2.0, 4.0]
    assert rows.frames["3"].column(UTC_NS).to_pylist() == [1, 3, 5]  # its times, converted once


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_rows_without_a_symbol_are_ignored_with_one_counted_warning(tmp_path: Path, fmt: str) -> None:
    table = pa.table({"t": np.arange(4, dtype=np.int64), "price": np.arange(4.0), "sym": ["A", None, "A", None]})
    if fmt == "parquet":
        pq.write_table(table, tmp_path / "all.parquet")
    else:  # an empty cell
        table.to_pandas().to_csv(tmp_path / "all.csv", index=False)
    shown = rf"all.{fmt}: 2 row\(s\) with no value in the symbol column 'sym' \(first at row 1\).*fill in their"
    with pytest.warns(DataWarning, match=shown):
        rows = read_symbols(tmp_path, _source(f"all.{fmt}", format=fmt), "", {"A"})
    assert list(rows.frames) == ["A"]
    kept = rows.frames["A"]
    prices = kept.column("price").to_pylist() if fmt == "parquet" else kept["price"].tolist()
    assert prices == [0.0, 2.0]


def _days_project(root: Path) -> FspecProject:
    """Three stocks over two days in one gzip CSV (no {symbol}, no {date}), integer symbols, naive UTC times;
    stock 3 trades only on the first day."""
    rng = np.random.default_rng(7)
    frames = []
    for day, stocks in (("2024-01-02", (1, 2, 3)), ("2024-01-03", (1, 2))):
        for stock in stocks:
            n = 500
            seconds = np.sort(rng.uniform(0, 6.5 * 3600, n))
            ts = pd.Timestamp(f"{day} 14:30") + pd.to_timedelta(seconds, unit="s")
            price = 100 * stock + np.cumsum(rng.normal(0, 0.01, n))
            frames.append(pd.DataFrame({"DT": ts, "STOCK": stock, "PRICE": price, "SIZE": rng.integers(1, 9, n)}))
    table = pd.concat(frames).sort_values("DT", kind="stable")
    path = root / "data" / "trades.csv.gz"
    path.parent.mkdir(parents=True)
    table.assign(DT=table["DT"].dt.strftime("%Y-%m-%d %H:%M:%S.%f")).to_csv(path, index=False)
    project = {
        "spec_version": 1,
        "sources": {
            "trades": {
                "path": "data/trades.csv.gz",
                "symbol": "STOCK",
                "time": {"column": "DT", "timezone": "UTC"},
                "columns": {"price": {"from": "PRICE"}, "size": {"from": "SIZE"}},
            }
        },
        "instruments": {f"s{k}": {"symbol": str(k)} for k in (1, 2, 3)},
        "intervals": ["30m"],
        "session": {"timezone": "America/New_York", "open": "09:30", "close": "16:00"},
    }
    features = {
        "spec_version": 1,
        "features": [
            {"name": "vwap", "formula": "wmean(trades.price, trades.size)"},
            {"name": "volume", "formula": "sum(trades.size)"},
        ],
    }
    made = make_project(root, {"project.yaml": project, "features.yaml": features})
    made.compile()
    return made


def test_a_csv_of_many_symbols_and_days_is_split_by_symbol_and_session(tmp_path: Path) -> None:
    project = _days_project(tmp_path)
    from fspec.runtime.manifest import load_manifest
    from fspec.runtime.run import RunOptions, run

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(load_manifest(project.root), RunOptions())
    absent = [str(w.message) for w in caught if "no data" in str(w.message)]
    assert absent == ["instrument 's3' has no data on 2024-01-03: its columns are NaN that day"]

    raw = pd.read_csv(project.root / "data" / "trades.csv.gz")
    raw["ts"] = pd.to_datetime(raw["DT"]).dt.tz_localize("UTC").dt.tz_convert("America/New_York")
    for day in ("2024-01-02", "2024-01-03"):
        got = project.output(day, 1800)
        rows = raw[raw["ts"].dt.strftime("%Y-%m-%d") == day]
        bar = (rows["ts"] - pd.Timestamp(f"{day} 09:30", tz="America/New_York")) // pd.Timedelta("30min")
        for stock in (1, 2, 3):
            mine = rows[rows["STOCK"] == stock]
            volume = mine.groupby(bar[mine.index])["SIZE"].sum().reindex(range(13), fill_value=0.0)
            column = got[f"volume_1800s_s{stock}"].to_numpy()
            if day == "2024-01-03" and stock == 3:
                assert np.isnan(column).all()  # absent that day: unknown, not an empty day
                continue
            np.testing.assert_array_equal(column, volume.to_numpy(dtype=float))
            notional = (mine["PRICE"] * mine["SIZE"]).groupby(bar[mine.index]).sum()
            vwap = (notional / mine.groupby(bar[mine.index])["SIZE"].sum()).reindex(range(13))
            np.testing.assert_allclose(got[f"vwap_1800s_s{stock}"].to_numpy(), vwap.to_numpy(), rtol=1e-12)


def _text_project(root: Path, fmt: str) -> tuple[FspecProject, pd.DataFrame]:
    """Trades whose side and exchange are text, as vendors write them."""
    rng = np.random.default_rng(3)
    n = 2_000
    seconds = np.sort(rng.uniform(0, 6.5 * 3600, n))
    frame = pd.DataFrame(
        {
            "time": (pd.Timestamp("2024-01-02 09:30", tz="America/New_York") + pd.to_timedelta(seconds, "s")),
            "price": 100 + np.cumsum(rng.normal(0, 0.01, n)),
            "size": rng.integers(1, 100, n).astype(float),
            "side": rng.choice(["BUY", "SELL"], n),
            "exchange": rng.choice(["N", "P", "Q", "D"], n),
        }
    )
    frame.loc[5, "exchange"] = None  # a missing text is no exchange: not in any list, and != every text
    path = root / "data" / f"x_20240102.{fmt}"
    path.parent.mkdir(parents=True)
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    elif fmt == "jsonl":  # times as ISO text with their offset, the missing exchange a JSON null
        frame.to_json(path, orient="records", lines=True, date_format="iso", date_unit="ns")
    else:
        frame.to_csv(path, index=False)
    project = {
        "spec_version": 1,
        "sources": {
            "trades": {
                "path": f"data/{{symbol}}_{{date}}.{fmt}",
                "time": "time",
                "columns": {
                    "price": "float64",
                    "size": "float64",
                    "buy": {"expr": "side == 'BUY'"},
                    "off_q": {"expr": "exchange != 'Q'"},
                },
                "filter": "exchange in ['N', 'P', 'Q'] and 'SELL' != side or exchange not in ['N', 'P', 'Q']",
            }
        },
        "instruments": {"x": {"symbol": "x"}},
        "intervals": ["30m"],
        "session": {"timezone": "America/New_York", "open": "09:30", "close": "16:00"},
    }
    features = {
        "spec_version": 1,
        "features": [
            {"name": "buy_volume", "formula": "sum(trades.size * trades.buy)"},
            {"name": "off_q_count", "formula": "sum(trades.off_q)"},
            {"name": "trades_kept", "formula": "count(trades.price)"},
        ],
    }
    made = make_project(root, {"project.yaml": project, "features.yaml": features})
    made.compile()
    made.run()
    return made, frame


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_text_columns_compare_in_filters_and_computed_columns(tmp_path: Path, fmt: str) -> None:
    project, frame = _text_project(tmp_path, fmt)
    listed = frame["exchange"].isin(["N", "P", "Q"])
    kept = frame[(listed & (frame["side"] != "SELL")) | ~listed]
    bar = (kept["time"] - pd.Timestamp("2024-01-02 09:30", tz="America/New_York")) // pd.Timedelta("30min")
    got = project.output("2024-01-02", 1800)
    by_bar = kept.groupby(bar)
    expect_buy = (kept["size"] * (kept["side"] == "BUY")).groupby(bar).sum().reindex(range(13), fill_value=0)
    expect_off_q = (kept["exchange"] != "Q").groupby(bar).sum().reindex(range(13), fill_value=0)
    np.testing.assert_array_equal(got["buy_volume_1800s_x"], expect_buy.to_numpy(dtype=float))
    np.testing.assert_array_equal(got["off_q_count_1800s_x"], expect_off_q.to_numpy(dtype=float))
    np.testing.assert_array_equal(got["trades_kept_1800s_x"], by_bar.size().reindex(range(13), fill_value=0))


def test_a_number_column_compared_with_text_names_the_file_and_column(tmp_path: Path) -> None:
    from fspec.errors import DataError

    with pytest.raises(DataError, match=r"x_20240102.parquet: column 'size' holds double, not text"):
        root = tmp_path / "p"
        root.mkdir()
        frame = pd.DataFrame({"time": pd.to_datetime(["2024-01-02 15:00"], utc=True), "size": [1.0]})
        (root / "data").mkdir()
        frame.to_parquet(root / "data" / "x_20240102.parquet")
        project = {
            "spec_version": 1,
            "sources": {
                "trades": {"path": "data/{symbol}_{date}.parquet", "time": "time", "columns": {"size": "float64"}},
            },
            "instruments": {"x": {"symbol": "x"}},
            "intervals": ["30m"],
        }
        project["sources"]["trades"]["filter"] = "size == 'BUY'"
        features = {"spec_version": 1, "features": [{"name": "v", "formula": "sum(trades.size)"}]}
        made = make_project(root, {"project.yaml": project, "features.yaml": features})
        made.compile()
        from fspec.runtime.manifest import load_manifest
        from fspec.runtime.run import RunOptions, run

        run(load_manifest(made.root), RunOptions())


def _stream_lines(rng: np.random.Generator) -> tuple[list[str], pd.DataFrame]:
    """A recorder's capture of two symbols' combined streams, as Binance's look: ``<receive ns> <JSON>`` a line,
    trades and book updates interleaved in time order, prices as JSON text, the maker flag a boolean, depth
    lines whose ``data.p`` is a list (not a value), and one trade line whose stream is written with an escape
    (``\u0040`` for ``@``): a line the filter's texts are not found in literally, still a trade."""
    start = pd.Timestamp("2024-08-09", tz="UTC").value
    lines, trades = [], []
    ts = start + np.cumsum(rng.integers(1, 5 * 10**9, 3_000))
    for k, t in enumerate(ts):
        symbol = ("BTCUSDT", "ETHUSDT")[k % 2]
        kind = rng.choice(["trade", "book", "depth"])
        if kind == "trade":
            price, qty, maker = (
                round(float(rng.uniform(100, 200)), 2),
                round(float(rng.uniform(0.01, 2)), 5),
                bool(k % 3),
            )
            data = {"e": "trade", "s": symbol, "p": f"{price:.8f}", "q": f"{qty:.8f}", "m": maker}
            stream = f"{symbol.lower()}@trade"
            trades.append((int(t), symbol, price, qty, maker))
        elif kind == "book":
            data, stream = {"s": symbol, "b": "1.0", "a": "2.0"}, f"{symbol.lower()}@bookTicker"
        else:
            data, stream = {"s": symbol, "p": [["1.0", "2.0"]]}, f"{symbol.lower()}@depth@100ms"
        text = json.dumps({"stream": stream, "data": data})
        if kind == "trade" and len(trades) == 5:
            text = text.replace("@trade", "\\u0040trade")
        lines.append(f"{int(t)} {text}")
    assert any("\\u0040trade" in line for line in lines)
    return lines, pd.DataFrame(trades, columns=["ts", "symbol", "price", "qty", "maker"])


def test_json_lines_of_many_streams_and_symbols_read_by_dotted_fields(tmp_path: Path) -> None:
    """One gzip JSON-lines file of two symbols and three streams: the symbol a nested field, the receive time a
    field before each object, the trades kept by a text filter on the stream, prices read from JSON text.
    Checked against pandas over the records as they were written."""
    rng = np.random.default_rng(11)
    lines, trades = _stream_lines(rng)
    path = tmp_path / "data" / "capture.jsonl.gz"
    path.parent.mkdir(parents=True)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    project = {
        "spec_version": 1,
        "sources": {
            "trades": {
                "path": "data/capture.jsonl.gz",
                "header": ["received"],
                "symbol": "data.s",
                "time": {"column": "received", "unit": "ns"},
                "columns": {
                    "price": {"from": "data.p"},
                    "size": {"from": "data.q"},
                    "side": {"expr": "1 - 2 * data.m"},
                },
                "filter": "stream in ['btcusdt@trade', 'ethusdt@trade'] and data.q > 0",
            }
        },
        "instruments": {"btc": {"symbol": "BTCUSDT"}, "eth": {"symbol": "ETHUSDT"}},
        "intervals": ["1m"],
        "session": {"timezone": "UTC", "open": "00:00", "close": "24:00"},
    }
    features = {
        "spec_version": 1,
        "features": [
            {"name": "volume", "formula": "sum(trades.size)"},
            {"name": "signed", "formula": "sum(trades.size * trades.side)"},
            {"name": "vwap", "formula": "wmean(trades.price, trades.size)"},
        ],
    }
    made = make_project(tmp_path, {"project.yaml": project, "features.yaml": features})
    expect(cli("validate", "--data", "--project", tmp_path), 0)
    made.compile()
    made.run()
    got = made.output("2024-08-09", 60)
    start = pd.Timestamp("2024-08-09", tz="UTC").value
    for key, symbol in (("btc", "BTCUSDT"), ("eth", "ETHUSDT")):
        mine = trades[trades.symbol == symbol]
        bar = (mine.ts - start) // (60 * 10**9)
        by = mine.assign(signed=mine.qty * np.where(mine.maker, -1.0, 1.0), pq=mine.price * mine.qty).groupby(bar)
        np.testing.assert_allclose(got[f"volume_60s_{key}"], by.qty.sum().reindex(range(1440), fill_value=0.0))
        np.testing.assert_allclose(got[f"signed_60s_{key}"], by.signed.sum().reindex(range(1440), fill_value=0.0))
        np.testing.assert_allclose(got[f"vwap_60s_{key}"], (by.pq.sum() / by.qty.sum()).reindex(range(1440)))
    assert got["volume_60s_btc"].sum() + got["volume_60s_eth"].sum() == pytest.approx(trades.qty.sum())
    # a misspelled field is an error at its spec line before any run, with a did-you-mean from every line's fields
    project["sources"]["trades"]["columns"]["size"] = {"from": "data.qq"}
    make_project(tmp_path, {"project.yaml": project})
    shown = expect(cli("validate", "--data", "--project", tmp_path), 1)
    assert "column 'data.qq' is not in data/capture.jsonl.gz" in shown and "did you mean 'data.q'?" in shown


def test_hive_partitions_with_part_files_read_like_one_file_a_day(tmp_path: Path) -> None:
    """date=YYYY-MM-DD/symbol=X/part-*.parquet folders (as Spark and pyarrow write them), members found in
    the symbol folders: the same columns as one file per symbol and day."""
    book = _book_days()
    parts: dict[str, pd.DataFrame] = {}
    whole: dict[str, pd.DataFrame] = {}
    for (day, stock), rows in book.groupby(["day", "sym"]):
        rows = rows.drop(columns=["day", "sym"])
        half = len(rows) // 2
        parts[f"data/hive/date={day}/symbol=S{stock}/part-0.parquet"] = rows.iloc[:half]
        parts[f"data/hive/date={day}/symbol=S{stock}/part-1.parquet"] = rows.iloc[half:]
        whole[f"data/flat/S{stock}_{day.replace('-', '')}.parquet"] = rows
    outputs = []
    for name, path, data in (
        ("hive", "data/hive/date={date:%Y-%m-%d}/symbol={symbol}/part-*.parquet", parts),
        ("flat", "data/flat/{symbol}_{date}.parquet", whole),
    ):
        project = {
            "spec_version": 1,
            "sources": {"trades": {"path": path, "time": "ts", "columns": {"price": "float64", "size": "float64"}}},
            "universes": {"stocks": {"from": "trades"}},
            "intervals": ["30m"],
            "session": {"timezone": "America/New_York", "open": "09:30", "close": "16:00"},
        }
        features = {
            "spec_version": 1,
            "features": [
                {"name": "vwap", "formula": "wmean(trades.price, trades.size)"},
                {"name": "vwap_change", "formula": "diff(vwap, 1)"},
            ],
        }
        made = make_project(tmp_path / name, {"project.yaml": project, "features.yaml": features}, data)
        made.compile()
        made.run()
        outputs.append([made.output(day, 1800) for day in ("2024-01-02", "2024-01-03")])
    for hive, flat in zip(*outputs, strict=True):
        assert list(hive.columns) == [
            "ts_event",
            "vwap_1800s_s1",
            "vwap_1800s_s2",
            "vwap_change_1800s_s1",
            "vwap_change_1800s_s2",
        ]
        pd.testing.assert_frame_equal(hive, flat, check_exact=True)


def _book_days() -> pd.DataFrame:
    rng = np.random.default_rng(9)
    frames = []
    for day in ("2024-01-02", "2024-01-03"):
        for stock in (1, 2):
            seconds = np.sort(rng.uniform(0, 6.5 * 3600, 400))
            ts = pd.Timestamp(f"{day} 09:30", tz="America/New_York") + pd.to_timedelta(seconds, unit="s")
            price = 50 + np.cumsum(rng.normal(0, 0.01, 400))
            frames.append(
                pd.DataFrame(
                    {"ts": ts, "price": price, "size": rng.integers(1, 9, 400) * 1.0, "day": day, "sym": stock}
                )
            )
    return pd.concat(frames, ignore_index=True)
