"""What `fspec run` loads before its first kernel call, checked in fresh processes (a test process has
imported everything already)."""

from __future__ import annotations

import subprocess
import sys

from conftest import FspecProject


def _fresh(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_reading_data_does_not_wait_for_numba() -> None:
    """The run task and the readers import without numba: the warming thread imports it beside the reads."""
    out = _fresh("import sys, fspec.runtime.run, fspec.runtime.sources; print('numba' in sys.modules)")
    assert out == "False"


def test_numba_s_target_loads_without_importing_scipy_linalg() -> None:
    code = (
        "import sys\n"
        "from fspec.runtime.kernels import load_numba_target\n"
        "finders = list(sys.meta_path)\n"
        "load_numba_target(skip_blas_check=True)\n"
        "from numba import njit\n"
        "print('scipy.linalg' in sys.modules, sys.meta_path == finders, njit(lambda x: x + 1)(1))\n"
    )
    assert _fresh(code) == "False True 2"


def test_a_run_of_the_shipped_project_imports_no_pandas(sample_project: FspecProject) -> None:
    """pandas costs 0.3 s to import, pyarrow.compute 40 ms; the shipped sources (parquet: numbers with nulls,
    integer sizes, zone-aware times, an option chain's text rights) and the writer need neither."""
    args = ["run", "--project", str(sample_project.root), "--out", str(sample_project.root / "out_nopandas")]
    code = (
        "import sys\n"
        "from fspec.cli import main\n"
        f"main({args!r}, standalone_mode=False)\n"
        "print('pandas' in sys.modules, 'pyarrow.compute' in sys.modules)\n"
    )
    assert _fresh(code).splitlines()[-1] == "False False"
