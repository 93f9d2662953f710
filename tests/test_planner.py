"""The architect's planner and the credential policy: pure logic, no server."""

from __future__ import annotations

import pytest

from agents.architect.planner import NotUnderstood, plan
from agents.credential_policy import is_secret, issue
from contracts.payloads import CredentialRequested, TaskRequested
from contracts.vocabulary import CIProvider, SecretKind, Strategy, Target

T = Target


@pytest.mark.parametrize(
    ("text", "targets", "strategy", "ci"),
    [
        ("Containerize the Python FastAPI application", {T.DOCKER}, Strategy.ROLLING, CIProvider.GITHUB),
        ("Set up CI/CD for the project", {T.DOCKER, T.CI}, Strategy.ROLLING, CIProvider.GITHUB),
        ("Deploy to AWS ECS", {T.DOCKER, T.ECS, T.TERRAFORM, T.DOCS}, Strategy.ROLLING, CIProvider.GITHUB),
        ("Deploy to Kubernetes", {T.DOCKER, T.K8S, T.HELM, T.DOCS}, Strategy.ROLLING, CIProvider.GITHUB),
        (
            "containerize and deploy to Kubernetes with canary releases and monitoring",
            {T.DOCKER, T.K8S, T.HELM, T.DOCS, T.MONITORING},
            Strategy.CANARY,
            CIProvider.GITHUB,
        ),
        ("set up GitLab CI", {T.DOCKER, T.CI}, Strategy.ROLLING, CIProvider.GITLAB),
        (
            "deploy to ECS with blue-green",
            {T.DOCKER, T.ECS, T.TERRAFORM, T.DOCS},
            Strategy.BLUE_GREEN,
            CIProvider.GITHUB,
        ),
        ("Jenkins pipeline please", {T.DOCKER, T.CI}, Strategy.ROLLING, CIProvider.JENKINS),
    ],
)
def test_natural_requests(text, targets, strategy, ci) -> None:
    p = plan(TaskRequested(text=text, project="p"))
    assert set(p.targets) == targets
    assert (p.strategy, p.ci) == (strategy, ci)
    assert p.environments == ("dev", "staging", "prod")


def test_structured_form_wins_over_text() -> None:
    p = plan(
        TaskRequested(
            text="Deploy to Kubernetes",
            project="p",
            targets=[T.MONITORING],
            strategy=Strategy.CANARY,
            ci=CIProvider.GITLAB,
            environments=["qa", "live"],
        )
    )
    assert p.targets == (T.MONITORING,)
    assert (p.strategy, p.ci, p.environments) == (Strategy.CANARY, CIProvider.GITLAB, ("qa", "live"))


def test_structured_deploy_target_brings_its_image() -> None:
    assert plan(TaskRequested(project="p", targets=[T.K8S])).targets == (T.DOCKER, T.K8S)


@pytest.mark.parametrize("text", ["make me a sandwich", "", "   ", "déployer ☃"])
def test_unknown_requests_are_refused_with_what_is_understood(text: str) -> None:
    with pytest.raises(NotUnderstood) as err:
        plan(TaskRequested(text=text, project="p"))
    message = str(err.value)
    for capability in ("containerize", "CI/CD", "AWS ECS", "Kubernetes"):
        assert capability in message


def test_secret_names_are_recognised() -> None:
    assert all(
        is_secret(n) for n in ["DATABASE_PASSWORD", "API_KEY", "GITHUB_TOKEN", "DATABASE_URL", "JWT_SECRET"]
    )
    assert not any(is_secret(n) for n in ["LOG_LEVEL", "PORT", "APP_ENV", "WORKERS"])


def test_credentials_are_references_per_target_and_environment() -> None:
    issued = issue(
        CredentialRequested(
            service="shop",
            env_vars=["DATABASE_PASSWORD", "LOG_LEVEL", "API_KEY"],
            targets=[T.K8S, T.ECS, T.CI],
            environments=["staging", "prod"],
        )
    )
    assert issued.config_vars == ["LOG_LEVEL"]
    kinds = {(s.env_var, s.environment, s.kind) for s in issued.secrets}
    for env in ("staging", "prod"):
        for name in ("DATABASE_PASSWORD", "API_KEY"):
            assert (name, env, SecretKind.EXTERNAL_SECRET) in kinds
            assert (name, env, SecretKind.SECRETS_MANAGER) in kinds
            assert (name, env, SecretKind.CI_SECRET) in kinds
    arns = [s.reference for s in issued.secrets if s.kind is SecretKind.SECRETS_MANAGER]
    assert all(a.startswith("arn:aws:secretsmanager:") and ("/prod/" in a or "/staging/" in a) for a in arns)
    assert {s.rotation_days for s in issued.secrets if s.env_var == "API_KEY"} == {30}
    assert "API_KEY every 30 days" in issued.rotation_procedure
