"""`orchestra dlq`: look at dead letters and replay them once the cause is fixed.

A dead letter (bus.deadletter.DeadLetter, stream ORCHESTRA_DLQ) keeps the original subject, headers
and bytes. Replaying republishes those bytes to the original subject, with a Nats-Msg-Id of its own
(``replay-<letter id>``), because:

- the original id (the event id) is remembered by JetStream's duplicate window: within it a replay
  would be silently dropped, after it accepted, so the outcome would depend on the clock;
- an id derived from the letter makes a repeated or retried replay of the same letter a duplicate
  the server drops (and we say so), while a new dead letter of the replay gets a new id.

The event inside keeps its own id, so the knowledge store and the agents' derived follow-up ids still
see one event. Every consumer of the subject receives the replay, not only the one that gave up on
it; handlers are idempotent by event id, which is what makes that safe.
"""

from __future__ import annotations

import hashlib
from typing import Any

import typer
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from agents.cli.common import EXIT_OK, JsonOut, NatsUrl, bus_config, emit_json, run
from agents.cli.render import printable
from agents.knowledge.rebuild import read_stream
from bus.deadletter import DeadLetter
from bus.publisher import MSG_ID
from bus.runtime import Bus
from contracts import ContractError, decode
from contracts.subjects import DLQ_STREAM, DLQ_SUBJECTS, EVENTS_STREAM, dlq_subject

app = typer.Typer(help="Dead letters: list, show, replay.", no_args_is_help=True)

REPLAY_OF = "Orchestra-Replay-Of"


class LetterNotFound(ValueError):
    """No dead letter with that id or DLQ sequence number."""


class NotReplayable(ValueError):
    """Replaying would only dead-letter the message again."""


async def letters(js: JetStreamContext, consumer: str | None = None) -> list[tuple[int, DeadLetter]]:
    """Every dead letter with its DLQ sequence number, oldest first (optionally of one consumer)."""
    subject = dlq_subject(consumer) if consumer else DLQ_SUBJECTS
    found: list[tuple[int, DeadLetter]] = []
    async for batch in read_stream(js, DLQ_STREAM, subject):
        for msg in batch:
            try:
                found.append((msg.metadata.sequence.stream, DeadLetter.model_validate_json(msg.data)))
            except ValueError:
                continue  # not ours: someone published on orchestra.dlq.* by hand
    return found


async def find(js: JetStreamContext, key: str) -> tuple[int, DeadLetter]:
    """A dead letter by its id (``dlq-<consumer>-<seq>``) or by its DLQ sequence number."""
    for seq, letter in await letters(js):
        if letter.id == key or (key.isdigit() and seq == int(key)):
            return seq, letter
    raise LetterNotFound(f"no dead letter {key!r} (see `orchestra dlq list`)")


def replay_id(letter: DeadLetter) -> str:
    return f"replay-{letter.id}"


async def original(js: JetStreamContext, letter: DeadLetter) -> bytes:
    """The dead-lettered bytes: from the letter, or from the events stream when the letter kept only
    the first part of a large message."""
    if not letter.truncated:
        return letter.data
    try:
        data = (await js.get_msg(EVENTS_STREAM, letter.stream_seq)).data or b""
    except NotFoundError:
        data = b""
    if hashlib.sha256(data).hexdigest() != letter.sha256:
        raise NotReplayable(
            f"{letter.id} kept {len(letter.data)} of {letter.size} bytes and the original is no longer "
            f"in {EVENTS_STREAM} at seq {letter.stream_seq}"
        )
    return data


async def replay(bus: Bus, letter: DeadLetter, *, force: bool = False) -> dict[str, Any]:
    """Republish a dead letter's original bytes to its original subject; see the module docstring."""
    data = await original(bus.js, letter)
    if not force:
        try:
            event = decode(data)
        except ContractError as exc:
            raise NotReplayable(
                f"{letter.id} is not a valid event ({exc.reason}); a replay would be dead-lettered again"
            ) from None
        if event.subject() != letter.subject:
            raise NotReplayable(
                f"{letter.id} holds a {event.type} event of task {event.task_id}, which does not belong on "
                f"{letter.subject}; a replay would be dead-lettered again"
            )
    headers = {k: v for k, v in letter.headers.items() if k != MSG_ID and not k.startswith("Nats-")}
    headers[MSG_ID] = replay_id(letter)
    headers[REPLAY_OF] = letter.id
    ack = await bus.publisher.publish_raw(letter.subject, data, headers)
    return {
        "letter": letter.id,
        "subject": letter.subject,
        "stream": ack.stream,
        "seq": ack.seq,
        "msg_id": headers[MSG_ID],
        "duplicate": bool(ack.duplicate),
    }


