"""Sources: each turns something (a simulator, files, an exchange) into Observable[TickBatch]."""
