"""Property tests (issue 3): random well-typed formulas drawn from the operator registry.

For every hypothesis example a batch of random formulas becomes the features (and a few targets) of ONE
throw-away project, so the numba tick kernel is compiled once per example, not once per formula. Then:

(a) kernel = reference: every output column of ``fspec run`` equals the plain pandas evaluator in
    ``reference.py`` (same tolerances as ``test_kernels_vs_reference.py``: ``mismatches()``, which also requires
    identical NaN / +-inf patterns, so degenerate formulas such as ``log(trades.price - 100)`` or
    ``x / (trades.size - 100)`` must agree on their NaN and inf rows too);
(b) truncation invariance: ``fspec audit`` (data cut at random bar boundaries) finds no violation for any
    accepted feature;
(c) rejected formulas are never run: formulas that put ``lead()`` inside a feature (also where an outer
    ``lag()`` shifts the window back to the past), read a target, reduce a bar series over the whole sample
    or use a forbidden name are rejected by ``check()`` with ``lookahead`` diagnostics in their own spec file,
    and ``compile_project`` refuses them (no manifest, no kernel).

Operators are drawn by iterating the registry by kind (``operators.ELEMENTWISE / TICK / SHIFT / REDUCER / BAR``),
so a newly registered operator is drawn automatically; constants come from each operator's ``params``
(kind ``int`` / ``number``, ``minimum`` and ``maximum``).

Keeping the comparison exact enough. Kernels and the reference sum in different orders (pandas groupby vs
a loop, numpy pairwise sums vs running sums) and use different libm implementations (numba / numexpr /
numpy's SIMD log, exp and pow), so two correct implementations may differ in the last bits. That is
harmless for continuous operators but not where the result jumps (a comparison, ``sign``, ``where``'s
condition, a division by something that is 0 in exact arithmetic, ``log`` / ``sqrt`` / ``pow`` near 0). The
data is therefore dyadic (prices on a 1/64 grid, integer sizes: every sum of them is exact in float64), and
the generator tracks how exactly each subexpression is computed (``EXACT`` dyadic with few bits: bit-identical
whatever the order; ``DET``: one correctly rounded IEEE operation on such inputs, bit-identical too; ``NOISY``:
may differ in the last bits) and feeds jumping operators only ``DET`` or better inputs. Ill-conditioned
statistics (``std``, ``rolling_std``, ``rolling_corr``, the rolling moments of ``fspec.operators.statistics``)
get small exact inputs; ``wmean``'s weights are exact.
IEEE special values (inf, NaN, -0.0) are never avoided: they reach every operator.

A formula that crashes compile or run is reported (and left out so the others are still checked). On a failure
the test recompiles every bar-level subexpression of the failing formulas and names the smallest one that still
fails. ``test_formulas_the_properties_found`` pins the smallest formulas these properties have found, so they are
checked on every run whatever hypothesis draws. Bounded: 5 examples (``FSPEC_PROPERTY_EXAMPLES``) of 40 formulas
x 2 instruments x 2 intervals x 3 days, plus the pinned batch: 30-50 s on 2 cores (numba JIT dominates).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import reference
from conftest import FspecProject, make_project
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from reference import Reference, column_name, mismatches

import fspec.operators as ops
from fspec.compiler.build import check, compile_project
from fspec.compiler.formula import Call, Name, Node, Num, parse, to_source, transform
from fspec.errors import SpecError
from fspec.operators import REGISTRY
from fspec.runtime.audit import audit
from fspec.runtime.manifest import load_manifest
from fspec.runtime.run import Engine, with_dependencies

# ---- the synthetic project -------------------------------------------------------------------------------

DAYS = ["2024-03-07", "2024-03-08", "2024-03-11"]  # Thu, Fri, and Mon after the US DST change of 2024-03-10
INSTRUMENTS = {"aaa": ("AAA", 2.0, 256.0), "bbb": ("BBB", 0.5, 128.0)}  # symbol, scale, lot
INTERVALS = [30, 60]
SESSION_SECONDS = 600  # 10:00 to 10:10 New York: 20 bars of 30s, 10 of 60s

PROJECT: dict[str, Any] = {
    "spec_version": 1,
    "sources": {
        "trades": {
            "path": "data/{symbol}/{date}_trades.parquet",
            "time": "ts",
            "columns": {"price": "float64", "size": "float64"},
            "asof": {"source": "quotes", "columns": ["bid", "ask"]},
        },
        "quotes": {
            "path": "data/{symbol}/{date}_quotes.parquet",
            "time": "ts",
            "columns": {"bid": "float64", "ask": "float64"},
        },
    },
    "instruments": {k: {"symbol": s, "params": {"scale": p, "lot": q}} for k, (s, p, q) in INSTRUMENTS.items()},
    "intervals": [f"{i}s" for i in INTERVALS],
    "session": {"timezone": "America/New_York", "open": "10:00", "close": "10:10", "trading_days_per_year": 252},
}

GRID = 64.0  # prices on a 1/64 grid: sums, differences and products of them are exact in float64


def tick_data(seed: int) -> dict[str, pd.DataFrame]:
    """Trades and quotes per instrument and day: empty bars (also at the open, and one whole empty session),
    NaN prices / sizes / quotes, zero sizes, ties, ticks exactly at the open and on bar edges, rows outside
    the session; every value on a dyadic grid."""
    rng = np.random.default_rng(seed)
    data = {}
    for d, day in enumerate(DAYS):
        ymd = day.replace("-", "")
        start = pd.Timestamp(f"{day} 10:00").tz_localize("America/New_York").tz_convert("UTC")
        for inst, (symbol, _, _) in INSTRUMENTS.items():
            n = int(rng.integers(70, 170))
            secs = np.round(rng.uniform(0, SESSION_SECONDS, n), 3)
            gap = rng.uniform(0, SESSION_SECONDS - 60)
            secs = secs[(secs < gap) | (secs >= gap + rng.uniform(35, 100))]  # empty bars mid-session
            if (d + len(inst)) % 2 == 0 or rng.random() < 0.3:
                secs = secs[secs >= rng.uniform(31, 75)]  # the session opens with empty bars
            ties = rng.choice(secs, size=min(12, secs.size), replace=False)
            edges = np.array([-5.0, -0.001, 0.0, 0.0, 30.0, 60.0, 90.0, 299.999, 599.999, 600.0, 601.0])
            secs = np.sort(np.concatenate([secs, ties, ties[:4], edges]), kind="stable")
            if inst == "bbb" and d == 1:
                secs = secs[(secs < 0) | (secs >= SESSION_SECONDS)]  # a session without a single tick
            n = secs.size
            level = 100.0 + rng.integers(-24, 24) / GRID
            price = level + np.cumsum(rng.choice([-2.0, -1.0, 0.0, 0.0, 0.0, 1.0, 2.0], size=n)) / GRID
            size = rng.choice([0.0, 1.0, 2.0, 50.0, 100.0, 100.0, 100.0, 200.0, 300.0, 500.0], size=n)
            price[rng.random(n) < 0.04] = np.nan
            size[rng.random(n) < 0.04] = np.nan
            stamps = start + pd.to_timedelta(np.round(secs * 1000).astype(np.int64), unit="ms")
            data[f"data/{symbol}/{ymd}_trades.parquet"] = pd.DataFrame({"ts": stamps, "price": price, "size": size})
            # quotes: sometimes the first one comes after the open (asof bid/ask NaN for the first trades)
            q = int(rng.integers(30, 70))
            qsecs = np.sort(np.round(rng.uniform(rng.choice([-20.0, 15.0]), SESSION_SECONDS, q), 3))
            mid = level + np.cumsum(rng.choice([-1.0, 0.0, 0.0, 1.0], size=q)) / GRID
            bid = mid - rng.choice([1.0, 1.0, 2.0], size=q) / GRID
            ask = mid + rng.choice([0.0, 1.0, 2.0], size=q) / GRID
            bid[rng.random(q) < 0.05] = np.nan
            ask[rng.random(q) < 0.05] = np.nan
            qstamps = start + pd.to_timedelta(np.round(qsecs * 1000).astype(np.int64), unit="ms")
            data[f"data/{symbol}/{ymd}_quotes.parquet"] = pd.DataFrame({"ts": qstamps, "bid": bid, "ask": ask})
    return data


# ---- how exactly a value is computed ------------------------------------------------------------------

# EXACT_SMALL / EXACT: a dyadic value needing at most 24 / 52 significant bits, so every sum, difference and
# product of a few of them is exact in any order; DET: one correctly rounded IEEE operation of such values
# (bit-identical in every implementation); NOISY: may differ in the last bits between implementations.
EXACT_SMALL, EXACT, DET, NOISY = 0, 1, 2, 3


@dataclass(frozen=True)
class Expr:
    node: Node
    grain: str  # "tick", "bar" or "scalar"
    level: int
    bits: tuple[int, int] = (0, 0)  # (integer bits, fraction bits) while level <= EXACT
    subs: tuple[Expr, ...] = ()
    refs: frozenset[str] = frozenset()  # features (and targets) it names

    @property
    def text(self) -> str:
        return to_source(self.node)

    def walk(self):
        yield self
        for s in self.subs:
            yield from s.walk()


def exact(m: int, f: int) -> tuple[int, tuple[int, int]]:
    total = m + f
    return (EXACT_SMALL if total <= 24 else EXACT if total <= 52 else DET), (m, f)


def _worst(args: list[Expr]) -> int:
    return max((a.level for a in args), default=EXACT_SMALL)


def _exact_or(args: list[Expr], m: int, f: int) -> tuple[int, tuple[int, int]]:
    """One operation: exact while the inputs are and the result fits, else one IEEE rounding (or worse)."""
    return exact(m, f) if _worst(args) <= EXACT else (max(DET, _worst(args)), (0, 0))


def _accumulate(args: list[Expr], m: int, f: int) -> tuple[int, tuple[int, int]]:
    """A sum of many values: exact only if every partial sum is, else it depends on the order (NOISY)."""
    return exact(m, f) if _worst(args) <= EXACT and m + f <= 52 else (NOISY, (0, 0))


def _m(args: list[Expr]) -> int:
    return max(a.bits[0] for a in args)


def _f(args: list[Expr]) -> int:
    return max(a.bits[1] for a in args)


JUMPS = {"lt", "le", "gt", "ge", "eq", "ne", "and_", "or_", "not_", "sign", "tick_rule"}
SAME = {"neg", "abs", "where", "clip", "min2", "max2", "lag", "ffill", "first", "last", "min", "max"}
SAME |= {"rolling_min", "rolling_max"}
WELL_CONDITIONED_ONLY = {"std", "rolling_std", "rolling_corr", "rolling_skew", "rolling_kurt"}
WELL_CONDITIONED_ONLY |= {"rolling_cov", "rolling_beta", "rolling_slope", "zscore", "rolling_hurst"}
ANY_INPUT = SAME | {"add", "sub", "mul", "exp", "diff", "sum", "count", "mean", "bipower", "wmean", "ewm_mean"}
ANY_INPUT |= {"rolling_sum", "rolling_mean", "session_cumsum"}


def needs(op: str, i: int) -> int:
    """The worst level argument ``i`` of ``op`` may have."""
    if op in JUMPS or op in ("log", "sqrt", "pow"):  # jumps, or a boundary at 0
        return DET
    if op == "where":
        return DET if i == 0 else NOISY
    if op == "div":
        return DET if i == 1 else NOISY
    if op in WELL_CONDITIONED_ONLY or (op == "wmean" and i == 1):  # wmean: sum(w) == 0 is a jump
        return EXACT_SMALL
    if op in ANY_INPUT:
        return NOISY
    return EXACT if REGISTRY[op].kind == ops.TICK else DET  # an operator this file does not know yet


def result(op: str, args: list[Expr], consts: dict[str, float]) -> tuple[int, tuple[int, int]]:
    """Level and bits of ``op`` applied to ``args`` (at most 256 ticks in a bar, 20 bars in a session)."""
    if op in JUMPS:
        return exact(1, 0)
    if op == "count":
        return exact(9, 0)
    if op == "where":
        args = args[1:]
    if op in SAME:
        return _exact_or(args, _m(args), _f(args))
    if op in ("add", "sub", "diff"):
        return _exact_or(args, _m(args) + 1, _f(args))
    if op == "mul":
        return _exact_or(args, sum(a.bits[0] for a in args), sum(a.bits[1] for a in args))
    if op in ("div", "sqrt"):  # correctly rounded
        return max(DET, _worst(args)), (0, 0)
    window = math.ceil(math.log2(consts.get("n", 1))) + 1
    sums = {
        "sum": (_m(args) + 8, _f(args)),
        "mean": (_m(args) + 8, _f(args)),
        "bipower": (2 * _m(args) + 8, 2 * _f(args)),
        "wmean": (sum(a.bits[0] for a in args) + 8, sum(a.bits[1] for a in args)),
        "rolling_sum": (_m(args) + window, _f(args)),
        "rolling_mean": (_m(args) + window, _f(args)),
        "session_cumsum": (_m(args) + 6, _f(args)),
    }
    if op in sums:
        level, bits = _accumulate(args, *sums[op])
        if op in ("mean", "wmean", "rolling_mean"):  # an exact sum divided once
            return (DET if level <= EXACT else NOISY), (0, 0)
        return level, bits
    return NOISY, (0, 0)  # log, exp, pow, std, ewm, corr, and operators this file does not know


# ---- drawing formulas ----------------------------------------------------------------------------------


def by_kind(*kinds: str) -> list[str]:
    return sorted(n for n, op in REGISTRY.items() if op.kind in kinds and not op.target_only)


COLUMNS = {"trades.price": (8, 6), "trades.size": (10, 0), "trades.bid": (8, 6), "trades.ask": (8, 6)}
# expression arguments that the registry documents as "a number or parameter" (the grain rule allows more)
SCALAR_ARGS = {("vpin", "bucket")}
NUMBERS = [0.0, 1.0, 2.0, 3.0, 0.5, 0.25, -1.0, -2.0, 100.0, 1.5, -0.5]
NAMED = {
    "scale": (2, 1),
    "lot": (9, 0),
    "interval_seconds": (7, 0),
    "bars_per_session": (6, 0),
    "periods_per_year": (14, 0),
}


def number_bits(value: float) -> tuple[int, int]:
    f = 0
    while value * 2**f != int(value * 2**f):
        f += 1
    return max(1, math.ceil(math.log2(abs(value) + 1))), f


class Drawer:
    """Draws formula trees with hypothesis's ``draw``; remembers the features drawn so far (for references)."""

    MAX_DEPTH = 3

    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]):
        self._draw = draw
        self.features: dict[str, Expr] = {}

    # ---- primitive draws -----------------------------------------------------------------------------
    def pick(self, seq):
        return self._draw(st.sampled_from(list(seq)))

    def chance(self, percent: int) -> bool:
        return self._draw(st.integers(0, 99)) < percent

    def integer(self, lo: int, hi: int) -> int:
        return self._draw(st.integers(lo, hi))

    # ---- leaves ----------------------------------------------------------------------------------------
    def constant(self) -> Expr:
        if self.chance(15):
            name = self.pick([*NAMED, "pi"])
            level, bits = exact(*NAMED[name]) if name in NAMED else (DET, (0, 0))
            return Expr(Name((name,)), "scalar", level, bits)
        value = self.pick(NUMBERS)
        return Expr(Num(value), "scalar", *exact(*number_bits(value)))

    def scalar_arg(self) -> Expr:
        """A number or a parameter, for arguments that the registry documents as such."""
        if self.chance(40):
            return Expr(Name(("lot",)), "scalar", *exact(*NAMED["lot"]))
        value = self.pick([150.0, 300.0, 777.5])
        return Expr(Num(value), "scalar", *exact(*number_bits(value)))

    def column(self) -> Expr:
        name = self.pick(sorted(COLUMNS))
        return Expr(Name(tuple(name.split("."))), "tick", *exact(*COLUMNS[name]))

    def simple_bar(self) -> Expr:
        """An exact bar leaf: a plain reducer of a column."""
        col = self.column()
        op = self.pick(["sum", "last", "first", "min", "max", "count"])
        level, bits = result(op, [col], {})
        return Expr(Call(op, (col.node,)), "bar", level, bits, (col,))

    # ---- operators ------------------------------------------------------------------------------------
    def const_value(self, op: ops.Operator, p: ops.Param) -> float:
        low = p.minimum if p.minimum is not None else (1 if p.kind == "int" else 0.5)
        if p.kind == "int":
            low = math.ceil(low)
            if op.kind == ops.TICK:
                return float(self.integer(low, low + 4))
            if op.kind in (ops.SHIFT, ops.BAR) and self.chance(15):
                return float(self.integer(low + 15, low + 45))  # reaches back over earlier sessions (or past them)
            return float(self.integer(low, low + 4))
        # numbers: sized like the data for tick operators (e.g. a volume bucket), small for bar windows, and
        # fractions (with the bounds themselves) for a number bounded above, such as a quantile's q
        high = p.maximum if p.maximum is not None else math.inf
        choices = [150.0, 300.0, 777.5] if op.kind == ops.TICK else [1.0, 1.5, 2.0, 3.0, 4.5, 10.0]
        if p.maximum is not None:
            choices = [low, high, *(low + (high - low) * t for t in (0.1, 0.25, 0.5, 0.7, 0.9))]
        return self.pick([c for c in choices if low <= c <= high] or [low])

    def call(self, name: str, args: list[Expr], grain: str) -> Expr:
        """``name(args..., constants...)``; constants given positionally, by keyword, or left to their default."""
        op = REGISTRY[name]
        nodes: list[Node] = [a.node for a in args]
        kwargs: list[tuple[str, Node]] = []
        consts: dict[str, float] = {}
        positional = True
        for p in op.params:
            if p.kind == "expr":
                continue
            if p.default is not None and self.chance(30):
                consts[p.name] = p.default
                positional = False
                continue
            value = self.const_value(op, p)
            consts[p.name] = value
            if positional and self.chance(60):
                nodes.append(Num(value))
            else:
                positional = False
                kwargs.append((p.name, Num(value)))
        level, bits = result(name, args, consts)
        refs = frozenset().union(*(a.refs for a in args)) if args else frozenset()
        return Expr(Call(name, tuple(nodes), tuple(kwargs)), grain, level, bits, tuple(args), refs)

    def elementwise(self, grain: str, depth: int) -> Expr:
        name = self.pick(by_kind(ops.ELEMENTWISE))
        params = REGISTRY[name].expr_params
        anchor = self.integer(0, len(params) - 1)  # this argument carries the grain
        args = []
        for i in range(len(params)):
            need = needs(name, i)
            if i != anchor and self.chance(35):
                arg = self.constant()
                args.append(arg if arg.level <= need else Expr(Num(2.0), "scalar", *exact(2, 0)))
            else:
                args.append(self.expr(grain, depth + 1, need))
        return self.call(name, args, grain)

    def tick(self, depth: int, need: int = NOISY) -> Expr:
        return self.expr("tick", depth, need)

    def bar(self, depth: int, need: int = NOISY) -> Expr:
        return self.expr("bar", depth, need)

    def expr(self, grain: str, depth: int, need: int) -> Expr:
        drawn = self._expr(grain, depth, need)
        if drawn.level <= need:
            return drawn
        return self.column() if grain == "tick" else self.simple_bar()

    def _expr(self, grain: str, depth: int, need: int) -> Expr:
        leaf = depth >= self.MAX_DEPTH or self.chance(20 + 15 * depth)
        if grain == "tick":
            if leaf:
                return self.column()
            kind = self.pick(["elementwise"] * 4 + ["tick", "shift"])
            if kind == "elementwise":
                return self.elementwise("tick", depth)
            name = self.pick(by_kind(ops.TICK) if kind == "tick" else by_kind(ops.SHIFT))
            op = REGISTRY[name]
            if op.kind == ops.TICK and name != "tick_rule":  # state machines over raw ticks: plain columns in
                args = [self.scalar_arg() if (name, p) in SCALAR_ARGS else self.column() for p in op.expr_params]
            else:
                args = [self.tick(depth + 1, needs(name, i)) for i in range(len(op.expr_params))]
            return self.call(name, args, "tick")
        if leaf:
            usable = [(n, e) for n, e in self.features.items() if e.level <= need]
            if usable and self.chance(30):
                name, feature = self.pick(usable)
                return Expr(Name((name,)), "bar", feature.level, feature.bits, (), frozenset({name}))
            return self.reduce(depth)
        kind = self.pick(["elementwise"] * 3 + ["reduce", "shift", "bar", "bar"])
        if kind == "elementwise":
            return self.elementwise("bar", depth)
        if kind == "reduce":
            return self.reduce(depth)
        name = self.pick(by_kind(ops.SHIFT) if kind == "shift" else by_kind(ops.BAR))
        args = [self.bar(depth + 1, needs(name, i)) for i in range(len(REGISTRY[name].expr_params))]
        return self.call(name, args, "bar")

    def reduce(self, depth: int) -> Expr:
        name = self.pick(by_kind(ops.REDUCER))
        args = [self.tick(depth + 1, needs(name, i)) for i in range(len(REGISTRY[name].expr_params))]
        return self.call(name, args, "bar")

    # ---- statically rejected formulas ------------------------------------------------------------------
    def leaky(self, targets: list[str]) -> tuple[str, str]:
        """(what, formula) for a feature the static check must reject."""
        lead = self.pick(sorted(n for n, op in REGISTRY.items() if op.target_only))
        what = self.pick(["lead inside", "lead inside", "lead then lag", "reads a target", "bar reducer", "forbidden"])
        if what == "lead inside":
            base = self.bar(0)
            spots = [e for e in base.walk() if e.grain == "bar"]
            spot = self.pick(range(len(spots)))
            inner = self.call(lead, [spots[spot]], "bar")
            tree = transform(base.node, lambda n: inner.node if n == spots[spot].node else n)
            return what, to_source(tree)
        if what == "lead then lag":  # the composed window is back in the past, but lead() is for targets only
            k = self.const_value(REGISTRY[lead], next(p for p in REGISTRY[lead].params if p.kind != "expr"))
            inner = Call(lead, (self.bar(1).node, Num(k)))
            return what, to_source(Call("lag", (inner, Num(k + self.integer(0, 2)))))
        if what == "reads a target":
            target = Expr(Name((self.pick(targets),)), "bar", NOISY)
            other = self.bar(1)
            op = self.pick(["add", "mul", "lag", "rolling_mean"])
            if op in ("add", "mul"):
                return what, to_source(Call(op, (other.node, target.node)))
            return what, to_source(Call(op, (target.node, Num(float(self.integer(2, 4))))))
        if what == "bar reducer":  # a reducer over bars is a statistic over the whole sample
            name = self.pick(by_kind(ops.REDUCER))
            return what, to_source(Call(name, tuple(self.bar(1).node for _ in REGISTRY[name].expr_params)))
        return what, to_source(Call(self.pick(sorted(ops.FORBIDDEN)), (self.bar(1).node,)))


