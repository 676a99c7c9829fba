"""Fuzzing `fspec validate`: arbitrary formula text never crashes the checks.

Hypothesis draws formulas from a loose grammar of what users type and mistype (every registered operator with
any number of arguments and keywords, known and unknown names, huge, tiny and negative numbers, deep nesting,
stray characters); each example puts 500 of them into one spec file and runs every check on it. A check must
return diagnostics, each with a file position, and never raise. 20 examples: 10,000 formulas in about 20 s.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fspec.compiler.build import check
from fspec.operators import REGISTRY
from tests.conftest import make_project

PROJECT = """\
spec_version: 1
sources:
  trades:
    path: data/{symbol}/{date}_trades.parquet
    time: time
    columns: {price: float64, size: float64}
    asof: {source: quotes, columns: [bid, ask]}
  quotes:
    path: data/{symbol}/{date}_quotes.parquet
    time: time
    columns: {bid: float64, ask: float64, bid_size: float64, ask_size: float64}
instruments:
  spy: {symbol: SPY, params: {tick_size: 0.01}}
  qqq: {symbol: QQQ, params: {tick_size: 0.01}}
intervals: [30s, 60s]
constants: {cost: 0.0001}
"""

NAMES = [
    "trades.price",
    "trades.size",
    "trades.bid",
    "quotes.bid_size",
    "spy.trades.price",
    "qqq.base",
    "spy.base",
    "base",
    "tick_size",
    "cost",
    "pi",
    "periods_per_year",
    "nan",
    "unknown",
    "trades",
    "spy",
    "trades.nope",
    "spy.quotes.bid.x",
]
NUMBERS = ["0", "1", "-1", "2.5", "1e308", "1e-308", "10000000000000000000", "9" * 40, "0.0", "3", "1_000"]
INFIX = [" + ", " - ", " * ", " / ", " ** ", " < ", " == ", " and ", " or ", " % ", " // ", " @ "]
JUNK = ["(", ")", ",", "[", "]", "{", "'x'", "lambda: 1", "x if y else z", ";", "\\", "#", "`"]


def _formulas() -> st.SearchStrategy[str]:
    leaf = st.sampled_from(NAMES + NUMBERS)

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        call = st.tuples(
            st.sampled_from([*sorted(REGISTRY), "lead", "bfill", "mean_all", "eval"]),
            st.lists(inner, max_size=4),
            st.lists(st.tuples(st.sampled_from(["k", "n", "span", "q", "x", "bucket"]), inner), max_size=2),
        ).map(lambda t: f"{t[0]}({', '.join(t[1] + [f'{k}={v}' for k, v in t[2]])})")
        infix = st.tuples(inner, st.sampled_from(INFIX), inner).map(lambda t: f"{t[0]}{t[1]}{t[2]}")
        unary = inner.map(lambda x: f"-({x})") | inner.map(lambda x: f"not {x}")
        return call | infix | unary | inner.map(lambda x: f"({x})")

    tree = st.recursive(leaf, extend, max_leaves=12)
    broken = st.tuples(tree, st.sampled_from(JUNK), st.integers(0, 30)).map(
        lambda t: t[0][: t[2]] + t[1] + t[0][t[2] :]
    )
    deep = st.integers(90, 400).map(lambda n: "lag(" * n + "base" + ", 1)" * n)
    return st.one_of(tree, tree, tree, broken, deep)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(_formulas(), min_size=500, max_size=500))
def test_validate_never_crashes_on_any_formula(tmp_path_factory, formulas: list[str]) -> None:  # type: ignore[no-untyped-def]
    features = [{"name": "base", "formula": "last(trades.price)"}]
    features += [{"name": f"f{i}", "formula": text} for i, text in enumerate(formulas)]
    root: Path = tmp_path_factory.mktemp("fuzz")
    make_project(
        root, {"project.yaml": PROJECT, "features.yaml": yaml.safe_dump({"spec_version": 1, "features": features})}
    )
    checked = check(root)  # must not raise
    assert checked.project is not None, checked.diagnostics[:3]  # the file was read: formulas were checked
    for diagnostic in checked.diagnostics:
        assert diagnostic.position.file.startswith("specs/"), diagnostic
        assert diagnostic.message
