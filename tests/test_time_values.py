"""A time column read as a value (``dtype: time``): UTC nanoseconds since the epoch, checked against pandas on
the same rows, whatever the column's encoding (integer epochs, zone-aware timestamps, text in a zone, a date
and a time of day), and the source's own time column before a bar source's stamps are moved."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import cli, expect, make_project

DAY = "2024-03-05"
OPEN = pd.Timestamp(f"{DAY} 09:30", tz="America/New_York")


def _trades() -> pd.DataFrame:
    """Receive times every 7 s (and 123 ns) from the open; the exchange's stamps 0.1-50 ms before them."""
    rng = np.random.default_rng(9)
    ts = OPEN.value + np.arange(80, dtype=np.int64) * 7 * 10**9 + 123
    sent = ts - rng.integers(100_000, 50_000_000, len(ts))
    return pd.DataFrame({"ts": ts, "sent": pd.to_datetime(sent, utc=True), "size": rng.integers(1, 9, len(ts)) * 1.0})


FEATURES = {
    "spec_version": 1,
    "features": [
        {"name": "received", "formula": "last(trades.stamp)"},
        {"name": "sent", "formula": "last(trades.sent)"},
        {"name": "latency_ms", "formula": "(last(trades.stamp) - last(trades.sent)) / 1000000"},
    ],
}


def _project(
    root: Path,
    source: dict[str, object],
    files: dict[str, str | pd.DataFrame],
    features: dict[str, object] = FEATURES,
    more: dict[str, object] | None = None,
    instruments: dict[str, object] | None = None,
) -> str:
    project = {
        "spec_version": 1,
        "sources": {"trades": source, **(more or {})},
        "instruments": {"abc": {"symbol": "abc"}, **(instruments or {})},
        "intervals": ["60s"],
        "session": {"timezone": "America/New_York", "open": "09:30", "close": "09:40"},
    }
    make_project(root, {"project.yaml": project, "features.yaml": features})
    for name, content in files.items():
        path = root / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            content.to_parquet(path, index=False)
    expect(cli("compile", "--project", root), 0)
    result = cli("run", "--project", root)
    return result.output if result.exit_code == 0 else f"exit {result.exit_code}: {result.output}"


def _expected(frame: pd.DataFrame, known_ns: np.ndarray) -> pd.DataFrame:
    """Per 60 s bar, by when each row is known: the last row's receive and exchange times as float64 ns (the
    nearest doubles), and the latency from their exact difference in int64 (the float64 values differ by up to
    256 ns from it)."""
    bar = (known_ns - OPEN.value) // (60 * 10**9)
    last = frame.assign(bar=bar).groupby("bar").last()
    received, sent = last["ts"].astype("int64"), last["sent"].astype("int64")
    latency = (received - sent).astype(np.float64) / 1e6
    times = {"received": received.astype(np.float64), "sent": sent.astype(np.float64), "latency_ms": latency}
    return pd.DataFrame(times).reindex(range(10))


def _check(root: Path, expected: pd.DataFrame, latencies: bool = True) -> None:
    out = pd.read_parquet(root / "out" / f"features_{DAY.replace('-', '')}_60s.parquet")
    for name in ("received", "sent", "latency_ms"):
        np.testing.assert_array_equal(out[f"{name}_60s_abc"].to_numpy(), expected[name].to_numpy())
    if latencies:  # (the exchange's stamps 0.1-50 ms before the receive times: a test that reads them)
        assert expected["latency_ms"].dropna().between(0.1, 50).all()


COLUMNS = {"size": "float64", "stamp": {"from": "ts", "dtype": "time"}, "sent": "time"}


def test_epochs_and_zone_aware_timestamps_read_as_utc_nanoseconds(tmp_path: Path) -> None:
    frame = _trades()
    source = {"path": "data/{symbol}_{date}.parquet", "time": {"column": "ts", "unit": "ns"}, "columns": COLUMNS}
    said = _project(tmp_path, source, {"abc_20240305.parquet": frame})
    assert not said.startswith("exit"), said
    _check(tmp_path, _expected(frame, frame["ts"].to_numpy()))


