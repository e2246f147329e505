"""A hand-written Pratt parser for rule conditions.

Precedence, loosest first: ``or``; ``and``; ``not``; comparisons (``< <= > >= == !=``, not
chained); ``+ -``; ``* / %``; unary minus; calls, names, numbers, durations, parentheses.

>>> parse("price > 50000 and not volume < 2 * sma(volume, 50)")  # doctest: +ELLIPSIS
Binary(line=1, column=1, op='and', left=Binary(...), right=Unary(...))
"""

from __future__ import annotations

from rxpipe.errors import RuleSyntaxError
from rxpipe.rules.ast import Binary, Bool, Call, Duration, Name, Node, Number, Unary
from rxpipe.rules.lexer import Token, tokenize

_BINARY = {
    "or": 1,
    "and": 2,
    "<": 4,
    "<=": 4,
    ">": 4,
    ">=": 4,
    "==": 4,
    "!=": 4,
    "+": 5,
    "-": 5,
    "*": 6,
    "/": 6,
    "%": 6,
}
_NOT = 3
_UNARY_MINUS = 7
_COMPARE = {"<", "<=", ">", ">=", "==", "!="}
MAX_DEPTH = 64


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0
        self.parenthesized: set[int] = set()  # ids of nodes written inside ( )

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def fail(self, message: str, tok: Token | None = None) -> RuleSyntaxError:
        t = tok or self.tok
        return RuleSyntaxError(message, text=self.text, line=t.line, column=t.column)

    def describe(self, t: Token) -> str:
        return "the end of the rule" if t.kind == "end" else repr(t.text)

    def advance(self) -> Token:
        t = self.tok
        self.i += 1
        return t

    def expect(self, text: str, what: str) -> Token:
        if self.tok.text != text or self.tok.kind not in ("op", "keyword"):
            raise self.fail(f"expected {what}, found {self.describe(self.tok)}")
        return self.advance()

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise self.fail("the rule is empty; expected a condition such as price > 50000")
        node = self.expression(0)
        if self.tok.kind != "end":
            raise self.fail(
                f"expected an operator or the end of the rule, found {self.describe(self.tok)}"
            )
        return node

    def expression(self, min_bp: int) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"the rule nests deeper than {MAX_DEPTH} levels")
        left = self.prefix()
        while True:
            t = self.tok
            op = t.text if t.kind in ("op", "keyword") else None
            bp = _BINARY.get(op or "")
            if bp is None or bp <= min_bp:
                break
            self.advance()
            right = self.expression(bp)
            chained = (
                isinstance(left, Binary)
                and left.op in _COMPARE
                and id(left) not in self.parenthesized
            )
            if op in _COMPARE and chained:
                raise self.fail("comparisons cannot be chained; join them with 'and'", t)
            # a binary node sits where its left operand starts, so errors point at the operand
            left = Binary(left.line, left.column, op, left, right)  # type: ignore[arg-type]
        self.depth -= 1
        return left

    def prefix(self) -> Node:
        t = self.advance()
        if t.kind == "number":
            return Number(t.line, t.column, float(t.value or 0.0))
        if t.kind == "duration":
            return Duration(t.line, t.column, float(t.value or 0.0), t.text)
        if t.kind == "keyword" and t.text.lower() in ("true", "false"):
            return Bool(t.line, t.column, t.text.lower() == "true")
        if t.kind == "keyword" and t.text.lower() == "not":
            return Unary(t.line, t.column, "not", self.expression(_NOT))
        if t.kind == "op" and t.text == "-":
            return Unary(t.line, t.column, "-", self.expression(_UNARY_MINUS))
        if t.kind == "op" and t.text == "+":
            return self.expression(_UNARY_MINUS)
        if t.kind == "op" and t.text == "(":
            inner = self.expression(0)
            self.expect(")", f"')' to close the '(' at line {t.line}, column {t.column}")
            self.parenthesized.add(id(inner))
            return inner
        if t.kind == "name":
            if self.tok.kind == "op" and self.tok.text == "(":
                return self.call(t)
            return Name(t.line, t.column, t.text)
        self.i -= 1
        if t.kind == "end":
            raise self.fail("the rule ends too early; expected a value, a name or '('")
        raise self.fail(f"expected a value, a name or '(', found {self.describe(t)}")

    def call(self, name: Token) -> Node:
        self.advance()  # (
        args: list[Node] = []
        if not (self.tok.kind == "op" and self.tok.text == ")"):
            while True:
                args.append(self.expression(0))
                if self.tok.kind == "op" and self.tok.text == ",":
                    self.advance()
                    continue
                break
        self.expect(")", f"',' or ')' in the arguments of {name.text}()")
        return Call(name.line, name.column, name.text, tuple(args))


def parse(text: str) -> Node:
    """The syntax tree of a rule condition; a RuleSyntaxError names the line and column."""
    if not isinstance(text, str):
        raise RuleSyntaxError("a rule condition is text", text="", line=1, column=1)
    return _Parser(text).parse()
