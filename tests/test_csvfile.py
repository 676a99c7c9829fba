"""The field counts of a CSV's lines (runtime/csvfile.py) against Python's csv module."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from fspec.runtime.csvfile import field_counts


def _reference(text: str) -> tuple[list[int], list[int]]:
    rows = [(k, len(row)) for k, row in enumerate(csv.reader(io.StringIO(text, newline="")), start=1) if row]
    return [k for k, _ in rows], [n for _, n in rows]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a,b,c",
        "a,b,c\n1,2,3\n",
        "a,b,c\r\n1,2\r\n\r\n4,5,6,7\r\n",
        "a,b\n\n\n1,\n,\n2",
        'a,b,c\n"1,5",2,3\n"x\ny",2\n',  # quoted: commas and a newline inside fields
    ],
)
def test_field_counts_match_the_csv_module(text: str) -> None:
    lines, counts = field_counts(text.encode())
    want_lines, want_counts = _reference(text)
    assert lines.tolist() == want_lines and counts.tolist() == want_counts


def test_field_counts_of_random_unquoted_text() -> None:
    rng = np.random.default_rng(3)
    lines = [",".join("7" * int(rng.integers(0, 3)) for _ in range(int(rng.integers(1, 6)))) for _ in range(2000)]
    lines = [line if rng.random() > 0.05 else "" for line in lines]
    text = ("\r\n" if rng.random() > 0.5 else "\n").join(lines)
    got_lines, got_counts = field_counts(text.encode())
    want_lines, want_counts = _reference(text)
    assert got_lines.tolist() == want_lines and got_counts.tolist() == want_counts
