"""The shared masking library (contracts.redaction) and the contract limits (contracts.limits).

Identifiers are not secrets, values are: a service called ``secret-santa``, an environment variable
name or an IAM action pass the scanner and the masking untouched, while every value the security
rules catch is still caught. Masking a model keeps it valid: what grows past its bound is clipped.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import BaseModel, Field, ValidationError

from agents.credential_policy import issue
from agents.devops.generate import generate, sha256_text
from agents.devops.spec import AppSpec
from agents.inspection.inspect import inspect_project
from agents.security import rules
from contracts.limits import clip, clip_to, max_length, one_line
from contracts.payloads import (
    Artifact,
    ArtifactSetCompleted,
    CredentialRequested,
    KnowledgeNote,
    ServiceSpec,
    StatusChanged,
    TaskRequested,
)
from contracts.redaction import MASK, keep_artifact_content, mask_model, redact
from contracts.vocabulary import CIProvider, NoteKind, Strategy, Target
from tests.orchestra_fixtures import EXAMPLES, Running, final, start_orchestra

KEY = "AKIA" + "IOSFODNN7EXAMPLE"
STRONG = "Zq8#mP2$vL9x!Rt4"

IDENTIFIERS = [
    "name: secret-santa",
    "image: api-token-service:1.4.2",
    "aws ecs update-service --cluster secret-santa-prod --service secret-santa "
    "--task-definition secret-santa-prod:<previous revision>",
    "#     --task-definition api-token-service-prod:<previous revision>",
    "ServiceName: secret-santa-prod",
    "Family: api-token-service-staging",
    '"Action": ["secretsmanager:GetSecretValue", "kms:Decrypt"]',
    "Resource: arn:aws:secretsmanager:us-east-1:123456789012:secret:secret-santa/prod/db-password",
    "env: DATABASE_PASSWORD API_TOKEN STRIPE_SECRET_KEY",
    "uvicorn api_token_service.main:app --host 0.0.0.0 --port 8000",
    "gunicorn --bind 0.0.0.0:8000 secret_santa.wsgi:application",
    "password: <your password here>",
    "Deploy secret-santa and api-token-service to Kubernetes",
]


@pytest.mark.parametrize("text", IDENTIFIERS)
def test_identifiers_are_not_secrets(text: str) -> None:
    """Invariant: names (services, image tags, task-definition revisions, IAM actions, env var
    names, module paths) are neither flagged by the scanner nor masked."""
    assert rules.scan({"notes.md": text}) == []
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("password:hunter2", "password:[REDACTED]"),
        ("DB_PASSWORD:hunter2", "DB_PASSWORD:[REDACTED]"),
        ('{"password":"hunter2"}', '{"password":"[REDACTED]"}'),
        ("api-token-service token=abc123", "api-token-service token=[REDACTED]"),
        (f"secret-santa uses {KEY}", f"secret-santa uses {MASK}"),
        (f"client_secret: {STRONG}", f"client_secret: {MASK}"),
    ],
)
def test_values_next_to_identifiers_are_still_masked(text: str, masked: str) -> None:
    assert redact(text) == masked


def _artifacts(project: Path, name: str) -> dict[str, str]:
    facts = inspect_project(project, ServiceSpec(name=name))
    targets = tuple(Target)
    environments = ("dev", "staging", "prod")
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
    return {g.path: g.content for g in generate(spec)}


@pytest.mark.parametrize("name", ["secret-santa", "api-token-service", "password-reset", "auth-key-service"])
def test_services_named_like_secrets_pass_the_security_rules(tmp_path: Path, name: str) -> None:
    """Invariant: every artifact of every target for a service whose name holds a secret word
    (it appears in docs, CloudFormation, Terraform, Helm...) has no secret finding."""
    shutil.copytree(
        EXAMPLES / "fastapi-service", tmp_path / name, ignore=shutil.ignore_patterns("__pycache__")
    )
    files = _artifacts(tmp_path / name, name)
    findings = [f for f in rules.scan(files) if f.rule.startswith("SEC-SECRET")]
    assert findings == []
    assert rules.passed(rules.scan(files))


# -- masking contract models ------------------------------------------------------------------


def test_mask_model_masks_every_string_and_keeps_names() -> None:
    task = TaskRequested(
        text=f"Deploy with key {KEY}",
        project="svc",
        service=ServiceSpec(
            start_command=["node", "server.js", f"--api-key={STRONG}"],
            env_vars=["API_TOKEN", "DB_PASSWORD"],
        ),
    )
    masked = mask_model(task)
    assert masked.text == f"Deploy with key {MASK}"
    assert masked.service is not None and masked.service.start_command == [
        "node",
        "server.js",
        f"--api-key={MASK}",
    ]
    assert masked.service.env_vars == ["API_TOKEN", "DB_PASSWORD"]
    clean = TaskRequested(text="Deploy secret-santa to Kubernetes", project="secret-santa")
    assert mask_model(clean) is clean, "a clean model is returned as is (no copy on the hot path)"


def test_masking_clips_what_grows_past_its_bound() -> None:
    """Invariant: "[REDACTED]" can be longer than what it replaces; the masked model still
    validates, the text clipped to its field's bound."""
    text = "x" * 3_985 + " password=a"
    masked = mask_model(KnowledgeNote(kind=NoteKind.EDIT, text=text, agent="me"))
    assert len(masked.text) == 4_000 and masked.text.endswith("…")
    assert "password=a" not in masked.text


