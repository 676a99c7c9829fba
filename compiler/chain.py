"""Option chains in the compiler: the checks of a chain source (``contract:``) and the resolution of the chain
operators (:mod:`fspec.operators.chain`) into bar nodes of the chain's instrument.

A chain operator's tree is ``Apply(op, (Column(source, CHAIN_COLUMN, instrument),), constants, BAR)``: the
column leaf names the chain source and the instrument whose chain it is (so that the member-relative trees,
the features' sources and their lineage treat it like any source read), and the constants hold the expiry rule
(``min_minutes``) and the operator's own (``delta``). Lowering makes it a slot of the chain source
(:func:`fspec.compiler.lower.plan`), computed by :mod:`fspec.runtime.chain`.
"""

from __future__ import annotations

import difflib
import math
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fspec.compiler import ir
from fspec.compiler.formula import Call, Name, Node, Num
from fspec.compiler.yamlsrc import SourceDoc
from fspec.errors import Diagnostic
from fspec.operators import REGISTRY
from fspec.operators.chain import ROWS_KIND, TRADES_KIND

if TYPE_CHECKING:
    from fspec.compiler.model import InstrumentSpec, SourceSpec
    from fspec.compiler.resolve import ResolveContext

CHAIN_COLUMN = "contracts"  # the leaf's column: the chain as a whole, never a file column
RULES = "nearest(min_minutes=M): the first expiry settling at least M minutes after the bar end"
QUOTE_COLUMNS = ("bid", "ask")
TRADE_COLUMNS = ("price", "size")
BOOK_COLUMNS = ("bid_size", "ask_size")  # what option_ofi reads of a chain of quotes
# the keys of contract: that are the terms of a chain of quotes; a chain of trades takes its quotes' terms
TERMS = ("settlement", "timezone", "rate", "dividend_yield", "forward", "underlying", "day_count", "multiplier")


def is_chain(project_sources: dict[str, SourceSpec], name: str) -> bool:
    return name in project_sources and project_sources[name].contract is not None


