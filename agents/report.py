"""The orchestra's performance figures, computed from the events the knowledge store keeps. Pure: rows in,
figures out (``orchestra report`` reads the rows, agents/cli/report.py prints them).

- deployment success rate: tasks that ended ``ready`` or ``deployed`` among those that ended (target >95%);
- time per stage, per task, from the events' ``occurred_at``:
    planning    task.requested -> status generating
    generation  status generating -> status validating
    validation  status validating -> the terminal status
    security    artifact_set.completed -> report.security
    total       task.requested -> the terminal status
- tasks per hour: tasks that ended, over the time from the first request to the last end;
- failure reasons, grouped by what failed (the reason up to its first colon) and the agent that said so.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from contracts.vocabulary import SUCCESS_STATES, TERMINAL_STATES

SUCCESS_TARGET = 0.95
STAGES = ("planning", "generation", "validation", "security", "total")


@dataclass(frozen=True)
class StageTimes:
    """Seconds one stage took, over the tasks that went through it."""

    tasks: int
    mean_s: float
    p50_s: float
    p95_s: float
    max_s: float


@dataclass(frozen=True)
class FailureGroup:
    """Failed tasks that failed the same way: ``cause`` is the reason up to its first colon."""

    cause: str
    agent: str
    tasks: int
    example: str


@dataclass
class PerformanceReport:
    tasks: int = 0
    finished: int = 0
    succeeded: int = 0
    failed: int = 0
    in_progress: int = 0
    success_rate: float | None = None
    success_target: float = SUCCESS_TARGET
    tasks_per_hour: float | None = None
    window_s: float = 0.0
    stages: dict[str, StageTimes | None] = field(default_factory=dict)
    failures: list[FailureGroup] = field(default_factory=list)

    @property
    def meets_target(self) -> bool | None:
        return None if self.success_rate is None else self.success_rate > self.success_target

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["meets_target"] = self.meets_target
        return out


@dataclass
class _Task:
    """The moments that matter of one task (first occurrence of each)."""

    requested: datetime | None = None
    generating: datetime | None = None
    validating: datetime | None = None
    artifacts: datetime | None = None
    security: datetime | None = None
    ended: datetime | None = None
    state: str | None = None
    reason: str = ""
    agent: str = ""


def _when(row: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(row["occurred_at"]).replace("Z", "+00:00"))


def _first(current: datetime | None, new: datetime) -> datetime:
    return new if current is None or new < current else current


def _collect(rows: Iterable[Mapping[str, Any]]) -> dict[str, _Task]:
    tasks: dict[str, _Task] = defaultdict(_Task)
    for row in rows:
        kind = row.get("type")
        if kind not in ("task.requested", "status.changed", "artifact_set.completed", "report.security"):
            continue
        task = tasks[str(row["task_id"])]
        at = _when(row)
        if kind == "task.requested":
            task.requested = _first(task.requested, at)
        elif kind == "artifact_set.completed":
            task.artifacts = _first(task.artifacts, at)
        elif kind == "report.security":
            task.security = _first(task.security, at)
        else:
            payload = row.get("payload") or {}
            state = payload.get("state")
            if state == "generating":
                task.generating = _first(task.generating, at)
            elif state == "validating":
                task.validating = _first(task.validating, at)
            elif state in TERMINAL_STATES and (task.ended is None or at >= task.ended):
                # The last terminal status wins: deployed may be followed by rolled_back.
                task.ended, task.state = at, state
                task.reason, task.agent = str(payload.get("reason", "")), str(payload.get("agent", ""))
    return tasks


def _span(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds()


def _stage(samples: list[float]) -> StageTimes | None:
    if not samples:
        return None
    ordered = sorted(samples)
    p95 = ordered[max(0, min(len(ordered) - 1, round(0.95 * len(ordered) + 0.5) - 1))]
    return StageTimes(
        tasks=len(ordered),
        mean_s=statistics.fmean(ordered),
        p50_s=statistics.median(ordered),
        p95_s=p95,
        max_s=ordered[-1],
    )


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"\d+")


def failure_cause(reason: str) -> str:
    """What failed, from a status reason, so that alike failures group: the text up to the first
    colon, quoted values and numbers masked. ``"QA failed: 3 finding(s)"`` -> ``"QA failed"``;
    ``"I do not understand 'x'. I understand: ..."`` -> ``"I do not understand '…'. I understand"``."""
    head = reason.split(":", 1)[0].strip()
    head = _NUMBER.sub("N", _QUOTED.sub("'…'", head))
    return head[:80] or "(no reason given)"


def compute(rows: Iterable[Mapping[str, Any]]) -> PerformanceReport:
    """The report for the stored events ``rows`` (the store's ``event`` JSON, decoded), in any order."""
    tasks = {k: t for k, t in _collect(rows).items() if t.requested is not None or t.ended is not None}
    report = PerformanceReport(tasks=len(tasks))
    ended = [t for t in tasks.values() if t.ended is not None]
    report.finished = len(ended)
    report.succeeded = sum(1 for t in ended if t.state in SUCCESS_STATES)
    report.failed = report.finished - report.succeeded
    report.in_progress = report.tasks - report.finished
    if ended:
        report.success_rate = report.succeeded / report.finished
        starts = [t.requested or t.ended for t in tasks.values()]
        first = min(s for s in starts if s is not None)
        last = max(t.ended for t in ended if t.ended is not None)
        report.window_s = max((last - first).total_seconds(), 0.0)
        if report.window_s > 0:
            report.tasks_per_hour = report.finished / report.window_s * 3600
    spans: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for t in tasks.values():
        for stage, value in (
            ("planning", _span(t.requested, t.generating)),
            ("generation", _span(t.generating, t.validating)),
            ("validation", _span(t.validating, t.ended)),
            ("security", _span(t.artifacts, t.security)),
            ("total", _span(t.requested, t.ended)),
        ):
            if value is not None:
                spans[stage].append(value)
    report.stages = {stage: _stage(samples) for stage, samples in spans.items()}
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for t in ended:
        if t.state not in SUCCESS_STATES:
            groups[(failure_cause(t.reason), t.agent)].append(t.reason)
    report.failures = sorted(
        (FailureGroup(cause=c, agent=a, tasks=len(r), example=r[0][:200]) for (c, a), r in groups.items()),
        key=lambda g: (-g.tasks, g.cause),
    )
    return report
