"""Alert rules: a small safe expression language (parsed, type-checked, compiled to vectorised
evaluation over SignalBatch columns; never ``eval``)."""
