"""Plain Kubernetes manifests (k8s/) for the primary environment, one file per kind.

Rolling uses one Deployment; blue-green two (``slot: blue|green``) with the Service selecting the
live slot; canary a stable and a canary Deployment behind an nginx weighted canary Ingress. Only
core APIs, so every manifest validates against the pinned Kubernetes schema; the one exception is
the ExternalSecret (a CRD), rendered only when references come from an external store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.devops.render.common import (
    DATA_SIZE_LIMIT,
    comment,
    config_file_mounts,
    dump_yaml_all,
    files_secret,
    header,
    k8s_probe_action,
    labels,
    selector_labels,
    tracks,
    workload_name,
    writable_mounts,
)
from agents.devops.render.rollout import CANARY_WEIGHT, CONTAINER, k8s_rollback
from agents.devops.skips import k8s_skip_annotations
from agents.devops.spec import AppSpec, SecretKind
from agents.inspection.backing import EGRESS_PORTS

INGRESS_NAMESPACE = "ingress-nginx"
MONITORING_NAMESPACE = "monitoring"
# Egress ports per backing service (one entry per service kind the generator knows).
BACKING_PORTS = EGRESS_PORTS


@dataclass(frozen=True)
class SecretEnv:
    """One secret environment variable as a pod sees it: the Secret and key that provide it, and
    for synced secrets the key (and JSON property) in the external store."""

    env_var: str
    secret: str
    key: str
    kind: SecretKind
    rotation_days: int
    remote_key: str | None = None
    remote_property: str | None = None


def secret_envs(spec: AppSpec, environment: str | None = None) -> list[SecretEnv]:
    """Secret variables for pods, from the credential manager's references:

    - ``k8s_secret``: the Secret ``reference``, key ``key`` (default the variable name);
    - ``external_secret``: the Secret ``reference`` that an ExternalSecret syncs from store key ``key``;
    - ``secrets_manager`` only (no Kubernetes reference): synced into ``<name>-secrets`` from that ARN.
    """
    out: dict[str, SecretEnv] = {}
    for ref in spec.refs(SecretKind.SECRETS_MANAGER, environment=environment):
        out[ref.env_var] = SecretEnv(
            ref.env_var,
            f"{spec.name}-secrets",
            ref.env_var,
            SecretKind.EXTERNAL_SECRET,
            ref.rotation_days,
            remote_key=ref.reference,
            remote_property=ref.key,
        )
    for ref in spec.refs(SecretKind.EXTERNAL_SECRET, environment=environment):
        out[ref.env_var] = SecretEnv(
            ref.env_var,
            ref.reference,
            ref.env_var,
            ref.kind,
            ref.rotation_days,
            remote_key=ref.key or ref.reference,
        )
    for ref in spec.refs(SecretKind.K8S_SECRET, environment=environment):
        out[ref.env_var] = SecretEnv(
            ref.env_var, ref.reference, ref.key or ref.env_var, ref.kind, ref.rotation_days
        )
    return [out[name] for name in sorted(out)]


def _meta(spec: AppSpec, name: str, track: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": spec.ns, "labels": labels(spec, track), **extra}


def pod_security_context(spec: AppSpec) -> dict[str, Any]:
    """Pod-level: numeric non-root user, group and fsGroup, seccomp RuntimeDefault."""
    return {
        "runAsNonRoot": True,
        "runAsUser": spec.uid,
        "runAsGroup": spec.uid,
        "fsGroup": spec.uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context(spec: AppSpec) -> dict[str, Any]:
    """Container-level: no privilege escalation, read-only root filesystem, no capabilities."""
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": spec.uid,
        "runAsGroup": spec.uid,
        "capabilities": {"drop": ["ALL"]},
    }


def resources(spec: AppSpec) -> dict[str, Any]:
    return {
        "requests": {"cpu": spec.cpu_request, "memory": spec.memory_request},
        "limits": {"cpu": spec.cpu_limit, "memory": spec.memory_limit},
    }


def probes(spec: AppSpec) -> dict[str, Any]:
    """Startup (slow first boot), readiness (traffic) and liveness (restart) on the health route."""
    action = k8s_probe_action(spec)
    return {
        "startupProbe": {**action, "periodSeconds": 2, "failureThreshold": 30, "timeoutSeconds": 2},
        "readinessProbe": {**action, "periodSeconds": 10, "failureThreshold": 3, "timeoutSeconds": 2},
        "livenessProbe": {**action, "periodSeconds": 20, "failureThreshold": 3, "timeoutSeconds": 2},
    }


def _container(spec: AppSpec, environment: str | None = None) -> dict[str, Any]:
    facts = spec.facts
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": spec.image,
        "imagePullPolicy": "Always",
        "ports": [{"name": "http", "containerPort": facts.port, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": f"{spec.name}-config"}}],
    }
    env = [
        {"name": s.env_var, "valueFrom": {"secretKeyRef": {"name": s.secret, "key": s.key}}}
        for s in secret_envs(spec, environment)
    ]
    if env:
        container["env"] = env
    container["resources"] = resources(spec)
    container.update(probes(spec))
    # Give the ingress controller time to drop the endpoint before the process gets SIGTERM.
    container["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", "5"]}}}
    container["securityContext"] = container_security_context(spec)
    container["volumeMounts"] = [
        {"name": name, "mountPath": path} for name, path in writable_mounts(spec)
    ] + [
        {"name": name, "mountPath": path, "subPath": key, "readOnly": True}
        for name, path, key in config_file_mounts(spec)
    ]
    return container


def pod_volumes(spec: AppSpec) -> list[dict[str, Any]]:
    """emptyDirs for /tmp and each folder the app writes, the configuration files' Secret."""
    volumes: list[dict[str, Any]] = [
        {"name": name, "emptyDir": {"sizeLimit": "64Mi" if path == "/tmp" else DATA_SIZE_LIMIT}}
        for name, path in writable_mounts(spec)
    ]
    volumes += [
        {
            "name": name,
            "secret": {
                "secretName": files_secret(spec),
                "items": [{"key": key, "path": key}],
                "defaultMode": 0o440,
            },
        }
        for name, _, key in config_file_mounts(spec)
    ]
    return volumes


