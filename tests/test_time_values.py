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


def _project(root: Path, source: dict[str, object], files: dict[str, str | pd.DataFrame]) -> str:
    project = {
        "spec_version": 1,
        "sources": {"trades": source},
        "instruments": {"abc": {"symbol": "abc"}},
        "intervals": ["60s"],
        "session": {"timezone": "America/New_York", "open": "09:30", "close": "09:40"},
    }
    make_project(root, {"project.yaml": project, "features.yaml": FEATURES})
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
    """Per 60 s bar, by when each row is known: the last row's receive and exchange times as float64 ns."""
    bar = (known_ns - OPEN.value) // (60 * 10**9)
    last = frame.assign(bar=bar).groupby("bar").last()
    received = last["ts"].astype("int64").astype(np.float64)
    sent = last["sent"].astype("int64").astype(np.float64)
    return pd.DataFrame({"received": received, "sent": sent, "latency_ms": (received - sent) / 1e6}).reindex(range(10))


def _check(root: Path, expected: pd.DataFrame, latencies: bool = True) -> None:
    out = pd.read_parquet(root / "out" / f"features_{DAY.replace('-', '')}_60s.parquet")
    for name in ("received", "sent"):
        np.testing.assert_array_equal(out[f"{name}_60s_abc"].to_numpy(), expected[name].to_numpy())
    np.testing.assert_allclose(out["latency_ms_60s_abc"], expected["latency_ms"], rtol=1e-12)
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
