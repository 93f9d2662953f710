"""The smoke boot for real: projects of our own built and started in the sandbox with this
machine's Python and Node, one fixture per failure class. Artifact sets are written here in the
generator's shape (builder/runtime stages, /opt/venv, exec CMD, HEALTHCHECK), so they stay fixed
while the generator evolves. Needs root and overlayfs; skipped elsewhere, saying why."""

from __future__ import annotations

import os
import re
import shutil
import socket
from pathlib import Path

import pytest

from agents.qa.smoke import SmokeOptions, smoke_boot
from agents.qa.smoke.engine import detect
from contracts.payloads import Finding


def _sandbox_missing() -> str | None:
    if os.geteuid() != 0:
        return "the smoke sandbox needs root (mount and network namespaces)"
    if "overlay" not in Path("/proc/filesystems").read_text():
        return "the smoke sandbox needs overlayfs"
    return None


pytestmark = pytest.mark.skipif(_sandbox_missing() is not None, reason=_sandbox_missing() or "")

PY_DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM python:3.11-slim-bookworm AS builder
ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1
WORKDIR /app
RUN python -m venv /opt/venv
ENV VIRTUAL_ENV=/opt/venv \\
    PATH=/opt/venv/bin:$PATH
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

FROM builder AS test
COPY . .
CMD ["python", "-m", "unittest"]

FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONUNBUFFERED=1 \\
    VIRTUAL_ENV=/opt/venv \\
    PATH=/opt/venv/bin:$PATH \\
    PORT=8000
