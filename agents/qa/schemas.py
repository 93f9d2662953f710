"""The in-process validators (docs/artifacts.md): kubernetes-validate, botocore's ECS shapes, HCL, JSON.

These are Python libraries, so they run in this process on the artifact text: no files, no
subprocess start-up. A library that is not installed gives ``tool-missing`` findings.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from agents.review.findings import finding, tool_crashed, tool_missing
from agents.review.locate import documents, error_line, line_in, node_line, parse_path
from agents.review.runner import Outcome
from agents.review.tools import tool_version
from contracts.payloads import Finding
from contracts.vocabulary import Severity

# --- Kubernetes ---------------------------------------------------------------------------------

_BUILTIN_GROUP = re.compile(r"^(?:[^./]*|[^/]*\.k8s\.io)$")  # "" (core), "apps", "networking.k8s.io"


def kubernetes(contents: Mapping[str, str], paths: Sequence[str], version: str) -> Outcome:
    """``kubernetes_validate.validate(doc, version, strict=True)`` per YAML document.

    A missing schema for a built-in API group (removed or misspelt API) is an error; for a custom
    resource (ExternalSecret, Argo Rollout...) there is no schema to check against, reported as INFO.
    """
    tool = "kubernetes-validate"
    try:
        import kubernetes_validate  # noqa: F401  (imported here: a missing library is a finding)
    except ImportError:
        return Outcome(tool, "missing", tool_missing(tool, paths))
    out: list[Finding] = []
    for path in paths:
        try:
            docs = list(documents(contents[path]))
        except yaml.YAMLError as exc:
            message = f"not valid YAML: {_first_line(exc)}"
            out.append(finding(path, "yaml-syntax", message, line=error_line(exc), tool=tool))
            continue
        for data, node in docs:
            if data is not None:
                out += _kubernetes_document(path, data, node, version)
    return Outcome(tool, tool_version(tool), out)


def _kubernetes_document(path: str, data: Any, node: yaml.Node, version: str) -> list[Finding]:
    from kubernetes_validate import validate
    from kubernetes_validate.utils import SchemaNotFoundError, ValidationError, VersionNotSupportedError

    tool = "kubernetes-validate"
    line = node.start_mark.line + 1
    if not isinstance(data, dict) or not data.get("apiVersion") or not data.get("kind"):
        message = "not a Kubernetes object (apiVersion and kind are required)"
        return [finding(path, tool, message, line=line, tool=tool)]
    what = f"{data['kind']}/{(data.get('metadata') or {}).get('name', '?')}"
    try:
        validate(data, version, strict=True)
    except ValidationError as exc:
        at = node_line(node, list(exc.path), unexpected=exc.message)
        return [finding(path, tool, f"{what}: {exc.message}", line=at, tool=tool)]
    except SchemaNotFoundError:
        message = f"{what}: no schema for {data['apiVersion']} {data['kind']} in Kubernetes {version}"
        if _BUILTIN_GROUP.match(str(data["apiVersion"]).rpartition("/")[0]):
            return [finding(path, tool, f"{message} (removed or unknown API)", line=line, tool=tool)]
        message += " (custom resource, not validated)"
        return [finding(path, "crd-not-validated", message, severity=Severity.INFO, line=line, tool=tool)]
    except VersionNotSupportedError:
        return [
            finding(path, tool, f"kubernetes-validate has no schemas for Kubernetes {version}", tool=tool)
        ]
    except Exception as exc:  # a library bug must not pass the file
        return tool_crashed(tool, [path], f"{type(exc).__name__}: {exc}")
    return []


# --- ECS (botocore shapes) ----------------------------------------------------------------------


@functools.cache
def _ecs_shape(operation: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("ecs").operation_model(operation).input_shape


def ecs(contents: Mapping[str, str], paths: Mapping[str, str]) -> Outcome:
    """``ParamValidator().validate(obj, shape)`` with the ECS input shape of each file
    (``paths`` maps a file to ``RegisterTaskDefinition`` or ``CreateService``). Unparsable JSON is
    left to the JSON check; every botocore error is its own finding."""
    tool = "botocore"
    try:
        from botocore.validate import ParamValidator, ValidationErrors
    except ImportError:
        return Outcome(tool, "missing", tool_missing(tool, list(paths)))
    out: list[Finding] = []
    for path, operation in paths.items():
        try:
            data = json.loads(contents[path])
        except json.JSONDecodeError:
            continue
        rule = f"ecs-{operation}"
        if not isinstance(data, dict):
            out.append(finding(path, rule, f"{operation} input must be a JSON object", line=1, tool=tool))
            continue
        report = ParamValidator().validate(data, _ecs_shape(operation))
        if not report.has_errors():
            continue
        # botocore keeps its errors as (reason, dotted path, details); one report line each.
        for reason, name, details in getattr(report, "_errors", []):
            single = ValidationErrors()
            single.report(name, reason, **details)
            steps = parse_path(name)
            if reason == "unknown field":
                steps.append(details.get("unknown_param", ""))
            line = line_in(contents[path], steps)
            out.append(finding(path, rule, single.generate_report(), line=line, tool=tool))
    return Outcome(tool, tool_version(tool), out)


# --- Terraform (python-hcl2) --------------------------------------------------------------------


def terraform(contents: Mapping[str, str], paths: Sequence[str]) -> Outcome:
    """``hcl2.loads`` per file: syntax only."""
    tool = "python-hcl2"
    try:
        import hcl2
    except ImportError:
        return Outcome(tool, "missing", tool_missing(tool, paths))
    out: list[Finding] = []
    for path in paths:
        try:
            hcl2.loads(contents[path])
        except Exception as exc:  # lark raises several unrelated classes for syntax errors
            line = error_line(exc)
            out.append(
                finding(path, "hcl-syntax", f"not valid HCL: {_first_line(exc)}", line=line, tool=tool)
            )
    return Outcome(tool, tool_version(tool), out)


# --- JSON ---------------------------------------------------------------------------------------


def json_files(contents: Mapping[str, str], paths: Sequence[str]) -> Outcome:
    """``json.loads`` per file; ``*.schema.json`` (Helm values schema) must also be a valid JSON Schema."""
    out: list[Finding] = []
    for path in paths:
        try:
            data = json.loads(contents[path])
        except json.JSONDecodeError as exc:
            out.append(
                finding(path, "json-syntax", f"not valid JSON: {exc.msg}", line=exc.lineno, tool="json")
            )
            continue
        if path.endswith(".schema.json"):
            out.extend(_json_schema(path, data, contents[path]))
    return Outcome("json", "stdlib", out)


def _json_schema(path: str, schema: Any, content: str) -> list[Finding]:
    try:
        import jsonschema
    except ImportError:
        return tool_missing("jsonschema", [path])
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        line = line_in(content, list(exc.path))
        message = f"not a valid JSON Schema: {exc.message}"
        return [finding(path, "json-schema", message, line=line, tool="jsonschema")]
    return []


def _first_line(exc: BaseException) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
