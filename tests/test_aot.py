"""fspec compile --aot: the build's compiled functions in one extension module, and runs from it in fresh
processes (a test process has imported numba already)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, FspecProject, cli, expect, make_project, shipped_specs

from fspec.project import BUILD_DIR, MANIFEST

RUN = (
    "import sys, json\n"
    "from fspec.cli import main\n"
    "from fspec import jit\n"
    "main(sys.argv[1:], standalone_mode=False)\n"
    "print(json.dumps({'numba': 'numba' in sys.modules, 'mode': jit.mode(),\n"
    "                  'fell back': [s.id for s in jit.standins() if s._real is not None]}))\n"
)


def _fresh(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)


def _run(root: Path, out: str) -> dict[str, object]:
    """``fspec run`` of the project into ``out`` in a fresh process: whether numba was imported, fspec.jit's
    mode and the functions that fell back to numba; the run's notes (stderr) under "notes"."""
    done = _fresh(RUN, "run", "--project", str(root), "--out", str(root / out))
    return json.loads(done.stdout.strip().splitlines()[-1]) | {"notes": done.stderr}


def _same_files(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.glob("*.parquet"))
    assert names and names == sorted(p.name for p in b.glob("*.parquet"))
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def _manifest(root: Path) -> dict:
    return json.loads((root / BUILD_DIR / MANIFEST).read_text(encoding="utf-8"))


