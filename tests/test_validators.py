"""The offline validators behind QA: a good file per validator passes, bad ones give exact findings.

Runs the real tools from the venv (hadolint, check-jsonschema, cfn-lint, yamllint) and the
in-process libraries (kubernetes-validate, botocore, python-hcl2); checkov only where installed.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from agents.qa import linters, schemas
from agents.qa.pipelines import ci_runs_tests, jenkinsfile
from agents.qa.validators import ValidationResult, validate
from agents.review import checkov
from agents.review.routes import validators_for
from agents.review.tools import find_checkov
from contracts.payloads import Finding, Report
from contracts.vocabulary import Severity

pytestmark = pytest.mark.validators

DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM python:3.12.7-slim AS builder
WORKDIR /app
COPY requirements.txt .
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir -r requirements.txt

FROM python:3.12.7-slim
RUN groupadd --gid 10001 app && useradd --uid 10001 --gid 10001 --no-create-home app
COPY --from=builder --chown=10001:10001 /opt/venv /opt/venv
COPY --chown=10001:10001 app /app/app
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"]
CMD ["/opt/venv/bin/uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000"]
"""

COMPOSE = """\
services:
  app:
    image: app:1.0.0
    ports:
      - "8000:8000"
    healthcheck:
      test: ["CMD", "python", "-c", "print(1)"]
      interval: 10s
"""

WORKFLOW = """\
name: ci
on:
  push:
    branches: [main]
permissions:
  contents: read
jobs:
  test:
    runs-on: ubuntu-24.04
    timeout-minutes: 15
    steps:
      - uses: actions/checkout@v4
      - run: pip install -r requirements.txt
      - run: python -m pytest -q
"""

GITLAB = """\
stages:
  - test
test:
  stage: test
  image: python:3.12.7-slim
  script:
    - pip install -r requirements.txt
    - python -m pytest -q
  rules:
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
"""

JENKINSFILE = """\
pipeline {
  agent any
  options {
    timeout(time: 30, unit: 'MINUTES')
  }
  environment {
    REGISTRY_CREDS = credentials('registry-creds')
  }
  stages {
    stage('Test') {
      steps {
        sh 'python -m pytest -q'
      }
    }
  }
  post {
    always {
      echo 'done' // a comment with { braces
    }
    failure {
      echo "failed: ${env.BUILD_URL}"
    }
  }
}
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: app
spec:
  replicas: 2
  selector:
    matchLabels:
      app.kubernetes.io/name: app
  template:
    metadata:
      labels:
        app.kubernetes.io/name: app
    spec:
      containers:
        - name: app
          image: registry.example.com/app:1.0.0
          ports:
            - containerPort: 8000
---
apiVersion: v1
kind: Service
metadata:
  name: app
  namespace: app
spec:
  selector:
    app.kubernetes.io/name: app
  ports:
    - port: 80
      targetPort: 8000
"""

CLOUDFORMATION = """\
AWSTemplateFormatVersion: "2010-09-09"
Description: App log group
Parameters:
  RetentionDays:
    Type: Number
    Default: 30
Resources:
  LogGroup:
    Type: AWS::Logs::LogGroup
    Properties:
      RetentionInDays: !Ref RetentionDays
Outputs:
  LogGroupName:
    Value: !Ref LogGroup
"""

TASK_DEFINITION = {
    "family": "app",
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["FARGATE"],
    "cpu": "256",
    "memory": "512",
    "executionRoleArn": "arn:aws:iam::123456789012:role/app-execution",
    "containerDefinitions": [
        {
            "name": "app",
            "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1.0.0",
            "essential": True,
            "user": "10001:10001",
            "readonlyRootFilesystem": True,
        }
    ],
}

SERVICE = {
    "serviceName": "app",
    "cluster": "app",
    "taskDefinition": "app",
    "desiredCount": 2,
    "launchType": "FARGATE",
    "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": True, "rollback": True}},
    "networkConfiguration": {
        "awsvpcConfiguration": {"subnets": ["subnet-0123456789abcdef0"], "assignPublicIp": "DISABLED"}
    },
}

TERRAFORM = """\
terraform {
  required_version = ">= 1.6.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.70"
    }
  }
}

variable "name" {
  type    = string
  default = "app"
}
"""

PROMETHEUS = """\
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: app
    static_configs:
      - targets: ["app:8000"]
"""

