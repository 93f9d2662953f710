"""The agents' part of the Helm chart, generated from the agent registry (contracts/agents.py).

``python -m deploy.render_helm`` rewrites two generated regions of
``deploy/helm/orchestra/values.yaml``, ``workers`` (one block per agent that runs as a Deployment:
replicas, image, durable consumers, resources, autoscaling) and ``knowledge`` (the agent with a
volume of its own, a StatefulSet), and in ``values.schema.json`` the list of workers (each is a
``#/definitions/worker``). The templates range over ``workers``, so a new agent needs no template.
``--check`` exits 1 when a file differs from what it would write. Image tags, probes, security
contexts and NATS stay as written; the NATS users and passwords come from
deploy/nats/render_auth.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path

from contracts.agents import AGENTS, AgentSpec
from contracts.subjects import routes
from deploy.generated import ROOT, Reader, read_text, splice, sync, yaml_scalar

CHART = ROOT / "deploy/helm/orchestra"
VALUES = CHART / "values.yaml"
SCHEMA = CHART / "values.schema.json"
WORKERS = "deploy/render_helm.py (workers)"
STATEFUL = "deploy/render_helm.py (knowledge)"
# The chart's StatefulSet, its service and its disruption budget are written for this one agent.
STATEFUL_AGENT = "knowledge"


def split(agents: Mapping[str, AgentSpec]) -> tuple[list[AgentSpec], AgentSpec]:
    """The agents that run as Deployments, and the one with a volume of its own."""
    workers = [a for a in agents.values() if a.deployment.data is None]
    stateful = [a for a in agents.values() if a.deployment.data is not None]
    if [a.name for a in stateful] != [STATEFUL_AGENT]:
        names = ", ".join(a.name for a in stateful) or "none"
        raise ValueError(
            f"the chart runs one agent with a volume, {STATEFUL_AGENT} (registered: {names}); "
            "another needs a StatefulSet template of its own"
        )
    return workers, stateful[0]


def _resources(agent: AgentSpec) -> list[str]:
    r = agent.deployment.resources
    return [
        "resources:",
        f"  requests: {{cpu: {yaml_scalar(r.cpu)}, memory: {yaml_scalar(r.memory)}}}",
        f"  limits: {{cpu: {yaml_scalar(r.cpu_limit)}, memory: {yaml_scalar(r.memory_limit)}}}",
    ]


def _consumers(agent: AgentSpec, all_routes: Mapping) -> list[str]:
    return ["consumers:", *(f"  - {durable}" for durable, _ in all_routes[agent.name].consumers())]


def workers_lines(agents: Mapping[str, AgentSpec] = AGENTS) -> list[str]:
    """The ``workers`` block of values.yaml."""
    workers, _ = split(agents)
    all_routes = routes(agents)
    lines = ["workers:"]
    for agent in workers:
        d = agent.deployment
        block = [
            f"replicas: {d.replicas}",
            f"slim: {'true' if d.image == 'slim' else 'false'}",
            *_consumers(agent, all_routes),
            *_resources(agent),
            "autoscaling:",
            "  enabled: true",
            f"  minReplicas: {d.scaling.min_replicas}",
            f"  maxReplicas: {d.scaling.max_replicas}",
            f"  lagThreshold: {d.scaling.lag_threshold}",
        ]
        lines += [f"  {agent.name}:", *(f"    {line}" for line in block)]
    return lines


def stateful_lines(agents: Mapping[str, AgentSpec] = AGENTS) -> list[str]:
    """The ``knowledge`` block of values.yaml."""
    _, agent = split(agents)
    block = [
        *_consumers(agent, routes(agents)),
        *_resources(agent),
        "persistence:",
        f"  size: {yaml_scalar(agent.deployment.data or '')}",
        '  storageClassName: ""',
    ]
    return [f"{STATEFUL_AGENT}:", *(f"  {line}" for line in block)]


def schema_text(current: str, agents: Mapping[str, AgentSpec] = AGENTS) -> str:
    """values.schema.json with ``workers`` naming exactly the registry's Deployment agents."""
    workers, _ = split(agents)
    schema = json.loads(current)
    names = [a.name for a in workers]
    schema["properties"]["workers"]["required"] = names
    schema["properties"]["workers"]["properties"] = {n: {"$ref": "#/definitions/worker"} for n in names}
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def outputs(agents: Mapping[str, AgentSpec] = AGENTS, read: Reader = read_text) -> dict[Path, str]:
    """Each generated file and the text it must have."""
    values = splice(read(VALUES), WORKERS, workers_lines(agents), where=VALUES)
    values = splice(values, STATEFUL, stateful_lines(agents), where=VALUES)
    return {VALUES: values, SCHEMA: schema_text(read(SCHEMA), agents)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a generated file is stale")
    args = parser.parse_args(argv)
    return sync(outputs(), check=args.check, command="python -m deploy.render_helm")


if __name__ == "__main__":
    sys.exit(main())