def deployment(spec: AppSpec, track: str | None) -> dict[str, Any]:
    """One Deployment of the service (per track of the strategy)."""
    name = workload_name(spec, track)
    skips = ["CKV_K8S_43"] + (["CKV_K8S_35"] if secret_envs(spec) else [])
    metadata = _meta(spec, name, track, annotations=k8s_skip_annotations(*skips))
    pod_annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(spec.facts.port),
        "prometheus.io/path": spec.facts.metrics_path,
    }
    body: dict[str, Any] = {}
    if track == "canary":
        body["replicas"] = 1  # the HPA scales only the stable track; the canary stays small
    body.update(
        {
            "revisionHistoryLimit": 10,
            "minReadySeconds": 5,
            "progressDeadlineSeconds": 600,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "selector": {"matchLabels": selector_labels(spec, track)},
            "template": {
                "metadata": {"labels": labels(spec, track), "annotations": pod_annotations},
                "spec": {
                    "serviceAccountName": spec.name,
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security_context(spec),
                    "terminationGracePeriodSeconds": 30,
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": selector_labels(spec, track)},
                        }
                    ],
                    "containers": [_container(spec)],
                    "volumes": pod_volumes(spec),
                },
            },
        }
    )
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": body}


def _service(spec: AppSpec, name: str, track: str | None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(spec, name),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(spec, track),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def services(spec: AppSpec) -> list[dict[str, Any]]:
    """The Service that takes traffic, plus ``-preview`` (blue-green) or ``-canary`` (canary)."""
    if spec.strategy == "blue-green":
        return [_service(spec, spec.name, "blue"), _service(spec, f"{spec.name}-preview", "green")]
    if spec.strategy == "canary":
        return [_service(spec, spec.name, "stable"), _service(spec, f"{spec.name}-canary", "canary")]
    return [_service(spec, spec.name, None)]


def _ingress(spec: AppSpec, name: str, service: str, annotations: dict[str, str]) -> dict[str, Any]:
    metadata = _meta(spec, name)
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata,
        "spec": {
            "ingressClassName": spec.ingress_class,
            "tls": [{"hosts": [spec.host], "secretName": f"{spec.name}-tls"}],
            "rules": [
                {
                    "host": spec.host,
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": service, "port": {"name": "http"}}},
                            }
                        ]
                    },
                }
            ],
        },
    }


