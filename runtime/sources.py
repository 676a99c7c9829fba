"""Load one source file for one instrument and date: columns mapped, time in UTC int64 ns, rows filtered,
sorted (or rejected), bar sources moved to the time their values become known."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fspec.errors import DataError
from fspec.files import display as display_path
from fspec.runtime.evaluate import _numexpr_text

NS = 1_000_000_000


class DataWarning(UserWarning):
    """Data that fspec fixed on load (e.g. unsorted rows), reported to the user."""


@dataclass
class Ticks:
    """One source's rows for one instrument and day: ``ts`` (UTC ns, ascending) and float64 columns."""

    ts: np.ndarray
    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def take(self, mask_or_index: np.ndarray | slice) -> Ticks:
        return Ticks(self.ts[mask_or_index], {k: v[mask_or_index] for k, v in self.columns.items()})


def source_path(root: Path, source: dict[str, Any], symbol: str, date: str) -> Path:
    return root / source["path"].format(symbol=symbol, date=date.replace("-", ""))


def available_dates(root: Path, source: dict[str, Any], symbol: str) -> list[str]:
    """Dates (YYYY-MM-DD) for which the source has a file for this symbol."""
    template = source["path"].format(symbol=symbol, date="{date}")
    pattern = re.compile(re.escape(template).replace(re.escape("{date}"), r"(\d{8})") + "$")
    found = set()
    for path in root.glob(template.replace("{date}", "*")):
        match = pattern.search(path.relative_to(root).as_posix())
        if match:
            d = match.group(1)
            found.add(f"{d[:4]}-{d[4:6]}-{d[6:]}")
    return sorted(found)


def _read(path: Path, fmt: str, wanted: list[str], display: str) -> pd.DataFrame:
    if not path.exists():
        raise DataError(display, "file not found", "check the source's 'path' template, the symbol and the date")
    try:
        if fmt == "parquet":
            names = pq.read_schema(path).names
            missing = [c for c in wanted if c not in names]
            if missing:
                raise DataError(
                    display,
                    f"missing column(s) {', '.join(missing)}; the file has: {', '.join(names)}",
                    "fix the column mapping ('from:') of this source",
                )
            return pq.read_table(path, columns=wanted).to_pandas()
        frame = pd.read_csv(path)
    except DataError:
        raise
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise DataError(display, f"cannot read {fmt} file: {exc}", "check that the file is complete") from None
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DataError(
            display,
            f"missing column(s) {', '.join(missing)}; the file has: {', '.join(frame.columns)}",
            "fix the column mapping ('from:') of this source",
        )
    return frame[wanted]


def _to_utc_ns(values: pd.Series, source: dict[str, Any], display: str) -> np.ndarray:
    unit, zone = source["time_unit"], source["time_zone"]
    column = source["time_column"]
    try:
        if pd.api.types.is_integer_dtype(values) or (unit and pd.api.types.is_numeric_dtype(values)):
            if not unit:
                raise DataError(
                    display,
                    f"time column '{column}' holds numbers but the source gives no unit",
                    "set time: {column: ..., unit: ns|us|ms|s}",
                )
            stamps = pd.to_datetime(values, unit=unit, utc=True)
        elif isinstance(values.dtype, pd.DatetimeTZDtype):
            stamps = values.dt.tz_convert("UTC")
        else:
            stamps = pd.to_datetime(values, utc=False)
            if stamps.dt.tz is None:
                stamps = stamps.dt.tz_localize(zone or "UTC", ambiguous="raise", nonexistent="raise")
            stamps = stamps.dt.tz_convert("UTC")
    except DataError:
        raise
    except (ValueError, TypeError, OverflowError) as exc:
        bad = _first_bad_timestamp(values)
        raise DataError(
            display,
            f"unparseable timestamps in column '{column}' ({exc}){bad}",
            "give ISO-8601 times, or integer epochs with time.unit",
        ) from None
    if stamps.isna().any():
        row = int(np.flatnonzero(stamps.isna().to_numpy())[0])
        raise DataError(display, f"missing timestamp in column '{column}' at row {row}", "drop or fix that row")
    naive = stamps.dt.tz_localize(None).astype("datetime64[ns]")
    return naive.to_numpy().view(np.int64).copy()


def _first_bad_timestamp(values: pd.Series) -> str:
    for i, v in enumerate(values.head(100_000)):
        try:
            pd.Timestamp(v)
        except (ValueError, TypeError):
            return f"; first bad value at row {i}: {v!r}"
    return ""


