"""Operators with state over a session's ticks (``tick_rule``, ``vpin``) and the shifts ``lag`` and ``diff``,
which run over ticks inside a kernel or over bars.

A tick operator's ``state`` gives the variables it carries through the session and the statements that
update them at each tick (:class:`TickState`); ``n`` makes its variable names unique in the kernel.
"""

from __future__ import annotations

import numpy as np

from fspec.operators.core import SHIFT, TICK, Operator, Param, StateVar, TickState, Window, bar_function, register


def _tick_rule(n: int, a: list[str], _: dict[str, float]) -> TickState:
    x = a[0]
    # Two selects, not an if/elif: on random ticks a branch on the price change is mispredicted about half
    # the time. A change that is NaN (a NaN price, or inf - inf) compares false both ways and keeps the
    # sign, and a NaN price keeps the last price.
    return TickState(
        (StateVar(f"last_px{n}", "nan"), StateVar(f"sgn{n}", "0.0")),
        (
            f"move{n} = {x} - last_px{n}",
            f"sgn{n} = 1.0 if move{n} > 0.0 else sgn{n}",
            f"sgn{n} = -1.0 if move{n} < 0.0 else sgn{n}",
            f"last_px{n} = {x} if {x} == {x} else last_px{n}",
        ),
        f"sgn{n}",
    )


register(
    Operator(
        "tick_rule",
        (Param("price"),),
        TICK,
        "sign of the last non-zero price change in the session (tick test)",
        "0 before the first change of the session; a NaN price is skipped (keeps the sign)",
        state=_tick_rule,
    )
)


def _vpin(k: int, a: list[str], consts: dict[str, float]) -> TickState:
    price, size, bucket = a
    n = int(consts["n"])
    state = (
        StateVar(f"vp_fill{k}", "0.0", "volume in the open bucket"),
        StateVar(f"vp_count{k}", "0", "completed buckets this session", is_int=True),
        StateVar(f"vp_close{k}", "nan", "price at the last bucket close (first trade before any)"),
        StateVar(f"vp_dp{k}", f"filled({n}, 0.0)", "ring of bucket price changes", size=n, is_array=True),
        StateVar(f"vp_oi{k}", f"filled({n}, 0.0)", "ring of bucket order imbalances", size=n, is_array=True),
        StateVar(f"vp_value{k}", "nan"),
    )
    # A trade that fills the open bucket closes it at its price; what it has left fills whole buckets of its
    # own (dP = 0, so imbalance 0) and opens the next. Whole buckets are counted, not looped over: only
    # the last n reach the rings, so a tiny bucket cannot make one trade cost size / bucket steps.
    lines = (
        f"if {price} == {price} and 0.0 < {size} < np.inf and {bucket} > 0.0:",
        f"    if vp_close{k} != vp_close{k}:",
        f"        vp_close{k} = {price}",
        f"    room{k} = {bucket} - vp_fill{k}",
        f"    if {size} < room{k}:",
        f"        vp_fill{k} += {size}",
        "    else:",
        f"        slot{k} = vp_count{k} % {n}",
        f"        vp_dp{k}[slot{k}] = {price} - vp_close{k}",
        f"        vp_close{k} = {price}",
        f"        vp_count{k} += 1",
        f"        vp_oi{k}[slot{k}] = vpin_imbalance(vp_dp{k}, min(vp_count{k}, {n}), slot{k})",
        f"        rest{k} = {size} - room{k}",
        f"        whole{k} = np.floor(rest{k} / {bucket})",
        f"        for step{k} in range(int(min(whole{k}, {n}.0))):",
        f"            vp_dp{k}[(vp_count{k} + step{k}) % {n}] = 0.0",
        f"            vp_oi{k}[(vp_count{k} + step{k}) % {n}] = 0.0",
        f"        vp_count{k} += int(min(whole{k}, 1e18))",
        f"        vp_fill{k} = max(rest{k} - whole{k} * {bucket}, 0.0)",
        f"        if vp_count{k} >= {n}:",
        f"            vp_value{k} = mean_of(vp_oi{k})",
    )
    return TickState(state, lines, f"vp_value{k}")


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
        state=_vpin,
    )
)


