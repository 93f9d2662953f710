"""The layer cache: what an instruction produced, stored under the digest of everything it depended on.

A key chains the previous key with the instruction and its inputs (the bytes a COPY copied, the
command, environment, working directory and user of a RUN), and the first key of a stage names
the machine's interpreter and its version: so an install is reused exactly when the lockfile,
the install command and the interpreter are the same, as with ``docker build``'s layer cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

KEY_LENGTH = 32  # hex digits: short paths keep many layers inside one overlay mount's option page
PRUNE_AFTER_S = 30 * 24 * 3600
STALE_RUN_S = 6 * 3600  # scratch space of a smoke boot that died without cleaning up


def chain(previous: str, *parts: object) -> str:
    """The key of a step: ``previous`` key plus the step's inputs (JSON-serialisable)."""
    blob = json.dumps([previous, *parts], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:KEY_LENGTH]


class LayerStore:
    """Published layers under ``<cache>/layers/<key>``; a folder there is always complete,
    because a layer is built elsewhere and renamed into place (atomic on one filesystem)."""

    def __init__(self, cache: Path) -> None:
        self.root = cache / "layers"
        self.root.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> Path | None:
        """The published layer for ``key`` (its use time refreshed), or None."""
        path = self.root / key
        if not path.is_dir():
            return None
        os.utime(path)
        return path

    def publish(self, partial: Path, key: str) -> Path:
        """Move a finished layer into the store; if another build published it first, keep theirs."""
        path = self.root / key
        try:
            partial.rename(path)
        except OSError:
            shutil.rmtree(partial, ignore_errors=True)
            if not path.is_dir():
                raise
        return path

    def prune(self, max_age_s: float = PRUNE_AFTER_S) -> int:
        """Remove layers unused for ``max_age_s`` and scratch folders of smoke boots that died
        more than a few hours ago; how many were removed."""
        return _remove_older(self.root, time.time() - max_age_s) + _remove_older(
            self.root.parent / "runs", time.time() - STALE_RUN_S
        )


def _remove_older(folder: Path, cutoff: float) -> int:
    removed = 0
    if folder.is_dir():
        for entry in folder.iterdir():
            try:
                if entry.stat().st_mtime < cutoff:
                    shutil.rmtree(entry, ignore_errors=True)
                    removed += 1
            except OSError:
                continue
    return removed
