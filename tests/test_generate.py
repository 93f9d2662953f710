"""The generator as a pure library: determinism, target selection, selectors that match the pods,
secret references without values, safe writing, strategies, CI providers and the CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from agents.devops.generate import (
    MANIFEST,
    TARGET_RENDERERS,
    ArtifactWriteError,
    GeneratedFile,
    generate,
    sha256_text,
    write_artifacts,
)
from agents.devops.render import helm, monitoring
from agents.devops.spec import AppSpec
from agents.inspection.facts import ProjectFacts
from agents.inspection.inspect import inspect_project
from contracts.payloads import SecretRef, ServiceSpec
from contracts.vocabulary import CIProvider, SecretKind, Strategy, Target
from tests.example_services import service_examples

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
EXAMPLE_NAMES = [p.name for p in service_examples()]
ENVIRONMENTS = ("dev", "staging", "prod")
# The placeholder value every example's .env.example carries for its secrets.
FIXTURE_VALUE = "example-only-not-a-real-secret"


@pytest.fixture(scope="module")
def facts() -> dict[str, ProjectFacts]:
    return {name: inspect_project(EXAMPLES / name) for name in EXAMPLE_NAMES}


def secret_refs(f: ProjectFacts) -> tuple[SecretRef, ...]:
    """References of every kind for the secret-looking variables, as the credential manager issues them."""
    refs = []
    for var in f.env_vars:
        if not re.search(r"PASSWORD|SECRET|TOKEN|KEY", var):
            continue
        slug = var.lower().replace("_", "-")
        for env in ENVIRONMENTS:
            refs += [
                SecretRef(
                    env_var=var,
                    environment=env,
                    kind=SecretKind.EXTERNAL_SECRET,
                    reference=f"{f.name}-secrets",
                    key=f"{f.name}/{env}/{slug}",
                    rotation_days=30,
                ),
                SecretRef(
                    env_var=var,
                    environment=env,
                    kind=SecretKind.SECRETS_MANAGER,
                    reference=f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{f.name}/{env}/{slug}",
                    rotation_days=30,
                ),
                SecretRef(
                    env_var=var,
                    environment=env,
                    kind=SecretKind.CI_SECRET,
                    reference=f"{env.upper()}_{var}",
                    rotation_days=30,
                ),
            ]
    return tuple(refs)


def make_spec(f: ProjectFacts, **fields: Any) -> AppSpec:
    fields.setdefault("secrets", secret_refs(f))
    return AppSpec(facts=f, **fields)


def as_dict(files: list[GeneratedFile]) -> dict[str, str]:
    return {g.path: g.content for g in files}


def docs(content: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(content) if d]


# --- determinism and selection ---------------------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_generate_is_deterministic(facts: dict[str, ProjectFacts], example: str) -> None:
    spec = make_spec(facts[example], strategy=Strategy.CANARY)
    first, second = generate(spec), generate(spec)
    assert [(g.path, g.content, g.sha256) for g in first] == [(g.path, g.content, g.sha256) for g in second]
    assert [g.path for g in first] == sorted(g.path for g in first)
    assert all(g.sha256 == sha256_text(g.content) for g in first)


def test_generate_is_identical_across_processes() -> None:
    """No set ordering, clock or randomness: another interpreter with another hash seed agrees."""
    script = (
        "import hashlib, sys; from pathlib import Path; "
        "from agents.inspection.inspect import inspect_project; from agents.devops.spec import AppSpec; "
        "from agents.devops.generate import generate; "
        f"facts = inspect_project(Path({str(EXAMPLES / 'fastify-service')!r})); "
        "spec = AppSpec(facts=facts, strategy='blue-green'); "
        "print(hashlib.sha256(''.join(g.path + g.content for g in generate(spec)).encode()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "4242")
    }
    assert len(digests) == 1


PREFIXES = {
    Target.DOCKER: ("Dockerfile", ".dockerignore", "docker-compose"),
    Target.CI: (".github/", ".gitlab-ci.yml", "Jenkinsfile"),
    Target.K8S: ("k8s/",),
    Target.HELM: ("charts/",),
    Target.ECS: ("ecs-", "cloudformation/"),
    Target.TERRAFORM: ("terraform/",),
    Target.MONITORING: ("monitoring/",),
    Target.DOCS: ("docs/",),
}


@pytest.mark.parametrize("target", list(Target))
def test_each_target_renders_only_its_files(facts: dict[str, ProjectFacts], target: Target) -> None:
    files = generate(make_spec(facts["fastapi-service"], targets=(target,)))
    assert files
    assert all(g.target == target and g.path.startswith(PREFIXES[target]) for g in files)


def test_the_full_set(facts: dict[str, ProjectFacts]) -> None:
    paths = set(as_dict(generate(make_spec(facts["fastapi-service"]))))
    expected = {
        "Dockerfile",
        ".dockerignore",
        "docker-compose.yml",
        "docker-compose.test.yml",
        "docker-compose.prod.yml",
        ".github/workflows/ci-cd.yml",
        "k8s/deployment.yaml",
        "k8s/service.yaml",
        "k8s/configmap.yaml",
        "k8s/externalsecret.yaml",
        "k8s/hpa.yaml",
        "k8s/ingress.yaml",
        "k8s/pdb.yaml",
        "k8s/networkpolicy.yaml",
        "k8s/serviceaccount.yaml",
        "charts/fastapi-service/Chart.yaml",
        "charts/fastapi-service/values.yaml",
        "charts/fastapi-service/values.schema.json",
        "charts/fastapi-service/templates/NOTES.txt",
        "charts/fastapi-service/templates/_helpers.tpl",
        "charts/fastapi-service/templates/tests/test-connection.yaml",
        "ecs-task-definition.json",
        "ecs-service.json",
        "cloudformation/infrastructure.yaml",
        "terraform/main.tf",
        "terraform/variables.tf",
        "terraform/outputs.tf",
        "terraform/versions.tf",
        "monitoring/prometheus.yml",
        "monitoring/alert-rules.yml",
        "monitoring/grafana/dashboard.json",
        "monitoring/grafana/datasource.yml",
        "docs/DEPLOYMENT.md",
        "docs/INFRASTRUCTURE.md",
        "docs/ROLLBACK.md",
        "docs/MONITORING.md",
        "docs/TROUBLESHOOTING.md",
    }
    assert expected <= paths


@pytest.mark.parametrize(
    ("provider", "path"),
    [
        (CIProvider.GITHUB, ".github/workflows/ci-cd.yml"),
        (CIProvider.GITLAB, ".gitlab-ci.yml"),
        (CIProvider.JENKINS, "Jenkinsfile"),
    ],
)
def test_ci_renders_the_chosen_provider_only(
    facts: dict[str, ProjectFacts], provider: CIProvider, path: str
) -> None:
    files = as_dict(generate(make_spec(facts["go-service"], targets=(Target.CI,), ci=provider)))
    assert list(files) == [path]


def test_targets_registry_covers_every_target() -> None:
    assert set(TARGET_RENDERERS) == set(Target)


# --- Dockerfile ----------------------------------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_dockerfile_rules(facts: dict[str, ProjectFacts], example: str) -> None:
    text = as_dict(generate(make_spec(facts[example], targets=(Target.DOCKER,))))["Dockerfile"]
    assert text.startswith("# syntax=docker/dockerfile:1\n")
    froms = re.findall(r"^FROM (\S+) AS (\w+)", text, re.MULTILINE)
    assert [stage for _, stage in froms] == ["builder", "test", "runtime"]
    images = [image for image, _ in froms if image != "builder"]
    assert all(":" in image and "latest" not in image for image in images)
    final = text[text.rindex("\nFROM ") :]
    assert "USER 10001:10001" in final and "HEALTHCHECK" in final and "EXPOSE" in final
    assert re.search(r'^CMD \["', final, re.MULTILINE)
    assert "COPY --from=builder --chown=10001:10001" in final
    assert "\nADD " not in text


def test_base_image_override_is_used_verbatim(facts: dict[str, ProjectFacts]) -> None:
    f = inspect_project(EXAMPLES / "fastapi-service", ServiceSpec(base_image="python:latest"))
    text = as_dict(generate(AppSpec(facts=f, targets=(Target.DOCKER,))))["Dockerfile"]
    assert "FROM python:latest AS runtime" in text


# --- Kubernetes: selectors match the pods ----------------------------------------------------------


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("strategy", list(Strategy))
@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_k8s_selectors_match_pod_labels(
    facts: dict[str, ProjectFacts], example: str, strategy: Strategy
) -> None:
    files = as_dict(generate(make_spec(facts[example], targets=(Target.K8S,), strategy=strategy)))
    deployments = docs(files["k8s/deployment.yaml"])
    pods = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"] for d in deployments}
    for d in deployments:
        assert _matches(d["spec"]["selector"]["matchLabels"], pods[d["metadata"]["name"]])
        assert d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        pod = d["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        container = pod["containers"][0]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"mountPath": "/tmp", "name": "tmp"} in container["volumeMounts"]
        assert {"readinessProbe", "livenessProbe", "startupProbe"} <= set(container)
    for service in docs(files["k8s/service.yaml"]):
        assert any(_matches(service["spec"]["selector"], labels) for labels in pods.values()), service
    for pdb in docs(files["k8s/pdb.yaml"]):
        assert any(_matches(pdb["spec"]["selector"]["matchLabels"], labels) for labels in pods.values())
    hpas = docs(files["k8s/hpa.yaml"])
    assert hpas and all(h["spec"]["minReplicas"] >= 2 for h in hpas)
    for hpa in hpas:
        assert hpa["spec"]["scaleTargetRef"]["name"] in pods
    policies = docs(files["k8s/networkpolicy.yaml"])
    assert any(
        p["spec"]["podSelector"] == {} and p["spec"]["policyTypes"] == ["Ingress", "Egress"] for p in policies
    )
    for policy in policies:
        selector = policy["spec"]["podSelector"].get("matchLabels", {})
        assert any(_matches(selector, labels) for labels in pods.values())
    services = {s["metadata"]["name"] for s in docs(files["k8s/service.yaml"])}
    for ingress in docs(files["k8s/ingress.yaml"]):
        assert ingress["spec"]["tls"]
        backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]
        assert backend in services


def test_blue_green_service_selects_one_slot(facts: dict[str, ProjectFacts]) -> None:
    files = as_dict(
        generate(make_spec(facts["fastapi-service"], targets=(Target.K8S,), strategy=Strategy.BLUE_GREEN))
    )
    live, preview = docs(files["k8s/service.yaml"])
    assert (live["spec"]["selector"]["slot"], preview["spec"]["selector"]["slot"]) == ("blue", "green")
    assert "patch service fastapi-service" in files["k8s/service.yaml"]  # the rollback command


def test_canary_ingress_is_weighted(facts: dict[str, ProjectFacts]) -> None:
    spec = make_spec(
        facts["fastapi-service"], targets=(Target.K8S,), strategy=Strategy.CANARY, canary_weight=20
    )
    ingresses = docs(as_dict(generate(spec))["k8s/ingress.yaml"])
    canary = [i for i in ingresses if i["metadata"]["name"].endswith("-canary")]
    assert canary[0]["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] == "20"


# --- Helm: values and templates agree --------------------------------------------------------------


def _has_path(values: dict[str, Any], dotted: str) -> bool:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


@pytest.mark.parametrize("strategy", list(Strategy))
def test_helm_templates_only_use_values_that_exist(
    facts: dict[str, ProjectFacts], strategy: Strategy
) -> None:
    spec = make_spec(facts["django-service"], targets=(Target.HELM,), strategy=strategy)
    files = as_dict(generate(spec))
    base = "charts/django-service"
    values = yaml.safe_load(files[f"{base}/values.yaml"])
    used = {
        m
        for path, text in files.items()
        if "/templates/" in path
        for m in re.findall(r"\.Values\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)", text)
    }
    assert used
    missing = sorted(u for u in used if not _has_path(values, u))
    assert not missing, missing
    for text in (v for p, v in files.items() if "/templates/" in p):
        assert text.count("{{") == text.count("}}")
        assert text.count("{{- range") + text.count("{{ range") + text.count("{{- if") + text.count(
            "{{- with"
        ) + text.count("{{- define") >= text.count("{{- end")
    assert values["podSecurityContext"] and values["securityContext"] and values["resources"]


def test_helm_values_validate_against_schema(facts: dict[str, ProjectFacts]) -> None:
    import jsonschema

    spec = make_spec(facts["fastify-service"], strategy=Strategy.BLUE_GREEN)
    files = as_dict(generate(spec))
    schema = json.loads(files["charts/fastify-service/values.schema.json"])
    jsonschema.validate(yaml.safe_load(files["charts/fastify-service/values.yaml"]), schema)
    for env in ENVIRONMENTS:
        jsonschema.validate(helm.merged_values(spec, env), schema)
    insecure = helm.chart_values(spec)
    insecure["securityContext"] = {**insecure["securityContext"], "readOnlyRootFilesystem": False}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(insecure, schema)


def test_helm_selectors_use_the_shared_labels(facts: dict[str, ProjectFacts]) -> None:
    files = as_dict(
        generate(make_spec(facts["go-service"], targets=(Target.HELM,), strategy=Strategy.CANARY))
    )
    templates = {p.rsplit("/templates/", 1)[1]: t for p, t in files.items() if "/templates/" in p}
    selector = 'include "go-service.selectorLabels"'
    for name in ("deployment.yaml", "service.yaml", "pdb.yaml", "networkpolicy.yaml"):
        assert selector in templates[name], name
    assert 'include "go-service.selectorLabels" . }}' in templates["_helpers.tpl"].replace(
        'include "go-service.selectorLabels" . }}', 'include "go-service.selectorLabels" . }}'
    )
    # Pods carry the selector labels plus the track; the canary Service selects the canary track.
    assert "track: {{ . }}" in templates["deployment.yaml"] and "track: canary" in templates["service.yaml"]
    assert (
        "scaleTargetRef" in templates["hpa.yaml"]
        and 'include "go-service.workloadName"' in templates["hpa.yaml"]
    )


# --- secrets: references everywhere, values nowhere -------------------------------------------------


@pytest.mark.parametrize("provider", list(CIProvider))
@pytest.mark.parametrize("example", ["fastapi-service", "fastify-service", "go-service"])
def test_no_secret_values_and_every_reference(
    facts: dict[str, ProjectFacts], example: str, provider: CIProvider
) -> None:
    f = facts[example]
    env_example = (EXAMPLES / example / ".env.example").read_text()
    assert FIXTURE_VALUE in env_example  # the fixture really has the value we look for
    spec = make_spec(f, ci=provider)
    files = as_dict(generate(spec))
    everything = "\n".join(files.values())
    assert FIXTURE_VALUE not in everything
    prod = [r for r in spec.secrets if r.environment == "prod"]
    assert prod
    for ref in prod:
        if ref.kind == SecretKind.SECRETS_MANAGER:
            assert ref.reference in files["ecs-task-definition.json"]
            assert ref.reference in files["cloudformation/infrastructure.yaml"]
            assert ref.reference in files["terraform/variables.tf"]
        if ref.kind == SecretKind.EXTERNAL_SECRET:
            assert ref.key and ref.key in files["k8s/externalsecret.yaml"]
            assert ref.key in files["charts/" + f.name + "/values.yaml"]
        if ref.kind == SecretKind.CI_SECRET:
            pipeline = next(
                v
                for p, v in files.items()
                if p in (".github/workflows/ci-cd.yml", ".gitlab-ci.yml", "Jenkinsfile")
            )
            assert ref.reference in pipeline
        assert ref.reference in files["docs/INFRASTRUCTURE.md"]
    assert (
        "Rotate every" in files["docs/INFRASTRUCTURE.md"] and "Secret rotation" in files["docs/ROLLBACK.md"]
    )
    github = files.get(".github/workflows/ci-cd.yml", "")
    assert "${{ secrets." in github or provider != CIProvider.GITHUB
    if provider == CIProvider.JENKINS:
        assert "credentials('PROD_" in files["Jenkinsfile"]
    compose = yaml.safe_load(files["docker-compose.yml"])
    assert compose["secrets"] and all("file" in s for s in compose["secrets"].values())


def test_kubernetes_secret_template_has_no_values(facts: dict[str, ProjectFacts]) -> None:
    f = facts["fastapi-service"]
    refs = tuple(
        SecretRef(
            env_var=v, environment="prod", kind=SecretKind.K8S_SECRET, reference="orders-db", rotation_days=90
        )
        for v in ("DATABASE_PASSWORD", "API_KEY")
    )
    files = as_dict(generate(AppSpec(facts=f, targets=(Target.K8S, Target.CI), secrets=refs)))
    (secret,) = docs(files["k8s/secrets.yaml"])
    assert secret["kind"] == "Secret" and set(secret["stringData"].values()) == {""}
    assert "-f k8s/secrets.yaml" not in files[".github/workflows/ci-cd.yml"]  # CI never applies the template


def test_no_secrets_means_no_secret_objects(facts: dict[str, ProjectFacts]) -> None:
    files = as_dict(generate(AppSpec(facts=facts["django-service"])))
    assert "k8s/secrets.yaml" not in files and "k8s/externalsecret.yaml" not in files
    assert "secrets" not in yaml.safe_load(files["docker-compose.yml"])
    assert json.loads(files["ecs-task-definition.json"])["containerDefinitions"][0]["secrets"] == []


# --- strategies, pipelines, monitoring, docs ---------------------------------------------------------


@pytest.mark.parametrize("strategy", list(Strategy))
def test_every_strategy_has_a_concrete_rollback(facts: dict[str, ProjectFacts], strategy: Strategy) -> None:
    files = as_dict(generate(make_spec(facts["express-service"], strategy=strategy)))
    rollback = files["docs/ROLLBACK.md"]
    expected = {
        Strategy.ROLLING: "kubectl -n express-service rollout undo deployment/express-service",
        Strategy.BLUE_GREEN: "patch service express-service",
        Strategy.CANARY: "canary-weight=0",
    }[strategy]
    assert expected in rollback
    assert "helm -n express-service rollback express-service" in rollback
    assert "stop-service-deployment" in rollback
    ecs = json.loads(files["ecs-service.json"])["deploymentConfiguration"]
    assert ecs["strategy"] == {"rolling": "ROLLING", "blue-green": "BLUE_GREEN", "canary": "CANARY"}[strategy]
    assert ecs["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}


def test_github_workflow_rules(facts: dict[str, ProjectFacts]) -> None:
    text = as_dict(generate(make_spec(facts["fastapi-service"], targets=(Target.CI, Target.ECS))))[
        ".github/workflows/ci-cd.yml"
    ]
    workflow = yaml.safe_load(text)
    jobs = workflow["jobs"]
    assert workflow["permissions"] == {"contents": "read"} and "concurrency" in workflow
    assert list(jobs)[:4] == ["test", "build", "scan", "push"]
    assert (
        jobs["build"]["needs"] == ["test"]
        and jobs["scan"]["needs"] == ["build"]
        and jobs["push"]["needs"] == ["scan"]
    )
    assert all("timeout-minutes" in job for job in jobs.values())
    assert (
        "trivy" in str(jobs["scan"])
        and '"$IMAGE:$IMAGE_TAG"' in str(jobs["push"])
        and "${{ github.sha }}" in text
    )
    for env in ENVIRONMENTS:
        assert jobs[f"deploy-{env}"]["environment"]["name"] == env
        assert jobs[f"deploy-{env}"]["permissions"]["id-token"] == "write"
    assert re.findall(r"uses: [\w./-]+@([0-9a-f]{40})  # v", text) and not re.search(
        r"uses: [\w./-]+@v\d", text
    )
    runs = [step.get("run", "") for job in jobs.values() for step in job["steps"]]
    assert not any("github.event" in run for run in runs)
    assert "aws-access-key-id" not in text


def test_gitlab_pipeline_rules(facts: dict[str, ProjectFacts]) -> None:
    text = as_dict(
        generate(make_spec(facts["flask-service"], targets=(Target.CI, Target.HELM), ci=CIProvider.GITLAB))
    )[".gitlab-ci.yml"]
    pipeline = yaml.safe_load(text)
    assert pipeline["stages"] == ["test", "build", "scan", "push", "deploy"]
    prod = pipeline["deploy-prod"]
    assert prod["rules"][0]["when"] == "manual" and prod["environment"]["name"] == "prod"
    assert "id_tokens" in prod


def test_jenkinsfile_structure(facts: dict[str, ProjectFacts]) -> None:
    text = as_dict(generate(make_spec(facts["go-service"], targets=(Target.CI,), ci=CIProvider.JENKINS)))[
        "Jenkinsfile"
    ]
    assert text.count("{") == text.count("}")
    for part in (
        "pipeline {",
        "agent {",
        "options {",
        "timeout(time:",
        "stages {",
        "post {",
        "always {",
        "failure {",
    ):
        assert part in text, part
    stages = re.findall(r"stage\('([^']+)'\)", text)
    assert stages[:4] == ["Test", "Build", "Scan", "Push"] and "Deploy prod" in stages
    assert "credentials('PROD_UPSTREAM_API_TOKEN')" in text
    assert "input {" in text  # the last environment needs a person to say yes
    assert not re.search(r'sh "[^"]*\$\{?[A-Z_]*(TOKEN|PASSWORD)', text)  # no Groovy-interpolated secrets


def test_alert_rules_have_for_severity_and_annotations(facts: dict[str, ProjectFacts]) -> None:
    spec = make_spec(facts["fastapi-service"], targets=(Target.MONITORING,))
    files = as_dict(generate(spec))
    rules = yaml.safe_load(files["monitoring/alert-rules.yml"])["groups"][0]["rules"]
    assert {r["alert"] for r in rules} == {
        f"FastapiService{n}" for n in ("TargetDown", "HighErrorRate", "HighLatencyP95", "FrequentRestarts")
    }
    assert all(r["for"] and r["labels"]["severity"] and r["annotations"]["summary"] for r in rules)
    prometheus = yaml.safe_load(files["monitoring/prometheus.yml"])
    assert prometheus["rule_files"] == ["alert-rules.yml"]
    assert prometheus["scrape_configs"][0]["metrics_path"] == "/metrics"
    dashboard = json.loads(files["monitoring/grafana/dashboard.json"])
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    assert all(p["targets"][0]["expr"] for p in dashboard["panels"])
    assert monitoring.alert_prefix("a-b") == "AB"


def test_docs_name_real_paths_and_commands(facts: dict[str, ProjectFacts]) -> None:
    files = as_dict(generate(make_spec(facts["fastapi-service"])))
    deployment = files["docs/DEPLOYMENT.md"]
    for path in (
        "k8s/deployment.yaml",
        "charts/fastapi-service/values.yaml",
        "cloudformation/infrastructure.yaml",
    ):
        assert path in deployment
    assert "uvicorn app.main:app" in deployment and "docker compose up --build" in deployment
    assert "/health" in files["docs/TROUBLESHOOTING.md"]
    assert "FastapiServiceHighErrorRate" in files["docs/MONITORING.md"]


# --- writing -------------------------------------------------------------------------------------


def _file(path: str, content: str = "x\n") -> GeneratedFile:
    return GeneratedFile(path, content, Target.DOCS, sha256_text(content))


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.txt", "a/../../b", "docs\\x.md", "", "./a"])
def test_write_refuses_paths_outside_out_dir(tmp_path: Path, path: str) -> None:
    with pytest.raises(ArtifactWriteError):
        write_artifacts([_file(path)], tmp_path / "out")
    assert not (tmp_path / "outside.txt").exists()


def test_write_refuses_symlinks_that_escape(tmp_path: Path) -> None:
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "docs").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ArtifactWriteError, match="symlink"):
        write_artifacts([_file("docs/DEPLOYMENT.md")], out)
    assert not list(outside.iterdir())


def test_write_never_overwrites_foreign_files_without_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "Dockerfile").write_text("FROM scratch\n")
    files = [_file("Dockerfile", "FROM python:3.12.8-slim-bookworm\n"), _file("docs/A.md")]
    with pytest.raises(ArtifactWriteError, match="Dockerfile"):
        write_artifacts(files, out)
    assert (out / "Dockerfile").read_text() == "FROM scratch\n" and not (out / "docs").exists()
    preview = write_artifacts(files, out, dry_run=True)
    assert preview.conflicts == ("Dockerfile",) and not (out / "docs").exists()
    result = write_artifacts(files, out, force=True)
    assert set(result.written) == {"Dockerfile", "docs/A.md"}
    assert (out / "Dockerfile").read_text().startswith("FROM python")


def test_write_tracks_its_files_in_a_manifest(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = write_artifacts([_file("a.txt", "one\n")], out)
    assert first.written == ("a.txt",)
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["files"] == {"a.txt": sha256_text("one\n")}
    assert write_artifacts([_file("a.txt", "one\n")], out).unchanged == ("a.txt",)
    assert write_artifacts([_file("a.txt", "two\n")], out).written == ("a.txt",)  # ours: replaced
    (out / "a.txt").write_text("edited by a person\n")
    with pytest.raises(ArtifactWriteError):
        write_artifacts([_file("a.txt", "three\n")], out)  # edited since: no longer ours
    assert not [p for p in out.iterdir() if p.name.startswith(".orchestra-") and p.suffix == ".tmp"]


def test_dry_run_writes_nothing(tmp_path: Path, facts: dict[str, ProjectFacts]) -> None:
    files = generate(make_spec(facts["go-service"]))
    result = write_artifacts(files, tmp_path / "out", dry_run=True)
    assert len(result.written) == len(files) and not (tmp_path / "out").exists()


# --- CLI -----------------------------------------------------------------------------------------


@pytest.fixture
def cli() -> typer.Typer:
    from agents.cli.generate import register

    app = typer.Typer()
    register(app)

    @app.callback()
    def main() -> None:
        """Test app."""

    return app


def test_cli_generates_and_reports(cli: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["generate", str(EXAMPLES / "fastapi-service"), "--out", str(out), "--target", "docker,k8s"]
    result = CliRunner().invoke(cli, [*args, "--strategy", "canary", "--ci", "gitlab"])
    assert result.exit_code == 0, result.output
    assert (out / "Dockerfile").is_file() and (out / "k8s/deployment.yaml").is_file()
    assert not (out / ".gitlab-ci.yml").exists()  # ci was not a target
    assert "wrote" in result.output and "Traceback" not in result.output
    again = CliRunner().invoke(cli, [*args, "--strategy", "canary"])
    assert again.exit_code == 0 and "unchanged" in again.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--target", "k8s,nope"], "unknown target"),
        (["--strategy", "big-bang"], "--strategy must be one of"),
        (["--ci", "travis"], "--ci must be one of"),
    ],
)
def test_cli_bad_input_is_one_line(cli: typer.Typer, tmp_path: Path, extra: list[str], message: str) -> None:
    result = CliRunner().invoke(
        cli, ["generate", str(EXAMPLES / "go-service"), "--out", str(tmp_path), *extra]
    )
    assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output


def test_cli_refuses_missing_project_and_foreign_files(cli: typer.Typer, tmp_path: Path) -> None:
    missing = CliRunner().invoke(cli, ["generate", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "Dockerfile").write_text("FROM scratch\n")
    args = ["generate", str(EXAMPLES / "go-service"), "--out", str(tmp_path / "o"), "--target", "docker"]
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 1 and "force" in refused.output
    assert (tmp_path / "o" / "Dockerfile").read_text() == "FROM scratch\n"
    forced = CliRunner().invoke(cli, [*args, "--force"])
    assert forced.exit_code == 0


# --- the fast YAML emitter agrees with PyYAML --------------------------------------------------------


class _TagLoader(yaml.SafeLoader):
    """Loads CloudFormation short tags as (tag, value) pairs so two texts can be compared."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> tuple[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        return ("!" + suffix, loader.construct_scalar(node))
    if isinstance(node, yaml.SequenceNode):
        return ("!" + suffix, loader.construct_sequence(node, deep=True))
    return ("!" + suffix, loader.construct_mapping(node, deep=True))  # type: ignore[arg-type]