def test_text_times_in_a_zone_and_a_bar_source_stamped_at_its_start(tmp_path: Path) -> None:
    """The value of the time column is the stamp as written: a bar stamped at its start is known at its end,
    but its time value is still its start."""
    frame = _trades()
    frame["ts"] = frame["ts"] // 10**9 * 10**9  # whole seconds, as bars are stamped
    local = pd.to_datetime(frame["ts"], utc=True).dt.tz_convert("America/New_York").dt.tz_localize(None)
    sent_text = frame["sent"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f%z")  # each with its offset
    text = pd.DataFrame({"ts": local.astype(str), "sent": sent_text, "size": frame["size"]}).to_csv(index=False)
    source = {
        "path": "data/{symbol}_{date}.csv",
        "time": {"column": "ts", "timezone": "America/New_York"},
        "bars": {"width": "7s", "stamp": "start"},
        "columns": COLUMNS,
    }
    said = _project(tmp_path, source, {"abc_20240305.csv": text})
    assert not said.startswith("exit"), said
    expected = frame.assign(sent=pd.to_datetime(frame["sent"].dt.floor("us")))
    _check(tmp_path, _expected(expected, frame["ts"].to_numpy() + 7 * 10**9))


def test_a_date_and_a_time_of_day_read_as_one_time(tmp_path: Path) -> None:
    frame = _trades()
    frame["ts"] = frame["ts"] // (60 * 10**9) * 60 * 10**9  # minutes: HHMM
    local = pd.to_datetime(frame["ts"], utc=True).dt.tz_convert("America/New_York")
    split = pd.DataFrame(
        {
            "Date": local.dt.strftime("%Y%m%d").astype(int),
            "HHMM": (local.dt.hour * 100 + local.dt.minute).astype(int),
            "sent": frame["sent"],
            "size": frame["size"],
        }
    )
    source = {
        "path": "data/{symbol}_{date}.parquet",
        "time": {"date": "Date", "column": "HHMM", "clock": "HHMM", "timezone": "America/New_York"},
        "kind": "events",
        "columns": {**COLUMNS, "stamp": {"from": "HHMM", "dtype": "time"}},
    }
    said = _project(tmp_path, source, {"abc_20240305.parquet": split})
    assert not said.startswith("exit"), said
    _check(tmp_path, _expected(frame, frame["ts"].to_numpy()), latencies=False)  # (minutes: ages of seconds)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["2024-03-05 09:31:00"] * 3, "time column 'sent' holds local times without a zone, and the source declares"),
        (["2024-03-05T09:31:00Z", "soon", "2024-03-05T09:32:00Z"], "'sent': 1 value(s) are no times (first at row 1"),
    ],
)
def test_a_time_value_column_that_is_no_utc_time_is_an_error_naming_it(
    tmp_path: Path, values: list[str], message: str
) -> None:
    rows = [f"2024-03-05T09:3{k}:00-05:00,{v},1" for k, v in enumerate(values)]
    source = {"path": "data/{symbol}_{date}.csv", "time": "ts", "columns": COLUMNS}
    said = _project(tmp_path, source, {"abc_20240305.csv": "ts,sent,size\n" + "\n".join(rows)})
    assert said.startswith("exit 1") and "data/abc_20240305.csv" in said and message in said, said


DIFFERENCES = {
    "spec_version": 1,
    "features": [
        {"name": "age_mean", "formula": "mean(trades.stamp - trades.sent)"},  # of every row: in the kernel
        {"name": "age_last_ms", "formula": "last(trades.stamp - trades.sent) / 1000000"},
        {"name": "latency", "formula": "last(trades.stamp) - last(trades.sent)"},  # of two bar values
        {"name": "gap", "formula": "last(trades.stamp) - lag(last(trades.stamp), 1)"},  # of two bars
        {"name": "quote_age", "formula": "mean(trades.stamp - trades.quote_time)"},  # an asof column's time
        {"name": "sent", "formula": "last(trades.sent)"},
    ],
}


