"""NATS subject matching: ``*`` matches one token, ``>`` the rest (one token at least)."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=4096)
def matches(pattern: str, subject: str) -> bool:
    """True when ``subject`` (no wildcards) is matched by ``pattern`` (wildcards allowed)."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token != "*" and token != have[i]):
            return False
    return len(want) == len(have)
