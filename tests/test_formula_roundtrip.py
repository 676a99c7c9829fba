"""Formula text -> tree -> canonical text -> tree is the identity, and formula text is never evaluated.

``to_source`` promises ``parse(to_source(t)) == t`` for every tree (``compiler/formula.py``); the manifest,
``fspec explain`` and error messages print trees with it, so a printer that drops a needed bracket would
silently change what a quant reads (``a - (b - c)`` shown as ``a - b - c``).
"""

from __future__ import annotations

import ast
import keyword
import math
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fspec.compiler import formula as formula_module
from fspec.compiler.formula import Call, FormulaSyntaxError, Name, Node, Num, Span, parse, to_source
from fspec.operators import REGISTRY
from fspec.project import spec_files

REPO = Path(__file__).resolve().parents[1]


def roundtrip(tree: Node) -> Node:
    text = to_source(tree)
    again = parse(text)
    assert again == tree, f"{tree!r}\n  printed as {text!r}\n  re-parsed as {again!r}"
    # The canonical text is a fixed point.
    assert to_source(again) == text
    return again


# ---- hand-written formulas -------------------------------------------------------------------------

HAND_WRITTEN = [
    # precedence
    "a + b * c",
    "(a + b) * c",
    "a * b + c",
    "a * (b + c)",
    "a + b / c - d",
    "(a + b) / (c - d)",
    "a ** 2 * b",
    "a ** (2 * b)",
    # associativity of - / **
    "a - b - c",
    "a - (b - c)",
    "(a - b) - c",
    "a / b / c",
    "a / (b / c)",
    "a / b * c",
    "a / (b * c)",
    "a ** b ** c",
    "(a ** b) ** c",
    "a ** (b ** c)",
    # unary minus
    "-a",
    "- -a",
    "-(-a)",
    "-a ** 2",
    "(-a) ** 2",
    "a ** -b",
    "a * -b",
    "a - -b",
    "-(a + b)",
    "-(a * b)",
    "-a * b",
    "+a",
    "-1",
    "-0.5 * x",
    "2 ** -1",
    # comparisons
    "a < b",
    "a <= b",
    "a > b",
    "a >= b",
    "a == b",
    "a != b",
    "(a < b) == (c > d)",
    "(a < b) < c",
    "a < (b < c)",
    "a + 1 > b * 2",
    "-a < b",
    # and / or / not
    "a and b",
    "a or b",
    "a and b or c",
    "a and (b or c)",
    "(a or b) and c",
    "a or b and c",
    "a and b and c",
    "a and (b and c)",
    "a or (b or c)",
    "not a",
    "not not a",
    "not a and b",
    "not (a and b)",
    "not a < b",
    "(not a) < b",
    "not -a",
    "-(not a)",
    "a > 0 and b < 0 or not c == 1",
    # calls, kwargs, dotted names
    "sum(trades.size)",
    "last((quotes.bid + quotes.ask) / 2)",
    "rolling_mean(x, n=10)",
    "rolling_mean(x, 10)",
    "lag(x, k=2)",
    "ewm_mean(x, span=2.5)",
    "where(x > 0, 1, -1)",
    "clip(x, lo=-1, hi=1)",
    "f()",
    "mes.trades.price",
    "last(mes.trades.price) / mes.scale - spy.vwap",
    "spy.params.tick_size * 2",
    "sqrt(sum(diff(log(trades.price)) ** 2) * periods_per_year)",
    "lead(spy.interval_log_return, 1) - 0.0001",
    "-sum(x) ** 2",
    "sum(-x)",
    "sum(x, k=-1)",
    "sum(x, k=a - b)",
    "max2(a, b) - min2(a, b) - (c - d)",
    # numbers
    "1e-4",
    "0.0001",
    "1.5e10",
    "1e16",
    "1e300",
    "5e-324",
    "0.1",
    "0",
    "0.0",
    "3",
    "123456789012345678",
    "0x1F",
    "1_000",
    "2.5e-3 * x",
    "x * 1e-4",
]


@pytest.mark.parametrize("text", HAND_WRITTEN)
def test_hand_written_formula_roundtrips(text: str) -> None:
    roundtrip(parse(text))


def _shipped_formulas() -> list[str]:
    found = []
    for path in spec_files(REPO):  # the spec tests (*.test.yaml) aside
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for section in ("features", "targets"):
            for raw in doc.get(section) or []:
                found.append(raw["formula"])
                assert raw["formula"], path
    return found


