"""The agent registry: every agent of the orchestra, once.

An entry says what the agent is (its name and the worker class that runs it), what it consumes and
may publish, and what running it takes (image, replicas, resources, a volume of its own).
Everything else is derived from this table:

- the subject table's routes and durable consumers (``contracts.subjects.ROUTES``), and through
  them the AsyncAPI document and the event tables of docs/events.md;
- the process runner (``orchestra up``, ``orchestra agent NAME``: agents/runner.py);
- the NATS users and their permissions (deploy/nats/render_auth.py), the compose services, the
  Helm values and schema, and the Kubernetes manifests (``python -m deploy.render``).

Adding an agent is its module (a :class:`agents.worker.Worker` subclass) and one entry here, then
the generators. The worker is named as ``"package.module:Class"`` and imported only by the runner,
so this module stays pure data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from contracts.payloads import EventType

# Agent names become NATS user names, durable consumer names (``<agent>-<event_type>``), compose
# service names and Kubernetes object names: lower-case letters only.
_NAME = re.compile(r"[a-z]+")
_WORKER = re.compile(r"[a-z_][a-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Resources:
    """CPU and memory of one agent pod (Kubernetes requests and limits)."""

    cpu: str = "50m"
    memory: str = "128Mi"
    cpu_limit: str = "500m"
    memory_limit: str = "256Mi"


@dataclass(frozen=True)
class Scaling:
    """Autoscaling of an agent's Deployment on the lag of its durable consumers (KEDA)."""

    min_replicas: int = 2
    max_replicas: int = 6
    lag_threshold: int = 20


@dataclass(frozen=True)
class Deployment:
    """What running the agent as a container takes.

    image: ``slim`` (the image without the artifact validators) or ``validators`` (the image with
      them: only an agent that runs them needs its size).
    replicas: pods when autoscaling is off (at least 2, so a disruption budget can keep one).
    resources / scaling: the pod's CPU and memory; KEDA's bounds and lag threshold.
    data: size of a volume of the agent's own at ``/data`` (``None``: none). Such an agent keeps a
      file there (the knowledge store's SQLite), so it runs as one pod, a StatefulSet.
    env: environment of its own, beyond what every agent gets.
    """

    image: Literal["slim", "validators"] = "slim"
    replicas: int = 2
    resources: Resources = field(default_factory=Resources)
    scaling: Scaling = field(default_factory=Scaling)
    data: str | None = None
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class AgentSpec:
    """One agent: name, worker class, what it consumes and publishes, how it is deployed.

    owns_task_state: the agent keeps each task's deployment state in the task-state bucket (only
      it may use the bucket's keys).
    """

    name: str
    worker: str
    consumes: tuple[EventType, ...]
    publishes: tuple[EventType, ...]
    owns_task_state: bool = False
    deployment: Deployment = field(default_factory=Deployment)

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"agent name {self.name!r}: lower-case letters only")
        if not _WORKER.fullmatch(self.worker):
            raise ValueError(f"agent {self.name}: worker {self.worker!r} is not 'package.module:Class'")
        if not self.consumes:
            raise ValueError(f"agent {self.name} consumes nothing")


def registry(*agents: AgentSpec) -> dict[str, AgentSpec]:
    """Agents by name, in the order given; refuses a name given twice or two task-state owners."""
    table: dict[str, AgentSpec] = {}
    for agent in agents:
        if agent.name in table:
            raise ValueError(f"agent {agent.name} is registered twice")
        table[agent.name] = agent
    if sum(a.owns_task_state for a in table.values()) > 1:
        raise ValueError("one agent owns the task state")
    return table


_E = EventType
AGENTS: dict[str, AgentSpec] = registry(
    AgentSpec(
        "architect",
        "agents.architect.agent:Architect",
        consumes=(_E.TASK_REQUESTED,),
        publishes=(_E.DECISION_RECORDED, _E.REQUIREMENT_ISSUED, _E.STATUS_CHANGED, _E.KNOWLEDGE_NOTE),
    ),
    AgentSpec(
        "devops",
        "agents.devops.agent:DevOps",
        consumes=(_E.REQUIREMENT_ISSUED, _E.CREDENTIAL_ISSUED, _E.REPORT_QA, _E.REPORT_SECURITY),
        publishes=(
            _E.CREDENTIAL_REQUESTED,
            _E.ARTIFACT_SET_COMPLETED,
            _E.DECISION_RECORDED,
            _E.STATUS_CHANGED,
            _E.KNOWLEDGE_NOTE,
        ),
        owns_task_state=True,
        deployment=Deployment(
            resources=Resources(cpu="100m", memory="192Mi", cpu_limit="1", memory_limit="512Mi"),
            scaling=Scaling(max_replicas=8),
        ),
    ),
    AgentSpec(
        "credentials",
        "agents.credentials.agent:Credentials",
        consumes=(_E.CREDENTIAL_REQUESTED,),
        publishes=(_E.CREDENTIAL_ISSUED, _E.KNOWLEDGE_NOTE),
        deployment=Deployment(scaling=Scaling(max_replicas=4)),
    ),
    AgentSpec(
        "qa",
        "agents.qa.agent:QA",
        consumes=(_E.ARTIFACT_SET_COMPLETED,),
        publishes=(_E.REPORT_QA, _E.KNOWLEDGE_NOTE),
        deployment=Deployment(
            image="validators",
            resources=Resources(cpu="200m", memory="384Mi", cpu_limit="2", memory_limit="1Gi"),
            scaling=Scaling(max_replicas=8, lag_threshold=5),
        ),
    ),
    AgentSpec(
        "security",
        "agents.security.agent:Security",
        consumes=(_E.ARTIFACT_SET_COMPLETED,),
        publishes=(_E.REPORT_SECURITY, _E.DECISION_RECORDED, _E.KNOWLEDGE_NOTE),
        deployment=Deployment(
            resources=Resources(cpu="100m", memory="192Mi", cpu_limit="1", memory_limit="512Mi"),
            scaling=Scaling(lag_threshold=5),
        ),
    ),
    AgentSpec(
        "knowledge",
        "agents.knowledge.agent:Knowledge",
        consumes=tuple(EventType),
        publishes=(),
        deployment=Deployment(
            replicas=1,
            resources=Resources(cpu="100m", memory="192Mi", cpu_limit="1", memory_limit="512Mi"),
            data="5Gi",
            env=(("ORCHESTRA_KNOWLEDGE_DB", "/data/knowledge.sqlite3"),),
        ),
    ),
)
