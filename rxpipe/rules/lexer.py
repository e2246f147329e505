"""Tokens of the rule language, with their line and column."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rxpipe.errors import RuleSyntaxError

KEYWORDS = {"and", "or", "not", "true", "false"}
DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}

_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)(?P<unit>ms|s|m|h|d|w)?(?![A-Za-z0-9_])
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|==|!=|&&|\|\||[<>+\-*/%(),!])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # number, duration, name, keyword, op, end
    text: str
    value: float | None
    line: int
    column: int


def tokenize(text: str) -> list[Token]:
    """Split rule text into tokens; anything else is a RuleSyntaxError at its position.

    >>> [t.text for t in tokenize("price > 5e4 and change_pct(price, 4h) >= 15")]
    ['price', '>', '5e4', 'and', 'change_pct', '(', 'price', ',', '4h', ')', '>=', '15', '']
    """
    tokens: list[Token] = []
    pos, line, line_start = 0, 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        col = pos - line_start + 1
        if m is None:
            bad = re.match(r"(?:\d+\.?\d*|\.\d+)[A-Za-z0-9_.]*", text[pos:])
            if bad:
                raise RuleSyntaxError(
                    f"{bad.group(0)!r} is not a number or a duration; write 1e6, 2.5, 30s, 5m, 4h or 1d",
                    text=text,
                    line=line,
                    column=col,
                )
            ch = text[pos]
            hint = "string (rules have no strings)" if ch in "\"'" else f"character {ch!r}"
            raise RuleSyntaxError(
                f"unexpected {hint}; expected a number, a name, an operator or a parenthesis",
                text=text,
                line=line,
                column=col,
            )
        kind = m.lastgroup if m.lastgroup != "unit" else "number"
        if m.group("ws"):
            for k, ch in enumerate(m.group("ws")):
                if ch == "\n":
                    line += 1
                    line_start = pos + k + 1
        elif m.group("number") is not None:
            number = float(m.group("number"))
            unit = m.group("unit")
            if unit:
                tokens.append(
                    Token("duration", m.group(0), number * DURATION_UNITS[unit], line, col)
                )
            else:
                tokens.append(Token("number", m.group(0), number, line, col))
        elif m.group("name") is not None:
            word = m.group("name")
            tokens.append(
                Token("keyword" if word.lower() in KEYWORDS else "name", word, None, line, col)
            )
        else:
            op = {"&&": "and", "||": "or", "!": "not"}.get(m.group("op"), m.group("op"))
            tokens.append(Token("keyword" if op in KEYWORDS else "op", op, None, line, col))
        del kind
        pos = m.end()
    tokens.append(Token("end", "", None, line, pos - line_start + 1))
    return tokens
