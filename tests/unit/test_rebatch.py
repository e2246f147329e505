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
from rxpipe.operators.drain import drain
from rxpipe.operators.rebatch import rebatch


def ticks(start: int, n: int) -> TickBatch:
    return TickBatch.from_arrays(
        symbol=np.zeros(n),
        ts=np.arange(start, start + n) + 1,
        price=np.ones(n),
        volume=np.ones(n),
        seq=np.arange(start, start + n),
    )


def stream(sizes: list[int]) -> list[TickBatch]:
    """Batches of the given sizes whose seq runs 0, 1, 2, ... across them."""
    starts = np.cumsum([0, *sizes])
    return [ticks(int(start), n) for start, n in zip(starts, sizes, strict=False)]


@settings(max_examples=100, deadline=None)
@given(sizes=st.lists(st.integers(0, 50), max_size=30), limit=st.integers(1, 40))
def test_count_limit_keeps_every_tick_in_order(sizes, limit) -> None:
    batches = stream(sizes)
    out = rx.from_iterable(batches).pipe(rebatch(limit, max_ms=10_000), ops.to_list()).run()
    assert all(0 < len(b) <= limit for b in out)
    assert all(len(b) == limit for b in out[:-1])
    assert TickBatch.concat(out).seq.tolist() == list(range(sum(sizes)))


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


@settings(max_examples=100, deadline=None)
@given(sizes=st.lists(st.integers(0, 50), max_size=30), limit=st.integers(1, 40))
def test_drain_keeps_every_tick_in_order(sizes, limit) -> None:
    out = rx.from_iterable(stream(sizes)).pipe(drain(limit), ops.to_list()).run()
    assert all(0 < len(b) <= limit for b in out)
    assert TickBatch.concat(out).seq.tolist() == list(range(sum(sizes)))


def test_drain_closes_a_batch_at_once_when_idle_and_grows_it_under_load() -> None:
    subject: Subject[TickBatch] = Subject()
    got: list[tuple[float, int]] = []
    first = threading.Event()
    release = threading.Event()

    def slow_stage(b: TickBatch) -> None:
        got.append((time.monotonic(), len(b)))
        first.set()
        release.wait(2.0)  # the first batch is slow: the next ticks pile up meanwhile

    done = threading.Event()
    subject.pipe(drain(4096)).subscribe(slow_stage, on_completed=done.set)
    t0 = time.monotonic()
    subject.on_next(ticks(0, 10))
    assert first.wait(2.0)
    assert got[0][1] == 10 and got[0][0] - t0 < 0.02  # no timer: emitted at once
    for k in range(50):
        subject.on_next(ticks(10 + 3 * k, 3))
    release.set()
    subject.on_completed()
    assert done.wait(2.0)
    assert [n for _, n in got] == [10, 150]  # everything that waited, as one batch


def test_drain_ends_with_a_stages_error_and_blocks_a_source_too_far_ahead() -> None:
    subject: Subject[TickBatch] = Subject()
    errors: list[Exception] = []
    gate = threading.Event()

    def stage(b: TickBatch) -> None:
        gate.wait(2.0)
        raise ValueError("a sink failed")

    subject.pipe(drain(4, max_waiting=8)).subscribe(stage, errors.append)
    subject.on_next(ticks(0, 4))  # taken by the worker, which waits at the gate
    time.sleep(0.05)
    subject.on_next(ticks(4, 8))  # waits: 8 ticks, the limit
    blocked = threading.Thread(target=subject.on_next, args=(ticks(12, 4),))
    blocked.start()
    blocked.join(0.2)
    assert blocked.is_alive()  # back-pressure: the source waits for the worker
    gate.set()
    blocked.join(2.0)
    assert not blocked.is_alive()  # released once the stream ended
    assert [str(e) for e in errors] == ["a sink failed"]


def test_drain_lingers_so_a_trickle_makes_fewer_batches() -> None:
    subject: Subject[TickBatch] = Subject()
    got: list[int] = []
    done = threading.Event()
    subject.pipe(drain(4096, max_ms=50, close_ticks=100)).subscribe(
        lambda b: got.append(len(b)), on_completed=done.set
    )
    for k in range(5):  # five small hand-overs within the linger, the worker free meanwhile
        subject.on_next(ticks(3 * k, 3))
        time.sleep(0.002)
    time.sleep(0.15)
    subject.on_next(ticks(15, 2))
    subject.on_completed()
    assert done.wait(2.0)
    assert got == [15, 2]  # gathered while lingering; the last one flushed by completion


def test_drain_closes_a_lingering_batch_once_it_holds_close_ticks() -> None:
    subject: Subject[TickBatch] = Subject()
    got: list[tuple[float, int]] = []
    subject.pipe(drain(4096, max_ms=5_000, close_ticks=10)).subscribe(
        lambda b: got.append((time.monotonic(), len(b)))
    )
    t0 = time.monotonic()
    subject.on_next(ticks(0, 4))
    subject.on_next(ticks(4, 8))  # 12 >= 10: closes now, not after 5 s
    deadline = time.monotonic() + 2.0
    while not got and time.monotonic() < deadline:
        time.sleep(0.005)
    assert got and got[0][1] == 12 and got[0][0] - t0 < 1.0
