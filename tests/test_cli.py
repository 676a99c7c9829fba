"""The fspec command line, end to end, on temporary projects: exit codes, messages, files written.

Two kinds of project, both built in tmp folders (never the repository's own build/ or out/):

* ``sample``: the shipped specs/ and the bundled real SPY day (data/sample), compiled once per module;
* ``tiny``: a one-kernel project over synthetic CSV trades for two days, copied fresh for each test that
  breaks its data. Its kernel is content-addressed, so after the first JIT every copy reuses it.

Every command goes through click's CliRunner on ``fspec.cli.main`` (a few through a real subprocess to see
what a terminal sees). A user error must exit 1 (spec/data) or 2 (usage) with a message, never an
uncaught exception, a traceback or an "internal error".
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import Result
from conftest import cli, expect

import fspec
from fspec.operators import REGISTRY
from fspec.project import spec_hash

REPO = Path(__file__).resolve().parents[1]
CROSS = re.compile(r"^(?P<feature>[a-z][a-z0-9]*(?:_[a-z0-9]+)*)_(?P<seconds>[0-9]+)s$")
COLUMN = re.compile(r"^(?P<feature>[a-z][a-z0-9]*(?:_[a-z0-9]+)*)_(?P<seconds>[0-9]+)s_(?P<instrument>[a-z][a-z0-9]*)$")
OLD = 1_000_000_000  # an mtime far in the past, so "untouched" is visible even on coarse clocks


# ---- helpers ---------------------------------------------------------------------------------------


def files_in(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


def assert_no_temp_files(folder: Path) -> None:
    leftovers = [n for n in files_in(folder) if n.endswith(".tmp") or n.startswith(".")]
    assert not leftovers, f"temp files left in {folder}: {leftovers}"


def meta(path: Path) -> dict:
    schema = pq.read_schema(path)
    assert schema.metadata and b"fspec" in schema.metadata, schema.metadata
    return json.loads(schema.metadata[b"fspec"])


def same_values(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))


def fspec_subprocess(*args: object, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fspec.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**{k: v for k, v in os.environ.items() if k != "FSPEC_DEBUG"}, **(env or {})},
    )


def copy_specs(dest: Path, with_data: bool = False) -> Path:
    shutil.copytree(REPO / "specs", dest / "specs")
    if with_data:
        shutil.copytree(REPO / "data" / "sample", dest / "data" / "sample")
    return dest


# ---- the sample project (shipped specs + real SPY day) ----------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_specs(tmp_path_factory.mktemp("sample"), with_data=True)
    expect(cli("compile", "--project", root), 0)
    return root


@pytest.fixture(scope="module")
def sample_out(sample: Path) -> Path:
    """A full default run (every date and interval) into the project's out/."""
    out = expect(cli("run", "--project", sample), 0)
    assert "wrote out/features_20131007_30s.parquet" in out
    return sample / "out"


@pytest.fixture(scope="module")
def manifest(sample: Path) -> dict:
    return json.loads((sample / "build" / "manifest.json").read_text(encoding="utf-8"))


# ---- validate ---------------------------------------------------------------------------------------

BROKEN = """\
spec_version: 1
features:
  - name: broken_syntax
    formula: sum(trades.price +)
  - name: broken_op
    formula: frobnicate(trades.price)
"""


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    root = copy_specs(tmp_path)
    (root / "specs" / "broken.yaml").write_text(BROKEN, encoding="utf-8")
    return root


def test_validate_ok(tmp_path: Path) -> None:
    root = copy_specs(tmp_path)
    out = expect(cli("validate", "--project", root), 0)
    assert out.startswith("ok"), out
    assert not (root / "build").exists(), "validate writes nothing"


def test_validate_ok_json_and_github(tmp_path: Path) -> None:
    root = copy_specs(tmp_path)
    data = json.loads(expect(cli("validate", "--project", root, "--format", "json"), 0))
    assert data["ok"] is True and data["errors"] == []
    assert "::error" not in expect(cli("validate", "--project", root, "--format", "github"), 0)


def test_validate_finds_the_project_from_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    root = copy_specs(tmp_path)
    (root / "specs" / "sub").mkdir()
    monkeypatch.chdir(root / "specs" / "sub")
    expect(cli("validate"), 0)


def test_validate_error_text(broken: Path) -> None:
    out = expect(cli("validate", "--project", broken), 1)
    found = re.findall(r"^specs/broken\.yaml:(\d+):(\d+): (.+)$", out, flags=re.M)
    lines = {int(line): int(col) for line, col, _ in found}
    assert set(lines) == {4, 6}, out  # every error, not just the first
    assert 14 <= lines[4] <= 14 + len("sum(trades.price +)"), out
    assert lines[6] == 14, out  # the start of the formula value, where frobnicate( is
    assert "frobnicate" in out and "hint:" in out


def test_validate_error_json(broken: Path) -> None:
    result = cli("validate", "--project", broken, "--format", "json")
    expect(result, 1)
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert {(e["file"], e["line"]) for e in data["errors"]} == {("specs/broken.yaml", 4), ("specs/broken.yaml", 6)}
    for e in data["errors"]:
        assert e["col"] > 0 and e["message"]


def test_validate_error_github(broken: Path) -> None:
    out = expect(cli("validate", "--project", broken, "--format", "github"), 1)
    annotations = [line for line in out.splitlines() if line.startswith("::error ")]
    assert len(annotations) == 2, out
    for line in annotations:
        assert re.match(r"^::error file=specs/broken\.yaml,line=(4|6),col=[1-9][0-9]*::\S", line), line


def test_validate_error_in_a_real_process_has_no_traceback(broken: Path) -> None:
    proc = fspec_subprocess("validate", cwd=broken)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "specs/broken.yaml:6:14:" in proc.stderr


def test_validate_yaml_error_has_position(tmp_path: Path) -> None:
    root = copy_specs(tmp_path)
    (root / "specs" / "bad.yaml").write_text("spec_version: 1\nfeatures:\n  - name: x\n    formula: [\n", "utf-8")
    out = expect(cli("validate", "--project", root), 1)
    assert re.search(r"^specs/bad\.yaml:\d+:\d+: ", out, flags=re.M), out


def test_validate_huge_number_literal_is_a_spec_error(tmp_path: Path) -> None:
    """1e999 is inf in Python: the printer used for 'resolved' text must not crash on it."""
    root = copy_specs(tmp_path)
    (root / "specs" / "huge.yaml").write_text(
        "spec_version: 1\nfeatures:\n  - name: huge\n    formula: sum(trades.size) * 1e999\n", "utf-8"
    )
    result = cli("validate", "--project", root)
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit), repr(exc)
    assert "internal error" not in result.output, result.output
    assert "Traceback" not in result.output
    if result.exit_code:
        assert re.search(r"^specs/huge\.yaml:4:\d+: ", result.output, flags=re.M), result.output


