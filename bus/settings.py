"""The one settings mechanism of the orchestra: flags > environment > defaults.

Every settings model (the bus's :class:`~bus.config.BusConfig`, the agents' ``AgentSettings``)
derives from :class:`EnvSettings`. A field ``foo_bar`` is read from ``ORCHESTRA_FOO_BAR``; adding a
setting is adding a field. A model may name further variables for a field (``NATS_URL``) and fields
whose value may come from a file (``ORCHESTRA_PASSWORD_FILE``: how compose and Kubernetes hand over
secrets). Explicit values (command-line flags) that are not None win over the environment, and a
value that does not validate is one line naming the flag or variable it came from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from bus.errors import ConfigError
from contracts.text import first_error, single_line

ENV_PREFIX = "ORCHESTRA_"


def flag_name(field: str) -> str:
    """The command-line flag a field is set with: ``http_port`` -> ``--http-port``."""
    return "--" + field.replace("_", "-")


class EnvSettings(BaseModel):
    """Base of every settings model. Build one with :meth:`from_env`; plain construction reads no
    environment (tests and programs pass exactly what they mean)."""

    model_config = ConfigDict(extra="forbid")

    # field -> further variable names, read when ORCHESTRA_<FIELD> is unset (NATS_URL for nats_url).
    env_aliases: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    # fields that ORCHESTRA_<FIELD>_FILE may supply: the value is the file's content, stripped.
    file_fields: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def env_names(cls, field: str) -> tuple[str, ...]:
        """The variables a field is read from, first found wins."""
        return (ENV_PREFIX + field.upper(), *cls.env_aliases.get(field, ()))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **flags: Any) -> Self:
        """Defaults, overridden by the environment (empty variables count as unset), overridden by
        ``flags`` that are not None. Raises :class:`ConfigError` with one line naming the source."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        origin: dict[str, str] = {}
        for field in cls.model_fields:
            for name in cls.env_names(field):
                if env.get(name):
                    values[field], origin[field] = env[name], name
                    break
            file_var = f"{ENV_PREFIX}{field.upper()}_FILE"
            if field in cls.file_fields and field not in values and env.get(file_var):
                values[field], origin[field] = _read_secret(file_var, env[file_var]), file_var
        for field, value in flags.items():
            if value is not None:
                values[field], origin[field] = value, flag_name(field)
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigError(cls._explain(exc, values, origin)) from None

    @classmethod
    def _explain(cls, exc: ValidationError, values: dict[str, Any], origin: dict[str, str]) -> str:
        first, more = first_error(exc)
        loc = first["loc"]
        field = str(loc[0]) if loc else ""
        source = origin.get(field, field or "setting")
        info = cls.model_fields.get(field)
        # Secrets (repr=False fields, file contents) are named, never shown.
        shown = "" if info is None or not info.repr or source.endswith("_FILE") else f"={values[field]!r}"
        return single_line(f"invalid setting {source}{shown}: {first['msg']}{more}")


def _read_secret(variable: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(f"invalid setting {variable}={path!r}: cannot read it: {reason}") from None
