"""EWMs carried across sessions (``session=false``) over a multi-day run, against one continuous pandas ewm over
the concatenated bars of all the days: equal within the documented truncation bound (docs/semantics.md), equal
outright for a bar with fewer than W bars before it (day 1), and deterministic whatever else the run computes."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fspec.compiler.build import compile_project
from fspec.operators import REGISTRY, windows
from fspec.runtime.manifest import load_manifest
from fspec.runtime.run import RunOptions, run

DAYS = ["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07", "2024-03-08"]
BARS = 60  # one hour of 60 s bars

PROJECT = """\
spec_version: 1
sources:
  trades:
    path: data/{symbol}/{date}.parquet
    time: {column: ts, unit: ns}
    columns: {price: float64, size: float64}
instruments:
  abc: {symbol: abc}
intervals: [60s]
session: {timezone: America/New_York, open: "09:30", close: "10:30"}
"""

# span 4: alpha 0.4, W = 55 bars (one warm-up session); rma n = 3: W = 72 bars (two warm-up sessions)
FEATURES = """\
spec_version: 1
features:
  - name: px
    formula: last(trades.price)
  - name: px_ewm
    formula: ewm_mean(px, 4)
  - name: px_ewm_carry
    formula: ewm_mean(px, 4, session=false)
  - name: px_std_carry
    formula: ewm_std(px, 4, session=false)
  - name: px_rma_carry
    formula: rma(px, 3, session=false)
  - name: px_std_carry_lag
    formula: lag(ewm_std(px, 4, session=false), 70)
  - name: px_ewm_carry_by_keyword
    formula: ewm_mean(px, session=false, span=4)
  - name: px_ewm_said_session
    formula: ewm_mean(px, 4, session=true)
    publish: false
