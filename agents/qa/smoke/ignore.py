""".dockerignore rules as Docker applies them to the build context.

Each line is a pattern (Go ``filepath.Match`` syntax plus ``**`` for any number of directories),
relative to the context root; ``!`` re-includes. The last pattern that matches a path decides,
and a pattern that matches a parent directory matches everything below it.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    exclude: bool


class DockerIgnore:
    """The rules of one ``.dockerignore`` file."""

    def __init__(self, text: str = "") -> None:
        self.rules: list[_Rule] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exclude = not line.startswith("!")
            pattern = line if exclude else line[1:].strip()
            pattern = posixpath.normpath(pattern.lstrip("/")) if pattern.strip("/") else ""
            if pattern in ("", "."):
                continue
            self.rules.append(_Rule(re.compile(_translate(pattern)), exclude))

    def excluded(self, path: str) -> bool:
        """True when the context path ``path`` (POSIX, relative) is left out of the context."""
        parents = _prefixes(path)
        verdict = False
        for rule in self.rules:
            if any(rule.regex.fullmatch(p) for p in parents):
                verdict = rule.exclude
        return verdict

    @property
    def has_exceptions(self) -> bool:
        """True when some ``!`` rule may re-include a path below an excluded directory."""
        return any(not rule.exclude for rule in self.rules)


def _prefixes(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _translate(pattern: str) -> str:
    """A Go filepath.Match pattern (with ``**``) as a regular expression."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**", index):
            index += 2
            if pattern.startswith("/", index):
                out.append("(?:.*/)?")  # "**/" matches zero or more whole directories
                index += 1
            else:
                out.append(".*")
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", index + 1)
            if end < 0:
                out.append(re.escape(char))
            else:
                body = pattern[index + 1 : end]
                if body.startswith(("!", "^")):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                index = end
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            out.append(re.escape(pattern[index]))
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)
