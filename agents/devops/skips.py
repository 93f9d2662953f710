"""Every validator rule the generated artifacts skip, with the reason: the one list.

Renderers write these into the artifacts as inline suppressions (Kubernetes ``checkov.io/skip``
annotations, ``#checkov:skip=`` comments, CloudFormation ``Metadata.checkov``), so anyone who
runs the validators on the generated files gets the same result as our tests, and a reviewer
sees the justification next to the resource.
"""

from __future__ import annotations

CHECKOV_SKIPS: dict[str, dict[str, str]] = {
    "kubernetes": {
        # Digests exist only after the build; CI deploys the immutable commit-sha tag it built and scanned.
        "CKV_K8S_43": "digest unknown at generation time; CI deploys the immutable commit-sha tag it scanned",
        # The app reads configuration from environment variables (found in its code); mounting files
        # would need code changes. Values come from a Secret by reference, never inline.
        "CKV_K8S_35": "the app reads env vars (detected in its code); values come from a Secret by reference",
    },
    "dockerfile": {},
    "cloudformation": {},
    "terraform": {
        # TLS ends at the load balancer's HTTPS listener; targets sit in private subnets that only
        # the load balancer's security group can reach, and the app speaks plain HTTP.
        "CKV_AWS_378": "TLS ends at the ALB HTTPS listener; targets are private, reachable only from the ALB",
    },
    "github_actions": {},
}
HADOLINT_IGNORES: dict[str, str] = {
    # Only when dependencies compile (gcc, libpq-dev) or load a shared library (libpq5). The base
    # image is pinned to a Debian point release; Debian removes superseded versions from its mirror,
    # so an exact apt pin would make the next rebuild fail after any security update.
    "DL3008": "base image pinned to a Debian point release; exact apt pins break once Debian supersedes them",
}


def k8s_skip_annotations(*checks: str) -> dict[str, str]:
    """``checkov.io/skipN`` annotations for the given Kubernetes check ids."""
    reasons = CHECKOV_SKIPS["kubernetes"]
    return {f"checkov.io/skip{i}": f"{check}={reasons[check]}" for i, check in enumerate(checks, start=1)}


def inline_skip(framework: str, check: str, prefix: str = "#") -> str:
    """A ``checkov:skip`` comment line for HCL, Dockerfiles and other comment-capable files."""
    return f"{prefix}checkov:skip={check}:{CHECKOV_SKIPS[framework][check]}"
