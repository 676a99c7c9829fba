"""Selectors (runtime/select.py): names, globs, tags, +NAME, NAME+ and state:modified, one function for run,
audit and ls; and `fspec ls`, the columns a run would write.

The shipped build is the session's ``sample_project`` (compiled and run once); edited copies of its specs are
compiled without JIT (ls and selection read only the manifest)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fspec.compiler.build import compile_project
from fspec.errors import UsageError
from fspec.manifest import Key
from fspec.runtime.grid import column_of
from fspec.runtime.manifest import Manifest, load_manifest
from fspec.runtime.select import columns_by_interval, select
from tests.conftest import FspecProject, cli, expect

INSTRUMENTS = ["mes", "mnq", "qqq", "spy", "vxx"]  # output order within a feature


@pytest.fixture(scope="module")
def shipped(sample_project: FspecProject) -> Manifest:
    return load_manifest(sample_project.root)


def _edited(sample_project: FspecProject, tmp_path: Path, edits: dict[str, list[tuple[str, str]]]) -> Manifest:
    """A copy of the shipped specs with text replacements per file, compiled (no JIT)."""
    root = tmp_path / "edited"
    shutil.copytree(sample_project.root / "specs", root / "specs")
    for name, pairs in edits.items():
        path = root / "specs" / name
        text = path.read_text(encoding="utf-8")
        for old, new in pairs:
            assert text.count(old) == 1, (name, old)
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")
    compile_project(root)
    return load_manifest(root)


def _features(keys: list[Key]) -> set[str]:
    return {name for name, _ in keys}


def test_no_selector_is_every_published_column_in_output_order(sample_project: FspecProject, shipped: Manifest) -> None:
    keys = select(shipped, None)
    assert "mid" not in _features(keys)
    for interval in (1, 30, 60):  # the order the run wrote them in
        written = pq.read_schema(sample_project.root / "out" / f"features_20131007_{interval}s.parquet").names
        at = [k for k in keys if shipped.published_at(shipped.feature(*k), interval)]
        assert [column_of(shipped.feature(*k), k[1], interval) for k in at] == written[1:]


def test_names_globs_and_case(shipped: Manifest) -> None:
    assert select(shipped, ["realized_vol"]) == [("realized_vol", i) for i in INSTRUMENTS]
    assert select(shipped, ["Realized_Vol_SPY"]) == [("realized_vol", "spy")]
    assert select(shipped, ["realized_vol_30s_spy"]) == [("realized_vol", "spy")]
    assert _features(select(shipped, ["ret_lag_*"])) == {f"ret_lag_{k}" for k in (1, 2, 3, 5, 10)}
    assert set(select(shipped, ["*_spy"])) >= {("realized_vol", "spy"), ("vwap", "spy")}
    assert all(i in ("spy", None) for _, i in select(shipped, ["*_spy"]))  # basis_mes_spy is cross-asset
    # a word may hold several terms; words and terms are a union, in the order they are named
    assert select(shipped, ["vwap_spy realized_vol_spy", "vwap_spy"]) == [("vwap", "spy"), ("realized_vol", "spy")]


def test_with_dependencies_and_dependents(shipped: Manifest) -> None:
    # vwap_deviation = (vwap - mid) / mid: + adds the published vwap, not the helper mid
    assert set(select(shipped, ["+vwap_deviation_spy"])) == {("vwap_deviation", "spy"), ("vwap", "spy")}
    down = set(select(shipped, ["vwap_spy+"]))
    assert {("vwap", "spy"), ("vwap_deviation", "spy"), ("basis_mes_spy", None)} <= down
    assert all(k == ("basis_mes_spy", None) or k[1] == "spy" for k in down)
    # a helper is a starting point: what uses mid, without mid
    users = _features(select(shipped, ["mid+"]))
    assert {"vwap_deviation", "resp_mid_5", "log_mid_price"} <= users and "mid" not in users
    chain = _features(select(shipped, ["interval_log_return+"]))
    assert {"ret_lag_1", "ret_lag_10", "target_next_window_return", "lagged_corr_spy_mes_1"} <= chain


def test_a_full_column_name_narrows_the_run_to_its_interval(shipped: Manifest) -> None:
    assert columns_by_interval(shipped, ["realized_vol_30s_spy"]) == {30: [("realized_vol", "spy")]}
    assert columns_by_interval(shipped, ["+vwap_deviation_60s_spy"]) == {
        60: [("vwap", "spy"), ("vwap_deviation", "spy")]
    }
    assert sorted(columns_by_interval(shipped, ["realized_vol_spy"])) == [30, 60]
    assert sorted(columns_by_interval(shipped, ["resp_mid_5_spy"])) == [1]


@pytest.mark.parametrize(
    ("words", "message", "hint"),
    [
        (["vwapp"], "--select vwapp: no feature or column has that name", "did you mean 'vwap'?"),
        (["zz*"], "--select zz*: the pattern matches no feature or column", "e.g. realized_*"),
        (["mid"], "'mid' is a helper (publish: false): it is computed, not written", "mid+"),
        (["tag:volatility"], "no feature has the tag 'volatility'", "tags: [volatility]"),
        (["state:modified"], "needs a previous build to compare with", "--state PATH"),
        (["state:new"], "unknown state selector", "state:modified"),
        (["+"], "--select +: no name", "+vwap_deviation"),
    ],
)
def test_a_selector_that_matches_nothing_is_a_usage_error(
    shipped: Manifest, words: list[str], message: str, hint: str
) -> None:
    with pytest.raises(UsageError) as err:
        select(shipped, words)
    assert message in err.value.message and hint in err.value.hint, err.value.render()


def test_tags_declared_in_specs(sample_project: FspecProject, tmp_path: Path) -> None:
    rv = "  - name: realized_vol\n"
    bv = "  - name: bipower_var\n"
    manifest = _edited(
        sample_project,
        tmp_path,
        {"microstructure.yaml": [(rv, rv + "    tags: [volatility, risk]\n"), (bv, bv + "    tags: [volatility]\n")]},
    )
    assert _features(select(manifest, ["tag:volatility"])) == {"realized_vol", "bipower_var"}
    assert _features(select(manifest, ["tag:risk"])) == {"realized_vol"}
    with pytest.raises(UsageError) as err:
        select(manifest, ["tag:flow"])
    assert err.value.hint == "tags in this build: risk, volatility"


def test_state_modified_compares_resolved_formulas_and_inputs(
    sample_project: FspecProject, shipped: Manifest, tmp_path: Path
) -> None:
    previous = sample_project.root / "build" / "manifest.json"
    assert select(shipped, ["state:modified"], state=previous) == []  # the same build: nothing changed
    manifest = _edited(
        sample_project,
        tmp_path,
        {
            "microstructure.yaml": [
                ("    formula: sum(diff(log(trades.price)))\n", "    formula: sum(diff(log(trades.price))) * 1\n"),
                ("Shares traded in the bar (0", "Shares traded in a bar (0"),  # no change
            ],
            "project.yaml": [
                ("vpin_bucket: 200000", "vpin_bucket: 100000"),  # a parameter one member's kernel slot reads
                ("cost: 0.0001 ", "cost: 0.0002 "),  # a constant one target reads
            ],
            "returns.yaml": [("    expand: {k: [1, 2, 3, 5, 10]}", "    expand: {k: [1, 2, 3, 5, 10, 20]}")],
        },
    )
    changed = set(select(manifest, ["state:modified"], state=previous))
    assert changed == {
        *[("interval_log_return", i) for i in INSTRUMENTS],
        ("vpin", "spy"),
        ("target_next_window_return", "spy"),
        *[("ret_lag_20", i) for i in INSTRUMENTS],  # new in this build
    }
    # a change in what a feature reads is not its own; state:modified+ adds the dependents
    downstream = _features(select(manifest, ["state:modified+"], state=previous))
    assert {"ret_lag_1", "lagged_corr_spy_mes_1"} <= downstream and "volume" not in downstream
    # --state takes the manifest file, the build folder or the project folder
    for where in (previous.parent, sample_project.root):
        assert set(select(manifest, ["state:modified"], state=where)) == changed


def test_state_that_is_not_a_manifest(shipped: Manifest, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no manifest there"):
        select(shipped, ["state:modified"], state=tmp_path / "nothing")
    (tmp_path / "manifest.json").write_text("{}", encoding="utf-8")
    out = expect(cli("ls", "--project", shipped.root, "state:modified", "--state", tmp_path), 1)
    assert "was written by another fspec version" in out


def test_ls_lists_what_a_run_writes(sample_project: FspecProject) -> None:
    out = expect(cli("ls", "--project", sample_project.root), 0)
    lines = out.splitlines()
    assert lines[0].split() == ["column", "feature", "instrument", "interval", "spec"]
    rows = {line.split()[0]: line.split() for line in lines[1:-1]}
    assert rows["realized_vol_30s_spy"] == [
        "realized_vol_30s_spy",
        "realized_vol",
        "spy",
        "30s",
        rows["realized_vol_30s_spy"][-1],
    ]
    assert rows["realized_vol_30s_spy"][-1].startswith("specs/microstructure.yaml:")
    assert "mid_30s_spy" not in rows  # a helper is not written
    written = sum(len(pq.read_schema(p).names) - 1 for p in sorted((sample_project.root / "out").glob("*.parquet")))
    assert lines[-1].startswith(f"{written} column(s) of ")  # as many as the run wrote


def test_ls_with_selectors_and_json(sample_project: FspecProject) -> None:
    out = expect(cli("ls", "--project", sample_project.root, "+vwap_deviation_30s_spy", "--format", "json"), 0)
    rows = json.loads(out)
    assert [(r["column"], r["feature"], r["instrument"], r["interval"]) for r in rows] == [
        ("vwap_30s_spy", "vwap", "spy", "30s"),
        ("vwap_deviation_30s_spy", "vwap_deviation", "spy", "30s"),
    ]
    vpin = expect(cli("ls", "--project", sample_project.root, "vpin_spy"), 0)
    assert "30s (volume clock)" in vpin and "60s (volume clock)" in vpin
    assert "no feature or column" in expect(cli("ls", "--project", sample_project.root, "nope"), 2)


def test_run_and_audit_take_the_same_selectors(sample_project: FspecProject, tmp_path: Path) -> None:
    root = sample_project.root
    out = tmp_path / "subset"
    expect(cli("run", "--project", root, "--select", "realized_* +vwap_deviation_60s_spy", "--out", out), 0)
    for interval in (30, 60):
        names = pq.read_schema(out / f"features_20131007_{interval}s.parquet").names
        full = pq.read_schema(root / "out" / f"features_20131007_{interval}s.parquet").names
        expected = [n for n in full if n.startswith(f"realized_vol_{interval}s_")]
        expected += [f"vwap_{interval}s_spy", f"vwap_deviation_{interval}s_spy"]
        assert sorted(names) == sorted(["ts_event", *expected])
    assert not (out / "features_20131007_1s.parquet").exists()
    audited = expect(cli("audit", "--project", root, "--cuts", "2", "--select", "vwap_spy+"), 0)
    assert "features checked      3" in audited  # vwap_spy, vwap_deviation_spy, basis_mes_spy
    unchanged = expect(
        cli("run", "--project", root, "--select", "state:modified", "--state", root / "build", "--out", tmp_path / "n"),
        0,
    )
    assert "nothing to write: the selection holds no column" in unchanged
    assert not (tmp_path / "n").exists() or not list((tmp_path / "n").iterdir())
