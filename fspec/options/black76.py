"""Black-76 on the forward: prices, implied volatilities (by "Let's Be Rational") and Greeks, over arrays of
contracts, with a status per contract beside a NaN value.

Conventions (docs/options.md): ``F`` is the forward of the option's expiry, ``K`` the strike, ``T`` the time to
expiry in years, ACT/365 (the module's convention; the caller computes it), ``df`` the discount factor to
expiry (e^{-rT}), ``sigma`` the Black volatility per √year. The price of a call is df·(F·Φ(d1) - K·Φ(d2)),
of a put df·(K·Φ(-d2) - F·Φ(-d1)), d1,2 = (ln(F/K) ± σ²T/2)/(σ√T).

Statuses of an implied volatility, checked in this order (the first that applies is the one given):

- ``BAD_INPUT`` (5): F, K, T or df is not a finite positive number (a forward missing for the expiry, say).
- ``NO_QUOTE`` (3): a price (or the bid or the ask) is NaN, zero or negative.
- ``CROSSED`` (4): the bid is above the ask (quotes only; bid == ask is fine).
- ``BELOW_INTRINSIC`` (1): the price is at or below the discounted intrinsic value, df·(F-K)⁺ for a call,
  df·(K-F)⁺ for a put (at intrinsic there is no time value and no volatility to find).
- ``ABOVE_MAXIMUM`` (2): the price is at or above the discounted maximum, df·F for a call, df·K for a put.
- ``OK`` (0): the implied volatility is the value (finite, > 0).

Every status but OK comes with NaN. The comparisons are done on price/df against the undiscounted bounds,
the numbers the inversion itself sees.
"""

from __future__ import annotations

import math

import numpy as np

from fspec.jit import njit
from fspec.options import lets_be_rational as lbr
from fspec.options.normal import norm_cdf, norm_pdf

_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}

OK = 0
BELOW_INTRINSIC = 1
ABOVE_MAXIMUM = 2
NO_QUOTE = 3
CROSSED = 4
BAD_INPUT = 5
STATUS_NAMES: dict[int, str] = {
    OK: "ok",
    BELOW_INTRINSIC: "below intrinsic",
    ABOVE_MAXIMUM: "above maximum",
    NO_QUOTE: "no quote",
    CROSSED: "crossed",
    BAD_INPUT: "bad input",
}


@njit(**_JIT)
def _good(v: float) -> bool:
    """Finite and positive (NaN fails both comparisons)."""
    return 0.0 < v < np.inf


@njit(**_JIT)
def implied_volatility_one(price: float, F: float, K: float, T: float, is_call: bool, df: float) -> tuple[float, int]:
    """(σ, status) of one discounted price."""
    if not (_good(F) and _good(K) and _good(T) and _good(df)):
        return np.nan, BAD_INPUT
    if not (price > 0.0):
        return np.nan, NO_QUOTE
    undiscounted = price / df
    intrinsic = max(F - K, 0.0) if is_call else max(K - F, 0.0)
    if undiscounted <= intrinsic:
        return np.nan, BELOW_INTRINSIC
    if undiscounted >= (F if is_call else K):
        return np.nan, ABOVE_MAXIMUM
    sigma = lbr.implied_volatility(undiscounted, F, K, T, 1.0 if is_call else -1.0)
    # The normalisation by √(FK) can still round a price just inside the bounds onto them.
    if sigma >= lbr.VOLATILITY_VALUE_TO_SIGNAL_PRICE_IS_ABOVE_MAXIMUM:
        return np.nan, ABOVE_MAXIMUM
    if sigma <= 0.0:
        return np.nan, BELOW_INTRINSIC
    return sigma, OK


@njit(**_JIT)
def _implied_volatility_prices(
    price: np.ndarray,
    F: np.ndarray,
    K: np.ndarray,
    T: np.ndarray,
    is_call: np.ndarray,
    df: np.ndarray,
    out: np.ndarray,
    status: np.ndarray,
) -> None:
    for i in range(price.shape[0]):
        out[i], status[i] = implied_volatility_one(price[i], F[i], K[i], T[i], is_call[i], df[i])


@njit(**_JIT)
def _implied_volatility_quotes(
    bid: np.ndarray,
    ask: np.ndarray,
    F: np.ndarray,
    K: np.ndarray,
    T: np.ndarray,
    is_call: np.ndarray,
    df: np.ndarray,
    out: np.ndarray,
    status: np.ndarray,
) -> None:
    for i in range(bid.shape[0]):
        b = bid[i]
        a = ask[i]
        if not (_good(F[i]) and _good(K[i]) and _good(T[i]) and _good(df[i])):
            out[i], status[i] = np.nan, BAD_INPUT
        elif not (b > 0.0 and a > 0.0):
            out[i], status[i] = np.nan, NO_QUOTE
        elif b > a:
            out[i], status[i] = np.nan, CROSSED
        else:
            out[i], status[i] = implied_volatility_one(0.5 * (b + a), F[i], K[i], T[i], is_call[i], df[i])


