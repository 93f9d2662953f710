"""Secrets never travel on the bus, in logs, or in the knowledge store: only references do.

Known random secret values are fed in where a person would put them (a project's .env read by its
code, a task text and a note with keys in them, log calls with password fields); then every place
the orchestra writes is searched for them, raw and base64/URL-encoded: the stream's bytes (events,
dead letters, the task-state bucket) and the server's store files, every log, the SQLite files, the
generated artifacts and what the CLI printed.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import secrets
import sqlite3
import string
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog

from agents.logs import configure_logging
from agents.review.secrets_scan import scan_for_values
from bus.client import OrchestraClient
from bus.embedded import EmbeddedServer
from bus.runtime import Bus
from contracts import new_id
from contracts.payloads import ServiceSpec
from contracts.subjects import DLQ_STREAM, EVENTS_STREAM, TASKS_BUCKET
from contracts.vocabulary import NoteKind
from tests.faults.flow import TEXT, copy_fastapi
from tests.faults.helpers import fast_config, raw_messages, until
from tests.faults.procs import ORCHESTRA, Fleet


def _random(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


class Secrets:
    def __init__(self) -> None:
        self.db_password = "pw-" + secrets.token_urlsafe(18)
        self.api_key = "key-" + secrets.token_hex(16)
        self.aws_access_key = "AKIA" + _random(string.ascii_uppercase + string.digits, 16)
        self.aws_secret = _random(string.ascii_letters + string.digits, 40)

    @property
    def values(self) -> list[str]:
        return [self.db_password, self.api_key, self.aws_access_key, self.aws_secret]


def leaks(blob: bytes | str, values: list[str]) -> list[str]:
    text = blob.decode("latin-1") if isinstance(blob, bytes) else blob
    return scan_for_values(text, values)


def test_log_calls_with_secret_fields_are_redacted(tmp_path: Path) -> None:
    """Invariant: whatever shape a log call gives a secret (a password= field, a token inside a
    message, credentials in a URL, an AKIA key, nested), the rendered line does not contain it, in
    JSON and in the console format."""
    s = Secrets()
    for as_json in (True, False):
        out = io.StringIO()
        configure_logging(json=as_json, stream=out)
        try:
            log = structlog.get_logger("redaction-test")
            log.info("db.connect", password=s.db_password, user="app")
            log.info("db.connect", DATABASE_PASSWORD=s.db_password, apiKey=s.api_key)
            log.warning(f"retrying with password={s.db_password}")
            log.warning("db.url", url=f"postgresql://app:{s.db_password}@db:5432/app")
            log.error("aws", detail=f"key {s.aws_access_key} aws_secret_access_key={s.aws_secret}")
            log.info("headers", authorization=f"Bearer {s.api_key}", x_api_key=s.api_key)
        finally:
            structlog.reset_defaults()
        rendered = out.getvalue()
        assert "[REDACTED]" in rendered and "db.connect" in rendered
        assert leaks(rendered, s.values) == [], rendered


@pytest.fixture
async def orchestra(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedServer, Fleet]]:
    server = EmbeddedServer(store_dir=tmp_path / "nats").start()
    fleet = Fleet(
        server.url, tmp_path, env={"ORCHESTRA_VALIDATORS": "fast", "ORCHESTRA_SECURITY_CHECKOV": "false"}
    )
    try:
        await fleet.start(["architect", "devops", "credentials", "qa", "security", "knowledge"])
        yield server, fleet
    finally:
        await fleet.stop()
        server.stop()


def cli(*args: str, url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NATS_URL"}
    return subprocess.run(
        [ORCHESTRA, *args, "--nats-url", url], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.mark.nats
@pytest.mark.slow
async def test_known_secrets_are_nowhere_after_a_whole_flow(
    tmp_path: Path, orchestra: tuple[EmbeddedServer, Fleet]
) -> None:
    """Invariant: after a task on a project whose .env holds real values its code reads, a task
    text and a note carrying keys, none of the values is in any byte the orchestra wrote; the task
    still ends ready and the note is still stored (redacted)."""
    server, fleet = orchestra
    s = Secrets()
    workspace = tmp_path / "workspace"
    project = copy_fastapi(workspace)
    (workspace / project / ".env").write_text(
        f"DATABASE_URL=postgresql://app:{s.db_password}@db:5432/app\n"
        f"DATABASE_PASSWORD={s.db_password}\nAPI_KEY={s.api_key}\nLOG_LEVEL=INFO\n"
    )
    text = f"{TEXT}. Deploy with AWS key {s.aws_access_key} and aws_secret_access_key={s.aws_secret}"
    done = await asyncio.to_thread(
        cli,
        "task",
        text,
        "--project",
        project,
        "--output",
        "out",
        "--wait",
        "--json",
        url=server.url,
        cwd=workspace,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["payload"]["state"] == "ready"
    noted = await asyncio.to_thread(
        cli,
        "knowledge",
        "store",
        f"Edit: rotated DATABASE_PASSWORD={s.db_password} and api_key={s.api_key}",
        "--type",
        "edit",
        "--agent",
        "devops-engineer",
        url=server.url,
        cwd=workspace,
    )
    assert noted.returncode == 0, noted.stderr

    bus = await Bus.connect(fast_config(server.url), name="auditor", provision=False)
    db = tmp_path / "knowledge.sqlite3"
    try:

        async def caught_up() -> bool:
            info = await bus.js.consumer_info(EVENTS_STREAM, "knowledge")
            return info.num_pending == 0 and info.num_ack_pending == 0

        await until(caught_up, within=30, what="knowledge stored everything")
        places: dict[str, bytes | str] = {
            "cli task": done.stdout + done.stderr,
            "cli note": noted.stdout + noted.stderr,
        }
        for stream in (EVENTS_STREAM, DLQ_STREAM, f"KV_{TASKS_BUCKET}"):
            for msg in await raw_messages(bus.js, stream):
                places[f"{stream}#{msg.seq}"] = (msg.data or b"") + json.dumps(msg.headers or {}).encode()
    finally:
        await bus.close(timeout_s=2)
    await fleet.stop()  # logs complete, SQLite checkpointed
    places.update(written_files(tmp_path))
    assert any(where.startswith("workspace/out/") for where in places), "the task wrote no artifacts"
    found = {where: leaks(blob, s.values) for where, blob in places.items()}
    assert {where: len(hit) for where, hit in found.items() if hit} == {}
    # Redacted, not dropped: the task and the note are on record with the values masked.
    with sqlite3.connect(db) as con:
        texts = dict(
            con.execute("SELECT type, text FROM events WHERE type IN ('task.requested', 'knowledge.note')")
        )
        notes = [t for (t,) in con.execute("SELECT text FROM events WHERE text LIKE '%rotated%'")]
    assert "AWS key [REDACTED]" in texts["task.requested"]
    assert notes == ["edit: Edit: rotated DATABASE_PASSWORD=[REDACTED] and api_key=[REDACTED]"]


def written_files(tmp_path: Path) -> dict[str, bytes]:
    """Every file the run wrote: SQLite (with WAL), agent logs, the server's store, the artifacts."""
    paths = [
        *tmp_path.glob("knowledge.sqlite3*"),
        *(tmp_path / "logs").iterdir(),
        *(tmp_path / "nats").rglob("*"),
        *(p for out in (tmp_path / "workspace").glob("out*") for p in out.rglob("*")),
    ]
    return {str(p.relative_to(tmp_path)): p.read_bytes() for p in paths if p.is_file()}


