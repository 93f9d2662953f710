"""Dockerfile, .dockerignore and the three Compose files (dev, test, prod).

Every Dockerfile has the same three stages: ``builder`` (dependencies, and for Go the binary),
``test`` (builder + dev dependencies + source; runs the test command) and ``runtime`` (last, so the
default build target), which copies only the virtualenv / node_modules / binary from the builder.
No apt-get anywhere: wheels and the base images carry what the apps need, so nothing has to be
version-pinned against a moving Debian mirror (hadolint DL3008).
"""

from __future__ import annotations

import json
import re

from agents.devops.render import appenv
from agents.devops.render.common import (
    comment,
    config_file_mounts,
    dump_yaml,
    header,
    healthcheck_command,
    writable_mounts,
)
from agents.devops.skips import HADOLINT_IGNORES
from agents.devops.spec import AppSpec, secret_id
from agents.inspection import backing, images
from agents.inspection.facts import ProjectFacts

DOCKERIGNORE = """\
# Version control, editors and local environments
.git
.gitignore
.idea
.vscode
.venv
venv
__pycache__
*.py[cod]
node_modules
# Secrets and keys never enter the build context
.env
.env.*
secrets
secrets*
*.pem
*.key
*.crt
*.p12
id_rsa*
# Build and deployment definitions are not part of the image
Dockerfile*
.dockerignore
docker-compose*.yml
compose*.yaml
.github
.gitlab-ci.yml
Jenkinsfile
charts
k8s
terraform
cloudformation
ecs-*.json
monitoring
.orchestra-manifest.json
*.tfstate*
.terraform
# Test, coverage and build output
.pytest_cache
.ruff_cache
.mypy_cache
.coverage
coverage
htmlcov
test-results
junit*.xml
dist
build
*.log
"""

VENV = "/opt/venv"
PY_ENV = "PYTHONDONTWRITEBYTECODE=1 \\\n    PYTHONUNBUFFERED=1 \\\n    PIP_DISABLE_PIP_VERSION_CHECK=1"


def render(spec: AppSpec) -> dict[str, str]:
    """The Docker set: Dockerfile, .dockerignore, docker-compose{,.test,.prod}.yml."""
    return {
        "Dockerfile": dockerfile(spec),
        ".dockerignore": header(spec, "Docker build context exclusions") + DOCKERIGNORE,
        "docker-compose.yml": compose_dev(spec),
        "docker-compose.test.yml": compose_test(spec),
        "docker-compose.prod.yml": compose_prod(spec),
    }


# --- Dockerfile ------------------------------------------------------------------------------


def dockerfile(spec: AppSpec) -> str:
    """A multi-stage Dockerfile for the detected language and package manager."""
    facts = spec.facts
    stages = {"python": _python_stages, "node": _node_stages, "go": _go_stages}[facts.language](spec)
    return "# syntax=docker/dockerfile:1\n" + header(spec, "Container image") + "\n" + "\n".join(stages)


def _copy(files: tuple[str, ...]) -> str:
    """COPY lines that keep each file's folder (``requirements/base.txt`` stays where the ``-r`` in
    requirements.txt expects it); files at the root share one line, as before."""
    by_dir: dict[str, list[str]] = {}
    for rel in files:
        parent = rel.rpartition("/")[0]
        by_dir.setdefault(parent, []).append(rel)
    return "\n".join(
        f"COPY {' '.join(group)} {parent + '/' if parent else './'}" for parent, group in by_dir.items()
    )


