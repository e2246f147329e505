"""The dashboard left open: ``rxpipe run`` with 10 symbols streaming and a dashboard session in
Debian's chromium (Playwright), sampled every 30 s: the server's resident memory, the page's
JavaScript heap, the chart sources' sizes, and how often the charts updated.

    python -m bench.soak                # one hour
    python -m bench.soak --minutes 10

Not part of ``make bench`` (it takes the hour it measures).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from bench.data import CACHE
from bench.server import _free_port
from rxpipe.storage.embedded import EmbeddedPostgres

RESULTS = Path(__file__).resolve().parent / "results"


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run(minutes: float = 60.0, every_s: float = 30.0) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    data_dir = CACHE / f"soak-db-{os.getpid()}"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    env = {**os.environ, "RXPIPE_LOG_LEVEL": "WARNING"}
    port = _free_port()
    log = open(data_dir.parent / "soak.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rxpipe.cli",
            "run",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    samples: list[dict[str, Any]] = []
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(base + "/api/v1/health", timeout=5):
                    break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=shutil.which("chromium"),
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--enable-precise-memory-info",
                ],
            )
            page = browser.new_page(viewport={"width": 1600, "height": 1100})
            page.goto(base + "/dashboard")
            page.wait_for_function(
                "() => window.Bokeh && Bokeh.documents.length > 0", timeout=60_000
            )
            page.evaluate(
                "() => { window.__updates = 0; const s = Bokeh.documents[0].get_model_by_name('signals');"
                " s.streaming.connect(() => window.__updates++); }"
            )
            t0 = time.monotonic()
            last_updates, last_t = 0, t0
            while time.monotonic() - t0 < minutes * 60:
                time.sleep(every_s)
                now = time.monotonic()
                doc = page.evaluate(
                    "() => { const d = Bokeh.documents[0]; return {"
                    " heap_mb: performance.memory ? performance.memory.usedJSHeapSize / 1048576 : null,"
                    " signals: d.get_model_by_name('signals').data.x.length,"
                    " candles: d.get_model_by_name('candles').data.x.length,"
                    " markers: d.get_model_by_name('anomalies').data.x.length,"
                    " updates: window.__updates }; }"
                )
                sample = {
                    "minute": round((now - t0) / 60, 2),
                    "server_rss_mb": round(_rss_mb(proc.pid), 1),
                    "browser_heap_mb": round(doc["heap_mb"], 1) if doc["heap_mb"] else None,
                    "signal_points": doc["signals"],
                    "candles": doc["candles"],
                    "markers": doc["markers"],
                    "chart_updates_per_s": round(
                        (doc["updates"] - last_updates) / (now - last_t), 2
                    ),
                }
                last_updates, last_t = doc["updates"], now
                samples.append(sample)
                print(f"  {sample}")
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        EmbeddedPostgres(data_dir).stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    settled = [s for s in samples if s["minute"] >= min(5.0, minutes / 2)]
    first, last = (settled[0], settled[-1]) if settled else ({}, {})
    rates = [s["chart_updates_per_s"] for s in samples]
    return {
        "benchmark": "soak",
        "minutes": minutes,
        "samples": samples,
        "server_rss_mb_after_warmup": [first.get("server_rss_mb"), last.get("server_rss_mb")],
        "browser_heap_mb_after_warmup": [first.get("browser_heap_mb"), last.get("browser_heap_mb")],
        # growth as the least-squares slope over the samples after warm-up: the first and the
        # last sample alone are at the mercy of where each collector happened to be
        "server_rss_mb_per_hour": _slope_per_hour(settled, "server_rss_mb"),
        "browser_heap_mb_per_hour": _slope_per_hour(settled, "browser_heap_mb"),
        "chart_updates_per_s_min": min(rates, default=0),
        "chart_updates_per_s_median": float(np.median(rates)) if rates else 0,
    }


def _slope_per_hour(samples: list[dict[str, Any]], key: str) -> float | None:
    points = [(s["minute"], s[key]) for s in samples if s.get(key) is not None]
    if len(points) < 3:
        return None
    minutes, values = np.array(points).T
    return round(float(np.polyfit(minutes, values, 1)[0] * 60), 2)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak")
    parser.add_argument("--minutes", type=float, default=60.0)
    args = parser.parse_args()
    from bench import machine

    doc = run(args.minutes)
    doc["machine"] = machine.describe()
    doc["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(f"  -> {RESULTS / 'soak.json'}")


if __name__ == "__main__":
    main()
