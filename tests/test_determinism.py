"""Determinism and multi-day runs: same specs + data -> byte-identical files, whatever the order of dates.

The data here is synthetic (a seeded random walk), because the bundled real sample has one day only.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fspec.compiler.build import compile_project
from fspec.errors import DataError
from fspec.runtime.manifest import load_manifest
from fspec.runtime.run import RunOptions, run
from fspec.runtime.sources import DataWarning

DAYS = ["2024-03-04", "2024-03-05", "2024-03-06"]

PROJECT = """\
spec_version: 1
sources:
  trades:
    path: data/{symbol}/{date}.parquet
    time: {column: ts, unit: ns}
    columns: {price: float64, size: float64}
    unsorted: UNSORTED
instruments:
  abc: {symbol: abc}
intervals: [60s, 300s]
session: {timezone: America/New_York, open: "09:30", close: "10:30"}
"""

FEATURES = """\
spec_version: 1
features:
  - name: ret
    formula: sum(diff(log(trades.price)))
  - name: vol
    formula: sum(trades.size)
  - name: ret_lag
    expand: {k: [1, 45]}
    formula: lag(ret, k)
  - name: rv_long
    formula: rolling_std(ret, 50)
  - name: vol_ewm
    formula: ewm_mean(vol, 5)
targets:
  - name: target_next
    formula: lead(ret, 1)
"""


def _write_day(root: Path, day: str, seed: int, descending: bool = False) -> None:
    rng = np.random.default_rng(seed)
    open_ns = pd.Timestamp(f"{day} 09:30", tz="America/New_York").value
    n = 3000
    ts = np.sort(open_ns + rng.integers(-600, 3900, n) * 1_000_000_000 + rng.integers(0, 10**9, n))
    ts[100:110] = ts[100]  # same-timestamp ticks
    price = 100 * np.exp(np.cumsum(rng.normal(0, 1e-4, n)))
    frame = pd.DataFrame({"ts": ts, "price": np.round(price, 2), "size": rng.lognormal(3, 1, n).round()})
    if descending:
        frame = frame.iloc[::-1]
    (root / "data" / "abc").mkdir(parents=True, exist_ok=True)
    frame.to_parquet(root / "data" / "abc" / f"{day.replace('-', '')}.parquet", index=False)


def _project(root: Path, unsorted: str = "sort", descending: bool = False) -> Path:
    (root / "specs").mkdir(parents=True)
    (root / "specs" / "project.yaml").write_text(PROJECT.replace("UNSORTED", unsorted))
    (root / "specs" / "features.yaml").write_text(FEATURES)
    for i, day in enumerate(DAYS):
        _write_day(root, day, seed=i, descending=descending)
    compile_project(root)
    return root


def _digests(paths: list[Path]) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _project(tmp_path_factory.mktemp("multiday"))


def test_dates_together_one_at_a_time_and_reversed_are_byte_identical(project: Path, tmp_path: Path) -> None:
    manifest = load_manifest(project)
    together = _digests(run(manifest, RunOptions(output_dir=tmp_path / "a")))
    single = {}
    for day in reversed(DAYS):
        single |= _digests(run(load_manifest(project), RunOptions(dates=[day], output_dir=tmp_path / "b")))
    again = _digests(run(load_manifest(project), RunOptions(output_dir=tmp_path / "c")))
    assert len(together) == len(DAYS) * 2
    assert together == single == again


def test_warmup_comes_from_earlier_sessions_only(project: Path, tmp_path: Path) -> None:
    run(load_manifest(project), RunOptions(output_dir=tmp_path))
    day1 = pd.read_parquet(tmp_path / "features_20240304_60s.parquet")
    day2 = pd.read_parquet(tmp_path / "features_20240305_60s.parquet")
    # lag 1 at the open of day 2 is the last bar of day 1; on day 1 there is no earlier session: NaN
    assert day2["ret_lag_1_60s_abc"].iloc[0] == day1["ret_60s_abc"].iloc[-1]
    assert np.isnan(day1["ret_lag_1_60s_abc"].iloc[0])
    # a 50-bar window needs 50 bars: day 1 (60 bars) has it from bar 49 on, day 2 from its first bar
    assert day1["rv_long_60s_abc"].iloc[:49].isna().all() and not np.isnan(day1["rv_long_60s_abc"].iloc[49])
    assert not day2["rv_long_60s_abc"].isna().any()
    expected = pd.concat([day1["ret_60s_abc"], day2["ret_60s_abc"]]).rolling(50).std().iloc[60:]
    np.testing.assert_allclose(day2["rv_long_60s_abc"], expected, rtol=1e-9)
    # session-local operators restart: the ewm of day 2 starts at day 2's first value
    assert day2["vol_ewm_60s_abc"].iloc[0] == day2["vol_60s_abc"].iloc[0]
    # the target never reads the next session
    assert np.isnan(day1["target_next_60s_abc"].iloc[-1])


def test_descending_input_is_reversed_with_a_warning_and_matches_ascending_input(project: Path, tmp_path: Path) -> None:
    """A file written newest first is reversed, not stably sorted: ticks that share a timestamp then come back
    in their true order, so every column (tick returns included) equals the ascending file's."""
    flipped = _project(tmp_path / "desc", descending=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        files = run(load_manifest(flipped), RunOptions(output_dir=tmp_path / "desc_out"))
    assert any(issubclass(w.category, DataWarning) and "descending time order" in str(w.message) for w in caught)
    reference = run(load_manifest(project), RunOptions(output_dir=tmp_path / "asc_out"))
    for got, want in zip(files, reference, strict=True):
        a, b = pd.read_parquet(got), pd.read_parquet(want)
        pd.testing.assert_frame_equal(a, b)
        assert a.filter(like="vol_").sum().sum() > 0


def test_shuffled_input_is_sorted_stably_with_a_warning(project: Path, tmp_path: Path) -> None:
    shuffled = _project(tmp_path / "shuffled")
    for path in (shuffled / "data" / "abc").glob("*.parquet"):
        frame = pd.read_parquet(path)
        frame.iloc[np.random.default_rng(1).permutation(len(frame))].to_parquet(path, index=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        files = run(load_manifest(shuffled), RunOptions(output_dir=tmp_path / "out"))
    assert any(issubclass(w.category, DataWarning) and "sorted them (stable)" in str(w.message) for w in caught)
    reference = run(load_manifest(project), RunOptions(output_dir=tmp_path / "asc_out"))
    for got, want in zip(files, reference, strict=True):
        interval = got.stem.split("_")[-1]
        column = f"vol_{interval}_abc"  # volume does not depend on the order of equal-timestamp ticks
        pd.testing.assert_series_equal(pd.read_parquet(got)[column], pd.read_parquet(want)[column])


def test_rolling_features_on_unsorted_rows_would_differ(project: Path) -> None:
    # What the seed notebook did: a rolling window over descending rows. The same numbers in the wrong
    # order give different windows, which is why fspec never uses unsorted input as it is.
    values = pd.Series(np.random.default_rng(0).normal(size=200))
    forward = values.rolling(10).mean()
    backward = values[::-1].rolling(10).mean()[::-1]
    assert not np.allclose(forward.iloc[20:180], backward.iloc[20:180])


def test_descending_input_is_rejected_when_the_source_says_so(tmp_path: Path) -> None:
    strict = _project(tmp_path / "strict", unsorted="reject", descending=True)
    with pytest.raises(DataError) as info:
        run(load_manifest(strict), RunOptions(output_dir=tmp_path / "out"))
    assert "data/abc/20240304.parquet" in str(info.value)
    assert "not in time order" in str(info.value)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*"))
