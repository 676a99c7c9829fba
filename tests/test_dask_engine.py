"""`fspec run --engine dask`: the same files as the local engine, the same errors, and a run that survives a lost
worker, with tasks of whole days and of (day, entity group). One LocalCluster of two worker processes serves the
module (the runs connect to it with --scheduler); the CLI's own LocalCluster (no --scheduler) is started once too."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

from benchmarks import project as bench_project  # noqa: E402
from benchmarks.scale import _days  # noqa: E402
from benchmarks.workload import generate, instrument_names  # noqa: E402
from fspec import __version__  # noqa: E402
from fspec.errors import BuildError, ClusterError  # noqa: E402
from fspec.runtime import dask_engine  # noqa: E402
from fspec.runtime.columns import with_dependencies  # noqa: E402
from fspec.runtime.groups import atoms, auto_group_size, entity_groups  # noqa: E402
from fspec.runtime.manifest import load_manifest  # noqa: E402
from fspec.runtime.run import Engine, RunOptions, plan_run  # noqa: E402
from fspec.runtime.select import columns_by_interval  # noqa: E402
from fspec.runtime.tasks import DayTask, run_day, worker_build  # noqa: E402
from fspec.runtime.universe import with_members  # noqa: E402
from fspec.runtime.write import TEMP_PREFIX  # noqa: E402
from tests.conftest import REPO, FspecProject, book_project, cli, expect, make_project  # noqa: E402

# A window of 2,000 30 s bars reaches three sessions back: each day's task reads a halo of earlier days' files.
HALO = """\
spec_version: 1
features:
  - name: ret_mean_long
    formula: rolling_mean(interval_log_return, 2000)
