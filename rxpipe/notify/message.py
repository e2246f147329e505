"""A notification: one message for a group of alert events, as each channel renders it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rxpipe.rules.engine import AlertEvent
from rxpipe.templates import render_template


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat().replace("+00:00", "Z")


def alert_doc(e: AlertEvent) -> dict[str, Any]:
    return {
        "fingerprint": e.fingerprint,
        "rule_id": e.rule_id,
        "name": e.rule_name,
        "symbol": e.symbol,
        "status": e.state,
        "severity": e.severity,
        "value": e.value if e.value == e.value else None,
        "started_at": _iso(e.started_at),
        "at": _iso(e.at),
        "labels": e.labels,
        "annotations": e.annotations,
        "repeat": e.repeat,
    }


@dataclass
class Message:
    """What one channel sends for one group of alerts."""

    channel: str
    rule_id: str
    group_key: str
    alerts: list[dict[str, Any]] = field(default_factory=list)
    template: str = ""  # a per-rule notification setting's text, with {name}, {symbol}, ...

    @property
    def status(self) -> str:
        return "firing" if any(a["status"] == "firing" for a in self.alerts) else "resolved"

    @property
    def title(self) -> str:
        firing = [a for a in self.alerts if a["status"] == "firing"]
        first = self.alerts[0]
        if firing:
            extra = f" (+{len(firing) - 1} more)" if len(firing) > 1 else ""
            return (
                f"[{first['severity'].upper()}] {first['name']} firing on {first['symbol']}{extra}"
            )
        return f"[RESOLVED] {first['name']} on {first['symbol']}"

    def text(self) -> str:
        if self.template:
            first = self.alerts[0]
            values = {k: first.get(k) for k in ("name", "symbol", "status", "severity", "value")}
            return render_template(self.template, values)
        lines = [self.title, ""]
        for a in self.alerts:
            summary = (
                a["annotations"].get("summary") or f"{a['name']} {a['status']} on {a['symbol']}"
            )
            lines.append(
                f"- {a['status']}: {summary} (value {a['value']}, since {a['started_at']})"
            )
        return "\n".join(lines)

    def dedup_key(self) -> str:
        """The same alert states in the same channel make the same key: sent once."""
        states = sorted(
            f"{a['fingerprint']}@{a['status']}@{a['started_at']}@{a['at'] if a['repeat'] else ''}"
            for a in self.alerts
        )
        return f"{self.channel}|{self.group_key}|{'|'.join(states)}"

    def to_payload(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "rule_id": self.rule_id,
            "group_key": self.group_key,
            "alerts": self.alerts,
            "template": self.template,
        }

    @classmethod
    def from_payload(cls, doc: dict[str, Any]) -> Message:
        return cls(
            doc["channel"],
            doc["rule_id"],
            doc["group_key"],
            list(doc["alerts"]),
            doc.get("template", ""),
        )

    def rxpipe_json(self) -> bytes:
        return json.dumps(
            {
                "status": self.status,
                "title": self.title,
                "group_key": self.group_key,
                "alerts": self.alerts,
            },
            sort_keys=True,
        ).encode()

    def alertmanager_json(self) -> bytes:
        """The Alertmanager webhook format (version 4), so existing receivers work unchanged."""
        common = {
            k: v
            for k, v in self.alerts[0]["labels"].items()
            if all(a["labels"].get(k) == v for a in self.alerts)
        }
        return json.dumps(
            {
                "version": "4",
                "groupKey": self.group_key,
                "truncatedAlerts": 0,
                "status": self.status,
                "receiver": self.channel,
                "groupLabels": {"alertname": self.alerts[0]["name"]},
                "commonLabels": common,
                "commonAnnotations": {},
                "externalURL": "",
                "alerts": [
                    {
                        "status": "firing" if a["status"] == "firing" else "resolved",
                        "labels": a["labels"],
                        "annotations": a["annotations"],
                        "startsAt": a["started_at"],
                        "endsAt": a["at"] if a["status"] != "firing" else "0001-01-01T00:00:00Z",
                        "generatorURL": "",
                        "fingerprint": a["fingerprint"],
                    }
                    for a in self.alerts
                ],
            },
            sort_keys=True,
        ).encode()

    def slack_json(self) -> bytes:
        color = {"critical": "#a50f15", "high": "#e6550d", "medium": "#fdae6b"}.get(
            self.alerts[0]["severity"], "#9ecae1"
        )
        return json.dumps(
            {
                "text": self.title,
                "blocks": [
                    {"type": "header", "text": {"type": "plain_text", "text": self.title[:150]}},
                    {"type": "section", "text": {"type": "mrkdwn", "text": self.text()[:2900]}},
                ],
                "attachments": [{"color": color, "fallback": self.title}],
            }
        ).encode()
