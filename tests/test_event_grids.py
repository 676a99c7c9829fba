"""Event grids: one output row per event, reads strictly before each event's cut (DESIGN.md section 6, Grids).

Small hand-built projects whose every value is written out or computed here with numpy searchsorted (strict
edges), apart from the kernels; bad input gives validate errors at the spec line, and dirty events data
(unsorted, unknown instruments) a warning and a defined result. The bundled example against three independent
oracles is tests/test_pretrade_fills.py.
"""

from __future__ import annotations

import json
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from fspec.cli import main
from fspec.compiler.build import check, compile_project
from fspec.runtime.manifest import load_manifest
from fspec.runtime.run import RunOptions, run

T0 = pd.Timestamp("2025-12-14 12:00:00", tz="UTC").value
S = 1_000_000_000

PROJECT = """\
spec_version: 1
sources:
  trades: {{path: data/trades.parquet, symbol: token_id, time: ts, kind: events,
           columns: {{price: float64, size: float64}}}}
  fills: {{path: data/fills.parquet, time: ts, kind: events, columns: {{price: float64, size: float64}}}}
universes:
  tokens: {{from: trades, suffix: "t{{symbol}}"}}
grids:
  fills:
    events: fills
    instrument: token_id
    universe: tokens
    latency: {latency}
    keep: [event_key, token_id]
session: {{timezone: UTC, open: "00:00", close: "24:00", trading_days_per_year: 365}}
"""

FEATURES = """\
spec_version: 1
features:
  - name: last_px
    grid: fills
    formula: asof(trades.price)
  - name: last_age
    grid: fills
    formula: age(trades.price)
  - name: px_10s_ago
    grid: fills
    formula: asof(trades.price, ago=10s)
  - name: n_10s
    grid: fills
    formula: count(trades.price, window=10s)
  - name: vol_10s
    grid: fills
    formula: sum(trades.size, window=10s)
  - name: vwap_10s
    grid: fills
    formula: wmean(trades.price, trades.size, window=10s)
  - name: hi_10s
    grid: fills
    formula: max(trades.price, window=10s)
  - name: edge
    grid: fills
    formula: fills.price - last_px
"""


def _project(
    root: Path, trades: pd.DataFrame, fills: pd.DataFrame, latency: str = "0ms", features: str = FEATURES
) -> Path:
    (root / "specs").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "specs" / "project.yaml").write_text(PROJECT.format(latency=latency))
    (root / "specs" / "features.yaml").write_text(features)
    for name, frame in (("trades", trades), ("fills", fills)):
        frame = frame.assign(ts=pd.to_datetime(frame["ts"], utc=True))
        frame.to_parquet(root / "data" / f"{name}.parquet", index=False)
    return root


def _run(root: Path) -> pd.DataFrame:
    compile_project(root)
    written = run(load_manifest(root), RunOptions())
    return pd.concat([pd.read_parquet(p) for p in sorted(written)], ignore_index=True)


def _trades() -> pd.DataFrame:
    # token a: trades at 0, 1, 5 (NaN price), 10, 12 s; token b: one trade at 3 s
    return pd.DataFrame(
        {
            "ts": [T0, T0 + 1 * S, T0 + 3 * S, T0 + 5 * S, T0 + 10 * S, T0 + 12 * S],
            "token_id": ["a", "a", "b", "a", "a", "a"],
            "price": [0.50, 0.52, 0.70, np.nan, 0.55, 0.58],
            "size": [10.0, 20.0, 5.0, 7.0, 30.0, 40.0],
        }
    )


def _fills() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": [T0 - 5 * S, T0 + 10 * S, T0 + 11 * S, T0 + 4 * S, T0 + 30 * S],
            "token_id": ["a", "a", "a", "b", "zzz"],
            "event_key": ["before_first", "tie", "after", "other_token", "unknown"],
            "price": [0.4, 0.6, 0.6, 0.7, 0.5],
            "size": [1.0, 1.0, 1.0, 1.0, 1.0],
        }
    ).sort_values("ts", kind="stable")


