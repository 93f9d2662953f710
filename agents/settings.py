"""Agent-side settings (the bus has its own BusConfig); one mechanism: flags > environment > defaults."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field

from bus.settings import EnvSettings


class AgentSettings(EnvSettings):
    """Every field ``foo`` is read from ``ORCHESTRA_FOO`` (see bus.settings); parameters:
    workspace: root that project paths and output dirs must stay inside [ORCHESTRA_WORKSPACE]; default cwd.
    knowledge_db: SQLite file of the knowledge subscriber [ORCHESTRA_KNOWLEDGE_DB].
    http_port: health/readiness/metrics HTTP port, 0 = off [ORCHESTRA_HTTP_PORT].
    concurrency: handlers in flight per consumer [ORCHESTRA_CONCURRENCY].
    credentials_deadline_s / validation_deadline_s: how long DevOps waits for the credential
      manager and for QA + security before failing the task naming the silent agent.
    sweep_interval_s: how often DevOps checks deadlines.
    security_checkov: let security also run checkov when it is installed [ORCHESTRA_SECURITY_CHECKOV].
    validators: QA's validators, "all" or "fast" (only the in-process checks, no command-line
      tool: for benchmarks and quick local loops, never for a real review) [ORCHESTRA_VALIDATORS].
    """

    workspace: Path = Field(default_factory=Path.cwd)
    knowledge_db: Path = Path(".orchestra/knowledge.sqlite3")
    http_port: int = Field(0, ge=0, le=65_535)
    concurrency: int = Field(8, ge=1, le=1024)
    credentials_deadline_s: float = Field(60.0, gt=0)
    validation_deadline_s: float = Field(300.0, gt=0)
    sweep_interval_s: float = Field(2.0, gt=0)
    security_checkov: bool = True
    validators: Literal["all", "fast"] = "all"
    instance: str = Field(default_factory=lambda: f"{os.uname().nodename}:{os.getpid()}")