def _python_stages(spec: AppSpec) -> list[str]:
    facts = spec.facts
    manager = facts.package_manager
    venv_env = f"ENV VIRTUAL_ENV={VENV} \\\n    PATH={VENV}/bin:$PATH"
    if manager == "uv":
        # A workspace member installs its own dependencies from the root lock (--package); the
        # members' sources are not installed: the app runs from its folder.
        scope = (
            f"--no-install-workspace --package {facts.workspace_package}"
            if facts.workspace_package
            else "--no-install-project"
        )
        cache = "--mount=type=cache,target=/root/.cache/uv"
        install = [
            f"RUN pip install --no-cache-dir uv=={images.UV_VERSION}",
            f"ENV UV_PROJECT_ENVIRONMENT={VENV} \\\n    UV_PYTHON_DOWNLOADS=never \\\n    UV_LINK_MODE=copy",
            venv_env,
            _copy(facts.dependency_files),
            f"RUN {cache} uv sync --frozen --no-dev {scope}",
        ]
        # Every dependency group: pytest may live in "test" or "lint", not only in the default "dev".
        dev = [f"RUN {cache} uv sync --frozen --all-groups {scope}"]
    elif manager == "poetry":
        install = [
            f"RUN pip install --no-cache-dir poetry=={images.POETRY_VERSION} && python -m venv {VENV}",
            "# Poetry installs into the active virtualenv named by VIRTUAL_ENV.",
            "ENV POETRY_NO_INTERACTION=1 \\\n    POETRY_CACHE_DIR=/tmp/poetry-cache",
            venv_env,
            _copy(facts.dependency_files),
            "RUN poetry install --only main --no-root && rm -rf /tmp/poetry-cache",
        ]
        dev = ["RUN poetry install --no-root && rm -rf /tmp/poetry-cache"]
    elif facts.dependency_files and facts.dependency_files[0].endswith(".txt"):
        # Every file the install reads (nested -r / -c) is copied first, in its own folder.
        install = [
            f"RUN python -m venv {VENV}",
            venv_env,
            _copy(facts.dependency_files),
            f"RUN pip install --no-cache-dir -r {facts.dependency_files[0]}",
        ]
        dev_files = tuple(f for f in facts.dev_dependency_files if f not in facts.dependency_files)
        dev = [_copy(dev_files)] if dev_files else []
        if facts.dev_dependency_files:
            dev.append(
                "RUN pip install --no-cache-dir " + " ".join(f"-r {f}" for f in facts.dev_dependency_files)
            )
    else:  # pip with only a pyproject: the project itself is the installable unit
        install = [f"RUN python -m venv {VENV}", venv_env, "COPY . .", "RUN pip install --no-cache-dir ."]
        dev = []
    workdir = "/app" if facts.app_dir == "." else f"/app/{facts.app_dir}"
    runtime_env = "".join(f" \\\n    {k}={_env_value(v)}" for k, v in sorted(facts.runtime_env.items()))
    build = [f"RUN {_shell(facts.build_command)}"] if facts.build_command else []
    return [
        "# builder: resolve runtime dependencies into a virtualenv",
        f"FROM {facts.build_image} AS builder",
        f"ENV {PY_ENV}",
        "WORKDIR /app",
        *_apt(facts.build_packages, "compilers and headers for dependencies built from source"),
        *install,
        "",
        "# test: builder + test dependencies + source; docker-compose.test.yml and CI run this stage",
        "FROM builder AS test",
        *dev,
        "COPY . .",
        *([f"WORKDIR {workdir}"] if workdir != "/app" else []),
        f"CMD {json.dumps(list(facts.test_command))}",
        "",
        *_runtime(
            spec,
            env=f"ENV {PY_ENV} \\\n    VIRTUAL_ENV={VENV} \\\n    PATH={VENV}/bin:$PATH \\\n"
            f"    PORT={facts.port}{runtime_env}",
            copies=[
                *_apt(facts.runtime_packages, "shared libraries the compiled dependencies load"),
                f"COPY --from=builder --chown={_owner(spec)} {VENV} {VENV}",
                f"COPY --chown={_owner(spec)} . .",
                *build,
                *([f"WORKDIR {workdir}"] if workdir != "/app" else []),
            ],
        ),
    ]


