"""Agent-side settings (the bus has its own BusConfig): flags > environment > defaults."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class AgentSettings(BaseModel):
    """Parameters (environment variable in brackets):
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
    id_key: the deployment's secret key for follow-up event ids (agents/idkey.py), the same in
      every agent process; at least 16 characters [ORCHESTRA_ID_KEY, or ORCHESTRA_ID_KEY_FILE].
    """

    model_config = ConfigDict(extra="forbid")

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
    id_key: SecretStr | None = None

    @field_validator("id_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("the id key needs at least 16 characters")  # never echo the value
        return value

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> AgentSettings:
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        for field in cls.model_fields:
            key = "ORCHESTRA_" + field.upper()
            if env.get(key):
                values[field] = env[key]
        # Compose `secrets:` and Kubernetes secret volumes hand the id key over as a file.
        if env.get("ORCHESTRA_ID_KEY_FILE") and "id_key" not in values:
            values["id_key"] = Path(env["ORCHESTRA_ID_KEY_FILE"]).read_text(encoding="utf-8").strip()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
