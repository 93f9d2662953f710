"""The smoke boot's pure parts: Dockerfile reading, .dockerignore, the build context, the start-up
environment from compose, the engine decision and plan, findings. No sandbox, no processes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agents.qa.smoke import report, toolchains
from agents.qa.smoke.build import config_of, needed
from agents.qa.smoke.context import BuildContext, CopyError
from agents.qa.smoke.dockerfile import DockerfileError, env_pairs, expand, parse, split_words
from agents.qa.smoke.engine import Start, detect, plan
from agents.qa.smoke.environment import app_config
from agents.qa.smoke.ignore import DockerIgnore

MULTI = """\
# syntax=docker/dockerfile:1
# escape=\\
ARG BASE=python:3.12-slim
FROM ${BASE} AS builder
ENV A=1 \\
    # a comment inside a continued instruction is dropped
    PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY requirements.txt ./
RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt

FROM builder AS test
CMD ["pytest"]

FROM python:3.12-slim AS runtime
ENV PORT=8000
WORKDIR /app
COPY --from=builder --chown=10001:10001 /opt/venv /opt/venv
USER 10001:10001
EXPOSE 8000/tcp
HEALTHCHECK --interval=30s --timeout=5s \\
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"]
CMD ["uvicorn", "app:app"]
"""


def test_parse_reads_stages_flags_and_continuations() -> None:
    dockerfile = parse(MULTI)
    assert [s.name for s in dockerfile.stages] == ["builder", "test", "runtime"]
    assert dockerfile.global_args == [("BASE", "python:3.12-slim")]
    builder = dockerfile.stages[0]
    env = builder.instructions[0]
    assert env.keyword == "ENV" and "comment" not in env.args and env.line == 5
    run = builder.instructions[-1]
    assert run.flag("mount") == "type=cache,target=/root/.cache/pip"
    assert run.args == "pip install -r requirements.txt"
    assert dockerfile.target().name == "runtime"
    assert dockerfile.target("test").refers_to("1")


def test_parse_refuses_what_it_cannot_read() -> None:
    with pytest.raises(DockerfileError, match="no FROM"):
        parse("# only a comment\n")
    with pytest.raises(DockerfileError, match="line 1: RUN before the first FROM"):
        parse("RUN true\nFROM scratch\n")
    with pytest.raises(DockerfileError, match="heredoc"):
        parse("FROM scratch\nRUN <<EOF\necho\nEOF\n")
    with pytest.raises(DockerfileError, match="no stage named 'prod'"):
        parse("FROM scratch AS app\n").target("prod")


def test_words_and_variables_follow_docker() -> None:
    env = {"HOME": "/root", "EMPTY": ""}
    assert split_words("a 'b c' \"$HOME/x\" '$HOME' d\\ e", env) == ["a", "b c", "/root/x", "$HOME", "d e"]
    assert expand("${EMPTY:-fallback} ${HOME:+set} ${MISSING}x", env) == "fallback set x"
    assert env_pairs('A=1 B="two words" C=$HOME', env) == [("A", "1"), ("B", "two words"), ("C", "/root")]
    assert env_pairs("LEGACY value with spaces", env) == [("LEGACY", "value with spaces")]


def test_config_of_the_runtime_stage() -> None:
    dockerfile = parse(MULTI)
    image = config_of(dockerfile, dockerfile.target())
    assert image.argv() == ["uvicorn", "app:app"]
    assert image.expose == (8000,) and image.user == "10001:10001" and image.workdir == "/app"
    assert image.health_url() == "http://127.0.0.1:8000/health"
    entry = parse('FROM python:3 AS a\nCMD ["x"]\nFROM a\nENTRYPOINT ["/bin/serve"]\n')
    assert config_of(entry, entry.target()).argv() == ["/bin/serve"]  # a new ENTRYPOINT drops the CMD


def test_only_the_stages_the_target_needs_are_built() -> None:
    dockerfile = parse(MULTI)
    assert [s.name for s in needed(dockerfile, dockerfile.target())] == ["builder", "runtime"]
    assert [s.name for s in needed(dockerfile, dockerfile.target("test"))] == ["builder", "test"]


def test_dockerignore_rules() -> None:
    ignore = DockerIgnore("# comment\nnode_modules\n**/*.pyc\n.env*\nsecrets\n!secrets/README.md\n/build\n")
    assert ignore.excluded("node_modules/x/index.js")  # a parent directory matches
    assert ignore.excluded("a/b/c.pyc") and ignore.excluded("c.pyc")
    assert ignore.excluded(".env.local") and not ignore.excluded("app/.env.example.txt")
    assert ignore.excluded("secrets/key") and not ignore.excluded("secrets/README.md")
    assert ignore.excluded("build/out.js") and not ignore.excluded("src/build.js")


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "requirements").mkdir(parents=True)
    (project / "requirements.txt").write_text("-r requirements/base.txt\n")
    (project / "requirements" / "base.txt").write_text("six\n")
    (project / "app.py").write_text("print('hi')\n")
    (project / ".env").write_text("SECRET=real\n")
    return project


def test_context_copies_exactly_what_a_copy_names(tmp_path: Path) -> None:
    project = _project(tmp_path)
    context = BuildContext(project, {".dockerignore": ".env\nDockerfile\n", "Dockerfile": "FROM scratch\n"})
    staged = context.stage(["requirements.txt"], "./", tmp_path / "one")
    assert sorted(p.name for p in staged.root.iterdir()) == ["requirements.txt"]  # not requirements/base.txt
    assert staged.single_file is None  # "./" is a folder
    whole = context.stage(["."], "/app/", tmp_path / "all")
    names = sorted(str(p.relative_to(whole.root)) for p in whole.root.rglob("*"))
    assert names == [".dockerignore", "app.py", "requirements", "requirements.txt", "requirements/base.txt"]
    again = context.stage(["."], "/app/", tmp_path / "again")
    assert again.digest == whole.digest  # the digest names content, not where it was staged
    with pytest.raises(CopyError, match="missing, or excluded"):
        context.stage([".env"], "./", tmp_path / "secret")
    assert context.stage(["requirement*.txt"], "app.txt", tmp_path / "glob").single_file == "requirements.txt"


COMPOSE = """\
name: svc
services:
  app:
    build: {context: ., target: runtime}
    env_file: [{path: .env, required: false}, {path: config.env, required: true}]
    environment:
      PORT: '8000'
      LOG_LEVEL: ${LOG_LEVEL:-info}
      REQUIRED: ${MUST:?set it}
    secrets: [database_url, {source: api_key, target: /run/secrets/API}]
  db:
    image: postgres:16.6-bookworm
    environment: {POSTGRES_DB: app, POSTGRES_USER: app}
  cache:
    image: docker.io/library/redis:7.4
