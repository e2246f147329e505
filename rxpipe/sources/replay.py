"""Replay of recorded files as a tick stream: as fast as possible, at the file's pace, or N×."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import reactivex as rx
from reactivex.abc import ObserverBase, SchedulerBase
from reactivex.disposable import Disposable
from tqdm import tqdm

from rxpipe.errors import InputError
from rxpipe.model import SymbolTable, TickBatch
from rxpipe.sources.tickfile import FileColumns, read_ticks

log = logging.getLogger(__name__)


def parse_speed(text: str | float | None) -> float | None:
    """``max`` (or None) means as fast as possible; a number N replays N times the file's pace.

    >>> parse_speed("max"), parse_speed("1"), parse_speed("10x")
    (None, 1.0, 10.0)
    """
    if text is None or str(text).lower() in ("max", "inf", "0"):
        return None
    try:
        speed = float(str(text).lower().rstrip("x"))
    except ValueError:
        raise InputError(
            f"speed {text!r} is not 'max' or a positive number such as 1 or 10"
        ) from None
    if speed <= 0:
        raise InputError(f"speed {text!r} must be positive")
    return speed


@dataclass
class ReplayReport:
    files: list[str] = field(default_factory=list)
    ticks: int = 0
    malformed: list[InputError] = field(default_factory=list)


class Replay:
    """Ticks from one or more files, merged in time order (stable: file order breaks ties).

    Each file is its own source, named ``replay:<file name>``, and a tick's ``seq`` is its line
    in the file, so replaying a file twice into storage stores its ticks once.
    """

    def __init__(
        self,
        paths: list[str | Path],
        *,
        symbols: SymbolTable,
        sources: SymbolTable,
        symbol: str | None = None,
        speed: float | None = None,
        batch_ticks: int = 4096,
        pace_ms: float = 50.0,
        progress: bool = False,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.symbols = symbols
        self.sources = sources
        self.symbol = symbol
        self.speed = speed
        self.batch_ticks = batch_ticks
        self.pace_ms = pace_ms
        self.progress = progress
        self.report = ReplayReport(files=[str(p) for p in self.paths])

    def source_name(self, path: Path) -> str:
        return f"replay:{path.name}"

    def load(self) -> TickBatch:
        """Read every file and merge them by time into one batch."""
        parts = []
        for path in self.paths:
            cols: FileColumns = read_ticks(path, self.symbols, symbol=self.symbol)
            self.report.malformed.extend(cols.errors)
            src = self.sources.intern(self.source_name(path))
            parts.append(
                TickBatch(
                    cols.symbol,
                    cols.ts,
                    cols.price,
                    cols.volume,
                    cols.side,
                    cols.line,
                    np.full(len(cols), src, np.int16),
                )
            )
        merged = TickBatch.concat(parts)
        if len(parts) > 1:
            merged = merged.take(np.argsort(merged.ts, kind="stable"))
        self.report.ticks = len(merged)
        return merged

    def _chunks(self, ticks: TickBatch) -> Iterator[tuple[int, TickBatch]]:
        """(due offset in ns of wall time from the start, chunk) pairs."""
        n = len(ticks)
        if self.speed is None:
            for lo in range(0, n, self.batch_ticks):
                yield 0, ticks.take(slice(lo, lo + self.batch_ticks))
            return
        t0 = int(ticks.ts[0])
        bucket = (ticks.ts - t0) // max(1, int(self.pace_ms * 1e6 * self.speed))
        cuts = np.flatnonzero(np.diff(bucket)) + 1
        bounds = np.concatenate([[0], cuts, [n]])
        for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            due = int((int(ticks.ts[lo]) - t0) / self.speed)
            for start in range(lo, hi, self.batch_ticks):
                yield due, ticks.take(slice(start, min(hi, start + self.batch_ticks)))

    def observable(self) -> rx.Observable[TickBatch]:
        """The replay as an Observable, produced on a thread of its own; completes at the end."""

        def subscribe(
            observer: ObserverBase[TickBatch], scheduler: SchedulerBase | None = None
        ) -> Disposable:
            stop = threading.Event()

            def produce() -> None:
                try:
                    ticks = self.load()
                    bar = tqdm(
                        total=len(ticks),
                        unit="tick",
                        unit_scale=True,
                        delay=3.0,
                        file=sys.stderr,
                        disable=not self.progress or not sys.stderr.isatty(),
                    )
                    start = time.monotonic_ns()
                    with bar:
                        for due, chunk in self._chunks(ticks):
                            wait = (start + due - time.monotonic_ns()) / 1e9
                            if (wait > 0 and stop.wait(wait)) or stop.is_set():
                                return
                            observer.on_next(chunk)
                            bar.update(len(chunk))
                except (
                    Exception
                ) as exc:  # the pipeline reports it; the thread must not die silently
                    observer.on_error(exc)
                    return
                observer.on_completed()

            thread = threading.Thread(target=produce, name="rxpipe-replay", daemon=True)
            thread.start()
            return Disposable(stop.set)

        return rx.create(subscribe)
