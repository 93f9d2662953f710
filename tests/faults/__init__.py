"""Fault-injection helpers: restartable servers, agent processes, polling, stream and store counts."""
