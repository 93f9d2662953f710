"""Backing services a compose file runs next to the app, and this machine's stand-ins for them.

A compose service is recognised by its image (postgres, mysql/mariadb, redis/valkey,
rabbitmq, mongo). The smoke boot does not start containers: it points the service's name at
the machine's own server on the standard port (PostgreSQL 5432 with trust auth, MariaDB 3306,
Redis 6379, RabbitMQ 5672) and, for PostgreSQL and MariaDB, creates the role and database the
compose service would have created. A service with no server here skips the smoke boot, saying
which one.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from dataclasses import dataclass, field

from agents.qa.smoke.toolchains import image_name

# image name -> (kind, port)
KINDS: dict[str, tuple[str, int]] = {
    "postgres": ("postgresql", 5432),
    "postgis": ("postgresql", 5432),
    "mysql": ("mysql", 3306),
    "mariadb": ("mysql", 3306),
    "redis": ("redis", 6379),
    "valkey": ("redis", 6379),
    "rabbitmq": ("rabbitmq", 5672),
    "mongo": ("mongodb", 27017),
}
_SAFE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Backing:
    """One backing service: compose ``name`` (the host name the app uses), kind, port, image,
    and the environment compose gives it (POSTGRES_DB, MYSQL_USER...)."""

    name: str
    kind: str
    port: int
    image: str
    env: dict[str, str] = field(default_factory=dict)


def recognise(name: str, service: dict[str, object]) -> Backing | None:
    """The Backing for a compose service built from a known image, else None."""
    image = service.get("image")
    if not isinstance(image, str) or "build" in service:
        return None
    repo = image_name(image)[0].split("/")[-1]
    kind = KINDS.get(repo)
    if kind is None:
        return None
    raw = service.get("environment") or {}
    env = (
        raw if isinstance(raw, dict) else dict(str(e).partition("=")[::2] for e in raw if isinstance(e, str))
    )
    return Backing(
        name=name, kind=kind[0], port=kind[1], image=image, env={str(k): str(v) for k, v in env.items()}
    )


def unavailable(backing: Backing) -> str | None:
    """Why the machine cannot stand in for ``backing`` (None when its server answers)."""
    try:
        with socket.create_connection(("127.0.0.1", backing.port), timeout=2):
            return None
    except OSError as exc:
        return (
            f"the compose file runs {backing.name} ({backing.image}) and no {backing.kind} server "
            f"answers on 127.0.0.1:{backing.port} here ({exc.strerror or exc})"
        )


def provision(backing: Backing, secrets: dict[str, str]) -> str | None:
    """Create the role/database the official image would create from its environment;
    a one-line note when that could not be done (the app may still work)."""
    if backing.kind == "postgresql":
        return _postgres(backing)
    if backing.kind == "mysql":
        return _mysql(backing, secrets)
    return None


def _value(backing: Backing, names: tuple[str, ...], secrets: dict[str, str], default: str) -> str:
    for name in names:
        if backing.env.get(name):
            return backing.env[name]
        path = backing.env.get(f"{name}_FILE", "")
        if path.startswith("/run/secrets/") and path.rsplit("/", 1)[-1] in secrets:
            return secrets[path.rsplit("/", 1)[-1]]
    return default


def _postgres(backing: Backing) -> str | None:
    user = backing.env.get("POSTGRES_USER") or "postgres"
    database = backing.env.get("POSTGRES_DB") or user
    if not (_SAFE.match(user) and _SAFE.match(database)):
        return f"{backing.name}: role/database names {user!r}/{database!r} not provisioned"
    psql = shutil.which("psql")
    if not psql:
        return f"{backing.name}: no psql client here to create role {user} and database {database}"
    base = [psql, "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-tAc"]
    failed = f"{backing.name}: could not create role {user} / database {database} on the local PostgreSQL"
    role = f"DO $$BEGIN CREATE ROLE {user} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END$$"
    if _run([*base, role]) is None:
        return failed
    exists = _run([*base, f"SELECT 1 FROM pg_database WHERE datname = '{database}'"])
    if exists is None or (
        exists.strip() != "1" and _run([*base, f"CREATE DATABASE {database} OWNER {user}"]) is None
    ):
        return failed
    return None


def _mysql(backing: Backing, secrets: dict[str, str]) -> str | None:
    database = _value(backing, ("MARIADB_DATABASE", "MYSQL_DATABASE"), secrets, "")
    user = _value(backing, ("MARIADB_USER", "MYSQL_USER"), secrets, "")
    password = _value(backing, ("MARIADB_PASSWORD", "MYSQL_PASSWORD"), secrets, "")
    client = shutil.which("mariadb") or shutil.which("mysql")
    if not database and not user:
        return None
    if not client:
        return f"{backing.name}: no mysql client here to create the database and user"
    if any(v and not _SAFE.match(v) for v in (database, user)) or "'" in password:
        return f"{backing.name}: database/user names not provisioned"
    sql = []
    if database:
        sql.append(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    if user:
        sql.append(f"CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{password}'")
        sql.append(f"ALTER USER '{user}'@'%' IDENTIFIED BY '{password}'")
        if database:
            sql.append(f"GRANT ALL ON `{database}`.* TO '{user}'@'%'")
    done = _run([client, "-h", "127.0.0.1", "-P", "3306", "-u", "root", "-e", "; ".join(sql)])
    return (
        None
        if done is not None
        else f"{backing.name}: could not create {database or user} on the local MariaDB"
    )


def _run(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None
