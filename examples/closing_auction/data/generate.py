"""Generate book.parquet: a synthetic Nasdaq closing-auction table with the schema of Optiver's "Trading at
the Close" data (the seed's ``train.csv``), so that the example runs without the competition's files; and
weights.csv, the index weight of each stock.

    python data/generate.py            # from the example's folder; writes data/book.parquet and
                                       # data/weights.csv (seeded: the same bytes every time)

One long table: 200 stocks (``stock_id`` 0..199) x 3 days (``date_id`` 0..2) x 55 snapshots 10 s apart in
the last 10 minutes before the close (``seconds_in_bucket`` 0, 10, ..., 540 after 15:50), stock 17 missing
on day 1 (a member absent one day). What the seed says of the real data, and the generator does:

* ``wap`` (and every price) is normalised to 1.0 at each (stock, day)'s first snapshot; prices follow a
  random walk of a few basis points a snapshot, with a market factor common to all stocks;
* ``bid_price < ask_price`` in the live book, spreads of 1-20 bp, ``wap`` the size-weighted mid
  ``(bid_price * ask_size + ask_price * bid_size) / (bid_size + ask_size)``;
* ``imbalance_size`` with ``imbalance_buy_sell_flag`` in {-1, 0, 1} (0 when nothing is unmatched),
  ``matched_size`` growing into the close, ``reference_price`` inside the live spread;
* ``far_price`` and ``near_price`` only from 300 s on (NaN before, as Nasdaq publishes them);
* ``time_id`` numbering (date_id, seconds_in_bucket), ``row_id`` as the competition writes it;
* the competition's target reads a weighted index of the stocks' waps, with weights Optiver published as one
  number a stock (three decimals, 0.001 to about 0.04, summing to about 1): ``weights.csv`` holds such weights
  (``stock_id``, ``weight``), drawn lognormal, rounded to three decimals and at least 0.001.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

STOCKS, DAYS, SNAPSHOTS = 200, 3, 55
ABSENT = (17, 1)  # (stock_id, date_id) with no rows


def generate(seed: int = 2023) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    seconds = np.arange(SNAPSHOTS) * 10
    frames = []
    for day in range(DAYS):
        market = np.cumsum(rng.normal(0, 2e-4, SNAPSHOTS))  # the common factor of all stocks that day
        for stock in range(STOCKS):
            if (stock, day) == ABSENT:
                continue
            beta = rng.uniform(0.5, 1.5)
            own = np.cumsum(rng.normal(0, 3e-4, SNAPSHOTS))
            mid = np.exp(beta * (market - market[0]) + own - own[0])
            half = mid * rng.uniform(0.5e-4, 10e-4) * (1 + 0.3 * rng.random(SNAPSHOTS))
            bid, ask = mid - half, mid + half
            bid_size = np.round(rng.lognormal(9, 1, SNAPSHOTS), 0)
            ask_size = np.round(rng.lognormal(9, 1, SNAPSHOTS), 0)
            wap = (bid * ask_size + ask * bid_size) / (bid_size + ask_size)
            bid, ask = bid / wap[0], ask / wap[0]  # every price normalised to the first snapshot's wap
            wap = wap / wap[0]
            flag = rng.choice([-1, 0, 1], SNAPSHOTS, p=[0.45, 0.1, 0.45])
            imbalance = np.where(flag == 0, 0.0, np.round(rng.lognormal(12, 1.2, SNAPSHOTS), 0))
            matched = np.round(np.cumsum(rng.lognormal(11, 0.8, SNAPSHOTS)) + rng.lognormal(14, 1), 0)
            reference = bid + (ask - bid) * rng.random(SNAPSHOTS)
            late = seconds >= 300  # far and near prices exist only in the last five minutes
            far = np.where(late, reference * (1 + flag * rng.uniform(0, 2e-3, SNAPSHOTS)), np.nan)
            near = np.where(late, reference * (1 + flag * rng.uniform(0, 5e-4, SNAPSHOTS)), np.nan)
            frames.append(
                pd.DataFrame(
                    {
                        "stock_id": stock,
                        "date_id": day,
                        "seconds_in_bucket": seconds,
                        "imbalance_size": imbalance,
                        "imbalance_buy_sell_flag": flag,
                        "reference_price": reference,
                        "matched_size": matched,
                        "far_price": far,
                        "near_price": near,
                        "bid_price": bid,
                        "bid_size": bid_size,
                        "ask_price": ask,
                        "ask_size": ask_size,
                        "wap": wap,
                    }
                )
            )
    table = pd.concat(frames, ignore_index=True)
    # the competition's order: by day, then second, then stock
    table = table.sort_values(["date_id", "seconds_in_bucket", "stock_id"], kind="stable", ignore_index=True)
    table["time_id"] = table["date_id"] * SNAPSHOTS + table["seconds_in_bucket"] // 10
    table["row_id"] = (
        table["date_id"].astype(str)
        + "_"
        + table["seconds_in_bucket"].astype(str)
        + "_"
        + table["stock_id"].astype(str)
    )
    prices = ["reference_price", "far_price", "near_price", "bid_price", "ask_price", "wap"]
    table[prices] = table[prices].round(6)
    return table


def weights(stocks: int = STOCKS, seed: int = 2024) -> pd.DataFrame:
    """One index weight a stock, as Optiver's list: three decimals, none below 0.001, summing to about 1."""
    rng = np.random.default_rng(seed)
    drawn = rng.lognormal(0, 0.9, stocks)
    weight = np.maximum(np.round(drawn / drawn.sum(), 3), 0.001)
    return pd.DataFrame({"stock_id": np.arange(stocks), "weight": weight})


if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "book.parquet"
    generate().to_parquet(out, index=False, compression="zstd")
    weights().to_csv(out.with_name("weights.csv"), index=False, float_format="%.3f")
    print(f"wrote {out.name} and weights.csv")
