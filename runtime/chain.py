"""Option chains at run time: each row's contract read from the file, the chain's snapshot at each bar end, the
chain operators' slots, and one warning per day counting the quotes that gave no implied volatility.

The math is :mod:`fspec.options.chain` (numba, imported on first use: a run that reads no chain imports none
of it). Here: which rows (the session's, cut by the audit like any source's), the settlement instant of each
expiry, the underlying's price as-of each bar end for ``forward: carry``, and the reducers of each slot.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np

from fspec.errors import DataError
from fspec.manifest import ContractDef
from fspec.operators import REGISTRY
from fspec.operators.chain import QUOTES_KIND, ROWS_KIND
from fspec.runtime.sources import DataWarning, Frame, valid_rows

if TYPE_CHECKING:
    from fspec.options.flows import OptionTrades, QuoteRows
    from fspec.runtime.run import Engine

CONTRACT = "_contract"  # each row's contract number: its row of the source's contracts (Ticks.contracts)
RIGHTS = {"C": 1, "CALL": 1, "P": 0, "PUT": 0}
EPOCH = date(1970, 1, 1)


# ---- loading: the contract of each row --------------------------------------------------------------------


def contract_columns(frame: Frame, contract: ContractDef, shown: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each row's contract number (a row of the contracts) and the contracts: rows of (expiry as a day number,
    strike, 1.0 for a call or 0.0 for a put), sorted by expiry, strike, put before call."""
    from fspec.options.chain import NO_RIGHT, contract_numbers
    from fspec.runtime.sources import frame_column, numeric_values

    strike = numeric_values(frame, contract.strike, shown)
    expiry = _expiry_day_numbers(frame_column(frame, contract.expiry), contract.expiry, shown)
    codes, words = _right_codes(frame_column(frame, contract.right))
    is_call_of = np.array([RIGHTS.get((w or "").strip().upper(), NO_RIGHT) for w in words] + [NO_RIGHT], np.int8)
    number, table, bad_strike, bad_right = contract_numbers(expiry, strike, codes, is_call_of)
    if bad_strike >= 0:
        raise DataError(
            shown,
            f"strike column '{contract.strike}' holds {strike[bad_strike]!r} at row {bad_strike}: a strike is a "
            "positive number",
            "drop or fix the rows without a strike",
        )
    if bad_right >= 0:
        raise DataError(
            shown,
            f"right column '{contract.right}' holds {[*words, None][codes[bad_right]]!r} at row {bad_right}",
            "a right is 'C' or 'P' (or 'call' or 'put', any case)",
        )
    return {CONTRACT: number}, table


def _expiry_day_numbers(values: Any, column: str, shown: str) -> np.ndarray:
    """Days since 1970-01-01 (int32) of each row's expiry: a parquet date column's own numbers, read in place;
    any other kind by :func:`_expiry_days`."""
    import pyarrow as pa

    if isinstance(values, pa.ChunkedArray) and pa.types.is_date32(values.type) and values.null_count == 0:
        if not len(values):
            return np.zeros(0, dtype=np.int32)
        days = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
        return np.frombuffer(days.buffers()[1], dtype=np.int32, count=len(days), offset=days.offset * 4)
    return _expiry_days(values, column, shown).astype(np.int32)


def _right_codes(values: Any) -> tuple[np.ndarray, list[str | None]]:
    """Each row's right as a code into the distinct texts of the column (a file has two or four of them; a
    missing right is the code after the last text), without a text per row where the file is dictionary
    encoded."""
    import pyarrow as pa

    if not isinstance(values, pa.ChunkedArray):
        found, codes = np.unique(_pandas(values).astype(str).to_numpy(), return_inverse=True)
        return codes.reshape(-1).astype(np.int32), [str(w) for w in found]
    if not len(values):
        return np.zeros(0, dtype=np.int32), []
    encoded = values if pa.types.is_dictionary(values.type) else values.dictionary_encode()
    encoded = encoded.unify_dictionaries().combine_chunks() if encoded.num_chunks != 1 else encoded.chunk(0)
    words = [None if w is None else str(w) for w in encoded.dictionary.to_pylist()]
    # The indices (a category's may be int8) as int32 codes by numpy, a missing right the code after the last
    # text: Arrow's cast and fill_null would import pyarrow.compute (40 ms) in a run that needs none of it.
    indices = encoded.indices
    dtype = np.dtype(indices.type.to_pandas_dtype())
    raw = np.frombuffer(indices.buffers()[1], dtype=dtype, count=len(indices), offset=indices.offset * dtype.itemsize)
    codes = raw.astype(np.int32)
    if encoded.null_count:
        codes[~valid_rows(indices)] = len(words)
    return codes, words