@dataclass(repr=False)
class Batch:
    features: dict[str, Expr]
    targets: dict[str, Expr]
    leaky: list[tuple[str, str]]
    data_seed: int
    audit_seed: int
    minimize: bool = True  # on a failure, look for the smallest failing subexpression

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def __repr__(self) -> str:  # what hypothesis prints for a falsifying example
        lines = [f"Batch(data_seed={self.data_seed}, audit_seed={self.audit_seed})"]
        lines += [f"  {n} = {e.text}" for n, e in {**self.features, **self.targets}.items()]
        lines += [f"  leaky ({what}): {text}" for what, text in self.leaky]
        return "\n".join(lines)


N_FEATURES = 40
N_TARGETS = 2
N_LEAKY = 5


@st.composite
def batches(draw) -> Batch:
    drawer = Drawer(draw)
    for i in range(N_FEATURES):
        drawer.features[f"g{i:02d}"] = drawer.bar(0)
    targets = {}
    lead = sorted(n for n, op in REGISTRY.items() if op.target_only)
    for i in range(N_TARGETS):
        inner = drawer.call(drawer.pick(lead), [drawer.bar(1)], "bar")
        if drawer.chance(50):
            inner = drawer.call("sub", [inner, drawer.bar(2)], "bar")
        targets[f"target_t{i}"] = inner
    leaky = [drawer.leaky(list(targets)) for _ in range(N_LEAKY)]
    return Batch(drawer.features, targets, leaky, draw(st.integers(0, 2**31)), draw(st.integers(0, 2**31)))


# ---- checking ------------------------------------------------------------------------------------------


def feature_specs(features: dict[str, Expr], targets: dict[str, Expr]) -> dict[str, Any]:
    return {
        "spec_version": 1,
        "features": [{"name": n, "formula": e.text} for n, e in features.items()],
        "targets": [{"name": n, "formula": e.text} for n, e in targets.items()],
    }


def closure(everything: dict[str, Expr], names: set[str]) -> set[str]:
    """``names`` and every formula that depends on one of them."""
    found = set(names)
    while True:
        more = {n for n, e in everything.items() if n not in found and e.refs & found}
        if not more:
            return found
        found |= more


def compare(project: FspecProject, names: list[str]) -> dict[str, list[str]]:
    """feature name -> the (instrument, interval, day) columns where the run's file != the reference."""
    ref = Reference(project.root)
    problems: dict[str, list[str]] = {}
    for interval in INTERVALS:
        result = ref.evaluate(interval)
        for day in DAYS:
            got = project.output(day, interval)
            expected = result.frame(day)
            assert (got["ts_event"].to_numpy() == expected["ts_event"].to_numpy()).all(), (day, interval)
            for name in names:
                for inst in INSTRUMENTS:
                    col = column_name(name, interval, inst)
                    bad = mismatches(got[col].to_numpy(), expected[col].to_numpy())
                    if bad:
                        rows = "; ".join(
                            f"row {i}: got {got[col].iloc[i]!r}, expected {expected[col].iloc[i]!r}" for i in bad[:3]
                        )
                        problems.setdefault(name, []).append(f"{col} on {day}: {len(bad)} rows differ ({rows})")
    return problems


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def compile_crashes(root: Path, features: dict[str, Expr], targets: dict[str, Expr]) -> dict[str, str]:
    """The formulas whose compilation raises (each compiled with only what it depends on)."""
    everything = features | targets
    found: dict[str, str] = {}
    for i, name in enumerate(everything):
        deps = {name}
        while more := {r for n in deps for r in everything[n].refs} - deps:
            deps |= more
        if deps & set(found):
            continue
        own_target = {name: targets[name]} if name in targets else {}
        specs = feature_specs({n: e for n, e in features.items() if n in deps}, own_target)
        one = make_project(root / f"c{i}", {"project.yaml": PROJECT, "features.yaml": specs})
        try:
            one.compile()
        except SpecError:
            raise
        except Exception as exc:
            found[name] = "compile: " + _error(exc)
    return found


