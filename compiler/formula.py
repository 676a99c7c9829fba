"""Formula text -> tree of small frozen nodes, and back.

Formulas use Python expression syntax. The text is tokenized and parsed by :mod:`ast` (``mode="eval"``),
then converted node by node through a whitelist into the tree below; any other syntax is an error with
its position. User text is never evaluated or executed.
"""

from __future__ import annotations

import ast
import keyword
import math
import re
import unicodedata
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import lru_cache

from fspec.errors import Diagnostic, Position

BINARY = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow"}
UNARY = {ast.USub: "neg", ast.Not: "not_"}
COMPARE = {ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge", ast.Eq: "eq", ast.NotEq: "ne"}
BOOLEAN = {ast.And: "and_", ast.Or: "or_"}
COMPARE_WORDS = {ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}

# How the printer writes infix operators: symbol and binding power (higher binds tighter).
INFIX: dict[str, tuple[str, int]] = {
    "or_": ("or", 1),
    "and_": ("and", 2),
    "lt": ("<", 4),
    "le": ("<=", 4),
    "gt": (">", 4),
    "ge": (">=", 4),
    "eq": ("==", 4),
    "ne": ("!=", 4),
    "add": ("+", 5),
    "sub": ("-", 5),
    "mul": ("*", 6),
    "div": ("/", 6),
    "pow": ("**", 8),
}
PREFIX: dict[str, tuple[str, int]] = {"neg": ("-", 7), "not_": ("not ", 3)}


@dataclass(frozen=True)
class Span:
    """Where a node starts inside the formula text (1-based line, 0-based column)."""

    line: int = 1
    col: int = 0


@dataclass(frozen=True)
class Node:
    """Base of all formula nodes. ``span`` is ignored by equality so equal subtrees compare equal."""

    span: Span = field(default=Span(), compare=False, repr=False, kw_only=True)

    def children(self) -> tuple[Node, ...]:
        return ()

    def with_children(self, children: tuple[Node, ...]) -> Node:
        return self

    def walk(self) -> Iterator[Node]:
        """Every node of the tree, parents before children."""
        yield self
        for child in self.children():
            yield from child.walk()


@dataclass(frozen=True)
class Num(Node):
    value: float


@dataclass(frozen=True)
class Text(Node):
    """A quoted text, compared with a text column of a file in a source's filter or computed column:
    ``side == 'BUY'``."""

    value: str

    def source(self) -> str:
        return repr(self.value)


@dataclass(frozen=True)
class Duration(Node):
    """A span of time as written in a window argument: ``5m``, ``30s``, ``250ms``, ``1h``."""

    seconds: float

    def source(self) -> str:
        for unit, size in (("h", 3600.0), ("m", 60.0), ("s", 1.0)):
            if self.seconds >= size and self.seconds % size == 0:
                return f"{int(self.seconds // size)}{unit}"
        return f"{_fmt_num(self.seconds * 1000)}ms"


DURATION = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(ms|s|m|h)(?![\w.])")
UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _mask_durations(source: str) -> tuple[str, dict[tuple[int, int], float]]:
    """The text with each duration (``5m``) replaced by underscores of the same length, which Python parses as
    a name at the same position, and the seconds of each by its (line, column)."""
    found: dict[tuple[int, int], float] = {}
    lines = source.split("\n")
    for number, line in enumerate(lines, start=1):
        for match in DURATION.finditer(line):
            found[(number, match.start())] = float(match.group(1)) * UNIT_SECONDS[match.group(2)]
        lines[number - 1] = DURATION.sub(lambda m: "_" * len(m.group(0)), line)
    return "\n".join(lines), found


def _unmask_durations(tree: Node, found: dict[tuple[int, int], float]) -> Node:
    def fn(n: Node) -> Node:
        if (
            isinstance(n, Name)
            and len(n.parts) == 1
            and (n.span.line, n.span.col) in found
            and not n.parts[0].strip("_")
        ):
            return Duration(found[(n.span.line, n.span.col)], span=n.span)
        return n

    return transform(tree, fn)


@dataclass(frozen=True)
class Name(Node):
    """A dotted name as written: ``vwap``, ``trades.price``, ``mes.trades.price``."""

    parts: tuple[str, ...]

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class Call(Node):
    """An operator applied to arguments; infix and prefix operators are calls too (``add``, ``neg``)."""

    op: str
    args: tuple[Node, ...]
    kwargs: tuple[tuple[str, Node], ...] = ()
    kwarg_spans: tuple[Span, ...] = field(default=(), compare=False, repr=False)

    def children(self) -> tuple[Node, ...]:
        return self.args + tuple(v for _, v in self.kwargs)

    def with_children(self, children: tuple[Node, ...]) -> Node:
        n = len(self.args)
        kwargs = tuple((k, v) for (k, _), v in zip(self.kwargs, children[n:], strict=True))
        return replace(self, args=tuple(children[:n]), kwargs=kwargs)


def transform(node: Node, fn: Callable[[Node], Node]) -> Node:
    """Rebuild a tree bottom-up, applying ``fn`` to every node after its children."""
    children = tuple(transform(c, fn) for c in node.children())
    if children != node.children():
        node = node.with_children(children)
    return fn(node)


class FormulaSyntaxError(Exception):
    def __init__(self, message: str, span: Span, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint


def _span(node: ast.AST) -> Span:
    return Span(getattr(node, "lineno", 1), getattr(node, "col_offset", 0))


def _dotted(node: ast.expr) -> tuple[str, ...] | None:
    if isinstance(node, ast.Name):
        return (node.id,)
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else (*head, node.attr)
    return None


def _membership(node: ast.Compare, span: Span) -> Node:
    """``x in ['A', 'B']`` is ``x == 'A' or x == 'B'``; ``not in`` is ``x != 'A' and x != 'B'``."""
    choices = node.comparators[0]
    if not isinstance(choices, ast.List | ast.Tuple) or not choices.elts:
        raise FormulaSyntaxError(
            "'in' takes a list of values", span, "write e.g. exchange in ['N', 'P'] (or not in [...])"
        )
    negate = isinstance(node.ops[0], ast.NotIn)
    left = _operand(node.left)
    tests = [Call("ne" if negate else "eq", (left, _operand(v)), span=span) for v in choices.elts]
    tree = tests[0]
    for test in tests[1:]:
        tree = Call("and_" if negate else "or_", (tree, test), span=span)
    return tree


def _operand(node: ast.expr) -> Node:
    """A side of a comparison: the one place a quoted text may stand."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return Text(node.value, span=_span(node))
    return _convert(node)


def _convert(node: ast.expr) -> Node:
    span = _span(node)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool):
            raise FormulaSyntaxError(
                f"unsupported literal {node.value!r}", span, f"write {int(node.value)} (comparisons give 1 or 0)"
            )
        if isinstance(node.value, str):
            raise FormulaSyntaxError(
                f"unsupported literal {node.value!r}",
                span,
                "a text only compares with a text column of a file, in a source's filter or computed column: "
                f"side == {node.value!r}",
            )
        if not isinstance(node.value, int | float):
            raise FormulaSyntaxError(f"unsupported literal {node.value!r}", span, "only numbers are allowed")
        try:
            value = float(node.value)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            digits = repr(node.value)
            shown = digits if len(digits) <= 24 else f"{digits[:12]}... ({len(digits)} digits)"
            raise FormulaSyntaxError(f"number {shown} is too large", span, "write a finite number")
        return Num(value, span=span)
    if isinstance(node, ast.Name | ast.Attribute):
        parts = _dotted(node)
        if parts is None:
            raise FormulaSyntaxError("only dotted names like trades.price are allowed", span)
        return Name(parts, span=span)
    if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
        return Call(BINARY[type(node.op)], (_convert(node.left), _convert(node.right)), span=span)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        number = _convert(node.operand)  # a negative literal is one number, so trees print and parse back alike
        assert isinstance(number, Num)
        return Num(-number.value, span=span)
    if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY:
        return Call(UNARY[type(node.op)], (_convert(node.operand),), span=span)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd):
        return _convert(node.operand)
    if isinstance(node, ast.Compare):
        for operand in (node.left, *node.comparators):  # a > 0 & b < 1 reads as a > (0 & b) < 1
            if isinstance(operand, ast.BinOp) and type(operand.op) not in BINARY:
                _convert(operand)
        if len(node.ops) == 1 and isinstance(node.ops[0], ast.In | ast.NotIn):
            return _membership(node, span)
        unsupported = [op for op in node.ops if type(op) in COMPARE_WORDS]
        if unsupported:
            raise FormulaSyntaxError(
                f"'{COMPARE_WORDS[type(unsupported[0])]}' is not supported in formulas",
                span,
                "compare numbers with < <= > >= == !=",
            )
        if len(node.ops) != 1 or type(node.ops[0]) not in COMPARE:
            raise FormulaSyntaxError(
                "chained or unsupported comparison", span, "write (a < b) and (b < c); use < <= > >= == !="
            )
        operands = (_operand(node.left), _operand(node.comparators[0]))
        return Call(COMPARE[type(node.ops[0])], operands, span=span)
    if isinstance(node, ast.BoolOp):
        op = BOOLEAN[type(node.op)]
        values = [_convert(v) for v in node.values]
        tree = values[0]
        for v in values[1:]:
            tree = Call(op, (tree, v), span=span)
        return tree
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            method = node.func.attr if isinstance(node.func, ast.Attribute) else "op"
            receiver = _dotted(node.func.value) if isinstance(node.func, ast.Attribute) else None
            target = ".".join(receiver) if receiver else "x"
            raise FormulaSyntaxError(
                "only named operators can be called, e.g. sum(x)",
                span,
                f"write {method}({target}), not {target}.{method}()",
            )
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            raise FormulaSyntaxError("*args and **kwargs are not allowed", span)
        args = tuple(_convert(a) for a in node.args)
        kwargs = tuple((k.arg, _convert(k.value)) for k in node.keywords if k.arg is not None)
        return Call(node.func.id, args, kwargs, kwarg_spans=tuple(_span(k) for k in node.keywords), span=span)
    what = type(node.op).__name__ if isinstance(node, ast.BinOp | ast.UnaryOp) else type(node).__name__
    if what in UNSUPPORTED:
        shown, hint = UNSUPPORTED[what]
        raise FormulaSyntaxError(f"{shown} is not supported in formulas", span, hint)
    raise FormulaSyntaxError(
        f"unsupported syntax ({what})",
        span,
        "formulas use numbers, names, operator calls, + - * / **, comparisons, and/or/not",
    )


# Python syntax a formula may not use, as the user wrote it, and what to write instead.
UNSUPPORTED = {
    "IfExp": ("'a if cond else b'", "write where(cond, a, b)"),
    "Mod": ("'%'", "formulas have no modulo; compute it from other operators"),
    "FloorDiv": ("'//'", "write a / b (formulas divide in floating point)"),
    "BitXor": ("'^'", "write x ** 2 for powers"),
    "BitAnd": ("'&'", "write 'and' (with brackets around comparisons)"),
    "BitOr": ("'|'", "write 'or' (with brackets around comparisons)"),
    "Invert": ("'~'", "write 'not x'"),
    "LShift": ("'<<'", "formulas have no bit shifts"),
    "RShift": ("'>>'", "formulas have no bit shifts"),
    "MatMult": ("'@'", "write * for multiplication"),
    "Lambda": ("a lambda", "formulas are expressions of operators; define a helper feature (publish: false)"),
    "Subscript": ("indexing with [ ]", "write lag(x, k) for an earlier bar"),
    "List": ("a list [ ]", "write one expression; several values are several features"),
    "Tuple": ("a tuple ( , )", "write one expression; several values are several features"),
    "Dict": ("a mapping { }", "write one expression"),
    "Set": ("a set { }", "write one expression"),
    "NamedExpr": ("':='", "write one expression; name parts of it as helper features (publish: false)"),
    "JoinedStr": ("an f-string", "formulas hold numbers, names and operators, no text"),
    "Await": ("'await'", "write one expression of operators"),
    "Yield": ("'yield'", "write one expression of operators"),
    "Starred": ("'*'", "write each argument out"),
    "GeneratorExp": ("a generator", "write one expression of operators"),
    "ListComp": ("a comprehension", "write one expression of operators"),
    "SetComp": ("a comprehension", "write one expression of operators"),
    "DictComp": ("a comprehension", "write one expression of operators"),
    "Slice": ("a slice", "write lag(x, k) for an earlier bar"),
}


@lru_cache(maxsize=8192)  # trees are immutable: a formula bound to 500 instruments is parsed once
def parse(text: str) -> Node:
    """Parse formula text into a tree; raises :class:`FormulaSyntaxError` with a position."""
    source = text.strip()
    if not source:
        raise FormulaSyntaxError("empty formula", Span(), "write an expression, e.g. last(trades.price)")
    if len(source) > MAX_FORMULA_CHARS:
        raise FormulaSyntaxError(
            f"formula is {len(source):,} characters long, over the limit of {MAX_FORMULA_CHARS:,}",
            Span(),
            "split it into helper features (publish: false) that reference each other",
        )
    depth = _nesting(source)
    if depth > MAX_NESTING:
        raise FormulaSyntaxError(
            f"formula nests {depth} brackets deep, over the limit of {MAX_NESTING}",
            Span(),
            "split it into helper features (publish: false) that reference each other",
        )
    _check_characters(source)
    masked, durations = _mask_durations(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)  # e.g. "1and 2": the error or the tree speaks for it
            tree = ast.parse(masked, mode="eval")
        if not source.isascii():
            _columns_as_characters(tree, masked)
        converted = _convert(tree.body)
        if durations:
            converted = _unmask_durations(converted, durations)
    except SyntaxError as exc:
        raise _syntax_error(exc, source) from None
    except ValueError as exc:  # e.g. an integer literal of thousands of digits
        raise FormulaSyntaxError(f"syntax error: {exc}", Span(), "write numbers of ordinary size") from None
    except (RecursionError, MemoryError):
        raise FormulaSyntaxError(
            "formula is too deeply nested to parse", Span(), "split it into helper features (publish: false)"
        ) from None
    if _depth(converted) > MAX_DEPTH:
        raise FormulaSyntaxError(
            f"formula is more than {MAX_DEPTH} operations deep",
            Span(),
            "split it into helper features (publish: false), or sum many terms in groups",
        )
    return converted


# Characters that look like an operator or a digit but are not one: what to write instead.
LOOKALIKES = {
    "\u2212": "-",  # minus sign
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2010": "-",  # hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u00d7": "*",  # multiplication sign
    "\u00b7": "*",  # middle dot
    "\u2219": "*",  # bullet operator
    "\u22c5": "*",  # dot operator
    "\u00f7": "/",  # division sign
    "\u2215": "/",  # division slash
    "\u2264": "<=",
    "\u2265": ">=",
    "\u2260": "!=",
    "\u00a0": "a space",  # no-break space
}


CURLY_QUOTES = frozenset("\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u00ab\u00bb")


def _check_characters(source: str) -> None:
    """Reject characters that Python would silently read as another (full-width letters, ligatures: NFKC) or
    that look like an operator (−, ×, ÷), each at its own position (comments may hold any text)."""
    if source.isascii():
        return
    for number, line in enumerate(source.split("\n"), start=1):
        for col, char in enumerate(line):
            if char == "#":
                break
            if char.isascii():
                continue
            normal = unicodedata.normalize("NFKC", char)
            instead = LOOKALIKES.get(char) or (normal if normal != char and normal.isascii() else "")
            if char in CURLY_QUOTES:
                raise FormulaSyntaxError(
                    f"character '{char}' (U+{ord(char):04X}, a typographic quote) is not allowed in a formula",
                    Span(number, col),
                    "formulas hold no text: remove the quotes (an editor or word processor may have added them)",
                )
            if instead or normal != char:
                name = unicodedata.name(char, "").lower()
                raise FormulaSyntaxError(
                    f"character '{char}' (U+{ord(char):04X}{', ' + name if name else ''}) is not allowed in a formula",
                    Span(number, col),
                    f"write {instead}" if instead == "a space" else f"write '{instead or normal}'",
                )


def _columns_as_characters(tree: ast.AST, source: str) -> None:
    """ast counts columns in UTF-8 bytes; positions count characters, as an editor shows them."""
    lines = source.split("\n")
    for node in ast.walk(tree):
        line, col = getattr(node, "lineno", None), getattr(node, "col_offset", None)
        if line is not None and col is not None and 0 < line <= len(lines):
            node.col_offset = len(lines[line - 1].encode("utf-8")[:col].decode("utf-8", errors="ignore"))


def _syntax_error(exc: SyntaxError, source: str) -> FormulaSyntaxError:
    """A SyntaxError at its position (characters); one at the end of the text says that the formula stops short."""
    lines = source.split("\n")
    line = exc.lineno or 1
    at_end = not exc.offset or line > len(lines) or (line == len(lines) and exc.offset > len(lines[-1].rstrip()))
    if at_end and exc.msg == "invalid syntax":
        return FormulaSyntaxError(
            "syntax error: the formula ends in the middle of an expression",
            Span(len(lines), len(lines[-1].rstrip())),
            "complete the expression, or remove the trailing operator",
        )
    span = Span(line, max((exc.offset or 1) - 1, 0))
    text = lines[line - 1] if line <= len(lines) else ""
    before = "\n".join(lines[: line - 1])
    outside = before.count("(") + before.count("[") <= before.count(")") + before.count("]")
    if 1 < line <= len(lines) and exc.msg == "invalid syntax" and not text[: span.col].strip() and outside:
        return FormulaSyntaxError(
            "syntax error: the formula goes on after a line break outside brackets",
            span,
            "a literal block (|) keeps its line breaks: fold the lines with >-, or wrap the formula in ( )",
        )
    at = text[span.col : span.col + 2]
    word = re.match(r"[a-z]+", text[span.col :])
    if word and keyword.iskeyword(word.group()) and word.group() not in ("and", "or", "not", "if", "else", "lambda"):
        return FormulaSyntaxError(
            f"syntax error: '{word.group()}' is a reserved word and cannot be a name",
            span,
            "rename the feature, column or parameter it names",
        )
    if exc.msg.startswith("invalid syntax") and at[:1] == "=" and at != "==":
        return FormulaSyntaxError(
            "syntax error: '=' does not belong in a formula",
            span,
            "a formula is one expression, named by the feature's 'name:'; compare with ==",
        )
    char = exc.msg.removeprefix("invalid character '")[:1] if exc.msg.startswith("invalid character '") else ""
    if char and not char.isascii():
        return FormulaSyntaxError(
            f"character '{char}' (U+{ord(char):04X}) is not allowed in a formula",
            span,
            "formulas are written in ASCII: + - * / ** < <= > >= == != and, or, not",
        )
    return FormulaSyntaxError(f"syntax error: {exc.msg}", span, "check brackets and operators")


MAX_FORMULA_CHARS = 10_000
MAX_NESTING = 100  # brackets inside brackets
MAX_DEPTH = 200  # operations inside operations (a chain a + b + c ... is as deep as it is long)


def _depth(root: Node) -> int:
    deepest = 0
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.children())
    return deepest


def _nesting(source: str) -> int:
    depth = deepest = 0
    for char in source:
        if char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth -= 1
    return deepest


def _fmt_num(value: float) -> str:
    if not math.isfinite(value):
        return "nan" if value != value else ("1e999" if value > 0 else "-1e999")
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def to_source(node: Node, parent_power: int = 0) -> str:
    """The canonical text of a tree; ``parse(to_source(t)) == t`` for every tree."""
    if isinstance(node, Num):
        text = _fmt_num(node.value)
        return f"({text})" if node.value < 0 else text
    if isinstance(node, Name):
        return node.dotted
    if not isinstance(node, Call):
        return getattr(node, "source", lambda: type(node).__name__)()
    if node.op in INFIX and len(node.args) == 2 and not node.kwargs:
        symbol, power = INFIX[node.op]
        # ** is right-associative; the others associate to the left.
        left_power, right_power = (power + 1, power) if node.op == "pow" else (power, power + 1)
        if power == 4:  # comparisons never chain
            left_power = right_power = power + 1
        text = f"{to_source(node.args[0], left_power)} {symbol} {to_source(node.args[1], right_power)}"
        return f"({text})" if power < parent_power else text
    if node.op == "neg" and len(node.args) == 1 and isinstance(node.args[0], Num) and not node.kwargs:
        return f"neg({to_source(node.args[0])})"  # "-2" would parse back as the number -2
    if node.op in PREFIX and len(node.args) == 1 and not node.kwargs:
        symbol, power = PREFIX[node.op]
        text = f"{symbol}{to_source(node.args[0], power)}"
        return f"({text})" if power < parent_power else text
    parts = [to_source(a) for a in node.args] + [f"{k}={to_source(v)}" for k, v in node.kwargs]
    return f"{node.op}({', '.join(parts)})"


@dataclass(frozen=True)
class Locator:
    """Maps positions inside a formula's text back to its spec file.

    ``segments`` are the (line, col, length) of each source line of the YAML scalar; the formula text is
    those lines joined by one character each, as YAML folds or keeps them.
    """

    file: str
    segments: tuple[tuple[int, int, int], ...]
    text: str

    def at(self, span: Span) -> Position:
        stripped = self.text.strip()
        lines = stripped.split("\n")
        offset = sum(len(line) + 1 for line in lines[: span.line - 1]) + span.col
        if stripped:
            offset += len(self.text) - len(self.text.lstrip())
        start = 0
        for line, col, length in self.segments:
            if offset <= start + length:
                return Position(self.file, line, col + max(offset - start, 0))
            start += length + 1
        if self.segments:
            line, col, length = self.segments[-1]
            return Position(self.file, line, col + length)
        return Position(self.file)


def diagnostic_at(
    where: Position | Locator, span: Span, message: str, hint: str = "", code: str = "formula"
) -> Diagnostic:
    """A diagnostic placed at a node inside a formula."""
    if isinstance(where, Locator):
        return Diagnostic(where.at(span), message, hint, code)
    if span.line <= 1:
        return Diagnostic(Position(where.file, where.line, where.col + span.col), message, hint, code)
    return Diagnostic(Position(where.file, where.line + span.line - 1, span.col + 1), message, hint, code)
