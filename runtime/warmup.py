"""Compile (or load from numba's disk cache) every kernel of a build before the first run needs it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fspec.runtime.kernels import load_kernel, reduce_session
from fspec.runtime.manifest import load_manifest


def warm_kernels(root: Path) -> int:
    """Call each generated kernel once on two ticks; returns how many kernels were warmed."""
    manifest = load_manifest(root)
    for kernel in manifest.kernels.values():
        module = load_kernel(root / kernel["path"], kernel["module"])
        ts = np.zeros(2, dtype=np.int64)
        cols = [np.ones(2) for _ in kernel["columns"]]
        reduce_session(module, ts, 0, 1, 1, cols, np.ones(len(kernel["params"])))
    return len(manifest.kernels)
