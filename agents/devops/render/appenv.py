"""Every variable the app reads, provided the way it reads it: as an environment variable.

Compose mounts secrets as files under /run/secrets, but apps read ``process.env.JWT_SECRET`` or
``os.Getenv("DATABASE_URL")``. So Compose files start the app through a small ``/bin/sh`` shim
that exports each secret file as its variable before ``exec``-ing the start command; variables
that point at a backing service are filled with its address (and, for URLs, the password from
the service's own secret file). Test runs (Compose test file, CI) get throwaway values instead:
placeholders for secrets, credentials of the ephemeral services for connection variables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agents.devops.spec import AppSpec, secret_id
from agents.inspection import backing

# A placeholder, not a secret: long enough for apps that demand 32+ character keys (session and
# cookie secrets), and recognised as a placeholder by secret scanners.
TEST_SECRET = "x" * 40
SECRETS_DIR = "/run/secrets"

HostOf = Callable[[backing.Backing], tuple[str, int]]


def compose_host(service: backing.Backing) -> tuple[str, int]:
    """Services on the Compose network (and GitLab/Jenkins service aliases): by name, own port."""
    return service.host, service.port


def localhost(service: backing.Backing) -> tuple[str, int]:
    """Services a CI runner publishes on its own host (GitHub Actions service containers)."""
    return "127.0.0.1", service.port


def _bound(spec: AppSpec) -> dict[str, tuple[str, backing.Part]]:
    facts = spec.facts
    names = set(facts.env_vars) | set(spec.secret_env_vars)
    return backing.bindings(names, facts.backing_services)


def password_secret(spec: AppSpec, kind: str) -> str:
    """The Compose secret a service's password comes from: the app's own password variable bound
    to that service (``MYSQL_PASSWORD`` -> ``mysql_password``), else ``<kind>_password``."""
    for name, (bound_kind, part) in sorted(_bound(spec).items()):
        if bound_kind == kind and part == "password" and name in spec.secret_env_vars:
            return secret_id(name)
    return f"{kind}_password"


def test_password(service: backing.Backing) -> str | None:
    return TEST_SECRET if service.test_password else None


def test_services(spec: AppSpec) -> list[tuple[backing.Backing, dict[str, str]]]:
    """The throwaway backing services of a test run (Compose test file, CI), with their settings."""
    return [
        (
            backing.SERVICES[kind],
            backing.service_environment(kind, password_file=None, test_password=TEST_SECRET),
        )
        for kind in spec.facts.backing_services
    ]


def test_environment(spec: AppSpec, host_of: HostOf, *, runner: bool = False) -> dict[str, str]:
    """Throwaway values for every variable a test run needs: config, connection variables of the
    ephemeral services reachable through ``host_of``, placeholders for the other secrets.
    ``runner``: for the test runner rather than the app (NODE_ENV left to the test tool)."""
    env = dict(spec.config_map())
    if runner:
        env.pop("NODE_ENV", None)
    bound = _bound(spec)
    for name in spec.secret_env_vars:
        if name not in bound:
            env[name] = TEST_SECRET
    for name, (kind, part) in bound.items():
        service = backing.SERVICES[kind]
        host, port = host_of(service)
        password = test_password(service)
        if part == "password":
            env[name] = password or TEST_SECRET
        else:
            env[name] = backing.value(kind, part, host=host, password=password, port=port)
    return dict(sorted(env.items()))


@dataclass(frozen=True)
class Provision:
    """How a Compose app service gets its variables: plain ``environment`` values, variables the
    shim exports from a secret file (name -> (secret, value template with ``$v`` for the file's
    content)), and the secret files it mounts."""

    environment: dict[str, str]
    exports: dict[str, tuple[str, str]]
    secrets: tuple[str, ...]


def provision(spec: AppSpec, *, with_backing: bool) -> Provision:
    """Variables of the app service in the development (``with_backing``) or production file."""
    env = dict(spec.config_map())
    exports: dict[str, tuple[str, str]] = {}
    bound = _bound(spec) if with_backing else {}
    for name, (kind, part) in bound.items():
        service = backing.SERVICES[kind]
        if part in ("url", "password") and service.auth:
            secret = password_secret(spec, kind)
            exports[name] = (secret, "$v" if part == "password" else service.url(service.host, "$v"))
        else:
            env[name] = backing.value(kind, part, host=service.host, password=None)
    for name in spec.secret_env_vars:
        if name not in exports and name not in env:
            exports[name] = (secret_id(name), "$v")
    for name in exports:
        env.pop(name, None)
    files = tuple(sorted({secret for secret, _ in exports.values()}))
    return Provision(dict(sorted(env.items())), dict(sorted(exports.items())), files)


def shim(exports: dict[str, tuple[str, str]]) -> str:
    """The ``sh -c`` script (one step a line) that exports each variable from its secret file, then execs the
    command in ``"$@"``. A missing file stops the start (``set -e``); an empty file leaves the
    variable unset, so an optional secret nobody uses is not passed as an empty string (which
    schema validators such as Joi reject). Dollar signs are doubled for Compose interpolation."""
    steps = [
        line
        for name, (secret, template) in exports.items()
        for line in (f'v="$(cat {SECRETS_DIR}/{secret})"', f'[ -z "$v" ] || export {name}="{template}"')
    ]
    return "\n".join(["set -e", *steps, 'exec "$@"']).replace("$", "$$")


def shim_entrypoint(exports: dict[str, tuple[str, str]]) -> list[str]:
    """Compose ``entrypoint`` running :func:`shim`; the start command follows as ``command``."""
    return ["/bin/sh", "-c", shim(exports), "--"]
