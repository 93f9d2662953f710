"""Security rules and the secret scanner: each rule fires on a bad sample and stays quiet on a good one.

Pure functions, no server. Fake credentials are assembled at run time so this file itself does
not look like it leaks one.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from agents.review.secrets_scan import scan as scan_secrets
from agents.review.secrets_scan import scan_for_values
from agents.security import rules
from contracts.payloads import Finding
from contracts.redaction import DETECTORS, SECRET_KEY_PATTERN, is_literal, redact
from contracts.vocabulary import Severity

AWS_KEY = "AKIA" + "Q3EXAMPLE7" + "TESTKEY"[:6]
GITHUB_TOKEN = "ghp_" + "x1Y2z3" * 6
SLACK_TOKEN = "xoxb-" + "1234567890-" + "abcdefABCDEF1234"
PRIVATE_KEY = "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1\n-----END RSA PRIVATE KEY-----\n"
STRONG = "Zq8" + "!kL0pW2xN"
BEARER = "a1B2c3D4" + "e5F6g7H8"

GOOD_DOCKERFILE = """\
# syntax=docker/dockerfile:1
ARG PYTHON_VERSION=3.12.7
FROM python:${PYTHON_VERSION}-slim AS builder
WORKDIR /app
COPY requirements.txt .
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir -r requirements.txt

FROM python:3.12.7-slim
RUN groupadd --gid 10001 app && useradd --uid 10001 --gid 10001 --no-create-home app
COPY --from=builder --chown=10001:10001 /opt/venv /opt/venv
USER 10001:10001
EXPOSE 8000
HEALTHCHECK CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"]
CMD ["/opt/venv/bin/uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000"]
"""

GOOD_DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "app", "namespace": "app"},
    "spec": {
        "selector": {"matchLabels": {"app.kubernetes.io/name": "app"}},
        "template": {
            "metadata": {"labels": {"app.kubernetes.io/name": "app"}},
            "spec": {
                "automountServiceAccountToken": False,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 10001,
                    "runAsGroup": 10001,
                    "fsGroup": 10001,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "app",
                        "image": "registry.example.com/app:1.0.0",
                        "resources": {
                            "requests": {"cpu": "100m", "memory": "128Mi"},
                            "limits": {"cpu": "500m", "memory": "256Mi"},
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "env": [
                            {
                                "name": "DB_PASSWORD",
                                "valueFrom": {"secretKeyRef": {"name": "app-secrets", "key": "DB_PASSWORD"}},
                            }
                        ],
                    }
                ],
            },
        },
    },
}

GOOD_SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: app-secrets
type: Opaque
stringData:
  DB_PASSWORD: CHANGE_ME
  API_TOKEN: ""
data:
  OTHER_KEY: Q0hBTkdFX01F
"""

GOOD_WORKFLOW = """\
name: ci
on:
  push:
    branches: [main]
permissions:
  contents: read
jobs:
  test:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
      - run: python -m pytest -q
  deploy:
    runs-on: ubuntu-24.04
    permissions:
      contents: read
      id-token: write
    steps:
      - uses: aws-actions/configure-aws-credentials@v4
        with:
          role-to-assume: ${{ vars.AWS_ROLE_ARN }}
          aws-region: us-east-1
      - name: Push
        env:
          REGISTRY_PASSWORD: ${{ secrets.REGISTRY_PASSWORD }}
          TITLE: ${{ github.event.head_commit.message }}
        run: echo "$REGISTRY_PASSWORD" | docker login --password-stdin registry.example.com
"""

GOOD_COMPOSE_PROD = """\
services:
  app:
    image: registry.example.com/app:1.0.0
    read_only: true
    security_opt:
      - no-new-privileges:true
"""

GOOD_GITLAB = """\
variables:
  DOCKER_DRIVER: overlay2
  REGISTRY_PASSWORD: $CI_REGISTRY_PASSWORD
test:
  script:
    - python -m pytest -q
  variables:
    API_TOKEN:
      value: ""
      description: set in the project settings
"""

GOOD_JENKINSFILE = """\
pipeline {
  agent any
  environment {
    REGISTRY_CREDS = credentials('registry-creds')
    LOG_LEVEL = 'info'
  }
  stages {
    stage('Test') { steps { sh 'python -m pytest -q' } }
  }
}
"""


