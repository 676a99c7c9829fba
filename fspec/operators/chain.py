"""Option chain operators: a chain source in, one value per bar of its instrument out (window ``(0, 0)``).

A chain source (a source with ``contract:``) holds the quotes of many contracts; a chain of trades (``contract:
{..., quotes: SOURCE}``) their trades. Each operator's first parameter says what it reads, and so what its
``numpy`` lowering takes:

``chain`` (QUOTES_KIND)
    the snapshot at each bar end (every contract's last quote strictly before the bar end, each expiry's
    forward, every contract's implied volatility and forward delta: :mod:`fspec.options.chain`), one expiry of
    it: ``numpy`` is ``(strike, is_call, iv, delta, forward, constants) -> value`` on that expiry's contracts at
    one bar end, contracts sorted by strike (the put before the call), NaN ``iv`` for every status but OK.
``chain`` (ROWS_KIND)
    every quote row of the session: ``numpy`` is ``(QuoteRows, constants) -> (bars,)``.
``trades`` (TRADES_KIND)
    the session's trades, each signed and valued by the quotes strictly before it
    (:class:`fspec.options.flows.OptionTrades`): ``numpy`` is ``(OptionTrades, constants) -> (bars,)``.

Which expiry an operator with ``expiry`` reads is its rule:

    nearest(min_minutes=M)   the first expiry to settle at least M minutes after the bar end

so ``iv_atm(spxw_quotes, expiry=nearest(min_minutes=30))`` rolls to the next expiry half an hour before the
front one settles. The rule is read when compiling (``fspec.compiler.chain``). The numba code is
:mod:`fspec.options.chain` and :mod:`fspec.options.flows`, imported on first use, so validating specs imports no
numba.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fspec.operators.core import CHAIN, Operator, Param, register

QUOTES_KIND, ROWS_KIND, TRADES_KIND = "chain", "chain_rows", "option_trades"
CHAIN_PARAM = Param("chain", QUOTES_KIND)
ROWS_PARAM = Param("chain", ROWS_KIND)
TRADES_PARAM = Param("trades", TRADES_KIND)
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


# ---- over the session's rows: the book's changes, and the trades signed by the quotes before them ----------

SIGNED = (
    "each trade signed by its contract's quote prevailing strictly before it (a quote at the trade's own time "
    "comes after it): +1 above that quote's mid, -1 below, 0 at it"
)
GREEKS = (
    "greeks of that quote's mid: its implied volatility on the expiry's forward strictly before the trade, T from "
    "the trade to the settlement, Black-76 on the forward (discounted)"
)
UNSIGNED = (
    "a trade without a two-sided quote before it (none yet in the session, a side missing or zero, bid > ask) is "
    "unsigned and has no greeks; a trade whose quote gives no volatility (below intrinsic, past expiry, ...) has "
    "no greeks; such trades add nothing, and are counted in one warning per day; a trade at the mid adds 0. "
    "Bar without trades: 0; bar with trades none of which has greeks: NaN (its flow is unknown); a day whose "
    "chain of quotes has no quote in the session: NaN"
)


def _flow(greek: str) -> Callable[[Any, dict[str, float]], np.ndarray]:
    return lambda trades, _: trades.flow(getattr(trades, greek))


def _ofi(rows: Any, _: dict[str, float]) -> np.ndarray:
    from fspec.options.flows import book_ofi

    return book_ofi(rows.ts, rows.bar_ends, rows.contract, rows.bid_size, rows.ask_size, rows.n_contracts)


def _spread_pct_vw(trades: Any, _: dict[str, float]) -> np.ndarray:
    from fspec.options.flows import bar_wmean, spread_pct

    return bar_wmean(trades.bar, spread_pct(trades.bid, trades.ask), trades.size, trades.n_bars)


def _vwap_deviation(trades: Any, consts: dict[str, float]) -> np.ndarray:
    from fspec.options.flows import bar_wmean

    chosen, straddle = trades.straddle(consts["min_minutes"])  # per bar: the chosen expiry's settlement, -1: none
    counted = trades.bar >= 0
    mine = counted & (trades.settle_ns == chosen[np.where(counted, trades.bar, 0)]) if trades.n_bars else counted
    vwap = bar_wmean(np.where(mine, trades.bar, -1), trades.price, trades.size, trades.n_bars)
    with np.errstate(invalid="ignore", divide="ignore"):
        return vwap / straddle - 1.0


for op in (
    Operator(
        "net_delta_flow",
        (TRADES_PARAM,),
        CHAIN,
        f"net delta of the bar's option trades: sum(sign x size x delta x multiplier) over every expiry, {SIGNED}; "
        f"{GREEKS} (delta: dV/dF)",
        UNSIGNED,
        numpy=_flow("delta"),
    ),
    Operator(
        "net_gamma_flow",
        (TRADES_PARAM,),
        CHAIN,
        f"net gamma of the bar's option trades: sum(sign x size x gamma x multiplier), {SIGNED}; {GREEKS} "
        "(gamma: d2V/dF2)",
        UNSIGNED,
        numpy=_flow("gamma"),
    ),
    Operator(
        "net_vega_flow",
        (TRADES_PARAM,),
        CHAIN,
        f"net vega of the bar's option trades: sum(sign x size x vega x multiplier), {SIGNED}; {GREEKS} (vega: "
        "dV/dsigma per unit of volatility, x 0.01 per vol point)",
        UNSIGNED,
        numpy=_flow("vega"),
    ),
    Operator(
        "option_ofi",
        (ROWS_PARAM,),
        CHAIN,
        "order flow imbalance of the chain's quotes: at each quote of a contract in the bar, the change of its bid "
        "size minus the change of its ask size since that contract's previous quote, summed over the chain "
        "(never differenced across contracts)",
        "a contract's first quote in the session is no change; a NaN size makes its changes NaN (skipped); bar "
        "without a change: 0; bar whose changes are all NaN: NaN; a day without a quote in the session: NaN",
        numpy=_ofi,
    ),
    Operator(
        "option_spread_pct_vw",
        (TRADES_PARAM,),
        CHAIN,
        "size-weighted mean of the quoted spread over the mid, (ask - bid) / mid, of the quote prevailing "
        "strictly before each of the bar's option trades (a quote at the trade's own time comes after it)",
        "trades without a two-sided quote before them (none yet, a side missing or zero, bid > ask) are left "
        "out; NaN for a bar without any (a bar without trades, a day without quotes)",
        numpy=_spread_pct_vw,
    ),
    Operator(
        "option_vwap_deviation",
        (TRADES_PARAM, EXPIRY_PARAM),
        CHAIN,
        "VWAP of the bar's trades of the chosen expiry over its ATM straddle, minus 1: the straddle is the call's "
        "plus the put's mid at the strike nearest the forward, among the strikes whose call and put both have a "
        "two-sided quote, in the snapshot at the bar end (ties: the lower strike)",
        "NaN for a bar without a trade of that expiry, or where no expiry meets the rule, the expiry has no "
        "forward or no such strike",
        numpy=_vwap_deviation,
    ),
):
    register(op)
