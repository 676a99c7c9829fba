"""Review of the files-of-many-symbols, universes and split-time features: each test is a finding (they failed
on main as of 9b09711) with its smallest reproduction."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import cli, make_project

DAY = "2024-01-02"
OPEN = pd.Timestamp(f"{DAY} 09:30", tz="America/New_York")


def _trades(n: int = 600, syms: tuple[object, ...] = ("A", "B"), day: str = DAY, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    secs = np.sort(rng.uniform(0, 6.5 * 3600, n))
    return pd.DataFrame(
        {
            "time": pd.Timestamp(f"{day} 09:30", tz="America/New_York") + pd.to_timedelta(secs, "s"),
            "sym": rng.choice(np.array(syms, dtype=object), n),
            "price": 100 + rng.normal(0, 1, n).round(2),
            "size": rng.integers(1, 100, n).astype(float),
            "side": rng.choice(["BUY", "SELL"], n),
        }
    )


def _project(root: Path, source: dict, features: list, **project: object):  # type: ignore[no-untyped-def]
    spec = {"spec_version": 1, "sources": {"trades": source}, "intervals": ["30m"], **project}
    made = make_project(root, {"project.yaml": spec, "features.yaml": {"spec_version": 1, "features": features}})
    (root / "data").mkdir(exist_ok=True)
    return made


def _bars(frame: pd.DataFrame, values: pd.Series) -> np.ndarray:
    bar = (frame["time"] - OPEN) // pd.Timedelta("30min")
    return values.groupby(bar).sum().reindex(range(13), fill_value=0).to_numpy(dtype=float)


def test_a_long_parquet_in_time_order_with_a_text_column_runs(tmp_path: Path) -> None:
    """_take_column asks getattr(type, 'bit_width', 0), but a string type raises ValueError (not
    AttributeError): a file in time order whose source reads a text column (side == 'BUY') crashes with
    'internal error: ValueError: Non-fixed width type'."""
    source = {
        "path": "data/{date}.parquet",
        "symbol": "sym",
        "time": "time",
        "columns": {"size": "float64", "buy": {"expr": "side == 'BUY'"}},
    }
    made = _project(
        tmp_path,
        source,
        [{"name": "buyv", "formula": "sum(trades.size * trades.buy)"}],
        instruments={"a": {"symbol": "A"}, "b": {"symbol": "B"}},
    )
    frame = _trades()
    frame.to_parquet(tmp_path / "data" / "20240102.parquet", index=False)  # time order, symbols interleaved
    made.compile()
    made.run()
    got = made.output(DAY, 1800)
    a = frame[frame.sym == "A"]
    np.testing.assert_array_equal(got["buyv_1800s_a"], _bars(a, a["size"] * (a.side == "BUY")))


def test_csv_symbols_keep_their_leading_zeros(tmp_path: Path) -> None:
    """pd.read_csv infers the symbol column's type: '0700' is read as 700, so instrument '0700' silently gets no
    rows (NaN, one warning) and a universe names its member s700. The symbol column of a CSV should be read
    as text (dtype={column: str}), in read_frame and in universe._column_symbols."""
    source = {"path": "data/{date}.csv", "symbol": "sym", "time": "time", "columns": {"size": "float64"}}
    made = _project(
        tmp_path, source, [{"name": "v", "formula": "sum(trades.size)"}], instruments={"tencent": {"symbol": "0700"}}
    )
    frame = _trades(syms=("0700", "0005"))
    frame.to_csv(tmp_path / "data" / "20240102.csv", index=False)
    made.compile()
    made.run()
    mine = frame[frame.sym == "0700"]
    np.testing.assert_array_equal(made.output(DAY, 1800)["v_1800s_tencent"], _bars(mine, mine["size"]))


def test_unused_dictionary_entries_are_not_members(tmp_path: Path) -> None:
    """universe._column_symbols takes every entry of the dictionary, used or not: a pandas categorical with a
    category no row holds (left after filtering the table) makes a member that is NaN on every day."""
    source = {"path": "data/{date}.parquet", "symbol": "sym", "time": "time", "columns": {"size": "float64"}}
    made = _project(
        tmp_path,
        source,
        [{"name": "v", "formula": "sum(trades.size)"}],
        universes={"u": {"from": "trades", "suffix": "s_{symbol}"}},
    )
    frame = _trades()
    frame["sym"] = pd.Categorical(frame.sym, categories=["A", "B", "Z"])
    frame.to_parquet(tmp_path / "data" / "20240102.parquet", index=False)
    made.compile()
    made.run()
    assert list(made.output(DAY, 1800).columns) == ["ts_event", "v_1800s_s_a", "v_1800s_s_b"]


def test_a_zone_aware_date_column_gives_the_local_date(tmp_path: Path) -> None:
    """time: {date: d, column: hhmm, clock: HHMM}: a date column of zone-aware midnights (pandas writes them)
    is taken as its UTC instant, 05:00, and added to the time of day: every row moves 5 hours later, silently
    (09:31 becomes 14:31; 15:59 leaves the session). _split_utc_ns should take the column's local date."""
    source = {
        "path": "data/{symbol}.parquet",
        "time": {"column": "hhmm", "clock": "HHMM", "date": "d", "timezone": "America/New_York"},
        "kind": "events",
        "columns": {"price": "float64"},
    }
    made = _project(
        tmp_path,
        source,
        [{"name": "f", "formula": "first(trades.price)"}, {"name": "n", "formula": "count(trades.price)"}],
        instruments={"a": {"symbol": "A"}},
    )
    frame = pd.DataFrame({"hhmm": [930, 931, 1000, 1559], "price": [1.0, 2.0, 3.0, 4.0]})
    frame["d"] = pd.Timestamp(DAY, tz="America/New_York")
    frame.to_parquet(tmp_path / "data" / "A.parquet", index=False)
    made.compile()
    made.run()
    got = made.output(DAY, 1800)
    assert got["f_1800s_a"].iloc[0] == 1.0
    assert got["n_1800s_a"].sum() == 4


