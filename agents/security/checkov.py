"""checkov for the security agent, where installed: the same runner QA uses (agents.review.checkov)."""

from __future__ import annotations

from collections.abc import Mapping

from agents.review.checkov import run_checkov as _run
from agents.review.tools import find_checkov
from contracts.payloads import Finding
from contracts.vocabulary import Severity

__all__ = ["available", "run_checkov"]


def available() -> bool:
    """True if a checkov executable is found (``$ORCHESTRA_CHECKOV``, ``.tools/checkov``, ``PATH``)."""
    return find_checkov() is not None


def run_checkov(files: Mapping[str, str]) -> list[Finding]:
    """checkov findings for ``{path: content}`` (failed checks MEDIUM unless checkov says otherwise).

    checkov is optional for security: when it is not installed the result is a single-per-file
    ``tool-missing`` finding at INFO, visible in the report but not blocking.
    """
    return _run(files, missing=Severity.INFO).findings
