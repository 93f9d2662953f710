"""A Dockerfile read the way ``docker build`` reads it: stages of instructions with their flags.

Generic on purpose: the smoke boot interprets whatever Dockerfile the generator wrote (any
language, any number of stages) instead of knowing per-language recipes. What it understands:
parser directives (``# escape=``), line continuations, comments, JSON (exec) and shell forms,
leading ``--flag=value`` options, and ``$VAR`` / ``${VAR}`` / ``${VAR:-default}`` /
``${VAR:+alt}`` substitution in the instructions Docker substitutes in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field


class DockerfileError(ValueError):
    """The Dockerfile cannot be read (one line, with the line number when known)."""


# Instructions whose arguments Docker expands variables in (RUN/CMD/ENTRYPOINT are left to the shell).
EXPANDED = frozenset(
    {"ADD", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR", "ARG"}
)
_FLAG = re.compile(r"--([A-Za-z][A-Za-z0-9-]*)(?:=(\S*))?(?:\s+|$)")
_DIRECTIVE = re.compile(r"#\s*([A-Za-z]+)\s*=\s*(.*?)\s*$")
_FLAGGED = frozenset({"FROM", "COPY", "ADD", "RUN", "HEALTHCHECK"})


@dataclass(frozen=True)
class Instruction:
    """One instruction: ``line`` (1-based, where it starts), upper-case ``keyword``, leading
    ``flags`` in order (a flag may repeat, e.g. ``--mount``), ``args`` (the rest, raw) and
    ``exec_form`` (the JSON array when the arguments are one)."""

    line: int
    keyword: str
    args: str
    flags: tuple[tuple[str, str], ...] = ()
    exec_form: tuple[str, ...] | None = None

    def flag(self, name: str) -> str | None:
        """The last value given for ``--name`` (None when absent)."""
        values = [value for key, value in self.flags if key == name]
        return values[-1] if values else None

    @property
    def text(self) -> str:
        """The instruction as written (one line), for messages."""
        flags = "".join(f"--{k}={v} " if v else f"--{k} " for k, v in self.flags)
        return f"{self.keyword} {flags}{self.args}".strip()


@dataclass
class Stage:
    """``FROM base [AS name]`` and the instructions up to the next FROM."""

    index: int
    base: str
    name: str | None
    line: int
    platform: str | None = None
    instructions: list[Instruction] = field(default_factory=list)

    def refers_to(self, ref: str) -> bool:
        """True when ``ref`` (a ``FROM`` or ``--from`` value) names this stage."""
        return ref.lower() == (self.name or "").lower() or ref == str(self.index)


@dataclass
class Dockerfile:
    """Global ``ARG``s (before the first FROM) and the stages, in order."""

    global_args: list[tuple[str, str | None]]
    stages: list[Stage]

    def stage(self, ref: str) -> Stage | None:
        """The stage named (or numbered) ``ref``, or None when it is an image."""
        return next((s for s in self.stages if s.refers_to(ref)), None)

    def target(self, name: str | None = None) -> Stage:
        """The stage ``docker build --target name`` builds (default: the last one)."""
        if name is None:
            return self.stages[-1]
        found = self.stage(name)
        if found is None:
            raise DockerfileError(f"no stage named {name!r} (stages: {self.stage_names()})")
        return found

    def stage_names(self) -> str:
        return ", ".join(s.name or str(s.index) for s in self.stages)


def parse(text: str) -> Dockerfile:
    """Parse a Dockerfile; DockerfileError (one line) when it has no FROM or a broken instruction."""
    escape = "\\"
    lines = text.splitlines()
    start = 0
    while start < len(lines) and (match := _DIRECTIVE.match(lines[start])):  # parser directives first
        if match[1].lower() == "escape":
            escape = match[2] or "\\"
        start += 1
    global_args: list[tuple[str, str | None]] = []
    stages: list[Stage] = []
    for number, logical in _logical_lines(lines, start, escape):
        keyword, _, rest = logical.strip().partition(" ")
        instruction = _instruction(number, keyword.upper(), rest.strip())
        if instruction.keyword == "FROM":
            stages.append(_stage(instruction, len(stages)))
        elif not stages:
            if instruction.keyword != "ARG":
                raise DockerfileError(f"line {number}: {instruction.keyword} before the first FROM")
            global_args += arg_pairs(instruction.args)
        else:
            stages[-1].instructions.append(instruction)
    if not stages:
        raise DockerfileError("no FROM instruction")
    return Dockerfile(global_args=global_args, stages=stages)


def _logical_lines(lines: list[str], start: int, escape: str) -> list[tuple[int, str]]:
    """Join continuation lines; drop comments and blank lines (also inside a continuation)."""
    out: list[tuple[int, str]] = []
    buffer: list[str] = []
    first = 0
    for index in range(start, len(lines)):
        raw = lines[index]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # Docker removes comment lines, also in the middle of a continued instruction
        if not buffer:
            first = index + 1
        body = raw.rstrip()
        if body.endswith(escape):
            buffer.append(body[: -len(escape)])
            continue
        buffer.append(body)
        out.append((first, "".join(buffer)))
        buffer = []
    if buffer:
        out.append((first, "".join(buffer)))
    return out


def _instruction(line: int, keyword: str, rest: str) -> Instruction:
    flags: list[tuple[str, str]] = []
    if keyword in _FLAGGED:
        while match := _FLAG.match(rest):
            flags.append((match[1].lower(), match[2] or ""))
            rest = rest[match.end() :]
    exec_form = None
    if keyword in {"RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"}:
        exec_form = json_array(rest)
    if rest.startswith("<<"):
        raise DockerfileError(f"line {line}: heredoc instructions are not supported")
    return Instruction(line=line, keyword=keyword, args=rest, flags=tuple(flags), exec_form=exec_form)


def json_array(text: str) -> tuple[str, ...] | None:
    """``["a", "b"]`` -> ("a", "b"); None when ``text`` is not a JSON array of strings (shell form)."""
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _stage(instruction: Instruction, index: int) -> Stage:
    parts = instruction.args.split()
    if not parts:
        raise DockerfileError(f"line {instruction.line}: FROM without an image")
    name = None
    if len(parts) >= 3 and parts[1].lower() == "as":
        name = parts[2]
    elif len(parts) != 1:
        raise DockerfileError(f"line {instruction.line}: cannot read FROM {instruction.args!r}")
    return Stage(
        index=index, base=parts[0], name=name, line=instruction.line, platform=instruction.flag("platform")
    )


def arg_pairs(args: str) -> list[tuple[str, str | None]]:
    """``ARG a=1 b`` -> [("a", "1"), ("b", None)] (values unexpanded)."""
    pairs: list[tuple[str, str | None]] = []
    for word in split_words(args, None):
        name, eq, value = word.partition("=")
        pairs.append((name, value if eq else None))
    return pairs


# --- words and variables ---------------------------------------------------------------------


def split_words(text: str, env: Mapping[str, str] | None) -> list[str]:
    """Split ``text`` into words like Docker's shell lexer: quotes group and are removed,
    backslash escapes the next character, and (when ``env`` is given) variables are expanded
    outside single quotes. An expansion never splits a word."""
    words: list[str] = []
    current: list[str] = []
    started = False
    index = 0
    quote = ""
    while index < len(text):
        char = text[index]
        if quote == "'":
            if char == "'":
                quote = ""
            else:
                current.append(char)
            index += 1
            continue
        if char == "\\" and index + 1 < len(text):
            current.append(text[index + 1])
            started = True
            index += 2
            continue
        if char in "'\"" and (not quote or quote == char):
            quote = "" if quote else char
            started = True
            index += 1
            continue
        if char == "$" and env is not None:
            value, index = _expand_at(text, index, env)
            current.append(value)
            started = True
            continue
        if char.isspace() and not quote:
            if started:
                words.append("".join(current))
            current, started = [], False
            index += 1
            continue
        current.append(char)
        started = True
        index += 1
    if quote:
        raise DockerfileError(f"unterminated {quote} quote in {text!r}")
    if started:
        words.append("".join(current))
    return words


def expand(text: str, env: Mapping[str, str]) -> str:
    """``text`` with ``$VAR`` forms replaced (no quote removal): for values kept as one string."""
    out: list[str] = []
    index = 0
    while index < len(text):
        if text[index] == "\\" and index + 1 < len(text) and text[index + 1] == "$":
            out.append("$")
            index += 2
        elif text[index] == "$":
            value, index = _expand_at(text, index, env)
            out.append(value)
        else:
            out.append(text[index])
            index += 1
    return "".join(out)


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _expand_at(text: str, index: int, env: Mapping[str, str]) -> tuple[str, int]:
    """Expand the variable reference starting at ``text[index] == '$'``: (value, next index)."""
    if index + 1 < len(text) and text[index + 1] == "{":
        end = text.find("}", index + 2)
        if end < 0:
            raise DockerfileError(f"missing '}}' in {text!r}")
        body = text[index + 2 : end]
        name_match = _NAME.match(body)
        if not name_match:
            raise DockerfileError(f"bad substitution ${{{body}}}")
        name, modifier = name_match[0], body[name_match.end() :]
        value = env.get(name)
        if modifier.startswith(":-"):
            value = value if value else expand(modifier[2:], env)
        elif modifier.startswith(":+"):
            value = expand(modifier[2:], env) if value else ""
        elif modifier:
            raise DockerfileError(f"unsupported substitution ${{{body}}}")
        return value or "", end + 1
    name_match = _NAME.match(text, index + 1)
    if not name_match:
        return "$", index + 1
    return env.get(name_match[0], ""), name_match.end()


def env_pairs(args: str, env: Mapping[str, str]) -> list[tuple[str, str]]:
    """``ENV a=1 b="two words"`` (or the legacy ``ENV a value with spaces``) -> [(name, value)]."""
    words = split_words(args, env)
    if words and "=" not in words[0]:
        name, _, rest = args.strip().partition(" ")
        return [(name, expand(rest.strip(), env))]
    pairs = []
    for word in words:
        name, eq, value = word.partition("=")
        if not eq or not name:
            raise DockerfileError(f"ENV {args!r}: expected name=value")
        pairs.append((name, value))
    return pairs


def command(instruction: Instruction, shell: tuple[str, ...]) -> list[str]:
    """The argv of a RUN/CMD/ENTRYPOINT: its JSON array, or ``shell + [text]`` for the shell form."""
    if instruction.exec_form is not None:
        return list(instruction.exec_form)
    return [*shell, instruction.args]
