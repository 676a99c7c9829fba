"""A CSV file (plain, gzip or a zip of one CSV) read by pandas, with every row's count of fields checked.

pandas stops at a row with more fields than the header, but fills a row with fewer with missing values, and a
file whose rows all have one field more than the header reads its first column as the index: both would be
silent NaN or shifted columns. A row cut short always leaves the last column missing, so the file's rows are
counted again (from the raw text) only when the last column has a missing value or the index is not the rows'
numbers: a clean file pays for nothing.
"""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fspec.errors import DataError

if TYPE_CHECKING:
    import pandas as pd


def read_csv(path: Path, display: str, header: tuple[str, ...] | None, text: dict[str, type] | None) -> pd.DataFrame:
    """The file's rows, each with the header's count of fields (else a DataError counting the rows that differ
    and naming the first by its line). ``header``: the names of a file without a header line; ``text``: the
    columns read as text."""
    import pandas as pd

    try:
        if header:
            frame = pd.read_csv(path, header=None, names=list(header), dtype=text)
        else:
            frame = pd.read_csv(path, dtype=text)
    except pd.errors.ParserError:
        raise _ragged_rows(path, display, header) from None
    shifted = not isinstance(frame.index, pd.RangeIndex)  # a column more than the header: read as the index
    if shifted or (len(frame.columns) and bool(frame.iloc[:, -1].isna().any())):
        problem = _bad_rows(path, display, header)
        if problem is not None:
            raise problem
        if shifted:
            raise DataError(display, "cannot read csv file: its rows do not parse", "check that the file is complete")
    return frame


def _ragged_rows(path: Path, display: str, header: tuple[str, ...] | None) -> DataError:
    """The error for a file some of whose rows do not have the header's count of fields."""
    return _bad_rows(path, display, header) or DataError(
        display, "cannot read csv file: its rows do not parse", "check that the file is complete"
    )


def _bad_rows(path: Path, display: str, header: tuple[str, ...] | None) -> DataError | None:
    """Each row whose count of fields is not the header's counted, the first named by its line (blank lines are
    no rows, as pandas skips them); None when every row has them."""
    lines, counts = field_counts(_raw_text(path))
    if header:
        width = len(header)
    elif len(counts):
        width, lines, counts = int(counts[0]), lines[1:], counts[1:]
    else:
        return None
    bad = np.flatnonzero(counts != width)
    if not len(bad):
        return None
    first = int(bad[0])
    return DataError(
        display,
        f"{len(bad):,} row(s) without {width} fields (first at line {int(lines[first])}: {int(counts[first])} fields)",
        f"fix or drop those rows: every row has the {width} fields of the "
        + ("source's header:" if header else "file's header line"),
    )


def _raw_text(path: Path) -> bytes:
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic[:2] == b"\x1f\x8b":
        return gzip.decompress(path.read_bytes())
    if magic == b"PK\x03\x04":
        with zipfile.ZipFile(path) as archive:
            return archive.read(archive.namelist()[0])
    return path.read_bytes()


def field_counts(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The (1-based) line number and count of comma-separated fields of every line that is not blank. Text
    without quotes is counted with numpy (the commas between newlines: 7 MB of TAQ quotes in 0.05-0.08 s here);
    quoted text, whose fields may hold commas and newlines, with the csv module."""
    if b'"' in data:
        rows = csv.reader(io.StringIO(data.decode("utf-8", "replace"), newline=""))
        found = [(k, len(row)) for k, row in enumerate(rows, start=1) if row]
        lines = np.array([k for k, _ in found], dtype=np.int64)
        return lines, np.array([n for _, n in found], dtype=np.int64)
    raw = np.frombuffer(data, dtype=np.uint8)
    if not len(raw):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    ends = np.flatnonzero(raw == ord("\n"))
    if raw[-1] != ord("\n"):
        ends = np.append(ends, len(raw))  # a last line without its newline
    starts = np.concatenate([[0], ends[:-1] + 1])
    commas = np.flatnonzero(raw == ord(","))  # (their places, not a running count: 8 bytes a comma, not a byte)
    fields = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
    # a line is blank when it holds nothing but a carriage return (or nothing at all)
    length = ends - starts
    blank = (length == 0) | ((length == 1) & (raw[np.minimum(starts, len(raw) - 1)] == ord("\r")))
    lines = np.arange(1, len(ends) + 1, dtype=np.int64)
    return lines[~blank], fields[~blank]
