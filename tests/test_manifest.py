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