GOOD: dict[str, str] = {
    "Dockerfile": DOCKERFILE,
    "docker-compose.yml": COMPOSE,
    ".github/workflows/ci.yml": WORKFLOW,
    ".gitlab-ci.yml": GITLAB,
    "Jenkinsfile": JENKINSFILE,
    "k8s/deployment.yaml": DEPLOYMENT,
    "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.1.0\n",
    "charts/app/values.yaml": "replicaCount: 2\n",
    "charts/app/values.schema.json": json.dumps(
        {"type": "object", "properties": {"replicaCount": {"type": "integer"}}}
    ),
    "charts/app/templates/deployment.yaml": 'metadata:\n  name: {{ include "app.fullname" . }}\n',
    "ecs-task-definition.json": json.dumps(TASK_DEFINITION, indent=2),
    "ecs-service.json": json.dumps(SERVICE, indent=2),
    "cloudformation/infrastructure.yaml": CLOUDFORMATION,
    "terraform/main.tf": TERRAFORM,
    "monitoring/prometheus.yml": PROMETHEUS,
    "docs/DEPLOYMENT.md": "# Deploy\n",
}


def failing(result: ValidationResult) -> list[Finding]:
    return [f for f in result.findings if f.severity not in (Severity.INFO, Severity.LOW)]


def one(findings: list[Finding], rule: str) -> Finding:
    hits = [f for f in findings if f.rule == rule]
    assert len(hits) == 1, findings
    return hits[0]


@pytest.fixture(scope="module")
def good() -> ValidationResult:
    return validate(GOOD)


# --- the good set -------------------------------------------------------------------------------


def test_good_set_passes_every_validator(good: ValidationResult) -> None:
    assert good.findings == []
    assert good.passed
    assert good.files == sorted(GOOD)
    expected = {"hadolint", "check-jsonschema", "kubernetes-validate", "cfn-lint", "botocore", "python-hcl2"}
    assert expected | {"yamllint", "json", "jenkinsfile"} == set(good.tools)
    assert all(version and version != "missing" for version in good.tools.values())


def test_result_converts_to_the_report_contract(good: ValidationResult) -> None:
    report = good.report("ok")
    assert isinstance(report, Report) and report.passed and report.summary == "ok"
    assert report.tools == good.tools


def test_validation_is_deterministic(good: ValidationResult) -> None:
    assert validate(GOOD) == good


def test_routing_by_path() -> None:
    assert validators_for("Dockerfile") == ["dockerfile"]
    assert validators_for("Dockerfile.dockerignore") == []
    assert validators_for("k8s/deployment.yaml") == ["kubernetes", "yaml"]
    assert validators_for("k8s/kustomization.yaml") == ["yaml"]
    assert validators_for("docker-compose.prod.yml") == ["compose", "yaml"]
    assert validators_for(".github/workflows/ci-cd.yml") == ["github-workflow", "yaml"]
    assert validators_for("ecs-task-definition.json") == ["ecs-task-definition", "json"]
    assert validators_for("charts/app/templates/deployment.yaml") == []
    assert validators_for("deploy/helm/x/templates/a.yaml", ["deploy/helm/x"]) == []
    assert validators_for("README.md") == []


# --- hadolint -----------------------------------------------------------------------------------


def test_hadolint_latest_is_dl3007_on_line_1() -> None:
    result = validate(
        {"Dockerfile": DOCKERFILE.replace("FROM python:3.12.7-slim AS builder", "FROM python:latest")}
    )
    hit = one(result.findings, "DL3007")
    assert (hit.file, hit.line, hit.severity, hit.tool) == ("Dockerfile", 2, Severity.MEDIUM, "hadolint")
    assert not result.passed


def test_hadolint_reports_exact_rules_and_levels() -> None:
    content = (
        "FROM python:latest\nRUN apt-get update && apt-get install -y curl\nADD . /app\nCMD python app.py\n"
    )
    result = validate({"Dockerfile": content})
    got = {(f.rule, f.line, f.severity) for f in result.findings}
    assert got == {
        ("DL3007", 1, Severity.MEDIUM),
        ("DL3008", 2, Severity.MEDIUM),
        ("DL3009", 2, Severity.INFO),
        ("DL3015", 2, Severity.INFO),
        ("DL3020", 3, Severity.HIGH),
        ("DL3025", 4, Severity.MEDIUM),
    }


def test_hadolint_info_only_still_passes() -> None:
    content = (
        "FROM debian:12.7-slim\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends curl=7.88.1-10+deb12u8\n"
        "USER 10001\n"
    )
    result = validate({"Dockerfile": content})
    assert [(f.rule, f.severity) for f in result.findings] == [("DL3009", Severity.INFO)]
    assert result.passed


# --- check-jsonschema ---------------------------------------------------------------------------


