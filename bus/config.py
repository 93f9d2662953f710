"""The one configuration model of the bus: flags > environment (ORCHESTRA_*, NATS_URL) > defaults."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bus.errors import ConfigError, one_line

_ENV_PREFIX = "ORCHESTRA_"


class BusConfig(BaseModel):
    """Connection, stream and delivery settings.

    Parameters (environment variable in brackets):
      nats_url: server URL(s), comma separated [NATS_URL]; default embedded server.
      user / password / token / creds: credentials for a secured server [ORCHESTRA_USER, ...];
        ORCHESTRA_PASSWORD_FILE names a file holding the password (compose/Kubernetes secrets).
      tls_ca / tls_cert / tls_key: TLS files; setting tls_ca turns TLS on.
      replicas: stream replicas (1 embedded, 3 on a cluster).
      max_bytes: EVENTS stream size limit; publishing past it fails loudly (discard new).
      duplicate_window_s: JetStream de-duplication window for Nats-Msg-Id.
      ack_wait_s / max_deliver / nak_delays_s: delivery rules of every durable consumer.
      fetch_batch / fetch_timeout_s: pull consumer batching.
      publish_timeout_s / publish_attempts: PubAck wait and retries (same Nats-Msg-Id).
    """

    model_config = ConfigDict(extra="forbid")

    nats_url: str | None = None
    name: str = "orchestra"
    user: str | None = None
    password: str | None = Field(None, repr=False)
    token: str | None = Field(None, repr=False)
    creds: Path | None = None
    inbox_prefix: str | None = None
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None

    replicas: int = Field(1, ge=1, le=5)
    max_bytes: int = Field(1 << 30, ge=-1)
    max_msg_size: int = Field(1 << 20, ge=1024)
    duplicate_window_s: float = Field(120.0, gt=0)

    ack_wait_s: float = Field(30.0, gt=0)
    max_deliver: int = Field(5, ge=1)
    nak_delays_s: tuple[float, ...] = (0.5, 2.0, 5.0, 10.0)
    fetch_batch: int = Field(64, ge=1, le=1024)
    fetch_timeout_s: float = Field(1.0, gt=0)

    publish_timeout_s: float = Field(5.0, gt=0)
    publish_attempts: int = Field(5, ge=1)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> BusConfig:
        """Build a config from the environment, then apply explicit (flag) overrides that are not None."""
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        if env.get("NATS_URL"):
            values["nats_url"] = env["NATS_URL"]
        for field in cls.model_fields:
            key = _ENV_PREFIX + field.upper()
            if key in env and env[key] != "":
                raw = env[key]
                values[field] = _delays(key, raw) if field == "nak_delays_s" else raw
        # Compose `secrets:` and Kubernetes secret volumes hand passwords over as files.
        password_file = env.get(_ENV_PREFIX + "PASSWORD_FILE")
        if password_file and "password" not in values:
            values["password"] = Path(password_file).read_text(encoding="utf-8").strip()
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigError(one_line(exc, "setting (flag or ORCHESTRA_* variable)")) from None

    def nak_delay(self, delivered: int) -> float:
        """Back-off before redelivery number ``delivered`` (1-based)."""
        delays = self.nak_delays_s or (1.0,)
        return delays[min(delivered, len(delays)) - 1]


def _delays(key: str, raw: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in raw.split(","))
    except ValueError:
        raise ConfigError(f"{key}={raw!r}: expected seconds separated by commas, e.g. 0.5,2,5") from None