def rules_of(findings: list[Finding]) -> set[str]:
    return {f.rule for f in findings}


def only(findings: list[Finding], rule: str) -> Finding:
    matching = [f for f in findings if f.rule == rule]
    assert len(matching) == 1, findings
    return matching[0]


def k8s(mutate: Callable[[dict[str, Any]], None]) -> dict[str, str]:
    doc = copy.deepcopy(GOOD_DEPLOYMENT)
    mutate(doc)
    return {"k8s/deployment.yaml": yaml.safe_dump(doc, sort_keys=False)}


def pod(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]


def container(doc: dict[str, Any]) -> dict[str, Any]:
    return pod(doc)["containers"][0]


# --- the good set is clean ----------------------------------------------------------------------


def test_good_artifacts_have_no_findings() -> None:
    files = {
        "Dockerfile": GOOD_DOCKERFILE,
        "k8s/deployment.yaml": yaml.safe_dump(GOOD_DEPLOYMENT, sort_keys=False),
        "k8s/secret.yaml": GOOD_SECRET,
        ".github/workflows/ci.yml": GOOD_WORKFLOW,
        "docker-compose.prod.yml": GOOD_COMPOSE_PROD,
        ".gitlab-ci.yml": GOOD_GITLAB,
        "Jenkinsfile": GOOD_JENKINSFILE,
    }
    findings = rules.scan(files)
    assert findings == []
    assert rules.passed(findings)


# --- Dockerfile ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("replace", "by", "rule", "severity", "line"),
    [
        ("USER 10001:10001", "USER root", "SEC-DOCKER-001", Severity.HIGH, 11),
        ("USER 10001:10001", "USER 0", "SEC-DOCKER-001", Severity.HIGH, 11),
        ("USER 10001:10001", "USER app", "SEC-DOCKER-001", Severity.HIGH, 11),
        ("USER 10001:10001\n", "", "SEC-DOCKER-001", Severity.HIGH, 8),
        ("FROM python:3.12.7-slim\n", "FROM python\n", "SEC-DOCKER-002", Severity.HIGH, 8),
        ("FROM python:3.12.7-slim\n", "FROM python:latest\n", "SEC-DOCKER-002", Severity.HIGH, 8),
        ("COPY requirements.txt .", "ADD requirements.txt .", "SEC-DOCKER-003", Severity.MEDIUM, 5),
        ("COPY requirements.txt .", "ADD https://example.com/r.txt .", "SEC-DOCKER-003", Severity.HIGH, 5),
        ("HEALTHCHECK CMD", "# HEALTHCHECK CMD", "SEC-DOCKER-004", Severity.MEDIUM, 8),
        ("FROM python:3.12.7-slim\n", "FROM python:3.12-slim\n", "SEC-DOCKER-005", Severity.LOW, 8),
        ("EXPOSE 8000", "ARG GITHUB_TOKEN", "SEC-DOCKER-006", Severity.MEDIUM, 12),
    ],
)
def test_dockerfile_rule_fires(replace: str, by: str, rule: str, severity: Severity, line: int) -> None:
    assert replace in GOOD_DOCKERFILE
    findings = rules.scan({"Dockerfile": GOOD_DOCKERFILE.replace(replace, by, 1)})
    hit = only(findings, rule)
    assert (hit.severity, hit.line, hit.file) == (severity, line, "Dockerfile")
    assert hit.fix


def test_dockerfile_user_inherited_from_an_earlier_stage_and_build_args_resolved() -> None:
    content = (
        "ARG BASE=python:3.12.7-slim\nFROM ${BASE} AS base\nARG UID=10001\nUSER ${UID}\n"
        'HEALTHCHECK CMD ["true"]\nFROM base\nCMD ["python"]\n'
    )
    assert rules.scan({"Dockerfile": content}) == []


def test_dockerfile_continuations_and_heredocs_do_not_hide_instructions() -> None:
    content = (
        "FROM python:3.12.7-slim\nRUN <<EOF\nUSER 10001\nEOF\nRUN echo a \\\n  && echo b\n"
        'HEALTHCHECK CMD ["true"]\n'
    )
    assert rules_of(rules.scan({"Dockerfile": content})) == {"SEC-DOCKER-001"}


