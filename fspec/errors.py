"""Every error fspec reports to a user.

Each class owns its exit code and knows how to render itself as ``file:line:col: message`` plus an
optional hint. The CLI is the only place that catches them and exits.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Position:
    """A place in a spec file; ``line`` and ``col`` are 1-based, 0 means unknown."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        if self.col <= 0:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.col}"

    def shifted(self, line_offset: int, col: int) -> Position:
        return Position(self.file, self.line + line_offset, col)


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in the specs: where, what, and how to fix it."""

    position: Position
    message: str
    hint: str = ""
    code: str = "spec"

    def __post_init__(self) -> None:
        # One diagnostic is one line (and one hint line): user text quoted in it keeps its newlines escaped.
        object.__setattr__(self, "message", _one_line(self.message))
        object.__setattr__(self, "hint", _one_line(self.hint))

    def render(self) -> str:
        text = f"{self.position}: {self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.position.file,
            "line": self.position.line,
            "col": self.position.col,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }


def _one_line(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class FspecError(Exception):
    """Base of all user-facing errors. Each one pickles as itself (an engine's workers raise them in other
    processes, and the client reports them as the local run does)."""

    exit_code = 1

    def render(self) -> str:
        return str(self)


class SpecError(FspecError):
    """One or more problems in the spec files; carries every diagnostic found, not just the first.

    ``diagnostics`` are the first ``LIMIT`` in file order (what is shown), ``total`` how many were found."""

    LIMIT = 100  # a broken source or project key can make every formula wrong: the first hundred say enough

    def __init__(self, diagnostics: list[Diagnostic]):
        ordered = sorted(diagnostics, key=lambda d: (d.position.file, d.position.line, d.position.col, d.message))
        self.total = len(ordered)
        self.diagnostics = ordered[: self.LIMIT]
        super().__init__(self.render())

    def __reduce__(self) -> tuple[type, tuple[list[Diagnostic]]]:
        return type(self), (self.diagnostics,)

    def render(self) -> str:
        lines = [d.render() for d in self.diagnostics]
        n = self.total
        summary = f"{n} error{'s' if n != 1 else ''} in specs"
        if n > len(self.diagnostics):
            summary += f" (the first {len(self.diagnostics)} shown: fix them and validate again)"
        lines.append(summary)
        return "\n".join(lines)


class DataError(FspecError):
    """Input data that cannot be used as it is: names the file and the fix."""

    def __init__(self, file: str, message: str, hint: str = ""):
        self.file = file
        self.message = message
        self.hint = hint
        super().__init__(self.render())

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:
        return type(self), (self.file, self.message, self.hint)

    def render(self) -> str:
        text = f"{self.file}: {self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


class OutputError(DataError):
    """An output file that cannot be written (disk full, permissions); nothing partial is left behind."""


class BuildError(FspecError):
    """The build directory is missing, stale or corrupt."""

    def __init__(self, message: str, hint: str = ""):
        self.message = message
        self.hint = hint
        super().__init__(self.render())

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return type(self), (self.message, self.hint)

    def render(self) -> str:
        return self.message + (f"\n    hint: {self.hint}" if self.hint else "")


class ToolchainError(BuildError):
    """A tool that building needs is not installed (``fspec compile --aot``: a C compiler, Python's headers)."""


class UsageError(FspecError):
    """A command-line argument that does not fit the project (unknown date, interval, column)."""

    exit_code = 2

    def __init__(self, message: str, hint: str = ""):
        self.message = message
        self.hint = hint
        super().__init__(self.render())

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return type(self), (self.message, self.hint)

    def render(self) -> str:
        return self.message + (f"\n    hint: {self.hint}" if self.hint else "")


class ClusterError(UsageError):
    """A cluster a run cannot use: its scheduler unreachable, no workers, a worker with another fspec version."""
