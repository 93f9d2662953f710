"""Every file in deploy/ passes its validator, and the generated files match their generators."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from contracts.agents import AGENTS
from contracts.subjects import ROUTES
from deploy import render
from deploy.nats import render_auth
from tests.conftest import checkov_path

pytestmark = pytest.mark.validators

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm/orchestra"
K8S = DEPLOY / "k8s"
BIN = Path(sys.executable).parent
YAMLLINT_CONFIG = DEPLOY / ".yamllint.yaml"
KUBERNETES_VERSION = "1.30.0"
WORKERS = [a for a in ROUTES if a != "knowledge"]


def run(*cmd: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=ROOT, timeout=300)


def helm_python() -> str | None:
    """A Python with helm-python-sdk (Helm's Go SDK): a tool venv, like checkov's."""
    return render.helm_python()


def k8s_documents() -> list[dict[str, Any]]:
    return [d for f in sorted(K8S.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]


# -- generated files -------------------------------------------------------------------------


def test_every_generated_deploy_file_is_current() -> None:
    """`python -m deploy.render --check` (auth.conf, compose, Helm values and schema; deploy/k8s has
    its own test below) passes, and says which file is stale when one is."""
    result = run(sys.executable, "-m", "deploy.render", "--check", "--no-k8s")
    assert result.returncode == 0, result.stderr
    for path, text in render.outputs().items():
        assert path.read_text() == text, f"{path} is stale: run python -m deploy.render"


def test_auth_conf_and_helm_users_match_the_generator() -> None:
    for path, text in render_auth.outputs().items():
        assert path.read_text() == text, f"{path} is stale: run python -m deploy.nats.render_auth"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["nats"]["config"]["merge"]["accounts"] == render_auth.helm_config_merge()["accounts"]


def test_no_secret_values_in_deploy() -> None:
    auth = (DEPLOY / "nats/auth.conf").read_text()
    passwords = re.findall(r"^\s*password:\s*(\S+)", auth, flags=re.M)
    assert passwords and all(p.startswith("$ORCHESTRA_") for p in passwords)
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if "PASSWORD" in key:
                assert str(value).startswith("${ORCHESTRA_") and ":?" in str(value), (name, key)


def test_k8s_manifests_are_what_helm_renders_from_the_chart() -> None:
    python = helm_python()
    if python is None:
        pytest.skip("helm-python-sdk not installed (see deploy/render_k8s.py for the tool venv)")
    result = run(python, DEPLOY / "render_k8s.py", "--check")
    assert result.returncode == 0, result.stderr


def test_a_new_registry_entry_renders_into_kubernetes_objects(tmp_path: Path) -> None:
    """The chart as the generators write it for one agent more: Helm itself (schema, templates)
    gives that agent a Deployment, a Service, a disruption budget and a ScaledObject."""
    python = helm_python()
    if python is None:
        pytest.skip("helm-python-sdk not installed")
    from tests.unit.test_agent_registry import WITH_NEWCOMER

    chart = tmp_path / "orchestra"
    shutil.copytree(CHART, chart)
    for path, text in render.outputs(WITH_NEWCOMER).items():
        if path.is_relative_to(CHART):
            (chart / path.relative_to(CHART)).write_text(text)
    script = (
        "import json, sys, yaml, helm_python as h\n"
        "with h.Chart.load(sys.argv[1]) as c:\n"
        "    c.validate_schema({})\n"
        "    out = c.render({}, name='orchestra', namespace='orchestra')\n"
        "docs = [d for p, t in out.items() if p.endswith('.yaml') for d in yaml.safe_load_all(t) if d]\n"
        "print(json.dumps(sorted((d['kind'], d['metadata']['name']) for d in docs)))\n"
    )
    result = run(python, "-c", script, chart)
    assert result.returncode == 0, result.stderr
    objects = {tuple(o) for o in json.loads(result.stdout)}
    for kind in ("Deployment", "Service", "PodDisruptionBudget", "ScaledObject"):
        assert (kind, "orchestra-newcomer") in objects, kind


def test_helm_lint_and_values_schema_with_helm_itself() -> None:
    python = helm_python()
    if python is None:
        pytest.skip("helm-python-sdk not installed")
    script = (
        "import json, helm_python as h\n"
        f"r = h.lint({str(CHART)!r})\n"
        f"c = h.Chart.load({str(CHART)!r}); c.validate_schema({{}})\n"
        "print(json.dumps(r))\n"
    )
    result = run(python, "-c", script)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["errors"] == []
    # Only the vendored NATS dependency (network) and the icon may be missing.
    for message in report["messages"]:
        assert "missing these dependencies: nats" in message["error"] or "icon" in message["error"], message


# -- Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint() -> None:
    result = run(BIN / "hadolint", "--failure-threshold", "warning", DEPLOY / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_passes_checkov() -> None:
    checkov = checkov_path() or ("/tmp/ckv/bin/checkov" if Path("/tmp/ckv/bin/checkov").exists() else None)
    if checkov is None:
        pytest.skip("checkov not installed (make checkov)")
    for target, framework in ((DEPLOY / "Dockerfile", "dockerfile"), (K8S, "kubernetes")):
        flag = "-f" if target.is_file() else "-d"
        result = run(
            checkov,
            flag,
            target,
            "--framework",
            framework,
            "--skip-download",
            "--compact",
            "--quiet",
            "-o",
            "json",
        )
        report = json.loads(result.stdout)
        reports = report if isinstance(report, list) else [report]
        failed = [c["check_id"] for r in reports for c in r["results"]["failed_checks"]]
        assert failed == [], (framework, failed)


def test_dockerfile_shape() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert text.startswith("# syntax=docker/dockerfile:1")
    froms = re.findall(r"^FROM (\S+)", text, flags=re.M)
    assert len(froms) == 2 and all(re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", f) for f in froms)
    assert "USER 10001:10001" in text and "HEALTHCHECK" in text and "EXPOSE 8080" in text
    assert '"orchestra", "health"' in text and 'ENTRYPOINT ["orchestra"]' in text
    assert not re.search(r"^ADD ", text, flags=re.M)
    runtime = text.split("AS runtime", 1)[1]
    assert "COPY --from=builder /opt/orchestra /opt/orchestra" in runtime
    assert not re.search(r"^COPY (?!--from)", runtime, flags=re.M), "the runtime stage copies only the venv"


def _ignored(path: str, patterns: list[str]) -> bool:
    """BuildKit's .dockerignore rule: the last matching pattern wins, `!` re-includes."""
    excluded = False
    parts = path.split("/")
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.rstrip("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        regex = fnmatch.translate(pattern).replace(".*", "[^/]*").replace("[^/]*[^/]*", ".*")
        if pattern.startswith("**/"):
            regex = "(?:.*/)?" + fnmatch.translate(pattern[3:]).replace(".*", "[^/]*")
        if any(re.fullmatch(regex, c) for c in candidates):
            excluded = not negate
    return excluded


def test_dockerignore_sends_the_package_and_nothing_else() -> None:
    lines = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    tracked = run("git", "ls-files").stdout.split()
    sent = [p for p in tracked if not _ignored(p, patterns)]
    assert "pyproject.toml" in sent and "README.md" in sent
    for package in ("contracts", "bus", "agents"):
        py = [p for p in tracked if p.startswith(f"{package}/") and p.endswith(".py")]
        assert py and all(p in sent for p in py), package
    for p in sent:
        assert p.split("/")[0] in {"pyproject.toml", "README.md", "contracts", "bus", "agents"}, p
    for secret in (".env", "deploy/.env", "agents/x/key.pem", "bus/__pycache__/x.pyc", ".git/config"):
        assert _ignored(secret, patterns), secret


# -- compose ---------------------------------------------------------------------------------


def test_compose_passes_the_compose_spec() -> None:
    result = run(
        BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", DEPLOY / "docker-compose.yml"
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_services_are_hardened_and_wait_for_nats() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert "version" not in compose
    services = compose["services"]
    assert set(services) == {"nats", "provision", *ROUTES}
    assert re.fullmatch(r"nats:\d+\.\d+\.\d+-alpine", services["nats"]["image"])
    assert "healthz" in " ".join(services["nats"]["healthcheck"]["test"])
    for agent in ROUTES:
        s = services[agent]
        assert s["command"] == ["agent", agent]
        assert s["user"] == "10001:10001" and s["read_only"] is True
        assert s["cap_drop"] == ["ALL"] and "no-new-privileges:true" in s["security_opt"]
        assert any(t.startswith("/tmp") for t in s["tmpfs"])
        assert s["depends_on"]["nats"]["condition"] == "service_healthy"
        assert s["depends_on"]["provision"]["condition"] == "service_completed_successfully"
        assert s["healthcheck"]["test"][1:3] == ["orchestra", "health"]
        assert s["restart"] == "unless-stopped"
        env = s["environment"]
        assert env["ORCHESTRA_USER"] == agent
        assert env["ORCHESTRA_PASSWORD"].startswith(f"${{{render_auth.password_env(agent)}:?")
        assert env["NATS_URL"] == "nats://nats:4222"
        assert any(v.endswith(":/workspace") for v in s["volumes"])
    assert services["qa"]["build"]["args"]["EXTRAS"] == "validators"
    assert all(services[a]["build"]["args"]["EXTRAS"] == "core" for a in ROUTES if a != "qa")
    assert services["knowledge"]["environment"]["ORCHESTRA_KNOWLEDGE_DB"].startswith("/data/")
    nats_env = services["nats"]["environment"]
    assert set(nats_env) == {u.password_env for u in render_auth.users()}


def test_compose_provisions_the_streams_once_as_the_provisioner_before_the_agents() -> None:
    services = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]
    job = services["provision"]
    assert job["command"][0] == "provision" and job["restart"] == "no"
    assert job["depends_on"] == {"nats": {"condition": "service_healthy"}}
    env = job["environment"]
    assert env["ORCHESTRA_USER"] == render_auth.PROVISIONER
    assert env["ORCHESTRA_PASSWORD"].startswith(f"${{{render_auth.password_env(render_auth.PROVISIONER)}:?")
    # The same stream settings as the agents that bind to them.
    assert env["ORCHESTRA_REPLICAS"] == services["devops"]["environment"]["ORCHESTRA_REPLICAS"]
    assert job["user"] == "10001:10001" and job["read_only"] is True and job["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in job["security_opt"] and job["volumes"] == []


# -- YAML, Kubernetes, Helm ------------------------------------------------------------------


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*.y*ml") if "templates" not in p.parts)


def test_every_yaml_file_passes_yamllint() -> None:
    result = run(BIN / "yamllint", "-c", YAMLLINT_CONFIG, "-f", "parsable", *yaml_files())
    assert result.returncode == 0, result.stdout


def test_k8s_manifests_pass_kubernetes_validate_strict() -> None:
    files = [p for p in sorted(K8S.glob("*.yaml")) if p.name != "scaledobject.yaml"]
    assert files
    result = run(BIN / "kubernetes-validate", "--strict", "-k", KUBERNETES_VERSION, *files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stdout


def test_keda_scaled_objects_scale_each_worker_on_its_durables() -> None:
    """ScaledObject is a CRD (no schema in kubernetes-validate): its structure is checked here."""
    docs = k8s_documents()
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    scaled = [d for d in docs if d["kind"] == "ScaledObject"]
    assert {s["metadata"]["name"] for s in scaled} == set(deployments)
    for s in scaled:
        assert s["apiVersion"] == "keda.sh/v1alpha1"
        spec = s["spec"]
        target = spec["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in deployments
        assert 2 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        agent = deployments[target["name"]]["metadata"]["labels"]["app.kubernetes.io/component"]
        durables = [d for d, _ in ROUTES[agent].consumers()]
        assert [t["metadata"]["consumer"] for t in spec["triggers"]] == durables
        for trigger in spec["triggers"]:
            assert trigger["type"] == "nats-jetstream"
            meta = trigger["metadata"]
            assert meta["stream"] == "ORCHESTRA_EVENTS" and meta["account"] == render_auth.ACCOUNT
            assert meta["natsServerMonitoringEndpoint"].endswith(":8222")
            assert int(meta["lagThreshold"]) > 0
            assert all(isinstance(v, str) for v in meta.values()), "KEDA metadata values are strings"


def _pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    return doc["spec"]["template"]["metadata"]["labels"]


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_selectors_match_the_pods() -> None:
    docs = k8s_documents()
    workloads = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    assert {w["metadata"]["labels"]["app.kubernetes.io/component"] for w in workloads} == set(ROUTES)
    for w in workloads:
        assert _matches(w["spec"]["selector"]["matchLabels"], _pod_labels(w))
    pods = [_pod_labels(w) for w in workloads]
    for d in docs:
        if d["kind"] == "Service":
            assert sum(_matches(d["spec"]["selector"], p) for p in pods) == 1, d["metadata"]["name"]
        if d["kind"] == "PodDisruptionBudget":
            assert sum(_matches(d["spec"]["selector"]["matchLabels"], p) for p in pods) == 1
        if d["kind"] == "NetworkPolicy":
            assert all(_matches(d["spec"]["podSelector"]["matchLabels"], p) for p in pods)


def test_workloads_are_hardened() -> None:
    for d in k8s_documents():
        if d["kind"] not in ("Deployment", "StatefulSet"):
            continue
        pod = d["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        sc = pod["securityContext"]
        assert (
            sc["runAsNonRoot"]
            and sc["runAsUser"] == 10001
            and sc["seccompProfile"]["type"] == "RuntimeDefault"
        )
        [c] = pod["containers"]
        csc = c["securityContext"]
        assert csc["readOnlyRootFilesystem"] and not csc["allowPrivilegeEscalation"]
        assert csc["capabilities"]["drop"] == ["ALL"]
        assert c["resources"]["requests"] and c["resources"]["limits"]
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        env = {e["name"]: e for e in c["env"]}
        assert env["ORCHESTRA_REPLICAS"]["value"] == "3"
        assert env["ORCHESTRA_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == env["ORCHESTRA_USER"]["value"]
        assert any(v["mountPath"] == "/tmp" for v in c["volumeMounts"])
        if d["kind"] == "Deployment":
            assert d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    [sts] = [d for d in k8s_documents() if d["kind"] == "StatefulSet"]
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"


def test_a_job_provisions_the_streams_as_the_provisioner_and_is_hardened() -> None:
    """The agents only bind; the provisioning Job (one per release revision) creates the streams
    with the provisioner's password and the agents' stream replicas, under the same restrictions."""
    docs = k8s_documents()
    [job] = [d for d in docs if d["kind"] == "Job"]
    assert job["metadata"]["name"].startswith("orchestra-provision-")
    assert "helm.sh/hook" not in (job["metadata"].get("annotations") or {}), (
        "a hook deadlocks `helm install --wait`"
    )
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "OnFailure" and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001
    [c] = pod["containers"]
    assert c["args"][0] == "provision"
    csc = c["securityContext"]
    assert csc["readOnlyRootFilesystem"] and not csc["allowPrivilegeEscalation"]
    assert csc["capabilities"]["drop"] == ["ALL"]
    assert c["resources"]["requests"] and c["resources"]["limits"]
    env = {e["name"]: e for e in c["env"]}
    assert env["ORCHESTRA_USER"]["value"] == render_auth.PROVISIONER
    assert env["ORCHESTRA_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == render_auth.PROVISIONER
    agents = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    for agent in agents:
        [a] = agent["spec"]["template"]["spec"]["containers"]
        replicas = {e["name"]: e.get("value") for e in a["env"]}["ORCHESTRA_REPLICAS"]
        assert replicas == env["ORCHESTRA_REPLICAS"]["value"]
    # NATS knows the provisioner's password; the network policies let the Job reach NATS.
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values["nats"]["container"]["env"]) == {u.password_env for u in render_auth.users()}
    labels = job["spec"]["template"]["metadata"]["labels"]
    for policy in (d for d in docs if d["kind"] == "NetworkPolicy"):
        assert _matches(policy["spec"]["podSelector"]["matchLabels"], labels)


def _values_paths(values: Any, prefix: str = "") -> set[str]:
    paths = {prefix} if prefix else set()
    if isinstance(values, dict):
        for key, value in values.items():
            paths |= _values_paths(value, f"{prefix}.{key}" if prefix else key)
    return paths


def test_every_value_a_template_reads_exists_in_values_yaml() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    known = _values_paths(values)
    used: set[str] = set()
    for template in (CHART / "templates").rglob("*"):
        if template.is_file():
            text = template.read_text()
            used |= set(re.findall(r"\.Values\.([A-Za-z0-9_.]+)", text))
            used |= {
                f"workers.{a}.{k}"
                for a in values["workers"]
                for k in re.findall(r"\$worker\.([A-Za-z0-9_.]+)", text)
            }
    missing = sorted(u.rstrip(".") for u in used if u.rstrip(".") not in known)
    assert used and missing == []


def test_values_validate_against_the_schema_and_mirror_the_routes() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.validate(values, schema)
    bad = {**values, "image": {**values["image"], "tag": "latest"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    assert set(values["workers"]) == set(WORKERS)
    for agent, worker in values["workers"].items():
        assert worker["consumers"] == [d for d, _ in ROUTES[agent].consumers()], agent
        assert worker["slim"] == (AGENTS[agent].deployment.image == "slim")
    assert values["knowledge"]["consumers"] == [d for d, _ in ROUTES["knowledge"].consumers()]
    assert values["streamReplicas"] == 3


def test_chart_depends_on_the_official_nats_chart_as_a_3_node_jetstream_cluster() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"])
    [dep] = chart["dependencies"]
    assert dep["name"] == "nats" and dep["repository"] == "https://nats-io.github.io/k8s/helm/charts/"
    assert re.fullmatch(r"\d+\.\d+\.\d+", dep["version"])
    nats_values = yaml.safe_load((CHART / "values.yaml").read_text())["nats"]["config"]
    assert nats_values["cluster"] == {"enabled": True, "replicas": 3}
    assert nats_values["jetstream"]["enabled"] and nats_values["jetstream"]["fileStore"]["enabled"]
    for template in ("NOTES.txt", "_helpers.tpl", "tests/test-connection.yaml"):
        assert (CHART / "templates" / template).is_file()
