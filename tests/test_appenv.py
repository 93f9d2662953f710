"""Configuration and secrets reach the app as the environment variables it reads, in every
artifact; backing services run next to it with health checks; test runs get throwaway values.

The Compose shim is run with the real /bin/sh; the generated sets of the fixtures go through the
offline validators and the security rules (marked ``validators``).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from agents.credential_policy import is_secret, issue
from agents.devops.generate import generate
from agents.devops.render import appenv
from agents.devops.spec import AppSpec
from agents.inspection.backing import SERVICES, bindings
from agents.inspection.inspect import inspect_project
from agents.qa.validators import validate
from agents.security.rules import scan
from contracts.payloads import CredentialRequested
from contracts.vocabulary import CIProvider, Target

ENVIRONMENTS = ["dev", "staging", "prod"]
PACKAGE = {
    "name": "orders",
    "scripts": {"start": "node server.js", "test": "node --test"},
    "dependencies": {"express": "4", "mongoose": "8", "mysql2": "3", "amqplib": "0.10", "ioredis": "5"},
}
SERVER = """const express = require('express');
const app = express();
const { JWT_SECRET, MONGODB_URL, DATABASE_URL, AMQP_URL } = process.env;
const { REDIS_URL, MYSQL_HOST, MYSQL_PASSWORD } = process.env;
const tokenTtl = process.env.JWT_ACCESS_EXPIRATION_MINUTES || 30;
app.get('/healthz', (req, res) => res.send('ok'));
app.listen(process.env.PORT || 3000, '0.0.0.0');
"""


def spec_for(root: Path, **fields: object) -> AppSpec:
    facts = inspect_project(root)
    issued = issue(
        CredentialRequested(
            service=facts.name, env_vars=list(facts.env_vars), targets=list(Target), environments=ENVIRONMENTS
        )
    )
    return AppSpec(
        facts=facts,
        secrets=tuple(issued.secrets),
        config_vars=tuple(issued.config_vars),
        environments=tuple(ENVIRONMENTS),
        **fields,  # type: ignore[arg-type]
    )


@pytest.fixture
def orders(tmp_path: Path) -> Path:
    root = tmp_path / "orders"
    root.mkdir()
    (root / "package.json").write_text(json.dumps(PACKAGE))
    (root / "package-lock.json").write_text("{}")
    (root / "server.js").write_text(SERVER)
    return root


def files_of(spec: AppSpec) -> dict[str, str]:
    return {f.path: f.content for f in generate(spec)}


def test_settings_about_secrets_are_not_secrets() -> None:
    assert not any(
        is_secret(n)
        for n in ("JWT_ACCESS_EXPIRATION_MINUTES", "JWT_RESET_PASSWORD_EXPIRATION_MINUTES", "SECRET_KEY_FILE")
    )
    assert all(is_secret(n) for n in ("JWT_SECRET", "SMTP_PASSWORD", "MONGODB_URL", "SECRET_KEY"))


def test_connection_variables_bind_to_their_service() -> None:
    names = ["DATABASE_URL", "MONGODB_URL", "MYSQL_HOST", "PGPASSWORD", "AMQP_URL", "REDIS_URL", "SMTP_HOST"]
    bound = bindings(names, ["postgres", "mongodb", "mysql", "rabbitmq", "redis"])
    assert bound == {
        "DATABASE_URL": ("postgres", "url"),
        "MONGODB_URL": ("mongodb", "url"),
        "MYSQL_HOST": ("mysql", "host"),
        "PGPASSWORD": ("postgres", "password"),
        "AMQP_URL": ("rabbitmq", "url"),
        "REDIS_URL": ("redis", "url"),
    }


def test_every_backing_service_runs_in_compose_with_a_health_check(orders: Path) -> None:
    spec = spec_for(orders)
    assert spec.facts.backing_services == ("mongodb", "mysql", "rabbitmq", "redis")
    files = files_of(spec)
    for path in ("docker-compose.yml", "docker-compose.test.yml"):
        services = yaml.safe_load(files[path])["services"]
        for kind in spec.facts.backing_services:
            service = services[SERVICES[kind].host]
            assert service["image"] == SERVICES[kind].image and service["healthcheck"]["test"][0] == "CMD"
        assert set(services["app"]["depends_on"]) == {"mongo", "mysql", "rabbitmq", "redis"}


def run_shim(app: dict[str, object], secrets: Path, command: list[str]) -> subprocess.CompletedProcess[str]:
    """The Compose entrypoint as Docker runs it ($$ is Compose's escape for $), reading ``secrets``."""
    entrypoint = [
        str(part).replace("$$", "$").replace(appenv.SECRETS_DIR, str(secrets)) for part in app["entrypoint"]
    ]  # type: ignore[union-attr]
    environment = {k: str(v) for k, v in app["environment"].items()}  # type: ignore[union-attr]
    return subprocess.run(
        [*entrypoint, *command], env={"PATH": "/usr/bin:/bin", **environment}, capture_output=True, text=True
    )


def test_compose_development_exports_every_secret_file_as_the_variable_the_app_reads(
    orders: Path, tmp_path: Path
) -> None:
    spec = spec_for(orders)
    doc = yaml.safe_load(files_of(spec)["docker-compose.yml"])
    app = doc["services"]["app"]
    assert app["command"] == ["node", "server.js"] and app["entrypoint"][:2] == ["/bin/sh", "-c"]
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name in doc["secrets"]:
        (secrets / name).write_text(f"value-of-{name}")
    (secrets / "amqp_url").write_text(
        ""
    )  # not mounted for the app: its URL is built from the broker password
    names = "JWT_SECRET MONGODB_URL DATABASE_URL AMQP_URL REDIS_URL MYSQL_HOST MYSQL_PASSWORD"
    dump = f"for n in {names}; do eval echo $n=\\$$n; done"
    result = run_shim(app, secrets, ["/bin/sh", "-c", dump])
    assert result.returncode == 0, result.stderr
    seen = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert seen["JWT_SECRET"] == "value-of-jwt_secret"
    assert seen["MONGODB_URL"] == "mongodb://app:value-of-mongodb_password@mongo:27017/app?authSource=admin"
    assert seen["DATABASE_URL"] == "mysql://app:value-of-mysql_password@mysql:3306/app"
    assert seen["AMQP_URL"] == "amqp://app:value-of-rabbitmq_password@rabbitmq:5672"
    assert seen["MYSQL_PASSWORD"] == "value-of-mysql_password" and seen["MYSQL_HOST"] == "mysql"
    assert seen["REDIS_URL"] == "redis://redis:6379/0"
    # The services take the same password files.
    mysql = doc["services"]["mysql"]
    assert mysql["environment"]["MYSQL_PASSWORD_FILE"] == "/run/secrets/mysql_password"
    assert doc["services"]["mongo"]["environment"]["MONGO_INITDB_ROOT_PASSWORD_FILE"].endswith(
        "/mongodb_password"
    )


def test_the_shim_fails_on_a_missing_file_and_leaves_empty_secrets_unset(
    orders: Path, tmp_path: Path
) -> None:
    doc = yaml.safe_load(files_of(spec_for(orders))["docker-compose.prod.yml"])
    app = doc["services"]["app"]
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    assert run_shim(app, secrets, ["true"]).returncode != 0
    for name in doc["secrets"]:
        (secrets / name).write_text("")
    result = run_shim(app, secrets, ["/bin/sh", "-c", 'echo "${JWT_SECRET-unset}"'])
    assert (result.returncode, result.stdout.strip()) == (0, "unset")


def test_test_runs_give_every_variable_a_throwaway_value(orders: Path) -> None:
    spec = spec_for(orders)
    files = files_of(spec)
    services = yaml.safe_load(files["docker-compose.test.yml"])["services"]
    env = services["app"]["environment"]
    assert set(spec.secret_env_vars) <= set(env)
    assert env["JWT_SECRET"] == appenv.TEST_SECRET and "JWT_ACCESS_EXPIRATION_MINUTES" not in env
    assert env["MONGODB_URL"] == "mongodb://mongo:27017/app"
    assert env["DATABASE_URL"] == f"mysql://app:{appenv.TEST_SECRET}@mysql:3306/app"
    assert services["mysql"]["environment"]["MYSQL_PASSWORD"] == appenv.TEST_SECRET
    assert "NODE_ENV" not in services["tests"]["environment"]  # the test tool sets its own


def test_kubernetes_and_ecs_read_secrets_as_variables(orders: Path) -> None:
    spec = spec_for(orders)
    files = files_of(spec)
    deployment = next(d for d in yaml.safe_load_all(files["k8s/deployment.yaml"]) if d)
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert set(spec.secret_env_vars) <= set(env)
    assert all("secretKeyRef" in env[n]["valueFrom"] for n in spec.secret_env_vars)
    task = json.loads(files["ecs-task-definition.json"])["containerDefinitions"][0]
    assert {s["name"] for s in task["secrets"]} == set(spec.secret_env_vars)


def test_managed_broker_tls_port_is_allowed_out(orders: Path) -> None:
    files = files_of(spec_for(orders))
    policy = [d for d in yaml.safe_load_all(files["k8s/networkpolicy.yaml"]) if d]
    ports = {p["port"] for d in policy for rule in d["spec"].get("egress", []) for p in rule.get("ports", [])}
    assert {27017, 3306, 5671, 5672, 6379} <= ports


@pytest.mark.validators
@pytest.mark.parametrize("provider", list(CIProvider))
def test_fixture_sets_pass_the_validators_and_security_rules(orders: Path, provider: CIProvider) -> None:
    spec = spec_for(orders, ci=provider)
    files = files_of(spec)
    result = validate(files, kubernetes_version="1.30.0")
    findings = [f for f in result.findings if f.rule != "crd-not-validated"]
    assert not findings, [(f.file, f.line, f.rule, f.message) for f in findings]
    security = [f for f in scan(files) if f.severity.blocking]
    assert not security, [(f.file, f.rule, f.message) for f in security]


@pytest.mark.validators
def test_fixture_sets_pass_checkov(orders: Path, tmp_path: Path) -> None:
    """The new layouts (backing services, a cgo Go binary on Debian, a TypeScript build) through
    checkov's dockerfile, kubernetes, cloudformation, terraform and github_actions checks."""
    from agents.review.checkov import checkov, targets
    from agents.review.tools import find_checkov
    from tests.test_detect_go import GIN_APP
    from tests.test_detect_go import write as write_go
    from tests.test_detect_node import TS_FASTIFY
    from tests.test_detect_node import write as write_node

    if find_checkov() is None:
        pytest.skip("checkov not found: set ORCHESTRA_CHECKOV or run `make checkov`")
    roots = {
        "orders": orders,
        "realworld": write_go(tmp_path / "realworld", GIN_APP),
        "ts-demo": write_node(tmp_path / "ts-demo", TS_FASTIFY),
    }
    out = tmp_path / "out"
    merged: dict[str, str] = {}
    for name, root in roots.items():
        for path, content in files_of(spec_for(root)).items():
            merged[f"{name}/{path}"] = content
            (out / name / path).parent.mkdir(parents=True, exist_ok=True)
            (out / name / path).write_text(content)
    outcome = checkov(out, targets(sorted(merged)))
    assert outcome.version not in ("missing", "unknown"), outcome
    assert not outcome.findings, [(f.file, f.rule, f.message) for f in outcome.findings]
