"""`fspec init DIR`: a small working project (specs, a spec test, one day of synthetic trades and quotes)."""

from __future__ import annotations

from pathlib import Path

from fspec.errors import UsageError
from fspec.files import display

DAY = "2024-01-02"  # a Tuesday
SYMBOL = "abc"

PROJECT = """\
# Where data comes from, which instruments, which bar widths, which session.
# The data is one synthetic day made by `fspec init` (trades and quotes of one made-up stock, abc).
spec_version: 1

sources:
  trades:
    path: data/{symbol}/{date}_trades.parquet
    time: ts                                     # UTC timestamps
    columns: {price: float64, size: float64}
    filter: "size > 0"
  quotes:
    path: data/{symbol}/{date}_quotes.parquet
    time: ts
    columns: {bid: float64, ask: float64, bid_size: float64, ask_size: float64}

instruments:
  abc: {symbol: abc, params: {tick_size: 0.01}}

intervals: [30s, 60s]

session: {timezone: America/New_York, open: "09:30", close: "16:00"}
"""

FEATURES = """\
# Features: one column per feature, instrument and interval, e.g. vwap_30s_abc.
spec_version: 1

features:
  - name: last_price
    description: The last trade price, carried forward over bars without trades.
    tags: [price]
    formula: ffill(last(trades.price))

  - name: volume
    description: Shares traded in the bar (0 for an empty bar).
    tags: [flow]
    formula: sum(trades.size)

  - name: vwap
    description: Volume-weighted average trade price of the bar.
    tags: [price]
    formula: wmean(trades.price, trades.size)

  - name: mid
    description: The quote midpoint at the bar end; a helper, computed but not written.
    formula: ffill(last((quotes.bid + quotes.ask) / 2))
    publish: false

  - name: spread_ticks
    description: The quoted spread at the bar end in ticks of the instrument.
    tags: [liquidity]
    formula: ffill(last(quotes.ask - quotes.bid)) / tick_size

  - name: vwap_deviation
    description: How far the bar's VWAP is from the mid, relative to the mid.
    tags: [price]
    formula: (vwap - mid) / mid

  - name: realized_vol
    description: Annualized sqrt of the sum of squared tick log returns in the bar.
    tags: [volatility]
    formula: sqrt(sum(diff(log(trades.price)) ** 2) * periods_per_year)

targets:
  - name: target_next_return
    description: The next bar's log return of the last trade price (it reads the future, as targets may).
    formula: lead(log(last_price), 1) - log(last_price)
"""

SPEC_TEST = """\
# Spec tests, run by `fspec test`: made-up rows in, expected values out (exact unless a tolerance is given).
spec_version: 1

tests:
  - name: vwap weights trades by size
    date: "2024-01-02"
    interval: 30s
    given:                                       # the only data of the test: rows of the sources' files
      trades:
        - {ts: "09:30:01", price: 100.0, size: 100}
        - {ts: "09:30:10", price: 101.0, size: 300}
        - {ts: "09:30:40", price: 102.0, size: 0}     # dropped by the source's filter (size > 0)
      quotes:
        - {ts: "09:30:00", bid: 99.99, ask: 100.01, bid_size: 100, ask_size: 200}
    expect:                                      # values from the session's first bar on; null: missing
      vwap: [100.75, null]                       # (100 * 100 + 101 * 300) / 400; no trade in the second bar
      volume: [400, 0]
      last_price: {"09:30:00": 101.0, "09:31:00": 101.0}   # or by bar start: carried forward
      vwap_deviation: [0.0075]                   # (100.75 - 100) / 100
      spread_ticks: [2, 2, 2]
      realized_vol: [4.41148790865847]           # log(101 / 100) * sqrt(252 * 23400 / 30)
      target_next_return: [0.0]
    tolerance: {vwap_deviation: 1.0e-12, spread_ticks: 1.0e-9, realized_vol: 1.0e-12}
"""

README = """\
# {name}

An fspec project made by `fspec init`: specs in `specs/`, one synthetic day of data in `data/`.

```bash
fspec validate && fspec compile && fspec run    # writes out/features_20240102_30s.parquet and _60s
fspec test                                      # runs specs/features.test.yaml
fspec ls                                        # the columns a run writes
fspec explain vwap_30s_abc
```
"""

GITIGNORE = "build/\nout/\n"


def init_project(dest: Path) -> list[Path]:
    """Write the project into ``dest`` (a new or empty folder); returns the files written."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(
            f"{dest} is not an empty folder: fspec init writes a new project",
            f"pick a new folder, e.g. fspec init {dest.name or 'features'}_new",
        )
    files = {
        dest / "specs" / "project.yaml": PROJECT,
        dest / "specs" / "features.yaml": FEATURES,
        dest / "specs" / "features.test.yaml": SPEC_TEST,
        dest / "README.md": README.format(name=dest.resolve().name),
        dest / ".gitignore": GITIGNORE,
    }
    written = []
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    written += _write_data(dest)
    return written


def _write_data(dest: Path) -> list[Path]:
    """One session of trades (about one every 4 s) and quotes (about one every 2 s) on a random walk of the
    mid; seeded, so every project starts with the same file."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(20240102)
    open_ns = np.datetime64(f"{DAY}T14:30:00", "ns").astype(np.int64)  # 09:30 in New York, winter time
    length_ns = int(6.5 * 3600 * 1e9)

    def times(n: int) -> np.ndarray:
        return np.sort(open_ns + rng.integers(0, length_ns, n))

    def mid_at(ts: np.ndarray) -> np.ndarray:
        steps = rng.normal(0, 0.0004, len(ts))
        return np.round(100 * np.exp(np.cumsum(steps)), 2)

    q_ts = times(12_000)
    q_mid = mid_at(q_ts)
    half = 0.01 * rng.integers(1, 3, len(q_ts))
    quotes = {
        "ts": q_ts,
        "bid": np.round(q_mid - half, 2),
        "ask": np.round(q_mid + half, 2),
        "bid_size": rng.integers(1, 20, len(q_ts)) * 100.0,
        "ask_size": rng.integers(1, 20, len(q_ts)) * 100.0,
    }
    t_ts = times(6_000)
    at = np.clip(np.searchsorted(q_ts, t_ts, side="right") - 1, 0, len(q_ts) - 1)
    buy = rng.random(len(t_ts)) < 0.5
    trades = {
        "ts": t_ts,
        "price": np.where(buy, quotes["ask"][at], quotes["bid"][at]),
        "size": rng.integers(1, 50, len(t_ts)) * 10.0,
    }
    written = []
    for name, columns in (("trades", trades), ("quotes", quotes)):
        path = dest / "data" / SYMBOL / f"{DAY.replace('-', '')}_{name}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = [pa.array(columns["ts"], pa.timestamp("ns", tz="UTC"))]
        arrays += [pa.array(values, pa.float64()) for key, values in columns.items() if key != "ts"]
        pq.write_table(pa.Table.from_arrays(arrays, names=list(columns)), path, compression="zstd")
        written.append(path)
    return written


def describe(written: list[Path], dest: Path) -> str:
    lines = [f"wrote {display(p, dest)}" for p in written]
    lines.append(f"next: cd {dest} && fspec validate && fspec compile && fspec run")
    return "\n".join(lines)
