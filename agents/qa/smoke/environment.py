"""The environment the app starts with: what the generated compose file gives it, with dummies.

Read from the artifact set's compose file (the way ``docker compose up`` starts the app):
its ``environment`` (interpolated with an empty shell environment: nothing of the operator's
leaks in), ``env_file``s that are themselves generated artifacts, its ``secrets`` as files
under /run/secrets holding dummy values, its ``entrypoint``/``command`` (they replace the
image's, as compose does) and its writable mounts (named volumes, tmpfs). When the production
compose file runs the app with a read-only root filesystem, so does the smoke boot: a write
outside the declared volumes fails here as it would in production (and in Kubernetes/ECS).
Never a real value: project ``.env`` files and secret files are not read. Backing services in
the same file are recognised (agents.qa.smoke.services) and a dummy for a connection variable
(DATABASE_URL, REDIS_URL...) points at them.
"""

from __future__ import annotations

import re
import secrets as random_secrets
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import yaml

from agents.qa.smoke.services import Backing, recognise

COMPOSE_FILES = ("docker-compose.yml", "compose.yaml", "compose.yml", "docker-compose.yaml")
PRODUCTION_FILES = ("docker-compose.prod.yml", "compose.prod.yaml", "compose.prod.yml")
_INTERPOLATION = re.compile(
    r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)"
)


@dataclass
class AppConfig:
    """How to start the app: compose ``file`` and ``target`` stage (when there is one), its
    environment, the secret files (container path -> dummy value), the backing services,
    notes for the report, and every dummy value (masked in any output shown).

    ``entrypoint``/``command``: the compose service's (None: the image's applies);
    ``volumes``: container paths of its named volumes (seeded from the image, as Docker does);
    ``tmpfs``: empty writable mounts; ``read_only``: the root filesystem is read-only."""

    file: str | None = None
    target: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    secret_files: dict[str, str] = field(default_factory=dict)
    backing: list[Backing] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dummies: list[str] = field(default_factory=list)
    entrypoint: tuple[str, ...] | None = None
    command: tuple[str, ...] | None = None
    volumes: tuple[str, ...] = ()
    tmpfs: tuple[str, ...] = ()
    read_only: bool = False

    def argv(self, entrypoint: Sequence[str] | None, cmd: Sequence[str] | None) -> list[str]:
        """What compose starts from an image with ``entrypoint`` and ``cmd``: a service
        ``entrypoint`` replaces the image's and drops its CMD; a service ``command`` replaces CMD."""
        if self.entrypoint is not None:
            return [*self.entrypoint, *(self.command or ())]
        return [*(entrypoint or ()), *(self.command if self.command is not None else cmd or ())]


def app_config(files: Mapping[str, str], env_vars: Sequence[str]) -> AppConfig:
    """The start-up environment from the artifact set ``files``; ``env_vars`` are the names the
    service reads (used to name dummy secrets, and as dummies when there is no compose file)."""
    name = next((n for n in COMPOSE_FILES if n in files), None)
    if name is None:
        config = AppConfig(notes=["no compose file: every variable the service reads got a dummy value"])
        config.env = {var: _dummy(var, [], config) for var in env_vars}
        return config
    doc = yaml.safe_load(files[name]) or {}
    services = doc.get("services") or {}
    if not isinstance(services, dict) or not services:
        return AppConfig(file=name, notes=[f"{name} has no services"])
    app_name = next((n for n, s in services.items() if isinstance(s, dict) and "build" in s), None)
    app_name = app_name or ("app" if "app" in services else next(iter(services)))
    app = services.get(app_name) or {}
    config = AppConfig(file=name)
    build = app.get("build")
    if isinstance(build, dict) and isinstance(build.get("target"), str):
        config.target = build["target"]
    config.backing = [
        b for n, s in services.items() if n != app_name and isinstance(s, dict) if (b := recognise(n, s))
    ]
    for entry in _list(app.get("env_file")):
        path = entry.get("path") if isinstance(entry, dict) else entry
        required = entry.get("required", True) if isinstance(entry, dict) else True
        if isinstance(path, str) and path.removeprefix("./") in files:
            config.env.update(_env_file(files[path.removeprefix("./")]))
        elif isinstance(path, str) and required:
            config.notes.append(f"env_file {path} not read (not a generated file; real values stay out)")
    config.env.update({k: _interpolate(v, config) for k, v in _environment(app.get("environment")).items()})
    for secret in _list(app.get("secrets")):
        source, target = _secret(secret)
        if source:
            var = next((v for v in env_vars if _secret_id(v) == source), source.upper())
            config.secret_files[target] = _dummy(var, config.backing, config)
    config.entrypoint = _words(app.get("entrypoint"), config)
    config.command = _words(app.get("command"), config)
    production = _production_app(files)
    config.volumes = _mounts(app, production)
    config.tmpfs = tuple(
        sorted(
            {t.split(":")[0] for s in (app, production) for t in _list(s.get("tmpfs")) if isinstance(t, str)}
        )
    )
    config.read_only = bool(app.get("read_only") or production.get("read_only"))
    if config.read_only:
        writable = ", ".join((*config.tmpfs, *config.volumes)) or "nothing"
        config.notes.append(f"root filesystem read-only, as in production (writable: {writable})")
    return config


