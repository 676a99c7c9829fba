"""`fspec init DIR` writes a small project that validates, compiles and runs, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from tests.conftest import cli, expect


def test_init_writes_a_project_that_validates_compiles_and_runs(tmp_path: Path) -> None:
    root = tmp_path / "new_project"
    out = expect(cli("init", root), 0)
    assert f"next: cd {root} && fspec validate && fspec compile && fspec run" in out
    for rel in ("specs/project.yaml", "specs/features.yaml", "specs/features.test.yaml", "README.md", ".gitignore"):
        assert (root / rel).is_file() and f"wrote {rel}" in out
    assert expect(cli("validate", "--project", root), 0).startswith("ok: ")
    expect(cli("compile", "--project", root, "--no-jit"), 0)
    listed = json.loads(expect(cli("ls", "--project", root, "--format", "json"), 0))
    ran = expect(cli("run", "--project", root), 0)
    for interval in ("30s", "60s"):
        path = root / "out" / f"features_20240102_{interval}.parquet"
        assert f"wrote out/features_20240102_{interval}.parquet" in ran
        table = pq.read_table(path)
        assert table.column_names[1:] == [r["column"] for r in listed if r["interval"] == interval]
        assert table.num_rows == 6.5 * 3600 / int(interval[:-1])  # one row per bar of the session
        vwap = table.column(f"vwap_{interval}_abc").to_numpy()
        assert (abs(vwap[vwap == vwap] - 100) < 20).all()  # prices of the sample, not garbage
    assert expect(cli("test", "--project", root), 0).endswith("1 passed, 0 failed\n")
    assert {r["feature"] for r in listed} >= {"vwap", "realized_vol", "target_next_return"}
    assert "mid" not in {r["feature"] for r in listed}  # the helper is not written
    tagged = json.loads(expect(cli("ls", "--project", root, "tag:price", "--format", "json"), 0))
    assert {r["feature"] for r in tagged} == {"last_price", "vwap", "vwap_deviation"}


def test_init_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    out = expect(cli("init", tmp_path), 2)
    assert "is not an empty folder" in out and "pick a new folder" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
