"""The ensemble anomaly score: several deviations combined into one causal score in [0, 1].

Each method's deviation (|z|, IQR units, ...) is divided by an adaptive reference: a running
maximum of that method's own past deviations, decaying slowly, so a method that is always
noisy on a series counts for little and a deviation beyond anything seen lately counts for a
lot (thresholds adapt per symbol and method). The strongest method sets the score; a score
that does not exceed the recent scores of its symbol is damped, so one event gives one alarm,
not a burst. Score ``i`` uses ticks ``<= i`` only.
"""

from __future__ import annotations

import math

import numpy as np

from rxpipe.kernels.jit import kernel


@kernel(inline="always")
def method_step(ref, s, k, d, ref_decay, best):
    """Method ``k``'s deviation ``d`` on symbol ``s`` (NaN: no opinion): the larger of ``best``
    and ``|d|`` over the method's reference, which then takes ``|d|`` in."""
    if not np.isfinite(d):
        return best
    d = abs(d)
    r = ref[s, k]
    if r > 0.0 and d / r > best:
        best = d / r
    ref[s, k] = max(r * ref_decay, d)
    return best


@kernel(inline="always")
def score_step(recent, seen, s, best, warmup, damp, recent_decay):
    """The score of the strongest relative deviation ``best`` on symbol ``s``."""
    seen[s] += 1
    score = math.tanh(best * best / 4.0) if seen[s] > warmup else 0.0
    if score <= recent[s]:
        score *= damp
    recent[s] = max(recent[s] * recent_decay, score)
    return score


@kernel
def ensemble(symbol, dev, ref_decay, recent_decay, warmup, damp, ref, recent, seen, out):
    """``dev[i, k]``: deviation of tick ``i`` by method ``k`` (NaN = no opinion yet).

    A score not above the symbol's recent scores is multiplied by ``damp``.
    State per symbol: ``ref[s, k]`` adaptive references, ``recent[s]`` decaying max of recent
    scores, ``seen[s]`` ticks scored so far. Writes scores into ``out``.
    """
    n, k_methods = dev.shape
    for i in range(n):
        s = symbol[i]
        best = 0.0
        for k in range(k_methods):
            best = method_step(ref, s, k, dev[i, k], ref_decay, best)
        out[i] = score_step(recent, seen, s, best, warmup, damp, recent_decay)