# --- Kubernetes ---------------------------------------------------------------------------------


def _set(path: list[str | int], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        target: Any = container(doc) if path[0] == "c" else pod(doc)
        for key in path[1:-1]:
            target = target.setdefault(key, {})
        if value is _DELETE:
            target.pop(path[-1], None)
        else:
            target[path[-1]] = value

    return mutate


_DELETE = object()


@pytest.mark.parametrize(
    ("mutate", "rule", "severity"),
    [
        (_set(["c", "securityContext", "privileged"], True), "SEC-K8S-001", Severity.HIGH),
        (_set(["c", "securityContext", "allowPrivilegeEscalation"], True), "SEC-K8S-002", Severity.HIGH),
        (_set(["c", "securityContext", "allowPrivilegeEscalation"], _DELETE), "SEC-K8S-002", Severity.HIGH),
        (_set(["p", "securityContext", "runAsNonRoot"], _DELETE), "SEC-K8S-003", Severity.HIGH),
        (_set(["c", "securityContext", "runAsUser"], 0), "SEC-K8S-003", Severity.HIGH),
        (_set(["p", "hostNetwork"], True), "SEC-K8S-004", Severity.HIGH),
        (_set(["p", "hostPID"], True), "SEC-K8S-004", Severity.HIGH),
        (_set(["c", "securityContext", "capabilities", "drop"], ["NET_RAW"]), "SEC-K8S-005", Severity.HIGH),
        (_set(["c", "securityContext", "capabilities", "add"], ["SYS_ADMIN"]), "SEC-K8S-006", Severity.HIGH),
        (
            _set(["c", "securityContext", "capabilities", "add"], ["NET_BIND_SERVICE"]),
            "SEC-K8S-006",
            Severity.MEDIUM,
        ),
        (_set(["c", "resources"], {}), "SEC-K8S-007", Severity.MEDIUM),
        (_set(["p", "automountServiceAccountToken"], _DELETE), "SEC-K8S-008", Severity.MEDIUM),
        (_set(["c", "securityContext", "readOnlyRootFilesystem"], False), "SEC-K8S-009", Severity.MEDIUM),
        (_set(["p", "securityContext", "seccompProfile"], _DELETE), "SEC-K8S-010", Severity.LOW),
        (_set(["c", "image"], "registry.example.com/app"), "SEC-K8S-011", Severity.MEDIUM),
        (_set(["c", "image"], "registry.example.com/app:latest"), "SEC-K8S-011", Severity.MEDIUM),
    ],
)
def test_kubernetes_rule_fires(
    mutate: Callable[[dict[str, Any]], None], rule: str, severity: Severity
) -> None:
    findings = rules.scan(k8s(mutate))
    hit = only(findings, rule)
    assert hit.severity == severity
    assert hit.file == "k8s/deployment.yaml" and hit.line and hit.fix
    assert rules_of(findings) == {rule}


def test_kubernetes_finding_points_at_the_offending_line() -> None:
    files = k8s(_set(["c", "securityContext", "privileged"], True))
    hit = only(rules.scan(files), "SEC-K8S-001")
    assert files["k8s/deployment.yaml"].splitlines()[hit.line - 1].strip() == "privileged: true"


def test_kubernetes_service_account_can_disable_token_mount() -> None:
    doc = copy.deepcopy(GOOD_DEPLOYMENT)
    del pod(doc)["automountServiceAccountToken"]
    pod(doc)["serviceAccountName"] = "app"
    account = (
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: app\nautomountServiceAccountToken: false\n"
    )
    files = {"k8s/deployment.yaml": yaml.safe_dump(doc), "k8s/serviceaccount.yaml": account}
    assert rules.scan(files) == []


def test_kubernetes_cronjob_and_init_containers_are_checked() -> None:
    doc = copy.deepcopy(GOOD_DEPLOYMENT)
    spec = pod(doc)
    spec["initContainers"] = [{**copy.deepcopy(spec["containers"][0]), "name": "init", "securityContext": {}}]
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "job"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": spec}}}},
    }
    findings = rules.scan({"k8s/cron.yaml": yaml.safe_dump(cron)})
    assert {"SEC-K8S-002", "SEC-K8S-005", "SEC-K8S-009"} <= rules_of(findings)
    assert all("'init'" in f.message for f in findings)


