"""A newcomer's first run, with real processes: `orchestra up` in a folder, then `orchestra task ...
--wait` from a second process in the same folder, with no flags and no NATS_URL; what a stopped or
killed `up` leaves behind; and `up` honouring ORCHESTRA_* settings (flags > environment > defaults)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bus.embedded import free_port
from tests.orchestra_fixtures import copy_example

pytestmark = pytest.mark.nats

ORCHESTRA = str(Path(sys.executable).parent / "orchestra")
URL_FILE = Path(".orchestra") / "nats.url"


def newcomer_env(**extra: str) -> dict[str, str]:
    """The environment of someone who never configured anything."""
    env = {k: v for k, v in os.environ.items() if k != "NATS_URL" and not k.startswith("ORCHESTRA_")}
    return {**env, **extra}


def orchestra(folder: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ORCHESTRA, *args],
        cwd=folder,
        env=env or newcomer_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


class Up:
    """`orchestra up` as a background process in ``folder`` (stderr to a file we can read)."""

    def __init__(self, folder: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.log = folder / f"up-{time.monotonic_ns()}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [ORCHESTRA, "up", *args],
                cwd=folder,
                env=env or newcomer_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, predicate, what: str, within: float = 60) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + within
        while not predicate():
            assert self.proc.poll() is None, f"up exited {self.proc.returncode}: {self.output()[-2000:]}"
            assert time.monotonic() < deadline, f"{what} not within {within}s: {self.output()[-2000:]}"
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


@pytest.fixture
def ups() -> Iterator[list[Up]]:
    started: list[Up] = []
    yield started
    for up in started:
        up.stop()  # SIGTERM: `up` stops its agents and its nats-server child


def gone(nats_url: str, within: float = 30) -> bool:
    """True once no NATS server greets at ``nats_url`` (within ``within`` seconds)."""
    from agents.cli.url_file import answers as greets

    deadline = time.monotonic() + within
    while greets(nats_url):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


async def test_up_then_task_wait_in_a_second_process_with_no_flags(tmp_path: Path, ups: list[Up]) -> None:
    """Item: `orchestra up` started NATS on a random port and `orchestra task` in a second terminal
    said "no NATS URL configured". Now `up` writes .orchestra/nats.url once its agents are up, and
    every command run in the folder (or below it) uses it."""
    project = copy_example("fastapi-service", tmp_path)
    up = Up(tmp_path)
    ups.append(up)
    up.wait_for(lambda: (tmp_path / URL_FILE).is_file(), "the URL file")
    url = (tmp_path / URL_FILE).read_text().strip()
    assert url.startswith("nats://127.0.0.1:")

    done = await asyncio.to_thread(
        orchestra, tmp_path, "task", "Containerize the Python FastAPI application", "-p", project, "--wait"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ready" in done.stdout
    # From a sub-folder too (the file is looked up in the parents).
    below = await asyncio.to_thread(orchestra, tmp_path / project, "agents")
    assert below.returncode == 0 and "knowledge" in below.stdout, below.stderr

    twice = await asyncio.to_thread(orchestra, tmp_path, "up")
    assert twice.returncode == 2 and "already running in this folder" in twice.stderr

    assert up.stop(signal.SIGINT) == 0, up.output()[-2000:]
    assert not (tmp_path / URL_FILE).exists()  # a clean stop removes it
    after = await asyncio.to_thread(orchestra, tmp_path, "task", "x", "-p", project)
    assert after.returncode == 3
    assert after.stderr.splitlines() == [
        "error: no NATS URL configured and no running orchestra found: run `orchestra up` in this "
        "folder, or pass --nats-url / set NATS_URL"
    ]


async def test_a_killed_up_leaves_a_file_that_says_run_up(tmp_path: Path, ups: list[Up]) -> None:
    """A `up` killed with SIGKILL cannot remove its file, and takes its nats-server with it:
    commands say in one line that the orchestra is gone (instead of timing out, or talking to an
    orphan server with no agent behind it); the next `up` replaces the file."""
    first = Up(tmp_path)
    ups.append(first)
    first.wait_for(lambda: "ready:" in first.output(), "up ready")
    stale = (tmp_path / URL_FILE).read_text().strip()
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    assert await asyncio.to_thread(gone, stale), "the embedded server outlived its `up`"
    assert (tmp_path / URL_FILE).read_text().strip() == stale

    done = await asyncio.to_thread(orchestra, tmp_path, "history", "01ABC")
    assert done.returncode == 3
    [line] = done.stderr.splitlines()
    assert line == (
        f"error: the orchestra in {tmp_path / URL_FILE} ({stale}) is not running: "
        "run `orchestra up` in this folder, or pass --nats-url / set NATS_URL"
    )

    up = Up(tmp_path)
    ups.append(up)
    up.wait_for(lambda: "ready:" in up.output(), "up ready")
    fresh = (tmp_path / URL_FILE).read_text().strip()
    assert fresh != stale and fresh in up.output()
    listed = await asyncio.to_thread(orchestra, tmp_path, "agents")
    assert listed.returncode == 0, listed.stderr


async def test_up_takes_flags_over_environment_over_defaults(tmp_path: Path, ups: list[Up]) -> None:
    """Item: `orchestra up` ignored ORCHESTRA_WORKSPACE, ORCHESTRA_HTTP_PORT and
    ORCHESTRA_KNOWLEDGE_DB (its option defaults always overrode them)."""
    env_port, flag_port = free_port(), free_port()
    (tmp_path / "ws-env").mkdir()
    (tmp_path / "ws-flag").mkdir()
    env = newcomer_env(
        ORCHESTRA_HTTP_PORT=str(env_port),
        ORCHESTRA_WORKSPACE=str(tmp_path / "ws-env"),
        ORCHESTRA_KNOWLEDGE_DB=str(tmp_path / "env.sqlite3"),
    )
    up = Up(tmp_path, env=env)
    ups.append(up)
    up.wait_for(lambda: answers(f"http://127.0.0.1:{env_port}/readyz"), "health on the env port")
    assert f"workspace {tmp_path / 'ws-env'}; knowledge {tmp_path / 'env.sqlite3'}" in up.output()
    assert (tmp_path / "env.sqlite3").is_file()
    assert up.stop() == 0

    flags = ["--http-port", str(flag_port), "--workspace", "ws-flag", "--knowledge-db", "flag.sqlite3"]
    up = Up(tmp_path, *flags, env=env)
    ups.append(up)
    up.wait_for(lambda: answers(f"http://127.0.0.1:{flag_port}/readyz"), "health on the flag port")
    assert f"workspace {tmp_path / 'ws-flag'}; knowledge flag.sqlite3" in up.output()
    assert (tmp_path / "flag.sqlite3").is_file() and not answers(f"http://127.0.0.1:{env_port}/readyz")
    assert up.stop() == 0

    bad = await asyncio.to_thread(orchestra, tmp_path, "up", env={**env, "ORCHESTRA_HTTP_PORT": "99999"})
    assert bad.returncode == 2
    assert bad.stderr.splitlines()[-1].startswith("error: invalid setting ORCHESTRA_HTTP_PORT='99999'")


def test_up_logs_for_people_on_a_terminal_and_json_otherwise(tmp_path: Path, ups: list[Up]) -> None:
    """Item: logs on a terminal are structlog's console lines, JSON lines when redirected; on the
    terminal too a value's control characters are shown escaped."""
    import pty
    import select

    # Redirected (a file): one JSON object per log line.
    up = Up(tmp_path)
    ups.append(up)
    up.wait_for(lambda: "ready:" in up.output(), "up ready")
    assert up.stop() == 0
    logs = [ln for ln in up.output().splitlines() if "agent.started" in ln]
    assert logs and all(ln.startswith("{") for ln in logs)

    # On a terminal (a real pseudo-terminal): console lines.
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [ORCHESTRA, "up"],
        cwd=tmp_path,
        env=newcomer_env(),
        stdin=subprocess.DEVNULL,
        stdout=child,
        stderr=child,
    )
    os.close(child)
    seen = b""

    def read_until(done) -> None:  # type: ignore[no-untyped-def]
        nonlocal seen
        deadline = time.monotonic() + 60
        while not done() and time.monotonic() < deadline:
            if select.select([main], [], [], 0.2)[0]:
                try:
                    seen += os.read(main, 65536)
                except OSError:  # the terminal closed: the process is gone
                    return

    try:
        read_until(lambda: b"ready:" in seen)
    finally:
        proc.terminate()
        read_until(lambda: proc.poll() is not None)  # keep the terminal drained while it stops
        proc.wait(60)
        os.close(main)
    text = seen.decode(errors="replace")
    started = [ln for ln in text.splitlines() if "agent.started" in ln]
    assert started and not any(ln.lstrip().startswith("{") for ln in started), text[-2000:]
    assert all("[info" in ln and "agent=" in ln for ln in started), started


def test_console_logs_escape_control_characters() -> None:
    import io

    import structlog

    from agents.logs import configure_logging

    out = io.StringIO()
    configure_logging(json=False, stream=out)
    try:
        structlog.get_logger("t").info("task.received", text="\x1b]0;pwned\x07\u202e\nforged")
    finally:
        structlog.reset_defaults()
    line = out.getvalue()
    assert "\x1b" not in line and "\u202e" not in line and line.count("\n") == 1, repr(line)