def test_outside_a_project_is_a_usage_error(tmp_path: Path) -> None:
    out = expect(cli("validate", "--project", tmp_path / "nowhere"), 2)
    assert "specs/" in out


# ---- compile ----------------------------------------------------------------------------------------


def test_compile_writes_manifest_and_kernels(tmp_path: Path) -> None:
    root = copy_specs(tmp_path)
    out = expect(cli("compile", "--project", root, "--no-jit"), 0)
    assert "build/manifest.json" in out
    data = json.loads((root / "build" / "manifest.json").read_text(encoding="utf-8"))
    assert data["spec_hash"] == spec_hash(root)
    assert data["kernels"], data
    for kernel in data["kernels"]:
        path = root / kernel["path"]
        assert path.is_file() and path.suffix == ".py", kernel
        text = path.read_text(encoding="utf-8")
        assert "njit" in text and "cache=True" in text and "def reduce_ticks" in text
    on_disk = {p.name for p in (root / "build" / "kernels").glob("*.py")}
    assert on_disk == {Path(k["path"]).name for k in data["kernels"]}


def test_run_into_a_file_is_an_output_error(tmp_path: Path) -> None:
    """An output folder that is a file (or lies under one) is an error naming it, not an internal error."""
    root = copy_specs(tmp_path)
    with (root / "specs" / "project.yaml").open("a", encoding="utf-8") as fh:
        fh.write("\noutput: {dir: specs/returns.yaml}\n")
    expect(cli("compile", "--project", root, "--no-jit"), 0)
    for args in ((), ("--out", root / "specs" / "project.yaml" / "deeper")):
        out = expect(cli("run", "--project", root, *args), 1)
        assert "is a file" in out and "hint: set output" in out, out


def test_second_compile_leaves_unchanged_kernels_untouched(tmp_path: Path) -> None:
    root = copy_specs(tmp_path)
    expect(cli("compile", "--project", root, "--no-jit"), 0)
    kernels = {p.name: p for p in (root / "build" / "kernels").glob("*.py")}
    for p in kernels.values():
        os.utime(p, (OLD, OLD))
    expect(cli("compile", "--project", root, "--no-jit"), 0)
    assert {p.name for p in (root / "build" / "kernels").glob("*.py")} == set(kernels)
    for p in kernels.values():
        assert p.stat().st_mtime == OLD, f"{p.name} was rewritten"

    # A new reducer over the 1-minute bars adds a kernel of its slot beside that source's kernel (compiler/
    # parts.py), which stays untouched like the others.
    extra = "  - name: max_close\n    formula: max(bars_1m.close)\n"
    spec = root / "specs" / "minute_bars.yaml"
    shipped = spec.read_text(encoding="utf-8")
    spec.write_text(shipped + "\n" + extra, encoding="utf-8")
    expect(cli("compile", "--project", root, "--no-jit"), 0)
    now = {p.name: p for p in (root / "build" / "kernels").glob("*.py")}
    for name, p in kernels.items():
        assert name in now and p.stat().st_mtime == OLD, f"{name} was rewritten"
    assert len([n for n in now if n.startswith("bars_1m_")]) == 2
    # A slot no feature reads any more (minute_return's formula changed): the source's kernel is fused anew,
    # under a new content-addressed name, and the old files are removed.
    changed = shipped.replace("formula: sum(diff(log(bars_1m.close)))", "formula: sum(diff(bars_1m.close))")
    assert changed != shipped
    spec.write_text(changed + "\n" + extra, encoding="utf-8")
    expect(cli("compile", "--project", root, "--no-jit"), 0)
    now = {p.name: p for p in (root / "build" / "kernels").glob("*.py")}
    for name, p in kernels.items():
        if name.startswith("bars_1m_"):
            assert name not in now, "the changed kernel gets a new content-addressed name (old one removed)"
        else:
            assert name in now and p.stat().st_mtime == OLD, f"{name} was rewritten"
    assert len([n for n in now if n.startswith("bars_1m_")]) == 1


def test_run_right_after_compile_compiles_nothing(tmp_path: Path) -> None:
    """`fspec compile` leaves numba's cache holding every compiled function the run calls, typed as the run
    types its arguments (read-only data from parquet and from computed columns, integer windows, float spans):
    the first run adds nothing to the cache. A fresh cache folder, so nothing is warm from other tests."""
    root = write_tiny(tmp_path / "p", fmt="parquet")
    project = root / "specs" / "project.yaml"
    text = project.read_text(encoding="utf-8")
    project.write_text(text.replace("size: float64}", 'size: float64, mid: {expr: "price + 0.005"}}'), encoding="utf-8")
    extra = (
        "  - name: mean_volume\n    formula: rolling_mean(volume, 3)\n"
        "  - name: smooth_mid\n    formula: ewm_mean(last(trades.mid), 4)\n"
        "  - name: volume_mid_corr\n    formula: rolling_corr(volume, smooth_mid, 5)\n"
    )
    features = root / "specs" / "features.yaml"
    features.write_text(features.read_text(encoding="utf-8") + extra, encoding="utf-8")
    cache = tmp_path / "numba_cache"
    env = {"NUMBA_CACHE_DIR": str(cache)}
    compiled = fspec_subprocess("compile", "--project", root, cwd=root, env=env)
    assert compiled.returncode == 0, compiled.stderr
    after_compile = sorted(p.name for p in cache.rglob("*") if p.is_file())
    assert any("reduce_ticks" in n for n in after_compile) and any("ewm_mean" in n for n in after_compile)
    ran = fspec_subprocess("run", "--project", root, cwd=root, env=env)
    assert ran.returncode == 0, ran.stderr
    assert sorted(p.name for p in cache.rglob("*") if p.is_file()) == after_compile