def test_identifier_fields_stay_as_they_are() -> None:
    """A field whose pattern only admits an identifier holds a name, not a value: masking it
    would make the model invalid, so it is left as it was."""

    class Named(BaseModel):
        name: str = Field(pattern=r"^[a-z=]+$")

    named = Named(name="token=abc")
    assert mask_model(named).name == "token=abc"


def test_reviewers_see_artifact_contents_as_generated() -> None:
    content = f"ENV AWS_ACCESS_KEY_ID={KEY}\n"
    artifact_set = ArtifactSetCompleted(
        targets=[Target.DOCKER],
        files=[
            Artifact(path="Dockerfile", content=content, sha256=sha256_text(content), target=Target.DOCKER)
        ],
        service=ServiceSpec(name="app", start_command=["app", f"--token={STRONG}"]),
    )
    for_reviewers = mask_model(artifact_set, keep=keep_artifact_content)
    assert for_reviewers.files[0].content == content
    assert for_reviewers.service.start_command == ["app", f"--token={MASK}"]
    stored = mask_model(artifact_set)
    assert KEY not in stored.files[0].content


# -- limits -----------------------------------------------------------------------------------


def test_clip_keeps_within_the_bound() -> None:
    assert clip("abc", 3) == "abc"
    assert clip("abcdef", 4) == "abc…"
    assert max_length(StatusChanged, "reason") == 4_000
    assert len(clip_to(StatusChanged, "reason", "task received: " + "x" * 4_000)) == 4_000


def test_one_line_names_the_limit_and_by_how_much() -> None:
    with pytest.raises(ValidationError) as too_many:
        ServiceSpec(env_vars=[f"VAR_{i}" for i in range(150)])
    assert one_line(too_many.value, "facts") == (
        "invalid facts: env_vars: 150 items, over the limit of 128 by 22"
    )
    with pytest.raises(ValidationError) as too_long:
        ServiceSpec(start_command=["node", "x" * 300])
    assert one_line(too_long.value, "facts") == (
        "invalid facts: start_command.1: 300 characters, over the limit of 256 by 44"
    )


# -- on the bus -------------------------------------------------------------------------------


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async for r in start_orchestra(tmp_path, validators="fast"):
        yield r


@pytest.mark.nats
@pytest.mark.parametrize("name", ["secret-santa", "api-token-service"])
async def test_a_service_named_like_a_secret_deploys(running: Running, name: str) -> None:
    """Invariant: a task for every target of a service called ``secret-santa`` (its name in docs,
    CloudFormation, Terraform) ends ready: security does not block a name."""
    shutil.copytree(
        EXAMPLES / "fastapi-service", running.workspace / name, ignore=shutil.ignore_patterns("__pycache__")
    )
    statuses = await running.run_task("Deploy to AWS ECS and Kubernetes, full", name, output_dir="out")
    end = final(statuses)
    assert end.state.value == "ready", [(s.payload.state.value, s.payload.reason) for s in statuses]
    assert (running.workspace / "out" / "cloudformation").is_dir()
