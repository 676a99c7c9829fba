"""Output safety: a day's files are written all or none, leftovers of a killed run are removed, and a run of a
subset (--select) never replaces a file that holds more columns."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fspec.runtime import write as write_module
from fspec.runtime.manifest import load_manifest
from fspec.runtime.run import RunOptions, run
from tests.conftest import FspecProject, cli, expect


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def project(sample_project: FspecProject, tmp_path: Path) -> Path:
    """The compiled sample project with its outputs, in a folder of its own."""
    root = tmp_path / "p"
    for name in ("specs", "build", "out"):
        shutil.copytree(sample_project.root / name, root / name)
    (root / "data").symlink_to((sample_project.root / "data").resolve())
    return root


def test_select_never_replaces_a_fuller_file(project: Path) -> None:
    target = project / "out" / "features_20131007_30s.parquet"
    before = _digest(target)
    out = expect(cli("run", "--project", project, "--interval", "30s", "--select", "volume"), 2)  # a usage error
    assert "features_20131007_30s.parquet holds" in out and "--out" in out
    assert _digest(target) == before
    elsewhere = project / "subset"
    expect(cli("run", "--project", project, "--interval", "30s", "--select", "volume", "--out", elsewhere), 0)
    names = pq.read_schema(elsewhere / "features_20131007_30s.parquet").names
    assert names[0] == "ts_event" and all(n.startswith("volume_30s_") for n in names[1:])
    # the same subset again over its own file is fine: nothing would be lost
    expect(cli("run", "--project", project, "--interval", "30s", "--select", "volume", "--out", elsewhere), 0)


def test_a_day_is_written_all_or_none(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the second of a day's files cannot be written, the first is not renamed into place either."""
    out = project / "out"
    before = {p.name: _digest(p) for p in out.glob("*.parquet")}
    real = write_module.pq.write_table
    calls: list[str] = []

    def failing(table, where, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(str(where))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(table, where, **kwargs)

    monkeypatch.setattr(write_module.pq, "write_table", failing)
    from fspec.errors import OutputError

    with pytest.raises(OutputError, match="No space left on device"):
        run(load_manifest(project), RunOptions(intervals=[30, 60], output_dir=out))
    assert len(calls) == 2
    assert {p.name: _digest(p) for p in out.glob("*.parquet")} == before
    assert not list(out.glob(".features_*"))  # no temp file left behind


def test_leftovers_of_a_killed_run_are_removed(project: Path) -> None:
    out = project / "out"
    leftover = out / ".features_20131007_30s.parquet.abc123.tmp"
    leftover.write_bytes(b"PAR1 half a file")
    result = cli("run", "--project", project, "--interval", "30s")
    expect(result, 0)
    assert not leftover.exists()


def test_sigkill_during_a_run_leaves_whole_files_only(project: Path) -> None:
    """A run killed at any moment leaves each output either as it was or complete, and the next run cleans up."""
    out = project / "out"
    shutil.rmtree(out)
    command = [sys.executable, "-m", "fspec.cli", "run", "--project", str(project)]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out.exists() and any(out.iterdir())):
        time.sleep(0.005)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    for path in out.glob("*.parquet"):
        pq.read_table(path)  # every file in place is complete
    expect(cli("run", "--project", project), 0)
    assert not list(out.glob(".features_*"))
    assert len(list(out.glob("*.parquet"))) == 3


def test_two_writers_never_leave_a_later_day_after_a_failed_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Day 1 writes slowly, day 2 fails at once: day 3 (written beside them) is not renamed into place, and
    the error raised is day 2's, before day 4 is even submitted."""
    import time

    import fspec.runtime.write as write

    def fake_write_day(manifest, results, keys, out_dir, layouts=None, before_rename=None):  # type: ignore[no-untyped-def]
        day = results[0]
        if day == "d1":
            time.sleep(0.5)
        if day == "d2":
            raise write.OutputError("out/d2", "cannot write output: No space left on device", "")
        if before_rename is not None:
            before_rename()
        path = out_dir / f"{day}.parquet"
        path.write_text("x")
        return [path]

    monkeypatch.setattr(write, "write_day", fake_write_day)
    writer = write.DayWriter(None, {}, tmp_path, writers=2)  # type: ignore[arg-type]
    submitted = []
    with pytest.raises(write.OutputError, match="No space left"):
        for day in ("d1", "d2", "d3", "d4", "d5"):
            writer.submit([day])  # type: ignore[list-item]
            submitted.append(day)
            time.sleep(0.05)  # the engine computing the next day
        writer.close()
    writer.abandon()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d1.parquet"]
    assert "d5" not in submitted