def chain_problems(
    sources: dict[str, SourceSpec], instruments: dict[str, InstrumentSpec], doc: SourceDoc
) -> list[Diagnostic]:
    """A chain source has bid and ask columns, a known settlement zone and a usable underlying; nothing attaches
    its rows to another source or the other way round, and each instrument reading it reads its underlying."""
    problems = []
    for src in sources.values():
        contract = src.contract
        if contract is None:
            if src.asof_source and is_chain(sources, src.asof_source):
                problems.append(
                    Diagnostic(
                        doc.pos(("sources", src.name, "asof", "source")),
                        f"'{src.asof_source}' is an option chain: its rows are quotes of many contracts, no one of "
                        "which prevails at a row of another source",
                        "read the chain with its operators (iv_atm, iv_delta, ...) in a feature",
                    )
                )
            continue
        at = ("sources", src.name, "contract")
        names = {c.name for c in src.columns}
        if contract.quotes is not None:
            problems += _trades_problems(src, sources, instruments, doc)
            continue
        if (*at, "settlement") not in doc.key_pos:
            problems.append(
                Diagnostic(
                    doc.pos(at, key=True),
                    f"option chain '{src.name}' has no settlement: its time to expiry runs to it",
                    'add settlement: "16:00" (the local time on the expiry date), or quotes: SOURCE for a chain '
                    "of trades",
                )
            )
        missing = [c for c in QUOTE_COLUMNS if c not in names]
        if missing:
            problems.append(
                Diagnostic(
                    doc.pos(("sources", src.name, "columns")),
                    f"option chain '{src.name}' has no {' and no '.join(missing)} column: implied volatilities "
                    "are read from each contract's bid and ask",
                    "map them, e.g. columns: {bid: float64, ask: float64}",
                )
            )
        if src.asof_source:
            problems.append(
                Diagnostic(
                    doc.pos(("sources", src.name, "asof"), key=True),
                    f"option chain '{src.name}' cannot attach another source's columns to its quotes",
                    "give the underlying's price with contract: {underlying: {source: ..., column: ...}}",
                )
            )
        if src.bar_width is not None:
            problems.append(
                Diagnostic(
                    doc.pos(("sources", src.name, "bars"), key=True),
                    f"option chain '{src.name}' declares bars: its rows are quotes, each known at its time",
                    "remove 'bars:' (and say kind: events if its times sit on whole seconds)",
                )
            )
        if contract.timezone is not None:
            try:
                ZoneInfo(contract.timezone)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                problems.append(
                    Diagnostic(
                        doc.pos((*at, "timezone")),
                        f"unknown time zone '{contract.timezone}' for the settlement of '{src.name}'",
                        "use an IANA name like America/New_York",
                    )
                )
        if contract.forward == "carry" and contract.underlying_source is None:
            problems.append(
                Diagnostic(
                    doc.pos((*at, "forward")),
                    f"forward: carry reads the underlying's price, but '{src.name}' declares no underlying",
                    "add underlying: {source: SOURCE, column: COLUMN}, or use forward: parity",
                )
            )
        if contract.forward == "parity" and contract.dividend_yield != 0.0:
            problems.append(
                Diagnostic(
                    doc.pos((*at, "dividend_yield")),
                    "dividend_yield is used by forward: carry only: the parity forward already holds the dividends",
                    "remove dividend_yield, or say forward: carry",
                )
            )
        if not all(math.isfinite(v) for v in (contract.rate, contract.dividend_yield)):
            problems.append(Diagnostic(doc.pos(at), f"the rates of '{src.name}' must be finite numbers", ""))
        under = contract.underlying_source
        if under is None:
            continue
        if under not in sources:
            close = difflib.get_close_matches(under, list(sources), n=1, cutoff=0.6)
            problems.append(
                Diagnostic(
                    doc.pos((*at, "underlying", "source")),
                    f"the underlying of '{src.name}' names unknown source '{under}'",
                    f"did you mean '{close[0]}'?" if close else f"defined sources: {', '.join(sorted(sources))}",
                )
            )
            continue
        other = sources[under]
        if other.contract is not None:
            problems.append(
                Diagnostic(
                    doc.pos((*at, "underlying", "source")),
                    f"the underlying of '{src.name}' is '{under}', itself an option chain",
                    "name a source with one price per row, e.g. the index's or the future's quotes",
                )
            )
        elif contract.underlying_column not in other.column_names():
            problems.append(
                Diagnostic(
                    doc.pos((*at, "underlying", "column")),
                    f"source '{under}' has no column '{contract.underlying_column}'",
                    f"its columns: {', '.join(other.column_names())}",
                )
            )
        for inst in instruments.values():
            if src.name in {c for _, c in inst.use} and under not in inst.sources:
                problems.append(
                    Diagnostic(
                        inst.pos,
                        f"instrument '{inst.key}' reads option chain '{src.name}' but not its underlying '{under}'",
                        f"add '{under}' to its sources",
                    )
                )
    return problems


