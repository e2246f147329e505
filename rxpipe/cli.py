"""The ``rxpipe`` command: ``run``, ``replay`` and ``simulate``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rxpipe import __version__
from rxpipe.config import Settings
from rxpipe.durations import parse_duration
from rxpipe.errors import RxpipeError
from rxpipe.runtime import Runtime
from rxpipe.sources.replay import parse_speed
from rxpipe.sources.simulator import simulator_source

log = logging.getLogger("rxpipe")

STOP_TIMEOUT_S = 8.0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="YAML settings file")
    p.add_argument(
        "--data-dir", type=Path, help="where the embedded database lives (RXPIPE_DATA_DIR)"
    )
    p.add_argument("--symbols", help="comma-separated symbols (default: the ten seed symbols)")
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="rxpipe", description="Reactive crypto market analytics.")
    top.add_argument("--version", action="version", version=f"rxpipe {__version__}")
    sub = top.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the pipeline and the server")
    _common(run)
    run.add_argument("--host", help="address to bind (default 127.0.0.1)")
    run.add_argument("--port", type=int, help="port (default 8080)")
    run.add_argument("--source", help="simulator (default) or replay:PATH[,PATH...]")
    run.add_argument("--no-storage", action="store_true", help="do not store ticks")
    run.add_argument("--no-dashboard", action="store_true", help="serve the API only")

    rep = sub.add_parser("replay", help="run the pipeline over files and print a summary")
    _common(rep)
    rep.add_argument("paths", nargs="+", type=Path, help="CSV, CSV.gz or Parquet files")
    rep.add_argument("--speed", default="max", help="max (default), 1 (the file's pace) or N")
    rep.add_argument("--symbol", help="symbol of candle files (default: from the file name)")
    rep.add_argument("--json", action="store_true", help="print one JSON object")
    rep.add_argument("--quiet", action="store_true", help="no progress bar")
    rep.add_argument("--no-storage", action="store_true", help="run the pipeline without storage")

    sim = sub.add_parser("simulate", help="write simulated history")
    _common(sim)
    sim.add_argument("--backfill", default="7d", help="how much history, e.g. 7d (default), 12h")
    sim.add_argument(
        "--interval", default="5s", help="time between two ticks of a symbol (default 5s)"
    )
    sim.add_argument("--seed", type=int, help="random seed (default from settings: 42)")
    sim.add_argument("--json", action="store_true", help="print one JSON object")
    score = sub.add_parser(
        "score", help="anomaly scores of one series (NAB's timestamp,value format)"
    )
    score.add_argument("input", type=Path, help="CSV with a timestamp column and a value column")
    score.add_argument(
        "--out", type=Path, required=True, help="where to write timestamp,value,anomaly_score"
    )
    score.add_argument("--column", default="value", help="the value column (default: value)")

    bt = sub.add_parser("backtest", help="replay stored history through a rule")
    _common(bt)
    bt.add_argument(
        "--rule", required=True, help="a YAML rule file (one rule) or the id of a stored rule"
    )
    bt.add_argument(
        "--from", dest="start", help="start: ISO time or a duration ago (7d); default all history"
    )
    bt.add_argument("--to", dest="end", help="end: ISO time or a duration ago; default now")
    bt.add_argument("--json", action="store_true", help="print one JSON object")
    return top


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    return Settings.load(
        args.config, data_dir=args.data_dir, symbols=args.symbols, log_level=args.log_level, **extra
    )


def _logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("tornado.access").setLevel(logging.ERROR)  # not a line per request


def _until_done_or_signal(done: Callable[[float], bool]) -> bool:
    """Wait for ``done`` or SIGINT/SIGTERM; True if interrupted."""
    interrupted = threading.Event()
    previous = {
        s: signal.signal(s, lambda *_: interrupted.set()) for s in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        while not done(0.1):
            if interrupted.is_set():
                return True
        return False
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def cmd_replay(args: argparse.Namespace) -> int:
    for path in args.paths:
        if not path.is_file():
            raise RxpipeError(f"{path}: no such file")
    settings = _settings(args, **({"storage.enabled": False} if args.no_storage else {}))
    _logging(settings.log_level)
    rt = Runtime(settings)
    rt.open_storage()
    replay = rt.make_replay(
        list(args.paths),
        speed=parse_speed(args.speed),
        symbol=args.symbol,
        progress=not args.quiet and not args.json,
    )
    t0 = time.perf_counter()
    pipeline = rt.build(replay.observable(), source_name="replay")
    rt.start()
    interrupted = _until_done_or_signal(pipeline.wait)
    flushed = rt.stop(STOP_TIMEOUT_S if interrupted else None)
    seconds = time.perf_counter() - t0
    if pipeline.error is not None:
        raise RxpipeError(f"replay failed: {pipeline.error}")
    malformed = replay.report.malformed
    summary: dict[str, Any] = {
        "files": [str(p) for p in args.paths],
        "ticks": replay.report.ticks + len(malformed),
        "rejected": pipeline.rejected + len(malformed),
        "malformed": len(malformed),
        "invalid": pipeline.rejected,
        "processed": pipeline.stats.ticks_processed,
        "stored": rt.tick_sink.stored if rt.tick_sink else 0,
        "duplicates": rt.tick_sink.duplicates if rt.tick_sink else 0,
        "seconds": round(seconds, 4),
        "ticks_per_s": round((replay.report.ticks + len(malformed)) / seconds, 1)
        if seconds
        else 0.0,
        "errors": [str(e) for e in malformed[:20]],
        "rejected_by_reason": dict(pipeline.validator.rejected),
        "interrupted": interrupted,
        "flushed": flushed,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"replayed {summary['ticks']:,} ticks from {len(args.paths)} file(s) in {seconds:.2f}s "
            f"({summary['ticks_per_s']:,.0f} ticks/s): {summary['stored']:,} stored, "
            f"{summary['duplicates']:,} already stored, {summary['rejected']:,} rejected"
        )
        for err in summary["errors"]:
            print(f"  {err}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    settings = _settings(args, **({"simulator.seed": args.seed} if args.seed is not None else {}))
    _logging(settings.log_level)
    duration = parse_duration(args.backfill)
    interval = parse_duration(args.interval)
    rt = Runtime(settings)
    rt.open_storage()
    n_steps = max(1, int(duration / interval))
    end = time.time_ns()
    sim = rt.make_simulator(step_s=interval, start_ns=end - n_steps * round(interval * 1e9))
    t0 = time.perf_counter()
    pipeline = rt.build(
        simulator_source(sim, realtime=False, max_steps=n_steps), source_name="simulator"
    )
    rt.start()
    interrupted = _until_done_or_signal(pipeline.wait)
    rt.stop(STOP_TIMEOUT_S if interrupted else None)
    seconds = time.perf_counter() - t0
    summary = {
        "ticks": pipeline.stats.ticks_in,
        "stored": rt.tick_sink.stored if rt.tick_sink else 0,
        "rejected": pipeline.rejected,
        "symbols": sim.names,
        "points_per_symbol": sim.step,
        "from": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sim.start_ns / 1e9)),
        "to": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end / 1e9)),
        "events": [
            {
                "symbol": e.symbol,
                "kind": e.kind,
                "start_ts": e.start_ts,
                "end_ts": e.end_ts,
                "magnitude": round(e.magnitude, 6),
            }
            for e in sim.events
        ],
        "seconds": round(seconds, 3),
        "interrupted": interrupted,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"simulated {summary['ticks']:,} ticks ({sim.step:,} per symbol) from {summary['from']} "
            f"to {summary['to']} in {seconds:.1f}s; {summary['stored']:,} stored; "
            f"{len(sim.events)} labelled events"
        )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {
        "server.host": args.host,
        "server.port": args.port,
        "source": args.source,
    }
    if args.no_storage:
        overrides["storage.enabled"] = False
    settings = _settings(args, **overrides)
    _logging(settings.log_level)
    from rxpipe.server.app import serve as serve_app

    configured = settings.server.api_token
    token = configured.get_secret_value() if configured else secrets.token_urlsafe(24)
    rt = Runtime(settings)
    rt.open_storage()
    rt.build(rt.source_from_settings(), notify=True, live=True)
    rt.start()

    async def serve() -> None:
        running = await serve_app(rt, token, dashboard=not args.no_dashboard)
        host, port = settings.server.host, running.port
        shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host  # noqa: S104 - shown, not bound
        print(f"rxpipe {__version__}: dashboard http://{shown}:{port}/dashboard", file=sys.stderr)
        print(
            f"  API http://{shown}:{port}/api/v1 (OpenAPI at /api/v1/openapi.json)", file=sys.stderr
        )
        if configured is None:  # the user needs it for mutating calls; it is theirs to see
            print(f"  API token (generated for this run): {token}", file=sys.stderr)
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        # after the server starts: Bokeh's server sets handlers of its own that stop the loop
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        await _first_batch(rt, stopping)
        if not stopping.is_set():
            rt.settle()
        while not stopping.is_set():
            try:
                await asyncio.wait_for(stopping.wait(), timeout=10.0)
            except TimeoutError:
                await loop.run_in_executor(None, rt.record_events)
        log.info("stopping: flushing sinks")
        await running.stop()
        flushed = await loop.run_in_executor(None, rt.stop, STOP_TIMEOUT_S)
        log.info("stopped (%s)", "all ticks flushed" if flushed else "flush timed out")

    asyncio.run(serve())
    return 0


async def _first_batch(rt: Runtime, stopping: asyncio.Event, timeout_s: float = 30.0) -> None:
    """Until the pipeline has processed a batch (its kernels are compiled), ``timeout_s`` has
    passed or the app is stopping."""
    deadline = time.monotonic() + timeout_s
    p = rt.pipeline
    while p is not None and p.stats.ticks_processed == 0 and time.monotonic() < deadline:
        if stopping.is_set():
            return
        await asyncio.sleep(0.05)


def cmd_score(args: argparse.Namespace) -> int:
    import csv

    import numpy as np
    import pandas as pd

    from rxpipe.operators.series import score_series

    if not args.input.is_file():
        raise RxpipeError(f"{args.input}: no such file")
    stamps, values = [], []
    with open(args.input, newline="") as f:
        reader = csv.DictReader(f)
        names = reader.fieldnames or []
        if args.column not in names or "timestamp" not in names:
            raise RxpipeError(
                f"{args.input}: needs columns timestamp and {args.column}; found {names}"
            )
        for row in reader:
            try:
                values.append(float(row[args.column]))
            except (TypeError, ValueError):
                raise RxpipeError(
                    f"{args.input}:{reader.line_num}: bad {args.column} {row[args.column]!r}: not a number"
                ) from None
            stamps.append(row["timestamp"])
    try:
        ts = pd.to_datetime(pd.Series(stamps), utc=True).to_numpy("datetime64[ns]").astype(np.int64)
    except (ValueError, TypeError):
        ts = None  # timestamps we cannot read: score without seasonality
    scores = score_series(np.array(values), ts)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["timestamp", "value", "anomaly_score"])
        for t, v, sc in zip(stamps, values, scores, strict=True):
            writer.writerow([t, repr(v), f"{sc:.6f}"])
    return 0


def _when(text: str | None) -> int | None:
    """ISO time, or a duration before now (``7d``), to ns."""
    if text is None:
        return None
    from datetime import UTC, datetime

    try:
        return time.time_ns() - int(parse_duration(text) * 1e9)
    except RxpipeError:
        pass
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise RxpipeError(
            f"time {text!r} is not ISO (2023-03-10T00:00Z) nor a duration ago (7d)"
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp() * 1e9)


def cmd_backtest(args: argparse.Namespace) -> int:
    from rxpipe.model import SymbolTable
    from rxpipe.rules.backtest import backtest, stored_ticks
    from rxpipe.rules.model import load_rules
    from rxpipe.storage.rules import RuleStore

    settings = _settings(args)
    _logging(settings.log_level)
    rt = Runtime(settings)
    db = rt.open_storage()
    if db is None:
        raise RxpipeError("backtest needs storage; it is disabled in the settings")
    with db.connect() as conn:
        if Path(args.rule).is_file():
            rules = load_rules(args.rule)
            if len(rules) != 1:
                raise RxpipeError(
                    f"{args.rule} holds {len(rules)} rules; backtest takes a file with one"
                )
            rule = rules[0]
        else:
            found = RuleStore(conn).get(args.rule)
            if found is None:
                raise RxpipeError(f"no rule file or stored rule {args.rule!r}")
            rule = found
        symbols = SymbolTable()
        start, end = _when(args.start), _when(args.end)
        report = backtest(rule, stored_ticks(conn, symbols, start_ns=start, end_ns=end), symbols)
    rt.stop(STOP_TIMEOUT_S)
    doc = report.to_json()
    if args.json:
        print(json.dumps(doc))
    else:
        print(
            f"{rule.name}: {doc['alerts']} alert(s) over {doc['days']:.2f} days ({doc['alerts_per_day']:.2f}/day), "
            f"firing {doc['firing_seconds']:.0f}s in all, {doc['ticks']:,} ticks"
        )
        for f in doc["firings"][:50]:
            print(
                f"  {f['symbol']:<10} fired {f['fired_at']}  resolved {f['resolved_at']}  value {f['value']}"
            )
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "replay": cmd_replay,
    "simulate": cmd_simulate,
    "score": cmd_score,
    "backtest": cmd_backtest,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except RxpipeError as exc:
        print(f"rxpipe {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
