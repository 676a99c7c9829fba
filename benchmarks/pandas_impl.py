"""The benchmark's features in idiomatic pandas, as a quant would write them: one long frame of trades,
groupby per instrument for tick state, groupby (instrument, bar) for the bar values, a full session grid,
then wide (bar x instrument) frames for the rolling features."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.workload import COLUMNS, Workload

Key = tuple[str, str | None]


def to_frame(workload: Workload) -> pd.DataFrame:
    """Long frame: instrument (categorical), ts (datetime64[ns, UTC]), then the six float64 columns."""
    parts = []
    for name, cols in workload.data.items():
        part = pd.DataFrame({"ts": pd.to_datetime(cols["ts"], unit="ns", utc=True), **{c: cols[c] for c in COLUMNS}})
        part.insert(0, "instrument", name)
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    frame["instrument"] = frame["instrument"].astype("category")
    return frame


def compute(
    trades: pd.DataFrame, open_ns: int, close_ns: int, interval: int, pair: tuple[str, str], trading_days: int = 252
) -> dict[Key, np.ndarray]:
    periods_per_year = trading_days * (close_ns - open_ns) / 1e9 / interval
    freq = f"{interval}s"
    inst = trades["instrument"]
    price = trades["price"]

    # tick level
    log_ret = np.log(price).groupby(inst, observed=True).diff()
    direction = np.sign(price.groupby(inst, observed=True).diff()).replace(0.0, np.nan)
    tick_sign = direction.groupby(inst, observed=True).ffill().fillna(0.0)
    bar = trades["ts"].dt.floor(freq)
    abs_ret = log_ret.abs()
    depth = trades["bid_size"] + trades["ask_size"]
    mid = (trades["bid"] + trades["ask"]) / 2
    micro = ((trades["bid"] * trades["ask_size"] + trades["ask"] * trades["bid_size"]) / depth).where(depth > 0, mid)
    ticks = pd.DataFrame(
        {
            "instrument": inst,
            "bar": bar,
            "size": trades["size"],
            "price": price,
            "pv": price * trades["size"],
            "mid": mid,
            "micro": micro,
            "ret": log_ret,
            "ret2": log_ret**2,
            "bp": abs_ret * abs_ret.groupby([inst, bar], observed=True).shift(1),
            "signed": trades["size"] * tick_sign,
        }
    )

    # bar level
    bars = ticks.groupby(["instrument", "bar"], observed=True).agg(
        volume=("size", "sum"),
        trade_count=("price", "count"),
        pv=("pv", "sum"),
        last_price=("price", "last"),
        mid=("mid", "last"),
        micro_price=("micro", "last"),
        interval_log_return=("ret", "sum"),
        rv=("ret2", "sum"),
        bp=("bp", "sum"),
        signed_volume=("signed", "sum"),
    )
    grid = pd.date_range(pd.Timestamp(open_ns, tz="UTC"), pd.Timestamp(close_ns, tz="UTC"), freq=freq, inclusive="left")
    instruments = list(trades["instrument"].cat.categories)
    bars = bars.reindex(pd.MultiIndex.from_product([instruments, grid], names=["instrument", "bar"]))
    sums = ["volume", "trade_count", "pv", "interval_log_return", "rv", "bp", "signed_volume"]
    bars[sums] = bars[sums].fillna(0.0)
    carried = ["last_price", "mid", "micro_price"]
    bars[carried] = bars[carried].groupby(level="instrument").ffill()

    wide = bars.unstack("instrument")  # bars x (column, instrument)
    vwap = wide["pv"] / wide["volume"].where(wide["volume"] != 0)
    ret = wide["interval_log_return"]
    realized_vol = np.sqrt(wide["rv"] * periods_per_year)
    features = {
        "volume": wide["volume"],
        "trade_count": wide["trade_count"],
        "vwap": vwap,
        "last_price": wide["last_price"],
        "log_mid_price": np.log(wide["mid"]),
        "interval_log_return": ret,
        "realized_vol": realized_vol,
        "bipower_var": np.pi / 2 * wide["bp"] * periods_per_year,
        "signed_volume": wide["signed_volume"],
        "micro_price": wide["micro_price"],
        "vwap_deviation": (vwap - wide["mid"]) / wide["mid"],
        "ret_mean_10": ret.rolling(10).mean(),
        "ret_std_10": ret.rolling(10).std(),
        "realized_vol_lag_1": realized_vol.shift(1),
    }
    out: dict[Key, np.ndarray] = {}
    for name, frame in features.items():
        for i in instruments:
            out[(name, i)] = frame[i].to_numpy(dtype=np.float64)
    a, b = pair
    out[(f"ret_corr_{a}_{b}", None)] = ret[a].rolling(10).corr(ret[b]).to_numpy(dtype=np.float64)
    return out
