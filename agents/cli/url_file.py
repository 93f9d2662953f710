"""``.orchestra/nats.url``: how a command run in a folder finds the orchestra `orchestra up` started there.

`orchestra up` starts its embedded NATS server on a free port, writes that URL here (atomically)
and removes the file when it stops cleanly. A command given neither ``--nats-url`` nor ``NATS_URL``
looks for the file in the current folder and its parents, and checks that a NATS server answers
at that URL: a file left behind by a killed `up` is reported in one line, not as a connect timeout.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from bus.errors import ServerUnavailable

URL_FILE = Path(".orchestra") / "nats.url"
_HINT = "run `orchestra up` in this folder, or pass --nats-url / set NATS_URL"


def write(path: Path, url: str) -> None:
    """Write ``url`` to ``path`` atomically (a reader never sees half a URL)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".nats.url.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(url + "\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def remove(path: Path, url: str) -> None:
    """Remove the file if it still names ``url`` (never another orchestra's file)."""
    with contextlib.suppress(OSError):
        if read(path) == url:
            path.unlink()


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip()


def find(start: Path | None = None) -> Path | None:
    """The nearest ``.orchestra/nats.url`` in ``start`` (default cwd) or one of its parents."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / URL_FILE
        if candidate.is_file():
            return candidate
    return None


def answers(url: str, timeout_s: float = 2.0) -> bool:
    """True when a NATS server greets at ``url`` (its first bytes are ``INFO``)."""
    parts = urlsplit(url if "://" in url else f"nats://{url}")
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), timeout_s) as s:
            s.settimeout(timeout_s)
            return s.recv(4).upper() == b"INFO"
    except (OSError, ValueError):
        return False


def running_url(start: Path | None = None) -> str:
    """The URL of the orchestra running for this folder; :class:`ServerUnavailable` (one line) when
    there is no file, or when nothing answers at the URL it names."""
    path = find(start)
    if path is None:
        raise ServerUnavailable(f"no NATS URL configured and no running orchestra found: {_HINT}")
    try:
        url = read(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ServerUnavailable(f"cannot read {path}: {exc}") from None
    if not url or not answers(url):
        raise ServerUnavailable(f"the orchestra in {path} ({url or 'empty'}) is not running: {_HINT}")
    return url
