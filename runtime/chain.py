"""Option chains at run time: each row's contract read from the file, the chain's snapshot at each bar end, the
chain operators' slots, and one warning per day counting the quotes that gave no implied volatility.

The math is :mod:`fspec.options.chain` (numba, imported on first use: a run that reads no chain imports none
of it). Here: which rows (the session's, cut by the audit like any source's), the settlement instant of each
expiry, the underlying's price as-of each bar end for ``forward: carry``, and the reducers of each slot.
"""

from __future__ import annotations

import warnings
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np

from fspec.errors import DataError
from fspec.manifest import ContractDef
from fspec.operators import REGISTRY
from fspec.runtime.sources import CONTRACT_CALL, DataWarning, Frame

if TYPE_CHECKING:
    from fspec.runtime.run import Engine

EXPIRY, STRIKE = "_expiry", "_strike"  # each row's expiry (days since 1970-01-01) and strike
RIGHTS = {"C": 1.0, "CALL": 1.0, "P": 0.0, "PUT": 0.0}
EPOCH = date(1970, 1, 1)


# ---- loading: the contract of each row --------------------------------------------------------------------


def contract_columns(frame: Frame, contract: ContractDef, shown: str) -> dict[str, np.ndarray]:
    """Each row's expiry (a day number), strike and right (1 for a call, 0 for a put) as float64 columns."""
    from fspec.runtime.sources import _column, _numeric

    strike = _numeric(frame, contract.strike, shown)
    bad = ~(strike > 0)
    if bad.any():
        raise DataError(
            shown,
            f"strike column '{contract.strike}' holds {strike[bad][0]!r} at row {int(np.flatnonzero(bad)[0])}: a "
            "strike is a positive number",
            "drop or fix the rows without a strike",
        )
    return {
        EXPIRY: _expiry_days(_column(frame, contract.expiry), contract.expiry, shown),
        STRIKE: strike,
        CONTRACT_CALL: _rights(_column(frame, contract.right), contract.right, shown),
    }


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


def _rights(values: Any, column: str, shown: str) -> np.ndarray:
    """1.0 for a call, 0.0 for a put, from each distinct text once (a file has two or four of them)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values, pa.ChunkedArray):
        encoded = pc.dictionary_encode(values).combine_chunks() if not pa.types.is_dictionary(values.type) else None
        encoded = encoded if encoded is not None else values.combine_chunks()
        words = [None if w is None else str(w) for w in encoded.dictionary.to_pylist()]
        codes = encoded.indices.to_numpy(zero_copy_only=False)
        if encoded.null_count:
            codes = np.where(encoded.is_null().to_numpy(zero_copy_only=False), len(words), codes)
    else:
        found, codes = np.unique(_pandas(values).astype(str).to_numpy(), return_inverse=True)
        words = [str(w) for w in found]
    known = np.array([RIGHTS.get((w or "").strip().upper(), np.nan) for w in words] + [np.nan])
    mapped = known[codes]
    bad = np.isnan(mapped)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            shown,
            f"right column '{column}' holds {[*words, None][codes[row]]!r} at row {row}",
            "a right is 'C' or 'P' (or 'call' or 'put', any case)",
        )
    return mapped


# ---- the chain's slots of one session ------------------------------------------------------------------------


def settlement_ns(day_number: float, contract: ContractDef, zone: str) -> int:
    """The UTC instant (ns) at which an expiry of that day settles: its settlement time, as a wall clock time on
    that local date in ``zone`` (so a daylight saving change keeps it at 16:00 local)."""
    wall = datetime.combine(EPOCH + timedelta(days=int(day_number)), time(0)) + timedelta(seconds=contract.settlement)
    return round(wall.replace(tzinfo=ZoneInfo(zone)).timestamp()) * 1_000_000_000


def _writable(a: np.ndarray, dtype: Any) -> np.ndarray:
    """One array type for the numba kernels whatever the data's origin (a read-only Arrow view is copied)."""
    return np.require(a, dtype=dtype, requirements=["C", "W"])


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
    if not len(ticks):
        if warn:
            _warn(f"option chain '{source}' of {instrument} has no quotes in the session of {day}: its columns are NaN")
        return out
    underlying = None
    if contract.forward == "carry":
        assert contract.underlying_source is not None and contract.underlying_column is not None
        under = engine.ticks(contract.underlying_source, instrument, day)
        underlying = price_before(under.ts, under.columns[contract.underlying_column], ends)
    from fspec.options.chain import snapshot

    zone = contract.timezone or engine.session.timezone
    days = np.unique(ticks.columns[EXPIRY])
    settle = {float(d): settlement_ns(float(d), contract, zone) for d in days}
    snap = snapshot(
        _writable(ticks.ts, np.int64),
        _writable(ticks.columns[EXPIRY], np.float64),
        _writable(ticks.columns[STRIKE], np.float64),
        _writable(ticks.columns[CONTRACT_CALL], np.float64),
        _writable(ticks.columns["bid"], np.float64),
        _writable(ticks.columns["ask"], np.float64),
        ends,
        settle,
        contract.rate,
        contract.dividend_yield,
        underlying,
        tuple(sorted({consts["min_minutes"] for _, consts in chain.ops})),
    )
    iv, delta = np.ascontiguousarray(snap.iv.T), np.ascontiguousarray(snap.delta.T)  # one bar end per row
    without: dict[str, int] = {}
    for s, (op, consts) in enumerate(chain.ops):
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


def price_before(ts: np.ndarray, values: np.ndarray, bar_ends: np.ndarray) -> np.ndarray:
    """The last finite value strictly before each bar end (NaN: none yet)."""
    good = np.isfinite(values)
    ts, values = ts[good], values[good]
    idx = np.searchsorted(ts, bar_ends, side="left") - 1
    return np.where(idx >= 0, values[np.maximum(idx, 0)] if len(values) else np.nan, np.nan)


def _warn(text: str) -> None:
    warnings.warn(text, DataWarning, stacklevel=3)


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
    from fspec.options.chain import atm_iv, iv_at_delta, snapshot

    ts = np.array([0, 1], dtype=np.int64)
    one = np.array([0.0, 0.0])
    snap = snapshot(
        ts, one, np.array([100.0, 100.0]), np.array([0.0, 1.0]), np.array([1.0, 1.0]), np.array([1.1, 1.1]),
        np.array([2, 3], dtype=np.int64), {0.0: 10**15}, 0.01, 0.0, None, (30.0,),
    )  # fmt: skip
    iv, delta = np.ascontiguousarray(snap.iv.T), np.ascontiguousarray(snap.delta.T)
    atm_iv(snap.strike[0:2], snap.is_call[0:2], iv[0, 0:2], float(snap.forward[0, 0]))
    iv_at_delta(snap.strike[0:2], snap.is_call[0:2], iv[0, 0:2], delta[0, 0:2], float(snap.forward[0, 0]), 0.25)
    price_before(ts, one, ts)
