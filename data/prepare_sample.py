"""Build the bundled SPY sample data (2013-10-07) from QuantConnect LEAN zips.

Reads three LEAN US-equity files (each zip holds one headerless CSV; time is
milliseconds since midnight New York time, prices are deci-cents) and writes
tidy Parquet files under ``data/sample/spy/``:

* ``20131007_trades.parquet``    -- every SPY trade tick, in file order
* ``20131007_quotes_1s.parquet`` -- 1-second quote bars, stamped at bar start
* ``20131007_bars_1m.parquet``   -- 1-minute trade bars, stamped at bar start

Usage (from the repository root)::

    python data/prepare_sample.py [LEAN_FOLDER]

``LEAN_FOLDER`` defaults to ``../shared/data/lean_us_equity_2013-10-07``
relative to the repository root.
"""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LEAN_DIR = REPO_ROOT.parent / "shared" / "data" / "lean_us_equity_2013-10-07"
OUT_DIR = REPO_ROOT / "data" / "sample" / "spy"

DATE = pd.Timestamp("2013-10-07")
TZ = "America/New_York"
PRICE_SCALE = 10_000.0  # LEAN equity prices are deci-cents

QUOTE_PRICE_COLUMNS = [
    "bid_open",
    "bid_high",
    "bid_low",
    "bid_close",
    "ask_open",
    "ask_high",
    "ask_low",
    "ask_close",
]
QUOTE_COLUMNS = [
    "time_ms",
    *QUOTE_PRICE_COLUMNS[:4],
    "last_bid_size",
    *QUOTE_PRICE_COLUMNS[4:],
    "last_ask_size",
]
BAR_PRICE_COLUMNS = ["open", "high", "low", "close"]


def read_lean_csv(path: Path, names: list[str], dtype: dict[str, str]) -> pd.DataFrame:
    """Read the single headerless CSV stored inside a LEAN zip."""
    with zipfile.ZipFile(path) as zf:
        members = zf.namelist()
        if len(members) != 1:
            raise ValueError(f"{path.name}: expected one CSV, found {members}")
        with zf.open(members[0]) as fh:
            return pd.read_csv(fh, header=None, names=names, dtype=dtype)


def to_ny_time(ms_since_midnight: pd.Series) -> pd.Series:
    """Turn ms since New York midnight on DATE into tz-aware ns timestamps."""
    naive = DATE + pd.to_timedelta(ms_since_midnight.to_numpy(np.int64), unit="ms")
    return pd.Series(
        naive.astype("datetime64[ns]").tz_localize(TZ),
        index=ms_since_midnight.index,
        name="time",
    )


def to_price(deci_cents: pd.Series) -> pd.Series:
    """Convert LEAN deci-cent prices to dollars (float64)."""
    return deci_cents.astype("float64") / PRICE_SCALE


def build_trades(lean_dir: Path) -> pd.DataFrame:
    """All SPY trade ticks (04:00-20:00, suspicious ones included), file order."""
    raw = read_lean_csv(
        lean_dir / "tick_spy_20131007_trade.zip",
        names=["time_ms", "price", "size", "exchange", "condition", "suspicious"],
        dtype={
            "time_ms": "int64",
            "price": "int64",
            "size": "int64",
            "exchange": "string",
            "condition": "int64",
            "suspicious": "int8",
        },
    )
    return pd.DataFrame(
        {
            "time": to_ny_time(raw["time_ms"]),
            "price": to_price(raw["price"]),
            "size": raw["size"].astype("float64"),
            "exchange": raw["exchange"].astype("string"),
            "condition": raw["condition"].astype("int64"),
            "suspicious": raw["suspicious"].astype("int8"),
        }
    )


def build_quotes_1s(lean_dir: Path) -> pd.DataFrame:
    """1-second SPY quote bars; a 0 price (no quote on that side) becomes NaN."""
    raw = read_lean_csv(
        lean_dir / "second_spy_20131007_quote.zip",
        names=QUOTE_COLUMNS,
        dtype=dict.fromkeys(QUOTE_COLUMNS, "int64"),
    )
    out = pd.DataFrame({"time": to_ny_time(raw["time_ms"])})
    for col in QUOTE_COLUMNS[1:]:
        if col in QUOTE_PRICE_COLUMNS:
            out[col] = to_price(raw[col].where(raw[col] != 0))
        else:
            out[col] = raw[col].astype("float64")
    return out


def build_bars_1m(lean_dir: Path) -> pd.DataFrame:
    """1-minute SPY trade bars (LEAN excludes suspicious ticks from bars)."""
    names = ["time_ms", *BAR_PRICE_COLUMNS, "volume"]
    raw = read_lean_csv(
        lean_dir / "minute_spy_20131007_trade.zip",
        names=names,
        dtype=dict.fromkeys(names, "int64"),
    )
    out = pd.DataFrame({"time": to_ny_time(raw["time_ms"])})
    for col in BAR_PRICE_COLUMNS:
        out[col] = to_price(raw[col])
    out["volume"] = raw["volume"].astype("float64")
    return out


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Write one Parquet file (pyarrow, zstd, no index) and print a summary.

    ``time`` is sorted, so it is delta-encoded (about half the size of the
    default dictionary encoding); the other columns keep dictionary encoding.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(
        path,
        engine="pyarrow",
        compression="zstd",
        index=False,
        use_dictionary=[col for col in df.columns if col != "time"],
        column_encoding={"time": "DELTA_BINARY_PACKED"},
    )
    rel = path.relative_to(REPO_ROOT)
    print(f"{rel}: {len(df):,} rows, {path.stat().st_size:,} bytes")


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and write the three sample files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "lean_dir",
        nargs="?",
        type=Path,
        default=DEFAULT_LEAN_DIR,
        help="folder holding the LEAN zips (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    lean_dir: Path = args.lean_dir

    write_parquet(build_trades(lean_dir), OUT_DIR / "20131007_trades.parquet")
    write_parquet(build_quotes_1s(lean_dir), OUT_DIR / "20131007_quotes_1s.parquet")
    write_parquet(build_bars_1m(lean_dir), OUT_DIR / "20131007_bars_1m.parquet")


if __name__ == "__main__":
    main()
