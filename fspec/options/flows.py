"""Option flows: a chain's trades, each signed and valued by the chain's quotes strictly before it, and the book
changes of its quotes, summed into bars (docs/options.md, "Flows").

A trade at time ``t`` of contract ``c`` reads the chain as it stood strictly before ``t`` (a quote stamped ``t``
itself, as a feed prints the quote update a trade causes, comes after it):

- its **sign** (Lee-Ready on the quote): +1 above the mid of ``c``'s last quote before ``t``, -1 below, 0 at the
  mid; 0 as well when that quote is not two-sided (a side missing, zero or negative, or bid > ask) or ``c`` has
  no quote yet in the session;
- its **greeks**: the implied volatility of that quote's mid on the forward of ``c``'s expiry before ``t``
  (parity on every contract's last quote before ``t``, or carry from the underlying's last price before ``t``),
  ``T`` from ``t`` to the settlement; then Black-76's discounted delta and gamma on the forward and vega per unit
  of volatility (:func:`fspec.options.black76.greeks`). No volatility (any status but OK): no greeks (NaN).

``book_ofi`` is the seed's order flow imbalance per contract: at each quote of ``c``, the change of its bid size
minus the change of its ask size since ``c``'s previous quote in the session (the first has none), summed over
the bar's quotes of every contract; a contract's sizes are never differenced against another's.

The sums into bars (``bar_sum``) are 0 for a bar with nothing to sum and NaN for a bar whose terms all exist
but are unknown (trades none of which has a quote to sign and value it, book changes of NaN sizes).

Numba kernels, compiled on first use (``cache=True``), like the rest of :mod:`fspec.options`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fspec.jit import njit
from fspec.options.forward import _mid, forward_one_expiry

_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@njit(**_JIT)
def prevailing(
    q_ts: np.ndarray,
    q_contract: np.ndarray,
    q_bid: np.ndarray,
    q_ask: np.ndarray,
    t_ts: np.ndarray,
    t_contract: np.ndarray,
    n_contracts: int,
    expiry_of: np.ndarray,
    pair_start: np.ndarray,
    pair_put: np.ndarray,
    pair_call: np.ndarray,
    pair_strike: np.ndarray,
    t_df: np.ndarray,
    parity: bool,
    out_bid: np.ndarray,
    out_ask: np.ndarray,
    out_forward: np.ndarray,
) -> None:
    """For each trade (time order), its contract's last bid and ask with a time strictly before the trade (NaN:
    none yet) and, with ``parity``, its expiry's forward from every contract's last quote before it.

    Quotes and trades are each in time order; ``expiry_of[c]`` is contract c's expiry row, and the expiry's
    strikes with both a put and a call are ``pair_start[e]:pair_start[e + 1]`` of the pair arrays."""
    bid = np.full(n_contracts, np.nan)
    ask = np.full(n_contracts, np.nan)
    j = 0
    n_q = q_ts.shape[0]
    width = 0
    for e in range(pair_start.shape[0] - 1):
        width = max(width, pair_start[e + 1] - pair_start[e])
    call_mid = np.empty(width)
    put_mid = np.empty(width)
    for i in range(t_ts.shape[0]):
        while j < n_q and q_ts[j] < t_ts[i]:
            c = q_contract[j]
            bid[c] = q_bid[j]
            ask[c] = q_ask[j]
            j += 1
        c = t_contract[i]
        out_bid[i] = bid[c]
        out_ask[i] = ask[c]
        if not parity:
            continue
        e = expiry_of[c]
        lo = pair_start[e]
        n = pair_start[e + 1] - lo
        for p in range(n):
            call_mid[p] = _mid(bid[pair_call[lo + p]], ask[pair_call[lo + p]])
            put_mid[p] = _mid(bid[pair_put[lo + p]], ask[pair_put[lo + p]])
        out_forward[i] = forward_one_expiry(pair_strike[lo : lo + n], call_mid[:n], put_mid[:n], t_df[i])[0]


@njit(**_JIT)
def bar_of(ts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Each row's bar, the first bar end after its time (rows in time order), -1 after the last bar end."""
    out = np.empty(ts.shape[0], dtype=np.int64)
    b = 0
    n = ends.shape[0]
    for i in range(ts.shape[0]):
        while b < n and ends[b] <= ts[i]:
            b += 1
        out[i] = b if b < n else -1
    return out


