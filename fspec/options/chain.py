"""An option chain's snapshot at each bar end, and the reducers over it (docs/options.md, "Chains").

The chain's rows are quotes of many contracts (expiry, strike, right) in time order. At each bar end ``t`` the
snapshot holds, per contract, its last quote strictly before ``t`` (a quote at ``t`` or later never reaches
that bar), then per expiry:

- the time to expiry ``T = (settlement - t) / (365 · 86,400 s)`` (ACT/365 in seconds) and ``df = e^{-rT}``;
- the forward ``F``: from put-call parity on the snapshot's mids (``forward.forward_one_expiry``: the strike
  where the call and put mids are closest, as Cboe does), or ``S·e^{(r - q)T}`` from the underlying's price;
- every contract's implied volatility of its mid with a status (``black76``), and its forward delta
  ``Φ(d1)`` for a call, ``-Φ(-d1)`` for a put (undiscounted, so that a call's and a put's deltas add to 1 in
  absolute value whatever the rate).

The reducers read one expiry's contracts at one bar end. ``atm_iv``'s smile is the out-of-the-money side:
the put at a strike below ``F``, the call at a strike at or above it (the in-the-money option's mid carries its
intrinsic value and a wider spread, as in the Cboe VIX method); a strike whose OTM option has no volatility
has no point. ``iv_at_delta`` reads the calls (or the puts) in strike order. Interpolation is linear in
implied *variance* (``σ²``): in log strike for ``atm_iv``, in delta for ``iv_at_delta``. Nothing is
extrapolated: a value outside the points is NaN.

Numba kernels, compiled on first use (``cache=True``), like the rest of :mod:`fspec.options`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fspec.jit import njit
from fspec.options.black76 import BAD_INPUT, NO_QUOTE, implied_volatility_quotes
from fspec.options.forward import _mid, forward_one_expiry
from fspec.options.normal import norm_cdf

_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}

SECONDS_PER_YEAR = 365 * 86_400  # ACT/365 in seconds
UNREAD = -1  # the status of a contract whose expiry no operator reads at that bar end: not computed
NS = 1_000_000_000


def contract_ids(expiry: np.ndarray, strike: np.ndarray, is_call: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's contract number, the contracts sorted by (expiry, strike, put before call), and the contracts
    as rows of (expiry, strike, is_call), from row arrays of day numbers, strikes (positive, as a chain source's
    loading checks them) and call flags: :func:`contract_numbers` with the flags as the rights' codes."""
    calls = (np.asarray(is_call) != 0).astype(np.int32)  # (NaN is not 0: a call, as before)
    number, table, bad_strike, _ = contract_numbers(np.asarray(expiry).astype(np.int32), strike, calls, CALL_FLAGS)
    if bad_strike >= 0:
        raise ValueError(f"strike {strike[bad_strike]!r} at row {bad_strike} is not a positive number")
    return number, table


MANY = 1 << 16  # distinct contracts past which sorting all the rows is as cheap as hashing each


@njit(**_JIT)
def _renumber(codes: np.ndarray, rank: np.ndarray) -> None:
    for i in range(codes.shape[0]):
        codes[i] = rank[codes[i]]


@njit(**_JIT)
def _mix(e: np.uint64, k: np.uint64, c: np.uint64) -> np.uint64:
    """A 64-bit hash of a contract's key whose top bits are well mixed (Fibonacci hashing of a combination)."""
    x = e * np.uint64(0x9E3779B97F4A7C15)
    x ^= (k + np.uint64(0x632BE59BD9B4E019)) * np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(29)
    x ^= c
    return x * np.uint64(0x94D049BB133111EB)


NO_RIGHT = -1  # of ``contract_numbers``'s ``is_call_of``: a right that is neither a call nor a put
CALL_FLAGS = np.array([0, 1], dtype=np.int8)  # ``is_call_of`` of rights coded as call flags (0 put, 1 call)