def _env_value(value: str) -> str:
    """A Dockerfile ENV value: bare when it is a plain word, JSON-quoted otherwise."""
    return value if re.fullmatch(r"[\w.:/-]+", value) else json.dumps(value)


def _shell(command: tuple[str, ...]) -> str:
    """A build command for a RUN line: exec form (JSON) keeps the words exactly as given."""
    return json.dumps(list(command))


def _apt(packages: tuple[str, ...], why: str) -> list[str]:
    """An apt-get layer for ``packages``, or nothing. Versions are not pinned (DL3008, skipped with
    its reason): the base image is pinned to a Debian point release and Debian drops superseded
    package versions from its mirror, so an exact pin would break rebuilds after a security update."""
    if not packages:
        return []
    return [
        f"# {why}; apt versions unpinned: {HADOLINT_IGNORES['DL3008']}",
        "# hadolint ignore=DL3008",
        "RUN apt-get update \\\n"
        f" && apt-get install -y --no-install-recommends {' '.join(packages)} \\\n"
        " && rm -rf /var/lib/apt/lists/*",
    ]


def node_install(facts: ProjectFacts, *, production: bool) -> str:
    """The install command of the Node package manager, as the Dockerfile runs it (without RUN).

    Yarn classic (a v1 yarn.lock, no .yarnrc.yml) is the yarn the node images ship: no corepack,
    whose signature check of a downloaded yarn fails on older bundled corepack versions.
    """
    manager, lock = facts.package_manager, facts.locked
    drop = " ".join(f"scripts.{name}" for name in facts.skip_scripts)
    prefix = f"npm pkg delete {drop} && " if production and drop else ""
    if manager == "npm":
        verb = "ci" if lock else "install"
        flags = " --omit=dev" if production else " --include=dev"
        return f"{prefix}npm {verb}{flags} --no-audit --no-fund"
    if manager == "yarn" and ".yarnrc.yml" not in facts.dependency_files:
        flag = " --production" if production else " --production=false"
        return f"{prefix}yarn install --frozen-lockfile{flag}"
    prod = {"yarn": " --production", "pnpm": " --prod"}[manager] if production else ""
    return f"{prefix}corepack enable && {manager} install --frozen-lockfile{prod}"


def _node_run_install(facts: ProjectFacts, *, production: bool) -> str:
    cache = "/root/.npm" if facts.package_manager == "npm" else "/root/.cache"
    if facts.package_manager == "yarn" and ".yarnrc.yml" not in facts.dependency_files:
        cache = "/usr/local/share/.cache/yarn"
    # A project without dependencies gets no node_modules from the installer, yet the runtime stage
    # copies it: the folder is made either way, so the COPY never fails.
    return (
        f"RUN --mount=type=cache,target={cache} {node_install(facts, production=production)} \\\n"
        " && mkdir -p node_modules"
    )


def _node_stages(spec: AppSpec) -> list[str]:
    facts = spec.facts
    if facts.build_command:
        return _node_build_stages(spec)
    return [
        "# builder: production dependencies only",
        f"FROM {facts.build_image} AS builder",
        "ENV NODE_ENV=production \\\n    npm_config_update_notifier=false",
        "WORKDIR /app",
        _copy(facts.dependency_files),
        _node_run_install(facts, production=True),
        "",
        "# test: builder + dev dependencies + source; docker-compose.test.yml and CI run this stage",
        "FROM builder AS test",
        "ENV NODE_ENV=test",
        _node_run_install(facts, production=False),
        "COPY . .",
        f"CMD {json.dumps(list(facts.test_command))}",
        "",
        *_runtime(
            spec,
            env=f"ENV NODE_ENV=production \\\n    {facts.port_env}={facts.port}",
            copies=[
                f"COPY --from=builder --chown={_owner(spec)} /app/node_modules ./node_modules",
                f"COPY --chown={_owner(spec)} . .",
            ],
        ),
    ]


