"""The example services under examples/ that the agents deploy (tests and bench/ iterate them)."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# examples/clients/ holds programs that use the orchestra (e.g. the Node.js client), not services.
CLIENTS = "clients"


def service_examples() -> list[Path]:
    """Every example service folder, sorted by name."""
    return sorted(p for p in EXAMPLES.iterdir() if p.is_dir() and p.name != CLIENTS)
