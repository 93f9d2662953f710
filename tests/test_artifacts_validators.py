"""Every artifact of every example, for every strategy and CI provider, through every offline
validator (docs/artifacts.md) with zero findings (QA's validator library runs each tool once per batch).

Marked ``validators``: these call hadolint, check-jsonschema, kubernetes-validate, cfn-lint,
botocore, python-hcl2, yamllint and checkov. ExternalSecret is the only custom resource the
generator writes; kubernetes-validate has no schema for it, so it is checked against
EXTERNAL_SECRET_SCHEMA here and any other schema-less kind fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from agents.credential_policy import issue
from agents.devops.generate import generate
from agents.devops.render import helm
from agents.devops.spec import AppSpec
from agents.inspection.inspect import inspect_project
from agents.qa.validators import validate
from agents.review.checkov import checkov, targets
from agents.review.tools import find_checkov
from contracts.payloads import CredentialRequested, Finding, ServiceSpec
from contracts.vocabulary import CIProvider, Strategy, Target
from tests.example_services import service_examples

pytestmark = pytest.mark.validators

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = service_examples()
ENVIRONMENTS = ["dev", "staging", "prod"]
CUSTOM_RESOURCES = {("external-secrets.io/v1", "ExternalSecret")}
EXTERNAL_SECRET_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "metadata": {"type": "object", "required": ["name", "namespace"]},
        "spec": {
            "type": "object",
            "required": ["secretStoreRef", "target", "data"],
            "additionalProperties": False,
            "properties": {
                "refreshInterval": {"type": "string", "pattern": "^[0-9]+[smh]$"},
                "secretStoreRef": {
                    "type": "object",
                    "required": ["kind", "name"],
                    "properties": {
                        "kind": {"enum": ["SecretStore", "ClusterSecretStore"]},
                        "name": {"type": "string"},
                    },
                    "additionalProperties": False,
                },
                "target": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string"},
                        "creationPolicy": {"enum": ["Owner", "Orphan", "Merge", "None"]},
                    },
                    "additionalProperties": False,
                },
                "data": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["secretKey", "remoteRef"],
                        "additionalProperties": False,
                        "properties": {
                            "secretKey": {"type": "string", "pattern": "^[-._a-zA-Z0-9]+$"},
                            "remoteRef": {
                                "type": "object",
                                "required": ["key"],
                                "additionalProperties": False,
                                "properties": {
                                    "key": {"type": "string", "minLength": 1},
                                    "property": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


# Example sets with the features no example needs on its own: volumes for the folders an app writes
# and configuration files mounted from secrets (every target, validated like the rest).
VARIANTS = {
    "go-service+files": (
        "go-service",
        ServiceSpec(
            writable_paths=["/data", "/var/lib/go-service"], config_files=["/etc/go-service/app.conf"]
        ),
    ),
}


def _spec(
    example: Path,
    strategy: Strategy,
    ci: CIProvider,
    targets: tuple[Target, ...],
    overrides: ServiceSpec | None = None,
) -> AppSpec:
    facts = inspect_project(example, overrides)
    issued = issue(
        CredentialRequested(
            service=facts.name,
            env_vars=list(facts.env_vars),
            targets=list(targets),
            environments=ENVIRONMENTS,
        )
    )
    return AppSpec(
        facts=facts,
        targets=targets,
        strategy=strategy,
        ci=ci,
        secrets=tuple(issued.secrets),
        config_vars=tuple(issued.config_vars),
    )


@pytest.fixture(scope="module")
def artifact_sets() -> dict[str, dict[str, str]]:
    """The full set per example and strategy (GitHub CI), plus the GitLab and Jenkins pipelines."""
    sets: dict[str, dict[str, str]] = {}
    for example in EXAMPLES:
        for strategy in Strategy:
            full = _spec(example, strategy, CIProvider.GITHUB, tuple(Target))
            sets[f"{example.name}/{strategy}/github"] = {g.path: g.content for g in generate(full)}
            for provider in (CIProvider.GITLAB, CIProvider.JENKINS):
                ci_only = _spec(example, strategy, provider, tuple(Target))
                sets[f"{example.name}/{strategy}/{provider}"] = {
                    g.path: g.content for g in generate(ci_only) if g.target == Target.CI
                }
    for name, (example_name, overrides) in VARIANTS.items():
        example = next(e for e in EXAMPLES if e.name == example_name)
        spec = _spec(example, Strategy.ROLLING, CIProvider.GITHUB, tuple(Target), overrides)
        sets[f"{name}/rolling/github"] = {g.path: g.content for g in generate(spec)}
    return sets


@pytest.fixture(scope="module")
def merged(artifact_sets: dict[str, dict[str, str]]) -> dict[str, str]:
    return {f"{key}/{path}": text for key, files in artifact_sets.items() for path, text in files.items()}


@pytest.fixture(scope="module")
def on_disk(tmp_path_factory: pytest.TempPathFactory, merged: dict[str, str]) -> Path:
    root = tmp_path_factory.mktemp("artifacts")
    for path, text in merged.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


def _report(findings: list[Finding]) -> str:
    return "\n".join(f"{f.file}:{f.line} [{f.tool}] {f.rule}: {f.message}" for f in findings[:40])


def _custom_resource(finding: Finding, merged: dict[str, str]) -> bool:
    if finding.rule != "crd-not-validated":
        return False
    docs = [d for d in yaml.safe_load_all(merged[finding.file]) if d]
    return all((d["apiVersion"], d["kind"]) in CUSTOM_RESOURCES for d in docs)


def test_the_matrix_is_complete(artifact_sets: dict[str, dict[str, str]]) -> None:
    assert len(artifact_sets) == len(EXAMPLES) * len(Strategy) * len(CIProvider) + len(VARIANTS)
    kinds = {Path(p).name for files in artifact_sets.values() for p in files}
    assert {
        "Dockerfile",
        "ci-cd.yml",
        ".gitlab-ci.yml",
        "Jenkinsfile",
        "infrastructure.yaml",
        "main.tf",
    } <= kinds


def test_offline_validators_find_nothing(merged: dict[str, str]) -> None:
    """hadolint (warning), compose/GitHub/GitLab schemas, kubernetes-validate --strict 1.30.0,
    cfn-lint, botocore ECS shapes, python-hcl2, yamllint, JSON and Jenkinsfile structure."""
    result = validate(merged, kubernetes_version="1.30.0")
    assert not [t for t, version in result.tools.items() if version == "missing"], result.tools
    expected = {
        "hadolint",
        "check-jsonschema",
        "kubernetes-validate",
        "cfn-lint",
        "botocore",
        "python-hcl2",
        "yamllint",
    }
    assert expected <= set(result.tools), result.tools
    findings = [f for f in result.findings if not _custom_resource(f, merged)]
    assert not findings, _report(findings)


def test_custom_resources_match_their_schema(merged: dict[str, str]) -> None:
    seen = 0
    for path, text in merged.items():
        if "/k8s/" not in path:
            continue
        for doc in yaml.safe_load_all(text):
            if doc and (doc["apiVersion"], doc["kind"]) in CUSTOM_RESOURCES:
                jsonschema.validate(doc, EXTERNAL_SECRET_SCHEMA)
                seen += 1
    assert seen


def test_helm_values_match_their_schema(artifact_sets: dict[str, dict[str, str]]) -> None:
    for example in EXAMPLES:
        for strategy in Strategy:
            spec = _spec(example, strategy, CIProvider.GITHUB, tuple(Target))
            files = artifact_sets[f"{example.name}/{strategy}/github"]
            schema = json.loads(files[f"charts/{spec.name}/values.schema.json"])
            jsonschema.Draft7Validator.check_schema(schema)
            jsonschema.validate(yaml.safe_load(files[f"charts/{spec.name}/values.yaml"]), schema)
            for env in ENVIRONMENTS:
                jsonschema.validate(helm.merged_values(spec, env), schema)
    for name, (example_name, overrides) in VARIANTS.items():
        spec = _spec(
            next(e for e in EXAMPLES if e.name == example_name),
            Strategy.ROLLING,
            CIProvider.GITHUB,
            tuple(Target),
            overrides,
        )
        files = artifact_sets[f"{name}/rolling/github"]
        values = yaml.safe_load(files[f"charts/{spec.name}/values.yaml"])
        assert [v["mountPath"] for v in values["dataVolumes"]] == ["/data", "/var/lib/go-service"]
        assert values["configFiles"][0]["mountPath"] == "/etc/go-service/app.conf"
        jsonschema.validate(values, json.loads(files[f"charts/{spec.name}/values.schema.json"]))


def test_checkov_passes_every_framework(on_disk: Path, merged: dict[str, str]) -> None:
    """dockerfile, kubernetes, cloudformation, terraform and github_actions in one checkov run;
    skipped checks are declared inline in the artifacts (listed in agents/devops/skips.py)."""
    if find_checkov() is None:
        pytest.skip(
            "checkov not found: set ORCHESTRA_CHECKOV, run `make checkov` (.tools/checkov) or put it on PATH"
        )
    by_framework = targets(sorted(merged))
    assert set(by_framework) == {"dockerfile", "kubernetes", "cloudformation", "terraform", "github_actions"}
    outcome = checkov(on_disk, by_framework)
    assert outcome.version not in ("missing", "unknown"), outcome
    assert not outcome.findings, _report(outcome.findings)


@pytest.mark.skipif(
    shutil.which("terraform") is None, reason="terraform binary not installed (fmt check only)"
)
def test_terraform_is_fmt_clean(on_disk: Path, merged: dict[str, str]) -> None:
    dirs = sorted({str(Path(p).parent) for p in merged if p.endswith(".tf")})
    for directory in dirs[:3]:
        done = subprocess.run(
            ["terraform", "fmt", "-check", "-diff"], cwd=on_disk / directory, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout
