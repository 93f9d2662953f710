"""The configuration of the bus: flags > environment (ORCHESTRA_*, NATS_URL) > defaults (bus.settings)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator

from bus.settings import EnvSettings


class BusConfig(EnvSettings):
    """Connection, stream and delivery settings.

    Every field ``foo`` is read from ``ORCHESTRA_FOO`` (see bus.settings); parameters:
      nats_url: server URL(s), comma separated [ORCHESTRA_NATS_URL, else NATS_URL].
      user / password / token / creds: credentials for a secured server [ORCHESTRA_USER, ...];
        ORCHESTRA_PASSWORD_FILE / ORCHESTRA_TOKEN_FILE name a file holding the secret
        (compose/Kubernetes secrets).
      tls_ca / tls_cert / tls_key: TLS files; setting tls_ca turns TLS on.
      replicas: stream replicas (1 embedded, 3 on a cluster).
      max_bytes: EVENTS stream size limit; publishing past it fails loudly (discard new).
      duplicate_window_s: JetStream de-duplication window for Nats-Msg-Id.
      ack_wait_s / max_deliver / nak_delays_s: delivery rules of every durable consumer.
      fetch_batch / fetch_timeout_s: pull consumer batching.
      publish_timeout_s / publish_attempts: PubAck wait and retries (same Nats-Msg-Id).
    """

    env_aliases: ClassVar[Mapping[str, tuple[str, ...]]] = {"nats_url": ("NATS_URL",)}
    file_fields: ClassVar[tuple[str, ...]] = ("password", "token")

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

    @field_validator("nak_delays_s", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        # ORCHESTRA_NAK_DELAYS_S=0.5,2,5
        return tuple(x.strip() for x in value.split(",")) if isinstance(value, str) else value

    def nak_delay(self, delivered: int) -> float:
        """Back-off before redelivery number ``delivered`` (1-based)."""
        delays = self.nak_delays_s or (1.0,)
        return delays[min(delivered, len(delays)) - 1]
