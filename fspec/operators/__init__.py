"""The operator library: every operator a formula may use, each defined once with its signature, grain rule,
window rule, doc, edge cases and every lowering it has (see :mod:`fspec.operators.core`).

Operators live in the module of their family, registered in the order ``fspec ops`` lists them:
:mod:`~fspec.operators.elementwise`, :mod:`~fspec.operators.state` (tick state and shifts),
:mod:`~fspec.operators.reducers`, :mod:`~fspec.operators.windows` (bar windows),
:mod:`~fspec.operators.statistics` (rolling statistics over bar windows), :mod:`~fspec.operators.cross`
(cross-sections of a universe), :mod:`~fspec.operators.events` (values at the events of an event grid) and
:mod:`~fspec.operators.chain` (option chains). Adding one touches its family's module
and its test.
"""

from __future__ import annotations

from fspec.operators import chain, cross, elementwise, events, reducers, state, statistics, windows
from fspec.operators.core import (
    BAR,
    CHAIN,
    CROSS,
    ELEMENTWISE,
    EVENT,
    REDUCER,
    REGISTRY,
    SHIFT,
    TICK,
    Operator,
    Param,
    ReducerCode,
    StateVar,
    TickState,
    Window,
    bar_function,
    register,
)

# Names users reach for that would read the future or the whole sample: each gets its own message.
FORBIDDEN: dict[str, tuple[str, str]] = {
    "bfill": ("bfill fills from later bars: it reads the future", "use ffill(x)"),
    "backfill": ("backfill fills from later bars: it reads the future", "use ffill(x)"),
    "shift": ("shift is ambiguous about direction", "use lag(x, k) for the past; lead(x, k) only in targets"),
    "centered_mean": ("a centred window reads the future", "use rolling_mean(x, n), which ends at this bar"),
    "rolling_center": ("a centred window reads the future", "use rolling_mean(x, n), which ends at this bar"),
    "rank": (
        "rank over the data set is a whole-sample statistic",
        "use rolling_rank(x, n), the rank within the last n bars",
    ),
    "cummax": ("cummax over the data set depends on the sample start", "use rolling_max(x, n)"),
}

# Values per bar of the grid, known without data: bar-level inputs of formulas (not of tick expressions).
BAR_CONSTANTS: dict[str, str] = {
    "bar_index": "position of the bar in its session: 0 at the session's first bar",
    "time_of_day": "seconds from the session open to the bar's start (0 at the first bar)",
}

# Names of constants that depend only on the interval and the session, then the per-bar ones.
CONSTANTS: dict[str, str] = {
    "pi": "3.141592653589793",
    "interval_seconds": "the bar width in seconds",
    "periods_per_year": "trading_days_per_year * session seconds / interval seconds (annualizes a per-bar variance)",
    "bars_per_session": "number of bars in one session",
    **BAR_CONSTANTS,
}

__all__ = [
    "BAR",
    "BAR_CONSTANTS",
    "CHAIN",
    "CONSTANTS",
    "CROSS",
    "ELEMENTWISE",
    "EVENT",
    "FORBIDDEN",
    "REDUCER",
    "REGISTRY",
    "SHIFT",
    "TICK",
    "Operator",
    "Param",
    "ReducerCode",
    "StateVar",
    "TickState",
    "Window",
    "bar_function",
    "chain",
    "cross",
    "elementwise",
    "events",
    "reducers",
    "register",
    "state",
    "statistics",
    "windows",
]
