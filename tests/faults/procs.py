"""Agents as OS processes (`orchestra agent NAME`), as a container runs them: start, wait ready, kill.

Each process gets its settings from ORCHESTRA_* variables (BusConfig.from_env, AgentSettings.from_env),
its own health port (readiness is polled, never slept on) and its own log file.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from bus.embedded import free_port

BIN = Path(sys.executable).parent
ORCHESTRA = str(BIN / "orchestra")
ROOT = Path(__file__).resolve().parents[2]

# Short delivery timings: a killed agent's message comes back within a couple of seconds.
FAST_ENV = {
    "ORCHESTRA_ACK_WAIT_S": "2",
    "ORCHESTRA_MAX_DELIVER": "6",
    "ORCHESTRA_NAK_DELAYS_S": "0.1,0.3,0.5",
    "ORCHESTRA_FETCH_TIMEOUT_S": "0.3",
    "ORCHESTRA_PUBLISH_TIMEOUT_S": "2",
    "ORCHESTRA_SWEEP_INTERVAL_S": "0.5",
    # The fault suite is about delivery, not apps: no smoke boot (an install and a start per task).
    "ORCHESTRA_SMOKE_BOOT": "false",
    # Every process of one deployment shares the id key: replicas derive the same follow-up ids.
    "ORCHESTRA_ID_KEY": "fault-tests-shared-id-key-0123456789",
}


def provision(url: str, env: dict[str, str] | None = None) -> None:
    """`orchestra provision` against ``url``, as a deployment runs it before its agents (which only
    bind to the streams and wait until they exist)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRA_") and k != "NATS_URL"}
    done = subprocess.run(
        [ORCHESTRA, "provision", "--nats-url", url, "--connect-wait", "30"],
        cwd=ROOT,
        env={**base, **FAST_ENV, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


class AgentProcess:
    """One ``orchestra agent NAME`` process (or a crashing variant, see crashing_agent.py)."""

    def __init__(
        self,
        name: str,
        url: str,
        workdir: Path,
        *,
        env: dict[str, str] | None = None,
        crash: str | None = None,
        tag: str = "",
    ) -> None:
        self.name = name
        self.url = url
        self.workdir = workdir
        self.port = free_port()
        self.tag = tag or name
        self.log_path = workdir / "logs" / f"{self.tag}-{self.port}.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRA_") and k != "NATS_URL"},
            **FAST_ENV,
            "ORCHESTRA_WORKSPACE": str(workdir / "workspace"),
            "ORCHESTRA_KNOWLEDGE_DB": str(workdir / "knowledge.sqlite3"),
            "ORCHESTRA_HTTP_PORT": str(self.port),
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        }
        self.crash = crash
        self.proc: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        if self.crash:
            return [sys.executable, "-m", "tests.faults.crashing_agent", self.crash, self.name, self.url]
        return [ORCHESTRA, "agent", self.name, "--nats-url", self.url, "--connect-wait", "30"]

    def start(self) -> AgentProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv(), cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        log.close()
        return self

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    async def wait_ready(self, within: float = 60.0) -> AgentProcess:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not await asyncio.to_thread(self.ready):
            if self.exited is not None:
                raise AssertionError(f"{self.tag} exited with {self.exited}: {self.log_tail()}")
            if loop.time() > deadline:
                raise AssertionError(f"{self.tag} not ready after {within}s: {self.log_tail()}")
            await asyncio.sleep(0.1)
        return self

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """The process's Prometheus samples: (name, sorted labels) -> value."""
        from prometheus_client.parser import text_string_to_metric_families

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    @property
    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    async def stop(self, within: float = 20.0) -> int | None:
        """SIGTERM (graceful drain), then SIGKILL if it does not end in time; returns the exit code."""
        if self.proc is None:
            return None
        self.kill(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self.proc.wait, within)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            return await asyncio.to_thread(self.proc.wait)

    async def wait_exit(self, within: float) -> int:
        assert self.proc is not None
        try:
            return await asyncio.to_thread(self.proc.wait, within)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.tag} still running after {within}s: {self.log_tail()}") from None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class Fleet:
    """Several agent processes sharing one server, workspace and knowledge file."""

    def __init__(self, url: str, workdir: Path, **common: Any) -> None:
        self.url = url
        self.workdir = workdir
        self.common = common
        self.procs: list[AgentProcess] = []
        self.provisioned = False
        (workdir / "workspace").mkdir(parents=True, exist_ok=True)

    def add(self, name: str, **kwargs: Any) -> AgentProcess:
        if not self.provisioned:
            provision(self.url, self.common.get("env"))
            self.provisioned = True
        proc = AgentProcess(name, self.url, self.workdir, **{**self.common, **kwargs}).start()
        self.procs.append(proc)
        return proc

    async def start(self, names: list[str], replicas: int = 1) -> list[AgentProcess]:
        started = [self.add(name, tag=f"{name}-{i}") for name in names for i in range(replicas)]
        await asyncio.gather(*(p.wait_ready() for p in started))
        return started

    async def stop(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.procs))
