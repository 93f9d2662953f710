"""Start the built image's command in the sandbox, wait for its port, run its health check, stop it.

The app runs as the image's USER, in its own network namespace (agents.qa.smoke.netns), with
the image's ENV plus the compose environment and dummy secret files, started the way compose
starts it (the service's entrypoint and command over the image's). Its named volumes are empty
folders seeded from the image (content, owner and mode, as Docker seeds a new volume), its
tmpfs mounts empty world-writable folders; with a read-only root filesystem nothing else is
writable. The health check is the
Dockerfile's own HEALTHCHECK command, run inside the app's namespaces (``nsenter``) exactly as
the container engine runs it; when it fails, a plain GET of its URL says what the app answered.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from agents.qa.smoke.environment import AppConfig
from agents.qa.smoke.image import StageState
from agents.qa.smoke.netns import Forwarder, NetNamespace, port_open
from agents.qa.smoke.sandbox import (
    SETUP_FAILED,
    Sandbox,
    SandboxUnavailable,
    read_file,
    stop_group,
    tail,
)

STOP_GRACE_S = 5.0
_LISTEN = "0A"


@dataclass
class BootOutcome:
    """What happened: ``rule`` names the failed step (None when it passed), ``message`` says
    what ran and what it printed, ``output`` is the tail of the app's output (unmasked: the
    report masks it). Seconds per step; ``notes`` for the INFO summary."""

    rule: str | None
    message: str
    output: str = ""
    port: int | None = None
    start_s: float | None = None
    health_s: float | None = None
    stopped_on_term: bool | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Limits:
    """Bounds of the boot: seconds for the port to open, for the health check to pass, and for
    the app to stay up once it passed (a server whose workers crash after binding the port)."""

    start_s: float = 60.0
    health_s: float = 30.0
    settle_s: float = 2.0


def boot(image: StageState, sandbox: Sandbox, config: AppConfig, limits: Limits) -> BootOutcome:
    """Start, probe and stop the app; never leaves a process or namespace behind."""
    argv = config.argv(image.entrypoint, image.cmd)
    if not argv:
        return BootOutcome("SMOKE-START", "the runtime stage has no CMD or ENTRYPOINT: nothing to start")
    try:
        uid, gid = image.ids()
    except KeyError as exc:
        return BootOutcome("SMOKE-START", f"USER {image.user}: {exc.args[0]}")
    port = _port(image, config)
    if port is None:
        return BootOutcome("SMOKE-PORT", "no port to wait for: no EXPOSE, no PORT and no health check URL")
    run_layer = _run_layer(sandbox, config, image)
    mounts = _mounts(sandbox, image, config)
    layers, upper = ([*image.layers, run_layer], None) if config.read_only else (image.layers, run_layer)
    env = _env(image, config, uid)
    ns = NetNamespace()
    forwarders: list[Forwarder] = []
    try:
        for service in config.backing:
            with contextlib.suppress(OSError):  # a second service on the same port: the first one wins
                forwarders.append(Forwarder(ns, service.port))
        command = sandbox.argv(
            layers, upper, argv, env=env, cwd=image.workdir, uid=uid, gid=gid, caches=mounts, host_files=()
        )
        log = sandbox.scratch / "app.log"
        started = time.monotonic()
        with log.open("wb") as out:
            proc = ns.call(
                lambda: subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        ours = {service.port for service in config.backing}
        try:
            # The command the user recognises: without the secrets shim compose puts in front of it.
            cmd = config.command if config.command is not None or config.entrypoint else image.cmd
            shown = " ".join(cmd or argv)[:300]
            outcome = _probe(proc, ns, image, env, port, (uid, gid), log, limits, started, ours, shown)
        finally:
            stopped = stop_group(proc, grace=STOP_GRACE_S)
        outcome.stopped_on_term = stopped
        if outcome.rule is not None:
            outcome.output = tail(log)
        return outcome
    finally:
        for forwarder in forwarders:
            forwarder.close()
        ns.close()


def _probe(
    proc: subprocess.Popen[bytes],
    ns: NetNamespace,
    image: StageState,
    env: dict[str, str],
    port: int,
    ids: tuple[int, int],
    log: Path,
    limits: Limits,
    started: float,
    forwarded: set[int],
    shown: str,
) -> BootOutcome:
    deadline = started + limits.start_s
    while True:
        code = proc.poll()
        if code is not None:
            if code == SETUP_FAILED and "orchestra-sandbox:" in tail(log, 3):
                raise SandboxUnavailable(tail(log, 1))
            return BootOutcome(
                "SMOKE-START", f"`{shown}` exited with code {code} before port {port} opened", port=port
            )
        if ns.call(lambda: port_open(port)):
            break
        if time.monotonic() > deadline:
            listening = sorted({p for p, _ in _listening(proc.pid)} - forwarded)
            seen = (
                f"it listens on {', '.join(map(str, listening))}"
                if listening
                else "it listens on no TCP port"
            )
            return BootOutcome(
                "SMOKE-PORT",
                f"`{shown}` is running but nothing accepted connections on port {port} "
                f"within {limits.start_s:.0f}s; {seen}",
                port=port,
            )
        time.sleep(0.2)
    start_s = time.monotonic() - started
    addresses = {address for p, address in _listening(proc.pid) if p == port}
    if addresses and addresses <= {"127.0.0.1", "::1"}:
        return BootOutcome(
            "SMOKE-PORT",
            f"`{shown}` listens on {' and '.join(sorted(addresses))} port {port} only: unreachable from "
            "outside its container (published ports, Kubernetes probes); bind 0.0.0.0",
            port=port,
            start_s=start_s,
        )
    outcome = _health(proc, ns, image, env, port, ids, limits, shown)
    if outcome.rule is None:
        outcome = _settle(proc, ns, image, port, limits, shown, outcome, log)
    outcome.port, outcome.start_s = port, start_s
    return outcome


def _settle(
    proc: subprocess.Popen[bytes],
    ns: NetNamespace,
    image: StageState,
    port: int,
    limits: Limits,
    shown: str,
    passed: BootOutcome,
    log: Path,
) -> BootOutcome:
    """The app must still run ``settle_s`` after its health check passed (a pre-forking server
    binds its port before its workers load the app, and exits when they cannot). A check that
    only connects to the port says nothing of HTTP: ``GET /`` must get an answer, whatever it is
    (a 404 or a redirect is an answer; a reset connection is not), and its status is reported, with
    the error the app logged for a 5xx."""
    deadline = time.monotonic() + limits.settle_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return BootOutcome(
                "SMOKE-START",
                f"`{shown}` exited with code {proc.returncode} {limits.settle_s:.0f}s after its health check "
                "passed",
            )
        time.sleep(0.2)
    if image.health_url() is None:
        _, answer = _get(ns, f"http://127.0.0.1:{port}/")
        if answer.startswith("no answer"):
            return BootOutcome(
                "SMOKE-HEALTH",
                f"port {port} accepts connections but GET / gets {answer}: the TCP health check passes while "
                "nothing answers HTTP",
            )
        status = answer.split(":", 1)[0]
        cause = _cause(log) if status.startswith("5") else None
        passed.notes.append(f"GET / -> {status}" + (f" (the app logged: {cause})" if cause else ""))
    return passed


def _health(
    proc: subprocess.Popen[bytes],
    ns: NetNamespace,
    image: StageState,
    env: dict[str, str],
    port: int,
    ids: tuple[int, int],
    limits: Limits,
    shown: str,
) -> BootOutcome:
    check = image.healthcheck
    url = image.health_url()
    if not check:
        return BootOutcome(
            None, f"port {port} open", notes=["no HEALTHCHECK in the runtime stage: port only"]
        )
    nsenter = shutil.which("nsenter")
    started = time.monotonic()
    deadline = started + limits.health_s
    last = ""
    while True:
        if proc.poll() is not None:  # a crash once the port is open is still the start failing
            return BootOutcome(
                "SMOKE-START", f"`{shown}` exited with code {proc.returncode} after port {port} opened"
            )
        if nsenter:
            ok, last = _run_check(
                nsenter, proc.pid, check, env, ids, timeout=max(1.0, deadline - time.monotonic())
            )
        else:
            ok, last = _get(ns, url) if url else (True, "no nsenter here and no URL in the check: port only")
        if ok:
            what = f"GET {url}" if url else " ".join(check)[:200]
            return BootOutcome(None, f"health check `{what}` passed", health_s=time.monotonic() - started)
        if time.monotonic() > deadline:
            break
        time.sleep(1.0)
    answer = _get(ns, url)[1] if url else ""
    what = " ".join(check)[:300]
    detail = f"; GET {url} -> {answer}" if answer else ""
    printed = last.strip()[-300:] or "no output"
    return BootOutcome(
        "SMOKE-HEALTH",
        f"health check `{what}` kept failing for {limits.health_s:.0f}s: {printed}{detail}",
        health_s=time.monotonic() - started,
    )


_ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(Error|Exception)\b.*)$")


def _cause(log: Path) -> str | None:
    """The last line of the app's output that states an error (``KeyError: 'X'``), if any."""
    time.sleep(0.3)  # the request's traceback is written after the response
    lines = [m.group(1) for line in tail(log, 60).splitlines() if (m := _ERROR_LINE.match(line))]
    return lines[-1][:200] if lines else None