def run_crashes(root: Path) -> dict[str, str]:
    """The formulas whose computation raises (each computed with only what it depends on)."""
    manifest = load_manifest(root)
    engine = Engine(manifest)
    found: dict[str, str] = {}
    for key in manifest.keys:  # in dependency order
        name = key[0]
        if name in found or any(dep[0] in found for dep in manifest.deps(key)):
            continue
        for day in DAYS:
            for interval in INTERVALS:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        engine.compute(day, interval, with_dependencies(manifest, [key]))
                except Exception as exc:
                    found.setdefault(name, "run: " + _error(exc))
    return found


@dataclass
class Outcome:
    project: FspecProject
    crashed: dict[str, str]  # formulas that crash compile or run (and are left out of the project)
    problems: dict[str, list[str]]  # kernel != reference
    features: list[str]  # the features in the project that ran


def build_and_compare(root: Path, features: dict[str, Expr], targets: dict[str, Expr], seed: int) -> Outcome:
    """Check, compile and run all formulas in one project and compare them with the reference. A formula that
    crashes is reported and left out (with the formulas that read it), and the rest runs again."""
    everything = features | targets
    crashed: dict[str, str] = {}
    for attempt in range(4):
        drop = closure(everything, set(crashed))
        keep_f = {n: e for n, e in features.items() if n not in drop}
        keep_t = {n: e for n, e in targets.items() if n not in drop}
        specs = feature_specs(keep_f, keep_t)
        project = make_project(
            root / f"run{attempt}", {"project.yaml": PROJECT, "features.yaml": specs}, tick_data(seed)
        )
        diagnostics = check(project.root).diagnostics
        assert not diagnostics, "check() rejected well-typed, leak-free formulas:\n" + "\n".join(
            d.render() for d in diagnostics
        )
        try:
            project.compile()
        except SpecError:
            raise
        except Exception as exc:
            new = compile_crashes(root / f"crash{attempt}", keep_f, keep_t)
            if not new:
                raise AssertionError(f"compile failed and no single formula explains it: {_error(exc)}") from exc
            crashed |= new
            continue
        try:
            project.run()
        except Exception as exc:
            new = run_crashes(project.root)
            if not new:
                raise AssertionError(f"run failed and no single formula explains it: {_error(exc)}") from exc
            crashed |= new
            continue
        return Outcome(project, crashed, compare(project, [*keep_f, *keep_t]), list(keep_f))
    raise AssertionError(f"formulas keep crashing: {crashed}")


