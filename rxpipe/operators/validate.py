"""Validation of ticks entering a pipeline: bad ticks are counted, logged and skipped."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import numpy as np
import reactivex as rx
from reactivex import operators as ops

from rxpipe.kernels.validate import REASONS, validate_ticks
from rxpipe.model import TickBatch

log = logging.getLogger(__name__)

_NO_TS = np.iinfo(np.int64).min // 2


class TickValidator:
    """Rejects non-finite or non-positive prices, negative volumes and out-of-order timestamps.

    Out of order means earlier than the same symbol's latest accepted tick by more than
    ``tolerance_ms``. Rejected ticks are counted per reason in :attr:`rejected`.

    >>> v = TickValidator(tolerance_ms=0)
    >>> b = TickBatch.from_arrays(symbol=[0, 0, 0, 0], ts=[10, 20, 5, 30],
    ...                           price=[1.0, float("nan"), 1.0, 2.0], volume=[1.0, 1.0, 1.0, -1.0])
    >>> len(v.update(b)), v.rejected_total
    (1, 3)
    >>> sorted(v.rejected)[0]
    'price is not a finite positive number'
    """

    def __init__(self, tolerance_ms: float = 1000.0, *, log_first: int = 5) -> None:
        self.tolerance_ns = int(tolerance_ms * 1_000_000)
        self._last_ts = np.full(64, _NO_TS, np.int64)
        self.rejected: dict[str, int] = {}
        self.accepted = 0
        self._log_first = log_first
        self._lock = threading.Lock()

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def update(self, batch: TickBatch, source_name: str = "") -> TickBatch:
        """Return the accepted ticks of ``batch``; count and log the rejected ones."""
        n = len(batch)
        if n == 0:
            return batch
        with self._lock:
            top = int(batch.symbol.max()) + 1
            if top > len(self._last_ts):
                grown = np.full(max(top, 2 * len(self._last_ts)), _NO_TS, np.int64)
                grown[: len(self._last_ts)] = self._last_ts
                self._last_ts = grown
            reason = np.empty(n, np.int8)
            n_ok = validate_ticks(
                batch.symbol,
                batch.ts,
                batch.price,
                batch.volume,
                self._last_ts,
                self.tolerance_ns,
                reason,
            )
            self.accepted += n_ok
            if n_ok == n:
                return batch
            self._count_rejects(batch, reason, source_name)
            return batch.take(reason == 0)

    def _count_rejects(self, batch: TickBatch, reason: np.ndarray, source_name: str) -> None:
        codes, counts = np.unique(reason[reason != 0], return_counts=True)
        for code, count in zip(codes.tolist(), counts.tolist(), strict=True):
            text = REASONS[code]
            seen = self.rejected.get(text, 0)
            self.rejected[text] = seen + count
            if seen < self._log_first:
                i = int(np.flatnonzero(reason == code)[0])
                log.warning(
                    "rejected %d tick(s) from %s: %s (first at seq %d: price=%r volume=%r ts=%d)",
                    count,
                    source_name or f"source {batch.source[i]}",
                    text,
                    batch.seq[i],
                    float(batch.price[i]),
                    float(batch.volume[i]),
                    batch.ts[i],
                )

    def snapshot(self) -> dict[str, object]:
        return {"last_ts": self._last_ts.copy(), "rejected": dict(self.rejected)}

    def restore(self, state: dict[str, object]) -> None:
        self._last_ts = np.array(state["last_ts"], np.int64)
        self.rejected = dict(state["rejected"])  # type: ignore[call-overload]


def validate(
    validator: TickValidator | None = None, *, tolerance_ms: float = 1000.0
) -> Callable[[rx.Observable[TickBatch]], rx.Observable[TickBatch]]:
    """Rx operator: drop (and count) invalid ticks, pass the rest; empty batches are dropped.

    >>> import reactivex as rx
    >>> b = TickBatch.from_arrays(symbol=[0, 0], ts=[1, 2], price=[1.0, -1.0], volume=[1.0, 1.0])
    >>> rx.of(b).pipe(validate()).run().price.tolist()
    [1.0]
    """
    v = validator if validator is not None else TickValidator(tolerance_ms)
    return rx.compose(ops.map(v.update), ops.filter(_nonempty))


def _nonempty(batch: TickBatch) -> bool:
    return len(batch) > 0
