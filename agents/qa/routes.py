"""Which validators check which artifact, by path (one table for QA and security's checkov run)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fnmatch import fnmatch
from pathlib import PurePosixPath

from agents.qa.pipelines import is_github_workflow, is_gitlab_ci, is_jenkinsfile

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


def _name_matches(*patterns: str) -> Callable[[PurePosixPath], bool]:
    return lambda path: any(fnmatch(path.name, pattern) for pattern in patterns)


def _under(directory: str, suffixes: tuple[str, ...]) -> Callable[[PurePosixPath], bool]:
    return lambda path: (
        directory in path.parts[:-1] and path.suffix in suffixes and not is_helm_template(path)
    )


def is_helm_template(path: PurePosixPath | str) -> bool:
    """``charts/<chart>/templates/...``: Go templates, not YAML."""
    parts = PurePosixPath(path).parts
    return any(parts[i] == "charts" and parts[i + 2] == "templates" for i in range(len(parts) - 2))


def _kubernetes(path: PurePosixPath) -> bool:
    # kustomization.yaml configures kustomize; it is not a resource the API server knows.
    return _under("k8s", _YAML_SUFFIXES)(path) and not path.name.startswith("kustomization.")


ROUTES: tuple[tuple[str, Callable[[PurePosixPath], bool]], ...] = (
    (DOCKERFILE, _name_matches("Dockerfile", "Dockerfile.*", "*.Dockerfile", "*.dockerfile")),
    (COMPOSE, _name_matches("docker-compose*.yml", "docker-compose*.yaml", "compose*.yml", "compose*.yaml")),
    (GITHUB_WORKFLOW, lambda path: is_github_workflow(path.as_posix())),
    (GITLAB_CI, lambda path: is_gitlab_ci(path.as_posix())),
    (JENKINSFILE, lambda path: is_jenkinsfile(path.as_posix())),
    (KUBERNETES, _kubernetes),
    (CLOUDFORMATION, _under("cloudformation", (*_YAML_SUFFIXES, ".json", ".template"))),
    (ECS_TASK_DEFINITION, _name_matches("*task-definition*.json", "*taskdef*.json")),
    (ECS_SERVICE, _name_matches("ecs-service*.json", "*-ecs-service*.json")),
    (TERRAFORM, lambda path: path.suffix in (".tf", ".tfvars")),
    (YAML, lambda path: path.suffix in _YAML_SUFFIXES and not is_helm_template(path)),
    (JSON, lambda path: path.suffix == ".json"),
)


def validators_for(path: str) -> list[str]:
    """The validators that check ``path`` (possibly none: README.md, NOTES.txt, templates)."""
    pure = PurePosixPath(path)
    return [name for name, matches in ROUTES if matches(pure)]


def plan(paths: Iterable[str]) -> dict[str, list[str]]:
    """Validator -> the sorted paths it checks; validators with nothing to check are left out."""
    out: dict[str, list[str]] = {}
    for path in sorted(paths):
        for name in validators_for(path):
            out.setdefault(name, []).append(path)
    return out
