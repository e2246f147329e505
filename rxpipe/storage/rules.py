"""Rules, alerts, their history and silences in PostgreSQL."""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterable
from datetime import UTC, datetime

import psycopg
from psycopg.types.json import Jsonb

from rxpipe.rules.engine import AlertEvent, Silence
from rxpipe.rules.model import Rule


def _ts(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


class RuleStore:
    """CRUD over the ``rules`` table; a rule is stored as its JSON fields."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def list(self) -> list[Rule]:
        rows = self.conn.execute("SELECT body FROM rules ORDER BY created_at, id").fetchall()
        return [Rule.model_validate(r[0]) for r in rows]

    def entries(self, rule_id: str | None = None) -> builtins.list[tuple[Rule, datetime, datetime]]:
        """Rules with when they were created and last changed (all, or the one with an id)."""
        rows = self.conn.execute(
            "SELECT body, created_at, updated_at FROM rules "
            "WHERE %s::text IS NULL OR id = %s ORDER BY created_at, id",
            (rule_id, rule_id),
        ).fetchall()
        return [(Rule.model_validate(b), c, u) for b, c, u in rows]

    def get(self, rule_id: str) -> Rule | None:
        row = self.conn.execute("SELECT body FROM rules WHERE id = %s", (rule_id,)).fetchone()
        return Rule.model_validate(row[0]) if row else None

    def save(self, rule: Rule) -> Rule:
        body = rule.model_dump(by_alias=True)
        self.conn.execute(
            "INSERT INTO rules (id, body, enabled) VALUES (%s, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET body = excluded.body, enabled = excluded.enabled, updated_at = now()",
            (rule.id, Jsonb(body), rule.enabled),
        )
        return rule

    def delete(self, rule_id: str) -> bool:
        return self.conn.execute("DELETE FROM rules WHERE id = %s", (rule_id,)).rowcount > 0

    def version(self) -> str:
        """Changes whenever a rule is added, changed or removed (for hot reload)."""
        row = self.conn.execute("SELECT count(*), max(updated_at) FROM rules").fetchone()
        return json.dumps([row[0], str(row[1])]) if row else "[]"

    def seed(self, rules: Iterable[Rule]) -> int:
        """Store the default rules if there are no rules yet; returns how many were stored."""
        with self.conn.transaction():
            self.conn.execute("LOCK TABLE rules IN SHARE ROW EXCLUSIVE MODE")
            row = self.conn.execute("SELECT count(*) FROM rules").fetchone()
            if row and row[0]:
                return 0
            n = 0
            for r in rules:
                self.save(r)
                n += 1
        return n


class AlertStore:
    """Keeps each alert's current state and the history of every state change."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def record(self, events: list[AlertEvent]) -> int:
        if not events:
            return 0
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO alert_events (fingerprint, rule_id, symbol, state, severity, at, value, silenced, "
                "inhibited, repeat) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                [
                    (
                        e.fingerprint,
                        e.rule_id,
                        e.symbol,
                        e.state,
                        e.severity,
                        _ts(e.at),
                        _finite(e.value),
                        e.silenced,
                        e.inhibited,
                        e.repeat,
                    )
                    for e in events
                ],
            )
            cur.executemany(
                "INSERT INTO alerts (fingerprint, rule_id, rule_name, symbol, state, severity, value, started_at, "
                "updated_at, resolved_at, silenced, inhibited, labels, annotations) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (fingerprint) DO UPDATE SET state = excluded.state, value = excluded.value, "
                "started_at = excluded.started_at, updated_at = excluded.updated_at, "
                "resolved_at = excluded.resolved_at, silenced = excluded.silenced, inhibited = excluded.inhibited, "
                "acknowledged = alerts.acknowledged AND excluded.state <> 'firing', "
                "annotations = excluded.annotations",
                [
                    (
                        e.fingerprint,
                        e.rule_id,
                        e.rule_name,
                        e.symbol,
                        e.state,
                        e.severity,
                        _finite(e.value),
                        _ts(e.started_at),
                        _ts(e.at),
                        _ts(e.at) if e.state == "resolved" else None,
                        e.silenced,
                        e.inhibited,
                        Jsonb(e.labels),
                        Jsonb(e.annotations),
                    )
                    for e in events
                    if not e.repeat
                ],
            )
        return len(events)

    def create(
        self,
        fingerprint: str,
        rule_id: str,
        name: str,
        symbol: str,
        severity: str,
        value: float | None,
        labels: dict[str, str],
        annotations: dict[str, str],
        at_ns: int,
    ) -> bool:
        """A firing alert someone raised by hand (``POST /alerts``); False if it exists."""
        with self.conn.transaction():
            cur = self.conn.execute(
                "INSERT INTO alerts (fingerprint, rule_id, rule_name, symbol, state, severity, value, "
                "started_at, updated_at, labels, annotations) VALUES "
                "(%s, %s, %s, %s, 'firing', %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (
                    fingerprint,
                    rule_id,
                    name,
                    symbol,
                    severity,
                    value,
                    _ts(at_ns),
                    _ts(at_ns),
                    Jsonb(labels),
                    Jsonb(annotations),
                ),
            )
            if cur.rowcount:
                self._history(fingerprint, rule_id, symbol, "firing", severity, at_ns, value)
        return cur.rowcount > 0

    def update(
        self,
        fingerprint: str,
        *,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> bool:
        """Replace an alert's labels and/or annotations; False if there is no such alert."""
        return (
            self.conn.execute(
                "UPDATE alerts SET labels = coalesce(%s, labels), "
                "annotations = coalesce(%s, annotations), updated_at = now() WHERE fingerprint = %s",
                (
                    Jsonb(labels) if labels is not None else None,
                    Jsonb(annotations) if annotations is not None else None,
                    fingerprint,
                ),
            ).rowcount
            > 0
        )

    def resolve(self, fingerprint: str, at_ns: int) -> bool:
        """Resolve by hand: the alert is resolved now and its repeats stop; if its condition
        still holds, the rule's next firing (after the condition clears) is a new alert."""
        with self.conn.transaction():
            row = self.conn.execute(
                "UPDATE alerts SET state = 'resolved', resolved_at = %s, updated_at = %s, "
                "acknowledged = true WHERE fingerprint = %s AND state <> 'resolved' "
                "RETURNING rule_id, symbol, severity, value",
                (_ts(at_ns), _ts(at_ns), fingerprint),
            ).fetchone()
            if row is not None:
                self._history(fingerprint, row[0], row[1], "resolved", row[2], at_ns, row[3])
            exists = row is not None or self.exists(fingerprint)
        return exists

    def delete(self, fingerprint: str) -> bool:
        """Forget an alert's current state (its history stays)."""
        return (
            self.conn.execute("DELETE FROM alerts WHERE fingerprint = %s", (fingerprint,)).rowcount
            > 0
        )

    def exists(self, fingerprint: str) -> bool:
        return (
            self.conn.execute(
                "SELECT 1 FROM alerts WHERE fingerprint = %s", (fingerprint,)
            ).fetchone()
            is not None
        )

    def _history(
        self,
        fingerprint: str,
        rule_id: str,
        symbol: str,
        state: str,
        severity: str,
        at_ns: int,
        value: float | None,
    ) -> None:
        self.conn.execute(
            "INSERT INTO alert_events (fingerprint, rule_id, symbol, state, severity, at, value, "
            "silenced, inhibited, repeat) VALUES (%s, %s, %s, %s, %s, %s, %s, false, false, false) "
            "ON CONFLICT DO NOTHING",
            (fingerprint, rule_id, symbol, state, severity, _ts(at_ns), value),
        )

    def acknowledge(self, fingerprint: str) -> bool:
        return (
            self.conn.execute(
                "UPDATE alerts SET acknowledged = true WHERE fingerprint = %s", (fingerprint,)
            ).rowcount
            > 0
        )

    def acknowledged_firing(self) -> set[str]:
        """Fingerprints of alerts someone acknowledged, or resolved by hand while their rule
        still saw them firing (their repeats must stop too)."""
        rows = self.conn.execute(
            "SELECT fingerprint FROM alerts WHERE acknowledged AND (state = 'firing' "
            "OR (state = 'resolved' AND updated_at > now() - interval '1 day'))"
        ).fetchall()
        return {r[0] for r in rows}

    def silences(self) -> list[Silence]:
        rows = self.conn.execute(
            "SELECT id, matchers, starts_at, ends_at, comment FROM silences"
        ).fetchall()
        return [
            Silence(i, m, int(s.timestamp() * 1e9), int(e.timestamp() * 1e9), c)
            for i, m, s, e, c in rows
        ]

    def silence_rows(self) -> list[dict[str, object]]:
        rows = self.conn.execute(
            "SELECT id, matchers, starts_at, ends_at, comment, created_at FROM silences "
            "ORDER BY created_at DESC, id"
        ).fetchall()
        return [
            {
                "id": i,
                "matchers": m,
                "starts_at": s,
                "ends_at": e,
                "comment": c,
                "created_at": cr,
            }
            for i, m, s, e, c, cr in rows
        ]

    def expire_silence(self, silence_id: str, at_ns: int) -> bool:
        """End a silence now (it stays listed, as Alertmanager's expired silences do)."""
        return (
            self.conn.execute(
                "UPDATE silences SET ends_at = least(ends_at, %s) WHERE id = %s",
                (_ts(at_ns), silence_id),
            ).rowcount
            > 0
        )

    def add_silence(self, s: Silence) -> None:
        self.conn.execute(
            "INSERT INTO silences (id, matchers, starts_at, ends_at, comment) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET matchers = excluded.matchers, starts_at = excluded.starts_at, "
            "ends_at = excluded.ends_at, comment = excluded.comment",
            (s.id, Jsonb(s.matchers), _ts(s.starts_at), _ts(s.ends_at), s.comment),
        )


def _finite(v: float) -> float | None:
    return v if v == v and abs(v) != float("inf") else None
