"""`fspec compile` warms its kernels on forked workers beside its own process (runtime/warmup.py).

A cold build of several kernels compiles them side by side; what the stamp (build/warmed.json) records, and
what numba's cache holds afterwards, must be what one process would have warmed: the run after the compile
compiles nothing either way. A worker that fails hands its calls back to the compile's own process, which
reports the error as a compile on one process would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fspec.runtime import warmup
from fspec.runtime.warmup import _Worker, shares

TWO_SOURCES = """\
spec_version: 1
sources:
  trades:
    path: data/{symbol}/{date}_trades.parquet
    time: {column: time, timezone: America/New_York}
    kind: events
    columns: {price: float64, size: float64}
  quotes:
    path: data/{symbol}/{date}_quotes.parquet
    time: {column: time, timezone: America/New_York}
    kind: events
    columns: {bid: float64, ask: float64}
instruments:
  abc: {symbol: abc}
intervals: [60s]
session: {timezone: America/New_York, open: "09:30", close: "10:00"}
"""
FEATURES = """\
spec_version: 1
features:
  - name: volume
    formula: sum(trades.size)
  - name: realized_vol
    formula: sqrt(sum(diff(log(trades.price)) ** 2))
  - name: spread
    formula: ffill(last(quotes.ask - quotes.bid))
  - name: mean_volume
    formula: rolling_mean(volume, 3)
  - name: prev_spread
    formula: lag(spread, 1)
"""


def _project(root: Path) -> Path:
    (root / "specs").mkdir(parents=True)
    (root / "specs" / "project.yaml").write_text(TWO_SOURCES, encoding="utf-8")
    (root / "specs" / "features.yaml").write_text(FEATURES, encoding="utf-8")
    ts = pd.date_range("2024-03-04 09:29:00", "2024-03-04 10:01:00", freq="17s")
    n = len(ts)
    times = ts.strftime("%Y-%m-%d %H:%M:%S.%f")
    folder = root / "data" / "abc"
    folder.mkdir(parents=True)
    pd.DataFrame(
        {"time": times, "price": [100 + (i % 5) * 0.01 for i in range(n)], "size": [1.0 + i for i in range(n)]}
    ).to_parquet(folder / "20240304_trades.parquet", index=False)
    pd.DataFrame({"time": times, "bid": [99.99 + (i % 3) * 0.01 for i in range(n)], "ask": [100.02] * n}).to_parquet(
        folder / "20240304_quotes.parquet", index=False
    )
    return root


def _fspec(*args: object, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "fspec.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**{k: v for k, v in os.environ.items() if k != "FSPEC_DEBUG"}, **env},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_two_processes_warm_what_one_process_warms_and_the_run_compiles_nothing(tmp_path: Path) -> None:
    """The same project compiled cold on one process and on two (a fresh numba cache each): the stamps name
    the same functions, each kernel with cache files of the same names, and the first run after either adds
    nothing to numba's cache."""
    stamps, outputs = {}, {}
    for processes in ("1", "2"):
        root = _project(tmp_path / f"p{processes}")
        cache = tmp_path / f"cache{processes}"
        env = {"NUMBA_CACHE_DIR": str(cache), "FSPEC_THREADS": processes}
        said = _fspec("compile", "--project", root, cwd=root, env=env).stdout
        count = int(re.search(r"\((\d+) compiled function", said).group(1))  # type: ignore[union-attr]
        assert count >= 4, said  # two kernels, two bar operators
        assert ("on 2 processes" in said) == (processes == "2"), said
        stamp = json.loads((root / "build" / "warmed.json").read_text(encoding="utf-8"))
        kernels = [k for k in stamp["warmed"] if k.startswith("kernel ")]
        assert len(kernels) == 2
        for key in kernels:
            assert stamp["cache"][key] and all(Path(f).exists() for f in stamp["cache"][key]), key
        assert stamp["helpers"] and all(Path(f).exists() for f in stamp["helpers"])
        stamps[processes] = (
            sorted(k.split()[1] if k.startswith("kernel ") else k for k in stamp["warmed"]),
            sorted(sorted(Path(f).name for f in stamp["cache"][k]) for k in kernels),
            sorted(Path(f).name for f in stamp["helpers"]),
        )
        before = sorted(p.name for p in cache.rglob("*") if p.is_file())
        _fspec("run", "--project", root, cwd=root, env=env)
        assert sorted(p.name for p in cache.rglob("*") if p.is_file()) == before, "the run compiled something"
        assert "(0 compiled function(s)" in _fspec("compile", "--project", root, cwd=root, env=env).stdout
        outputs[processes] = (root / "out" / "features_20240304_60s.parquet").read_bytes()
    assert stamps["1"] == stamps["2"]
    assert outputs["1"] == outputs["2"]


