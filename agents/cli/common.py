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

from agents.logs import configure_logging
from agents.paths import PathEscape
from bus.config import BusConfig
from bus.errors import BusError

T = TypeVar("T")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_TIMEOUT = 0, 1, 2, 3, 4

NatsUrl = typer.Option(None, "--nats-url", envvar="NATS_URL", help="NATS server URL (default: $NATS_URL).")
JsonOut = typer.Option(False, "--json", help="Machine-readable output: one JSON object per line.")


def bus_config(nats_url: str | None, **overrides: Any) -> BusConfig:
    return BusConfig.from_env(nats_url=nats_url, **overrides)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
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


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=str, sort_keys=True) + "\n")
    sys.stdout.flush()


def existing_dir(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    if not path.is_dir():
        raise FileNotFoundError(f"{what} {str(path)!r} is not a directory")
    return path
