"""Helm chart (charts/<name>/): the k8s/ objects as templates, with the same secure defaults in
values.yaml, a values.schema.json that enforces them, and one values-<env>.yaml per environment.

Templates are Go templates, so they are written out as text; the strategy decides which
Deployments exist (``range`` over the tracks). Every ``.Values`` path a template uses exists in
values.yaml (tests check this, since no helm binary is available offline).
"""

from __future__ import annotations

import copy
from typing import Any

from agents.devops.render import kubernetes as k8s
from agents.devops.render.common import (
    DATA_SIZE_LIMIT,
    GENERATOR,
    comment,
    config_file_mounts,
    dump_json,
    dump_yaml,
    files_secret,
    header,
    track_key,
    tracks,
    writable_mounts,
)
from agents.devops.render.rollout import helm_rollback
from agents.devops.skips import k8s_skip_annotations
from agents.devops.spec import AppSpec

TEST_IMAGE = "busybox:1.37.0"
HELMIGNORE = "# Files helm package leaves out of the chart archive.\n.git\n*.tgz\n*.orig\n*~\n"


def render(spec: AppSpec) -> dict[str, str]:
    """charts/<name>/: Chart.yaml, values*.yaml, values.schema.json and templates/."""
    base = f"charts/{spec.name}"
    values = chart_values(spec)
    files = {
        f"{base}/Chart.yaml": dump_yaml(_chart(spec), head=header(spec, "Helm chart")),
        f"{base}/values.yaml": dump_yaml(
            values,
            head=header(spec, "Helm values") + comment(f"Defaults: the {spec.primary_environment} settings."),
        ),
        f"{base}/values.schema.json": dump_json(values_schema(values)),
        f"{base}/.helmignore": HELMIGNORE,
    }
    for env in spec.environments:
        files[f"{base}/values-{env}.yaml"] = dump_yaml(
            environment_values(spec, env), head=header(spec, f"Helm values for {env}")
        )
    for name, text in _templates(spec).items():
        files[f"{base}/templates/{name}"] = text
    return files


# --- values ----------------------------------------------------------------------------------


def _secret_values(spec: AppSpec, environment: str) -> tuple[list[dict[str, str]], dict[str, Any]]:
    envs = k8s.secret_envs(spec, environment)
    secret_env = [{"name": s.env_var, "secretName": s.secret, "key": s.key} for s in envs]
    synced: dict[str, list[dict[str, str]]] = {}
    for s in envs:
        if s.kind == "external_secret":
            item = {"secretKey": s.key, "remoteKey": s.remote_key or "", "property": s.remote_property or ""}
            synced.setdefault(s.secret, []).append(item)
    external = {
        "enabled": bool(synced),
        "storeName": spec.secret_store,
        "refreshInterval": "1h",
        "secrets": [{"name": name, "data": data} for name, data in sorted(synced.items())],
    }
    return secret_env, external


