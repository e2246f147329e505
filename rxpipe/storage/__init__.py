"""Storage: embedded or external PostgreSQL, the migrator, and the tick sink."""
