"""flags > environment > defaults, command by command, against a real server and knowledge process.

For a command that talks to the bus the default server is the one `orchestra up` runs for the
folder (.orchestra/nats.url); NATS_URL beats it, --nats-url beats both, and ORCHESTRA_* delivery
settings reach every command (a bad one is an error line naming the variable). `agent`, `report`,
`health` and `demo` read agent settings the same way; `up` is covered with real processes in
test_cli_first_run.py. `generate` and `contracts export` read no setting."""

from __future__ import annotations

import asyncio
import http.server
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from agents.cli.main import app
from agents.knowledge.store import KnowledgeStore
from bus.client import OrchestraClient, client_source
from bus.config import BusConfig
from bus.embedded import EmbeddedServer, free_port
from contracts import EventType, new_event, new_id
from contracts.payloads import StatusChanged, TaskRequested
from contracts.vocabulary import DeploymentState
from tests.faults.procs import AgentProcess, provision
from tests.orchestra_fixtures import copy_example

pytestmark = pytest.mark.nats

ORCHESTRA = str(Path(sys.executable).parent / "orchestra")
# Every invocation starts from "nothing configured"; each case adds what it tests.
UNSET = {"NATS_URL": None, "ORCHESTRA_NATS_URL": None}

# command -> (arguments, exit code when it reaches the live server)
BUS_COMMANDS: dict[str, tuple[list[str], int]] = {
    "task": (["task", "Deploy to Kubernetes", "--project", "{project}"], 0),
    "watch": (["watch", "--task", "{task}"], 0),
    "history": (["history", "{task}"], 0),
    "agents": (["agents"], 0),
    "knowledge search": (["knowledge", "search", "", "--task", "{task}"], 0),
    "knowledge store": (["knowledge", "store", "a note", "--type", "edit", "--agent", "qa"], 0),
    "knowledge rebuild": (["knowledge", "rebuild", "--out", "{fresh}"], 0),
    "dlq list": (["dlq", "list"], 0),
    "dlq show": (["dlq", "show", "no-such-letter"], 2),
    "dlq replay": (["dlq", "replay", "no-such-letter"], 2),
}


class World:
    """A live server with a knowledge process, a folder whose .orchestra/nats.url names it, a
    finished task, and a URL where nothing answers."""

    def __init__(self, url: str, folder: Path) -> None:
        self.url = url
        self.folder = folder
        self.dead = f"nats://127.0.0.1:{free_port()}"
        self.project = folder / "project"
        self.project.mkdir()
        (folder / ".orchestra").mkdir()
        (folder / ".orchestra" / "nats.url").write_text(url + "\n")
        self.task = asyncio.run(self._finished_task())
        self.runner = CliRunner()
        self._fresh = 0

    async def _finished_task(self) -> str:
        task_id = new_id()
        async with await OrchestraClient.open(BusConfig(nats_url=self.url)) as client:
            source = client_source()
            request = TaskRequested(text="Deploy", project="project")
            ready = StatusChanged(state=DeploymentState.READY, agent="devops", reason="done")
            for event in (
                new_event(EventType.TASK_REQUESTED, request, task_id=task_id, source=source),
                new_event(EventType.STATUS_CHANGED, ready, task_id=task_id, source=source),
            ):
                await client.bus.publish(event)
        store = await KnowledgeStore.open(self.folder / "knowledge.sqlite3")  # the knowledge process's
        try:
            for _ in range(200):
                if len(await store.events(task_id)) == 2:
                    return task_id
                await asyncio.sleep(0.05)
        finally:
            await store.close()
        raise AssertionError("the knowledge process did not store the seeded task")

    def args(self, command: str) -> tuple[list[str], int]:
        template, live = BUS_COMMANDS[command]
        self._fresh += 1
        fresh = str(self.folder / f"rebuilt-{self._fresh}.sqlite3")
        values = {"{project}": str(self.project), "{task}": self.task, "{fresh}": fresh}
        return [values.get(a, a) for a in template], live

    def invoke(self, args: list[str], env: dict[str, str | None]) -> tuple[int, str]:
        result = self.runner.invoke(app, args, env={**UNSET, **env})
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        return result.exit_code, result.output


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("precedence")
    server = EmbeddedServer(store_dir=tmp / "nats").start()
    provision(server.url)  # as a deployment does before its agents start: they only bind
    knowledge = AgentProcess("knowledge", server.url, tmp).start()
    deadline = time.monotonic() + 60
    while not knowledge.ready():
        assert knowledge.exited is None and time.monotonic() < deadline, knowledge.log_tail()
        time.sleep(0.1)
    try:
        yield World(server.url, tmp)
    finally:
        knowledge.kill()
        server.stop()
        structlog.reset_defaults()  # the commands configured structlog on CliRunner's streams