def test_compose_bad_key_fails_the_schema_at_its_line() -> None:
    result = validate({"docker-compose.yml": COMPOSE.replace("    ports:", "    bogus: 1\n    ports:")})
    hit = one(result.findings, "compose-spec")
    assert (hit.line, hit.severity, hit.tool) == (4, Severity.HIGH, "check-jsonschema")
    assert "'bogus' was unexpected" in hit.message


def test_compose_unparsable_is_reported_with_its_line() -> None:
    result = validate({"docker-compose.yml": "services:\n  app: [\n"})
    assert one(result.findings, "compose-spec").line == 3
    assert not result.passed


def test_github_workflow_schema() -> None:
    result = validate({".github/workflows/ci.yml": WORKFLOW.replace("runs-on: ubuntu-24.04", "runs_on: x")})
    hit = one(result.findings, "github-workflows")
    assert (hit.line, hit.file) == (8, ".github/workflows/ci.yml")  # the job that is not valid
    assert "$.jobs.test" in hit.message


def test_gitlab_ci_schema() -> None:
    result = validate({".gitlab-ci.yml": GITLAB.replace("  stage: test\n", "  stage: test\n  retry: many\n")})
    assert one(result.findings, "gitlab-ci").line == 5


# --- kubernetes-validate ------------------------------------------------------------------------


def test_kubernetes_unknown_field_fails_strict() -> None:
    content = DEPLOYMENT.replace("          ports:", "          bogus: 1\n          ports:")
    hit = one(validate({"k8s/deployment.yaml": content}).findings, "kubernetes-validate")
    assert hit.line == 19 and "'bogus' was unexpected" in hit.message and "Deployment/app" in hit.message


def test_kubernetes_wrong_type_in_second_document() -> None:
    content = DEPLOYMENT.replace("    - port: 80", "    - port: eighty")
    hit = one(validate({"k8s/deployment.yaml": content}).findings, "kubernetes-validate")
    assert hit.line == 31 and "Service/app" in hit.message


def test_kubernetes_removed_api_is_an_error() -> None:
    content = "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata:\n  name: app\n"
    result = validate({"k8s/ingress.yaml": content})
    hit = one(result.findings, "kubernetes-validate")
    assert hit.severity == Severity.HIGH and "no schema" in hit.message
    assert not result.passed


def test_kubernetes_misspelt_core_kind_is_an_error() -> None:
    result = validate({"k8s/svc.yaml": "apiVersion: v1\nkind: Servic\nmetadata:\n  name: app\n"})
    assert one(result.findings, "kubernetes-validate").severity == Severity.HIGH


def test_kubernetes_custom_resource_is_reported_but_passes() -> None:
    content = "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: app\n"
    result = validate({"k8s/rollout.yaml": content})
    assert one(result.findings, "crd-not-validated").severity == Severity.INFO
    assert result.passed


def test_kubernetes_version_is_pinned() -> None:
    # HorizontalPodAutoscaler autoscaling/v2beta2 was removed in 1.26.
    content = "apiVersion: autoscaling/v2beta2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: app\n"
    assert validate({"k8s/hpa.yaml": content}, kubernetes_version="1.25.0").passed
    assert not validate({"k8s/hpa.yaml": content}, kubernetes_version="1.30.0").passed


# --- cfn-lint -----------------------------------------------------------------------------------


def test_cfn_lint_error_and_warning() -> None:
    content = CLOUDFORMATION.replace("      RetentionInDays:", "      RetentionInDay:").replace(
        "Resources:", "  Unused:\n    Type: String\nResources:"
    )
    result = validate({"cloudformation/infrastructure.yaml": content})
    got = {(f.rule, f.line, f.severity) for f in result.findings}
    assert ("E3002", 13, Severity.HIGH) in got
    assert ("W2001", 7, Severity.MEDIUM) in got
    assert all(f.tool == "cfn-lint" for f in result.findings)


# --- botocore ECS shapes ------------------------------------------------------------------------


def test_ecs_task_definition_cpu_as_int_fails() -> None:
    content = json.dumps({**TASK_DEFINITION, "cpu": 256}, indent=2)
    result = validate({"ecs-task-definition.json": content})
    hit = one(result.findings, "ecs-RegisterTaskDefinition")
    assert "Invalid type for parameter cpu" in hit.message and hit.tool == "botocore"
    assert content.splitlines()[hit.line - 1].strip() == '"cpu": 256,'


