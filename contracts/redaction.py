"""Masking secret-looking values: the one pattern table every layer shares.

The client library masks a task before publishing it, every agent masks what it takes from an
incoming event before it can flow into follow-up events, the knowledge store masks before writing,
the log processor masks every line, and the security scanner flags the same patterns in artifacts
(with stricter thresholds): one detector table, so a pattern added here is masked everywhere.

- ``find(text, strict=...)``: detector hits. ``strict`` (artifact scanning) fires only on literals
  that look like real secrets (length >= 8, entropy >= 3 bits/char, mixed character classes or
  long); lenient (masking) fires on any literal: in a log line or a task text a false positive
  costs a word, a false negative leaks a credential.
- ``redact(text)``: ``text`` with every hit replaced by ``[REDACTED]``.
- ``mask_model(model)`` / ``mask_event(event)``: the same over every string of a contract model.
- ``SECRET_KEY_PATTERN``: key names that hold secrets (password, secret, token, api_key, ...).

Neither rule ever fires on references (``${{ secrets.X }}``, ``${VAR}``, ``{{ .Values.x }}``,
``valueFrom``/``secretKeyRef``, ``credentials('id')``, ``arn:aws:...``, file paths) or placeholders
(``CHANGE_ME``, ``<...>``, ``""``), nor on identifiers: a service called ``secret-santa`` or
``api-token-service``, an environment variable *name*, an IAM action
(``secretsmanager:GetSecretValue``) or an image reference (``api-token-service:1.2``) are names, not
values. ``name:value`` with no space after the colon is a plain word in YAML (a mapping needs
``: ``), an image tag or a task-definition revision, never an assignment, unless a quote marks the
key or the value as JSON does.

Pure functions, no I/O; depends on nothing outside ``contracts`` so that the bus's client, every
agent and the knowledge store can use it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from contracts.limits import clip
from contracts.vocabulary import Severity

MASK = "[REDACTED]"

_KEYWORDS = (
    r"passw(?:or)?d|(?<![a-z])pwd(?![a-z])|secret|token|api[-_]?key|apikey|private[-_]?key|access[-_]?key"
    r"|credential|(?<![a-z])creds?(?![a-z])|client[-_]?secret|auth[-_]?key|session[-_]?key|signing[-_]?key"
    r"|(?<![a-z])bearer(?![a-z])"
)
SECRET_KEY_PATTERN = re.compile(rf"(?i)(?:{_KEYWORDS})")
"""Matches key names that hold secret values: ``DB_PASSWORD``, ``apiKey``, ``client_secret``, ``token``..."""

# A key that *names* or *points at* a secret rather than holding it: secretName, PASSWORD_FILE, ...
_POINTER_SUFFIXES = (
    "name", "names", "ref", "refs", "file", "path", "arn", "id", "ids", "type", "url", "uri", "length",
    "ttl", "version", "selector", "env", "dir", "mount", "provider", "store", "kind", "count", "days",
    "rotation", "policy", "enabled", "required", "header", "from", "key_ref", "keyref", "template",
)  # fmt: skip
_REFERENCE_PREFIXES = (
    "arn:", "vault:", "ssm:", "secretsmanager:", "ref+", "projects/", "sm://", "secret://", "k8s://", "file:",
    "!",  # a YAML tag: !Ref, !Sub, !GetAtt
    "$",  # a variable: $DB_PASSWORD, ${DB_PASSWORD}, $(cat /run/secrets/x)
)  # fmt: skip
_REFERENCE_MARKERS = (
    "${{", "${", "$(", "{{", "#{", "<%", "credentials(", "secrets.", "vars.", "env.", "valuefrom",
    "(",  # an expression or function call (jsonencode(...), credentials('id')), not a literal
)  # fmt: skip
_PATH = re.compile(r"^(?:/|\./|\.\./|~/)[\w./-]*$")  # /run/secrets/db_password (not base64 like /9j+Q==)
_PLACEHOLDER = re.compile(
    r"(?i)^(?:<[^>]*>|<[a-z][a-z_-]*|\[[^\]]*\]|change[-_ ]?me.*|replace[-_ ]?me.*|changeit|todo|tbd|fixme|"
    r"x{3,}|\*+|\.{3}|"
    r"dummy|example|placeholder|your[-_].*|null|none|nil|undefined|~|true|false|redacted|\[redacted\]|"
    r"not[-_]?set|unset|empty|secret|password|-+)$"
)
# A name, not a secret: app-secrets, var.db_password, registry-creds.
# Names, not values: kebab/snake/dotted lower case (db-password), an environment variable
# name (DATABASE_PASSWORD, as in an ExternalSecret's `secretKey`) or a CamelCase API word
# (secretsmanager:GetSecretValue). Letters-only CamelCase: a real credential has digits or symbols.
_KEY_TAIL = re.compile(r"s?[-_.]?[0-9]*")  # DB_PASSWORDS, api_key_2: still the secret word at the end
_NAME_LIKE = re.compile(
    r"^(?:[a-z][a-z0-9]*(?:[-_.][a-z0-9]+)+|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|(?:[A-Z][a-z]+){2,})$"
)


@dataclass(frozen=True)
class Detector:
    """One secret pattern. The named group ``secret`` is what gets masked; ``key`` (if any) is the
    variable name. ``assignment`` detectors match ``name = value`` shapes and only fire on literals.
    ``rule``, ``severity`` and ``fix`` are what the security scanner reports for a hit.
    ``triggers``: case-folded substrings one of which every match contains; a text without any is
    not searched (most strings, and most of an artifact, hold none: the masking of every incoming
    event is on the hot path)."""

    rule: str
    name: str
    pattern: re.Pattern[str]
    severity: Severity
    fix: str
    assignment: bool = False
    triggers: tuple[str, ...] = ()


# The words SECRET_KEY_PATTERN looks for, as substrings: a name holding a secret has one of them.
SECRET_WORDS = ("pass", "pwd", "secret", "token", "key", "cred", "bearer")

_VALUE = r"""(?P<q>["'])?(?P<secret>(?(q)[^"'\n]*|[^\s"',;{}\[\]]+))(?(q)(?P=q))"""

DETECTORS: tuple[Detector, ...] = (
    Detector(
        "SEC-SECRET-001",
        "AWS access key id",
        re.compile(r"(?<![A-Z0-9])(?P<secret>(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16})(?![A-Z0-9])"),
        Severity.CRITICAL,
        "remove the key, rotate it in IAM, and use an IAM role / OIDC federation instead",
        triggers=("akia", "asia", "abia", "acca"),
    ),
    Detector(
        "SEC-SECRET-002",
        "private key block",
        re.compile(
            r"(?P<secret>-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
            r"(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)?)"
        ),
        Severity.CRITICAL,
        "remove the key material; mount it from a secret store (Kubernetes Secret, Secrets Manager)",
        triggers=("-----begin",),
    ),
    Detector(
        "SEC-SECRET-003",
        "GitHub token",
        re.compile(
            r"(?<![A-Za-z0-9_])(?P<secret>(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255}))"
        ),
        Severity.CRITICAL,
        "revoke the token; use the workflow's GITHUB_TOKEN or a `${{ secrets.NAME }}` reference",
        triggers=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    Detector(
        "SEC-SECRET-004",
        "Slack token or webhook",
        re.compile(
            r"(?P<secret>xox[abposr]-[A-Za-z0-9-]{10,}|https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,})"
        ),
        Severity.CRITICAL,
        "revoke the token/webhook and inject it from a secret store at runtime",
        triggers=("xox", "hooks.slack.com"),
    ),
    Detector(
        "SEC-SECRET-005",
        "cloud or payment API key",
        re.compile(r"(?<![A-Za-z0-9_])(?P<secret>AIza[0-9A-Za-z_-]{35}|(?:sk|rk)_live_[0-9A-Za-z]{24,})"),
        Severity.CRITICAL,
        "revoke the key and reference it from a secret store",
        triggers=("aiza", "_live_"),
    ),
    Detector(
        "SEC-SECRET-006",
        "JSON web token",
        re.compile(
            r"(?<![A-Za-z0-9_-])(?P<secret>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"
        ),
        Severity.HIGH,
        "do not embed tokens; obtain them at runtime",
        triggers=("eyj",),
    ),
    Detector(
        "SEC-SECRET-007",
        "bearer token",
        re.compile(r"(?i)\bbearer[ \t]+(?P<secret>[A-Za-z0-9._~+/=-]{8,})"),
        Severity.HIGH,
        "pass the token from a secret (environment variable filled by the secret store)",
        assignment=True,
        triggers=("bearer",),
    ),
    Detector(
        "SEC-SECRET-008",
        "credentials in a URL",
        re.compile(
            r"(?i)(?<![a-z0-9+.-])[a-z][a-z0-9+.-]{0,30}://(?P<user>[^\s:/@'\"]{1,128}):(?P<secret>[^\s@/'\"]{1,256})@"
        ),
        Severity.HIGH,
        "build the URL from a password injected as a secret (e.g. `${DB_PASSWORD}`), not a literal",
        assignment=True,
        triggers=("://",),
    ),
    Detector(
        "SEC-SECRET-009",
        "secret in a name/value pair",
        re.compile(
            r"""(?i)["']?name["']?[ \t]*:[ \t]*["']?(?P<key>[A-Za-z0-9_.-]{1,128})["']?"""
            r"""[ \t]*(?:,[ \t]*|\r?\n[ \t]*)"""
            rf"""["']?value["']?[ \t]*:[ \t]*{_VALUE}"""
        ),
        Severity.HIGH,
        "use `valueFrom` (secretKeyRef / Secrets Manager ARN) instead of a literal `value`",
        assignment=True,
        triggers=("value",),
    ),
    Detector(
        "SEC-SECRET-010",
        "secret assigned to a variable",
        re.compile(
            # Any name followed by an assignment; find() keeps those whose name holds a secret word
            # (a keyword alternation inside the pattern cost 0.5 us per character of text).
            rf"""(?<![A-Za-z0-9_.:/-])(?P<key>[A-Za-z0-9_.-]{{1,160}})"""
            rf"""(?P<kq>["'])?(?P<sep>[ \t]*(?::=|=>|:|=)[ \t]*){_VALUE}""",
        ),
        Severity.HIGH,
        "replace the literal with a reference (CI secret, Kubernetes Secret, Secrets Manager/SSM ARN)",
        assignment=True,
        triggers=SECRET_WORDS,
    ),
)


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    if not value:
        return 0.0
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def _decoded(value: str) -> str | None:
    """The text behind a base64 value (Kubernetes Secret ``data:``), if it decodes to printable text."""
    if len(value) < 4 or len(value) % 4 or not re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", value):
        return None
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return text if text.isprintable() else None


