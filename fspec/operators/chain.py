"""Option chain reducers: a chain source in, one value per bar of its instrument out (window ``(0, 0)``).

A chain source (a source with ``contract:``) holds the quotes of many contracts. At each bar end the runtime
takes its snapshot (every contract's last quote strictly before the bar end, each expiry's forward, every
contract's implied volatility and forward delta: :mod:`fspec.options.chain`), and each of these operators
reduces one expiry of it to a number. Which expiry is the operator's ``expiry`` rule:

    nearest(min_minutes=M)   the first expiry to settle at least M minutes after the bar end

so ``iv_atm(spxw_quotes, expiry=nearest(min_minutes=30))`` rolls to the next expiry half an hour before the
front one settles. The rule is read when compiling (``fspec.compiler.chain``); every operator here takes it.

``numpy`` is the reducer on one expiry's contracts at one bar end: ``(strike, is_call, iv, delta, forward,
constants) -> value``, contracts sorted by strike (the put before the call), NaN ``iv`` for every status but
OK. Its numba code is :mod:`fspec.options.chain`, imported on first use, so validating specs imports no numba.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fspec.operators.core import CHAIN, Operator, Param, register

CHAIN_PARAM = Param("chain", "chain")
EXPIRY_PARAM = Param("expiry", "expiry")
# (strike, is_call, iv, delta, forward, constants) -> the value of one expiry at one bar end
ChainCode = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, dict[str, float]], float]


def _atm(strike: np.ndarray, call: np.ndarray, iv: np.ndarray, delta: np.ndarray, F: float, _: dict) -> float:
    from fspec.options.chain import atm_iv

    return float(atm_iv(strike, call, iv, F))


def _at(target: float) -> Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float], float]:
    def value(strike: np.ndarray, call: np.ndarray, iv: np.ndarray, delta: np.ndarray, F: float) -> float:
        from fspec.options.chain import iv_at_delta

        return float(iv_at_delta(strike, call, iv, delta, F, target))

    return value


def _difference(plus: float, minus: float) -> ChainCode:
    first, second = _at(plus), _at(minus)
    return lambda strike, call, iv, delta, F, _: first(strike, call, iv, delta, F) - second(strike, call, iv, delta, F)


def _iv_delta(strike: np.ndarray, call: np.ndarray, iv: np.ndarray, delta: np.ndarray, F: float, c: dict) -> float:
    return _at(c["delta"])(strike, call, iv, delta, F)


POINTS = (
    "Delta is the forward delta, Φ(d1) for a call and -Φ(-d1) for a put; the IV at a delta is interpolated "
    "linearly in variance between the two options of that right bracketing it in delta"
)
NAN_EDGE = (
    "NaN at a bar end where no expiry meets the rule, the expiry has no forward (no strike with a two-sided "
    "put and call), or the points do not reach the value (nothing is extrapolated); contracts without a "
    "volatility (crossed, zero or one-sided quotes, prices at or below intrinsic value, no quote yet) are no "
    "points, and are counted in one warning per day"
)

for op in (
    Operator(
        "iv_atm",
        (CHAIN_PARAM, EXPIRY_PARAM),
        CHAIN,
        "implied volatility at the forward of the chosen expiry: between the out-of-the-money smile's points on "
        "either side of the forward (the put at the highest strike below F, the call at the lowest strike at or "
        "above it), linear in variance against log strike",
        NAN_EDGE,
        numpy=_atm,
    ),
    Operator(
        "iv_delta",
        (CHAIN_PARAM, Param("delta", "number", minimum=-0.5, maximum=0.5), EXPIRY_PARAM),
        CHAIN,
        "implied volatility at a forward delta of the chosen expiry: a call's for delta > 0 (0.25: the 25-delta "
        f"call), a put's for delta < 0 (-0.25). {POINTS}",
        f"delta 0 is an error; {NAN_EDGE}",
        numpy=_iv_delta,
    ),
    Operator(
        "iv_rr25",
        (CHAIN_PARAM, EXPIRY_PARAM),
        CHAIN,
        "25-delta risk reversal of the chosen expiry: the 25-delta call's implied volatility minus the 25-delta "
        f"put's, iv_delta(0.25) - iv_delta(-0.25). {POINTS}",
        NAN_EDGE,
        numpy=_difference(0.25, -0.25),
    ),
    Operator(
        "iv_slope",
        (CHAIN_PARAM, EXPIRY_PARAM),
        CHAIN,
        "slope of the put wing of the chosen expiry: the 10-delta put's implied volatility minus the 40-delta "
        f"put's, iv_delta(-0.10) - iv_delta(-0.40) (positive when the skew is steeper further out). {POINTS}",
        NAN_EDGE,
        numpy=_difference(-0.10, -0.40),
    ),
    Operator(
        "skew_index",
        (CHAIN_PARAM, EXPIRY_PARAM),
        CHAIN,
        "tail skew of the chosen expiry: the 10-delta put's implied volatility minus the 10-delta call's, "
        f"iv_delta(-0.10) - iv_delta(0.10) (not Cboe's SKEW, which integrates the whole strip). {POINTS}",
        NAN_EDGE,
        numpy=_difference(-0.10, 0.10),
    ),
    Operator(
        "chain_forward",
        (CHAIN_PARAM, EXPIRY_PARAM),
        CHAIN,
        "the forward of the chosen expiry at the bar end: from put-call parity on the snapshot's mids at the "
        "strike where the call and put are closest (forward: parity), or the underlying's price times "
        "e^((rate - dividend_yield) T) (forward: carry)",
        "NaN where no expiry meets the rule or no strike has a two-sided put and call (parity), or the underlying "
        "has no price before the bar end (carry)",
        numpy=lambda strike, call, iv, delta, F, _: float(F),
    ),
):
    register(op)