def chart_values(spec: AppSpec) -> dict[str, Any]:
    """values.yaml: the primary environment, with the same secure defaults as k8s/."""
    facts = spec.facts
    secret_env, external = _secret_values(spec, spec.primary_environment)
    values: dict[str, Any] = {
        "nameOverride": "",
        "fullnameOverride": "",
        "image": {"repository": spec.image_repository, "tag": spec.image_tag, "pullPolicy": "Always"},
        "imagePullSecrets": [],
        "replicaCount": spec.replicas,
        "autoscaling": {
            "enabled": True,
            "minReplicas": spec.replicas,
            "maxReplicas": spec.max_replicas,
            "targetCPUUtilizationPercentage": spec.target_cpu_percent,
        },
    }
    if spec.strategy == "blue-green":
        # Empty slot/canary tags follow image.tag; deploys set the idle slot's tag explicitly.
        slots = {slot: {"tag": ""} for slot in ("blue", "green")}
        values["blueGreen"] = {"activeSlot": "blue", "slots": slots}
    if spec.strategy == "canary":
        values["canary"] = {"tag": "", "replicas": 1, "weight": spec.canary_weight}
    values.update(
        {
            "serviceAccount": {"create": True, "name": "", "annotations": {}, "automountToken": False},
            "podAnnotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(facts.port),
                "prometheus.io/path": facts.metrics_path,
            },
            "podSecurityContext": k8s.pod_security_context(spec),
            "securityContext": k8s.container_security_context(spec),
            "containerPort": facts.port,
            "service": {"type": "ClusterIP", "port": 80},
            "ingress": {
                "enabled": True,
                "className": spec.ingress_class,
                "host": spec.host,
                "tlsSecretName": f"{spec.name}-tls",
                "annotations": {},
            },
            "resources": k8s.resources(spec),
            "probes": {
                "type": facts.probe,
                "path": facts.health_path,
                "hostHeader": "localhost" if facts.framework == "django" else "",
            },
            "config": spec.config_map(),
            "secretEnv": secret_env,
            "externalSecrets": external,
            "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
            "networkPolicy": {
                "enabled": True,
                "ingressNamespaces": [k8s.INGRESS_NAMESPACE, k8s.MONITORING_NAMESPACE],
                "egressPorts": [443, *(p for s in facts.backing_services for p in k8s.BACKING_PORTS[s])],
            },
            "tmpSizeLimit": "64Mi",
            # Folders the app writes (emptyDirs on the read-only root filesystem).
            "dataVolumes": [
                {"name": name, "mountPath": path, "sizeLimit": DATA_SIZE_LIMIT}
                for name, path in writable_mounts(spec)[1:]
            ],
            # Configuration files, each a key of the Secret filesSecret mounted at its path.
            "filesSecret": files_secret(spec),
            "configFiles": [
                {"name": name, "mountPath": path, "key": key} for name, path, key in config_file_mounts(spec)
            ],
        }
    )
    return values


def environment_values(spec: AppSpec, environment: str) -> dict[str, Any]:
    """values-<env>.yaml: only what differs per environment (host, secret references, scale)."""
    secret_env, external = _secret_values(spec, environment)
    primary = environment == spec.primary_environment
    host = spec.env_host(environment)
    out: dict[str, Any] = {
        "ingress": {"host": host, "tlsSecretName": f"{spec.name}-{environment}-tls"},
        "secretEnv": secret_env,
        "externalSecrets": external,
    }
    if not primary:
        out["autoscaling"] = {"maxReplicas": spec.replicas}
    return out