def test_kubernetes_secret_with_a_value_is_high() -> None:
    leaked = base64.b64encode(STRONG.encode()).decode()
    content = GOOD_SECRET.replace("Q0hBTkdFX01F", leaked)
    hit = only(rules.scan({"k8s/secret.yaml": content}), "SEC-K8S-012")
    assert (hit.severity, hit.line) == (Severity.HIGH, 10)


def test_helm_templates_are_not_parsed_as_manifests() -> None:
    template = "apiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: {{ .Values.replicaCount }}\n"
    assert (
        rules.scan({"charts/app/templates/deployment.yaml": template, "charts/app/Chart.yaml": "name: app\n"})
        == []
    )


# --- Compose ------------------------------------------------------------------------------------


def test_compose_rules() -> None:
    dev = "services:\n  app:\n    image: app:1.0.0\n    privileged: true\n    network_mode: host\n"
    findings = rules.scan({"docker-compose.yml": dev})
    assert rules_of(findings) == {"SEC-COMPOSE-001", "SEC-COMPOSE-004"}
    assert only(findings, "SEC-COMPOSE-001").line == 4
    prod = "services:\n  app:\n    image: app:1.0.0\n    cap_add: [SYS_ADMIN]\n"
    findings = rules.scan({"docker-compose.prod.yml": prod})
    assert rules_of(findings) == {"SEC-COMPOSE-002", "SEC-COMPOSE-003", "SEC-COMPOSE-005"}
    assert only(findings, "SEC-COMPOSE-005").severity == Severity.HIGH
    # Hardening is only demanded of production files.
    assert rules.scan({"docker-compose.yml": "services:\n  app:\n    image: app:1.0.0\n"}) == []


# --- CI -----------------------------------------------------------------------------------------

WF = ".github/workflows/ci.yml"


@pytest.mark.parametrize(
    ("replace", "by", "rule", "severity"),
    [
        ("permissions:\n  contents: read\njobs:", "jobs:", "SEC-GHA-001", Severity.HIGH),
        (
            "permissions:\n  contents: read\njobs:",
            "permissions: write-all\njobs:",
            "SEC-GHA-001",
            Severity.HIGH,
        ),
        (
            "role-to-assume: ${{ vars.AWS_ROLE_ARN }}",
            "aws-access-key-id: ${{ secrets.AWS_ACCESS_KEY_ID }}",
            "SEC-GHA-002",
            Severity.HIGH,
        ),
        (
            "run: python -m pytest -q",
            'run: echo "${{ github.event.issue.title }}"',
            "SEC-GHA-003",
            Severity.HIGH,
        ),
        ("run: python -m pytest -q", "run: echo ${{ github.head_ref }}", "SEC-GHA-003", Severity.HIGH),
        ("run: python -m pytest -q", "run: curl -u u:${{ secrets.TOKEN }} x", "SEC-GHA-004", Severity.MEDIUM),
        ("actions/checkout@v4", "actions/checkout@main", "SEC-GHA-005", Severity.MEDIUM),
        ("actions/checkout@v4", "actions/checkout", "SEC-GHA-005", Severity.MEDIUM),
    ],
)
def test_github_workflow_rule_fires(replace: str, by: str, rule: str, severity: Severity) -> None:
    assert replace in GOOD_WORKFLOW
    content = GOOD_WORKFLOW.replace(replace, by, 1)
    hit = only(rules.scan({WF: content}), rule)
    assert hit.severity == severity and hit.line and hit.fix


def test_github_injection_points_at_the_run_step() -> None:
    content = GOOD_WORKFLOW.replace("run: python -m pytest -q", 'run: echo "${{ github.event.issue.title }}"')
    hit = only(rules.scan({WF: content}), "SEC-GHA-003")
    assert "run: echo" in content.splitlines()[hit.line - 1]


def test_pull_request_target_checking_out_the_head_is_high() -> None:
    content = GOOD_WORKFLOW.replace("  push:\n    branches: [main]", "  pull_request_target:").replace(
        "      - uses: actions/checkout@v4\n",
        "      - uses: actions/checkout@v4\n"
        "        with:\n"
        "          ref: ${{ github.event.pull_request.head.sha }}\n",
    )
    assert only(rules.scan({WF: content}), "SEC-GHA-006").severity == Severity.HIGH


