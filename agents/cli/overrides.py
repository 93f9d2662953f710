"""The override flags ``orchestra generate`` and ``orchestra task`` share: what detection got
wrong or could not find, said explicitly (the same fields as a project's ``.orchestra.yaml``)."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer
from pydantic import ValidationError

from agents.cli.common import fail
from contracts.payloads import ServiceSpec

START_HELP = "The server command, e.g. 'gunicorn --bind 0.0.0.0:8000 app:app' (overrides detection)."
PORT_HELP = "The port the server listens on."
HEALTH_HELP = "The health route probes GET (e.g. /healthz), or 'tcp' to probe the port."
APP_DIR_HELP = "The app's subfolder (e.g. backend); the build context stays the project root."
BUILD_HELP = (
    "A command the image build runs after copying the source (e.g. 'python manage.py collectstatic')."
)

WRITABLE_HELP = (
    "A folder the app writes at run time, absolute in the container (e.g. /data); it becomes a volume "
    "(repeatable)."
)
CONFIG_FILE_HELP = (
    "A configuration file the app reads, absolute in the container (e.g. /etc/app/app.conf); it is "
    "mounted there from a secret (repeatable)."
)
LOOPBACK_HELP = "Generate even though the server listens on localhost only (it stays unreachable)."
FLAG_OF = {"probe": "--health-path", "writable_paths": "--writable-path", "config_files": "--config-file"}

StartCommand = typer.Option(None, "--start-command", help=START_HELP)
Port = typer.Option(None, "--port", help=PORT_HELP)
HealthPath = typer.Option(None, "--health-path", help=HEALTH_HELP)
AppDir = typer.Option(None, "--app-dir", help=APP_DIR_HELP)
BuildCommand = typer.Option(None, "--build-command", help=BUILD_HELP)
WritablePath = typer.Option(None, "--writable-path", help=WRITABLE_HELP)
ConfigFile = typer.Option(None, "--config-file", help=CONFIG_FILE_HELP)
AllowLoopback = typer.Option(False, "--allow-loopback", help=LOOPBACK_HELP)


def service_overrides(
    start_command: str | None,
    port: int | None,
    health_path: str | None,
    app_dir: str | None,
    build_command: str | None,
    *,
    project: Path | None = None,
    writable_paths: list[str] | None = None,
    config_files: list[str] | None = None,
    allow_loopback: bool = False,
) -> ServiceSpec:
    """A :class:`ServiceSpec` with only the flags given; a bad value exits with a one-line error
    naming the flag."""
    fields: dict[str, object] = {}
    for flag, key, raw in (
        ("--start-command", "start_command", start_command),
        ("--build-command", "build_command", build_command),
    ):
        if raw is not None:
            try:
                words = shlex.split(raw)
            except ValueError as exc:
                raise fail(f"{flag}: {exc}") from None
            if not words:
                raise fail(f"{flag} is empty")
            fields[key] = words
    if port is not None:
        fields["port"] = port
    if health_path is not None:
        if health_path.strip().lower() == "tcp":
            fields["probe"] = "tcp"
        else:
            fields["health_path"] = health_path.strip()
    if app_dir is not None:
        rel = app_dir.strip().strip("/")
        if project is not None and not (project / rel).is_dir():
            raise fail(f"--app-dir {app_dir!r} is not a folder of {project}")
        fields["app_dir"] = rel
    if writable_paths:
        fields["writable_paths"] = [p.strip() for p in writable_paths]
    if config_files:
        fields["config_files"] = [p.strip() for p in config_files]
    if allow_loopback:
        fields["allow_loopback"] = True
    try:
        return ServiceSpec.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = str(error["loc"][0]) if error["loc"] else "?"
        flag = FLAG_OF.get(key, "--" + key.replace("_", "-"))
        raise fail(f"{flag}: {error['msg']}") from None
