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
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rxpipe.kernels.alerts import TO_CANCELLED, TO_FIRING, TO_PENDING, TO_RESOLVED, transitions
from rxpipe.model import SymbolTable
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
    firing_since: dict[int, int] = field(default_factory=dict)  # symbol id -> ns
    last_notified: dict[int, int] = field(default_factory=dict)
    last_value: dict[int, float] = field(default_factory=dict)
    identity: dict[int, tuple[str, dict[str, str]]] = field(default_factory=dict)
    repeat_due: int = 0  # no repeat is due before this time (ns): most batches skip the scan

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


class _Table:
    """The state machines of an engine's rules, one row per rule and one column per symbol id,
    so that one kernel call walks every rule over a batch."""

    def __init__(self, lives: list[_Live], old: _Table | None) -> None:
        self.lives = lives
        n_rules, n_sym = len(lives), old.n_symbols if old is not None else 8
        self.state = np.zeros((n_rules, n_sym), np.int8)
        self.since = np.zeros((n_rules, n_sym), np.int64)
        self.last_true = np.zeros((n_rules, n_sym), np.int64)
        self.for_ns = np.array([int(lv.rule.for_s * NS) for lv in lives], np.int64)
        self.keep_ns = np.array([int(lv.rule.keep_firing_for_s * NS) for lv in lives], np.int64)
        self.applies = np.zeros((n_rules, n_sym), bool)
        self.applies_known = -1  # how many names the symbol table held when ``applies`` was made
        if old is not None:  # an unchanged rule keeps its alerts' state
            rows = {id(lv): r for r, lv in enumerate(old.lives)}
            for r, lv in enumerate(lives):
                was = rows.get(id(lv))
                if was is not None:
                    self.state[r] = old.state[was]
                    self.since[r] = old.since[was]
                    self.last_true[r] = old.last_true[was]
        self._out = (np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.int8))
        self.scratch = np.zeros(n_sym, bool)  # the kernel's: which symbols a rule must walk

    @property
    def n_symbols(self) -> int:
        return int(self.state.shape[1])

    def ensure(self, n_sym: int, symbols: SymbolTable) -> None:
        """Room for symbol ids below ``n_sym``; which rule watches which symbol, refreshed when
        a name is interned (a name's answer never changes, but new names arrive)."""
        if n_sym > self.n_symbols:
            grow = max(n_sym, 2 * self.n_symbols)
            for name in ("state", "since", "last_true"):
                old = getattr(self, name)
                new = np.zeros((len(self.lives), grow), old.dtype)
                new[:, : old.shape[1]] = old
                setattr(self, name, new)
            self.applies = np.zeros((len(self.lives), grow), bool)
            self.applies_known = -1
            self.scratch = np.zeros(grow, bool)
        known = len(symbols)
        if self.applies_known != known:
            names = [symbols.name(s) for s in range(min(known, self.n_symbols))]
            for r, lv in enumerate(self.lives):
                self.applies[r, : len(names)] = [lv.rule.applies_to(name) for name in names]
            self.applies_known = known

    def outputs(self, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The kernel's output buffers (rule, tick index, kind), at least ``size`` long."""
        if len(self._out[0]) < size:
            self._out = (
                np.empty(size, np.int32),
                np.empty(size, np.int64),
                np.empty(size, np.int8),
            )
        return self._out


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
        self._table = _Table([], None)
        self._lock = threading.Lock()  # set_rules runs on the alert writer's thread
        self.silences: list[Silence] = []
        self.acknowledged: set[str] = set()
        self._muting: dict[str, set[str]] = {}  # symbol -> fingerprints of inhibiting alerts firing
        self.shared = SharedSeries()  # stateful series the rules have in common
        self.set_rules(rules)

    def set_rules(self, rules: list[Rule]) -> None:
        """Hot reload: new and changed rules start fresh; unchanged ones keep their state."""
        with self._lock:
            old = {lv.rule.id: lv for lv in self._table.lives}
            lives: list[_Live] = []
            for rule in rules:
                if not rule.enabled:
                    continue
                kept = old.get(rule.id)
                if kept is not None and kept.rule == rule:
                    lives.append(kept)
                else:
                    lives.append(_Live(rule, rule.compile(self.shared)))
            self._table = _Table(lives, self._table)
            self.shared.retain({k for lv in lives for k in lv.compiled.shared_keys})

    @property
    def rules(self) -> list[Rule]:
        return [lv.rule for lv in self._table.lives]

    def acknowledge(self, fp: str) -> None:
        self.acknowledged.add(fp)

    def firing(self) -> list[tuple[str, str, int]]:
        """(rule id, symbol, since) of every firing alert."""
        return [
            (lv.rule.id, self.symbols.name(s), t)
            for lv in self._table.lives
            for s, t in lv.firing_since.items()
        ]

    def update(self, batch: SignalBatch) -> list[AlertEvent]:
        if not len(batch):
            return []
        with self._lock:
            return self._update(batch)

    def _update(self, batch: SignalBatch) -> list[AlertEvent]:
        ticks = batch.ticks
        table = self._table
        lives = table.lives
        table.ensure(int(ticks.symbol.max()) + 1, self.symbols)
        fired = np.empty((len(lives), len(ticks)), bool)
        looked_at = []
        self.shared.begin(batch)
        try:
            for r, lv in enumerate(lives):
                fired[r] = lv.compiled.condition(batch)
                looked_at.append(lv.compiled.looked_at(batch))
        finally:
            self.shared.end()
        rule, idx, kind = table.outputs(fired.size)
        n = transitions(
            ticks.symbol,
            ticks.ts,
            np.isfinite(ticks.price),
            fired,
            table.applies,
            table.for_ns,
            table.keep_ns,
            table.state,
            table.since,
            table.last_true,
            rule,
            idx,
            kind,
            table.scratch,
            np.empty(len(ticks), np.int64),
        )
        events: list[tuple[int, int, AlertEvent]] = []
        for r, i, k in zip(rule[:n].tolist(), idx[:n].tolist(), kind[:n].tolist(), strict=True):
            at, looked = int(ticks.ts[i]), looked_at[r]
            value = float(looked[i] if np.ndim(looked) else looked)
            events.append(
                (at, r, self._event(lives[r], int(ticks.symbol[i]), _STATE[k], at, value))
            )
        now = int(ticks.ts[-1])
        for r, lv in enumerate(lives):
            if lv.last_notified and now >= lv.repeat_due:
                events += [(t, r, e) for t, e in self._repeats(lv, now)]
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
            lv.repeat_due = min(lv.repeat_due, at)  # the next repeat scan includes it
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
        if every <= 0 or now < lv.repeat_due:
            return out
        due = 2**63 - 1
        for sym, last in list(lv.last_notified.items()):
            if now - last < every:
                due = min(due, last + every)
                continue
            if lv.fingerprint_labels(self.symbols, sym)[0] in self.acknowledged:
                due = now  # looked at again next batch: an acknowledgement can be withdrawn
                continue
            lv.last_notified[sym] = now
            due = min(due, now + every)
            value = lv.last_value.get(sym, float("nan"))
            out.append(
                (now, self._make(lv, sym, "firing", now, value, lv.firing_since[sym], repeat=True))
            )
        lv.repeat_due = due
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
