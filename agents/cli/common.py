"""What every command shares: config from flags and environment, one-line errors, async running."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import typer

from agents.cli import url_file
from agents.cli.render import printable
from agents.logs import configure_logging
from agents.paths import PathEscape
from bus.config import BusConfig
from bus.errors import BusError
from contracts import Envelope
from contracts.subjects import inbox_prefix

T = TypeVar("T")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_TIMEOUT = 0, 1, 2, 3, 4

# No typer envvar: the settings model reads NATS_URL itself, so flags > environment > defaults is one
# rule in one place, and an error can say whether the flag or the variable was wrong.
NatsUrl = typer.Option(
    None,
    "--nats-url",
    help="NATS server URL [NATS_URL; default: the orchestra `orchestra up` runs for this folder].",
)
JsonOut = typer.Option(False, "--json", help="Machine-readable output: one JSON object per line.")


def bus_config(nats_url: str | None, **overrides: Any) -> BusConfig:
    """The bus settings of a command: flags > environment (NATS_URL, ORCHESTRA_*) > defaults, where
    the default server is the one `orchestra up` started for this folder (``.orchestra/nats.url``).
    A named user gets its own reply inbox ``_INBOX_<user>`` (the only one deploy/nats lets it read)
    unless ORCHESTRA_INBOX_PREFIX says otherwise."""
    config = BusConfig.from_env(nats_url=nats_url, **overrides)
    if config.nats_url is None:
        config = config.model_copy(update={"nats_url": url_file.running_url()})
    if config.user and not config.inbox_prefix:
        config = config.model_copy(update={"inbox_prefix": inbox_prefix(config.user)})
    return config


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``error: message`` as one terminal-safe line on stderr; the caller raises the result."""
    typer.echo(f"error: {printable(message)}", err=True)
    return typer.Exit(code)


def run(coro_fn: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
    """Run an async command body; known errors become one line on stderr and an exit code."""

    @functools.wraps(coro_fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        # A command's outcome is its own one-line error; connection chatter stays out of stderr.
        configure_logging(level="ERROR")
        try:
            return asyncio.run(coro_fn(*args, **kwargs))
        except BusError as exc:
            raise fail(str(exc), EXIT_UNAVAILABLE) from None
        except (PathEscape, FileNotFoundError, ValueError) as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None

    return wrapper


def emit_event(event: Envelope) -> None:
    """An event as --json prints it: one line, the same JSON as published on the bus."""
    emit_json(event.model_dump(mode="json", exclude_none=True))


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=str, sort_keys=True) + "\n")
    sys.stdout.flush()


def existing_dir(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    if not path.is_dir():
        raise FileNotFoundError(f"{what} {str(path)!r} is not a directory")
    return path
