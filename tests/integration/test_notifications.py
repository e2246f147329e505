"""Notifications to real receivers started by the tests: an SMTP server (aiosmtpd), HTTP
servers for Slack and webhooks (checking the HMAC), a receiver that fails and recovers, and a
restart in the middle of the retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from aiosmtpd.controller import Controller

from rxpipe.model import SymbolTable, TickBatch
from rxpipe.notify.channels import SIGNATURE_HEADER, EmailChannel, SlackChannel, WebhookChannel
from rxpipe.notify.notifier import Notifier
from rxpipe.notify.outbox import Outbox
from rxpipe.notify.ratelimit import RateLimiter
from rxpipe.rules.engine import AlertEngine, Silence
from rxpipe.rules.model import Rule
from rxpipe.signals import SignalBatch
from rxpipe.storage.database import Database

NS = 10**9
SECRET = "hook-secret"


class Receiver:
    """An HTTP server that records POSTs; it fails the first ``fail_first`` requests with 503."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.fail_first = fail_first
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests += 1
                if outer.requests <= outer.fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                outer.bodies.append(body)
                outer.headers.append(dict(self.headers))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def alerts(rule: Rule, prices: list[float], symbols: list[int] | None = None):
    syms = SymbolTable(["BTCUSDT", "ETHUSDT", "SOLUSDT"])
    engine = AlertEngine([rule], syms)
    n = len(prices)
    b = TickBatch.from_arrays(
        symbol=symbols if symbols is not None else np.zeros(n),
        ts=(np.arange(n) + 1) * NS,
        price=prices,
        volume=np.ones(n),
    )
    return engine, engine.update(SignalBatch(b, {}))


