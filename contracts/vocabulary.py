"""Closed vocabularies shared by events, generators and the CLI."""

from __future__ import annotations

from enum import StrEnum


class Target(StrEnum):
    """A family of deployment artifacts the DevOps agent can generate."""

    DOCKER = "docker"
    CI = "ci"
    K8S = "k8s"
    HELM = "helm"
    ECS = "ecs"
    TERRAFORM = "terraform"
    MONITORING = "monitoring"
    DOCS = "docs"


class Strategy(StrEnum):
    ROLLING = "rolling"
    BLUE_GREEN = "blue-green"
    CANARY = "canary"


class CIProvider(StrEnum):
    GITHUB = "github"
    GITLAB = "gitlab"
    JENKINS = "jenkins"


class DeploymentState(StrEnum):
    """The deployment status of one task: received -> planning -> generating -> validating -> ready or
    failed; deploying, deployed and rolled_back are reserved for an agent that applies the artifacts."""

    RECEIVED = "received"
    PLANNING = "planning"
    GENERATING = "generating"
    VALIDATING = "validating"
    READY = "ready"
    DEPLOYING = "deploying"
    DEPLOYED = "deployed"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"

    @property
    def terminal(self) -> bool:
        """The task has ended: no agent moves it further (``deployed`` may still be rolled back)."""
        return self in TERMINAL_STATES

    @property
    def succeeded(self) -> bool:
        """The task ended well: its artifacts are ready, or deployed."""
        return self in SUCCESS_STATES


SUCCESS_STATES = frozenset({DeploymentState.READY, DeploymentState.DEPLOYED})
TERMINAL_STATES = SUCCESS_STATES | {DeploymentState.FAILED, DeploymentState.ROLLED_BACK}

# Allowed transitions; anything else is a bug in the agent that tried it.
TRANSITIONS: dict[DeploymentState, frozenset[DeploymentState]] = {
    DeploymentState.RECEIVED: frozenset({DeploymentState.PLANNING, DeploymentState.FAILED}),
    DeploymentState.PLANNING: frozenset({DeploymentState.GENERATING, DeploymentState.FAILED}),
    DeploymentState.GENERATING: frozenset({DeploymentState.VALIDATING, DeploymentState.FAILED}),
    DeploymentState.VALIDATING: frozenset(
        {DeploymentState.READY, DeploymentState.DEPLOYING, DeploymentState.FAILED}
    ),
    DeploymentState.DEPLOYING: frozenset(
        {DeploymentState.DEPLOYED, DeploymentState.FAILED, DeploymentState.ROLLED_BACK}
    ),
    DeploymentState.READY: frozenset(),
    DeploymentState.DEPLOYED: frozenset({DeploymentState.ROLLED_BACK}),
    DeploymentState.FAILED: frozenset(),
    DeploymentState.ROLLED_BACK: frozenset(),
}


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    # The two thresholds a finding can cross, each defined here once (docs/artifacts.md).
    @property
    def failing(self) -> bool:
        """Above LOW: fails a QA report, and is listed when a review fails a task."""
        return self not in (Severity.INFO, Severity.LOW)

    @property
    def blocking(self) -> bool:
        """HIGH or CRITICAL: blocks a security report, and DevOps never writes a literal secret this bad."""
        return self in (Severity.HIGH, Severity.CRITICAL)


class NoteKind(StrEnum):
    """What a knowledge note records: an edit (files written), a decision, a status, or a completion."""

    EDIT = "edit"
    DECISION = "decision"
    STATUS = "status"
    COMPLETION = "completion"


class SecretKind(StrEnum):
    K8S_SECRET = "k8s_secret"
    EXTERNAL_SECRET = "external_secret"
    SECRETS_MANAGER = "secrets_manager"
    SSM_PARAMETER = "ssm_parameter"
    CI_SECRET = "ci_secret"
