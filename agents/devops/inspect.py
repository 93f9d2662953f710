"""Project inspection: read a checkout (files only, no network, no code execution) and resolve the
facts every renderer needs. Explicit fields of a :class:`ServiceSpec` win over detection."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from agents.devops.admit import refusal
from agents.devops.detect import Detected, go, node, python
from agents.devops.detect.scan import OS_VARS
from agents.devops.facts import ProjectFacts, dns_name
from agents.devops.images import DEFAULT_VERSION, default_images, fallback_images
from agents.devops.tree import ProjectTree
from contracts.payloads import ServiceSpec

# Tried in this order: a Go service with a package.json for tooling is still a Go service, and a
# Django project with a package.json for assets is still a Python one.
DETECTORS: dict[str, Callable[[ProjectTree], Detected | None]] = {
    "go": go.detect,
    "python": python.detect,
    "node": node.detect,
}
DEFAULT_MANAGER = {"python": "pip", "go": "go", "node": "npm"}
DEFAULT_TEST = {
    "python": ("python", "-m", "pytest", "-q"),
    "go": ("go", "test", "./..."),
    "node": ("node", "--test"),
}
DEFAULT_PORT = {"python": 8000, "go": 8080, "node": 3000}
METRICS_LIBRARY = {"python": "prometheus-client", "go": "prometheus/client_golang", "node": "prom-client"}
REQUIRED_WITHOUT_DETECTION = ("language", "start_command", "port")


class InspectionError(ValueError):
    """The project cannot be inspected; the message says what was looked at and what to pass."""


def inspect_project(root: Path, overrides: ServiceSpec | None = None) -> ProjectFacts:
    """Resolve the facts of the project at ``root``.

    Detects language and version, framework, dependency manager, start and test commands (exec
    form), port, health and metrics paths, the environment variable names the code reads (never
    values) and backing services. Fields set in ``overrides`` replace what detection found.
    Raises :class:`InspectionError` for a missing path, a file instead of a directory, a project
    neither detection nor ``overrides`` describe well enough, or facts that cannot go on the bus (over
    a contract limit, or holding a secret-looking value: see :mod:`agents.devops.admit`).
    What the bounded reading of the tree skipped is stated in ``assumptions``.
    """
    overrides = overrides or ServiceSpec()
    root = Path(root)
    if not root.exists():
        raise InspectionError(f"project path {root} does not exist")
    if not root.is_dir():
        raise InspectionError(f"project path {root} is not a directory")
    tree = ProjectTree(root)
    found = _detect(tree, overrides.language)
    if found is None:
        found = _from_overrides(tree, overrides)
    found.assumptions += tree.skipped()
    facts = _resolve(found, overrides, folder=tree.root.name)
    why = refusal(facts)
    if why is not None:
        raise InspectionError(why)
    return facts


def _detect(tree: ProjectTree, language: str | None) -> Detected | None:
    if language is not None:
        return DETECTORS[language](tree)
    for detector in DETECTORS.values():
        found = detector(tree)
        if found is not None:
            return found
    return None


def _from_overrides(tree: ProjectTree, overrides: ServiceSpec) -> Detected:
    missing = [f for f in REQUIRED_WITHOUT_DETECTION if getattr(overrides, f) is None]
    if missing:
        looked = ", ".join(tree.looked_at)
        raise InspectionError(
            f"cannot recognise the project at {tree.root}: looked at {looked} and found no Python, Go or "
            f"Node.js manifest; pass {', '.join(missing)} explicitly (ServiceSpec fields; optionally also "
            "language_version, test_command, health_path, env_vars)"
        )
    language = overrides.language or "python"
    return Detected(
        language=language,
        package_manager=overrides.package_manager or DEFAULT_MANAGER[language],
        dependency_files=(),
        locked=False,
        framework="custom",
        assumptions=["no manifest detected: the service is described by explicit fields only"],
    )


def _resolve(found: Detected, overrides: ServiceSpec, *, folder: str) -> ProjectFacts:
    """Merge overrides over findings and fill every remaining gap with a stated default."""
    assumptions = list(found.assumptions)
    language = found.language
    version = overrides.language_version or found.language_version
    if version is None:
        version = DEFAULT_VERSION[language]
        assumptions.append(f"no {language} version declared: using {version}")
    start = overrides.start_command or found.start_command
    if not start:
        raise InspectionError(
            f"found a {language} project ({found.framework or 'no known framework'}) but no entrypoint "
            "(app object, start script or main package); pass start_command explicitly"
        )
    health = overrides.health_path or found.health_path
    if health is None:
        health = "/health"
        assumptions.append("no health route found: probes use /health; add one to the app")
    metrics = found.metrics_path
    if metrics is None:
        metrics = "/metrics"
        assumptions.append(
            f"no /metrics route found: Prometheus scrapes /metrics; add one ({METRICS_LIBRARY[language]})"
        )
    images = default_images(language, version)
    if images is None:
        images = fallback_images(language, version)
        assumptions.append(f"{language} {version} is not in the pinned image table: using {images[1]}")
    build_image, base_image = images
    if overrides.base_image:
        base_image = overrides.base_image
        build_image = build_image if language == "go" else overrides.base_image
    env_vars = overrides.env_vars if overrides.env_vars is not None else sorted(found.env_vars - OS_VARS)
    return ProjectFacts(
        name=overrides.name or dns_name(found.name or folder),
        language=language,
        language_version=version,
        framework=overrides.framework or found.framework or language,
        package_manager=overrides.package_manager or found.package_manager,
        dependency_files=found.dependency_files,
        dev_dependency_files=found.dev_dependency_files,
        locked=found.locked,
        start_command=tuple(start),
        test_command=tuple(overrides.test_command or found.test_command or DEFAULT_TEST[language]),
        port=overrides.port or found.port or DEFAULT_PORT[language],
        health_path=health,
        metrics_path=metrics,
        env_vars=tuple(sorted(set(env_vars))),
        backing_services=tuple(sorted(found.backing_services)),
        build_image=build_image,
        base_image=base_image,
        build_target=found.build_target,
        assumptions=tuple(assumptions),
    )
