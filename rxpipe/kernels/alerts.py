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
):
    """Walk the ticks in order for each rule ``r``; write each state change (rule, tick index,
    kind), rule by rule; return how many.

    ``fired[r, i]``: rule ``r``'s condition at tick ``i``, which counts only where ``finite[i]``
    (a tick without a valid price is a false tick). ``state[r, s]``, ``since[r, s]`` (when the
    condition became true) and ``last_true[r, s]`` carry across batches. A condition must hold on
    every tick for ``for_ns[r]`` before the alert fires; a false tick cancels a pending alert, and
    resolves a firing one once the condition has been false for ``keep_ns[r]`` (Prometheus'
    ``keep_firing_for``: a burst of true ticks is one alert). Symbols with ``applies[r, s]``
    False are skipped. The outputs hold at least ``fired.size`` entries.
    """
    n = symbol.shape[0]
    newest = ts[0] if n else 0
    for i in range(n):
        newest = max(newest, ts[i])
    k = 0
    for r in range(fired.shape[0]):
        if not _anything_to_do(fired[r], state[r], last_true[r], keep_ns[r], newest):
            continue  # the common case: nothing true, nothing pending, nothing due to resolve
        st, sn, lt, ap = state[r], since[r], last_true[r], applies[r]
        f_ns, k_ns = for_ns[r], keep_ns[r]
        for i in range(n):
            s = symbol[i]
            if not ap[s]:
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
def _anything_to_do(fired, state, last_true, keep_ns, newest):
    """Whether the walk could change anything for one rule: a tick's condition holds, an alert
    is pending (a false tick cancels it), or a firing alert's condition has been false for
    ``keep_ns`` by the batch's last time. Scanning the flags vectorises and is several times
    cheaper than the walk's per-symbol lookups; alerts firing through their ``keep_firing_for``
    do not force the walk."""
    flags = fired.view(np.uint8)
    seen = np.uint8(0)
    for i in range(flags.shape[0]):  # no early exit: this loop vectorises
        seen |= flags[i]
    if seen != 0:
        return True
    for s in range(state.shape[0]):
        if state[s] == PENDING:
            return True
        if state[s] == FIRING and newest - last_true[s] >= keep_ns:
            return True
    return False
