"""The command-line validators (docs/artifacts.md): hadolint, check-jsonschema, cfn-lint, yamllint.

Each runs once over its whole batch of files, in the workspace root, and its machine-readable
output (JSON, or yamllint's parsable lines) becomes findings. A missing executable gives
``tool-missing`` findings, unreadable output ``tool-crashed`` ones: a file never passes unchecked.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from agents.review.findings import finding, level, tool_crashed, tool_missing
from agents.review.locate import error_line, line_in, parse_path
from agents.review.runner import Outcome, ToolFailed, failure_detail, run_tool
from agents.review.tools import find_tool, tool_version
from contracts.payloads import Finding

YAMLLINT_CONFIG = Path(__file__).with_name("yamllint.yaml")

Parser = Callable[[subprocess.CompletedProcess[str]], list[Finding]]


def _relative(name: str) -> str:
    """A tool's file name back to the artifact path (tools are given ``./path``)."""
    return Path(os.path.normpath(name)).as_posix()


def _batch(tool: str, argv: Sequence[str], paths: Sequence[str], root: Path, parse: Parser) -> Outcome:
    """Run ``tool argv ./path...`` once in ``root`` and parse what it printed."""
    executable = find_tool(tool)
    if executable is None:
        return Outcome(tool, "missing", tool_missing(tool, paths))
    try:
        done = run_tool([executable, *argv, *(f"./{path}" for path in paths)], cwd=root)
        findings = parse(done)
    except ToolFailed as exc:
        return Outcome(tool, tool_version(tool), tool_crashed(tool, paths, str(exc)))
    return Outcome(tool, tool_version(tool), findings)


def _json(done: subprocess.CompletedProcess[str], ok_codes: Callable[[int], bool]) -> Any:
    if not ok_codes(done.returncode):
        raise ToolFailed(failure_detail(done))
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise ToolFailed(failure_detail(done)) from exc


# --- hadolint -----------------------------------------------------------------------------------


def hadolint(root: Path, paths: Sequence[str]) -> Outcome:
    """``hadolint --format json --failure-threshold warning``: error/warning fail, info/style are INFO."""

    def parse(done: subprocess.CompletedProcess[str]) -> list[Finding]:
        items = _json(done, lambda code: code in (0, 1))
        return [
            finding(
                _relative(item["file"]),
                item["code"],
                item["message"],
                severity=level(item["level"]),
                line=item.get("line"),
                tool="hadolint",
                fix=_hadolint_wiki(item["code"]),
            )
            for item in items
        ]

    return _batch(
        "hadolint", ["--no-color", "--format", "json", "--failure-threshold", "warning"], paths, root, parse
    )


def _hadolint_wiki(code: str) -> str:
    if code.startswith("DL"):
        return f"see https://github.com/hadolint/hadolint/wiki/{code}"
    if code.startswith("SC"):
        return f"see https://www.shellcheck.net/wiki/{code}"
    return ""


# --- check-jsonschema ---------------------------------------------------------------------------

SCHEMAS: dict[str, list[str]] = {
    "vendor.compose-spec": [],
    "vendor.github-workflows": [],
    # GitLab's `!reference` tags need the gitlab-ci data transform.
    "vendor.gitlab-ci": ["--data-transform", "gitlab-ci"],
}


def check_jsonschema(root: Path, schema: str, paths: Sequence[str], contents: Mapping[str, str]) -> Outcome:
    """``check-jsonschema --builtin-schema <schema> -o json``; the rule is the schema (``compose-spec``)."""
    rule = schema.removeprefix("vendor.")

    def parse(done: subprocess.CompletedProcess[str]) -> list[Finding]:
        report = _json(done, lambda code: code in (0, 1))
        out: list[Finding] = []
        for error in report.get("errors", []):
            path = _relative(error["filename"])
            message = error["message"]
            line = line_in(contents.get(path, ""), parse_path(error.get("path", "$")), unexpected=message)
            where = error.get("path", "$")
            out.append(finding(path, rule, f"{where}: {message}", line=line, tool="check-jsonschema"))
        for error in report.get("parse_errors", []):
            path = _relative(error["filename"])
            detail, line = _yaml_problem(contents.get(path, ""))
            out.append(
                finding(path, rule, f"{error['message']}: {detail}", line=line, tool="check-jsonschema")
            )
        return out

    argv = ["--builtin-schema", schema, "-o", "json", *SCHEMAS.get(schema, [])]
    return _batch("check-jsonschema", argv, paths, root, parse)


def _yaml_problem(content: str) -> tuple[str, int | None]:
    """Why a YAML text does not parse, and where."""
    try:
        list(yaml.safe_load_all(content))
    except yaml.YAMLError as exc:
        return str(getattr(exc, "problem", None) or exc).strip(), error_line(exc)
    return "not a YAML/JSON document", None


# --- cfn-lint -----------------------------------------------------------------------------------

CFN_ERROR, CFN_WARNING, CFN_INFO = 2, 4, 8


def cfn_lint(root: Path, paths: Sequence[str]) -> Outcome:
    """``cfn-lint --format json``: exit bits 2 (error) and 4 (warning) fail, 8 (informational) is INFO."""

    def parse(done: subprocess.CompletedProcess[str]) -> list[Finding]:
        known = CFN_ERROR | CFN_WARNING | CFN_INFO
        items = _json(done, lambda code: code & ~known == 0)
        return [
            finding(
                _relative(item["Filename"]),
                item["Rule"]["Id"],
                item["Message"],
                severity=level(item["Level"]),
                line=item.get("Location", {}).get("Start", {}).get("LineNumber"),
                tool="cfn-lint",
                fix=item["Rule"].get("Source", ""),
            )
            for item in items
        ]

    return _batch("cfn-lint", ["--format", "json"], paths, root, parse)


# --- yamllint -----------------------------------------------------------------------------------

_YAMLLINT_LINE = re.compile(
    r"^(?P<file>.+?):(?P<line>\d+):(?P<column>\d+): \[(?P<level>error|warning)\] (?P<message>.*?)"
    r"(?: \((?P<rule>[\w-]+)\))?$"
)


def yamllint(root: Path, paths: Sequence[str]) -> Outcome:
    """``yamllint -f parsable -c agents/qa/yamllint.yaml``: errors HIGH, warnings MEDIUM (both fail)."""

    def parse(done: subprocess.CompletedProcess[str]) -> list[Finding]:
        matches = [m for m in map(_YAMLLINT_LINE.match, done.stdout.splitlines()) if m]
        if done.returncode not in (0, 1, 2) or (done.returncode and not matches):
            raise ToolFailed(failure_detail(done))
        return [
            finding(
                _relative(m["file"]),
                m["rule"] or "yamllint",
                m["message"],
                severity=level(m["level"]),
                line=int(m["line"]),
                tool="yamllint",
            )
            for m in matches
        ]

    return _batch("yamllint", ["-f", "parsable", "-c", str(YAMLLINT_CONFIG)], paths, root, parse)
