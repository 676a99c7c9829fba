"""An event grid against the seed's own code and a tuned polars script, as a user runs them.

    python -m benchmarks.event_grid --events 1M --trades 10M --tokens 100 --repeat 3

Seed 004's market context at each of our fills: the last market trade price before the fill and its age,
returns over 30 s and 5 min, and the count, volume and notional of the trades of the last 60 s, per token,
strictly before the fill. Three programs compute the same seven columns, each in a fresh process, parquet on
disk to parquet on disk:

* fspec: ``fspec run`` of a project with a ``fills`` grid (``examples/pretrade_fills``' market features);
* numpy: the seed's grouped ``searchsorted`` with cumulative sums, with strict edges (``side="left"``);
* polars: ``join_asof(by=token, allow_exact_matches=False)`` for the as-of values, and the windows as
  differences of per-token cumulative sums read by the same join at ``t`` and ``t - 60 s``; tuned: tokens as
  integer codes (an Enum's physical values), and no sort (both files are in time order, all join_asof needs).

The market trades are one long file in time order (a consolidated feed, ``token_id`` a text column); the fills
one file of whole-second times. The outputs are checked to agree first; then rounds run every program once in
a rotating order, with the load average, and the ratio of each peer's wall to fspec's is reported per round.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.bars import rows as parse_rows
from benchmarks.rounds import compare, timed

DAY = np.datetime64("2025-12-14", "ns").astype(np.int64)
S = 1_000_000_000
FEATURES = {
    "mt_last_price": "asof(market_trades.price)",
    "mt_last_age_ms": "age(market_trades.price) * 1000",
    "mt_return_30s": "asof(market_trades.price) - asof(market_trades.price, ago=30s)",
    "mt_return_5m": "asof(market_trades.price) - asof(market_trades.price, ago=5m)",
    "mt_trades_60s": "count(market_trades.price, window=60s)",
    "mt_volume_60s": "sum(market_trades.size, window=60s)",
    "mt_notional_60s": "sum(market_trades.price * market_trades.size, window=60s)",
}

PROJECT = """\
spec_version: 1
sources:
  market_trades: {path: data/market_trades.parquet, symbol: token_id, time: ts, kind: events,
                  columns: {price: float64, size: float64}}
  fills: {path: data/fills.parquet, time: ts, kind: events, columns: {price: float64, size: float64}}
universes:
  tokens: {from: market_trades, suffix: "t{symbol}"}
grids:
  fills: {events: fills, instrument: token_id, universe: tokens, keep: [event_key, token_id]}
session: {timezone: UTC, open: "00:00", close: "24:00", trading_days_per_year: 365}
"""

NUMPY = """
import sys
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

root = sys.argv[1]
mt = pq.read_table(f"{root}/data/market_trades.parquet", read_dictionary=["token_id"])
fills = pq.read_table(f"{root}/data/fills.parquet")
tokens = mt["token_id"].combine_chunks()
m_tok = tokens.indices.to_numpy().astype(np.int64)  # tokens as integer codes, not strings
names = tokens.dictionary
f_tok = pc.index_in(fills["token_id"], value_set=names).fill_null(-1).to_numpy().astype(np.int64)
m_ts = mt["ts"].cast("int64").to_numpy()
order = np.lexsort((m_ts, m_tok))  # the seed: market_trades.sort_values(["token_id", "ts"], kind="stable")
m_tok, m_ts = m_tok[order], m_ts[order]
m_px, m_sz = mt["price"].to_numpy()[order], mt["size"].to_numpy()[order]
f_ts = fills["ts"].cast("int64").to_numpy()
n = len(f_ts)
names_out = ("mt_last_price", "mt_last_age_ms", "mt_return_30s", "mt_return_5m",
             "mt_trades_60s", "mt_volume_60s", "mt_notional_60s")
