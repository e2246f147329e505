"""Alerts from rules: the state machine per (rule, symbol), silences, inhibition, repeats.

>>> from rxpipe.model import SymbolTable, TickBatch
>>> from rxpipe.rules.model import Rule
>>> from rxpipe.signals import SignalBatch
>>> syms = SymbolTable(["BTCUSDT"])
>>> engine = AlertEngine([Rule(name="breakout", condition="price > 50000")], syms)
>>> b = TickBatch.from_arrays(symbol=[0, 0, 0], ts=[1, 2, 3], price=[49e3, 51e3, 49e3], volume=[1.0] * 3)
>>> [(e.state, e.at) for e in engine.update(SignalBatch(b, {}))]
[('firing', 2), ('resolved', 3)]
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rxpipe.kernels.alerts import TO_CANCELLED, TO_FIRING, TO_PENDING, TO_RESOLVED, transitions
from rxpipe.model import SymbolTable
from rxpipe.operators.state import SymbolState
from rxpipe.rules.compiler import CompiledRule, SharedSeries
from rxpipe.rules.model import SEVERITIES, Rule
from rxpipe.signals import SignalBatch
from rxpipe.templates import render_template
from rxpipe.timestamps import iso

log = logging.getLogger(__name__)

_STATE = {
    TO_PENDING: "pending",
    TO_FIRING: "firing",
    TO_RESOLVED: "resolved",
    TO_CANCELLED: "inactive",
}
NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Silence:
    """Mutes alerts whose labels match every matcher (exact values) between two times (ns)."""

    id: str
    matchers: dict[str, str]
    starts_at: int
    ends_at: int
    comment: str = ""

    def mutes(self, labels: dict[str, str], at: int) -> bool:
        return self.starts_at <= at < self.ends_at and all(
            labels.get(k) == v for k, v in self.matchers.items()
        )


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A change of an alert's state (or a repeat of a firing alert's notification)."""

    fingerprint: str
    rule_id: str
    rule_name: str
    symbol: str
    state: str  # pending, firing, resolved, inactive (a pending alert that did not last)
    severity: str
    at: int  # ns
    value: float
    labels: dict[str, str]
    annotations: dict[str, str]
    started_at: int
    silenced: bool = False
    inhibited: bool = False
    repeat: bool = False
    channels: tuple[str, ...] = ("log",)

    @property
    def status(self) -> str:
        """The seed's status for old clients: active, resolved or silenced."""
        if self.silenced or self.inhibited:
            return "silenced"
        return "resolved" if self.state in ("resolved", "inactive") else "active"

    def to_json(self) -> dict[str, Any]:
        """The seed's Alert fields (``id``, ``alert_rule_id``, ``current_value`` ...) and ours."""
        return {
            "id": self.fingerprint,
            "alert_rule_id": self.rule_id,
            "name": self.rule_name,
            "severity": self.severity,
            "status": self.status,
            "state": self.state,
            "symbol": self.symbol,
            "current_value": self.value if math.isfinite(self.value) else None,
            "triggered_at": iso(self.started_at),
            "resolved_at": iso(self.at) if self.state == "resolved" else None,
            "at": iso(self.at),
            "labels": self.labels,
            "annotations": self.annotations,
            "silenced": self.silenced,
            "inhibited": self.inhibited,
            "repeat": self.repeat,
        }

    @property
    def notify(self) -> bool:
        """Whether this event should reach the notification channels."""
        return self.state in ("firing", "resolved") and not self.silenced and not self.inhibited


