"""Text scanners shared by the language detectors: env var names, ports, routes, versions.

Only names are ever extracted from environment files; values are never read into results.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from agents.inspection.backing import bindings
from agents.inspection.tree import ProjectTree

NAME = r"[A-Za-z_][A-Za-z0-9_]*"
ENV_FILES = (".env", ".env.example", ".env.sample", ".env.template", ".env.dist")
# Set by the OS or the container runtime, never configuration of the app.
OS_VARS = frozenset({"HOME", "PATH", "HOSTNAME", "PWD", "TMPDIR", "USER", "SHELL", "LANG", "TERM", "TZ"})

_LOOKS_SECRET = re.compile(r"(?i)pass|secret|token|key|credential|private|dsn|_url$|_uri$|auth")
_ENV_LINE = re.compile(rf"^\s*(?:export\s+)?({NAME})\s*=", re.MULTILINE)
_HEALTH = re.compile(
    r"""["'`](?:(?:GET|HEAD)\s+)?(/?[A-Za-z0-9_./-]*(?:healthz?|livez|readyz|ping)[A-Za-z0-9_./-]*)["'`]"""
)
_METRICS = re.compile(r"""["'`](?:GET\s+)?(/metrics)/?["'`]""")
_VERSION = re.compile(r"(\d+(?:\.\d+){0,2})")


def env_file_names(tree: ProjectTree) -> set[str]:
    """Variable names declared in .env-style files at the root (names only)."""
    names: set[str] = set()
    for rel in ENV_FILES:
        text = tree.read(rel)
        if text is not None:
            names.update(_ENV_LINE.findall(text))
    return names


def example_values(
    tree: ProjectTree, required: Iterable[str], backing_services: Iterable[str], port_env: str
) -> dict[str, str]:
    """Values for required non-secret settings from the project's example env files (never
    ``.env`` itself, which may hold real secrets): what the app needs to start as built.
    Connection settings of a backing service come from the service (Compose, CI) or the operator,
    and the port variable from the artifacts, so neither is taken."""
    examples: dict[str, str] = {}
    for rel in ENV_FILES[1:]:
        for line in (tree.read(rel) or "").splitlines():
            match = re.match(rf"^\s*(?:export\s+)?({NAME})\s*=\s*(.*)$", line)
            if match and match.group(1) not in examples:
                raw = re.sub(r"\s+#.*$", "", match.group(2)).strip().strip("'\"")
                if re.fullmatch(r"[\w.:/@+-]{1,200}", raw):
                    examples[match.group(1)] = raw
    names = set(required)
    bound = bindings(names, backing_services)
    return {
        name: examples[name]
        for name in sorted(names)
        if examples.get(name) and not _LOOKS_SECRET.search(name) and name != port_env and name not in bound
    }


def find_names(patterns: Iterable[re.Pattern[str]], texts: Iterable[str]) -> set[str]:
    """Every first group of every pattern over every text."""
    names: set[str] = set()
    for text in texts:
        for pattern in patterns:
            names.update(pattern.findall(text))
    return names


def first_port(patterns: Iterable[re.Pattern[str]], texts: Iterable[str]) -> int | None:
    """The first plausible TCP port captured by the patterns, trying patterns in order."""
    texts = list(texts)
    for pattern in patterns:
        for text in texts:
            for match in pattern.finditer(text):
                value = next((g for g in match.groups() if g), None)
                if value and 1 <= int(value) <= 65_535:
                    return int(value)
    return None


def health_path(texts: Iterable[str]) -> str | None:
    """The most specific health route in the sources: ``/healthz`` style routes first, shortest wins."""
    candidates = set()
    for text in texts:
        for raw in _HEALTH.findall(text):
            path = raw if raw.startswith("/") else "/" + raw
            if re.fullmatch(r"/[A-Za-z0-9_./-]{0,127}", path) and "." not in path.rsplit("/", 1)[-1]:
                candidates.add(path)
    if not candidates:
        return None
    return sorted(candidates, key=lambda p: ("health" not in p, len(p), p))[0]


def has_metrics(texts: Iterable[str]) -> bool:
    """Whether any source mentions a ``/metrics`` route."""
    return any(_METRICS.search(text) for text in texts)


def version_of(spec: str | None, default: str) -> str | None:
    """The language version a constraint asks for: an exact pin as written (``3.12.1``, ``20``),
    a lower bound (``>=3.10``, ``^3.12``, ``>=20``) raised to ``default`` when that satisfies it."""
    if not spec:
        return None
    match = _VERSION.search(spec)
    if match is None:
        return None
    found = match.group(1)
    is_lower_bound = spec.lstrip()[:1] in (">", "^", "~") and not spec.lstrip().startswith("~=")
    if is_lower_bound and _as_tuple(default) >= _as_tuple(found):
        return default
    return found


def _as_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def strip_comments(text: str) -> str:
    """C-family source without ``//`` and ``/* */`` comments (Go, JavaScript, TypeScript); string
    literals ("...", '...', `...`) are kept whole, so ``"http://x"`` survives. Newlines inside block
    comments stay, so line numbers and line-anchored patterns still hold."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char in "\"'`":
            end = i + 1
            while end < n and text[end] != char:
                if text[end] == "\\" and char != "`":
                    end += 1
                elif text[end] == "\n" and char != "`":
                    break  # an unterminated quote (a regex literal, an apostrophe): stop at the line end
                end += 1
            out.append(text[i : end + 1])
            i = end + 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append("\n" * text.count("\n", i, end))
            i = end
        else:
            out.append(char)
            i += 1
    return "".join(out)
