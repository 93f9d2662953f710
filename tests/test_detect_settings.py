"""What a Python app reads and writes at run time, from its code: pydantic settings through the
project's own base classes (v1 and v2), other readers (decouple, ``os.environ[...]``), the paths it
writes (volumes) and the host it listens on. Each layout is a small fixture of our own. Pure."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from agents.devops.generate import generate
from agents.devops.spec import AppSpec
from agents.inspection.detect.pysettings import settings_env
from agents.inspection.inspect import InspectionError, inspect_project
from contracts.payloads import ServiceSpec
from contracts.vocabulary import Target


def project(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def texts(files: dict[str, str]) -> dict[str, str]:
    return {rel: textwrap.dedent(text).lstrip("\n") for rel, text in files.items() if rel.endswith(".py")}


# The realworld layout: the settings class the app builds derives from the project's own base
# class in another module, which derives from pydantic v1's BaseSettings; no env example file.
REALWORLD = {
    "pyproject.toml": """
        [tool.poetry]
        name = "realworld"
        version = "0.1.0"
        [tool.poetry.dependencies]
        python = "^3.11"
        fastapi = "^0.100"
        uvicorn = "^0.22"
        asyncpg = "^0.28"
        pydantic = "^1.10"
    """,
    "app/__init__.py": "",
    "app/core/__init__.py": "",
    "app/core/settings/__init__.py": "",
    "app/core/settings/base.py": """
        from pydantic import BaseSettings

        class BaseAppSettings(BaseSettings):
            app_env: str = "prod"

            class Config:
                env_file = ".env"
    """,
    "app/core/settings/app.py": """
        from pydantic import PostgresDsn, SecretStr

        from app.core.settings.base import BaseAppSettings

        class AppSettings(BaseAppSettings):
            debug: bool = False
            database_url: PostgresDsn
            secret_key: SecretStr
            max_connection_count: int = 10

            class Config:
                validate_assignment = True
    """,
    "app/core/settings/production.py": """
        from .app import AppSettings

        class ProdAppSettings(AppSettings):
            class Config(AppSettings.Config):
                env_file = "prod.env"
    """,
    "app/core/settings/test.py": """
        from pydantic import SecretStr

        from app.core.settings.app import AppSettings

        class TestAppSettings(AppSettings):
            secret_key: SecretStr = SecretStr("test")
            debug: bool = True
    """,
    "app/main.py": """
        from fastapi import FastAPI

        app = FastAPI()
    """,
}


def test_settings_through_the_projects_own_base_classes_across_modules() -> None:
    found = settings_env(texts(REALWORLD))
    assert {"APP_ENV", "DEBUG", "DATABASE_URL", "SECRET_KEY", "MAX_CONNECTION_COUNT"} <= found.names
    # No default in AppSettings: required (a test settings class giving a default does not count).
    assert found.required == {"DATABASE_URL", "SECRET_KEY"}


def test_pydantic_v1_prefix_aliases_and_case() -> None:
    files = {
        "svc/base.py": """
            from pydantic import BaseSettings, Field

            class Base(BaseSettings):
                token: str = Field(..., env="API_TOKEN")
                region: str = Field("eu", env=["AWS_REGION", "REGION"])
                level: str = "info"

                class Config:
                    env_prefix = "svc_"
                    fields = {"level": {"env": "LOG_LEVEL"}}
        """,
        "svc/settings.py": """
            from typing import Optional

            from svc.base import Base

            class Settings(Base):
                cache_url: Optional[str]
                workers: int = Field()
        """,
    }
    found = settings_env(texts(files))
    assert found.names == {"API_TOKEN", "AWS_REGION", "LOG_LEVEL", "SVC_CACHE_URL", "SVC_WORKERS"}
    assert found.required == {"API_TOKEN", "SVC_WORKERS"}  # Optional without a default is not


def test_pydantic_v2_model_config_and_alias_choices() -> None:
    files = {
        "conf.py": """
            from pydantic import AliasChoices, Field
            from pydantic_settings import BaseSettings, SettingsConfigDict

            class Shared(BaseSettings):
                model_config = SettingsConfigDict(env_prefix="SHOP_")
                name: str = "shop"

            class Settings(Shared):
                db: str = Field(validation_alias=AliasChoices("DATABASE_URL", "DB_URL"))
                key: str = Field(alias="SIGNING_KEY", default="dev")
                mode: str | None = None
                case: str = "x"

            class Plain:  # not settings: its fields are nobody's variables
                ignored: str
        """,
    }
    found = settings_env(texts(files))
    assert found.names == {"SHOP_NAME", "DATABASE_URL", "SIGNING_KEY", "SHOP_MODE", "SHOP_CASE"}
    assert found.required == {"DATABASE_URL"}


def test_other_readers_decouple_and_environ_subscripts(tmp_path: Path) -> None:
    files = {
        "requirements.txt": "flask==3.0.0\npython-decouple==3.8\n",
        "app.py": """
            import os
            from decouple import config
            from flask import Flask

            SECRET = config("SESSION_SECRET")
            DEBUG = config("DEBUG", default=False, cast=bool)
            API = os.environ["API_KEY"]
            os.environ["SET_BY_APP"] = "1"
            app = Flask(__name__)
        """,
    }
    facts = inspect_project(project(tmp_path / "svc", files))
    assert {"SESSION_SECRET", "DEBUG", "API_KEY"} <= set(facts.env_vars)
    assert set(facts.required_env) == {"SESSION_SECRET", "API_KEY"}


def test_realworld_gets_its_database_url_from_postgres_and_its_secret_key_from_a_secret(
    tmp_path: Path,
) -> None:
    """Detected through the settings classes alone (no .env example): Compose builds DATABASE_URL
    for the postgres service from its password secret and exports SECRET_KEY from its secret;
    Kubernetes reads both from the synced Secret; the docs name both as required."""
    facts = inspect_project(project(tmp_path / "realworld", REALWORLD))
    assert {"DATABASE_URL", "SECRET_KEY"} <= set(facts.env_vars)
    assert set(facts.required_env) == {"DATABASE_URL", "SECRET_KEY"}
    assert facts.backing_services == ("postgres",)
    from agents.credential_policy import issue
    from contracts.payloads import CredentialRequested

    issued = issue(
        CredentialRequested(
            service=facts.name, env_vars=list(facts.env_vars), targets=list(Target), environments=["prod"]
        )
    )
    spec = AppSpec(
        facts=facts,
        environments=("prod",),
        secrets=tuple(issued.secrets),
        config_vars=tuple(issued.config_vars),
    )
    files = {f.path: f.content for f in generate(spec)}
    app = yaml.safe_load(files["docker-compose.yml"])["services"]["app"]
    shim = app["entrypoint"][2]
    assert 'export DATABASE_URL="postgresql://app:$$v@db:5432/app"' in shim
    assert 'export SECRET_KEY="$$v"' in shim and "secret_key" in app["secrets"]
    deployment = files["k8s/deployment.yaml"]
    assert "name: DATABASE_URL" in deployment and "name: SECRET_KEY" in deployment
    assert "`SECRET_KEY`" in files["docs/INFRASTRUCTURE.md"]


# --- writes ---------------------------------------------------------------------------------------

FLASK_LOGS = {
    "requirements.txt": "flask==3.0.0\ngunicorn==23.0.0\n",
    "config.py": """
        import os

        basedir = os.path.abspath(os.path.dirname(__file__))

        class Config:
            SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or (
                "sqlite:///" + os.path.join(basedir, "app.db")
            )
            UPLOAD_FOLDER = os.path.join(basedir, "uploads")
    """,
    "app.py": """
        import os
        from logging.handlers import RotatingFileHandler

        from flask import Flask

        app = Flask(__name__)
        if not os.path.exists("logs"):
            os.mkdir("logs")
        app.logger.addHandler(RotatingFileHandler("logs/app.log"))
    """,
}


def test_log_and_upload_folders_become_volumes_and_a_sqlite_file_beside_the_code_refuses_quietly(
    tmp_path: Path,
) -> None:
    facts = inspect_project(project(tmp_path / "blog", FLASK_LOGS))
    assert facts.writable_paths == ("/app/logs", "/app/uploads")
    # The SQLite fallback sits in /app itself: no volume can cover the code, so the working directory
    # becomes the app user's and the assumption says the read-only root rejects it.
    assert facts.writable_workdir
    assert any(
        "SQLite database app.db (config.py:7) at /app, beside its code" in a for a in facts.assumptions
    )
    runtime = {f.path: f.content for f in generate(AppSpec(facts=facts, targets=(Target.DOCKER,)))}[
        "Dockerfile"
    ].rsplit("\nFROM ", 1)[1]
    assert (
        "RUN mkdir -p /app/logs /app/uploads \\\n && chown 10001:10001 /app/logs /app/uploads /app\n"
        in runtime
    )
    assert 'VOLUME ["/tmp", "/app/logs", "/app/uploads"]' in runtime


def test_a_sqlite_fallback_next_to_a_database_service_is_not_a_write(tmp_path: Path) -> None:
    files = dict(FLASK_LOGS)
    files["requirements.txt"] += "psycopg2-binary==2.9.10\n"
    facts = inspect_project(project(tmp_path / "blog", files))
    assert facts.backing_services == ("postgres",) and not facts.writable_workdir
    assert facts.writable_paths == ("/app/logs", "/app/uploads")


def test_a_sqlite_url_default_of_a_variable_is_moved_into_a_data_volume(tmp_path: Path) -> None:
    files = {
        "requirements.txt": "fastapi==0.115.6\nuvicorn==0.34.0\n",
        "main.py": """
            import os
            from fastapi import FastAPI

            DATABASE_URL = os.getenv("DATABASE_URL", "sqlite:///./app.db")
            app = FastAPI()
        """,
    }
    facts = inspect_project(project(tmp_path / "api", files))
    assert facts.runtime_env["DATABASE_URL"] == "sqlite:////data/app.db"
    assert facts.writable_paths == ("/data",) and not facts.writable_workdir


def test_django_media_root_through_base_dir(tmp_path: Path) -> None:
    files = {
        "requirements.txt": "django==5.1\ngunicorn==23.0.0\n",
        "manage.py": 'import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "site.settings")\n',
        "site/__init__.py": "",
        "site/wsgi.py": "application = None\n",
        "site/settings.py": """
            from pathlib import Path

            BASE_DIR = Path(__file__).resolve().parent.parent
            MEDIA_ROOT = BASE_DIR / "media"
            DATABASES = {
                "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "data" / "db.sqlite3"}
            }
        """,
        "media/.gitkeep": "",
    }
    facts = inspect_project(project(tmp_path / "site", files))
    assert facts.writable_paths == ("/app/data", "/app/media")


def test_writable_path_flag_and_paths_that_would_hide_the_code(tmp_path: Path) -> None:
    root = project(tmp_path / "blog", FLASK_LOGS)
    facts = inspect_project(root, ServiceSpec(writable_paths=["/var/lib/blog"]))
    assert "/var/lib/blog" in facts.writable_paths
    for bad in ("/app", "/usr", "/app/../etc"):
        with pytest.raises(InspectionError, match="would hide the app's code or the system"):
            inspect_project(root, ServiceSpec(writable_paths=[bad]))


# --- listen host ----------------------------------------------------------------------------------


def test_a_main_block_server_on_localhost_is_refused_and_a_host_variable_is_set(tmp_path: Path) -> None:
    files = {
        "requirements.txt": "flask==3.0.0\n",
        "server.py": """
            from flask import Flask

            app = Flask(__name__)

            if __name__ == "__main__":
                app.run(port=5000)
        """,
    }
    # Flask's app object is started with `flask run --host 0.0.0.0`: no finding.
    assert inspect_project(project(tmp_path / "a", files)).start_command[:2] == ("flask", "--app")
    files["server.py"] = files["server.py"].replace("from flask import Flask", "from flask import Flask as F")
    files["server.py"] = files["server.py"].replace("Flask(__name__)", "F(__name__)")
    with pytest.raises(
        InspectionError, match=r"server.py:6 listens on localhost only \(`app.run\(port=5000\)`"
    ):
        inspect_project(project(tmp_path / "b", files))
    files["server.py"] = files["server.py"].replace(
        "app.run(port=5000)", 'app.run(host=os.environ.get("BIND_HOST", "127.0.0.1"), port=5000)'
    )
    facts = inspect_project(project(tmp_path / "c", files))
    assert facts.runtime_env["BIND_HOST"] == "0.0.0.0"