def ingresses(spec: AppSpec) -> list[dict[str, Any]]:
    """The public Ingress (TLS), and for canary the weighted canary Ingress on the same host."""
    items = [_ingress(spec, spec.name, spec.name, {})]
    if spec.strategy == "canary":
        canary = f"{spec.name}-canary"
        weights = {"nginx.ingress.kubernetes.io/canary": "true", CANARY_WEIGHT: str(spec.canary_weight)}
        items.append(_ingress(spec, canary, canary, weights))
    return items


def hpas(spec: AppSpec) -> list[dict[str, Any]]:
    """autoscaling/v2 on CPU for every track that serves steady traffic (not the canary)."""
    items = []
    for track in tracks(spec):
        if track == "canary":
            continue
        name = workload_name(spec, track)
        items.append(
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": _meta(spec, name, track),
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                    "minReplicas": spec.replicas,
                    "maxReplicas": spec.max_replicas,
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {
                                "name": "cpu",
                                "target": {
                                    "type": "Utilization",
                                    "averageUtilization": spec.target_cpu_percent,
                                },
                            },
                        }
                    ],
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
                },
            }
        )
    return items


def pdb(spec: AppSpec) -> dict[str, Any]:
    """At most one pod of the service down at a time during voluntary disruptions."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(spec, spec.name),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(spec)}},
    }


def network_policies(spec: AppSpec) -> list[dict[str, Any]]:
    """Default deny for the namespace, then exactly what the app needs: HTTP from the ingress
    controller and Prometheus, DNS, HTTPS out, and its backing services' ports."""
    port = spec.facts.port
    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(spec, "default-deny-all"),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }

    def from_namespace(ns: str) -> dict[str, Any]:
        return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}

    egress: list[dict[str, Any]] = [
        {
            "to": [from_namespace("kube-system")],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        },
        {"ports": [{"protocol": "TCP", "port": 443}]},
    ]
    backing = [p for s in spec.facts.backing_services for p in BACKING_PORTS[s]]
    if backing:
        egress.append({"ports": [{"protocol": "TCP", "port": p} for p in backing]})
    allow = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(spec, spec.name),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(spec)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [from_namespace(INGRESS_NAMESPACE), from_namespace(MONITORING_NAMESPACE)],
                    "ports": [{"protocol": "TCP", "port": port}],
                }
            ],
            "egress": egress,
        },
    }
    return [deny, allow]


def secret_templates(spec: AppSpec) -> list[dict[str, Any]]:
    """Kubernetes Secrets named by k8s_secret references, with empty values: the shape to fill
    from the secret store, never the values."""
    grouped: dict[str, list[SecretEnv]] = {}
    for s in secret_envs(spec):
        if s.kind == SecretKind.K8S_SECRET:
            grouped.setdefault(s.secret, []).append(s)
    docs = []
    for name, items in sorted(grouped.items()):
        rotation = min(s.rotation_days for s in items)
        meta = _meta(spec, name, annotations={"orchestra.dev/rotation-days": str(rotation)})
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": meta,
                "type": "Opaque",
                "stringData": {s.key: "" for s in items},
            }
        )
    if spec.facts.config_files:
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": _meta(spec, files_secret(spec)),
                "type": "Opaque",
                "stringData": {key: "" for _, _, key in config_file_mounts(spec)},
            }
        )
    return docs


def external_secrets(spec: AppSpec) -> list[dict[str, Any]]:
    """One ExternalSecret per synced Secret, each key read from the external store."""
    grouped: dict[str, list[SecretEnv]] = {}
    for s in secret_envs(spec):
        if s.kind == SecretKind.EXTERNAL_SECRET:
            grouped.setdefault(s.secret, []).append(s)
    docs = []
    for name, items in sorted(grouped.items()):
        data = []
        for s in items:
            remote: dict[str, Any] = {"key": s.remote_key}
            if s.remote_property:
                remote["property"] = s.remote_property
            data.append({"secretKey": s.key, "remoteRef": remote})
        rotation = str(min(s.rotation_days for s in items))
        docs.append(
            {
                "apiVersion": "external-secrets.io/v1",
                "kind": "ExternalSecret",
                "metadata": _meta(spec, name, annotations={"orchestra.dev/rotation-days": rotation}),
                "spec": {
                    "refreshInterval": "1h",
                    "secretStoreRef": {"kind": "ClusterSecretStore", "name": spec.secret_store},
                    "target": {"name": name, "creationPolicy": "Owner"},
                    "data": data,
                },
            }
        )
    return docs


