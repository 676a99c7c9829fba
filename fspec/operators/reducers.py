"""Reducers: the ticks of one bar -> one value. Each slot of a kernel keeps its running value in locals while
the bar lasts (``reduce``) and writes ``out[slot, b]`` once when the bar is complete; ``empty`` is the value of
a bar with no ticks. ``first`` and ``last`` of an expression with no tick state are instead read at the
complete bar's first or last ticks (``scan``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fspec.operators.core import REDUCER, Operator, Param, ReducerCode, register

X = (Param("x"),)


def _sum(s: int, n: str, a: list[str]) -> ReducerCode:
    return ReducerCode((f"{n} = 0.0",), f"{n} += {a[0]} if {a[0]} == {a[0]} else 0.0", f"out[{s}, b] = {n}")


def _count(s: int, n: str, a: list[str]) -> ReducerCode:
    return ReducerCode((f"{n} = 0.0",), f"{n} += 1.0 if {a[0]} == {a[0]} else 0.0", f"out[{s}, b] = {n}")


def _pick(condition: str) -> object:
    def code(s: int, n: str, a: list[str]) -> ReducerCode:
        v = a[0]
        test = f"{v} == {v}" + (f" and {condition.format(val=n, v=v)}" if condition else "")
        return ReducerCode((f"{n} = nan",), f"if {test}:\n    {n} = {v}", f"out[{s}, b] = {n}")

    return code


def _mean(s: int, n: str, a: list[str]) -> ReducerCode:
    v = a[0]
    return ReducerCode(
        (f"{n}_sum = 0.0", f"{n}_cnt = 0.0"),
        f"{n}_sum += {v} if {v} == {v} else 0.0\n{n}_cnt += 1.0 if {v} == {v} else 0.0",
        f"if {n}_cnt > 0.0:\n    out[{s}, b] = {n}_sum / {n}_cnt",
    )


def _std(s: int, n: str, a: list[str]) -> ReducerCode:
    v = a[0]
    return ReducerCode(
        (f"{n}_cnt = 0.0", f"{n}_avg = 0.0", f"{n}_m2 = 0.0"),
        f"if {v} == {v}:  # Welford update\n"
        f"    {n}_cnt += 1.0\n"
        f"    {n}_delta = {v} - {n}_avg\n"
        f"    {n}_avg += {n}_delta / {n}_cnt\n"
        f"    {n}_m2 += {n}_delta * ({v} - {n}_avg)",
        f"if {n}_cnt > 1.0:\n    out[{s}, b] = np.sqrt({n}_m2 / ({n}_cnt - 1.0))",
    )


def _bipower(s: int, n: str, a: list[str]) -> ReducerCode:
    v = a[0]
    return ReducerCode(
        (f"{n} = 0.0", f"{n}_paired = False", f"{n}_prev_abs = 0.0"),
        f"if {v} == {v}:\n"
        f"    if {n}_paired:\n"
        f"        {n} += abs({v}) * {n}_prev_abs\n"
        f"    {n}_prev_abs = abs({v})\n"
        f"    {n}_paired = True",
        f"out[{s}, b] = {n}",
    )


def _wmean(s: int, n: str, a: list[str]) -> ReducerCode:
    v, w = a
    return ReducerCode(
        (f"{n}_num = 0.0", f"{n}_den = 0.0"),
        f"{n}_ok = {v} == {v} and {w} == {w}\n"
        f"{n}_num += {v} * {w} if {n}_ok else 0.0\n"
        f"{n}_den += {w} if {n}_ok else 0.0",
        f"if {n}_den != 0.0:\n    out[{s}, b] = {n}_num / {n}_den",
    )


for _name, _doc, _edge, _code, _empty, _scan in [
    ("sum", "sum of the bar's values", "empty bar -> 0; NaN values are skipped", _sum, "0.0", False),
    ("count", "number of non-NaN values in the bar", "empty bar -> 0", _count, "0.0", False),
    ("mean", "mean of the bar's values", "empty bar -> NaN; NaN values are skipped", _mean, "nan", False),
    ("first", "first non-NaN value in the bar", "empty bar -> NaN", _pick("{val} != {val}"), "nan", True),
    (
        "last",
        "last non-NaN value in the bar",
        "empty bar -> NaN (wrap in ffill to carry the last known value)",
        _pick(""),
        "nan",
        True,
    ),
    (
        "min",
        "smallest value in the bar",
        "empty bar -> NaN; NaN values are skipped",
        _pick("not ({val} <= {v})"),
        "nan",
        False,
    ),
    (
        "max",
        "largest value in the bar",
        "empty bar -> NaN; NaN values are skipped",
        _pick("not ({val} >= {v})"),
        "nan",
        False,
    ),
    (
        "std",
        "sample standard deviation (ddof = 1) of the bar's values",
        "fewer than 2 values -> NaN",
        _std,
        "nan",
        False,
    ),
    (
        "bipower",
        "sum of |x_i| * |x_(i-1)| over consecutive non-NaN values inside the bar",
        "fewer than 2 values -> 0; a NaN is skipped, so the values around it pair up; "
        "multiply by pi / 2 for bipower variation",
        _bipower,
        "0.0",
        False,
    ),
]:
    register(Operator(_name, X, REDUCER, _doc, _edge, reduce=_code, empty=_empty, scan=_scan))  # type: ignore[arg-type]
register(
    Operator(
        "wmean",
        (Param("x"), Param("w")),
        REDUCER,
        "weighted mean sum(x*w)/sum(w) of the bar's rows (e.g. VWAP)",
        "empty bar or zero weight -> NaN; rows where x or w is NaN are skipped",
        reduce=_wmean,
    )
)


# Andersen, Dobrev & Schaumburg (2012), with R highfrequency's scalings: N/(N-2) for medRV, N/(N-1) for minRV,
# N the number of returns in the bar.
MEDRV_SCALE = math.pi / (6.0 - 4.0 * math.sqrt(3.0) + math.pi)
MINRV_SCALE = math.pi / (math.pi - 2.0)


def _medrv(s: int, n: str, a: list[str]) -> ReducerCode:
    v = a[0]
    return ReducerCode(
        (f"{n}_count = 0.0", f"{n} = 0.0", f"{n}_back1 = 0.0", f"{n}_back2 = 0.0"),
        f"if {v} == {v}:\n"
        f"    {n}_now = abs({v})\n"
        f"    {n}_count += 1.0\n"
        f"    if {n}_count >= 3.0:  # the median of three neighbours: max(min(a, b), min(max(a, b), c))\n"
        f"        {n}_med = max(min({n}_back2, {n}_back1), min(max({n}_back2, {n}_back1), {n}_now))\n"
        f"        {n} += {n}_med * {n}_med\n"
        f"    {n}_back2 = {n}_back1\n"
        f"    {n}_back1 = {n}_now",
        f"if {n}_count >= 3.0:\n    out[{s}, b] = {MEDRV_SCALE!r} * ({n}_count / ({n}_count - 2.0)) * {n}",
    )


def _minrv(s: int, n: str, a: list[str]) -> ReducerCode:
    v = a[0]
    return ReducerCode(
        (f"{n}_count = 0.0", f"{n} = 0.0", f"{n}_back1 = 0.0"),
        f"if {v} == {v}:\n"
        f"    {n}_now = abs({v})\n"
        f"    {n}_count += 1.0\n"
        f"    if {n}_count >= 2.0:\n"
        f"        {n}_low = min({n}_back1, {n}_now)\n"
        f"        {n} += {n}_low * {n}_low\n"
        f"    {n}_back1 = {n}_now",
        f"if {n}_count >= 2.0:\n    out[{s}, b] = {MINRV_SCALE!r} * ({n}_count / ({n}_count - 1.0)) * {n}",
    )


def _per_bar(stat: Any) -> Any:
    """A reference reducer: ``stat`` of each bar's non-NaN values (NaN for a bar it is not defined on)."""

    def reference(x: np.ndarray, bars: np.ndarray, n_bars: int) -> np.ndarray:
        out = np.full(n_bars, np.nan)
        for b in range(n_bars):
            values = np.abs(x[(bars == b) & ~np.isnan(x)])
            out[b] = stat(values)
        return out

    return reference


