"""Just enough Jenkinsfile (declarative Groovy) reading for structural checks: blocks and assignments.

No Groovy parser exists offline, so this reads the declarative shape only: comments are blanked
(keeping offsets, so lines stay right), braces are matched outside string literals, and a named
block's body is returned with its position. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_QUOTES = ("'''", '"""', "'", '"')


@dataclass(frozen=True)
class Block:
    """The body of ``name { ... }`` (without the braces); ``start`` is the offset of the name."""

    name: str
    body: str
    start: int
    body_start: int

    def line(self, text: str) -> int:
        """1-based line of the block's name in ``text``."""
        return text.count("\n", 0, self.start) + 1


def strip_comments(text: str) -> str:
    """Blank ``//`` and ``/* */`` comments (outside strings) with spaces, keeping newlines and offsets."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        quote = _quote_at(text, i)
        if quote:
            i = _string_end(text, i, quote)
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out[i:end] = " " * (end - i)
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out[i:end] = [c if c == "\n" else " " for c in text[i:end]]
            i = end
        else:
            i += 1
    return "".join(out)


def _quote_at(text: str, i: int) -> str | None:
    return next((q for q in _QUOTES if text.startswith(q, i)), None)


def _string_end(text: str, i: int, quote: str) -> int:
    """Offset just past the string literal opening at ``i``."""
    j = i + len(quote)
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        if text.startswith(quote, j):
            return j + len(quote)
        if len(quote) == 1 and text[j] == "\n":
            return j  # unterminated single-line string: stop at the line end
        j += 1
    return len(text)


def _matching_brace(text: str, open_at: int) -> int:
    """Offset of the ``}`` closing the ``{`` at ``open_at`` (len(text) when unbalanced)."""
    depth, i = 0, open_at
    while i < len(text):
        quote = _quote_at(text, i)
        if quote:
            i = _string_end(text, i, quote)
            continue
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return len(text)


def blocks(text: str, name: str, *, offset: int = 0) -> Iterator[Block]:
    """Every ``name { ... }`` / ``name('arg') { ... }`` at any depth of ``text`` (already comment-free)."""
    pattern = re.compile(rf"(?<![\w.]){re.escape(name)}\s*(?:\([^(){{}}]*\)\s*)?\{{")
    for match in pattern.finditer(text):
        if _inside_string(text, match.start()):
            continue
        open_at = match.end() - 1
        close = _matching_brace(text, open_at)
        yield Block(name, text[open_at + 1 : close], offset + match.start(), offset + open_at + 1)


def block(text: str, name: str) -> Block | None:
    """The first ``name { ... }`` block, or None."""
    return next(blocks(text, name), None)


def child_blocks(parent: Block, name: str) -> Iterator[Block]:
    """``name`` blocks inside ``parent``, with offsets relative to the whole text."""
    return blocks(parent.body, name, offset=parent.body_start)


def top_level_blocks(parent: Block, name: str) -> Iterator[Block]:
    """``name`` blocks directly inside ``parent`` (not nested deeper, e.g. a stage's own ``post``)."""
    for child in child_blocks(parent, name):
        if _depth(parent.body, child.start - parent.body_start) == 0:
            yield child


def _depth(text: str, at: int) -> int:
    """Open braces before ``at`` in ``text``, not counting braces inside strings."""
    depth, i = 0, 0
    while i < at:
        quote = _quote_at(text, i)
        if quote:
            i = _string_end(text, i, quote)
            continue
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return depth


def _inside_string(text: str, at: int) -> bool:
    i = 0
    while i < at:
        quote = _quote_at(text, i)
        if quote:
            end = _string_end(text, i, quote)
            if end > at:
                return True
            i = end
        else:
            i += 1
    return False


_ASSIGNMENT = re.compile(r"^[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*(.+?)[ \t]*$", re.MULTILINE)


def environment_assignments(text: str) -> Iterator[tuple[str, str, int]]:
    """``(name, raw value, line)`` for each ``NAME = value`` inside every ``environment { }`` block."""
    clean = strip_comments(text)
    for env in blocks(clean, "environment"):
        for match in _ASSIGNMENT.finditer(env.body):
            line = clean.count("\n", 0, env.body_start + match.start(1)) + 1
            yield match.group(1), match.group(2), line
