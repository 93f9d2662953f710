"""Python projects: pip (requirements.txt / pyproject), uv (uv.lock) or Poetry; FastAPI, Flask, Django."""

from __future__ import annotations

import ast
import re
from pathlib import PurePosixPath
from typing import Any

from agents.devops.detect import Detected
from agents.devops.detect.scan import NAME, env_file_names, find_names, first_port, has_metrics, health_path
from agents.devops.detect.scan import version_of as _version_of
from agents.devops.images import DEFAULT_VERSION
from agents.devops.tree import ProjectTree

MANIFESTS = ("pyproject.toml", "requirements.txt", "setup.py", "Pipfile", "manage.py")
DEV_REQUIREMENTS = ("requirements-dev.txt", "requirements-test.txt", "requirements/dev.txt")
DEFAULT_PORTS = {"fastapi": 8000, "flask": 8000, "django": 8000}

_ENV = (
    re.compile(rf"""\b(?:os\.)?environ\[\s*["']({NAME})["']\s*\]"""),
    re.compile(rf"""\b(?:os\.)?(?:environ\.get|getenv)\(\s*["']({NAME})["']"""),
    re.compile(rf"""\benv(?:\.(?:str|int|bool|list|url|db))?\(\s*["']({NAME})["']"""),  # django-environ
)
_PORT = (
    re.compile(r"""\bport\s*=\s*int\([^)]*["'](\d{2,5})["']"""),
    re.compile(r"""\bport\s*=\s*(\d{2,5})\b"""),
    re.compile(r"""["']PORT["']\s*,\s*["']?(\d{2,5})"""),
)
_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", re.MULTILINE)
_POSTGRES = frozenset({"psycopg", "psycopg2", "psycopg2-binary", "asyncpg", "psycopg-binary"})
_REDIS = frozenset({"redis", "aioredis", "celery"})
# Client libraries that are themselves the connection to a service (direct dependencies only).
_CLIENTS = {
    "mongodb": frozenset({"pymongo", "motor", "mongoengine", "beanie", "odmantic"}),
    "mysql": frozenset({"mysqlclient", "pymysql", "aiomysql", "asyncmy", "mysql-connector-python"}),
    "rabbitmq": frozenset({"pika", "aio-pika", "aiormq"}),
}


def detect(tree: ProjectTree) -> Detected | None:
    """Findings for a Python project, or None when no Python manifest is at the root."""
    present = [rel for rel in MANIFESTS if tree.exists(rel)]
    if not present:
        return None
    pyproject = tree.toml("pyproject.toml")
    poetry = pyproject.get("tool", {}).get("poetry", {})
    deps = _dependencies(tree, pyproject)

    if tree.exists("uv.lock"):
        manager, dep_files, locked = "uv", ("pyproject.toml", "uv.lock"), True
    elif poetry or tree.exists("poetry.lock"):
        locked = tree.exists("poetry.lock")
        manager, dep_files = "poetry", ("pyproject.toml", "poetry.lock") if locked else ("pyproject.toml",)
    elif tree.exists("requirements.txt"):
        manager, dep_files, locked = "pip", ("requirements.txt",), False
    else:
        manager, dep_files, locked = "pip", ("pyproject.toml",), False

    sources = dict(tree.sources(".py"))
    found = Detected(language="python", package_manager=manager, dependency_files=dep_files, locked=locked)
    if manager == "pip":
        found.dev_dependency_files = tuple(rel for rel in DEV_REQUIREMENTS if tree.exists(rel))
    found.name = pyproject.get("project", {}).get("name") or poetry.get("name")
    found.language_version = _python_version(tree, pyproject, poetry)
    found.framework = _framework(deps, sources.values())
    code = sources.values()
    found.env_vars = find_names(_ENV, code) | _settings_fields(code) | env_file_names(tree)
    found.port = first_port(_PORT, sources.values()) or DEFAULT_PORTS.get(found.framework or "", 8000)
    found.health_path = health_path(sources.values())
    found.metrics_path = "/metrics" if has_metrics(sources.values()) or "prometheus-client" in deps else None
    found.start_command = _start_command(found, deps, sources, tree)
    found.test_command = _test_command(tree, pyproject, deps, found.framework)
    if deps & _POSTGRES or any(v.startswith(("POSTGRES_", "PG")) for v in found.env_vars):
        found.backing_services.add("postgres")
    if deps & _REDIS or any(v.startswith("REDIS_") for v in found.env_vars):
        found.backing_services.add("redis")
    found.backing_services |= {service for service, clients in _CLIENTS.items() if deps & clients}
    if manager == "poetry" and not locked:
        found.assumptions.append("no poetry.lock: image builds resolve versions anew; run `poetry lock`")
    if manager == "pip" and not locked:
        found.assumptions.append("requirements are not hash-locked; consider uv or pip-tools for a lock file")
    return found


def _dependencies(tree: ProjectTree, pyproject: dict[str, Any]) -> set[str]:
    """Normalised names of every declared dependency, runtime and dev."""
    raw: list[str] = []
    for rel in ("requirements.txt", "requirements/base.txt", *DEV_REQUIREMENTS):
        text = tree.read(rel)
        if text:
            raw += [m for m in _REQ.findall(text) if not m.startswith("-")]
    project = pyproject.get("project", {})
    raw += project.get("dependencies", [])
    extras = project.get("optional-dependencies", {})
    for group in [*extras.values(), *pyproject.get("dependency-groups", {}).values()]:
        raw += [d for d in group if isinstance(d, str)]
    poetry = pyproject.get("tool", {}).get("poetry", {})
    raw += list(poetry.get("dependencies", {}))
    for group in poetry.get("group", {}).values():
        raw += list(group.get("dependencies", {}))
    raw += list(poetry.get("dev-dependencies", {}))
    names = set()
    for item in raw:
        match = _REQ.match(item)
        if match:
            names.add(re.sub(r"[-_.]+", "-", match.group(1)).lower())
    return names


