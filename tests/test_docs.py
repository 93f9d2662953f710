"""The project's documentation stays true and self-contained.

- No tracked file points at documents that were never part of this repository (private design
  notes and a guide once used to start the project): the docs/ folder says what they said.
- Every relative link in the Markdown files (README.md, docs/, deploy/, examples/) reaches an
  existing file, and a ``#section`` of a Markdown file exists in it.
- The event tables of docs/events.md are generated from the contracts (``ROUTES``, the payload
  models); after changing the contracts, rewrite them with ``python -m tests.test_docs``.
- docs/ names every deployment state, target, security rule and skipped validator rule.

Pure file checks: no server, no network.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest
from pydantic import BaseModel

from contracts import payloads
from contracts.asyncapi import CLIENT_ROUTE
from contracts.payloads import PAYLOADS, EventType
from contracts.subjects import ROUTES, Route, durable_name
from contracts.vocabulary import DeploymentState, Target

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EVENTS_DOC = DOCS / "events.md"

# Written with a character class where a plain spelling would match this file itself.
PRIVATE_REFERENCES = re.compile(
    r"\b(?:DESIGN|ARTIFACTS|STYLE)\.md\b"
    r"|\bDESIG[N]:"
    r"|DEVOPS_AGENT_GUID[E]"
    r"|/work/share[d]"
    r"|knowledge-manager\.js"
    r"|(?i:\bseed(?:'s|\s+(?:guide|tasks?|flows?))\b)"
)
_SKIP_DIRS = ("node_modules/", ".venv/", ".tools/")


def project_files() -> list[str]:
    """Tracked files plus new ones not ignored (so a file is checked before its first commit)."""
    try:
        done = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    names = sorted({n for n in done.stdout.decode().split("\0") if n})
    return [n for n in names if not any(part in n for part in _SKIP_DIRS) and (ROOT / n).is_file()]


def _text(rel: str) -> str | None:
    data = (ROOT / rel).read_bytes()
    if b"\0" in data[:8192]:
        return None  # binary
    return data.decode("utf-8", errors="replace")


def test_no_reference_to_documents_outside_the_repository() -> None:
    hits = []
    for rel in project_files():
        text = _text(rel)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if PRIVATE_REFERENCES.search(line):
                hits.append(f"{rel}:{number}: {line.strip()[:120]}")
    assert not hits, "point at docs/ instead (or just say it):\n" + "\n".join(hits)


def test_the_reference_check_catches_what_it_should() -> None:
    caught = [
        "see DESIGN" + ".md",
        "(ARTIFACTS" + ".md: rules)",
        "# DESIGN" + ': "owned by DevOps"',
        "the seed" + "'s knowledge types",
        "knowledge-manager" + ".js store",
    ]
    fine = [
        "another hash seed agrees",
        "the seeds that fuzzing mutates",
        "DESIGN_DOC = 1",
        "see docs/artifacts.md",
    ]
    assert all(PRIVATE_REFERENCES.search(text) for text in caught)
    assert not any(PRIVATE_REFERENCES.search(text) for text in fine)


# --- links ------------------------------------------------------------------------------------------

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def markdown_files() -> list[str]:
    return [rel for rel in project_files() if rel.endswith(".md") and not rel.startswith("tests/")]


def links(text: str) -> list[str]:
    """Link targets of a Markdown text, code blocks and code spans left out."""
    return _LINK.findall(_CODE_SPAN.sub("", _FENCE.sub("", text)))


def anchors(text: str) -> set[str]:
    """The ``#fragment`` of every heading, as GitHub makes them (repeats get ``-1``, ``-2``...)."""
    seen: dict[str, int] = {}
    out = set()
    for heading in _HEADING.findall(_FENCE.sub("", text)):
        plain = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
        slug = re.sub(r"[^\w\- ]", "", plain.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return out


def broken_links(rel: str) -> list[str]:
    source = ROOT / rel
    text = source.read_text(encoding="utf-8")
    broken = []
    for target in links(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            continue  # https:, mailto: ...
        path, _, fragment = target.partition("#")
        dest = (source.parent / path).resolve() if path else source
        if not dest.exists():
            broken.append(f"{rel}: {target} (no such file)")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest.read_text(encoding="utf-8")):
            broken.append(f"{rel}: {target} (no such section)")
    return broken


def test_markdown_links_reach_existing_files_and_sections() -> None:
    files = markdown_files()
    assert "README.md" in files and "docs/architecture.md" in files
    broken = [b for rel in files for b in broken_links(rel)]
    assert not broken, "\n".join(broken)


def test_the_link_check_sees_a_broken_link(tmp_path: Path) -> None:
    text = "[ok](#a-b) [gone](missing.md) `[code](ignored.md)`\n\n## A b\n"
    assert links(text) == ["#a-b", "missing.md"]
    assert anchors(text) == {"a-b"}
    assert anchors("## `orchestra report`: figures\n## Durability: what survives\n") == {
        "orchestra-report-figures",
        "durability-what-survives",
    }


def test_readme_links_the_docs() -> None:
    readme = links((ROOT / "README.md").read_text(encoding="utf-8"))
    for doc in sorted(DOCS.glob("*.md")):
        assert f"docs/{doc.name}" in readme, f"README.md does not link docs/{doc.name}"


# --- generated tables of docs/events.md -------------------------------------------------------------


def _agents(route_of: dict[str, Route], event_type: EventType, side: str) -> list[str]:
    return [name for name, route in route_of.items() if event_type in getattr(route, side)]


def routes_table() -> str:
    """Every event type: its payload model, who publishes it, who consumes it (and through which
    durable consumer), from ``ROUTES`` and the client's route of the AsyncAPI document."""
    everyone = {**ROUTES, CLIENT_ROUTE.agent: CLIENT_ROUTE}
    rows = ["| event type | payload | published by | consumed by (durable consumer) |", "|---|---|---|---|"]
    for event_type in EventType:
        consumers = []
        for name in _agents(everyone, event_type, "consumes"):
            route = everyone[name]
            if route is CLIENT_ROUTE:
                consumers.append("client (ordered consumer `watch-…`)")
            else:
                durable = name if route.consumes_everything else durable_name(name, event_type)
                consumers.append(f"{name} (`{durable}`)")
        publishers = _agents(everyone, event_type, "publishes")
        rows.append(
            f"| `{event_type.value}` | `{PAYLOADS[event_type].__name__}` | "
            f"{', '.join(publishers) or '—'} | {', '.join(consumers) or '—'} |"
        )
    return "\n".join(rows) + "\n"


def contract_models() -> list[type[BaseModel]]:
    """The payload models and the models inside them, in the order contracts/payloads.py defines them."""
    return [
        value
        for value in vars(payloads).values()
        if isinstance(value, type)
        and issubclass(value, payloads.Model)
        and value is not payloads.Model
        and value.__module__ == payloads.__name__
    ]


def _mentions(annotation: object, model: type[BaseModel]) -> bool:
    """True when a field's type is ``model`` or contains it (``list[Finding] | None``)."""
    return annotation is model or any(_mentions(arg, model) for arg in get_args(annotation))


def payloads_table() -> str:
    """Each contract model: where it travels (the event types whose payload it is, or the fields
    that hold it), its required fields, then its optional ones."""
    models = contract_models()
    rows = ["| model | used in | required fields | optional fields |", "|---|---|---|---|"]
    for model in models:
        used = [f"`{t.value}` payload" for t, payload in PAYLOADS.items() if payload is model]
        used += [
            f"`{other.__name__}.{name}`"
            for other in models
            for name, info in other.model_fields.items()
            if _mentions(info.annotation, model)
        ]
        required = [f"`{name}`" for name, info in model.model_fields.items() if info.is_required()]
        optional = [f"`{name}`" for name, info in model.model_fields.items() if not info.is_required()]
        rows.append(
            f"| `{model.__name__}` | {', '.join(used)} | {', '.join(required) or '—'} | "
            f"{', '.join(optional) or '—'} |"
        )
    return "\n".join(rows) + "\n"


GENERATED = {"routes": routes_table, "payloads": payloads_table}


def _markers(name: str) -> tuple[str, str]:
    return (
        f"<!-- BEGIN {name}: generated by `python -m tests.test_docs`, do not edit by hand -->\n",
        f"<!-- END {name} -->\n",
    )


def splice(text: str, name: str, body: str) -> str:
    """``text`` with the block between the ``name`` markers replaced by ``body``."""
    begin, end = _markers(name)
    head, found, rest = text.partition(begin)
    _, found_end, tail = rest.partition(end)
    if not found or not found_end:
        raise ValueError(f"{EVENTS_DOC.name} lacks the markers of the {name} table")
    return head + begin + body + end + tail


def rendered_events_doc() -> str:
    text = EVENTS_DOC.read_text(encoding="utf-8")
    for name, render in GENERATED.items():
        text = splice(text, name, render())
    return text


def test_event_tables_match_the_contracts() -> None:
    assert EVENTS_DOC.read_text(encoding="utf-8") == rendered_events_doc(), (
        "docs/events.md is out of date: run `python -m tests.test_docs`"
    )


def test_every_event_type_is_documented() -> None:
    text = EVENTS_DOC.read_text(encoding="utf-8")
    assert all(f"`{t.value}`" in text for t in EventType)
    assert all(f"`{model.__name__}`" in text for model in contract_models())


# --- docs/ names what the code has ------------------------------------------------------------------


def _doc(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def test_architecture_names_every_deployment_state() -> None:
    text = _doc("architecture.md")
    assert [s.value for s in DeploymentState if f"`{s.value}`" not in text] == []


def test_artifacts_doc_names_every_target_rule_and_skip() -> None:
    from agents.devops.skips import CHECKOV_SKIPS, HADOLINT_IGNORES

    text = _doc("artifacts.md")
    assert [t.value for t in Target if f"`{t.value}`" not in text] == []
    rules = set()
    for module in [*sorted((ROOT / "agents/security").glob("*.py")), ROOT / "contracts/redaction.py"]:
        rules |= set(re.findall(r"\bSEC-[A-Z0-9]+-\d{3}\b", module.read_text(encoding="utf-8")))
    assert len(rules) >= 40  # every rule set was read
    assert sorted(r for r in rules if r not in text) == []
    skipped = [check for checks in CHECKOV_SKIPS.values() for check in checks] + list(HADOLINT_IGNORES)
    assert sorted(s for s in skipped if s not in text) == []


if __name__ == "__main__":
    EVENTS_DOC.write_text(rendered_events_doc(), encoding="utf-8")
    print(f"wrote {EVENTS_DOC.relative_to(ROOT)}", file=sys.stderr)
