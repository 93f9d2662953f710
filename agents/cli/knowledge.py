"""`orchestra knowledge`: the seed's shared memory (search, store) on the knowledge subscriber."""

from __future__ import annotations

import typer

from agents.cli.common import EXIT_FAILED, EXIT_OK, JsonOut, NatsUrl, bus_config, emit_json, run
from agents.cli.render import hit_line
from bus.client import OrchestraClient
from contracts.vocabulary import NoteKind

app = typer.Typer(help="Search and add to the knowledge store.", no_args_is_help=True)


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
    """Store a note, as the seed's `knowledge-manager.js store TEXT --type T --agent A`."""

    @run
    async def body() -> int:
        async with await OrchestraClient.open(bus_config(nats_url)) as client:
            event_id = await client.note(text, kind=type, agent=agent, task_id=task)
        emit_json({"id": event_id}) if as_json else typer.echo(event_id)
        return EXIT_OK

    raise typer.Exit(body())
