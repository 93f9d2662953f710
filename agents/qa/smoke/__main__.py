"""``python -m agents.qa.smoke PROJECT [ARTIFACTS]``: the smoke boot on its own, for trying it by hand.

ARTIFACTS is a folder ``orchestra generate`` wrote (default: PROJECT itself). Prints one line
per finding and exits 1 when a step failed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from agents.qa.smoke import SmokeOptions, smoke_boot

_GENERATED = ".orchestra-manifest.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.qa.smoke", description=__doc__)
    parser.add_argument("project", type=Path)
    parser.add_argument("artifacts", type=Path, nargs="?")
    parser.add_argument("--cache", type=Path, default=Path(".orchestra/smoke-cache"))
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--env-var", action="append", default=[], help="a name the service reads")
    args = parser.parse_args(argv)
    folder = args.artifacts or args.project
    files = _artifacts(folder)
    if not files:
        print(f"no artifacts in {folder}", file=sys.stderr)
        return 2
    started = time.monotonic()
    result = smoke_boot(
        files,
        args.project.resolve(),
        SmokeOptions(cache=args.cache, timeout_s=args.timeout),
        env_vars=args.env_var,
    )
    for item in result.findings:
        print(f"{item.severity.value.upper():6} {item.rule}: {item.message}")
    print(f"smoke boot ({result.tool}) took {time.monotonic() - started:.1f}s")
    return 1 if any(f.severity.failing for f in result.findings) else 0


def _artifacts(folder: Path) -> dict[str, str]:
    """The generated files of ``folder`` (those its manifest lists, else every small text file)."""
    import json

    manifest = folder / _GENERATED
    if manifest.is_file():
        names = list(json.loads(manifest.read_text(encoding="utf-8")).get("files", {}))
    else:
        names = [os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs]
    files = {}
    for name in names:
        path = folder / name
        try:
            files[name] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
    return files


if __name__ == "__main__":
    sys.exit(main())
