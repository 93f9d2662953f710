"""Which environment variables are secrets, and where each secret lives. Pure: names in, references out.

Values never pass through here: the credential manager only ever sees variable *names*. A library
of its own: the credential manager answers with it, and the architect runs it at planning to refuse
a task whose references would not fit their event or the task's state.
"""

from __future__ import annotations

import re

from contracts.limits import clip_to
from contracts.payloads import CredentialIssued, CredentialRequested, SecretRef
from contracts.vocabulary import SecretKind, Target

_SECRET_NAME = re.compile(
    r"(PASSWORD|PASSWD|PASS$|SECRET|TOKEN|API_?KEY|PRIVATE_KEY|ACCESS_KEY|CREDENTIAL|_KEY$|^KEY$|DSN"
    r"|(DATABASE|DB|POSTGRES|MYSQL|REDIS|AMQP|RABBITMQ|MONGO(DB)?)_(URL|URI))",
)
# Settings *about* a secret, not the secret: how long a token lives, where a key file is, which
# header carries it (JWT_ACCESS_EXPIRATION_MINUTES, PASSWORD_RESET_TTL, SECRET_KEY_FILE, COOKIE_NAME).
_ABOUT_A_SECRET = re.compile(
    r"_(EXPIRATION|EXPIRES?|EXPIRY|EXPIRES_IN|TTL|LIFETIME|TIMEOUT|MINUTES|HOURS|DAYS|SECONDS|LENGTH|"
    r"ROUNDS|ALGORITHM|ALG|ISSUER|AUDIENCE|HEADER|NAME|FILE|PATH|DIR|ENABLED|REQUIRED|POLICY)$"
)
# Days between rotations, by what the secret is; the first match wins.
_ROTATION: tuple[tuple[str, int], ...] = (
    (r"TOKEN|API_?KEY|ACCESS_KEY", 30),
    (r"PRIVATE_KEY|_KEY$", 180),
    (r".*", 90),
)
AWS_REGION = "us-east-1"
AWS_ACCOUNT = "123456789012"  # the AWS documentation account: replaced per deployment


def is_secret(name: str) -> bool:
    """True for names that hold credentials (passwords, tokens, keys, URLs that embed a password),
    not for settings about them (``JWT_REFRESH_EXPIRATION_DAYS``, ``SECRET_KEY_FILE``)."""
    upper = name.upper()
    return bool(_SECRET_NAME.search(upper)) and not _ABOUT_A_SECRET.search(upper)


def rotation_days(name: str) -> int:
    upper = name.upper()
    return next(days for pattern, days in _ROTATION if re.search(pattern, upper))


def _refs_for(service: str, name: str, env: str, targets: set[Target]) -> list[SecretRef]:
    key = name.lower().replace("_", "-")
    days = rotation_days(name)
    refs: list[SecretRef] = []
    if targets & {Target.K8S, Target.HELM}:
        refs.append(
            SecretRef(
                env_var=name,
                environment=env,
                kind=SecretKind.EXTERNAL_SECRET,
                reference=f"{service}-secrets",
                key=f"{service}/{env}/{key}",
                rotation_days=days,
            )
        )
    if targets & {Target.ECS, Target.TERRAFORM}:
        arn = f"arn:aws:secretsmanager:{AWS_REGION}:{AWS_ACCOUNT}:secret:{service}/{env}/{key}"
        refs.append(
            SecretRef(
                env_var=name,
                environment=env,
                kind=SecretKind.SECRETS_MANAGER,
                reference=arn,
                rotation_days=days,
            )
        )
    if targets & {Target.CI, Target.DOCKER} or not refs:
        refs.append(
            SecretRef(
                env_var=name,
                environment=env,
                kind=SecretKind.CI_SECRET,
                reference=f"{env.upper()}_{name}",
                rotation_days=days,
            )
        )
    return refs


def issue(request: CredentialRequested) -> CredentialIssued:
    """References for every secret variable, per target family and environment."""
    targets = set(request.targets)
    secrets = sorted(v for v in set(request.env_vars) if is_secret(v))
    config = sorted(v for v in set(request.env_vars) if not is_secret(v))
    refs = [
        r
        for env in request.environments
        for name in secrets
        for r in _refs_for(request.service, name, env, targets)
    ]
    procedure = (
        "Rotate each secret in its store (AWS Secrets Manager rotation / ExternalSecret source / CI secret) "
        "on its schedule, then roll the workload so new pods or tasks read the new version: "
        + "; ".join(f"{name} every {rotation_days(name)} days" for name in secrets)
        if secrets
        else "No secrets detected: nothing to rotate."
    )
    return CredentialIssued(
        secrets=refs,
        config_vars=config,
        rotation_procedure=clip_to(CredentialIssued, "rotation_procedure", procedure),
    )
