"""The manifest is typed and versioned: what compile writes is what run reads, and nothing else runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fspec.grain import EntityKind, Grain, Time, tick
from fspec.manifest import MANIFEST_VERSION, ManifestData
from fspec.runtime.manifest import load_manifest
from tests.conftest import FspecProject, cli, expect


def _copy(project: FspecProject, tmp_path: Path) -> Path:
    root = tmp_path / "p"
    shutil.copytree(project.root / "specs", root / "specs")
    shutil.copytree(project.root / "build", root / "build")
    (root / "data").symlink_to((project.root / "data").resolve())
    return root


def test_manifest_round_trips_through_its_types(sample_project: FspecProject) -> None:
    raw = json.loads((sample_project.root / "build" / "manifest.json").read_text())
    data = ManifestData.from_json(raw)
    assert data.manifest_version == MANIFEST_VERSION
    assert ManifestData.from_json(data.to_json()) == data
    assert json.loads(json.dumps(data.to_json(), sort_keys=True)) == raw
    assert {f.entity for f in data.features} == {EntityKind.INSTRUMENT}


def test_grains_in_the_manifest_are_typed(sample_project: FspecProject) -> None:
    manifest = load_manifest(sample_project.root)
    grains = set()

    def walk(node: dict) -> None:
        if "grain" in node:
            grains.add(Grain.from_json(node["grain"]))
        for arg in node.get("args", []):
            walk(arg)

    for feature in manifest.features:
        walk(feature.tree)
    assert Grain(Time.BAR) in grains
    assert tick("trades", "spy") == Grain.from_json(tick("trades", "spy").to_json())


def test_an_edited_kernel_file_is_refused(sample_project: FspecProject, tmp_path: Path) -> None:
    root = _copy(sample_project, tmp_path)
    kernel = next((root / "build" / "kernels").glob("*.py"))
    kernel.write_text(kernel.read_text() + "\nimport os  # not what compile wrote\n")
    out = expect(cli("run", "--project", root), 1)
    assert f"kernel file build/kernels/{kernel.name} is not the file 'fspec compile' wrote" in out
    assert "fspec compile" in out


def test_a_manifest_of_another_version_is_refused(sample_project: FspecProject, tmp_path: Path) -> None:
    root = _copy(sample_project, tmp_path)
    path = root / "build" / "manifest.json"
    raw = json.loads(path.read_text())
    raw["manifest_version"] = MANIFEST_VERSION - 1
    path.write_text(json.dumps(raw))
    assert "written by another fspec version" in expect(cli("run", "--project", root), 1)
    raw["manifest_version"] = MANIFEST_VERSION
    del raw["features"][0]["tree"]
    path.write_text(json.dumps(raw))
    assert "build/manifest.json is damaged" in expect(cli("run", "--project", root), 1)


def _grouped_project(root: Path, n: int) -> Path:
    import numpy as np
    import pandas as pd

    from tests.conftest import make_project

    names = [f"s{i}" for i in range(n)]
    project = "\n".join(
        [
            "spec_version: 1",
            "sources:",
            "  trades: {path: 'data/{symbol}_{date}.parquet', time: {column: ts, unit: ns}, "
            "columns: {price: float64, size: float64}}",
            "instruments:",
            *(f"  {s}: {{symbol: {s}, params: {{scale: {i + 1}}}}}" for i, s in enumerate(names)),
            "intervals: [60s]",
            "session: {timezone: UTC, open: '00:00', close: '01:00'}",
        ]
    )
    features = """\
spec_version: 1
features:
  - name: volume
    formula: sum(trades.size)
  - name: scaled_volume
    formula: volume * scale
  - name: volume_mean
    formula: rolling_mean(scaled_volume, 3)
  - name: vol_ratio_s0_s1
    formula: s0.volume / s1.volume
"""
    rng = np.random.default_rng(7)
    data = {}
    for i, s in enumerate(names):
        ts = pd.Timestamp("2024-01-02", tz="UTC").value + np.sort(rng.integers(0, 3600 * 10**9, 50 + i))
        data[f"data/{s}_20240102.parquet"] = pd.DataFrame({"ts": ts, "price": 1.0 + i, "size": rng.random(50 + i)})
    make_project(root, {"project.yaml": project, "features.yaml": features}, data)
    return root


def test_features_compile_once_for_all_instruments(tmp_path: Path) -> None:
    """The manifest holds one compiled feature per formula, whatever the number of instruments, and every
    member's column equals the same formula computed for that instrument alone."""
    import pandas as pd

    from fspec.compiler.build import compile_project

    sizes = {}
    for n in (3, 30):
        root = _grouped_project(tmp_path / f"n{n}", n)
        compile_project(root)
        manifest = load_manifest(root)
        assert [f.name for f in manifest.features if f.members] == ["volume", "scaled_volume", "volume_mean"]
        assert all(len(f.members) == n for f in manifest.features if f.members)
        sizes[n] = sum(len(json.dumps(f.to_json()["tree"])) for f in manifest.features)
        expect(cli("run", "--project", root), 0)
    assert sizes[3] == sizes[30]  # trees do not grow with the instruments
    out = pd.read_parquet(tmp_path / "n30" / "out" / "features_20240102_60s.parquet")
    # columns in natural order of their instruments: s2 before s10
    volume = [c for c in out.columns if c.startswith("volume_60s_")]
    assert volume[:3] == ["volume_60s_s0", "volume_60s_s1", "volume_60s_s2"] and volume[10] == "volume_60s_s10"
    for i in (0, 7, 29):
        # the per-member parameter reaches its own row
        pd.testing.assert_series_equal(
            out[f"scaled_volume_60s_s{i}"], out[f"volume_60s_s{i}"] * (i + 1), check_names=False
        )
        want = (out[f"volume_60s_s{i}"] * (i + 1)).rolling(3).mean()
        pd.testing.assert_series_equal(out[f"volume_mean_60s_s{i}"], want, check_names=False, rtol=1e-15)
    ratio = out["volume_60s_s0"] / out["volume_60s_s1"]
    pd.testing.assert_series_equal(out["vol_ratio_s0_s1_60s"], ratio, check_names=False)