secrets:
  database_url: {file: ./secrets/database_url}
  api_key: {file: ./secrets/api_key}
"""


def test_app_config_follows_the_compose_file() -> None:
    config = app_config(
        {"docker-compose.yml": COMPOSE, "config.env": "FEATURE=on\n"}, ["DATABASE_URL", "API_KEY"]
    )
    assert config.target == "runtime"
    assert (
        config.env["PORT"] == "8000" and config.env["LOG_LEVEL"] == "info" and config.env["FEATURE"] == "on"
    )
    assert config.env["REQUIRED"].startswith("smoke-dummy-")  # a required variable gets a dummy, noted
    assert any("MUST is required" in n for n in config.notes)
    assert [(b.name, b.kind, b.port) for b in config.backing] == [
        ("db", "postgresql", 5432),
        ("cache", "redis", 6379),
    ]
    # Secrets are files, as compose mounts them; a connection secret points at the backing service.
    assert config.secret_files["/run/secrets/database_url"] == "postgresql://app@db:5432/app"
    assert config.secret_files["/run/secrets/API"] in config.dummies
    assert not any(".env" in n for n in config.notes)  # an optional env_file is simply not read


START = """\
services:
  app:
    build: {context: ., target: runtime}
    entrypoint: ["/bin/sh", "-c", "v=\\"$$(cat /run/secrets/k)\\"\\nexec \\"$$@\\"", "--"]
    command: node dist/server.js
    volumes: ["uploads:/app/uploads", "./local:/app/local", "/anonymous", {type: volume, target: /data}]
volumes: {uploads: {}}
"""
PRODUCTION = """\
services:
  app:
    image: registry/app:${IMAGE_TAG:?set}
    read_only: true
    tmpfs: [/tmp]
    volumes: ["uploads:/app/uploads"]
"""


def test_app_config_starts_the_app_as_compose_does() -> None:
    """The service's entrypoint (the secrets shim, $$ unescaped) and command replace the image's;
    named and anonymous volumes are writable mounts, host binds are not read; the production
    file's read-only root and tmpfs apply."""
    config = app_config({"docker-compose.yml": START, "docker-compose.prod.yml": PRODUCTION}, [])
    assert config.entrypoint == ("/bin/sh", "-c", 'v="$(cat /run/secrets/k)"\nexec "$@"', "--")
    assert config.command == ("node", "dist/server.js")
    assert config.argv(("docker-entrypoint.sh",), ("node", "index.js")) == [
        *config.entrypoint,
        "node",
        "dist/server.js",
    ]
    assert config.volumes == ("/anonymous", "/app/uploads", "/data")
    assert config.read_only and config.tmpfs == ("/tmp",)
    assert any("read-only, as in production (writable: /tmp, /anonymous" in n for n in config.notes)
    plain = app_config({"docker-compose.yml": COMPOSE}, [])
    assert plain.entrypoint is None and plain.command is None and not plain.read_only
    # Without compose entrypoint/command the image's own apply (an ENTRYPOINT keeps its CMD).
    assert plain.argv(("tini", "--"), ("node", "index.js")) == ["tini", "--", "node", "index.js"]


