"""The agents' part of deploy/docker-compose.yml, generated from the agent registry (contracts/agents.py).

``python -m deploy.render_compose`` rewrites three generated regions of the compose file: one
service per agent (``orchestra agent NAME`` as its own NATS user, on the shared ``x-agent``
settings; the ``x-validators`` image and build for an agent that asks for it; its own volume and
environment), the volumes those services own, and the NATS service's password variables (one per
NATS user of deploy/nats/render_auth.py). NATS itself, the provisioning one-shot, the shared
settings and the networks stay as written. ``--check`` exits 1 when the file differs from what it
would write.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

from contracts.agents import AGENTS, AgentSpec
from deploy.generated import ROOT, Reader, read_text, splice, sync
from deploy.nats.render_auth import password_env, users

COMPOSE = ROOT / "deploy/docker-compose.yml"
AGENT_SERVICES = "deploy/render_compose.py (agents)"
AGENT_VOLUMES = "deploy/render_compose.py (volumes)"
PASSWORDS = "deploy/render_compose.py (passwords)"
DATA = "/data"


def required(variable: str) -> str:
    """A compose variable reference that stops compose when the variable is unset: no defaults."""
    return f"${{{variable}:?see deploy/README.md}}"


def volume(agent: AgentSpec) -> str:
    """The name of the volume an agent with data of its own keeps it in."""
    return f"{agent.name}-data"


def service_lines(agent: AgentSpec) -> list[str]:
    """One agent's service."""
    d = agent.deployment
    lines = [f"{agent.name}:", "  <<: *agent"]
    if d.image == "validators":
        lines += [
            "  # The image with the artifact validators.",
            "  image: *validators-image",
            "  build: *validators-build",
        ]
    lines += [
        f'  command: ["agent", "{agent.name}"]',
        "  environment:",
        "    <<: *agent-env",
        f"    ORCHESTRA_USER: {agent.name}",
        f"    ORCHESTRA_PASSWORD: {required(password_env(agent.name))}",
        *(f"    {key}: {value}" for key, value in d.env),
    ]
    if d.data is not None:
        lines += ["  volumes:", "    - workspace:/workspace", f"    - {volume(agent)}:{DATA}"]
    return lines


def services_lines(agents: Mapping[str, AgentSpec] = AGENTS) -> list[str]:
    """Every agent's service, a blank line between two."""
    lines: list[str] = []
    for agent in agents.values():
        lines += [*([""] if lines else []), *service_lines(agent)]
    return lines


def volumes_lines(agents: Mapping[str, AgentSpec] = AGENTS) -> list[str]:
    return [f"{volume(a)}: {{}}" for a in agents.values() if a.deployment.data is not None]


def passwords_lines(agents: Mapping[str, AgentSpec] = AGENTS) -> list[str]:
    return [f"{u.password_env}: {required(u.password_env)}" for u in users(agents)]


def outputs(agents: Mapping[str, AgentSpec] = AGENTS, read: Reader = read_text) -> dict[Path, str]:
    """Each generated file and the text it must have."""
    text = splice(read(COMPOSE), PASSWORDS, passwords_lines(agents), where=COMPOSE)
    text = splice(text, AGENT_SERVICES, services_lines(agents), where=COMPOSE)
    return {COMPOSE: splice(text, AGENT_VOLUMES, volumes_lines(agents), where=COMPOSE)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a generated file is stale")
    args = parser.parse_args(argv)
    return sync(outputs(), check=args.check, command="python -m deploy.render_compose")


if __name__ == "__main__":
    sys.exit(main())
