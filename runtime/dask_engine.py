"""The dask engine: one task per day on a dask cluster (``fspec run --engine dask``).

Without ``--scheduler`` a ``LocalCluster`` of ``--workers`` processes (default: one per core) is started for the
run and closed after it; with an address the run uses that cluster and leaves it running. The client makes the
local run's checks first (``plan_run``: dates with data, ``--select`` guard, leftovers), checks every worker's
fspec version, then submits one :func:`~fspec.runtime.tasks.run_day` per day and follows their futures. A task
that fails on bad data fails the run with the local engine's message; a worker lost mid-task (killed, out of
memory) makes the scheduler run its task again elsewhere, and the temp file it left is removed.

This module imports ``distributed``: only ``--engine dask`` imports it (see runtime/engines.py).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

from distributed import Client, Future, LocalCluster, as_completed
from distributed.scheduler import KilledWorker

from fspec import __version__
from fspec.errors import ClusterError
from fspec.files import display
from fspec.runtime.manifest import Manifest
from fspec.runtime.run import RunOptions, plan_run, tell_grids
from fspec.runtime.sources import DataWarning
from fspec.runtime.tasks import DayOutcome, DayTask, run_day
from fspec.runtime.universe import universe_symbols
from fspec.runtime.write import remove_leftovers

CONNECT_SECONDS = 5  # reaching a scheduler given by --scheduler
WORKERS_SECONDS = 30  # a reached cluster's workers (--workers N of them, at least one)


def run(manifest: Manifest, options: RunOptions) -> list[Path]:
    """Compute and write every requested (date, interval) on a dask cluster: one task per day."""
    plan = plan_run(manifest, options)
    root = plan.manifest.root.resolve()
    members = universe_symbols(manifest)  # found once: every day of the run has the same members
    tasks = [
        DayTask(
            root=str(root),
            day=day,
            intervals=tuple(plan.intervals),
            at=plan.at,
            out_dir=str(plan.out_dir.resolve()),
            members=members,
            spec_hash=manifest.data.spec_hash,
            fspec_version=__version__,
            grids=tuple(plan.grids),
        )
        for day in plan.dates
    ]
    outcomes: dict[str, DayOutcome] = {}
    try:
        with _client(options) as client:
            _check_versions(client)
            futures = {
                client.submit(run_day, task, key=f"fspec-day-{task.day}-{os.urandom(4).hex()}", pure=False): task.day
                for task in tasks
            }
            done: Iterator[object] = as_completed(futures, loop=client.loop)
            if options.on_progress:
                done = iter(options.on_progress(done, len(futures)))
            for future in done:
                if future.status == "error":  # type: ignore[attr-defined]
                    raise _earliest_error(client, futures, futures[future])
                outcome = future.result()  # type: ignore[attr-defined]
                outcomes[outcome.day] = outcome
    except KilledWorker as exc:
        raise ClusterError(
            f"a day's task was lost with every worker that ran it ({exc})",
            "a worker dies on that day: check the workers' logs and memory (FSPEC_MEMORY bounds a run's caches)",
        ) from None
    finally:
        for path in remove_leftovers(plan.out_dir):  # the temp file of a task whose worker was lost
            shown = display(path, plan.manifest.root)
            warnings.warn(f"removed {shown}, left by a worker that was lost", DataWarning, stacklevel=2)
    seen: set[str] = set()
    written: list[Path] = []
    for day in plan.dates:  # in date order, as the local engine gives them; each warning once
        for text in outcomes[day].warnings:
            if text not in seen:
                seen.add(text)
                warnings.warn(text, DataWarning, stacklevel=2)
        written += [plan.out_dir / Path(p).name for p in outcomes[day].written]
        for name, counts in outcomes[day].grids.items():
            plan.engine.runners[name].counts.add(counts)
    tell_grids(plan.engine, plan.grids, options)
    return written


def _earliest_error(client: Client, futures: dict[Future, str], day: str) -> BaseException:
    """After ``day``'s task failed: the later days are cancelled, the earlier ones finish, and the error is the
    earliest failing day's, the one the local engine (in date order) reports."""
    client.cancel([f for f, d in futures.items() if d > day and not f.done()])
    for earlier in [f for f, d in futures.items() if d < day]:
        earlier.exception()  # until it is done (its own error or none)
    failed = min((f for f, d in futures.items() if d <= day and f.status == "error"), key=futures.__getitem__)
    return failed.exception()


@contextlib.contextmanager
def _client(options: RunOptions) -> Iterator[Client]:
    """A client of the given scheduler, or of a LocalCluster started (and closed) here."""
    note = options.on_note or (lambda text: None)
    if options.scheduler:
        try:
            client = Client(options.scheduler, timeout=CONNECT_SECONDS, set_as_default=False)
        except Exception as exc:  # refused, timed out, a malformed address, or not a dask scheduler answering
            raise ClusterError(
                f"--scheduler {options.scheduler}: cannot connect to a dask scheduler there "
                f"({type(exc).__name__}: {exc}; waited at most {CONNECT_SECONDS} s)",
                "start one ('dask scheduler', then 'dask worker ADDRESS' on each machine) and pass its address "
                "like tcp://host:8786, or leave out --scheduler to start a local cluster",
            ) from None
        with client:
            _wait_for_workers(client, options.workers or 1, options.scheduler)
            note(f"dask: {len(client.scheduler_info()['workers'])} worker(s) at {options.scheduler}")
            note(f"dashboard: {_dashboard(client)}")
            yield client
        return
    workers = options.workers or os.cpu_count() or 1
    # Each worker's engine spreads kernel calls over threads: share the cores out, unless FSPEC_THREADS says.
    env = {"FSPEC_THREADS": os.environ.get("FSPEC_THREADS") or str(max(1, (os.cpu_count() or 1) // workers))}
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        env=env,
        silence_logs=40,
    )
    with cluster, Client(cluster, set_as_default=False) as client:
        note(f"dask: a local cluster of {workers} worker process(es)")
        note(f"dashboard: {_dashboard(client)}")
        yield client


def _wait_for_workers(client: Client, n: int, address: str) -> None:
    try:
        client.wait_for_workers(n, timeout=WORKERS_SECONDS)
    except TimeoutError:
        have = len(client.scheduler_info()["workers"])
        raise ClusterError(
            f"--scheduler {address}: {have} worker(s) after {WORKERS_SECONDS} s, the run needs {n}",
            "start workers with 'dask worker ADDRESS' (or ask for fewer with --workers)",
        ) from None


def _dashboard(client: Client) -> str:
    try:
        import bokeh  # noqa: F401  (the dashboard needs it)
    except ImportError:
        return "not available (pip install bokeh)"
    return str(client.dashboard_link)


def _check_versions(client: Client) -> None:
    """Refuse a cluster whose workers run another fspec version than this client (each task checks it too)."""
    versions = client.get_versions(packages=["fspec"])
    for address, info in sorted(versions.get("workers", {}).items()):
        found = info.get("packages", {}).get("fspec")
        if found is None:
            raise ClusterError(
                f"worker {address} has no fspec installed (the client runs fspec {__version__}): refused",
                "install the same fspec version on every worker and on the client",
            )
        if found != __version__:
            raise ClusterError(
                f"worker {address} runs fspec {found}, the client fspec {__version__}: refused",
                "install the same fspec version on every worker and on the client",
            )