OPEN_MAPS = {
    "serviceAccount.annotations",
    "podAnnotations",
    "ingress.annotations",
    "config",
    "blueGreen.slots",
}
_MOUNT_ITEM = {
    "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"},
    "mountPath": {"type": "string", "pattern": "^/"},
}
ITEM_SCHEMAS: dict[str, dict[str, Any]] = {
    "dataVolumes": {
        "type": "object",
        "properties": {**_MOUNT_ITEM, "sizeLimit": {"type": "string", "minLength": 1}},
        "required": ["name", "mountPath", "sizeLimit"],
        "additionalProperties": False,
    },
    "configFiles": {
        "type": "object",
        "properties": {**_MOUNT_ITEM, "key": {"type": "string", "minLength": 1}},
        "required": ["name", "mountPath", "key"],
        "additionalProperties": False,
    },
    "imagePullSecrets": {
        "type": "object",
        "properties": {"name": {"type": "string", "minLength": 1}},
        "required": ["name"],
    },
    "secretEnv": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
            "secretName": {"type": "string", "minLength": 1},
            "key": {"type": "string", "minLength": 1},
        },
        "required": ["name", "secretName", "key"],
        "additionalProperties": False,
    },
    "externalSecrets.secrets": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "secretKey": {"type": "string", "minLength": 1},
                        "remoteKey": {"type": "string", "minLength": 1},
                        "property": {"type": "string"},
                    },
                    "required": ["secretKey", "remoteKey"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["name", "data"],
        "additionalProperties": False,
    },
    "networkPolicy.ingressNamespaces": {"type": "string", "minLength": 1},
    "networkPolicy.egressPorts": {"type": "integer", "minimum": 1, "maximum": 65535},
    "securityContext.capabilities.drop": {"type": "string"},
}
# Secure defaults the chart refuses to loosen, plus value ranges.
CONSTRAINTS: dict[str, dict[str, Any]] = {
    "image.pullPolicy": {"enum": ["Always", "IfNotPresent"]},
    "image.tag": {"minLength": 1, "not": {"const": "latest"}},
    "replicaCount": {"minimum": 2},
    "autoscaling.minReplicas": {"minimum": 2},
    "autoscaling.targetCPUUtilizationPercentage": {"minimum": 10, "maximum": 95},
    "blueGreen.activeSlot": {"enum": ["blue", "green"]},
    "canary.weight": {"minimum": 0, "maximum": 100},
    "serviceAccount.automountToken": {"const": False},
    "podSecurityContext.runAsNonRoot": {"const": True},
    "podSecurityContext.runAsUser": {"minimum": 1},
    "securityContext.allowPrivilegeEscalation": {"const": False},
    "securityContext.privileged": {"const": False},
    "securityContext.readOnlyRootFilesystem": {"const": True},
    "securityContext.runAsNonRoot": {"const": True},
    "securityContext.capabilities.drop": {"contains": {"const": "ALL"}},
    "containerPort": {"minimum": 1, "maximum": 65535},
    "service.type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
    "probes.path": {"pattern": "^/"},
    "probes.type": {"enum": ["http", "tcp"]},
    "podDisruptionBudget.maxUnavailable": {"minimum": 1},
}


def _schema(value: Any, path: str) -> dict[str, Any]:
    if isinstance(value, bool):
        node: dict[str, Any] = {"type": "boolean"}
    elif isinstance(value, int):
        node = {"type": "integer"}
    elif isinstance(value, str):
        node = {"type": "string"}
    elif isinstance(value, list):
        node = {"type": "array", "items": ITEM_SCHEMAS.get(path, {})}
    elif path in OPEN_MAPS:
        node = {
            "type": "object",
            "additionalProperties": {"type": "object"} if path == "blueGreen.slots" else {"type": "string"},
        }
    else:
        props = {k: _schema(v, f"{path}.{k}" if path else k) for k, v in value.items()}
        node = {"type": "object", "properties": props, "required": list(value), "additionalProperties": False}
    node.update(CONSTRAINTS.get(path, {}))
    return node


