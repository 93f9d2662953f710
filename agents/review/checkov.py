"""checkov over the artifacts it understands: one process for every framework at once.

checkov costs about 2 s of start-up per run, so all files of all frameworks go into a single
``checkov -f FILE... --framework dockerfile kubernetes ...`` call (``-d`` cannot be mixed with
``-f``, and ``-f`` still resolves Terraform variables across the files given). Failed checks
are MEDIUM (checkov reports no severity offline), or checkov's own severity when it has one.
Used by QA (``validate(..., with_checkov=True)``) and by security (``run_checkov``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agents.review.findings import finding, tool_crashed, tool_missing
from agents.review.routes import CHECKOV_FRAMEWORKS, plan
from agents.review.runner import Outcome, ToolFailed, failure_detail, run_tool
from agents.review.tools import find_checkov
from agents.review.workspace import workspace
from contracts.payloads import Finding
from contracts.vocabulary import Severity

TOOL = "checkov"
TIMEOUT_S = 300.0


def targets(paths: Sequence[str]) -> dict[str, list[str]]:
    """checkov framework -> the paths it should scan."""
    out: dict[str, list[str]] = {}
    for validator, files in plan(paths).items():
        framework = CHECKOV_FRAMEWORKS.get(validator)
        if framework == "terraform":
            files = [path for path in files if path.endswith(".tf")]
        if framework and files:
            out.setdefault(framework, []).extend(files)
    return out


def checkov(
    root: Path, by_framework: Mapping[str, Sequence[str]], *, missing: Severity = Severity.HIGH
) -> Outcome:
    """Run checkov once in ``root`` over ``{framework: [relative paths]}``."""
    paths = sorted({path for files in by_framework.values() for path in files})
    if not paths:
        return Outcome(TOOL, "not-run", [])
    executable = find_checkov()
    if executable is None:
        return Outcome(TOOL, "missing", tool_missing(TOOL, paths, severity=missing))
    argv = [
        executable,
        "--skip-download",
        "--compact",
        "--quiet",
        "-o",
        "json",
        "--framework",
        *sorted(by_framework),
    ]
    for path in paths:
        argv += ["-f", f"./{path}"]
    try:
        reports = _run(argv, root)
    except ToolFailed as exc:
        return Outcome(TOOL, "unknown", tool_crashed(TOOL, paths, str(exc)))
    reports = reports if isinstance(reports, list) else [reports]
    version = next((r.get("summary", {}).get("checkov_version") for r in reports if "summary" in r), None)
    findings = [_failed(root, paths, check) for report in reports for check in _failed_checks(report)]
    return Outcome(TOOL, version or str(reports[0].get("checkov_version", "unknown")), findings)


def _run(argv: list[str], root: Path) -> Any:
    done = run_tool(argv, cwd=root, timeout=TIMEOUT_S)
    if done.returncode not in (0, 1):  # 1 = some check failed
        raise ToolFailed(failure_detail(done))
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise ToolFailed(failure_detail(done)) from exc


def _failed_checks(report: dict[str, Any]) -> list[dict[str, Any]]:
    results = report.get("results")
    return list(results.get("failed_checks", [])) if isinstance(results, dict) else []


def _artifact(root: Path, known: Sequence[str], check: dict[str, Any]) -> str:
    """The artifact path of a check: checkov's ``file_path`` is relative to the file's own directory
    for some frameworks and ``file_abs_path`` is wrong for others, so match against the paths given."""
    absolute = check.get("file_abs_path")
    if absolute:
        relative = Path(os.path.relpath(Path(root, absolute).resolve(), root)).as_posix()
        if relative in known:
            return relative
    tail = str(check.get("file_path") or check.get("repo_file_path") or "").lstrip("/")
    matches = [path for path in known if path == tail or path.endswith(f"/{tail}")]
    return matches[0] if len(matches) == 1 else tail or "."


def _failed(root: Path, known: Sequence[str], check: dict[str, Any]) -> Finding:
    relative = _artifact(root, known, check)
    severity = Severity.MEDIUM
    if str(check.get("severity")).lower() in {s.value for s in Severity}:
        severity = Severity(str(check["severity"]).lower())
    line_range = check.get("file_line_range") or [None]
    resource = f" ({check['resource']})" if check.get("resource") else ""
    return finding(
        relative,
        check.get("check_id", "checkov"),
        f"{check.get('check_name', 'check failed')}{resource}",
        severity=severity,
        line=line_range[0],
        tool=TOOL,
        fix=check.get("guideline") or "fix it, or skip it in the artifact with a named reason",
    )


def run_checkov(files: Mapping[str, str], *, missing: Severity = Severity.HIGH) -> Outcome:
    """checkov over ``{path: content}`` written to a private temp dir (for callers without one)."""
    with workspace(files) as space:
        outcome = checkov(space.root, targets(space.paths), missing=missing)
        outcome.findings[:0] = space.refused
        return outcome
