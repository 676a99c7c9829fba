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


# ---- CSV rows, zones, days: each names the file, counts what it affects and says the fix -------------------

CSV_PROJECT = """\
spec_version: 1
sources:
  trades:
    path: PATH
    time: TIME
    columns: {price: float64, size: float64}
instruments:
  abc: {symbol: abc}
intervals: [60s]
session: {timezone: America/New_York, open: "09:30", close: "09:40"}
"""


def _csv_run(tmp_path: Path, files: dict[str, str], path: str, time: str = "ts", *args: str) -> tuple[int, str, Path]:
    """``files``: CSV texts by their path under data/ (a .gz name is written gzip-compressed)."""
    import gzip

    root = tmp_path / "p"
    make_project(root, {"project.yaml": CSV_PROJECT.replace("PATH", path).replace("TIME", time), "f.yaml": FEATURES})
    for name, text in files.items():
        target = root / "data" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    expect(cli("compile", "--project", root), 0)
    result = cli("run", "--project", root, *args)
    return result.exit_code, result.output, root


ROWS = [f"2024-03-05T09:3{k}:00-05:00,{100 + k},{k + 1}" for k in range(6)]


def test_csv_rows_with_other_counts_of_fields_are_an_error_counting_them(tmp_path: Path) -> None:
    rows = [*ROWS[:2], ROWS[2] + ",7", *ROWS[3:5], ROWS[5] + ",8,9"]
    text = "ts,price,size\n" + "\n".join(rows) + "\n"
    code, output, root = _csv_run(tmp_path, {"abc_20240305.csv.gz": text}, "data/{symbol}_{date}.csv.gz")
    assert code == 1 and "Traceback" not in output
    assert "data/abc_20240305.csv.gz: 2 row(s) without 3 fields (first at line 4: 4 fields)" in output
    assert "fix or drop those rows: every row has the 3 fields of the file's header line" in output
    assert not (root / "out").exists() or not list((root / "out").glob("*.parquet"))  # nothing written


def test_csv_values_that_are_no_numbers_are_an_error_counting_them(tmp_path: Path) -> None:
    rows = [*ROWS[:3], ROWS[3].replace(",103,", ",1o3,"), ROWS[4], ROWS[5].replace(",105,", ",n/a?,")]
    code, output, _ = _csv_run(
        tmp_path, {"abc_20240305.csv": "ts,price,size\n" + "\n".join(rows)}, "data/{symbol}_{date}.csv"
    )
    assert code == 1
    assert "data/abc_20240305.csv: 2 value(s) of column 'price' are not numbers (first at row 3: '1o3')" in output
    assert "fix or drop those rows" in output


def test_one_column_with_and_without_zones_is_an_error_and_different_offsets_are_read(tmp_path: Path) -> None:
    """Times with a zone beside times without one: which zone the others are in would be a guess. Offsets that
    differ (a clock change inside a file, or a feed writing UTC and local times) are each the instant they say."""
    mixed = [ROWS[0], ROWS[1].replace("-05:00", ""), ROWS[2].replace("-05:00", ""), ROWS[3]]
    code, output, _ = _csv_run(
        tmp_path / "a", {"abc_20240305.csv": "ts,price,size\n" + "\n".join(mixed)}, "data/{symbol}_{date}.csv"
    )
    assert code == 1
    assert "2 time(s) in column 'ts' have no zone (first at row 1: '2024-03-05T09:31:00') while 2 have one" in output
    assert "write every time with its UTC offset (or Z), or none of them" in output
    offsets = [ROWS[0], "2024-03-05T14:31:00Z,101,2", "2024-03-05T15:32:00+01:00,102,3", ROWS[3]]
    code, output, root = _csv_run(
        tmp_path / "b", {"abc_20240305.csv": "ts,price,size\n" + "\n".join(offsets)}, "data/{symbol}_{date}.csv"
    )
    assert code == 0, output
    np.testing.assert_array_equal(_out(root)["volume_60s_abc"].iloc[:5], [1.0, 2.0, 3.0, 4.0, 0.0])


def test_a_failed_date_writes_nothing_and_leaves_the_days_before_whole(tmp_path: Path) -> None:
    good = "ts,price,size\n" + "\n".join(ROWS)
    bad = "ts,price,size\n" + "\n".join(r.replace("2024-03-05", "2024-03-06") for r in ROWS[:2]) + ",1\n"
    files = {"abc_20240305.csv": good, "abc_20240306.csv": bad}
    code, output, root = _csv_run(tmp_path, files, "data/{symbol}_{date}.csv")
    assert code == 1 and "data/abc_20240306.csv: 1 row(s) without 3 fields" in output
    assert sorted(p.name for p in (root / "out").iterdir()) == ["features_20240305_60s.parquet"]  # no temp file
    assert _out(root)["volume_60s_abc"].sum() == 21.0