def _node_build_stages(spec: AppSpec) -> list[str]:
    """A compiled app (TypeScript): production dependencies in ``deps``, the build with every
    dependency in ``builder``; the runtime gets the source, the build output and ``deps``' modules."""
    facts = spec.facts
    output = facts.build_output or "dist"
    return [
        "# deps: production dependencies only (what the runtime ships)",
        f"FROM {facts.build_image} AS deps",
        "ENV NODE_ENV=production \\\n    npm_config_update_notifier=false",
        "WORKDIR /app",
        _copy(facts.dependency_files),
        _node_run_install(facts, production=True),
        "",
        f"# builder: every dependency (the compiler is a dev dependency) and the source, built into "
        f"{output}/",
        f"FROM {facts.build_image} AS builder",
        "ENV NODE_ENV=production \\\n    npm_config_update_notifier=false",
        "WORKDIR /app",
        _copy(facts.dependency_files),
        _node_run_install(facts, production=False),
        "COPY . .",
        f"RUN {' '.join(facts.build_command)}",
        "",
        "# test: the builder (dev dependencies, source and build); docker-compose.test.yml and CI run it",
        "FROM builder AS test",
        "ENV NODE_ENV=test",
        f"CMD {json.dumps(list(facts.test_command))}",
        "",
        *_runtime(
            spec,
            env=f"ENV NODE_ENV=production \\\n    {facts.port_env}={facts.port}",
            copies=[
                f"COPY --from=deps --chown={_owner(spec)} /app/node_modules ./node_modules",
                f"COPY --chown={_owner(spec)} . .",
                f"COPY --from=builder --chown={_owner(spec)} /app/{output} ./{output}",
            ],
        ),
    ]


def _go_stages(spec: AppSpec) -> list[str]:
    facts = spec.facts
    caches = "--mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build"
    binary = facts.start_command[0]
    tags = f"-tags {','.join(facts.build_tags)} " if facts.build_tags else ""
    # Code generation shares the build's RUN (and caches): it only feeds the compiler.
    generate = f"{' '.join(facts.build_command)} && " if facts.build_command else ""
    if facts.cgo:
        # The golang bookworm images ship gcc; the binary links the glibc the runtime image has.
        intro = "# builder: a cgo binary (gcc from the golang image, glibc of the same Debian release)"
        env = "ENV CGO_ENABLED=1 \\\n    GOOS=linux \\\n    GOFLAGS=-trimpath"
    else:
        intro = "# builder: a static binary (CGO off) with paths trimmed and symbols stripped"
        env = "ENV CGO_ENABLED=0 \\\n    GOOS=linux \\\n    GOFLAGS=-trimpath"
    return [
        intro,
        f"FROM {facts.build_image} AS builder",
        env,
        "WORKDIR /src",
        _copy(facts.dependency_files),
        "RUN --mount=type=cache,target=/go/pkg/mod go mod download",
        "COPY . .",
        f'RUN {caches} {generate}go build {tags}-ldflags="-s -w" -o /out/server {facts.build_target}',
        "",
        "# test: the builder with the full source; docker-compose.test.yml and CI run this stage",
        "FROM builder AS test",
        f"CMD {json.dumps(list(facts.test_command))}",
        "",
        *_runtime(
            spec,
            env=f"ENV {facts.port_env}={facts.port}",
            copies=[f"COPY --from=builder --chown={_owner(spec)} /out/server {binary}"],
            alpine="alpine" in facts.base_image,
        ),
    ]


def _owner(spec: AppSpec) -> str:
    return f"{spec.uid}:{spec.uid}"