def _pandas(values: Any) -> Any:
    return values.to_pandas() if hasattr(values, "to_pandas") else values


def _expiry_days(values: Any, column: str, shown: str) -> np.ndarray:
    """Days since 1970-01-01 of a date, a timestamp (its own date, in its zone if it has one), a 'YYYY-MM-DD'
    text or a YYYYMMDD number."""
    import pyarrow as pa

    if isinstance(values, pa.ChunkedArray) and pa.types.is_date32(values.type) and values.null_count == 0:
        return values.cast(pa.int32()).to_numpy().astype(np.float64)  # days since 1970-01-01, without pandas
    import pandas as pd

    series = _pandas(values)
    try:
        if pd.api.types.is_integer_dtype(series) or pd.api.types.is_float_dtype(series):
            parsed = pd.to_datetime(series.astype("Int64").astype(str), format="%Y%m%d")
        elif isinstance(series.dtype, pd.DatetimeTZDtype):
            parsed = series.dt.tz_localize(None).dt.normalize()
        else:
            parsed = pd.to_datetime(series.astype(str) if series.dtype == object else series, format="mixed")
    except (ValueError, TypeError) as exc:
        raise DataError(
            shown,
            f"expiry column '{column}' is not dates: {exc}",
            "give expiries as dates, 'YYYY-MM-DD' texts or YYYYMMDD numbers",
        ) from None
    if parsed.isna().any():
        row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise DataError(shown, f"expiry column '{column}' has no date at row {row}", "drop or fix the row")
    return (parsed.dt.normalize().to_numpy(dtype="datetime64[D]").astype(np.int64)).astype(np.float64)


# ---- the chain's slots of one session ------------------------------------------------------------------------


def settlement_ns(day_number: float, contract: ContractDef, zone: str) -> int:
    """The UTC instant (ns) at which an expiry of that day settles: its settlement time, as a wall clock time on
    that local date in ``zone`` (so a daylight saving change keeps it at 16:00 local)."""
    wall = datetime.combine(EPOCH + timedelta(days=int(day_number)), time(0)) + timedelta(seconds=contract.settlement)
    return round(wall.replace(tzinfo=ZoneInfo(zone)).timestamp()) * 1_000_000_000


def _writable(a: np.ndarray, dtype: Any) -> np.ndarray:
    """One array type for the numba kernels whatever the data's origin (a read-only Arrow view is copied)."""
    return np.require(a, dtype=dtype, requirements=["C", "W"])


MEMO_SIZE = 64  # entries of one day: contract numbers, columns, snapshots of its grids, for every chain


def _memo(engine: Engine, key: tuple[Any, ...], make: Any) -> Any:
    """``make()`` once per key. Keys are ``(what, source, instrument, day, rows, cut, ...)``; the entries of
    another day or audit cut are dropped when one is made, so the memo holds one day's chain arrays at most."""
    memo = engine._chain_memo
    if key not in memo:
        for old in [k for k in memo if (k[3], k[5]) != (key[3], key[5])]:
            del memo[old]
        if len(memo) >= MEMO_SIZE:
            memo.pop(next(iter(memo)))
        memo[key] = make()
    return memo[key]


def _readonly(a: np.ndarray, dtype: Any) -> np.ndarray:
    """A read-only contiguous view (a copy only for another dtype or layout): one array type for the kernels
    whatever the column's origin (a read-only Arrow view, a computed column), without copying the file's."""
    view = np.ascontiguousarray(a, dtype=dtype).view()
    view.flags.writeable = False
    return view


