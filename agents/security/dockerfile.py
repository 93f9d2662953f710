"""Container rules over a Dockerfile: who the container runs as, what it is built from, ADD, HEALTHCHECK.

SEC-DOCKER-001 HIGH    final stage USER missing, root/0, or a name (runAsNonRoot needs a number)
SEC-DOCKER-002 HIGH    base image without a tag, or ``latest``
SEC-DOCKER-003 MEDIUM  ADD (HIGH when it fetches a URL)
SEC-DOCKER-004 MEDIUM  no HEALTHCHECK in the final stage
SEC-DOCKER-005 LOW     base image tag is not an exact version (``3.12-slim``) and has no digest
SEC-DOCKER-006 MEDIUM  ARG/ENV named like a secret: build args and ENV stay in the image history

Pure functions, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agents.review.findings import finding
from contracts.payloads import Finding
from contracts.redaction import SECRET_KEY_PATTERN, is_pointer_key
from contracts.vocabulary import Severity

TOOL = "security-rules"


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: upper-case keyword, arguments (continuations joined), first line."""

    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    """A build stage: its FROM instruction, its alias, and the instructions after it."""

    image: str
    alias: str | None
    line: int
    instructions: list[Instruction]


_HEREDOC = re.compile(r"<<-?\s*[\"']?([A-Za-z_][A-Za-z0-9_]*)[\"']?")


def parse(content: str) -> list[Instruction]:
    """Instructions of a Dockerfile: comments dropped, ``\\`` continuations joined, heredoc bodies skipped."""
    out: list[Instruction] = []
    lines = content.splitlines()
    i = 0
    while i < len(lines):
        raw = lines[i]
        start = i
        i += 1
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        text = raw.rstrip()
        while text.endswith("\\") and i < len(lines):
            nxt = lines[i]
            i += 1
            if nxt.lstrip().startswith("#"):
                continue
            text = text[:-1] + " " + nxt.strip()
        for marker in _HEREDOC.findall(text):
            while i < len(lines) and lines[i].strip() != marker:
                i += 1
            i += 1
        keyword, _, args = text.strip().partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start + 1))
    return out