@njit(**_JIT)
def _price(
    F: np.ndarray, K: np.ndarray, T: np.ndarray, sigma: np.ndarray, is_call: np.ndarray, df: np.ndarray, out: np.ndarray
) -> None:
    for i in range(F.shape[0]):
        if not (_good(F[i]) and _good(K[i]) and _good(T[i]) and _good(df[i]) and 0.0 <= sigma[i] < np.inf):
            out[i] = np.nan
        else:
            out[i] = df[i] * lbr.black(F[i], K[i], sigma[i], T[i], 1.0 if is_call[i] else -1.0)


@njit(**_JIT)
def greeks_one(F: float, K: float, T: float, sigma: float, is_call: bool, df: float) -> tuple[float, float, float]:
    """(delta, gamma, vega) on the forward: ∂V/∂F, ∂²V/∂F², ∂V/∂σ (per unit of σ, not per point)."""
    if not (_good(F) and _good(K) and _good(T) and _good(df) and _good(sigma)):
        return np.nan, np.nan, np.nan
    sd = sigma * math.sqrt(T)
    d1 = math.log(F / K) / sd + 0.5 * sd
    # Φ(-d1) directly for a put rather than Φ(d1) - 1, which cancels when d1 is large.
    delta = df * (norm_cdf(d1) if is_call else -norm_cdf(-d1))
    density = norm_pdf(d1)
    return delta, df * density / (F * sd), df * F * density * math.sqrt(T)


@njit(**_JIT)
def _greeks(
    F: np.ndarray,
    K: np.ndarray,
    T: np.ndarray,
    sigma: np.ndarray,
    is_call: np.ndarray,
    df: np.ndarray,
    delta: np.ndarray,
    gamma: np.ndarray,
    vega: np.ndarray,
) -> None:
    for i in range(F.shape[0]):
        delta[i], gamma[i], vega[i] = greeks_one(F[i], K[i], T[i], sigma[i], is_call[i], df[i])


def _arrays(*values: object, is_call: object) -> tuple[list[np.ndarray], tuple[int, ...]]:
    """Broadcasts the inputs to one shape and flattens them to contiguous float64 (and a bool is_call)."""
    arrays = np.broadcast_arrays(*[np.asarray(v, dtype=np.float64) for v in values], np.asarray(is_call, dtype=bool))
    shape = arrays[0].shape
    flat = [np.ascontiguousarray(a, dtype=np.float64).reshape(-1) for a in arrays[:-1]]
    return [*flat, np.ascontiguousarray(arrays[-1]).reshape(-1)], shape


def implied_volatility(
    price: object, F: object, K: object, T: object, is_call: object, df: object = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Implied Black-76 volatilities of discounted prices: (sigma, status), status int8 (see the module doc).
    Arguments broadcast against each other."""
    (p, f, k, t, d, c), shape = _arrays(price, F, K, T, df, is_call=is_call)
    out = np.empty(p.shape[0])
    status = np.empty(p.shape[0], dtype=np.int8)
    _implied_volatility_prices(p, f, k, t, c, d, out, status)
    return out.reshape(shape), status.reshape(shape)


def implied_volatility_quotes(
    bid: object, ask: object, F: object, K: object, T: object, is_call: object, df: object = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Implied volatility of the mid of each bid/ask pair, with NO_QUOTE and CROSSED checked on the quotes."""
    (b, a, f, k, t, d, c), shape = _arrays(bid, ask, F, K, T, df, is_call=is_call)
    out = np.empty(b.shape[0])
    status = np.empty(b.shape[0], dtype=np.int8)
    _implied_volatility_quotes(b, a, f, k, t, c, d, out, status)
    return out.reshape(shape), status.reshape(shape)


def price(F: object, K: object, T: object, sigma: object, is_call: object, df: object = 1.0) -> np.ndarray:
    """Discounted Black-76 prices (LBR's normalised Black function, accurate far out of the money); NaN for
    bad inputs or a negative or NaN sigma; sigma = 0 gives the discounted intrinsic value."""
    (f, k, t, s, d, c), shape = _arrays(F, K, T, sigma, df, is_call=is_call)
    out = np.empty(f.shape[0])
    _price(f, k, t, s, c, d, out)
    return out.reshape(shape)


def greeks(
    F: object, K: object, T: object, sigma: object, is_call: object, df: object = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(delta, gamma, vega) of Black-76 on the forward, discounted; NaN unless every input is finite and
    positive. Delta and gamma are with respect to the forward F; vega per unit of volatility."""
    (f, k, t, s, d, c), shape = _arrays(F, K, T, sigma, df, is_call=is_call)
    n = f.shape[0]
    delta, gamma, vega = np.empty(n), np.empty(n), np.empty(n)
    _greeks(f, k, t, s, c, d, delta, gamma, vega)
    return delta.reshape(shape), gamma.reshape(shape), vega.reshape(shape)
