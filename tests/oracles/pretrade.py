"""Oracles for the event grid of examples/pretrade_fills (issue 14, seed 004): one row per fill, market
context strictly before it, and the seed's complete-set labels.

    from tests.oracles.pretrade import FEATURES, context_numpy, load_bundled

    fills, market_trades = load_bundled()
    want = context_numpy(fills, market_trades, latency_ns=0)        # fills' columns + one column per feature
    fills_file(want, "2025-12-15")                                   # laid out as out/features_20251215_fills.parquet

Nothing here imports fspec. There are three implementations of the market-context features, written
independently of each other (numpy, DuckDB, polars), and two of the complete-set labels (numpy/pandas).

The contract of event grids (issue 14), per column
    A fill at time ``t`` with latency ``L`` (ns) looks at ``t' = t - L``, and only at the market rows of its own
    ``token_id``. Rows are taken in time order, stably (ties keep the order of the market_trades frame).

    asof(x)            the last row with ``ts < t'`` and ``x`` not NaN; NaN if there is none
    asof(x, ago=D)     the same with ``ts < t' - D``
    age(x)             ``t - ts`` of the row asof(x) reads, in seconds (from ``t``, not ``t'``); NaN if none
    count(x, window=W) rows with ``t' - W <= ts < t'`` and ``x`` not NaN; 0 if none
    sum(x, window=W)   the sum of the non-NaN ``x`` over those rows; 0.0 if none

    Strictly before: a market row at exactly ``t'`` is not seen (the seed's ``searchsorted(side="right")``
    sees it, and so reads the fill's own print on the tape). A row with a NaN price is invisible to what
    reads the price (asof, age, count of price, price * size) but its size still counts in ``sum(size)``.
    A fill whose token has no market row before ``t'`` gets NaN as-of values and age, and zero counts and
    sums; a fill whose token has no market row at all (not a member of the universe) gets NaN everywhere.

The features (examples/pretrade_fills/specs/features.yaml), each a float64 column of the same name
    mt_last_price    asof(price)                 mt_trades_60s    count(price, window=60s)
    mt_last_age_ms   age(price) * 1000           mt_volume_60s    sum(size, window=60s)
    mt_return_30s    asof(price) - asof(price, ago=30s)
    mt_return_5m     asof(price) - asof(price, ago=5m)
    mt_notional_60s  sum(price * size, window=60s)
    A return is NaN where either of its as-of values is. Counts are float64 like everything fspec writes.

Inputs
    fills: a DataFrame with at least ``ts`` (datetime, tz-aware or naive UTC), ``token_id`` (str); for the
    complete-set labels also ``market_slug``, ``side``, ``outcome``, ``size``. Any order, any index.
    market_trades: ``ts``, ``token_id``, ``price``, ``size``; any order.
Every context_* and complete_set_* function returns a new DataFrame with the fills' index and rows in the
fills' order: the fills' own columns, then the computed ones (float64).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "pretrade_fills"

SECOND = 1_000_000_000  # ns
RETURNS = {"mt_return_30s": 30 * SECOND, "mt_return_5m": 300 * SECOND}  # feature -> look-back D of ago=D
FLOW_WINDOW = 60 * SECOND
FEATURES = [
    "mt_last_price",
    "mt_last_age_ms",
    "mt_return_30s",
    "mt_return_5m",
    "mt_trades_60s",
    "mt_volume_60s",
    "mt_notional_60s",
]
KEEP = ["event_key", "market_slug", "token_id", "side", "outcome", "price", "size", "exec_type"]
UNIVERSE_SUFFIX = "tokens"  # the universe's name: fspec's columns are <feature>_tokens on this grid
LABELS = ["up_shares", "down_shares", "complete_set_flag", "complete_set_shares"]


def load_bundled(root: Path = EXAMPLE) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fills, market_trades) of the example, as bundled in ``root/data`` (both sorted by ts)."""
    fills = pd.read_parquet(root / "data" / "fills.parquet")
    market_trades = pd.read_parquet(root / "data" / "market_trades.parquet")
    return fills, market_trades