def _runtime(spec: AppSpec, *, env: str, copies: list[str], alpine: bool = False) -> list[str]:
    """The final stage shared by every language: numeric non-root user, health check, exec CMD."""
    facts, uid = spec.facts, spec.uid
    if alpine:
        user = f"RUN addgroup -S -g {uid} app \\\n && adduser -S -D -H -u {uid} -G app -s /sbin/nologin app"
    else:
        user = (
            f"RUN groupadd --system --gid {uid} app \\\n"
            f" && useradd --system --uid {uid} --gid {uid} --no-create-home --home-dir /nonexistent"
            " --shell /usr/sbin/nologin app"
        )
    return [
        "# runtime: only what the service needs to run, as a numeric non-root user",
        f"FROM {facts.base_image} AS runtime",
        f'LABEL org.opencontainers.image.title="{facts.name}" \\\n'
        f'      org.opencontainers.image.description="{facts.framework} service, built by orchestra"',
        env,
        user,
        "WORKDIR /app",
        *copies,
        *_writable(spec),
        f"USER {uid}:{uid}",
        f"EXPOSE {facts.port}",
        "HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \\\n"
        f"  CMD {json.dumps(healthcheck_command(spec))}",
        f"CMD {json.dumps(list(facts.start_command))}",
        "",
    ]


def _writable(spec: AppSpec) -> list[str]:
    """The folders the app writes, created and owned by the app user, and the volumes: ECS copies
    a ``VOLUME`` folder of the image (owner and mode included) into the task's volume at that path,
    so /tmp and each data folder are writable by the non-root user there too."""
    facts = spec.facts
    folders = [*facts.writable_paths, *([facts.run_dir] if facts.run_dir else [])]
    owned = [*folders, *([facts.workdir] if facts.writable_workdir else [])]
    lines = []
    if owned:
        why = "folders the app writes" + (" and its working directory" if facts.writable_workdir else "")
        make = f"mkdir -p {' '.join(dict.fromkeys(folders))} \\\n && " if folders else ""
        lines += [
            f"# {why}: owned by the app user (a new volume starts as a copy of the folder)",
            f"RUN {make}chown {_owner(spec)} {' '.join(dict.fromkeys(owned))}",
        ]
    if facts.run_dir:
        lines.append(f"WORKDIR {facts.run_dir}")
    lines.append("VOLUME " + json.dumps([path for _, path in writable_mounts(spec)]))
    return lines


# --- Compose ---------------------------------------------------------------------------------


def _compose_cpus(quantity: str) -> str:
    return f"{int(quantity[:-1]) / 1000:.2f}" if quantity.endswith("m") else quantity


def _compose_memory(quantity: str) -> str:
    return quantity.replace("Mi", "M").replace("Gi", "G")


def _healthcheck(spec: AppSpec, interval: str) -> dict[str, object]:
    return {
        "test": ["CMD", *healthcheck_command(spec)],
        "interval": interval,
        "timeout": "5s",
        "retries": 5,
        "start_period": "20s",
    }


def _backing(spec: AppSpec, *, ephemeral: bool) -> dict[str, dict[str, object]]:
    """A Compose service per backing service, with a health check the app waits for."""
    services: dict[str, dict[str, object]] = {}
    for kind in spec.facts.backing_services:
        service = backing.SERVICES[kind]
        body: dict[str, object] = {"image": service.image}
        password = None if ephemeral else f"{appenv.SECRETS_DIR}/{appenv.password_secret(spec, kind)}"
        env = backing.service_environment(kind, password_file=password, test_password=appenv.TEST_SECRET)
        if kind == "rabbitmq" and not ephemeral:
            # The RabbitMQ image reads its password from the environment only: the same shim.
            secret = appenv.password_secret(spec, kind)
            body["entrypoint"] = appenv.shim_entrypoint({"RABBITMQ_DEFAULT_PASS": (secret, "$v")})
            body["command"] = ["docker-entrypoint.sh", "rabbitmq-server"]
        if env:
            body["environment"] = env
        if service.auth and not ephemeral:
            body["secrets"] = [appenv.password_secret(spec, kind)]
        body["healthcheck"] = {
            "test": ["CMD", *service.healthcheck],
            "interval": "5s",
            "timeout": "5s",
            "retries": 20,
        }
        if service.data_dir:
            if ephemeral:
                body["tmpfs"] = [service.data_dir]
            else:
                body["volumes"] = [f"{_volume(service)}:{service.data_dir}"]
        services[service.host] = body
    return services