RUN groupadd --system --gid 10001 app \\
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent app
WORKDIR /app
COPY --from=builder --chown=10001:10001 /opt/venv /opt/venv
COPY --chown=10001:10001 . .
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \\
  CMD ["python", "-c", \\
  "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
CMD ["python", "app.py"]
"""

PY_APP = """\
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

{before}

class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        found = self.path == "{route}"
        self.send_response(200 if found else 404)
        self.end_headers()
        self.wfile.write(b"ok" if found else b"no such route")

    def log_message(self, *args):
        pass


HTTPServer(("{host}", int(os.environ["PORT"]) + {shift}), Health).serve_forever()
"""

COMPOSE = """\
name: fixture
services:
  app:
    build: {{context: ., target: runtime}}
    environment: {{PORT: '{port}'}}
    secrets: [api_key]
{backing}secrets:
  api_key: {{file: ./secrets/api_key}}
"""

DOCKERIGNORE = "Dockerfile\n.dockerignore\ndocker-compose*.yml\n.env\n"


def python_project(
    tmp: Path,
    *,
    route: str = "/health",
    host: str = "0.0.0.0",
    shift: int = 0,
    before: str = "",
    requirements: str = "# standard library only\n",
    extra: dict[str, str] | None = None,
    backing: str = "",
) -> tuple[Path, dict[str, str]]:
    """A stdlib HTTP app and its artifact set; the knobs make each failure class."""
    project = tmp / "project"
    project.mkdir()
    (project / "app.py").write_text(PY_APP.format(route=route, host=host, shift=shift, before=before))
    (project / "requirements.txt").write_text(requirements)
    for name, text in (extra or {}).items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    files = {
        "Dockerfile": PY_DOCKERFILE,
        ".dockerignore": DOCKERIGNORE,
        "docker-compose.yml": COMPOSE.format(backing=backing, port=8000),
    }
    return project, files


NODE_DOCKERFILE = """\
FROM node:20.18.1-bookworm-slim AS builder
ENV NODE_ENV=production
WORKDIR /app
COPY package.json ./
RUN --mount=type=cache,target=/root/.npm npm install --omit=dev --no-audit --no-fund

FROM node:20.18.1-bookworm-slim AS runtime
ENV NODE_ENV=production \\
    PORT=3000
WORKDIR /app
COPY --chown=10001:10001 . .
USER 10001:10001
EXPOSE 3000
HEALTHCHECK CMD ["node", "-e", \\
  "fetch('http://127.0.0.1:3000/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "server.js"]
"""

NODE_APP = """\
const http = require("http");
{before}
http.createServer((req, res) => {{
  res.writeHead(req.url === "/healthz" ? 200 : 404);
  res.end("ok");
}}).listen(Number(process.env.PORT), "0.0.0.0");
"""


def node_project(tmp: Path, *, before: str = "") -> tuple[Path, dict[str, str]]:
    project = tmp / "project"
    project.mkdir()
    (project / "package.json").write_text('{"name": "fixture", "version": "1.0.0", "private": true}\n')
    (project / "server.js").write_text(NODE_APP.format(before=before))
    files = {
        "Dockerfile": NODE_DOCKERFILE,
        ".dockerignore": DOCKERIGNORE + "node_modules\n",
        "docker-compose.yml": COMPOSE.format(backing="", port=3000),
    }
    return project, files


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One layer cache for the module: the virtualenv layer every Python fixture shares is built once."""
    return tmp_path_factory.mktemp("smoke-cache")


def run(files: dict[str, str], project: Path, cache: Path, **options: float) -> list[Finding]:
    limits = {"start_timeout_s": 20.0, "health_timeout_s": 5.0, "timeout_s": 300.0} | options
    return smoke_boot(files, project, SmokeOptions(cache=cache, **limits), env_vars=["API_KEY"]).findings


def only(findings: list[Finding], rule: str) -> Finding:
    matching = [f for f in findings if f.rule == rule]
    assert len(matching) == 1, [(f.rule, f.message) for f in findings]
    return matching[0]


def failing(findings: list[Finding]) -> list[str]:
    return [f.rule for f in findings if f.severity.value not in ("info", "low")]


def test_python_app_installs_starts_and_answers_health(tmp_path: Path, cache: Path) -> None:
    project, files = python_project(tmp_path)
    mounts = Path("/proc/self/mounts").read_text()
    findings = run(files, project, cache)
    assert failing(findings) == []
    passed = only(findings, "SMOKE-PASSED")
    assert "health check `GET http://127.0.0.1:8000/health` passed" in passed.message
    assert passed.severity.value == "info" and passed.tool == "smoke-boot"
    assert Path("/proc/self/mounts").read_text() == mounts  # every mount died with its namespace
    assert list((cache / "runs").iterdir()) == []  # scratch space removed


def test_container_engine_path_says_it_was_skipped(tmp_path: Path, cache: Path) -> None:
    if detect().client is not None:
        pytest.skip("a container engine is reachable here: the engine path runs instead")
    project, files = python_project(tmp_path)
    engine = only(run(files, project, cache), "SMOKE-ENGINE")
    assert engine.message.startswith("container build skipped: no engine reachable (")
    assert engine.severity.value == "info"


def test_nested_requirements_file_the_dockerfile_does_not_copy_fails_the_install(
    tmp_path: Path, cache: Path
) -> None:
    project, files = python_project(
        tmp_path, requirements="-r requirements/base.txt\n", extra={"requirements/base.txt": "# none\n"}
    )
    install = only(run(files, project, cache), "SMOKE-INSTALL")
    assert install.severity.value == "high"
    assert (
        install.line
        == PY_DOCKERFILE.splitlines().index("RUN pip install --no-cache-dir -r requirements.txt") + 1
    )
    assert "requirements/base.txt" in install.message  # pip's own error, as docker build would show it


def test_missing_variable_crashes_the_start_and_dummy_secrets_stay_masked(
    tmp_path: Path, cache: Path
) -> None:
    before = (
        "key = open('/run/secrets/api_key').read()\n"
        "print('loaded api key', key, file=sys.stderr, flush=True)\n"
        "os.environ['SECRET_KEY']\n"
    )
    project, files = python_project(tmp_path, before=before)
    start = only(run(files, project, cache), "SMOKE-START")
    assert "`python app.py` exited with code 1 before port 8000 opened" in start.message
    assert "KeyError: 'SECRET_KEY'" in start.message
    assert "loaded api key [dummy]" in start.message and "smoke-dummy-" not in start.message


def test_app_listening_on_another_port_fails_the_port_step(tmp_path: Path, cache: Path) -> None:
    project, files = python_project(tmp_path, shift=1)
    port = only(run(files, project, cache, start_timeout_s=3.0), "SMOKE-PORT")
    assert "nothing accepted connections on port 8000" in port.message
    assert "it listens on 8001" in port.message


def test_app_listening_on_loopback_only_fails_the_port_step(tmp_path: Path, cache: Path) -> None:
    project, files = python_project(tmp_path, host="127.0.0.1")
    port = only(run(files, project, cache), "SMOKE-PORT")
    assert "listens on 127.0.0.1 port 8000 only" in port.message


def test_health_route_that_404s_fails_the_health_step(tmp_path: Path, cache: Path) -> None:
    project, files = python_project(tmp_path, route="/healthz")
    health = only(run(files, project, cache, health_timeout_s=2.0), "SMOKE-HEALTH")
    assert "GET http://127.0.0.1:8000/health -> 404 Not Found: no such route" in health.message
    assert "HTTPError" in health.message  # what the Dockerfile's own health check printed


def test_crash_after_the_port_opened_is_a_start_failure(tmp_path: Path, cache: Path) -> None:
    before = "import threading\nthreading.Timer(1.5, os._exit, [3]).start()\n"
    project, files = python_project(tmp_path, route="/not-yet", before=before)
    start = only(run(files, project, cache, health_timeout_s=10.0), "SMOKE-START")
    assert "`python app.py` exited with code 3 after port 8000 opened" in start.message


def test_crash_after_the_health_check_passed_is_a_start_failure(tmp_path: Path, cache: Path) -> None:
    """A pre-forking server binds its port before its workers load the app, and exits when they
    cannot: the app must still run a moment after its health check passed."""
    before = "import threading\nthreading.Timer(1.0, os._exit, [3]).start()\n"
    project, files = python_project(tmp_path, before=before)
    start = only(run(files, project, cache, settle_s=3.0), "SMOKE-START")
    assert "exited with code 3 3s after its health check passed" in start.message


TCP_CHECK = (
    'HEALTHCHECK CMD ["python", "-c", '
    "\"import socket; socket.create_connection(('127.0.0.1', 8000), timeout=4).close()\"]"
)


def test_a_tcp_check_needs_an_http_answer_behind_the_port(tmp_path: Path, cache: Path) -> None:
    """Connecting proves little: GET / must get an HTTP answer (any status), reported when it does."""
    project, files = python_project(tmp_path, route="/")
    dockerfile = re.sub(r"HEALTHCHECK [^\n]*\\\n[^\n]*\\\n[^\n]*\n", TCP_CHECK + "\n", files["Dockerfile"])
    assert TCP_CHECK in dockerfile
    passed = only(run({**files, "Dockerfile": dockerfile}, project, cache), "SMOKE-PASSED")
    assert "GET / -> 200 OK" in passed.message
    (project / "app.py").write_text(
        "import os, socket\n"
        "server = socket.create_server(('0.0.0.0', int(os.environ['PORT'])))\n"
        "while True:\n    server.accept()[0].close()\n"
    )
    health = only(run({**files, "Dockerfile": dockerfile}, project, cache), "SMOKE-HEALTH")
    assert "port 8000 accepts connections but GET / gets no answer" in health.message
    # A 5xx is an answer: reported with the error the app logged, dummies masked.
    (project / "app.py").write_text(
        "import os, sys\nfrom http.server import BaseHTTPRequestHandler, HTTPServer\n"
        "class Fail(BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        print('KeyError:', repr(open('/run/secrets/api_key').read()), file=sys.stderr, flush=True)\n"
        "        self.send_response(500)\n        self.end_headers()\n"
        "    def log_message(self, *args):\n        pass\n"
        "HTTPServer(('0.0.0.0', int(os.environ['PORT'])), Fail).serve_forever()\n"
    )
    passed = only(run({**files, "Dockerfile": dockerfile}, project, cache), "SMOKE-PASSED")
    assert "GET / -> 500 Internal Server Error (the app logged: KeyError: '[dummy]')" in passed.message


def test_node_app_passes(tmp_path: Path, cache: Path) -> None:
    project, files = node_project(tmp_path)
    findings = run(files, project, cache)
    assert failing(findings) == []
    assert "health check `GET http://127.0.0.1:3000/healthz` passed" in only(findings, "SMOKE-PASSED").message


def test_node_app_without_its_secret_fails_the_start(tmp_path: Path, cache: Path) -> None:
    project, files = node_project(
        tmp_path, before='if (!process.env.JWT_SECRET) throw new Error("JWT_SECRET is required");'
    )
    start = only(run(files, project, cache), "SMOKE-START")
    assert (
        "`node server.js` exited with code 1" in start.message and "JWT_SECRET is required" in start.message
    )


def test_go_project_is_skipped_with_the_reason(tmp_path: Path, cache: Path) -> None:
    if shutil.which("go"):
        pytest.skip("a go toolchain is installed here")
    project = tmp_path / "project"
    project.mkdir()
    (project / "go.mod").write_text("module example.com/fixture\n\ngo 1.23\n")
    dockerfile = (
        "FROM golang:1.23.4-bookworm AS builder\nWORKDIR /src\nCOPY go.mod ./\nRUN go mod download\n"
        "COPY . .\nRUN go build -o /out/server .\n\n"
        "FROM alpine:3.21.0 AS runtime\nCOPY --from=builder /out/server /app/server\n"
        'EXPOSE 8080\nCMD ["/app/server"]\n'
    )
    findings = run({"Dockerfile": dockerfile}, project, cache)
    skipped = only(findings, "SMOKE-SKIPPED")
    assert skipped.severity.value == "info"
    assert skipped.message == (
        "smoke boot skipped: stage builder (golang:1.23.4-bookworm): no go toolchain on this machine"
    )
    assert failing(findings) == []


def test_without_root_the_boot_is_skipped_saying_why(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As an unprivileged user (a QA container's uid 10001): an INFO skip naming why, no crash."""
    from agents.qa.smoke import run as smoke_run

    monkeypatch.setattr(smoke_run.os, "geteuid", lambda: 10001)
    project, files = python_project(tmp_path)
    findings = run(files, project, cache)
    skipped = only(findings, "SMOKE-SKIPPED")
    assert skipped.message == (
        "smoke boot skipped: the sandbox cannot be set up here (it needs root and overlayfs): "
        "running as uid 10001, not root"
    )
    assert failing(findings) == []


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


BACKING = """\
  db:
    image: postgres:16.6-bookworm
    environment: {POSTGRES_DB: app, POSTGRES_USER: app}
  cache:
    image: redis:7.4.1-alpine
"""


def test_backing_services_are_the_machines_own(tmp_path: Path, cache: Path) -> None:
    if not (_listening(5432) and _listening(6379)):
        pytest.skip("needs the machine's PostgreSQL on 5432 and Redis on 6379")
    # The app reaches both by their compose names at start (else it exits), as in its compose network.
    before = (
        "import socket\n"
        "socket.create_connection(('db', 5432), timeout=5).close()\n"
        "redis = socket.create_connection(('cache', 6379), timeout=5)\n"
        "redis.sendall(b'PING\\r\\n')\n"
        "assert redis.recv(16).startswith(b'+PONG'), 'no redis'\n"
    )
    project, files = python_project(tmp_path, before=before, backing=BACKING)
    findings = run(files, project, cache)
    assert failing(findings) == [], [f.message for f in findings]
    only(findings, "SMOKE-PASSED")


def test_backing_service_missing_here_skips_with_the_reason(tmp_path: Path, cache: Path) -> None:
    if _listening(27017):
        pytest.skip("a MongoDB answers here")
    project, files = python_project(tmp_path, backing="  mongo:\n    image: mongo:7.0\n")
    skipped = only(run(files, project, cache), "SMOKE-SKIPPED")
    assert "runs mongo (mongo:7.0) and no mongodb server answers on 127.0.0.1:27017" in skipped.message


def _cached(findings: list[Finding]) -> tuple[int, int]:
    match = re.search(r"\((\d+) steps, (\d+) from cache\)", only(findings, "SMOKE-PASSED").message)
    assert match, findings
    return int(match[1]), int(match[2])


def test_second_run_reuses_the_install(tmp_path: Path, cache: Path) -> None:
    """One fixture installs a small PyPI package: the second run takes the install from the cache."""
    project, files = python_project(tmp_path, requirements="six==1.16.0\n", before="import six\n")
    first = run(files, project, cache)
    second = run(files, project, cache)
    steps, cold = _cached(first)
    _, warm = _cached(second)
    # Every RUN and COPY --from is reused; only the two COPYs of the project run again.
    assert warm == steps - 2 and warm > cold