def test_differences_of_times_are_exact_and_a_missing_time_is_nan(tmp_path: Path) -> None:
    """Differences of times in the kernel (of each row), of bar values, across bars and with a time attached by
    asof are the differences of the exact nanoseconds (int64 here), not of their float64 values; a missing time
    in a time column is a missing value (NaN: skipped by mean, stepped past by last)."""
    frame = _trades()
    sent = frame["sent"].astype("int64").astype("Int64")  # exact, with missing values
    frame.loc[[5, 17, 18], "sent"] = sent[[5, 17, 18]] = pd.NA  # row 17 is the last of its bar: last(sent) is 16's
    rng = np.random.default_rng(3)
    quote_ts = np.sort(OPEN.value - 10**9 + rng.integers(0, 600 * 10**9, 300))
    quotes = pd.DataFrame({"ts": quote_ts, "qt": pd.to_datetime(quote_ts - rng.integers(1, 10**6, 300), utc=True)})
    source = {
        "path": "data/{symbol}_{date}.parquet",
        "time": {"column": "ts", "unit": "ns"},
        "columns": COLUMNS,
        "asof": {"source": "quotes", "columns": ["quote_time"]},
    }
    more = {
        "quotes": {
            "path": "data/{symbol}_{date}_quotes.parquet",
            "time": {"column": "ts", "unit": "ns"},
            "columns": {"quote_time": {"from": "qt", "dtype": "time"}},
        }
    }
    files = {"abc_20240305.parquet": frame, "abc_20240305_quotes.parquet": quotes}
    said = _project(tmp_path, source, files, DIFFERENCES, more)
    assert not said.startswith("exit"), said
    out = pd.read_parquet(tmp_path / "out" / f"features_{DAY.replace('-', '')}_60s.parquet")

    ts = frame["ts"].astype("int64")
    prevailing = np.searchsorted(quotes["ts"].to_numpy(), ts.to_numpy(), side="right") - 1
    quote_time = quotes["qt"].astype("int64").to_numpy()[prevailing]
    rows = pd.DataFrame(
        {
            "bar": (ts - OPEN.value) // (60 * 10**9),
            "ts": ts,
            "sent": sent,
            "age": ts - sent,
            "quote_age": ts - quote_time,
        }
    )
    by_bar = rows.groupby("bar")
    last_ts = by_bar["ts"].last()
    last_sent = by_bar["sent"].last()  # the last present one
    expected = {
        "age_mean": by_bar["age"].sum().astype(np.float64) / by_bar["age"].count(),
        "age_last_ms": by_bar["age"].last().astype(np.float64) / 1e6,  # of the last row with both times
        "latency": (last_ts - last_sent).astype(np.float64),
        "gap": (last_ts - last_ts.shift(1)).astype(np.float64),
        "quote_age": by_bar["quote_age"].sum().astype(np.float64) / by_bar["quote_age"].count(),
        "sent": last_sent.astype(np.float64),
    }
    for name, values in expected.items():
        got = out[f"{name}_60s_abc"].to_numpy()
        np.testing.assert_array_equal(got, values.reindex(range(10)).to_numpy(dtype=np.float64), err_msg=name)
    # (the float64 values alone would miss: the test reads differences that rounding changes)
    rounded = (last_ts.astype(np.float64) - last_sent.astype(np.float64)).reindex(range(10)).to_numpy()
    assert not np.array_equal(rounded, out["latency_60s_abc"].to_numpy())


def test_an_instrument_without_rows_in_a_shared_file_has_nan_differences(tmp_path: Path) -> None:
    """xyz has no trade in the day's file of both symbols, and no quote: its time differences are NaN."""
    frame = _trades().assign(sym="abc")
    quotes = pd.DataFrame({"ts": frame["ts"] - 5, "qt": pd.to_datetime(frame["ts"] - 5, utc=True), "sym": "abc"})
    source = {
        "path": "data/{date}_trades.parquet",
        "symbol": "sym",
        "time": {"column": "ts", "unit": "ns"},
        "columns": COLUMNS,
        "asof": {"source": "quotes", "columns": ["quote_time"]},
    }
    more = {
        "quotes": {
            "path": "data/{date}_quotes.parquet",
            "symbol": "sym",
            "time": {"column": "ts", "unit": "ns"},
            "columns": {"quote_time": {"from": "qt", "dtype": "time"}},
        }
    }
    features = {
        "spec_version": 1,
        "features": [
            {"name": "latency", "formula": "last(trades.stamp) - last(trades.sent)", "instruments": ["abc", "xyz"]},
            {"name": "quote_age", "formula": "mean(trades.stamp - trades.quote_time)", "instruments": ["abc", "xyz"]},
        ],
    }
    root = tmp_path / "p"
    files = {"20240305_trades.parquet": frame, "20240305_quotes.parquet": quotes}
    said = _project(root, source, files, features, more, {"xyz": {"symbol": "xyz"}})
    assert not said.startswith("exit"), said
    out = pd.read_parquet(root / "out" / f"features_{DAY.replace('-', '')}_60s.parquet")
    assert out["latency_60s_xyz"].isna().all() and out["quote_age_60s_xyz"].isna().all()
    by_bar = frame.groupby((frame["ts"] - OPEN.value) // (60 * 10**9))
    np.testing.assert_array_equal(out["quote_age_60s_abc"], by_bar["ts"].count().reindex(range(10)).notna() * 5.0)
