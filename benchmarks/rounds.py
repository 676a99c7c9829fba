"""Interleaved rounds of programs run as a user runs them: each a command in a fresh process, timed wall to wall.

Every round runs each program once, in an order that rotates from round to round (so that no program always
runs first, on a cold cache, or last, after the others warmed the machine); the load average is printed with
every round, and the table gives each program's wall times against the baseline's of the same round.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    """The wall time of ``command`` in a fresh process (with ``env``, else this one's); its output shown if it
    fails."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    return wall


def interleaved(cases: dict[str, list[str]], repeat: int) -> tuple[dict[str, list[float]], list[float]]:
    """Each case's wall times over ``repeat`` rotating rounds, and the load average after each round."""
    names = list(cases)
    walls: dict[str, list[float]] = {n: [] for n in names}
    loads: list[float] = []
    for r in range(repeat):
        for name in [names[(r + j) % len(names)] for j in range(len(names))]:
            walls[name].append(timed(cases[name]))
        loads.append(os.getloadavg()[0])
        line = ", ".join(f"{n}: {walls[n][-1]:.2f} s" for n in names)
        print(f"round {r + 1} (load {loads[-1]:.2f}): {line}", flush=True)
    return walls, loads


def print_table(walls: dict[str, list[float]], loads: list[float], base: str) -> None:
    """Median and range of each program, and its ratio to ``base`` round by round."""
    print()
    print(f"load average {min(loads):.2f}-{max(loads):.2f}")
    print(f"| program | wall median | min..max | vs {base}, per round |")
    print("|---|---:|---:|---|")
    for name, w in walls.items():
        ratios = ", ".join(f"{x / b:.2f}x" for x, b in zip(w, walls[base], strict=True))
        print(f"| {name} | {statistics.median(w):.2f} s | {min(w):.2f}..{max(w):.2f} s | {ratios} |")


def compare(cases: dict[str, list[str]], repeat: int, check: Callable[[], str | None], base: str = "fspec") -> None:
    """Run every program once (warming numba's cache and the OS file cache, and writing the outputs), check that
    they agree (``check`` raises if not; what it returns is printed, else "outputs agree"), then time ``repeat``
    interleaved rounds and print the table of walls and ratios to ``base``."""
    for command in cases.values():
        timed(command)
    print(check() or "outputs agree", flush=True)
    walls, loads = interleaved(cases, repeat)
    print_table(walls, loads, base)