def test_compile_warms_only_what_changed_and_the_run_still_compiles_nothing(tmp_path: Path) -> None:
    """After an edit, `fspec compile` warms the changed kernel alone (build/warmed.json names what an earlier
    compile warmed in this environment); the run after it still adds nothing to numba's cache. Another cache
    folder is another environment: everything is warmed again."""
    root = write_tiny(tmp_path / "p", fmt="parquet")
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba_cache")}

    def compile_() -> str:
        done = fspec_subprocess("compile", "--project", root, cwd=root, env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout

    first = int(re.search(r"\((\d+) compiled function", compile_()).group(1))  # type: ignore[union-attr]
    assert first >= 2, first  # the trades kernel and the bar operators of the tiny features
    assert "(0 compiled function(s)" in compile_()
    features = root / "specs" / "features.yaml"
    features.write_text(features.read_text(encoding="utf-8") + "  - name: top\n    formula: max(trades.price)\n")
    assert "(1 compiled function(s)" in compile_()  # the trades kernel, new; no new bar operator
    cache = tmp_path / "numba_cache"
    after_compile = sorted(p.name for p in cache.rglob("*") if p.is_file())
    ran = fspec_subprocess("run", "--project", root, cwd=root, env=env)
    assert ran.returncode == 0, ran.stderr
    assert sorted(p.name for p in cache.rglob("*") if p.is_file()) == after_compile
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "other_cache")
    assert f"({first + 1} compiled function(s)" in compile_()  # all again; the kernel is now two files (parts.py)


def test_compile_warms_again_what_a_deleted_numba_cache_held(tmp_path: Path) -> None:
    """build/warmed.json lists the numba cache files behind what it names: when they are deleted by hand (a
    kernel's, or the whole cache folder) while the build stays, `fspec compile` warms those functions again,
    and the run after it still compiles nothing."""
    root = write_tiny(tmp_path / "p", fmt="parquet")
    cache = tmp_path / "numba_cache"
    env = {"NUMBA_CACHE_DIR": str(cache)}

    def compile_() -> int:
        done = fspec_subprocess("compile", "--project", root, cwd=root, env=env)
        assert done.returncode == 0, done.stderr
        return int(re.search(r"\((\d+) compiled function", done.stdout).group(1))  # type: ignore[union-attr]

    def files() -> list[str]:
        return sorted(str(p) for p in cache.rglob("*") if p.is_file())

    first = compile_()
    assert first >= 2, first
    assert compile_() == 0
    kernel = [f for f in files() if "reduce_" in Path(f).name]
    assert kernel
    for f in kernel:
        Path(f).unlink()
    assert compile_() == 1  # the kernel alone: the bar operators' files are still there
    assert sorted(kernel) == sorted(f for f in files() if "reduce_" in Path(f).name)
    shutil.rmtree(cache)
    assert compile_() == first  # every function again
    after_compile = files()
    ran = fspec_subprocess("run", "--project", root, cwd=root, env=env)
    assert ran.returncode == 0, ran.stderr
    assert files() == after_compile  # the run compiled nothing
    assert compile_() == 0


