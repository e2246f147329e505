"""Group commit: a writer gathers for a window, or writes at once when told."""

import threading
import time

from rxpipe.storage.gather import gather


def test_gather_waits_out_the_window_from_the_oldest_item() -> None:
    cond = threading.Condition()
    first = time.monotonic()
    with cond:
        gather(cond, first, lambda: False, window_s=0.05)
    assert 0.045 <= time.monotonic() - first < 0.5


def test_gather_returns_at_once_when_told() -> None:
    cond = threading.Condition()
    urgent = [False]

    def flush_soon() -> None:
        time.sleep(0.02)
        with cond:
            urgent[0] = True
            cond.notify_all()

    threading.Thread(target=flush_soon).start()
    t0 = time.monotonic()
    with cond:
        gather(cond, t0, lambda: urgent[0], window_s=5.0)
    assert time.monotonic() - t0 < 1.0