def test_ecs_unknown_fields_each_get_a_finding() -> None:
    bad = {
        **TASK_DEFINITION,
        "containerDefinitions": [{**TASK_DEFINITION["containerDefinitions"][0], "x": 1}],
    }
    bad_service = {**SERVICE, "launchType": 7, "bogus": True}
    files = {
        "ecs-task-definition.json": json.dumps(bad, indent=2),
        "ecs-service.json": json.dumps(bad_service),
    }
    result = validate(files)
    task = [f for f in result.findings if f.file == "ecs-task-definition.json"]
    assert len(task) == 1 and 'Unknown parameter in containerDefinitions[0]: "x"' in task[0].message
    service = [f.message for f in result.findings if f.rule == "ecs-CreateService"]
    assert len(service) == 2


# --- python-hcl2, JSON, yamllint ----------------------------------------------------------------


def test_bad_hcl_fails_with_its_line() -> None:
    result = validate({"terraform/main.tf": TERRAFORM.replace('default = "app"', "default = ")})
    hit = one(result.findings, "hcl-syntax")
    assert hit.line == 13 and hit.tool == "python-hcl2"


def test_bad_json_fails_with_its_line() -> None:
    result = validate({"monitoring/dashboard.json": '{\n  "uid": "app",\n  "title": \n}\n'})
    hit = one(result.findings, "json-syntax")
    assert hit.line == 4


def test_values_schema_must_be_a_json_schema() -> None:
    result = validate({"charts/app/values.schema.json": '{"type": "objekt"}'})
    assert one(result.findings, "json-schema").severity == Severity.HIGH


def test_bad_yaml_indentation_fails_yamllint() -> None:
    result = validate(
        {"monitoring/prometheus.yml": PROMETHEUS.replace("  scrape_interval", "   scrape_interval")}
    )
    # The first block sets the indentation width (3); the 2-space blocks after it are wrong.
    got = [(f.rule, f.line, f.tool, f.severity) for f in result.findings]
    assert got == [("indentation", n, "yamllint", Severity.HIGH) for n in (4, 6)]


def test_yaml_syntax_error_fails_yamllint() -> None:
    result = validate({"monitoring/alerts.yml": "groups:\n  - name: a\n   rules: []\n"})
    assert one(result.findings, "syntax").line == 3


def test_helm_templates_are_not_yaml_linted(good: ValidationResult) -> None:
    assert not [f for f in good.findings if "templates" in f.file]


# --- Jenkinsfile --------------------------------------------------------------------------------


def test_jenkinsfile_structure() -> None:
    assert jenkinsfile("Jenkinsfile", JENKINSFILE) == []
    broken = JENKINSFILE.replace(
        "timeout(time: 30, unit: 'MINUTES')", "buildDiscarder(logRotator())"
    ).replace("    failure {", "    success {")
    broken = broken.replace("credentials('registry-creds')", "'hunter2-literal'")
    rules = {(f.rule, f.line) for f in jenkinsfile("Jenkinsfile", broken)}
    assert rules == {("jenkins-timeout", 3), ("jenkins-post", 16), ("jenkins-credentials", 7)}
    assert [f.rule for f in jenkinsfile("Jenkinsfile", "node { sh 'make' }")] == ["jenkins-pipeline"]


def test_jenkinsfile_is_validated_by_validate() -> None:
    result = validate({"Jenkinsfile": JENKINSFILE.replace("  agent any\n", "")})
    assert one(result.findings, "jenkins-agent").tool == "jenkinsfile"
    assert not result.passed


# --- does CI run the tests ----------------------------------------------------------------------


def test_ci_runs_tests() -> None:
    ci = {k: GOOD[k] for k in (".github/workflows/ci.yml", ".gitlab-ci.yml", "Jenkinsfile")}
    assert ci_runs_tests(ci, ["pytest", "-q"]) == []
    assert ci_runs_tests(ci, ["python", "-m", "pytest", "-q"]) == []
    missing = ci_runs_tests(ci, ["pytest", "--cov"])
    assert [(f.file, f.rule) for f in missing] == [
        (".github/workflows/ci.yml", "ci-runs-tests"),
        (".gitlab-ci.yml", "ci-runs-tests"),
        ("Jenkinsfile", "ci-runs-tests"),
    ]
    assert ci_runs_tests({"Dockerfile": DOCKERFILE}, ["pytest"]) == []
    assert ci_runs_tests(ci, []) == []
    chained = {".gitlab-ci.yml": GITLAB.replace("- python -m pytest -q", "- cd src && uv run pytest -q -x")}
    assert ci_runs_tests(chained, ["pytest", "-q"]) == []


# --- refusals, missing and crashing tools -------------------------------------------------------


def test_paths_that_escape_are_refused() -> None:
    result = validate({"../evil.yml": "a: 1\n", "/etc/passwd.yml": "a: 1\n", "ok.yml": "a: 1\n"})
    refused = {f.file for f in result.findings if f.rule == "unsafe-path"}
    assert refused == {"../evil.yml", "/etc/passwd.yml"}
    assert result.files == ["ok.yml"] and not result.passed


