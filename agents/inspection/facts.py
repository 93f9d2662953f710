"""What inspection found out about a project, fully resolved: the input of every renderer."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from contracts.payloads import ContainerPath, EnvName, ServiceSpec

Language = Literal["python", "go", "node"]
PackageManager = Literal["pip", "uv", "poetry", "go", "npm", "yarn", "pnpm"]
BackingService = Literal["postgres", "redis", "mongodb", "mysql", "rabbitmq"]
Probe = Literal["http", "tcp"]
DnsName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$")]
RelPath = Annotated[str, StringConstraints(pattern=r"^[^/].*$", max_length=256)]

_NON_DNS = re.compile(r"[^a-z0-9-]+")


def dns_name(raw: str, *, fallback: str = "app") -> str:
    """A DNS-1123 label of at most 42 characters derived from ``raw`` (e.g. a folder name)."""
    name = _NON_DNS.sub("-", raw.lower().replace("_", "-")).strip("-")
    name = re.sub(r"-{2,}", "-", name)[:42].strip("-")
    return name or fallback


class ProjectFacts(BaseModel):
    """A project as the generators see it. Every field is resolved; ``assumptions`` says which
    values are defaults rather than findings, so docs and decisions can name them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: DnsName
    language: Language
    language_version: Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+){0,2}$")]
    framework: str
    package_manager: PackageManager
    dependency_files: tuple[RelPath, ...] = Field(
        description="Manifest and lock files copied before the source, for a cached dependency layer."
    )
    dev_dependency_files: tuple[RelPath, ...] = Field(
        (), description="pip only: requirements files with test dependencies (installed in the test stage)."
    )
    locked: bool = Field(description="A lock file pins every transitive dependency.")
    start_command: tuple[str, ...] = Field(min_length=1)
    test_command: tuple[str, ...] = Field(min_length=1)
    port: int = Field(ge=1, le=65_535)
    port_env: EnvName = Field(
        "PORT", description="The variable the server takes its port from; every artifact sets it to ``port``."
    )
    probe: Probe = Field(
        "http",
        description="How every renderer checks health: GET health_path (http), or a TCP connect to the "
        "port when the app has no health route (tcp).",
    )
    health_path: str = "/health"
    metrics_path: str = "/metrics"
    env_vars: tuple[EnvName, ...] = ()
    backing_services: tuple[BackingService, ...] = ()
    build_image: str
    base_image: str = Field(description="The image the shipped container runs on.")
    build_target: str = Field(
        ".", description="Go: the main package built into the binary; unused for other languages."
    )
    app_dir: RelPath = Field(
        ".",
        description="The app's folder inside the build context (the project root): its working directory.",
    )
    workspace_package: str | None = Field(
        None, description="uv workspace: the member package that is the app (installed with --package)."
    )
    runtime_env: dict[str, str] = Field(
        default_factory=dict,
        description="Non-secret values the app needs to start as built (e.g. DJANGO_SETTINGS_MODULE, or a "
        "required setting's value from the project's example env file).",
    )
    build_command: tuple[str, ...] = Field(
        (),
        description="Run once in the image build after the source is copied (exec form): npm run build, "
        "make generate (Go: before go build).",
    )
    build_packages: tuple[str, ...] = Field(
        (), description="Debian packages the builder needs to compile dependencies (gcc, libpq-dev, ...)."
    )
    runtime_packages: tuple[str, ...] = Field(
        (), description="Debian shared libraries compiled dependencies load at run time (libpq5, ...)."
    )
    build_output: RelPath | None = Field(
        None,
        description="Node: the folder the build writes (dist), copied from the builder into the runtime.",
    )
    build_tags: tuple[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.]+$")], ...] = Field(
        (), description="Go: build tags of the production build (-tags)."
    )
    cgo: bool = Field(False, description="Go: a dependency needs cgo (gcc builder, glibc runtime).")
    skip_scripts: tuple[Annotated[str, StringConstraints(pattern=r"^[a-z]+$")], ...] = Field(
        (), description="Node: lifecycle scripts dropped before the production install (they call dev tools)."
    )
    required_env: tuple[EnvName, ...] = Field(
        (), description="Variables the app refuses to start without (its config schema marks them required)."
    )
    writable_paths: tuple[ContainerPath, ...] = Field(
        (),
        description="Folders the app writes (SQLite files, logs, uploads): each a volume on the read-only "
        "root filesystem, created in the image owned by the app user.",
    )
    run_dir: ContainerPath | None = Field(
        None,
        description="Go: the binary's working directory when its relative write paths need one inside a "
        "volume (default /app).",
    )
    writable_workdir: bool = Field(
        False,
        description="The app writes beside its code: the image gives the app user its working directory.",
    )
    config_files: tuple[ContainerPath, ...] = Field(
        (), description="Files the app reads its configuration from, each mounted from a secret."
    )
    assumptions: tuple[str, ...] = ()

    def to_spec(self) -> ServiceSpec:
        """The resolved facts in the bus contract's shape (``requirement.issued`` / artifact sets)."""
        return ServiceSpec(
            name=self.name,
            language=self.language,
            language_version=self.language_version,
            framework=self.framework,
            package_manager=self.package_manager,
            start_command=list(self.start_command),
            test_command=list(self.test_command),
            port=self.port,
            probe=self.probe,
            health_path=self.health_path,
            env_vars=list(self.env_vars),
            base_image=self.base_image,
            app_dir=None if self.app_dir == "." else self.app_dir,
            build_command=list(self.build_command) or None,
            writable_paths=list(self.writable_paths) or None,
            config_files=list(self.config_files) or None,
        )

    @property
    def workdir(self) -> str:
        """The runtime working directory: the app's folder in the image, or a Go binary's run_dir."""
        if self.run_dir:
            return self.run_dir
        return "/app" if self.app_dir == "." else f"/app/{self.app_dir}"

    @property
    def health_check(self) -> str:
        """The health check in words, for docs and decisions: ``GET /healthz`` or ``TCP :8000``."""
        return f"GET {self.health_path}" if self.probe == "http" else f"TCP :{self.port}"
