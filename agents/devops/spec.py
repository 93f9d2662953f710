"""The requirement the renderers work from: project facts plus every deployment decision."""

from __future__ import annotations

import re
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from agents.inspection.facts import DnsName, ProjectFacts
from contracts.payloads import EnvName, SecretRef
from contracts.vocabulary import CIProvider, SecretKind, Strategy, Target

K8sQuantity = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(m|Mi|Gi)?$")]
# Valid Fargate (cpu units, memory MiB) pairs, as strings like the ECS API takes them.
FARGATE_SIZES: dict[str, tuple[int, ...]] = {
    "256": (512, 1024, 2048),
    "512": tuple(range(1024, 4097, 1024)),
    "1024": tuple(range(2048, 8193, 1024)),
    "2048": tuple(range(4096, 16385, 1024)),
    "4096": tuple(range(8192, 30721, 1024)),
}
K8S_KINDS = (SecretKind.K8S_SECRET, SecretKind.EXTERNAL_SECRET)
AWS_KINDS = (SecretKind.SECRETS_MANAGER, SecretKind.SSM_PARAMETER)
ALL_TARGETS = tuple(Target)


class AppSpec(BaseModel):
    """Everything a renderer needs; pure data, so rendering is a pure function of it.

    Defaults are production-minded: two replicas at least, autoscaling to ``max_replicas``, small
    requests with limits, one namespace per service, a year of log retention.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    facts: ProjectFacts
    targets: tuple[Target, ...] = ALL_TARGETS
    strategy: Strategy = Strategy.ROLLING
    ci: CIProvider = CIProvider.GITHUB
    environments: tuple[DnsName, ...] = ("dev", "staging", "prod")
    secrets: tuple[SecretRef, ...] = ()
    config_vars: tuple[EnvName, ...] | None = Field(
        None, description="Non-secret variable names; default: every detected name without a secret ref."
    )
    config_values: dict[EnvName, str] = Field(
        default_factory=dict, description="Known non-secret values (e.g. LOG_LEVEL=info); never secrets."
    )
    registry: str | None = Field(None, description="Image registry; default ECR for AWS targets, else GHCR.")
    namespace: DnsName | None = None
    image_tag: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")] = "0.1.0"
    hostname: str | None = Field(None, description="Public host name; default <name>.example.com.")
    ingress_class: str = "nginx"
    replicas: int = Field(2, ge=2, le=100)
    max_replicas: int = Field(6, ge=2, le=500)
    target_cpu_percent: int = Field(70, ge=10, le=95)
    cpu_request: K8sQuantity = "100m"
    cpu_limit: K8sQuantity = "500m"
    memory_request: K8sQuantity = "128Mi"
    memory_limit: K8sQuantity = "512Mi"
    ecs_cpu: str = "512"
    ecs_memory: str = "1024"
    aws_region: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]$")] = "us-east-1"
    aws_account_id: Annotated[str, StringConstraints(pattern=r"^[0-9]{12}$")] = "123456789012"
    secret_store: DnsName = Field("aws-secrets-manager", description="ClusterSecretStore of ExternalSecrets.")
    canary_weight: int = Field(10, ge=1, le=50)
    log_retention_days: int = 365
    uid: int = Field(10001, ge=10000, le=65535, description="Numeric non-root user and group in containers.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.targets:
            raise ValueError("at least one target is required")
        if not self.environments or len(set(self.environments)) != len(self.environments):
            raise ValueError("environments must be a non-empty list of distinct names")
        if self.max_replicas < self.replicas:
            raise ValueError("max_replicas must be >= replicas")
        memory = FARGATE_SIZES.get(self.ecs_cpu)
        if memory is None or int(self.ecs_memory) not in memory:
            raise ValueError(f"ecs_cpu={self.ecs_cpu} / ecs_memory={self.ecs_memory} is not a Fargate size")
        unknown = sorted(set(self.config_values) - set(self.facts.env_vars) - {"PORT", self.facts.port_env})
        if unknown:
            raise ValueError(f"config_values for names the service does not read: {', '.join(unknown)}")
        return self

    # Derived values: one place to compute each name every renderer uses.

    @property
    def name(self) -> str:
        return self.facts.name

    @property
    def ns(self) -> str:
        """The Kubernetes namespace (default: the service name)."""
        return self.namespace or self.facts.name

    @property
    def host(self) -> str:
        return self.hostname or f"{self.facts.name}.example.com"

    def env_host(self, environment: str) -> str:
        """Public host of one environment: the plain host for the primary one, ``<env>.<host>`` else."""
        return self.host if environment == self.primary_environment else f"{environment}.{self.host}"

    @property
    def primary_environment(self) -> str:
        """The environment single-environment artifacts (k8s/, ECS JSON, compose prod) are for."""
        return self.environments[-1]

    @property
    def uses_aws(self) -> bool:
        return bool({Target.ECS, Target.TERRAFORM} & set(self.targets))

    @property
    def image_repository(self) -> str:
        if self.registry:
            return f"{self.registry.rstrip('/')}/{self.name}"
        if self.uses_aws:
            return f"{self.aws_account_id}.dkr.ecr.{self.aws_region}.amazonaws.com/{self.name}"
        return f"ghcr.io/example-org/{self.name}"

    @property
    def image(self) -> str:
        return f"{self.image_repository}:{self.image_tag}"

    @property
    def secret_env_vars(self) -> tuple[str, ...]:
        """Every variable some secret reference provides, in any environment."""
        return tuple(sorted({ref.env_var for ref in self.secrets}))

    @property
    def config_names(self) -> tuple[str, ...]:
        """Non-secret variable names the service reads."""
        if self.config_vars is not None:
            return tuple(sorted(set(self.config_vars)))
        return tuple(sorted(set(self.facts.env_vars) - set(self.secret_env_vars)))

    def config_map(self) -> dict[str, str]:
        """Config values known at generation time: the port variable the server reads (PORT unless
        the code names another), NODE_ENV for Node, the values the app needs to start as built
        (``facts.runtime_env``: DJANGO_SETTINGS_MODULE, a required setting's example value), then
        config_values."""
        values: dict[str, str] = {self.facts.port_env: str(self.facts.port)}
        if self.facts.language == "node":
            values["NODE_ENV"] = "production"
        values.update({k: v for k, v in self.facts.runtime_env.items() if k not in self.secret_env_vars})
        values.update({k: v for k, v in self.config_values.items() if k not in self.secret_env_vars})
        return dict(sorted(values.items()))

    def unset_config(self) -> tuple[str, ...]:
        """Config names with no value here: the app's own defaults apply until an operator sets them."""
        known = self.config_map()
        return tuple(n for n in self.config_names if n not in known)

    def refs(self, *kinds: SecretKind, environment: str | None = None) -> tuple[SecretRef, ...]:
        """Secret references of the given kinds for one environment (default: the primary one)."""
        env = environment or self.primary_environment
        found = {ref.env_var: ref for ref in self.secrets if ref.kind in kinds and ref.environment == env}
        return tuple(found[name] for name in sorted(found))

    def has(self, target: Target) -> bool:
        return target in self.targets


def secret_id(env_var: str) -> str:
    """File / Compose / Kubernetes-key form of a variable name: ``DB_PASSWORD`` -> ``db_password``."""
    return re.sub(r"[^a-z0-9_]", "_", env_var.lower())
