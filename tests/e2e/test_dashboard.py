"""The dashboard in a real browser: Debian's chromium driven by Playwright, against a real
``rxpipe run``. ``DASHBOARD_SCREENSHOT=docs/dashboard.png`` also saves the README's screenshot."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..apps import App
from ..conftest import require_service

pytestmark = pytest.mark.timeout(300)

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium")
    require_service(
        "chromium",
        chromium is not None,
        "Debian's chromium is not installed (make test installs it)",
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, app: App) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1600, "height": 1150})
    pg = context.new_page()
    pg.errors = []  # console errors and uncaught exceptions
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.goto(app.base + "/dashboard")
    pg.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0", timeout=60_000)
    yield pg
    context.close()


def points(page: Any, source: str) -> int:
    return int(
        page.evaluate(f"() => Bokeh.documents[0].get_model_by_name('{source}').data.x.length")
    )


def text(page: Any, css: str) -> str:
    """The text of a Panel component, shadow root included (Panel renders inside one)."""
    loc = page.locator(css).first
    return str(loc.evaluate("e => (e.shadowRoot ? e.shadowRoot.textContent : '') + e.textContent"))


def wait_until(page: Any, predicate: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        page.wait_for_timeout(250)
    raise AssertionError("timed out")


def test_the_dashboard_loads_streams_and_has_no_console_errors(page: Any, app: App) -> None:
    wait_until(page, lambda: points(page, "signals") > 0)
    assert points(page, "candles") > 0  # the backfilled hour shows as one-minute candles
    first = points(page, "signals")
    # the chart keeps receiving points (the rate, 5 updates a second, is measured by bench.soak)
    wait_until(page, lambda: points(page, "signals") > first + 5, timeout=10)
    last_close = page.evaluate(
        "() => { const d = Bokeh.documents[0].get_model_by_name('candles').data; return d.close[d.close.length - 1]; }"
    )
    assert last_close > 0
    for text in ("System", "Alerts", "Rule editor", "Notifications", "Rollups", "ticks/s"):
        assert page.get_by_text(text, exact=True).first.is_visible(), text
    # another symbol and interval: the chart starts over with that symbol's candles
    page.locator(".symbol-picker select").select_option("ETHUSDT")
    page.locator(".interval-picker").get_by_text("5m", exact=True).click()
    wait_until(
        page,
        lambda: (
            "ETHUSDT"
            in page.evaluate("() => Bokeh.documents[0].get_model_by_name('price_chart').title.text")
        ),
    )
    wait_until(page, lambda: points(page, "candles") > 0)
    assert not page.errors, page.errors
    shot = os.environ.get("DASHBOARD_SCREENSHOT")
    page.locator(".symbol-picker select").select_option("BTCUSDT")
    page.locator(".interval-picker").get_by_text("1m", exact=True).click()
    page.wait_for_timeout(3000)
    target = Path(shot) if shot else Path(app.data_dir.parent / "dashboard.png")
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 20_000


def test_the_rule_editor_shows_errors_inline_and_saves_a_good_rule(page: Any, app: App) -> None:
    editor = page.locator(".rule-condition textarea")
    wait_until(page, lambda: editor.count() == 1)
    editor.fill("price > > 3")
    wait_until(page, lambda: "line 1, column 9" in text(page, ".rule-message"))
    assert "^" in text(page, ".rule-message")  # the caret under the offending spot
    page.locator(".rule-name input").fill("Browser ATOM watch")
    page.locator(".rule-symbols input").fill("ATOMUSDT")
    editor.fill("price > 0")
    page.locator(".rule-backtest button").click()  # a preview on the stored history first
    wait_until(page, lambda: "alert(s) over" in text(page, ".rule-message"), timeout=60)
    assert "ATOMUSDT: fired" in text(page, ".rule-message")
    page.locator(".rule-save button").click()
    wait_until(page, lambda: "saved rule" in text(page, ".rule-message"))
    rules = app.get("/api/v1/rules")["data"]
    saved = [r for r in rules if r["name"] == "Browser ATOM watch"]
    assert saved and saved[0]["condition"] == "price > 0" and saved[0]["symbols"] == ["ATOMUSDT"]
    # the rule fires at once on ATOMUSDT's ticks and its alert appears in the live feed
    wait_until(page, lambda: "Browser ATOM watch" in text(page, ".alerts-feed"), timeout=60)
    assert not page.errors, page.errors
    status, _, _ = app.request("DELETE", f"/api/v1/rules/{saved[0]['id']}")
    assert status == 200


def test_acknowledging_an_alert_from_the_feed(page: Any, app: App) -> None:
    status, doc, _ = app.request(
        "POST", "/api/v1/alerts", {"name": "Feed check", "symbol": "UNIUSDT", "severity": "high"}
    )
    assert status == 201
    wait_until(page, lambda: "Feed check" in text(page, ".alerts-feed"), timeout=30)
    page.locator(".alerts-feed").get_by_text("Feed check").first.click()
    page.locator(".alert-ack button").click()
    wait_until(page, lambda: "acknowledge: done" in text(page, ".alert-status"))
    assert app.get(f"/api/v1/alerts/{doc['id']}")["acknowledged"] is True
    assert not page.errors, page.errors


def test_panel_serve_on_its_own_against_the_same_data_directory(browser: Any, app: App) -> None:
    """``panel serve panel_app/app.py`` beside a running ``rxpipe run``: the same embedded
    database, polled; candles from the stored rollups and live points from the stored ticks."""
    import subprocess
    import sys

    from ..apps import free_port

    port = free_port()
    panel = Path(sys.executable).parent / "panel"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "RXPIPE_DATA_DIR": str(app.data_dir), "RXPIPE_LOG_LEVEL": "WARNING"}
    log = open(app.data_dir.parent / "panel-serve.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            str(panel),
            "serve",
            str(root / "panel_app" / "app.py"),
            "--port",
            str(port),
            "--address",
            "127.0.0.1",
            "--allow-websocket-origin",
            f"127.0.0.1:{port}",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
    )
    context = browser.new_context(viewport={"width": 1600, "height": 1150})
    try:
        pg = context.new_page()
        errors: list[str] = []
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: errors.append(str(e)))
        deadline = time.monotonic() + 90
        while True:
            try:
                pg.goto(f"http://127.0.0.1:{port}/app", timeout=10_000)
                break
            except Exception:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(1)
        pg.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0", timeout=60_000)
        wait_until(pg, lambda: points(pg, "candles") > 0, timeout=60)
        first = points(pg, "signals")
        wait_until(pg, lambda: points(pg, "signals") > first, timeout=30)  # the running app's ticks
        assert not errors, errors
    finally:
        context.close()
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    # the shared embedded server is still there for the running app
    assert app.health()["storage"]["status"] == "ok"