def _column(engine: Engine, source: str, instrument: str, day: str, ticks: Any, name: str, dtype: Any) -> np.ndarray:
    """A chain column (or ``ts``) as the numba kernels take it: read-only (:func:`_readonly`)."""
    values = ticks.ts if name == "ts" else ticks.columns[name]
    key = ("column", source, instrument, day, len(ticks), engine.cut, name)
    return _memo(engine, key, lambda: _readonly(values, dtype))


def _quote_ids(engine: Engine, source: str, instrument: str, day: str, ticks: Any) -> tuple[np.ndarray, np.ndarray]:
    """Each row's contract number and the contracts (:func:`contract_columns`) of a chain's rows of the day, as
    cut by the audit: the contracts of those rows alone, renumbered (a session of a file of many days, or the
    rows before the audit's cut, may lack some of the file's)."""
    return _memo(
        engine,
        ("ids", source, instrument, day, len(ticks), engine.cut),
        lambda: own_contracts(ticks.columns[CONTRACT], ticks.contracts),
    )


def own_contracts(number: np.ndarray, contracts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(number, contracts)`` with the contracts no row has dropped and the rows renumbered in the same order."""
    present = np.bincount(number, minlength=len(contracts)) > 0
    if present.all():
        return number, contracts
    rank = (np.cumsum(present) - 1).astype(np.int64)
    return rank[number], contracts[present]


def chain_slots(
    engine: Engine, source: str, instrument: str, day: str, bar_ends: np.ndarray, interval: int
) -> np.ndarray:
    """The (slots, bars) values of a chain source's operators for one instrument's session."""
    chain = engine.manifest.chains[source]
    out = np.full((len(chain.ops), len(bar_ends)), np.nan)
    if day not in engine.instrument_dates(instrument):
        engine._note_absent(instrument, day)  # no data at all that day: unknown, not an empty chain
        return out
    ticks = engine.ticks(source, instrument, day)
    if engine._source_lacks(source, instrument, day):
        engine._note_absent(instrument, day, source)
        return out
    spec = engine.project.source_of(instrument, source)
    contract = spec.contract
    assert contract is not None
    warn = (source, instrument, day) not in engine._chain_warned
    engine._chain_warned.add((source, instrument, day))
    ends = _writable(bar_ends, np.int64)
    if contract.quotes is not None:
        return _trade_slots(engine, chain.ops, source, instrument, day, ticks, ends, out, warn)
    if not len(ticks):
        if warn:
            _warn(f"option chain '{source}' of {instrument} has no quotes in the session of {day}: its columns are NaN")
        return out
    kinds = [REGISTRY[op].params[0].kind for op, _ in chain.ops]
    for s, (op, consts) in enumerate(chain.ops):
        if kinds[s] == ROWS_KIND:
            code = REGISTRY[op].numpy
            assert code is not None
            out[s] = code(quote_rows(engine, source, instrument, day, ticks, ends), consts)
    snapshot_ops = [(s, op, consts) for s, (op, consts) in enumerate(chain.ops) if kinds[s] == QUOTES_KIND]
    if not snapshot_ops:
        return out
    snap = _snapshot(
        engine, source, instrument, day, ticks, contract, ends, {c["min_minutes"] for _, _, c in snapshot_ops}
    )
    iv, delta = np.ascontiguousarray(snap.iv.T), np.ascontiguousarray(snap.delta.T)  # one bar end per row
    without: dict[str, int] = {}
    for s, op, consts in snapshot_ops:
        code = REGISTRY[op].numpy
        assert code is not None
        chosen = snap.chosen_expiry(ends, consts["min_minutes"])
        for b in np.flatnonzero(chosen >= 0):
            e = chosen[b]
            lo, hi = snap.expiry_start[e], snap.expiry_start[e + 1]
            out[s, b] = code(
                snap.strike[lo:hi], snap.is_call[lo:hi], iv[b, lo:hi], delta[b, lo:hi], snap.forward[e, b], consts
            )
        missing = int((chosen < 0).sum())
        if missing:
            without[f"nearest(min_minutes={consts['min_minutes']:g})"] = missing
    if warn:
        _warn_statuses(source, instrument, day, interval, snap, without)
    return out


def _snapshot(
    engine: Engine,
    source: str,
    instrument: str,
    day: str,
    ticks: Any,
    contract: ContractDef,
    ends: np.ndarray,
    rules: set[float],
) -> Any:
    """The chain's snapshot at each bar end, volatilities computed for the expiries ``rules`` pick: made once per
    day, grid and rules (the chain's operators and the straddles of its trades share it)."""
    key = ("snapshot", source, instrument, day, len(ticks), engine.cut, len(ends), int(ends[-1]), tuple(sorted(rules)))

    def make() -> Any:
        from fspec.options.chain import snapshot

        underlying = None
        if contract.forward == "carry":
            assert contract.underlying_source is not None and contract.underlying_column is not None
            under = engine.ticks(contract.underlying_source, instrument, day)
            underlying = price_before(under.ts, under.columns[contract.underlying_column], ends)
        zone = contract.timezone or engine.session.timezone
        ids = _quote_ids(engine, source, instrument, day, ticks)
        settle = {float(d): settlement_ns(float(d), contract, zone) for d in np.unique(ids[1][:, 0])}
        return snapshot(
            _column(engine, source, instrument, day, ticks, "ts", np.int64),
            None,
            None,
            None,
            _column(engine, source, instrument, day, ticks, "bid", np.float64),
            _column(engine, source, instrument, day, ticks, "ask", np.float64),
            ends,
            settle,
            contract.rate,
            contract.dividend_yield,
            underlying,
            tuple(sorted(rules)),
            ids,
        )

    return _memo(engine, key, make)


def _bars_of(ts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The bar of each row (the first bar end after it), -1 after the last bar end (the session's rows, which
    are in time order)."""
    from fspec.options.flows import bar_of

    return bar_of(ts, ends)


def quote_rows(engine: Engine, source: str, instrument: str, day: str, ticks: Any, ends: np.ndarray) -> QuoteRows:
    """A chain's quote rows of the session, for the operators over its rows (option_ofi)."""
    from fspec.options.flows import QuoteRows

    contract, table = _quote_ids(engine, source, instrument, day, ticks)
    return QuoteRows(
        ends,
        _column(engine, source, instrument, day, ticks, "ts", np.int64),
        contract,
        _column(engine, source, instrument, day, ticks, "bid_size", np.float64),
        _column(engine, source, instrument, day, ticks, "ask_size", np.float64),
        len(table),
    )


def _trade_slots(
    engine: Engine,
    ops: tuple[tuple[str, dict[str, float]], ...],
    source: str,
    instrument: str,
    day: str,
    trades: Any,
    ends: np.ndarray,
    out: np.ndarray,
    warn: bool,
) -> np.ndarray:
    """The slots of a chain of trades: its trades signed and valued by its quotes' chain (fspec.options.flows)."""
    quotes_source = engine.project.source_of(instrument, source).contract.quotes
    quotes = engine.ticks(quotes_source, instrument, day)
    if engine._source_lacks(quotes_source, instrument, day):
        engine._note_absent(instrument, day, quotes_source)
        return out
    terms = engine.project.source_of(instrument, quotes_source).contract
    assert terms is not None
    if not len(quotes):  # trades only: none can be signed or valued, and no bar's flow is known (not 0)
        if warn:
            _warn(
                f"option trades '{source}' of {instrument} on {day}: their chain '{quotes_source}' has no quote in "
                f"the session, so none of the {len(trades):,} trades can be signed or valued: their columns are NaN "
                "that day"
            )
        return out
    view = option_trades(engine, source, quotes_source, instrument, day, trades, quotes, terms, ends)
    for s, (op, consts) in enumerate(ops):
        code = REGISTRY[op].numpy
        assert code is not None
        out[s] = code(view, consts)
    if warn:
        _warn_trades(source, instrument, day, view)
    return out


def option_trades(
    engine: Engine,
    source: str,
    quotes_source: str,
    instrument: str,
    day: str,
    trades: Any,
    quotes: Any,
    terms: ContractDef,
    ends: np.ndarray,
) -> OptionTrades:
    """Each trade of the session with its bar, sign and greeks from the quotes strictly before it: all but the
    bars are the same on every grid, found once a day."""
    key = ("trades", source, instrument, day, len(trades), engine.cut, len(quotes))
    base = _memo(engine, key, lambda: _valued_trades(engine, quotes_source, instrument, day, trades, quotes, terms))

    def straddle(min_minutes: float) -> tuple[np.ndarray, np.ndarray]:
        return _straddles(engine, quotes_source, instrument, day, quotes, terms, ends, min_minutes)

    return replace(base, n_bars=len(ends), bar=_bars_of(_writable(trades.ts, np.int64), ends), straddle=straddle)


def _valued_trades(
    engine: Engine, quotes_source: str, instrument: str, day: str, trades: Any, quotes: Any, terms: ContractDef
) -> OptionTrades:
    """The trades' quotes, signs and greeks (:func:`option_trades`), without bars."""
    from fspec.options.black76 import greeks, implied_volatility_quotes
    from fspec.options.chain import NS, SECONDS_PER_YEAR
    from fspec.options.flows import OptionTrades, lee_ready, prevailing

    n_t = len(trades)
    q_contract, quoted = _quote_ids(engine, quotes_source, instrument, day, quotes)
    t_contract, table = _trade_contracts(quoted, *own_contracts(trades.columns[CONTRACT], trades.contracts))
    days = np.unique(table[:, 0])
    expiry_of = np.searchsorted(days, table[:, 0]).astype(np.int64)
    zone = terms.timezone or engine.session.timezone
    settle = np.array([settlement_ns(float(d), terms, zone) for d in days], dtype=np.int64)
    # the strikes of each expiry with both a put and a call: a put row followed by the call row (contract order)
    q = quoted  # sorted by (expiry, strike, put before call); the contracts only traded come after it
    put_rows = np.flatnonzero((q[:-1, 2] == 0) & (q[1:, 2] == 1) & (q[:-1, 1] == q[1:, 1]) & (q[:-1, 0] == q[1:, 0]))
    pair_start = np.searchsorted(expiry_of[put_rows], np.arange(len(days) + 1)).astype(np.int64)
    t_ts = _writable(trades.ts, np.int64)
    t_settle = settle[expiry_of[t_contract]] if n_t else np.zeros(0, dtype=np.int64)
    T = (t_settle - t_ts) / NS / SECONDS_PER_YEAR
    df = np.exp(-terms.rate * T)
    bid, ask, forward = np.full(n_t, np.nan), np.full(n_t, np.nan), np.full(n_t, np.nan)
    q_ts, q_bid, q_ask = (
        _column(engine, quotes_source, instrument, day, quotes, name, dtype)
        for name, dtype in (("ts", np.int64), ("bid", np.float64), ("ask", np.float64))
    )
    prevailing(
        q_ts, q_contract, q_bid, q_ask, t_ts, t_contract, len(table), expiry_of, pair_start, put_rows.astype(np.int64),
        (put_rows + 1).astype(np.int64), np.ascontiguousarray(table[put_rows, 1]), np.ascontiguousarray(df),
        terms.forward == "parity", bid, ask, forward,
    )  # fmt: skip
    if terms.forward == "carry":
        assert terms.underlying_source is not None and terms.underlying_column is not None
        under = engine.ticks(terms.underlying_source, instrument, day)
        forward = price_before(under.ts, under.columns[terms.underlying_column], t_ts) * np.exp(
            (terms.rate - terms.dividend_yield) * T
        )
    forward = np.where(T > 0, forward, np.nan)
    K, call = table[t_contract, 1], table[t_contract, 2] != 0
    iv, status = implied_volatility_quotes(bid, ask, forward, K, T, call, df)
    delta, gamma, vega = greeks(forward, K, T, iv, call, df)
    price = _writable(trades.columns["price"], np.float64)
    return OptionTrades(
        0, np.zeros(0, dtype=np.int64), price, _writable(trades.columns["size"], np.float64), t_settle, bid, ask,
        lee_ready(price, bid, ask), status, delta, gamma, vega, terms.multiplier, _no_straddle,
    )  # fmt: skip


def _no_straddle(min_minutes: float) -> tuple[np.ndarray, np.ndarray]:
    raise AssertionError("the straddles belong to a grid: option_trades gives them")


def _trade_contracts(quoted: np.ndarray, number: np.ndarray, traded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each trade's contract number in the quotes' contract table (``number``: the trade's row of ``traded``, the
    trades' own contracts, sorted), and that table with the contracts that trade without a quote appended in
    their order (their quotes are none: NaN)."""
    if not len(number):
        return np.zeros(0, dtype=np.int64), quoted
    known = {tuple(row): i for i, row in enumerate(quoted.tolist())}
    extra: list[list[float]] = []
    ids = np.empty(len(traded), dtype=np.int64)
    for j, row in enumerate(traded.tolist()):
        i = known.get(tuple(row))
        if i is None:
            i = len(quoted) + len(extra)
            extra.append(row)
        ids[j] = i
    table = np.vstack([quoted, np.array(extra)]) if extra else quoted
    return ids[number], table


def _straddles(
    engine: Engine,
    quotes_source: str,
    instrument: str,
    day: str,
    quotes: Any,
    terms: ContractDef,
    ends: np.ndarray,
    min_minutes: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The settlement instant of the expiry ``nearest(min_minutes)`` picks at each bar end (-1: none) and its ATM
    straddle in the snapshot at that bar end."""
    from fspec.options.flows import atm_straddle

    chosen_at = np.full(len(ends), -1, dtype=np.int64)
    value = np.full(len(ends), np.nan)
    if not len(quotes):
        return chosen_at, value
    snap = _snapshot(engine, quotes_source, instrument, day, quotes, terms, ends, {min_minutes})
    chosen = snap.chosen_expiry(ends, min_minutes)
    for b in np.flatnonzero(chosen >= 0):
        e = chosen[b]
        lo, hi = snap.expiry_start[e], snap.expiry_start[e + 1]
        chosen_at[b] = snap.settle_ns[e]
        value[b] = atm_straddle(
            snap.strike[lo:hi], snap.is_call[lo:hi], np.ascontiguousarray(snap.bid[lo:hi, b]),
            np.ascontiguousarray(snap.ask[lo:hi, b]), float(snap.forward[e, b]),
        )  # fmt: skip
    return chosen_at, value


def price_before(ts: np.ndarray, values: np.ndarray, bar_ends: np.ndarray) -> np.ndarray:
    """The last finite value strictly before each bar end (NaN: none yet)."""
    good = np.isfinite(values)
    ts, values = ts[good], values[good]
    idx = np.searchsorted(ts, bar_ends, side="left") - 1
    return np.where(idx >= 0, values[np.maximum(idx, 0)] if len(values) else np.nan, np.nan)


def _warn(text: str) -> None:
    warnings.warn(text, DataWarning, stacklevel=3)


def _warn_trades(source: str, instrument: str, day: str, view: OptionTrades) -> None:
    """One line for the day: the trades left unsigned for want of a two-sided quote before them, and the signed
    trades whose quote gives no volatility (no greeks), by status."""
    from fspec.options.black76 import BAD_INPUT, OK, STATUS_NAMES

    counted = view.bar >= 0
    two_sided = counted & (view.bid > 0) & (view.ask > 0) & (view.bid <= view.ask)  # NaN compares False
    parts = []
    unsigned = int((counted & ~two_sided).sum())
    if unsigned:
        before = int((counted & np.isnan(view.bid) & np.isnan(view.ask)).sum())
        parts.append(
            f"{unsigned:,} of {int(counted.sum()):,} trades have no two-sided quote before them ({before:,} no quote "
            "at all) and are unsigned"
        )
    bad = two_sided & (view.status != OK)
    if bad.any():
        counts = np.bincount(view.status[bad].astype(np.int64), minlength=len(STATUS_NAMES))
        named = {**STATUS_NAMES, BAD_INPUT: "without a forward or past their expiry"}
        shown = ", ".join(f"{counts[k]:,} {named[k]}" for k in sorted(named) if k != OK and counts[k])
        parts.append(f"{int(bad.sum()):,} have no implied volatility ({shown}) and add to no greek flow")
    if parts:
        _warn(f"option trades '{source}' of {instrument} on {day}: " + "; ".join(parts))


def _warn_statuses(source: str, instrument: str, day: str, interval: int, snap: Any, without: dict[str, int]) -> None:
    """One line for the day: the snapshot entries (contract, bar end) of the expiries the operators read with a
    quote but no volatility, by status, and the bar ends at which an expiry rule found no expiry."""
    from fspec.options.black76 import BAD_INPUT, OK, STATUS_NAMES

    quoted = snap.quoted & snap.read
    status = snap.status[quoted]
    bad = status != OK
    parts = []
    if bad.any():
        counts = np.bincount(status[bad].astype(np.int64), minlength=len(STATUS_NAMES))
        named = {**STATUS_NAMES, BAD_INPUT: "without a forward or past their expiry"}
        shown = ", ".join(f"{counts[k]:,} {named[k]}" for k in sorted(named) if k != OK and counts[k])
        parts.append(
            f"{int(bad.sum()):,} of the {int(quoted.sum()):,} contract quotes its operators read at the {interval}s "
            f"bar ends have no implied volatility ({shown}) and are no points of the smile"
        )
    for rule, count in without.items():
        ends = "1 bar end has" if count == 1 else f"{count:,} bar ends have"
        parts.append(f"{ends} no expiry for {rule}, where it is NaN")
    if parts:
        _warn(f"option chain '{source}' of {instrument} on {day}: " + "; ".join(parts))


def warm_chain() -> None:
    """Compile (or load from numba's cache) the chain kernels on a two-contract chain, typed as a run types
    them, so that ``fspec run`` after ``fspec compile`` compiles nothing."""
    from fspec.options.chain import atm_iv, contract_numbers, iv_at_delta, snapshot

    ts = np.array([0, 1], dtype=np.int64)
    one = np.array([0.0, 0.0])
    # as contract_columns numbers a file's rows
    number, table, _, _ = contract_numbers(
        np.zeros(2, dtype=np.int32), np.array([100.0, 100.0]), np.array([0, 1], dtype=np.int32), np.array([0, 1])
    )
    ids = own_contracts(number, table)
    # the file's columns as _column gives them: read-only
    ro = {
        n: _readonly(a, a.dtype) for n, a in (("ts", ts), ("bid", np.array([1.0, 1.0])), ("ask", np.array([1.1, 1.1])))
    }
    snap = snapshot(
        ro["ts"], None, None, None, ro["bid"], ro["ask"], np.array([2, 3], dtype=np.int64), {0.0: 10**15}, 0.01, 0.0,
        None, (30.0,), ids,
    )  # fmt: skip
    iv, delta = np.ascontiguousarray(snap.iv.T), np.ascontiguousarray(snap.delta.T)
    atm_iv(snap.strike[0:2], snap.is_call[0:2], iv[0, 0:2], float(snap.forward[0, 0]))
    iv_at_delta(snap.strike[0:2], snap.is_call[0:2], iv[0, 0:2], delta[0, 0:2], float(snap.forward[0, 0]), 0.25)
    price_before(ts, one, ts)
    _warm_flows(ts, snap)


def _warm_flows(ts: np.ndarray, snap: Any) -> None:
    """The flow kernels (fspec.options.flows) and the greeks, typed as option_trades and quote_rows call them."""
    from fspec.options.black76 import greeks
    from fspec.options.flows import (
        atm_straddle,
        bar_of,
        bar_sum,
        bar_wmean,
        book_ofi,
        lee_ready,
        prevailing,
        spread_pct,
    )

    contract, two = np.array([0, 1], dtype=np.int64), np.array([1.0, 1.1])
    bid, ask, forward = np.full(2, np.nan), np.full(2, np.nan), np.full(2, np.nan)
    ro_ts, ro_two = _readonly(ts, np.int64), _readonly(two, np.float64)  # the quotes' columns, as _column gives them
    prevailing(
        ro_ts, contract, ro_two, ro_two, ts, contract, 2, np.zeros(2, dtype=np.int64), np.array([0, 1], dtype=np.int64),
        contract[:1], contract[1:], np.array([100.0]), np.ones(2), True, bid, ask, forward,
    )  # fmt: skip
    bar_of(ts, ts)  # the trades' bars
    book_ofi(ro_ts, ts, contract, ro_two, ro_two, 2)
    greeks(two, two, two, two, np.array([False, True]), two)
    sign = lee_ready(two, two, two)
    bar_sum(contract, sign * two, 2)
    bar_wmean(contract, spread_pct(two, two), two, 2)
    atm_straddle(snap.strike[0:2], snap.is_call[0:2], np.ascontiguousarray(snap.bid[0:2, 0]), two, 100.0)
