"""Run the deploy/nats configurations as they are, on loopback: for tests and a local try-out.

The configuration files are staged into a work directory with only what a machine changes:
host addresses (to 127.0.0.1), port numbers (to free ones) and JetStream store directories.
Everything else — users, permissions, limits, cluster routes — is the committed file.

``python -m deploy.nats.local`` runs the single-node server with fresh random passwords and
prints them, so the orchestra can be tried against the secured configuration without Docker.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from bus.embedded import find_nats_server, free_port, stop_process, wait_until_healthy
from deploy.nats.render_auth import users

NATS_DIR = Path(__file__).resolve().parent
SINGLE = NATS_DIR / "nats-server.conf"
CLUSTER = [NATS_DIR / "cluster" / f"node-{n}.conf" for n in (1, 2, 3)]

_PORT = re.compile(r'"(?:0\.0\.0\.0|127\.0\.0\.1):(\d+)"|nats-route://127\.0\.0\.1:(\d+)')
_STORE = re.compile(r'store_dir: "([^"]+)"')


def random_passwords() -> dict[str, str]:
    """A fresh password per user, keyed by its environment variable.

    A letter first, then hex: nats-server parses a variable's value like a config value.
    """
    return {u.password_env: "p" + secrets.token_hex(24) for u in users()}


def config_ports(conf: Path) -> list[int]:
    """The port numbers a configuration file listens on or routes to, in order of appearance."""
    found = (int(a or b) for a, b in _PORT.findall(conf.read_text(encoding="utf-8")))
    return list(dict.fromkeys(found))


def stage(confs: list[Path], work_dir: Path, ports: Mapping[int, int]) -> list[Path]:
    """Copy deploy/nats into ``work_dir``, rewrite addresses, ports and store dirs; return the configs."""
    staged_root = work_dir / "nats"
    shutil.copytree(NATS_DIR, staged_root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    out = []
    for conf in confs:
        target = staged_root / conf.relative_to(NATS_DIR)
        text = target.read_text(encoding="utf-8").replace('"0.0.0.0:', '"127.0.0.1:')
        text = re.sub(r"127\.0\.0\.1:(\d+)", lambda m: f"127.0.0.1:{ports.get(int(m[1]), int(m[1]))}", text)
        store = work_dir / "store" / conf.stem
        text = _STORE.sub(f'store_dir: "{store}"', text)
        target.write_text(text, encoding="utf-8")
        out.append(target)
    return out


class LocalNats:
    """One nats-server process running a staged deploy configuration.

    Parameters:
      conf: the staged configuration file (see :func:`stage`).
      env: the password variables (see :func:`random_passwords`); added to this process' env.
      client_port / monitor_port: what the staged file listens on.
    """

    def __init__(self, conf: Path, env: Mapping[str, str], *, client_port: int, monitor_port: int) -> None:
        self.conf = conf
        self.env = dict(env)
        self.client_port = client_port
        self.monitor_port = monitor_port
        self.log_file = conf.with_suffix(".log")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    def start(self, *, wait: bool = True, timeout_s: float = 20.0) -> LocalNats:
        self.process = subprocess.Popen(
            [find_nats_server(), "-c", str(self.conf), "-l", str(self.log_file)],
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if wait:
            self.wait_healthy(timeout_s)
        return self

    def wait_healthy(self, timeout_s: float = 20.0) -> None:
        assert self.process is not None
        wait_until_healthy(self.process, self.monitor_port, timeout_s, name=self.conf.name)

    def stop(self, *, kill: bool = False, timeout_s: float = 15.0) -> None:
        proc, self.process = self.process, None
        stop_process(proc, kill=kill, timeout_s=timeout_s)


def single(work_dir: Path, env: Mapping[str, str]) -> LocalNats:
    """The single-node deploy configuration on free loopback ports (not started)."""
    client, monitor = config_ports(SINGLE)
    ports = {client: free_port(), monitor: free_port()}
    [conf] = stage([SINGLE], work_dir, ports)
    return LocalNats(conf, env, client_port=ports[client], monitor_port=ports[monitor])


def cluster(work_dir: Path, env: Mapping[str, str]) -> list[LocalNats]:
    """The three cluster nodes on free loopback ports, routes rewritten consistently (not started)."""
    all_ports = sorted({p for conf in CLUSTER for p in config_ports(conf)})
    ports = {p: free_port() for p in all_ports}
    staged = stage(CLUSTER, work_dir, ports)
    nodes = []
    for original, conf in zip(CLUSTER, staged, strict=True):
        client, monitor = config_ports(original)[:2]
        nodes.append(LocalNats(conf, env, client_port=ports[client], monitor_port=ports[monitor]))
    return nodes


def main() -> None:  # pragma: no cover - interactive helper
    import tempfile

    env = random_passwords()
    work = Path(tempfile.mkdtemp(prefix="orchestra-deploy-nats-"))
    server = single(work, env).start()
    print(f"NATS_URL={server.url}")
    for key, value in env.items():
        print(f"{key}={value}")
    print(f"# config: {server.conf}  (Ctrl-C stops the server)")
    try:
        assert server.process is not None
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