def _trades_problems(
    src: SourceSpec, sources: dict[str, SourceSpec], instruments: dict[str, InstrumentSpec], doc: SourceDoc
) -> list[Diagnostic]:
    """A chain of trades: price and size columns, a chain of quotes to sign them, none of that chain's terms."""
    at = ("sources", src.name, "contract")
    problems = []
    names = {c.name for c in src.columns}
    missing = [c for c in TRADE_COLUMNS if c not in names]
    if missing:
        problems.append(
            Diagnostic(
                doc.pos(("sources", src.name, "columns")),
                f"option trades '{src.name}' have no {' and no '.join(missing)} column: each row is a trade",
                "map them, e.g. columns: {price: float64, size: float64}",
            )
        )
    for key in TERMS:
        if (*at, key) in doc.key_pos:
            problems.append(
                Diagnostic(
                    doc.pos((*at, key), key=True),
                    f"'{key}' of option trades '{src.name}' is a term of its quotes' chain '{src.contract.quotes}'",
                    f"declare it in the contract: of '{src.contract.quotes}' (the trades use its terms)",
                )
            )
    for key, what, given in (
        ("asof", "attach another source's columns", src.asof_source is not None),
        ("bars", "declare bars", src.bar_width is not None),
    ):
        if given:
            problems.append(
                Diagnostic(
                    doc.pos(("sources", src.name, key), key=True),
                    f"option trades '{src.name}' cannot {what}: each trade is signed by its contract's quote "
                    f"prevailing strictly before it, from '{src.contract.quotes}'",
                    f"remove '{key}:'",
                )
            )
    quotes = src.contract.quotes
    where = doc.pos((*at, "quotes"))
    if quotes not in sources:
        close = difflib.get_close_matches(quotes, [n for n, s in sources.items() if s.contract], n=1, cutoff=0.6)
        problems.append(
            Diagnostic(
                where,
                f"the quotes of option trades '{src.name}' name unknown source '{quotes}'",
                f"did you mean '{close[0]}'?" if close else "name an option chain source of quotes (with contract:)",
            )
        )
        return problems
    other = sources[quotes]
    if other.contract is None or other.contract.quotes is not None:
        problems.append(
            Diagnostic(
                where,
                f"the quotes of option trades '{src.name}' are '{quotes}', "
                + (
                    "not an option chain (it has no contract:)"
                    if other.contract is None
                    else "itself a chain of trades"
                ),
                "name the option chain source of the same contracts' quotes (bid, ask)",
            )
        )
        return problems
    for inst in instruments.values():
        if src.name in {c for _, c in inst.use} and quotes not in inst.sources:
            problems.append(
                Diagnostic(
                    inst.pos,
                    f"instrument '{inst.key}' reads option trades '{src.name}' but not their quotes '{quotes}'",
                    f"add '{quotes}' to its sources",
                )
            )
    return problems


def chain_column_error(ctx: ResolveContext, node: Name, source: str) -> Node:
    """``spxw_quotes.bid`` in a formula: the rows of a chain are many contracts, which a reducer would mix."""
    ctx.error(
        node.span,
        f"'{node.dotted}' reads the quotes of every contract of option chain '{source}' as one series",
        f"reduce the chain at each bar end with its operators, e.g. iv_atm({source}, expiry=nearest(min_minutes=30))",
        "grain",
    )
    return ir.Const(float("nan"), grain=ir.INVALID)


def resolve_chain(ctx: ResolveContext, node: Call, bound: dict[str, Node]) -> Node:
    """A chain operator's call -> its bar node, or an invalid node with the problem reported."""
    from fspec.compiler.resolve import Unavailable

    project = ctx.project
    op = REGISTRY[node.op]
    invalid = ir.Const(float("nan"), grain=ir.INVALID)
    first = op.params[0]
    arg = bound[first.name]
    wants_trades = first.kind == TRADES_KIND
    chains = sorted(
        n
        for n, s in project.sources.items()
        if s.contract is not None and (s.contract.quotes is not None) == wants_trades
    )
    rule = ", expiry=nearest(min_minutes=30)" if "expiry" in bound else ""
    example = f"{node.op}({chains[0] if chains else ('option_trades' if wants_trades else 'chain_quotes')}{rule})"
    if not isinstance(arg, Name) or len(arg.parts) > 2:
        ctx.error(arg.span, f"{node.op}() reads an option chain source: name it", f"e.g. {example}", "grain")
        return invalid
    instrument = arg.parts[0] if len(arg.parts) == 2 else ctx.instrument
    source = arg.parts[-1]
    if len(arg.parts) == 2 and arg.parts[0] not in project.instruments:
        ctx.error(arg.span, f"unknown instrument '{arg.parts[0]}'", f"instruments: {', '.join(project.instruments)}")
        return invalid
    if instrument is None:
        ctx.error(
            arg.span,
            f"a cross-asset formula reads chain '{source}' without an instrument",
            f"write e.g. {next(iter(project.instruments))}.{source}",
        )
        return invalid
    if source not in project.sources:
        close = difflib.get_close_matches(source, chains or list(project.sources), n=1, cutoff=0.6)
        ctx.error(
            arg.span,
            f"unknown source '{source}'",
            f"did you mean '{close[0]}'?" if close else f"option chains: {', '.join(chains) or 'none'}",
        )
        return invalid
    concrete = project.sources[project.instruments[instrument].concrete(source)]
    if concrete.contract is None:
        ctx.error(
            arg.span,
            f"{node.op}() reads an option chain, and source '{source}' is not one (it has no contract:)",
            f"option chains: {', '.join(chains)}" if chains else "declare contract: {expiry, strike, right, ...}",
            "grain",
        )
        return invalid
    if (concrete.contract.quotes is not None) != wants_trades:
        ctx.error(
            arg.span,
            f"{node.op}() reads an option chain's {'trades' if wants_trades else 'quotes'}, and '{source}' is a chain "
            f"of {'quotes' if wants_trades else 'trades'}",
            f"e.g. {example}",
            "grain",
        )
        return invalid
    if first.kind == ROWS_KIND:
        missing = [c for c in BOOK_COLUMNS if c not in concrete.column_names()]
        if missing:
            ctx.error(
                arg.span,
                f"{node.op}() reads each contract's bid and ask sizes, and '{source}' has no "
                f"{' and no '.join(missing)} column",
                "map them in its columns:, e.g. {bid_size: float64, ask_size: float64}",
                "grain",
            )
            return invalid
    if source not in project.instruments[instrument].sources:
        raise Unavailable(f"instrument '{instrument}' has no source '{source}'")
    consts: list[tuple[str, float]] = []
    if "expiry" in bound:
        rule = _expiry_rule(ctx, node, bound["expiry"])
        if rule is None:
            return invalid
        consts.append(("min_minutes", rule))
    if "delta" in {p.name for p in op.params}:
        delta = _delta(ctx, node, bound["delta"])
        if delta is None:
            return invalid
        consts.append(("delta", delta))
    return ir.Apply(node.op, (ir.Column(source, CHAIN_COLUMN, instrument),), tuple(sorted(consts)), ir.BAR)


