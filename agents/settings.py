"""Agent-side settings (the bus has its own BusConfig); one mechanism: flags > environment > defaults."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from bus.settings import EnvSettings


class AgentSettings(EnvSettings):
    """Every field ``foo`` is read from ``ORCHESTRA_FOO`` (see bus.settings); parameters:
    workspace: root that project paths and output dirs must stay inside [ORCHESTRA_WORKSPACE]; default cwd.
    knowledge_db: SQLite file of the knowledge subscriber [ORCHESTRA_KNOWLEDGE_DB].
    http_port: health/readiness/metrics HTTP port, 0 = off [ORCHESTRA_HTTP_PORT].
    concurrency: handlers in flight per consumer [ORCHESTRA_CONCURRENCY].
    credentials_deadline_s / validation_deadline_s: how long DevOps waits for the credential
      manager and for QA + security before failing the task naming the silent agent (QA's smoke
      boot installs dependencies: the validation deadline leaves room for a cold install).
    sweep_interval_s: how often DevOps checks deadlines.
    security_checkov: let security also run checkov when it is installed [ORCHESTRA_SECURITY_CHECKOV].
    validators: QA's validators, "all" or "fast" (only the in-process checks, no command-line
      tool: for benchmarks and quick local loops, never for a real review) [ORCHESTRA_VALIDATORS].
    smoke_boot: QA builds the image from the artifact set and starts it (install, start, port,
      health check); on by default, off for load benchmarks and most tests [ORCHESTRA_SMOKE_BOOT].
    smoke_cache: the smoke boot's layer cache (installs keyed by lock files, command and
      interpreter), on a local filesystem [ORCHESTRA_SMOKE_CACHE].
    smoke_timeout_s: budget of one smoke boot's image build, installs included [ORCHESTRA_SMOKE_TIMEOUT_S].
    smoke_start_timeout_s: how long the app may take to open its port [ORCHESTRA_SMOKE_START_TIMEOUT_S].
    smoke_engine: build and run the real image when docker/podman reaches an engine
      [ORCHESTRA_SMOKE_ENGINE].
    id_key: the deployment's secret key for follow-up event ids (agents/idkey.py), the same in
      every agent process; at least 16 characters [ORCHESTRA_ID_KEY, or ORCHESTRA_ID_KEY_FILE].
    """

    workspace: Path = Field(default_factory=Path.cwd)
    knowledge_db: Path = Path(".orchestra/knowledge.sqlite3")
    http_port: int = Field(0, ge=0, le=65_535)
    concurrency: int = Field(8, ge=1, le=1024)
    credentials_deadline_s: float = Field(60.0, gt=0)
    validation_deadline_s: float = Field(600.0, gt=0)
    sweep_interval_s: float = Field(2.0, gt=0)
    security_checkov: bool = True
    validators: Literal["all", "fast"] = "all"
    smoke_boot: bool = True
    smoke_cache: Path = Path(".orchestra/smoke-cache")
    smoke_timeout_s: float = Field(300.0, gt=0)
    smoke_start_timeout_s: float = Field(60.0, gt=0)
    smoke_engine: bool = True
    instance: str = Field(default_factory=lambda: f"{os.uname().nodename}:{os.getpid()}")
    id_key: SecretStr | None = Field(None, repr=False)

    # Compose `secrets:` and Kubernetes secret volumes hand the id key over as a file.
    file_fields: ClassVar[tuple[str, ...]] = ("id_key",)

    @field_validator("id_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("the id key needs at least 16 characters")  # never echo the value
        return value
