"""The benchmark's features in tuned polars: the fastest polars (and numpy) version we could write, beside the
idiomatic one in ``polars_impl``.

What is tuned, and why:

* no window expressions (``.over``): the rows are ordered by instrument and time, so tick state (returns,
  the tick rule, the previous return of the bipower pair) is a ``shift`` masked where the instrument or the
  bar changes, which polars runs as one vectorised pass;
* the bar index is integer arithmetic on the int64 timestamps (no ``dt.truncate``), and the group key is one
  integer (instrument code x bars + bar), so ``group_by`` hashes one int64 column;
* the session grid is not a join: the aggregated values are scattered into dense (instruments, bars) numpy
  arrays, where empty bars keep their fill value and ``ffill``, ``shift`` and rolling windows are array
  operations per row.

Also a script, for the end-to-end benchmark (``benchmarks.e2e``): ``python -m benchmarks.polars_tuned ROOT OUT``
reads the benchmark project's parquet files under ROOT and writes the features parquet OUT.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import polars as pl

Key = tuple[str, str | None]


def compute(
    trades: pl.DataFrame, open_ns: int, close_ns: int, interval: int, pair: tuple[str, str], trading_days: int = 252
) -> dict[Key, np.ndarray]:
    """``trades``: instrument (categorical or text), ts (int64 ns or Datetime[ns]), the six float columns, rows
    grouped by instrument in time order (as concatenated per-instrument files are)."""
    width = interval * 1_000_000_000
    n_bars = (close_ns - open_ns) // width
    periods_per_year = trading_days * (close_ns - open_ns) / 1e9 / interval
    names = trades["instrument"].unique(maintain_order=True).to_list()
    code = {name: i for i, name in enumerate(names)}
    price, size = pl.col("price"), pl.col("size")
    inst = pl.col("inst")
    new_instrument = (inst != inst.shift(1)).fill_null(True)
    bar = (pl.col("ts").cast(pl.Int64) - open_ns) // width
    log_price = price.log()
    move = price - price.shift(1)
    ticks = (
        trades.lazy()
        .with_columns(inst=pl.col("instrument").cast(pl.String).replace_strict(code, return_dtype=pl.Int64))
        .with_columns(bar=bar, first=new_instrument)
        .with_columns(
            key=pl.col("inst") * n_bars + pl.col("bar"),
            ret=pl.when(pl.col("first")).then(None).otherwise(log_price - log_price.shift(1)),
            sgn=pl.when(pl.col("first"))
            .then(0.0)
            .when(move > 0)
            .then(1.0)
            .when(move < 0)
            .then(-1.0)
            .otherwise(None)
            .forward_fill(),
            same_bar=(pl.col("bar") == pl.col("bar").shift(1)) & ~pl.col("first"),
        )
        .with_columns(prev_abs=pl.when(pl.col("same_bar")).then(pl.col("ret").abs().shift(1)).otherwise(None))
    )
    mid = (pl.col("bid") + pl.col("ask")) / 2
    depth = pl.col("bid_size") + pl.col("ask_size")
    micro = (
        pl.when(depth > 0).then((pl.col("bid") * pl.col("ask_size") + pl.col("ask") * pl.col("bid_size")) / depth)
    ).otherwise(mid)
    bars = (
        ticks.group_by("key")
        .agg(
            volume=size.sum(),
            trade_count=price.count().cast(pl.Float64),
            pv=(price * size).sum(),
            last_price=price.last(),
            mid=mid.last(),
            micro_price=micro.last(),
            interval_log_return=pl.col("ret").sum(),
            rv=(pl.col("ret") ** 2).sum(),
            bp=(pl.col("ret").abs() * pl.col("prev_abs")).sum(),
            signed_volume=(size * pl.col("sgn")).sum(),
        )
        .collect()
    )
    keys = bars["key"].to_numpy()

    def dense(column: str, fill: float) -> np.ndarray:
        out = np.full(len(names) * n_bars, fill)
        out[keys] = bars[column].to_numpy()
        return out.reshape(len(names), n_bars)

    volume = dense("volume", 0.0)
    pv = dense("pv", np.nan)
    last_price, mid_v, micro_v = (_ffill(dense(c, np.nan)) for c in ("last_price", "mid", "micro_price"))
    ret = dense("interval_log_return", 0.0)
    with np.errstate(all="ignore"):
        vwap = np.where(volume > 0, pv / volume, np.nan)
        realized_vol = np.sqrt(dense("rv", 0.0) * periods_per_year)
        values = {
            "volume": volume,
            "trade_count": dense("trade_count", 0.0),
            "vwap": vwap,
            "last_price": last_price,
            "log_mid_price": np.log(mid_v),
            "interval_log_return": ret,
            "realized_vol": realized_vol,
            "bipower_var": math.pi / 2 * dense("bp", 0.0) * periods_per_year,
            "signed_volume": dense("signed_volume", 0.0),
            "micro_price": micro_v,
            "vwap_deviation": (vwap - mid_v) / mid_v,
            "ret_mean_10": _rolling(ret, 10, "mean"),
            "ret_std_10": _rolling(ret, 10, "std"),
            "realized_vol_lag_1": np.concatenate([np.full((len(names), 1), np.nan), realized_vol[:, :-1]], axis=1),
        }
    out: dict[Key, np.ndarray] = {(f, name): v[code[name]] for f, v in values.items() for name in names}
    a, b = pair
    returns = pl.DataFrame({a: ret[code[a]], b: ret[code[b]]})
    out[(f"ret_corr_{a}_{b}", None)] = returns.select(pl.rolling_corr(a, b, window_size=10)).to_series().to_numpy()
    return out


def _ffill(x: np.ndarray) -> np.ndarray:
    """Carry the last non-NaN value forward along each row (NaN before the first)."""
    idx = np.where(np.isnan(x), 0, np.arange(x.shape[1]))
    np.maximum.accumulate(idx, axis=1, out=idx)
    filled = np.take_along_axis(x, idx, axis=1)
    return filled


def _rolling(x: np.ndarray, n: int, how: str) -> np.ndarray:
    """Rolling mean or std (ddof 1) over the last ``n`` bars of each row, NaN until ``n`` bars exist."""
    frame = pl.DataFrame({str(i): row for i, row in enumerate(x)})
    exprs = [(pl.col(c).rolling_mean(n) if how == "mean" else pl.col(c).rolling_std(n)).alias(c) for c in frame.columns]
    return frame.select(exprs).to_numpy().T.astype(np.float64)


def main(argv: list[str]) -> int:
    """Read ROOT's benchmark parquet files (one per instrument), compute, write OUT: a fresh-process run."""
    from benchmarks.project import INTERVAL, PATH
    from benchmarks.workload import session_bounds_ns

    root, out = Path(argv[0]), Path(argv[1])
    files = sorted((root / PATH.split("{symbol}")[0]).glob("*/*_trades.parquet"))
    day = files[0].name[:8]
    open_ns, close_ns = session_bounds_ns(f"{day[:4]}-{day[4:6]}-{day[6:]}")
    trades = pl.concat(
        [pl.read_parquet(p).with_columns(instrument=pl.lit(p.parent.name.lower())) for p in files], rechunk=False
    )
    names = trades["instrument"].unique(maintain_order=True).to_list()
    values = compute(trades, open_ns, close_ns, INTERVAL, (names[0], names[1]))
    n = len(next(iter(values.values())))
    columns = {
        "ts_event": pl.Series(open_ns + np.arange(n, dtype=np.int64) * INTERVAL * 10**9).cast(pl.Datetime("ns", "UTC"))
    }
    for (feature, instrument), v in values.items():
        columns[f"{feature}_{INTERVAL}s" + (f"_{instrument}" if instrument else "")] = pl.Series(v)
    pl.DataFrame(columns).write_parquet(out, compression="zstd")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