def fills_file(result: pd.DataFrame, day: str) -> pd.DataFrame:
    """``result`` (fills' columns + FEATURES, from one of the context oracles) laid out as fspec writes
    ``out/features_{YYYYMMDD}_fills.parquet``: the fills of UTC ``day`` in time order (ties keep the fills'
    order), ``ts_event`` (the fill's ts, ns UTC), the KEEP columns unchanged, then ``<feature>_tokens``."""
    ts = pd.to_datetime(result["ts"], utc=True)
    start = pd.Timestamp(day, tz="UTC")
    rows = result[(ts >= start) & (ts < start + pd.Timedelta(days=1))]
    rows = rows.iloc[np.argsort(_ns(rows["ts"]), kind="stable")]
    out = pd.DataFrame({"ts_event": pd.to_datetime(rows["ts"], utc=True).dt.as_unit("ns")})
    for name in KEEP:
        out[name] = rows[name]
    for name in FEATURES:
        out[f"{name}_{UNIVERSE_SUFFIX}"] = rows[name].astype("float64")
    return out.reset_index(drop=True)


def _ns(ts: pd.Series) -> np.ndarray:
    """Epoch nanoseconds (int64) of a datetime column; naive times are taken as UTC."""
    return pd.DatetimeIndex(pd.to_datetime(ts, utc=True)).as_unit("ns").asi8