def _numeric(frame: pd.DataFrame, column: str, display: str) -> np.ndarray:
    series = frame[column]
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    raise DataError(
        display, f"column '{column}' has type {series.dtype}, not numbers", "map a numeric column, or clean the file"
    )


def _tree_columns(tree: dict[str, Any] | None) -> list[str]:
    if tree is None:
        return []
    if "column" in tree:
        return [tree["column"]]
    return [c for a in tree.get("args", []) for c in _tree_columns(a)]


def _row_values(
    tree: dict[str, Any], frame: pd.DataFrame, display: str, params: dict[str, float] | None = None
) -> np.ndarray:
    """Evaluate a filter or computed-column tree over a file's rows (numexpr, elementwise)."""
    import numexpr as ne

    local: dict[str, Any] = {"nan": np.nan}

    def build(node: dict[str, Any]) -> str:
        if "const" in node:  # a variable, not a literal (numexpr folds literal-only terms into bools)
            name = f"c{len(local)}"
            local[name] = np.float64(node["const"])
            return name
        if "column" in node:
            name = f"c{len(local)}"
            local[name] = _numeric(frame, node["column"], display)
            return name
        if "param" in node:
            if params is None or node["param"] not in params:
                raise DataError(
                    display,
                    f"the instrument has no parameter '{node['param']}'",
                    "add it under the instrument's params",
                )
            name = f"c{len(local)}"
            local[name] = np.float64(params[node["param"]])
            return name
        return _numexpr_text(node["op"], [build(a) for a in node["args"]])

    text = build(tree)
    with np.errstate(all="ignore"):
        result = ne.evaluate(text, local_dict=local, global_dict={})
    return np.array(np.broadcast_to(result, (len(frame),)), dtype=np.float64)


def load_source(
    root: Path, source: dict[str, Any], symbol: str, date: str, params: dict[str, float] | None = None
) -> Ticks:
    """Read, map, convert, filter and order one source file. Raises DataError naming the file."""
    path = source_path(root, source, symbol, date)
    shown = display_path(path, root)
    mapped = {c["name"]: c for c in source["columns"] if not c.get("expr")}
    computed = source.get("column_trees") or {}
    wanted = list(
        dict.fromkeys(
            [
                source["time_column"],
                *(c["source_column"] for c in mapped.values()),
                *_tree_columns(source.get("filter_tree")),
                *(c for tree in computed.values() for c in _tree_columns(tree)),
            ]
        )
    )
    frame = _read(path, source["format"], wanted, shown)
    ts = _to_utc_ns(frame[source["time_column"]], source, shown)
    columns = {}
    for name, spec in mapped.items():
        values = _numeric(frame, spec["source_column"], shown)
        columns[name] = values * spec["scale"] if spec["scale"] != 1.0 else values
    for name, tree in computed.items():
        columns[name] = _row_values(tree, frame, shown, params)
    ticks = Ticks(ts, columns)
    if source.get("filter_tree") is not None:
        ticks = ticks.take(_row_values(source["filter_tree"], frame, shown) != 0)
    if source["bar_width"] and source["bar_stamp"] == "start":
        # A bar's values are known only when it ends.
        ticks.ts = ticks.ts + np.int64(source["bar_width"]) * NS
    return _ordered(ticks, source, shown)


def _ordered(ticks: Ticks, source: dict[str, Any], display: str) -> Ticks:
    if len(ticks) < 2 or bool(np.all(ticks.ts[1:] >= ticks.ts[:-1])):
        return ticks
    first = int(np.flatnonzero(ticks.ts[1:] < ticks.ts[:-1])[0]) + 1
    if source["unsorted"] == "reject":
        raise DataError(
            display,
            f"rows are not in time order (row {first} is earlier than row {first - 1})",
            "sort the file by time, or set unsorted: sort on this source",
        )
    warnings.warn(
        f"{display}: rows are not in time order (first at row {first}); sorted them (stable)", DataWarning, stacklevel=2
    )
    return ticks.take(np.argsort(ticks.ts, kind="stable"))


def attach_asof(ticks: Ticks, other: Ticks, columns: list[str]) -> Ticks:
    """Add the values of ``other`` prevailing at each row: the last row of ``other`` known at or before it."""
    idx = np.searchsorted(other.ts, ticks.ts, side="right") - 1
    valid = idx >= 0
    safe = np.where(valid, idx, 0)
    for col in columns:
        values = other.columns[col][safe] if len(other) else np.full(len(ticks), np.nan)
        ticks.columns[col] = np.where(valid, values, np.nan)
    return ticks
