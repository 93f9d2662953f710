"""Prometheus scrape config and alert rules, a Grafana dashboard with its provisioning, and a
Compose file to run both next to the app.

Metric names follow the common HTTP instrumentation convention (``http_requests_total`` with a
``status`` label, ``http_request_duration_seconds`` histogram) that prometheus-client based
instrumentators, prom-client middlewares and client_golang handlers expose; MONITORING.md says so.
"""

from __future__ import annotations

from typing import Any

from agents.devops.render.common import comment, dump_json, dump_yaml, header
from agents.devops.spec import AppSpec

PROMETHEUS_IMAGE = "prom/prometheus:v3.0.1"
GRAFANA_IMAGE = "grafana/grafana:11.4.0"
DATASOURCE_UID = "prometheus"


def alert_prefix(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


def alert_rules(spec: AppSpec) -> list[dict[str, Any]]:
    """Target down, error ratio, p95 latency and restarts; each with ``for``, severity, annotations."""
    job, prefix = spec.name, alert_prefix(spec.name)
    requests = f'http_requests_total{{job="{job}"}}'
    errors = f'http_requests_total{{job="{job}",status=~"5.."}}'
    buckets = f'http_request_duration_seconds_bucket{{job="{job}"}}'
    restarts = f'kube_pod_container_status_restarts_total{{namespace="{spec.ns}",container="app"}}'
    runbook = "docs/TROUBLESHOOTING.md"
    return [
        {
            "alert": f"{prefix}TargetDown",
            "expr": f'up{{job="{job}"}} == 0',
            "for": "2m",
            "labels": {"severity": "critical", "service": job},
            "annotations": {
                "summary": f"{job}: a scrape target is down",
                "description": "{{ $labels.instance }} has not answered /metrics for 2 minutes.",
                "runbook": f"{runbook}#target-down",
            },
        },
        {
            "alert": f"{prefix}HighErrorRate",
            "expr": f"sum(rate({errors}[5m]))\n  / clamp_min(sum(rate({requests}[5m])), 1e-9)\n> 0.05",
            "for": "5m",
            "labels": {"severity": "critical", "service": job},
            "annotations": {
                "summary": f"{job}: more than 5% of requests fail",
                "description": "5xx ratio is {{ $value | humanizePercentage }} over 5 minutes.",
                "runbook": f"{runbook}#high-error-rate",
            },
        },
        {
            "alert": f"{prefix}HighLatencyP95",
            "expr": f"histogram_quantile(0.95, sum by (le) (rate({buckets}[5m])))\n> 0.5",
            "for": "10m",
            "labels": {"severity": "warning", "service": job},
            "annotations": {
                "summary": f"{job}: p95 latency above 500 ms",
                "description": "p95 request latency is {{ $value | humanizeDuration }}.",
                "runbook": f"{runbook}#high-latency",
            },
        },
        {
            "alert": f"{prefix}FrequentRestarts",
            "expr": f"increase({restarts}[15m]) > 3",
            "for": "5m",
            "labels": {"severity": "warning", "service": job},
            "annotations": {
                "summary": f"{job}: containers keep restarting",
                "description": "{{ $labels.pod }} restarted {{ $value }} times in 15 minutes.",
                "runbook": f"{runbook}#restarts",
            },
        },
    ]


def prometheus(spec: AppSpec) -> dict[str, Any]:
    facts = spec.facts
    annotation = "__meta_kubernetes_pod_annotation_prometheus_io_"
    return {
        "global": {
            "scrape_interval": "15s",
            "evaluation_interval": "15s",
            "external_labels": {"service": spec.name},
        },
        "rule_files": ["alert-rules.yml"],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]},
        "scrape_configs": [
            {
                # Local: the Compose service "app" (docker compose with monitoring/docker-compose.yml).
                "job_name": spec.name,
                "metrics_path": facts.metrics_path,
                "static_configs": [{"targets": [f"app:{facts.port}"], "labels": {"environment": "local"}}],
            },
            {
                # Kubernetes: pods annotated prometheus.io/scrape=true in the service's namespace.
                "job_name": f"{spec.name}-kubernetes",
                "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [spec.ns]}}],
                "relabel_configs": [
                    {"source_labels": [f"{annotation}scrape"], "action": "keep", "regex": "true"},
                    {
                        "source_labels": [f"{annotation}path"],
                        "action": "replace",
                        "target_label": "__metrics_path__",
                        "regex": "(.+)",
                    },
                    {
                        "source_labels": ["__address__", f"{annotation}port"],
                        "action": "replace",
                        "regex": "([^:]+)(?::\\d+)?;(\\d+)",
                        "replacement": "$1:$2",
                        "target_label": "__address__",
                    },
                    {"target_label": "job", "replacement": spec.name},
                    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
                    {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                ],
            },
        ],
    }


def _panel(
    panel_id: int, title: str, expr: str, unit: str, x: int, y: int, kind: str = "timeseries"
) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": kind,
        "title": title,
        "datasource": {"type": "prometheus", "uid": DATASOURCE_UID},
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [
            {"refId": "A", "expr": expr, "datasource": {"type": "prometheus", "uid": DATASOURCE_UID}}
        ],
    }