"""


def _write_day(root: Path, day: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    open_ns = pd.Timestamp(f"{day} 09:30", tz="America/New_York").value
    minutes = rng.choice([m for m in range(BARS) if not 20 + seed <= m < 27 + seed], size=400)  # 7 empty bars
    ts = np.sort(open_ns + minutes * 60_000_000_000 + rng.integers(0, 60_000_000_000, minutes.size))
    price = 100 + np.cumsum(rng.normal(0, 0.05, ts.size)) + 3 * seed  # a level shift between days
    frame = pd.DataFrame({"ts": ts, "price": price.round(2), "size": rng.integers(1, 100, ts.size).astype(float)})
    (root / "data" / "abc").mkdir(parents=True, exist_ok=True)
    frame.to_parquet(root / "data" / "abc" / f"{day.replace('-', '')}.parquet", index=False)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ewm_carry")
    (root / "specs").mkdir()
    (root / "specs" / "project.yaml").write_text(PROJECT)
    (root / "specs" / "features.yaml").write_text(FEATURES)
    for i, day in enumerate(DAYS):
        _write_day(root, day, seed=i)
    compile_project(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run(load_manifest(root), RunOptions())
    return root


def _days(root: Path, out: str = "out") -> pd.DataFrame:
    frames = [pd.read_parquet(root / out / f"features_{d.replace('-', '')}_60s.parquet") for d in DAYS]
    return pd.concat(frames, ignore_index=True)


def _values_in_window(x: np.ndarray, w: int) -> np.ndarray:
    valid = np.concatenate([[0], np.cumsum(~np.isnan(x))])
    return valid[1:] - valid[np.maximum(np.arange(1, x.size + 1) - w, 0)]


def test_the_carried_window_loads_the_warm_up_sessions_it_needs(project: Path) -> None:
    features = {f.name: f for f in load_manifest(project).features}
    assert windows.ewm_horizon(0.4) == 55 and 3 + windows.ewm_horizon(1 / 3) == 72
    assert features["px_ewm"].window == (0, 0)  # session-local by default: no warm-up
    assert features["px_ewm_carry"].window == (54, 0)
    assert features["px_std_carry"].window == (54, 0)
    assert features["px_rma_carry"].window == (71, 0)
    assert features["px_std_carry_lag"].window == (124, -70)  # 70 bars back, then W - 1 more


def test_the_flag_is_recorded_only_where_it_is_not_the_default(project: Path) -> None:
    """session=true is an EWM's default: the tree of ewm_mean(px, 4) (a spec written before EWMs could carry);
    session=false is recorded, and its resolved text reads back to the same tree."""
    features = {f.name: f for f in load_manifest(project).features}
    assert features["px_ewm_said_session"].tree == features["px_ewm"].tree
    assert features["px_ewm_carry_by_keyword"].tree == features["px_ewm_carry"].tree != features["px_ewm"].tree
    assert "session=false" in features["px_ewm_carry"].resolved and "session" not in features["px_ewm"].resolved


def test_carried_ewms_match_one_continuous_pandas_ewm_over_all_days(project: Path) -> None:
    out = _days(project)
    px = out["px_60s_abc"].to_numpy()
    assert np.isnan(px).sum() >= 7 * len(DAYS)  # the empty bars are there
    spread = np.nanmax(px) - np.nanmin(px)
    ewm = pd.Series(px).ewm(span=4, adjust=False, ignore_na=True)
    w = windows.ewm_horizon(0.4)
    eps = 0.6 ** _values_in_window(px, w)  # at least the weight of the bars before each bar's start

    mean = out["px_ewm_carry_60s_abc"].to_numpy()
    continuous = ewm.mean().to_numpy()
    # day 1, and day 2 up to W - 1 bars after its open, start at the data's first bar: pandas' values
    np.testing.assert_allclose(mean[: BARS + w - 1], continuous[: BARS + w - 1], rtol=1e-13)
    assert (np.abs(mean - continuous) <= eps * spread + 1e-12 * spread).all()
    assert not np.array_equal(mean, continuous)  # later days are truncated, not continuous by accident

    std = out["px_std_carry_60s_abc"].to_numpy()
    continuous = ewm.std().to_numpy()
    np.testing.assert_array_equal(np.isnan(std), np.isnan(continuous))
    np.testing.assert_allclose(std[: BARS + w - 1], continuous[: BARS + w - 1], rtol=1e-12)
    f = 1.0 / (1.0 - 0.6**2 - 0.4**2)  # the largest bias correction, at two values
    bound = f * 1.25 * eps * spread**2 + continuous**2 * f * eps**2 + 1e-10 * spread**2
    ok = ~np.isnan(std)
    assert (np.abs(std**2 - continuous**2)[ok] <= bound[ok]).all()

    rma = out["px_rma_carry_60s_abc"].to_numpy()
    reference = REGISTRY["rma"].reference
    assert reference is not None
    continuous = reference(px, session=np.zeros(px.size, dtype=np.int64), n=3)
    w = 3 + windows.ewm_horizon(1 / 3)
    seen = _values_in_window(px, w)
    np.testing.assert_array_equal(np.isnan(rma), np.isnan(continuous))
    eps = (2 / 3) ** np.maximum(seen - 3, 0)
    assert (np.abs(rma - continuous)[~np.isnan(rma)] <= eps[~np.isnan(rma)] * spread + 1e-12 * spread).all()
    np.testing.assert_allclose(rma[: BARS + w - 1], continuous[: BARS + w - 1], rtol=1e-13, equal_nan=True)

    lagged = out["px_std_carry_lag_60s_abc"].to_numpy()
    np.testing.assert_array_equal(lagged[70:], std[:-70])  # a lag reads the same carried values
    assert np.isnan(lagged[:70]).all()


def test_day_one_is_the_session_local_ewm_and_later_days_carry(project: Path) -> None:
    """A bar's recursion starts at the latest open at least W - 1 bars back: on day 1 (no earlier session) that
    is day 1's open, so day 1 is the session-local EWM; a later day's first W - 1 bars start at the day before's
    open (they carry), and its later bars at its own open, where the session-local EWM has forgotten all but
    1e-12 of what came before anyway: they are the session-local values."""
    out = _days(project)
    local, carried = out["px_ewm_60s_abc"].to_numpy(), out["px_ewm_carry_60s_abc"].to_numpy()
    w = windows.ewm_horizon(0.4)
    np.testing.assert_array_equal(carried[:BARS], local[:BARS])
    px = out["px_60s_abc"].to_numpy()
    for day in range(1, len(DAYS)):
        first = day * BARS
        assert local[first] == px[first]  # session-local: restarts at the day's first value
        assert carried[first] != px[first]  # carried: the day before still weighs in
        np.testing.assert_array_equal(carried[first + w - 1 : first + BARS], local[first + w - 1 : first + BARS])


def test_carried_values_do_not_depend_on_what_else_the_run_computes(project: Path, tmp_path: Path) -> None:
    """A run of one day, or of one feature, loads fewer warm-up sessions than the full run: the truncation
    is each bar's own last W bars, so the files are the same."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for day in reversed(DAYS):
            run(load_manifest(project), RunOptions(dates=[day], output_dir=tmp_path / "one"))
        run(load_manifest(project), RunOptions(select=["px_ewm_carry"], output_dir=tmp_path / "sel"))
    for day in DAYS:
        name = f"features_{day.replace('-', '')}_60s.parquet"
        digest = hashlib.sha256((project / "out" / name).read_bytes()).hexdigest()
        assert hashlib.sha256((tmp_path / "one" / name).read_bytes()).hexdigest() == digest, day
        alone = pd.read_parquet(tmp_path / "sel" / name)["px_ewm_carry_60s_abc"]
        full = pd.read_parquet(project / "out" / name)["px_ewm_carry_60s_abc"]
        pd.testing.assert_series_equal(alone, full)
