"""The engines behind ``fspec run``, one interface: ``run(manifest, options) -> written paths``.

``local`` computes the days in this process (runtime/run.py); ``dask`` sends tasks per day (or per day and entity
group) to a dask cluster (runtime/dask_engine.py, imported only when chosen: a local run never imports dask).
"""

from __future__ import annotations

from pathlib import Path

from fspec.errors import UsageError
from fspec.runtime.manifest import Manifest
from fspec.runtime.run import RunOptions

ENGINES = ("local", "dask")


def run(manifest: Manifest, options: RunOptions) -> list[Path]:
    if options.engine == "local":
        if options.scheduler or options.workers or options.group_size or options.days_per_task:
            raise UsageError(
                "--scheduler, --workers, --group-size and --days-per-task are options of --engine dask",
                "add --engine dask",
            )
        from fspec.runtime.run import run as run_local

        return run_local(manifest, options)
    if options.engine == "dask":
        try:
            from fspec.runtime import dask_engine
        except ImportError as exc:
            raise UsageError(
                f"--engine dask needs dask's distributed scheduler, which is not installed ({exc})",
                "pip install 'fspec[dask]'",
            ) from None
        return dask_engine.run(manifest, options)
    raise UsageError(f"--engine {options.engine}: no such engine", f"choose one of {', '.join(ENGINES)}")