def is_reference(value: str) -> bool:
    """True if ``value`` points at a secret (``${{ secrets.X }}``, ``{{ .Values.x }}``, an ARN, a path...)."""
    text = value.strip().strip("\"'")
    lowered = text.lower()
    return (
        text.startswith(_REFERENCE_PREFIXES)
        or bool(_PATH.match(text))
        or any(marker in lowered for marker in _REFERENCE_MARKERS)
    )


def is_placeholder(value: str) -> bool:
    """True for empty values and placeholders (``CHANGE_ME``, ``<password>``, ``xxx``), also in base64.
    An unquoted ``<previous revision>`` is cut at its space: ``<previous`` is a placeholder too."""
    text = value.strip().strip("\"'").strip()
    if not text or _PLACEHOLDER.match(text):
        return True
    decoded = _decoded(text)
    return decoded is not None and bool(_PLACEHOLDER.match(decoded.strip()))


def is_literal(value: str) -> bool:
    """True if ``value`` is a literal secret value: neither a reference nor a placeholder."""
    return not is_reference(value) and not is_placeholder(value)


def looks_secret(value: str) -> bool:
    """A literal strong enough to be a real secret rather than a name or a word (see module docstring)."""
    if not is_literal(value) or _NAME_LIKE.match(value) or value.isdigit():
        return False
    classes = sum(
        any(test(c) for c in value)
        for test in (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())
    )
    return len(value) >= 8 and entropy(value) >= 3.0 and (classes >= 2 or len(value) >= 20)


