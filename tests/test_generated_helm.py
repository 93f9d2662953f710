"""The generated Helm charts, rendered and linted by Helm itself (helm-python-sdk, Helm's Go SDK in
a tool venv: no helm binary offline), and what they render passes kubernetes-validate --strict."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from agents.devops.generate import generate
from agents.devops.spec import AppSpec
from agents.inspection.inspect import inspect_project
from agents.qa.validators import validate
from contracts.payloads import ServiceSpec
from contracts.vocabulary import Strategy, Target
from tests.test_deploy import helm_python

pytestmark = pytest.mark.validators
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

RENDER = textwrap.dedent(
    """
    import json, sys, helm_python as h
    chart_dir, values_files = sys.argv[1], sys.argv[2:]
    out = {"lint": h.lint(chart_dir), "renders": {}}
    import yaml
    for vf in values_files:
        values = yaml.safe_load(open(vf)) or {}
        with h.Chart.load(chart_dir) as chart:
            chart.validate_schema(values)
            out["renders"][vf] = chart.render(values, name="release", namespace="apps")
    print(json.dumps(out))
    """
)


@pytest.mark.parametrize("strategy", list(Strategy))
# flask-blueprints-service has no health route: the tcpSocket branch of the probe template;
# "go-service+files" adds data volumes and a configuration file (the dataVolumes/configFiles ranges).
@pytest.mark.parametrize(
    "example", ["fastapi-service", "go-service", "flask-blueprints-service", "go-service+files"]
)
def test_generated_chart_lints_renders_and_validates(
    tmp_path: Path, example: str, strategy: Strategy
) -> None:
    python = helm_python()
    if python is None:
        pytest.skip("helm-python-sdk not installed (make helm-tools)")
    name, _, variant = example.partition("+")
    overrides = ServiceSpec(writable_paths=["/data"], config_files=["/etc/svc/app.conf"]) if variant else None
    facts = inspect_project(EXAMPLES / name, overrides)
    files = {
        g.path: g.content for g in generate(AppSpec(facts=facts, targets=(Target.HELM,), strategy=strategy))
    }
    for path, content in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(content, encoding="utf-8")
    chart = tmp_path / "charts" / facts.name
    values = sorted(str(p) for p in chart.glob("values*.yaml"))
    done = subprocess.run(
        [python, "-c", RENDER, str(chart), *values], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["lint"]["errors"] == [], result["lint"]
    for values_file, rendered in result["renders"].items():
        manifests = {
            f"k8s/{Path(name).name}": text
            for name, text in rendered.items()
            if name.endswith(".yaml") and "/tests/" not in name and text.strip()
        }
        assert any("kind: Deployment" in t for t in manifests.values()), values_file
        if variant:
            deployment = next(t for t in manifests.values() if "kind: Deployment" in t)
            assert "mountPath: /data" in deployment and "subPath: app.conf" in deployment
            assert f"secretName: {facts.name}-files" in deployment
        outcome = validate(manifests, tools=False)
        assert outcome.passed, (values_file, outcome.findings)
