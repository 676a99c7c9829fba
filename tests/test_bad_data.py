"""Bad data files, one per rule, each with its defined handling: an error naming the file, or a counted
warning naming the file and the rule (and then the values the rule says)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import cli, expect, make_project

DAY = "2024-03-05"
OPEN = pd.Timestamp(f"{DAY} 09:30", tz="America/New_York").value

PROJECT = """\
spec_version: 1
sources:
  trades:
    path: data/{symbol}_{date}.parquet
    time: TIME
    columns: {price: float64, size: float64, bid: float64, ask: float64}
instruments:
  abc: {symbol: abc}
intervals: [60s]
session: {timezone: America/New_York, open: "09:30", close: "09:40"}
"""

FEATURES = """\
spec_version: 1
features:
  - name: volume
    formula: sum(trades.size)
  - name: vwap
    formula: wmean(trades.price, trades.size)
  - name: last_price
    formula: last(trades.price)
"""


def _frame(n: int = 20, start: int = OPEN) -> pd.DataFrame:
    ts = start + np.arange(n, dtype=np.int64) * 25 * 10**9  # one trade every 25 s
    return pd.DataFrame({"ts": ts, "price": 100.0 + np.arange(n), "size": 10.0, "bid": 99.5, "ask": 100.5})


def _run(tmp_path: Path, frame: pd.DataFrame, time: str = "{column: ts, unit: ns}") -> tuple[int, str, Path]:
    root = tmp_path / "p"
    make_project(
        root,
        {"project.yaml": PROJECT.replace("TIME", time), "features.yaml": FEATURES},
        {f"data/abc_{DAY.replace('-', '')}.parquet": frame},
    )
    expect(cli("compile", "--project", root), 0)
    result = cli("run", "--project", root)
    return result.exit_code, result.output, root


def _out(root: Path) -> pd.DataFrame:
    return pd.read_parquet(root / "out" / f"features_{DAY.replace('-', '')}_60s.parquet")


def test_clean_file_runs_without_warnings(tmp_path: Path) -> None:
    code, output, root = _run(tmp_path, _frame())
    assert code == 0 and "warning" not in output
    assert _out(root)["volume_60s_abc"].sum() == 200.0


def test_empty_file_is_a_warning_and_empty_bars(tmp_path: Path) -> None:
    code, output, root = _run(tmp_path, _frame().iloc[:0])
    assert code == 0 and "data/abc_20240305.parquet: the file has no rows" in output
    assert (_out(root)["volume_60s_abc"] == 0).all() and _out(root)["vwap_60s_abc"].isna().all()


def test_rows_all_outside_the_session_are_a_warning(tmp_path: Path) -> None:
    """A file whose times are a day off: every bar would be empty; the run says why."""
    code, output, _ = _run(tmp_path, _frame(start=OPEN - 86_400 * 10**9))
    assert code == 0
    assert "data/abc_20240305.parquet: none of its 20 rows falls inside the session of 2024-03-05" in output


def test_infinite_values_are_missing_values(tmp_path: Path) -> None:
    frame = _frame()
    frame.loc[3, "price"] = np.inf
    frame.loc[5, "size"] = -np.inf
    code, output, root = _run(tmp_path, frame)
    assert code == 0
    assert "1 infinite value(s) in column 'price' (first at row 3) are treated as missing" in output
    assert "1 infinite value(s) in column 'size' (first at row 5)" in output
    out = _out(root)
    first_bar = frame.iloc[:3]  # rows 0-2 are in 09:30-09:31 (every 25 s)
    assert out["volume_60s_abc"].iloc[0] == first_bar["size"].sum()
    second = frame.iloc[3:5]  # 09:31:15 and 09:31:40: the infinite price is skipped by the vwap
    assert out["vwap_60s_abc"].iloc[1] == pytest.approx(second["price"].iloc[1])
    assert np.isfinite(out["volume_60s_abc"]).all()


def test_negative_sizes_are_missing_values(tmp_path: Path) -> None:
    frame = _frame()
    frame.loc[0, "size"] = -5.0
    code, output, root = _run(tmp_path, frame)
    assert code == 0 and "1 negative value(s) in size column 'size' (first at row 0) are treated as missing" in output
    assert _out(root)["volume_60s_abc"].iloc[0] == 20.0  # rows 1 and 2


def test_crossed_quotes_are_counted_and_kept(tmp_path: Path) -> None:
    frame = _frame()
    frame.loc[[2, 7], "bid"] = 101.0
    code, output, _ = _run(tmp_path, frame)
    assert code == 0 and "2 crossed quote(s), bid above ask (first at row 2); kept as they are" in output


def test_naive_times_without_a_zone_are_an_error(tmp_path: Path) -> None:
    frame = _frame()
    frame["ts"] = pd.to_datetime(frame["ts"]).dt.tz_localize(None)  # naive, as wall-clock UTC
    code, output, root = _run(tmp_path, frame, time="ts")
    assert code == 1 and "data/abc_20240305.parquet" in output
    assert "holds local times without a zone" in output and "timezone:" in output
    assert not (root / "out").exists() or not list((root / "out").glob("*.parquet"))


def test_descending_rows_are_reversed(tmp_path: Path) -> None:
    code, output, root = _run(tmp_path, _frame().iloc[::-1])
    assert code == 0 and "rows are in descending time order; reversed them" in output
    assert _out(root)["last_price_60s_abc"].iloc[0] == 102.0