def is_pointer_key(key: str) -> bool:
    """A key that names or points at a secret (``secretName``, ``PASSWORD_FILE``) rather than holding one."""
    flat = re.sub(r"[^a-z0-9]", "", key.lower())
    return flat.endswith(_POINTER_SUFFIXES) or flat in {"secrets", "secret"}


def _is_assignment(match: re.Match[str]) -> bool:
    """Whether a ``key<sep>value`` match assigns. ``name:value`` with no space after the colon and no
    quote on either side is one word (a YAML plain scalar, ``image:tag``, ``family:revision``,
    ``secretsmanager:GetSecretValue``) unless the name ends with its secret word (``password:x``,
    ``DB_TOKEN:x``): ``secret-santa-prod:3`` and ``api_token_service.main:app`` are identifiers."""
    sep = match.group("sep")
    if sep.strip() != ":" or sep.endswith((" ", "\t")) or match.group("kq") or match.group("q"):
        return True
    key = match.group("key")
    ends = [m.end() for m in SECRET_KEY_PATTERN.finditer(key)]
    return bool(ends) and _KEY_TAIL.fullmatch(key[ends[-1] :]) is not None


def _secret_key(detector: Detector, key: str, match: re.Match[str]) -> bool:
    """Whether the name of a name/value match holds a secret: it has a secret word and, for a plain
    assignment, neither points at one (``PASSWORD_FILE``) nor is an identifier (see _is_assignment)."""
    if not SECRET_KEY_PATTERN.search(key):
        return False
    return detector.rule != "SEC-SECRET-010" or (not is_pointer_key(key) and _is_assignment(match))


@dataclass(frozen=True)
class Hit:
    """One detector match: where the secret is (``start``/``end`` offsets) and which variable holds it."""

    detector: Detector
    start: int
    end: int
    key: str | None


def _any_in(triggers: tuple[str, ...], lowered: str) -> bool:
    for trigger in triggers:  # noqa: SIM110 - a plain loop is twice as fast as any() here
        if trigger in lowered:
            return True
    return False