def _summary(seq: int, letter: DeadLetter) -> dict[str, Any]:
    return {
        "seq": seq,
        "id": letter.id,
        "consumer": letter.consumer,
        "subject": letter.subject,
        "deliveries": letter.deliveries,
        "dead_at": letter.dead_at.isoformat(),
        "reason": letter.reason,
        "bytes": letter.size if letter.truncated else len(letter.data),
        "truncated": letter.truncated,
    }


def _connect(nats_url: str | None) -> Any:
    return Bus.connect(bus_config(nats_url), name="orchestra-dlq", provision=False)


@app.command("list")
def list_letters(
    consumer: str | None = typer.Option(None, "--consumer", help="Only letters of this durable consumer."),
    limit: int = typer.Option(100, min=1, help="Show the newest N."),
    nats_url: str | None = NatsUrl,
    as_json: bool = JsonOut,
) -> None:
    """Dead letters, oldest first: id, consumer, deliveries and why."""

    @run
    async def body() -> int:
        bus = await _connect(nats_url)
        try:
            found = (await letters(bus.js, consumer))[-limit:]
        finally:
            await bus.close(timeout_s=5)
        for seq, letter in found:
            if as_json:
                emit_json(_summary(seq, letter))
            else:
                reason = printable(letter.reason)[:120]
                typer.echo(f"{letter.id}  {letter.consumer:<28} x{letter.deliveries}  {reason}")
        if not found and not as_json:
            typer.echo("no dead letters", err=True)
        return EXIT_OK

    raise typer.Exit(body())


@app.command()
def show(
    letter_id: str = typer.Argument(..., help="A letter id (dlq-<consumer>-<seq>) or its DLQ sequence."),
    nats_url: str | None = NatsUrl,
    as_json: bool = JsonOut,
) -> None:
    """One dead letter in full: where it came from, why it died, and its original bytes."""

    @run
    async def body() -> int:
        bus = await _connect(nats_url)
        try:
            seq, letter = await find(bus.js, letter_id)
        finally:
            await bus.close(timeout_s=5)
        if as_json:
            extra = {"headers": letter.headers, "data_b64": letter.data_b64, "sha256": letter.sha256}
            emit_json({**_summary(seq, letter), **extra})
            return EXIT_OK
        for key, value in _summary(seq, letter).items():
            typer.echo(f"{key:>10}: {printable(str(value))}")
        for key, value in sorted(letter.headers.items()):
            typer.echo(f"{'header':>10}: {printable(key)}: {printable(value)}")
        try:
            text = letter.data.decode("utf-8")
            typer.echo(f"{'data':>10}: {printable(text[:4000])}")
        except UnicodeDecodeError:
            typer.echo(f"{'data_b64':>10}: {letter.data_b64[:4000]}")
        return EXIT_OK

    raise typer.Exit(body())


@app.command("replay")
def replay_cmd(
    letter_id: str = typer.Argument(..., help="A letter id (dlq-<consumer>-<seq>) or its DLQ sequence."),
    force: bool = typer.Option(False, "--force", help="Replay even bytes that are not a valid event."),
    nats_url: str | None = NatsUrl,
    as_json: bool = JsonOut,
) -> None:
    """Republish the original bytes to the original subject (every consumer of it sees them again)."""

    @run
    async def body() -> int:
        bus = await _connect(nats_url)
        try:
            _, letter = await find(bus.js, letter_id)
            result = await replay(bus, letter, force=force)
        finally:
            await bus.close(timeout_s=5)
        if as_json:
            emit_json(result)
        elif result["duplicate"]:
            typer.echo(f"{letter.id} was already replayed (stream seq {result['seq']}); nothing sent")
        else:
            typer.echo(f"{letter.id} replayed to {result['subject']} (stream seq {result['seq']})")
        return EXIT_OK  # replaying is idempotent: a repeat is not an error

    raise typer.Exit(body())