def test_the_date_types_agree(tmp_path: Path) -> None:
    """The same times with the date as an integer, a text and a date type give the same columns (they do: the
    reference for the test above)."""
    outputs = []
    for k, value in enumerate([20240102, "2024-01-02", datetime.date(2024, 1, 2)]):
        root = tmp_path / str(k)
        source = {
            "path": "data/{symbol}.parquet",
            "time": {"column": "hhmm", "clock": "HHMM", "date": "d", "timezone": "America/New_York"},
            "kind": "events",
            "columns": {"price": "float64"},
        }
        made = _project(
            root, source, [{"name": "f", "formula": "first(trades.price)"}], instruments={"a": {"symbol": "A"}}
        )
        pd.DataFrame({"hhmm": [931, 1000], "price": [1.0, 2.0], "d": [value, value]}).to_parquet(
            root / "data" / "A.parquet", index=False
        )
        made.compile()
        made.run()
        outputs.append(made.output(DAY, 1800))
    for other in outputs[1:]:
        pd.testing.assert_frame_equal(other, outputs[0])


@pytest.mark.parametrize("many_days", [False, True])
def test_a_symbol_without_trades_on_a_day_is_nan_whatever_the_layout(tmp_path: Path, many_days: bool) -> None:
    """Symbol C has quotes on both days but trades on the second only. With one long file per day its volume on
    the first day is NaN (absent); with one long file of both days it is 0 (empty bars), because _load notes
    the absence as (source, instrument, '') and _kernel_call looks for (source, instrument, day)."""
    days = ["2024-01-02", "2024-01-03"]
    trades = [_trades(syms=("A", "C") if k else ("A",), day=d, seed=k) for k, d in enumerate(days)]
    quotes = [_trades(syms=("A", "C"), day=d, seed=10 + k)[["time", "sym", "price"]] for k, d in enumerate(days)]
    t_path, q_path = (
        ("data/t.parquet", "data/q.parquet") if many_days else ("data/t_{date}.parquet", "data/q_{date}.parquet")
    )
    spec = {
        "spec_version": 1,
        "sources": {
            "trades": {"path": t_path, "symbol": "sym", "time": "time", "columns": {"size": "float64"}},
            "quotes": {"path": q_path, "symbol": "sym", "time": "time", "columns": {"bid": {"from": "price"}}},
        },
        "instruments": {"a": {"symbol": "A"}, "c": {"symbol": "C"}},
        "intervals": ["30m"],
    }
    features = {
        "spec_version": 1,
        "features": [{"name": "v", "formula": "sum(trades.size)"}, {"name": "qb", "formula": "last(quotes.bid)"}],
    }
    made = make_project(tmp_path, {"project.yaml": spec, "features.yaml": features})
    (tmp_path / "data").mkdir()
    if many_days:
        pd.concat(trades).to_parquet(tmp_path / t_path, index=False)
        pd.concat(quotes).to_parquet(tmp_path / q_path, index=False)
    else:
        for d, t, q in zip(days, trades, quotes, strict=True):
            t.to_parquet(tmp_path / "data" / f"t_{d.replace('-', '')}.parquet", index=False)
            q.to_parquet(tmp_path / "data" / f"q_{d.replace('-', '')}.parquet", index=False)
    made.compile()
    made.run()
    got = made.output(days[0], 1800)
    assert got["qb_1800s_c"].notna().all()
    assert got["v_1800s_c"].isna().all()


def test_explain_knows_a_universe_members_columns(tmp_path: Path) -> None:
    """fspec ls lists rk_1800s_s_a and run writes it, but fspec explain rk_1800s_s_a says 'no column in this
    build' and suggests the stand-in 'rk_1800s_u', which is no column of any output (explain does not call
    with_members)."""
    source = {"path": "data/{date}.parquet", "symbol": "sym", "time": "time", "columns": {"price": "float64"}}
    features = [
        {"name": "px", "formula": "last(trades.price)"},
        {"name": "rk", "formula": "cs_rank(px)", "instruments": ["u"]},
    ]
    made = _project(tmp_path, source, features, universes={"u": {"from": "trades", "suffix": "s_{symbol}"}})
    _trades().drop(columns="side").to_parquet(tmp_path / "data" / "20240102.parquet", index=False)
    made.compile()
    result = cli("explain", "rk_1800s_s_a", "--project", tmp_path)
    assert result.exit_code == 0, result.output
    assert "cs_rank" in result.output
