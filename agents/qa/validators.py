"""Validate generated deployment artifacts with the offline validators (docs/artifacts.md).

Public API (stable; the QA agent and the DevOps generator tests use it)::

    validate(files: Mapping[str, str], *, kubernetes_version: str = "1.30.0",
             with_checkov: bool = False) -> ValidationResult
    ci_runs_tests(files: Mapping[str, str], test_command: list[str]) -> list[Finding]

``files`` maps a relative artifact path (``Dockerfile``, ``k8s/deployment.yaml``,
``.github/workflows/ci-cd.yml``...) to its content. ``validate`` writes them into a private temp
dir (absolute and ``..`` paths are refused with an ``unsafe-path`` finding), picks validators by
path (agents.review.routes) and runs each tool once over its whole batch, command-line tools in
parallel:

=========================================  ==============================================  ============
path                                       validator                                       rule
=========================================  ==============================================  ============
Dockerfile, Dockerfile.*                   hadolint --failure-threshold warning            DL3008, ...
docker-compose*.yml, compose*.yml          check-jsonschema vendor.compose-spec            compose-spec
.github/workflows/*.yml                    check-jsonschema vendor.github-workflows        github-workflows
.gitlab-ci.yml                             check-jsonschema vendor.gitlab-ci               gitlab-ci
k8s/**/*.yaml (not kustomization.yaml)     kubernetes-validate strict, pinned version      kubernetes-validate
cloudformation/**/*.yaml|json              cfn-lint                                        E3012, W2001...
*task-definition*.json / ecs-service*.json botocore RegisterTaskDefinition / CreateService  ecs-<Operation>
*.tf, *.tfvars                             python-hcl2                                     hcl-syntax
*.yml, *.yaml (not charts/*/templates/*)   yamllint -c agents/qa/yamllint.yaml             indentation...
*.json (+ JSON Schema check of *.schema.json) json                                        json-syntax
Jenkinsfile                                declarative structure, credentials()           jenkins-*
with_checkov: Dockerfile, k8s, cfn, tf, GitHub workflows  checkov (one process)         CKV_...
=========================================  ==============================================  ============

Severity: a tool's error is HIGH, its warning MEDIUM, info/style INFO; an unknown custom
resource (no schema) is INFO. ``passed`` is True when no finding is above LOW (``Severity.failing``).
A tool that is not installed yields ``tool-missing`` (HIGH) findings, a tool that crashes
``tool-crashed`` findings naming the tool and the first line of its error: nothing passes unchecked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from agents.qa import linters, schemas
from agents.qa.pipelines import ci_runs_tests, jenkinsfile
from agents.review import routes
from agents.review.checkov import checkov, targets
from agents.review.findings import sort_key
from agents.review.runner import Outcome
from agents.review.workspace import Workspace, workspace
from contracts.payloads import Finding, Report

__all__ = ["ValidationResult", "ci_runs_tests", "validate"]

DEFAULT_KUBERNETES_VERSION = "1.30.0"
_SCHEMAS = (
    (routes.COMPOSE, "vendor.compose-spec"),
    (routes.GITHUB_WORKFLOW, "vendor.github-workflows"),
    (routes.GITLAB_CI, "vendor.gitlab-ci"),
)


@dataclass(frozen=True)
class ValidationResult:
    """What ``validate`` found.

    findings: sorted by file, line, rule. tools: tool -> version ("missing" when not installed).
    files: the artifact paths accepted. passed: no finding is ``Severity.failing`` (above LOW).
    """

    findings: list[Finding]
    tools: dict[str, str]
    files: list[str]
    passed: bool

    def report(self, summary: str = "") -> Report:
        """The contract ``Report`` for ``report.qa`` (lists clipped to the contract's bounds)."""
        return Report(
            passed=self.passed,
            files=self.files[:256],
            findings=self.findings[:2_048],
            tools=self.tools,
            summary=summary,
        )


def validate(
    files: Mapping[str, str],
    *,
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION,
    with_checkov: bool = False,
    tools: bool = True,
) -> ValidationResult:
    """Run every validator that applies to ``files`` ({relative path: content}); see the module docstring.

    ``tools=False`` runs only the in-process checks (Kubernetes and ECS schemas, HCL, JSON,
    Jenkinsfile structure), none of the command-line tools: the "fast" validators setting."""
    with workspace(files) as space:
        external, internal = _jobs(space, kubernetes_version, with_checkov)
        if not tools:
            external = []
        outcomes: list[Outcome] = []
        with ThreadPoolExecutor(max_workers=max(1, len(external)), thread_name_prefix="qa-tool") as pool:
            futures = [pool.submit(job) for job in external]
            outcomes += [job() for job in internal]  # in-process checks overlap the subprocesses
            outcomes += [future.result() for future in futures]
        findings = sorted([*space.refused, *(f for o in outcomes for f in o.findings)], key=sort_key)
        tools = {o.tool: o.version for o in sorted(outcomes, key=lambda o: o.tool)}
        passed = not any(f.severity.failing for f in findings)
        return ValidationResult(findings=findings, tools=tools, files=space.paths, passed=passed)


Job = Callable[[], Outcome]


def _jobs(space: Workspace, kubernetes_version: str, with_checkov: bool) -> tuple[list[Job], list[Job]]:
    """(subprocess jobs, slowest first; in-process jobs) for the files in ``space``."""
    batches = routes.plan(space.paths)
    root, contents = space.root, space.contents
    external: list[Job] = []
    if with_checkov and (by_framework := targets(space.paths)):
        external.append(partial(checkov, root, by_framework))
    if routes.CLOUDFORMATION in batches:
        external.append(partial(linters.cfn_lint, root, batches[routes.CLOUDFORMATION]))
    for validator, schema in _SCHEMAS:
        if validator in batches:
            external.append(partial(linters.check_jsonschema, root, schema, batches[validator], contents))
    if routes.YAML in batches:
        external.append(partial(linters.yamllint, root, batches[routes.YAML]))
    if routes.DOCKERFILE in batches:
        external.append(partial(linters.hadolint, root, batches[routes.DOCKERFILE]))

    internal: list[Job] = []
    if routes.KUBERNETES in batches:
        internal.append(partial(schemas.kubernetes, contents, batches[routes.KUBERNETES], kubernetes_version))
    ecs = {path: "RegisterTaskDefinition" for path in batches.get(routes.ECS_TASK_DEFINITION, [])}
    ecs |= {path: "CreateService" for path in batches.get(routes.ECS_SERVICE, [])}
    if ecs:
        internal.append(partial(schemas.ecs, contents, ecs))
    if routes.TERRAFORM in batches:
        internal.append(partial(schemas.terraform, contents, batches[routes.TERRAFORM]))
    if routes.JSON in batches:
        internal.append(partial(schemas.json_files, contents, batches[routes.JSON]))
    if routes.JENKINSFILE in batches:
        internal.append(partial(_jenkinsfiles, contents, batches[routes.JENKINSFILE]))
    return external, internal


def _jenkinsfiles(contents: Mapping[str, str], paths: list[str]) -> Outcome:
    return Outcome(
        "jenkinsfile", "structural", [f for path in paths for f in jenkinsfile(path, contents[path])]
    )