def smallest_failures(root: Path, batch: Batch, failing: list[str]) -> list[str]:
    """Every bar-level subexpression of the failing formulas as a feature of its own: the smallest that still
    crashes or differs from the reference, per failing formula."""
    everything = batch.features | batch.targets
    subs: dict[str, Expr] = {}
    owner: dict[str, str] = {}
    for name in failing:
        seen = set()
        for e in everything[name].walk():
            if e.grain == "bar" and isinstance(e.node, Call) and e.text not in seen:
                seen.add(e.text)
                key = f"{'target_' if name in batch.targets else ''}m{len(subs):03d}"  # lead() only in targets
                subs[key], owner[key] = e, name
    features = batch.features | {k: e for k, e in subs.items() if not k.startswith("target_")}
    targets = batch.targets | {k: e for k, e in subs.items() if k.startswith("target_")}
    outcome = build_and_compare(root, features, targets, batch.data_seed)
    bad = {k: [v] for k, v in outcome.crashed.items()} | outcome.problems
    report = []
    for name in failing:
        mine = [k for k in subs if owner[k] == name and k in bad]
        if not mine:
            report.append(f"{name}: no smaller subexpression fails on its own")
            continue
        key = min(mine, key=lambda k: (len(subs[k].text), k))
        lines = [f"{name}: smallest failing subexpression: {subs[key].text}", *bad[key][:3]]
        lines += [f"where {d}" for d in definitions(subs[key], batch.features)]
        report.append("\n      ".join(lines))
    return report


