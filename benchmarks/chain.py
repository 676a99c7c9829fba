"""One day of an option chain quoted every second: the ten category II features at 30 s and 60 s, fspec against
a pandas implementation of the same features, as a user runs them.

    python -m benchmarks.chain --contracts 500 --trades 5000 --repeat 3

The chain (synthetic, generated here with a fixed seed): two weekly expiries, ``contracts / 4`` strikes each
every 5 points around an index that follows a random walk, calls and puts; every contract is requoted once in
every second of the session (``--every N``: every N seconds) at a random millisecond of it, from a smile
around the walk, with zero bids in the wings and about one crossed quote in 2,000: ``contracts x 23,400``
quotes in one file in time order, as a consolidated feed gives them. Trades at random times, more near the
money, priced at the bid, the ask or the mid of the model's quote. Both programs read the two parquet files
and write the ten columns of each grid:

* fspec: ``fspec run`` of a project with the chain and its trades (the root project's spxw_chain.yaml features);
* pandas: ``benchmarks/chain_pandas.py`` (its module doc says how).

The outputs are checked to agree first (rtol 1e-9, the sums also to 1e-12 of their column's largest value, the
same NaNs); then rounds run each program once in a rotating order, with the load average, and the ratio of
pandas' wall to fspec's is reported per round.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.rounds import compare, timed

DAY = "2013-10-07"
STAMP = DAY.replace("-", "")
OPEN_NS = np.datetime64("2013-10-07T13:30", "ns").astype(np.int64)  # 09:30 New York (EDT)
SECONDS = 23_400
EXPIRIES = {
    "2013-10-11": np.datetime64("2013-10-11T20:00", "ns"),
    "2013-10-18": np.datetime64("2013-10-18T20:00", "ns"),
}
FEATURES = {
    "iv_atm": "iv_atm(spxw_quotes, expiry=nearest(min_minutes=30))",
    "iv_rr25": "iv_rr25(spxw_quotes, expiry=nearest(min_minutes=30))",
    "iv_slope": "iv_slope(spxw_quotes, expiry=nearest(min_minutes=30))",
    "skew_index": "skew_index(spxw_quotes, expiry=nearest(min_minutes=30))",
    "net_delta_flow": "net_delta_flow(spxw_trades)",
    "net_gamma_flow": "net_gamma_flow(spxw_trades)",
    "net_vega_flow": "net_vega_flow(spxw_trades)",
    "option_ofi": "option_ofi(spxw_quotes)",
    "option_spread_pct_vw": "option_spread_pct_vw(spxw_trades)",
    "option_vwap_deviation": "option_vwap_deviation(spxw_trades, expiry=nearest(min_minutes=30))",
}
SUMS = ("net_delta_flow", "net_gamma_flow", "net_vega_flow", "option_ofi")

PROJECT = """\
spec_version: 1
sources:
  spxw_quotes:
    path: data/{symbol}/{date}_quotes.parquet
    time: time
    contract: {expiry: expiry, strike: strike, right: right, settlement: "16:00", rate: 0.001, multiplier: 100}
    columns: {bid: float64, ask: float64, bid_size: float64, ask_size: float64}
  spxw_trades:
    path: data/{symbol}/{date}_option_trades.parquet
    time: time
    contract: {expiry: expiry, strike: strike, right: right, quotes: spxw_quotes}
    columns: {price: float64, size: float64}
instruments:
  spxw: {symbol: spxw, sources: [spxw_quotes, spxw_trades]}
