"""Sortable unique ids (ULID: 48-bit millisecond time + 80 random bits, Crockford base32)."""

from __future__ import annotations

import hashlib
import os
import re
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ID_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{26}$"
_ID_RE = re.compile(ID_PATTERN)


def _base32(value: int, chars: int) -> str:
    out = []
    for _ in range(chars):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_id() -> str:
    """Return a new ULID: lexicographic order follows creation time (to the millisecond)."""
    return _base32((time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big"), 26)


def derived_id(parent: str, salt: str, key: bytes | None = None) -> str:
    """A deterministic id for an event caused by ``parent`` (any token: a ULID, a UUID, ...).

    Redelivery of ``parent`` makes the handler emit the same follow-up ids again, so
    JetStream's duplicate window and the knowledge store's UNIQUE id absorb the repeat. Every
    character derives from the whole parent id and the salt, whatever the parent's form. A ULID
    parent's time prefix is kept so ids stay roughly sortable; another parent gets a prefix of its
    own (the same for every follow-up of that parent).

    ``key`` is the deployment's secret id key: with it, nobody without the key can compute the
    follow-up ids of an event they see (and pre-publish something under them); every process that
    shares the key derives the same ids. Without it the ids are a public function of the parent.
    """
    mac_key = b"" if key is None else hashlib.sha256(b"orchestra-id-key\x00" + key).digest()
    digest = hashlib.blake2b(f"{parent}\x00{salt}".encode(), digest_size=10, key=mac_key).digest()
    if is_id(parent):
        prefix = parent[:10]
    else:  # 48 bits, like a ULID's time part, so the id still has the ULID shape
        stem = hashlib.blake2b(parent.encode(), digest_size=6, key=mac_key).digest()
        prefix = _base32(int.from_bytes(stem, "big"), 10)
    return prefix + _base32(int.from_bytes(digest, "big"), 16)


def is_id(text: str) -> bool:
    """True when ``text`` has the shape of an id made by :func:`new_id`."""
    return bool(_ID_RE.match(text))