def _medrv_reference(r: np.ndarray) -> float:
    n = len(r)
    if n < 3:
        return math.nan
    medians = np.median(np.stack([r[:-2], r[1:-1], r[2:]]), axis=0)
    return MEDRV_SCALE * n / (n - 2) * float(np.sum(medians**2))


def _minrv_reference(r: np.ndarray) -> float:
    n = len(r)
    if n < 2:
        return math.nan
    return MINRV_SCALE * n / (n - 1) * float(np.sum(np.minimum(r[:-1], r[1:]) ** 2))


register(
    Operator(
        "medrv",
        (Param("r"),),
        REDUCER,
        "MedRV (Andersen, Dobrev & Schaumburg 2012) of the bar's returns: pi / (6 - 4 sqrt(3) + pi) * N / (N - 2) "
        "* sum of med(|r_(i-1)|, |r_i|, |r_(i+1)|) ** 2, N the number of returns (R highfrequency's medRV)",
        "fewer than 3 returns (or an empty bar) -> NaN; a NaN return is skipped, so its neighbours are adjacent",
        reduce=_medrv,
        reference=_per_bar(_medrv_reference),
        examples=("medrv(diff(log(trades.price)))", "medrv(trades.size)"),
    )
)
register(
    Operator(
        "minrv",
        (Param("r"),),
        REDUCER,
        "MinRV (Andersen, Dobrev & Schaumburg 2012) of the bar's returns: pi / (pi - 2) * N / (N - 1) * sum of "
        "min(|r_i|, |r_(i+1)|) ** 2, N the number of returns (R highfrequency's minRV)",
        "fewer than 2 returns (or an empty bar) -> NaN; a NaN return is skipped, so its neighbours are adjacent",
        reduce=_minrv,
        reference=_per_bar(_minrv_reference),
        examples=("minrv(diff(log(trades.price)))", "minrv(trades.size)"),
    )
)