intervals: [30s, 60s]
session: {timezone: America/New_York, open: "09:30", close: "16:00"}
"""


def _prices(F: np.ndarray, K: np.ndarray, T: np.ndarray, sigma: np.ndarray, call: np.ndarray) -> np.ndarray:
    from fspec.options.black76 import price  # the data's model prices (the peers price nothing)

    return price(F, K, T, sigma, call, np.exp(-0.001 * T))


def generate(root: Path, contracts: int, trades: int, every: int = 1, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    per_expiry = contracts // 4
    strikes = 1690.0 + 5.0 * (np.arange(per_expiry) - per_expiry // 2)
    index = 1690.0 * np.exp(np.cumsum(rng.normal(0, 0.00008, SECONDS)))  # the index at each second
    table = [(e, k, r) for e in EXPIRIES for k in strikes for r in "CP"]
    n_c = len(table)
    second = np.repeat(np.arange(0, SECONDS, every), n_c)  # every contract requoted every `every` seconds
    which = np.tile(np.arange(n_c), len(second) // n_c)
    ts = OPEN_NS + second * 1_000_000_000 + rng.integers(0, 1000, len(second)) * 1_000_000
    order = np.argsort(ts, kind="stable")
    ts, second, which = ts[order], second[order], which[order]
    contract_expiry = np.array([EXPIRIES[e].astype(np.int64) for e, _, _ in table])
    contract_strike = np.array([k for _, k, _ in table])
    contract_call = np.array([r == "C" for _, _, r in table])

    def smile_price(which: np.ndarray, ts: np.ndarray, second: np.ndarray) -> np.ndarray:
        """The model price of contracts ``which`` at times ``ts`` (``second``: the session's second of each)."""
        T = (contract_expiry[which] - ts) / 1e9 / (365 * 86400.0)
        F = index[second] * np.exp(-0.019 * T)
        z = np.log(contract_strike[which] / F) / (0.17 * np.sqrt(T))
        sigma = np.maximum(0.17 * (1 - 0.16 * z + 0.025 * z * z), 0.07)
        return _prices(F, contract_strike[which], T, sigma, contract_call[which])

    model = smile_price(which, ts, second)
    half = 0.015 * model + 0.05
    tick = np.where(model < 3.0, 0.05, 0.10)
    bid = np.floor((model - half) / tick + 1e-9) * tick
    bid = np.where(bid < 0.05, 0.0, bid)
    ask = np.maximum(np.ceil((model + half) / tick - 1e-9) * tick, bid + tick)
    bid = np.where(rng.integers(0, 2000, len(ts)) == 0, ask + tick, bid)
    rights = np.array([r for _, _, r in table])
    expiry_days = np.array([EXPIRIES[e].astype("datetime64[D]") for e, _, _ in table])
    quotes = pa.table(
        {
            "time": pa.array(ts).cast(pa.timestamp("ns", tz="America/New_York")),
            "expiry": pa.array(expiry_days[which]),
            "strike": contract_strike[which],
            "right": pa.array(rights[which]).dictionary_encode(),
            "bid": np.round(bid, 2),
            "ask": np.round(ask, 2),
            "bid_size": rng.integers(1, 500, len(ts)).astype(np.float64),
            "ask_size": rng.integers(1, 500, len(ts)).astype(np.float64),
        }
    )
    # trades: near the money more often, at the bid, the ask or the mid of the model's quote at that second
    weight = np.exp(-0.5 * (np.log(contract_strike / 1690.0) / 0.02) ** 2)
    pick = rng.choice(n_c, trades, p=weight / weight.sum())
    t_ts = np.sort(OPEN_NS + rng.integers(0, SECONDS * 1000, trades) * 1_000_000)
    t_sec = (t_ts - OPEN_NS) // 1_000_000_000
    t_model = smile_price(pick, t_ts, t_sec)
    side = rng.integers(-1, 2, trades)  # -1 bid, 0 mid, +1 ask
    t_price = np.maximum(np.round((t_model + side * (0.015 * t_model + 0.05)) / 0.05) * 0.05, 0.05)
    option_trades = pa.table(
        {
            "time": pa.array(t_ts).cast(pa.timestamp("ns", tz="America/New_York")),
            "expiry": pa.array(expiry_days[pick]),
            "strike": contract_strike[pick],
            "right": pa.array(rights[pick]),
            "price": np.round(t_price, 2),
            "size": rng.integers(1, 50, trades).astype(np.float64),
        }
    )
    (root / "data" / "spxw").mkdir(parents=True)
    (root / "specs").mkdir()
    pq.write_table(quotes, root / "data" / "spxw" / f"{STAMP}_quotes.parquet", compression="zstd")
    pq.write_table(option_trades, root / "data" / "spxw" / f"{STAMP}_option_trades.parquet", compression="zstd")
    (root / "specs" / "project.yaml").write_text(PROJECT)
    lines = ["spec_version: 1", "features:"]
    for name, formula in FEATURES.items():
        lines += [f"  - name: {name}", "    instruments: [spxw]", f'    formula: "{formula}"']
    (root / "specs" / "features.yaml").write_text("\n".join(lines) + "\n")


def programs(root: Path) -> dict[str, list[str]]:
    peer = Path(__file__).with_name("chain_pandas.py")
    return {
        "fspec": [sys.executable, "-m", "fspec.cli", "run", "--project", str(root)],
        "pandas": [sys.executable, str(peer), str(root), DAY],
    }


def check_agreement(root: Path) -> None:
    """Both outputs hold the same values on every bar of both grids."""
    for seconds in (30, 60):
        ours = pq.read_table(root / "out" / f"features_{STAMP}_{seconds}s.parquet")
        theirs = pq.read_table(root / f"out_pandas_{seconds}s.parquet")
        for name in FEATURES:
            column = f"{name}_{seconds}s_spxw"
            a, b = ours[column].to_numpy(), theirs[column].to_numpy()
            atol = 1e-12 * np.nanmax(np.abs(b)) if name in SUMS else 0.0
            same = np.isclose(a, b, rtol=1e-9, atol=atol, equal_nan=True)
            if not same.all():
                bad = int(np.flatnonzero(~same)[0])
                raise SystemExit(f"pandas disagrees on {column} at row {bad}: {a[bad]!r} vs {b[bad]!r}")
            if np.isnan(a).mean() > (0.95 if name == "option_vwap_deviation" else 0.5):
                raise SystemExit(f"{column} is NaN on most bars: nothing compared")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=int, default=500, help="contracts of the chain (default 500)")
    parser.add_argument("--trades", type=int, default=5000, help="option trades in the day (default 5,000)")
    parser.add_argument("--every", type=int, default=1, help="seconds between a contract's quotes (default 1)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--aot", action="store_true", help="compile the project with --aot (runs without numba)")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="fspec_chain_"))
    root = scratch / "project"
    try:
        quotes = (args.contracts // 4) * 4 * len(range(0, SECONDS, args.every))
        print(
            f"{args.contracts // 4 * 4} contracts, {quotes:,} quotes, {args.trades:,} trades under {scratch}",
            flush=True,
        )
        generate(root, args.contracts, args.trades, args.every)
        timed([sys.executable, "-m", "fspec.cli", "compile", "--project", str(root), *(["--aot"] if args.aot else [])])
        compare(programs(root), args.repeat, lambda: check_agreement(root))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