@pytest.mark.parametrize("command", list(BUS_COMMANDS))
def test_bus_command_takes_flag_over_environment_over_default(
    world: World, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(world.folder)
    args, live = world.args(command)
    # Default: neither flag nor variable -> the orchestra running for this folder.
    code, out = world.invoke(args, {})
    assert code == live, out
    # NATS_URL beats the default.
    code, out = world.invoke(world.args(command)[0], {"NATS_URL": world.dead})
    assert code == 3 and f"cannot reach NATS at {world.dead}" in out, out
    # --nats-url beats NATS_URL.
    code, out = world.invoke([*world.args(command)[0], "--nats-url", world.url], {"NATS_URL": world.dead})
    assert code == live, out
    # ORCHESTRA_* bus settings reach the command; a bad one is one line naming it.
    code, out = world.invoke(world.args(command)[0], {"ORCHESTRA_PUBLISH_ATTEMPTS": "none"})
    assert code == 2 and out.strip().splitlines()[-1].startswith(
        "error: invalid setting ORCHESTRA_PUBLISH_ATTEMPTS='none'"
    ), out


def _agent(world: World, *args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    clean = {k: v for k, v in os.environ.items() if k != "NATS_URL" and not k.startswith("ORCHESTRA_")}
    return subprocess.Popen(
        [ORCHESTRA, "agent", "knowledge", *args],
        cwd=world.folder,
        env={**clean, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


def _wait_ready(proc: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 60
    while not _ready(port):
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> int:
    proc.terminate()
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def test_agent_takes_flag_over_environment_over_default(world: World, tmp_path: Path) -> None:
    """`orchestra agent` (the container entrypoint): ORCHESTRA_* agent settings apply, --nats-url
    beats NATS_URL, NATS_URL beats the folder's running orchestra, which is the default."""
    port = free_port()
    settings = {"ORCHESTRA_HTTP_PORT": str(port), "ORCHESTRA_KNOWLEDGE_DB": str(tmp_path / "k.sqlite3")}
    for args, env in (
        ((), settings),  # default: .orchestra/nats.url
        (("--nats-url", world.url), {**settings, "NATS_URL": world.dead}),
    ):
        proc = _agent(world, *args, env=env)
        try:
            _wait_ready(proc, port)
            assert (tmp_path / "k.sqlite3").is_file()
        finally:
            assert _stop(proc) == 0
    proc = _agent(world, "--connect-wait", "0.5", env={**settings, "NATS_URL": world.dead})
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3 and f"cannot reach NATS at {world.dead}" in err.decode()


async def _store_with_one_task(path: Path) -> None:
    store = await KnowledgeStore.open(path)
    try:
        task_id, source = new_id(), client_source()
        ready = StatusChanged(state=DeploymentState.READY, agent="devops")
        await store.add_batch(
            [
                new_event(
                    EventType.TASK_REQUESTED,
                    TaskRequested(text="Deploy", project="p"),
                    task_id=task_id,
                    source=source,
                ),
                new_event(EventType.STATUS_CHANGED, ready, task_id=task_id, source=source),
            ]
        )
    finally:
        await store.close()


def test_report_takes_flag_over_environment_over_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`orchestra report` used to read only --db or its built-in path, never ORCHESTRA_KNOWLEDGE_DB."""
    monkeypatch.chdir(tmp_path)
    asyncio.run(_store_with_one_task(tmp_path / ".orchestra" / "knowledge.sqlite3"))
    asyncio.run(_store_with_one_task(tmp_path / "flag.sqlite3"))
    runner = CliRunner()
    unset = {"ORCHESTRA_KNOWLEDGE_DB": None}
    assert runner.invoke(app, ["report"], env=unset).exit_code == 0  # the default file
    missing = str(tmp_path / "env.sqlite3")
    by_env = runner.invoke(app, ["report"], env={"ORCHESTRA_KNOWLEDGE_DB": missing})
    assert by_env.exit_code == 2 and f"no knowledge store at {missing!r}" in by_env.output
    by_flag = runner.invoke(
        app, ["report", "--db", str(tmp_path / "flag.sqlite3")], env={"ORCHESTRA_KNOWLEDGE_DB": missing}
    )
    assert by_flag.exit_code == 0, by_flag.output


class _Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/readyz" else 404)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


def test_health_takes_flag_over_environment_over_default() -> None:
    """`orchestra health` probed :8080 whatever ORCHESTRA_HTTP_PORT said."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _Ready)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        runner = CliRunner()
        assert runner.invoke(app, ["health"], env={"ORCHESTRA_HTTP_PORT": str(port)}).exit_code == 0
        dead = f"http://127.0.0.1:{free_port()}/readyz"
        flagged = runner.invoke(app, ["health", "--url", dead], env={"ORCHESTRA_HTTP_PORT": str(port)})
        assert flagged.exit_code == 1 and dead in flagged.output
        default = runner.invoke(app, ["health"], env={"ORCHESTRA_HTTP_PORT": None})
        assert default.exit_code == 0 or "http://127.0.0.1:8080/readyz" in default.output
    finally:
        server.shutdown()
        server.server_close()


def test_demo_takes_agent_settings_from_the_environment(tmp_path: Path) -> None:
    """`orchestra demo` (make run) fixed the knowledge file, so ORCHESTRA_KNOWLEDGE_DB was ignored."""
    project = copy_example("fastapi-service", tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "NATS_URL" and not k.startswith("ORCHESTRA_")}
    env["ORCHESTRA_KNOWLEDGE_DB"] = str(tmp_path / "from-env.sqlite3")
    done = subprocess.run(
        [ORCHESTRA, "demo", "--project", project, "--timeout", "120"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "from-env.sqlite3").is_file()
    assert not (tmp_path / ".orchestra" / "knowledge.sqlite3").exists()