@njit(**_JIT)
def lee_ready(price: np.ndarray, bid: np.ndarray, ask: np.ndarray) -> np.ndarray:
    """+1 above the two-sided quote's mid, -1 below, 0 at it, and 0 without a two-sided quote (or a NaN price)."""
    out = np.zeros(price.shape[0])
    for i in range(price.shape[0]):
        m = _mid(bid[i], ask[i])
        if m == m and price[i] == price[i]:
            out[i] = 1.0 if price[i] > m else (-1.0 if price[i] < m else 0.0)
    return out


@njit(**_JIT)
def spread_pct(bid: np.ndarray, ask: np.ndarray) -> np.ndarray:
    """(ask - bid) / mid of each two-sided quote, NaN otherwise."""
    out = np.full(bid.shape[0], np.nan)
    for i in range(bid.shape[0]):
        m = _mid(bid[i], ask[i])
        if m == m:
            out[i] = (ask[i] - bid[i]) / m
    return out


@njit(**_JIT)
def bar_sum(bar: np.ndarray, values: np.ndarray, n_bars: int) -> np.ndarray:
    """Sum of each bar's finite values: 0 for a bar without rows, NaN for a bar whose rows are all NaN (terms that
    exist but are unknown are no evidence of a zero sum); rows with bar -1 or >= n_bars count nowhere."""
    out = np.zeros(n_bars)
    rows = np.zeros(n_bars, dtype=np.int64)
    known = np.zeros(n_bars, dtype=np.int64)
    for i in range(bar.shape[0]):
        b = bar[i]
        if not 0 <= b < n_bars:
            continue
        rows[b] += 1
        v = values[i]
        if v == v and not math.isinf(v):
            out[b] += v
            known[b] += 1
    for b in range(n_bars):
        if rows[b] and not known[b]:
            out[b] = np.nan
    return out


@njit(**_JIT)
def bar_wmean(bar: np.ndarray, x: np.ndarray, w: np.ndarray, n_bars: int) -> np.ndarray:
    """sum(w x) / sum(w) per bar over the rows where both are finite and w > 0; NaN for a bar without any."""
    num = np.zeros(n_bars)
    den = np.zeros(n_bars)
    for i in range(bar.shape[0]):
        b = bar[i]
        if 0 <= b < n_bars and x[i] == x[i] and not math.isinf(x[i]) and w[i] > 0.0 and not math.isinf(w[i]):
            num[b] += w[i] * x[i]
            den[b] += w[i]
    out = np.full(n_bars, np.nan)
    for b in range(n_bars):
        if den[b] > 0.0:
            out[b] = num[b] / den[b]
    return out


