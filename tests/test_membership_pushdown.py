"""A run of some days of a universe whose membership is by day (``sessions_before: N``) reads only the row groups of
one span that all its members share: the days, their warm-up sessions, and the N sessions of the universe before
the earliest of those (membership there is what a whole read finds). The reference is the same project run over
every day: the days' files must be byte-identical. ``every_session`` (which counts the sessions to the end of the
data) still reads the file whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import FspecProject, book_project, cli, expect, make_project

DAYS = tuple(d.strftime("%Y-%m-%d") for d in pd.bdate_range("2024-01-01", periods=15))  # three weeks
# stock -> the days (indices of DAYS) it has rows: 3 misses day 11 (no member on 12 and 13, one on 14), 5 lists on
# day 10 (a member from day 12), 6 has no row on the last day
EVERY = set(range(15))
PRESENT = {1: EVERY, 2: EVERY, 3: EVERY - {11}, 4: EVERY, 5: set(range(10, 15)), 6: EVERY - {14}}
PER_GROUP = 40
FEATURES = [
    {"name": "vwap", "formula": "wmean(book.price, book.size)"},
    {"name": "vwap_lag", "formula": "lag(vwap, 1)"},  # bar 0 reads the session before
    {"name": "vwap_rank", "formula": "cs_rank(vwap)", "instruments": ["stocks"]},
    {"name": "rank_mean", "formula": "rolling_mean(cs_rank(vwap), 3)", "instruments": ["stocks"]},
    {"name": "index_stocks", "formula": "cs_mean(stocks.vwap)"},
]


def _book() -> pd.DataFrame:
    rng = np.random.default_rng(13)
    frames = []
    for stock, days in PRESENT.items():
        for k in sorted(days):
            n = 20
            seconds = np.sort(rng.uniform(0, 6.5 * 3600, n))
            ts = pd.Timestamp(f"{DAYS[k]} 09:30", tz="America/New_York") + pd.to_timedelta(seconds, unit="s")
            price = 10 * stock + np.round(np.cumsum(rng.normal(0, 0.05, n)), 2)
            frames.append(pd.DataFrame({"ts": ts, "sym": stock, "price": price, "size": rng.integers(1, 9, n) * 1.0}))
    return pd.concat(frames).sort_values("ts", kind="stable", ignore_index=True)


def _project(
    root: Path, frame: pd.DataFrame, membership: dict[str, object], specs: dict[str, object] | None = None
) -> FspecProject:
    universe = {"from": "book", "suffix": "s{symbol}", "membership": membership}
    project = book_project(universes={"stocks": universe})
    specs = specs or {"features.yaml": {"spec_version": 1, "features": FEATURES}}
    made = make_project(root, {"project.yaml": project, **specs})  # type: ignore[dict-item]
    (root / "data").mkdir()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, root / "data" / "book.parquet", row_group_size=PER_GROUP)
    made.compile()
    return made


class _GroupsRead:
    """The row groups of the book that reads of its price column ask for (a universe finds its members in the
    symbol column of every row group, alone: not counted)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, rows: int) -> None:
        self.groups: set[int] = set()
        seen, originals = (
            self.groups,
            (pq.ParquetFile.read_row_groups, pq.ParquetFile.iter_batches, pq.ParquetFile.read),
        )

        def counted(file: pq.ParquetFile, groups: list[int] | None, columns: list[str] | None) -> None:
            if file.metadata.num_rows == rows and (columns is None or "price" in columns):
                seen.update(range(file.metadata.num_row_groups) if groups is None else groups)

        def read_row_groups(file: pq.ParquetFile, groups: list[int], columns: list[str] | None = None, **kw: object):  # type: ignore[no-untyped-def]
            counted(file, groups, columns)
            return originals[0](file, groups, columns=columns, **kw)

        def iter_batches(file: pq.ParquetFile, *args: object, row_groups: list[int] | None = None, columns=None, **kw):  # type: ignore[no-untyped-def]
            counted(file, row_groups, columns)
            return originals[1](file, *args, row_groups=row_groups, columns=columns, **kw)

        def read(file: pq.ParquetFile, columns: list[str] | None = None, **kw: object) -> pa.Table:
            counted(file, None, columns)
            return originals[2](file, columns=columns, **kw)

        monkeypatch.setattr(pq.ParquetFile, "read_row_groups", read_row_groups)
        monkeypatch.setattr(pq.ParquetFile, "iter_batches", iter_batches)
        monkeypatch.setattr(pq.ParquetFile, "read", read)


def _groups_of(frame: pd.DataFrame, days: list[str]) -> set[int]:
    local = frame["ts"].dt.tz_convert("America/New_York").dt.strftime("%Y-%m-%d")
    return set((np.flatnonzero(local.isin(days).to_numpy()) // PER_GROUP).tolist())


def _name(day: str) -> str:
    return f"features_{day.replace('-', '')}_1800s.parquet"


@pytest.mark.parametrize("dates", [[DAYS[14]], [DAYS[13], DAYS[14]]])
def test_a_run_of_some_days_reads_one_shared_span_and_writes_the_same_bytes(
    tmp_path: Path, dates: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = _book()
    whole = _project(tmp_path / "whole", frame, {"sessions_before": 2})
    part = _project(tmp_path / "part", frame, {"sessions_before": 2})
    whole.run()
    spy = _GroupsRead(monkeypatch, len(frame))
    part.run(dates=dates)
    first = DAYS.index(dates[0])
    # the days, the warm-up session before the first (lag, rolling_mean of 3) and the universe's 2 sessions before
    # that, where stock 3's missing day makes it no member on the warm-up session
    needed = _groups_of(frame, list(DAYS[first - 3 :]))
    assert needed <= spy.groups, sorted(needed - spy.groups)
    assert not spy.groups & _groups_of(frame, [DAYS[0]]), sorted(spy.groups)  # not the whole file
    assert sorted(p.name for p in (part.root / "out").iterdir()) == [_name(d) for d in dates]
    for day in dates:
        assert (part.root / "out" / _name(day)).read_bytes() == (whole.root / "out" / _name(day)).read_bytes(), day
    got = part.output(DAYS[14], 1800)  # members by day
    assert got["vwap_rank_1800s_s3"].notna().any() and got["vwap_rank_1800s_s5"].notna().any()
    assert got["vwap_rank_1800s_s6"].isna().all()
    if len(dates) == 2:
        assert part.output(DAYS[13], 1800)["vwap_rank_1800s_s3"].isna().all()


def test_every_session_reads_the_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = _book()
    specs = {
        "features.yaml": {"spec_version": 1, "features": []},
        "targets.yaml": {"spec_version": 1, "targets": [{"name": "target_volume", "formula": "sum(book.size)"}]},
    }
    made = _project(tmp_path / "p", frame, {"every_session": True}, specs)
    spy = _GroupsRead(monkeypatch, len(frame))
    made.run(dates=[DAYS[14]])
    assert spy.groups == set(range(-(-len(frame) // PER_GROUP)))


def test_a_day_without_a_row_of_any_member_is_an_error_naming_the_file(tmp_path: Path) -> None:
    made = _project(tmp_path / "p", _book(), {"sessions_before": 2})
    said = expect(cli("run", "--project", made.root, "--date", "2024-01-13"), 1)  # a Saturday
    assert "data/book.parquet: no instrument has a row in the session of 2024-01-13" in said, said
    assert not (made.root / "out").exists() or not list((made.root / "out").iterdir())
