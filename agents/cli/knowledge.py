"""`orchestra knowledge`: search and add to the shared memory the knowledge subscriber keeps."""

from __future__ import annotations

from pathlib import Path

import typer

from agents.cli.common import EXIT_FAILED, EXIT_OK, JsonOut, NatsUrl, bus_config, emit_json, run
from agents.cli.render import hit_line
from bus.client import OrchestraClient
from contracts.vocabulary import NoteKind

app = typer.Typer(help="Search and add to the knowledge store.", no_args_is_help=True)


def scrubbed(text: str, what: str) -> str:
    """``text`` with secret-looking values masked before it goes on the bus (only references travel: the
    bus, and so the knowledge store, never carries a secret); says so on stderr when it did."""
    from contracts.redaction import MASK, redact

    clean = redact(text)
    if clean != text:
        typer.echo(f"warning: secret-looking values in the {what} were sent as {MASK}", err=True)
    return clean


@app.command()
def search(
    query: str = typer.Argument("", help='Free text, e.g. "architect decisions".'),
    type: str | None = typer.Option(
        None, "--type", help="edit | decision | status | completion | an event type."
    ),
    agent: str | None = typer.Option(None, "--agent", help="Only events from this agent."),
    task: str | None = typer.Option(None, "--task", help="Only events of this task."),
    limit: int = typer.Option(20, min=1, max=1000),
    nats_url: str | None = NatsUrl,
    as_json: bool = JsonOut,
) -> None:
    """Search every event the orchestra has seen (newest first)."""

    @run
    async def body() -> int:
        async with await OrchestraClient.open(bus_config(nats_url)) as client:
            hits = await client.search(query, type=type, agent=agent, task=task, limit=limit)
        for hit in hits:
            emit_json(hit) if as_json else typer.echo(hit_line(hit))
        if not hits and not as_json:
            typer.echo("no matches", err=True)
        return EXIT_OK if hits else EXIT_FAILED

    raise typer.Exit(body())


@app.command()
def store(
    text: str = typer.Argument(
        ..., help='e.g. "Edit: Dockerfile - Created production-ready container image"'
    ),
    type: NoteKind = typer.Option(..., "--type", help="edit | decision | status | completion"),
    agent: str = typer.Option(..., "--agent", help="Who is writing, e.g. devops-engineer."),
    task: str | None = typer.Option(None, "--task", help="Attach the note to a task."),
    nats_url: str | None = NatsUrl,
    as_json: bool = JsonOut,
) -> None:
    """Store a note of kind T attributed to agent A (docs/events.md: `knowledge.note`)."""

    @run
    async def body() -> int:
        async with await OrchestraClient.open(bus_config(nats_url)) as client:
            event_id = await client.note(scrubbed(text, "note"), kind=type, agent=agent, task_id=task)
        emit_json({"id": event_id}) if as_json else typer.echo(event_id)
        return EXIT_OK

    raise typer.Exit(body())


@app.command()
def rebuild(
    out: Path = typer.Option(..., "--out", help="The new SQLite file (must not exist yet)."),
    nats_url: str | None = NatsUrl,
    as_json: bool = JsonOut,
) -> None:
    """Replay the whole event stream into a new knowledge file (the stream is the source of truth).

    Stop the knowledge agent first, then start it on the new file: what it would have stored in
    between is still pending on its durable consumer and arrives (duplicates are ignored)."""
    from agents.knowledge.rebuild import rebuild as replay_into
    from bus.runtime import Bus

    @run
    async def body() -> int:
        bus = await Bus.connect(bus_config(nats_url), name="orchestra-rebuild", provision=False)
        try:
            result = await replay_into(bus.js, out)
        finally:
            await bus.close(timeout_s=5)
        summary = {
            "out": str(result.path),
            "messages": result.messages,
            "stored": result.stored,
            "duplicates": result.duplicates,
            "invalid": result.invalid,
            "last_seq": result.last_seq,
        }
        if as_json:
            emit_json(summary)
        else:
            typer.echo(
                f"{result.path}: {result.stored} events from {result.messages} stream messages "
                f"(up to seq {result.last_seq}; {result.duplicates} duplicate ids, "
                f"{result.invalid} invalid skipped)"
            )
        return EXIT_OK

    raise typer.Exit(body())
