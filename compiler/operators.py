"""The operator registry: the single source of truth for every operator a formula may use.

Each operator is registered once with its signature, grain rule, ``(left, right)`` window rule, a
one-line doc and its edge cases. ``fspec ops``, the docs, the type checker, the code generator and the
reference evaluator in the tests all read this table.

Grain rules (``kind``):
    elementwise  per row of whatever grain its inputs have (tick rows or bars); inputs must share a grain
    tick         tick grain in, tick grain out (state runs over the session's ticks in time order)
    shift        tick in -> tick out, or bar in -> bar out (``lag``, ``diff``)
    reducer      tick grain in -> one value per bar
    bar          bar grain in -> bar grain out (windows over bars)

Window rule: the bars an operator reads relative to the current bar, ``(left, right)``; ``left`` bars of
history, ``right`` bars of future. Rules compose up the tree and across features; ``right > 0`` is
lookahead and only targets may have it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

ELEMENTWISE, TICK, SHIFT, REDUCER, BAR = "elementwise", "tick", "shift", "reducer", "bar"


@dataclass(frozen=True)
class Window:
    """Bars read around the current bar: ``left`` back, ``right`` ahead.

    ``sessions`` counts whole earlier sessions needed on top of ``left`` bars, and ``anchored`` marks a value
    that depends on its session's start (a session-local operator over an input with history): reading such
    a value even one bar back across a session boundary needs that whole earlier session.
    """

    left: int = 0
    right: int = 0
    sessions: int = 0
    anchored: bool = False

    def __or__(self, other: Window) -> Window:
        return Window(
            max(self.left, other.left),
            max(self.right, other.right),
            max(self.sessions, other.sessions),
            self.anchored or other.anchored,
        )


@dataclass(frozen=True)
class Param:
    """``expr`` parameters take formulas; ``int`` and ``number`` parameters take constants."""

    name: str
    kind: str = "expr"
    default: float | None = None
    minimum: float | None = None


WindowRule = Callable[[Window, dict[str, float]], Window]


def _same(w: Window, _: dict[str, float]) -> Window:
    return w


def _back(key: str, extra: int = 0) -> WindowRule:
    return lambda w, c: replace(w, left=w.left + int(c[key]) + extra, right=w.right - int(c[key]) - extra)


def _rolling(w: Window, c: dict[str, float]) -> Window:
    return replace(w, left=w.left + int(c["n"]) - 1)


def _lead(w: Window, c: dict[str, float]) -> Window:
    return replace(w, left=max(w.left - int(c["k"]), 0), right=w.right + int(c["k"]))


def _diff_bar(w: Window, c: dict[str, float]) -> Window:
    return replace(w, left=w.left + int(c["k"]))


@dataclass(frozen=True)
class Operator:
    name: str
    params: tuple[Param, ...]
    kind: str
    doc: str
    edge: str = ""
    window: WindowRule = _same
    target_only: bool = False
    session_local: bool = False  # restarts at each session start (no warm-up from earlier sessions)

    @property
    def signature(self) -> str:
        parts = []
        for p in self.params:
            parts.append(p.name if p.default is None else f"{p.name}={p.default:g}")
        return f"{self.name}({', '.join(parts)})"

    @property
    def expr_params(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params if p.kind == "expr")


REGISTRY: dict[str, Operator] = {}


def register(op: Operator) -> Operator:
    if op.name in REGISTRY:
        raise ValueError(f"operator {op.name} registered twice")
    REGISTRY[op.name] = op
    return op


X = (Param("x"),)
XY = (Param("x"), Param("y"))
NAN_IN = "NaN in -> NaN out"

for _name, _doc in [
    ("add", "x + y"),
    ("sub", "x - y"),
    ("mul", "x * y"),
    ("div", "x / y; x/0 is +-inf and 0/0 is NaN (IEEE)"),
]:
    register(Operator(_name, XY, ELEMENTWISE, _doc, NAN_IN))
register(Operator("pow", XY, ELEMENTWISE, "x ** y", "NaN in -> NaN out, except NaN ** 0 = 1 and 1 ** NaN = 1 (IEEE)"))
for _name, _doc in [
    ("lt", "x < y"),
    ("le", "x <= y"),
    ("gt", "x > y"),
    ("ge", "x >= y"),
    ("eq", "x == y"),
    ("ne", "x != y"),
]:
    register(Operator(_name, XY, ELEMENTWISE, f"{_doc} as 1.0 / 0.0", "a comparison with NaN is 0.0 (ne: 1.0)"))
register(Operator("and_", XY, ELEMENTWISE, "x and y as 1.0 / 0.0 (nonzero is true)", "NaN counts as true"))
register(Operator("or_", XY, ELEMENTWISE, "x or y as 1.0 / 0.0 (nonzero is true)", "NaN counts as true"))
register(Operator("not_", X, ELEMENTWISE, "not x as 1.0 / 0.0", "not NaN is 0.0"))
register(Operator("neg", X, ELEMENTWISE, "-x", NAN_IN))
register(Operator("log", X, ELEMENTWISE, "natural logarithm", "log(0) = -inf, log(<0) = NaN"))
register(Operator("exp", X, ELEMENTWISE, "e ** x", NAN_IN))
register(Operator("sqrt", X, ELEMENTWISE, "square root", "sqrt(<0) = NaN"))
register(Operator("abs", X, ELEMENTWISE, "absolute value", NAN_IN))
register(Operator("sign", X, ELEMENTWISE, "-1, 0 or 1 by the sign of x", NAN_IN))
register(
    Operator(
        "where",
        (Param("cond"), Param("x"), Param("y")),
        ELEMENTWISE,
        "x where cond is nonzero, else y",
        "a NaN cond counts as true",
    )
)
register(
    Operator(
        "clip",
        (Param("x"), Param("lo"), Param("hi")),
        ELEMENTWISE,
        "x limited to [lo, hi]",
        "NaN in any argument -> NaN; if lo > hi the result is lo",
    )
)
register(Operator("min2", XY, ELEMENTWISE, "the smaller of x and y", "NaN if either is NaN"))
register(Operator("max2", XY, ELEMENTWISE, "the larger of x and y", "NaN if either is NaN"))

register(
    Operator(
        "tick_rule",
        (Param("price"),),
        TICK,
        "sign of the last non-zero price change in the session (tick test)",
        "0 before the first change of the session; a NaN price is skipped (keeps the sign)",
    )
)

register(
    Operator(
        "vpin",
        (Param("price"), Param("size"), Param("bucket"), Param("n", "int", 50, 2)),
        TICK,
        "VPIN (Easley, Lopez de Prado & O'Hara 2012) after each tick: equal-volume buckets of size `bucket`, "
        "bulk volume classification V_buy = V * Phi(dP / sigma) with dP the bucket's close-to-close price "
        "change and sigma the std (ddof 1) of dP over the last n buckets; the mean of |V_buy - V_sell| / V "
        "over the last n buckets",
        "NaN until n buckets of the session are complete; the first bucket's dP is from the session's first "
        "usable trade; with fewer than 2 buckets or sigma = 0 a bucket counts as half buys (imbalance 0); "
        "a trade larger than the room in a bucket closes "
        "it at its price and its rest fills floor(rest / bucket) whole buckets of its own (dP = 0, imbalance 0) "
        "and opens the next; NaN price, NaN or infinite size, or size <= 0, is skipped; "
        "bucket is a number or parameter (NaN or <= 0: "
        "no buckets, NaN); restarts each session",
    )
)
register(
    Operator(
        "lag",
        (Param("x"), Param("k", "int", 1, 1)),
        SHIFT,
        "x from k rows earlier (ticks: k ticks, within the session; bars: k bars)",
        "NaN for the first k ticks of a session; bars: NaN where no bar k back was loaded",
        window=lambda w, c: w if c.get("_grain") == "tick" else _back("k")(w, c),
    )
)
register(
    Operator(
        "diff",
        (Param("x"), Param("k", "int", 1, 1)),
        SHIFT,
        "x - lag(x, k)",
        "NaN for the first k ticks of a session; bars: NaN where no bar k back was loaded",
        window=lambda w, c: w if c.get("_grain") == "tick" else _diff_bar(w, c),
    )
)

for _name, _doc, _edge in [
    ("sum", "sum of the bar's values", "empty bar -> 0; NaN values are skipped"),
    ("count", "number of non-NaN values in the bar", "empty bar -> 0"),
    ("mean", "mean of the bar's values", "empty bar -> NaN; NaN values are skipped"),
    ("first", "first non-NaN value in the bar", "empty bar -> NaN"),
    ("last", "last non-NaN value in the bar", "empty bar -> NaN (wrap in ffill to carry the last known value)"),
    ("min", "smallest value in the bar", "empty bar -> NaN; NaN values are skipped"),
    ("max", "largest value in the bar", "empty bar -> NaN; NaN values are skipped"),
    ("std", "sample standard deviation (ddof = 1) of the bar's values", "fewer than 2 values -> NaN"),
    (
        "bipower",
        "sum of |x_i| * |x_(i-1)| over consecutive non-NaN values inside the bar",
        "fewer than 2 values -> 0; a NaN is skipped, so the values around it pair up; "
        "multiply by pi / 2 for bipower variation",
    ),
]:
    register(Operator(_name, X, REDUCER, _doc, _edge))
register(
    Operator(
        "wmean",
        (Param("x"), Param("w")),
        REDUCER,
        "weighted mean sum(x*w)/sum(w) of the bar's rows (e.g. VWAP)",
        "empty bar or zero weight -> NaN; rows where x or w is NaN are skipped",
    )
)

N = Param("n", "int", None, 1)
register(
    Operator(
        "rolling_sum",
        (Param("x"), N),
        BAR,
        "sum over the last n bars",
        "NaN until n bars exist; a NaN inside the window gives NaN",
        window=_rolling,
    )
)
register(
    Operator(
        "rolling_mean",
        (Param("x"), N),
        BAR,
        "mean over the last n bars",
        "NaN until n bars exist; a NaN inside the window gives NaN",
        window=_rolling,
    )
)
register(
    Operator(
        "rolling_std",
        (Param("x"), Param("n", "int", None, 2)),
        BAR,
        "sample standard deviation (ddof = 1) over the last n bars",
        "NaN until n bars exist; a NaN inside the window gives NaN",
        window=_rolling,
    )
)
register(
    Operator(
        "rolling_min",
        (Param("x"), N),
        BAR,
        "minimum over the last n bars",
        "NaN until n bars exist; a NaN inside the window gives NaN",
        window=_rolling,
    )
)
register(
    Operator(
        "rolling_max",
        (Param("x"), N),
        BAR,
        "maximum over the last n bars",
        "NaN until n bars exist; a NaN inside the window gives NaN",
        window=_rolling,
    )
)
register(
    Operator(
        "rolling_corr",
        (Param("x"), Param("y"), Param("n", "int", None, 2)),
        BAR,
        "Pearson correlation of x and y over the last n bars",
        "NaN until n bars exist, if any NaN is in the window, or if either side is constant",
        window=_rolling,
    )
)
register(
    Operator(
        "ewm_mean",
        (Param("x"), Param("span", "number", None, 1)),
        BAR,
        "exponentially weighted mean, alpha = 2 / (span + 1), restarting each session",
        "starts at the session's first non-NaN value; NaN values are skipped (carry the mean); "
        "m = (1 - alpha) m + alpha x in IEEE arithmetic, so an infinite input stays infinite",
        session_local=True,
    )
)
register(
    Operator(
        "ffill",
        X,
        BAR,
        "carry the last non-NaN value forward within the session",
        "NaN until the session's first non-NaN value",
        session_local=True,
    )
)
register(
    Operator(
        "session_cumsum", X, BAR, "running sum since the session open", "NaN values count as 0", session_local=True
    )
)
register(
    Operator(
        "lead",
        (Param("x"), Param("k", "int", 1, 1)),
        BAR,
        "x from k bars later, within the session (targets only)",
        "NaN for the last k bars of the session",
        window=_lead,
        target_only=True,
        session_local=True,
    )
)

# Names users reach for that would read the future or the whole sample: each gets its own message.
FORBIDDEN: dict[str, tuple[str, str]] = {
    "bfill": ("bfill fills from later bars: it reads the future", "use ffill(x)"),
    "backfill": ("backfill fills from later bars: it reads the future", "use ffill(x)"),
    "shift": ("shift is ambiguous about direction", "use lag(x, k) for the past; lead(x, k) only in targets"),
    "centered_mean": ("a centred window reads the future", "use rolling_mean(x, n), which ends at this bar"),
    "rolling_center": ("a centred window reads the future", "use rolling_mean(x, n), which ends at this bar"),
    "zscore": (
        "zscore over the data set is a whole-sample statistic",
        "use (x - rolling_mean(x, n)) / rolling_std(x, n)",
    ),
    "rank": ("rank over the data set is a whole-sample statistic", "use a rolling window"),
    "cummax": ("cummax over the data set depends on the sample start", "use rolling_max(x, n)"),
}

# Names of constants that depend only on the interval and the session.
CONSTANTS: dict[str, str] = {
    "pi": "3.141592653589793",
    "interval_seconds": "the bar width in seconds",
    "periods_per_year": "trading_days_per_year * session seconds / interval seconds (annualizes a per-bar variance)",
    "bars_per_session": "number of bars in one session",
}
