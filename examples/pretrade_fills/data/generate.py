"""Generate fills.parquet and market_trades.parquet: synthetic Polymarket-like data with the schema of seed 004
(our own fills of up/down markets, and the public tape of market trades of the same tokens), so that the
example runs without a snapshot of the real data.

    python data/generate.py            # from the example's folder; writes data/fills.parquet and
                                       # data/market_trades.parquet (seeded: the same bytes every time)

Four 15-minute up/down markets (the slug ends with the epoch second the 15 minutes start; a market trades
from some time before its window until the window ends), each with an Up and a Down token, around midnight
between 2025-12-14 and 2025-12-15 UTC, plus one more token (the Up side of a fifth market) that we trade but
that has no public trades at all. What the generator does, and why:

* one probability path per market (a random walk in log-odds, more volatile as the window end nears); the
  Up token trades near it, the Down token near one minus it, on 0.01 ticks in (0, 1);
* market trades arrive at random (millisecond timestamps) with an intensity that changes every 30 s and is
  zero in about one segment in eight, so that trailing 60 s windows are often empty;
* each token's tape starts a little after the first moment its market can be traded, while our fills start
  at that moment: some fills come before the first market trade of their token;
* our fills come in bursts at whole seconds (several fills often share a second), mostly BUY; in a little
  more than half of the bursts we buy both Up and Down of the market within a few seconds (the seed's
  "complete set" regime);
* about 300 fills also appear on the tape at exactly their own timestamp (our trade, printed publicly): those
  are the ties that a strictly-before rule must not see;
* about ten tape rows have a NaN price (a malformed print; its size is real), most of them just before a
  fill, so that an as-of value has to skip them;
* the markets of 00:00 and 00:15 trade before midnight, so the first fills of 2025-12-15 need the tape of
  2025-12-14 for their 30 s and 5 min look-backs.

Both files are sorted by ``ts`` (stably). Columns and types: see data/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SEED = 4
MIDNIGHT = 1_765_756_800  # 2025-12-15 00:00:00 UTC, in epoch seconds
WINDOW = 900  # every market's window is 15 minutes
SEGMENT = 30  # the tape's intensity changes every 30 s
TAPE_RATE = 1.85  # mean market trades a second per token while a segment is active
BURST_RATE = 6.5 / 60  # bursts of our fills a second per market
TIES = 300  # fills that also appear on the tape at their own timestamp
NAN_BEFORE_FILLS, NAN_ELSEWHERE = 7, 3  # tape rows with a NaN price
EXEC_TYPES = ["MAKER_LIKE", "TAKER_LIKE", "INSIDE", "UNKNOWN"]
EXEC_WEIGHTS = [0.35, 0.25, 0.25, 0.15]
ROUND_SIZES = np.array([5.0, 10.0, 15.0, 20.0, 25.0, 40.0, 50.0, 100.0])


@dataclass(frozen=True)
class Market:
    asset: str
    start: int  # epoch second the 15 minutes start (the slug's number)
    opens: int  # seconds before `start` from which the market trades

    @property
    def slug(self) -> str:
        return f"{self.asset}-updown-15m-{self.start}"

    @property
    def first(self) -> int:
        return self.start - self.opens

    @property
    def end(self) -> int:
        return self.start + WINDOW


MARKETS = [
    Market("btc", MIDNIGHT - 900, 55 * 60),  # 22:50 -> 00:00 on 2025-12-14
    Market("eth", MIDNIGHT, 40 * 60),  # 23:20 -> 00:15, across midnight
    Market("btc", MIDNIGHT, 25 * 60),  # 23:35 -> 00:15
    Market("sol", MIDNIGHT + 900, 30 * 60),  # 23:45 -> 00:30
]
LONE = Market("xrp", MIDNIGHT, 2 * 60)  # only its Up token, only in our fills: no tape at all
LONE_FILLS = 24


def _token_id(rng: np.random.Generator) -> str:
    """A 77-digit decimal string, like Polymarket's CLOB token ids."""
    return str(rng.integers(1, 10)) + "".join(map(str, rng.integers(0, 10, 76)))