def _volume(service: backing.Backing) -> str:
    return f"{service.host}-data"


def _volumes(spec: AppSpec, *, with_backing: bool = True) -> dict[str, dict[str, object]]:
    """Named volumes: the app's writable folders, and (development) the backing services' data."""
    services = [backing.SERVICES[k] for k in spec.facts.backing_services] if with_backing else []
    volumes: dict[str, dict[str, object]] = {name: {} for name, _ in writable_mounts(spec)[1:]}
    return volumes | {_volume(s): {} for s in services if s.data_dir}


def config_secrets(spec: AppSpec) -> list[tuple[str, str, str]]:
    """(Compose secret, container path, file name) of each configuration file the app reads: the
    file is mounted at its path from a secret (it holds credentials, so never the image)."""
    return [(secret_id(file), path, file) for _, path, file in config_file_mounts(spec)]


def secret_files(spec: AppSpec, directory: str) -> dict[str, dict[str, str]]:
    """The development secrets: the app's own, the backing services' passwords, and the app's
    configuration files."""
    names = set(appenv.provision(spec, with_backing=True).secrets)
    names |= {
        appenv.password_secret(spec, k) for k in spec.facts.backing_services if backing.SERVICES[k].auth
    }
    files = {name: {"file": f"{directory}/{name}"} for name in names}
    files |= {name: {"file": f"{directory}/{file}"} for name, _, file in config_secrets(spec)}
    return dict(sorted(files.items()))


def _depends(services: dict[str, object]) -> dict[str, dict[str, str]]:
    return {name: {"condition": "service_healthy"} for name in services}


def _start(app: dict[str, object], spec: AppSpec, provision: appenv.Provision) -> None:
    """Environment, secrets (configuration files mounted at their paths), writable volumes and,
    when secrets must become variables, the shim entrypoint."""
    app["environment"] = provision.environment
    secrets: list[object] = [*provision.secrets]
    secrets += [{"source": name, "target": path} for name, path, _ in config_secrets(spec)]
    if secrets:
        app["secrets"] = secrets
    if provision.exports:
        app["entrypoint"] = appenv.shim_entrypoint(provision.exports)
        app["command"] = list(spec.facts.start_command)
    volumes = [f"{name}:{path}" for name, path in writable_mounts(spec)[1:]]
    if volumes:
        app["volumes"] = volumes


def compose_dev(spec: AppSpec) -> str:
    """Local development: build from source, backing services, secrets from ./secrets/ files."""
    facts = spec.facts
    backing_services = _backing(spec, ephemeral=False)
    app: dict[str, object] = {
        "build": {"context": ".", "target": "runtime"},
        "image": f"{facts.name}:dev",
        "ports": [f"127.0.0.1:{facts.port}:{facts.port}"],
        "env_file": [{"path": ".env", "required": False}],
    }
    provision = appenv.provision(spec, with_backing=True)
    _start(app, spec, provision)
    app["healthcheck"] = _healthcheck(spec, "10s")
    if backing_services:
        app["depends_on"] = _depends(backing_services)
    doc: dict[str, object] = {"name": facts.name, "services": {"app": app, **backing_services}}
    if _volumes(spec):
        doc["volumes"] = _volumes(spec)
    secrets = secret_files(spec, "./secrets")
    if secrets:
        doc["secrets"] = secrets
    note = (
        "Local development: docker compose up --build\n"
        "Optional overrides in .env (gitignored). Secrets are files mounted at /run/secrets/<name>; the app\n"
        "starts through a shell shim that exports each one as the variable it reads"
        + (
            " (service passwords are also built into the connection URLs; use URL-safe characters)"
            if backing_services
            else ""
        )
        + ":\n"
        + "".join(f"  mkdir -p secrets && printf '%s' '<value>' > secrets/{n}\n" for n in secrets)
    )
    return dump_yaml(doc, head=header(spec, "Docker Compose (development)") + comment(note))


