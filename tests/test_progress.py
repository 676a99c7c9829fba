"""Progress of long commands (``fspec run`` days or dask tasks, ``fspec audit`` cuts, ``fspec compile``'s
warm-up, ``fspec docs`` files): a tqdm bar on stderr when it is a terminal, nothing when it is not (CI logs)."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from fspec import cli as cli_module
from tests.conftest import FspecProject

BAR_MARKS = ("\r", "%|", "/s]", "it/s")  # what a tqdm bar writes: carriage returns, the bar, the rate


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert list(cli_module._progress("day")(iter(range(3)), 3)) == [0, 1, 2]
    shown = terminal.getvalue()  # the bar at 0/3 (tqdm redraws at most every 0.1 s), then cleared: leave=False
    assert "0/3 [" in shown and "day/s]" in shown and shown.endswith("\r"), shown
    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stderr", pipe)
    items = iter(range(3))
    assert cli_module._progress("day")(items, 3) is items  # not wrapped at all
    assert list(items) == [0, 1, 2] and pipe.getvalue() == ""


def _fspec(root: Path, out: Path, stderr: int) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "fspec.cli", "run", "--project", str(root), "--out", str(out)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr)


def _summary(stdout: bytes) -> list[str]:
    lines = stdout.decode().splitlines()
    assert [line.split()[0] for line in lines[:-1]] == ["wrote"] * 3, lines
    assert lines[-1].startswith("3 file(s) in "), lines
    return lines


def test_run_is_quiet_when_stderr_is_not_a_terminal(sample_project: FspecProject, tmp_path: Path) -> None:
    proc = _fspec(sample_project.root, tmp_path / "out", subprocess.PIPE)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr.decode()
    _summary(stdout)
    # no bar, no blank line, nothing but the shipped SPXW chain's one line counting its quotes without a
    # volatility and its trades' one line counting the unsigned ones (its synthetic data has crossed and
    # one-sided quotes on purpose: docs/options.md, "Chains" and "Flows")
    lines = stderr.decode().splitlines()
    told = ("warning: option chain 'spxw_quotes'", "warning: option trades 'spxw_trades'")
    assert len(lines) <= 2 and all(line.startswith(told) for line in lines), lines


def test_run_shows_days_on_a_terminal(sample_project: FspecProject, tmp_path: Path) -> None:
    """stderr on a pseudo-terminal: the bar is there, and stdout's summary lines are as without it."""
    primary, secondary = pty.openpty()
    # a terminal 100 columns wide (a new pseudo-terminal has 0, and tqdm sizes its bar to the terminal)
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = _fspec(sample_project.root, tmp_path / "out", secondary)
    os.close(secondary)
    seen = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(primary)
    stdout = proc.stdout.read() if proc.stdout else b""
    assert proc.wait(timeout=300) == 0, seen.decode(errors="replace")
    text = seen.decode(errors="replace")
    assert "0/1 [" in text and "day/s]" in text, text  # the one day, cleared when it is done
    _summary(stdout)