def _write_manifest(root: Path, raw: dict) -> None:
    (root / BUILD_DIR / MANIFEST).write_text(json.dumps(raw, indent=1, sort_keys=True) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def aot_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`fspec init`'s project (two kernels, a bar operator), run with numba into out_jit/, then compiled with
    --aot."""
    root = tmp_path_factory.mktemp("aot") / "p"
    expect(cli("init", root), 0)
    expect(cli("compile", "--project", root), 0)
    assert "library" not in _manifest(root) and not (root / BUILD_DIR / "aot").exists()
    jit = _run(root, "out_jit")
    assert jit["numba"] and jit["mode"] == "jit"
    out = expect(cli("compile", "--aot", "--project", root), 0)
    assert "library build/aot/" in out and "built" in out
    return root


def _copy(root: Path, dest: Path) -> Path:
    shutil.copytree(root, dest, symlinks=True)
    return dest


def test_a_run_from_the_library_imports_no_numba_and_writes_the_same_bytes(aot_project: Path) -> None:
    result = _run(aot_project, "out_aot")
    assert result == {"numba": False, "mode": "library", "fell back": [], "notes": ""}
    _same_files(aot_project / "out_jit", aot_project / "out_aot")


def test_compile_aot_again_keeps_the_library_and_compile_without_it_removes_it(
    aot_project: Path, tmp_path: Path
) -> None:
    root = _copy(aot_project, tmp_path / "p")
    library = _manifest(root)["library"]
    out = expect(cli("compile", "--aot", "--project", root), 0)
    assert "unchanged" in out and _manifest(root)["library"] == library
    expect(cli("compile", "--project", root), 0)
    assert "library" not in _manifest(root) and not (root / BUILD_DIR / "aot").exists()


@pytest.mark.parametrize("change", ["stamp", "file", "missing"])
def test_a_stale_library_is_not_used(aot_project: Path, tmp_path: Path, change: str) -> None:
    """A stamp that is not the run's environment's (here: numba's version), or a library file that is not the
    one built, is never loaded: the run compiles with numba, says so, and writes the same bytes."""
    root = _copy(aot_project, tmp_path / "p")
    raw = _manifest(root)
    if change == "stamp":
        raw["library"]["stamp"]["numba"] = "0.0.1"
        _write_manifest(root, raw)
    elif change == "file":
        with (root / raw["library"]["file"]).open("ab") as fh:
            fh.write(b"\0")
    else:
        (root / raw["library"]["file"]).unlink()
    result = _run(root, "out_stale")
    assert result["numba"] and result["mode"] == "jit"
    said = {"stamp": "stale (numba changed", "file": "stale (its file", "missing": "is missing"}[change]
    assert said in str(result["notes"]), result["notes"]
    _same_files(root / "out_jit", root / "out_stale")


def test_a_kernel_file_edited_after_the_library_makes_it_stale(aot_project: Path, tmp_path: Path) -> None:
    """The library's stamp holds the kernel files' contents (the manifest's hashes are checked separately)."""
    from fspec.manifest import ManifestData
    from fspec.runtime.aot import stamp

    root = _copy(aot_project, tmp_path / "p")
    data = ManifestData.from_json(_manifest(root))
    assert data.library is not None
    before = stamp(root, data)
    assert {k: v for k, v in data.library.stamp.items() if k != "calls"} == before
    kernel = root / data.kernels[0].path
    kernel.write_text(kernel.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert stamp(root, data)["kernels"] != before["kernels"]


FALLBACK = r"""
import sys, json
import numpy as np
from pathlib import Path
from fspec.runtime.manifest import load_manifest
from fspec.runtime.aot import use_library
from fspec.runtime.kernels import frozen, load_tick_kernel, reduce_entities
from fspec import jit

manifest = load_manifest(Path(sys.argv[1]))
assert use_library(manifest) is None and jit.mode() == "library"
kernel = next(k for k in manifest.data.kernels if not k.parts)
module = load_tick_kernel(manifest.root, kernel)
rng = np.random.default_rng(7)
n = 5000
ts = np.sort(rng.integers(0, 10**12, n)).astype(np.int64)
starts = np.array([0, n], dtype=np.int64)
bar_ends = np.linspace(10**11, 10**12, 10).astype(np.int64)
columns = [rng.normal(100, 1, n) for _ in module.COLUMNS]
params = np.ones((1, len(module.PARAMS)))
results = []
for writable in (False, True):
    out = np.empty((1, len(module.SLOTS), len(bar_ends)))
    carry = np.zeros((1, module.CARRY))
    cols = [frozen(c) for c in columns]
    derived = np.zeros((len(module.DERIVED), n))
    module.derive(*cols, frozen(starts, np.int64), frozen(params), derived)
    if writable:  # types the library has no export for: numba compiles them, with the kernel's nested functions
        cols = [c.copy() for c in cols]
    index = [frozen(a, np.int64) for a in (ts, starts, bar_ends)]
    module.reduce_ticks(*index, *cols, derived, frozen(params), out, carry, False)
    results.append((out.tobytes().hex(), carry.tobytes().hex(), "numba" in sys.modules))
print(json.dumps({"same": results[0][:2] == results[1][:2], "numba": [r[2] for r in results],
                  "fell back": sorted(s.id.split(":")[1] for s in jit.standins() if s._real is not None)}))
"""


def test_a_call_the_library_lacks_falls_back_to_numba_with_the_same_values(aot_project: Path) -> None:
    """A kernel called with writable columns (the library has read-only ones): numba is imported then, the
    kernel and the functions it calls compile from the same Python code, and every value is the same."""
    done = _fresh(FALLBACK, str(aot_project))
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["numba"] == [False, True]
    assert result["same"], result
    assert "reduce_ticks" in result["fell back"]


def test_compile_aot_without_a_c_compiler_says_what_to_install(
    aot_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _copy(aot_project, tmp_path / "p")
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    out = expect(cli("compile", "--aot", "--project", root), 1)
    assert "needs a C compiler" in out and "apt-get install gcc" in out


def test_the_shipped_project_from_its_library_writes_the_jit_run_s_bytes(
    sample_project: FspecProject, tmp_path: Path
) -> None:
    """The shipped specs (every kind of entry point: tick kernels, bar operators, the option chain's math) on
    the bundled sample, compiled with --aot in a copy: the run imports no numba and writes the bytes of the
    session's JIT run."""
    root = make_project(tmp_path / "shipped", shipped_specs(), links={"data/sample": REPO / "data" / "sample"}).root
    expect(cli("compile", "--aot", "--project", root), 0)
    result = _run(root, "out")
    assert result["numba"] is False and result["fell back"] == [], result
    _same_files(sample_project.root / "out", root / "out")


def test_arrays_no_export_can_read_have_no_type_key() -> None:
    """A big-endian float64 is named float64 too, and a structured array by its size: an export would read their
    bytes as native numbers, so they have no key (the call goes to numba, which refuses them as its JIT does)."""
    import numpy as np

    from fspec.jit import type_key

    assert type_key(np.arange(3.0)) == "array(float64,1,C)"
    assert type_key(np.arange(3, dtype=">f8")) is None
    assert type_key(np.zeros(2, dtype=[("a", "f8")])) is None
    assert type_key(np.arange(3.0)) == "array(float64,1,C)"  # the cache keeps them apart


def test_aot_and_no_jit_together_are_a_usage_error(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", shipped_specs()).root
    out = expect(cli("compile", "--aot", "--no-jit", "--project", root), 2)
    assert "--aot and --no-jit exclude each other" in out
    assert not (root / BUILD_DIR).exists()