def values_schema(values: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema for values.yaml derived from the defaults, tightened by CONSTRAINTS."""
    return {"$schema": "http://json-schema.org/draft-07/schema#", "title": "values", **_schema(values, "")}


def _chart(spec: AppSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v2",
        "name": spec.name,
        "description": f"{spec.facts.framework} service {spec.name} ({spec.strategy} deployments)",
        "type": "application",
        "version": "0.1.0",
        "appVersion": spec.image_tag,
        "kubeVersion": ">=1.25.0-0",
        "keywords": [spec.facts.language, spec.facts.framework, spec.strategy],
        "annotations": {"orchestra.dev/strategy": str(spec.strategy), "orchestra.dev/generator": GENERATOR},
    }


def merged_values(spec: AppSpec, environment: str) -> dict[str, Any]:
    """values.yaml overlaid with values-<env>.yaml, as helm merges them (maps deep, lists replaced)."""

    def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(base)
        for key, value in over.items():
            out[key] = (
                merge(out[key], value)
                if isinstance(value, dict) and isinstance(out.get(key), dict)
                else value
            )
        return out

    return merge(chart_values(spec), environment_values(spec, environment))


# --- templates -------------------------------------------------------------------------------

HELPERS = """\
{{/* Names and labels shared by every template of the chart. */}}
{{- define "C.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "C.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "C.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "C.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* A Deployment (or HPA) name per track: stable and rolling keep the plain name. */}}
{{- define "C.workloadName" -}}
{{- $base := include "C.fullname" .root }}
{{- if and .track (ne .track "stable") }}
{{- printf "%s-%s" $base .track | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $base }}
{{- end }}
{{- end }}

{{- define "C.selectorLabels" -}}
app.kubernetes.io/name: {{ include "C.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "C.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "C.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: server
app.kubernetes.io/part-of: {{ include "C.name" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The helm test pod: not selected by the Services, PDB or app NetworkPolicy. */}}
{{- define "C.testLabels" -}}
app.kubernetes.io/name: {{ include "C.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: connection-test
{{- end }}

{{- define "C.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "C.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "C.probe" -}}
{{- if eq .Values.probes.type "tcp" }}
tcpSocket:
  port: http
{{- else }}
httpGet:
  path: {{ .Values.probes.path }}
  port: http
  {{- with .Values.probes.hostHeader }}
  httpHeaders:
    - name: Host
      value: {{ . }}
  {{- end }}
{{- end }}
{{- end }}
"""

DEPLOYMENT = """\
{{- range $track := list TRACKS }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "C.workloadName" (dict "root" $ "track" $track) }}
  namespace: {{ $.Release.Namespace }}
  labels:
    {{- include "C.labels" $ | nindent 4 }}
    {{- with $track }}
    KEY: {{ . }}
    {{- end }}
  annotations:
SKIPS
spec:
REPLICAS
  revisionHistoryLimit: 10
  minReadySeconds: 5
  progressDeadlineSeconds: 600
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 25%
      maxUnavailable: 0
  selector:
    matchLabels:
      {{- include "C.selectorLabels" $ | nindent 6 }}
      {{- with $track }}
      KEY: {{ . }}
      {{- end }}
  template:
    metadata:
      annotations:
        {{- toYaml $.Values.podAnnotations | nindent 8 }}
        checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") $ | sha256sum }}
      labels:
        {{- include "C.labels" $ | nindent 8 }}
        {{- with $track }}
        KEY: {{ . }}
        {{- end }}
    spec:
      {{- with $.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      serviceAccountName: {{ include "C.serviceAccountName" $ }}
      automountServiceAccountToken: {{ $.Values.serviceAccount.automountToken }}
      securityContext:
        {{- toYaml $.Values.podSecurityContext | nindent 8 }}
      terminationGracePeriodSeconds: 30
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "C.selectorLabels" $ | nindent 14 }}
              {{- with $track }}
              KEY: {{ . }}
              {{- end }}
      containers:
        - name: app
          image: "{{ $.Values.image.repository }}:TAG"
          imagePullPolicy: {{ $.Values.image.pullPolicy }}
          ports:
            - name: http
              containerPort: {{ $.Values.containerPort }}
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ include "C.fullname" $ }}-config
          {{- with $.Values.secretEnv }}
          env:
            {{- range . }}
            - name: {{ .name }}
              valueFrom:
                secretKeyRef:
                  name: {{ .secretName }}
                  key: {{ .key }}
            {{- end }}
          {{- end }}
          resources:
            {{- toYaml $.Values.resources | nindent 12 }}
          startupProbe:
            {{- include "C.probe" $ | nindent 12 }}
            periodSeconds: 2
            failureThreshold: 30
            timeoutSeconds: 2
          readinessProbe:
            {{- include "C.probe" $ | nindent 12 }}
            periodSeconds: 10
            failureThreshold: 3
            timeoutSeconds: 2
          livenessProbe:
            {{- include "C.probe" $ | nindent 12 }}
            periodSeconds: 20
            failureThreshold: 3
            timeoutSeconds: 2
          lifecycle:
            preStop:
              exec:
                command: ["sleep", "5"]
          securityContext:
            {{- toYaml $.Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- range $.Values.dataVolumes }}
            - name: {{ .name }}
              mountPath: {{ .mountPath }}
            {{- end }}
            {{- range $.Values.configFiles }}
            - name: {{ .name }}
              mountPath: {{ .mountPath }}
              subPath: {{ .key }}
              readOnly: true
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: {{ $.Values.tmpSizeLimit }}
        {{- range $.Values.dataVolumes }}
        - name: {{ .name }}
          emptyDir:
            sizeLimit: {{ .sizeLimit }}
        {{- end }}
        {{- range $.Values.configFiles }}
        - name: {{ .name }}
          secret:
            secretName: {{ $.Values.filesSecret }}
            items:
              - key: {{ .key }}
                path: {{ .key }}
            defaultMode: 0440
        {{- end }}
{{- end }}
"""

_FIXED_REPLICAS = (
    "  {{- if not $.Values.autoscaling.enabled }}\n  replicas: {{ $.Values.replicaCount }}\n  {{- end }}"
)
REPLICAS = {
    # The canary runs a fixed small number of pods; the other tracks follow the HPA.
    "canary": (
        '  {{- if eq $track "canary" }}\n  replicas: {{ $.Values.canary.replicas }}\n'
        + _FIXED_REPLICAS.replace("{{- if", "{{- else if", 1)
    ),
    "other": _FIXED_REPLICAS,
}
TAG = {
    "rolling": "{{ $.Values.image.tag | default $.Chart.AppVersion }}",
    "blue-green": "{{ (index $.Values.blueGreen.slots $track).tag | default $.Values.image.tag }}",
    "canary": (
        '{{ if eq $track "canary" }}{{ $.Values.canary.tag | default $.Values.image.tag }}'
        "{{ else }}{{ $.Values.image.tag }}{{ end }}"
    ),
}

SERVICE = """\
---
apiVersion: v1
kind: Service
metadata:
  name: {{ include "C.fullname" . }}SUFFIX
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "C.labels" . | nindent 4 }}
spec:
  type: {{ .Values.service.type }}
  selector:
    {{- include "C.selectorLabels" . | nindent 4 }}