def render(spec: AppSpec) -> dict[str, str]:
    """k8s/*.yaml for the primary environment."""
    env = spec.primary_environment
    head = f"Environment: {env} (namespace {spec.ns}). Strategy: {spec.strategy}."
    rollback = "Rollback:\n" + "".join(f"  {line}\n" for line in k8s_rollback(spec))
    config = spec.config_map()
    unset = spec.unset_config()
    config_note = (
        "Not set here, so the app's own defaults apply: "
        + ", ".join(unset)
        + ".\nAdd them under data: per environment."
        if unset
        else ""
    )
    files: dict[str, Any] = {
        "k8s/namespace.yaml": [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": spec.ns,
                    "labels": {
                        **labels(spec),
                        # Every pod here must meet the "restricted" Pod Security Standard.
                        "pod-security.kubernetes.io/enforce": "restricted",
                        "pod-security.kubernetes.io/audit": "restricted",
                    },
                },
            }
        ],
        "k8s/serviceaccount.yaml": [
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": _meta(spec, spec.name),
                "automountServiceAccountToken": False,
            }
        ],
        "k8s/configmap.yaml": [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": _meta(spec, f"{spec.name}-config"),
                "data": config,
            }
        ],
        "k8s/deployment.yaml": [deployment(spec, track) for track in tracks(spec)],
        "k8s/service.yaml": services(spec),
        "k8s/hpa.yaml": hpas(spec),
        "k8s/pdb.yaml": [pdb(spec)],
        "k8s/networkpolicy.yaml": network_policies(spec),
        "k8s/ingress.yaml": ingresses(spec),
    }
    notes = {
        "k8s/configmap.yaml": config_note,
        "k8s/deployment.yaml": rollback,
        "k8s/service.yaml": rollback if spec.strategy != "rolling" else "",
    }
    templates = secret_templates(spec)
    if templates:
        files["k8s/secrets.yaml"] = templates
        notes["k8s/secrets.yaml"] = (
            "TEMPLATE ONLY: the values are empty on purpose and this file is never applied by CI.\n"
            "Create the real Secret from your secret store, for example:\n"
            + "".join(
                f"  kubectl -n {spec.ns} create secret generic {t['metadata']['name']} "
                + " ".join(
                    f"--from-file={k}=./secrets/{k}"
                    if t["metadata"]["name"] == files_secret(spec)
                    else f'--from-literal={k}="$(...)"'
                    for k in t["stringData"]
                )
                + "\n"
                for t in templates
            )
        )
    external = external_secrets(spec)
    if external:
        files["k8s/externalsecret.yaml"] = external
        notes["k8s/externalsecret.yaml"] = (
            f"Needs the External Secrets Operator and a ClusterSecretStore named {spec.secret_store}.\n"
            "Pods read env vars at start: after a rotation, restart them "
            f"(kubectl -n {spec.ns} rollout restart deployment -l app.kubernetes.io/name={spec.name})."
        )
    return {
        path: dump_yaml_all(
            docs, head=header(spec, "Kubernetes manifest") + comment(head + "\n" + notes.get(path, ""))
        )
        for path, docs in files.items()
    }


def manifest_paths(spec: AppSpec) -> list[str]:
    """k8s/ files in apply order (namespace first), without rendering them."""
    order = ["namespace", "serviceaccount", "configmap"]
    kinds = {s.kind for s in secret_envs(spec)}
    if SecretKind.K8S_SECRET in kinds or spec.facts.config_files:
        order.append("secrets")
    if SecretKind.EXTERNAL_SECRET in kinds:
        order.append("externalsecret")
    order += ["deployment", "service", "hpa", "pdb", "networkpolicy", "ingress"]
    return [f"k8s/{n}.yaml" for n in order]