def _python_version(tree: ProjectTree, pyproject: dict[str, Any], poetry: dict[str, Any]) -> str | None:
    default = DEFAULT_VERSION["python"]
    pinned = (tree.read(".python-version") or "").strip().splitlines()
    if pinned and pinned[0]:
        return _version_of("==" + pinned[0], default)
    runtime = (tree.read("runtime.txt") or "").strip()
    if runtime.startswith("python-"):
        return _version_of("==" + runtime.removeprefix("python-"), default)
    spec = pyproject.get("project", {}).get("requires-python") or poetry.get("dependencies", {}).get("python")
    return _version_of(spec if isinstance(spec, str) else None, default)


def _framework(deps: set[str], sources: Any) -> str | None:
    for name in ("fastapi", "django", "flask"):
        if name in deps:
            return name
    text = "\n".join(sources)
    for name, marker in (("fastapi", "FastAPI("), ("django", "django"), ("flask", "Flask(")):
        if marker in text:
            return name
    return None


def _module(rel: str) -> str:
    path = PurePosixPath(rel).with_suffix("")
    parts = path.parts[:-1] if path.name == "__init__" else path.parts
    return ".".join(parts)


def _app_object(sources: dict[str, str], constructor: str) -> str | None:
    """``module:variable`` of the first ``variable = constructor(...)``, shallowest file first."""
    pattern = re.compile(rf"^({NAME})\s*=\s*{constructor}\(", re.MULTILINE)
    for rel in sorted(sources, key=lambda r: (r.count("/"), r)):
        match = pattern.search(sources[rel])
        if match:
            return f"{_module(rel)}:{match.group(1)}"
    factory = re.compile(r"^def (create_app)\(", re.MULTILINE)
    for rel in sorted(sources, key=lambda r: (r.count("/"), r)):
        if constructor + "(" in sources[rel] and factory.search(sources[rel]):
            return f"{_module(rel)}:create_app()"
    return None


def _start_command(
    found: Detected, deps: set[str], sources: dict[str, str], tree: ProjectTree
) -> tuple[str, ...] | None:
    port = str(found.port)
    if found.framework == "fastapi":
        target = _app_object(sources, "FastAPI")
        return None if target is None else ("uvicorn", target, "--host", "0.0.0.0", "--port", port)
    if found.framework == "flask":
        target = _app_object(sources, "Flask")
        if target is None:
            return None
        if "gunicorn" in deps:
            return _gunicorn(target, port)
        found.assumptions.append("gunicorn is not a dependency: the image runs Flask's development server")
        return ("flask", "--app", target, "run", "--host", "0.0.0.0", "--port", port)
    if found.framework == "django":
        wsgi = next((rel for rel in sorted(sources) if rel.endswith("/wsgi.py")), None)
        if wsgi and "gunicorn" in deps:
            return _gunicorn(f"{_module(wsgi)}:application", port)
        if tree.exists("manage.py"):
            found.assumptions.append("gunicorn is not a dependency: the image runs Django's runserver")
            return ("python", "manage.py", "runserver", f"0.0.0.0:{port}")
    return None


def _gunicorn(target: str, port: str) -> tuple[str, ...]:
    # Two workers suit the default 500m CPU limit; logs go to stdout for the platform to collect.
    return ("gunicorn", "--bind", f"0.0.0.0:{port}", "--workers", "2", "--access-logfile", "-", target)


def _test_command(
    tree: ProjectTree, pyproject: dict[str, Any], deps: set[str], framework: str | None
) -> tuple[str, ...]:
    pytest_config = "pytest" in pyproject.get("tool", {}) or tree.exists("pytest.ini")
    if "pytest" in deps or pytest_config or tree.exists("conftest.py"):
        return ("python", "-m", "pytest", "-q")
    if framework == "django" and tree.exists("manage.py"):
        return ("python", "manage.py", "test")
    return ("python", "-m", "unittest", "discover", "-v")


def _settings_fields(sources: Any) -> set[str]:
    """Environment names of pydantic ``BaseSettings`` fields (prefix and aliases applied)."""
    names: set[str] = set()
    for text in sources:
        if "BaseSettings" not in text:
            continue
        try:
            module = ast.parse(text)
        except SyntaxError:
            continue
        for node in ast.walk(module):
            is_settings = isinstance(node, ast.ClassDef) and any(
                _base_name(b).endswith("BaseSettings") for b in node.bases
            )
            if is_settings:
                names |= _class_env_names(node)
    return names


def _base_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _class_env_names(node: ast.ClassDef) -> set[str]:
    prefix = ""
    fields: dict[str, str | None] = {}
    for stmt in node.body:
        if isinstance(stmt, ast.Assign):
            if any(isinstance(t, ast.Name) and t.id == "model_config" for t in stmt.targets):
                prefix = _keyword_str(stmt.value, "env_prefix") or prefix
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            field = stmt.target.id
            if not field.startswith("_") and field != "model_config":
                value = stmt.value
                fields[field] = _keyword_str(value, "validation_alias") or _keyword_str(value, "alias")
    return {(alias or prefix + field).upper() for field, alias in fields.items()}


def _keyword_str(node: ast.expr | None, keyword: str) -> str | None:
    if isinstance(node, ast.Call):
        for kw in node.keywords:
            if kw.arg == keyword and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                return kw.value.value
    return None