def find(text: str, *, strict: bool = True) -> Iterator[Hit]:
    """Every detector hit in ``text``. ``strict`` (artifacts) needs strong literals; otherwise any literal."""
    lowered = text.casefold()  # several patterns ignore case: compare folded text
    for detector in DETECTORS:
        if not _any_in(detector.triggers, lowered):
            continue
        for match in detector.pattern.finditer(text):
            key = match.groupdict().get("key")
            if detector.assignment:
                value = match.group("secret")
                if key is not None and not _secret_key(detector, key, match):
                    continue
                if not (looks_secret(value) if strict else is_literal(value)):
                    continue
            yield Hit(detector, match.start("secret"), match.end("secret"), key)


def redact(text: str) -> str:
    """``text`` with every secret-looking substring replaced by ``[REDACTED]`` (all detectors, lenient)."""
    spans = sorted((hit.start, hit.end) for hit in find(text, strict=False) if hit.end > hit.start)
    if not spans:
        return text
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, last = [], 0
    for start, end in merged:
        out += [text[last:start], MASK]
        last = end
    out.append(text[last:])
    return "".join(out)


# -- contract models --------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)
Keep = Callable[[type[BaseModel], str], bool]
Path = tuple[str | int, ...]


def keep_nothing(_model: type[BaseModel], _field: str) -> bool:
    """Mask every string field."""
    return False


def keep_artifact_content(model: type[BaseModel], field: str) -> bool:
    """Mask every string field except artifact contents: the reviewers (QA, security) must see what
    DevOps generated, byte for byte and matching its digest, to block a secret in it."""
    return model.__name__ == "Artifact" and field == "content"


def mask_model(model: M, *, keep: Keep = keep_nothing) -> M:
    """``model`` with secret-looking values in its strings masked (itself when there were none).

    Fields ``keep(model class, field name)`` is true for are left alone. A masked string that no
    longer fits its field is clipped to the field's bound; a string whose field only admits an
    identifier (a pattern such as an environment variable name) is an identifier, not a value, and
    is left as it was. Raises ``ValueError`` (one line) for a model that cannot be rebuilt."""
    changes: dict[Path, tuple[str, str]] = {}
    _collect(model, (), keep, changes)
    if not changes:
        return model
    data = model.model_dump()
    for path, (_, masked) in changes.items():
        _put(data, path, masked)
    for _ in range(len(changes) + 1):
        try:
            return type(model).model_validate(data)
        except ValidationError as exc:
            if not _repair(data, exc, changes):
                raise ValueError(f"cannot mask {type(model).__name__}: {exc.errors()[0]['msg']}") from None
    raise ValueError(f"cannot mask {type(model).__name__}")  # pragma: no cover - every repair fixes one


def mask_event(event: M, *, keep: Keep = keep_artifact_content) -> M:
    """``event`` (an envelope) with its payload masked by :func:`mask_model`; itself when clean."""
    payload = event.payload  # type: ignore[attr-defined]
    masked = mask_model(payload, keep=keep)
    return event if masked is payload else event.model_copy(update={"payload": masked})


@functools.cache
def _fields(cls: type[BaseModel], keep: Keep) -> tuple[str, ...]:
    """The fields of ``cls`` to mask (computed once per model class and keep rule)."""
    return tuple(name for name in cls.model_fields if not keep(cls, name))


def _collect(value: Any, path: Path, keep: Keep, changes: dict[Path, tuple[str, str]]) -> None:
    if isinstance(value, str):
        masked = redact(value)
        if masked != value:
            changes[path] = (value, masked)
    elif isinstance(value, BaseModel):
        for name in _fields(type(value), keep):
            _collect(getattr(value, name), (*path, name), keep, changes)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _collect(item, (*path, index), keep, changes)
    elif isinstance(value, dict):
        for key, item in value.items():  # keys are names (tool names): only values are masked
            _collect(item, (*path, key), keep, changes)


def _put(data: Any, path: Path, value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


def _get(data: Any, path: Path) -> Any:
    for part in path:
        data = data[part]
    return data


def _repair(data: Any, exc: ValidationError, changes: dict[Path, tuple[str, str]]) -> bool:
    """Fix what masking broke: clip what grew past its bound, restore identifiers. False if neither."""
    repaired = False
    for error in exc.errors(include_url=False):
        path = tuple(error["loc"])
        if path not in changes:
            return False
        limit = (error.get("ctx") or {}).get("max_length")
        if error["type"] == "string_too_long" and limit is not None:
            _put(data, path, clip(_get(data, path), limit))
        elif error["type"] == "string_pattern_mismatch":
            _put(data, path, changes[path][0])
        else:
            return False
        repaired = True
    return repaired
