"""The knowledge subscriber: every event persisted to SQLite (FTS5), searchable and replayable."""
