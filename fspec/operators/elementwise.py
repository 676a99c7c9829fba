"""Elementwise operators: one value per row (a tick or a bar) from the same row's inputs.

Each one gives its scalar code in a kernel (``tick``), its numexpr text over bar arrays (``numexpr``, or
``numpy`` where numexpr has no such function), and, for the kernel's vectorised pass, its numpy code over
whole columns (``vector``, where it has one).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fspec.operators.core import ELEMENTWISE, Operator, Param, bar_function, register

X = (Param("x"),)
XY = (Param("x"), Param("y"))
NAN_IN = "NaN in -> NaN out"


def _f(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _as_float(mask: Any) -> np.ndarray:
    return np.asarray(mask, dtype=np.float64)


for _name, _symbol, _doc, _fn in [
    ("add", "+", "x + y", np.add),
    ("sub", "-", "x - y", np.subtract),
    ("mul", "*", "x * y", np.multiply),
    ("div", "/", "x / y; x/0 is +-inf and 0/0 is NaN (IEEE)", np.divide),
    ("pow", "**", "x ** y", np.power),
]:
    register(
        Operator(
            _name,
            XY,
            ELEMENTWISE,
            _doc,
            "NaN in -> NaN out, except NaN ** 0 = 1 and 1 ** NaN = 1 (IEEE)" if _name == "pow" else NAN_IN,
            tick=lambda a, s=_symbol: f"{a[0]} {s} {a[1]}",
            vector=lambda a, s=_symbol: f"({a[0]} {s} {a[1]})",
            numexpr=lambda a, s=_symbol: f"({a[0]} {s} {a[1]})",
            numpy=_fn,
        )
    )

for _name, _symbol, _fn in [
    ("lt", "<", np.less),
    ("le", "<=", np.less_equal),
    ("gt", ">", np.greater),
    ("ge", ">=", np.greater_equal),
    ("eq", "==", np.equal),
    ("ne", "!=", np.not_equal),
]:
    register(
        Operator(
            _name,
            XY,
            ELEMENTWISE,
            f"x {_symbol} y as 1.0 / 0.0",
            "a comparison with NaN is 0.0 (ne: 1.0)",
            tick=lambda a, s=_symbol: f"1.0 if {a[0]} {s} {a[1]} else 0.0",
            numexpr=lambda a, s=_symbol: f"where({a[0]} {s} {a[1]}, 1.0, 0.0)",
            numpy=lambda x, y, fn=_fn: _as_float(fn(x, y)),
        )
    )

register(
    Operator(
        "and_",
        XY,
        ELEMENTWISE,
        "x and y as 1.0 / 0.0 (nonzero is true)",
        "NaN counts as true",
        tick=lambda a: f"1.0 if ({a[0]} != 0.0) and ({a[1]} != 0.0) else 0.0",
        numexpr=lambda a: f"where(({a[0]} != 0) & ({a[1]} != 0), 1.0, 0.0)",
        numpy=lambda x, y: _as_float((_f(x) != 0) & (_f(y) != 0)),
    )
)
register(
    Operator(
        "or_",
        XY,
        ELEMENTWISE,
        "x or y as 1.0 / 0.0 (nonzero is true)",
        "NaN counts as true",
        tick=lambda a: f"1.0 if ({a[0]} != 0.0) or ({a[1]} != 0.0) else 0.0",
        numexpr=lambda a: f"where(({a[0]} != 0) | ({a[1]} != 0), 1.0, 0.0)",
        numpy=lambda x, y: _as_float((_f(x) != 0) | (_f(y) != 0)),
    )
)
register(
    Operator(
        "not_",
        X,
        ELEMENTWISE,
        "not x as 1.0 / 0.0",
        "not NaN is 0.0",
        tick=lambda a: f"1.0 if {a[0]} == 0.0 else 0.0",
        numexpr=lambda a: f"where({a[0]} == 0, 1.0, 0.0)",
        numpy=lambda x: _as_float(_f(x) == 0),
    )
)
register(
    Operator(
        "neg",
        X,
        ELEMENTWISE,
        "-x",
        NAN_IN,
        tick=lambda a: f"-{a[0]}",
        vector=lambda a: f"(-{a[0]})",
        numexpr=lambda a: f"(-{a[0]})",
        numpy=np.negative,
    )
)
for _name, _doc, _edge, _tick, _vector, _fn, _hoist in [
    ("log", "natural logarithm", "log(0) = -inf, log(<0) = NaN", "np.log", "np.log", np.log, True),
    ("exp", "e ** x", NAN_IN, "np.exp", "np.exp", np.exp, True),
    ("sqrt", "square root", "sqrt(<0) = NaN", "np.sqrt", "np.sqrt", np.sqrt, False),
    ("abs", "absolute value", NAN_IN, "abs", "np.abs", np.abs, False),
]:
    register(
        Operator(
            _name,
            X,
            ELEMENTWISE,
            _doc,
            _edge,
            tick=lambda a, f=_tick: f"{f}({a[0]})",
            vector=lambda a, f=_vector: f"{f}({', '.join(a)})",  # (a hoisted one's last argument: out=...)
            numexpr=lambda a, f=_name: f"{f}({a[0]})",
            numpy=_fn,
            hoist=_hoist,  # log and exp: a libm call per tick costs several times numpy's SIMD loop
        )
    )
register(
    Operator(
        "sign",
        X,
        ELEMENTWISE,
        "-1, 0 or 1 by the sign of x",
        NAN_IN,
        tick=lambda a: f"sign({a[0]})",
        numexpr=lambda a: f"where({a[0]} > 0, 1.0, where({a[0]} < 0, -1.0, {a[0]}))",
        numpy=np.sign,
    )
)
register(
    Operator(
        "where",
        (Param("cond"), Param("x"), Param("y")),
        ELEMENTWISE,
        "x where cond is nonzero, else y",
        "a NaN cond counts as true",
        tick=lambda a: f"{a[1]} if {a[0]} != 0.0 else {a[2]}",
        numexpr=lambda a: f"where({a[0]} != 0, {a[1]}, {a[2]})",
        numpy=lambda c, x, y: np.where(_f(c) != 0, x, y),
    )
)


def _clip_numexpr(a: list[str]) -> str:
    x, lo, hi = a
    capped = f"where({x} > {hi}, {hi}, {x})"
    clipped = f"where({capped} < {lo}, {lo}, {capped})"  # lo wins when lo > hi, as documented
    return f"where(({x} != {x}) | ({lo} != {lo}) | ({hi} != {hi}), nan, {clipped})"


register(
    Operator(
        "clip",
        (Param("x"), Param("lo"), Param("hi")),
        ELEMENTWISE,
        "x limited to [lo, hi]",
        "NaN in any argument -> NaN; if lo > hi the result is lo",
        tick=lambda a: f"clip({a[0]}, {a[1]}, {a[2]})",
        numexpr=_clip_numexpr,
    )
)


def _pick_numexpr(symbol: str) -> Any:
    def text(a: list[str]) -> str:
        x, y = a
        return f"where(({x} != {x}) | ({y} != {y}), nan, where({x} {symbol} {y}, {x}, {y}))"

    return text


register(
    Operator(
        "min2",
        XY,
        ELEMENTWISE,
        "the smaller of x and y",
        "NaN if either is NaN",
        tick=lambda a: f"min2({a[0]}, {a[1]})",
        numexpr=_pick_numexpr("<"),
        numpy=np.minimum,
    )
)
register(
    Operator(
        "max2",
        XY,
        ELEMENTWISE,
        "the larger of x and y",
        "NaN if either is NaN",
        tick=lambda a: f"max2({a[0]}, {a[1]})",
        numexpr=_pick_numexpr(">"),
        numpy=np.maximum,
    )
)


@bar_function
def _norm_cdf_flat(x):
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        out[i] = 0.5 * math.erfc(-x[i] * _SQRT_HALF)
    return out


_SQRT_HALF = 0.7071067811865476  # 1 / sqrt(2)
_INV_SQRT_2PI = 0.3989422804014327  # 1 / sqrt(2 pi)


def _norm_cdf(x: Any) -> np.ndarray:
    """Phi(x) on arrays of any shape (numexpr has no erf; numba's loop calls libm's erfc)."""
    values = np.ascontiguousarray(x, dtype=np.float64)
    return _norm_cdf_flat(values.reshape(-1)).reshape(values.shape)


def _norm_cdf_reference(x: Any) -> np.ndarray:
    from statistics import NormalDist  # here: its import (decimal's) is 20 ms of every run's start

    cdf = np.vectorize(lambda v: math.nan if math.isnan(v) else NormalDist().cdf(v), otypes=[float])
    return cdf(_f(x))


def _norm_pdf_reference(x: Any) -> np.ndarray:
    from statistics import NormalDist

    pdf = np.vectorize(lambda v: math.nan if math.isnan(v) else NormalDist().pdf(v), otypes=[float])
    return pdf(_f(x))


register(
    Operator(
        "norm_cdf",
        X,
        ELEMENTWISE,
        "standard normal distribution function Phi(x)",
        "NaN in -> NaN out; Phi(-inf) = 0, Phi(inf) = 1",
        tick=lambda a: f"0.5 * math.erfc(-({a[0]}) * {_SQRT_HALF})",
        numpy=_norm_cdf,
        reference=_norm_cdf_reference,
        examples=("sum(norm_cdf((trades.price - 100) / 2))", "norm_cdf(last(trades.price) - 100)"),
    )
)
register(
    Operator(
        "norm_pdf",
        X,
        ELEMENTWISE,
        "standard normal density phi(x) = exp(-x**2 / 2) / sqrt(2 pi)",
        "NaN in -> NaN out; phi(+-inf) = 0",
        tick=lambda a: f"{_INV_SQRT_2PI} * np.exp(-0.5 * ({a[0]}) * ({a[0]}))",
        numexpr=lambda a: f"({_INV_SQRT_2PI} * exp(-0.5 * {a[0]} * {a[0]}))",
        numpy=lambda x: _INV_SQRT_2PI * np.exp(-0.5 * _f(x) * _f(x)),
        reference=_norm_pdf_reference,
        examples=("mean(norm_pdf(trades.price - 100))", "norm_pdf(last(trades.price) - 100)"),
    )
)
for _name, _doc, _edge, _fn, _example in [
    ("log1p", "log(1 + x), exact for small x", "log1p(-1) = -inf, log1p(< -1) = NaN", np.log1p, "trades.size / 1000"),
    ("expm1", "exp(x) - 1, exact for small x", NAN_IN, np.expm1, "(trades.price - 100) / 1000"),
    ("tanh", "hyperbolic tangent", NAN_IN + "; tanh(+-inf) = +-1", np.tanh, "trades.price - 100"),
    ("floor", "the largest whole number <= x", NAN_IN + "; +-inf stays", np.floor, "trades.price"),
]:
    register(
        Operator(
            _name,
            X,
            ELEMENTWISE,
            _doc,
            _edge,
            tick=lambda a, f=_name: f"np.{f}({a[0]})",
            vector=lambda a, f=_name: f"np.{f}({', '.join(a)})",
            numexpr=lambda a, f=_name: f"{f}({a[0]})",
            numpy=_fn,
            reference=_fn,
            examples=(f"sum({_name}({_example}))", f"{_name}(last({_example}))"),
        )
    )
register(
    Operator(
        "round",
        X,
        ELEMENTWISE,
        "x rounded to the nearest whole number, halves to even (numpy's rule: round(2.5) = 2)",
        NAN_IN + "; +-inf stays",
        tick=lambda a: f"np.rint({a[0]})",
        vector=lambda a: f"np.rint({', '.join(a)})",
        numpy=np.rint,
        reference=lambda x: np.vectorize(lambda v: v if not math.isfinite(v) else float(round(v)), otypes=[float])(
            _f(x)
        ),
        examples=("sum(round(trades.size / 7))", "round(last(trades.price) * 2) / 2"),
    )
)
register(
    Operator(
        "isnan",
        X,
        ELEMENTWISE,
        "1.0 where x is NaN, else 0.0",
        "isnan(inf) = 0.0",
        tick=lambda a: f"1.0 if {a[0]} != {a[0]} else 0.0",
        numexpr=lambda a: f"where({a[0]} != {a[0]}, 1.0, 0.0)",
        numpy=lambda x: _as_float(np.isnan(_f(x))),
        reference=lambda x: np.where(np.isnan(_f(x)), 1.0, 0.0),
        examples=("sum(isnan(trades.size))", "isnan(last(trades.price))"),
    )
)
register(
    Operator(
        "fillna",
        (Param("x"), Param("value")),
        ELEMENTWISE,
        "x, or value where x is NaN",
        "value may be NaN (then NaN stays NaN)",
        tick=lambda a: f"{a[1]} if {a[0]} != {a[0]} else {a[0]}",
        numexpr=lambda a: f"where({a[0]} != {a[0]}, {a[1]}, {a[0]})",
        numpy=lambda x, v: np.where(np.isnan(_f(x)), v, x),
        reference=lambda x, v: np.where(np.isnan(_f(x)), _f(v), _f(x)),
        examples=("sum(fillna(trades.size, 1))", "fillna(last(trades.price), 0)"),
    )
)
