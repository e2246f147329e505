"""The rxpipe command as a user runs it, against the real embedded PostgreSQL."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest

from rxpipe.storage.database import Database

from ..conftest import MARKET, run_rxpipe, rxpipe_cmd

BTC = MARKET / "binance_1m_2023-03-16_2023-05-01" / "BTCUSDT.csv.gz"
ETH = MARKET / "binance_1m_2023-03-16_2023-05-01" / "ETHUSDT.csv.gz"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
        return json.loads(r.read())


def wait_health(port: int, proc: subprocess.Popen, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"rxpipe run exited early: {proc.stderr.read() if proc.stderr else ''}"
            )
        try:
            return health(port)
        except OSError:
            time.sleep(0.3)
    raise AssertionError("no /health answer")


def stored_in(data_dir: Path) -> int:
    db = Database.open(data_dir=data_dir, stop_embedded_on_exit=False)
    with psycopg.connect(db.url) as conn:
        row = conn.execute("SELECT count(*) FROM ticks").fetchone()
    return int(row[0]) if row else 0


def test_replay_json_summary_and_idempotent_rerun(data_dir: Path) -> None:
    first = run_rxpipe("replay", str(BTC), str(ETH), "--data-dir", str(data_dir), "--json")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.strip().splitlines()
    assert len(lines) == 1  # exactly one JSON object on stdout
    doc = json.loads(lines[0])
    assert {"ticks", "rejected", "stored", "seconds", "ticks_per_s"} <= set(doc)
    assert doc["ticks"] > 120_000 and doc["stored"] == doc["ticks"] and doc["rejected"] == 0
    assert doc["ticks_per_s"] > 0 and doc["seconds"] > 0
    again = json.loads(run_rxpipe("replay", str(BTC), "--data-dir", str(data_dir), "--json").stdout)
    assert again["stored"] == 0 and again["duplicates"] == again["ticks"]
    assert stored_in(data_dir) == doc["ticks"]


def test_replay_of_a_malformed_file_names_the_lines_and_keeps_the_rest(tmp_path: Path) -> None:
    f = tmp_path / "ticks.csv"
    f.write_text(
        "timestamp,symbol,price,volume\n"
        "2023-03-16T22:15:00Z,BTCUSDT,100,1\n"
        "2023-03-16T22:15:01Z,BTCUSDT,oops,1\n"
        "2023-03-16T22:15:02Z,BTCUSDT,-3,1\n"
        "2023-03-16T22:15:03Z,BTCUSDT,101,1\n"
    )
    out = run_rxpipe("replay", str(f), "--no-storage", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["ticks"] == 4 and doc["processed"] == 2 and doc["rejected"] == 2
    assert doc["errors"] == [f"{f}:3: bad price 'oops': not a number"]
    assert doc["rejected_by_reason"] == {"price is not a finite positive number": 1}
    text = run_rxpipe("replay", str(f), "--no-storage")
    assert f"{f}:3: bad price 'oops'" in text.stdout


def test_replay_of_a_missing_file_fails_clearly(tmp_path: Path) -> None:
    out = run_rxpipe("replay", str(tmp_path / "none.csv"), "--no-storage", "--json")
    assert out.returncode == 2 and "none.csv: no such file" in out.stderr and out.stdout == ""


def test_simulate_backfill_writes_a_week_of_history(data_dir: Path) -> None:
    out = run_rxpipe(
        "simulate", "--backfill", "7d", "--interval", "60s", "--data-dir", str(data_dir), "--json"
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["points_per_symbol"] >= 1000 and len(doc["symbols"]) == 10
    assert doc["stored"] == doc["ticks"] == 10 * doc["points_per_symbol"]
    db = Database.open(data_dir=data_dir, stop_embedded_on_exit=False)
    with psycopg.connect(db.url) as conn:
        span = conn.execute(
            "SELECT extract(epoch from max(ts) - min(ts)) / 86400 FROM ticks"
        ).fetchone()
        events = conn.execute("SELECT count(*) FROM simulator_events").fetchone()
    assert span is not None and 6.9 < float(span[0]) <= 7.0
    assert events is not None and events[0] == len(doc["events"]) > 0


def start_run(data_dir: Path, port: int, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "RXPIPE_SIMULATOR_RATE": "2000"}
    return subprocess.Popen(
        rxpipe_cmd("run", "--data-dir", str(data_dir), "--port", str(port), *extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_stored(port: int, proc: subprocess.Popen, at_least: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    doc = wait_health(port, proc)
    while doc["ticks_stored"] < at_least and time.monotonic() < deadline:
        time.sleep(0.2)
        doc = health(port)
    assert doc["ticks_stored"] >= at_least, doc
    return doc


def test_run_serves_health_stops_on_sigterm_and_resumes(data_dir: Path) -> None:
    port = free_port()
    proc = start_run(data_dir, port)
    try:
        first = wait_stored(port, proc, 1)
        later = wait_stored(port, proc, first["ticks_stored"] + 2000)
        assert (
            later["status"] == "healthy"
            and later["version"]
            and later["uptime_s"] > first["uptime_s"]
        )
        assert later["storage"]["status"] == "ok" and later["services"]["pipeline"] == "running"
        assert later["ticks_processed"] >= later["ticks_stored"] > first["ticks_stored"]
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - t0 < 10
    finally:
        if proc.poll() is None:
            proc.kill()
    stored = stored_in(data_dir)
    assert stored >= later["ticks_stored"]
    # a restart continues the simulator's sequence: new ticks are stored, none overwritten
    proc = start_run(data_dir, port)
    try:
        wait_stored(port, proc, 2000)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert stored_in(data_dir) >= stored + 2000


def test_kill_9_keeps_every_acknowledged_tick(data_dir: Path) -> None:
    port = free_port()
    proc = start_run(data_dir, port)
    try:
        acknowledged = wait_stored(port, proc, 5000)["ticks_stored"]
        proc.kill()  # SIGKILL: no flush, no goodbye
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert stored_in(data_dir) >= acknowledged


def test_bad_config_fails_with_the_field_named(tmp_path: Path) -> None:
    cfg = tmp_path / "rx.yaml"
    cfg.write_text("batch:\n  max_ms: -1\n")
    out = run_rxpipe("replay", str(BTC), "--config", str(cfg), "--no-storage")
    assert out.returncode == 2 and "batch.max_ms" in out.stderr


@pytest.mark.parametrize("speed", ["fast", "-2"])
def test_bad_speed_is_refused(speed: str) -> None:
    out = run_rxpipe("replay", str(BTC), "--speed", speed, "--no-storage")
    assert out.returncode == 2 and "speed" in out.stderr


def test_run_with_a_replay_source(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "RXPIPE_REPLAY_SPEED": "max"}
    proc = subprocess.Popen(
        rxpipe_cmd("run", "--no-storage", "--port", str(port), "--source", f"replay:{BTC},{ETH}"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        doc = wait_health(port, proc)
        deadline = time.monotonic() + 60
        while doc["services"]["pipeline"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
            doc = health(port)
        assert doc["services"]["pipeline"] == "stopped" and doc["ticks_processed"] > 120_000
        assert doc["storage"]["status"] == "disabled" and doc["source"].startswith("replay:")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def _replay_on_a_terminal(path: Path, *extra: str) -> str:
    """Run a replay with stderr on a pseudo-terminal, as a user at a shell would."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a real size
    proc = subprocess.Popen(
        rxpipe_cmd("replay", str(path), "--no-storage", "--speed", "1", *extra),
        stdout=subprocess.DEVNULL,
        stderr=follower,
        env=os.environ,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=30)
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_progress_bar_on_long_replays_at_a_terminal_only(tmp_path: Path) -> None:
    f = tmp_path / "SLOWUSDT.csv"  # 5 candles a second apart: a 4-second replay at speed 1
    f.write_text("".join(f"{1679004900000 + i * 1000},1,1,1,{10 + i},1\n" for i in range(5)))
    assert "%|" in _replay_on_a_terminal(f)  # tqdm's bar: 100%|█████| 5/5
    assert "%|" not in _replay_on_a_terminal(f, "--quiet")
    piped = run_rxpipe("replay", str(f), "--no-storage", "--speed", "1")
    assert piped.returncode == 0 and "%|" not in piped.stderr


