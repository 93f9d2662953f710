"""`orchestra`: run the agents, submit tasks, follow them, and search what they did."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import sys
import time
from pathlib import Path

import typer

from agents.cli import knowledge as knowledge_cli
from agents.cli import overrides, url_file
from agents.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    JsonOut,
    NatsUrl,
    bus_config,
    emit_event,
    emit_json,
    existing_dir,
    fail,
    run,
)
from agents.cli.dlq import app as dlq_app
from agents.cli.generate import register as register_generate
from agents.cli.provision import register as register_provision
from agents.cli.render import history_line, print_status, printable
from agents.cli.report import register as register_report
from agents.idkey import with_id_key
from agents.logs import configure_logging
from agents.runner import AGENTS, Orchestra, UnknownAgent, agent_class, run_until_signal
from agents.settings import AgentSettings
from bus.client import OrchestraClient
from bus.config import BusConfig
from bus.embedded import EmbeddedServer
from contracts.payloads import StatusChanged
from contracts.vocabulary import CIProvider, Strategy, Target

app = typer.Typer(
    name="orchestra",
    help="Orchestra bus: agents on NATS JetStream turn a task into validated deployment artifacts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(knowledge_cli.app, name="knowledge")
app.add_typer(dlq_app, name="dlq")
contracts_app = typer.Typer(help="The event contracts.", no_args_is_help=True)
app.add_typer(contracts_app, name="contracts")


@app.command()
def up(
    nats_url: str | None = NatsUrl,
    workspace: Path | None = typer.Option(
        None, help="Root for project and output paths [ORCHESTRA_WORKSPACE; default: this folder]."
    ),
    knowledge_db: Path | None = typer.Option(
        None, help="Knowledge SQLite file [ORCHESTRA_KNOWLEDGE_DB; default .orchestra/knowledge.sqlite3]."
    ),
    store_dir: Path = typer.Option(Path(".orchestra/nats"), help="Embedded server's JetStream store."),
    http_port: int | None = typer.Option(
        None, help="Health/metrics HTTP port, 0: off [ORCHESTRA_HTTP_PORT; default 0]."
    ),
) -> None:
    """Run every agent in this process (embedded NATS unless --nats-url or NATS_URL), after creating
    or updating the streams (as `orchestra provision`). Ctrl-C stops cleanly. Other commands run in
    this folder find the embedded server through .orchestra/nats.url."""
    from bus.errors import BusError

    configure_logging()
    try:
        settings = AgentSettings.from_env(workspace=workspace, knowledge_db=knowledge_db, http_port=http_port)
        config = BusConfig.from_env(nats_url=nats_url)
    except ValueError as exc:
        raise fail(str(exc)) from None
    settings = settings.model_copy(update={"workspace": settings.workspace.resolve()})
    settings = with_id_key(settings, store_dir.resolve().parent)  # one key per store, kept next to it
    server: EmbeddedServer | None = None
    here = Path.cwd() / url_file.URL_FILE
    try:
        if config.nats_url is None:
            server = _start_embedded(store_dir, here)
            config = config.model_copy(update={"nats_url": server.url})
            typer.echo(f"embedded NATS at {server.url} (store {store_dir})", err=True)
        else:  # the URL may carry credentials: name where it came from, not what it is
            typer.echo(f"NATS from {'--nats-url' if nats_url else 'the environment'}", err=True)
        health = f"http://127.0.0.1:{settings.http_port}/healthz" if settings.http_port else "off"
        typer.echo(
            f"workspace {settings.workspace}; knowledge {settings.knowledge_db}; health {health}", err=True
        )
        # The URL is published once the agents are up (streams exist), so that a command run in
        # this folder the moment the file appears finds a working orchestra.
        published = functools.partial(_publish_url, here, server.url) if server else None
        asyncio.run(
            run_until_signal(Orchestra(list(AGENTS), config, settings, provision=True), on_started=published)
        )
    except BusError as exc:
        raise fail(str(exc), 3) from None
    finally:
        if server:
            url_file.remove(here, server.url)
            server.stop(cleanup=False)


def _start_embedded(store_dir: Path, url_path: Path) -> EmbeddedServer:
    """`up`'s own server, unless an orchestra of this folder is running already."""
    if url_path.is_file() and url_file.answers(running := url_file.read(url_path)):
        raise fail(f"an orchestra is already running in this folder at {running} ({url_path}); stop it first")
    # Started in the main thread, tied to this process: a killed `up` leaves no orphan server.
    return EmbeddedServer(store_dir=store_dir.resolve(), die_with_parent=True).start()


def _publish_url(url_path: Path, url: str) -> None:
    try:
        url_file.write(url_path, url)
    except OSError as exc:
        typer.echo(
            f"warning: cannot write {url_path} ({exc}); other commands need --nats-url {url}", err=True
        )
        return
    typer.echo(f"ready: commands run in this folder use {url} (from {url_file.URL_FILE})", err=True)