@njit(**_JIT)
def book_ofi(
    ts: np.ndarray,
    bar_ends: np.ndarray,
    contract: np.ndarray,
    bid_size: np.ndarray,
    ask_size: np.ndarray,
    n_contracts: int,
) -> np.ndarray:
    """Per bar, the sum over its quotes of (bid size - the contract's previous bid size) - (ask size - its previous
    ask size); a contract's first quote in the session is no change (it adds nothing), a NaN size makes its
    changes unknown (skipped): 0 for a bar without a change, NaN for a bar whose changes are all unknown.
    Quotes in time order, each in the first bar ending after it; a quote after the last bar end counts in none.
    One pass, without per-row arrays: the book of 500 contracts quoted every second is 12M rows."""
    n_bars = bar_ends.shape[0]
    seen = np.zeros(n_contracts, dtype=np.bool_)
    last_bid = np.empty(n_contracts)
    last_ask = np.empty(n_contracts)
    out = np.zeros(n_bars)
    changes = np.zeros(n_bars, dtype=np.int64)
    known = np.zeros(n_bars, dtype=np.int64)
    b = 0
    for i in range(contract.shape[0]):
        while b < n_bars and bar_ends[b] <= ts[i]:
            b += 1
        if b == n_bars:
            break
        c = contract[i]
        if seen[c]:
            v = (bid_size[i] - last_bid[c]) - (ask_size[i] - last_ask[c])
            changes[b] += 1
            if v == v:
                out[b] += v
                known[b] += 1
        seen[c] = True
        last_bid[c] = bid_size[i]
        last_ask[c] = ask_size[i]
    for k in range(n_bars):
        if changes[k] and not known[k]:
            out[k] = np.nan
    return out


@njit(**_JIT)
def atm_straddle(strike: np.ndarray, is_call: np.ndarray, bid: np.ndarray, ask: np.ndarray, forward: float) -> float:
    """The mid of the call plus the mid of the put at the strike nearest the forward among the strikes whose call
    and put both have a two-sided quote (ties: the lower strike). One expiry's contracts, sorted by strike with
    the put before the call. NaN without a forward or such a strike."""
    if not (forward > 0.0):
        return np.nan
    best = np.inf
    value = np.nan
    for i in range(strike.shape[0] - 1):
        if is_call[i] or not is_call[i + 1] or strike[i] != strike[i + 1]:
            continue
        put = _mid(bid[i], ask[i])
        call = _mid(bid[i + 1], ask[i + 1])
        if not (put == put and call == call):
            continue
        d = abs(strike[i] - forward)
        if d < best:  # strikes ascend: a tie keeps the lower
            best = d
            value = put + call
    return value


@dataclass
class OptionTrades:
    """A session's trades of a chain, each with its bar and what the chain's quotes said strictly before it
    (the module doc); the flow operators (:mod:`fspec.operators.chain`) reduce it to one value per bar."""

    n_bars: int
    bar: np.ndarray  # (trades,) the bar of each trade, -1 for none (after the last bar end computed)
    price: np.ndarray
    size: np.ndarray
    settle_ns: np.ndarray  # (trades,) the settlement instant of each trade's expiry
    bid: np.ndarray  # the contract's last quote strictly before the trade (NaN: none yet)
    ask: np.ndarray
    sign: np.ndarray  # Lee-Ready on that quote: +1, -1 or 0
    status: np.ndarray  # its mid's implied volatility status (fspec.options.black76)
    delta: np.ndarray  # Black-76 on the forward, discounted; NaN without a volatility
    gamma: np.ndarray
    vega: np.ndarray
    multiplier: float
    # min_minutes -> (settlement instant of the expiry chosen at each bar end (-1: none), its ATM straddle)
    straddle: Callable[[float], tuple[np.ndarray, np.ndarray]]

    def flow(self, greek: np.ndarray) -> np.ndarray:
        """sum(sign x size x greek x multiplier) per bar over the trades valued: with the greek (so with a
        two-sided quote before them), a price and a size. 0 for a bar without trades, NaN for a bar whose trades
        are none of them valued (they happened: their flow is unknown, not zero)."""
        with np.errstate(invalid="ignore"):
            term = np.where(np.isfinite(self.price), self.sign * self.size * greek * self.multiplier, np.nan)
        return bar_sum(self.bar, term, self.n_bars)


@dataclass
class QuoteRows:
    """A session's quote rows of a chain (time order), each with its contract number, and the bar ends, for
    option_ofi."""

    bar_ends: np.ndarray
    ts: np.ndarray
    contract: np.ndarray
    bid_size: np.ndarray
    ask_size: np.ndarray
    n_contracts: int
