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
GO: dict[str, str] = {"1.22": "1.22.10", "1.23": "1.23.4"}
NODE: dict[str, str] = {"18": "18.20.5", "20": "20.18.1", "22": "22.12.0"}

# The Go binary runs on Alpine: it has a shell-free busybox wget for HEALTHCHECK and adduser for
# the numeric user, at ~8 MB.
GO_RUNTIME = "alpine:3.21.0"

# Build tools installed with pip in builder stages, pinned like everything else (hadolint DL3013).
# uv reads lock files of its own and older revisions only: 0.9 reads every revision in use (3).
UV_VERSION = "0.9.26"
POETRY_VERSION = "1.8.5"

# Backing services started next to the app in Compose (dev and test).
POSTGRES = "postgres:17.2-bookworm"
REDIS = "redis:7.4.1-alpine3.20"


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


def fallback_images(language: str, version: str) -> tuple[str, str]:
    """Images for a version the table does not know: the version as given (still explicit)."""
    if language == "python":
        return (f"python:{version}-slim-bookworm",) * 2
    if language == "node":
        return (f"node:{version}-bookworm-slim",) * 2
    return (f"golang:{version}-bookworm", GO_RUNTIME)