@app.command()
def agent(
    name: str = typer.Argument(..., help=f"One of: {', '.join(AGENTS)}."),
    nats_url: str | None = NatsUrl,
    connect_wait: float = typer.Option(300.0, help="Seconds to wait for NATS at start-up."),
) -> None:
    """Run one agent (the container entrypoint). Settings come from ORCHESTRA_* variables."""
    configure_logging()
    from bus.errors import BusError
    from contracts.subjects import inbox_prefix

    try:
        agent_class(name)  # a bad name is a usage error before any server is looked for
        settings = AgentSettings.from_env()
        orchestra = Orchestra([name], bus_config(nats_url, inbox_prefix=inbox_prefix(name)), settings)
    except (UnknownAgent, ValueError, OSError) as exc:  # a bad name, ORCHESTRA_* value or secret file
        raise fail(str(exc)) from None
    except BusError as exc:  # no URL, or the orchestra of .orchestra/nats.url is gone
        raise fail(str(exc), 3) from None

    try:
        asyncio.run(run_until_signal(orchestra, connect_wait_s=connect_wait))
    except BusError as exc:
        raise fail(str(exc), 3) from None
    except (OSError, sqlite3.Error) as exc:  # its disk, its database file: say which, in one line
        raise fail(f"agent {name} stopped: {type(exc).__name__}: {exc}", EXIT_FAILED) from None


def _structured(target: str | None, strategy: Strategy | None, ci: CIProvider | None, env: list[str] | None):
    targets = None
    if target:
        try:
            targets = [Target(t.strip()) for t in target.split(",") if t.strip()]
        except ValueError:
            raise fail(
                f"unknown target in {target!r}; targets: {', '.join(t.value for t in Target)}"
            ) from None
    return {"targets": targets, "strategy": strategy, "ci": ci, "environments": env or None}


async def follow(
    client: OrchestraClient,
    task_id: str,
    *,
    as_json: bool,
    timeout_s: float,
    seen: list[StatusChanged] | None = None,
) -> int:
    """Print every status of a task until a terminal one; the exit code says how it ended.
    ``seen`` (if given) collects the status payloads."""
    deadline = time.monotonic() + timeout_s
    spinner = sys.stderr.isatty() and not as_json
    last = None
    try:
        async for event in client.watch(task_id, idle_timeout_s=max(deadline - time.monotonic(), 0.1)):
            last = event.payload
            if seen is not None and isinstance(last, StatusChanged):
                seen.append(last)
            if as_json:
                emit_event(event)
            else:
                print_status(event)
            if spinner and isinstance(last, StatusChanged) and not last.state.terminal:
                typer.echo(f"  ... waiting ({int(timeout_s - (deadline - time.monotonic()))}s)", err=True)
    except TimeoutError:
        typer.echo(f"error: no terminal status for {task_id} within {timeout_s:.0f}s", err=True)
        return EXIT_TIMEOUT
    assert isinstance(last, StatusChanged)
    return EXIT_OK if last.state.succeeded else EXIT_FAILED


@app.command()
def task(
    text: str = typer.Argument(..., help='What to do, e.g. "Deploy to Kubernetes".'),
    project: Path = typer.Option(..., "--project", "-p", help="The project folder."),
    wait: bool = typer.Option(False, "--wait", help="Follow the status until it ends; exit 0 on success."),
    target: str | None = typer.Option(
        None, help="Structured form: docker,ci,k8s,helm,ecs,terraform,monitoring,docs"
    ),
    strategy: Strategy | None = typer.Option(None, help="rolling | blue-green | canary"),
    ci: CIProvider | None = typer.Option(None, help="github | gitlab | jenkins"),
    env: list[str] | None = typer.Option(None, "--env", help="Environments (repeatable)."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Where artifacts go (default: the project)."
    ),
    timeout: float = typer.Option(600.0, help="With --wait: give up after this many seconds."),
    start_command: str | None = overrides.StartCommand,
    port: int | None = overrides.Port,
    health_path: str | None = overrides.HealthPath,
    app_dir: str | None = overrides.AppDir,
    build_command: str | None = overrides.BuildCommand,
    writable_path: list[str] | None = overrides.WritablePath,
    config_file: list[str] | None = overrides.ConfigFile,
    allow_loopback: bool = overrides.AllowLoopback,
    nats_url: str | None = NatsUrl,
    as_json: bool = JsonOut,
) -> None:
    """Submit a task and print its id (with --wait, follow it to the end)."""
    if not project.is_dir():
        raise fail(f"project path {str(project)!r} is not an existing directory")
    structured = _structured(target, strategy, ci, env)
    service = overrides.service_overrides(
        start_command, port, health_path, app_dir, build_command, project=project,
        writable_paths=writable_path, config_files=config_file, allow_loopback=allow_loopback,
    )  # fmt: skip
    if service.model_dump(exclude_none=True):
        structured["service"] = service

    @run
    async def body() -> int:
        async with await OrchestraClient.open(bus_config(nats_url)) as client:
            task_id = await client.submit(
                knowledge_cli.scrubbed(text, "task text"),
                str(project),
                output_dir=str(output) if output else None,
                **structured,
            )
            if as_json:
                emit_json({"task_id": task_id})
            else:
                typer.echo(task_id)
            if not wait:
                return EXIT_OK
            return await follow(client, task_id, as_json=as_json, timeout_s=timeout)

    raise typer.Exit(body())