@pytest.mark.parametrize("text", _shipped_formulas())
def test_shipped_spec_formula_roundtrips(text: str) -> None:
    roundtrip(parse(text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a - b - c", Call("sub", (Call("sub", (Name(("a",)), Name(("b",)))), Name(("c",))))),
        ("a - (b - c)", Call("sub", (Name(("a",)), Call("sub", (Name(("b",)), Name(("c",))))))),
        ("a / b / c", Call("div", (Call("div", (Name(("a",)), Name(("b",)))), Name(("c",))))),
        ("a ** b ** c", Call("pow", (Name(("a",)), Call("pow", (Name(("b",)), Name(("c",))))))),
        ("(a ** b) ** c", Call("pow", (Call("pow", (Name(("a",)), Name(("b",)))), Name(("c",))))),
        ("-a ** 2", Call("neg", (Call("pow", (Name(("a",)), Num(2.0))),))),
        ("(-a) ** 2", Call("pow", (Call("neg", (Name(("a",)),)), Num(2.0)))),
        ("a + b * c", Call("add", (Name(("a",)), Call("mul", (Name(("b",)), Name(("c",))))))),
        ("a and b or c", Call("or_", (Call("and_", (Name(("a",)), Name(("b",)))), Name(("c",))))),
        ("a and b and c", Call("and_", (Call("and_", (Name(("a",)), Name(("b",)))), Name(("c",))))),
        ("not a and b", Call("and_", (Call("not_", (Name(("a",)),)), Name(("b",))))),
        ("not a < b", Call("not_", (Call("lt", (Name(("a",)), Name(("b",)))),))),
        ("a.b.c", Name(("a", "b", "c"))),
        ("rolling_mean(x, n=10)", Call("rolling_mean", (Name(("x",)),), (("n", Num(10.0)),))),
        ("1e-4", Num(1e-4)),
        ("0.0001", Num(1e-4)),
        ("+a", Name(("a",))),
    ],
)
def test_parse_gives_the_expected_tree(text: str, expected: Node) -> None:
    assert parse(text) == expected
    roundtrip(expected)


def test_spans_do_not_affect_equality() -> None:
    assert parse("a + b") == parse("a   +   b")
    assert parse("(a + b)").span != parse("a + b").span or parse("(a + b)") == parse("a + b")


@pytest.mark.parametrize("value", [1e-4, 0.1, 1 / 3, 2.0**-1074, 1e15, 1e16, 123456789.125, 1.7976931348623157e308])
def test_float_literals_keep_their_exact_value(value: float) -> None:
    again = roundtrip(Num(value))
    assert isinstance(again, Num) and again.value == value


def test_number_literal_too_large_for_a_float_is_an_error_or_prints() -> None:
    """`1e999` is inf in Python; the parser must reject it with a position or print it back (not crash)."""
    try:
        tree = parse("x * 1e999")
    except FormulaSyntaxError as exc:
        assert exc.span.line == 1
        return
    text = to_source(tree)  # must not raise OverflowError
    assert parse(text) == tree


def test_negative_number_node_roundtrips() -> None:
    """Trees built by the compiler (not the parser) may hold negative numbers, e.g. unparse.to_formula of
    a folded constant; the printer's contract is 'parse(to_source(t)) == t for every tree'."""
    roundtrip(Call("mul", (Num(-2.5), Name(("x",)))))


# ---- random trees ------------------------------------------------------------------------------------

_IDENT = st.from_regex(r"\A[a-z_][a-z0-9_]{0,5}\Z", fullmatch=True).filter(
    lambda s: not keyword.iskeyword(s) and not keyword.issoftkeyword(s)
)
_NUMBERS = st.floats(min_value=0.0, allow_nan=False, allow_infinity=False) | st.integers(0, 10**6).map(float)
_LEAVES = st.one_of(
    st.builds(Num, _NUMBERS),
    st.builds(Name, st.lists(_IDENT, min_size=1, max_size=3).map(tuple)),
)
_OPS = sorted(REGISTRY)
_INFIX = [op for op in _OPS if op in formula_module.INFIX]
_PREFIX = [op for op in _OPS if op in formula_module.PREFIX]


