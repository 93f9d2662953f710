"""Pinned base images per language version: the one table to bump when a patch release ships.

Exact versions (never ``latest`` or a bare minor): a rebuild months later uses the same base.
"""

from __future__ import annotations

DEFAULT_VERSION: dict[str, str] = {"python": "3.12", "go": "1.23", "node": "22"}

# minor (or major for node) -> exact patch release
PYTHON: dict[str, str] = {
    "3.10": "3.10.16",
    "3.11": "3.11.11",
    "3.12": "3.12.8",
    "3.13": "3.13.1",
    "3.14": "3.14.0",
}
# Go: every minor that has (or had) a ``golang:<patch>-bookworm`` tag. Bookworm images start at Go
# 1.19 (June 2023): older go.mod lines are raised to GO_OLDEST, which Go's compatibility promise
# lets build them. Source: docker-library/golang history, <minor>/bookworm/Dockerfile ENV
# GOLANG_VERSION (1.19.13 at 008fdbf 2023-09-08, 1.20.14 at b979efa 2024-02-06, 1.21.13 at aaed327
# 2024-08-06, 1.22.10 and 1.23.4 at d4dc539/7db8188 2024-12-03).
GO: dict[str, str] = {
    "1.19": "1.19.13",
    "1.20": "1.20.14",
    "1.21": "1.21.13",
    "1.22": "1.22.10",
    "1.23": "1.23.4",
}
GO_OLDEST = "1.19"
NODE: dict[str, str] = {"18": "18.20.5", "20": "20.18.1", "22": "22.12.0"}

# The Go binary runs on Alpine: it has a shell-free busybox wget for HEALTHCHECK and adduser for
# the numeric user, at ~8 MB.
GO_RUNTIME = "alpine:3.21.0"
# A cgo binary (mattn/go-sqlite3, ...) links glibc dynamically: it runs on the Debian release the
# golang:*-bookworm builder compiled it against. Source: docker-library/official-images
# library/debian, tag 12.8-slim from ce9eb77 (2024-11-11) to 2c6a900 (2025-01-13).
GO_CGO_RUNTIME = "debian:12.8-slim"

# Build tools installed with pip in builder stages, pinned like everything else (hadolint DL3013).
# uv reads lock files of its own and older revisions only: 0.9 reads every revision in use (3).
UV_VERSION = "0.9.26"
POETRY_VERSION = "1.8.5"

# Backing services started next to the app in Compose (dev and test) and as CI service containers.
# Source of the newer pins: docker-library/official-images library/<name> (mongo at 8abbba3
# 2024-12-11: 7.0.15-jammy, the 7.0 line speaks to drivers back to MongoDB 3.6 clients; mysql at
# 9817b5d 2024-10-14: 8.4.3 LTS; rabbitmq at 0af4809 2024-12-15: 4.0.5-alpine).
POSTGRES = "postgres:17.2-bookworm"
REDIS = "redis:7.4.1-alpine3.20"
MONGODB = "mongo:7.0.15-jammy"
MYSQL = "mysql:8.4.3"
RABBITMQ = "rabbitmq:4.0.5-alpine"


def _exact(table: dict[str, str], version: str, key_parts: int) -> str | None:
    """The pinned release for ``version``: itself when already exact, else the table entry."""
    parts = version.split(".")
    if len(parts) == 3:
        return version
    return table.get(".".join(parts[:key_parts]))


def default_images(language: str, version: str) -> tuple[str, str] | None:
    """(build image, runtime image) pinned to an exact release, or None when the version is not
    in the table (the caller records that as an assumption and passes a base_image instead)."""
    if language == "python":
        exact = _exact(PYTHON, version, 2)
        return None if exact is None else (f"python:{exact}-slim-bookworm",) * 2
    if language == "node":
        exact = _exact(NODE, version, 1)
        return None if exact is None else (f"node:{exact}-bookworm-slim",) * 2
    if language == "go":
        exact = _exact(GO, version, 2)
        return None if exact is None else (f"golang:{exact}-bookworm", GO_RUNTIME)
    return None


def raised_go_version(version: str) -> str | None:
    """GO_OLDEST when ``version`` (a go.mod ``go`` line) predates every bookworm image, else None."""
    try:
        declared = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        return None
    oldest = tuple(int(p) for p in GO_OLDEST.split("."))
    return GO_OLDEST if declared < oldest else None


def fallback_images(language: str, version: str) -> tuple[str, str]:
    """Images for a version the table does not know: the version as given (still explicit)."""
    if language == "python":
        return (f"python:{version}-slim-bookworm",) * 2
    if language == "node":
        return (f"node:{version}-bookworm-slim",) * 2
    return (f"golang:{version}-bookworm", GO_RUNTIME)
