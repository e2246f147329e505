"""rxpipe: reactive, real-time crypto market analytics.

Columnar tick batches flow through ReactiveX observables; numba kernels score them; sinks store
them. Start with :func:`rxpipe.analyze` in a notebook, :class:`rxpipe.pipeline.Pipeline` for a
live stream, and the operators in :mod:`rxpipe.operators`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "analyze"]


def __getattr__(name: str) -> Any:  # keep `import rxpipe` light: numba loads on first use
    if name == "analyze":
        from rxpipe.analysis import analyze

        return analyze
    raise AttributeError(f"module 'rxpipe' has no attribute {name!r}")
