"""What masking costs on the hot path: microseconds per event, next to what decoding it costs.

Every agent masks each incoming event before its handler runs (artifact contents excepted), and the
knowledge store masks every string before writing (artifact contents included). Measured on the
events a real task produces: small ones (notes, statuses), a task request, the artifact set of a
full FastAPI task (every target), and a report with 200 findings; each against
``contracts.decode`` of the same bytes, the work every consumer already does per event.

    .venv/bin/python -m bench.redaction [--rounds N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import SOURCE, sample_events
from contracts import Envelope, EventType, decode, encode, new_event, new_id
from contracts import redaction as redaction_module
from contracts.payloads import (
    Artifact,
    ArtifactSetCompleted,
    CredentialRequested,
    Finding,
    Report,
    ServiceSpec,
    TaskRequested,
)
from contracts.redaction import keep_nothing, mask_event
from contracts.vocabulary import CIProvider, Strategy, Target

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fastapi-service"


def artifact_set_event() -> Envelope:
    """The artifact set of a full task (every target) for the FastAPI example, as DevOps emits it."""
    from agents.credential_policy import issue
    from agents.devops.generate import generate
    from agents.devops.spec import AppSpec
    from agents.inspection.inspect import inspect_project

    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "fastapi-service"
        shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__"))
        facts = inspect_project(project)
    targets, environments = tuple(Target), ("dev", "staging", "prod")
    creds = issue(
        CredentialRequested(
            service=facts.name,
            env_vars=list(facts.env_vars),
            targets=list(targets),
            environments=list(environments),
        )
    )
    spec = AppSpec(
        facts=facts,
        targets=targets,
        strategy=Strategy.ROLLING,
        ci=CIProvider.GITHUB,
        environments=environments,
        secrets=tuple(creds.secrets),
        config_vars=tuple(creds.config_vars),
    )
    files = [
        Artifact(path=g.path, content=g.content, sha256=g.sha256, target=g.target) for g in generate(spec)
    ]
    payload = ArtifactSetCompleted(targets=list(targets), files=files, service=facts.to_spec())
    return new_event(EventType.ARTIFACT_SET_COMPLETED, payload, task_id=new_id(), source=SOURCE)


def report_event(findings: int = 200) -> Envelope:
    payload = Report(
        passed=False,
        files=[f"k8s/deployment-{i}.yaml" for i in range(50)],
        findings=[
            Finding(
                file=f"k8s/deployment-{i % 50}.yaml",
                rule="SEC-K8S-003",
                message=f"container app runs as root in deployment-{i} (runAsNonRoot missing)",
                line=i,
                fix="set securityContext.runAsNonRoot: true and a non-zero runAsUser",
                tool="security-rules",
            )
            for i in range(findings)
        ],
        summary=f"{findings} finding(s), {findings} blocking (high or critical)",
    )
    return new_event(EventType.REPORT_SECURITY, payload, task_id=new_id(), source=SOURCE)


def task_event() -> Envelope:
    payload = TaskRequested(
        text="Deploy the Python FastAPI application to Kubernetes with canary releases and monitoring",
        project="examples/fastapi-service",
        output_dir="out/fastapi",
        service=ServiceSpec(env_vars=["DATABASE_URL", "API_TOKEN", "LOG_LEVEL"]),
    )
    return new_event(EventType.TASK_REQUESTED, payload, task_id=new_id(), source=SOURCE)


def per_call_us(fn: Callable[[], Any], *, rounds: int, min_s: float = 0.2) -> float:
    """Median over ``rounds`` of the mean time of one call, in microseconds."""
    fn()
    results = []
    for _ in range(rounds):
        n, started = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - started
            if elapsed >= min_s:
                break
        results.append(elapsed / n * 1e6)
    return statistics.median(results)


def measure(rounds: int) -> list[tuple[str, int, float, float, float]]:
    """(event, bytes, decode us, ingestion mask us, store mask us) per sample event."""
    samples = [
        ("note/status (mean of 100)", sample_events(100)),
        ("task.requested", [task_event()]),
        ("report.security, 200 findings", [report_event()]),
        ("artifact_set.completed (all targets)", [artifact_set_event()]),
    ]
    rows = []
    for name, events in samples:
        raws = [encode(e) for e in events]
        decoded = [decode(r) for r in raws]
        size = sum(map(len, raws)) // len(raws)
        n = len(events)
        dec = per_call_us(lambda raws=raws: [decode(r) for r in raws], rounds=rounds) / n
        ingest = per_call_us(lambda d=decoded: [mask_event(e) for e in d], rounds=rounds) / n
        store = (
            per_call_us(lambda d=decoded: [mask_event(e, keep=keep_nothing) for e in d], rounds=rounds) / n
        )
        rows.append((name, size, dec, ingest, store))
    return rows


def without_prefilter(rounds: int) -> float:
    """Ingestion masking of the small events with the detectors' triggers disabled (all ten
    detectors search every string): what the triggers save."""
    events = [decode(encode(e)) for e in sample_events(100)]
    saved = redaction_module._any_in
    redaction_module._any_in = lambda _triggers, _lowered: True
    try:
        return per_call_us(lambda: [mask_event(e) for e in events], rounds=rounds) / len(events)
    finally:
        redaction_module._any_in = saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    rows = measure(args.rounds)
    header = ("event", "bytes", "decode us", "mask us", "% of decode", "store mask us")
    print("{:40} {:>9} {:>10} {:>9} {:>11} {:>13}".format(*header))
    for name, size, dec, ingest, store in rows:
        print(f"{name:40} {size:>9,} {dec:>10.1f} {ingest:>9.1f} {ingest / dec * 100:>10.0f}% {store:>13.1f}")
    print(f"\nsmall events without the triggers: {without_prefilter(args.rounds):.1f} us per event")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
