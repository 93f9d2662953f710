"""The agent registry (contracts/agents.py) is the one list of agents, and adding an agent is its
module plus one entry: every deploy file that names agents follows from the generators.

Pure: no server, no network (deploy/k8s rendered by Helm is in tests/test_deploy.py)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
import yaml

from agents.runner import UnknownAgent, agent_class
from contracts import vocabulary
from contracts.agents import AGENTS, AgentSpec, registry
from contracts.payloads import EventType
from contracts.subjects import ROUTES, routes
from deploy import render, render_compose, render_helm
from deploy.generated import ROOT, hand_written
from deploy.nats import render_auth

NEWCOMER = AgentSpec(
    "newcomer",
    "tests.unit.newcomer_agent:Newcomer",
    consumes=(EventType.ARTIFACT_SET_COMPLETED,),
    publishes=(EventType.KNOWLEDGE_NOTE,),
)
WITH_NEWCOMER = registry(*AGENTS.values(), NEWCOMER)


def test_the_registry_is_the_one_list_of_agents() -> None:
    assert list(ROUTES) == list(AGENTS)
    assert not hasattr(vocabulary, "AGENTS")
    for name, spec in AGENTS.items():
        cls = agent_class(name)  # the runner imports what the registry names
        assert cls.name == name
        assert (ROUTES[name].consumes, ROUTES[name].publishes) == (spec.consumes, spec.publishes)
    with pytest.raises(UnknownAgent, match="agents: architect, devops"):
        agent_class("nobody")
    assert [a.name for a in AGENTS.values() if a.owns_task_state] == ["devops"]


def test_a_bad_entry_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match="lower-case letters only"):
        replace(NEWCOMER, name="Newcomer-1")
    with pytest.raises(ValueError, match=r"not 'package\.module:Class'"):
        replace(NEWCOMER, worker="tests.unit.newcomer_agent.Newcomer")
    with pytest.raises(ValueError, match="consumes nothing"):
        replace(NEWCOMER, consumes=())
    with pytest.raises(ValueError, match="registered twice"):
        registry(NEWCOMER, NEWCOMER)
    with pytest.raises(ValueError, match="one agent owns the task state"):
        registry(*AGENTS.values(), replace(NEWCOMER, owns_task_state=True))


def test_adding_an_agent_changes_only_generated_files_and_regions() -> None:
    """One registry entry more: the generators change auth.conf, the compose file, the Helm values
    and values schema, each only inside its generated regions; nothing written by hand changes."""
    before, after = render.outputs(AGENTS), render.outputs(WITH_NEWCOMER)
    changed = sorted(str(p.relative_to(ROOT)) for p in after if after[p] != before[p])
    assert changed == [
        "deploy/docker-compose.yml",
        "deploy/helm/orchestra/values.schema.json",
        "deploy/helm/orchestra/values.yaml",
        "deploy/nats/auth.conf",
    ]
    for path in (render_compose.COMPOSE, render_helm.VALUES):
        assert hand_written(after[path]) == hand_written(before[path]), path

    compose = yaml.safe_load(after[render_compose.COMPOSE])
    service = compose["services"]["newcomer"]
    assert service["command"] == ["agent", "newcomer"]
    assert service["environment"]["ORCHESTRA_USER"] == "newcomer"
    assert (
        service["environment"]["ORCHESTRA_PASSWORD"] == "${ORCHESTRA_NEWCOMER_PASSWORD:?see deploy/README.md}"
    )
    assert service["image"].endswith("-slim") and service["read_only"] is True
    assert "ORCHESTRA_NEWCOMER_PASSWORD" in compose["services"]["nats"]["environment"]

    values = yaml.safe_load(after[render_helm.VALUES])
    assert values["workers"]["newcomer"]["consumers"] == ["newcomer-artifact_set_completed"]
    assert values["workers"]["newcomer"]["slim"] is True
    assert "ORCHESTRA_NEWCOMER_PASSWORD" in values["nats"]["container"]["env"]
    schema = json.loads(after[render_helm.SCHEMA])
    jsonschema.validate(values, schema)
    with pytest.raises(jsonschema.ValidationError):  # the old schema has no such worker
        jsonschema.validate(values, json.loads(before[render_helm.SCHEMA]))

    auth = after[render_auth.AUTH_CONF]
    assert 'user: "newcomer"' in auth and "$JS.ACK.ORCHESTRA_EVENTS.newcomer-artifact_set_completed.>" in auth
    # The client may not create (or rewrite) the new agent's durable either.
    client = next(u for u in render_auth.users(WITH_NEWCOMER) if u.name == render_auth.CLIENT)
    assert any("newcomer-artifact_set_completed" in d for d in client.deny_publish)
    assert routes(WITH_NEWCOMER)["newcomer"].consumers() == [
        ("newcomer-artifact_set_completed", "orchestra.evt.artifact_set.completed.*")
    ]


def test_a_validators_agent_gets_the_image_with_the_validators() -> None:
    heavy = registry(
        *AGENTS.values(), replace(NEWCOMER, deployment=replace(NEWCOMER.deployment, image="validators"))
    )
    compose = yaml.safe_load(render_compose.outputs(heavy)[render_compose.COMPOSE])
    assert compose["services"]["newcomer"]["build"]["args"]["EXTRAS"] == "validators"
    assert compose["services"]["newcomer"]["image"] == compose["services"]["qa"]["image"]
    values = yaml.safe_load(render_helm.outputs(heavy)[render_helm.VALUES])
    assert values["workers"]["newcomer"]["slim"] is False


def test_the_chart_runs_one_agent_with_a_volume() -> None:
    stateful = replace(NEWCOMER, deployment=replace(NEWCOMER.deployment, data="1Gi"))
    with pytest.raises(ValueError, match="one agent with a volume, knowledge"):
        render_helm.outputs(registry(*AGENTS.values(), stateful))


def _hand_written_files() -> dict[Path, str]:
    """What a deployment is made of: compose, the chart's values and templates (the chart's
    description in Chart.yaml is prose, like the READMEs)."""
    chart = ROOT / "deploy/helm/orchestra"
    files = [ROOT / "deploy/docker-compose.yml", chart / "values.yaml", *(chart / "templates").rglob("*")]
    return {p: hand_written(p.read_text()) for p in files if p.is_file()}


def test_no_hand_written_deploy_file_names_a_worker_agent() -> None:
    """What keeps adding an agent at one entry: compose, the chart's templates and values name no
    worker agent outside generated regions (the knowledge StatefulSet is the chart's one special
    agent)."""
    workers = [a for a in AGENTS if a != render_helm.STATEFUL_AGENT]
    word = re.compile(rf"\b({'|'.join(workers)})\b")
    for path, text in _hand_written_files().items():
        named = sorted({m.group(1) for m in word.finditer(text)})
        assert named == [], f"{path.relative_to(ROOT)} names {named} outside its generated regions"