def test_hand_checked_values_strictly_before_the_event(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = _run(_project(tmp_path, _trades(), _fills())).set_index("event_key")
    assert [str(w.message) for w in caught if "name no instrument" in str(w.message)], "unknown token is warned"
    assert list(got.index) == ["before_first", "other_token", "tie", "after", "unknown"]  # time order
    row = got.loc["before_first"]  # before the token's first trade
    assert np.isnan(row.last_px_tokens) and np.isnan(row.last_age_tokens)
    assert row.n_10s_tokens == 0 and row.vol_10s_tokens == 0 and np.isnan(row.vwap_10s_tokens)
    row = got.loc["tie"]  # at 10 s exactly: the trade at 10 s is not seen; window [0 s, 10 s)
    assert row.last_px_tokens == 0.52  # 5 s has a NaN price: skipped
    assert row.last_age_tokens == pytest.approx(9.0)
    assert np.isnan(row.px_10s_ago_tokens)  # strictly before 0 s: the trade at 0 s itself is not seen
    assert row.n_10s_tokens == 2  # 0 s, 1 s (5 s has no price)
    assert row.vol_10s_tokens == 10 + 20 + 7  # sizes of 0 s, 1 s, 5 s
    assert row.vwap_10s_tokens == pytest.approx((0.5 * 10 + 0.52 * 20) / 30)
    assert row.hi_10s_tokens == 0.52
    assert row.edge_tokens == pytest.approx(0.6 - 0.52)
    row = got.loc["after"]  # at 11 s: window [1 s, 11 s) holds 1, 5, 10 s
    assert row.last_px_tokens == 0.55 and row.last_age_tokens == pytest.approx(1.0)
    assert row.px_10s_ago_tokens == 0.50  # before 1 s
    assert row.n_10s_tokens == 2 and row.vol_10s_tokens == 20 + 7 + 30
    row = got.loc["other_token"]  # reads token b's trades only
    assert row.last_px_tokens == 0.70 and row.n_10s_tokens == 1
    row = got.loc["unknown"]  # no such member: every feature NaN
    assert got.filter(like="_tokens").loc["unknown"].isna().all()


def test_file_layout_and_metadata(tmp_path: Path) -> None:
    root = _project(tmp_path, _trades(), _fills())
    compile_project(root)
    written = run(load_manifest(root), RunOptions())
    assert [p.name for p in written] == ["features_20251214_fills.parquet"]
    table = pq.read_table(written[0])
    assert table.column_names[:3] == ["ts_event", "event_key", "token_id"]  # then the features, in spec order
    assert table.column_names[3:] == [
        f"{n}_tokens" for n in ("last_px", "last_age", "px_10s_ago", "n_10s", "vol_10s", "vwap_10s", "hi_10s", "edge")
    ]
    assert str(table.schema.field("ts_event").type) == "timestamp[ns, tz=UTC]"
    assert (
        table.schema.field("event_key").type
        == pq.read_table(root / "data/fills.parquet").schema.field("event_key").type
    )  # kept columns unchanged
    meta = json.loads(table.schema.metadata[b"fspec"])
    assert meta["grid"] == "fills" and meta["latency_seconds"] == 0
    assert meta["columns"]["px_10s_ago_tokens"]["feature"] == "px_10s_ago"  # a window in the name parses back
    assert meta["features"]["vol_10s"]["lookback_seconds"] == 10
    assert meta["columns"]["edge_tokens"]["lineage"] == [["last_px", "tokens"]]


def _oracle(trades: pd.DataFrame, fills: pd.DataFrame, latency_ns: int) -> pd.DataFrame:
    """numpy searchsorted with strict edges, per token, written apart from the kernels."""
    rows = []
    for _, f in fills.iterrows():
        m = trades[trades.token_id == f.token_id]
        ts = m.ts.to_numpy(np.int64)
        priced = m[~m.price.isna()]
        pts = priced.ts.to_numpy(np.int64)
        cut = int(f.ts) - latency_ns
        i = np.searchsorted(pts, cut, side="left") - 1
        lo, hi = np.searchsorted(ts, [cut - 10 * S, cut], side="left")
        rows.append(
            {
                "last_px": priced.price.iloc[i] if i >= 0 else np.nan,
                "vol_10s": m["size"].iloc[lo:hi].sum(),
            }
        )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("latency_ms", [0, 250, 1000])
def test_latency_moves_the_cut(tmp_path: Path, latency_ms: int) -> None:
    rng = np.random.default_rng(latency_ms)
    n = 400
    trades = pd.DataFrame(
        {
            "ts": np.sort(T0 + rng.integers(0, 120, n) * S // 4),  # quarter seconds: ties with fills
            "token_id": rng.choice(["a", "b"], n),
            "price": rng.uniform(0.3, 0.7, n).round(2),
            "size": rng.uniform(1, 9, n).round(1),
        }
    )
    fills = pd.DataFrame(
        {
            "ts": np.sort(T0 + rng.integers(0, 40, 60) * S),
            "token_id": rng.choice(["a", "b"], 60),
            "event_key": [f"k{i}" for i in range(60)],
            "price": 0.5,
            "size": 1.0,
        }
    )
    got = _run(_project(tmp_path, trades, fills, latency=f"{latency_ms}ms"))
    want = _oracle(trades, fills, latency_ms * 1_000_000)
    np.testing.assert_allclose(got.last_px_tokens, want.last_px, rtol=0, atol=0)
    np.testing.assert_allclose(got.vol_10s_tokens, want.vol_10s, rtol=1e-12)


def test_unsorted_events_are_sorted_stably_with_a_warning(tmp_path: Path) -> None:
    fills = _fills()
    shuffled = pd.concat([fills.iloc[[3, 0, 2]], fills.iloc[[1, 4]]])
    tied = shuffled.assign(ts=[T0 + 10 * S, T0 - 5 * S, T0 + 10 * S, T0 + 10 * S, T0 + 30 * S])
    with pytest.warns(UserWarning, match="not in time order"):
        got = _run(_project(tmp_path, _trades(), tied))
    # time order; the three events of 10 s keep their file order
    assert list(got.event_key) == ["before_first", "after", "tie", "other_token", "unknown"]


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("sum(trades.size)", "needs a window in time"),
        ("sum(trades.size, window=10)", None),  # a bare number is seconds: allowed
        ("sum(trades.size, window=0s)", "'window' must be positive"),
        ("asof(trades.price, ago=x)", "'ago' must be a duration"),
        ("rolling_mean(asof(trades.price), 5)", "an event grid has no bars"),
        ("trades.price", "needs a read of its rows before the event"),
        ("sum(diff(trades.price), window=10s)", "state operator inside an event window"),
        ("sum(trades.size, window=2d)", None),
        ("asof(trades.price, window=10s)", "has no parameter 'window'"),
        ("sum(trades.size, window=25h)", "at most 24h"),
    ],
)
def test_formula_errors_name_the_line(tmp_path: Path, formula: str, message: str | None) -> None:
    features = f'spec_version: 1\nfeatures:\n  - name: f\n    grid: fills\n    formula: "{formula}"\n'
    root = _project(tmp_path, _trades(), _fills(), features=features)
    problems = check(root).diagnostics
    if message is None:
        if formula.endswith("2d)"):
            assert problems  # 2d is no duration the formula language knows
        else:
            assert not problems, [p.render() for p in problems]
        return
    assert problems, f"{formula} should fail"
    text = "\n".join(p.render() for p in problems)
    assert message in text and "specs/features.yaml:5" in text


