"""Understanding a request: natural text (or the structured form) -> a plan. Pure, no I/O.

The planner never guesses: a request with nothing it recognises is refused with the
list of what it does understand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TypeVar

from contracts.payloads import TaskRequested
from contracts.vocabulary import CIProvider, Strategy, Target

# (pattern, targets it asks for, what it is called in the refusal message)
_INTENTS: tuple[tuple[str, tuple[Target, ...], str], ...] = (
    (r"\b(containeri[sz]e|docker(ize|ise|file)?|container(s)?|image)\b", (Target.DOCKER,), "containerize"),
    (
        r"\b(ci\s*/\s*cd|ci|cd|pipelines?|github\s+actions|gitlab(\s+ci)?|jenkins(file)?|continuous)\b",
        (Target.DOCKER, Target.CI),
        "set up CI/CD (GitHub Actions, GitLab CI, Jenkins)",
    ),
    (
        r"\b(ecs|fargate|aws|cloudformation)\b",
        (Target.DOCKER, Target.ECS, Target.TERRAFORM, Target.DOCS),
        "deploy to AWS ECS",
    ),
    (
        r"\b(kubernetes|k8s|helm|eks|gke|aks)\b",
        (Target.DOCKER, Target.K8S, Target.HELM, Target.DOCS),
        "deploy to Kubernetes",
    ),
    (r"\bterraform\b", (Target.TERRAFORM,), "terraform"),
    (
        r"\b(monitor(ing)?|prometheus|grafana|alert(s|ing)?|observability)\b",
        (Target.MONITORING,),
        "monitoring",
    ),
    (r"\b(docs|documentation|runbooks?)\b", (Target.DOCS,), "documentation/runbooks"),
    (r"\b(full|everything|all\s+artifacts|production[- ]ready)\b", tuple(Target), "everything (full set)"),
)
_STRATEGIES: tuple[tuple[str, Strategy], ...] = (
    (r"\bcanary\b", Strategy.CANARY),
    (r"\bblue[\s/-]*green\b", Strategy.BLUE_GREEN),
    (r"\brolling\b", Strategy.ROLLING),
)
_CI: tuple[tuple[str, CIProvider], ...] = (
    (r"\bgitlab\b", CIProvider.GITLAB),
    (r"\bjenkins(file)?\b", CIProvider.JENKINS),
    (r"\bgithub\b", CIProvider.GITHUB),
)
_ENVIRONMENTS = ("dev", "staging", "prod")
_T = TypeVar("_T")

UNDERSTOOD = (
    *(label for _, _, label in _INTENTS),
    "strategies: rolling, blue-green, canary",
    "or the structured form with explicit targets",
)


class NotUnderstood(ValueError):
    """The request names nothing the architect can plan."""


@dataclass(frozen=True)
class Plan:
    targets: tuple[Target, ...]
    strategy: Strategy
    ci: CIProvider
    environments: tuple[str, ...]
    intents: tuple[str, ...] = field(default_factory=tuple)
    rationale: tuple[str, ...] = field(default_factory=tuple)

    @property
    def platform(self) -> str:
        if Target.K8S in self.targets or Target.HELM in self.targets:
            return "kubernetes"
        if Target.ECS in self.targets:
            return "aws-ecs"
        return "containers" if Target.DOCKER in self.targets else "none"


def plan(task: TaskRequested) -> Plan:
    """Decide targets, strategy, CI provider and environments for a task."""
    text = task.text.lower()
    targets: list[Target] = []
    intents: list[str] = []
    for pattern, wanted, label in _INTENTS:
        if re.search(pattern, text):
            intents.append(label)
            targets.extend(t for t in wanted if t not in targets)
    if task.targets:
        targets = list(dict.fromkeys(task.targets))
        intents.append("structured targets")
    if not targets:
        raise NotUnderstood(
            f"I do not understand {task.text!r}. I understand: " + "; ".join(UNDERSTOOD) + "."
        )
    # Deployments need an image to deploy.
    if (
        any(t in targets for t in (Target.K8S, Target.HELM, Target.ECS, Target.CI))
        and Target.DOCKER not in targets
    ):
        targets.insert(0, Target.DOCKER)

    rationale: list[str] = []
    strategy = task.strategy or _first(_STRATEGIES, text) or Strategy.ROLLING
    if task.strategy is None and _first(_STRATEGIES, text) is None:
        rationale.append("rolling update by default: zero downtime with maxUnavailable 0")
    ci = task.ci or _first(_CI, text) or CIProvider.GITHUB
    environments = tuple(
        task.environments or [e for e in _ENVIRONMENTS if re.search(rf"\b{e}\w*\b", text)] or _ENVIRONMENTS
    )
    order = list(Target)
    return Plan(
        targets=tuple(sorted(targets, key=order.index)),
        strategy=strategy,
        ci=ci,
        environments=environments,
        intents=tuple(intents),
        rationale=tuple(rationale),
    )


def _first(table: tuple[tuple[str, _T], ...], text: str) -> _T | None:
    for pattern, value in table:
        if re.search(pattern, text):
            return value
    return None
