"""Small file helpers shared by the compiler, the runtime and the CLI."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def display(path: Path, root: Path) -> str:
    """``path`` relative to the project root when it is inside it, else as given: how messages name files."""
    if ".." not in path.parts:  # the common case, without a realpath of every folder (a file read is named)
        with contextlib.suppress(ValueError):
            return path.relative_to(root).as_posix()
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def follow_umask(path: str | os.PathLike[str]) -> None:
    """Give a ``mkstemp`` file (always 0600) the mode any new file gets under the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)
