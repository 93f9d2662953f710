"""`python -m tests.faults.crashing_agent POINT AGENT URL`: an agent that SIGKILLs itself once.

POINT is ``module:Class.method:before|after[:event.type]``: the process kills itself (SIGKILL, no
clean-up, no ack) right before or right after that method runs, the first time it runs (for an
event of that type, when given). A marker file next to the knowledge DB makes it happen once even
if the test starts the same crashing process again. Otherwise this is exactly `orchestra agent`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import os
import signal
import sys
from pathlib import Path
from typing import Any


def _event_type(args: tuple[Any, ...]) -> str | None:
    for arg in args:
        kind = getattr(arg, "type", None)
        if kind is not None:
            return str(kind)
        if isinstance(arg, list) and arg and getattr(arg[0], "type", None) is not None:
            return str(arg[0].type)
    return None


def install(point: str, marker: Path) -> None:
    module_name, target, when, *rest = point.split(":")
    cls_name, method = target.split(".")
    only_type = rest[0] if rest else None
    cls = getattr(importlib.import_module(module_name), cls_name)
    original = getattr(cls, method)

    def die() -> None:
        marker.write_text(point)
        sys.stderr.write(f"crashing_agent: SIGKILL {when} {target}\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    def armed(args: tuple[Any, ...]) -> bool:
        return not marker.exists() and (only_type is None or _event_type(args) == only_type)

    @functools.wraps(original)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        fire = armed(args)
        if fire and when == "before":
            die()
        result = await original(*args, **kwargs)
        if fire and when == "after":
            die()
        return result

    setattr(cls, method, wrapper)


def main() -> None:
    point, agent, url = sys.argv[1:4]
    db = Path(os.environ["ORCHESTRA_KNOWLEDGE_DB"])
    marker = db.parent / f"crashed-{agent}-{hashlib.sha1(point.encode()).hexdigest()[:10]}"
    install(point, marker)
    from agents.cli.main import main as orchestra_main

    sys.argv = ["orchestra", "agent", agent, "--nats-url", url, "--connect-wait", "30"]
    orchestra_main()


if __name__ == "__main__":
    main()
