"""The forward of an expiry implied by put-call parity, the Cboe VIX white paper's way.

Put-call parity for European options, C - P = df·(F - K), gives F = K + (C - P)/df at any strike. Quotes are
noisiest far from the money, so, as the white paper does, the forward is read at the one strike K* where the
call and put prices are closest: F = K* + e^{rT}·(C(K*) - P(K*)), with e^{rT} = 1/df.

Edge cases, all defined:

- a strike counts only if both its call and its put have a usable price: finite and > 0 (a NaN, zero or
  negative price is no quote); for quotes, both bids and asks > 0 and neither side crossed (bid > ask), and
  the price is the mid;
- no strike with both sides usable: the forward is NaN and K* is NaN;
- ties in |C - P| go to the lowest strike (the answer does not depend on the order of the rows);
- a NaN or non-positive strike, or a discount factor that is not finite and positive, makes the row (or the
  expiry, for df) unusable in the same way.
"""

from __future__ import annotations

import numpy as np

from fspec.jit import njit

_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@njit(**_JIT)
def _usable(price: float) -> bool:
    return 0.0 < price < np.inf


@njit(**_JIT)
def _mid(bid: float, ask: float) -> float:
    """Mid of a quote, NaN for a missing side or a crossed quote."""
    if not (_usable(bid) and _usable(ask)) or bid > ask:
        return np.nan
    return 0.5 * (bid + ask)


@njit(**_JIT)
def forward_one_expiry(strike: np.ndarray, call: np.ndarray, put: np.ndarray, df: float) -> tuple[float, float]:
    """(F, K*) of one expiry from call and put prices (discounted, same strikes row by row)."""
    best = np.inf
    k_star = np.nan
    diff_star = np.nan
    if not (0.0 < df < np.inf):
        return np.nan, np.nan
    for i in range(strike.shape[0]):
        k = strike[i]
        if not (_usable(call[i]) and _usable(put[i]) and 0.0 < k < np.inf):
            continue
        d = call[i] - put[i]
        a = abs(d)
        if a < best or (a == best and k < k_star):
            best = a
            k_star = k
            diff_star = d
    if k_star != k_star:  # NaN: no strike had both sides
        return np.nan, np.nan
    return k_star + diff_star / df, k_star


@njit(**_JIT)
def _forwards(
    starts: np.ndarray,
    strike: np.ndarray,
    call: np.ndarray,
    put: np.ndarray,
    df: np.ndarray,
    forward: np.ndarray,
    k_star: np.ndarray,
) -> None:
    for e in range(starts.shape[0] - 1):
        lo = starts[e]
        hi = starts[e + 1]
        forward[e], k_star[e] = forward_one_expiry(strike[lo:hi], call[lo:hi], put[lo:hi], df[e])


@njit(**_JIT)
def _mids(bid: np.ndarray, ask: np.ndarray) -> np.ndarray:
    out = np.empty(bid.shape[0])
    for i in range(bid.shape[0]):
        out[i] = _mid(bid[i], ask[i])
    return out


def _f64(a: object) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float64).reshape(-1))


def _same_length(*arrays: np.ndarray) -> None:
    if len({a.shape[0] for a in arrays}) > 1:
        raise ValueError(f"strikes and prices differ in length: {[a.shape[0] for a in arrays]}")


def forward_from_parity(strike: object, call: object, put: object, df: float = 1.0) -> tuple[float, float]:
    """(F, K*) of one expiry from call and put prices at the same strikes (row i is one strike)."""
    arrays = (_f64(strike), _f64(call), _f64(put))
    _same_length(*arrays)
    return forward_one_expiry(*arrays, float(df))


def forward_from_quotes(
    strike: object, call_bid: object, call_ask: object, put_bid: object, put_ask: object, df: float = 1.0
) -> tuple[float, float]:
    """(F, K*) of one expiry from bid/ask quotes, using mids of quotes with both sides and not crossed."""
    strikes, quotes = _f64(strike), [_f64(q) for q in (call_bid, call_ask, put_bid, put_ask)]
    _same_length(strikes, *quotes)
    return forward_one_expiry(strikes, _mids(quotes[0], quotes[1]), _mids(quotes[2], quotes[3]), float(df))


def forwards_by_expiry(
    expiry: object, strike: object, call: object, put: object, df: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forwards of many expiries at once. ``expiry`` labels each row (any sortable values); ``df`` is per row
    and must be the same within an expiry (its first row's is used). Returns (expiries, F, K*), expiries
    sorted."""
    labels = np.asarray(expiry).reshape(-1)
    order = np.argsort(labels, kind="stable")
    labels = labels[order]
    first = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]]) if labels.size else np.zeros(0, dtype=np.int64)
    starts = np.r_[first, labels.size].astype(np.int64)
    strike_s, call_s, put_s = (_f64(a) for a in (strike, call, put))
    _same_length(labels, strike_s, call_s, put_s)
    strike_s, call_s, put_s = strike_s[order], call_s[order], put_s[order]
    df_rows = np.broadcast_to(np.asarray(df, dtype=np.float64), labels.shape).reshape(-1)[order]
    forward = np.empty(first.size)
    k_star = np.empty(first.size)
    _forwards(starts, strike_s, call_s, put_s, np.ascontiguousarray(df_rows[first]), forward, k_star)
    return labels[first], forward, k_star
