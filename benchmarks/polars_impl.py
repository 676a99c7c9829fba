"""The benchmark's features in idiomatic polars (lazy API), as a quant would write them: window expressions
over instrument for tick state, group_by (instrument, bar) for the bar values, a left join onto the full
session grid, then window expressions over instrument for the rolling features."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from benchmarks.workload import COLUMNS, Workload

Key = tuple[str, str | None]


def to_frame(workload: Workload) -> pl.DataFrame:
    """Long frame: instrument (categorical), ts (Datetime[ns, UTC]), then the six float64 columns."""
    parts = [
        pl.DataFrame({"ts": cols["ts"], **{c: cols[c] for c in COLUMNS}}).with_columns(
            instrument=pl.lit(name), ts=pl.col("ts").cast(pl.Datetime("ns", "UTC"))
        )
        for name, cols in workload.data.items()
    ]
    frame = pl.concat(parts).with_columns(pl.col("instrument").cast(pl.Categorical))
    return frame.select("instrument", "ts", *COLUMNS)


def compute(
    trades: pl.DataFrame, open_ns: int, close_ns: int, interval: int, pair: tuple[str, str], trading_days: int = 252
) -> dict[Key, np.ndarray]:
    periods_per_year = trading_days * (close_ns - open_ns) / 1e9 / interval
    every = f"{interval}s"
    price, size = pl.col("price"), pl.col("size")
    bid, ask, bid_size, ask_size = pl.col("bid"), pl.col("ask"), pl.col("bid_size"), pl.col("ask_size")
    depth = bid_size + ask_size
    mid = (bid + ask) / 2

    ticks = trades.lazy().with_columns(
        bar=pl.col("ts").dt.truncate(every),
        ret=price.log().diff().over("instrument"),
        tick_sign=price.diff().sign().replace(0, None).forward_fill().fill_null(0).over("instrument"),
        mid=mid,
        micro=pl.when(depth > 0).then((bid * ask_size + ask * bid_size) / depth).otherwise(mid),
    )
    bars = ticks.group_by("instrument", "bar").agg(
        volume=size.sum(),
        trade_count=price.count().cast(pl.Float64),
        vwap=(price * size).sum() / size.sum(),
        last_price=price.last(),
        mid=pl.col("mid").last(),
        micro_price=pl.col("micro").last(),
        interval_log_return=pl.col("ret").sum(),
        rv=(pl.col("ret") ** 2).sum(),
        bp=(pl.col("ret").abs() * pl.col("ret").abs().shift(1)).sum(),
        signed_volume=(size * pl.col("tick_sign")).sum(),
    )
    instruments = trades["instrument"].unique(maintain_order=True)
    grid_times = pl.datetime_range(
        pl.lit(open_ns).cast(pl.Datetime("ns", "UTC")),
        pl.lit(close_ns).cast(pl.Datetime("ns", "UTC")),
        every,
        closed="left",
        time_unit="ns",
        time_zone="UTC",
        eager=True,
    ).alias("bar")
    grid = pl.LazyFrame({"instrument": instruments}).join(pl.LazyFrame(grid_times), how="cross")
    ret = pl.col("interval_log_return")
    realized_vol = (pl.col("rv") * periods_per_year).sqrt()
    result = (
        grid.join(bars, on=["instrument", "bar"], how="left")
        .sort("instrument", "bar")
        .with_columns(
            pl.col("volume", "trade_count", "interval_log_return", "rv", "bp", "signed_volume").fill_null(0.0),
            pl.col("last_price", "mid", "micro_price").forward_fill().over("instrument"),
        )
        .select(
            "instrument",
            "volume",
            "trade_count",
            "vwap",
            "last_price",
            log_mid_price=pl.col("mid").log(),
            interval_log_return=ret,
            realized_vol=realized_vol,
            bipower_var=math.pi / 2 * pl.col("bp") * periods_per_year,
            signed_volume=pl.col("signed_volume"),
            micro_price=pl.col("micro_price"),
            vwap_deviation=(pl.col("vwap") - pl.col("mid")) / pl.col("mid"),
            ret_mean_10=ret.rolling_mean(10).over("instrument"),
            ret_std_10=ret.rolling_std(10).over("instrument"),
            realized_vol_lag_1=realized_vol.shift(1).over("instrument"),
        )
        .collect()
    )
    out: dict[Key, np.ndarray] = {}
    by_instrument = result.partition_by("instrument", as_dict=True, include_key=False)
    for (name,), frame in by_instrument.items():
        for column in frame.columns:
            out[(column, name)] = frame[column].to_numpy().astype(np.float64)
    a, b = pair
    returns = pl.DataFrame({a: out[("interval_log_return", a)], b: out[("interval_log_return", b)]})
    corr = returns.select(pl.rolling_corr(a, b, window_size=10)).to_series()
    out[(f"ret_corr_{a}_{b}", None)] = corr.to_numpy().astype(np.float64)
    return out