def _ticks(p: np.ndarray) -> np.ndarray:
    """Round to the 0.01 tick and keep strictly inside (0, 1)."""
    return np.clip(np.round(p, 2), 0.01, 0.99)


def _up_path(rng: np.random.Generator, market: Market) -> np.ndarray:
    """P(Up) at each second from market.first to market.end (exclusive)."""
    seconds = np.arange(market.first, market.end)
    to_end = (market.end - seconds).astype(float)
    vol = 0.012 + 0.05 * np.exp(-to_end / 240.0)  # the outcome firms up as the window closes
    logodds = np.cumsum(rng.normal(0.0, 1.0, len(seconds)) * vol)
    return 1.0 / (1.0 + np.exp(-logodds))


def _tape(rng: np.random.Generator, market: Market, token: str, price: np.ndarray, begins: int) -> pd.DataFrame:
    """Market trades of one token from `begins` to the market's end, `price` its path (one value a second)."""
    times: list[np.ndarray] = []
    for seg in range(begins, market.end, SEGMENT):
        quiet = rng.random() < 0.125
        rate = 0.0 if quiet else TAPE_RATE * rng.lognormal(-0.18, 0.6)
        length = min(SEGMENT, market.end - seg)
        n = rng.poisson(rate * length)
        times.append(seg * 1000 + np.sort(rng.integers(0, length * 1000, n)))
    ms = np.unique(np.concatenate(times))  # one print a millisecond per token keeps "the last row" unambiguous
    second = ms // 1000 - market.first
    prices = _ticks(price[second] + rng.normal(0.0, 0.006, len(ms)))
    sizes = np.round(rng.lognormal(np.log(25.0), 1.1, len(ms)), 2).clip(0.01)
    return pd.DataFrame({"ms": ms, "token_id": token, "market_slug": market.slug, "price": prices, "size": sizes})


def _fills(rng: np.random.Generator, market: Market, tokens: dict[str, str], up: np.ndarray) -> pd.DataFrame:
    """Our fills in one market: bursts at whole seconds, both sides of the market in a little over half."""
    rows: list[tuple[int, str, str, float, float]] = []
    n_bursts = rng.poisson(BURST_RATE * (market.end - market.first))
    for start in np.sort(rng.integers(market.first, market.end, n_bursts)):
        both = rng.random() < 0.55
        outcomes = ["Up", "Down"] if both else [rng.choice(["Up", "Down"])]
        for outcome in outcomes:
            for _ in range(1 + rng.poisson(0.9)):
                ts = int(start + rng.integers(0, 9))  # within 9 s of the burst's start, often the same second
                if ts >= market.end:
                    continue
                p_up = up[ts - market.first]
                fair = p_up if outcome == "Up" else 1.0 - p_up
                price = float(_ticks(fair + rng.normal(0.0, 0.012)))
                size = float(rng.choice(ROUND_SIZES) if rng.random() < 0.8 else round(rng.lognormal(2.5, 0.8), 2))
                rows.append((ts, outcome, tokens[outcome], price, size))
    frame = pd.DataFrame(rows, columns=["sec", "outcome", "token_id", "price", "size"])
    frame["market_slug"] = market.slug
    frame["seconds_to_end"] = market.end - frame["sec"]
    return frame


