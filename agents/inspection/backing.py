"""Backing services (databases, caches, brokers): how each runs next to the app in Compose and CI,
what it is called in the cloud, and which of the app's variables point at it.

A variable binds to a service by name: ``DATABASE_URL``, ``MONGODB_URL``, ``MYSQL_HOST``,
``PGPASSWORD``... Generic ``DB_*``/``DATABASE_*`` names go to the app's SQL database (Postgres,
else MySQL), else MongoDB. Renderers fill the bound variables with the service's address and
credentials, so the app finds its database whichever way it reads the connection.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from agents.inspection import images

Part = Literal["url", "host", "port", "user", "password", "database"]

USER = "app"
DATABASE = "app"


@dataclass(frozen=True)
class Backing:
    """One kind of backing service."""

    kind: str
    host: str  # Compose service name, CI service alias
    image: str
    port: int
    scheme: str
    healthcheck: tuple[str, ...]
    cloud: str  # the managed AWS equivalent, named in the docs
    data_dir: str | None = None  # persistent volume mount in development
    prefixes: tuple[str, ...] = ()
    auth: bool = True  # has a password
    # Ephemeral test services run without credentials where the image allows it (Postgres trust,
    # MongoDB without users); MySQL and RabbitMQ always need a user with a password.
    test_password: bool = False

    def url(self, host: str, password: str | None, port: int | None = None) -> str:
        """Connection URL; ``password`` None means no credentials (an ephemeral test service that
        trusts its private network, or a service without auth)."""
        where = f"{host}:{port or self.port}"
        if not self.auth:
            return f"{self.scheme}://{where}/0"
        credentials = (
            f"{USER}:{password}@" if password is not None else ("" if self.kind == "mongodb" else f"{USER}@")
        )
        if self.kind == "rabbitmq":
            return f"amqp://{credentials}{where}"  # no path: the default vhost "/"
        query = "?authSource=admin" if self.kind == "mongodb" and password is not None else ""
        return f"{self.scheme}://{credentials}{where}/{DATABASE}{query}"


SERVICES: dict[str, Backing] = {
    "postgres": Backing(
        "postgres",
        "db",
        images.POSTGRES,
        5432,
        "postgresql",
        ("pg_isready", "-U", USER, "-d", DATABASE),
        "Amazon RDS for PostgreSQL / Aurora PostgreSQL",
        "/var/lib/postgresql/data",
        ("POSTGRES", "POSTGRESQL", "PG"),
    ),
    "mysql": Backing(
        "mysql",
        "mysql",
        images.MYSQL,
        3306,
        "mysql",
        ("mysqladmin", "ping", "-h", "127.0.0.1", "--silent"),
        "Amazon RDS for MySQL / Aurora MySQL",
        "/var/lib/mysql",
        ("MYSQL", "MARIADB"),
        test_password=True,
    ),
    "mongodb": Backing(
        "mongodb",
        "mongo",
        images.MONGODB,
        27017,
        "mongodb",
        ("mongosh", "--quiet", "--eval", "db.runCommand({ping:1}).ok"),
        "Amazon DocumentDB (MongoDB-compatible)",
        "/data/db",
        ("MONGODB", "MONGO"),
    ),
    "redis": Backing(
        "redis",
        "redis",
        images.REDIS,
        6379,
        "redis",
        ("redis-cli", "ping"),
        "Amazon ElastiCache for Redis (Valkey)",
        None,
        ("REDIS",),
        auth=False,
    ),
    "rabbitmq": Backing(
        "rabbitmq",
        "rabbitmq",
        images.RABBITMQ,
        5672,
        "amqp",
        ("rabbitmq-diagnostics", "-q", "ping"),
        "Amazon MQ for RabbitMQ",
        "/var/lib/rabbitmq",
        ("RABBITMQ", "RABBIT", "AMQP", "CLOUDAMQP", "BROKER"),
        test_password=True,
    ),
}
PORTS: dict[str, int] = {kind: service.port for kind, service in SERVICES.items()}
# Ports a deployed service may need to reach: the managed brokers speak TLS on their own port
# (Amazon MQ for RabbitMQ: AMQPS 5671) next to the plain one of a self-run broker.
EGRESS_PORTS: dict[str, tuple[int, ...]] = {
    **{k: (port,) for k, port in PORTS.items()},
    "rabbitmq": (5671, 5672),
}

_PARTS: dict[str, Part] = {
    "URL": "url",
    "URI": "url",
    "DSN": "url",
    "HOST": "host",
    "HOSTNAME": "host",
    "SERVER": "host",
    "PORT": "port",
    "USER": "user",
    "USERNAME": "user",
    "PASSWORD": "password",
    "PASS": "password",
    "DB": "database",
    "DATABASE": "database",
    "NAME": "database",
    "DB_NAME": "database",
    "DBNAME": "database",
}
_GENERIC_PREFIXES = ("DATABASE", "DB")


def _parse(name: str, prefixes: Iterable[str]) -> Part | None:
    for prefix in prefixes:
        match = re.fullmatch(rf"{prefix}_?([A-Z_]+)", name)
        if match and match.group(1) in _PARTS:
            part = _PARTS[match.group(1)]
            return part
    return None


def primary(kinds: Iterable[str]) -> str | None:
    """The service generic ``DATABASE_*``/``DB_*`` names mean: the SQL database, else MongoDB."""
    present = set(kinds)
    return next((k for k in ("postgres", "mysql", "mongodb") if k in present), None)


def bindings(names: Iterable[str], kinds: Iterable[str]) -> dict[str, tuple[str, Part]]:
    """Variable -> (service kind, what it holds) for every variable that points at a service."""
    kinds = tuple(sorted(set(kinds)))
    generic = primary(kinds)
    out: dict[str, tuple[str, Part]] = {}
    for name in sorted(set(names)):
        upper = name.upper()
        for kind in kinds:
            part = _parse(upper, SERVICES[kind].prefixes)
            if part is not None:
                out[name] = (kind, part)
                break
        else:
            if generic is not None:
                part = _parse(upper, _GENERIC_PREFIXES)
                if part is not None:
                    out[name] = (generic, part)
            if name not in out and upper in ("CELERY_BROKER_URL", "BROKER_URL") and "rabbitmq" in kinds:
                out[name] = ("rabbitmq", "url")
    return out


def service_environment(kind: str, *, password_file: str | None, test_password: str = "") -> dict[str, str]:
    """The image's own settings that create the app's user and database: the password read from
    ``password_file`` (development), or for a throwaway test service ``test_password`` where the
    image needs one (MySQL, RabbitMQ) and trust elsewhere (Postgres, MongoDB without users)."""
    ephemeral = password_file is None
    if kind == "postgres":
        env = {"POSTGRES_DB": DATABASE, "POSTGRES_USER": USER}
        if ephemeral:
            env["POSTGRES_HOST_AUTH_METHOD"] = "trust"  # test runs only, on a private network
        else:
            env["POSTGRES_PASSWORD_FILE"] = str(password_file)
        return env
    if kind == "mysql":
        env = {"MYSQL_DATABASE": DATABASE, "MYSQL_USER": USER, "MYSQL_RANDOM_ROOT_PASSWORD": "yes"}
        env.update(
            {"MYSQL_PASSWORD": test_password} if ephemeral else {"MYSQL_PASSWORD_FILE": str(password_file)}
        )
        return env
    if kind == "mongodb":
        if ephemeral:
            return {}
        return {
            "MONGO_INITDB_DATABASE": DATABASE,
            "MONGO_INITDB_ROOT_USERNAME": USER,
            "MONGO_INITDB_ROOT_PASSWORD_FILE": str(password_file),
        }
    if kind == "rabbitmq":
        env = {"RABBITMQ_DEFAULT_USER": USER}
        if ephemeral:
            env["RABBITMQ_DEFAULT_PASS"] = test_password
        return env  # development: the password is exported from its file by the Compose shim
    return {}


def value(kind: str, part: Part, *, host: str, password: str | None, port: int | None = None) -> str:
    """What a bound variable holds for a service reachable at ``host`` (and ``port``)."""
    service = SERVICES[kind]
    if part == "url":
        return service.url(host, password, port)
    if part == "host":
        return host
    if part == "port":
        return str(port or service.port)
    if part == "user":
        return USER
    if part == "password":
        return password if password is not None else ""
    return DATABASE