def _run_check(
    nsenter: str,
    pid: int,
    check: tuple[str, ...],
    env: dict[str, str],
    ids: tuple[int, int],
    *,
    timeout: float,
) -> tuple[bool, str]:
    """Run the HEALTHCHECK command inside the app's mount and network namespaces, as its user."""
    uid, gid = ids
    argv = [nsenter, f"--target={pid}", "--mount", "--net", "--root", "--wd"]
    if uid or gid:
        argv += [f"--setuid={uid}", f"--setgid={gid}"]
    try:
        done = subprocess.run(
            [*argv, "--", *check],
            env=env,
            capture_output=True,
            text=True,
            timeout=min(timeout, 30),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, "the health check command timed out"
    return done.returncode == 0, (done.stderr or done.stdout)[-2000:]


def _get(ns: NetNamespace, url: str | None) -> tuple[bool, str]:
    """GET ``url`` from inside the namespace: (2xx?, "<status> <reason>: <body start>")."""
    if not url:
        return False, ""
    parts = urlsplit(url)

    def request() -> tuple[bool, str]:
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=5)
        try:
            connection.request("GET", parts.path or "/", headers={"User-Agent": "orchestra-smoke"})
            response = connection.getresponse()
            body = response.read(200).decode("utf-8", errors="replace").strip()
            return 200 <= response.status < 300, f"{response.status} {response.reason}: {body[:120]}"
        except (OSError, http.client.HTTPException) as exc:
            return False, f"no answer ({exc})"
        finally:
            connection.close()

    return ns.call(request)