def definitions(expr: Expr, everything: dict[str, Expr]) -> list[str]:
    """``name = formula`` for every feature ``expr`` depends on, innermost first."""
    lines: list[str] = []
    for ref in sorted(expr.refs):
        if ref in everything:
            for line in [*definitions(everything[ref], everything), f"{ref} = {everything[ref].text}"]:
                if line not in lines:
                    lines.append(line)
    return lines


def check_rejected(root: Path, batch: Batch, index: int, what: str, text: str) -> str | None:
    """None if the static check rejects ``text`` as a feature for lookahead, with every diagnostic in its own
    spec file, and compile refuses it (writes no build); else what went wrong."""
    specs = feature_specs(batch.features, batch.targets)
    leaky = {"spec_version": 1, "features": [{"name": f"leak{index}", "formula": text}]}
    project = make_project(root, {"project.yaml": PROJECT, "features.yaml": specs, "leaky.yaml": leaky})
    diagnostics = check(project.root).diagnostics
    if not diagnostics:
        return f"check() accepted a leaky formula ({what}): {text}"
    wrong = [d for d in diagnostics if d.code != "lookahead" or not str(d.position.file).endswith("leaky.yaml")]
    if wrong:
        return f"{what}: {text}: unexpected diagnostics " + "; ".join(f"[{d.code}] {d.render()}" for d in wrong)
    try:
        compile_project(project.root)
    except SpecError:
        pass
    else:
        return f"compile_project compiled a leaky formula ({what}): {text}"
    if (project.root / "build" / "manifest.json").exists() or list(project.root.glob("build/kernels/*.py")):
        return f"compile_project wrote a build for a rejected formula ({what}): {text}"
    return None


