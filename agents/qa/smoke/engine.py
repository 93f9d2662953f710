"""The container-engine path: build and run the real image when docker or podman reaches an engine.

``detect`` decides (a client that answers ``info``), ``plan`` writes every argv the path would
run, and ``run_image`` runs them. The decision and the plan are pure enough to test without an
engine; where none is reachable the smoke boot says so and uses the sandbox instead.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import urlopen

from agents.qa.smoke.boot import BootOutcome, Limits

Which = Callable[[str], str | None]
Run = Callable[..., subprocess.CompletedProcess[str]]


@dataclass(frozen=True)
class Engine:
    """``client`` (path of docker/podman) when an engine answered, else None; ``detail`` says
    which engine answered or why none did (the first line of each client's ``info`` error)."""

    client: str | None
    detail: str


def detect(which: Which = shutil.which, run: Run = subprocess.run) -> Engine:
    """The first of docker, podman whose ``info`` succeeds."""
    reasons: list[str] = []
    for name in ("docker", "podman"):
        path = which(name)
        if not path:
            continue
        try:
            done = run(
                [path, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=20
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            reasons.append(f"{name} info: {exc}")
            continue
        if done.returncode == 0:
            return Engine(path, f"{name} {done.stdout.strip() or 'engine'}")
        first = next((ln.strip() for ln in (done.stderr or done.stdout).splitlines() if ln.strip()), "")
        reasons.append(f"{name} info: {first or f'exit code {done.returncode}'}")
    return Engine(None, "; ".join(reasons) or "no docker or podman client installed")


@dataclass(frozen=True)
class Start:
    """How the compose service starts the image: its entrypoint and command (None: the image's),
    a read-only root filesystem, tmpfs mounts and volumes (container paths)."""

    entrypoint: tuple[str, ...] | None = None
    command: tuple[str, ...] | None = None
    read_only: bool = False
    tmpfs: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    """Every command of the engine path, in order of use."""

    build: list[str]
    run: list[str]
    port: list[str]
    logs: list[str]
    remove: list[str]


def plan(
    client: str, *, context: Path, dockerfile: Path, target: str | None, tag: str, name: str,
    env_file: Path, secrets: Mapping[str, Path], port: int, start: Start | None = None,
) -> Plan:  # fmt: skip
    """The argv of each step: build the target stage, run it detached with the environment file
    and read-only secret files, the port published on a free loopback port; ``start`` says how
    the compose service starts it (entrypoint, command, read-only root, tmpfs and volumes)."""
    start = start or Start()
    build = [client, "build", "--file", str(dockerfile), "--tag", tag]
    if target:
        build += ["--target", target]
    run = [client, "run", "--detach", "--name", name, "--env-file", str(env_file)]
    run += ["--publish", f"127.0.0.1::{port}"]
    for target_path, host in sorted(secrets.items()):
        run += ["--volume", f"{host}:{target_path}:ro"]
    if start.read_only:
        run.append("--read-only")
    for path in start.tmpfs:
        run += ["--tmpfs", path]
    for path in start.volumes:  # anonymous volumes, removed with the container (rm --volumes)
        run += ["--mount", f"type=volume,target={path}"]
    after: list[str] = []
    if start.entrypoint is not None:
        # --entrypoint takes one word: the rest of the compose entrypoint goes before the command.
        run += ["--entrypoint", start.entrypoint[0] if start.entrypoint else ""]
        after = [*start.entrypoint[1:], *(start.command or ())]
    elif start.command is not None:
        after = list(start.command)
    return Plan(
        build=[*build, str(context)],
        run=[*run, tag, *after],
        port=[client, "port", name, f"{port}/tcp"],
        logs=[client, "logs", "--tail", "25", name],
        remove=[client, "rm", "--force", "--volumes", name],
    )


def run_image(steps: Plan, *, health_url: str | None, limits: Limits, build_timeout: float) -> BootOutcome:
    """Build, run, wait for the published port, GET the health URL there, remove the container."""
    try:
        done = _run(steps.build, build_timeout)
        if done.returncode != 0:
            return BootOutcome(
                "SMOKE-INSTALL", f"`{' '.join(steps.build)}` failed", output=done.stderr[-2000:]
            )
        done = _run(steps.run, 60)
        if done.returncode != 0:
            return BootOutcome("SMOKE-START", f"`{' '.join(steps.run)}` failed", output=done.stderr[-2000:])
        return _probe(steps, health_url, limits)
    finally:
        _run(steps.remove, 60)


def _probe(steps: Plan, health_url: str | None, limits: Limits) -> BootOutcome:
    started = time.monotonic()
    published = None
    while time.monotonic() - started < limits.start_s:
        answer = _run(steps.port, 20).stdout.strip().splitlines()
        if answer and ":" in answer[0]:
            published = int(answer[0].rsplit(":", 1)[1])
            with socket.socket() as probe:
                probe.settimeout(1)
                if probe.connect_ex(("127.0.0.1", published)) == 0:
                    break
        time.sleep(0.5)
    else:
        logs = _run(steps.logs, 20)
        return BootOutcome(
            "SMOKE-PORT", "the container's port never opened", output=logs.stdout + logs.stderr
        )
    start_s = time.monotonic() - started
    if not health_url:
        return BootOutcome(None, "port open (no health check URL)", start_s=start_s)
    path = urlsplit(health_url).path or "/"
    try:
        with urlopen(f"http://127.0.0.1:{published}{path}", timeout=limits.health_s) as response:
            status = response.status
    except OSError as exc:
        logs = _run(steps.logs, 20)
        return BootOutcome(
            "SMOKE-HEALTH", f"GET {path}: {exc}", output=logs.stdout + logs.stderr, start_s=start_s
        )
    return BootOutcome(None, f"GET {path} -> {status}", start_s=start_s)


def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(argv, 1, "", str(exc))