def test_app_config_without_compose_gives_every_variable_a_dummy() -> None:
    config = app_config({"Dockerfile": "FROM scratch\n"}, ["SECRET_KEY", "REDIS_URL"])
    assert config.env["SECRET_KEY"] in config.dummies and config.env["REDIS_URL"] == "http://smoke.invalid/"
    assert config.file is None and config.notes


def test_engine_decision_and_plan(tmp_path: Path) -> None:
    def run(argv: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        if argv[0].endswith("docker"):
            return subprocess.CompletedProcess(
                argv, 1, "", "Cannot connect to the Docker daemon at unix:///x\n"
            )
        return subprocess.CompletedProcess(argv, 0, "5.2.1\n", "")

    assert detect(which=lambda name: None).client is None
    only_docker = detect(which=lambda n: f"/bin/{n}" if n == "docker" else None, run=run)
    assert only_docker.client is None and only_docker.detail.startswith("docker info: Cannot connect")
    both = detect(which=lambda n: f"/bin/{n}", run=run)
    assert both.client == "/bin/podman" and both.detail == "podman 5.2.1"
    steps = plan(
        "/bin/podman", context=tmp_path / "ctx", dockerfile=tmp_path / "Dockerfile", target="runtime",
        tag="t:1", name="n", env_file=tmp_path / "env", secrets={"/run/secrets/k": tmp_path / "k"}, port=8000,
    )  # fmt: skip
    assert steps.build[:2] == ["/bin/podman", "build"] and steps.build[-1] == str(tmp_path / "ctx")
    assert steps.build[steps.build.index("--target") :][:2] == ["--target", "runtime"]
    assert "127.0.0.1::8000" in steps.run and f"{tmp_path / 'k'}:/run/secrets/k:ro" in steps.run
    assert steps.run[-1] == "t:1" and steps.remove == ["/bin/podman", "rm", "--force", "--volumes", "n"]
    # The compose service's start: one-word --entrypoint, the rest of it before the command.
    started = plan(
        "/bin/docker", context=tmp_path, dockerfile=tmp_path / "Dockerfile", target=None, tag="t:1", name="n",
        env_file=tmp_path / "env", secrets={}, port=8000,
        start=Start(("/bin/sh", "-c", 'exec "$@"', "--"), ("node", "server.js"), True, ("/tmp",), ("/data",)),
    )  # fmt: skip
    assert started.run[started.run.index("--entrypoint") + 1] == "/bin/sh"
    assert started.run[started.run.index("t:1") :] == ["t:1", "-c", 'exec "$@"', "--", "node", "server.js"]
    assert "--read-only" in started.run and started.run[started.run.index("--tmpfs") :][:2] == [
        "--tmpfs",
        "/tmp",
    ]
    assert "type=volume,target=/data" in started.run


def test_toolchain_of_an_image(monkeypatch: pytest.MonkeyPatch) -> None:
    assert toolchains.image_name("docker.io/library/python:3.12.8-slim@sha256:ab") == (
        "python",
        "3.12.8-slim",
    )
    assert toolchains.for_image("alpine:3.21.0").family == "os"
    assert "no local stand-in" in (toolchains.for_image("ruby:3.3").missing or "")
    monkeypatch.setattr(toolchains, "_go", lambda wanted: None)
    toolchains._for_image.cache_clear()
    go = toolchains.for_image("golang:1.23.4-bookworm")
    assert go.family == "go" and go.missing == "no go toolchain on this machine"
    toolchains._for_image.cache_clear()


def test_findings_name_the_step_and_mask_dummies() -> None:
    high = report.failed(
        "SMOKE-START", "`node server.js` exited", "token=smoke-dummy-abc\nboom", ["smoke-dummy-abc"]
    )
    assert high.severity.value == "high" and high.rule == "SMOKE-START" and high.file == "Dockerfile"
    assert "smoke-dummy-abc" not in high.message and "[dummy]" in high.message and "boom" in high.message
    assert report.skipped("no go toolchain").message == "smoke boot skipped: no go toolchain"


def test_an_install_refusing_the_stand_in_for_its_version_is_a_skip_not_a_failure() -> None:
    from agents.qa.smoke.run import _refused_stand_in
    from agents.qa.smoke.toolchains import Toolchain

    other = Toolchain(family="python", image="python:3.14-slim", image_version="3.14", version="3.11.7")
    same = Toolchain(family="python", image="python:3.11-slim", image_version="3.11", version="3.11.7")
    uv = "error: The current Python version (3.11.7) is not compatible with the locked Python requirement"
    reason = _refused_stand_in([other], uv)
    assert reason and "install python 3.14 here" in reason
    assert _refused_stand_in([same], uv) is None  # same major.minor: the project's own problem
    assert _refused_stand_in([other], "ERROR: No matching distribution found for nosuchpackage") is None
