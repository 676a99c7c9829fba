"""The dynamic lookahead proof: `fspec audit` passes on the shipped specs and catches a leaky kernel."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fspec.cli import main
from fspec.compiler.build import compile_project
from fspec.runtime.audit import audit
from fspec.runtime.manifest import load_manifest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("audit")
    shutil.copytree(REPO / "specs", root / "specs")
    shutil.copytree(REPO / "data" / "sample", root / "data" / "sample")
    compile_project(root)
    return root


def test_shipped_specs_pass_the_audit(project: Path) -> None:
    result = CliRunner().invoke(main, ["audit", "--project", str(project), "--cuts", "12", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "violations            0" in result.output
    report = audit(load_manifest(project), cuts=12, seed=3)
    assert report.rows_compared > 10_000
    assert report.features > 20
    # the forward-return target reads the next bar, so some cut must change it
    assert report.static_targets == []


def test_a_kernel_that_reads_the_next_tick_is_caught(project: Path, tmp_path: Path) -> None:
    leaky = tmp_path / "leaky"
    shutil.copytree(project / "specs", leaky / "specs")
    shutil.copytree(project / "data", leaky / "data")
    compile_project(leaky)
    manifest = load_manifest(leaky)
    kernel = manifest.kernels["trades"]
    slot = kernel.slots.index("last(trades.price)")
    path = leaky / kernel.path
    text = path.read_text()
    # last() of a column is read at the bar's last ticks once the bar is complete (index j)
    honest = f"                out[{slot}, b] = col_price[j]\n"
    assert honest in text
    # Bypass the static check: the generated code now reads the tick after the current one.
    path.write_text(text.replace(honest, f"                out[{slot}, b] = col_price[min(j + 1, ts.shape[0] - 1)]\n"))
    # As if compile itself had generated it (a code-generation bug): the manifest records the file's hash, and
    # a kernel whose hash differs is refused before it runs (tested in test_cli).
    manifest_file = leaky / "build" / "manifest.json"
    raw = json.loads(manifest_file.read_text())
    for entry in raw["kernels"]:
        if entry["path"] == kernel.path:
            entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest_file.write_text(json.dumps(raw))
    # Kernel modules are content-addressed: drop the honest one this process loaded so the patched file loads.
    name = f"fspec_kernels.{kernel.module}"
    sys.modules.pop(name, None)
    try:
        report = audit(manifest, cuts=10, seed=0)
    finally:
        sys.modules.pop(name, None)
    assert not report.ok
    # only columns built on last(trades.price) can change: bar_return, last_price and what reads it
    readers = ("bar_return_", "last_price_", "basis_", "vol_hedge_spread_")
    assert all(v.column.startswith(readers) for v in report.violations), report.violations
    assert any(v.column.startswith("bar_return_") for v in report.violations)
    first = report.violations[0]
    assert first.full != first.truncated
    # The command in a fresh process (which loads the patched file) exits 1 and names the column.
    done = subprocess.run(
        [sys.executable, "-m", "fspec.cli", "audit", "--project", str(leaky), "--cuts", "10"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "LOOKAHEAD bar_return_" in done.stdout, done.stderr
    assert "Traceback" not in done.stderr
