"""The deployment as processes: the deploy/nats configuration, and every agent as its own OS process
with exactly the command and environment deploy/docker-compose.yml gives its container (container
paths mapped to temp dirs, the HTTP port to a free one). The agents start before the streams exist
and wait, not ready; the compose `provision` one-shot creates them as the provisioner user; then
a task goes to `ready` through `orchestra task --wait` as the client user; then with two replicas
of every worker; then on the 3-node cluster from deploy/nats/cluster with R3 streams while one
node is killed mid-flow.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import yaml

from bus.embedded import free_port
from contracts.subjects import ROUTES
from deploy.nats import local
from deploy.nats.render_auth import CLIENT, password_env

pytestmark = [pytest.mark.nats, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
ORCHESTRA = Path(sys.executable).parent / "orchestra"
COMPOSE = ROOT / "deploy/docker-compose.yml"
TASK = "Containerize the Python FastAPI application"
_VAR = re.compile(r"^\$\{([A-Z0-9_]+)(?::\?[^}]*)?\}$")


def compose_agent(name: str) -> tuple[list[str], dict[str, str]]:
    service = yaml.safe_load(COMPOSE.read_text())["services"][name]
    return list(service["command"]), {k: str(v) for k, v in service["environment"].items()}


class Agents:
    """Agent processes started as compose would start their containers."""

    def __init__(self, tmp: Path, passwords: Mapping[str, str], nats_url: str, **env_overrides: str) -> None:
        self.tmp = tmp
        # compose's `${VAR:?...}` values: the NATS passwords and the deployment's shared id key.
        self.passwords = {**passwords, "ORCHESTRA_ID_KEY": secrets.token_hex(32)}
        self.nats_url = nats_url
        self.overrides = env_overrides
        self.workspace = tmp / "workspace"
        self.workspace.mkdir(exist_ok=True)
        self.procs: list[tuple[str, subprocess.Popen[bytes], int]] = []

    def environment(self, name: str, index: int) -> tuple[list[str], dict[str, str], int]:
        command, env = compose_agent(name)
        port = free_port()
        resolved: dict[str, str] = {}
        for key, value in env.items():
            if m := _VAR.match(value):
                value = self.passwords[m[1]]
            if value.startswith("/workspace"):
                value = str(self.workspace) + value.removeprefix("/workspace")
            elif value.startswith("/data"):
                data = self.tmp / f"data-{name}-{index}"
                data.mkdir(exist_ok=True)
                value = str(data) + value.removeprefix("/data")
            resolved[key] = value
        resolved["NATS_URL"] = self.nats_url
        resolved["ORCHESTRA_HTTP_PORT"] = str(port)
        resolved["ORCHESTRA_SMOKE_BOOT"] = "false"  # the processes test the deployment, not the apps
        resolved.update(self.overrides)
        return command, resolved, port

    def start(self, name: str, index: int = 0) -> None:
        command, env, port = self.environment(name, index)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRA_", "NATS_"))}
        log = (self.tmp / f"{name}-{index}.log").open("wb")
        proc = subprocess.Popen(
            [str(ORCHESTRA), *command],
            env={**base, **env},
            cwd=self.tmp,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append((f"{name}-{index}", proc, port))

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        for label, proc, port in self.procs:
            while True:
                assert proc.poll() is None, f"{label} exited {proc.returncode}: {self.log(label)}"
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    pass
                assert time.monotonic() < deadline, f"{label} not ready: {self.log(label)}"
                time.sleep(0.2)

    def log(self, label: str) -> str:
        return (self.tmp / f"{label}.log").read_text(errors="replace")[-3000:]

    def wait_waiting_for_provisioning(self, timeout_s: float = 60.0) -> None:
        """Every agent started and says the streams are missing; none is ready."""
        deadline = time.monotonic() + timeout_s
        for label, proc, port in self.procs:
            while "bus.not_provisioned" not in self.log(label):
                assert proc.poll() is None, f"{label} exited {proc.returncode}: {self.log(label)}"
                assert time.monotonic() < deadline, (
                    f"{label} does not say what it waits for: {self.log(label)}"
                )
                time.sleep(0.2)
            with pytest.raises(OSError):  # 503 (urllib raises HTTPError, an OSError) or no answer
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)

    def provision(self) -> None:
        """The compose `provision` one-shot, as a process: it must end with exit 0."""
        command, env, _ = self.environment("provision", 0)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRA_", "NATS_"))}
        done = subprocess.run(
            [str(ORCHESTRA), *command],
            env={**base, **env},
            cwd=self.tmp,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "ORCHESTRA_EVENTS" in done.stdout

    def stop(self) -> None:
        for _, proc, _ in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc, _ in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def run_task(self, timeout_s: float = 150.0) -> subprocess.CompletedProcess[str]:
        project = self.workspace / "fastapi-service"
        if not project.exists():
            shutil.copytree(
                ROOT / "examples/fastapi-service", project, ignore=shutil.ignore_patterns("__pycache__")
            )
        out = f"out-{time.monotonic_ns()}"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRA_", "NATS_"))}
        env = {
            **base,
            "ORCHESTRA_USER": CLIENT,
            "ORCHESTRA_PASSWORD": self.passwords[password_env(CLIENT)],
            "ORCHESTRA_INBOX_PREFIX": f"_INBOX_{CLIENT}",
            **{k: v for k, v in self.overrides.items() if k == "ORCHESTRA_REPLICAS"},
        }
        cmd = [str(ORCHESTRA), "task", TASK, "--project", "fastapi-service", "--output", out]
        cmd += ["--nats-url", self.nats_url, "--wait", "--timeout", str(timeout_s)]
        return subprocess.run(
            cmd, cwd=self.workspace, env=env, capture_output=True, text=True, timeout=timeout_s + 30
        )


def wait_stored(tmp_path: Path, task_ids: list[str], timeout_s: float = 20.0) -> None:
    """The knowledge subscriber commits in batches: wait until it holds each task's completion."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        dbs = list(tmp_path.glob("data-knowledge-0/*.sqlite3"))
        if dbs:
            with contextlib.closing(sqlite3.connect(dbs[0])) as conn:
                rows = conn.execute("SELECT DISTINCT task_id FROM events WHERE kind = 'completion'")
                done = {r[0] for r in rows}
            if done >= set(task_ids):
                return
        time.sleep(0.2)