def _number(node: Node) -> float | None:
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Call) and node.op == "neg" and len(node.args) == 1 and isinstance(node.args[0], Num):
        return -node.args[0].value
    return None


def _expiry_rule(ctx: ResolveContext, node: Call, rule: Node) -> float | None:
    """The minutes of ``nearest(min_minutes=M)`` (or ``nearest(M)``)."""
    if not isinstance(rule, Call) or rule.op != "nearest":
        ctx.error(rule.span, f"{node.op}(): expiry is a rule, e.g. expiry=nearest(min_minutes=30)", RULES)
        return None
    given = list(rule.args) + [v for k, v in rule.kwargs if k == "min_minutes"]
    others = [k for k, _ in rule.kwargs if k != "min_minutes"]
    if others or len(given) != 1:
        ctx.error(rule.span, "nearest() takes one argument, min_minutes", RULES)
        return None
    minutes = _number(given[0])
    if minutes is None or not math.isfinite(minutes) or minutes < 0:
        ctx.error(given[0].span, "nearest(): min_minutes is a number of minutes, 0 or more", RULES)
        return None
    return minutes


def _delta(ctx: ResolveContext, node: Call, given: Node) -> float | None:
    value = _number(given)
    if value is None or not (-0.5 <= value <= 0.5) or value == 0:
        ctx.error(
            given.span,
            f"{node.op}(): delta is a number from -0.5 to 0.5 other than 0 (0.25: a call's, -0.25: a put's)",
            f"signature: {REGISTRY[node.op].signature}",
        )
        return None
    return value


def chain_formula(node: ir.Apply) -> Call:
    """The formula text of a resolved chain node, as written: ``iv_atm(spxw.spxw_quotes, expiry=nearest(...))``."""
    leaf = node.args[0]
    assert isinstance(leaf, ir.Column)
    name = Name((leaf.instrument, leaf.source) if leaf.instrument else (leaf.source,))
    consts = dict(node.consts)
    kwargs: list[tuple[str, Node]] = []
    if "delta" in consts:
        kwargs.append(("delta", Num(consts["delta"])))
    if "min_minutes" in consts:
        kwargs.append(("expiry", Call("nearest", (), (("min_minutes", Num(consts["min_minutes"])),))))
    return Call(node.op, (name,), tuple(kwargs))
