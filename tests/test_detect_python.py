"""Python detection on the layouts real projects use, each reproduced by a small fixture of our own:
router prefixes, blueprints, Django urls, Procfile / start scripts / uWSGI, factories, ``__main__``
servers, nested requirement files, uv workspaces, lock-file wheel coverage, compiled dependencies,
and the overrides (flags over ``.orchestra.yaml`` over detection) with refusals that name the flag.
Pure: no server, no install."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from agents.inspection.detect import pybuild, pyentry
from agents.inspection.detect.pyroutes import RouteTable, django_paths, health_route
from agents.inspection.inspect import InspectionError, inspect_project
from agents.inspection.tree import ProjectTree
from contracts.payloads import ServiceSpec


def project(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


# A FastAPI app whose health route sits under two prefixes, one of them a settings attribute.
PREFIXED = {
    "requirements.txt": "fastapi==0.115.6\nuvicorn==0.34.0\n",
    "app/__init__.py": "",
    "app/core/config.py": """
        from pydantic_settings import BaseSettings

        class Settings(BaseSettings):
            API_V1_STR: str = "/api/v1"

        settings = Settings()
    """,
    "app/api/routes/utils.py": """
        from fastapi import APIRouter

        router = APIRouter(prefix="/utils", tags=["utils"])

        @router.post("/test-email/")
        def test_email() -> None: ...

        @router.get("/health-check/")
        async def health_check() -> bool:
            return True
    """,
    "app/api/main.py": """
        from fastapi import APIRouter
        from app.api.routes import utils

        api_router = APIRouter()
        api_router.include_router(utils.router)
    """,
    "app/main.py": """
        from fastapi import FastAPI
        from app.api.main import api_router
        from app.core.config import settings

        app = FastAPI()
        app.include_router(api_router, prefix=settings.API_V1_STR)
    """,
}


def test_fastapi_health_route_keeps_every_router_prefix(tmp_path: Path) -> None:
    facts = inspect_project(project(tmp_path, PREFIXED))
    assert (facts.probe, facts.health_path) == ("http", "/api/v1/utils/health-check/")
    assert facts.start_command == ("uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000")


def test_a_prefix_that_cannot_be_read_gives_no_path_rather_than_a_wrong_one(tmp_path: Path) -> None:
    files = {
        **PREFIXED,
        "app/main.py": PREFIXED["app/main.py"].replace("settings.API_V1_STR", "get_prefix()"),
    }
    facts = inspect_project(project(tmp_path, files))
    assert facts.probe == "tcp"
    assert any("--health-path" in a for a in facts.assumptions)


def test_mounts_and_starlette_routes_are_followed() -> None:
    sources = {
        "main.py": textwrap.dedent("""
            from fastapi import FastAPI
            from starlette.applications import Starlette
            from starlette.routing import Route

            ops = Starlette(routes=[Route("/healthz", lambda r: None)])
            app = FastAPI()
            app.mount("/ops", ops)
        """),
    }
    table = RouteTable(sources)
    assert health_route(table.all_paths()) == "/ops/healthz"


# The realworld shape: the app is built in a factory, routers nest with prefixes, no health route.
FACTORY = {
    "pyproject.toml": """
        [tool.poetry]
        name = "conduit"
        version = "0.0.0"
        description = ""
        authors = []

        [tool.poetry.dependencies]
        python = "^3.9"
        fastapi = "^0.79"
        asyncpg = "^0.26.0"

        [tool.poetry.dev-dependencies]
        pytest = "^7.1"
    """,
    # Wheels for CPython 3.8-3.10 only: a newer Python would have to compile asyncpg.
    "poetry.lock": """
        [[package]]
        name = "asyncpg"
        version = "0.26.0"

        [metadata]
        lock-version = "1.1"
        python-versions = "^3.9"

        [metadata.files]
        asyncpg = [
            {file = "asyncpg-0.26.0-cp310-cp310-manylinux_2_17_x86_64.whl", hash = "sha256:00"},
            {file = "asyncpg-0.26.0-cp39-cp39-manylinux_2_17_x86_64.whl", hash = "sha256:00"},
            {file = "asyncpg-0.26.0-cp311-cp311-win_amd64.whl", hash = "sha256:00"},
            {file = "asyncpg-0.26.0.tar.gz", hash = "sha256:00"},
        ]
        fastapi = [
            {file = "fastapi-0.79.1-py3-none-any.whl", hash = "sha256:00"},
        ]
    """,
    "app/__init__.py": "",
    "app/api/routes.py": """
        from fastapi import APIRouter

        router = APIRouter()
        router.include_router(APIRouter(), prefix="/users")

        @router.get("/tags")
        def tags() -> list[str]:
            return []
    """,
    "app/main.py": """
        from fastapi import FastAPI
        from app.api.routes import router as api_router

        def get_application() -> FastAPI:
            application = FastAPI()
            application.include_router(api_router, prefix="/api")
            return application

        app = get_application()
    """,
}


def test_factory_app_object_and_tcp_probe_without_health_route(tmp_path: Path) -> None:
    facts = inspect_project(project(tmp_path, FACTORY))
    assert facts.start_command[:2] == ("uvicorn", "app.main:app")
    assert facts.probe == "tcp"
    assert any("no health route" in a and "--health-path" in a for a in facts.assumptions)


def test_python_version_follows_the_locked_wheels(tmp_path: Path) -> None:
    facts = inspect_project(project(tmp_path, FACTORY))
    assert facts.language_version == "3.10"
    assert facts.build_packages == ()  # every locked wheel exists for 3.10: no compiler


def test_a_pinned_python_without_wheels_gets_a_compiler(tmp_path: Path) -> None:
    facts = inspect_project(project(tmp_path, {**FACTORY, ".python-version": "3.12\n"}))
    assert facts.language_version == "3.12"
    assert facts.build_packages == ("gcc", "libc6-dev")
    assert any("asyncpg" in a for a in facts.assumptions)


@pytest.mark.parametrize(
    ("spec", "version", "expected"),
    [
        ("^3.9", "3.12", True),
        ("^3.9", "4.0", False),
        (">=3.14,<4.0", "3.13", False),
        (">=3.14, <4.0", "3.14", True),
        ("~3.10", "3.11", False),
        ("==3.10.*", "3.10", True),
        ("<3.11", "3.12", False),
        (None, "3.12", True),
    ],
)
def test_python_constraints(spec: str | None, version: str, expected: bool) -> None:
    assert pybuild.satisfies(version, spec) is expected


# The microblog shape: Procfile names the module, a boot script names the port, blueprints.
PROCFILE = {
    "Procfile": "web: flask db upgrade; flask translate compile; gunicorn microblog:app\nworker: rq worker\n",
    "boot.sh": """
        #!/bin/bash
        while true; do
            flask db upgrade
            if [[ "$?" == "0" ]]; then
                break
            fi
            sleep 5
        done
        exec gunicorn -b :5000 --access-logfile - microblog:app
    """,
    "requirements.txt": "Flask==3.0.0\ngunicorn==21.2.0\nmultidict==6.0.4\n",
    "microblog.py": "from app import create_app\n\napp = create_app()\n",
    "app/__init__.py": """
        from flask import Flask

        def create_app():
            app = Flask(__name__)
            from app.main import bp as main_bp
            app.register_blueprint(main_bp)
            from app.auth import bp as auth_bp
            app.register_blueprint(auth_bp, url_prefix="/auth")
            return app
    """,
    "app/main/__init__.py": "from flask import Blueprint\n\nbp = Blueprint('main', __name__)\n",
    "app/main/routes.py": "from app.main import bp\n\n@bp.route('/index')\ndef index(): ...\n",
    "app/auth/__init__.py": "from flask import Blueprint\n\nbp = Blueprint('auth', __name__)\n",
    "app/auth/routes.py": "from app.auth import bp\n\n@bp.route('/ping')\ndef ping(): ...\n",
}


def test_procfile_module_with_the_port_the_boot_script_binds(tmp_path: Path) -> None:
    facts = inspect_project(project(tmp_path, PROCFILE))
    assert facts.port == 5000
    assert facts.start_command == ("gunicorn", "--bind", "0.0.0.0:5000", "microblog:app")
    assert any("flask db upgrade; flask translate compile" in a for a in facts.assumptions)


def test_blueprint_routes_carry_their_url_prefix(tmp_path: Path) -> None:
    facts = inspect_project(project(tmp_path, PROCFILE))
    assert (facts.probe, facts.health_path) == ("http", "/auth/ping")


def test_exact_pins_of_c_extensions_get_a_compiler(tmp_path: Path) -> None:
    facts = inspect_project(project(tmp_path, PROCFILE))
    assert facts.build_packages == ("gcc", "libc6-dev")


@pytest.mark.parametrize(
    ("line", "port", "command"),
    [
        (
            "web: gunicorn --bind 0.0.0.0:8081 wsgi:app",
            8081,
            ("gunicorn", "--bind", "0.0.0.0:8081", "wsgi:app"),
        ),
        ("web: gunicorn wsgi:app -b 127.0.0.1:9000", 9000, ("gunicorn", "wsgi:app", "-b", "0.0.0.0:9000")),
        ("web: gunicorn --bind=:$PORT wsgi:app", 8000, ("gunicorn", "--bind=0.0.0.0:8000", "wsgi:app")),
        (
            "web: uvicorn main:app --port ${PORT:-7000}",
            7000,
            ("uvicorn", "main:app", "--port", "7000", "--host", "0.0.0.0"),
        ),
        ("web: poetry run hypercorn main:app", 8000, ("hypercorn", "--bind", "0.0.0.0:8000", "main:app")),
        ("web: python manage.py runserver", 8000, ("python", "manage.py", "runserver", "0.0.0.0:8000")),
    ],
)
def test_procfile_server_commands(tmp_path: Path, line: str, port: int, command: tuple[str, ...]) -> None:
    files = {"Procfile": line + "\n", "requirements.txt": "flask\ngunicorn\n", "wsgi.py": "app = None\n"}
    facts = inspect_project(project(tmp_path, files))
    assert (facts.port, facts.start_command) == (port, command)


def test_main_block_server_runs_as_a_module_on_its_port(tmp_path: Path) -> None:
    files = {
        "requirements.txt": "uvicorn\nstarlette\n",
        "service/__init__.py": "",
        "service/server.py": """
            import uvicorn

            def build():
                ...

            if __name__ == "__main__":
                uvicorn.run(build(), host="0.0.0.0", port=8123)
        """,
    }
    facts = inspect_project(project(tmp_path, files))
    assert (facts.start_command, facts.port) == (("python", "-m", "service.server"), 8123)


def test_pyproject_script_that_starts_a_server(tmp_path: Path) -> None:
    files = {
        "pyproject.toml": '[project]\nname = "svc"\nversion = "1"\ndependencies = ["uvicorn"]\n'
        '[project.scripts]\nserve = "svc.cli:main"\n',
        "svc/__init__.py": "",
        "svc/cli.py": "import uvicorn\n\ndef main():\n    uvicorn.run('svc.web:make', factory=True)\n",
    }
    facts = inspect_project(project(tmp_path, files))
    assert facts.start_command == ("python", "-c", "import sys; from svc.cli import main; sys.exit(main())")


# The bakerydemo shape: uWSGI from the Procfile, nested -r files, a settings package.
DJANGO = {
    "Procfile": "release: python manage.py migrate\nweb: uwsgi ./etc/uwsgi.ini\n",
    "etc/uwsgi.ini": "[uwsgi]\nhttp-socket=:$(PORT)\nmaster=true\nwsgi-file=site/wsgi.py\n",
    "Dockerfile": "FROM python:3.12-slim\nENV PORT=8000\nEXPOSE 8000\n",
    "requirements.txt": "-r requirements/production.txt\n",
    "requirements/base.txt": "Django>=5.1,<5.2\n",
    "requirements/production.txt": "-r base.txt\nuwsgi>=2.0.17,<2.1\npsycopg2>=2.9\n",
    "requirements/development.txt": "-r base.txt\npytest\n",
    "manage.py": 'import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "site.settings.dev")\n',
    "site/__init__.py": "",
    "site/settings/__init__.py": "",
    "site/settings/base.py": 'ROOT_URLCONF = "site.urls"\n',
    "site/settings/dev.py": "from .base import *\n",
    "site/settings/production.py": "from .base import *\n",
    "site/wsgi.py": "application = None\n",
    "site/urls.py": """
        from django.urls import include, path

        urlpatterns = [
            path("admin/", include("site.admin_urls")),
            path("", include("site.pages")),
        ]
    """,
    "site/admin_urls.py": 'from django.urls import path\nurlpatterns = [path("login/", None)]\n',
    "site/pages.py": 'from django.urls import path\nurlpatterns = [path("<slug:page>/", None)]\n',
}


def test_django_uwsgi_procfile_nested_requirements_and_production_settings(tmp_path: Path) -> None:
    facts = inspect_project(project(tmp_path, DJANGO))
    # uWSGI 2.0 reloads on SIGTERM: told to stop on it, as every orchestrator stops containers.
    assert facts.start_command == ("uwsgi", "./etc/uwsgi.ini", "--die-on-term")
    assert facts.port == 8000
    assert facts.dependency_files == (
        "requirements.txt",
        "requirements/production.txt",
        "requirements/base.txt",
    )
    assert facts.dev_dependency_files == ("requirements/development.txt",)
    assert facts.runtime_env == {"DJANGO_SETTINGS_MODULE": "site.settings.production"}
    assert facts.build_packages == ("gcc", "libc6-dev", "libpq-dev")
    assert facts.runtime_packages == ("libpq5",)
    assert facts.probe == "tcp"
    assert any("python manage.py migrate" in a for a in facts.assumptions)


def test_django_health_route_through_includes(tmp_path: Path) -> None:
    files = {
        **DJANGO,
        "site/admin_urls.py": 'from django.urls import path\nurlpatterns = [path("healthz/", None)]\n',
    }
    facts = inspect_project(project(tmp_path, files))
    assert (facts.probe, facts.health_path) == ("http", "/admin/healthz/")
    sources = {rel: (tmp_path / rel).read_text() for rel in files if rel.endswith(".py")}
    assert ("/admin/healthz/", None) in django_paths(sources, "site.urls")


def test_constraint_files_are_followed_and_paths_stay_inside(tmp_path: Path) -> None:
    project(
        tmp_path,
        {
            "requirements.txt": "-r reqs/base.txt\n--constraint reqs/pins.txt\n-r ../outside.txt\n",
            "reqs/base.txt": "-c pins.txt\nflask\n",
            "reqs/pins.txt": "flask==3.1.0\n",
        },
    )
    files = pybuild.requirement_files(ProjectTree(tmp_path), "requirements.txt")
    assert files == ("requirements.txt", "reqs/base.txt", "reqs/pins.txt")


# full-stack-fastapi-template shape: a uv workspace whose root only holds tools.
WORKSPACE = {
    "pyproject.toml": '[tool.uv.workspace]\nmembers = ["backend"]\n\n[dependency-groups]\ndev = ["ruff"]\n',
    "uv.lock": "version = 1\nrevision = 3\n",
    ".python-version": "3.13\n",
    "backend/pyproject.toml": '[project]\nname = "app"\nversion = "0.1.0"\nrequires-python = ">=3.12"\n'
    'dependencies = ["fastapi[standard]>=0.115"]\n\n[dependency-groups]\ndev = ["pytest"]\n',
    "backend/app/__init__.py": "",
    "backend/app/main.py": "from fastapi import FastAPI\napp = FastAPI()\n@app.get('/healthz')\ndef h(): ...",
}


def test_uv_workspace_member_is_the_app(tmp_path: Path) -> None:
    facts = inspect_project(project(tmp_path, WORKSPACE))
    assert facts.app_dir == "backend"
    assert facts.workspace_package == "app"
    assert facts.package_manager == "uv"
    assert facts.dependency_files == ("pyproject.toml", "uv.lock", "backend/pyproject.toml")
    assert facts.language_version == "3.13"  # the workspace root's .python-version
    assert facts.start_command[:2] == ("uvicorn", "app.main:app")
    assert facts.name == tmp_path.name.lower().replace("_", "-")[:42].strip("-") or facts.name


def test_workspace_with_two_apps_is_refused_naming_app_dir(tmp_path: Path) -> None:
    files = {
        **WORKSPACE,
        "pyproject.toml": '[tool.uv.workspace]\nmembers = ["backend", "admin"]\n',
        "admin/pyproject.toml": WORKSPACE["backend/pyproject.toml"].replace('"app"', '"admin"'),
    }
    with pytest.raises(
        InspectionError, match=r"\(backend, admin\): pass --app-dir backend .*app_dir: in \.orch"
    ):
        inspect_project(project(tmp_path, files))


# --- overrides ---------------------------------------------------------------------------------


def test_no_entrypoint_refusal_names_the_flag_and_the_file_key(tmp_path: Path) -> None:
    project(tmp_path, {"requirements.txt": "fastapi\n", "lib.py": "x = 1\n"})
    with pytest.raises(InspectionError) as err:
        inspect_project(tmp_path)
    assert "--start-command" in str(err.value) and "start_command: in .orchestra.yaml" in str(err.value)


def test_the_flag_fixes_the_refusal(tmp_path: Path) -> None:
    project(tmp_path, {"requirements.txt": "fastapi\n", "lib.py": "x = 1\n"})
    facts = inspect_project(
        tmp_path, ServiceSpec(start_command=["uvicorn", "lib:x", "--port", "9000"], port=9000)
    )
    assert facts.start_command == ("uvicorn", "lib:x", "--port", "9000")
    assert facts.port == 9000


def test_no_manifest_at_the_root_points_at_app_dir(tmp_path: Path) -> None:
    project(
        tmp_path,
        {
            "backend/requirements.txt": "flask\n",
            "backend/app.py": "from flask import Flask\napp = Flask(__name__)\n",
        },
    )
    with pytest.raises(InspectionError, match="--app-dir backend"):
        inspect_project(tmp_path)
    facts = inspect_project(tmp_path, ServiceSpec(app_dir="backend"))
    assert facts.app_dir == "backend"
    assert facts.dependency_files == ("backend/requirements.txt",)
    assert facts.start_command == ("flask", "--app", "app:app", "run", "--host", "0.0.0.0", "--port", "8000")


@pytest.mark.parametrize("bad", ["../elsewhere", "missing"])
def test_app_dir_must_be_a_folder_inside(tmp_path: Path, bad: str) -> None:
    project(tmp_path / "p", {"requirements.txt": "flask\n"})
    with pytest.raises(InspectionError, match="--app-dir"):
        inspect_project(tmp_path / "p", ServiceSpec.model_construct(app_dir=bad))


def test_port_override_rerenders_the_detected_command(tmp_path: Path) -> None:
    facts = inspect_project(project(tmp_path, PROCFILE), ServiceSpec(port=9090))
    assert facts.start_command == ("gunicorn", "--bind", "0.0.0.0:9090", "microblog:app")


def test_project_file_then_flags(tmp_path: Path) -> None:
    files = {
        **PROCFILE,
        ".orchestra.yaml": "port: 7000\nhealth_path: /auth/ping\nbuild_command: flask translate compile\n",
    }
    root = project(tmp_path, files)
    facts = inspect_project(root)
    assert (facts.port, facts.probe, facts.health_path) == (7000, "http", "/auth/ping")
    assert facts.build_command == ("flask", "translate", "compile")
    facts = inspect_project(root, ServiceSpec(port=7100, probe="tcp"))  # flags win over the file
    assert (facts.port, facts.probe) == (7100, "tcp")
    assert facts.start_command == ("gunicorn", "--bind", "0.0.0.0:7100", "microblog:app")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("port: [1\n", "not valid YAML"),
        ("- port\n", "must be a mapping"),
        ("port: 99999\n", r"\.orchestra\.yaml: port:"),
        ("colour: blue\n", r"\.orchestra\.yaml: colour:"),
        ("health_path: nope\n", r"\.orchestra\.yaml: health_path:"),
    ],
)
def test_bad_project_file_is_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    project(tmp_path, {**PROCFILE, ".orchestra.yaml": text})
    with pytest.raises(InspectionError, match=message) as err:
        inspect_project(tmp_path)
    assert "\n" not in str(err.value)


def test_server_commands_ignore_the_authors_absolute_paths(tmp_path: Path) -> None:
    project(tmp_path, {"Dockerfile": 'CMD ["uwsgi", "/code/etc/uwsgi.ini"]\n'})
    assert pyentry.server_commands(ProjectTree(tmp_path)) == []
