"""How rxpipe compiles a kernel: numba, cached on disk, without reference counting.

Kernels touch no Python objects, so the ones that run beside the pipeline's release the GIL
(``nogil=True``: the COPY encoder, the simulator, validation): the storage writers'
threads encode their COPY data while the pipeline's worker computes the next batch, and neither
waits for the other (with the GIL held, a writer encoding a large batch stalled the pipeline for
as long). The detectors' kernels keep it.

Kernels read and write the arrays they are given and never allocate, so they need none of
numba's runtime reference counting. Without it, one kernel calling another's per-tick step
function (``rolling.count_step`` from the fused detector pass, say) costs what the arithmetic
costs; with it, every array handed to a step costs two atomic operations a call, which measured
~15 ns a tick per step here: more than most steps themselves. ``_nrt=False`` is the option
numba's own hot helpers use for the same reason (``numba/misc/mergesort.py``); a kernel
compiled this way cannot create arrays, which numba reports at compile time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from numba import njit


def kernel(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """``@kernel`` or ``@kernel(error_model="numpy", ...)``: a cached, allocation-free njit."""
    options = {"cache": True, "_nrt": False, **options}
    return njit(**options) if fn is None else njit(**options)(fn)