def dashboard(spec: AppSpec) -> dict[str, Any]:
    """A Grafana dashboard: traffic, errors, latency, availability, CPU and memory."""
    job = spec.name
    pods = f'namespace="{spec.ns}",container="app"'
    panels = [
        _panel(1, "Requests per second", f'sum(rate(http_requests_total{{job="{job}"}}[5m]))', "reqps", 0, 0),
        _panel(
            2,
            "5xx ratio",
            f'sum(rate(http_requests_total{{job="{job}",status=~"5.."}}[5m])) / '
            f'clamp_min(sum(rate(http_requests_total{{job="{job}"}}[5m])), 1e-9)',
            "percentunit",
            12,
            0,
        ),
        _panel(
            3,
            "Latency p50 / p95 / p99",
            "histogram_quantile(0.95, sum by (le) "
            f'(rate(http_request_duration_seconds_bucket{{job="{job}"}}[5m])))',
            "s",
            0,
            8,
        ),
        _panel(4, "Targets up", f'sum(up{{job="{job}"}})', "short", 12, 8, kind="stat"),
        _panel(
            5, "CPU (cores)", f"sum(rate(container_cpu_usage_seconds_total{{{pods}}}[5m]))", "short", 0, 16
        ),
        _panel(
            6, "Memory (working set)", f"sum(container_memory_working_set_bytes{{{pods}}})", "bytes", 12, 16
        ),
    ]
    for quantile, ref in ((0.5, "B"), (0.99, "C")):
        panels[2]["targets"].append(
            {
                "refId": ref,
                "expr": panels[2]["targets"][0]["expr"].replace("0.95", str(quantile)),
                "datasource": {"type": "prometheus", "uid": DATASOURCE_UID},
            }
        )
    return {
        "uid": spec.name[:40],
        "title": f"{spec.name} service",
        "tags": [spec.name, spec.facts.language, spec.facts.framework],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": panels,
    }


def render(spec: AppSpec) -> dict[str, str]:
    """monitoring/: prometheus.yml, alert-rules.yml, grafana dashboard + provisioning, compose."""
    head = header(spec, "Monitoring")
    datasource = {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "type": "prometheus",
                "uid": DATASOURCE_UID,
                "access": "proxy",
                "url": "http://prometheus:9090",
                "isDefault": True,
                "editable": False,
            }
        ],
    }
    providers = {
        "apiVersion": 1,
        "providers": [
            {
                "name": spec.name,
                "folder": spec.name,
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "options": {"path": "/var/lib/grafana/dashboards"},
            }
        ],
    }
    compose = {
        "services": {
            "prometheus": {
                "image": PROMETHEUS_IMAGE,
                "command": [
                    "--config.file=/etc/prometheus/prometheus.yml",
                    "--storage.tsdb.retention.time=7d",
                ],
                "volumes": [
                    "./monitoring/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
                    "./monitoring/alert-rules.yml:/etc/prometheus/alert-rules.yml:ro",
                ],
                "ports": ["127.0.0.1:9090:9090"],
                "read_only": True,
                "tmpfs": ["/prometheus"],
                "healthcheck": {
                    "test": ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9090/-/ready"],
                    "interval": "10s",
                    "timeout": "5s",
                    "retries": 5,
                },
            },
            "grafana": {
                "image": GRAFANA_IMAGE,
                "environment": {"GF_AUTH_ANONYMOUS_ENABLED": "false", "GF_USERS_ALLOW_SIGN_UP": "false"},
                "volumes": [
                    "./monitoring/grafana/datasource.yml:/etc/grafana/provisioning/datasources/datasource.yml:ro",
                    "./monitoring/grafana/dashboards.yml:/etc/grafana/provisioning/dashboards/dashboards.yml:ro",
                    "./monitoring/grafana/dashboard.json:/var/lib/grafana/dashboards/dashboard.json:ro",
                ],
                "ports": ["127.0.0.1:3001:3000"],
                "depends_on": {"prometheus": {"condition": "service_healthy"}},
                "healthcheck": {
                    "test": ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:3000/api/health"],
                    "interval": "10s",
                    "timeout": "5s",
                    "retries": 5,
                },
            },
        }
    }
    usage = (
        "Run next to the development stack (paths are relative to the project directory):\n"
        "  docker compose -f docker-compose.yml -f monitoring/docker-compose.yml up --build\n"
        "Prometheus: http://127.0.0.1:9090  Grafana: http://127.0.0.1:3001"
    )
    return {
        "monitoring/prometheus.yml": dump_yaml(prometheus(spec), head=head),
        "monitoring/alert-rules.yml": dump_yaml(
            {"groups": [{"name": spec.name, "rules": alert_rules(spec)}]}, head=head
        ),
        "monitoring/grafana/dashboard.json": dump_json(dashboard(spec)),
        "monitoring/grafana/datasource.yml": dump_yaml(datasource, head=head),
        "monitoring/grafana/dashboards.yml": dump_yaml(providers, head=head),
        "monitoring/docker-compose.yml": dump_yaml(compose, head=head + comment(usage)),
    }