@app.command()
def watch(
    task_id: str | None = typer.Option(
        None, "--task", help="One task (from its start); default all, from now."
    ),
    nats_url: str | None = NatsUrl,
    as_json: bool = JsonOut,
) -> None:
    """Show deployment status changes live."""

    @run
    async def body() -> int:
        async with await OrchestraClient.open(bus_config(nats_url)) as client:
            if task_id is not None:  # --task "" is a bad task id, not "every task"
                return await follow(client, task_id, as_json=as_json, timeout_s=24 * 3600)
            async for event in client.watch(None):
                emit_event(event) if as_json else print_status(event)
        return EXIT_OK

    raise typer.Exit(body())


@app.command()
def history(
    task_id: str = typer.Argument(..., help="The task id."),
    limit: int = typer.Option(10_000, min=1, help="Show at most this many events (the oldest)."),
    nats_url: str | None = NatsUrl,
    as_json: bool = JsonOut,
) -> None:
    """The causal chain of a task: every event, what caused it, who sent it.

    With --json: one event envelope per line (the JSON published on the bus), oldest first. The
    history arrives in pages that each fit the server's max_payload; when --limit cuts it, a
    line on stderr says so."""

    @run
    async def body() -> int:
        shown = total = 0
        async with await OrchestraClient.open(bus_config(nats_url)) as client:
            async for page in client.history_pages(task_id, full=as_json, page_size=min(limit, 500)):
                total = page["total"]
                for row in page["events"][: limit - shown]:
                    emit_json(row.get("event", row)) if as_json else typer.echo(history_line(row))
                    shown += 1
                if shown >= limit:
                    break
        if not total:
            typer.echo(f"no events for task {printable(task_id)}", err=True)
            return EXIT_FAILED
        if shown < total:
            typer.echo(f"history cut at {shown} of {total} events (--limit {limit})", err=True)
        return EXIT_OK

    raise typer.Exit(body())


@app.command()
def agents(
    nats_url: str | None = NatsUrl,
    wait: float = typer.Option(0.5, help="Seconds to gather answers."),
    as_json: bool = JsonOut,
) -> None:
    """The running agents (NATS micro services): name, instance, version, uptime, handled/failed."""
    from agents.discovery import discover
    from bus.connection import connect

    @run
    async def body() -> int:
        nc = await connect(bus_config(nats_url), name="orchestra-cli")
        try:
            found = await discover(nc, wait_s=wait)
        finally:
            await nc.close()
        for a in found:
            if as_json:
                emit_json(a)
            else:
                typer.echo(
                    printable(
                        f"{a['name']:<12} {a['instance']!s:<28} v{a['version']}  up {a['uptime_s']}s  "
                        f"handled {a['handled']}  failed {a['failed']}"
                    )
                )
        if not found:
            typer.echo("no agents answered", err=True)
        return EXIT_OK if found else EXIT_FAILED

    raise typer.Exit(body())


@contracts_app.command("export")
def contracts_export(
    directory: Path | None = typer.Option(None, "--dir", help="Default: contracts/schema."),
) -> None:
    """Regenerate the published contracts: a JSON Schema per event type, event.schema.json (any
    event) and asyncapi.json (AsyncAPI 3.0: channels, messages, operations per agent)."""
    from contracts.schema_export import SCHEMA_DIR, write_schemas

    for path in write_schemas(directory or SCHEMA_DIR):
        typer.echo(str(path))


@app.command()
def health(
    url: str | None = typer.Option(
        None, help="Probe URL [default: http://127.0.0.1:$ORCHESTRA_HTTP_PORT/readyz, port 8080 when unset]."
    ),
) -> None:
    """Exit 0 when the agent's probe answers 200 (for container healthchecks without curl)."""
    import urllib.request

    if url is None:
        try:
            port = AgentSettings.from_env().http_port or 8080
        except ValueError as exc:
            raise fail(str(exc)) from None
        url = f"http://127.0.0.1:{port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            raise typer.Exit(EXIT_OK if resp.status == 200 else EXIT_FAILED)
    except OSError as exc:
        raise fail(f"{url}: {exc}", EXIT_FAILED) from None


@app.command()
def demo(
    project: Path = typer.Option(Path("examples/fastapi-service"), help="The example project."),
    text: str = typer.Option("Containerize the Python FastAPI application", help="The task."),
    out: Path = typer.Option(Path(".orchestra/out"), help="Artifacts go to OUT/<task id>."),
    timeout: float = typer.Option(300.0, help="Give up after this many seconds."),
) -> None:
    """The whole orchestra end to end: embedded NATS, all agents, one task, its status live."""
    from agents.cli.demo import run_demo

    existing_dir(project, "project path")
    raise typer.Exit(run_demo(project, text, out, timeout))


# Commands that live beside their library register themselves.
register_generate(app)
register_provision(app)
register_report(app)


def main() -> None:
    try:
        app()
    except UnknownAgent as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
