"""Reads of alerts and the notification log for the API (part of :class:`Reads`)."""

from __future__ import annotations

from typing import Any

from rxpipe.storage.paging import (
    FAR_FUTURE,
    Page,
    Range,
    decode_cursor,
    finite_or_none,
    page_of,
    to_ns,
    to_timestamp,
)
from rxpipe.timestamps import iso


class AlertReads:
    """Alerts, their history and notifications; needs ``_rows`` from :class:`Reads`."""

    async def _rows(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    _ALERT_SELECT = (
        "SELECT a.fingerprint, a.rule_id, a.rule_name, a.symbol, a.state, a.severity, a.value, "
        "a.started_at, a.updated_at, a.resolved_at, a.acknowledged, a.silenced, a.inhibited, "
        "a.labels, a.annotations, r.body FROM alerts a LEFT JOIN rules r ON r.id = a.rule_id "
    )

    async def alerts(
        self,
        r: Range,
        *,
        status: str | None = None,
        severity: str | None = None,
        symbol: str | None = None,
        rule_id: str | None = None,
    ) -> Page:
        key = decode_cursor(r.cursor, (int, str)) or [FAR_FUTURE, "~"]
        states = {
            "active": ["firing", "pending"],
            "resolved": ["resolved", "inactive"],
        }.get(status or "", [status] if status else None)
        rows = await self._rows(
            self._ALERT_SELECT + "WHERE (a.updated_at, a.fingerprint) < (%s, %s) "
            "AND a.updated_at >= %s AND a.updated_at < %s "
            "AND (%s::text[] IS NULL OR a.state = ANY(%s)) "
            "AND (%s::boolean IS NULL OR (a.silenced OR a.inhibited) = %s) "
            "AND (%s::boolean IS NULL OR a.acknowledged = %s) "
            "AND (%s::text IS NULL OR a.severity = %s) AND (%s::text IS NULL OR a.symbol = %s) "
            "AND (%s::text IS NULL OR a.rule_id = %s) "
            "ORDER BY a.updated_at DESC, a.fingerprint DESC LIMIT %s",
            (
                to_timestamp(key[0]),
                key[1],
                to_timestamp(r.start),
                to_timestamp(r.end),
                None if status in ("silenced", "acknowledged") else states,
                None if status in ("silenced", "acknowledged") else states,
                True if status == "silenced" else None,
                True if status == "silenced" else None,
                True if status == "acknowledged" else None,
                True if status == "acknowledged" else None,
                severity,
                severity,
                symbol,
                symbol,
                rule_id,
                rule_id,
                r.limit + 1,
            ),
        )
        data = [alert_row(row) for row in rows]
        last = rows[min(len(rows), r.limit) - 1] if rows else None
        return page_of(data, r.limit, [to_ns(last[8]), last[0]] if last else None)

    async def alert(self, fingerprint: str) -> dict[str, Any] | None:
        rows = await self._rows(self._ALERT_SELECT + "WHERE a.fingerprint = %s", (fingerprint,))
        return alert_row(rows[0]) if rows else None

    async def alert_history(self, fingerprint: str, limit: int = 100) -> list[dict[str, Any]]:
        rows = await self._rows(
            "SELECT state, at, value, silenced, inhibited, repeat FROM alert_events "
            "WHERE fingerprint = %s ORDER BY at DESC, id DESC LIMIT %s",
            (fingerprint, limit),
        )
        return [
            {
                "state": st,
                "at": iso(to_ns(at)),
                "value": finite_or_none(v),
                "silenced": si,
                "inhibited": inh,
                "repeat": rep,
            }
            for st, at, v, si, inh, rep in rows
        ]

    # -- notifications --------------------------------------------------------------------------

    async def notifications(
        self, r: Range, *, status: str | None = None, channel: str | None = None
    ) -> Page:
        key = decode_cursor(r.cursor, (int,)) or [FAR_FUTURE]
        rows = await self._rows(
            "SELECT l.id, l.channel, l.rule_id, l.status, l.attempt, l.error, l.at, o.payload, "
            "o.sent_at, o.created_at FROM notification_log l "
            "LEFT JOIN notification_outbox o ON o.id = l.outbox_id "
            "WHERE l.id < %s AND l.at >= %s AND l.at < %s "
            "AND (%s::text IS NULL OR l.status = %s) AND (%s::text IS NULL OR l.channel = %s) "
            "ORDER BY l.id DESC LIMIT %s",
            (
                key[0],
                to_timestamp(r.start),
                to_timestamp(r.end),
                status,
                status,
                channel,
                channel,
                r.limit + 1,
            ),
        )
        data = []
        for lid, ch, rule_id, st, attempt, err, at, payload, sent_at, created in rows:
            alerts = (payload or {}).get("alerts", [])
            first = alerts[0] if alerts else {}
            data.append(
                {
                    "id": lid,
                    "alert_id": first.get("fingerprint"),
                    "type": ch,
                    "recipient": ch,
                    "message": _message_title(alerts) if alerts else (err or ""),
                    "status": st,
                    "sent_at": iso(to_ns(sent_at)) if st == "sent" and sent_at else None,
                    "error": err if st != "sent" else None,
                    "metadata": {"rule_id": rule_id, "attempt": attempt, "alerts": len(alerts)},
                    "created_at": iso(to_ns(created or at)),
                    "at": iso(to_ns(at)),
                }
            )
        last = rows[min(len(rows), r.limit) - 1] if rows else None
        return page_of(data, r.limit, [int(last[0])] if last else None)


def _message_title(alerts: list[dict[str, Any]]) -> str:
    from rxpipe.notify.message import Message

    return Message("", "", "", alerts).title


def alert_row(row: tuple[Any, ...]) -> dict[str, Any]:
    """An ``alerts`` row (with its rule's body) in the seed's Alert shape, plus rxpipe's state."""
    (fp, rule_id, name, symbol, state, sev, value, started, updated, resolved) = row[:10]
    acked, silenced, inhibited, labels, annotations, body = row[10:]
    body = body or {}
    if silenced or inhibited:
        status = "silenced"
    elif state in ("resolved", "inactive"):
        status = "resolved"
    else:
        status = "active"
    return {
        "id": fp,
        "alert_rule_id": rule_id,
        "name": name,
        "description": annotations.get("description") or body.get("description", ""),
        "severity": sev,
        "status": status,
        "state": "acknowledged" if acked and state == "firing" else state,
        "acknowledged": acked,
        "symbol": symbol,
        "condition": body.get("condition", ""),
        "threshold": body.get("threshold"),
        "current_value": finite_or_none(value),
        "triggered_at": iso(to_ns(started)),
        "resolved_at": iso(to_ns(resolved)) if resolved else None,
        "labels": labels,
        "annotations": annotations,
        "metadata": {"silenced": silenced, "inhibited": inhibited},
        "created_at": iso(to_ns(started)),
        "updated_at": iso(to_ns(updated)),
    }
