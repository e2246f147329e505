"""The alert state machine over ticks: inactive -> pending -> firing -> resolved, per symbol.

One call walks every rule of an engine over a batch (one row of the condition matrix per rule),
so the per-batch cost of a rule that has nothing to do is a scan of its row, not a call.
"""

from __future__ import annotations

import numpy as np
from numba import njit

INACTIVE, PENDING, FIRING = 0, 1, 2
TO_PENDING, TO_FIRING, TO_RESOLVED, TO_CANCELLED = 1, 2, 3, 4


@njit(cache=True)
def transitions(
    symbol,
    ts,
    finite,
    fired,
    applies,
    for_ns,
    keep_ns,
    state,
    since,
    last_true,
    out_rule,
    out_index,
    out_kind,
    scratch,
    hits,
):
    """Walk the ticks in order for each rule ``r``; write each state change (rule, tick index,
    kind), rule by rule; return how many.

    ``fired[r, i]``: rule ``r``'s condition at tick ``i``, which counts only where ``finite[i]``
    (a tick without a valid price is a false tick). ``state[r, s]``, ``since[r, s]`` (when the
    condition became true) and ``last_true[r, s]`` carry across batches. A condition must hold on
    every tick for ``for_ns[r]`` before the alert fires; a false tick cancels a pending alert, and
    resolves a firing one once the condition has been false for ``keep_ns[r]`` (Prometheus'
    ``keep_firing_for``: a burst of true ticks is one alert). Symbols with ``applies[r, s]``
    False are skipped. The outputs hold at least ``fired.size`` entries; ``scratch`` (a bool per
    symbol) and ``hits`` (an int64 per tick) are working space.
    """
    n = symbol.shape[0]
    newest = ts[0] if n else 0
    oldest = newest
    for i in range(n):  # two loops: each vectorises
        newest = max(newest, ts[i])
    for i in range(n):
        oldest = min(oldest, ts[i])
    k = 0
    for r in range(fired.shape[0]):
        st, sn, lt, ap = state[r], since[r], last_true[r], applies[r]
        f_ns, k_ns = for_ns[r], keep_ns[r]
        # the symbols whose ticks the walk must look at: watched ones with a true tick, a
        # pending alert or a firing one due to resolve (the common batch has none at all)
        watch, pending_or_due, m = _relevant(
            symbol, fired[r], ap, st, lt, k_ns, newest, scratch, hits
        )
        if watch < 0:
            continue
        if not pending_or_due and f_ns <= 0 and k_ns > newest - oldest:
            # Nothing pends and nothing is due; a true tick fires at once, and the alert cannot
            # resolve within the batch: only true ticks change anything, and they are few.
            for j in range(m):
                i = hits[j]
                if finite[i]:
                    s = symbol[i]
                    lt[s] = ts[i]
                    if st[s] == INACTIVE:
                        sn[s] = ts[i]
                        st[s] = FIRING
                        out_kind[k] = TO_FIRING
                        out_rule[k] = r
                        out_index[k] = i
                        k += 1
            continue
        for i in range(watch, n):
            s = symbol[i]
            if not scratch[s]:
                continue
            if fired[r, i] and finite[i]:
                lt[s] = ts[i]
                if st[s] == INACTIVE:
                    sn[s] = ts[i]
                    if f_ns <= 0:
                        st[s] = FIRING
                        out_kind[k] = TO_FIRING
                    else:
                        st[s] = PENDING
                        out_kind[k] = TO_PENDING
                    out_rule[k] = r
                    out_index[k] = i
                    k += 1
                elif st[s] == PENDING and ts[i] - sn[s] >= f_ns:
                    st[s] = FIRING
                    out_kind[k] = TO_FIRING
                    out_rule[k] = r
                    out_index[k] = i
                    k += 1
            elif st[s] == FIRING and ts[i] - lt[s] < k_ns:
                continue  # still firing: the condition has not been false for long enough
            elif st[s] != INACTIVE:
                out_kind[k] = TO_RESOLVED if st[s] == FIRING else TO_CANCELLED
                out_rule[k] = r
                out_index[k] = i
                st[s] = INACTIVE
                k += 1
    return k


@njit(cache=True)
def _relevant(symbol, fired, applies, state, last_true, keep_ns, newest, out, hits):
    """Mark in ``out`` the symbols whose ticks can change one rule's alerts in this batch, and
    return the first tick the walk needs (-1: none), whether a symbol counts through its
    alert's state (pending, or due to resolve), and how many true ticks of watched symbols
    there are (their places go to ``hits``). A watched symbol counts if one of its
    ticks is true, its alert is pending (a false tick cancels it), or its alert fires and its
    condition has been false for ``keep_ns`` by the batch's last time (``last_true`` only
    grows, so an alert not due by then cannot resolve in this batch). A symbol that counts
    only through a true tick needs nothing before that tick. Scanning the flags vectorises;
    it costs a fraction of a walk, and most batches stop there."""
    flags = fired.view(np.uint8)
    seen = np.uint8(0)
    for i in range(flags.shape[0]):  # no early exit: this loop vectorises
        seen |= flags[i]
    first = -1
    any_state = False
    for s in range(state.shape[0]):
        due = state[s] == PENDING or (state[s] == FIRING and newest - last_true[s] >= keep_ns)
        out[s] = due and applies[s]
        any_state |= out[s]
    if any_state:
        first = 0
    m = 0
    if seen != 0:
        for i in range(flags.shape[0]):
            if flags[i] and applies[symbol[i]]:
                if first < 0:
                    first = i
                out[symbol[i]] = True
                hits[m] = i
                m += 1
    return first, any_state, m