def test_a_missing_tool_never_passes_silently(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linters, "find_tool", lambda name: None)
    result = validate({"Dockerfile": DOCKERFILE, "docker-compose.yml": COMPOSE})
    missing = {(f.file, f.tool) for f in result.findings if f.rule == "tool-missing"}
    assert missing == {
        ("Dockerfile", "hadolint"),
        ("docker-compose.yml", "check-jsonschema"),
        ("docker-compose.yml", "yamllint"),
    }
    assert all(f.severity == Severity.HIGH for f in result.findings)
    assert result.tools["hadolint"] == "missing" and not result.passed


def test_a_missing_library_never_passes_silently(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "kubernetes_validate", None)
    outcome = schemas.kubernetes({"k8s/a.yaml": DEPLOYMENT}, ["k8s/a.yaml"], "1.30.0")
    assert [(f.rule, f.severity) for f in outcome.findings] == [("tool-missing", Severity.HIGH)]


def test_a_crashing_tool_is_named_with_its_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "hadolint"
    fake.write_text("#!/bin/sh\necho 'fatal: cannot parse config' >&2\necho 'more detail' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(linters, "find_tool", lambda name: str(fake) if name == "hadolint" else None)
    outcome = linters.hadolint(tmp_path, [])
    assert outcome.findings == []  # nothing to check
    result = validate({"Dockerfile": DOCKERFILE})
    hit = one(result.findings, "tool-crashed")
    assert hit.message == "hadolint failed: fatal: cannot parse config" and hit.severity == Severity.HIGH


# --- checkov ------------------------------------------------------------------------------------


def test_checkov_missing_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkov, "find_checkov", lambda: None)
    result = validate({"Dockerfile": DOCKERFILE}, with_checkov=True)
    assert one(result.findings, "tool-missing").tool == "checkov" and not result.passed
    info = checkov.run_checkov({"Dockerfile": DOCKERFILE}, missing=Severity.INFO)
    assert [f.severity for f in info.findings] == [Severity.INFO]


@pytest.mark.skipif(find_checkov() is None, reason="checkov not installed (make checkov)")
def test_checkov_runs_every_framework_in_one_process() -> None:
    files = {
        "Dockerfile": DOCKERFILE.replace("HEALTHCHECK", "# HEALTHCHECK"),
        "k8s/deployment.yaml": DEPLOYMENT,
        "terraform/main.tf": TERRAFORM,
    }
    result = validate(files, with_checkov=True)
    from_checkov = {(f.file, f.rule) for f in result.findings if f.tool == "checkov"}
    assert ("Dockerfile", "CKV_DOCKER_2") in from_checkov  # no HEALTHCHECK
    assert ("k8s/deployment.yaml", "CKV_K8S_20") in from_checkov  # allowPrivilegeEscalation not false
    assert result.tools["checkov"][0].isdigit()


def test_tools_come_from_the_interpreters_bin_dir() -> None:
    from agents.review.tools import bin_dir, find_tool

    hadolint = find_tool("hadolint")
    assert hadolint is not None and Path(hadolint).parent == bin_dir()
    assert os.access(hadolint, os.X_OK)


def test_jenkins_post_must_be_the_pipelines_own() -> None:
    """A stage's `post` does not stand in for the pipeline's `post { always; failure }`."""
    from agents.qa.pipelines import jenkinsfile

    stage_post_only = """
pipeline {
  agent any
  options { timeout(time: 30, unit: 'MINUTES') }
  stages {
    stage('test') {
      steps { sh 'pytest' }
      post { always { echo 'stage done' } failure { echo 'stage failed' } }
    }
  }
}
"""
    rules = [f.rule for f in jenkinsfile("Jenkinsfile", stage_post_only)]
    assert rules.count("jenkins-post") == 2
    both = (
        stage_post_only.rstrip().removesuffix("}")
        + "  post { always { echo 'x' } failure { echo 'y' } }\n}\n"
    )
    assert [f.rule for f in jenkinsfile("Jenkinsfile", both)] == []


def test_tools_false_runs_only_in_process_checks() -> None:
    """The "fast" validators setting: no command-line tool runs, in-process checks still do."""
    from agents.qa.validators import validate

    result = validate({"Dockerfile": "FROM python:latest\n", "ecs-service.json": "{not json"}, tools=False)
    assert "hadolint" not in result.tools
    assert not result.passed and {f.file for f in result.findings} == {"ecs-service.json"}