EXAMPLES = int(os.environ.get("FSPEC_PROPERTY_EXAMPLES", "5"))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same formulas on every run (a new registry operator changes the draw)
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each example compiles; failures minimize themselves
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(batch=batches())
def test_random_formulas(batch: Batch, tmp_path_factory: pytest.TempPathFactory) -> None:
    messages = verify(batch, tmp_path_factory.mktemp("props"))
    assert not messages, "\n".join(messages)


def registry_clip(x: Any, lo: Any, hi: Any) -> np.ndarray:
    """clip as the registry documents it: NaN in any argument -> NaN; if lo > hi the result is lo."""
    x, lo, hi = (np.asarray(v, dtype=np.float64) for v in (x, lo, hi))
    out = np.where(lo > hi, lo, np.minimum(np.maximum(x, lo), hi))
    return np.where(np.isnan(x) | np.isnan(lo) | np.isnan(hi), np.nan, out)


def ieee_pow(x: Any, y: Any) -> np.ndarray:
    """x ** y as IEEE / C99 pow, which the registry names. ``np.power`` with a scalar exponent takes a shortcut
    (0.5 -> sqrt) that gives NaN for (-inf) ** 0.5 (C99: +inf); copied exponent arrays take the real pow."""
    x, y = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    return np.power(np.array(x).reshape(-1), np.array(y).reshape(-1)).reshape(x.shape)


def verify(batch: Batch, base: Path) -> list[str]:
    """Every property for one batch; the failures, described."""
    with pytest.MonkeyPatch.context() as patch:
        # Where reference.py departs from what the registry documents, this file uses the registry's rule:
        # clip(x, lo, hi) with lo > hi (reference.py: "not defined by the registry and is not tested"; the
        # registry now says: the result is lo), and pow on IEEE special values (see ieee_pow).
        patch.setitem(reference.ELEMENTWISE, "clip", registry_clip)
        patch.setitem(reference.ELEMENTWISE, "pow", ieee_pow)
        return _verify(batch, base)


