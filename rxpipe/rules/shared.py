"""Stateful sub-expressions shared by the rules of one engine, keyed by their canonical text."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rxpipe.rules.ast import Binary, Bool, Call, Duration, Name, Node, Number, Unary
from rxpipe.signals import SignalBatch

if TYPE_CHECKING:
    from rxpipe.rules.compiler import _Compiled

Eval = Callable[[SignalBatch], Any]


def canonical(node: Node) -> str:
    """The text of an expression, independent of spacing and position (a sharing key).

    >>> from rxpipe.rules.parser import parse
    >>> canonical(parse("ema( price,12 )")) == canonical(parse("ema(price, 12)"))
    True
    """
    if isinstance(node, Number):
        return repr(float(node.value))
    if isinstance(node, Duration):
        return f"{node.seconds!r}s"
    if isinstance(node, Bool):
        return "true" if node.value else "false"
    if isinstance(node, Name):
        return node.name
    if isinstance(node, Unary):
        return f"({node.op} {canonical(node.operand)})"
    if isinstance(node, Binary):
        return f"({canonical(node.left)} {node.op} {canonical(node.right)})"
    if isinstance(node, Call):
        return f"{node.func}({', '.join(canonical(a) for a in node.args)})"
    raise TypeError(f"not a rule node: {node!r}")  # pragma: no cover


class SharedSeries:
    """Stateful sub-expressions shared by the rules of one engine.

    Two rules that both say ``ema(price, 26)`` share one EMA: its state is updated once per
    batch and its column computed once (``begin`` marks the batch being evaluated). A rule
    added later finds the series already warm. ``retain`` drops the series no rule uses.
    """

    def __init__(self) -> None:
        self._series: dict[str, _Compiled] = {}
        self._batch: SignalBatch | None = None
        self._memo: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self._series)

    def begin(self, batch: SignalBatch) -> None:
        self._batch = batch
        self._memo = {}

    def end(self) -> None:
        self._batch = None
        self._memo = {}

    def get(self, key: str, make: Callable[[], _Compiled]) -> _Compiled:
        found = self._series.get(key)
        if found is None:
            found = self._series[key] = make()
        from rxpipe.rules.compiler import _Compiled

        return _Compiled(found.type, self._memoised(key, found.fn))

    def _memoised(self, key: str, fn: Eval) -> Eval:
        def run(b: SignalBatch) -> Any:
            if b is not self._batch:  # evaluated outside an engine batch: no sharing
                return fn(b)
            out = self._memo.get(key)
            if out is None:
                out = self._memo[key] = fn(b)
            return out

        return run

    def retain(self, keys: set[str]) -> None:
        self._series = {k: v for k, v in self._series.items() if k in keys}