@dataclass
class _Live:
    rule: Rule
    compiled: CompiledRule
    state: SymbolState = field(
        default_factory=lambda: SymbolState(
            state=(0, (), np.int8), since=(0, (), np.int64), last_true=(0, (), np.int64)
        )
    )
    firing_since: dict[int, int] = field(default_factory=dict)  # symbol id -> ns
    last_notified: dict[int, int] = field(default_factory=dict)
    last_value: dict[int, float] = field(default_factory=dict)
    applies: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # per symbol id
    applies_known: int = 0  # how many symbols the table held when ``applies`` was made
    identity: dict[int, tuple[str, dict[str, str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.for_ns = int(self.rule.for_s * NS)
        self.keep_ns = int(self.rule.keep_firing_for_s * NS)

    def applies_to(self, symbols: SymbolTable, n: int) -> np.ndarray:
        """Whether the rule watches each symbol id below ``n`` (cached until a symbol is
        interned: a name's answer never changes, but new names arrive)."""
        known = len(symbols)
        if len(self.applies) < n or self.applies_known != known:
            self.applies = np.array(
                [s < known and self.rule.applies_to(symbols.name(s)) for s in range(n)], bool
            )
            self.applies_known = known
        return self.applies[:n]

    def fingerprint_labels(self, symbols: SymbolTable, sym: int) -> tuple[str, dict[str, str]]:
        """The alert's fingerprint and labels for a symbol (computed once per symbol)."""
        found = self.identity.get(sym)
        if found is None:
            rule, name = self.rule, symbols.name(sym)
            labels = {
                **rule.labels,
                "alertname": rule.name,
                "rule": rule.id,
                "symbol": name,
                "severity": rule.severity,
            }
            found = self.identity[sym] = (fingerprint(rule.id, name, rule.labels), labels)
        return found


def fingerprint(rule_id: str, symbol: str, labels: dict[str, str]) -> str:
    text = "\x1f".join([rule_id, symbol, *(f"{k}={v}" for k, v in sorted(labels.items()))])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class AlertEngine:
    """Evaluates rules on signal batches and turns their conditions into alert events.

    ``update(batch)`` returns the events of the batch in time order. Rules can be replaced
    while running (``set_rules``): an unchanged rule keeps its alerts' state.
    """

    def __init__(
        self, rules: list[Rule], symbols: SymbolTable, *, inhibit_below: str = "critical"
    ) -> None:
        self.symbols = symbols
        self.inhibit_below = inhibit_below
        self._live: dict[str, _Live] = {}
        self.silences: list[Silence] = []
        self.acknowledged: set[str] = set()
        self._muting: dict[str, set[str]] = {}  # symbol -> fingerprints of inhibiting alerts firing
        self.shared = SharedSeries()  # stateful series the rules have in common
        self.set_rules(rules)

    def set_rules(self, rules: list[Rule]) -> None:
        """Hot reload: new and changed rules start fresh; unchanged ones keep their state."""
        live: dict[str, _Live] = {}
        for rule in rules:
            if not rule.enabled:
                continue
            old = self._live.get(rule.id)
            if old is not None and old.rule == rule:
                live[rule.id] = old
            else:
                live[rule.id] = _Live(rule, rule.compile(self.shared))
        self._live = live
        self.shared.retain({k for lv in live.values() for k in lv.compiled.shared_keys})

    @property
    def rules(self) -> list[Rule]:
        return [lv.rule for lv in self._live.values()]

    def acknowledge(self, fp: str) -> None:
        self.acknowledged.add(fp)

    def firing(self) -> list[tuple[str, str, int]]:
        """(rule id, symbol, since) of every firing alert."""
        return [
            (rid, self.symbols.name(s), t)
            for rid, lv in self._live.items()
            for s, t in lv.firing_since.items()
        ]

    def update(self, batch: SignalBatch) -> list[AlertEvent]:
        if not len(batch):
            return []
        ticks = batch.ticks
        n_sym = int(ticks.symbol.max()) + 1
        finite = np.isfinite(ticks.price)
        events: list[tuple[int, int, AlertEvent]] = []
        live = self._live  # set_rules may swap it from another thread: use one version
        idx = np.empty(len(ticks), np.int64)
        kind = np.empty(len(ticks), np.int8)
        self.shared.begin(batch)
        try:
            for order, lv in enumerate(live.values()):
                result = lv.compiled.evaluate(batch, finite)
                lv.state.ensure(n_sym)
                n = transitions(
                    ticks.symbol,
                    ticks.ts,
                    result.fired,
                    lv.applies_to(self.symbols, lv.state.n_symbols),
                    lv.for_ns,
                    lv.keep_ns,
                    lv.state["state"],
                    lv.state["since"],
                    lv.state["last_true"],
                    idx,
                    kind,
                )
                if n:
                    for i, k in zip(idx[:n].tolist(), kind[:n].tolist(), strict=True):
                        at = int(ticks.ts[i])
                        value = float(result.value[i])
                        e = self._event(lv, int(ticks.symbol[i]), _STATE[k], at, value)
                        events.append((at, order, e))
                if lv.last_notified:
                    events += [(t, order, e) for t, e in self._repeats(lv, int(ticks.ts[-1]))]
        finally:
            self.shared.end()
        if not events:
            return []
        # time order; at the same time, more severe first (so inhibition applies at once)
        events.sort(key=lambda x: (x[0], -SEVERITIES.index(x[2].severity), x[1]))
        return self._inhibit([e for _, _, e in events])

    def _event(self, lv: _Live, sym: int, state: str, at: int, value: float) -> AlertEvent:
        fp, _ = lv.fingerprint_labels(self.symbols, sym)
        if state == "firing":
            lv.firing_since[sym] = at
            lv.last_notified[sym] = at
            self.acknowledged.discard(fp)  # a new firing needs a new acknowledgement
            started = at
        elif state in ("resolved", "inactive"):
            started = lv.firing_since.pop(sym, at)
            lv.last_notified.pop(sym, None)
        else:
            started = at
        lv.last_value[sym] = value
        return self._make(lv, sym, state, at, value, started)

    def _make(
        self,
        lv: _Live,
        sym: int,
        state: str,
        at: int,
        value: float,
        started: int,
        repeat: bool = False,
    ) -> AlertEvent:
        rule = lv.rule
        fp, labels = lv.fingerprint_labels(self.symbols, sym)
        name = labels["symbol"]
        annotations = (
            _render(
                rule.annotations, symbol=name, value=value, rule=rule.name, severity=rule.severity
            )
            if rule.annotations
            else {}
        )
        return AlertEvent(
            fp,
            rule.id,
            rule.name,
            name,
            state,
            rule.severity,
            at,
            value,
            labels,
            annotations,
            started,
            silenced=bool(self.silences) and any(s.mutes(labels, at) for s in self.silences),
            repeat=repeat,
            channels=tuple(rule.channels),
        )

    def _repeats(self, lv: _Live, now: int) -> list[tuple[int, AlertEvent]]:
        """Firing alerts whose repeat interval has passed, unless acknowledged."""
        every = int(lv.rule.repeat_interval_s * NS)
        out: list[tuple[int, AlertEvent]] = []
        if every <= 0:
            return out
        for sym, last in list(lv.last_notified.items()):
            if now - last < every:
                continue
            if lv.fingerprint_labels(self.symbols, sym)[0] in self.acknowledged:
                continue
            lv.last_notified[sym] = now
            value = lv.last_value.get(sym, float("nan"))
            out.append(
                (now, self._make(lv, sym, "firing", now, value, lv.firing_since[sym], repeat=True))
            )
        return out

    def _inhibit(self, events: list[AlertEvent]) -> list[AlertEvent]:
        """While an alert of ``inhibit_below`` severity fires for a symbol, the symbol's
        lower-severity alerts that fire are marked inhibited (walked in time order)."""
        top = SEVERITIES.index(self.inhibit_below)
        out = []
        for e in events:
            rank = SEVERITIES.index(e.severity)
            muting = self._muting.setdefault(e.symbol, set())
            if rank >= top:
                if e.state == "firing":
                    muting.add(e.fingerprint)
                elif e.state in ("resolved", "inactive"):
                    muting.discard(e.fingerprint)
            elif e.state == "firing" and muting:
                e = AlertEvent(**{**_fields(e), "inhibited": True})
            out.append(e)
        return out


def _fields(e: AlertEvent) -> dict[str, Any]:
    return {name: getattr(e, name) for name in AlertEvent.__slots__}


def _render(templates: dict[str, str], **values: Any) -> dict[str, str]:
    """Fill ``{symbol}``, ``{value}``, ``{value:.2f}`` ... in annotation templates."""
    return {k: render_template(t, values) for k, t in templates.items()}