# ---- regressions: the smallest formulas the properties above found, checked on every run ---------------

PINNED_FEATURES = {
    # numexpr folded constant-only subexpressions ((2 != 2), x / 0) into Python values and crashed
    "fold_max": "max2(2, bipower(trades.price))",
    "fold_and": "100 and sqrt(wmean(trades.size, trades.size))",
    "fold_div": "diff(last(sign(trades.bid)) / 0)",
    # clip with lo > hi: the registry says the result is lo; x >= lo > hi must not give hi
    "clip_bar": "clip(mean(trades.price), 2, exp(bipower(trades.bid)))",
    "clip_tick": "last(clip(trades.ask, trades.bid, trades.bid - 1))",
    # a negative constant base in a tick kernel: (-1) ** 2 is 1, not -(1 ** 2)
    "neg_base": "sum(trades.size * (-1) ** 2)",
    "neg_base_col": "last((-2) ** trades.size)",
    # C99 pow on infinities: (-inf) ** 0.5 = +inf
    "inf_pow_bar": "((last(trades.price) * 0 - 1) / 0) ** 0.5",
    "inf_pow_tick": "last(((trades.price * 0 - 1) / 0) ** 0.5)",
    # session-local operators over an input with history: the first bars of a session need the session
    # before it, so a lag / diff of them needs two earlier sessions (keep every window here short: a longer
    # window elsewhere in the project loads more history and hides this)
    "warm_cumsum": "lag(session_cumsum(lag(sum(trades.size))))",
    "warm_cumsum_diff": "diff(session_cumsum(diff(last(trades.price))))",
    "warm_ewm": "lag(ewm_mean(lag(last(trades.price)), 3))",
    # an infinite input to ewm_mean
    "ewm_inf": "ewm_mean(interval_seconds / (0.5 >= last(trades.ask)), 3)",
}
PINNED_TARGETS = {"target_p": "lead(last(trades.price), 2) - last(trades.price)"}
PINNED_LEAKY = [
    ("lead inside", "rolling_mean(lead(sum(trades.size)), 3)"),
    ("lead then lag", "lag(lead(last(trades.price), 2), 2)"),
    ("reads a target", "lag(target_p, 3)"),
    ("bar reducer", "mean(ffill(last(trades.price)))"),
    ("forbidden", "bfill(last(trades.price))"),
]


def pinned(texts: dict[str, str]) -> dict[str, Expr]:
    def expr(text: str) -> Expr:
        names = {n.parts[0] for n in parse(text).walk() if isinstance(n, Name) and len(n.parts) == 1}
        return Expr(parse(text), "bar", NOISY, refs=frozenset(names & set(texts)))

    return {name: expr(text) for name, text in texts.items()}


def test_formulas_the_properties_found(tmp_path: Path) -> None:
    batch = Batch(
        pinned(PINNED_FEATURES), pinned(PINNED_TARGETS), PINNED_LEAKY, data_seed=1, audit_seed=1, minimize=False
    )
    messages = verify(batch, tmp_path)
    assert not messages, "\n".join(messages)


def _verify(batch: Batch, base: Path) -> list[str]:
    everything = batch.features | batch.targets

    # (c) every rejected formula is rejected for lookahead, and never compiled (so never run)
    refused = [check_rejected(base / f"leaky{i}", batch, i, what, text) for i, (what, text) in enumerate(batch.leaky)]

    # (a) compiled once, run once, every column = the reference (features and targets); crashes are failures
    outcome = build_and_compare(base, batch.features, batch.targets, batch.data_seed)

    # (b) no accepted feature changes when later data is cut off
    report = audit(load_manifest(outcome.project.root), cuts=6, seed=batch.audit_seed)
    assert report.features == len(outcome.features) * len(INSTRUMENTS)

    messages = []
    failing = [*outcome.crashed, *outcome.problems]
    if outcome.crashed:
        messages.append(f"{len(outcome.crashed)} accepted formulas crash:")
        messages += [f"  {n} = {everything[n].text}\n      {err}" for n, err in outcome.crashed.items()]
    if outcome.problems:
        messages.append(f"kernel != reference for {len(outcome.problems)} of {len(everything)} formulas:")
        for name, lines in outcome.problems.items():
            messages.append(f"  {name} = {everything[name].text}")
            messages += [f"      {line}" for line in lines[:4]]
    if failing and batch.minimize:
        messages.append("minimized:")
        messages += ["  " + line for line in smallest_failures(base / "minimize", batch, failing)]
    if report.violations:
        messages.append("audit violations (lookahead in an accepted feature):")
        for v in report.violations[:10]:
            feature = next(n for n in batch.features if v.column.startswith(n + "_"))
            messages.append(f"  {feature} = {everything[feature].text}\n      {v.render()}")
    if any(refused):
        messages.append("statically rejected formulas:")
        messages += ["  " + r for r in refused if r]
    return messages
