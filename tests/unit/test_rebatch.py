"""Batches close at N ticks or T milliseconds; nothing is lost, order is kept."""

import threading
import time

import numpy as np
import reactivex as rx
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import operators as ops
from reactivex.subject import Subject

from rxpipe.model import TickBatch
from rxpipe.operators.rebatch import rebatch


def ticks(start: int, n: int) -> TickBatch:
    return TickBatch.from_arrays(
        symbol=np.zeros(n),
        ts=np.arange(start, start + n) + 1,
        price=np.ones(n),
        volume=np.ones(n),
        seq=np.arange(start, start + n),
    )


@settings(max_examples=100, deadline=None)
@given(sizes=st.lists(st.integers(0, 50), max_size=30), limit=st.integers(1, 40))
def test_count_limit_keeps_every_tick_in_order(sizes, limit) -> None:
    batches, start = [], 0
    for n in sizes:
        batches.append(ticks(start, n))
        start += n
    out = rx.from_iterable(batches).pipe(rebatch(limit, max_ms=10_000), ops.to_list()).run()
    assert all(0 < len(b) <= limit for b in out)
    assert all(len(b) == limit for b in out[:-1])
    assert TickBatch.concat(out).seq.tolist() == list(range(start))


def test_time_limit_closes_a_small_batch() -> None:
    subject: Subject[TickBatch] = Subject()
    got: list[tuple[float, int]] = []
    done = threading.Event()
    subject.pipe(rebatch(4096, max_ms=50)).subscribe(
        lambda b: (got.append((time.monotonic(), len(b))), done.set())
    )
    t0 = time.monotonic()
    subject.on_next(ticks(0, 10))
    subject.on_next(ticks(10, 5))
    assert done.wait(2.0)
    assert got[0][1] == 15
    assert 0.03 <= got[0][0] - t0 < 0.5
