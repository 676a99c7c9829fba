"""Load generated kernel files as modules.

numba's on-disk cache finds a kernel's cache only if its module is registered in ``sys.modules`` under a
stable name before the module runs; kernel file names are content hashes, so the name is stable.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

PACKAGE = "fspec_kernels"


def load_kernel(path: Path, module: str) -> ModuleType:
    name = f"{PACKAGE}.{module}"
    if name in sys.modules:
        return sys.modules[name]
    if PACKAGE not in sys.modules:
        package = ModuleType(PACKAGE)
        package.__path__ = []
        sys.modules[PACKAGE] = package
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load kernel {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[name]
        raise
    return mod