def test_an_edit_of_a_constant_compiles_nothing_and_the_run_uses_the_new_value(tmp_path: Path) -> None:
    """The constants of tick formulas are kernel parameters: changing a size threshold keeps the kernel file
    (and numba's cache of it), warms nothing, and the run's values follow the new threshold (checked against
    pandas on the raw trades)."""
    root = write_tiny(tmp_path / "p", fmt="parquet")
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba_cache")}
    features = root / "specs" / "features.yaml"
    probe = "  - name: big_volume\n    formula: sum(trades.size * (trades.size >= {t}))\n"
    text = features.read_text(encoding="utf-8")

    def compile_(threshold: int) -> tuple[str, list[str]]:
        features.write_text(text + probe.format(t=threshold), encoding="utf-8")
        done = fspec_subprocess("compile", "--project", root, cwd=root, env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout, files_in(root / "build" / "kernels")

    _, kernels = compile_(105)
    out, same = compile_(110)
    assert "(0 compiled function(s)" in out and same == kernels
    ran = fspec_subprocess("run", "--project", root, cwd=root, env=env)
    assert ran.returncode == 0, ran.stderr
    got = pd.read_parquet(root / "out" / "features_20240304_60s.parquet")
    trades = tiny_trades(DAYS[0])
    ts = pd.to_datetime(trades["time"]).dt.tz_localize("America/New_York")
    inside = (ts >= f"{DAYS[0]} 09:30") & (ts < f"{DAYS[0]} 10:00")
    bars = ts[inside].dt.floor("60s")
    big = (trades["size"] * (trades["size"] >= 110))[inside].groupby(bars).sum()
    start = pd.Timestamp(f"{DAYS[0]} 09:30", tz="America/New_York")
    want = big.reindex(pd.date_range(start, periods=30, freq="60s"), fill_value=0.0).to_numpy()
    np.testing.assert_array_equal(got["big_volume_60s_abc"].to_numpy(), want)
    assert (
        want
        != (trades["size"] * (trades["size"] >= 105))[inside]
        .groupby(bars)
        .sum()
        .reindex(pd.date_range(start, periods=30, freq="60s"), fill_value=0.0)
        .to_numpy()
    ).any()  # the edit mattered


def test_a_new_slot_compiles_a_small_second_kernel_and_the_files_are_the_same(tmp_path: Path) -> None:
    """An edit that adds a slot keeps the earlier kernel file and compiles a kernel of the new slot alone; the
    run's files are byte-identical to those of a fresh build of the same specs (one fused kernel). Taking the
    feature out again goes back to the first file; a slot that no feature reads any more fuses a new kernel."""
    root = write_tiny(tmp_path / "p", fmt="parquet")
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba_cache")}
    features = root / "specs" / "features.yaml"
    text = features.read_text(encoding="utf-8")

    def compile_(specs: str, where: Path = root) -> tuple[str, list[str]]:
        (where / "specs" / "features.yaml").write_text(specs, encoding="utf-8")
        done = fspec_subprocess("compile", "--project", where, cwd=where, env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout, [n for n in files_in(where / "build" / "kernels") if n.endswith(".py")]

    _, (first,) = compile_(text)
    added = text + "  - name: top\n    formula: max(trades.price)\n"
    out, kernels = compile_(added)
    assert "(1 compiled function(s)" in out and first in kernels and len(kernels) == 2
    (trades,) = json.loads((root / "build" / "manifest.json").read_text(encoding="utf-8"))["kernels"]
    assert [p["module"] + ".py" for p in trades["parts"]] == [first, next(k for k in kernels if k != first)]
    ran = fspec_subprocess("run", "--project", root, cwd=root, env=env)
    assert ran.returncode == 0, ran.stderr
    fresh = tmp_path / "fresh"
    shutil.copytree(root / "data", fresh / "data")
    shutil.copytree(root / "specs", fresh / "specs")
    assert len(compile_(added, fresh)[1]) == 1  # no earlier build: one fused kernel
    ran = fspec_subprocess("run", "--project", fresh, cwd=fresh, env=env)
    assert ran.returncode == 0, ran.stderr
    written = files_in(root / "out")
    assert written and written == files_in(fresh / "out")
    for name in written:
        assert (root / "out" / name).read_bytes() == (fresh / "out" / name).read_bytes(), name
    out, kernels = compile_(text)
    assert kernels == [first] and "(0 compiled function(s)" in out
    out, kernels = compile_(text.replace("formula: sum(trades.size)", "formula: sum(trades.size * trades.price)"))
    assert len(kernels) == 1 and kernels != [first]


def test_run_on_plain_parquet_imports_neither_pandas_nor_pyarrow_dataset(tmp_path: Path) -> None:
    """Between them they cost half a second of every `fspec run`; parquet with epoch or UTC times and numeric
    columns needs neither (text times, local zones and CSV still go through pandas)."""
    root = write_tiny(tmp_path / "p", fmt="parquet")
    project = root / "specs" / "project.yaml"
    text = project.read_text(encoding="utf-8")
    epochs = text.replace("time: {column: time, timezone: America/New_York}", "time: {column: time, unit: ns}")
    project.write_text(epochs, encoding="utf-8")
    for day in DAYS:  # text times in New York -> int64 UTC ns epochs
        frame = tiny_trades(day)
        local = pd.to_datetime(frame["time"]).dt.tz_localize("America/New_York")
        frame["time"] = local.dt.tz_convert("UTC").astype("int64")
        write_trades(root, day, frame, "parquet")
    expect(cli("compile", "--project", root), 0)
    code = (
        "import sys\nfrom fspec.cli import main\n"
        f"sys.argv = ['fspec', 'run', '--project', {str(root)!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert exc.code in (0, None), exc.code\n"
        "print([m for m in ('pandas', 'pyarrow.dataset') if m in sys.modules])\n"
    )
    ran = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip().splitlines()[-1] == "[]"
    assert files_in(root / "out")


def test_compile_error_exits_1_and_keeps_nothing_half_written(broken: Path) -> None:
    out = expect(cli("compile", "--project", broken, "--no-jit"), 1)
    assert "specs/broken.yaml:4:" in out
    assert not (broken / "build" / "manifest.json").exists()


# ---- run on the sample project ------------------------------------------------------------------------


def test_run_writes_one_file_per_date_and_interval(sample_out: Path) -> None:
    # the project's 30s and 60s grids, plus the 1s grid the responders ask for
    assert files_in(sample_out) == [
        "features_20131007_1s.parquet",
        "features_20131007_30s.parquet",
        "features_20131007_60s.parquet",
    ]
    assert_no_temp_files(sample_out)


@pytest.mark.parametrize("interval", [30, 60])
def test_run_columns_and_grid(sample_out: Path, manifest: dict, interval: int) -> None:
    path = sample_out / f"features_20131007_{interval}s.parquet"
    table = pq.read_table(path)
    names = table.schema.names
    assert names[0] == "ts_event"
    assert table.schema.field("ts_event").type == pa.timestamp("ns", tz="UTC")
    sets = manifest["member_sets"]
    columns = [(f, m) for f in manifest["features"] for m in (sets[f["members"]] or [None])]
    volume_clocked = {f"{f['name']}_{m}" for f, m in columns if f["clock"] == "volume"}
    cross_asset = {f"{f['name']}_{interval}s" for f, m in columns if m is None}
    instruments = set(manifest["project"]["instruments"])
    for name in names[1:]:
        if name in volume_clocked:  # volume-clocked features carry no interval: vpin_spy
            continue
        if name in cross_asset:  # cross-asset features carry no instrument: basis_mes_spy_30s
            assert CROSS.match(name) and int(CROSS.match(name)["seconds"]) == interval, name
            continue
        m = COLUMN.match(name)
        assert m, f"{name} does not follow [feature]_[N]s_[instrument]"
        assert int(m["seconds"]) == interval and m["instrument"] in instruments
        assert table.schema.field(name).type == pa.float64()
    assert len(set(names)) == len(names)
    published = [(f, m) for f, m in columns if f["publish"] and interval in (f["intervals"] or [30, 60])]

    def expected_name(f: dict, member: str | None) -> str:
        parts = [f["name"]] + ([] if f["clock"] == "volume" else [f"{interval}s"])
        return "_".join(parts + ([member] if member else []))

    expected = {expected_name(f, m) for f, m in published}
    assert "vpin_spy" in names
    assert set(names[1:]) == expected
    assert "mid_30s_spy" not in names  # publish: false helpers are not written
    # features first, then targets
    kinds = ["target" if n.startswith(("target_", "resp_")) else "feature" for n in names[1:]]
    assert kinds == sorted(kinds), names
    # the session grid: 09:30 to 16:00 New York = 13:30 to 20:00 UTC on 2013-10-07 (EDT)
    ts = table.column("ts_event").to_numpy().astype("datetime64[ns]").astype(np.int64)
    start = pd.Timestamp("2013-10-07 13:30", tz="UTC").value
    assert len(ts) == 23400 // interval
    assert ts[0] == start and np.all(np.diff(ts) == interval * 10**9)


def test_run_metadata(sample: Path, sample_out: Path, manifest: dict) -> None:
    path = sample_out / "features_20131007_30s.parquet"
    m = meta(path)
    assert m["fspec_version"] == fspec.__version__
    assert m["spec_hash"] == manifest["spec_hash"] == spec_hash(sample)
    names = pq.read_schema(path).names[1:]
    assert set(m["columns"]) == set(names)
    for name in names:
        col = m["columns"][name]
        feature = m["features"][col["feature"]]  # what every column of the feature shares, written once
        assert isinstance(feature["formula"], str) and feature["formula"], name
        assert isinstance(col["lineage"], list), name
        left, right = feature["window"]
        assert isinstance(left, int) and isinstance(right, int) and left >= 0, name
        if not name.startswith("target_"):
            assert right <= 0, f"{name} reads the future: window {feature['window']}"
    assert m["features"]["vwap"]["formula"] == "wmean(trades.price, trades.size)"
    assert m["columns"]["vwap_30s_spy"] == {
        "feature": "vwap",
        "instrument": "spy",
        "lineage": [],
        "sources": [["trades", "spy"]],
    }
    lineage = {tuple(x) for x in m["columns"]["vwap_deviation_30s_spy"]["lineage"]}
    assert {("vwap", "spy"), ("mid", "spy")} <= lineage
    assert m["features"]["ret_lag_10"]["window"][0] >= 10
    assert m["features"]["target_next_window_return"]["window"][1] >= 1


def test_run_output_file_is_readable_like_other_files(sample_out: Path, tmp_path: Path) -> None:
    """The atomic temp file must not leave the output with mkstemp's private 0600 mode."""
    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    expected = stat.S_IMODE(probe.stat().st_mode)
    for path in sample_out.glob("*.parquet"):
        assert stat.S_IMODE(path.stat().st_mode) == expected, f"{path.name}: {oct(path.stat().st_mode)}"


def test_run_twice_gives_byte_identical_files(sample: Path, sample_out: Path, tmp_path: Path) -> None:
    first = {p.name: p.read_bytes() for p in sample_out.glob("*.parquet")}
    expect(cli("run", "--project", sample), 0)
    assert {p.name: p.read_bytes() for p in sample_out.glob("*.parquet")} == first
    expect(cli("run", "--project", sample, "--out", tmp_path / "again"), 0)
    assert {p.name: p.read_bytes() for p in (tmp_path / "again").glob("*.parquet")} == first


@pytest.mark.parametrize("threads", ["1", "3", "4"])
def test_run_on_any_number_of_threads_gives_the_same_files(
    sample: Path, sample_out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threads: str
) -> None:
    """Kernel calls of the five instruments run on a thread pool (2 threads on the test machine); calls that do
    not share out evenly are split at a bar edge, the second half continuing the first's tick state (vpin,
    tick_rule, diff): no number of threads may change a byte."""
    monkeypatch.setenv("FSPEC_THREADS", threads)
    expect(cli("run", "--project", sample, "--out", tmp_path / "t"), 0)
    first = {p.name: p.read_bytes() for p in sample_out.glob("*.parquet")}
    assert {p.name: p.read_bytes() for p in (tmp_path / "t").glob("*.parquet")} == first


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_run_with_a_bad_thread_count_is_a_usage_error(
    sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("FSPEC_THREADS", value)
    out = expect(cli("run", "--project", sample, "--out", tmp_path / "bad"), 2)
    assert f"FSPEC_THREADS='{value}' is not a number of threads" in out
    assert "unset it to use every core" in out
    assert not (tmp_path / "bad").exists() or not list((tmp_path / "bad").iterdir())


def test_run_date_interval_select_restrict_output(sample: Path, sample_out: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "sel"
    args = ["--date", "2013-10-07", "--interval", "30s", "--select", "vwap", "--select", "realized_vol_30s_spy"]
    out = expect(cli("run", "--project", sample, "--out", out_dir, *args), 0)
    assert "1 file(s)" in out
    assert files_in(out_dir) == ["features_20131007_30s.parquet"]
    table = pq.read_table(out_dir / "features_20131007_30s.parquet")
    assert table.schema.names[0] == "ts_event"
    vwaps = {f"vwap_30s_{i}" for i in ("spy", "qqq", "vxx", "mes", "mnq")}
    assert set(table.schema.names[1:]) == vwaps | {"realized_vol_30s_spy"}
    assert set(meta(out_dir / "features_20131007_30s.parquet")["columns"]) == set(table.schema.names[1:])
    full = pq.read_table(sample_out / "features_20131007_30s.parquet")
    for name in table.schema.names:
        assert same_values(table.column(name).to_numpy(), full.column(name).to_numpy()), name


def test_run_select_feature_with_dependencies_writes_only_it(sample: Path, sample_out: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "dep"
    args = ["--interval", "60s", "--select", "vwap_deviation_60s_spy"]
    expect(cli("run", "--project", sample, "--out", out_dir, *args), 0)
    assert files_in(out_dir) == ["features_20131007_60s.parquet"]
    table = pq.read_table(out_dir / "features_20131007_60s.parquet")
    assert table.schema.names == ["ts_event", "vwap_deviation_60s_spy"]
    full = pq.read_table(sample_out / "features_20131007_60s.parquet")
    assert same_values(table.column(1).to_numpy(), full.column("vwap_deviation_60s_spy").to_numpy())


def test_run_interval_may_be_written_in_minutes(sample: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "m"
    expect(cli("run", "--project", sample, "--out", out_dir, "--interval", "1m", "--select", "volume"), 0)
    assert files_in(out_dir) == ["features_20131007_60s.parquet"]


@pytest.mark.parametrize("interval", ["45s", "abc", "30", "0s", "-30s"])
def test_run_unknown_interval_is_a_usage_error(sample: Path, tmp_path: Path, interval: str) -> None:
    out = expect(cli("run", "--project", sample, "--out", tmp_path / "o", "--interval", interval), 2)
    assert "--interval" in out
    assert files_in(tmp_path / "o") == []


@pytest.mark.parametrize("date", ["2013-13-45", "yesterday", "2013/10/07", "2013-10-7", "2013-W41-1", ""])
def test_run_bad_date_is_a_usage_error(sample: Path, tmp_path: Path, date: str) -> None:
    out = expect(cli("run", "--project", sample, "--out", tmp_path / "o", "--date", date), 2)
    assert "--date" in out and "YYYY-MM-DD" in out
    assert files_in(tmp_path / "o") == []


def test_run_unknown_select_is_a_usage_error(sample: Path, tmp_path: Path) -> None:
    out = expect(cli("run", "--project", sample, "--out", tmp_path / "o", "--select", "no_such_feature"), 2)
    assert "no_such_feature" in out
    assert files_in(tmp_path / "o") == []


def test_run_date_without_data_exits_1(sample: Path, tmp_path: Path) -> None:
    out = expect(cli("run", "--project", sample, "--out", tmp_path / "o", "--date", "2013-10-08"), 1)
    assert "20131008" in out and "hint:" in out
    assert files_in(tmp_path / "o") == []


def test_run_on_a_stale_build_exits_1(tmp_path: Path) -> None:
    root = copy_specs(tmp_path, with_data=True)
    expect(cli("compile", "--project", root, "--no-jit"), 0)
    spec = root / "specs" / "returns.yaml"
    spec.write_text(spec.read_text(encoding="utf-8") + "\n# edited after compile\n", encoding="utf-8")
    out = expect(cli("run", "--project", root), 1)
    assert "stale" in out and "fspec compile" in out
    assert not (root / "out").exists() or files_in(root / "out") == []
    # after compiling again the run works
    expect(cli("compile", "--project", root, "--no-jit"), 0)
    expect(cli("run", "--project", root, "--interval", "60s", "--select", "volume"), 0)
    assert files_in(root / "out") == ["features_20131007_60s.parquet"]


def test_run_without_build_exits_1(tmp_path: Path) -> None:
    root = copy_specs(tmp_path, with_data=True)
    out = expect(cli("run", "--project", root), 1)
    assert "fspec compile" in out
    assert not (root / "out").exists()


def test_run_on_a_corrupt_manifest_exits_1(tmp_path: Path) -> None:
    root = copy_specs(tmp_path)
    expect(cli("compile", "--project", root, "--no-jit"), 0)
    (root / "build" / "manifest.json").write_text("{not json", encoding="utf-8")
    assert "compile" in expect(cli("run", "--project", root), 1)


# ---- explain and ops --------------------------------------------------------------------------------------


def test_explain_prints_formula_window_and_kernel(sample: Path, manifest: dict) -> None:
    out = expect(cli("explain", "--project", sample, "realized_vol_30s_spy"), 0)
    assert "sqrt(sum(diff(log(trades.price)) ** 2) * periods_per_year)" in out
    assert re.search(r"window:\s+\(\d+, -?\d+\)", out), out
    kernel = next(k for k in manifest["kernels"] if k["source"] == "trades")
    assert kernel["path"] in out
    assert (sample / kernel["path"]).is_file()
    assert "30s" in out


def test_explain_helper_and_bar_feature(sample: Path) -> None:
    out = expect(cli("explain", "--project", sample, "ret_lag_10_60s_spy"), 0)
    assert "lag(interval_log_return, k)" in out and "k=10" in out
    assert re.search(r"window:\s+\(10, ", out), out
    assert "interval_log_return" in out.split("depends on:")[1]


def test_explain_lists_each_dependency_once_and_only_the_intervals_written(sample: Path) -> None:
    out = expect(cli("explain", "--project", sample, "vwap_deviation_30s_spy"), 0)
    assert re.search(r"^depends on:  spy\.vwap, spy\.mid$", out, flags=re.M), out  # its formula reads mid twice
    vpin = expect(cli("explain", "--project", sample, "vpin_spy"), 0)
    assert re.search(r"^interval:    30s, 60s$", vpin, flags=re.M), vpin  # not the responders' 1s
    responder = expect(cli("explain", "--project", sample, "resp_mid_5_1s_spy"), 0)
    assert re.search(r"^interval:    1s$", responder, flags=re.M), responder
    helper = expect(cli("explain", "--project", sample, "mid_spy"), 0)
    assert "interval:    30s, 60s (computed, not written)" in helper


def test_explain_ignores_case(sample: Path) -> None:
    out = expect(cli("explain", "--project", sample, "Realized_Vol_30s_SPY"), 0)
    assert out.startswith("column:      realized_vol_30s_spy\n"), out


def test_explain_a_column_at_an_interval_it_is_not_computed_at(sample: Path) -> None:
    out = expect(cli("explain", "--project", sample, "realized_vol_1s_spy"), 2)
    assert "'realized_vol' is computed at 30s, 60s only" in out
    assert "fspec explain realized_vol_30s_spy" in out


def test_explain_unknown_column_suggests(sample: Path) -> None:
    out = expect(cli("explain", "--project", sample, "realized_vol_30s_sp"), 2)
    assert "did you mean 'realized_vol_30s_spy'" in out


def test_explain_without_build_exits_1(tmp_path: Path) -> None:
    root = copy_specs(tmp_path)
    assert "fspec compile" in expect(cli("explain", "--project", root, "vwap_30s_spy"), 1)


def test_ops_lists_every_registered_operator() -> None:
    out = expect(cli("ops"), 0)
    listed = {m.group(1) for m in re.finditer(r"^([a-z_0-9]+)\(", out, flags=re.M)}
    assert listed == set(REGISTRY)


def test_ops_json() -> None:
    data = json.loads(expect(cli("ops", "--format", "json"), 0))
    assert {op["name"] for op in data["operators"]} == set(REGISTRY)
    for op in data["operators"]:
        assert op["signature"].startswith(op["name"] + "(") and op["doc"] and op["window"]


def test_ops_markdown() -> None:
    out = expect(cli("ops", "--format", "markdown"), 0)
    for name in REGISTRY:
        assert f"| `{name}(" in out, name


@pytest.mark.parametrize("command", ["validate", "compile", "run", "audit", "explain", "ops", "ls", "init", "docs"])
def test_every_command_help_has_an_example(command: str) -> None:
    assert "Example" in expect(cli(command, "--help"), 0)


def test_unknown_option_is_a_usage_error() -> None:
    assert cli("run", "--no-such-option").exit_code == 2
    assert cli("validate", "--format", "xml").exit_code == 2


# ---- the tiny project: bad data ------------------------------------------------------------------------

TINY_PROJECT = """\
spec_version: 1
sources:
  trades:
    path: data/{{symbol}}/{{date}}_trades.{ext}
    time: {{column: time, timezone: America/New_York}}
    kind: events                                # trades stamped to the second, 37 s apart: not bars
    columns: {{price: float64, size: float64}}{extra}
instruments:
  abc: {{symbol: abc}}
intervals: [60s, 300s]
session: {{timezone: America/New_York, open: "09:30", close: "10:00"}}
"""
TINY_FEATURES = """\
spec_version: 1
features:
  - name: volume
    formula: sum(trades.size)
  - name: last_price
    formula: ffill(last(trades.price))
  - name: prev_volume
    description: needs the previous session's last bar (warm-up)
    formula: lag(volume, 1)
"""
DAYS = ["2024-03-04", "2024-03-05"]
GOOD, BAD = DAYS  # tests break the second day's data
BAD_FILE = "data/abc/20240305_trades.csv"


def tiny_trades(day: str) -> pd.DataFrame:
    """Trades every 37 s from 09:29 to 10:01 New York time (some outside the session), as text times."""
    ts = pd.date_range(f"{day} 09:29:00", f"{day} 10:01:00", freq="37s")
    n = len(ts)
    return pd.DataFrame(
        {
            "time": ts.strftime("%Y-%m-%d %H:%M:%S.%f"),
            "price": [100 + (i % 7) * 0.01 for i in range(n)],
            "size": [float(100 + i) for i in range(n)],
        }
    )


def write_tiny(root: Path, *, fmt: str = "csv", extra: str = "") -> Path:
    (root / "specs").mkdir(parents=True)
    (root / "specs" / "project.yaml").write_text(TINY_PROJECT.format(ext=fmt, extra=extra), encoding="utf-8")
    (root / "specs" / "features.yaml").write_text(TINY_FEATURES, encoding="utf-8")
    for day in DAYS:
        write_trades(root, day, tiny_trades(day), fmt)
    return root


def write_trades(root: Path, day: str, frame: pd.DataFrame, fmt: str = "csv") -> Path:
    path = root / "data" / "abc" / f"{day.replace('-', '')}_trades.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


@pytest.fixture(scope="module")
def tiny_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_tiny(tmp_path_factory.mktemp("tiny") / "p")
    expect(cli("compile", "--project", root), 0)  # JIT once; copies reuse the kernel
    return root


@pytest.fixture
def tiny(tiny_template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "p"
    shutil.copytree(tiny_template, root)
    return root


def run_tiny(root: Path, *args: object) -> Result:
    return cli("run", "--project", root, "--out", root / "out", *args)


def assert_nothing_for(root: Path, day: str) -> None:
    out = root / "out"
    stamp = day.replace("-", "")
    assert not [n for n in files_in(out) if stamp in n], files_in(out)
    assert_no_temp_files(out)


def test_tiny_project_runs(tiny: Path) -> None:
    expect(run_tiny(tiny), 0)
    assert files_in(tiny / "out") == [
        "features_20240304_300s.parquet",
        "features_20240304_60s.parquet",
        "features_20240305_300s.parquet",
        "features_20240305_60s.parquet",
    ]
    table = pq.read_table(tiny / "out" / "features_20240305_60s.parquet")
    assert table.schema.names == ["ts_event", "volume_60s_abc", "last_price_60s_abc", "prev_volume_60s_abc"]
    assert table.num_rows == 30
    first = pq.read_table(tiny / "out" / "features_20240304_60s.parquet")
    assert np.isnan(first.column("prev_volume_60s_abc")[0].as_py())  # no session before the first day
    assert table.column("prev_volume_60s_abc")[0].as_py() == first.column("volume_60s_abc")[-1].as_py()


def _drop_file(root: Path) -> None:
    (root / BAD_FILE).unlink()


def _drop_column(root: Path) -> None:
    write_trades(root, BAD, tiny_trades(BAD).drop(columns=["size"]))


def _garbage_time(root: Path) -> None:
    frame = tiny_trades(BAD)
    frame.loc[10, "time"] = "not-a-time"
    write_trades(root, BAD, frame)


def _garbage_first_time(root: Path) -> None:
    frame = tiny_trades(BAD)
    frame.loc[0, "time"] = "09:3x"
    write_trades(root, BAD, frame)


def _empty_time(root: Path) -> None:
    frame = tiny_trades(BAD)
    frame.loc[10, "time"] = None
    write_trades(root, BAD, frame)


def _string_price(root: Path) -> None:
    frame = tiny_trades(BAD)
    frame["price"] = frame["price"].map(lambda p: f"${p:.2f}")
    write_trades(root, BAD, frame)


def _truncated_file(root: Path) -> None:
    (root / BAD_FILE).write_bytes(b"")


BAD_DATA = {
    "missing_file": (_drop_file, ["not found"]),
    "missing_column": (_drop_column, ["size"]),
    "garbage_timestamp": (_garbage_time, ["time"]),
    "garbage_first_timestamp": (_garbage_first_time, ["time"]),
    "empty_timestamp": (_empty_time, ["time"]),
    "string_price": (_string_price, ["price"]),
    "empty_file": (_truncated_file, []),
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_data_exits_1_naming_the_file_and_writes_nothing(tiny: Path, case: str) -> None:
    breaker, words = BAD_DATA[case]
    breaker(tiny)
    out = expect(run_tiny(tiny, "--date", BAD), 1)
    assert BAD_FILE in out, out
    assert "hint:" in out, out
    for word in words:
        assert word in out, out
    assert_nothing_for(tiny, BAD)


@pytest.mark.parametrize("case", ["missing_column", "string_price", "garbage_timestamp"])
def test_bad_data_in_a_multi_day_run_writes_nothing_for_that_day(tiny: Path, case: str) -> None:
    BAD_DATA[case][0](tiny)
    out = expect(run_tiny(tiny), 1)
    assert BAD_FILE in out
    assert_nothing_for(tiny, BAD)
    # the good day before it was being written while the bad one was computed: it is there, whole
    for width in (60, 300):
        good = pd.read_parquet(tiny / "out" / f"features_{GOOD.replace('-', '')}_{width}s.parquet")
        assert len(good) == 1800 // width
    assert not list((tiny / "out").glob(".*tmp*")) and not list((tiny / "out").glob("*.tmp"))


def test_bad_data_in_the_warmup_day_names_that_file(tiny: Path) -> None:
    """prev_volume on 2024-03-05 needs 2024-03-04's last bar: broken history fails the run, naming it."""
    write_trades(tiny, GOOD, tiny_trades(GOOD).drop(columns=["price"]))
    out = expect(run_tiny(tiny, "--date", BAD), 1)
    assert "data/abc/20240304_trades.csv" in out
    assert_nothing_for(tiny, BAD)


@pytest.mark.parametrize("case", ["missing_column", "string_price", "garbage_timestamp", "missing_file"])
def test_good_output_survives_a_failing_rerun(tiny: Path, case: str) -> None:
    expect(run_tiny(tiny, "--date", BAD), 0)
    out_dir = tiny / "out"
    before = {p.name: p.read_bytes() for p in out_dir.glob("*.parquet")}
    assert sorted(before) == ["features_20240305_300s.parquet", "features_20240305_60s.parquet"]
    BAD_DATA[case][0](tiny)
    expect(run_tiny(tiny, "--date", BAD), 1)
    assert {p.name: p.read_bytes() for p in out_dir.glob("*.parquet")} == before
    assert_no_temp_files(out_dir)


def test_crash_while_writing_leaves_no_partial_file(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Written atomically: a writer dying half-way leaves the previous file intact and no temp file."""
    expect(run_tiny(tiny, "--date", BAD), 0)
    out_dir = tiny / "out"
    before = {p.name: p.read_bytes() for p in out_dir.glob("*.parquet")}
    _with_dying_writer(monkeypatch)
    result = run_tiny(tiny, "--date", BAD)
    assert result.exit_code == 1, result.output
    assert not isinstance(result.exception, OSError | AssertionError), repr(result.exception)
    assert "Traceback" not in result.output
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in out_dir.glob("*.parquet")} == before
    assert_no_temp_files(out_dir)


def test_write_failure_is_reported_as_an_output_error_not_a_bug(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk is the user's environment, not 'a bug in fspec': name the output file, exit 1."""
    _with_dying_writer(monkeypatch)
    out = expect(run_tiny(tiny, "--date", BAD), 1)
    assert "features_20240305_" in out and "No space left on device" in out, out


def _with_dying_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    def dying_writer(table: object, where: object, *args: object, **kwargs: object) -> None:
        Path(str(where)).write_bytes(b"PAR1 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", dying_writer)


def _swap_rows(frame: pd.DataFrame, i: int, j: int) -> pd.DataFrame:
    order = list(range(len(frame)))
    order[i], order[j] = order[j], order[i]
    return frame.iloc[order].reset_index(drop=True)


def test_unsorted_rows_are_sorted_with_a_warning(tiny: Path, tmp_path: Path) -> None:
    expect(run_tiny(tiny, "--date", BAD), 0)
    sorted_run = {p.name: p.read_bytes() for p in (tiny / "out").glob("*.parquet")}
    write_trades(tiny, BAD, _swap_rows(tiny_trades(BAD), 10, 11))
    out = expect(run_tiny(tiny, "--date", BAD), 0)
    assert "warning" in out.lower() and BAD_FILE in out, out
    # a stable sort gives exactly what sorted data gives
    assert {p.name: p.read_bytes() for p in (tiny / "out").glob("*.parquet")} == sorted_run


def test_unsorted_rows_rejected_when_the_source_says_so(tiny: Path) -> None:
    (tiny / "specs" / "project.yaml").write_text(
        TINY_PROJECT.format(ext="csv", extra="\n    unsorted: reject"), encoding="utf-8"
    )
    expect(cli("compile", "--project", tiny, "--no-jit"), 0)
    expect(run_tiny(tiny, "--date", GOOD), 0)  # sorted data is fine
    write_trades(tiny, BAD, _swap_rows(tiny_trades(BAD), 10, 11))
    out = expect(run_tiny(tiny, "--date", BAD), 1)
    assert BAD_FILE in out and "hint:" in out, out
    assert "order" in out or "sort" in out, out
    assert_nothing_for(tiny, BAD)


# parquet sources: the same failures through the other reader
BAD_PARQUET_FILE = "data/abc/20240305_trades.parquet"


@pytest.fixture
def tiny_parquet(tiny_template: Path, tmp_path: Path) -> Path:
    root = write_tiny(tmp_path / "pq", fmt="parquet")
    expect(cli("compile", "--project", root, "--no-jit"), 0)
    return root


@pytest.mark.parametrize(
    ("case", "word"),
    [("missing_column", "size"), ("string_price", "price"), ("corrupt_file", "parquet"), ("string_time", "time")],
)
def test_bad_parquet_data(tiny_parquet: Path, case: str, word: str) -> None:
    frame = tiny_trades(BAD)
    path = tiny_parquet / BAD_PARQUET_FILE
    if case == "missing_column":
        write_trades(tiny_parquet, BAD, frame.drop(columns=["size"]), "parquet")
    elif case == "string_price":
        frame["price"] = frame["price"].astype(str)
        write_trades(tiny_parquet, BAD, frame, "parquet")
    elif case == "string_time":
        frame.loc[3, "time"] = "garbage"
        write_trades(tiny_parquet, BAD, frame, "parquet")
    else:
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    out = expect(run_tiny(tiny_parquet, "--date", BAD), 1)
    assert BAD_PARQUET_FILE in out and "hint:" in out and word in out, out
    assert_nothing_for(tiny_parquet, BAD)


def test_bad_data_in_a_real_process_has_no_traceback(tiny: Path) -> None:
    _string_price(tiny)
    proc = fspec_subprocess("run", "--date", BAD, cwd=tiny)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and BAD_FILE in proc.stderr
    assert_nothing_for(tiny, BAD)


# ---- dates written other ways ---------------------------------------------------------------------------


def test_compact_date_is_rejected_or_means_the_same_day(tiny: Path) -> None:
    """`--date 20240304` is accepted by date.fromisoformat on Python 3.11. If the CLI accepts it, it must mean
    2024-03-04 exactly: same file, same values, and no later session used as warm-up history."""
    expect(run_tiny(tiny, "--date", "2024-03-04", "--interval", "60s"), 0)
    target = tiny / "out" / "features_20240304_60s.parquet"
    reference = target.read_bytes()
    target.unlink()
    result = run_tiny(tiny, "--date", "20240304", "--interval", "60s")
    if result.exit_code == 2:
        expect(result, 2)
        return
    expect(result, 0)
    table = pq.read_table(target)
    assert np.isnan(table.column("prev_volume_60s_abc")[0].as_py()), (
        "the first bar of the first session has no previous bar; a later session was used as history"
    )
    assert target.read_bytes() == reference


def test_the_command_keeps_its_exit_codes_with_the_immediate_exit(tmp_path: Path) -> None:
    """`fspec` ends the process at once after a command (no interpreter teardown): the exit code and the
    output must still be those of the command."""
    import subprocess
    import sys

    def fspec(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "fspec.cli", *args], capture_output=True, text=True, cwd=tmp_path)

    assert fspec("--help").returncode == 0 and "Usage: " in fspec("--help").stdout
    bogus = fspec("validate", "--bogus")
    assert bogus.returncode == 2 and "No such option" in bogus.stderr
    (tmp_path / "specs").mkdir()
    missing = fspec("run", "--project", str(tmp_path))  # no build: a build error
    assert missing.returncode == 1 and "hint:" in missing.stderr and "Traceback" not in missing.stderr


def test_validate_data_finds_a_misspelt_column_at_its_spec_line(tmp_path: Path) -> None:
    """Without --data a misspelt file column passes validate (only the file can tell); with it, it is an error
    at the line that names it, with a did-you-mean from the first file's columns, in the mapping, the time and
    the filter alike."""
    root = write_tiny(tmp_path / "p", fmt="parquet", extra='\n    filter: "sise > 0"')
    project = root / "specs" / "project.yaml"
    project.write_text(project.read_text().replace("{price: float64, size", "{price: {from: prce}, size"))
    expect(cli("validate", "--project", root), 0)
    out = expect(cli("validate", "--project", root, "--data"), 1)
    assert "column 'prce' is not in data/abc/20240304_trades.parquet" in out
    assert "did you mean 'price'?" in out
    assert "column 'sise' is not in data/abc/20240304_trades.parquet" in out and "did you mean 'size'?" in out
    unused = "  unused:\n    path: nowhere/{date}.parquet\n    time: t\n    columns: {x: float64}\n"
    text = project.read_text().replace("instruments:\n  abc: {symbol: abc}\n", "")
    text = text.replace("intervals:", unused + "instruments:\n  abc: {symbol: abc, sources: [trades]}\nintervals:")
    project.write_text(text)
    out = expect(cli("validate", "--project", root, "--data"), 1)
    assert "unused" not in out  # a source no instrument reads needs no files
    shutil.rmtree(root / "data")
    out = expect(cli("validate", "--project", root, "--data"), 1)
    assert "no file matches the path 'data/{symbol}/{date}_trades.parquet' of source 'trades'" in out