out = {k: np.full(n, np.nan) for k in names_out}
edges = np.flatnonzero(m_tok[1:] != m_tok[:-1]) + 1
starts, stops = np.r_[0, edges], np.r_[edges, len(m_tok)]
f_order = np.argsort(f_tok, kind="stable")
f_sorted = f_tok[f_order]
for lo, hi in zip(starts, stops):
    token = m_tok[lo]
    a, b = np.searchsorted(f_sorted, token, "left"), np.searchsorted(f_sorted, token, "right")
    if a == b:
        continue
    idx = f_order[a:b]
    ts, px, sz = m_ts[lo:hi], m_px[lo:hi], m_sz[lo:hi]
    cum_n, cum_s, cum_v = np.arange(1.0, hi - lo + 1), np.cumsum(sz), np.cumsum(px * sz)
    t = f_ts[idx]
    end = np.searchsorted(ts, t, side="left")  # strictly before the fill
    has = end > 0
    last = np.where(has, px[np.maximum(end - 1, 0)], np.nan)
    out["mt_last_price"][idx] = last
    out["mt_last_age_ms"][idx] = np.where(has, (t - ts[np.maximum(end - 1, 0)]) / 1e6, np.nan)
    for name, w in (("mt_return_30s", 30), ("mt_return_5m", 300)):
        start = np.searchsorted(ts, t - w * 1_000_000_000, side="left")
        out[name][idx] = last - np.where(start > 0, px[np.maximum(start - 1, 0)], np.nan)
    start = np.searchsorted(ts, t - 60 * 1_000_000_000, side="left")
    for name, cum in (("mt_trades_60s", cum_n), ("mt_volume_60s", cum_s), ("mt_notional_60s", cum_v)):
        out[name][idx] = np.where(end > 0, cum[np.maximum(end - 1, 0)], 0.0) - np.where(
            start > 0, cum[np.maximum(start - 1, 0)], 0.0)
table = pa.table({"ts_event": fills["ts"], "event_key": fills["event_key"], "token_id": fills["token_id"],
                  **{k + "_tokens": v for k, v in out.items()}})
pq.write_table(table, f"{root}/out_numpy.parquet", compression="zstd")
"""

POLARS = """
import sys
import polars as pl

root = sys.argv[1]
mt = pl.read_parquet(f"{root}/data/market_trades.parquet")
# tokens as integer codes (joins by text are slower); both files are in time order already, which is all
# join_asof needs (each token's rows sorted by time): no sort, and cumulative sums per token in that order
tokens = pl.Enum(mt["token_id"].unique(maintain_order=True))
mt = mt.with_columns(tok=pl.col("token_id").cast(tokens).to_physical()).drop("token_id").with_columns(
    cum_n=pl.int_range(1, pl.len() + 1).over("tok").cast(pl.Float64),
    cum_s=pl.col("size").cum_sum().over("tok"),
    cum_v=(pl.col("price") * pl.col("size")).cum_sum().over("tok"),
)
fills = pl.read_parquet(f"{root}/data/fills.parquet", columns=["ts", "event_key", "token_id"])
known = pl.col("token_id").is_in(tokens.categories.implode())
probe = fills.with_columns(tok=pl.when(known).then(pl.col("token_id")).cast(tokens).to_physical())
right = mt.select("tok", "ts", "price", "cum_n", "cum_s", "cum_v").rename({"ts": "ts_m"})


def at(shift, suffix):
    left = probe.select("tok", (pl.col("ts") - pl.duration(seconds=shift, time_unit="ns")).alias("t"))
    joined = left.join_asof(right, left_on="t", right_on="ts_m", by="tok", strategy="backward",
                            allow_exact_matches=False, check_sortedness=False)
    return joined.select(*[pl.col(c).alias(c + suffix) for c in ("ts_m", "price", "cum_n", "cum_s", "cum_v")])