def _shift_state(op: str) -> object:
    def state(n: int, a: list[str], consts: dict[str, float]) -> TickState:
        x, k = a[0], int(consts["k"])
        if k == 1:
            value = f"{x} - prev{n}" if op == "diff" else f"prev{n}"
            return TickState((StateVar(f"prev{n}", "nan"),), (f"cur{n} = {value}", f"prev{n} = {x}"), f"cur{n}")
        value = f"{x} - ring{n}[pos{n}]" if op == "diff" else f"ring{n}[pos{n}]"
        return TickState(
            (StateVar(f"ring{n}", f"filled({k}, nan)", size=k, is_array=True), StateVar(f"pos{n}", "0", is_int=True)),
            (f"cur{n} = {value}", f"ring{n}[pos{n}] = {x}", f"pos{n} = (pos{n} + 1) % {k}"),
            f"cur{n}",
        )

    return state


def _back(w: Window, c: dict[str, float]) -> Window:
    if c.get("_grain") == "tick":
        return w
    k = int(c["k"])
    return Window(w.left + k, w.right - k, w.sessions, w.anchored)


def _diff_window(w: Window, c: dict[str, float]) -> Window:
    if c.get("_grain") == "tick":
        return w
    return Window(w.left + int(c["k"]), w.right, w.sessions, w.anchored)


@bar_function
def lag_bars(x, k, session):
    out = np.full(x.shape, np.nan)
    for r in range(x.shape[0]):
        for i in range(k, x.shape[1]):
            out[r, i] = x[r, i - k]
    return out


def diff_bars(x, k, session):
    return x - lag_bars(x, k, session)


register(
    Operator(
        "lag",
        (Param("x"), Param("k", "int", 1, 1)),
        SHIFT,
        "x from k rows earlier (ticks: k ticks, within the session; bars: k bars)",
        "NaN for the first k ticks of a session; bars: NaN where no bar k back was loaded",
        window=_back,
        state=_shift_state("lag"),  # type: ignore[arg-type]
        bar=lag_bars,
        bar_constants=("k",),
    )
)
register(
    Operator(
        "diff",
        (Param("x"), Param("k", "int", 1, 1)),
        SHIFT,
        "x - lag(x, k)",
        "NaN for the first k ticks of a session; bars: NaN where no bar k back was loaded",
        window=_diff_window,
        state=_shift_state("diff"),  # type: ignore[arg-type]
        bar=diff_bars,
        bar_constants=("k",),
    )
)


def _median3(n: int, a: list[str], _: dict[str, float]) -> TickState:
    x = a[0]
    return TickState(
        (
            StateVar(f"m3_older{n}", "nan", "the value two ticks back"),
            StateVar(f"m3_last{n}", "nan", "the value one tick back"),
            StateVar(f"m3_seen{n}", "0", "ticks seen this session", is_int=True),
        ),
        (
            f"if m3_seen{n} < 2 or {x} != {x} or m3_older{n} != m3_older{n} or m3_last{n} != m3_last{n}:",
            f"    med{n} = nan",
            "else:  # the median of three: max(min(a, b), min(max(a, b), c))",
            f"    med{n} = max(min(m3_older{n}, m3_last{n}), min(max(m3_older{n}, m3_last{n}), {x}))",
            f"m3_older{n} = m3_last{n}",
            f"m3_last{n} = {x}",
            f"m3_seen{n} += 1",
        ),
        f"med{n}",
    )


def _median3_reference(x: np.ndarray) -> np.ndarray:
    out = np.full(x.shape[0], np.nan)
    if x.shape[0] >= 3:
        out[2:] = np.median(np.stack([x[:-2], x[1:-1], x[2:]]), axis=0)  # NaN wherever one of the three is
    return out


register(
    Operator(
        "median3",
        (Param("x"),),
        TICK,
        "median of x at this tick and the two ticks before it in the session",
        "NaN for the session's first two ticks and wherever one of the three is NaN; restarts each session",
        state=_median3,
        reference=_median3_reference,
        examples=("sum(median3(trades.price) - trades.price)", "last(median3(trades.size))"),
    )
)
