"""The alert state machine over ticks: inactive -> pending -> firing -> resolved, per symbol."""

from __future__ import annotations

import numpy as np
from numba import njit

INACTIVE, PENDING, FIRING = 0, 1, 2
TO_PENDING, TO_FIRING, TO_RESOLVED, TO_CANCELLED = 1, 2, 3, 4


@njit(cache=True)
def transitions(
    symbol, ts, fired, applies, for_ns, keep_ns, state, since, last_true, out_index, out_kind
):
    """Walk the ticks in order; write each state change (tick index, kind); return how many.

    ``state[s]``, ``since[s]`` (when the condition became true) and ``last_true[s]`` carry
    across batches. A condition must hold on every tick for ``for_ns`` before the alert fires;
    a false tick cancels a pending alert, and resolves a firing one once the condition has been
    false for ``keep_ns`` (Prometheus' ``keep_firing_for``: a burst of true ticks is one alert).
    Symbols with ``applies[s]`` False are skipped.
    """
    if not _anything_to_do(ts, fired, state, last_true, keep_ns):
        return 0  # the common batch: nothing true, nothing pending, nothing due to resolve
    k = 0
    for i in range(symbol.shape[0]):
        s = symbol[i]
        if not applies[s]:
            continue
        if fired[i]:
            last_true[s] = ts[i]
            if state[s] == INACTIVE:
                since[s] = ts[i]
                if for_ns <= 0:
                    state[s] = FIRING
                    out_kind[k] = TO_FIRING
                else:
                    state[s] = PENDING
                    out_kind[k] = TO_PENDING
                out_index[k] = i
                k += 1
            elif state[s] == PENDING and ts[i] - since[s] >= for_ns:
                state[s] = FIRING
                out_kind[k] = TO_FIRING
                out_index[k] = i
                k += 1
        elif state[s] == FIRING and ts[i] - last_true[s] < keep_ns:
            continue  # still firing: the condition has not been false for long enough
        elif state[s] != INACTIVE:
            out_kind[k] = TO_RESOLVED if state[s] == FIRING else TO_CANCELLED
            out_index[k] = i
            state[s] = INACTIVE
            k += 1
    return k


@njit(cache=True)
def _anything_to_do(ts, fired, state, last_true, keep_ns):
    """Whether the walk could change anything: a tick's condition holds, an alert is pending
    (a false tick cancels it), or a firing alert's condition has been false for ``keep_ns`` by
    the batch's last time. Scanning the flags vectorises and is several times cheaper than
    the walk's per-symbol lookups; alerts firing through their ``keep_firing_for`` no longer
    force the walk."""
    flags = fired.view(np.uint8)
    seen = np.uint8(0)
    for i in range(flags.shape[0]):  # no early exit: this loop vectorises
        seen |= flags[i]
    if seen != 0:
        return True
    newest = ts[0] if ts.shape[0] else 0
    for i in range(ts.shape[0]):
        newest = max(newest, ts[i])
    for s in range(state.shape[0]):
        if state[s] == PENDING:
            return True
        if state[s] == FIRING and newest - last_true[s] >= keep_ns:
            return True
    return False
