"""NATS server configuration of the orchestra: per-agent users derived from the subject table."""