def _key(name: str, size: int) -> str:
    return f"kernel {name} {size} 1"


def test_shares_are_balanced_and_keep_each_functions_types_together() -> None:
    """Largest first into the cheapest share; an operator's calls for several argument types (one numba index
    file) in one share, and the numpy fallbacks together."""
    calls = [
        (_key("big", 30_000), None),
        ("bar rolling_mean 1 int", None),
        (_key("small", 5_000), None),
        ("bar rolling_mean 1 float", None),
        (_key("medium", 20_000), None),
        ("numpy sign", None),
        ("bar lag 1 int", None),
        ("numpy erf", None),
    ]
    mine, theirs = shares(calls, 2)  # type: ignore[arg-type]
    keys = [[k for k, _ in share] for share in (mine, theirs)]
    assert sorted(k for share in keys for k in share) == sorted(k for k, _ in calls)
    for together in (["bar rolling_mean 1 int", "bar rolling_mean 1 float"], ["numpy sign", "numpy erf"]):
        assert any(set(together) <= set(share) for share in keys), together
    assert _key("big", 30_000) in keys[0] and _key("medium", 20_000) in keys[1]  # the largest apart
    for share in keys:  # each in the order of the calls
        assert share == [k for k, _ in calls if k in share]
    costs = [sum(warmup._cost(k) for k in share) for share in keys]
    assert max(costs) - min(costs) <= max(warmup._cost(k) for k, _ in calls)  # as even as the largest call allows
    assert [len(s) for s in shares(calls, 1)] == [len(calls)]  # type: ignore[arg-type]
    assert len(shares(calls[:1], 4)) == 1  # type: ignore[arg-type]
    assert len(shares(calls, 16)) == 6  # type: ignore[arg-type]  (three kernels, two operators, the numpy calls)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux only")
