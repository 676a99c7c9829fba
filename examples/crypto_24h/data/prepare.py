"""Build this example's data from the Binance BTCUSDT spot capture shipped with hftbacktest.

Reads the two tidy extracts of that capture (``trades.csv.gz``: local_ts_ns, exch_trade_time_ms, trade_id,
price, qty, is_buyer_maker; ``bbo.csv.gz``: local_ts_ns, update_id, bid_px, bid_qty, ask_px, ask_qty) and
writes them unchanged in content to Parquet, one file each holding every day of the capture (fspec splits
the days by the session rule):

* ``btcusdt_trades.parquet``: local_ts_ns (int64 ns, when the message was received), price, qty,
  is_buyer_maker (int8: 1 when the buyer was the maker, i.e. a seller-initiated trade)
* ``btcusdt_bbo.parquet``: local_ts_ns, bid_px, bid_qty, ask_px, ask_qty

Usage (from this example's folder)::

    python data/prepare.py [CAPTURE_FOLDER]

``CAPTURE_FOLDER`` holds trades.csv.gz and bbo.csv.gz (the binance_btcusdt_hftbacktest data set).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture", type=Path, help="folder with trades.csv.gz and bbo.csv.gz")
    args = parser.parse_args()
    trades = pd.read_csv(args.capture / "trades.csv.gz")
    trades = pd.DataFrame(
        {
            "local_ts_ns": trades["local_ts_ns"].astype("int64"),
            "price": trades["price"].astype("float64"),
            "qty": trades["qty"].astype("float64"),
            "is_buyer_maker": trades["is_buyer_maker"].astype(bool).astype("int8"),
        }
    )
    bbo = pd.read_csv(args.capture / "bbo.csv.gz")
    bbo = bbo[["local_ts_ns", "bid_px", "bid_qty", "ask_px", "ask_qty"]].astype(
        {"local_ts_ns": "int64", "bid_px": "float64", "bid_qty": "float64", "ask_px": "float64", "ask_qty": "float64"}
    )
    trades.to_parquet(HERE / "btcusdt_trades.parquet", index=False, compression="zstd")
    bbo.to_parquet(HERE / "btcusdt_bbo.parquet", index=False, compression="zstd")
    print(f"{len(trades):,} trades, {len(bbo):,} book-ticker updates")


if __name__ == "__main__":
    main()
