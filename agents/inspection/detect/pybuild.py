"""What building a Python project's dependencies needs: every requirements file an install reads
(nested ``-r`` / ``-c``), the Python version its locked wheels exist for, and the Debian packages
that dependencies which compile from source need (at build time and at run time)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePosixPath

from agents.inspection.tree import ProjectTree

DEV_REQUIREMENTS = (
    "requirements-dev.txt",
    "requirements-test.txt",
    "dev-requirements.txt",
    "test-requirements.txt",
    "requirements/dev.txt",
    "requirements/development.txt",
    "requirements/test.txt",
    "requirements/testing.txt",
)
_INCLUDE = re.compile(r"^\s*(?:-r|--requirement|-c|--constraint)(?:\s+|=)(\S+)", re.MULTILINE)
_WHEEL = re.compile(
    r"([A-Za-z0-9_.]+)-[^-/\s\"]+-(cp3\d+|py3\d*|py2\.py3)-(abi3|none|cp3\d+m?)-([a-z0-9_.]+)\.whl"
)

# Packages that always compile from source, with (build-time, run-time) Debian packages.
ALWAYS_COMPILE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "uwsgi": (("gcc", "libc6-dev"), ()),
    "psycopg2": (("gcc", "libc6-dev", "libpq-dev"), ("libpq5",)),
    "mysqlclient": (("gcc", "libc6-dev", "pkg-config", "default-libmysqlclient-dev"), ("libmariadb3",)),
    "python-ldap": (("gcc", "libc6-dev", "libldap2-dev", "libsasl2-dev"), ("libldap-2.5-0", "libsasl2-2")),
}
# C extensions whose wheels cover only the Python versions released before each version: an exact
# pin without a lock file to say which wheels exist may need a compiler on a newer Python.
C_EXTENSIONS = frozenset(
    {
        "aiohttp",
        "asyncpg",
        "frozenlist",
        "greenlet",
        "httptools",
        "lxml",
        "markupsafe",
        "multidict",
        "msgpack",
        "psutil",
        "psycopg2-binary",
        "pyyaml",
        "regex",
        "ujson",
        "uvloop",
        "wrapt",
        "yarl",
    }
)
COMPILER = ("gcc", "libc6-dev")


def normalise(name: str) -> str:
    """PEP 503 name: ``Flask_SQLAlchemy`` -> ``flask-sqlalchemy``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_files(tree: ProjectTree, start: str) -> tuple[str, ...]:
    """``start`` and every file it includes with ``-r`` / ``-c`` (transitively, paths relative to the
    including file), in the order an install reads them; missing or outside files are skipped."""
    out: list[str] = []
    pending = [start]
    while pending and len(out) < 64:
        rel = pending.pop(0)
        if rel in out:
            continue
        text = tree.read(rel)
        if text is None:
            continue
        out.append(rel)
        base = PurePosixPath(rel).parent
        for ref in _INCLUDE.findall(text):
            target = PurePosixPath(base, ref).as_posix()
            normal = _normal(target)
            if normal is not None:
                pending.append(normal)
    return tuple(out)


def _normal(rel: str) -> str | None:
    parts: list[str] = []
    for part in PurePosixPath(rel).parts:
        if part == "..":
            if not parts:
                return None
            parts.pop()
        elif part not in (".", ""):
            parts.append(part)
    return "/".join(parts) or None


def pinned(tree: ProjectTree, files: Iterable[str]) -> dict[str, str]:
    """``name -> version`` of every exact ``==`` pin in requirement files."""
    pins = {}
    for rel in files:
        for name, version in re.findall(
            r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([\w.]+)", tree.read(rel) or "", re.MULTILINE
        ):
            pins[normalise(name)] = version
    return pins


# --- versions ------------------------------------------------------------------------------------


