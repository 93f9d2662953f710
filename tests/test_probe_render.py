"""The probe is one resolved fact: every artifact checks health the same way (a route with all its
prefixes, or a TCP connect when the app has none), and the Python build follows what detection
found (nested requirement files, compiled dependencies, uv workspace members). Also the override
flags of ``orchestra generate``. Pure: no server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from agents.devops.generate import generate
from agents.devops.spec import AppSpec
from agents.inspection.facts import ProjectFacts
from agents.inspection.inspect import inspect_project
from contracts.payloads import ServiceSpec
from contracts.vocabulary import Strategy

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def files_of(facts: ProjectFacts, strategy: Strategy = Strategy.ROLLING) -> dict[str, str]:
    return {f.path: f.content for f in generate(AppSpec(facts=facts, strategy=strategy))}


def probes_in(manifest: str) -> list[dict[str, object]]:
    found = []
    for doc in yaml.safe_load_all(manifest):
        if doc and doc.get("kind") == "Deployment":
            container = doc["spec"]["template"]["spec"]["containers"][0]
            found += [container[k] for k in ("startupProbe", "readinessProbe", "livenessProbe")]
    return found


def test_tcp_probe_everywhere_when_the_app_has_no_health_route() -> None:
    facts = inspect_project(EXAMPLES / "flask-blueprints-service")
    assert (facts.probe, facts.port) == ("tcp", 8081)
    out = files_of(facts)
    socket_check = "socket.create_connection(('127.0.0.1', 8081)"
    assert socket_check in out["Dockerfile"]
    compose = yaml.safe_load(out["docker-compose.yml"])
    assert socket_check in " ".join(compose["services"]["app"]["healthcheck"]["test"])
    probes = probes_in(out["k8s/deployment.yaml"])
    assert probes and all(p.get("tcpSocket") == {"port": "http"} and "httpGet" not in p for p in probes)
    assert yaml.safe_load(out["charts/flask-blueprints-service/values.yaml"])["probes"]["type"] == "tcp"
    task = json.loads(out["ecs-task-definition.json"])
    assert socket_check in " ".join(task["containerDefinitions"][0]["healthCheck"]["command"])
    cfn = out["cloudformation/infrastructure.yaml"]
    assert "HealthCheckPath: /\n" in cfn and "HttpCode: 200-499" in cfn
    assert (
        'matcher             = "200-499"' in out["terraform/main.tf"] or "200-499" in out["terraform/main.tf"]
    )
    assert "TCP connect to port 8081" in out["docs/DEPLOYMENT.md"]
    every = "\n".join(out.values())
    assert "/health'" not in every and "path: /health\n" not in every  # no route the app does not serve


@pytest.mark.parametrize("strategy", list(Strategy))
def test_prefixed_health_route_everywhere(strategy: Strategy) -> None:
    facts = inspect_project(EXAMPLES / "uv-workspace-service")
    route = "/api/v1/utils/health-check/"
    assert (facts.probe, facts.health_path) == ("http", route)
    out = files_of(facts, strategy)
    assert f"http://127.0.0.1:8000{route}" in out["Dockerfile"]
    probes = probes_in(out["k8s/deployment.yaml"])
    assert probes and all(p["httpGet"]["path"] == route for p in probes)
    assert yaml.safe_load(out["charts/uv-workspace-service/values.yaml"])["probes"] == {
        "type": "http",
        "path": route,
        "hostHeader": "",
    }
    assert f"HealthCheckPath: {route}" in out["cloudformation/infrastructure.yaml"]
    assert route in out["terraform/main.tf"]


def test_helm_probe_template_renders_both_kinds() -> None:
    helpers = files_of(inspect_project(EXAMPLES / "flask-blueprints-service"))
    template = helpers["charts/flask-blueprints-service/templates/_helpers.tpl"]
    assert (
        'if eq .Values.probes.type "tcp"' in template and "tcpSocket:" in template and "httpGet:" in template
    )


def test_python_build_follows_detection() -> None:
    blueprints = files_of(inspect_project(EXAMPLES / "flask-blueprints-service"))["Dockerfile"]
    # Every file pip reads is copied in its own folder before the install, dev files before theirs.
    assert (
        "COPY requirements.txt ./\nCOPY requirements/base.txt requirements/constraints.txt requirements/\n"
        in (blueprints)
    )
    assert (
        "COPY requirements/dev.txt requirements/\nRUN pip install --no-cache-dir -r requirements/dev.txt"
        in (blueprints)
    )
    builder, runtime = blueprints.split("AS runtime")
    assert "# hadolint ignore=DL3008" in builder and "gcc libc6-dev libpq-dev" in builder
    assert "libpq5" in runtime and "gcc" not in runtime
    workspace = files_of(inspect_project(EXAMPLES / "uv-workspace-service"))["Dockerfile"]
    assert "COPY pyproject.toml uv.lock ./\nCOPY backend/pyproject.toml backend/\n" in workspace
    assert "uv sync --frozen --no-dev --no-install-workspace --package notes-api" in workspace
    assert "uv sync --frozen --all-groups --no-install-workspace --package notes-api" in workspace
    assert workspace.count("WORKDIR /app/backend") == 2  # tests and runtime run in the member's folder


def test_runtime_env_and_build_command_reach_the_image_and_config(tmp_path: Path) -> None:
    (tmp_path / "manage.py").write_text(
        'import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "s.settings.dev")\n'
    )
    for rel in ("s/__init__.py", "s/settings/__init__.py", "s/settings/dev.py", "s/settings/prod.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    (tmp_path / "requirements.txt").write_text("django\n")
    facts = inspect_project(
        tmp_path, ServiceSpec(build_command=["python", "manage.py", "collectstatic", "--noinput"])
    )
    out = files_of(facts)
    assert "DJANGO_SETTINGS_MODULE=s.settings.prod" in out["Dockerfile"]
    assert 'RUN ["python", "manage.py", "collectstatic", "--noinput"]' in out["Dockerfile"]
    assert "DJANGO_SETTINGS_MODULE: s.settings.prod" in out["k8s/configmap.yaml"]


# --- orchestra generate flags --------------------------------------------------------------------


@pytest.fixture
def cli() -> typer.Typer:
    from agents.cli.generate import register

    app = typer.Typer()
    register(app)

    @app.callback()
    def main() -> None:
        """Test app."""

    return app


def test_refusal_names_the_flag_and_the_flag_works(cli: typer.Typer, tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "requirements.txt").write_text("fastapi\n")
    (tmp_path / "p" / "lib.py").write_text("VALUE = 1\n")
    base = ["generate", str(tmp_path / "p"), "--out", str(tmp_path / "o"), "--target", "docker"]
    refused = CliRunner().invoke(cli, base)
    assert (
        refused.exit_code == 2 and "--start-command" in refused.output and "Traceback" not in refused.output
    )
    fixed = CliRunner().invoke(
        cli,
        [*base, "--start-command", "python -m http.server 9000", "--port", "9000", "--health-path", "tcp"],
    )
    assert fixed.exit_code == 0, fixed.output
    dockerfile = (tmp_path / "o" / "Dockerfile").read_text()
    assert 'CMD ["python", "-m", "http.server", "9000"]' in dockerfile and "EXPOSE 9000" in dockerfile
    assert "socket.create_connection(('127.0.0.1', 9000)" in dockerfile


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--health-path", "health"], "--health-path"),
        (["--port", "70000"], "--port"),
        (["--start-command", "'unclosed"], "--start-command"),
        (["--app-dir", "nope"], "--app-dir"),
    ],
)
def test_bad_override_flags_are_one_line(
    cli: typer.Typer, tmp_path: Path, extra: list[str], message: str
) -> None:
    result = CliRunner().invoke(
        cli, ["generate", str(EXAMPLES / "flask-blueprints-service"), "--out", str(tmp_path), *extra]
    )
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_architect_records_how_health_is_checked() -> None:
    from agents.architect.agent import health_decision

    tcp = health_decision(inspect_project(EXAMPLES / "flask-blueprints-service").to_spec())
    assert tcp.topic == "health" and "TCP probes on port 8081" in tcp.decision
    assert "--health-path" in tcp.rationale
    http = health_decision(inspect_project(EXAMPLES / "uv-workspace-service").to_spec())
    assert "GET /api/v1/utils/health-check/" in http.decision