"""


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", env={"FSPEC_THREADS": "1"}
    )
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def _dask(root: Path, out: Path, scheduler: str | None, *args: object, code: int = 0) -> str:
    extra = ["--scheduler", scheduler] if scheduler else ["--workers", 2]
    return expect(cli("run", "--project", root, "--engine", "dask", *extra, "--out", out, *args), code)


def _same_as_local(root: Path, tmp: Path, scheduler: str | None) -> dict[str, bytes]:
    expect(cli("run", "--project", root, "--out", tmp / "local"), 0)
    out = _dask(root, tmp / "dask", scheduler)
    local, remote = _files(tmp / "local"), _files(tmp / "dask")
    assert list(local) == list(remote)
    assert [n for n in local if local[n] != remote[n]] == []
    assert "dask:" in out and "dashboard:" in out
    return remote


def _compile(root: Path) -> None:
    """`fspec compile` in a fresh process, as a user runs it: in this one, a kernel of the same content hash that
    an earlier test loaded is not loaded again, so this project's numba cache would stay empty."""
    done = subprocess.run(
        [sys.executable, "-m", "fspec.cli", "compile", "--project", str(root)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _copy_example(name: str, tmp: Path) -> Path:
    root = tmp / name
    shutil.copytree(REPO / "examples" / name, root, ignore=shutil.ignore_patterns("build", "out", "__pycache__"))
    _compile(root)
    return root


def _multi_day(root: Path, days: int, rows: int = 20_000, instruments: int = 3) -> Path:
    bench_project.write_project(root, instrument_names(instruments))
    (root / "specs" / "halo.yaml").write_text(HALO, encoding="utf-8")
    for k, day in enumerate(_days("2024-03-04", days)):
        bench_project.write_data(root, generate(rows, instruments, seed=7 + k, day=day))
    _compile(root)
    return root


@pytest.fixture(scope="module")
def multi_day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _multi_day(tmp_path_factory.mktemp("multi") / "p", 6)


# ---- the same files -----------------------------------------------------------------------------------------


def test_shipped_sample_is_byte_identical(sample_project: FspecProject, tmp_path: Path, scheduler: str) -> None:
    out = _dask(sample_project.root, tmp_path / "dask", scheduler)
    local = _files(sample_project.root / "out")
    assert _files(tmp_path / "dask") == local and len(local) == 3
    assert "wrote " in out


@pytest.mark.parametrize("example", ["closing_auction", "crypto_24h", "pretrade_fills"])
def test_example_is_byte_identical(example: str, tmp_path: Path, scheduler: str) -> None:
    files = _same_as_local(_copy_example(example, tmp_path), tmp_path, scheduler)
    assert len(files) >= 2


def test_days_with_a_halo_are_byte_identical_on_fspec_s_own_cluster(multi_day: Path, tmp_path: Path) -> None:
    """Each day's task reads three earlier days as its warm-up (not map_overlap): the files are the local run's.
    This run starts (and closes) its own LocalCluster of two workers, whose processes are new: they load the
    kernels' machine code from numba's cache in the build folder and compile nothing (the cache is unchanged)."""
    cache = multi_day / "build" / "kernels" / "__pycache__"
    before = {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in cache.iterdir()}
    files = _same_as_local(multi_day, tmp_path, None)
    assert len(files) == 6
    assert {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in cache.iterdir()} == before
    assert any(name.endswith(".nbc") for name in before)


def test_a_date_subset_reads_its_halo_from_days_outside_it(multi_day: Path, tmp_path: Path, scheduler: str) -> None:
    last = _days("2024-03-04", 6)[-1]
    expect(cli("run", "--project", multi_day, "--date", last, "--out", tmp_path / "local"), 0)
    _dask(multi_day, tmp_path / "dask", scheduler, "--date", last)
    assert _files(tmp_path / "dask") == _files(tmp_path / "local")


# ---- errors ---------------------------------------------------------------------------------------------------


def _message(output: str) -> str:
    return "\n".join(line for line in output.splitlines() if not line.startswith(("dask:", "dashboard:")))


def test_bad_data_fails_with_the_local_engine_s_message(multi_day: Path, tmp_path: Path, scheduler: str) -> None:
    root = tmp_path / "bad"
    shutil.copytree(multi_day, root, symlinks=True)
    days = _days("2024-03-04", 6)
    day = days[2]
    bad = root / bench_project.PATH.format(symbol="S1", date=day.replace("-", ""))
    bad.write_bytes(b"not a parquet file")
    # a later day's own file too: the error reported is the earliest day's, as the local engine's
    later = root / bench_project.PATH.format(symbol="S2", date=days[5].replace("-", ""))
    later.write_bytes(b"")
    local = expect(cli("run", "--project", root, "--out", tmp_path / "local"), 1)
    remote = expect(
        cli("run", "--project", root, "--engine", "dask", "--scheduler", scheduler, "--out", tmp_path / "d"), 1
    )
    assert _message(remote) == _message(local)
    assert f"{bad.relative_to(root)}" in remote
    written = {p.name for p in (tmp_path / "d").iterdir()}
    assert f"features_{day.replace('-', '')}_30s.parquet" not in written  # the bad day writes nothing
    assert {f"features_{d.replace('-', '')}_30s.parquet" for d in days[:2]} <= written  # the days before it do
    assert not [n for n in written if n.startswith(TEMP_PREFIX)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_scheduler_is_a_clear_error_within_seconds(sample_project: FspecProject, tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    started = time.perf_counter()
    out = _dask(sample_project.root, tmp_path / "o", address, code=2)
    assert time.perf_counter() - started < dask_engine.CONNECT_SECONDS + 5
    assert f"--scheduler {address}: cannot connect to a dask scheduler" in out
    assert "hint: start one" in out
    assert not (tmp_path / "o").exists()


def test_too_few_workers_is_a_clear_error(
    sample_project: FspecProject, tmp_path: Path, scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dask_engine, "WORKERS_SECONDS", 1)
    out = _dask(sample_project.root, tmp_path / "o", scheduler, "--workers", 3, code=2)
    assert f"--scheduler {scheduler}: 2 worker(s) after 1 s, the run needs 3" in out
    assert not (tmp_path / "o").exists()


def test_scheduler_without_the_dask_engine_is_a_usage_error(sample_project: FspecProject) -> None:
    out = expect(cli("run", "--project", sample_project.root, "--scheduler", "tcp://h:8786"), 2)
    assert "--engine dask" in out


def test_a_stale_build_writes_nothing(multi_day: Path, tmp_path: Path, scheduler: str) -> None:
    root = tmp_path / "stale"
    shutil.copytree(multi_day, root, symlinks=True)
    with (root / "specs" / "halo.yaml").open("a", encoding="utf-8") as fh:
        fh.write("  - name: added_later\n    formula: sum(trades.size) * 2\n")
    out = _dask(root, tmp_path / "o", scheduler, code=1)
    assert "the build is stale" in out
    assert not (tmp_path / "o").exists()


def _task(root: Path, **changes: object) -> DayTask:
    from fspec.runtime.manifest import load_manifest

    manifest = load_manifest(root)
    fields: dict[str, object] = {
        "root": str(root),
        "day": _days("2024-03-04", 1)[0],
        "intervals": (30,),
        "at": {30: [("volume", "s0")]},
        "out_dir": str(root / "task_out"),
        "members": {},
        "spec_hash": manifest.data.spec_hash,
        "fspec_version": __version__,
    }
    fields.update(changes)
    return DayTask(**fields)  # type: ignore[arg-type]


def test_a_task_refuses_a_client_of_another_version(multi_day: Path) -> None:
    with pytest.raises(ClusterError) as caught:
        run_day(_task(multi_day, fspec_version="0.0.1"))
    assert f"runs fspec {__version__}, the client fspec 0.0.1: refused" in caught.value.render()
    assert not (multi_day / "task_out").exists()


def test_a_task_refuses_a_build_other_than_the_client_s(multi_day: Path) -> None:
    with pytest.raises(BuildError, match="not the one the client checked"):
        worker_build(multi_day, "0" * 64)


def test_a_task_writes_its_day(multi_day: Path, tmp_path: Path) -> None:
    outcome = run_day(_task(multi_day, out_dir=str(tmp_path)))
    assert [Path(p).name for p in outcome.written] == ["features_20240304_30s.parquet"]
    assert (tmp_path / "features_20240304_30s.parquet").stat().st_size > 0


class _Versions:
    def __init__(self, versions: dict[str, str | None]) -> None:
        self.versions = versions

    def get_versions(self, packages: list[str]) -> dict[str, object]:
        assert packages == ["fspec"]
        return {"workers": {a: {"packages": {"fspec": v}} for a, v in self.versions.items()}}


def test_a_worker_of_another_version_is_refused_with_both_versions() -> None:
    dask_engine._check_versions(_Versions({"tcp://a:1": __version__}))  # type: ignore[arg-type]
    with pytest.raises(ClusterError) as caught:
        dask_engine._check_versions(_Versions({"tcp://a:1": __version__, "tcp://b:2": "0.0.1"}))  # type: ignore[arg-type]
    assert caught.value.message == f"worker tcp://b:2 runs fspec 0.0.1, the client fspec {__version__}: refused"
    with pytest.raises(ClusterError, match="no fspec installed"):
        dask_engine._check_versions(_Versions({"tcp://a:1": None}))  # type: ignore[arg-type]


def test_the_cluster_s_workers_pass_the_version_check(scheduler: str) -> None:
    with distributed.Client(scheduler, set_as_default=False) as client:
        dask_engine._check_versions(client)
        assert set(client.get_versions(packages=["fspec"])["workers"]) == set(client.scheduler_info()["workers"])


def test_a_local_run_does_not_import_dask(sample_project: FspecProject, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from fspec.cli import main\n"
        f"main(['run', '--project', {str(sample_project.root)!r}, '--out', {str(tmp_path)!r}], standalone_mode=False)\n"
        "print('dask' in sys.modules, 'distributed' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "False False"
    assert len(list(tmp_path.glob("*.parquet"))) == 3


# ---- a worker lost mid-run ------------------------------------------------------------------------------------


def test_a_worker_killed_mid_task_reruns_its_task_elsewhere(tmp_path: Path, scheduler: str) -> None:
    """SIGKILL a worker process while it runs a day: the scheduler reruns that day on the other worker (the nanny
    starts a new process), the run succeeds with every file the local run writes, and no temp file is left."""
    root = _multi_day(tmp_path / "p", 8, rows=60_000)
    expect(cli("run", "--project", root, "--out", tmp_path / "local"), 0)
    killed: list[tuple[str, list[str]]] = []

    def kill_one() -> None:
        with distributed.Client(scheduler, set_as_default=False) as client:
            pids = client.run(os.getpid)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not killed:
                for address, keys in client.processing().items():
                    days = [str(k) for k in keys if str(k).startswith("fspec-day-")]
                    if days and address in pids:
                        os.kill(pids[address], signal.SIGKILL)
                        killed.append((address, days))
                        break
                time.sleep(0.02)

    killer = threading.Thread(target=kill_one)
    killer.start()
    out = _dask(root, tmp_path / "dask", scheduler)
    killer.join()
    assert killed, "no task was seen running"
    assert _files(tmp_path / "dask") == _files(tmp_path / "local")
    assert len(_files(tmp_path / "dask")) == 8
    assert not [p for p in (tmp_path / "dask").iterdir() if p.name.startswith(TEMP_PREFIX)]
    assert "8 file(s)" in out


def test_warnings_are_the_local_run_s_each_once(multi_day: Path, tmp_path: Path, scheduler: str) -> None:
    """An instrument absent on a day warns once, though the tasks of the three days after it read that day too."""
    root = tmp_path / "absent"
    shutil.copytree(multi_day, root, symlinks=True)
    day = _days("2024-03-04", 6)[1]
    (root / bench_project.PATH.format(symbol="S2", date=day.replace("-", ""))).unlink()
    local = expect(cli("run", "--project", root, "--out", tmp_path / "local"), 0)
    remote = _dask(root, tmp_path / "dask", scheduler)
    warned = [line for line in remote.splitlines() if line.startswith("warning:")]
    assert warned == [line for line in local.splitlines() if line.startswith("warning:")]
    assert warned == [f"warning: instrument 's2' has no data on {day}: its columns are NaN that day"]
    assert _files(tmp_path / "dask") == _files(tmp_path / "local")


# ---- tasks per (day, entity group) ------------------------------------------------------------------------------

GROUP_DAYS = ("2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05")
# the days (0-3) each symbol has rows: b2 and b3 miss the same day as a2, in other groups
PRESENT = {
    "A1": {0, 1, 2, 3},
    "A2": {0, 2, 3},
    "A3": {0, 1, 2, 3},
    "B1": {0, 1, 2, 3},
    "B2": {0, 2, 3},
    "B3": {0, 2, 3},
    "B4": {1, 2, 3},
    "X": {0, 1, 2, 3},
    "Y": {0, 1, 2, 3},
}
GROUP_FEATURES = [
    {"name": "vwap", "formula": "wmean(book.price, book.size)"},
    {"name": "volume", "formula": "sum(book.size)"},
    {"name": "volume_mean", "formula": "rolling_mean(volume, 20)"},  # 20 of 13 bars a session: two sessions back
    {"name": "vwap_rank", "formula": "cs_rank(vwap)", "instruments": ["ranked"]},  # a cross-section
    {"name": "index_ranked", "formula": "cs_mean(ranked.vwap)"},  # an index over a universe
    {"name": "basis_x_y", "formula": "x.vwap - y.vwap"},  # cross-asset
]


def _book() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frames = []
    for k_sym, (symbol, days) in enumerate(PRESENT.items()):
        for k in sorted(days):
            ts = pd.Timestamp(f"{GROUP_DAYS[k]} 09:30", tz="America/New_York") + pd.to_timedelta(
                np.sort(rng.uniform(0, 6.5 * 3600, 150)), unit="s"
            )
            price = 10 * (k_sym + 1) + np.round(np.cumsum(rng.normal(0, 0.05, 150)), 2)
            size = rng.integers(1, 9, 150).astype(float)
            frames.append(pd.DataFrame({"ts": ts, "sym": symbol, "price": price, "size": size}))
    return pd.concat(frames).sort_values("ts", kind="stable", ignore_index=True)


@pytest.fixture(scope="module")
def grouped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A universe with a cross-section and an index (one atom), a universe of independent members, and two
    instruments a cross-asset feature links; one long table of every symbol and day."""
    universes = {"ranked": {"from": "book", "match": "A[0-9]+"}, "plain": {"from": "book", "match": "B[0-9]+"}}
    project = book_project(universes=universes, instruments={"x": {"symbol": "X"}, "y": {"symbol": "Y"}})
    specs = {"project.yaml": project, "features.yaml": {"spec_version": 1, "features": GROUP_FEATURES}}
    root = make_project(tmp_path_factory.mktemp("grouped") / "p", specs, {"data/book.parquet": _book()}).root
    _compile(root)
    return root


def _split(root: Path, size: int) -> list[tuple[str, ...]]:
    manifest = with_members(load_manifest(root))
    at = columns_by_interval(manifest, None, None, None)
    groups = entity_groups(manifest, at, size)
    columns = sorted(k for g in groups for keys in g.at.values() for k in keys)
    assert columns == sorted(k for keys in at.values() for k in keys)  # every column in exactly one group
    for g in groups:  # a group's columns, and all they need, read only its instruments
        for key in with_dependencies(manifest, [k for keys in g.at.values() for k in keys]):
            assert manifest.instruments_read[key] <= set(g.instruments), key
    return [g.instruments for g in groups]


def test_groups_keep_linked_instruments_together_and_split_the_rest(grouped: Path) -> None:
    manifest = with_members(load_manifest(grouped))
    keys = [k for keys in columns_by_interval(manifest, None, None, None).values() for k in keys]
    linked = [("a1", "a2", "a3"), ("b1",), ("b2",), ("b3",), ("b4",), ("x", "y")]
    assert atoms(manifest, keys) == linked
    assert _split(grouped, 1) == linked
    assert _split(grouped, 3) == [("a1", "a2", "a3"), ("b1", "b2", "b3"), ("b4", "x", "y")]
    assert _split(grouped, 2) == [("a1", "a2", "a3"), ("b1", "b2"), ("b3", "b4"), ("x", "y")]
    assert _split(grouped, 100) == [tuple(i for a in linked for i in a)]
    # the cross-section's and the index's columns are in the universe's group, the cross-asset one in x and y's
    groups = entity_groups(manifest, columns_by_interval(manifest, None, None, None), 1)
    assert ("index_ranked", None) in groups[0].at[1800] and ("vwap_rank", "a3") in groups[0].at[1800]
    assert groups[-1].at[1800][-1] == ("basis_x_y", None)
    # a selection of the plain universe's volume alone reads none of the others
    only = columns_by_interval(manifest, ["volume"], None, None)
    assert [g.instruments for g in entity_groups(manifest, only, 1)] == [(i,) for a in linked for i in a]


def test_groups_of_about_equal_weight(grouped: Path) -> None:
    """With weights, as many groups as the size gives (9 instruments in groups of 2: 5), packed to about equal
    weight: a busy b1 is a group of its own, where by count it shared one with b2."""
    manifest = with_members(load_manifest(grouped))
    at = columns_by_interval(manifest, None, None, None)
    even = {name: 1.0 for name in ("a1", "a2", "a3", "b1", "b2", "b3", "b4", "x", "y")}
    by_count = [g.instruments for g in entity_groups(manifest, at, 2)]
    assert [g.instruments for g in entity_groups(manifest, at, 2, even)] == by_count  # equal weights: as by count
    busy = {**even, "b1": 6.0}
    weighted = [g.instruments for g in entity_groups(manifest, at, 2, busy)]
    assert weighted == [("a1", "a2", "a3"), ("b1",), ("b2", "b3", "b4"), ("x", "y")]
    heaviest = {
        name: max(sum(busy[i] for i in g) for g in split) for name, split in [("count", by_count), ("w", weighted)]
    }
    assert heaviest == {"count": 7.0, "w": 6.0}
    assert [g.instruments for g in entity_groups(manifest, at, 2, dict.fromkeys(even, 0.0))] == by_count  # no bytes
    assert entity_groups(manifest, at, 1, busy)[1].at == entity_groups(manifest, at, 1)[1].at  # the same columns


def test_input_bytes_are_each_instrument_s_files(multi_day: Path) -> None:
    """Per-symbol files weigh their own instrument; the days weighed are the run's (a --date run: that day)."""
    manifest = load_manifest(multi_day)
    plan = plan_run(manifest, RunOptions())
    weights = dask_engine.input_bytes(plan)
    files = {f"s{k}": sorted((multi_day / "data" / f"S{k}").glob("*.parquet")) for k in range(3)}
    assert weights == {name: float(sum(f.stat().st_size for f in found)) for name, found in files.items()}
    assert len(files["s0"]) == 6 and weights["s0"] != weights["s1"]
    one = plan_run(manifest, RunOptions(dates=[plan.dates[2]]))
    assert dask_engine.input_bytes(one)["s2"] == files["s2"][2].stat().st_size


def test_input_bytes_share_a_file_of_many_symbols(grouped: Path) -> None:
    plan = plan_run(load_manifest(grouped), RunOptions())
    weights = dask_engine.input_bytes(plan)
    size = (grouped / "data" / "book.parquet").stat().st_size
    assert set(weights.values()) == {size / 9} and len(weights) == 9


def test_the_shipped_projects_are_one_group_each(sample_project: FspecProject, tmp_path: Path) -> None:
    """Cross-asset features link all six instruments of the root project; cross-sections all 200 stocks of the
    closing auction: neither splits, whatever the group size."""
    assert _split(sample_project.root, 1) == [("mes", "mnq", "qqq", "spxw", "spy", "vxx")]
    auction = _split(_copy_example("closing_auction", tmp_path), 1)
    assert len(auction) == 1 and len(auction[0]) == 200


def test_the_automatic_group_size() -> None:
    assert auto_group_size(50, 20, 2) == 50  # 20 days keep 2 workers busy: whole days
    assert auto_group_size(50, 4, 2) == 50
    assert auto_group_size(50, 3, 2) == 25  # 3 days for 4 tasks: 2 groups a day
    assert auto_group_size(50, 1, 8) == 4  # one day on 8 workers: 16 groups
    assert auto_group_size(3, 1, 8) == 1
    assert auto_group_size(0, 1, 1) == 1


def test_a_group_reads_the_whole_day_s_halo(grouped: Path) -> None:
    """b2 has no rows on the second day: the whole day's halo of the fourth is the two sessions before it, the
    first of them NaN for b2, while b2's own two sessions before it are other days (the first and the third). A
    group is given the whole day's, and computes what the local run writes."""
    manifest = with_members(load_manifest(grouped))
    day, key = GROUP_DAYS[3], ("volume_mean", "b2")
    every = with_dependencies(manifest, columns_by_interval(manifest, None, None, None)[1800])
    whole = Engine(manifest).sessions_of(day, 1800, every)
    own = Engine(manifest)._session_days(day, ["b2"], len(whole) - 1)
    assert whole == list(GROUP_DAYS[1:]) and own == [GROUP_DAYS[0], GROUP_DAYS[2], day]
    engine = Engine(manifest, only=frozenset({"b2"}))
    given = engine.compute(day, 1800, with_dependencies(manifest, [key]), whole).values[key]
    expect(cli("run", "--project", grouped, "--date", day, "--select", "volume_mean"), 0)
    written = pd.read_parquet(grouped / "out" / f"features_{day.replace('-', '')}_1800s.parquet")
    np.testing.assert_array_equal(given, written["volume_mean_1800s_b2"])
    skipped = Engine(manifest).compute(day, 1800, with_dependencies(manifest, [key]), own).values[key]
    assert not np.array_equal(skipped, given, equal_nan=True)  # what a group's own halo would have written


@pytest.mark.parametrize("size", [1, 2, 3, 100])
def test_groups_of_any_size_are_byte_identical(grouped: Path, tmp_path: Path, scheduler: str, size: int) -> None:
    """Every size gives the local run's files and warnings: absences of one day in three groups are one line."""
    local = expect(cli("run", "--project", grouped, "--out", tmp_path / "local"), 0)
    remote = _dask(grouped, tmp_path / "dask", scheduler, "--group-size", size)
    assert _files(tmp_path / "dask") == _files(tmp_path / "local") and len(_files(tmp_path / "local")) == 4
    warned = [line for line in remote.splitlines() if line.startswith("warning:")]
    assert warned == [line for line in local.splitlines() if line.startswith("warning:")]
    absent = f"warning: 3 instruments have no data on {GROUP_DAYS[1]} (a2, b2, b3): their columns are NaN that day"
    assert absent in warned
    groups = {1: 6, 2: 4, 3: 3, 100: 1}[size]
    told = f"x {groups} group(s)" if groups > 1 else "4 task(s), one per day"
    assert told in remote


def test_a_date_subset_of_groups_reads_its_halo_outside_it(grouped: Path, tmp_path: Path, scheduler: str) -> None:
    expect(cli("run", "--project", grouped, "--date", GROUP_DAYS[3], "--out", tmp_path / "local"), 0)
    out = _dask(grouped, tmp_path / "dask", scheduler, "--date", GROUP_DAYS[3], "--group-size", 1)
    assert "1 day(s) x 6 group(s)" in out
    assert _files(tmp_path / "dask") == _files(tmp_path / "local")


def test_groups_and_event_grids_are_byte_identical(tmp_path: Path, scheduler: str) -> None:
    """The fills example with bar features of its tokens too: each day's event grid is a task of its own beside
    the tokens' groups, and its file is the local run's."""
    root = tmp_path / "fills"
    shutil.copytree(REPO / "examples" / "pretrade_fills", root, ignore=shutil.ignore_patterns("build", "out"))
    with (root / "specs" / "project.yaml").open("a", encoding="utf-8") as fh:
        fh.write("intervals: [1h]\n")
    bars = "spec_version: 1\nfeatures:\n  - name: token_volume\n    formula: sum(market_trades.size)\n"
    bars += "  - name: token_volume_mean\n    formula: rolling_mean(token_volume, 30)\n"
    (root / "specs" / "bars.yaml").write_text(bars, encoding="utf-8")
    _compile(root)
    expect(cli("run", "--project", root, "--out", tmp_path / "local"), 0)
    out = _dask(root, tmp_path / "dask", scheduler, "--group-size", 1)
    assert "and the event grids" in out
    local = _files(tmp_path / "local")
    assert _files(tmp_path / "dask") == local
    assert {n.rsplit("_", 1)[1] for n in local} == {"3600s.parquet", "fills.parquet"}


def test_a_bad_file_in_a_group_fails_with_the_local_engine_s_message(tmp_path: Path, scheduler: str) -> None:
    """Two groups of one day fail on different files: the error is the one a whole day's run reports (s10 is read
    before s2: pairs are in plain order), whatever the order of the groups; the earlier days are written."""
    root = _multi_day(tmp_path / "p", 4, rows=4_000, instruments=11)
    days = _days("2024-03-04", 4)
    for symbol, content in (("S2", b"not a parquet file"), ("S10", b"")):
        (root / bench_project.PATH.format(symbol=symbol, date=days[2].replace("-", ""))).write_bytes(content)
    local = expect(cli("run", "--project", root, "--out", tmp_path / "local"), 1)
    remote = _dask(root, tmp_path / "d", scheduler, "--group-size", 1, code=1)
    assert _message(remote) == _message(local)
    assert "S10" in _message(local) and "S2/" not in _message(local)
    written = {p.name for p in (tmp_path / "d").iterdir()}
    assert {f"features_{d.replace('-', '')}_30s.parquet" for d in days[:2]} <= written
    assert f"features_{days[2].replace('-', '')}_30s.parquet" not in written
    assert not [n for n in written if n.startswith(TEMP_PREFIX)]


def test_a_worker_killed_in_a_group_task_reruns_it(tmp_path: Path, scheduler: str) -> None:
    """SIGKILL a worker while it computes a group: the group (and whatever results the dead worker held) is
    computed again, the day's files are the local run's, and no temp file is left."""
    root = _multi_day(tmp_path / "p", 4, rows=80_000, instruments=5)
    expect(cli("run", "--project", root, "--out", tmp_path / "local"), 0)
    killed: list[str] = []

    def kill_one() -> None:
        with distributed.Client(scheduler, set_as_default=False) as client:
            pids = client.run(os.getpid)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not killed:
                for address, keys in client.processing().items():
                    if address in pids and any(str(k).startswith("fspec-group") for k in keys):
                        os.kill(pids[address], signal.SIGKILL)
                        killed.append(address)
                        break
                time.sleep(0.02)

    killer = threading.Thread(target=kill_one)
    killer.start()
    out = _dask(root, tmp_path / "dask", scheduler, "--group-size", 1)
    killer.join()
    assert killed, "no group task was seen running"
    assert "4 day(s) x 4 group(s)" in out
    assert _files(tmp_path / "dask") == _files(tmp_path / "local") and len(_files(tmp_path / "local")) == 4
    assert not [p for p in (tmp_path / "dask").iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_group_size_is_an_option_of_the_dask_engine(sample_project: FspecProject) -> None:
    out = expect(cli("run", "--project", sample_project.root, "--group-size", 2), 2)
    assert "--group-size and --days-per-task are options of --engine dask" in out


# ---- tasks of several days: the warm-up of a day from the day before's slots ----------------------------------


@pytest.mark.parametrize("per_task", [2, 4, 6])
def test_tasks_of_several_days_are_byte_identical(
    multi_day: Path, tmp_path: Path, scheduler: str, per_task: int
) -> None:
    """A task of consecutive days reads the halo of its first day from files and the later days' from the slots
    the earlier days left (a window of three sessions: a task of 2 days reaches into the task before it)."""
    out = _dask(multi_day, tmp_path / "dask", scheduler, "--days-per-task", per_task)
    expect(cli("run", "--project", multi_day, "--out", tmp_path / "local"), 0)
    assert _files(tmp_path / "dask") == _files(tmp_path / "local") and len(_files(tmp_path / "local")) == 6
    assert f"{-(-6 // per_task)} task(s) of up to {per_task} day(s)" in out


def test_the_automatic_days_per_task() -> None:
    assert dask_engine.auto_days_per_task(20, 2) == 5
    assert dask_engine.auto_days_per_task(20, 8) == 1
    assert dask_engine.auto_days_per_task(3, 1) == 1
    assert dask_engine.auto_days_per_task(1, 1) == 1


def test_a_bad_file_in_a_task_of_several_days(multi_day: Path, tmp_path: Path, scheduler: str) -> None:
    """The fourth day's file is bad: the task of days 3-4 stops there (day 3 is written, as by the local run), the
    task of days 5-6 reads it in its halo and fails too; the error is the local run's."""
    root = tmp_path / "bad"
    shutil.copytree(multi_day, root, symlinks=True)
    days = _days("2024-03-04", 6)
    (root / bench_project.PATH.format(symbol="S1", date=days[3].replace("-", ""))).write_bytes(b"not parquet")
    local = expect(cli("run", "--project", root, "--out", tmp_path / "local"), 1)
    remote = _dask(root, tmp_path / "d", scheduler, "--days-per-task", 2, code=1)
    assert _message(remote) == _message(local)
    written = {p.name for p in (tmp_path / "d").iterdir()}
    assert written == {p.name for p in (tmp_path / "local").iterdir()}
    assert written == {f"features_{d.replace('-', '')}_30s.parquet" for d in days[:3]}


def test_groups_of_a_universe_ruled_by_day_are_byte_identical(tmp_path: Path, scheduler: str) -> None:
    """Membership by day counts the sessions on which any member has rows: its members are one group, even when
    no column links them (split, stock 3 alone would not see the day it missed as a session of the universe)."""
    import test_membership_pushdown as ruled

    specs = {"features.yaml": {"spec_version": 1, "features": ruled.FEATURES[:2]}}  # per member only
    made = ruled._project(tmp_path / "p", ruled._book(), {"sessions_before": 2}, specs)
    manifest = with_members(load_manifest(made.root))
    keys = [k for keys in columns_by_interval(manifest, None, None, None).values() for k in keys]
    assert atoms(manifest, keys) == [tuple(f"s{k}" for k in ruled.PRESENT)]
    local = expect(cli("run", "--project", made.root, "--out", tmp_path / "local"), 0)
    remote = _dask(made.root, tmp_path / "dask", scheduler, "--group-size", 1)
    assert _files(tmp_path / "dask") == _files(tmp_path / "local")
    warned = [line for line in remote.splitlines() if line.startswith("warning:")]
    assert warned == [line for line in local.splitlines() if line.startswith("warning:")]