def stages(instructions: list[Instruction]) -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults declared before the first FROM, build stages in order)."""
    global_args: dict[str, str] = {}
    result: list[Stage] = []
    for item in instructions:
        if item.keyword == "FROM":
            words = [w for w in item.args.split() if not w.startswith("--")]
            image = words[0] if words else ""
            alias = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            result.append(Stage(image, alias, item.line, []))
        elif result:
            result[-1].instructions.append(item)
        elif item.keyword == "ARG":
            name, _, default = item.args.partition("=")
            global_args[name.strip()] = default.strip().strip("\"'")
    return global_args, result


def _expand(value: str, variables: dict[str, str]) -> str:
    """Substitute ``$VAR`` / ``${VAR}`` / ``${VAR:-default}`` with known values."""

    def sub(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        default = match.group(2)
        return variables.get(name) or (default if default is not None else match.group(0))

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)", sub, value)


def _chain(all_stages: list[Stage]) -> list[Stage]:
    """The final stage and the earlier stages it is built ``FROM`` (USER and HEALTHCHECK are inherited)."""
    by_alias = {s.alias.lower(): s for s in all_stages if s.alias}
    chain = [all_stages[-1]]
    while (parent := by_alias.get(chain[-1].image.lower())) is not None and parent not in chain:
        chain.append(parent)
    return chain


def check(path: str, content: str) -> list[Finding]:
    """All Dockerfile rules for one file."""
    instructions = parse(content)
    global_args, all_stages = stages(instructions)
    if not all_stages:
        return []
    aliases = {s.alias.lower() for s in all_stages if s.alias}
    out: list[Finding] = []
    for stage in all_stages:
        out += _base_image(path, stage, global_args, aliases)
    chain = _chain(all_stages)
    out += _user(path, chain, global_args)
    out += _healthcheck(path, chain)
    for item in instructions:
        if item.keyword == "ADD":
            out.append(_add(path, item))
        elif item.keyword in ("ARG", "ENV"):
            out += _secret_variable(path, item)
    return out


def _base_image(path: str, stage: Stage, global_args: dict[str, str], aliases: set[str]) -> list[Finding]:
    image = _expand(stage.image, global_args)
    if image.lower() in aliases or image.lower() == "scratch":
        return []
    if "$" in image:
        message = f"base image `{stage.image}` depends on a build argument without a default"
        fix = "give the ARG a pinned default (e.g. `ARG PYTHON_VERSION=3.12.7`)"
        return [_finding(path, stage.line, "SEC-DOCKER-005", Severity.LOW, message, fix)]
    if "@sha256:" in image:
        return []
    name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    if not tag or tag == "latest":
        message = f"base image `{image}` is not pinned ({'`latest`' if tag else 'no tag means `latest`'})"
        fix = f"pin an exact version, e.g. `{name or image}:<major.minor.patch>-slim` (digest optional)"
        return [_finding(path, stage.line, "SEC-DOCKER-002", Severity.HIGH, message, fix)]
    if not re.search(r"\d+\.\d+\.\d+", tag):
        message = f"base image tag `{tag}` is not an exact version and has no digest: rebuilds may change it"
        fix = f"pin the patch version (e.g. `{name}:3.12.7-slim`) or add `@sha256:<digest>`"
        return [_finding(path, stage.line, "SEC-DOCKER-005", Severity.LOW, message, fix)]
    return []


def _user(path: str, chain: list[Stage], global_args: dict[str, str]) -> list[Finding]:
    fix = "create a user with a fixed UID in the final stage and end with `USER 10001:10001`"
    for stage in chain:
        variables = dict(global_args)
        users: list[Instruction] = []
        for item in stage.instructions:
            if item.keyword in ("ARG", "ENV"):
                name, _, default = item.args.partition("=")
                if default:
                    variables[name.strip()] = default.strip().strip("\"'")
            elif item.keyword == "USER":
                users.append(Instruction("USER", _expand(item.args, variables), item.line))
        if not users:
            continue
        last = users[-1]
        user = last.args.split(":", 1)[0].strip()
        if user in ("root", "0"):
            return [_finding(path, last.line, "SEC-DOCKER-001", Severity.HIGH, "the image runs as root", fix)]
        if not user.isdigit():
            message = f"`USER {last.args}` is not numeric: Kubernetes runAsNonRoot cannot verify a user name"
            return [_finding(path, last.line, "SEC-DOCKER-001", Severity.HIGH, message, fix)]
        return []
    line = chain[0].line
    return [
        _finding(
            path, line, "SEC-DOCKER-001", Severity.HIGH, "the final stage sets no USER: it runs as root", fix
        )
    ]


def _healthcheck(path: str, chain: list[Stage]) -> list[Finding]:
    for stage in chain:
        checks = [item for item in stage.instructions if item.keyword == "HEALTHCHECK"]
        if checks:
            if checks[-1].args.strip().upper() != "NONE":
                return []
            break
    message = "the final stage has no HEALTHCHECK: a hung process looks healthy to Docker"
    fix = 'add `HEALTHCHECK CMD ["python", "-c", "...urlopen(\'http://127.0.0.1:<port>/health\')"]`'
    return [_finding(path, chain[0].line, "SEC-DOCKER-004", Severity.MEDIUM, message, fix)]


def _add(path: str, item: Instruction) -> Finding:
    sources = [w for w in item.args.split() if not w.startswith("--")][:-1]
    if any(re.match(r"(?i)(https?|ftp)://|git@", source) for source in sources):
        message = "ADD fetches a remote URL at build time: unverified content, no cache control"
        fix = "download in a RUN step and verify a checksum (`curl -fsSLo f URL && sha256sum -c`), or COPY it"
        return _finding(path, item.line, "SEC-DOCKER-003", Severity.HIGH, message, fix)
    message = "ADD used where COPY suffices (ADD also unpacks archives and fetches URLs)"
    return _finding(path, item.line, "SEC-DOCKER-003", Severity.MEDIUM, message, "use COPY")


def _secret_variable(path: str, item: Instruction) -> list[Finding]:
    name = re.split(r"[=\s]", item.args.strip(), maxsplit=1)[0]
    if not name or not SECRET_KEY_PATTERN.search(name) or is_pointer_key(name):
        return []
    message = f"{item.keyword} `{name}` puts a secret into the image metadata/history"
    fix = "use a BuildKit secret mount (`RUN --mount=type=secret,id=...`) or inject it at runtime"
    return [_finding(path, item.line, "SEC-DOCKER-006", Severity.MEDIUM, message, fix)]


def _finding(path: str, line: int, rule: str, severity: Severity, message: str, fix: str) -> Finding:
    return finding(path, rule, message, severity=severity, line=line, tool=TOOL, fix=fix)
