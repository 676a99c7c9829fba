"""examples/pretrade_fills (seed 004) against three independent oracles: numpy searchsorted with strict edges,
DuckDB ASOF JOIN with '>' and polars join_asof without exact matches (tests/oracles/pretrade.py, written apart
from fspec), at latency 0 and 250 ms; and the complete-set labels, the strictly-before feature and the seed's
leaking bucket label as a target, against the oracles' pandas versions.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO, cli, expect
from tests.oracles.pretrade import (
    FEATURES,
    KEEP,
    complete_set_bucket,
    complete_set_trailing,
    context_duckdb,
    context_numpy,
    context_polars,
    fills_file,
    load_bundled,
)

EXAMPLE = REPO / "examples" / "pretrade_fills"
DAYS = ["2025-12-14", "2025-12-15"]
ORACLES = {"numpy": context_numpy, "duckdb": context_duckdb, "polars": context_polars}


def _run_example(root: Path, latency: str) -> Path:
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("build", "out", "__pycache__"))
    if latency != "0ms":
        project = root / "specs" / "project.yaml"
        project.write_text(project.read_text().replace("latency: 0ms", f"latency: {latency}"))
    expect(cli("validate", "--project", root), 0)
    expect(cli("compile", "--project", root), 0)
    expect(cli("run", "--project", root), 0)
    return root


@pytest.fixture(scope="module", params=[("0ms", 0), ("250ms", 250_000_000)], ids=["latency0", "latency250ms"])
def example(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    text, ns = request.param
    return _run_example(tmp_path_factory.mktemp("pretrade") / "pretrade_fills", text), ns


def _written(root: Path, day: str) -> pd.DataFrame:
    return pd.read_parquet(root / "out" / f"features_{day.replace('-', '')}_fills.parquet")


@pytest.mark.parametrize("oracle", list(ORACLES))
@pytest.mark.parametrize("day", DAYS)
def test_market_context_matches_each_oracle(example: tuple[Path, int], oracle: str, day: str) -> None:
    root, latency = example
    fills, trades = load_bundled()
    want = fills_file(ORACLES[oracle](fills, trades, latency), day)
    got = _written(root, day)
    assert list(got.columns[: 1 + len(KEEP)]) == ["ts_event", *KEEP]
    pd.testing.assert_frame_equal(got[["ts_event", *KEEP]], want[["ts_event", *KEEP]], check_dtype=False)
    for name in FEATURES:
        column = f"{name}_tokens"
        np.testing.assert_allclose(got[column], want[column], rtol=1e-12, atol=0, err_msg=f"{column} vs {oracle}")


def test_the_data_has_the_edge_cases(example: tuple[Path, int]) -> None:
    """Guards the comparison: ties, fills before their token's first trade, empty windows, a token with no
    market data are all in the written files."""
    root, _ = example
    got = pd.concat([_written(root, d) for d in DAYS])
    assert got.mt_last_price_tokens.isna().sum() > 24  # the unknown token, and fills before the first trade
    assert (got.mt_trades_60s_tokens == 0).sum() > 100
    assert got.filter(like="_tokens").isna().all(axis=1).sum() == 24  # the token with no market trades


def _labels_at(root: Path) -> pd.DataFrame:
    got = pd.concat([_written(root, d) for d in DAYS], ignore_index=True)
    return got.set_index("event_key")


@pytest.mark.parametrize("day", DAYS)
def test_complete_set_labels(example: tuple[Path, int], day: str) -> None:
    root, latency = example
    fills, _ = load_bundled()
    got = _written(root, day).set_index("event_key")
    member = got.mt_trades_60s_tokens.notna()  # events of a token that is a member (the others are NaN)
    trailing = complete_set_trailing(fills, 10, latency).set_index("event_key").loc[got.index]
    bucket = complete_set_bucket(fills, 10).set_index("event_key").loc[got.index]
    pairs = [
        ("cs_up_shares_10s_tokens", trailing.up_shares),
        ("cs_down_shares_10s_tokens", trailing.down_shares),
        ("complete_set_flag_10s_tokens", trailing.complete_set_flag),
        ("complete_set_shares_10s_tokens", trailing.complete_set_shares),
        ("target_complete_set_flag_10s_tokens", bucket.complete_set_flag),
        ("target_complete_set_shares_10s_tokens", bucket.complete_set_shares),
    ]
    for column, want in pairs:
        np.testing.assert_allclose(got[column][member], want[member], rtol=1e-12, err_msg=column)
        assert got[column][~member].isna().all()
    # the seed's label leaks on this data: it flags fills whose earlier 10 s hold no complete set
    assert (got.target_complete_set_flag_10s_tokens > got.complete_set_flag_10s_tokens)[member].sum() > 0


def test_audit_finds_no_lookahead_and_flags_the_target(example: tuple[Path, int]) -> None:
    root, latency = example
    if latency:
        pytest.skip("one latency is enough for the audit")
    out = expect(cli("audit", "--project", root, "--cuts", "12"), 0)
    assert "violations            0" in out
    assert "never changed" not in out  # the bucket target changes when later fills are cut: it looks ahead
