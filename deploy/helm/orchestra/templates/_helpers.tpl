{{/* Name of every object of this release: <release>-<chart> unless the release already says it. */}}
{{- define "orchestra.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the pods of one agent: pass (dict "root" $ "agent" NAME). */}}
{{- define "orchestra.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .agent }}
{{- end -}}

{{/* Every label of one agent's objects: pass (dict "root" $ "agent" NAME). */}}
{{- define "orchestra.labels" -}}
{{ include "orchestra.selectorLabels" . }}
app.kubernetes.io/part-of: orchestra
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{/* Labels shared by every orchestra agent pod of this release (network policies select them). */}}
{{- define "orchestra.agentPodLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "orchestra.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "orchestra.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "orchestra.natsUrl" -}}
{{- if .Values.natsUrl -}}
{{- .Values.natsUrl -}}
{{- else -}}
{{- printf "nats://%s-nats.%s.svc:4222" .Release.Name .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{- define "orchestra.monitoringEndpoint" -}}
{{- if .Values.keda.monitoringEndpoint -}}
{{- .Values.keda.monitoringEndpoint -}}
{{- else -}}
{{- printf "%s-nats-headless.%s.svc:%v" .Release.Name .Release.Namespace .Values.nats.config.monitor.port -}}
{{- end -}}
{{- end -}}

{{/* The pod spec of one agent: pass (dict "root" $ "agent" NAME "slim" BOOL "resources" MAP). */}}
{{- define "orchestra.podSpec" -}}
{{- $root := .root -}}
{{- $values := $root.Values -}}
serviceAccountName: {{ include "orchestra.serviceAccountName" $root }}
automountServiceAccountToken: false
terminationGracePeriodSeconds: {{ $values.terminationGracePeriodSeconds }}
securityContext:
  {{- toYaml $values.podSecurityContext | nindent 2 }}
{{- with $values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "orchestra.selectorLabels" . | nindent 8 }}
containers:
  - name: {{ .agent }}
    image: {{ printf "%s:%s" $values.image.repository (ternary $values.image.slimTag $values.image.tag .slim) | quote }}
    imagePullPolicy: {{ $values.image.pullPolicy }}
    args: ["agent", {{ .agent | quote }}]
    ports:
      - name: http
        containerPort: {{ $values.httpPort }}
        protocol: TCP
    env:
      - name: NATS_URL
        value: {{ include "orchestra.natsUrl" $root | quote }}
      - name: ORCHESTRA_USER
        value: {{ .agent | quote }}
      - name: ORCHESTRA_PASSWORD
        valueFrom:
          secretKeyRef:
            name: {{ $values.auth.existingSecret }}
            key: {{ .agent }}
      - name: ORCHESTRA_ID_KEY
        valueFrom:
          secretKeyRef:
            name: {{ $values.auth.existingSecret }}
            key: id-key
      - name: ORCHESTRA_REPLICAS
        value: {{ $values.streamReplicas | quote }}
      - name: ORCHESTRA_HTTP_PORT
        value: {{ $values.httpPort | quote }}
      - name: ORCHESTRA_WORKSPACE
        value: /workspace
      {{- if eq .agent "knowledge" }}
      - name: ORCHESTRA_KNOWLEDGE_DB
        value: /data/knowledge.sqlite3
      {{- end }}
    resources:
      {{- toYaml .resources | nindent 6 }}
    securityContext:
      {{- toYaml $values.containerSecurityContext | nindent 6 }}
    startupProbe:
      httpGet:
        path: /healthz
        port: http
      periodSeconds: {{ $values.probes.startup.periodSeconds }}
      timeoutSeconds: {{ $values.probes.startup.timeoutSeconds }}
      failureThreshold: {{ $values.probes.startup.failureThreshold }}
    livenessProbe:
      httpGet:
        path: /healthz
        port: http
      periodSeconds: {{ $values.probes.liveness.periodSeconds }}
      timeoutSeconds: {{ $values.probes.liveness.timeoutSeconds }}
      failureThreshold: {{ $values.probes.liveness.failureThreshold }}
    readinessProbe:
      httpGet:
        path: /readyz
        port: http
      periodSeconds: {{ $values.probes.readiness.periodSeconds }}
      timeoutSeconds: {{ $values.probes.readiness.timeoutSeconds }}
      failureThreshold: {{ $values.probes.readiness.failureThreshold }}
    volumeMounts:
      - name: tmp
        mountPath: /tmp
      - name: workspace
        mountPath: /workspace
      {{- if eq .agent "knowledge" }}
      - name: data
        mountPath: /data
      {{- end }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: {{ $values.tmpSizeLimit }}
  - name: workspace
    {{- if $values.workspace.existingClaim }}
    persistentVolumeClaim:
      claimName: {{ $values.workspace.existingClaim }}
    {{- else }}
    emptyDir:
      sizeLimit: {{ $values.workspace.sizeLimit }}
    {{- end }}
{{- end -}}
