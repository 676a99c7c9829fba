"""Reducers: the ticks of one bar -> one value. Each slot of a kernel keeps its running value in locals while
the bar lasts (``reduce``) and writes ``out[slot, b]`` once when the bar is complete; ``empty`` is the value of
a bar with no ticks. ``first`` and ``last`` of an expression with no tick state are instead read at the
complete bar's first or last ticks (``scan``)."""

from __future__ import annotations

from fspec.operators.core import REDUCER, Operator, Param, ReducerCode, register

X = (Param("x"),)


def _sum(s: int, a: list[str]) -> ReducerCode:
    return ReducerCode((f"acc{s} = 0.0",), f"acc{s} += {a[0]} if {a[0]} == {a[0]} else 0.0", f"out[{s}, b] = acc{s}")


def _count(s: int, a: list[str]) -> ReducerCode:
    return ReducerCode((f"acc{s} = 0.0",), f"acc{s} += 1.0 if {a[0]} == {a[0]} else 0.0", f"out[{s}, b] = acc{s}")


def _pick(condition: str) -> object:
    def code(s: int, a: list[str]) -> ReducerCode:
        v = a[0]
        test = f"{v} == {v}" + (f" and {condition.format(val=f'val{s}', v=v)}" if condition else "")
        return ReducerCode((f"val{s} = nan",), f"if {test}:\n    val{s} = {v}", f"out[{s}, b] = val{s}")

    return code


def _mean(s: int, a: list[str]) -> ReducerCode:
    v = a[0]
    return ReducerCode(
        (f"sum{s} = 0.0", f"cnt{s} = 0.0"),
        f"sum{s} += {v} if {v} == {v} else 0.0\ncnt{s} += 1.0 if {v} == {v} else 0.0",
        f"if cnt{s} > 0.0:\n    out[{s}, b] = sum{s} / cnt{s}",
    )


def _std(s: int, a: list[str]) -> ReducerCode:
    v = a[0]
    return ReducerCode(
        (f"cnt{s} = 0.0", f"avg{s} = 0.0", f"m2_{s} = 0.0"),
        f"if {v} == {v}:  # Welford update\n"
        f"    cnt{s} += 1.0\n"
        f"    delta{s} = {v} - avg{s}\n"
        f"    avg{s} += delta{s} / cnt{s}\n"
        f"    m2_{s} += delta{s} * ({v} - avg{s})",
        f"if cnt{s} > 1.0:\n    out[{s}, b] = np.sqrt(m2_{s} / (cnt{s} - 1.0))",
    )


def _bipower(s: int, a: list[str]) -> ReducerCode:
    v = a[0]
    return ReducerCode(
        (f"acc{s} = 0.0", f"paired{s} = False", f"prev_abs{s} = 0.0"),
        f"if {v} == {v}:\n"
        f"    if paired{s}:\n"
        f"        acc{s} += abs({v}) * prev_abs{s}\n"
        f"    prev_abs{s} = abs({v})\n"
        f"    paired{s} = True",
        f"out[{s}, b] = acc{s}",
    )


def _wmean(s: int, a: list[str]) -> ReducerCode:
    v, w = a
    return ReducerCode(
        (f"num{s} = 0.0", f"den{s} = 0.0"),
        f"ok{s} = {v} == {v} and {w} == {w}\nnum{s} += {v} * {w} if ok{s} else 0.0\nden{s} += {w} if ok{s} else 0.0",
        f"if den{s} != 0.0:\n    out[{s}, b] = num{s} / den{s}",
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
