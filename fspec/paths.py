"""Source path templates: ``{symbol}``, ``{date}`` (YYYYMMDD) or ``{date:%Y-%m-%d}`` (any strftime of %Y, %m
and %d, as hive partitions write dates), and ``*`` for the part files of a partition (read in name order).

One module for filling a template, matching files against it and reading the date or symbol back, so the
runtime, the universes and ``validate --data`` agree on what a path means.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from string import Formatter

FIELDS = ("symbol", "date")
DATE_CODES = {"%Y": r"\d{4}", "%m": r"\d{2}", "%d": r"\d{2}"}
COMPACT = "%Y%m%d"  # what a plain {date} writes


class _Day:
    """A date that formats as YYYYMMDD, or by the strftime spec of its field."""

    def __init__(self, day: str) -> None:
        self.day = dt.date.fromisoformat(day) if day else None

    def __format__(self, spec: str) -> str:
        return self.day.strftime(spec or COMPACT) if self.day else ""


def date_formats(template: str) -> list[str]:
    """The strftime format of each {date} field (YYYYMMDD for a plain one); none for a malformed template
    (which validate reports as such)."""
    try:
        return [spec or COMPACT for _, name, spec, _ in Formatter().parse(template) if name == "date"]
    except ValueError:
        return []


def bad_date_format(template: str) -> str | None:
    """The first {date:...} spec that is not %Y, %m and %d (each once) with separators, if any."""
    for fmt in date_formats(template):
        rest = re.sub("%[Ymd]", "", fmt)
        if any(fmt.count(code) != 1 for code in DATE_CODES) or not set(rest) <= set("-_./"):
            return fmt
    return None


def fill(template: str, symbol: str, day: str) -> str:
    """The path of ``symbol``'s file of ``day`` (YYYY-MM-DD); '' leaves {date} empty (a file of many days)."""
    return template.format(symbol=symbol, date=_Day(day))


def has_glob(path: str) -> bool:
    return any(c in path for c in "*?[")


def matches(root: Path, template: str, symbol: str | None = None) -> list[tuple[Path, str | None, str | None]]:
    """Every file under ``root`` that the template matches, in name order, with the symbol and the date
    (YYYY-MM-DD) read from its path (None where the template has no such field). ``symbol`` fixes {symbol}."""
    pattern, glob, order = _compile(template, symbol)
    found = []
    for path in sorted(root.glob(glob)):
        match = pattern.fullmatch(path.relative_to(root).as_posix())
        if match is None:
            continue
        symbol_found = match.group("symbol") if "symbol" in order else symbol
        day = None
        if "date" in order:
            try:
                day = dt.datetime.strptime(match.group("date"), order["date"]).date().isoformat()
            except ValueError:
                continue  # digits that are no calendar date
        found.append((path, symbol_found, day))
    return found


def _compile(template: str, symbol: str | None) -> tuple[re.Pattern[str], str, dict[str, str]]:
    regex, glob = "", ""
    order: dict[str, str] = {}
    for literal, name, spec, _ in Formatter().parse(template):
        regex += "".join("[^/]*" if c == "*" else re.escape(c) for c in literal)
        glob += literal
        if name is None:
            continue
        if name == "symbol" and symbol is not None:
            regex += re.escape(symbol)
            glob += symbol
        elif name == "symbol":
            regex += "(?P<symbol>[^/]+)" if "symbol" not in order else "(?P=symbol)"
            order["symbol"] = ""
            glob += "*"
        else:
            fmt = spec or COMPACT
            digits = "".join(DATE_CODES.get(fmt[i : i + 2], re.escape(fmt[i])) for i in _steps(fmt))
            regex += f"(?P<date>{digits})" if "date" not in order else "(?P=date)"
            order["date"] = fmt
            glob += "*"
    return re.compile(regex), glob, order


def _steps(fmt: str) -> list[int]:
    """The start of each token of a strftime format: a %X code or one literal character."""
    steps, i = [], 0
    while i < len(fmt):
        steps.append(i)
        i += 2 if fmt[i] == "%" else 1
    return steps