def test_asof_on_bars_is_refused(tmp_path: Path) -> None:
    features = "spec_version: 1\nfeatures:\n  - name: f\n    formula: asof(trades.price)\n"
    root = _project(tmp_path, _trades(), _fills(), features=features)
    (root / "specs" / "project.yaml").write_text(PROJECT.format(latency="0ms") + "intervals: [10s]\n")
    text = "\n".join(p.render() for p in check(root).diagnostics)
    assert "for features of an event grid" in text


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"latency": "-5ms"}, "below zero"),
        ({"events": "nope"}, "unknown events source 'nope'"),
        ({"universe": "trades"}, "'trades' is not a universe"),
        ({"latency": "soon"}, "latency"),
        ({"keep": ["ts_event"]}, "'ts_event' is the output's own time column"),
    ],
)
def test_grid_errors(tmp_path: Path, edit: dict[str, object], message: str) -> None:
    import yaml

    root = _project(tmp_path, _trades(), _fills())
    spec = yaml.safe_load((root / "specs" / "project.yaml").read_text())
    spec["grids"]["fills"].update(edit)
    (root / "specs" / "project.yaml").write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(main, ["validate", "--project", str(root)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert message in result.output and "specs/project.yaml:" in result.output


def test_feature_on_an_unknown_grid_and_bar_keys(tmp_path: Path) -> None:
    features = textwrap.dedent(
        """\
        spec_version: 1
        features:
          - name: f
            grid: filz
            formula: asof(trades.price)
          - name: g
            grid: fills
            instruments: [tokens]
            formula: asof(trades.price)
        """
    )
    root = _project(tmp_path, _trades(), _fills(), features=features)
    text = "\n".join(p.render() for p in check(root).diagnostics)
    assert "grid 'filz', which is not defined" in text and "did you mean 'fills'" in text
    assert "gives 'instruments'" in text


OWN = """\
spec_version: 1
sources:
  trades: {path: data/trades.parquet, symbol: token_id, time: ts, kind: events,
           columns: {price: float64, size: float64}}
  fills:
    path: data/fills.parquet
    time: ts
    kind: events
    columns:
      price: float64
      size: float64
      buy_up: {expr: "where(side == 'BUY' and outcome == 'Up', size, 0)"}
      buy_down: {expr: "where(side == 'BUY' and outcome == 'Down', size, 0)"}
universes:
  tokens: {from: trades, suffix: "t{symbol}"}
grids:
  fills: {events: fills, instrument: token_id, universe: tokens, keep: [event_key]}
session: {timezone: UTC, open: "00:00", close: "24:00", trading_days_per_year: 365}
"""

OWN_FEATURES = """\
spec_version: 1
features:
  - name: up_10s
    grid: fills
    formula: sum(fills.buy_up, window=10s, by=market_slug)
  - name: down_10s
    grid: fills
    formula: sum(fills.buy_down, window=10s, by=market_slug)
  - name: complete_set_10s
    grid: fills
    formula: (up_10s > 0) * (down_10s > 0)
  - name: prev_own_price
    grid: fills
    formula: asof(fills.price)
targets:
  - name: target_complete_set_10s
    grid: fills
    formula: (sum(fills.buy_up, bucket=10s, by=market_slug) > 0) * (sum(fills.buy_down, bucket=10s, by=market_slug) > 0)
"""


def _own_project(root: Path, seed: int = 0) -> tuple[Path, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n = 300
    token = rng.choice(["u1", "d1", "u2", "d2"], n)
    fills = pd.DataFrame(
        {
            "ts": np.sort(T0 + rng.integers(0, 200, n) * S),  # whole seconds: many ties
            "token_id": token,
            "market_slug": np.where(np.isin(token, ["u1", "d1"]), "m1", "m2"),
            "outcome": np.where(np.char.startswith(token.astype(str), "u"), "Up", "Down"),
            "side": rng.choice(["BUY", "BUY", "SELL"], n),
            "event_key": [f"k{i}" for i in range(n)],
            "price": rng.uniform(0.3, 0.7, n).round(2),
            "size": rng.uniform(1, 9, n).round(1),
        }
    )
    trades = pd.DataFrame({"ts": [T0], "token_id": ["u1"], "price": [0.5], "size": [1.0]})
    trades = pd.concat([trades.assign(token_id=t) for t in ["u1", "d1", "u2", "d2"]])
    _project(root, trades, fills, features=OWN_FEATURES)
    (root / "specs" / "project.yaml").write_text(OWN)
    return root, fills


def test_windows_over_own_earlier_events_by_a_key(tmp_path: Path) -> None:
    root, fills = _own_project(tmp_path)
    got = _run(root)
    t = fills.ts.to_numpy(np.int64)
    up = np.where((fills.side == "BUY") & (fills.outcome == "Up"), fills["size"], 0.0)
    down = np.where((fills.side == "BUY") & (fills.outcome == "Down"), fills["size"], 0.0)
    for i in range(len(fills)):
        same = fills.market_slug.to_numpy() == fills.market_slug.iloc[i]
        earlier = same & (t >= t[i] - 10 * S) & (t < t[i])  # fills of the same second are not earlier
        bucket = same & (t // (10 * S) == t[i] // (10 * S))  # the seed's label: the whole bucket
        own = (fills.token_id.to_numpy() == fills.token_id.iloc[i]) & (t < t[i])
        assert got.up_10s_tokens[i] == pytest.approx(up[earlier].sum())
        assert got.down_10s_tokens[i] == pytest.approx(down[earlier].sum())
        assert got.complete_set_10s_tokens[i] == float(up[earlier].sum() > 0 and down[earlier].sum() > 0)
        assert got.target_complete_set_10s_tokens[i] == float(up[bucket].sum() > 0 and down[bucket].sum() > 0)
        want = fills.price[own].iloc[-1] if own.any() else np.nan
        np.testing.assert_equal(got.prev_own_price_tokens[i], want)
    # the leak is real on this data: the bucket label flags more fills than the strictly-before one
    assert got.target_complete_set_10s_tokens.sum() > got.complete_set_10s_tokens.sum()


def test_a_bucket_is_lookahead_in_a_feature(tmp_path: Path) -> None:
    root, _ = _own_project(tmp_path)
    leak = "spec_version: 1\nfeatures:\n  - name: leak\n    grid: fills\n    formula: sum(fills.buy_up, bucket=10s)\n"
    (root / "specs" / "features.yaml").write_text(leak)
    text = "\n".join(p.render() for p in check(root).diagnostics)
    assert "lookahead" in text and "window=10s" in text and "specs/features.yaml:5" in text


def test_audit_cuts_at_event_times(tmp_path: Path) -> None:
    from fspec.runtime.audit import audit

    root, _ = _own_project(tmp_path)
    compile_project(root)
    report = audit(load_manifest(root), cuts=40, seed=3)
    assert report.ok, report.render()
    assert report.features == 4 and report.targets == 1 and report.rows_compared > 0
    assert not report.static_targets  # the bucket label changes when later fills are cut away: it looks ahead


def test_event_operators_match_their_references(tmp_path: Path) -> None:
    """Every event operator's examples, run on a grid, against the operator's own reference (numpy
    searchsorted, written apart from the kernel code): iterates the registry, so a new one is covered here."""
    import re

    from fspec.operators import EVENT, REGISTRY

    examples = [(op.name, f) for op in REGISTRY.values() if op.kind == EVENT for f in op.examples]
    assert {name for name, _ in examples} == {n for n, op in REGISTRY.items() if op.kind == EVENT}
    lines = ["spec_version: 1", "features:"]
    for j, (_, formula) in enumerate(examples):
        lines += [f"  - name: ex_{j}", "    grid: fills", f'    formula: "{formula}"']
    rng = np.random.default_rng(7)
    n = 500
    trades = pd.DataFrame(
        {
            "ts": np.sort(T0 + rng.integers(0, 300, n) * S // 2),
            "token_id": rng.choice(["a", "b"], n),
            "price": np.where(rng.random(n) < 0.1, np.nan, rng.uniform(0.3, 0.7, n).round(2)),
            "size": rng.uniform(1, 9, n).round(1),
        }
    )
    fills = pd.DataFrame(
        {
            "ts": np.sort(T0 + rng.integers(-20, 200, 80) * S),
            "token_id": rng.choice(["a", "b"], 80),
            "event_key": [f"k{i}" for i in range(80)],
            "price": 0.5,
            "size": 1.0,
        }
    )
    got = _run(_project(tmp_path, trades, fills, features="\n".join(lines) + "\n"))
    for j, (name, formula) in enumerate(examples):
        ago = re.search(r"ago=(\d+)s", formula)
        shift = int(ago.group(1)) * S if ago else 0
        want = np.full(len(fills), np.nan)
        for token in ("a", "b"):
            mine = (fills.token_id == token).to_numpy()
            m = trades[trades.token_id == token]
            event_t = fills.ts.to_numpy(np.int64)[mine]
            want[mine] = REGISTRY[name].reference(m.ts.to_numpy(np.int64), m.price.to_numpy(), event_t, event_t - shift)
        np.testing.assert_allclose(got[f"ex_{j}_tokens"], want, rtol=1e-15, err_msg=formula)


def test_ls_explain_and_validate_data_know_grids(tmp_path: Path) -> None:
    root = _project(tmp_path, _trades(), _fills())
    compile_project(root)
    listed = CliRunner().invoke(main, ["ls", "--project", str(root)])
    assert listed.exit_code == 0, listed.output
    assert "px_10s_ago_tokens" in listed.output and "fills" in listed.output
    shown = CliRunner().invoke(main, ["explain", "--project", str(root), "vol_10s_tokens"])
    assert shown.exit_code == 0, shown.output
    assert "grid:        fills" in shown.output and "no row at or after the cut" in shown.output
    assert "sum(trades.size, window=10s)" in shown.output
    project = root / "specs" / "project.yaml"
    project.write_text(project.read_text().replace("keep: [event_key, token_id]", "keep: [event_kee, token_id]"))
    checked = CliRunner().invoke(main, ["validate", "--project", str(root), "--data"])
    assert checked.exit_code == 1 and "column 'event_kee' is not in data/fills.parquet" in checked.output
    assert "did you mean 'event_key'" in checked.output


def test_keep_of_a_computed_column_is_refused_by_validate(tmp_path: Path) -> None:
    """keep: passes the file's own columns through; a computed column passed validate and failed the run."""
    root, _ = _own_project(tmp_path)
    project = root / "specs" / "project.yaml"
    project.write_text(project.read_text().replace("keep: [event_key]", "keep: [event_key, buy_up]"))
    text = "\n".join(p.render() for p in check(root).diagnostics)
    assert "'buy_up' is a computed column of 'fills'" in text and "specs/project.yaml:" in text


@pytest.mark.parametrize(
    ("features", "message"),
    [
        (
            "  - name: a\n    grid: fills\n    formula: b + asof(trades.price)\n"
            "  - name: b\n    grid: fills\n    formula: a * 2\n",
            "read each other in a cycle",
        ),
        ("  - name: a\n    grid: fills\n    formula: 2 * pi\n", "reads nothing of the events"),
        ("  - name: a\n    grid: fills\n    formula: a + asof(trades.price)\n", "refers to itself"),
    ],
)
def test_grid_feature_graph_errors(tmp_path: Path, features: str, message: str) -> None:
    root = _project(tmp_path, _trades(), _fills(), features="spec_version: 1\nfeatures:\n" + features)
    result = CliRunner().invoke(main, ["validate", "--project", str(root)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert message in result.output and "specs/features.yaml:" in result.output
