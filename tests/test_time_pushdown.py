"""A run of some days of a parquet file of many days reads only the row groups that may hold their sessions (and
the warm-up sessions before them), by the time column's statistics; hive partitions by date only the days'.

The reference is the same project run over every day (the file read whole): the days' files must be
byte-identical, and the counts of row groups read are those whose rows fall in the sessions, found with pandas.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import make_project

DAYS = ("2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07", "2024-03-08", "2024-03-11")
PER_GROUP = 50  # rows per row group: each day's 120 rows span three groups, some shared by two days


def _long(n_per_day: int = 120) -> pd.DataFrame:
    """Two symbols' trades, 09:30 to 09:40 New York time each day, in time order."""
    rng = np.random.default_rng(5)
    frames = []
    for day in DAYS:
        seconds = np.sort(rng.uniform(0, 600, n_per_day))
        ts = pd.Timestamp(f"{day} 09:30", tz="America/New_York") + pd.to_timedelta(seconds, unit="s")
        frames.append(
            pd.DataFrame(
                {
                    "ts": ts.tz_convert("UTC"),
                    "sym": rng.choice(["abc", "xyz"], n_per_day),
                    "price": 100 + rng.normal(0, 1, n_per_day).cumsum(),
                    "size": rng.integers(1, 9, n_per_day).astype(float),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _project(
    root: Path,
    frame: pd.DataFrame,
    time: object,
    warmup: bool,
    grid: dict[str, object] | None = None,
    per_group: int = PER_GROUP,
    more: list[dict[str, str]] = (),  # type: ignore[assignment]
    quotes: pd.DataFrame | None = None,
) -> None:
    features = [
        {"name": "volume", "formula": "sum(trades.size)"},
        {"name": "vwap", "formula": "wmean(trades.price, trades.size)"},
        *more,
    ]
    if warmup:  # 25 bars of 60 s: the two sessions before reach into the window
        features.append({"name": "volume_mean", "formula": "rolling_mean(volume, 25)"})
    project = {
        "spec_version": 1,
        "sources": {
            "trades": {
                "path": "data/all_trades.parquet",
                "symbol": "sym",
                "time": time,
                "columns": {"price": "float64", "size": "float64"},
            }
        },
        "instruments": {"abc": {"symbol": "abc"}, "xyz": {"symbol": "xyz"}},
        "intervals": ["60s"],
        "session": {"timezone": "America/New_York", "open": "09:30", "close": "09:40"},
    }
    if grid is not None:  # an event grid of fills, with its features
        project["sources"]["fills"] = grid["source"]  # type: ignore[index]
        project["grids"] = {"fills": grid["grid"]}
        project["instruments"] = {k: {"symbol": k, "sources": ["trades"]} for k in ("abc", "xyz")}
        features += grid["features"]  # type: ignore[arg-type]
    if quotes is not None:  # the quotes prevailing at each trade, from a file of many days too
        project["sources"]["quotes"] = {  # type: ignore[index]
            "path": "data/quotes.parquet",
            "symbol": "sym",
            "time": "ts",
            "columns": {"bid": "float64"},
        }
        project["sources"]["trades"]["asof"] = {"source": "quotes", "columns": ["bid"]}  # type: ignore[index]
    made = make_project(root, {"project.yaml": project, "features.yaml": {"spec_version": 1, "features": features}})
    (root / "data").mkdir()
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False),
        root / "data" / "all_trades.parquet",
        row_group_size=per_group,
    )
    if quotes is not None:  # a row group for each time: both symbols' quotes of it
        pq.write_table(
            pa.Table.from_pandas(quotes, preserve_index=False), root / "data" / "quotes.parquet", row_group_size=2
        )
    made.compile()


class _GroupsRead:
    """The row groups every read of the file of ``rows`` rows asks for (all of them for a whole read)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, rows: int) -> None:
        self.groups: set[int] = set()
        original_groups, original_batches, original_read = (
            pq.ParquetFile.read_row_groups,
            pq.ParquetFile.iter_batches,
            pq.ParquetFile.read,
        )
        seen = self.groups

        def ours(file: pq.ParquetFile) -> bool:
            return file.metadata.num_rows == rows

        def read_row_groups(file: pq.ParquetFile, groups: list[int], *args: object, **kwargs: object) -> pa.Table:
            seen.update(groups if ours(file) else ())
            return original_groups(file, groups, *args, **kwargs)

        def iter_batches(file: pq.ParquetFile, *args: object, row_groups: list[int] | None = None, **kwargs: object):  # type: ignore[no-untyped-def]
            if ours(file):
                seen.update(range(file.metadata.num_row_groups) if row_groups is None else row_groups)
            return original_batches(file, *args, row_groups=row_groups, **kwargs)

        def read(file: pq.ParquetFile, *args: object, **kwargs: object) -> pa.Table:
            seen.update(range(file.metadata.num_row_groups) if ours(file) else ())
            return original_read(file, *args, **kwargs)

        monkeypatch.setattr(pq.ParquetFile, "read_row_groups", read_row_groups)
        monkeypatch.setattr(pq.ParquetFile, "iter_batches", iter_batches)
        monkeypatch.setattr(pq.ParquetFile, "read", read)


def _groups_of(frame: pd.DataFrame, days: list[str]) -> set[int]:
    """The row groups (PER_GROUP rows each, in file order) holding a row of ``days``' sessions (pandas)."""
    local = frame["ts"].dt.tz_convert("America/New_York").dt.strftime("%Y-%m-%d")
    return set((np.flatnonzero(local.isin(days).to_numpy()) // PER_GROUP).tolist())


TIMES = {
    "timestamps": ("ts", lambda f: f),
    "epochs": ({"column": "ts", "unit": "ms"}, lambda f: f.assign(ts=f["ts"].astype("int64") // 10**6)),
    "naive local": (
        {"column": "ts", "timezone": "America/New_York"},
        lambda f: f.assign(ts=f["ts"].dt.tz_convert("America/New_York").dt.tz_localize(None)),
    ),
}


@pytest.mark.parametrize("kind", sorted(TIMES))
def test_a_day_of_a_many_day_file_reads_only_its_row_groups(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    time, encode = TIMES[kind]
    frame = _long()
    _project(tmp_path / "whole", encode(frame), time, warmup=False)
    from conftest import FspecProject

    whole, part = FspecProject(tmp_path / "whole"), FspecProject(tmp_path / "part")
    _project(part.root, encode(frame), time, warmup=False)
    whole.run()
    spy = _GroupsRead(monkeypatch, len(frame))
    part.run(dates=[DAYS[2]])
    total = -(-len(frame) // PER_GROUP)
    if kind == "naive local":  # a local zone's statistics are widened by a day each way: still not all
        assert _groups_of(frame, [DAYS[2]]) <= spy.groups < set(range(total)), spy.groups
    else:
        assert spy.groups == _groups_of(frame, [DAYS[2]]), (sorted(spy.groups), total)
    name = f"features_{DAYS[2].replace('-', '')}_60s.parquet"
    assert sorted(p.name for p in (part.root / "out").iterdir()) == [name]
    assert (part.root / "out" / name).read_bytes() == (whole.root / "out" / name).read_bytes()


def test_warm_up_sessions_before_the_day_are_read_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """rolling_mean of 25 one-minute bars on ten-minute sessions needs the three sessions before the day."""
    frame = _long()
    from conftest import FspecProject

    whole, part = FspecProject(tmp_path / "whole"), FspecProject(tmp_path / "part")
    for made in (whole, part):
        _project(made.root, frame, "ts", warmup=True)
    whole.run()
    spy = _GroupsRead(monkeypatch, len(frame))
    part.run(dates=[DAYS[4]])
    assert _groups_of(frame, list(DAYS[1:5])) <= spy.groups  # the day and the three sessions before it
    assert not spy.groups & _groups_of(frame, [DAYS[5]]) - _groups_of(frame, [DAYS[4]])  # nothing after it
    name = f"features_{DAYS[4].replace('-', '')}_60s.parquet"
    assert (part.root / "out" / name).read_bytes() == (whole.root / "out" / name).read_bytes()
    got = pd.read_parquet(part.root / "out" / name)
    assert got["volume_mean_60s_abc"].notna().all()  # warmed up from the sessions before


def test_hive_partitions_by_date_read_only_the_days_partitions(tmp_path: Path) -> None:
    """Another day's partition is never opened: here it is not even a parquet file."""
    frame = _long()
    local = frame["ts"].dt.tz_convert("America/New_York").dt.strftime("%Y-%m-%d")
    root = tmp_path / "p"
    _project(root, frame, "ts", warmup=False)
    spec = (root / "specs" / "project.yaml").read_text()
    (root / "specs" / "project.yaml").write_text(
        spec.replace("data/all_trades.parquet", "data/trades/date={date:%Y-%m-%d}/part-*.parquet")
    )
    for day in DAYS:
        folder = root / "data" / "trades" / f"date={day}"
        folder.mkdir(parents=True)
        rows = frame[local == day]
        for k in range(2):
            pq.write_table(pa.Table.from_pandas(rows.iloc[k::2], preserve_index=False), folder / f"part-{k}.parquet")
    (root / "data" / "trades" / f"date={DAYS[0]}" / "part-0.parquet").write_bytes(b"not parquet")
    from conftest import FspecProject

    made = FspecProject(root)
    made.compile()
    made.run(dates=[DAYS[3]])
    out = made.output(DAYS[3], 60)
    rows = frame[local == DAYS[3]]
    minute = (rows["ts"] - pd.Timestamp(f"{DAYS[3]} 09:30", tz="America/New_York")) // pd.Timedelta("60s")
    expected = rows.groupby(["sym", minute])["size"].sum()
    for sym in ("abc", "xyz"):
        want = np.zeros(10)
        want[expected[sym].index.to_numpy()] = expected[sym].to_numpy()
        np.testing.assert_array_equal(out[f"volume_60s_{sym}"].to_numpy(), want)


def test_an_event_grid_reads_the_session_before_the_day_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An event just after the open reads the last trade of the session before it (a file read from the day on
    would give NaN there): the one-day run's grid file is the whole run's."""
    from conftest import FspecProject

    frame = _long()
    opens = [pd.Timestamp(f"{day} 09:30:00.001", tz="America/New_York") for day in DAYS]
    fills = pd.DataFrame({"ts": [t.tz_convert("UTC") for t in opens], "sym": ["abc", "xyz"] * 3, "fill_id": range(6)})
    grid = {
        "source": {"path": "data/fills.parquet", "time": "ts", "columns": {"fill_id": "float64"}},
        "grid": {"events": "fills", "instrument": "sym", "keep": ["fill_id"]},
        "features": [{"name": "last_price", "grid": "fills", "formula": "asof(trades.price)"}],
    }
    whole, part = FspecProject(tmp_path / "whole"), FspecProject(tmp_path / "part")
    for made in (whole, part):
        _project(made.root, frame, "ts", warmup=False, grid=grid, per_group=120)  # a row group a day
        fills.to_parquet(made.root / "data" / "fills.parquet", index=False)
    whole.run()
    spy = _GroupsRead(monkeypatch, len(frame))
    part.run(dates=[DAYS[3]])
    name = f"features_{DAYS[3].replace('-', '')}_fills.parquet"
    got, want = pd.read_parquet(part.root / "out" / name), pd.read_parquet(whole.root / "out" / name)
    pd.testing.assert_frame_equal(got, want)
    before = frame[(frame["sym"] == "xyz") & (frame["ts"] < opens[3].tz_convert("UTC"))].iloc[-1]
    assert got.filter(like="last_price").iloc[0, 0] == before["price"]  # from the session before
    assert {2, 3} <= spy.groups and 0 not in spy.groups  # the day and the session before, not the whole file


def _minute_volumes(frame: pd.DataFrame, sym: str, day: str) -> np.ndarray:
    """The ten one-minute volumes of ``sym``'s session of ``day`` (pandas)."""
    rows = frame[(frame["sym"] == sym) & (frame["ts"].dt.tz_convert("America/New_York").dt.strftime("%Y-%m-%d") == day)]
    minute = (rows["ts"] - pd.Timestamp(f"{day} 09:30", tz="America/New_York")) // pd.Timedelta("60s")
    found = rows.groupby(minute)["size"].sum()
    volumes = np.zeros(10)
    volumes[found.index.to_numpy()] = found.to_numpy()
    return volumes


def test_a_warm_up_session_that_the_days_row_groups_hold_in_part_is_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first row group of the day also holds the last 30 rows of the session before it: a warm-up from
    those rows alone would differ from the whole run's (a rolling mean of 5 bars reaches 4 bars back). The
    span reaches back until that session is read whole."""
    from conftest import FspecProject

    frame = _long()
    more = [{"name": "volume_mean", "formula": "rolling_mean(volume, 5)"}]
    whole, part = FspecProject(tmp_path / "whole"), FspecProject(tmp_path / "part")
    for made in (whole, part):
        _project(made.root, frame, "ts", warmup=False, more=more)
    whole.run()
    spy = _GroupsRead(monkeypatch, len(frame))
    part.run(dates=[DAYS[4]])
    assert _groups_of(frame, [DAYS[3]]) & _groups_of(frame, [DAYS[4]])  # (the case: a group shared by both)
    name = f"features_{DAYS[4].replace('-', '')}_60s.parquet"
    assert (part.root / "out" / name).read_bytes() == (whole.root / "out" / name).read_bytes()
    assert _groups_of(frame, [DAYS[3], DAYS[4]]) <= spy.groups and 0 not in spy.groups
    got = part.output(DAYS[4], 60)
    for sym in ("abc", "xyz"):
        volumes = np.concatenate([_minute_volumes(frame, sym, DAYS[3]), _minute_volumes(frame, sym, DAYS[4])])
        want = pd.Series(volumes).rolling(5).mean().to_numpy()[10:]
        np.testing.assert_allclose(got[f"volume_mean_60s_{sym}"].to_numpy(), want, rtol=1e-12)


def test_an_asof_source_is_read_back_to_the_rows_prevailing_at_the_span(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trades with the quotes prevailing at each (asof), both files of many days: a run of one day reads the
    row groups of its session of each, and of the quotes also those back to the quote before the open, which
    the trades of the first five minutes take (a row group for each time of quotes)."""
    from conftest import FspecProject

    frame = _long()
    quotes = []
    for k, day in enumerate(DAYS):
        for clock in ("09:29:00.250", "09:35:00.750"):
            at = pd.Timestamp(f"{day} {clock}", tz="America/New_York").tz_convert("UTC")
            quotes += [
                {"ts": at, "sym": sym, "bid": 100.0 + k + (clock > "09:30") / 2 + j}
                for j, sym in enumerate(["abc", "xyz"])
            ]
    quote_frame = pd.DataFrame(quotes)
    more = [{"name": "last_bid", "formula": "last(trades.bid)"}]
    whole, part = FspecProject(tmp_path / "whole"), FspecProject(tmp_path / "part")
    for made in (whole, part):
        _project(made.root, frame, "ts", warmup=False, more=more, quotes=quote_frame)
    whole.run()
    groups = _GroupsRead(monkeypatch, len(frame))
    quote_groups = _GroupsRead(monkeypatch, len(quote_frame))
    part.run(dates=[DAYS[3]])
    name = f"features_{DAYS[3].replace('-', '')}_60s.parquet"
    assert (part.root / "out" / name).read_bytes() == (whole.root / "out" / name).read_bytes()
    assert groups.groups < set(range(-(-len(frame) // PER_GROUP)))
    # the day's two quotes and the one before its open (rows of two symbols each), not the days before
    assert {2 * 3, 2 * 3 + 1} <= quote_groups.groups and not quote_groups.groups & {0, 1, 2, 3}, quote_groups.groups
    got = part.output(DAYS[3], 60)
    trades = frame[frame["ts"].dt.tz_convert("America/New_York").dt.strftime("%Y-%m-%d") == DAYS[3]]
    for j, sym in enumerate(["abc", "xyz"]):
        rows = trades[trades["sym"] == sym]
        minute = (rows["ts"] - pd.Timestamp(f"{DAYS[3]} 09:30", tz="America/New_York")) // pd.Timedelta("60s")
        last_ts = rows.groupby(minute)["ts"].max()
        five = pd.Timestamp(f"{DAYS[3]} 09:35:00.750", tz="America/New_York")
        want = np.full(10, np.nan)
        want[last_ts.index.to_numpy()] = np.where(last_ts < five, 103.0 + j, 103.5 + j)
        np.testing.assert_array_equal(got[f"last_bid_60s_{sym}"].to_numpy(), want)


def test_a_bar_stamped_before_the_open_is_read_with_the_days_row_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One-minute bars stamped at their start: the bar of 09:29 is known at 09:30, in the session. Each bar in a
    row group of its own: a run of one day reads that bar's group too."""

    rows = []
    for day in DAYS:
        for minute in range(-1, 10):
            at = pd.Timestamp(f"{day} 09:30", tz="America/New_York") + pd.Timedelta(minutes=minute)
            rows.append({"ts": at.tz_convert("UTC"), "sym": "abc", "size": float(100 * (minute + 2))})
    bars = pd.DataFrame(rows)
    made = {}
    for which in ("whole", "part"):
        root = tmp_path / which
        project = {
            "spec_version": 1,
            "sources": {
                "minute_bars": {
                    "path": "data/bars.parquet",
                    "symbol": "sym",
                    "time": "ts",
                    "bars": {"width": "60s", "stamp": "start"},
                    "columns": {"size": "float64"},
                }
            },
            "instruments": {"abc": {"symbol": "abc"}},
            "intervals": ["60s"],
            "session": {"timezone": "America/New_York", "open": "09:30", "close": "09:40"},
        }
        features = {"spec_version": 1, "features": [{"name": "volume", "formula": "sum(minute_bars.size)"}]}
        made[which] = make_project(root, {"project.yaml": project, "features.yaml": features})
        (root / "data").mkdir()
        pq.write_table(
            pa.Table.from_pandas(bars, preserve_index=False), root / "data" / "bars.parquet", row_group_size=1
        )
        made[which].compile()
    made["whole"].run()
    spy = _GroupsRead(monkeypatch, len(bars))
    made["part"].run(dates=[DAYS[2]])
    assert spy.groups == set(range(2 * 11, 3 * 11)), sorted(spy.groups)  # the day's bars, 09:29 to 09:39
    name = f"features_{DAYS[2].replace('-', '')}_60s.parquet"
    assert (tmp_path / "part" / "out" / name).read_bytes() == (tmp_path / "whole" / "out" / name).read_bytes()
    got = made["part"].output(DAYS[2], 60)["volume_60s_abc"].to_numpy()
    # the bar stamped m minutes after the open is known at its end, m + 1: in the bar after (09:29's in the first)
    np.testing.assert_array_equal(got, [100.0 * (m + 2) for m in range(-1, 9)])


def test_an_event_grids_own_file_of_many_days_reads_the_days_row_groups_and_the_session_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The events file of a grid holds every day (two row groups a day): a run of one day reads the day's and, for
    the reads of the grid's own events (the fill before each, of its instrument), those of the session before;
    not the days before that."""
    from conftest import FspecProject

    frame = _long()
    fills = []
    for day in DAYS:
        for clock, sym in (
            ("09:30:00.001", "abc"),
            ("09:31:00.5", "xyz"),
            ("09:35:00.25", "abc"),
            ("09:38:00.75", "xyz"),
        ):
            at = pd.Timestamp(f"{day} {clock}", tz="America/New_York").tz_convert("UTC")
            fills.append({"ts": at, "sym": sym, "fill_id": float(len(fills))})
    fill_frame = pd.DataFrame(fills)
    grid = {
        "source": {"path": "data/fills.parquet", "time": "ts", "columns": {"fill_id": "float64"}},
        "grid": {"events": "fills", "instrument": "sym", "keep": ["fill_id"]},
        "features": [{"name": "fill_before", "grid": "fills", "formula": "asof(fills.fill_id)"}],
    }
    whole, part = FspecProject(tmp_path / "whole"), FspecProject(tmp_path / "part")
    for made in (whole, part):
        _project(made.root, frame, "ts", warmup=False, grid=grid)
        pq.write_table(
            pa.Table.from_pandas(fill_frame, preserve_index=False),
            made.root / "data" / "fills.parquet",
            row_group_size=2,
        )
    whole.run()
    spy = _GroupsRead(monkeypatch, len(fill_frame))
    part.run(dates=[DAYS[3]])
    assert {6, 7, 5} <= spy.groups and not spy.groups & {0, 1}, sorted(spy.groups)
    name = f"features_{DAYS[3].replace('-', '')}_fills.parquet"
    assert (part.root / "out" / name).read_bytes() == (whole.root / "out" / name).read_bytes()
    got = pd.read_parquet(part.root / "out" / name)
    before = fill_frame.groupby("sym")["fill_id"].shift(1).to_numpy()[12:16]  # (pandas: the fill before, by symbol)
    np.testing.assert_array_equal(got.filter(like="fill_before").iloc[:, 0].to_numpy(), before)
