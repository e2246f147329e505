"""Notification channels: email (SMTP, STARTTLS, auth), Slack incoming webhooks, signed generic
webhooks (rxpipe or Alertmanager payloads) and the log. ``send`` raises NotifyError on failure."""

from __future__ import annotations

import hashlib
import hmac
import logging
import smtplib
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Protocol

from rxpipe.errors import NotifyError
from rxpipe.notify.message import Message

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Rxpipe-Signature"
DELIVERY_HEADER = "X-Rxpipe-Delivery"


class Channel(Protocol):
    name: str

    def send(self, message: Message, delivery_id: str) -> None: ...


def sign(secret: str, body: bytes) -> str:
    """The signature header value: ``sha256=`` and the hex HMAC-SHA256 of the body.

    A receiver recomputes it with the shared secret and compares (``hmac.compare_digest``).

    >>> value = sign("s3cret", b"{}")
    >>> value.startswith("sha256="), len(value)
    (True, 71)
    """
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> None:
    if not url.startswith(("http://", "https://")):
        raise NotifyError(f"webhook URL {url!r} is not http(s)")
    req = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            if not 200 <= resp.status < 300:
                raise NotifyError(f"{url} answered {resp.status}")
    except urllib.error.HTTPError as exc:
        raise NotifyError(f"{url} answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise NotifyError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from None


@dataclass
class LogChannel:
    name: str = "log"

    def send(self, message: Message, delivery_id: str) -> None:
        log.info("ALERT %s: %s (%d alert(s))", delivery_id, message.title, len(message.alerts))


@dataclass
class SlackChannel:
    url: str
    name: str = "slack"
    timeout: float = 10.0

    def send(self, message: Message, delivery_id: str) -> None:
        _post(self.url, message.slack_json(), {DELIVERY_HEADER: delivery_id}, self.timeout)


@dataclass
class WebhookChannel:
    url: str
    secret: str = field(default="", repr=False)
    format: str = "rxpipe"  # or "alertmanager"
    name: str = "webhook"
    timeout: float = 10.0

    def send(self, message: Message, delivery_id: str) -> None:
        body = (
            message.alertmanager_json() if self.format == "alertmanager" else message.rxpipe_json()
        )
        headers = {DELIVERY_HEADER: delivery_id}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        _post(self.url, body, headers, self.timeout)


@dataclass
class EmailChannel:
    host: str
    port: int
    sender: str
    recipients: list[str]
    starttls: bool = False
    username: str = ""
    password: str = field(default="", repr=False)
    name: str = "email"
    timeout: float = 10.0
    ca_file: str | None = None  # verify the server against this CA bundle (default: system's)

    def send(self, message: Message, delivery_id: str) -> None:
        mail = EmailMessage()
        mail["Subject"] = message.title
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.recipients)
        mail["Message-ID"] = f"<{delivery_id}@rxpipe>"
        mail.set_content(message.text())
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context(cafile=self.ca_file))
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(mail)
        except (smtplib.SMTPException, OSError) as exc:
            raise NotifyError(f"SMTP {self.host}:{self.port}: {exc}") from None


def from_settings(name: str, cfg: Any) -> Channel:
    """A channel from its settings (``rxpipe.config.ChannelSettings``)."""
    secret = cfg.secret.get_secret_value() if cfg.secret else ""
    if cfg.type == "log":
        return LogChannel(name)
    if cfg.type in ("slack", "webhook") and not cfg.url:
        raise NotifyError(f"channel {name!r}: a {cfg.type} channel needs a url")
    if cfg.type == "slack":
        return SlackChannel(cfg.url, name=name)
    if cfg.type == "webhook":
        return WebhookChannel(cfg.url, secret=secret, format=cfg.format, name=name)
    if not cfg.recipients:
        raise NotifyError(f"channel {name!r}: an email channel needs recipients")
    password = cfg.password.get_secret_value() if cfg.password else ""
    return EmailChannel(
        cfg.host,
        cfg.port,
        cfg.sender,
        list(cfg.recipients),
        starttls=cfg.starttls,
        username=cfg.username,
        password=password,
        name=name,
        ca_file=str(cfg.ca_file) if cfg.ca_file else None,
    )