_TagLoader.add_multi_constructor("!", _tagged)


@pytest.mark.parametrize("strategy", list(Strategy))
def test_fast_yaml_emitter_matches_pyyaml(
    facts: dict[str, ProjectFacts], strategy: Strategy, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agents.devops.render import common, yamlstyle

    seen: list[Any] = []

    def spy(data: Any) -> str:
        seen.append(data)
        return yamlstyle.emit(data)

    monkeypatch.setattr(common, "emit", spy)
    for name in ("fastapi-service", "fastify-service"):  # PyYAML is slow: two examples cover every branch
        generate(make_spec(facts[name], strategy=strategy))
        for provider in (CIProvider.GITLAB, CIProvider.JENKINS):
            generate(make_spec(facts[name], strategy=strategy, ci=provider, targets=(Target.CI,)))
    assert len(seen) > 40
    for data in seen:
        fast, reference = yamlstyle.emit(data), yamlstyle.reference_dump(data)
        assert yaml.load(fast, Loader=_TagLoader) == yaml.load(reference, Loader=_TagLoader), fast


@pytest.mark.parametrize(
    "value",
    [
        "on",
        "yes",
        "1e3",
        "0x1F",
        "12:30",
        "~",
        "",
        "a: b",
        "#x",
        "- x",
        "x #y",
        "'q'",
        "tab\there",
        "naïve",
        "x:",
    ],
)
def test_fast_yaml_emitter_quotes_what_yaml_would_misread(value: str) -> None:
    from agents.devops.render import yamlstyle

    assert yaml.safe_load(yamlstyle.emit({"k": value, value or "e": [value]})) == {
        "k": value,
        value or "e": [value],
    }
