"""Render deploy/helm/orchestra into plain manifests in deploy/k8s, with Helm itself, offline.

No helm binary is available here; helm-python-sdk binds Helm's own Go SDK (template engine,
values schema, lint) through ctypes. It is a tool, like checkov, kept out of the project venv:

    python3 -m venv .tools/helm && .tools/helm/bin/pip install helm-python-sdk pyyaml
    .tools/helm/bin/python deploy/render_k8s.py          # rewrite deploy/k8s
    .tools/helm/bin/python deploy/render_k8s.py --check  # exit 1 when deploy/k8s is stale

The manifests are those of ``helm template orchestra deploy/helm/orchestra -n orchestra`` with
the chart's default values, minus NOTES.txt and test hooks, plus the Namespace; each document is
re-emitted in one YAML style (indented lists) so yamllint passes. NATS itself comes from the
official chart (a dependency that needs the network to vendor): apply it with Helm.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy/helm/orchestra"
OUT = ROOT / "deploy/k8s"
RELEASE = "orchestra"
NAMESPACE = "orchestra"
HEADER = (
    "# Rendered from deploy/helm/orchestra by deploy/render_k8s.py: do not edit.\n"
    f"# Release {RELEASE}, namespace {NAMESPACE}, the chart's default values.\n"
)


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def dump_documents(docs: list[dict[str, Any]]) -> str:
    """Documents as one YAML stream in the style yamllint's defaults expect."""
    parts = [yaml.dump(d, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120) for d in docs]
    return HEADER + "".join(f"---\n{p}" for p in parts)


def namespace() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": NAMESPACE,
            "labels": {
                "app.kubernetes.io/part-of": "orchestra",
                # Pod Security Admission: every orchestra pod meets the restricted profile.
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "v1.30",
            },
        },
    }


def render(values: dict[str, Any] | None = None) -> dict[str, str]:
    """File name under deploy/k8s -> text, rendered by Helm from the chart."""
    import helm_python as helm

    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(values or {})
        rendered = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE)
    files = {"namespace.yaml": dump_documents([namespace()])}
    for path, text in sorted(rendered.items()):
        name = Path(path)
        if name.suffix != ".yaml" or "tests" in name.parts:
            continue
        docs = [d for d in yaml.safe_load_all(text) if d]
        if docs:
            files[name.name] = dump_documents(docs)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when deploy/k8s differs from the chart")
    args = parser.parse_args(argv)
    files = render()
    stale = sorted(
        {p.name for p in OUT.glob("*.yaml")} ^ set(files)
        | {n for n, t in files.items() if not (OUT / n).exists() or (OUT / n).read_text() != t}
    )
    if args.check:
        for name in stale:
            print(f"stale: deploy/k8s/{name} (run deploy/render_k8s.py)", file=sys.stderr)
        return 1 if stale else 0
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.yaml"):
        if old.name not in files:
            old.unlink()
    for name, text in files.items():
        (OUT / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} files to deploy/k8s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