def _production_app(files: Mapping[str, str]) -> dict[str, object]:
    """The app service of the production compose file (empty when there is none)."""
    name = next((n for n in PRODUCTION_FILES if n in files), None)
    if name is None:
        return {}
    try:
        services = (yaml.safe_load(files[name]) or {}).get("services") or {}
    except (yaml.YAMLError, AttributeError):
        return {}
    app = services.get("app") if isinstance(services, dict) else None
    return app if isinstance(app, dict) else {}


def _mounts(*services: dict[str, object]) -> tuple[str, ...]:
    """Container paths of the services' volume mounts that are not bind mounts of host files
    (named or anonymous volumes: the smoke boot gives each an empty folder seeded from the image)."""
    targets: set[str] = set()
    for service in services:
        for entry in _list(service.get("volumes")):
            if isinstance(entry, dict):
                if entry.get("type", "volume") == "volume" and isinstance(entry.get("target"), str):
                    targets.add(entry["target"])
            elif isinstance(entry, str):
                parts = entry.split(":")
                if len(parts) == 1:
                    targets.add(parts[0])  # an anonymous volume
                elif not parts[0].startswith((".", "/", "~", "$")):
                    targets.add(parts[1])
    return tuple(sorted(t for t in targets if t.startswith("/")))


def _words(value: object, config: AppConfig) -> tuple[str, ...] | None:
    """A compose ``entrypoint``/``command``: a list as it is, a string split like a shell would
    (both interpolated); None when the service does not set it."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = shlex.split(value)
        except ValueError:
            value = value.split()
    return tuple(_interpolate(str(word), config) for word in _list(value))


def _list(value: object) -> list[object]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _environment(value: object) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    pairs: dict[str, str] = {}
    for entry in _list(value):
        key, eq, val = str(entry).partition("=")
        if eq:
            pairs[key] = val
    return pairs


def _env_file(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.removeprefix("export ").partition("=")
            pairs[key.strip()] = value.strip().strip("'\"")
    return pairs


def _secret(entry: object) -> tuple[str, str]:
    if isinstance(entry, str):
        return entry, f"/run/secrets/{entry}"
    if isinstance(entry, dict) and isinstance(entry.get("source"), str):
        source = entry["source"]
        target = str(entry.get("target") or source)
        return source, target if target.startswith("/") else f"/run/secrets/{target}"
    return "", ""


def _secret_id(name: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", name.lower())


def _interpolate(value: str, config: AppConfig) -> str:
    """Compose interpolation with an empty environment: defaults apply, required ones get dummies."""

    def one(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name, operator, argument = match[1] or match[4], match[2] or "", match[3] or ""
        if operator in (":-", "-"):
            return argument
        if operator in (":?", "?"):
            config.notes.append(f"{name} is required by the compose file: a dummy value was used")
            return _dummy(name, config.backing, config)
        return ""

    return _INTERPOLATION.sub(one, value)


# A connection variable (by name) -> the backing kind it points at and a URL template.
_CONNECTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"REDIS|CACHE_URL"), "redis"),
    (re.compile(r"AMQP|RABBIT|BROKER"), "rabbitmq"),
    (re.compile(r"MONGO"), "mongodb"),
    (re.compile(r"DATABASE|(^|_)DB(_|$)|POSTGRES|PG|MYSQL|SQLALCHEMY"), "database"),
)


def _dummy(name: str, backing: Sequence[Backing], config: AppConfig) -> str:
    """A dummy value for variable ``name``: a URL to the matching backing service for a
    connection variable, else a random string (never a real secret)."""
    upper = name.upper()
    if upper.endswith(("_URL", "_URI", "_DSN", "_ADDR")) or upper in ("DATABASE", "BROKER"):
        for pattern, kind in _CONNECTIONS:
            if pattern.search(upper):
                service = _pick(backing, kind)
                if service is not None:
                    return _url(service, config)
        return "http://smoke.invalid/"
    value = "smoke-dummy-" + random_secrets.token_hex(12)
    config.dummies.append(value)
    return value


def _pick(backing: Sequence[Backing], kind: str) -> Backing | None:
    kinds = ("postgresql", "mysql") if kind == "database" else (kind,)
    return next((b for b in backing if b.kind in kinds), None)


def _url(service: Backing, config: AppConfig) -> str:
    env = service.env
    if service.kind == "postgresql":
        user = env.get("POSTGRES_USER") or "postgres"
        return f"postgresql://{user}@{service.name}:5432/{env.get('POSTGRES_DB') or user}"
    if service.kind == "mysql":
        database = env.get("MARIADB_DATABASE") or env.get("MYSQL_DATABASE") or "mysql"
        return f"mysql://root@{service.name}:3306/{database}"
    if service.kind == "redis":
        return f"redis://{service.name}:6379/0"
    if service.kind == "rabbitmq":
        return f"amqp://guest:guest@{service.name}:5672/"
    return f"mongodb://{service.name}:27017/app"
