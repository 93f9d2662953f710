"""Python projects: pip (requirements.txt / pyproject), uv (uv.lock) or Poetry; FastAPI, Flask, Django."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from typing import Any

from agents.inspection.detect import Detected, listen, pybuild, pyentry, pyroutes, pysettings, writes
from agents.inspection.detect.scan import (
    NAME,
    env_file_names,
    example_values,
    find_names,
    first_port,
    has_metrics,
    health_path,
)
from agents.inspection.detect.scan import version_of as _version_of
from agents.inspection.images import DEFAULT_VERSION, PYTHON
from agents.inspection.tree import ProjectTree

MANIFESTS = ("pyproject.toml", "requirements.txt", "setup.py", "Pipfile", "manage.py")
DEFAULT_PORTS = {"fastapi": 8000, "flask": 8000, "django": 8000}

_ENV = (
    re.compile(rf"""\b(?:os\.)?environ\[\s*["']({NAME})["']\s*\]"""),
    re.compile(rf"""\b(?:os\.)?(?:environ\.get|getenv)\(\s*["']({NAME})["']"""),
    re.compile(rf"""\benv(?:\.(?:str|int|bool|list|url|db))?\(\s*["']({NAME})["']"""),  # django-environ
)
# Reads that raise when the variable is unset: ``os.environ["X"]`` (not an assignment to it).
_REQUIRED = (re.compile(rf"""\b(?:os\.)?environ\[\s*["']({NAME})["']\s*\](?!\s*=[^=])"""),)
_DECOUPLE = re.compile(rf"""\bconfig\(\s*["']({NAME})["']([^)\n]*)\)""")
# Only what a server listens on: the default of a PORT variable, or ``.run(..., port=N)``. A bare
# ``port = 5432`` is usually a database's.
_PORT = (
    re.compile(r"""["']PORT["']\s*,\s*["']?(\d{2,5})"""),
    re.compile(r"""\.run\([^)]*\bport\s*=\s*(\d{2,5})\b"""),
)
_URLCONF = re.compile(r"""^ROOT_URLCONF\s*=\s*["']([\w.]+)["']""", re.MULTILINE)
_SETTINGS_DEFAULT = re.compile(r"""["']DJANGO_SETTINGS_MODULE["']\s*,\s*["']([\w.]+)["']""")
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
    requirements = pybuild.requirement_files(tree, "requirements.txt")
    dev_requirements = tuple(
        rel
        for start in pybuild.DEV_REQUIREMENTS
        for rel in pybuild.requirement_files(tree, start)
        if rel not in requirements
    )
    runtime_deps = _dependencies(tree, pyproject, requirements, dev=False)
    deps = runtime_deps | _dependencies(tree, pyproject, dev_requirements, dev=True)

    lock = None
    if tree.exists("uv.lock"):
        manager, dep_files, locked, lock = "uv", ("pyproject.toml", "uv.lock"), True, "uv.lock"
    elif poetry or tree.exists("poetry.lock"):
        locked = tree.exists("poetry.lock")
        manager, dep_files = "poetry", ("pyproject.toml", "poetry.lock") if locked else ("pyproject.toml",)
        lock = "poetry.lock" if locked else None
    elif requirements:
        manager, dep_files, locked = "pip", requirements, False
    else:
        manager, dep_files, locked = "pip", ("pyproject.toml",), False

    sources = dict(tree.sources(".py"))
    found = Detected(language="python", package_manager=manager, dependency_files=dep_files, locked=locked)
    if manager == "pip":
        found.dev_dependency_files = tuple(dict.fromkeys(dev_requirements))
    found.name = pyproject.get("project", {}).get("name") or poetry.get("name")
    compiles = _python_version(found, tree, pyproject, poetry, lock)
    found.framework = _framework(deps, sources.values())
    code = sources.values()
    settings_env = pysettings.settings_env(sources)
    found.env_vars = find_names(_ENV, code) | settings_env.names | env_file_names(tree) | _decouple(code)
    found.required_env = settings_env.required | find_names(_REQUIRED, code) | _decouple(code, required=True)
    found.metrics_path = "/metrics" if has_metrics(code) or "prometheus-client" in deps else None
    found.writes = writes.python_writes(sources)
    settings = _django_settings(tree, sources) if found.framework == "django" else None
    if settings:
        found.runtime_env["DJANGO_SETTINGS_MODULE"] = settings
    found.health_path = _health(found.framework, sources, tree)
    found.probe = "http" if found.health_path else "tcp"
    _entrypoint(found, deps, sources, tree, pyproject)
    found.test_command = _test_command(tree, pyproject, deps, found.framework)
    build, runtime, reasons = pybuild.system_packages(
        runtime_deps, pybuild.pinned(tree, requirements), compiles
    )
    found.build_packages, found.runtime_packages = build, runtime
    if reasons:
        found.assumptions.append(
            f"the builder installs {' '.join(build)}: {'; '.join(reasons)}"
            + (f"; the runtime image gets {' '.join(runtime)}" if runtime else "")
        )
    if deps & _POSTGRES or any(v.startswith(("POSTGRES_", "PG")) for v in found.env_vars):
        found.backing_services.add("postgres")
    if deps & _REDIS or any(v.startswith("REDIS_") for v in found.env_vars):
        found.backing_services.add("redis")
    found.backing_services |= {service for service, clients in _CLIENTS.items() if deps & clients}
    found.runtime_env |= example_values(tree, found.required_env, found.backing_services, found.port_env)
    if manager == "poetry" and not locked:
        found.assumptions.append("no poetry.lock: image builds resolve versions anew; run `poetry lock`")
    if manager == "pip" and not locked:
        found.assumptions.append("requirements are not hash-locked; consider uv or pip-tools for a lock file")
    return found


def _dependencies(
    tree: ProjectTree, pyproject: dict[str, Any], files: tuple[str, ...], *, dev: bool
) -> set[str]:
    """Normalised names of declared dependencies: runtime ones, or (``dev``) the test/dev ones."""
    raw: list[str] = []
    for rel in files:
        text = tree.read(rel)
        if text:
            raw += [m for m in _REQ.findall(text) if not m.startswith("-")]
    project = pyproject.get("project", {})
    poetry = pyproject.get("tool", {}).get("poetry", {})
    if dev:
        for group in [
            *project.get("optional-dependencies", {}).values(),
            *pyproject.get("dependency-groups", {}).values(),
        ]:
            raw += [d for d in group if isinstance(d, str)]
        for group in poetry.get("group", {}).values():
            raw += list(group.get("dependencies", {}))
        raw += list(poetry.get("dev-dependencies", {}))
    else:
        raw += project.get("dependencies", [])
        raw += [name for name in poetry.get("dependencies", {}) if name.lower() != "python"]
    names = set()
    for item in raw:
        match = _REQ.match(item)
        if match:
            names.add(pybuild.normalise(match.group(1)))
    return names


def _python_version(
    found: Detected, tree: ProjectTree, pyproject: dict[str, Any], poetry: dict[str, Any], lock: str | None
) -> list[str]:
    """Set the Python version (a pin in .python-version / runtime.txt wins; a range picks the newest
    version every locked wheel exists for) and return the locked packages that would compile."""
    default = DEFAULT_VERSION["python"]
    wheels = pybuild.lock_wheels(tree, lock) if lock else {}
    pinned = pinned_python(tree)
    if pinned:
        found.language_version = pinned
        return pybuild.uncovered(wheels, pinned)
    spec = pyproject.get("project", {}).get("requires-python") or poetry.get("dependencies", {}).get("python")
    spec = spec if isinstance(spec, str) else None
    preferred = _version_of(spec, default)
    if preferred is None:
        return pybuild.uncovered(wheels, default)
    version, compiles = pybuild.best_version(PYTHON, spec, wheels, preferred)
    if version != preferred:
        found.assumptions.append(
            f"Python {version}, not {preferred}: the newest version {spec} allows for which every locked "
            "package has a wheel (no compiler needed)"
        )
    found.language_version = version
    return compiles


def pinned_python(tree: ProjectTree) -> str | None:
    """An exact Python pin: ``.python-version`` or Heroku's ``runtime.txt`` (``python-3.12.1``)."""
    default = DEFAULT_VERSION["python"]
    pinned = (tree.read(".python-version") or "").strip().splitlines()
    if pinned and pinned[0]:
        return _version_of("==" + pinned[0], default)
    runtime = (tree.read("runtime.txt") or "").strip()
    if runtime.startswith("python-"):
        return _version_of("==" + runtime.removeprefix("python-"), default)
    return None


def _framework(deps: set[str], sources: Any) -> str | None:
    for name in ("fastapi", "django", "flask"):
        if name in deps:
            return name
    text = "\n".join(sources)
    for name, marker in (("fastapi", "FastAPI("), ("django", "django"), ("flask", "Flask(")):
        if marker in text:
            return name
    return None


def _health(framework: str | None, sources: dict[str, str], tree: ProjectTree) -> str | None:
    """The app's real health route (with every router prefix), or None when it has none."""
    if framework == "django":
        urlconf = next((m.group(1) for text in sources.values() if (m := _URLCONF.search(text))), None)
        return pyroutes.health_route(pyroutes.django_paths(sources, urlconf))
    table = pyroutes.RouteTable(sources)
    if table.apps():
        return pyroutes.health_route(table.all_paths())
    if framework is None:
        return health_path(sources.values())  # no app object we can read: the text scan
    return None


def _django_settings(tree: ProjectTree, sources: dict[str, str]) -> str | None:
    """The settings module production runs with: the one the project's Dockerfile sets, else a
    ``production``/``prod`` sibling of manage.py's default, else that default."""
    explicit = pyentry.dockerfile_env(tree, "DJANGO_SETTINGS_MODULE")
    if explicit:
        return explicit
    match = _SETTINGS_DEFAULT.search(tree.read("manage.py") or "")
    if match is None:
        return None
    default = match.group(1)
    package = default.rpartition(".")[0]
    modules = {_module(rel) for rel in sources}
    for name in ("production", "prod"):
        if package.endswith("settings") and f"{package}.{name}" in modules:
            return f"{package}.{name}"
    return default


def _module(rel: str) -> str:
    return pyroutes.module_name(rel)


def _entrypoint(
    found: Detected, deps: set[str], sources: dict[str, str], tree: ProjectTree, pyproject: dict[str, Any]
) -> None:
    """Start command and port: the project's own server command when it has one, else the app
    object in the code. ``start_for_port`` re-renders it when the port is overridden."""
    commands = pyentry.server_commands(tree)
    main = pyentry.main_block_server(sources)
    ports = [c.port for c in commands if c.port]
    port = (
        next(iter(ports), None)
        or (main[1] if main else None)
        or pyentry.exposed_port(tree)
        or first_port(_PORT, sources.values())
        or DEFAULT_PORTS.get(found.framework or "", 8000)
    )
    found.port = port
    if commands:
        chosen = commands[0]
        found.start_for_port = lambda p: pyentry.normalise(chosen, p)
        found.assumptions.append(f"start command from {chosen.source}: {' '.join(chosen.argv)}")
        steps = [*pyentry.release_steps(tree), *chosen.before]
        if steps:
            found.assumptions.append(
                f"{chosen.source} runs `{'; '.join(steps)}` before the server: run that once per deploy "
                "(a migration job or release step); the container starts only the server"
            )
    else:
        found.start_for_port = _from_code(found, deps, sources, tree, pyproject, main)
    if found.start_for_port is not None:
        found.start_command = found.start_for_port(port)


def _from_code(
    found: Detected,
    deps: set[str],
    sources: dict[str, str],
    tree: ProjectTree,
    pyproject: dict[str, Any],
    main: tuple[str, int | None] | None,
) -> Callable[[int], tuple[str, ...]] | None:
    if found.framework == "fastapi":
        app = pyentry.app_object(sources, "FastAPI")
        if app is not None:
            factory = ("--factory",) if app.factory else ()
            return lambda p: ("uvicorn", *factory, app.target, "--host", "0.0.0.0", "--port", str(p))
    if found.framework == "flask":
        app = pyentry.app_object(sources, "Flask")
        if app is not None:
            target = app.target + ("()" if app.factory else "")
            if "gunicorn" in deps:
                return lambda p: _gunicorn(target, str(p))
            found.assumptions.append(
                "gunicorn is not a dependency: the image runs Flask's development server"
            )
            return lambda p: ("flask", "--app", target, "run", "--host", "0.0.0.0", "--port", str(p))
    if found.framework == "django":
        wsgi = next((rel for rel in sorted(sources) if rel.endswith("/wsgi.py")), None)
        if wsgi and "gunicorn" in deps:
            return lambda p: _gunicorn(f"{_module(wsgi)}:application", str(p))
        if tree.exists("manage.py"):
            found.assumptions.append("gunicorn is not a dependency: the image runs Django's runserver")
            return lambda p: ("python", "manage.py", "runserver", f"0.0.0.0:{p}")
    if main is not None:
        module = main[0]
        if main[1] is not None:
            found.assumptions.append(f"{module} starts its own server on port {main[1]} (python -m {module})")
        rel = next((r for r in sorted(sources) if _module(r) == module), None)
        found.listen = listen.python_main(sources, rel) if rel else None
        return lambda p: ("python", "-m", module)
    script = pyentry.script_server(pyproject, sources)
    if script is not None:
        module, func = script
        return lambda p: ("python", "-c", f"import sys; from {module} import {func}; sys.exit({func}())")
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


def _decouple(sources: Any, *, required: bool = False) -> set[str]:
    """python-decouple's ``config("NAME")`` (a call without ``default=`` is required)."""
    names: set[str] = set()
    for text in sources:
        if "decouple" in text:
            for match in _DECOUPLE.finditer(text):
                if not required or "default" not in match.group(2):
                    names.add(match.group(1))
    return names


# --- uv workspaces -------------------------------------------------------------------------------

WEB_FRAMEWORKS = frozenset(
    {"fastapi", "django", "flask", "starlette", "litestar", "sanic", "quart", "aiohttp"}
)


def workspace_apps(tree: ProjectTree) -> list[str]:
    """Members of a uv workspace that are web apps, when the workspace root is not itself one
    (``[tool.uv.workspace] members = ["backend"]`` with a root that only holds dev tools)."""
    pyproject = tree.toml("pyproject.toml")
    members = pyproject.get("tool", {}).get("uv", {}).get("workspace", {}).get("members", [])
    if not members or not isinstance(members, list):
        return []
    root_deps = {
        pybuild.normalise(_REQ.match(d).group(1))
        for d in _strings(pyproject.get("project", {}).get("dependencies"))
        if _REQ.match(d)
    }
    if root_deps & WEB_FRAMEWORKS:
        return []
    apps = []
    for member in _expand(tree, members):
        project = tree.toml(f"{member}/pyproject.toml").get("project", {})
        deps = {
            pybuild.normalise(m.group(1))
            for d in _strings(project.get("dependencies"))
            if (m := _REQ.match(d))
        }
        if deps & WEB_FRAMEWORKS:
            apps.append(member)
    return apps


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _expand(tree: ProjectTree, members: list[Any]) -> list[str]:
    """Workspace member folders; ``packages/*`` globs expand over the folders that exist."""
    out: list[str] = []
    for pattern in _strings(members):
        pattern = pattern.strip("/")
        if "*" in pattern or "?" in pattern:
            parent = pattern.rsplit("/", 1)[0] if "/" in pattern else ""
            base = tree.root / parent
            if base.is_dir():
                out += sorted(
                    f"{parent}/{p.name}".lstrip("/")
                    for p in base.iterdir()
                    if p.is_dir() and fnmatch.fnmatch(f"{parent}/{p.name}".lstrip("/"), pattern)
                )
        elif ".." not in pattern.split("/"):
            out.append(pattern)
    return [m for m in dict.fromkeys(out) if tree.exists(f"{m}/pyproject.toml")]


def lift_into_workspace(found: Detected, context: ProjectTree, app_dir: str) -> bool:
    """Make an app in ``app_dir`` install from its uv workspace (root ``uv.lock``): the lock, the root
    pyproject and the member's pyproject are the dependency files, the member is the package to sync.
    False when ``app_dir`` is not a member of a locked workspace."""
    if found.package_manager == "uv" or not context.exists("uv.lock"):
        return False
    if app_dir not in _expand(
        context,
        context.toml("pyproject.toml").get("tool", {}).get("uv", {}).get("workspace", {}).get("members", []),
    ):
        return False
    member = context.toml(f"{app_dir}/pyproject.toml").get("project", {})
    found.package_manager = "uv"
    found.locked = True
    found.dependency_files = ("pyproject.toml", "uv.lock", f"{app_dir}/pyproject.toml")
    found.dev_dependency_files = ()
    found.workspace_package = member.get("name") or None
    found.name = None  # members are often called "app": the workspace's folder names the service
    found.assumptions = [a for a in found.assumptions if "hash-locked" not in a]
    found.assumptions.append(
        f"uv workspace: the app is the member {app_dir}/ (package {found.workspace_package}); "
        "the image builds from the workspace root with its uv.lock"
    )
    if found.language_version is None or not pinned_python(ProjectTree(context.root / app_dir)):
        found.language_version = pinned_python(context) or found.language_version
    return True
