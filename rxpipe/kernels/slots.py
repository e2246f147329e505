"""Slots of a ring of ``w`` values without a division.

A ring's counter counts values until the ring is full and then wraps within ``[w, 2w)``, so
``min(count, w)`` is still the number of values held, and the next slot is a subtraction
away. ``count % w`` would be a 64-bit integer division per tick and ring (tens of cycles; the
fused detector pass keeps a dozen rings).

>>> [ring_slot(c, 3) for c in (0, 1, 2, 3, 4, 5)], [ring_next(c, 3) for c in (2, 4, 5)]
([0, 1, 2, 0, 1, 2], [3, 5, 3])
"""

from __future__ import annotations

from rxpipe.kernels.jit import kernel


@kernel(inline="always")
def ring_slot(count, w):
    """The slot the next value goes to."""
    return count if count < w else count - w


@kernel(inline="always")
def ring_next(count, w):
    """The counter after one more value."""
    return count + 1 if count + 1 < 2 * w else w
