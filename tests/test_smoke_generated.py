"""The generator's own artifact sets, smoke-booted: small projects of our own, one per failure
class the generator used to get wrong, inspected and generated exactly as ``orchestra generate``
does, then built and started in the sandbox with this machine's Node and Python. Needs root and
overlayfs (skipped elsewhere, saying why); the Python ones install from PyPI (marked slow)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from agents.credential_policy import issue
from agents.devops.generate import generate
from agents.devops.spec import AppSpec
from agents.inspection.inspect import inspect_project
from agents.qa.smoke import SmokeOptions, smoke_boot
from contracts.payloads import CredentialRequested, Finding, ServiceSpec
from contracts.vocabulary import Target
from tests.test_smoke_boot import _sandbox_missing

pytestmark = pytest.mark.skipif(_sandbox_missing() is not None, reason=_sandbox_missing() or "")


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def artifacts(project: Path, overrides: ServiceSpec | None = None) -> tuple[dict[str, str], list[str]]:
    """The Docker set and the variable names, as ``orchestra generate --target docker`` makes them."""
    facts = inspect_project(project, overrides)
    issued = issue(
        CredentialRequested(
            service=facts.name, env_vars=list(facts.env_vars), targets=[Target.DOCKER], environments=["prod"]
        )
    )
    spec = AppSpec(
        facts=facts,
        targets=(Target.DOCKER,),
        environments=("prod",),
        secrets=tuple(issued.secrets),
        config_vars=tuple(issued.config_vars),
    )
    return {f.path: f.content for f in generate(spec)}, list(facts.env_vars)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("smoke-cache")


def boot(project: Path, cache: Path, overrides: ServiceSpec | None = None) -> list[Finding]:
    files, env_vars = artifacts(project, overrides)
    options = SmokeOptions(cache=cache, start_timeout_s=20.0, health_timeout_s=5.0, timeout_s=300.0)
    return smoke_boot(files, project, options, env_vars=env_vars).findings


def failing(findings: list[Finding]) -> list[str]:
    return [f"{f.rule}: {f.message}" for f in findings if f.severity.value not in ("info", "low")]


def passed(findings: list[Finding]) -> str:
    assert failing(findings) == [], failing(findings)
    return next(f.message for f in findings if f.rule == "SMOKE-PASSED")


NODE_SERVER = """
    const fs = require("fs");
    const http = require("http");
    const path = require("path");
    {before}
    http.createServer((req, res) => {{
      res.writeHead(req.url === "/healthz" ? 200 : 404);
      res.end("ok");
    }}).listen(Number(process.env.PORT || 3000), "0.0.0.0");
"""
PACKAGE = json.dumps(
    {"name": "fixture", "version": "1.0.0", "private": True, "scripts": {"start": "node server.js"}}
)


def node_project(root: Path, before: str = "") -> Path:
    return write(
        root, {"package.json": PACKAGE, "server.js": NODE_SERVER.format(before=textwrap.dedent(before))}
    )


def test_a_node_project_without_dependencies_builds_and_boots(tmp_path: Path, cache: Path) -> None:
    """npm creates no node_modules for a project without dependencies; the runtime stage copies it."""
    assert "health check `GET http://127.0.0.1:3000/healthz` passed" in passed(
        boot(node_project(tmp_path / "a"), cache)
    )


def test_secrets_reach_the_app_as_the_variables_it_reads(tmp_path: Path, cache: Path) -> None:
    """Compose mounts secrets as files and its entrypoint shim exports each as its variable: the
    smoke boot starts the app the same way (a boot that ignored the shim saw no JWT_SECRET)."""
    before = 'if (!process.env.JWT_SECRET) { console.error("JWT_SECRET is required"); process.exit(1); }'
    passed(boot(node_project(tmp_path / "b", before), cache))


def test_what_the_app_writes_is_a_volume_on_the_read_only_root(tmp_path: Path, cache: Path) -> None:
    """The app creates uploads/ next to its code at start: the generated volume (owned by the app
    user in the image) makes that work with the root filesystem read-only, as production runs it."""
    before = """
        const uploads = path.join(__dirname, "uploads");
        if (!fs.existsSync(uploads)) fs.mkdirSync(uploads);
        fs.writeFileSync(path.join(uploads, "probe.txt"), "written");
    """
    project = node_project(tmp_path / "c", before)
    message = passed(boot(project, cache))
    assert "root filesystem read-only, as in production (writable: /tmp, /app/uploads)" in message
    # The same set without the volume: the write fails exactly as it would in Kubernetes or ECS.
    files, env_vars = artifacts(project)
    files["Dockerfile"] = files["Dockerfile"].replace('VOLUME ["/tmp", "/app/uploads"]', 'VOLUME ["/tmp"]')
    files["docker-compose.yml"] = files["docker-compose.yml"].replace("- app-uploads:/app/uploads", "")
    files["docker-compose.prod.yml"] = files["docker-compose.prod.yml"].replace(
        "- app-uploads:/app/uploads", ""
    )
    options = SmokeOptions(cache=cache, start_timeout_s=20.0, health_timeout_s=5.0)
    [start] = failing(smoke_boot(files, project, options, env_vars=env_vars).findings)
    assert start.startswith("SMOKE-START") and "read-only file system" in start.lower()


def test_a_listen_host_from_a_variable_is_set_and_the_app_is_reachable(tmp_path: Path, cache: Path) -> None:
    project = node_project(tmp_path / "d")
    server = (project / "server.js").read_text()
    (project / "server.js").write_text(server.replace('"0.0.0.0"', "process.env.HOST || '127.0.0.1'"))
    passed(boot(project, cache))


@pytest.mark.slow
def test_python_settings_through_its_own_base_class_get_their_variables(tmp_path: Path, cache: Path) -> None:
    """A pydantic settings class whose BaseSettings is two project classes up, in another module,
    with required DATABASE_URL and SECRET_KEY and no example env file: both are found, provided
    (secrets through the Compose shim) and the app starts."""
    project = write(
        tmp_path / "settings",
        {
            "requirements.txt": "pydantic-settings==2.7.1\n",
            "core/__init__.py": "",
            "core/base.py": """
                from pydantic_settings import BaseSettings

                class BaseAppSettings(BaseSettings):
                    app_env: str = "prod"
            """,
            "core/app.py": """
                from core.base import BaseAppSettings

                class AppSettings(BaseAppSettings):
                    database_url: str
                    secret_key: str
            """,
            "server.py": """
                import os
                from http.server import BaseHTTPRequestHandler, HTTPServer

                from core.app import AppSettings

                settings = AppSettings()  # raises without DATABASE_URL and SECRET_KEY


                class Health(BaseHTTPRequestHandler):
                    def do_GET(self):
                        self.send_response(200 if self.path == "/health" else 404)
                        self.end_headers()


                HTTPServer(("0.0.0.0", int(os.environ["PORT"])), Health).serve_forever()
            """,
        },
    )
    overrides = ServiceSpec(start_command=["python", "server.py"], port=8000, health_path="/health")
    facts = inspect_project(project, overrides)
    assert {"DATABASE_URL", "SECRET_KEY"} <= set(facts.required_env)
    passed(boot(project, cache, overrides))
