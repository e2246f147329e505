"""Every error rxpipe raises, in one tree (catch the branch you can handle)::

    RxpipeError
    ├── ConfigError        a setting is missing, malformed or out of range
    ├── InputError         a tick, row, message or request body is malformed (source, where, reason)
    ├── RuleSyntaxError    a rule condition does not parse (line, column, caret excerpt)
    ├── StorageError       the database could not be reached, migrated or written
    └── NotifyError        a notification channel refused or failed a delivery

Messages say what was wrong, where, and what would be right.
"""

from __future__ import annotations


class RxpipeError(Exception):
    """Base of every rxpipe error."""


class ConfigError(RxpipeError):
    """A setting is missing, malformed or out of range."""


class InputError(RxpipeError):
    """Bad input at a boundary.

    >>> str(InputError("bad price 'abc'", source="ticks.csv", line=7))
    "ticks.csv:7: bad price 'abc'"
    """

    def __init__(self, reason: str, *, source: str = "", line: int | None = None) -> None:
        self.reason = reason
        self.source = source
        self.line = line
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {reason}" if where else reason)


class RuleSyntaxError(RxpipeError):
    """A rule condition that does not parse."""

    def __init__(self, message: str, *, text: str, line: int, column: int) -> None:
        self.message = message
        self.text = text
        self.line = line
        self.column = column
        lines = text.split("\n")
        src_line = lines[line - 1] if 0 < line <= len(lines) else ""
        excerpt = f"{src_line}\n{' ' * (column - 1)}^"
        super().__init__(f"line {line}, column {column}: {message}\n{excerpt}")


class StorageError(RxpipeError):
    """The database could not be reached, migrated or written."""


class NotifyError(RxpipeError):
    """A notification channel refused or failed a delivery."""