SELECT
  ports:
    - name: http
      port: {{ .Values.service.port }}
      targetPort: http
      protocol: TCP
"""

HPA = """\
{{- if .Values.autoscaling.enabled }}
{{- range $track := list TRACKS }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "C.workloadName" (dict "root" $ "track" $track) }}
  namespace: {{ $.Release.Namespace }}
  labels:
    {{- include "C.labels" $ | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "C.workloadName" (dict "root" $ "track" $track) }}
  minReplicas: {{ $.Values.autoscaling.minReplicas }}
  maxReplicas: {{ $.Values.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $.Values.autoscaling.targetCPUUtilizationPercentage }}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 300
{{- end }}
{{- end }}
"""

PDB = """\
{{- if .Values.podDisruptionBudget.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "C.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "C.labels" . | nindent 4 }}
spec:
  maxUnavailable: {{ .Values.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "C.selectorLabels" . | nindent 6 }}
{{- end }}
"""

NETWORK_POLICY = """\
{{- if .Values.networkPolicy.enabled }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "C.fullname" . }}-default-deny
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "C.labels" . | nindent 4 }}
spec:
  podSelector: {}
  policyTypes:
    - Ingress
    - Egress
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "C.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "C.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "C.selectorLabels" . | nindent 6 }}
  policyTypes:
    - Ingress
    - Egress
  ingress:
    - from:
        {{- range .Values.networkPolicy.ingressNamespaces }}
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: {{ . }}
        {{- end }}
        - podSelector:
            matchLabels:
              {{- include "C.testLabels" . | nindent 14 }}
      ports:
        - protocol: TCP
          port: {{ .Values.containerPort }}
  egress:
    - to:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: kube-system
      ports:
        - protocol: UDP
          port: 53
        - protocol: TCP
          port: 53
    - ports:
        {{- range .Values.networkPolicy.egressPorts }}
        - protocol: TCP
          port: {{ . }}
        {{- end }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "C.fullname" . }}-connection-test
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "C.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "C.testLabels" . | nindent 6 }}
  policyTypes:
    - Egress
  egress:
    - to:
        - podSelector:
            matchLabels:
              {{- include "C.selectorLabels" . | nindent 14 }}
      ports:
        - protocol: TCP
          port: {{ .Values.containerPort }}
    - to:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: kube-system
      ports:
        - protocol: UDP
          port: 53
        - protocol: TCP
          port: 53
{{- end }}
"""

INGRESS = """\
{{- if .Values.ingress.enabled }}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ include "C.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "C.labels" . | nindent 4 }}
  {{- with .Values.ingress.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  ingressClassName: {{ .Values.ingress.className }}
  tls:
    - hosts:
        - {{ .Values.ingress.host | quote }}
      secretName: {{ .Values.ingress.tlsSecretName }}
  rules:
    - host: {{ .Values.ingress.host | quote }}
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: {{ include "C.fullname" . }}
                port:
                  name: http
CANARY
{{- end }}
"""

CANARY_INGRESS = """\
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ include "C.fullname" . }}-canary
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "C.labels" . | nindent 4 }}
  annotations:
    nginx.ingress.kubernetes.io/canary: "true"
    nginx.ingress.kubernetes.io/canary-weight: {{ .Values.canary.weight | quote }}
