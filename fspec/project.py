"""Where a project's files are, and the hash that ties a build to the specs it came from."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from fspec import __version__
from fspec.errors import UsageError

SPEC_DIR = "specs"
BUILD_DIR = "build"
MANIFEST = "manifest.json"


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` that has a specs/ folder."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / SPEC_DIR).is_dir():
            return folder
    raise UsageError(
        f"no {SPEC_DIR}/ folder in {here} or above it", "run fspec inside a project, or pass --project DIR"
    )


TEST_SUFFIXES = (".test.yaml", ".test.yml")  # spec tests (fspec test): beside the specs, not part of them


def spec_files(root: Path) -> list[Path]:
    """The spec files under specs/ (spec tests aside: editing a test does not make the build stale)."""
    return sorted(
        p
        for p in (root / SPEC_DIR).rglob("*")
        if p.suffix in (".yaml", ".yml") and not p.name.endswith(TEST_SUFFIXES) and p.is_file()
    )


def spec_test_files(root: Path) -> list[Path]:
    """The spec test files under specs/ (*.test.yaml)."""
    return sorted(p for p in (root / SPEC_DIR).rglob("*") if p.name.endswith(TEST_SUFFIXES) and p.is_file())


def display_path(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


# A number (not a part of a name), with the "**" of an exponent before it if there is one.
_NUMBER = re.compile(rb"(\*\*\s*)?(?<![A-Za-z_0-9.])[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?")


def _masked(match: re.Match[bytes]) -> bytes:
    return match.group(0) if match.group(1) else b"0"


def spec_shape(root: Path) -> str:
    """sha256 over the fspec version and every spec file's relative path and bytes with each number written as
    0 but exponents: the same after an edit of such numbers alone (a constant of a formula, which its kernel
    reads as a parameter, or a window), which compiles nothing new as a rule (an exponent is in the kernel's
    code)."""
    digest = hashlib.sha256(__version__.encode())
    for path in spec_files(root):
        digest.update(display_path(root, path).encode() + b"\0" + _NUMBER.sub(_masked, path.read_bytes()) + b"\0")
    return digest.hexdigest()


def spec_hash(root: Path) -> str:
    """sha256 over the fspec version and every spec file's relative path and bytes."""
    digest = hashlib.sha256(__version__.encode())
    for path in spec_files(root):
        digest.update(display_path(root, path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
