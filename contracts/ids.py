"""Sortable unique ids (ULID: 48-bit millisecond time + 80 random bits, Crockford base32)."""

from __future__ import annotations

import hashlib
import os
import re
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ID_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{26}$"
_ID_RE = re.compile(ID_PATTERN)


def new_id() -> str:
    """Return a new ULID: lexicographic order follows creation time (to the millisecond)."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def derived_id(parent: str, salt: str) -> str:
    """A deterministic id for an event caused by ``parent``.

    Redelivery of ``parent`` makes the handler emit the same follow-up ids again, so
    JetStream's duplicate window and the knowledge store's UNIQUE id absorb the repeat.
    Keeps the parent's time prefix so ids stay roughly sortable.
    """
    digest = hashlib.blake2b(f"{parent}\x00{salt}".encode(), digest_size=10).digest()
    prefix = parent[:10] if is_id(parent) else new_id()[:10]
    value = int.from_bytes(digest, "big")
    chars = []
    for _ in range(16):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return prefix + "".join(reversed(chars))


def is_id(text: str) -> bool:
    """True when ``text`` has the shape of an id made by :func:`new_id`."""
    return bool(_ID_RE.match(text))