def _raw_task(task_id: str, text: str, project: str) -> tuple[str, bytes, dict[str, str]]:
    """``task.requested`` as a client in another language sends it: hand-written JSON, no masking."""
    event_id = new_id()
    body = {
        "id": event_id,
        "type": "task.requested",
        "schema_version": 1,
        "task_id": task_id,
        "source": {"agent": "client", "instance": "go-client:1"},
        "occurred_at": "2026-11-26T12:00:00Z",
        "payload": {"text": text, "project": project, "output_dir": "out-raw"},
    }
    return f"orchestra.evt.task.requested.{task_id}", json.dumps(body).encode(), {"Nats-Msg-Id": event_id}


@pytest.mark.nats
@pytest.mark.slow
async def test_secrets_from_any_client_and_from_the_project_are_masked_at_ingestion(
    tmp_path: Path, orchestra: tuple[EmbeddedServer, Fleet]
) -> None:
    """Invariant: secrets given to the Python ``OrchestraClient`` (task text, a start command) or
    written into a project's package.json start script reach no stream message, no KV entry, no
    SQLite row, no log and no artifact; what a client in another language publishes unmasked is
    masked by the agents and the knowledge store, so only its own request message holds it."""
    server, fleet = orchestra
    python = Secrets()  # through the Python client and the project: nowhere at all
    raw = Secrets()  # through a client that does not mask: only in its own request message
    workspace = tmp_path / "workspace"
    project = copy_fastapi(workspace)
    node = workspace / "node-svc"
    node.mkdir()
    (node / "package.json").write_text(
        json.dumps(
            {
                "name": "node-svc",
                "main": "server.js",
                "scripts": {"start": f"node server.js --api-key={python.api_key}"},
                "dependencies": {"express": "4.21.2"},
            }
        )
    )
    (node / "server.js").write_text("require('express')().listen(process.env.PORT || 3000)\n")
    secret_text = f"{TEXT} with aws_secret_access_key={python.aws_secret} and key {python.aws_access_key}"

    bus = await Bus.connect(fast_config(server.url), name="auditor", provision=False)
    db = tmp_path / "knowledge.sqlite3"
    try:
        client = OrchestraClient(bus)
        ready = await client.submit(secret_text, project, output_dir="out")
        refused = await client.submit(
            TEXT,
            project,
            output_dir="out-2",
            service=ServiceSpec(
                start_command=["uvicorn", "app.main:app", f"--db-password={python.db_password}"]
            ),
        )
        from_package = await client.submit(
            TEXT.replace("Python FastAPI", "Node.js"), "node-svc", output_dir="o3"
        )
        await client.note(f"rotated DATABASE_PASSWORD={python.db_password}", kind=NoteKind.EDIT, agent="me")
        raw_task = new_id()
        subject, body, headers = _raw_task(
            raw_task,
            f"{TEXT}. Deploy with aws_secret_access_key={raw.aws_secret} key {raw.aws_access_key}",
            project,
        )
        await bus.js.publish(subject, body, headers=headers)

        ends = {}
        for task_id in (ready, refused, from_package, raw_task):
            statuses = [e async for e in client.watch(task_id, idle_timeout_s=120)]
            ends[task_id] = statuses[-1].payload
        assert ends[ready].state.value == "ready", ends[ready]
        assert ends[raw_task].state.value == "ready", ends[raw_task]
        assert ends[refused].agent == "architect" and "start_command holds a secret" in ends[refused].reason
        assert ends[from_package].agent == "architect"
        assert "--api-key=[REDACTED]" in ends[from_package].reason, ends[from_package].reason

        async def caught_up() -> bool:
            info = await bus.js.consumer_info(EVENTS_STREAM, "knowledge")
            return info.num_pending == 0 and info.num_ack_pending == 0

        await until(caught_up, within=30, what="knowledge stored everything")
        places: dict[str, bytes | str] = {}
        raw_request: dict[str, bytes] = {}
        for stream in (EVENTS_STREAM, DLQ_STREAM, f"KV_{TASKS_BUCKET}"):
            for msg in await raw_messages(bus.js, stream):
                blob = (msg.data or b"") + json.dumps(msg.headers or {}).encode()
                where = raw_request if msg.subject == subject else places
                where[f"{stream}#{msg.seq}"] = blob
    finally:
        await bus.close(timeout_s=2)
    await fleet.stop()
    files = written_files(tmp_path)
    assert any(where.startswith("workspace/out/") for where in files), "the task wrote no artifacts"
    assert any(where.startswith("workspace/out-raw/") for where in files), "the raw task wrote none"
    everywhere = {**places, **files}
    found = {where: leaks(blob, python.values) for where, blob in {**everywhere, **raw_request}.items()}
    assert {where: hit for where, hit in found.items() if hit} == {}
    # The unmasked request is stored as sent (the server's files hold it too); nothing else has it.
    assert set(leaks(next(iter(raw_request.values())), raw.values)) == {raw.aws_secret, raw.aws_access_key}
    server_files = {w for w in files if w.startswith("nats/")}
    found = {
        where: leaks(blob, raw.values) for where, blob in everywhere.items() if where not in server_files
    }
    assert {where: hit for where, hit in found.items() if hit} == {}
    with sqlite3.connect(db) as con:
        texts = [t for (t,) in con.execute("SELECT text FROM events WHERE type = 'task.requested'")]
    assert sum("aws_secret_access_key=[REDACTED]" in t for t in texts) == 2, texts