@st.composite
def _call(draw: st.DrawFn, children: st.SearchStrategy[Node]) -> Node:
    """An operator call over ``children``: infix, prefix, or written as a named call (maybe with kwargs)."""
    kind = draw(st.sampled_from(["infix", "infix", "prefix", "named"]))
    if kind == "infix":
        return Call(draw(st.sampled_from(_INFIX)), (draw(children), draw(children)))
    if kind == "prefix":
        return Call(draw(st.sampled_from(_PREFIX)), (draw(children),))
    args = tuple(draw(children) for _ in range(draw(st.integers(0, 3))))
    keys = draw(st.lists(_IDENT, max_size=2, unique=True))
    return Call(draw(st.sampled_from(_OPS)), args, tuple((k, draw(children)) for k in keys))


TREES = st.recursive(_LEAVES, _call, max_leaves=16)


def test_registry_has_every_infix_and_prefix_operator() -> None:
    assert set(formula_module.INFIX) | set(formula_module.PREFIX) <= set(REGISTRY)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TREES)
def test_random_tree_roundtrips(tree: Node) -> None:
    roundtrip(tree)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TREES)
def test_random_tree_prints_as_valid_python_expression(tree: Node) -> None:
    text = to_source(tree)
    ast.parse(text, mode="eval")  # the canonical text is itself an expression the parser accepts
    assert "\n" not in text


# ---- text is never evaluated ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('x')",
        "__import__('os')",
        "os.system('x')",
        "trades.price.mean()",
        "lambda: 0",
        "(lambda x: x)(1)",
        "x[0]",
        "trades.price[1:]",
        "'abc'",
        "x + 'abc'",
        "sum(x, k='a')",
        "b'abc'",
        "f'{x}'",
        "1j",
        "True",
        "None",
        "...",
        "x if y else z",
        "[1, 2]",
        "(1, 2)",
        "{1: 2}",
        "{1}",
        "[x for x in y]",
        "(x := 1)",
        "sum(*xs)",
        "sum(**kw)",
        "a < b < c",
        "a in b",
        "a is b",
        "a // b",
        "a % b",
        "a @ b",
        "a & b",
        "a | b",
        "a ^ b",
        "~a",
        "a << b",
        "import os",
        "x = 1",
        "x; y",
        "sum(x",
        "",
        "   ",
        "yield x",
        "await x",
    ],
)
def test_non_formula_syntax_is_rejected_with_a_position(text: str) -> None:
    with pytest.raises(FormulaSyntaxError) as info:
        parse(text)
    exc = info.value
    assert isinstance(exc.span, Span)
    assert exc.span.line >= 1 and exc.span.col >= 0
    assert exc.message


@pytest.mark.parametrize(
    ("text", "col"),
    [("x + 'abc'", 4), ("sum(x) * y[0]", 9), ("a + (lambda: 0)", 5), ("lag(x, k=__import__('os'))", 20)],
)
def test_rejection_points_at_the_offending_sub_expression(text: str, col: int) -> None:
    with pytest.raises(FormulaSyntaxError) as info:
        parse(text)
    assert (info.value.span.line, info.value.span.col) == (1, col)


def test_formula_text_is_never_executed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "pwned"
    calls: list[str] = []
    import builtins
    import os

    real_import = builtins.__import__

    def spy_import(name: str, *args: object, **kwargs: object) -> object:
        calls.append(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(os, "system", lambda cmd: calls.append(f"system:{cmd}") or 0)
    payloads = [
        f"__import__('os').system('touch {marker}')",
        f"open('{marker}', 'w')",
        f"exec(\"open('{marker}', 'w')\")",
        f"eval(\"open('{marker}', 'w')\")",
    ]
    monkeypatch.setattr(builtins, "__import__", spy_import)
    results = []
    for text in payloads:
        try:
            results.append(parse(text))
        except FormulaSyntaxError:
            results.append(None)
    monkeypatch.setattr(builtins, "__import__", real_import)
    assert not marker.exists()
    assert not [c for c in calls if c == "os" or c.startswith("system:")]
    # Calls to named functions parse as operator calls (rejected later as unknown operators), never run.
    for tree in results:
        assert tree is None or isinstance(tree, Call)


def test_formula_module_never_calls_eval_or_exec() -> None:
    source = Path(formula_module.__file__).read_text(encoding="utf-8")
    called = {
        node.func.id
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not called & {"eval", "exec", "compile", "__import__"}


def test_number_formatting_is_finite_for_parsed_literals() -> None:
    for text in ("1e-4", "0.0001", "1e308", "1.5"):
        node = parse(text)
        assert isinstance(node, Num) and math.isfinite(node.value)
