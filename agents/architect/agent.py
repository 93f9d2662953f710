"""The architect: turns a task into decisions and a requirement for DevOps."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from agents.architect.planner import NotUnderstood, Plan, plan
from agents.paths import PathEscape, resolve_inside
from agents.worker import Context, Worker, handles
from bus.errors import Reject
from contracts import Envelope, EventType
from contracts.envelope import same_event
from contracts.limits import TASK_STATE_MAX_BYTES, checked, max_length
from contracts.payloads import (
    CredentialRequested,
    DecisionRecorded,
    Model,
    RequirementIssued,
    ServiceSpec,
    StatusChanged,
    TaskRequested,
)
from contracts.redaction import mask_event
from contracts.vocabulary import DeploymentState, NoteKind, Target

if TYPE_CHECKING:
    from agents.inspection.facts import ProjectFacts

S = DeploymentState


def decisions(p: Plan, facts: ServiceSpec) -> list[DecisionRecorded]:
    """The architecture decisions a plan implies, each with its reason."""
    stack = f"{facts.language} {facts.language_version or ''} {facts.framework or ''}".split()
    out = [
        DecisionRecorded(
            topic="platform",
            decision=f"{p.platform} for {' '.join(stack)} service {facts.name} on port {facts.port}",
            rationale=f"requested: {', '.join(p.intents)}",
        ),
        health_decision(facts),
        DecisionRecorded(
            topic="strategy",
            decision=f"{p.strategy.value} deployment",
            rationale="; ".join(p.rationale) or "asked for in the request",
        ),
        DecisionRecorded(
            topic="environments",
            decision=" -> ".join(p.environments),
            rationale="promotion in this order; production behind a manual gate",
        ),
    ]
    if Target.K8S in p.targets or Target.HELM in p.targets:
        out.append(
            DecisionRecorded(
                topic="scaling",
                decision="HPA autoscaling/v2: 2..10 replicas at 70% CPU, PDB minAvailable 1",
                rationale="two replicas survive a node drain; CPU is the signal a stateless web service has",
            )
        )
    elif Target.ECS in p.targets:
        out.append(
            DecisionRecorded(
                topic="scaling",
                decision="ECS service desired 2, target tracking at 70% CPU up to 10 tasks",
                rationale="Fargate tasks in two AZs behind the ALB",
            )
        )
    if Target.CI in p.targets:
        out.append(
            DecisionRecorded(
                topic="ci",
                decision=f"{p.ci.value}: test -> build -> scan -> push (tag = commit sha) -> gated deploy",
                rationale="every change tested and scanned before it can reach an environment",
            )
        )
    return out


def health_decision(facts: ServiceSpec) -> DecisionRecorded:
    """How every artifact checks the service's health, and why (a TCP probe is said out loud: the
    user should add a health route)."""
    if facts.probe == "tcp":
        return DecisionRecorded(
            topic="health",
            decision=f"TCP probes on port {facts.port} (Dockerfile, Compose, Kubernetes, Helm, ECS)",
            rationale="no health route found in the app's routes: an HTTP probe would get 404 and restart "
            "healthy pods; add a GET route that answers without data and pass --health-path",
        )
    return DecisionRecorded(
        topic="health",
        decision=f"HTTP probes on GET {facts.health_path} port {facts.port} (every artifact)",
        rationale="the route the app serves, with its router prefixes; or given with --health-path",
    )


class Architect(Worker):
    name: ClassVar[str] = "architect"

    @handles(EventType.TASK_REQUESTED)
    async def plan_task(self, event: Envelope, ctx: Context) -> None:
        task = event.payload
        assert isinstance(task, TaskRequested)
        # A task id is created once: the first task.requested stored on the task's subject is the
        # task. That one again (a redelivery, a client's retry) is planned again idempotently (the
        # same follow-up ids); any other is refused, and the task it names is left alone. The
        # stream decides, so every architect replica decides the same.
        # The event in hand was masked at ingestion (agents/worker.py): compare like with like, or
        # a client that sent a secret unmasked would find its own task "already exists".
        first = await self.bus.first_event(event.subject())
        if first is not None and not same_event(mask_event(first), event):
            raise Reject(f"task {event.task_id} already exists (created by event {first.id})")
        ctx.status(S.RECEIVED, None, f"task received: {task.text or 'structured request'}")
        ctx.status(S.PLANNING, S.RECEIVED, "architect is planning")
        try:
            project = resolve_inside(self.settings.workspace, task.project, what="project path")
            # Refused here, before DevOps, QA and security spend any work on a task that cannot land.
            output_dir = task.output_dir or task.project
            output = resolve_inside(self.settings.workspace, output_dir, what="output dir")
            fits_contract(StatusChanged, "output_dir", str(output), "output dir")
            if not project.is_dir():
                raise FileNotFoundError(f"project path {task.project!r} is not a directory")
            the_plan = plan(task)
            # Inspection reads the project (files, bounded): off the event loop, so the consumer's
            # heartbeat keeps the message in progress however long it takes.
            found = await asyncio.to_thread(self._inspect, project, task.service)
            facts = found.to_spec()
            check_credentials(facts, the_plan)
        except (NotUnderstood, PathEscape, FileNotFoundError, ValueError) as exc:
            ctx.status(S.FAILED, S.PLANNING, str(exc))
            ctx.note(NoteKind.STATUS, f"Status: task failed in planning - {exc}")
            return
        for decision in decisions(the_plan, facts):
            ctx.emit(EventType.DECISION_RECORDED, decision)
        ctx.note(
            NoteKind.DECISION,
            f"Architecture: {the_plan.platform}, {the_plan.strategy.value} deployment, "
            f"targets {', '.join(t.value for t in the_plan.targets)}, CI {the_plan.ci.value}",
        )
        if found.assumptions:  # defaults taken and files inspection skipped: on record, searchable
            ctx.note(NoteKind.DECISION, "Inspection assumptions: " + "; ".join(found.assumptions))
        ctx.emit(
            EventType.REQUIREMENT_ISSUED,
            RequirementIssued(
                request=task.text or "structured request",
                project=task.project,
                targets=list(the_plan.targets),
                strategy=the_plan.strategy,
                ci=the_plan.ci,
                environments=list(the_plan.environments),
                output_dir=task.output_dir,
                service=task.service or ServiceSpec(),
            ),
        )

    def _inspect(self, project: Path, overrides: ServiceSpec | None) -> ProjectFacts:
        from agents.inspection.inspect import InspectionError, inspect_project

        try:
            return inspect_project(project, overrides)
        except InspectionError as exc:
            raise ValueError(str(exc)) from None


def fits_contract(model: type[Model], field: str, value: str, what: str) -> None:
    """Refuse ``value`` (one line: how long, the limit, by how much) when it will not fit
    ``model.field`` of an event the task leads to."""
    limit = max_length(model, field)
    if limit is not None and len(value) > limit:
        n = len(value)
        raise ValueError(f"{what} resolves to {n:,} characters, over the limit of {limit:,} by {n - limit:,}")


# What a task's state holds besides its credential references (requirement, facts, slimmed reports).
STATE_ROOM = 64 * 1024


def check_credentials(facts: ServiceSpec, the_plan: Plan) -> None:
    """Refuse, at planning, a task whose credential references would not fit their event (more
    secrets x environments x target families than ``credential.issued`` carries, a secret store key
    longer than a name) or the task state DevOps keeps them in: the credential manager or DevOps
    could only fail it later, over and over, with the task failing at its deadline."""
    from agents.credential_policy import issue

    request = checked(
        "credential request",
        lambda: CredentialRequested(
            service=facts.name or "app",
            env_vars=list(facts.env_vars or []),
            targets=list(the_plan.targets),
            environments=list(the_plan.environments),
        ),
    )
    issued = checked("credential references for this task", lambda: issue(request))
    size, limit = len(issued.model_dump_json().encode()), TASK_STATE_MAX_BYTES - STATE_ROOM
    if size > limit:
        raise ValueError(
            f"credential references for this task ({len(issued.secrets):,}) take {size:,} bytes, over "
            f"the {limit:,} a task's state keeps by {size - limit:,}: fewer secrets or environments"
        )