def test_a_worker_reports_what_it_warmed_or_fails_as_none(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    worker = _Worker.fork([("bar lag 1 int", lambda: marker.write_text(str(os.getpid())))])
    assert worker is not None
    done = worker.result()
    assert done is not None and done.cache == {} and isinstance(done.helpers, set)
    assert int(marker.read_text()) != os.getpid()  # it ran in the worker

    def fails() -> None:
        raise RuntimeError("numba could not compile it")

    failing = _Worker.fork([("bar lag 1 int", fails)])
    assert failing is not None and failing.result() is None
    slow = _Worker.fork([("bar lag 1 int", lambda: __import__("time").sleep(60))])
    assert slow is not None and slow.result(kill=True) is None  # killed at once, not waited for


def test_a_call_that_fails_in_a_worker_is_run_again_here_and_its_error_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compile's own process runs a failed worker's calls itself, so the error is the one a compile on one
    process reports (and raises), not a worker's exit status."""
    if not warmup._can_fork():
        pytest.skip("this process runs other threads: no worker is forked")
    ran: list[int] = []

    def ok() -> None:
        ran.append(os.getpid())

    def broken() -> None:
        raise ValueError("kernel could not be compiled")

    calls = [(_key("a", 90_000), ok), (_key("b", 100), broken)]
    monkeypatch.setattr(warmup, "load_manifest", lambda root: None)
    monkeypatch.setattr(warmup, "warm_calls", lambda manifest: calls)
    monkeypatch.setattr(warmup, "load_numba_target", lambda skip=False: None)
    monkeypatch.setattr(warmup, "processes", lambda: 2)
    (tmp_path / "build").mkdir()
    with pytest.raises(ValueError, match="kernel could not be compiled"):
        warmup.warm_kernels(tmp_path)
    assert ran == [os.getpid()]  # the first share ran here; the worker's failed and was run again here


AHEAD = """\
import sys
from pathlib import Path

from fspec.compiler.build import compile_project
from fspec.runtime.warmup import Ahead, warm_kernels

root = Path(sys.argv[1])
ahead = Ahead(root)
compile_project(root, on_new_kernel=ahead.start)
report = warm_kernels(root, ahead=ahead)
print(report.functions, report.processes, ahead.pid > 0, "numba" in sys.modules)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux only")
def test_an_edit_that_adds_a_slot_is_compiled_by_a_worker_started_when_its_file_is_written(tmp_path: Path) -> None:
    """The worker started ahead (when the new kernel file is written) loads numba while the build is written and
    compiles the new part: the compile's own process never imports numba. An edit of a constant writes no new
    file, so no worker is started; and the run after either compiles nothing."""
    root = _project(tmp_path / "p")
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "cache"), "FSPEC_THREADS": "2"}
    _fspec("compile", "--project", root, cwd=root, env=env)
    features = root / "specs" / "features.yaml"
    text = features.read_text(encoding="utf-8")

    def compile_() -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", AHEAD, str(root)],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, **env},
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    features.write_text(text + "  - name: top\n    formula: max(trades.price * trades.size * 3)\n", encoding="utf-8")
    assert compile_() == ["1", "1", "True", "False"]  # one kernel part, by the worker; no numba here
    features.write_text(text + "  - name: top\n    formula: max(trades.price * trades.size * 2)\n", encoding="utf-8")
    assert compile_() == ["0", "1", "False", "False"]  # a constant: the same file, nothing compiled
    cache = tmp_path / "cache"
    before = sorted(p.name for p in cache.rglob("*") if p.is_file())
    _fspec("run", "--project", root, cwd=root, env=env)
    assert sorted(p.name for p in cache.rglob("*") if p.is_file()) == before, "the run compiled something"
    got = pd.read_parquet(root / "out" / "features_20240304_60s.parquet")
    trades = pd.read_parquet(root / "data" / "abc" / "20240304_trades.parquet")
    ts = pd.to_datetime(trades["time"]).dt.tz_localize("America/New_York")
    inside = (ts >= "2024-03-04 09:30") & (ts < "2024-03-04 10:00")
    want = (trades["price"] * trades["size"] * 2)[inside].groupby(ts[inside].dt.floor("60s")).max()
    (column,) = [c for c in got.columns if c.startswith("top")]
    assert len(want) == 30
    np.testing.assert_array_equal(got[column].to_numpy(), want.to_numpy())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux only")
def test_a_worker_started_ahead_is_stopped_when_nothing_is_to_be_warmed(tmp_path: Path) -> None:
    ahead = warmup.Ahead(tmp_path)
    if not warmup._can_fork() or warmup.processes() < 2:
        pytest.skip("no worker is forked here (one core, or other threads)")
    ahead.start()
    assert ahead.started
    pid = ahead.pid
    ahead.cancel()
    assert not ahead.started
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, 0)  # reaped: no zombie is left behind
    ahead.cancel()  # twice is harmless


def test_a_worker_is_started_before_the_build_only_if_the_specs_changed_in_more_than_numbers(tmp_path: Path) -> None:
    """`fspec compile` forks its first worker at once when the specs changed in more than their numbers since
    the build was warmed (or nothing was warmed): a new feature, a new form, a new exponent. An edit of a
    constant or a window is compiled by no one, and starts nothing before the build shows a new kernel."""
    root = _project(tmp_path / "p")
    assert warmup.likely_to_compile(root)  # never warmed
    (root / "build").mkdir()
    features = root / "specs" / "features.yaml"
    text = features.read_text(encoding="utf-8")
    probe = "  - name: probe_2\n    formula: sum(where(trades.price > {c}, trades.size ** {p}, 0))\n"
    features.write_text(text + probe.format(c=100.5, p=2), encoding="utf-8")
    warmup._write_stamp(root / "build" / warmup.WARMED, root, [], {}, set())
    assert not warmup.likely_to_compile(root)
    features.write_text(text.replace("rolling_mean(volume, 3)", "rolling_mean(volume, 12)") + probe.format(c=99, p=2))
    assert not warmup.likely_to_compile(root)  # a constant and a window
    features.write_text(text + probe.format(c=100.5, p=3), encoding="utf-8")
    assert warmup.likely_to_compile(root)  # an exponent is in the kernel's code
    features.write_text(text + probe.format(c=100.5, p=2) + "  - name: top\n    formula: max(trades.price)\n")
    assert warmup.likely_to_compile(root)  # a new feature
    features.write_text(text + probe.format(c=100.5, p=2), encoding="utf-8")
    assert not warmup.likely_to_compile(root)