def compose_test(spec: AppSpec) -> str:
    """CI test run: unit tests in the ``test`` stage after the runtime image reports healthy."""
    facts = spec.facts
    backing_services = _backing(spec, ephemeral=True)
    app: dict[str, object] = {
        "build": {"context": ".", "target": "runtime"},
        "environment": appenv.test_environment(spec, appenv.compose_host),
        "healthcheck": _healthcheck(spec, "5s"),
    }
    if backing_services:
        app["depends_on"] = _depends(backing_services)
    tests: dict[str, object] = {
        "build": {"context": ".", "target": "test"},
        "command": list(facts.test_command),
        "environment": {
            "APP_URL": f"http://app:{facts.port}",
            **appenv.test_environment(spec, appenv.compose_host, runner=True),
        },
        "depends_on": _depends({"app": app, **backing_services}),
    }
    note = (
        "Test run (CI and local):\n"
        "  docker compose -f docker-compose.test.yml up --build \\\n"
        "    --abort-on-container-exit --exit-code-from tests\n"
        "The runtime image must report healthy before the tests start; no production secrets are used:\n"
        "secret variables hold placeholders (xxx...) and the databases are throwaway containers."
    )
    doc = {"name": f"{facts.name}-test", "services": {"app": app, "tests": tests, **backing_services}}
    return dump_yaml(doc, head=header(spec, "Docker Compose (tests)") + comment(note))


def compose_prod(spec: AppSpec) -> str:
    """Single-host production: a pinned image, read-only, no new privileges, limits, restart."""
    facts = spec.facts
    app: dict[str, object] = {
        "image": f"{spec.image_repository}:${{IMAGE_TAG:?set IMAGE_TAG to the commit sha to deploy}}",
        "restart": "unless-stopped",
        "read_only": True,
        "tmpfs": ["/tmp"],
        "user": f"{spec.uid}:{spec.uid}",
        "security_opt": ["no-new-privileges:true"],
        "cap_drop": ["ALL"],
        "ports": [f"{facts.port}:{facts.port}"],
    }
    provision = appenv.provision(spec, with_backing=False)
    _start(app, spec, provision)
    app.update(
        {
            "healthcheck": _healthcheck(spec, "30s"),
            "deploy": {
                "resources": {
                    "limits": {
                        "cpus": _compose_cpus(spec.cpu_limit),
                        "memory": _compose_memory(spec.memory_limit),
                    },
                    "reservations": {
                        "cpus": _compose_cpus(spec.cpu_request),
                        "memory": _compose_memory(spec.memory_request),
                    },
                }
            },
            "logging": {"driver": "json-file", "options": {"max-size": "10m", "max-file": "5"}},
        }
    )
    doc: dict[str, object] = {"name": facts.name, "services": {"app": app}}
    if _volumes(spec, with_backing=False):
        doc["volumes"] = _volumes(spec, with_backing=False)
    secrets = {n: {"file": f"${{SECRETS_DIR:?set SECRETS_DIR}}/{n}"} for n in provision.secrets}
    secrets |= {n: {"file": f"${{SECRETS_DIR:?set SECRETS_DIR}}/{f}"} for n, _, f in config_secrets(spec)}
    if secrets:
        doc["secrets"] = secrets
    note = (
        "Production on a single Docker host (databases are managed services, not containers here):\n"
        "  IMAGE_TAG=<commit sha> SECRETS_DIR=/etc/" + facts.name + "/secrets \\\n"
        "    docker compose -f docker-compose.prod.yml up -d --wait\n"
        "Rollback: rerun the same command with the previous IMAGE_TAG."
    )
    return dump_yaml(doc, head=header(spec, "Docker Compose (production)") + comment(note))