def _port(image: StageState, config: AppConfig) -> int | None:
    """The port the artifacts probe: the health check URL's, else EXPOSE, else PORT."""
    url = image.health_url()
    if url:
        port = urlsplit(url).port
        if port:
            return port
    if image.expose:
        return image.expose[0]
    value = config.env.get("PORT") or image.env.get("PORT") or ""
    return int(value) if value.isdigit() else None


def _run_layer(sandbox: Sandbox, config: AppConfig, image: StageState) -> Path:
    """The app's writable layer, seeded with /etc/hosts (backing service names) and secret files."""
    layer = sandbox.new_layer(sandbox.scratch / "run-layer")
    names = " ".join(dict.fromkeys(b.name for b in config.backing))
    hosts = (
        f"127.0.0.1\tlocalhost orchestra-smoke {names}\n::1\tlocalhost ip6-localhost ip6-loopback {names}\n"
    )
    (layer / "host" / "etc").mkdir(parents=True, exist_ok=True)
    (layer / "host" / "etc" / "hosts").write_text(hosts, encoding="utf-8")
    for path in (*config.volumes, *config.tmpfs, *image.volumes):  # mount points exist on a read-only root
        sandbox.in_layer(layer, path).mkdir(parents=True, exist_ok=True)
    for path, value in config.secret_files.items():
        target = layer / "root" / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(value, encoding="utf-8")
        target.chmod(0o444)
    return layer


def _mounts(sandbox: Sandbox, image: StageState, config: AppConfig) -> list[tuple[Path, str]]:
    """(folder, container path) of each writable mount: a named volume starts as a copy of the
    image's folder there (content, owner, mode) or, where the image has none, an empty root-owned
    folder; a tmpfs is empty and world-writable (mode 1777), as Docker makes them."""
    mounts: list[tuple[Path, str]] = []
    # The compose file's volumes, and the image's VOLUMEs as anonymous volumes (a tmpfs wins).
    volumes = sorted({*config.volumes, *image.volumes} - set(config.tmpfs))
    for index, path in enumerate(volumes):
        folder = sandbox.scratch / "volumes" / str(index)
        folder.parent.mkdir(parents=True, exist_ok=True)
        seed = sandbox.find(image.layers, path)
        if seed is not None:
            subprocess.run(["cp", "-a", f"{seed}/.", f"{folder}/"], check=False, capture_output=True)
            if not folder.is_dir():
                folder.mkdir()
            info = seed.stat()
            os.chown(folder, info.st_uid, info.st_gid)
            folder.chmod(stat.S_IMODE(info.st_mode))
        else:
            folder.mkdir(mode=0o755)
        mounts.append((folder, path))
    for index, path in enumerate(config.tmpfs):
        folder = sandbox.scratch / "tmpfs" / str(index)
        folder.mkdir(parents=True)
        folder.chmod(0o1777)
        mounts.append((folder, path))
    return mounts


def _env(image: StageState, config: AppConfig, uid: int) -> dict[str, str]:
    env = {**image.env, **config.env}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env.setdefault("HOSTNAME", "orchestra-smoke")
    env.setdefault("HOME", _home(image, uid))
    return env


def _home(image: StageState, uid: int) -> str:
    if uid == 0:
        return "/root"
    for line in (read_file(image.layers, "/etc/passwd") or "").splitlines():
        fields = line.split(":")
        if len(fields) > 5 and fields[2] == str(uid):
            return fields[5]
    return "/"


def _listening(pid: int) -> list[tuple[int, str]]:
    """(port, address) of every listening TCP socket in ``pid``'s network namespace."""
    found: list[tuple[int, str]] = []
    for table, width in (("tcp", 8), ("tcp6", 32)):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == _LISTEN:
                address, _, port = fields[1].partition(":")
                found.append((int(port, 16), _address(address, width)))
    return found


def _address(hex_address: str, width: int) -> str:
    if width == 8:
        return ".".join(str(int(hex_address[i : i + 2], 16)) for i in (6, 4, 2, 0))
    if hex_address == "0" * 32:
        return "::"
    if hex_address == "00000000000000000000000001000000":
        return "::1"
    return hex_address
