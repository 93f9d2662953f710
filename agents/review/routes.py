"""Which validators check which artifact, by path (one table for QA and security's checkov run)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fnmatch import fnmatch
from pathlib import PurePosixPath

DOCKERFILE = "dockerfile"
COMPOSE = "compose"
GITHUB_WORKFLOW = "github-workflow"
GITLAB_CI = "gitlab-ci"
JENKINSFILE = "jenkinsfile"
KUBERNETES = "kubernetes"
CLOUDFORMATION = "cloudformation"
ECS_TASK_DEFINITION = "ecs-task-definition"
ECS_SERVICE = "ecs-service"
TERRAFORM = "terraform"
YAML = "yaml"
JSON = "json"

# checkov framework for each validator it can back up.
CHECKOV_FRAMEWORKS: dict[str, str] = {
    DOCKERFILE: "dockerfile",
    KUBERNETES: "kubernetes",
    CLOUDFORMATION: "cloudformation",
    TERRAFORM: "terraform",
    GITHUB_WORKFLOW: "github_actions",
}

_YAML_SUFFIXES = (".yml", ".yaml")


def is_github_workflow(path: str) -> bool:
    """``.github/workflows/*.yml`` (or ``.yaml``)."""
    pure = PurePosixPath(path)
    return pure.parent.as_posix().endswith(".github/workflows") and pure.suffix in (".yml", ".yaml")


def is_gitlab_ci(path: str) -> bool:
    """``.gitlab-ci.yml`` at any depth."""
    return PurePosixPath(path).name == ".gitlab-ci.yml"


def is_jenkinsfile(path: str) -> bool:
    """``Jenkinsfile`` or ``Jenkinsfile.<variant>``."""
    name = PurePosixPath(path).name
    return name == "Jenkinsfile" or name.startswith("Jenkinsfile.")


def _name_matches(*patterns: str) -> Callable[[PurePosixPath], bool]:
    return lambda path: any(fnmatch(path.name, pattern) for pattern in patterns)


def _under(directory: str, suffixes: tuple[str, ...]) -> Callable[[PurePosixPath], bool]:
    return lambda path: (
        directory in path.parts[:-1] and path.suffix in suffixes and not is_helm_template(path)
    )


def is_helm_template(path: PurePosixPath | str, chart_roots: Iterable[str] = ()) -> bool:
    """Go templates, not YAML: ``charts/<chart>/templates/...``, or ``<root>/templates/...`` for any chart
    root (a directory holding a Chart.yaml) in ``chart_roots``."""
    pure = PurePosixPath(path)
    parts = pure.parts
    if any(parts[i] == "charts" and parts[i + 2] == "templates" for i in range(len(parts) - 2)):
        return True
    return any(pure.is_relative_to(PurePosixPath(root, "templates")) for root in chart_roots)


def chart_roots(paths: Iterable[str]) -> frozenset[str]:
    """Directories holding a Helm ``Chart.yaml``."""
    return frozenset(
        PurePosixPath(p).parent.as_posix() for p in paths if PurePosixPath(p).name == "Chart.yaml"
    )


def _dockerfile(path: PurePosixPath) -> bool:
    # `Dockerfile.dockerignore` is BuildKit's per-Dockerfile ignore file, not a Dockerfile.
    named = _name_matches("Dockerfile", "Dockerfile.*", "*.Dockerfile", "*.dockerfile")(path)
    return named and not path.name.endswith(".dockerignore")


def _kubernetes(path: PurePosixPath) -> bool:
    # kustomization.yaml configures kustomize; it is not a resource the API server knows.
    return _under("k8s", _YAML_SUFFIXES)(path) and not path.name.startswith("kustomization.")


ROUTES: tuple[tuple[str, Callable[[PurePosixPath], bool]], ...] = (
    (DOCKERFILE, _dockerfile),
    (COMPOSE, _name_matches("docker-compose*.yml", "docker-compose*.yaml", "compose*.yml", "compose*.yaml")),
    (GITHUB_WORKFLOW, lambda path: is_github_workflow(path.as_posix())),
    (GITLAB_CI, lambda path: is_gitlab_ci(path.as_posix())),
    (JENKINSFILE, lambda path: is_jenkinsfile(path.as_posix())),
    (KUBERNETES, _kubernetes),
    (CLOUDFORMATION, _under("cloudformation", (*_YAML_SUFFIXES, ".json", ".template"))),
    (ECS_TASK_DEFINITION, _name_matches("*task-definition*.json", "*taskdef*.json")),
    (ECS_SERVICE, _name_matches("ecs-service*.json", "*-ecs-service*.json")),
    (TERRAFORM, lambda path: path.suffix in (".tf", ".tfvars")),
    (YAML, lambda path: path.suffix in _YAML_SUFFIXES),
    (JSON, lambda path: path.suffix == ".json"),
)


def validators_for(path: str, charts: Iterable[str] = ()) -> list[str]:
    """The validators that check ``path`` (none for README.md, NOTES.txt or Helm templates);
    ``charts`` are the chart roots of the artifact set (see ``chart_roots``)."""
    pure = PurePosixPath(path)
    if is_helm_template(pure, charts):
        return []
    return [name for name, matches in ROUTES if matches(pure)]


def plan(paths: Iterable[str]) -> dict[str, list[str]]:
    """Validator -> the sorted paths it checks; validators with nothing to check are left out."""
    ordered = sorted(paths)
    charts = chart_roots(ordered)
    out: dict[str, list[str]] = {}
    for path in ordered:
        for name in validators_for(path, charts):
            out.setdefault(name, []).append(path)
    return out
