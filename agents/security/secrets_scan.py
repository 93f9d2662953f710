"""Secret detection shared by artifact scanning and log redaction: one detector table, two uses.

- ``scan(files)``: findings for secret values in generated artifacts (docs/artifacts.md: only
  references travel). Assignment detectors only fire on literals that look like real secrets
  (length >= 8, entropy >= 3 bits/char, mixed character classes or long), never on references
  (``${{ secrets.X }}``, ``${VAR}``, ``{{ .Values.x }}``, ``valueFrom``/``secretKeyRef``,
  ``credentials('id')``, ``arn:aws:...``, file paths) or placeholders (``CHANGE_ME``, ``<...>``, ``""``).
- ``redact(text)``: the same detectors masking what they match, for the logging processor.
  Assignments are masked whatever their strength: in logs a false positive costs nothing.
- ``SECRET_KEY_PATTERN``: key names that hold secrets (password, secret, token, api_key, ...),
  for structured-log keys and for the name-based rules of agents.security.rules.
- ``scan_for_values(text, values)``: which known secret values (raw, base64 or URL-encoded) occur.

Pure functions, no I/O. Messages never repeat the secret.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from contracts.payloads import Finding
from contracts.vocabulary import Severity

TOOL = "secrets-scan"
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
    r"(?i)^(?:<[^>]*>|\[[^\]]*\]|change[-_ ]?me.*|replace[-_ ]?me.*|changeit|todo|tbd|fixme|x{3,}|\*+|\.{3}|"
    r"dummy|example|placeholder|your[-_].*|null|none|nil|undefined|~|true|false|redacted|\[redacted\]|"
    r"not[-_]?set|unset|empty|secret|password|-+)$"
)
# A name, not a secret: app-secrets, var.db_password, registry-creds.
# Names, not values: kebab/snake/dotted lower case (db-password), an environment variable
# name (DATABASE_PASSWORD, as in an ExternalSecret's `secretKey`) or a CamelCase API word
# (secretsmanager:GetSecretValue). Letters-only CamelCase: a real credential has digits or symbols.
_NAME_LIKE = re.compile(
    r"^(?:[a-z][a-z0-9]*(?:[-_.][a-z0-9]+)+|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|(?:[A-Z][a-z]+){2,})$"
)


@dataclass(frozen=True)
class Detector:
    """One secret pattern. The named group ``secret`` is what gets masked; ``key`` (if any) is the
    variable name. ``assignment`` detectors match ``name = value`` shapes and only fire on literals."""

    rule: str
    name: str
    pattern: re.Pattern[str]
    severity: Severity
    fix: str
    assignment: bool = False


_VALUE = r"""(?P<q>["'])?(?P<secret>(?(q)[^"'\n]*|[^\s"',;{}\[\]]+))(?(q)(?P=q))"""

DETECTORS: tuple[Detector, ...] = (
    Detector(
        "SEC-SECRET-001",
        "AWS access key id",
        re.compile(r"(?<![A-Z0-9])(?P<secret>(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16})(?![A-Z0-9])"),
        Severity.CRITICAL,
        "remove the key, rotate it in IAM, and use an IAM role / OIDC federation instead",
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
    ),
    Detector(
        "SEC-SECRET-003",
        "GitHub token",
        re.compile(
            r"(?<![A-Za-z0-9_])(?P<secret>(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255}))"
        ),
        Severity.CRITICAL,
        "revoke the token; use the workflow's GITHUB_TOKEN or a `${{ secrets.NAME }}` reference",
    ),
    Detector(
        "SEC-SECRET-004",
        "Slack token or webhook",
        re.compile(
            r"(?P<secret>xox[abposr]-[A-Za-z0-9-]{10,}|https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,})"
        ),
        Severity.CRITICAL,
        "revoke the token/webhook and inject it from a secret store at runtime",
    ),
    Detector(
        "SEC-SECRET-005",
        "cloud or payment API key",
        re.compile(r"(?<![A-Za-z0-9_])(?P<secret>AIza[0-9A-Za-z_-]{35}|(?:sk|rk)_live_[0-9A-Za-z]{24,})"),
        Severity.CRITICAL,
        "revoke the key and reference it from a secret store",
    ),
    Detector(
        "SEC-SECRET-006",
        "JSON web token",
        re.compile(
            r"(?<![A-Za-z0-9_-])(?P<secret>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"
        ),
        Severity.HIGH,
        "do not embed tokens; obtain them at runtime",
    ),
    Detector(
        "SEC-SECRET-007",
        "bearer token",
        re.compile(r"(?i)\bbearer[ \t]+(?P<secret>[A-Za-z0-9._~+/=-]{8,})"),
        Severity.HIGH,
        "pass the token from a secret (environment variable filled by the secret store)",
        assignment=True,
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
    ),
    Detector(
        "SEC-SECRET-010",
        "secret assigned to a variable",
        re.compile(
            rf"""(?<![A-Za-z0-9_.:/-])(?P<key>[A-Za-z0-9_.-]{{0,64}}(?:{_KEYWORDS})[A-Za-z0-9_.-]{{0,64}})["']?"""
            rf"""[ \t]*(?::=|=>|:|=)[ \t]*{_VALUE}""",
            re.I,
        ),
        Severity.HIGH,
        "replace the literal with a reference (CI secret, Kubernetes Secret, Secrets Manager/SSM ARN)",
        assignment=True,
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
    """True for empty values and placeholders (``CHANGE_ME``, ``<password>``, ``xxx``), also in base64."""
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


@dataclass(frozen=True)
class Hit:
    """One detector match: where the secret is (``start``/``end`` offsets) and which variable holds it."""

    detector: Detector
    start: int
    end: int
    key: str | None


def find(text: str, *, strict: bool = True) -> Iterator[Hit]:
    """Every detector hit in ``text``. ``strict`` (artifacts) needs strong literals; otherwise any literal."""
    for detector in DETECTORS:
        for match in detector.pattern.finditer(text):
            key = match.groupdict().get("key")
            if detector.assignment:
                value = match.group("secret")
                if detector.rule == "SEC-SECRET-009" and not SECRET_KEY_PATTERN.search(key or ""):
                    continue
                if key and detector.rule == "SEC-SECRET-010" and is_pointer_key(key):
                    continue
                if not (looks_secret(value) if strict else is_literal(value)):
                    continue
            yield Hit(detector, match.start("secret"), match.end("secret"), key)


def scan(files: Mapping[str, str]) -> list[Finding]:
    """Findings for secret values in the artifacts ``{path: content}``, one per (file, line, rule)."""
    findings: dict[tuple[str, int, str], Finding] = {}
    for path in sorted(files):
        text = files[path]
        for hit in find(text):
            line = text.count("\n", 0, hit.start) + 1
            where = f" in `{hit.key}`" if hit.key else ""
            findings.setdefault(
                (path, line, hit.detector.rule),
                Finding(
                    file=path,
                    line=line,
                    rule=hit.detector.rule,
                    severity=hit.detector.severity,
                    message=f"{hit.detector.name}{where}: a literal secret value (redacted)",
                    fix=hit.detector.fix,
                    tool=TOOL,
                ),
            )
    return list(findings.values())


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


def scan_for_values(text: str, values: Iterable[str]) -> list[str]:
    """The ``values`` occurring in ``text`` raw, base64- or URL-encoded (in input order, once each)."""
    found: list[str] = []
    for value in values:
        if not value or value in found:
            continue
        encoded = base64.b64encode(value.encode()).decode()
        forms = {value, encoded, encoded.rstrip("="), urllib.parse.quote(value, safe="")}
        if any(form in text for form in forms):
            found.append(value)
    return found