def generate(seed: int = SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fills, market_trades), both sorted by ts (stably), with the columns of data/README.md."""
    rng = np.random.default_rng(seed)
    tapes, fills = [], []
    for market in MARKETS:
        up = _up_path(rng, market)
        tokens = {"Up": _token_id(rng), "Down": _token_id(rng)}
        for outcome, token in tokens.items():
            path = up if outcome == "Up" else 1.0 - up
            begins = market.first + int(rng.integers(30, 300))  # the tape starts after our first fills can
            tapes.append(_tape(rng, market, token, path, begins))
        fills.append(_fills(rng, market, tokens, up))
    # the lone token: a handful of BUY Up fills, never on the tape
    lone_up = np.full(LONE.end - LONE.first, 0.5)
    lone = _fills(rng, LONE, {"Up": _token_id(rng), "Down": _token_id(rng)}, lone_up)
    lone = lone[lone["outcome"] == "Up"].head(LONE_FILLS)
    fills.append(lone)

    fill = pd.concat(fills, ignore_index=True).sort_values("sec", kind="stable", ignore_index=True)
    n = len(fill)
    fill["side"] = np.where(rng.random(n) < 0.92, "BUY", "SELL")
    fill["exec_type"] = rng.choice(EXEC_TYPES, n, p=EXEC_WEIGHTS)
    fill["event_key"] = [f"0x{rng.bytes(12).hex()}-{i}" for i in range(n)]  # a transaction hash and our index
    fill["ts"] = pd.to_datetime(fill["sec"], unit="s", utc=True).astype("datetime64[ns, UTC]")

    tape = pd.concat(tapes, ignore_index=True)
    first_print = tape.groupby("token_id")["ms"].min()
    taken = set(zip(tape["token_id"], tape["ms"], strict=True))

    # our fills printed on the tape at their own timestamp (one print per token and second)
    on_tape = fill[fill["token_id"].map(first_print).lt(fill["sec"] * 1000)].drop_duplicates(["token_id", "sec"])
    ties = on_tape.iloc[np.sort(rng.choice(len(on_tape), TIES, replace=False))]
    extra = [
        {"ms": s * 1000, "token_id": t, "market_slug": m, "price": p, "size": z}
        for s, t, m, p, z in zip(
            ties["sec"], ties["token_id"], ties["market_slug"], ties["price"], ties["size"], strict=True
        )
        if (t, s * 1000) not in taken
    ]
    taken |= {(r["token_id"], r["ms"]) for r in extra}

    # malformed prints: a NaN price with a real size, most of them just before one of our fills
    nan_rows = []
    before = on_tape.iloc[rng.choice(len(on_tape), NAN_BEFORE_FILLS, replace=False)]
    for s, t, m in zip(before["sec"], before["token_id"], before["market_slug"], strict=True):
        nan_rows.append((int(s) * 1000 - int(rng.integers(40, 900)), t, m))
    for i in rng.choice(len(tape), NAN_ELSEWHERE, replace=False):
        nan_rows.append((int(tape["ms"].iloc[i]) + 1, tape["token_id"].iloc[i], tape["market_slug"].iloc[i]))
    for ms, t, m in nan_rows:
        if (t, ms) not in taken:
            extra.append({"ms": ms, "token_id": t, "market_slug": m, "price": np.nan, "size": 13.37})
            taken.add((t, ms))

    tape = pd.concat([tape, pd.DataFrame(extra)], ignore_index=True).sort_values("ms", kind="stable", ignore_index=True)
    tape["ts"] = pd.to_datetime(tape["ms"], unit="ms", utc=True).astype("datetime64[ns, UTC]")

    fill = fill[
        [
            "ts",
            "event_key",
            "market_slug",
            "token_id",
            "side",
            "outcome",
            "price",
            "size",
            "exec_type",
            "seconds_to_end",
        ]
    ]
    return fill, tape[["ts", "token_id", "market_slug", "price", "size"]]


FILLS_SCHEMA = pa.schema(
    [
        ("ts", pa.timestamp("ns", tz="UTC")),
        ("event_key", pa.string()),
        ("market_slug", pa.string()),
        ("token_id", pa.string()),
        ("side", pa.string()),
        ("outcome", pa.string()),
        ("price", pa.float64()),
        ("size", pa.float64()),
        ("exec_type", pa.string()),
        ("seconds_to_end", pa.int64()),
    ]
)
TRADES_SCHEMA = pa.schema(
    [
        ("ts", pa.timestamp("ns", tz="UTC")),
        ("token_id", pa.string()),
        ("market_slug", pa.string()),
        ("price", pa.float64()),
        ("size", pa.float64()),
    ]
)


def write(frame: pd.DataFrame, schema: pa.Schema, path: Path) -> None:
    # no pandas metadata in the file: the schema above is the whole contract, the bytes depend on nothing else
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False).replace_schema_metadata(None)
    pq.write_table(table, path, compression="zstd")


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    fills, trades = generate()
    write(fills, FILLS_SCHEMA, here / "fills.parquet")
    write(trades, TRADES_SCHEMA, here / "market_trades.parquet")
    print(f"wrote fills.parquet ({len(fills)} rows) and market_trades.parquet ({len(trades)} rows)")