def _with(fills: pd.DataFrame, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    out = fills.copy()
    for name, values in columns.items():
        out[name] = np.asarray(values, dtype="float64")
    return out


# ---- (a) numpy: grouped searchsorted, the seed's style with strict edges --------------------------------


def context_numpy(fills: pd.DataFrame, market_trades: pd.DataFrame, latency_ns: int = 0) -> pd.DataFrame:
    """The market-context FEATURES per fill with numpy: per token, ``np.searchsorted(side="left")`` on the
    market times (the seed's code with its ``side="right"`` made strict) and window sums over the slices
    the searches bound (summed directly, not as differences of running sums, so no cancellation error)."""
    n = len(fills)
    t = _ns(fills["ts"])
    t_eff = t - int(latency_ns)
    tokens = fills["token_id"].to_numpy()
    out = {name: np.full(n, np.nan) for name in FEATURES}

    m_ts = _ns(market_trades["ts"])
    order = np.argsort(m_ts, kind="stable")  # time order, ties in the frame's order
    m_ts = m_ts[order]
    m_token = market_trades["token_id"].to_numpy()[order]
    m_price = market_trades["price"].to_numpy(dtype="float64")[order]
    m_size = market_trades["size"].to_numpy(dtype="float64")[order]

    for token in pd.unique(tokens):
        here = np.flatnonzero(tokens == token)
        mine = m_token == token
        if not mine.any():
            continue  # not a member of the universe: every feature stays NaN
        ts_all, price, size = m_ts[mine], m_price[mine], m_size[mine]
        te, tt = t_eff[here], t[here]

        ok = ~np.isnan(price)
        p_ts, p = ts_all[ok], price[ok]
        end = np.searchsorted(p_ts, te, side="left")  # rows [0, end) are strictly before t'
        seen = end > 0
        last_ix = np.maximum(end - 1, 0)
        last = np.where(seen, p[last_ix] if len(p) else np.nan, np.nan)
        out["mt_last_price"][here] = last
        age_s = np.where(seen, (tt - (p_ts[last_ix] if len(p) else 0)) / SECOND, np.nan)
        out["mt_last_age_ms"][here] = age_s * 1000
        for name, d in RETURNS.items():
            e = np.searchsorted(p_ts, te - d, side="left")
            before = np.where(e > 0, p[np.maximum(e - 1, 0)] if len(p) else np.nan, np.nan)
            out[name][here] = last - before

        start = np.searchsorted(p_ts, te - FLOW_WINDOW, side="left")
        out["mt_trades_60s"][here] = end - start
        out["mt_volume_60s"][here] = _window_sums(ts_all, size, te, FLOW_WINDOW)
        out["mt_notional_60s"][here] = _window_sums(ts_all, price * size, te, FLOW_WINDOW)
    return _with(fills, out)


def _window_sums(ts: np.ndarray, x: np.ndarray, t_eff: np.ndarray, width: int) -> np.ndarray:
    """Sum of the non-NaN x over rows with t_eff - width <= ts < t_eff, for each t_eff (0.0 if none)."""
    ok = ~np.isnan(x)
    ts, x = ts[ok], x[ok]
    lo = np.searchsorted(ts, t_eff - width, side="left")
    hi = np.searchsorted(ts, t_eff, side="left")
    return np.array([x[a:b].sum() for a, b in zip(lo, hi, strict=True)], dtype="float64")


# ---- (b) DuckDB: ASOF JOIN with '>' for as-of values, a range join for windows ---------------------------


def context_duckdb(fills: pd.DataFrame, market_trades: pd.DataFrame, latency_ns: int = 0) -> pd.DataFrame:
    """The market-context FEATURES per fill in SQL: ``ASOF LEFT JOIN ... ON f.token_id = m.token_id AND
    f.t_eff > m.ts`` for asof and age (against the rows with a price, one row per token and time: the last in
    the frame's order), a range join ``m.ts >= f.t_eff - W AND m.ts < f.t_eff`` grouped by fill for the
    windows. Times are BIGINT nanoseconds."""
    import duckdb

    t = _ns(fills["ts"])
    f = pd.DataFrame(
        {
            "rid": np.arange(len(fills), dtype="int64"),
            "token_id": fills["token_id"].astype(str).to_numpy(dtype=object),
            "t": t,
            "t_eff": t - int(latency_ns),
        }
    )
    for name, d in RETURNS.items():
        f[f"t_{name}"] = f["t_eff"] - d
    m = pd.DataFrame(
        {
            "seq": np.arange(len(market_trades), dtype="int64"),
            "token_id": market_trades["token_id"].astype(str).to_numpy(dtype=object),
            "ts": _ns(market_trades["ts"]),
            "price": market_trades["price"].to_numpy(dtype="float64"),
            "size": market_trades["size"].to_numpy(dtype="float64"),
        }
    )
    ago = ",\n".join(
        f"""{name}_ago AS (
            SELECT f.rid, p.price AS before FROM f
            ASOF LEFT JOIN px p ON f.token_id = p.token_id AND f.t_{name} > p.ts)"""
        for name in RETURNS
    )
    returns = ", ".join(
        f"CASE WHEN mem.token_id IS NULL THEN NULL ELSE l.last - {n}_ago.before END AS {n}" for n in RETURNS
    )
    joins = " ".join(f"JOIN {n}_ago USING (rid)" for n in RETURNS)
    # `NOT isnan(x)` is NULL (so false) for a SQL NULL too: NaN and NULL are both "no value" here
    sql = f"""
        WITH px AS (
            SELECT token_id, ts, price FROM m WHERE NOT isnan(price)
            QUALIFY row_number() OVER (PARTITION BY token_id, ts ORDER BY ts, seq DESC) = 1
        ),
        l AS (
            SELECT f.rid, p.price AS last, p.ts AS last_ts FROM f
            ASOF LEFT JOIN px p ON f.token_id = p.token_id AND f.t_eff > p.ts
        ),
        {ago},
        w AS (
            SELECT f.rid,
                   count(*) FILTER (WHERE NOT isnan(m.price)) AS n,
                   coalesce(sum(m.size) FILTER (WHERE NOT isnan(m.size)), 0.0) AS volume,
                   coalesce(sum(m.price * m.size) FILTER (WHERE NOT isnan(m.price * m.size)), 0.0) AS notional
            FROM f LEFT JOIN m
              ON f.token_id = m.token_id AND m.ts >= f.t_eff - {FLOW_WINDOW} AND m.ts < f.t_eff
            GROUP BY f.rid
        ),
        mem AS (SELECT DISTINCT token_id FROM m)
        SELECT f.rid,
               CASE WHEN mem.token_id IS NULL THEN NULL ELSE l.last END AS mt_last_price,
               CASE WHEN mem.token_id IS NULL THEN NULL
                    ELSE CAST(f.t - l.last_ts AS DOUBLE) / {SECOND}e0 * 1000 END AS mt_last_age_ms,
               {returns},
               CASE WHEN mem.token_id IS NULL THEN NULL ELSE CAST(w.n AS DOUBLE) END AS mt_trades_60s,
               CASE WHEN mem.token_id IS NULL THEN NULL ELSE w.volume END AS mt_volume_60s,
               CASE WHEN mem.token_id IS NULL THEN NULL ELSE w.notional END AS mt_notional_60s
        FROM f JOIN l USING (rid) {joins} JOIN w USING (rid)
        LEFT JOIN mem ON f.token_id = mem.token_id
        ORDER BY f.rid
    """
    con = duckdb.connect()
    try:
        con.register("f", f)
        con.register("m", m)
        got = con.execute(sql).df()
    finally:
        con.close()
    return _with(fills, {name: got[name].to_numpy(dtype="float64", na_value=np.nan) for name in FEATURES})


# ---- (c) polars: join_asof(allow_exact_matches=False) and rolling sums closed on the left ----------------


def context_polars(fills: pd.DataFrame, market_trades: pd.DataFrame, latency_ns: int = 0) -> pd.DataFrame:
    """The market-context FEATURES per fill with polars: ``join_asof(strategy="backward",
    allow_exact_matches=False, by="token_id")`` for asof and age, and for the windows a rolling sum over
    time closed on the left (``rolling_sum_by(window_size="60s", closed="left")`` over each token's market
    rows with the fills put among them as zero-valued probes, so each probe reads ``[t' - 60s, t')``)."""
    import polars as pl

    t = _ns(fills["ts"])
    f = pl.DataFrame(
        {
            "rid": np.arange(len(fills), dtype="int64"),
            "token_id": fills["token_id"].astype(str).to_list(),
            "t": t,
            "t_eff": t - int(latency_ns),
        }
    ).with_columns([(pl.col("t_eff") - d).alias(f"t_{name}") for name, d in RETURNS.items()])
    m = (
        pl.DataFrame(
            {
                "token_id": market_trades["token_id"].astype(str).to_list(),
                "ts": _ns(market_trades["ts"]),
                "price": market_trades["price"].to_numpy(dtype="float64"),
                "size": market_trades["size"].to_numpy(dtype="float64"),
            }
        )
        .with_columns(pl.col("price").fill_nan(None), pl.col("size").fill_nan(None))
        .sort("ts", maintain_order=True)
    )
    members = m.get_column("token_id").unique()
    # the rows with a price; of several at one time the last in the frame's order
    px = (
        m.filter(pl.col("price").is_not_null())
        .unique(subset=["token_id", "ts"], keep="last", maintain_order=True)
        .select("token_id", "ts", "price")
    )

    def asof(left_on: str, value: str) -> pl.DataFrame:
        right = px.rename({"ts": "key", "price": value}).with_columns(pl.col("key").alias(f"{value}_ts"))
        return (
            f.select("rid", "token_id", left_on)
            .sort(left_on)
            .join_asof(
                right, left_on=left_on, right_on="key", by="token_id", allow_exact_matches=False, check_sortedness=False
            )
            .select("rid", value, f"{value}_ts")
        )

    res = f.join(asof("t_eff", "last"), on="rid")
    for name in RETURNS:
        res = res.join(asof(f"t_{name}", f"{name}_before").drop(f"{name}_before_ts"), on="rid")

    # windows: market rows carry their values, the fills are probes of value 0 at t'
    rows = m.select(
        "token_id",
        pl.col("ts").alias("time"),
        pl.lit(None, dtype=pl.Int64).alias("rid"),
        pl.col("price").is_not_null().cast(pl.Float64).alias("n"),
        pl.col("size").fill_null(0.0).alias("volume"),
        (pl.col("price") * pl.col("size")).fill_null(0.0).alias("notional"),
    )
    probes = f.select(
        "token_id",
        pl.col("t_eff").alias("time"),
        pl.col("rid"),
        pl.lit(0.0).alias("n"),
        pl.lit(0.0).alias("volume"),
        pl.lit(0.0).alias("notional"),
    )
    width = f"{FLOW_WINDOW // SECOND}s"
    windows = (
        pl.concat([rows, probes])
        .with_columns(pl.col("time").cast(pl.Datetime("ns")))
        .sort(["token_id", "time"])
        .with_columns(
            [
                pl.col(c).rolling_sum_by("time", window_size=width, closed="left").over("token_id").alias(c)
                for c in ("n", "volume", "notional")
            ]
        )
        .filter(pl.col("rid").is_not_null())
        .select("rid", "n", "volume", "notional")
    )
    res = res.join(windows, on="rid").sort("rid")

    member = pl.col("token_id").is_in(members.implode())
    res = res.select(
        "rid",
        pl.when(member).then(pl.col("last")).alias("mt_last_price"),
        pl.when(member).then((pl.col("t") - pl.col("last_ts")) / SECOND * 1000).alias("mt_last_age_ms"),
        *[pl.when(member).then(pl.col("last") - pl.col(f"{n}_before")).alias(n) for n in RETURNS],
        # an empty window is 0 (a null rolling sum: no row at all in it)
        pl.when(member).then(pl.col("n").fill_null(0.0)).alias("mt_trades_60s"),
        pl.when(member).then(pl.col("volume").fill_null(0.0)).alias("mt_volume_60s"),
        pl.when(member).then(pl.col("notional").fill_null(0.0)).alias("mt_notional_60s"),
    )
    return _with(fills, {name: res.get_column(name).cast(pl.Float64).fill_null(np.nan).to_numpy() for name in FEATURES})


# ---- complete-set labels ---------------------------------------------------------------------------------


def _buy_up_down(fills: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    buy = fills["side"] == "BUY"
    return buy & (fills["outcome"] == "Up"), buy & (fills["outcome"] == "Down")


def complete_set_bucket(fills: pd.DataFrame, seconds: int = 10) -> pd.DataFrame:
    """The seed's complete-set label, as the seed computes it (and so with its leak): BUY fills of Up and
    Down are summed per market_slug and ``ts.floor(f"{seconds}s")`` bucket; every fill (any side) gets its
    bucket's ``up_shares`` and ``down_shares`` (0.0 if the bucket has none), ``complete_set_flag`` = 1.0 where
    both are > 0 else 0.0, and ``complete_set_shares`` = the smaller of the two. The bucket holds the fills
    after the current one too: a later fill can change an earlier fill's label."""
    up, down = _buy_up_down(fills)
    bucket = pd.to_datetime(fills["ts"], utc=True).dt.floor(f"{int(seconds)}s")
    keys = pd.MultiIndex.from_arrays([fills["market_slug"].to_numpy(), pd.DatetimeIndex(bucket)])
    size = fills["size"].to_numpy(dtype="float64")
    per_bucket = pd.DataFrame({"up": np.where(up, size, 0.0), "down": np.where(down, size, 0.0)}, index=keys)
    per_bucket = per_bucket[(up | down).to_numpy()].groupby(level=[0, 1]).sum()
    at = per_bucket.reindex(keys, fill_value=0.0)
    return _labels(fills, at["up"].to_numpy(), at["down"].to_numpy())


def complete_set_trailing(fills: pd.DataFrame, seconds: int = 10, latency_ns: int = 0) -> pd.DataFrame:
    """The strictly-before complete-set label: for each fill at ``t`` (``t' = t - latency``), over the earlier
    fills of the same market_slug with ``t' - seconds <= ts < t'`` (a fill at the same time is not earlier),
    ``up_shares`` = the sum of size of the BUY Up fills, ``down_shares`` of the BUY Down fills,
    ``complete_set_flag`` = 1.0 where both are > 0 else 0.0, ``complete_set_shares`` = the smaller."""
    t_eff = _ns(fills["ts"]) - int(latency_ns)
    ts_all = _ns(fills["ts"])
    up, down = (s.to_numpy() for s in _buy_up_down(fills))
    slug = fills["market_slug"].to_numpy()
    size = fills["size"].to_numpy(dtype="float64")
    width = int(seconds) * SECOND
    up_shares, down_shares = np.zeros(len(fills)), np.zeros(len(fills))
    for market in pd.unique(slug):
        here = np.flatnonzero(slug == market)
        for side, into in ((up, up_shares), (down, down_shares)):
            rows = np.flatnonzero((slug == market) & side)
            order = np.argsort(ts_all[rows], kind="stable")
            into[here] = _window_sums(ts_all[rows][order], size[rows][order], t_eff[here], width)
    return _labels(fills, up_shares, down_shares)


def _labels(fills: pd.DataFrame, up: np.ndarray, down: np.ndarray) -> pd.DataFrame:
    return _with(
        fills,
        {
            "up_shares": up,
            "down_shares": down,
            "complete_set_flag": ((up > 0) & (down > 0)).astype("float64"),
            "complete_set_shares": np.minimum(up, down),
        },
    )
