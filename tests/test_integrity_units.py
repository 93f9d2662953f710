"""The pure parts behind tests/test_integrity.py: the id key, DevOps' own secret check, and which
conversations a deadline watches (no server needed)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from agents.devops.agent import refuse_secrets
from agents.devops.silence import conversation
from agents.idkey import load_or_create
from agents.settings import AgentSettings
from bus.errors import ConfigError
from contracts import EventType

TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"


def test_up_keeps_one_private_key_per_store(tmp_path: Path) -> None:
    """Invariant: the key file is created once, readable by its owner only, and read back the same."""
    path = tmp_path / ".orchestra" / "id.key"
    key = load_or_create(path)
    assert len(key) == 64 and load_or_create(path) == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_id_key_comes_from_the_environment_or_a_file_and_never_shows(tmp_path: Path) -> None:
    secret = tmp_path / "id-key"
    secret.write_text("from-a-mounted-secret-0123\n")
    assert AgentSettings.from_env({"ORCHESTRA_ID_KEY_FILE": str(secret)}).id_key.get_secret_value() == (
        "from-a-mounted-secret-0123"
    )
    settings = AgentSettings.from_env({"ORCHESTRA_ID_KEY": "from-the-environment-0123"})
    assert settings.id_key.get_secret_value() == "from-the-environment-0123"
    assert "from-the-environment" not in repr(settings) + str(settings.model_dump())
    assert AgentSettings.from_env({}).id_key is None
    with pytest.raises(ConfigError, match=r"ORCHESTRA_ID_KEY: .*at least 16") as exc:
        AgentSettings.from_env({"ORCHESTRA_ID_KEY": "short"})
    assert "short" not in str(exc.value)


def test_devops_refuses_to_write_a_literal_secret_whatever_the_verdict() -> None:
    with pytest.raises(ValueError, match=r"refused: Dockerfile line 2") as exc:
        refuse_secrets({"Dockerfile": f"FROM python:3.12-slim\nENV GITHUB_TOKEN={TOKEN}\n"})
    assert TOKEN not in str(exc.value)
    refuse_secrets({"Dockerfile": "FROM python:3.12-slim\nENV GITHUB_TOKEN=${GITHUB_TOKEN}\n"})


def test_deadlines_watch_what_devops_asked_each_agent_per_the_subject_table() -> None:
    assert conversation("credentials").asked == EventType.CREDENTIAL_REQUESTED
    assert conversation("credentials").answer == EventType.CREDENTIAL_ISSUED
    assert (conversation("qa").asked, conversation("qa").answer) == (
        EventType.ARTIFACT_SET_COMPLETED,
        EventType.REPORT_QA,
    )
    assert conversation("security").answer == EventType.REPORT_SECURITY