def test_gitlab_and_jenkins_secret_literals() -> None:
    gitlab = GOOD_GITLAB.replace("$CI_REGISTRY_PASSWORD", "hunter2")
    hit = only(rules.scan({".gitlab-ci.yml": gitlab}), "SEC-GITLAB-001")
    assert (hit.severity, hit.line) == (Severity.HIGH, 3)
    jenkins = GOOD_JENKINSFILE.replace("credentials('registry-creds')", "'hunter2'")
    hit = only(rules.scan({"Jenkinsfile": jenkins}), "SEC-JENKINS-001")
    assert (hit.severity, hit.line) == (Severity.HIGH, 4)


# --- secret scanner -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "rule", "line"),
    [
        (f"AWS_ACCESS_KEY_ID={AWS_KEY}\n", "SEC-SECRET-001", 1),
        (f"# key\n{PRIVATE_KEY}", "SEC-SECRET-002", 2),
        (f"token: {GITHUB_TOKEN}\n", "SEC-SECRET-003", 1),
        (f"SLACK={SLACK_TOKEN}\n", "SEC-SECRET-004", 1),
        (f"GOOGLE_KEY={'AIza' + 'SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q'}\n", "SEC-SECRET-005", 1),
        (
            f"jwt: {'eyJhbGciOiJIUzI1NiJ9'}.{'eyJzdWIiOiIxMjM0In0'}.{'c2lnbmF0dXJlX3Rlc3Q'}\n",
            "SEC-SECRET-006",
            1,
        ),
        (f"curl -H 'Authorization: Bearer {BEARER}'\n", "SEC-SECRET-007", 1),
        (f"DATABASE_URL: postgresql://app:{STRONG}@db:5432/app\n", "SEC-SECRET-008", 1),
        (f"- name: DB_PASSWORD\n  value: '{STRONG}'\n", "SEC-SECRET-009", 2),
        (f'{{"name": "API_TOKEN", "value": "{STRONG}"}}', "SEC-SECRET-009", 1),
        (f'master_password = "{STRONG}"\n', "SEC-SECRET-010", 1),
        (f"DB_PASSWORD={STRONG}\n", "SEC-SECRET-010", 1),
        (f"x: 1\nclient_secret: {STRONG}\n", "SEC-SECRET-010", 2),
    ],
)
def test_secret_scanner_finds(content: str, rule: str, line: int) -> None:
    findings = scan_secrets({"file.txt": content})
    assert rule in rules_of(findings), findings
    hit = only(findings, rule)
    assert hit.line == line and hit.severity.blocking and hit.fix
    for secret in (AWS_KEY, GITHUB_TOKEN, SLACK_TOKEN, STRONG, "MIIEow"):
        assert secret not in hit.message


@pytest.mark.parametrize(
    "content",
    [
        "password: ${{ secrets.DB_PASSWORD }}\n",
        'password: "${{ secrets.DB_PASSWORD }}"\n',
        "DB_PASSWORD: ${DB_PASSWORD}\n",
        "DB_PASSWORD: $DB_PASSWORD\n",
        "password: {{ .Values.db.password | quote }}\n",
        "- name: DB_PASSWORD\n  valueFrom:\n    secretKeyRef:\n      name: app-secrets\n      key: X",
        '{"name": "DB_PASSWORD", "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db"}',
        "db_password: arn:aws:ssm:us-east-1:123456789012:parameter/app/db\n",
        "DB_PASSWORD: CHANGE_ME\n",
        'API_TOKEN: ""\n',
        "API_KEY: <your-api-key>\n",
        "POSTGRES_PASSWORD_FILE: /run/secrets/db_password\n",
        "secretName: orchestra-fastapi-service-tls\n",
        "existingSecret: app-secrets\n",
        "password = random_password.db.result\n",
        "secret_string = jsonencode({ password = var.db_password })\n",
        "MasterUserPassword: !Ref DbPassword\n",
        "REGISTRY_CREDS = credentials('registry-creds')\n",
        "automountServiceAccountToken: false\n",
        "DATABASE_URL: postgresql://${DB_USER}:${DB_PASSWORD}@db:5432/app\n",
        "id-token: write\n",
        "password: hunter2\n",  # a weak literal: flagged by name-based rules, not by the entropy scan
    ],
)
def test_secret_scanner_ignores_references_and_placeholders(content: str) -> None:
    assert scan_secrets({"file.txt": content}) == []


