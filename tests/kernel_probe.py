"""Run every kernel of a compiled project on the same random ticks and save the slots (``python
tests/kernel_probe.py ROOT OUT.npz``): test_codegen runs it with and without NUMBA_DISABLE_JIT=1."""

import sys
from pathlib import Path

import numpy as np

from fspec.runtime.kernels import load_kernel, reduce_session
from fspec.runtime.manifest import load_manifest

root = Path(sys.argv[1])
manifest = load_manifest(root)
rng = np.random.default_rng(1)
slots = {}
for kernel in manifest.kernels.values():
    module = load_kernel(root / kernel.path, kernel.module)
    ts = np.sort(rng.integers(0, 10_000, 500)).astype(np.int64)
    columns = [rng.normal(100, 1, 500) for _ in kernel.columns]
    columns[0][::37] = np.nan
    bar_ends = np.arange(1000, 10_001, 1000, dtype=np.int64)
    slots[kernel.module] = reduce_session(module, ts, bar_ends, columns, np.ones(len(kernel.params)))
np.savez(sys.argv[2], **slots)
