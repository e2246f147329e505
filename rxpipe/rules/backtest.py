"""Backtest a rule on history: when it would have fired and resolved, and how often.

>>> from rxpipe.sources.simulator import Simulator
>>> from rxpipe.rules.model import Rule
>>> sim = Simulator(["BTCUSDT"], seed=3, step_s=1.0, start_ns=0)
>>> report = backtest(Rule(name="z", condition="abs(z_ret) > 6"), [sim.steps(3600)], sim.symbols)
>>> report.alerts == len(report.firings) and report.ticks == 3600
True
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rxpipe.model import SymbolTable, TickBatch
from rxpipe.operators.detectors import DetectorConfig, DetectorSet
from rxpipe.rules.engine import AlertEngine
from rxpipe.rules.model import Rule

NS = 1_000_000_000


@dataclass
class Firing:
    symbol: str
    fired_at: int  # ns
    resolved_at: int | None
    value: float


@dataclass
class BacktestReport:
    rule: Rule
    ticks: int = 0
    start_ns: int | None = None
    end_ns: int | None = None
    firings: list[Firing] = field(default_factory=list)

    @property
    def alerts(self) -> int:
        return len(self.firings)

    @property
    def days(self) -> float:
        if self.start_ns is None or self.end_ns is None:
            return 0.0
        return max((self.end_ns - self.start_ns) / (86400 * NS), 1e-9)

    @property
    def alerts_per_day(self) -> float:
        return self.alerts / self.days if self.days else 0.0

    @property
    def firing_seconds(self) -> float:
        end = self.end_ns or 0
        return sum(((f.resolved_at or end) - f.fired_at) / NS for f in self.firings)

    def to_json(self) -> dict[str, Any]:
        def iso(ns: int | None) -> str | None:
            return (
                None
                if ns is None
                else np.datetime_as_string(np.datetime64(ns, "ns"), unit="ms") + "Z"
            )

        return {
            "rule": {
                "id": self.rule.id,
                "name": self.rule.name,
                "condition": self.rule.effective_condition(),
            },
            "ticks": self.ticks,
            "from": iso(self.start_ns),
            "to": iso(self.end_ns),
            "days": round(self.days, 4),
            "alerts": self.alerts,
            "alerts_per_day": round(self.alerts_per_day, 4),
            "firing_seconds": round(self.firing_seconds, 3),
            "firing_fraction": round(self.firing_seconds / (self.days * 86400), 6)
            if self.days
            else 0.0,
            "firings": [
                {
                    "symbol": f.symbol,
                    "fired_at": iso(f.fired_at),
                    "resolved_at": iso(f.resolved_at),
                    "value": f.value if np.isfinite(f.value) else None,
                }
                for f in self.firings
            ],
        }


def backtest(
    rule: Rule,
    batches: Iterable[TickBatch],
    symbols: SymbolTable,
    *,
    config: DetectorConfig | None = None,
) -> BacktestReport:
    """Run history through the detectors and one rule; collect its firings."""
    quiet = rule.model_copy(update={"repeat_interval_s": 0.0, "enabled": True})
    detectors, engine = DetectorSet(config), AlertEngine([quiet], symbols)
    report = BacktestReport(rule)
    open_: dict[str, Firing] = {}
    for batch in batches:
        if not len(batch):
            continue
        report.ticks += len(batch)
        report.start_ns = int(batch.ts[0]) if report.start_ns is None else report.start_ns
        report.end_ns = int(batch.ts[-1])
        for e in engine.update(detectors.update(batch)):
            if e.state == "firing":
                open_[e.symbol] = Firing(e.symbol, e.at, None, e.value)
                report.firings.append(open_[e.symbol])
            elif e.state == "resolved" and e.symbol in open_:
                open_.pop(e.symbol).resolved_at = e.at
    return report


def stored_ticks(
    conn: Any,
    symbols: SymbolTable,
    *,
    start_ns: int | None = None,
    end_ns: int | None = None,
    only: list[str] | None = None,
    chunk: int = 262_144,
) -> Iterator[TickBatch]:
    """Stored ticks in time order, in batches, read with a server-side cursor; ``only`` these
    symbols when given (a rule's own)."""
    names = dict(conn.execute("SELECT id, name FROM symbols").fetchall())
    with conn.transaction(), conn.cursor(name="rxpipe_backtest") as cur:
        cur.execute(
            "SELECT (extract(epoch FROM ts) * 1000000)::bigint, symbol_id, price, volume, side, seq FROM ticks "
            "WHERE ts >= coalesce(to_timestamp(%s::float8 / 1e9), '-infinity') "
            "AND ts < coalesce(to_timestamp(%s::float8 / 1e9), 'infinity') "
            "AND (%s::text[] IS NULL OR symbol_id IN (SELECT id FROM symbols WHERE name = ANY(%s))) "
            "ORDER BY ts, symbol_id, seq",
            (start_ns, end_ns, only, only),
        )
        while rows := cur.fetchmany(chunk):
            a = np.array(rows, dtype=np.float64)
            ids = a[:, 1].astype(np.int64)
            present = np.unique(ids)
            to_local = np.zeros(int(present.max()) + 1, np.int32)
            to_local[present] = [
                symbols.intern(names[int(i)]) for i in present
            ]  # per symbol, not per tick
            yield TickBatch.from_arrays(
                symbol=to_local[ids],
                ts=a[:, 0].astype(np.int64) * 1000,
                price=a[:, 2],
                volume=a[:, 3],
                side=a[:, 4],
                seq=a[:, 5],
            )
