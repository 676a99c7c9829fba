"""Shared test helpers: build a throw-away fspec project, compile it in-process, run it, read its output."""

from __future__ import annotations

import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner, Result

from fspec.cli import main
from fspec.project import spec_files, spec_test_files

REPO = Path(__file__).resolve().parents[1]


@dataclass
class FspecProject:
    """A project folder made by :func:`make_project`."""

    root: Path

    def compile(self) -> None:
        from fspec.compiler.build import compile_project

        compile_project(self.root)

    def run(self, dates: list[str] | None = None, intervals: list[int] | None = None) -> list[Path]:
        """``fspec run`` in-process; data warnings (e.g. unsorted input that was sorted) are swallowed."""
        from fspec.runtime.manifest import load_manifest
        from fspec.runtime.run import RunOptions, run

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return run(load_manifest(self.root), RunOptions(dates=dates, intervals=intervals))

    def output(self, day: str, interval: int) -> pd.DataFrame:
        return pd.read_parquet(self.root / "out" / f"features_{day.replace('-', '')}_{interval}s.parquet")


def make_project(
    root: Path,
    specs: dict[str, str | dict[str, Any]],
    data: dict[str, pd.DataFrame] | None = None,
    links: dict[str, Path] | None = None,
) -> FspecProject:
    """Write ``specs/<name>`` (YAML text or a dict), data frames as parquet at their relative paths, and
    symlinks (relative path -> existing file or folder) under ``root``."""
    (root / "specs").mkdir(parents=True, exist_ok=True)
    for name, content in specs.items():
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        (root / "specs" / name).write_text(text, encoding="utf-8")
    for rel, frame in (data or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False)
    for rel, target in (links or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)
    return FspecProject(root)


def shipped_specs() -> dict[str, str]:
    """The repository's shipped spec files, by file name (its spec tests, ``*.test.yaml``, aside)."""
    return {p.name: p.read_text(encoding="utf-8") for p in spec_files(REPO)}


def shipped_spec_tests() -> dict[str, str]:
    """The shipped spec tests (``specs/*.test.yaml``), by file name."""
    return {p.name: p.read_text(encoding="utf-8") for p in spec_test_files(REPO)}


@pytest.fixture(scope="session")
def sample_project(tmp_path_factory: pytest.TempPathFactory) -> FspecProject:
    """The shipped specs on the bundled SPY sample (data linked, not copied), compiled and run."""
    project = make_project(
        tmp_path_factory.mktemp("sample"), shipped_specs(), links={"data/sample": REPO / "data" / "sample"}
    )
    project.compile()
    project.run()
    return project


# ---- running the CLI in tests -------------------------------------------------------------------------


def cli(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)


def expect(result: Result, code: int) -> str:
    """Assert a clean exit with ``code``; return everything the user saw (stdout and stderr)."""
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        pytest.fail(f"uncaught {type(exc).__name__} (exit {result.exit_code}):\n{result.output}\n{tb}")
    out = result.output
    assert result.exit_code == code, f"exit {result.exit_code}, expected {code}:\n{out}"
    assert "Traceback" not in out, out
    assert "internal error" not in out, out
    return out


def book_project(symbol: str = "sym", **entries: Any) -> dict[str, Any]:
    """A project whose one source ``book`` is data/book.parquet, a long table of trades (``ts``, the symbol
    column, ``price``, ``size``) of every symbol, on 30-minute bars of New York's regular session; ``entries``
    adds the project's universes: or instruments:."""
    return {
        "spec_version": 1,
        "sources": {
            "book": {
                "path": "data/book.parquet",
                "symbol": symbol,
                "time": "ts",
                "columns": {"price": "float64", "size": "float64"},
            }
        },
        **entries,
        "intervals": ["30m"],
        "session": {"timezone": "America/New_York", "open": "09:30", "close": "16:00"},
    }
