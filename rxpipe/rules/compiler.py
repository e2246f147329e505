"""Type-checking and compiling a rule's syntax tree into vectorised evaluation.

A compiled rule evaluates a whole :class:`SignalBatch` at once: every node becomes a small
evaluator that returns a numpy column (one value per tick); stateful functions (``zscore``,
``sma``, ``ema``, ``change_pct``, ``ewma_vol``, ``crosses_above``...) keep per-symbol state
arrays updated by the same numba kernels as the detectors, so a rule gives the same answer
whatever the batching.

>>> from rxpipe.model import TickBatch
>>> from rxpipe.signals import SignalBatch
>>> rule = compile_rule("price > 50000 and volume >= 1e6")
>>> b = TickBatch.from_arrays(symbol=[0, 0], ts=[1, 2], price=[49000.0, 51000.0], volume=[2e6, 2e6])
>>> rule.evaluate(SignalBatch(b, {})).fired.tolist()
[False, True]
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rxpipe.errors import RuleSyntaxError
from rxpipe.kernels import horizon as hz_k
from rxpipe.kernels import moving as ma_k
from rxpipe.kernels import rolling as roll_k
from rxpipe.kernels import volatility as vol_k
from rxpipe.kernels.crossings import crossings
from rxpipe.operators.state import SymbolState
from rxpipe.rules.ast import Binary, Bool, Call, Duration, Name, Node, Number, Unary
from rxpipe.rules.parser import parse
from rxpipe.rules.shared import SharedSeries, canonical
from rxpipe.signals import ANOMALY_TYPES, METHODS, SignalBatch

NUM, BOOL, DUR, WORD = "number", "condition", "duration", "word"
SEVERITY_WORDS = {"low": 0, "medium": 1, "warning": 1, "high": 2, "critical": 3, "info": -1}
FIELDS = ("price", "volume")
_SEED_CHANGE = re.compile(r"^(price|volume)_change_(\d+)(s|m|h|d|w)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

Eval = Callable[[SignalBatch], Any]


@dataclass(frozen=True)
class RuleResult:
    fired: np.ndarray  # bool per tick
    value: np.ndarray  # the value the rule looked at (left side of its first comparison)


@dataclass
class _Compiled:
    type: str
    fn: Eval
    const: Any = None  # for durations, words and constant integers


class CompiledRule:
    """A rule ready to evaluate batches; holds the state of its stateful functions."""

    def __init__(
        self,
        text: str,
        root: Node,
        fn: Eval,
        seen: dict[str, Any],
        shared_keys: frozenset[str] = frozenset(),
    ) -> None:
        self.text = text
        self.root = root
        self._fn = fn
        self._seen = seen  # filled while ``fn`` runs: the value of the first comparison's left side
        self.shared_keys = shared_keys  # the SharedSeries this rule uses

    def condition(self, batch: SignalBatch) -> Any:
        """The condition over ``batch`` as it comes: a bool column, or one bool for every tick.
        Afterwards :meth:`looked_at` says what its first comparison looked at."""
        self._seen.clear()
        return self._fn(batch)

    def looked_at(self, batch: SignalBatch) -> Any:
        """After :meth:`condition`: the left side of the rule's first comparison (a column or
        a constant), or the price when the rule compares nothing."""
        return self._seen.get("value", batch.ticks.price)

    def evaluate(self, batch: SignalBatch, finite: np.ndarray | None = None) -> RuleResult:
        """Whether the rule holds at each tick of ``batch`` (never at a tick without a finite
        price; ``finite`` may be given when many rules evaluate the same batch).

        ``value`` may be a read-only view: index it, do not write to it."""
        fired = np.asarray(self.condition(batch), bool)
        if fired.ndim == 0:
            fired = np.full(len(batch), bool(fired))
        value = np.asarray(self.looked_at(batch), np.float64)
        if value.shape != (len(batch),):
            value = np.broadcast_to(value, (len(batch),))
        ok = np.isfinite(batch.ticks.price) if finite is None else finite
        return RuleResult(fired & ok, value)


class _Compiler:
    def __init__(
        self, text: str, signal_names: frozenset[str] | None, shared: SharedSeries | None
    ) -> None:
        self.text = text
        self.signals = signal_names
        self.shared = shared
        self.shared_keys: set[str] = set()
        self.first_value: Eval | None = None  # the left side of the first comparison compiled
        self.seen_value: dict[str, Any] = {}

    def fail(self, node: Node, message: str) -> RuleSyntaxError:
        return RuleSyntaxError(message, text=self.text, line=node.line, column=node.column)

    def compile(self, node: Node) -> _Compiled:
        if isinstance(node, Number):
            v = node.value
            return _Compiled(NUM, lambda b, v=v: np.float64(v), const=v)
        if isinstance(node, Bool):
            v2 = node.value
            return _Compiled(BOOL, lambda b, v=v2: np.bool_(v), const=v2)
        if isinstance(node, Duration):
            return _Compiled(DUR, lambda b: None, const=node.seconds)
        if isinstance(node, Name):
            return self.name(node)
        if isinstance(node, Unary):
            inner = self.compile(node.operand)
            if node.op == "not":
                self.need(node.operand, inner, BOOL, "'not' applies to a condition")
                return _Compiled(BOOL, lambda b, f=inner.fn: ~np.asarray(f(b), bool))
            self.need(node.operand, inner, NUM, "'-' applies to a number")
            return _Compiled(NUM, lambda b, f=inner.fn: -f(b))
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, Call):
            return self.call(node)
        raise self.fail(node, "unknown construct")  # pragma: no cover

    def need(self, node: Node, c: _Compiled, kind: str, message: str) -> None:
        if c.type != kind:
            raise self.fail(node, f"{message}; found a {c.type}")

    # -- names -------------------------------------------------------------------------------

    def name(self, node: Name) -> _Compiled:
        n = node.name
        if n in FIELDS:
            return _Compiled(NUM, lambda b, n=n: getattr(b.ticks, n))
        m = _SEED_CHANGE.match(n)
        if m:  # the seed's spelling: price_change_4h = change_pct(price, 4h)
            seconds = int(m.group(2)) * _UNIT_S[m.group(3)]
            call = Call(
                node.line,
                node.column,
                "change_pct",
                (
                    Name(node.line, node.column, m.group(1)),
                    Duration(node.line, node.column, float(seconds), f"{seconds}s"),
                ),
            )
            return self.call(call)
        if n == "severity":
            return _Compiled(NUM, _max_severity)
        if n.lower() in SEVERITY_WORDS or n in ANOMALY_TYPES:
            return _Compiled(WORD, lambda b: None, const=n.lower())
        if self.signals is not None and n not in self.signals:
            known = ", ".join(sorted({*FIELDS, "severity", *self.signals}))
            raise self.fail(
                node, f"unknown name {n!r}; expected one of {known}, or price_change_4h-style"
            )
        return _Compiled(NUM, lambda b, n=n: _column(b, n))

    # -- operators ---------------------------------------------------------------------------

    def binary(self, node: Binary) -> _Compiled:
        left, right = self.compile(node.left), self.compile(node.right)
        op = node.op
        if op in ("and", "or"):
            self.need(node.left, left, BOOL, f"'{op}' joins conditions")
            self.need(node.right, right, BOOL, f"'{op}' joins conditions")
            if op == "and":
                return _Compiled(
                    BOOL, lambda b, lhs=left.fn, rhs=right.fn: np.logical_and(lhs(b), rhs(b))
                )
            return _Compiled(
                BOOL, lambda b, lhs=left.fn, rhs=right.fn: np.logical_or(lhs(b), rhs(b))
            )
        if op in ("+", "-", "*", "/", "%"):
            self.need(node.left, left, NUM, f"'{op}' needs numbers")
            self.need(node.right, right, NUM, f"'{op}' needs numbers")
            f = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": _divide, "%": _mod}[op]
            return _Compiled(NUM, lambda b, lhs=left.fn, rhs=right.fn, f=f: f(lhs(b), rhs(b)))
        if (
            left.type == NUM
            and right.type == WORD
            and isinstance(node.left, Name)
            and node.left.name == "severity"
        ):
            if right.const not in SEVERITY_WORDS:
                raise self.fail(
                    node.right,
                    f"unknown severity {right.const!r}; expected low, medium, high or critical",
                )
            level = float(SEVERITY_WORDS[right.const])
            right = _Compiled(NUM, lambda b, v=level: v, const=level)
        self.need(node.left, left, NUM, f"'{op}' compares numbers")
        self.need(node.right, right, NUM, f"'{op}' compares numbers")
        cmp = {  # numpy compares NaN without a warning: no errstate needed (tested)
            "<": np.less,
            "<=": np.less_equal,
            ">": np.greater,
            ">=": np.greater_equal,
            "==": np.equal,
            "!=": np.not_equal,
        }[op]
        return _Compiled(BOOL, self.comparison(cmp, left, right))

    def comparison(self, cmp: Any, left: _Compiled, right: _Compiled) -> Eval:
        """One closure per comparison (rules are mostly a column against a constant, and
        every call costs per batch); the first comparison compiled also remembers the value
        it looked at, the alert's value."""
        lhs, rhs = left.fn, right.fn
        record = self.first_value is None
        seen = self.seen_value
        if record:
            self.first_value = lhs
        if right.const is not None:
            k = float(right.const)
            if record:

                def against_constant_seen(b: SignalBatch) -> Any:
                    x = seen["value"] = lhs(b)
                    return cmp(x, k)

                return against_constant_seen
            return lambda b: cmp(lhs(b), k)
        if record:

            def compare_seen(b: SignalBatch) -> Any:
                x = seen["value"] = lhs(b)
                return cmp(x, rhs(b))

            return compare_seen
        return lambda b: cmp(lhs(b), rhs(b))

    # -- functions ---------------------------------------------------------------------------

    def call(self, node: Call) -> _Compiled:
        name = node.func
        spec = _FUNCTIONS.get(name)
        if spec is None:
            raise self.fail(
                node, f"unknown function {name}(); expected one of {', '.join(sorted(_FUNCTIONS))}"
            )
        lo, hi = spec
        if not lo <= len(node.args) <= hi:
            want = f"{lo}" if lo == hi else f"{lo} to {hi}"
            raise self.fail(node, f"{name}() takes {want} argument(s), found {len(node.args)}")
        if name == "anomaly":  # its argument is a word, not an expression
            return self.fn_anomaly(node, [])
        args = [self.compile(a) for a in node.args]
        build = getattr(self, f"fn_{name}")
        if name not in _STATEFUL:
            return build(node, args)
        made = build(node, args)  # type-checks, even when a shared series exists already
        key = canonical(node)
        if made.type == NUM:  # a series the detectors may compute already: read theirs
            made = _Compiled(NUM, _published_or_own(key, made.fn))
        if self.shared is None:
            return made
        self.shared_keys.add(key)
        return self.shared.get(key, lambda: made)

    def window_arg(self, node: Node, c: _Compiled, what: str) -> tuple[str, float]:
        if c.type == DUR:
            if c.const <= 0:
                raise self.fail(node, f"{what} must be a positive duration")
            return "time", float(c.const)
        if c.type == NUM and c.const is not None and float(c.const).is_integer() and c.const >= 2:
            return "count", float(c.const)
        raise self.fail(
            node, f"{what} is a whole number of ticks (at least 2) or a duration such as 5m"
        )

    def fn_abs(self, node: Call, a: list[_Compiled]) -> _Compiled:
        self.need(node.args[0], a[0], NUM, "abs() takes a number")
        return _Compiled(NUM, lambda b, f=a[0].fn: np.abs(f(b)))

    def _minmax(self, node: Call, a: list[_Compiled], f: Any) -> _Compiled:
        for arg, c in zip(node.args, a, strict=True):
            self.need(arg, c, NUM, f"{node.func}() takes numbers")
        return _Compiled(NUM, lambda b, lhs=a[0].fn, rhs=a[1].fn: f(lhs(b), rhs(b)))

    def fn_min(self, node: Call, a: list[_Compiled]) -> _Compiled:
        return self._minmax(node, a, np.minimum)

    def fn_max(self, node: Call, a: list[_Compiled]) -> _Compiled:
        return self._minmax(node, a, np.maximum)

    def fn_zscore(self, node: Call, a: list[_Compiled]) -> _Compiled:
        self.need(node.args[0], a[0], NUM, "zscore() takes a number series first")
        kind, w = self.window_arg(node.args[1], a[1], "zscore()'s window")
        if kind == "count":
            st = SymbolState(
                buf=(0.0, (int(w),)), count=(0, (), np.int64), mean=(0.0, ()), m2=(0.0, ())
            )

            def z_count(b: SignalBatch, f: Eval = a[0].fn) -> np.ndarray:
                x, sym = _series(f(b), b), b.ticks.symbol
                _ensure(st, sym)
                m, s, z = np.empty(len(x)), np.empty(len(x)), np.empty(len(x))
                roll_k.rolling_count(
                    sym, x, st["buf"], st["count"], st["mean"], st["m2"], 2, m, s, z
                )
                return z

            return _Compiled(NUM, z_count)
        cap = 65_536
        tst = SymbolState(
            vals=(0.0, (cap,)),
            tss=(0, (cap,), np.int64),
            head=(0, (), np.int64),
            size=(0, (), np.int64),
            mean=(0.0, ()),
            m2=(0.0, ()),
            ops=(0, (), np.int64),
        )

        def z_time(b: SignalBatch, f: Eval = a[0].fn) -> np.ndarray:
            x, sym = _series(f(b), b), b.ticks.symbol
            _ensure(tst, sym)
            m, s, z = np.empty(len(x)), np.empty(len(x)), np.empty(len(x))
            roll_k.rolling_time(
                sym,
                b.ticks.ts,
                x,
                int(w * 1e9),
                tst["vals"],
                tst["tss"],
                tst["head"],
                tst["size"],
                tst["mean"],
                tst["m2"],
                tst["ops"],
                2,
                m,
                s,
                z,
            )
            return z

        return _Compiled(NUM, z_time)

    def fn_sma(self, node: Call, a: list[_Compiled]) -> _Compiled:
        self.need(node.args[0], a[0], NUM, "sma() takes a number series first")
        kind, w = self.window_arg(node.args[1], a[1], "sma()'s window")
        if kind != "count":
            raise self.fail(node.args[1], "sma()'s window is a number of ticks")
        st = SymbolState(buf=(0.0, (int(w),)), count=(0, (), np.int64), total=(0.0, ()))

        def run(b: SignalBatch, f: Eval = a[0].fn) -> np.ndarray:
            x, sym = _series(f(b), b), b.ticks.symbol
            _ensure(st, sym)
            out = np.empty(len(x))
            ma_k.sma(sym, x, st["buf"], st["count"], st["total"], out)
            return out

        return _Compiled(NUM, run)

    def fn_ema(self, node: Call, a: list[_Compiled]) -> _Compiled:
        self.need(node.args[0], a[0], NUM, "ema() takes a number series first")
        kind, span = self.window_arg(node.args[1], a[1], "ema()'s span")
        if kind != "count":
            raise self.fail(node.args[1], "ema()'s span is a number of ticks")
        alpha = 2.0 / (span + 1.0)
        st = SymbolState(value=(0.0, ()), seen=(False, (), np.bool_))

        def run(b: SignalBatch, f: Eval = a[0].fn) -> np.ndarray:
            x, sym = _series(f(b), b), b.ticks.symbol
            _ensure(st, sym)
            out = np.empty(len(x))
            ma_k.ema(sym, x, alpha, st["value"], st["seen"], out)
            return out

        return _Compiled(NUM, run)

    def change_pct(self, node: Node, series: _Compiled, seconds: float) -> _Compiled:
        buckets = hz_k.BUCKETS
        st = SymbolState(
            closes=(np.nan, (hz_k.ring_size(buckets),)),
            cur=(-1, (), np.int64),
            first=(-1, (), np.int64),
            refs=(np.nan, ()),
        )
        h = int(seconds * 1e9)

        def run(b: SignalBatch, f: Eval = series.fn) -> np.ndarray:
            x, sym = _series(f(b), b), b.ticks.symbol
            _ensure(st, sym)
            out = np.empty(len(x))
            hz_k.change_pct(
                sym,
                b.ticks.ts,
                x,
                h,
                max(1, h // buckets),
                st["closes"],
                st["cur"],
                st["first"],
                st["refs"],
                out,
            )
            return out

        return _Compiled(NUM, run)

    def fn_change_pct(self, node: Call, a: list[_Compiled]) -> _Compiled:
        self.need(node.args[0], a[0], NUM, "change_pct() takes a number series first")
        if a[1].type != DUR:
            raise self.fail(node.args[1], "change_pct()'s horizon is a duration such as 1h or 4h")
        return self.change_pct(node, a[0], float(a[1].const))

    def fn_ewma_vol(self, node: Call, a: list[_Compiled]) -> _Compiled:
        self.need(node.args[0], a[0], NUM, "ewma_vol() takes a price series")
        span = 100.0
        if len(a) > 1:
            _, span = self.window_arg(node.args[1], a[1], "ewma_vol()'s span")
        alpha = 2.0 / (span + 1.0)
        st = SymbolState(last=(0.0, ()), var=(0.0, ()), n=(-1, (), np.int64))

        def run(b: SignalBatch, f: Eval = a[0].fn) -> np.ndarray:
            x, sym = _series(f(b), b), b.ticks.symbol
            _ensure(st, sym)
            r, v, z = np.empty(len(x)), np.empty(len(x)), np.empty(len(x))
            vol_k.ewma_volatility(sym, x, alpha, 1, st["last"], st["var"], st["n"], r, v, z)
            return v

        return _Compiled(NUM, run)

    def _cross(self, node: Call, a: list[_Compiled], up: bool) -> _Compiled:
        for arg, c in zip(node.args, a, strict=True):
            self.need(arg, c, NUM, f"{node.func}() compares two number series")

        def directions() -> _Compiled:
            st = SymbolState(prev=(np.nan, ()))

            def run(b: SignalBatch, lhs: Eval = a[0].fn, rhs: Eval = a[1].fn) -> np.ndarray:
                sym = b.ticks.symbol
                x, y = _series(lhs(b), b), _series(rhs(b), b)
                _ensure(st, sym)
                out = np.empty(len(x), np.int8)
                crossings(sym, x, y, st["prev"], out)
                return out

            return _Compiled(NUM, run)

        # crosses_above(x, y) and crosses_below(x, y) read one column of crossing directions
        found = directions()
        if self.shared is not None:
            key = f"crossings({canonical(node.args[0])}, {canonical(node.args[1])})"
            self.shared_keys.add(key)
            found = self.shared.get(key, lambda: found)
        want = 1 if up else -1
        return _Compiled(BOOL, lambda b, f=found.fn: f(b) == want)

    def fn_crosses_above(self, node: Call, a: list[_Compiled]) -> _Compiled:
        return self._cross(node, a, True)

    def fn_crosses_below(self, node: Call, a: list[_Compiled]) -> _Compiled:
        return self._cross(node, a, False)

    def fn_anomaly(self, node: Call, a: list[_Compiled]) -> _Compiled:
        """``anomaly(type)``: an anomaly of that type at the tick, by any method;
        ``anomaly(type, method)``: by that method only (``ensemble`` is the quiet one)."""
        arg = node.args[0]
        if not (isinstance(arg, Name) and arg.name in ANOMALY_TYPES):
            raise self.fail(arg, f"anomaly() takes an anomaly type: {', '.join(ANOMALY_TYPES)}")
        code = ANOMALY_TYPES.index(arg.name)
        method = -1
        if len(node.args) == 2:
            marg = node.args[1]
            if not (isinstance(marg, Name) and marg.name in METHODS):
                raise self.fail(
                    marg, f"anomaly()'s second argument is a method: {', '.join(METHODS)}"
                )
            method = METHODS.index(marg.name)

        def run(b: SignalBatch) -> np.ndarray:
            hit = np.zeros(len(b), bool)
            c = b.anomalies.columns
            if len(c["index"]):
                chosen = c["type"] == code
                if method >= 0:
                    chosen &= c["method"] == method
                hit[c["index"][chosen]] = True
            return hit

        return _Compiled(BOOL, run)


# Functions that keep state per symbol: shared by the rules of an engine (SharedSeries).
# (crosses_above and crosses_below share their column of crossing directions themselves.)
_STATEFUL = frozenset({"zscore", "sma", "ema", "change_pct", "ewma_vol"})

_FUNCTIONS = {
    "abs": (1, 1),
    "min": (2, 2),
    "max": (2, 2),
    "zscore": (2, 2),
    "sma": (2, 2),
    "ema": (2, 2),
    "change_pct": (2, 2),
    "ewma_vol": (1, 2),
    "crosses_above": (2, 2),
    "crosses_below": (2, 2),
    "anomaly": (1, 2),
}


def _series(x: Any, b: SignalBatch) -> np.ndarray:
    """``x`` as a contiguous float column of the batch's length (a constant is repeated)."""
    n = len(b)
    if isinstance(x, np.ndarray) and x.dtype == np.float64 and x.shape == (n,):
        return x if x.flags.c_contiguous else np.ascontiguousarray(x)
    return np.ascontiguousarray(np.broadcast_to(np.asarray(x, np.float64), (n,)))


_last_top: tuple[np.ndarray | None, int] = (None, 0)


def _ensure(st: SymbolState, sym: np.ndarray) -> None:
    """Grow ``st`` to the batch's symbols (the highest id is found once per batch: the rules
    of an engine see the same ``sym`` array one after the other)."""
    global _last_top
    seen, top = _last_top
    if seen is not sym:
        top = int(sym.max()) + 1 if len(sym) else 0
        _last_top = (sym, top)
    st.ensure(top)


def _published_or_own(key: str, own: Eval) -> Eval:
    """The batch's column for the series ``key`` when its producer publishes one
    (``SignalBatch.series``), else the rule's own computation."""

    def run(b: SignalBatch) -> Any:
        column = b.series.get(key)
        got = b.columns.get(column) if column is not None else None
        return own(b) if got is None else got

    return run


def _column(b: SignalBatch, name: str) -> np.ndarray:
    col = b.columns.get(name)
    if col is None:
        return np.full(len(b), np.nan)
    return col


def _max_severity(b: SignalBatch) -> np.ndarray:
    out = np.full(len(b), -2.0)  # below "info": no anomaly at this tick
    c = b.anomalies.columns
    if len(c["index"]):
        np.maximum.at(out, c["index"], c["severity"].astype(np.float64))
    return out


def _divide(a: Any, b: Any) -> Any:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.divide(a, b)


def _mod(a: Any, b: Any) -> Any:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.mod(a, b)


def compile_rule(
    text: str,
    *,
    signal_names: frozenset[str] | None = None,
    shared: SharedSeries | None = None,
) -> CompiledRule:
    """Parse, type-check and compile a rule condition.

    Besides price, volume, severity and the seed's ``price_change_4h`` spellings, a rule may name
    the detector set's signal columns (``signal_names``, by default those of
    :class:`~rxpipe.operators.detectors.DetectorSet`); a column missing from a batch reads NaN.
    Rules compiled with the same ``shared`` registry share their stateful series.
    """
    from rxpipe.operators.detectors import SIGNAL_COLUMNS

    root = parse(text)
    comp = _Compiler(text, SIGNAL_COLUMNS if signal_names is None else signal_names, shared)
    compiled = comp.compile(root)
    if compiled.type != BOOL:
        raise RuleSyntaxError(
            f"a rule is a condition (true or false), but this is a {compiled.type}; compare it, e.g. '> 3'",
            text=text,
            line=root.line,
            column=root.column,
        )
    return CompiledRule(text, root, compiled.fn, comp.seen_value, frozenset(comp.shared_keys))