out = pl.concat([probe, at(0, ""), at(30, "_30"), at(300, "_300"), at(60, "_60")], how="horizontal").with_columns(
    mt_last_price_tokens=pl.col("price"),
    mt_last_age_ms_tokens=(pl.col("ts") - pl.col("ts_m")).dt.total_nanoseconds() / 1e6,
    mt_return_30s_tokens=pl.col("price") - pl.col("price_30"),
    mt_return_5m_tokens=pl.col("price") - pl.col("price_300"),
    mt_trades_60s_tokens=pl.col("cum_n").fill_null(0.0) - pl.col("cum_n_60").fill_null(0.0),
    mt_volume_60s_tokens=pl.col("cum_s").fill_null(0.0) - pl.col("cum_s_60").fill_null(0.0),
    mt_notional_60s_tokens=pl.col("cum_v").fill_null(0.0) - pl.col("cum_v_60").fill_null(0.0),
)
features = [c for c in out.columns if c.endswith("_tokens")]
out = out.select(
    pl.col("ts").alias("ts_event"), "event_key", "token_id",
    *[pl.when(pl.col("tok").is_not_null()).then(pl.col(c).cast(pl.Float64)).otherwise(None)
      .fill_null(float("nan")).alias(c) for c in features],
)
out.write_parquet(f"{root}/out_polars.parquet", compression="zstd")
"""


def generate(root: Path, events: int, trades: int, tokens: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    names = np.array([f"{int(x)}" for x in rng.integers(10**17, 10**18, tokens)])
    token = rng.integers(0, tokens, trades)
    ts = DAY + rng.integers(0, 86_400_000, trades) * 1_000_000  # milliseconds
    order = np.argsort(ts, kind="stable")  # a consolidated feed: time order, tokens interleaved
    walk = 0.5 + np.cumsum(rng.normal(0, 0.002, trades)).clip(-0.45, 0.45)
    market = pa.table(
        {
            "ts": pa.array(ts[order]).cast(pa.timestamp("ns", tz="UTC")),
            "token_id": pa.array(names[token[order]]),
            "price": walk.round(3),
            "size": rng.uniform(1, 100, trades).round(1),
        }
    )
    f_ts = np.sort(DAY + rng.integers(0, 86_400, events) * S)  # whole seconds, as the seed's fills
    fills = pa.table(
        {
            "ts": pa.array(f_ts).cast(pa.timestamp("ns", tz="UTC")),
            "event_key": pa.array([f"k{i}" for i in range(events)]),
            "token_id": pa.array(names[rng.integers(0, tokens, events)]),
            "price": rng.uniform(0.05, 0.95, events).round(2),
            "size": rng.uniform(1, 50, events).round(1),
        }
    )
    (root / "data").mkdir(parents=True)
    (root / "specs").mkdir()
    pq.write_table(market, root / "data" / "market_trades.parquet", compression="zstd")
    pq.write_table(fills, root / "data" / "fills.parquet", compression="zstd")
    (root / "specs" / "project.yaml").write_text(PROJECT)
    lines = ["spec_version: 1", "features:"]
    for name, formula in FEATURES.items():
        lines += [f"  - name: {name}", "    grid: fills", f'    formula: "{formula}"']
    (root / "specs" / "features.yaml").write_text("\n".join(lines) + "\n")
    (root / "peer_numpy.py").write_text(textwrap.dedent(NUMPY))
    (root / "peer_polars.py").write_text(textwrap.dedent(POLARS))


def programs(root: Path) -> dict[str, list[str]]:
    return {
        "fspec": [sys.executable, "-m", "fspec.cli", "run", "--project", str(root)],
        "numpy (seed, strict)": [sys.executable, str(root / "peer_numpy.py"), str(root)],
        "polars join_asof": [sys.executable, str(root / "peer_polars.py"), str(root)],
    }


def check_agreement(root: Path) -> None:
    """The three outputs hold the same values (cumulative sums differ from direct sums in the last bits)."""
    ours = pq.read_table(next((root / "out").glob("features_*_fills.parquet")))
    for peer in ("out_numpy.parquet", "out_polars.parquet"):
        theirs = pq.read_table(root / peer)
        for column in (c for c in ours.column_names if c.endswith("_tokens")):
            a, b = ours[column].to_numpy(), theirs[column].to_numpy()
            if not np.allclose(a, b, rtol=1e-9, atol=1e-6, equal_nan=True):
                bad = int(np.flatnonzero(~np.isclose(a, b, rtol=1e-9, atol=1e-6, equal_nan=True))[0])
                raise SystemExit(f"{peer} disagrees on {column} at row {bad}: {a[bad]!r} vs {b[bad]!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=parse_rows, default=1_000_000, help="fills (default 1M)")
    parser.add_argument("--trades", type=parse_rows, default=10_000_000, help="market trades (default 10M)")
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="fspec_events_"))
    root = scratch / "project"
    try:
        print(f"{args.events:,} fills, {args.trades:,} market trades, {args.tokens} tokens under {scratch}", flush=True)
        generate(root, args.events, args.trades, args.tokens)
        timed([sys.executable, "-m", "fspec.cli", "compile", "--project", str(root)])
        compare(programs(root), args.repeat, lambda: check_agreement(root))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