def test_secret_findings_name_the_file_and_line() -> None:
    files = {"a.env": f"# header\nAWS_KEY={AWS_KEY}\n", "b/key.pem": f"\n\n{PRIVATE_KEY}"}
    found = {(f.file, f.line, f.rule) for f in rules.scan(files)}
    assert ("a.env", 2, "SEC-SECRET-001") in found
    assert ("b/key.pem", 3, "SEC-SECRET-002") in found
    assert not rules.passed(rules.scan(files))


def test_redact_masks_every_detector_and_keeps_the_rest() -> None:
    text = (
        f"key={AWS_KEY} token={GITHUB_TOKEN} slack {SLACK_TOKEN} password=hunter2 "
        f"url=postgres://u:pw123456@h/db Authorization: Bearer {BEARER} {PRIVATE_KEY}"
    )
    masked = redact(text)
    for secret in (AWS_KEY, GITHUB_TOKEN, SLACK_TOKEN, "hunter2", "pw123456", BEARER, "MIIEow"):
        assert secret not in masked
    assert masked.startswith("key=[REDACTED] token=[REDACTED]")
    assert "password=[REDACTED]" in masked and "postgres://u:[REDACTED]@h/db" in masked
    assert (
        redact("password: ${{ secrets.X }} and CHANGE_ME stay")
        == "password: ${{ secrets.X }} and CHANGE_ME stay"
    )
    assert redact("nothing to see") == "nothing to see"


def test_redact_is_linear_on_adversarial_input() -> None:
    # Bounded patterns: a long run of key-like characters must not backtrack quadratically.
    for text in ("password_" * 5_000, "x-" * 20_000, "a://" * 10_000, "name: x\n" * 5_000):
        assert redact(text) == text


def test_scan_for_values_finds_raw_base64_and_url_encoded() -> None:
    secret = "s3cr3t/v@lue"
    text = f"a {base64.b64encode(secret.encode()).decode()} b"
    assert scan_for_values(text, [secret, "absent", ""]) == [secret]
    assert scan_for_values("x=s3cr3t%2Fv%40lue", [secret]) == [secret]
    assert scan_for_values(f"{secret} {secret}", [secret, secret]) == [secret]
    assert scan_for_values("nothing", [secret]) == []


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("DB_PASSWORD", True),
        ("passwd", True),
        ("apiKey", True),
        ("api_key", True),
        ("client_secret", True),
        ("GITHUB_TOKEN", True),
        ("private_key", True),
        ("aws_credentials", True),
        ("DB_PWD", True),
        ("registry_creds", True),
        ("username", False),
        ("task_id", False),
        ("image", False),
        ("keyword", False),
        ("author", False),
    ],
)
def test_secret_key_pattern(key: str, secret: bool) -> None:
    assert bool(SECRET_KEY_PATTERN.search(key)) is secret


def test_literal_detection() -> None:
    assert is_literal("hunter2")
    for reference in ("${{ secrets.X }}", "$X", "{{ .Values.x }}", "arn:aws:kms:x", "CHANGE_ME", "<x>", '""'):
        assert not is_literal(reference)


def test_detector_rules_are_unique() -> None:
    assert len({d.rule for d in DETECTORS}) == len(DETECTORS)


def test_helm_values_keep_secure_defaults() -> None:
    chart = {"charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.1.0\n"}
    empty = {**chart, "charts/app/values.yaml": "replicaCount: 2\nsecurityContext: {}\nresources: {}\n"}
    found = [(f.rule, f.line, f.severity) for f in rules.scan(empty)]
    assert found == [("SEC-HELM-001", 2, Severity.MEDIUM), ("SEC-HELM-001", 3, Severity.MEDIUM)]
    filled = {**chart, "charts/app/values.yaml": "securityContext:\n  runAsNonRoot: true\n"}
    assert rules.scan(filled) == []
    # A values.yaml outside a chart is somebody else's file.
    assert rules.scan({"other/values.yaml": "resources: {}\n"}) == []
