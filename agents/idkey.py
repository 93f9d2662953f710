"""The deployment's id key: the secret that makes follow-up event ids unpredictable.

Follow-up ids derive from the event that caused them (contracts.ids.derived_id), so a redelivered
event re-emits the same ids and the duplicate window absorbs the repeat. Without a key, anyone who
sees an event can compute those ids and pre-publish garbage under them; with the key only the
agents can. Every agent process of one deployment must use the same key (replicas of an agent in
different processes derive the same ids for a redelivered input).

Where it comes from:
- ``ORCHESTRA_ID_KEY`` or ``ORCHESTRA_ID_KEY_FILE`` (a mounted secret), for every agent process;
- ``orchestra up`` without either: a key generated once per store and kept next to it
  (``.orchestra/id.key``, mode 0600), so a restart keeps deriving the same ids;
- an agent started without a key logs one warning and derives public ids: events stay correct
  (the publisher compares what a duplicate PubAck points at and re-publishes under a fresh id
  when someone took ours), but outsiders can force that extra work.

The key is never logged and never travels in an event.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

if TYPE_CHECKING:
    from agents.settings import AgentSettings

KEY_FILE = "id.key"


def load_or_create(path: Path) -> str:
    """The key kept in ``path``; created (64 hex characters, mode 0600) when there is none."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            pass
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(secrets.token_hex(32) + "\n")
    return path.read_text(encoding="utf-8").strip()


def with_id_key(settings: AgentSettings, state_dir: Path) -> AgentSettings:
    """``settings`` as given when they carry a key, else with the key kept in ``state_dir``
    (created there once): how `orchestra up` and `orchestra demo` key their embedded deployment."""
    if settings.id_key is not None:
        return settings
    key = load_or_create(Path(state_dir) / KEY_FILE)
    return settings.model_copy(update={"id_key": SecretStr(key)})