def wait_for(cond, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def log_statuses(db: Database) -> list[tuple[str, str]]:
    with db.connect() as conn:
        return conn.execute("SELECT channel, status FROM notification_log ORDER BY id").fetchall()


def test_email_over_smtp(db: Database, smtp) -> None:
    box, port = smtp
    rule = Rule(
        id="r1",
        name="BTC Price Breakout",
        condition="price > 50000",
        channels=["email"],
        annotations={"summary": "{symbol} broke out at {value}"},
    )
    _, events = alerts(rule, [49_000.0, 51_000.0])
    outbox = Outbox(
        db.connect,
        {"email": EmailChannel("127.0.0.1", port, "rxpipe@example.org", ["desk@example.org"])},
    )
    notifier = Notifier(outbox, group_wait_s=0.0)
    for e in events:
        notifier.on_event(e)
    assert notifier.flush_due() == 1
    assert outbox.dispatch_once() == 1
    ((sender, rcpts, content),) = box.messages
    assert sender == "rxpipe@example.org" and rcpts == ["desk@example.org"]
    text = content.decode()
    assert (
        "Subject: [MEDIUM] BTC Price Breakout firing on BTCUSDT" in text
        and "BTCUSDT broke out at 51000.0" in text
    )
    assert log_statuses(db) == [("email", "sent")]


def test_slack_blocks_and_signed_webhooks(db: Database, receiver: Receiver) -> None:
    slack, hook, am = Receiver(), receiver, Receiver()
    try:
        rule = Rule(
            id="r2",
            name="ETH Support Break",
            condition="price < 3000",
            severity="critical",
            channels=["slack", "webhook", "am"],
        )
        _, events = alerts(rule, [3100.0, 2900.0, 3100.0], symbols=[1, 1, 1])
        outbox = Outbox(
            db.connect,
            {
                "slack": SlackChannel(slack.url),
                "webhook": WebhookChannel(hook.url, secret=SECRET),
                "am": WebhookChannel(am.url, secret=SECRET, format="alertmanager", name="am"),
            },
        )
        notifier = Notifier(
            outbox, group_wait_s=0.0, group_interval_s=0.0, limiter=RateLimiter(per_rule_s=0)
        )
        for e in events:
            notifier.on_event(e)
            notifier.flush_due()
        while outbox.dispatch_once():
            pass
        assert (
            len(slack.bodies) == 2 and len(hook.bodies) == 2 and len(am.bodies) == 2
        )  # firing, resolved
        doc = json.loads(slack.bodies[0])
        assert (
            doc["blocks"][0]["type"] == "header"
            and "ETH Support Break" in doc["blocks"][0]["text"]["text"]
        )
        for body, headers in zip(hook.bodies + am.bodies, hook.headers + am.headers, strict=True):
            expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(headers[SIGNATURE_HEADER], expected)
        assert [json.loads(b)["status"] for b in hook.bodies] == ["firing", "resolved"]
        am_doc = json.loads(am.bodies[0])
        assert am_doc["version"] == "4" and am_doc["alerts"][0]["labels"]["symbol"] == "ETHUSDT"
        assert am_doc["alerts"][0]["status"] == "firing" and "startsAt" in am_doc["alerts"][0]
    finally:
        slack.close()
        am.close()


def test_a_burst_becomes_one_message(db: Database, receiver: Receiver) -> None:
    rule = Rule(id="r3", name="everything", condition="price > 0", channels=["webhook"])
    _, events = alerts(rule, [1.0, 2.0, 3.0], symbols=[0, 1, 2])  # three symbols fire at once
    clock = [0.0]
    outbox = Outbox(db.connect, {"webhook": WebhookChannel(receiver.url)})
    notifier = Notifier(outbox, group_wait_s=5.0, clock=lambda: clock[0])
    for e in events:
        notifier.on_event(e)
    assert notifier.flush_due() == 0  # still waiting for the group
    clock[0] = 5.0
    assert notifier.flush_due() == 1
    outbox.dispatch_once()
    (body,) = receiver.bodies
    assert sorted(a["symbol"] for a in json.loads(body)["alerts"]) == [
        "BTCUSDT",
        "ETHUSDT",
        "SOLUSDT",
    ]


def test_rate_limit_silence_and_dedup(db: Database, receiver: Receiver) -> None:
    rule = Rule(id="r4", name="flappy", condition="price > 100", channels=["webhook"])
    engine, events = alerts(rule, [101.0, 99.0, 101.0, 99.0])
    outbox = Outbox(db.connect, {"webhook": WebhookChannel(receiver.url)})
    clock = [0.0]
    notifier = Notifier(outbox, group_wait_s=0.0, group_interval_s=0.0, clock=lambda: clock[0])
    for e in events:
        notifier.on_event(e)
        notifier.flush_due()
        clock[0] += 1.0
    while outbox.dispatch_once():
        pass
    assert len(receiver.bodies) == 1  # one per 5 minutes per (rule, channel), as the seed
    statuses = [s for _, s in log_statuses(db)]
    assert statuses.count("sent") == 1 and statuses.count("rate_limited") == 3
    # the same alert state enqueued twice is stored once
    from rxpipe.notify.message import Message, alert_doc

    m = Message("webhook", "r4", "k", [alert_doc(events[0])])
    assert outbox.enqueue(m) is not None and outbox.enqueue(m) is None
    # silenced alerts are logged as suppressed and not sent
    engine.silences.append(Silence("s", {"symbol": "BTCUSDT"}, 0, 10**12 * NS))
    b = TickBatch.from_arrays(symbol=[0], ts=[100 * NS], price=[150.0], volume=[1.0])
    for e in engine.update(SignalBatch(b, {})):
        notifier.on_event(e)
    assert log_statuses(db)[-1] == ("webhook", "suppressed")


def test_a_failing_receiver_gets_everything_exactly_once_after_it_recovers(db: Database) -> None:
    flaky = Receiver(fail_first=3)
    try:
        rule = Rule(id="r5", name="down", condition="price < 10", channels=["webhook"])
        _, events = alerts(rule, [5.0, 20.0, 5.0, 20.0])
        outbox = Outbox(
            db.connect,
            {"webhook": WebhookChannel(flaky.url)},
            base_backoff_s=0.05,
            max_backoff_s=0.2,
        )
        notifier = Notifier(
            outbox, group_wait_s=0.0, group_interval_s=0.0, limiter=RateLimiter(per_rule_s=0)
        )
        for e in events:
            notifier.on_event(e)
            notifier.flush_due()
        outbox.start()
        wait_for(lambda: len(flaky.bodies) == 4)
        time.sleep(0.5)  # nothing more arrives
        outbox.stop()
        assert len(flaky.bodies) == 4 and flaky.requests == 7
        ids = [h["X-Rxpipe-Delivery"] for h in flaky.headers]
        assert len(set(ids)) == 4
        statuses = [s for _, s in log_statuses(db)]
        assert statuses.count("retrying") == 3 and statuses.count("sent") == 4
    finally:
        flaky.close()


def test_a_restart_in_the_middle_of_retries_loses_nothing(db: Database) -> None:
    down = Receiver(fail_first=10**6)  # the receiver is down for the first dispatcher
    rule = Rule(id="r6", name="crash", condition="price < 10", channels=["webhook"])
    _, events = alerts(rule, [5.0])
    first = Outbox(
        db.connect, {"webhook": WebhookChannel(down.url)}, base_backoff_s=0.05, max_backoff_s=0.1
    )
    notifier = Notifier(first, group_wait_s=0.0)
    for e in events:
        notifier.on_event(e)
    notifier.flush_due()
    first.dispatch_once()
    first.stop()  # the process goes away with the notification still due
    down.close()
    up = Receiver()
    try:
        time.sleep(0.15)
        second = Outbox(
            db.connect, {"webhook": WebhookChannel(up.url)}
        )  # a new process, the same database
        wait_for(lambda: second.dispatch_once() == 0 and len(up.bodies) == 1)
        assert len(up.bodies) == 1
        with db.connect() as conn:
            assert conn.execute("SELECT status, attempts FROM notification_outbox").fetchall() == [
                ("sent", 2)
            ]
    finally:
        up.close()


def test_email_with_starttls_and_login(db: Database, tmp_path) -> None:
    """The SMTP server offers STARTTLS with a certificate from a test CA and requires a login
    over TLS; the channel verifies the certificate against that CA and logs in."""
    import socket
    import ssl

    import trustme
    from aiosmtpd.smtp import AuthResult

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    logins: list[tuple[str, bool]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"desk" and auth_data.password == b"pa55"
        logins.append((auth_data.login.decode(), ok))
        return AuthResult(success=ok)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    box = Mailbox()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_ctx,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    controller.start()
    try:
        rule = Rule(id="tls", name="TLS Breakout", condition="price > 50000", channels=["email"])
        _, events = alerts(rule, [51_000.0])
        good = EmailChannel(
            "127.0.0.1",
            port,
            "rxpipe@example.org",
            ["desk@example.org"],
            starttls=True,
            username="desk",
            password="pa55",
            ca_file=str(ca_file),
        )
        outbox = Outbox(db.connect, {"email": good})
        notifier = Notifier(outbox, group_wait_s=0.0)
        for e in events:
            notifier.on_event(e)
        notifier.flush_due()
        assert outbox.dispatch_once() == 1
        assert len(box.messages) == 1 and logins == [("desk", True)]
        assert "TLS Breakout firing on BTCUSDT" in box.messages[0][2].decode()
        # a wrong password is refused by the server and the attempt is logged for a retry
        from rxpipe.errors import NotifyError

        bad = EmailChannel(
            "127.0.0.1",
            port,
            "rxpipe@example.org",
            ["desk@example.org"],
            starttls=True,
            username="desk",
            password="wrong",
            ca_file=str(ca_file),
        )
        from rxpipe.notify.message import Message, alert_doc

        with pytest.raises(NotifyError, match=r"SMTP 127\.0\.0\.1"):
            bad.send(Message("email", "tls", "k", [alert_doc(events[0])]), "rxpipe-x")
        # and a server whose certificate is not trusted is refused by the channel
        untrusting = EmailChannel(
            "127.0.0.1", port, "rxpipe@example.org", ["desk@example.org"], starttls=True
        )
        with pytest.raises(NotifyError, match="CERTIFICATE_VERIFY_FAILED"):
            untrusting.send(Message("email", "tls", "k", [alert_doc(events[0])]), "rxpipe-y")
        assert len(box.messages) == 1
    finally:
        controller.stop()


def test_stopping_the_notifier_sends_the_groups_still_waiting(db: Database) -> None:
    rule = Rule(id="r7", name="late", condition="price > 0", channels=["webhook"])
    _, events = alerts(rule, [1.0])
    outbox = Outbox(db.connect, {"webhook": WebhookChannel("http://127.0.0.1:9/never")})
    notifier = Notifier(outbox, group_wait_s=3600.0)
    for e in events:
        notifier.on_event(e)
    assert notifier.flush_due() == 0  # an hour to wait
    notifier.stop()  # a graceful stop: the group goes to the durable outbox now
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM notification_outbox").fetchone() == (1,)


def test_routes_from_settings_send_by_labels_and_severity(db: Database) -> None:
    from rxpipe.config import Settings
    from rxpipe.notify.notifier import Route

    settings = Settings.load(
        env={},
        **{
            "notify.channels": {
                "log": {"type": "log"},
                "pager": {"type": "webhook", "url": "http://127.0.0.1:9/pager"},
                "desk": {"type": "slack", "url": "http://127.0.0.1:9/desk"},
            },
            "notify.routes": [
                {"channels": ["pager"], "min_severity": "critical"},
                {"channels": ["desk"], "match": {"team": "eth"}},
            ],
        },
    )
    n = settings.notify
    notifier = Notifier(
        Outbox(db.connect, {}),
        routes=[Route.from_settings(r, n.group_wait_s, n.group_interval_s) for r in n.routes],
    )
    crit = Rule(id="c", name="crit", condition="price > 0", severity="critical")
    eth = Rule(id="e", name="eth", condition="price > 0", labels={"team": "eth"})
    plain = Rule(id="p", name="plain", condition="price > 0", channels=["log"])
    assert notifier.route(alerts(crit, [1.0])[1][0]).channels == ("pager",)
    assert notifier.route(alerts(eth, [1.0])[1][0]).channels == ("desk",)
    assert notifier.route(alerts(plain, [1.0])[1][0]).channels == ("log",)
    from rxpipe.errors import ConfigError

    with pytest.raises(ConfigError, match=r"routes\[0\] names channel\(s\) nowhere"):
        Settings.load(env={}, **{"notify.routes": [{"channels": ["nowhere"]}]})
