"""The REST API of a real ``rxpipe run`` (embedded PostgreSQL, the live simulator, two hours of
backfilled history): every route's success, validation errors, 401, 404, and 429."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from ..apps import TOKEN, App, running_app

pytestmark = pytest.mark.timeout(600)


def test_health_on_both_routes_and_the_root_redirect(app: App) -> None:
    for path in ("/health", "/api/v1/health"):
        doc = app.get(path)
        assert doc["status"] == "healthy" and doc["version"] and doc["timestamp"].endswith("Z")
        assert doc["services"] == {"pipeline": "running", "storage": "ok"}
    req = urllib.request.Request(app.base + "/", method="GET")
    with urllib.request.urlopen(req, timeout=10) as resp:  # follows the redirect
        assert resp.url.endswith("/dashboard") and resp.status == 200


def test_metrics_latest_values_and_cursor_pages(app: App) -> None:
    doc = app.get("/api/v1/metrics/BTCUSDT?limit=5")
    assert doc["symbol"] == "BTCUSDT" and doc["count"] == 5 and doc["next_cursor"]
    latest = doc["latest"]
    assert latest["price"] > 0 and "z_ret" in latest and latest["timestamp"].endswith("Z")
    first = doc["data"]
    assert {"symbol", "price", "volume", "timestamp", "source"} <= set(first[0])
    assert [d["timestamp"] for d in first] == sorted((d["timestamp"] for d in first), reverse=True)
    second = app.get(f"/api/v1/metrics/BTCUSDT?limit=5&cursor={doc['next_cursor']}")["data"]
    assert second and second[0]["timestamp"] <= first[-1]["timestamp"]
    assert not {(d["timestamp"], d["seq"]) for d in first} & {
        (d["timestamp"], d["seq"]) for d in second
    }
    # pages past the newest thousand (kept in memory) continue from the database seamlessly
    seen: list[tuple[str, int]] = []
    cursor = ""
    for _ in range(8):
        page = app.get(f"/api/v1/metrics/BTCUSDT?limit=400{cursor}")
        seen += [(d["timestamp"], d["seq"]) for d in page["data"]]
        if page["next_cursor"] is None:
            break
        assert page["count"] == 400
        cursor = f"&cursor={page['next_cursor']}"
    assert (
        len(seen) > 1440
    )  # every backfilled tick (1,440 a symbol) and the live ones: memory, then the database
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == len(seen)
    # a time range: ticks of the backfill, more than an hour old
    old = app.get("/api/v1/metrics/ETHUSDT?to=1h&limit=3")["data"]
    assert len(old) == 3 and all(d["symbol"] == "ETHUSDT" for d in old)


def test_aggregated_anomalies_and_rollups(app: App) -> None:
    agg = app.get("/api/v1/metrics/BTCUSDT/aggregated?interval=5m&limit=4")
    assert agg["interval"] == "5m" and agg["count"] == 4
    row = agg["data"][0]
    assert {"symbol", "type", "time_bucket", "count", "min", "max", "avg", "sum"} <= set(row)
    assert row["min"] <= row["avg"] <= row["max"] and row["count"] > 0
    vol = app.get("/api/v1/metrics/BTCUSDT/aggregated?interval=1h&type=volume&limit=1")["data"][0]
    assert vol["type"] == "volume" and vol["sum"] > 0
    anomalies = app.get("/api/v1/metrics/BTCUSDT/anomalies?severity=high&limit=20")
    assert anomalies["count"] > 0
    for a in anomalies["data"]:
        assert a["severity"] in ("high", "critical") and 0 <= a["confidence"] <= 1
        assert {
            "type",
            "current_value",
            "expected_value",
            "deviation",
            "timestamp",
            "window",
        } <= set(a)
    rollups = app.get("/api/v1/metrics/BTCUSDT/rollups?interval=1h&limit=2")
    assert rollups["count"] == 2 and all(r["window"] == "1h" for r in rollups["data"])
    r = rollups["data"][0]
    assert {
        "start_time",
        "end_time",
        "count",
        "average",
        "median",
        "std_dev",
        "percentile_95",
        "percentile_99",
    } <= set(r)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/metrics/BTC%20USDT", "symbol"),
        ("/api/v1/metrics/BTCUSDT?limit=0", "limit"),
        ("/api/v1/metrics/BTCUSDT?limit=abc", "limit"),
        ("/api/v1/metrics/BTCUSDT?from=yesterday-ish", "from"),
        ("/api/v1/metrics/BTCUSDT?cursor=bm90LWEtY3Vyc29y", None),
        ("/api/v1/metrics/BTCUSDT/aggregated?interval=7m", "interval"),
        ("/api/v1/metrics/BTCUSDT/aggregated?type=price_volume", "type"),
        ("/api/v1/metrics/BTCUSDT/anomalies?severity=dire", "severity"),
        ("/api/v1/alerts?status=burning", "status"),
    ],
)
def test_bad_parameters_answer_400_naming_the_field(app: App, path: str, field: str | None) -> None:
    status, doc, _ = app.request("GET", path, token=None)
    assert status == 400 and doc["error"], doc
    if field:
        assert doc.get("field") == field or field in doc["error"]


def test_unknown_symbol_and_routes_answer_404(app: App) -> None:
    for path in (
        "/api/v1/metrics/NOSUCHCOIN",
        "/api/v1/metrics/NOSUCHCOIN/anomalies",
        "/api/v1/nothing/here",
    ):
        status, doc, _ = app.request("GET", path, token=None)
        assert status == 404 and "error" in doc, (path, doc)


def test_rules_crud_validation_and_backtest(app: App) -> None:
    rules = app.get("/api/v1/rules")["data"]
    assert len(rules) >= 15 and {
        "id",
        "name",
        "severity",
        "symbol",
        "condition",
        "threshold",
        "enabled",
        "labels",
        "metadata",
        "created_at",
        "updated_at",
    } <= set(rules[0])
    body = {
        "id": "api-rule",
        "name": "API breakout",
        "symbol": "BTCUSDT",
        "condition": "price > 1",
        "severity": "warning",
    }
    assert app.request("POST", "/api/v1/rules", body, token=None)[0] == 401
    assert app.request("POST", "/api/v1/rules", body, token="wrong")[0] == 401
    status, doc, headers = app.request("POST", "/api/v1/rules", body)
    assert status == 201 and doc["severity"] == "medium" and doc["symbol"] == "BTCUSDT"
    assert headers["location"] == "/api/v1/rules/api-rule"
    assert app.request("POST", "/api/v1/rules", body)[0] == 409
    status, doc, _ = app.request(
        "POST", "/api/v1/rules", {**body, "id": "bad-rule", "condition": "price >"}
    )
    assert status == 422 and doc["field"] == "condition" and "line 1, column 8" in doc["error"]
    status, doc, _ = app.request(
        "POST", "/api/v1/rules", {**body, "id": "bad-sev", "severity": "dire"}
    )
    assert status == 422 and doc["field"] == "severity"
    status, doc, _ = app.request("POST", "/api/v1/rules", raw=b"{not json")
    assert status == 400 and "JSON" in doc["error"]
    # the seed's capitalised keys are accepted on input
    status, doc, _ = app.request(
        "PUT",
        "/api/v1/rules/api-rule",
        {"Name": "API breakout", "Condition": "price", "Threshold": 2, "Symbol": "BTCUSDT"},
    )
    assert status == 200 and doc["threshold"] == 2 and doc["condition"] == "price"
    assert app.get("/api/v1/rules/api-rule")["name"] == "API breakout"
    assert app.request("GET", "/api/v1/rules/no-such-rule", token=None)[0] == 404
    assert app.request("PUT", "/api/v1/rules/no-such-rule", body)[0] == 404
    # validate: no token needed, errors with line and column
    status, doc, _ = app.request(
        "POST", "/api/v1/rules/validate", {"condition": "zscore(price, 100) > > 3"}, token=None
    )
    assert (
        status == 200
        and doc["valid"] is False
        and doc["error"]["column"] == 22
        and "^" in doc["error"]["excerpt"]
    )
    status, doc, _ = app.request(
        "POST", "/api/v1/rules/validate", {"condition": "price_change_4h > 15"}, token=None
    )
    assert status == 200 and doc["valid"] is True
    assert app.request("POST", "/api/v1/rules/validate", {}, token=None)[0] == 422
    # a backtest of the rule on the stored history: price > 2 holds all the time
    status, doc, _ = app.request("POST", "/api/v1/rules/api-rule/backtest", {"from": "3h"})
    assert status == 200 and doc["alerts"] >= 1 and doc["ticks"] > 0
    assert doc["firings"][0]["symbol"] == "BTCUSDT"
    assert app.request("POST", "/api/v1/rules/api-rule/backtest", {"from": "soon"})[0] == 422
    assert app.request("DELETE", "/api/v1/rules/api-rule", token=None)[0] == 401
    assert app.request("DELETE", "/api/v1/rules/api-rule")[0] == 200
    assert app.request("DELETE", "/api/v1/rules/api-rule")[0] == 404


def test_alerts_create_acknowledge_resolve_delete(app: App) -> None:
    body = {
        "name": "Desk check",
        "symbol": "SOLUSDT",
        "severity": "critical",
        "current_value": 99.5,
        "description": "by hand",
    }
    assert app.request("POST", "/api/v1/alerts", body, token=None)[0] == 401
    status, doc, _ = app.request("POST", "/api/v1/alerts", body)
    assert status == 201 and doc["status"] == "active" and doc["severity"] == "critical"
    alert_id = doc["id"]
    for key in (
        "id",
        "alert_rule_id",
        "name",
        "description",
        "severity",
        "status",
        "symbol",
        "condition",
        "threshold",
        "current_value",
        "triggered_at",
        "resolved_at",
        "labels",
        "metadata",
        "created_at",
        "updated_at",
    ):
        assert key in doc
    listed = app.get("/api/v1/alerts?symbol=SOLUSDT&severity=critical&limit=50")["data"]
    assert alert_id in [a["id"] for a in listed]
    status, doc, _ = app.request("PUT", f"/api/v1/alerts/{alert_id}", {"status": "acknowledged"})
    assert status == 200 and doc["acknowledged"] and doc["state"] == "acknowledged"
    assert app.request("PUT", f"/api/v1/alerts/{alert_id}", {"status": "exploded"})[0] == 422
    status, doc, _ = app.request("POST", f"/api/v1/alerts/{alert_id}/resolve")
    assert status == 200 and doc["status"] == "resolved" and doc["resolved_at"]
    doc = app.get(f"/api/v1/alerts/{alert_id}?history=true")
    assert [h["state"] for h in doc["history"]] == ["resolved", "firing"]
    assert app.request("POST", "/api/v1/alerts/nosuchalert/resolve")[0] == 404
    assert app.request("POST", "/api/v1/alerts/nosuchalert/acknowledge")[0] == 404
    assert app.request("GET", "/api/v1/alerts/nosuchalert", token=None)[0] == 404
    assert app.request("POST", "/api/v1/alerts", {"name": "x"})[0] == 422
    assert app.request("DELETE", f"/api/v1/alerts/{alert_id}")[0] == 200
    assert app.request("DELETE", f"/api/v1/alerts/{alert_id}")[0] == 404


def test_rule_alerts_fire_and_can_be_acknowledged(app: App) -> None:
    rule = {
        "id": "always",
        "name": "Always on",
        "symbols": ["ADAUSDT"],
        "condition": "price > 0",
        "severity": "low",
    }
    assert app.request("POST", "/api/v1/rules", rule)[0] == 201
    found = app.wait(
        lambda: [
            a
            for a in app.get("/api/v1/alerts?status=active&limit=200")["data"]
            if a["alert_rule_id"] == "always"
        ],
        what="the new rule's alert",
    )
    alert = found[0]
    assert alert["symbol"] == "ADAUSDT" and alert["condition"] == "price > 0"
    status, doc, _ = app.request("POST", f"/api/v1/alerts/{alert['id']}/acknowledge")
    assert status == 200 and doc["acknowledged"]
    app.request("DELETE", "/api/v1/rules/always")


def test_silences_create_list_expire(app: App) -> None:
    body = {"matchers": {"symbol": "DOTUSDT"}, "duration": "1h", "comment": "maintenance"}
    assert app.request("POST", "/api/v1/silences", body, token=None)[0] == 401
    status, doc, _ = app.request("POST", "/api/v1/silences", body)
    assert status == 201 and doc["status"] == "active"
    sid = doc["id"]
    assert sid in [s["id"] for s in app.get("/api/v1/silences?status=active")["data"]]
    assert app.get(f"/api/v1/silences/{sid}")["comment"] == "maintenance"
    status, doc, _ = app.request("POST", "/api/v1/silences", {"matchers": {"symbol": "DOTUSDT"}})
    assert status == 422 and "duration" in doc["error"]
    assert app.request("POST", "/api/v1/silences", {"matchers": {}, "duration": "1h"})[0] == 422
    assert app.request("DELETE", f"/api/v1/silences/{sid}")[0] == 200
    assert app.get(f"/api/v1/silences/{sid}")["status"] == "expired"
    assert app.request("DELETE", "/api/v1/silences/nosuch")[0] == 404


def test_notifications_log_test_message_and_settings(app: App, hook) -> None:
    status, doc, _ = app.request("POST", "/api/v1/notifications/test", {"type": "webhook"})
    assert status == 200 and doc["sent"] and doc["channel"] == "hook"
    app.wait(
        lambda: any(b"rxpipe test notification" in b for b in hook.bodies), what="the test webhook"
    )
    assert (
        app.request("POST", "/api/v1/notifications/test", {"type": "email"})[0] == 422
    )  # none configured
    assert app.request("POST", "/api/v1/notifications/test", {"type": "pager"})[0] == 422
    assert app.request("POST", "/api/v1/notifications/test", {"type": "log"}, token=None)[0] == 401
    log = app.get("/api/v1/notifications?limit=20")["data"]
    assert log and {
        "id",
        "alert_id",
        "type",
        "recipient",
        "message",
        "status",
        "sent_at",
        "error",
        "metadata",
        "created_at",
    } <= set(log[0])
    assert any(n["status"] == "test_sent" and n["type"] == "webhook" for n in log)
    setting = {
        "alert_rule_id": "seed-01",
        "type": "webhook",
        "recipient": hook.url,
        "template": "{name} on {symbol}",
    }
    status, doc, _ = app.request("PUT", "/api/v1/notifications/settings", setting)
    assert status == 200 and doc["data"][0]["recipient"] == hook.url
    assert any(
        s["alert_rule_id"] == "seed-01" for s in app.get("/api/v1/notifications/settings")["data"]
    )
    status, doc, _ = app.request(
        "PUT", "/api/v1/notifications/settings", {**setting, "recipient": "not-a-url"}
    )
    assert status == 422 and doc["field"].endswith("recipient")
    status, doc, _ = app.request(
        "PUT", "/api/v1/notifications/settings", {**setting, "type": "email", "recipient": "a@b.c"}
    )
    assert status == 422 and "SMTP" in doc["error"]


def test_observability_events_logs_traces(app: App) -> None:
    events = app.get("/api/v1/observability/events")["data"]
    assert any(e["type"] == "pipeline" and e["message"] == "started" for e in events)
    traces = app.get("/api/v1/observability/traces?limit=5")["data"]
    assert len(traces) == 5
    spans = {s["name"] for s in traces[0]["spans"]}
    assert {"operators", "sink:TickSink", "sink:AlertSink", "sink:LiveHub"} <= spans
    assert all(s["duration_ms"] >= 0 for s in traces[0]["spans"])
    logs = app.get("/api/v1/observability/logs?level=info&limit=50")["data"]
    assert all({"timestamp", "level", "logger", "message"} <= set(r) for r in logs)
    assert app.request("GET", "/api/v1/observability/traces?limit=0", token=None)[0] == 400


def test_prometheus_metrics(app: App) -> None:
    with urllib.request.urlopen(app.base + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
        assert resp.headers["Content-Type"].startswith("text/plain")

    def value(name: str, body: str) -> float:
        return sum(
            float(line.rsplit(" ", 1)[1]) for line in body.splitlines() if line.startswith(name)
        )

    for name in (
        "rxpipe_ticks_in_total",
        "rxpipe_ticks_stored_total",
        "rxpipe_batch_seconds_bucket",
        "rxpipe_anomalies_total",
        "rxpipe_alert_events_total",
        "rxpipe_notifications_total",
        "rxpipe_websocket_clients",
    ):
        assert name in text, name
    first = value("rxpipe_ticks_in_total", text)
    time.sleep(1.0)
    with urllib.request.urlopen(app.base + "/metrics", timeout=10) as resp:
        assert value("rxpipe_ticks_in_total", resp.read().decode()) > first


def test_openapi_document_is_valid_and_every_route_answers(app: App) -> None:
    from openapi_spec_validator import validate

    doc = app.get("/api/v1/openapi.json")
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    values = {"symbol": "BTCUSDT", "id": "seed-01"}
    answered = 0
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            concrete = path.replace("{symbol}", values["symbol"]).replace("{id}", values["id"])
            body = {} if "requestBody" in op else None
            status, reply, _ = app.request(method.upper(), concrete, body)
            # routed to a handler: a 404 may say there is no such alert, never no such route
            assert status != 405, (method, path, reply)
            assert not str(reply).startswith("{'error': 'no route"), (method, path, reply)
            assert status < 500, (method, path, status, reply)
            assert str(status) in op["responses"], (method, path, status)
            answered += 1
    assert answered >= 30


def test_rate_limit_answers_429_with_retry_after(tmp_path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    from rxpipe.storage.embedded import EmbeddedPostgres

    try:
        env = {"RXPIPE_SERVER_RATE_LIMIT_PER_S": "1", "RXPIPE_SERVER_RATE_LIMIT_BURST": "3"}
        with running_app(data_dir, env=env, args=("--no-dashboard",)) as limited:
            codes = [limited.request("GET", "/api/v1/rules", token=None) for _ in range(6)]
            assert [c[0] for c in codes[:3]] == [200, 200, 200]
            status, doc, headers = codes[-1]
            assert status == 429 and int(headers["retry-after"]) >= 1 and "error" in doc
            time.sleep(float(headers["retry-after"]) + 0.1)
            assert limited.request("GET", "/api/v1/rules", token=None)[0] == 200
    finally:
        EmbeddedPostgres(data_dir).stop()


def test_schemathesis_finds_no_server_error(app: App, tmp_path) -> None:
    import subprocess
    import sys
    from pathlib import Path

    st = Path(sys.executable).parent / "schemathesis"
    report = tmp_path / "st.txt"
    done = subprocess.run(
        [
            str(st),
            "run",
            f"{app.base}/api/v1/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "12",
            "--header",
            f"Authorization: Bearer {TOKEN}",
            "--request-timeout",
            "30",
            "--seed",
            "7",
        ],
        capture_output=True,
        text=True,
        timeout=540,
    )
    report.write_text(done.stdout + done.stderr)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    assert "passed" in done.stdout.lower() or "no issues found" in done.stdout.lower(), done.stdout[
        -3000:
    ]


def test_mutations_ignore_an_unknown_token_header_scheme(app: App) -> None:
    status, _, headers = app.request(
        "POST", "/api/v1/rules", {"name": "x", "condition": "price > 1"}, token=None
    )
    assert status == 401 and headers.get("www-authenticate", "").startswith("Bearer")
    req = urllib.request.Request(
        app.base + "/api/v1/rules",
        data=json.dumps({"name": "x", "condition": "price > 1"}).encode(),
        method="POST",
        headers={"Authorization": f"Basic {TOKEN}"},
    )
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("accepted a Basic token")
    except urllib.error.HTTPError as exc:
        assert exc.code == 401
