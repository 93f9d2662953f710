"""Every deploy file derived from the agent registry (contracts/agents.py), in one command.

    python -m deploy.render            # rewrite what is stale
    python -m deploy.render --check    # exit 1 when something is stale (a test runs this)

In order: the NATS users (deploy/nats/render_auth.py: auth.conf, the users and passwords of the
Helm values), the compose services (deploy/render_compose.py), the agents' Helm values and values
schema (deploy/render_helm.py), then deploy/k8s rendered from the chart by Helm itself
(deploy/render_k8s.py, run with the Python that has helm-python-sdk: ``ORCHESTRA_HELM_PYTHON`` or
``.tools/helm/bin/python``; without it deploy/k8s is skipped, saying so). The AsyncAPI document and
the event tables of docs/events.md follow the registry too: ``make generate`` runs every generator.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from contracts.agents import AGENTS, AgentSpec
from deploy import render_compose, render_helm
from deploy.generated import ROOT, read_text, sync
from deploy.nats import render_auth

GENERATORS = (render_auth, render_compose, render_helm)


def outputs(agents: Mapping[str, AgentSpec] = AGENTS) -> dict[Path, str]:
    """Each file the generators write and the text it must have; a generator reads a file as the
    ones before it left it (several write regions of values.yaml)."""
    texts: dict[Path, str] = {}

    def read(path: Path) -> str:
        return texts[path] if path in texts else read_text(path)

    for generator in GENERATORS:
        texts.update(generator.outputs(agents, read))
    return texts


def helm_python() -> str | None:
    """A Python with helm-python-sdk (Helm's Go SDK), kept in a tool venv like checkov."""
    for candidate in (os.environ.get("ORCHESTRA_HELM_PYTHON"), str(ROOT / ".tools/helm/bin/python")):
        if candidate and Path(candidate).exists():
            probe = subprocess.run([candidate, "-c", "import helm_python, yaml"], capture_output=True)
            if probe.returncode == 0:
                return candidate
    return None


def render_k8s(*, check: bool) -> int:
    """Run deploy/render_k8s.py with the Helm tool's Python; 0 when it is not installed."""
    python = helm_python()
    if python is None:
        print("skipped deploy/k8s: no helm-python-sdk (see deploy/render_k8s.py)", file=sys.stderr)
        return 0
    args = [python, str(ROOT / "deploy/render_k8s.py"), *(["--check"] if check else [])]
    return subprocess.run(args, cwd=ROOT, timeout=600).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a generated file is stale")
    parser.add_argument("--no-k8s", action="store_true", help="leave deploy/k8s alone")
    args = parser.parse_args(argv)
    status = sync(outputs(), check=args.check, command="python -m deploy.render")
    if not args.no_k8s:
        status = max(status, render_k8s(check=args.check))
    return status


if __name__ == "__main__":
    sys.exit(main())
