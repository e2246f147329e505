"""rxpipe: reactive, real-time crypto market analytics.

Columnar tick batches flow through ReactiveX observables; numba kernels score them; sinks store
them. Start with :class:`rxpipe.model.TickBatch`, :class:`rxpipe.pipeline.Pipeline` and the
sources in :mod:`rxpipe.sources`.
"""

__version__ = "0.1.0"