def contract_numbers(
    expiry: np.ndarray, strike: np.ndarray, right: np.ndarray, is_call_of: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Each row's contract number and the contracts, as :func:`contract_ids` gives them, from a file's columns as
    they are read: ``expiry`` the day numbers (int32, a parquet date's own storage), ``strike`` the strikes,
    ``right`` each row's code of its right text and ``is_call_of`` that code's 1 (call), 0 (put) or ``NO_RIGHT``.
    One hashed pass over the rows, without a float column per key (three columns of 8 bytes a row, each written
    and read again, were most of reading a large chain's contracts). Also the first row whose strike is not a
    positive finite number, and the first whose right is ``NO_RIGHT`` (-1: none), which the caller reports:
    the numbers are then meaningless."""
    e = _readonly_as(expiry, np.int32)
    k = _readonly_as(strike, np.float64)
    r = _readonly_as(right, np.int32)
    calls = np.ascontiguousarray(is_call_of, dtype=np.int8)
    first, number, bad_strike, bad_right = _hash_rows(e, k, k.view(np.uint64), r, calls, MANY)
    if first.shape[0] <= MANY and (bad_strike >= 0 or bad_right >= 0):
        return number, np.zeros((0, 3)), bad_strike, bad_right
    if first.shape[0] > MANY:  # (the pass stopped early: all the rows are checked here)
        bad = np.flatnonzero(~((k > 0.0) & (k < np.inf)))
        flags = calls[r]
        wrong = np.flatnonzero(flags == NO_RIGHT)
        if len(bad) or len(wrong):
            return number, np.zeros((0, 3)), int(bad[0]) if len(bad) else -1, int(wrong[0]) if len(wrong) else -1
        keys = np.column_stack([e.astype(np.float64), k, (flags == 1).astype(np.float64)])
        found, inverse = np.unique(keys, axis=0, return_inverse=True)
        return inverse.reshape(-1).astype(np.int64), found, -1, -1
    table = np.column_stack([e[first].astype(np.float64), k[first], (calls[r[first]] == 1).astype(np.float64)])
    order = np.lexsort((table[:, 2], table[:, 1], table[:, 0]))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    _renumber(number, rank)
    return number, table[order], -1, -1


def _readonly_as(a: np.ndarray, dtype: type) -> np.ndarray:
    """A read-only contiguous view of ``dtype`` (copied only from another dtype): one type for the kernels."""
    view = np.ascontiguousarray(a, dtype=dtype).view()
    view.flags.writeable = False
    return view


@njit(**_JIT)
def _hash_rows(
    expiry: np.ndarray, strike: np.ndarray, k_bits: np.ndarray, right: np.ndarray, is_call_of: np.ndarray, limit: int
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Each row's number in the order its contract was first seen, and the first row of each contract: one pass
    with an open-addressing table on (expiry day, strike bits ``k_bits``, right's call flag), grown at a quarter
    full, read straight from the file's columns, checking each strike (> 0 and finite) and right on the way:
    (first rows, numbers, first bad strike row, first bad right row). Stops at a bad strike, or past ``limit``
    contracts (strikes are told apart by their bits: 0.0 and -0.0 would be two, and neither is a strike)."""
    cap = 4096  # kept at most a quarter full: a probe finds its contract first time nearly always
    shift = np.uint64(64 - 12)
    slot_of = np.full(cap, -1, dtype=np.int64)
    first = np.empty(limit + 1, dtype=np.int64)
    seen_e = np.empty(limit + 1, dtype=np.uint64)
    seen_k = np.empty(limit + 1, dtype=np.uint64)
    seen_c = np.empty(limit + 1, dtype=np.uint64)
    codes = np.empty(expiry.shape[0], dtype=np.int64)
    bad_right = -1
    n = 0
    for i in range(expiry.shape[0]):
        s = strike[i]
        if not (0.0 < s < np.inf):
            return first[:n], codes, i, bad_right
        flag = is_call_of[right[i]] if 0 <= right[i] < is_call_of.shape[0] else -1
        if flag < 0:
            if bad_right < 0:
                bad_right = i
            codes[i] = 0
            continue
        e = np.uint64(np.int64(expiry[i]))
        k = k_bits[i]
        c = np.uint64(flag)
        h = np.int64(_mix(e, k, c) >> shift)
        while slot_of[h] >= 0:
            j = slot_of[h]
            if seen_e[j] == e and seen_k[j] == k and seen_c[j] == c:
                break
            h = (h + 1) & (cap - 1)
        if slot_of[h] < 0:
            if n == limit + 1:
                return first[:n], codes, -1, bad_right
            first[n], seen_e[n], seen_k[n], seen_c[n] = i, e, k, c
            slot_of[h] = n
            n += 1
            if 4 * n > cap:  # grow: rehash the contracts seen
                cap *= 2
                shift -= np.uint64(1)
                slot_of = np.full(cap, -1, dtype=np.int64)
                for j in range(n):
                    g = np.int64(_mix(seen_e[j], seen_k[j], seen_c[j]) >> shift)
                    while slot_of[g] >= 0:
                        g = (g + 1) & (cap - 1)
                    slot_of[g] = j
                h = np.int64(_mix(e, k, c) >> shift)
                while slot_of[h] != n - 1:
                    h = (h + 1) & (cap - 1)
        codes[i] = slot_of[h]
    return first[:n], codes, -1, bad_right


@njit(**_JIT)
def last_before(ts: np.ndarray, contract: np.ndarray, n_contracts: int, bar_ends: np.ndarray) -> np.ndarray:
    """For each (contract, bar end), the row of the contract's last quote with ts < bar end (-1: none): one pass
    over the rows in time order, each bar end taking the chain as it stands when the first row at or after it
    comes (of rows at one time, the last in file order is the contract's last)."""
    n_b = bar_ends.shape[0]
    out = np.empty((n_contracts, n_b), dtype=np.int64)
    last = np.full(n_contracts, -1, dtype=np.int64)
    b = 0
    for i in range(ts.shape[0]):
        while b < n_b and ts[i] >= bar_ends[b]:
            out[:, b] = last
            b += 1
        if b == n_b:
            break
        last[contract[i]] = i
    while b < n_b:
        out[:, b] = last
        b += 1
    return out


@njit(**_JIT)
def _parity_forwards(
    expiry_start: np.ndarray,
    strike: np.ndarray,
    is_call: np.ndarray,
    bid: np.ndarray,
    ask: np.ndarray,
    df: np.ndarray,
) -> np.ndarray:
    """F[e, b] from put-call parity on the snapshot's mids. Contracts of an expiry are contiguous and sorted by
    strike with the put before the call, so a strike with both rights is a put row followed by a call row."""
    n_e = expiry_start.shape[0] - 1
    n_b = bid.shape[1]
    out = np.full((n_e, n_b), np.nan)
    for e in range(n_e):
        lo = expiry_start[e]
        hi = expiry_start[e + 1]
        pairs = 0
        for i in range(lo, hi - 1):
            if not is_call[i] and is_call[i + 1] and strike[i] == strike[i + 1]:
                pairs += 1
        if pairs == 0:
            continue
        ks = np.empty(pairs)
        puts = np.empty(pairs, dtype=np.int64)
        p = 0
        for i in range(lo, hi - 1):
            if not is_call[i] and is_call[i + 1] and strike[i] == strike[i + 1]:
                ks[p] = strike[i]
                puts[p] = i
                p += 1
        call_mid = np.empty(pairs)
        put_mid = np.empty(pairs)
        for b in range(n_b):
            for p in range(pairs):
                i = puts[p]
                put_mid[p] = _mid(bid[i, b], ask[i, b])
                call_mid[p] = _mid(bid[i + 1, b], ask[i + 1, b])
            out[e, b] = forward_one_expiry(ks, call_mid, put_mid, df[e, b])[0]
    return out


@njit(**_JIT)
def _forward_deltas(
    F: np.ndarray, K: np.ndarray, T: np.ndarray, sigma: np.ndarray, is_call: np.ndarray, out: np.ndarray
) -> None:
    for i in range(F.shape[0]):
        s = sigma[i]
        if not (s > 0.0 and T[i] > 0.0 and F[i] > 0.0 and K[i] > 0.0):
            out[i] = np.nan
            continue
        sd = s * math.sqrt(T[i])
        d1 = math.log(F[i] / K[i]) / sd + 0.5 * sd
        out[i] = norm_cdf(d1) if is_call[i] else -norm_cdf(-d1)


@dataclass
class Snapshot:
    """A chain at every bar end of a session: contracts in rows (sorted by expiry, strike, put before call),
    bar ends in columns; expiries in rows of the per-expiry arrays (sorted by settlement)."""

    strike: np.ndarray  # (contracts,)
    is_call: np.ndarray  # (contracts,) bool
    expiry_of: np.ndarray  # (contracts,) the expiry row of each contract
    expiry_start: np.ndarray  # (expiries + 1,) where each expiry's contracts begin
    settle_ns: np.ndarray  # (expiries,) settlement instants, UTC ns
    bid: np.ndarray  # (contracts, bars) the last quote before each bar end (NaN: none yet)
    ask: np.ndarray
    quoted: np.ndarray  # (contracts, bars) bool: the contract has a quote before the bar end
    read: np.ndarray  # (contracts, bars) bool: its expiry is read there (volatilities computed)
    T: np.ndarray  # (expiries, bars) years to settlement, ACT/365; <= 0 once settled
    df: np.ndarray  # (expiries, bars)
    forward: np.ndarray  # (expiries, bars)
    iv: np.ndarray  # (contracts, bars) NaN unless status is OK
    status: np.ndarray  # (contracts, bars) int8, fspec.options.black76's statuses (UNREAD where not read)
    delta: np.ndarray  # (contracts, bars) forward delta, NaN where iv is

    def chosen_expiry(self, bar_ends: np.ndarray, min_minutes: float) -> np.ndarray:
        """The expiry row ``nearest(min_minutes)`` picks at each bar end (-1: none)."""
        return _chosen(self.settle_ns, bar_ends, min_minutes)


def snapshot(
    ts: np.ndarray,
    expiry_day: np.ndarray | None,
    strike: np.ndarray | None,
    is_call: np.ndarray | None,
    bid: np.ndarray,
    ask: np.ndarray,
    bar_ends: np.ndarray,
    settle_of_day: dict[float, int],
    rate: float,
    dividend_yield: float = 0.0,
    underlying: np.ndarray | None = None,
    rules: tuple[float, ...] | None = None,
    ids: tuple[np.ndarray, np.ndarray] | None = None,
) -> Snapshot:
    """The chain at each bar end. ``ts`` (UTC ns, ascending) and the row arrays are the chain's quotes;
    ``settle_of_day`` maps each expiry day number to its settlement instant; ``underlying`` (the price as-of
    each bar end) selects the carry forward, else the forward is read from parity. With ``rules`` (the
    ``min_minutes`` of the expiry rules that will read it), volatilities and deltas are computed only for the
    expiries some rule picks at each bar end (``read``); the others' are NaN with status ``UNREAD``. ``ids`` is
    :func:`contract_ids` of the rows, when the caller has them (then the three row arrays are not read: None)."""
    if ids is None:
        assert expiry_day is not None and strike is not None and is_call is not None
        ids = contract_ids(expiry_day, strike, is_call)
    contract, table = ids
    n_c, n_b = table.shape[0], bar_ends.shape[0]
    rows = last_before(ts, contract, n_c, np.ascontiguousarray(bar_ends, dtype=np.int64))
    quoted = rows >= 0
    safe = np.where(quoted, rows, 0)
    snap_bid = np.where(quoted, bid[safe] if len(bid) else np.nan, np.nan)
    snap_ask = np.where(quoted, ask[safe] if len(ask) else np.nan, np.nan)

    days = np.unique(table[:, 0])
    settle = np.array([settle_of_day[float(d)] for d in days], dtype=np.int64)
    by_settle = np.argsort(settle, kind="stable")  # settlement order is day order; kept explicit
    days, settle = days[by_settle], settle[by_settle]
    expiry_of = np.searchsorted(days, table[:, 0]).astype(np.int64)
    expiry_start = np.searchsorted(expiry_of, np.arange(len(days) + 1)).astype(np.int64)
    K = np.ascontiguousarray(table[:, 1])
    call = table[:, 2] != 0

    T = (settle[:, None] - bar_ends[None, :].astype(np.int64)) / NS / SECONDS_PER_YEAR
    df = np.exp(-rate * T)
    if underlying is None:
        forward = _parity_forwards(expiry_start, K, call, snap_bid, snap_ask, np.ascontiguousarray(df))
        forward = np.where(T > 0, forward, np.nan)
    else:
        forward = np.where(T > 0, underlying[None, :] * np.exp((rate - dividend_yield) * T), np.nan)
    read = np.ones((n_c, n_b), dtype=bool)
    if rules is not None:  # only what the operators read: the front expiry is a quarter of the shipped chain
        picked = np.zeros((len(days), n_b), dtype=bool)
        for minutes in rules:
            chosen = _chosen(settle, bar_ends, minutes)
            picked[chosen[chosen >= 0], np.flatnonzero(chosen >= 0)] = True
        read = picked[expiry_of]
    c_idx, b_idx = np.nonzero(read)
    e_idx = expiry_of[c_idx]
    K_r, call_r, T_r, F_r = K[c_idx], call[c_idx], T[e_idx, b_idx], forward[e_idx, b_idx]
    iv_r, status_r = implied_volatility_quotes(
        snap_bid[c_idx, b_idx], snap_ask[c_idx, b_idx], F_r, K_r, T_r, call_r, df[e_idx, b_idx]
    )
    # An expiry already settled (T <= 0) has no forward: its quotes are BAD_INPUT, not "no quote".
    status_r = np.where(quoted[c_idx, b_idx] | (status_r == BAD_INPUT), status_r, np.int8(NO_QUOTE))
    delta_r = np.empty(len(c_idx))
    _forward_deltas(*(np.ascontiguousarray(a) for a in (F_r, K_r, T_r, iv_r, call_r)), delta_r)
    iv, delta = np.full((n_c, n_b), np.nan), np.full((n_c, n_b), np.nan)
    status = np.full((n_c, n_b), UNREAD, dtype=np.int8)
    iv[c_idx, b_idx], delta[c_idx, b_idx], status[c_idx, b_idx] = iv_r, delta_r, status_r
    return Snapshot(
        K, call, expiry_of, expiry_start, settle, snap_bid, snap_ask, quoted, read, T, df, forward, iv, status,
        delta,
    )  # fmt: skip


def _chosen(settle_ns: np.ndarray, bar_ends: np.ndarray, min_minutes: float) -> np.ndarray:
    """The expiry row ``nearest(min_minutes)`` picks at each bar end: the first to settle at least
    ``min_minutes`` after it, and after it at all (-1: none does)."""
    need = bar_ends[None, :] + np.int64(round(min_minutes * 60 * NS))
    ok = (settle_ns[:, None] >= need) & (settle_ns[:, None] > bar_ends[None, :])
    return np.where(ok.any(axis=0), np.argmax(ok, axis=0), -1).astype(np.int64)


# ---- the reducers over one expiry at one bar end ----------------------------------------------------------


@njit(**_JIT)
def atm_iv(strike: np.ndarray, is_call: np.ndarray, iv: np.ndarray, forward: float) -> float:
    """The implied volatility at the forward: between the OTM smile's two points around ``F`` (the highest
    put strike below F, the lowest call strike at or above it), linear in variance against log strike; the
    call's own where its strike is F. NaN without a point on each side."""
    F = forward
    if not (F > 0.0):
        return np.nan
    lo_k, lo_v, hi_k, hi_v = -np.inf, np.nan, np.inf, np.nan
    for i in range(strike.shape[0]):
        v = iv[i]
        k = strike[i]
        if not (v > 0.0):
            continue
        if is_call[i] and k >= F and k < hi_k:
            hi_k, hi_v = k, v
        elif not is_call[i] and k < F and k > lo_k:
            lo_k, lo_v = k, v
    if hi_k == F:
        return hi_v
    if not (lo_v > 0.0 and hi_v > 0.0):
        return np.nan
    w = (math.log(F) - math.log(lo_k)) / (math.log(hi_k) - math.log(lo_k))
    return math.sqrt((1.0 - w) * lo_v * lo_v + w * hi_v * hi_v)


@njit(**_JIT)
def iv_at_delta(
    strike: np.ndarray, is_call: np.ndarray, iv: np.ndarray, delta: np.ndarray, forward: float, target: float
) -> float:
    """The implied volatility at forward delta ``target``: a call's (target > 0) from the calls, a put's
    (target < 0) from the puts, linear in variance against delta between the two neighbouring points (options
    with a volatility) that bracket it, walking from in to out of the money (strikes up for calls, down for
    puts; the first bracket counts). In-the-money options count so that a delta between the money and the first
    OTM strike (a 40-delta on a short expiry) still has its bracket. NaN when the points do not reach it."""
    F = forward
    if not (F > 0.0) or target == 0.0:
        return np.nan
    want = abs(target)
    n = strike.shape[0]
    prev_d, prev_v = np.nan, np.nan
    for j in range(n):
        i = j if target > 0 else n - 1 - j
        if bool(is_call[i]) != (target > 0):
            continue
        v = iv[i]
        d = abs(delta[i])
        if not (v > 0.0 and d == d):
            continue
        if d == want:
            return v
        if prev_d == prev_d and prev_d > want > d:
            w = (prev_d - want) / (prev_d - d)
            return math.sqrt((1.0 - w) * prev_v * prev_v + w * v * v)
        prev_d, prev_v = d, v
    return np.nan
