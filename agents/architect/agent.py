"""The architect: turns a task into decisions and a requirement for DevOps."""

from __future__ import annotations

from typing import ClassVar

from agents.architect.planner import NotUnderstood, Plan, plan
from agents.paths import PathEscape, resolve_inside
from agents.worker import Context, Worker, handles
from bus.errors import Reject
from contracts import Envelope, EventType
from contracts.envelope import same_event
from contracts.payloads import DecisionRecorded, RequirementIssued, ServiceSpec, TaskRequested
from contracts.vocabulary import DeploymentState, NoteKind, Target

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
        first = await self.bus.first_event(event.subject())
        if first is not None and not same_event(first, event):
            raise Reject(f"task {event.task_id} already exists (created by event {first.id})")
        ctx.status(S.RECEIVED, None, f"task received: {task.text or 'structured request'}")
        ctx.status(S.PLANNING, S.RECEIVED, "architect is planning")
        try:
            project = resolve_inside(self.settings.workspace, task.project, what="project path")
            if not project.is_dir():
                raise FileNotFoundError(f"project path {task.project!r} is not a directory")
            the_plan = plan(task)
            facts = self._inspect(project, task.service)
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

    def _inspect(self, project, overrides: ServiceSpec | None) -> ServiceSpec:
        from agents.devops.inspect import InspectionError, inspect_project

        try:
            return inspect_project(project, overrides).to_spec()
        except InspectionError as exc:
            raise ValueError(str(exc)) from None
