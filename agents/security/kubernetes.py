"""Kubernetes rules over the YAML documents of k8s/*.yaml (pod specs of every workload kind, Secrets).

SEC-K8S-001 HIGH    privileged container
SEC-K8S-002 HIGH    allowPrivilegeEscalation not false
SEC-K8S-003 HIGH    runAsNonRoot not true (pod or container), or runAsUser 0
SEC-K8S-004 HIGH    hostNetwork / hostPID / hostIPC
SEC-K8S-005 HIGH    capabilities do not drop ALL
SEC-K8S-006 HIGH    capabilities add SYS_ADMIN, NET_ADMIN... (MEDIUM for any other added capability)
SEC-K8S-007 MEDIUM  missing resource requests/limits (cpu and memory)
SEC-K8S-008 MEDIUM  automountServiceAccountToken not false (pod, or its ServiceAccount in the same set)
SEC-K8S-009 MEDIUM  readOnlyRootFilesystem not true
SEC-K8S-010 LOW     no seccompProfile RuntimeDefault/Localhost
SEC-K8S-011 MEDIUM  container image without a tag or ``latest``
SEC-K8S-012 HIGH    Secret manifest carries a value (templates hold placeholders only)

Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from agents.review.findings import finding
from agents.review.locate import documents, node_line
from contracts.payloads import Finding
from contracts.redaction import is_literal
from contracts.vocabulary import Severity

TOOL = "security-rules"

POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "Rollout": ("spec", "template", "spec"),  # Argo Rollouts
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
DANGEROUS_CAPABILITIES = frozenset(
    {
        "ALL", "SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "SYS_MODULE", "NET_RAW", "SYS_RAWIO", "SYS_BOOT",
        "DAC_READ_SEARCH", "DAC_OVERRIDE", "SYS_TIME", "BPF", "PERFMON", "MAC_ADMIN", "MAC_OVERRIDE",
        "SETFCAP",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Document:
    """One parsed YAML document of a manifest file, with its node tree for line numbers."""

    path: str
    data: dict[str, Any]
    node: yaml.Node

    def line(self, *keys: str | int) -> int | None:
        """Line of ``keys`` (the deepest one present)."""
        return node_line(self.node, keys)


def load(files: Mapping[str, str]) -> list[Document]:
    """Every mapping document of the given manifests (unparsable files are QA's finding, not ours)."""
    out: list[Document] = []
    for path in sorted(files):
        try:
            out += [
                Document(path, data, node) for data, node in documents(files[path]) if isinstance(data, dict)
            ]
        except yaml.YAMLError:
            continue
    return out


def check(files: Mapping[str, str]) -> list[Finding]:
    """All Kubernetes rules over the manifests ``{path: content}`` (checked together: a pod's
    ServiceAccount may live in another file)."""
    docs = load(files)
    quiet_accounts = {
        (doc.data.get("metadata") or {}).get("name")
        for doc in docs
        if doc.data.get("kind") == "ServiceAccount" and doc.data.get("automountServiceAccountToken") is False
    }
    out: list[Finding] = []
    for doc in docs:
        kind = doc.data.get("kind")
        if kind == "Secret":
            out += _secret(doc)
        elif isinstance(kind, str) and kind in POD_SPEC_PATHS:
            keys = POD_SPEC_PATHS[kind]
            spec = _dig(doc.data, keys)
            if isinstance(spec, dict):
                out += _pod(doc, list(keys), spec, quiet_accounts)
    return out


def _dig(data: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _pod(doc: Document, at: list[str | int], spec: dict[str, Any], quiet_accounts: set[Any]) -> list[Finding]:
    name = f"{doc.data.get('kind')}/{(doc.data.get('metadata') or {}).get('name', '?')}"
    pod_sc = spec.get("securityContext") or {}
    out: list[Finding] = []

    def add(keys: list[str | int], rule: str, severity: Severity, message: str, fix: str) -> None:
        out.append(
            finding(
                doc.path,
                rule,
                f"{name}: {message}",
                severity=severity,
                line=doc.line(*keys),
                tool=TOOL,
                fix=fix,
            )
        )

    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key) is True:
            add(
                [*at, key],
                "SEC-K8S-004",
                Severity.HIGH,
                f"{key}: true shares the node's namespace",
                f"remove `{key}`",
            )
    account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    if spec.get("automountServiceAccountToken") is not False and account not in quiet_accounts:
        add(
            at,
            "SEC-K8S-008",
            Severity.MEDIUM,
            "the service account token is mounted into every container",
            "set `automountServiceAccountToken: false` in the pod spec",
        )
    containers = list(_containers(spec))
    seccomp_ok = _seccomp_ok(pod_sc) or (
        containers and all(_seccomp_ok(c.get("securityContext") or {}) for _, _, c in containers)
    )
    if not seccomp_ok:
        add(
            [*at, "securityContext"],
            "SEC-K8S-010",
            Severity.LOW,
            "no seccomp profile (RuntimeDefault)",
            "set `securityContext.seccompProfile.type: RuntimeDefault` in the pod spec",
        )
    for field, index, container in containers:
        out += _container(doc, name, [*at, field, index], container, pod_sc)
    return out


def _containers(spec: dict[str, Any]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    for field in ("initContainers", "containers"):
        items = spec.get(field)
        for index, container in enumerate(items if isinstance(items, list) else []):
            if isinstance(container, dict):
                yield field, index, container


def _seccomp_ok(security_context: dict[str, Any]) -> bool:
    profile = security_context.get("seccompProfile") or {}
    return isinstance(profile, dict) and profile.get("type") in ("RuntimeDefault", "Localhost")


def _container(
    doc: Document, owner: str, at: list[str | int], container: dict[str, Any], pod_sc: dict[str, Any]
) -> list[Finding]:
    sc = container.get("securityContext") or {}
    label = f"{owner} container {container.get('name', at[-1])!r}"
    out: list[Finding] = []

    def add(keys: list[str | int], rule: str, severity: Severity, message: str, fix: str) -> None:
        line = doc.line(*at, *keys)
        out.append(
            finding(doc.path, rule, f"{label}: {message}", severity=severity, line=line, tool=TOOL, fix=fix)
        )

    context = ["securityContext"]
    if sc.get("privileged") is True:
        add(
            [*context, "privileged"],
            "SEC-K8S-001",
            Severity.HIGH,
            "runs privileged",
            "remove `privileged: true`",
        )
    if sc.get("allowPrivilegeEscalation") is not False:
        add(
            context,
            "SEC-K8S-002",
            Severity.HIGH,
            "allowPrivilegeEscalation is not false",
            "set `securityContext.allowPrivilegeEscalation: false`",
        )
    non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
    user = sc.get("runAsUser", pod_sc.get("runAsUser"))
    if non_root is not True or user == 0:
        problem = "runs as root (runAsUser: 0)" if user == 0 else "runAsNonRoot is not true"
        add(
            context,
            "SEC-K8S-003",
            Severity.HIGH,
            problem,
            "set `runAsNonRoot: true` and numeric `runAsUser`/`runAsGroup` (e.g. 10001) in the pod",
        )
    _capabilities(add, sc.get("capabilities") or {})
    missing = _missing_resources(container.get("resources") or {})
    if missing:
        add(
            ["resources"],
            "SEC-K8S-007",
            Severity.MEDIUM,
            f"no resource {', '.join(missing)}",
            "set requests and limits for cpu and memory",
        )
    if sc.get("readOnlyRootFilesystem") is not True:
        add(
            context,
            "SEC-K8S-009",
            Severity.MEDIUM,
            "root filesystem is writable",
            "set `readOnlyRootFilesystem: true` and mount an emptyDir at /tmp",
        )
    image = str(container.get("image", ""))
    last = image.rsplit("/", 1)[-1]
    if image and "@" not in image and (":" not in last or last.endswith(":latest")):
        add(
            ["image"],
            "SEC-K8S-011",
            Severity.MEDIUM,
            f"image `{image}` is not pinned to a version",
            "use an immutable tag (the commit SHA or a release version), optionally with a digest",
        )
    return out


def _capabilities(add: Callable[..., None], capabilities: dict[str, Any]) -> None:
    dropped = {str(c).upper() for c in capabilities.get("drop") or []}
    if "ALL" not in dropped:
        add(
            ["securityContext", "capabilities"],
            "SEC-K8S-005",
            Severity.HIGH,
            "capabilities do not drop ALL",
            "set `securityContext.capabilities.drop: [ALL]`",
        )
    for capability in capabilities.get("add") or []:
        name = str(capability).upper().removeprefix("CAP_")
        severity = Severity.HIGH if name in DANGEROUS_CAPABILITIES else Severity.MEDIUM
        add(
            ["securityContext", "capabilities", "add"],
            "SEC-K8S-006",
            severity,
            f"adds capability {name}",
            "remove it; if a port below 1024 is the reason, listen on a high port instead",
        )


def _missing_resources(resources: dict[str, Any]) -> list[str]:
    missing = []
    for kind in ("requests", "limits"):
        values = resources.get(kind) or {}
        missing += [
            f"{kind}.{r}" for r in ("cpu", "memory") if not (isinstance(values, dict) and values.get(r))
        ]
    return missing


def _secret(doc: Document) -> list[Finding]:
    out: list[Finding] = []
    name = (doc.data.get("metadata") or {}).get("name", "?")
    for field in ("data", "stringData"):
        values = doc.data.get(field)
        for key, value in (values or {}).items() if isinstance(values, dict) else ():
            if value is not None and is_literal(str(value)):
                out.append(
                    finding(
                        doc.path,
                        "SEC-K8S-012",
                        f"Secret/{name}: `{field}.{key}` holds a value",
                        severity=Severity.HIGH,
                        line=doc.line(field, key),
                        tool=TOOL,
                        fix="keep a placeholder (CHANGE_ME) in the template, or use an ExternalSecret",
                    )
                )
    return out