def test_backtest_a_rule_file_and_a_stored_rule(data_dir: Path, tmp_path: Path) -> None:
    assert run_rxpipe("replay", str(BTC), "--data-dir", str(data_dir), "--json").returncode == 0
    rule = tmp_path / "rule.yaml"
    rule.write_text(
        "name: big move\ncondition: abs(change_pct(price, 1h)) > 3\nsymbols: [BTCUSDT]\n"
    )
    out = run_rxpipe("backtest", "--rule", str(rule), "--data-dir", str(data_dir), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert {"alerts", "alerts_per_day", "firings"} <= set(doc)
    assert doc["alerts"] == len(doc["firings"]) > 0 and doc["days"] > 40
    assert {"symbol", "fired_at", "resolved_at", "value"} <= set(doc["firings"][0])
    assert all(f["symbol"] == "BTCUSDT" and abs(f["value"]) > 3 for f in doc["firings"])
    window = run_rxpipe(
        "backtest",
        "--rule",
        "seed-12",
        "--from",
        "2023-04-01",
        "--to",
        "2023-04-02",
        "--data-dir",
        str(data_dir),
        "--json",
    )
    assert window.returncode == 0, window.stderr
    one_day = json.loads(window.stdout)
    assert one_day["ticks"] == 1440 and one_day["rule"]["name"] == "Extreme Z-Score"
    missing = run_rxpipe("backtest", "--rule", "nope", "--data-dir", str(data_dir))
    assert missing.returncode == 2 and "no rule file or stored rule 'nope'" in missing.stderr