@pytest.fixture
def single(tmp_path: Path) -> Iterator[tuple[local.LocalNats, dict[str, str]]]:
    passwords = local.random_passwords()
    server = local.single(tmp_path, passwords).start()
    yield server, passwords
    server.stop()


@pytest.mark.parametrize("replicas", [1, 2])
def test_compose_agents_as_processes_take_a_task_to_ready(single, tmp_path: Path, replicas: int) -> None:
    server, passwords = single
    agents = Agents(tmp_path, passwords, server.url)
    try:
        for name in ROUTES:
            # The knowledge subscriber is one per SQLite file; workers scale out.
            for index in range(1 if name == "knowledge" else replicas):
                agents.start(name, index)
        agents.wait_waiting_for_provisioning()
        agents.provision()
        agents.wait_ready()
        task_ids = []
        for _ in range(2 if replicas > 1 else 1):
            result = agents.run_task()
            assert result.returncode == 0, result.stdout + result.stderr
            assert "ready" in result.stdout
            task_ids.append(result.stdout.split()[0])
        wait_stored(tmp_path, task_ids)
    finally:
        agents.stop()
    for label, proc, _ in agents.procs:
        assert proc.returncode == 0, f"{label} did not stop cleanly: {agents.log(label)}"
    # Each task handled once, however many replicas shared the durables.
    [db] = list(tmp_path.glob("data-knowledge-0/*.sqlite3"))
    with sqlite3.connect(db) as conn:
        for task_id in task_ids:
            counts = dict(
                conn.execute("SELECT type, count(*) FROM events WHERE task_id = ? GROUP BY type", (task_id,))
            )
            for once in ("requirement.issued", "credential.issued", "artifact_set.completed", "report.qa"):
                assert counts.get(once) == 1, (task_id, counts)
            assert counts.get("report.security") == 1, (task_id, counts)


def test_three_node_cluster_with_r3_streams_survives_losing_a_node(tmp_path: Path) -> None:
    passwords = local.random_passwords()
    nodes = local.cluster(tmp_path / "nats", passwords)
    for node in nodes:
        node.start(wait=False)
    agents = Agents(tmp_path, passwords, ",".join(n.url for n in nodes), ORCHESTRA_REPLICAS="3")
    try:
        for node in nodes:
            node.wait_healthy()
        agents.provision()
        for name in ROUTES:
            agents.start(name)
        agents.wait_ready(timeout_s=90)
        first = agents.run_task()
        assert first.returncode == 0, first.stdout + first.stderr
        # Kill a node (SIGKILL: a crash) while the next task is in flight.
        project = agents.workspace / "fastapi-service"
        assert project.exists()
        base = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRA_", "NATS_"))}
        env = {
            **base,
            "ORCHESTRA_USER": CLIENT,
            "ORCHESTRA_PASSWORD": passwords[password_env(CLIENT)],
            "ORCHESTRA_REPLICAS": "3",
        }
        cmd = [str(ORCHESTRA), "task", TASK, "--project", "fastapi-service", "--output", "out-killed"]
        cmd += ["--nats-url", ",".join(n.url for n in nodes[:2]), "--wait", "--timeout", "150"]
        task = subprocess.Popen(
            cmd, cwd=agents.workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        time.sleep(1.0)
        nodes[2].stop(kill=True)
        stdout, stderr = task.communicate(timeout=200)
        assert task.returncode == 0, stdout + stderr
        assert "ready" in stdout
    finally:
        agents.stop()
        for node in nodes:
            node.stop()