spec:
  ingressClassName: {{ .Values.ingress.className }}
  tls:
    - hosts:
        - {{ .Values.ingress.host | quote }}
      secretName: {{ .Values.ingress.tlsSecretName }}
  rules:
    - host: {{ .Values.ingress.host | quote }}
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: {{ include "C.fullname" . }}-canary
                port:
                  name: http"""

SERVICE_ACCOUNT = """\
{{- if .Values.serviceAccount.create }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "C.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "C.labels" . | nindent 4 }}
  {{- with .Values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountToken }}
{{- end }}
"""

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "C.fullname" . }}-config
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "C.labels" . | nindent 4 }}
data:
  {{- range $key, $value := .Values.config }}
  {{ $key }}: {{ $value | quote }}
  {{- end }}
"""

EXTERNAL_SECRET = """\
{{- if .Values.externalSecrets.enabled }}
{{- range .Values.externalSecrets.secrets }}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: {{ .name }}
  namespace: {{ $.Release.Namespace }}
  labels:
    {{- include "C.labels" $ | nindent 4 }}
spec:
  refreshInterval: {{ $.Values.externalSecrets.refreshInterval }}
  secretStoreRef:
    kind: ClusterSecretStore
    name: {{ $.Values.externalSecrets.storeName }}
  target:
    name: {{ .name }}
    creationPolicy: Owner
  data:
    {{- range .data }}
    - secretKey: {{ .secretKey }}
      remoteRef:
        key: {{ .remoteKey | quote }}
        {{- with .property }}
        property: {{ . | quote }}
        {{- end }}
    {{- end }}
{{- end }}
{{- end }}
"""

TEST_CONNECTION = """\
apiVersion: v1
kind: Pod
metadata:
  name: {{ include "C.fullname" . }}-test-connection
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "C.testLabels" . | nindent 4 }}
  annotations:
    helm.sh/hook: test
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  containers:
    - name: wget
      image: TEST_IMAGE
      {{- if eq .Values.probes.type "tcp" }}
      command: ["nc", "-z", "-w", "5"]
      args: ["{{ include "C.fullname" . }}", "{{ .Values.service.port }}"]
      {{- else }}
      command: ["wget", "-q", "-O", "/dev/null", "-T", "5"]
      args: ["http://{{ include "C.fullname" . }}:{{ .Values.service.port }}{{ .Values.probes.path }}"]
      {{- end }}
      resources:
        requests:
          cpu: 10m
          memory: 16Mi
        limits:
          cpu: 100m
          memory: 32Mi
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
"""

NOTES = """\
{{ include "C.fullname" . }} ({{ .Chart.AppVersion }}) is deployed to namespace {{ .Release.Namespace }}.

{{- $health := .Values.probes.path }}
{{- if eq .Values.probes.type "tcp" }}{{ $health = printf "TCP port %v" .Values.containerPort }}{{ end }}
URL: https://{{ .Values.ingress.host }}/  (health: {{ $health }})

Check it:
  kubectl -n {{ .Release.Namespace }} get deploy,pods,svc,ingress \\
    -l app.kubernetes.io/instance={{ .Release.Name }}
  helm test {{ .Release.Name }} -n {{ .Release.Namespace }}

Strategy: STRATEGY
ROLLBACK
"""


def _fill(template: str, spec: AppSpec, **parts: str) -> str:
    for key, value in parts.items():
        template = template.replace(key, value)
    return template.replace('"C.', f'"{spec.name}.')


def _tracks_literal(spec: AppSpec, *, scaled_only: bool = False) -> str:
    names = [t or "" for t in tracks(spec) if not (scaled_only and t == "canary")]
    return " ".join(f'"{n}"' for n in names)


def _services(spec: AppSpec) -> str:
    key = track_key(spec)
    if spec.strategy == "blue-green":
        active = f"    {key}: {{{{ .Values.blueGreen.activeSlot }}}}"
        preview = f'    {key}: {{{{ ternary "green" "blue" (eq .Values.blueGreen.activeSlot "blue") }}}}'
        return _fill(SERVICE, spec, SUFFIX="", SELECT=active) + _fill(
            SERVICE, spec, SUFFIX="-preview", SELECT=preview
        )
    if spec.strategy == "canary":
        return _fill(SERVICE, spec, SUFFIX="", SELECT=f"    {key}: stable") + _fill(
            SERVICE, spec, SUFFIX="-canary", SELECT=f"    {key}: canary"
        )
    return _fill(SERVICE, spec, SUFFIX="", SELECT="").replace("\n\n", "\n")


def _templates(spec: AppSpec) -> dict[str, str]:
    skips = ["CKV_K8S_43"] + (["CKV_K8S_35"] if k8s.secret_envs(spec) else [])
    skip_lines = "\n".join(
        f"    {k}: {v!r}".replace("'", '"') for k, v in k8s_skip_annotations(*skips).items()
    )
    rollback = "Rollback:\n" + "".join(f"  {line}\n" for line in helm_rollback(spec))
    return {
        "_helpers.tpl": _fill(HELPERS, spec),
        "deployment.yaml": _fill(
            DEPLOYMENT,
            spec,
            TRACKS=_tracks_literal(spec),
            KEY=track_key(spec),
            SKIPS=skip_lines,
            TAG=TAG[str(spec.strategy)],
            REPLICAS=REPLICAS["canary" if spec.strategy == "canary" else "other"],
        ),
        "service.yaml": _services(spec),
        "hpa.yaml": _fill(HPA, spec, TRACKS=_tracks_literal(spec, scaled_only=True)),
        "pdb.yaml": _fill(PDB, spec),
        "networkpolicy.yaml": _fill(NETWORK_POLICY, spec),
        "ingress.yaml": _fill(
            INGRESS, spec, CANARY=CANARY_INGRESS if spec.strategy == "canary" else ""
        ).replace("\n\n", "\n"),
        "serviceaccount.yaml": _fill(SERVICE_ACCOUNT, spec),
        "configmap.yaml": _fill(CONFIGMAP, spec),
        "externalsecret.yaml": _fill(EXTERNAL_SECRET, spec),
        "tests/test-connection.yaml": _fill(TEST_CONNECTION, spec, TEST_IMAGE=TEST_IMAGE),
        "NOTES.txt": _fill(NOTES, spec, STRATEGY=str(spec.strategy), ROLLBACK=rollback),
    }