def satisfies(version: str, spec: str | None) -> bool:
    """Whether ``version`` (``3.12``) meets a requires-python / Poetry constraint (``>=3.9,<4``,
    ``^3.9``, ``~3.10``, ``3.10.*``). An unreadable clause does not exclude anything."""
    if not spec:
        return True
    have = _tuple(version)
    for clause in spec.replace(" ", "").split(","):
        match = re.fullmatch(r"(\^|~=|~|>=|<=|==|!=|>|<)?(\d+(?:\.\d+)*)(\.\*)?", clause)
        if match is None:
            continue
        op, raw, star = match.group(1) or "==", match.group(2), match.group(3)
        want = _tuple(raw)
        size = len(want)
        mine = have[:size] + (0,) * (size - len(have[:size]))
        if op == "^":
            ok = mine >= want and have[:1] == want[:1]
        elif op == "~":  # Poetry: ~3.10 is >=3.10,<3.11; ~3 is >=3,<4
            ok = mine >= want and have[: min(size, 2)] == want[: min(size, 2)]
        elif op == "~=":  # PEP 440 compatible release: ~=3.10 is >=3.10,<4
            ok = mine >= want and have[: max(1, size - 1)] == want[: max(1, size - 1)]
        elif op == "==":
            ok = mine == want if star or size <= len(have) else have == want[: len(have)]
        elif op == "!=":
            ok = mine != want
        else:
            ok = {">=": mine >= want, "<=": mine <= want, ">": mine > want, "<": mine < want}[op]
        if not ok:
            return False
    return True


def _tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def lock_wheels(tree: ProjectTree, lock: str) -> dict[str, set[str]]:
    """Per locked package with version-specific Linux x86-64 wheels, the CPython minors they cover
    (``{"asyncpg": {"3.8", "3.9", "3.10"}}``); ``abi3`` wheels cover every later minor (as
    ``"abi3:3.8"``). Packages with a pure-Python wheel are left out: they install anywhere."""
    text = tree.read(lock)
    if text is None:
        return {}
    tags: dict[str, set[str]] = {}
    pure: set[str] = set()
    for name, python, abi, platform in _WHEEL.findall(text):
        key = normalise(name)
        if python.startswith("py") or abi == "none":
            pure.add(key)
        elif "linux" in platform and "x86_64" in platform and "musllinux" not in platform:
            minor = f"3.{python[3:]}"
            tags.setdefault(key, set()).add(f"abi3:{minor}" if abi == "abi3" else minor)
        else:
            tags.setdefault(key, set())
    return {k: v for k, v in tags.items() if k not in pure}


def uncovered(wheels: dict[str, set[str]], version: str) -> list[str]:
    """Locked packages with no wheel for Python ``version`` (they would compile from source)."""
    minor = ".".join(version.split(".")[:2])
    out = []
    for name, minors in sorted(wheels.items()):
        abi3 = [m.split(":")[1] for m in minors if m.startswith("abi3:")]
        if minor in minors or any(_tuple(minor) >= _tuple(m) for m in abi3):
            continue
        out.append(name)
    return out


def best_version(
    candidates: Iterable[str], spec: str | None, wheels: dict[str, set[str]], preferred: str
) -> tuple[str, list[str]]:
    """The Python to build with when only a range is declared: ``preferred`` when every locked
    wheel exists for it, else the newest allowed version that has them all; with none, the newest
    allowed (and the packages that will compile)."""
    allowed = [v for v in sorted(candidates, key=_tuple, reverse=True) if satisfies(v, spec)]
    if not allowed:
        return preferred, uncovered(wheels, preferred)
    if preferred in allowed and not uncovered(wheels, preferred):
        return preferred, []
    for version in allowed:
        if not uncovered(wheels, version):
            return version, []
    top = preferred if preferred in allowed else allowed[0]
    return top, uncovered(wheels, top)


# --- Debian packages -----------------------------------------------------------------------------


def system_packages(
    deps: set[str], pins: dict[str, str], compiles: Iterable[str]
) -> tuple[tuple[str, ...], tuple[str, ...], list[str]]:
    """(build packages, runtime packages, reasons) for the declared dependencies: packages that
    always compile, locked packages without a wheel for the chosen Python, and exact pins of C
    extensions (no lock file says whether a wheel exists)."""
    build: list[str] = []
    runtime: list[str] = []
    reasons: list[str] = []
    for name in sorted(deps):
        if name in ALWAYS_COMPILE:
            b, r = ALWAYS_COMPILE[name]
            build += b
            runtime += r
            reasons.append(f"{name} compiles from source")
    compiled = sorted(set(compiles))
    if compiled:
        build += COMPILER
        reasons.append(f"no wheel for this Python: {', '.join(compiled)}")
    exact = sorted(n for n in pins if n in C_EXTENSIONS)
    if exact and not compiled:
        build += COMPILER
        reasons.append(f"exact pins of C extensions may predate this Python's wheels: {', '.join(exact)}")
    return tuple(dict.fromkeys(build)), tuple(dict.fromkeys(runtime)), reasons