def test_a_file_of_many_days_outside_every_session_is_said_and_a_day_of_no_rows_named(tmp_path: Path) -> None:
    evening = "ts,price,size\n2024-03-05T19:30:00-05:00,100,1\n2024-03-05T19:31:00-05:00,101,2\n"
    code, output, _ = _csv_run(tmp_path / "a", {"all.csv": evening}, "data/all.csv")
    assert code == 1
    assert "data/all.csv: none of its 2 rows falls inside a session (09:30-09:40 America/New_York)" in output
    assert "check the time zone of its times and the session" in output
    code, output, _ = _csv_run(
        tmp_path / "b", {"all.csv": "ts,price,size\n" + "\n".join(ROWS)}, "data/all.csv", "ts", "--date", "2024-03-06"
    )
    assert code == 1 and "data/all.csv: no instrument has a row in the session of 2024-03-06" in output
    assert "file not found" not in output


@pytest.mark.parametrize("name", ["abc_20240305.csv", "abc_20240305.csv.gz"])
def test_csv_rows_with_fewer_fields_are_an_error_not_missing_values(tmp_path: Path, name: str) -> None:
    """pandas fills a short row with missing values: it must not become a silent NaN (or an empty bar)."""
    rows = [*ROWS[:2], ROWS[2].rsplit(",", 1)[0], "", *ROWS[3:5], ROWS[5].split(",")[0]]
    code, output, root = _csv_run(
        tmp_path, {name: "ts,price,size\n" + "\n".join(rows) + "\n"}, f"data/{{symbol}}_{{date}}{name[12:]}"
    )
    assert code == 1 and "Traceback" not in output
    assert f"data/{name}: 2 row(s) without 3 fields (first at line 4: 2 fields)" in output
    assert "fix or drop those rows" in output
    assert not (root / "out").exists() or not list((root / "out").glob("*.parquet"))


def test_an_empty_last_cell_is_a_missing_value_not_a_short_row(tmp_path: Path) -> None:
    rows = [*ROWS[:2], ROWS[2].rsplit(",", 1)[0] + ",", "", *ROWS[3:]]  # a blank line is no row
    code, output, root = _csv_run(
        tmp_path, {"abc_20240305.csv": "ts,price,size\r\n" + "\r\n".join(rows)}, "data/{symbol}_{date}.csv"
    )
    assert code == 0, output
    expected = pd.read_csv(root / "data" / "abc_20240305.csv")["size"].fillna(0).to_numpy()  # (sum skips NaN)
    np.testing.assert_array_equal(_out(root)["volume_60s_abc"].iloc[:6], expected)


def test_csv_rows_against_a_declared_header_are_counted_quoted_or_not(tmp_path: Path) -> None:
    """Rows that all have a field more than ``header:`` names (pandas would read the first as the index)."""
    wide = "\n".join(f"{r},9" for r in ROWS)
    project = CSV_PROJECT.replace("    time:", "    header: [ts, price, size]\n    time:")
    for case, text, line in (("plain", wide, 1), ("quoted", '"2024-03-05T09:29:00-05:00",99,1\n' + wide, 2)):
        root = tmp_path / case
        make_project(
            root,
            {
                "project.yaml": project.replace("PATH", "data/{symbol}_{date}.csv").replace("TIME", "ts"),
                "f.yaml": FEATURES,
            },
        )
        (root / "data").mkdir()
        (root / "data" / "abc_20240305.csv").write_text(text)
        expect(cli("compile", "--project", root), 0)
        result = cli("run", "--project", root)
        assert result.exit_code == 1, result.output
        assert f"6 row(s) without 3 fields (first at line {line}: 4 fields)" in result.output
        assert "every row has the 3 fields of the source's header" in result.output


def test_text_that_is_no_time_is_counted_not_taken_for_times_without_a_zone(tmp_path: Path) -> None:
    rows = [ROWS[0], ROWS[1].replace("09:31", "09:3x"), ROWS[2], ROWS[3].replace("2024-03-05T09:33:00-05:00", "soon")]
    code, output, _ = _csv_run(
        tmp_path, {"abc_20240305.csv": "ts,price,size\n" + "\n".join(rows)}, "data/{symbol}_{date}.csv"
    )
    assert code == 1 and "have no zone" not in output
    assert (
        "unparseable timestamps in column 'ts': 2 value(s) are no times (first at row 1: '2024-03-05T09:3x:00-05:00')"
        in output
    )
    assert "fix or drop those rows" in output


