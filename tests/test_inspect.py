"""Project inspection: every example is recognised, overrides win, bad inputs fail clearly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agents.inspection.facts import dns_name
from agents.inspection.inspect import InspectionError, inspect_project
from contracts.payloads import ServiceSpec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
GUNICORN = ("gunicorn", "--bind")
LOGS = ("--workers", "2", "--access-logfile", "-")

EXPECTED = {
    "fastapi-service": {
        "language": "python",
        "framework": "fastapi",
        "package_manager": "pip",
        "port": 8000,
        "health_path": "/health",
        "start_command": ("uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000"),
        "test_command": ("python", "-m", "pytest", "-q"),
        "env_vars": ("API_KEY", "APP_VERSION", "DATABASE_PASSWORD", "DATABASE_URL", "LOG_LEVEL"),
    },
    "flask-service": {
        "language": "python",
        "framework": "flask",
        "package_manager": "poetry",
        "port": 5000,
        "health_path": "/healthz",
        "start_command": (*GUNICORN, "0.0.0.0:5000", *LOGS, "app:app"),
        "env_vars": ("FLASK_SECRET_KEY", "PORT", "REDIS_URL"),
        "backing_services": ("redis",),
    },
    "django-service": {
        "language": "python",
        "framework": "django",
        "package_manager": "uv",
        "locked": True,
        "dependency_files": ("pyproject.toml", "uv.lock"),
        "language_version": "3.12",
        "health_path": "/healthz/",
        "start_command": (*GUNICORN, "0.0.0.0:8000", *LOGS, "mysite.wsgi:application"),
        "env_vars": ("DJANGO_ALLOWED_HOSTS", "DJANGO_DEBUG", "DJANGO_SECRET_KEY", "SQLITE_PATH"),
    },
    "go-service": {
        "language": "go",
        "language_version": "1.23",
        "framework": "net/http",
        "package_manager": "go",
        "port": 8080,
        "health_path": "/healthz",
        "start_command": ("/app/server",),
        "test_command": ("go", "test", "./..."),
        "env_vars": ("GREETING", "PORT", "UPSTREAM_API_TOKEN"),
        "base_image": "alpine:3.21.0",
        "build_image": "golang:1.23.4-bookworm",
    },
    "express-service": {
        "language": "node",
        "language_version": "22",
        "framework": "express",
        "package_manager": "npm",
        "port": 3000,
        "health_path": "/health",
        "start_command": ("node", "src/server.js"),
        "test_command": ("npm", "test"),
        "env_vars": ("API_TOKEN", "LOG_LEVEL", "PORT"),
    },
    "fastify-service": {
        "language": "node",
        "language_version": "20",
        "framework": "fastify",
        "port": 3000,
        "health_path": "/healthz",
        "start_command": ("node", "server.js"),
        "env_vars": ("DATABASE_PASSWORD", "DATABASE_URL", "JWT_SECRET", "LOG_LEVEL", "PORT"),
        "backing_services": ("postgres",),
    },
}


@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_every_example_is_detected(example: str) -> None:
    facts = inspect_project(EXAMPLES / example)
    assert facts.name == example
    for field, value in EXPECTED[example].items():
        assert getattr(facts, field) == value, field
    assert "latest" not in facts.base_image
    spec = facts.to_spec()
    assert (
        spec.name == example and spec.port == facts.port and spec.start_command == list(facts.start_command)
    )


def test_env_var_values_are_never_read_into_facts() -> None:
    facts = inspect_project(EXAMPLES / "fastapi-service")
    assert "example-only-not-a-real-secret" not in facts.model_dump_json()


def test_overrides_win_over_detection() -> None:
    overrides = ServiceSpec(
        name="orders",
        port=9000,
        health_path="/livez",
        start_command=["gunicorn", "app.main:app"],
        env_vars=["ONLY_THIS"],
        language_version="3.11",
        base_image="python:latest",
    )
    facts = inspect_project(EXAMPLES / "fastapi-service", overrides)
    assert facts.name == "orders"
    assert facts.port == 9000
    assert facts.health_path == "/livez"
    assert facts.start_command == ("gunicorn", "app.main:app")
    assert facts.env_vars == ("ONLY_THIS",)
    assert facts.language_version == "3.11"
    assert facts.base_image == facts.build_image == "python:latest"
    assert facts.framework == "fastapi"  # not overridden: still detected


def test_settings_fields_prefix_and_alias(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("fastapi==0.115.6\nuvicorn==0.34.0\n")
    (tmp_path / "main.py").write_text(
        "from fastapi import FastAPI\n"
        "from pydantic import Field\n"
        "from pydantic_settings import BaseSettings, SettingsConfigDict\n\n"
        "class Settings(BaseSettings):\n"
        "    model_config = SettingsConfigDict(env_prefix='SHOP_')\n"
        "    token: str = ''\n"
        "    region: str = Field('eu', validation_alias='AWS_REGION')\n\n"
        "api = FastAPI()\n"
        "@api.get('/healthz')\ndef h():\n    return {}\n"
    )
    facts = inspect_project(tmp_path)
    assert facts.env_vars == ("AWS_REGION", "SHOP_TOKEN")
    assert facts.start_command[1] == "main:api"
    assert facts.name == dns_name(tmp_path.name)


def test_unrecognised_project_names_files_and_fields(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("nothing to run here\n")
    with pytest.raises(InspectionError) as error:
        inspect_project(tmp_path)
    message = str(error.value)
    for looked_at in ("go.mod", "pyproject.toml", "requirements.txt", "package.json"):
        assert looked_at in message
    for field in ("language", "start_command", "port"):
        assert field in message


def test_unrecognised_project_works_with_explicit_fields(tmp_path: Path) -> None:
    spec = ServiceSpec(language="python", start_command=["python", "serve.py"], port=7000, name="legacy")
    facts = inspect_project(tmp_path, spec)
    assert (facts.name, facts.port, facts.start_command) == ("legacy", 7000, ("python", "serve.py"))
    assert facts.assumptions  # says that nothing was detected


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_bad_project_paths_are_refused(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "nope"
    if kind == "file":
        path.write_text("x")
    with pytest.raises(InspectionError, match="does not exist" if kind == "missing" else "not a directory"):
        inspect_project(path)


def test_symlinks_out_of_the_root_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "requirements.txt").write_text("flask==3.1.0\n")
    (outside / "leak.py").write_text("import os\nos.environ['OUTSIDE_SECRET']\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "package.json").write_text('{"name": "shop", "scripts": {"start": "node index.js"}}')
    (project / "index.js").write_text("require('http').createServer().listen(process.env.PORT || 4000)\n")
    os.symlink(outside / "requirements.txt", project / "requirements.txt")
    os.symlink(outside, project / "linked")
    facts = inspect_project(project)
    assert facts.language == "node"  # the symlinked requirements.txt does not make it Python
    assert "OUTSIDE_SECRET" not in facts.env_vars
    assert facts.port == 4000


def test_output_is_deterministic() -> None:
    first = inspect_project(EXAMPLES / "django-service")
    second = inspect_project(EXAMPLES / "django-service")
    assert first.model_dump_json() == second.model_dump_json()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("My_Service", "my-service"),
        ("--x--", "x"),
        ("Ünïcode app", "n-code-app"),
        ("", "app"),
        ("a" * 60, "a" * 42),
    ],
)
def test_dns_names(raw: str, expected: str) -> None:
    assert dns_name(raw) == expected