SHARED = CSV_PROJECT.replace("    time:", "    symbol: sym\n    time:").replace(
    "instruments:\n  abc: {symbol: abc}", "instruments:\n  abc: {symbol: abc}\n  xyz: {symbol: xyz}"
)


def _shared_run(tmp_path: Path, files: dict[str, str]) -> tuple[int, str, Path]:
    root = tmp_path / "p"
    make_project(
        root, {"project.yaml": SHARED.replace("PATH", "data/{date}_all.csv").replace("TIME", "ts"), "f.yaml": FEATURES}
    )
    (root / "data").mkdir()
    for name, text in files.items():
        (root / "data" / name).write_text(text)
    expect(cli("compile", "--project", root), 0)
    result = cli("run", "--project", root)
    return result.exit_code, result.output, root


def test_a_day_file_of_many_symbols_without_a_row_of_any_instrument_is_said_once_naming_it(tmp_path: Path) -> None:
    good = "ts,sym,price,size\n" + "\n".join(
        f"{r.split(',')[0]},{s},{r.split(',', 1)[1]}" for r, s in zip(ROWS, "aaxxax", strict=True)
    )
    good = good.replace(",a,", ",abc,").replace(",x,", ",xyz,")
    files = {
        "20240305_all.csv": good,
        "20240306_all.csv": "ts,sym,price,size\n",  # a header line alone
        "20240307_all.csv": "ts,sym,price,size\n2024-03-07T09:30:00-05:00,,100,1\n2024-03-07T09:31:00-05:00,,1,2\n",
        "20240308_all.csv": "ts,sym,price,size\n2024-03-08T19:30:00-05:00,abc,1,1\n2024-03-08T19:31:00-05:00,xyz,1,2",
    }
    code, output, root = _shared_run(tmp_path, files)
    assert code == 0, output
    assert "data/20240306_all.csv: the file has no rows: what reads source 'trades' is NaN on 2024-03-06" in output
    assert (
        "data/20240307_all.csv: none of its 2 rows has an instrument's symbol in column 'sym': what reads source "
        "'trades' is NaN on 2024-03-07 (check the instruments' symbols against the file's)" in output
    )
    outside = "data/20240308_all.csv: none of its 2 rows of the instruments falls inside the session of 2024-03-08"
    assert output.count(outside) == 1 and "none of its 1 rows" not in output  # once for the file
    for day, value in (("20240306", np.nan), ("20240307", np.nan), ("20240308", 0.0)):
        frame = pd.read_parquet(root / "out" / f"features_{day}_60s.parquet")
        np.testing.assert_array_equal(frame[["volume_60s_abc", "volume_60s_xyz"]].to_numpy(), value)
    first = pd.read_csv(root / "data" / "20240305_all.csv")
    minute = (pd.to_datetime(first["ts"], utc=True) - pd.Timestamp(f"{DAY} 14:30", tz="UTC")) // pd.Timedelta("60s")
    expected = first.groupby(["sym", minute])["size"].sum()
    frame = pd.read_parquet(root / "out" / "features_20240305_60s.parquet")
    for sym in ("abc", "xyz"):
        got = frame[f"volume_60s_{sym}"].to_numpy()
        want = np.zeros(10)
        want[expected[sym].index.to_numpy()] = expected[sym].to_numpy()
        np.testing.assert_array_equal(got, want)


def test_a_group_whose_symbols_a_shared_file_lacks_warns_nothing_of_the_file(tmp_path: Path) -> None:
    """A dask group task reads only its instruments' rows of a file of many symbols: a file with rows of other
    groups' instruments only is no "none of its rows has an instrument's symbol" for the group (the whole run,
    with every instrument, finds rows there); its instrument is absent, as in the whole run."""
    import warnings

    from fspec.runtime.manifest import load_manifest
    from fspec.runtime.run import Engine

    only_xyz = "ts,sym,price,size\n2024-03-05T09:30:10-05:00,xyz,100,1\n2024-03-05T09:31:10-05:00,xyz,101,2\n"
    _, _, root = _shared_run(tmp_path, {"20240305_all.csv": only_xyz})
    manifest = load_manifest(root)
    for only in (frozenset({"abc"}), None):
        engine = Engine(manifest, days=("2024-03-05",), only=only, absent_log=[])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ticks = engine.ticks("trades", "abc", "2024-03-05")
        assert len(ticks) == 0
        assert not [w for w in caught if "has an instrument's symbol" in str(w.message)], only
