"""The one settings mechanism (bus.settings) behind BusConfig and AgentSettings: flags > environment >
defaults, the same rules for both, and a one-line error naming the flag or variable. Pure logic."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

from agents.settings import AgentSettings
from bus.config import BusConfig
from bus.errors import ConfigError
from bus.settings import EnvSettings


@pytest.mark.parametrize(
    ("model", "field", "variable", "env_value", "flag_value", "default"),
    [
        (BusConfig, "ack_wait_s", "ORCHESTRA_ACK_WAIT_S", "7.5", 9.0, 30.0),
        (BusConfig, "nats_url", "NATS_URL", "nats://env:1", "nats://flag:2", None),
        (AgentSettings, "http_port", "ORCHESTRA_HTTP_PORT", "8081", 8082, 0),
        (
            AgentSettings,
            "knowledge_db",
            "ORCHESTRA_KNOWLEDGE_DB",
            "env.db",
            Path("flag.db"),
            Path(".orchestra/knowledge.sqlite3"),
        ),
        (AgentSettings, "workspace", "ORCHESTRA_WORKSPACE", "/env", Path("/flag"), Path.cwd()),
    ],
)
def test_flags_beat_environment_beat_defaults(
    model: type[EnvSettings], field: str, variable: str, env_value: str, flag_value: object, default: object
) -> None:
    """Invariant: for every model and field, a flag that is not None wins, else the variable, else
    the default; an empty variable counts as unset."""
    env = {variable: env_value}
    assert getattr(model.from_env(env, **{field: flag_value}), field) == flag_value
    assert str(getattr(model.from_env(env, **{field: None}), field)) == env_value
    assert getattr(model.from_env({}), field) == default
    assert getattr(model.from_env({variable: ""}), field) == default


def test_both_models_apply_the_same_rules() -> None:
    """Invariant: one mechanism for both models: an empty variable is unset, '0' is a value, and a
    bad value is a ConfigError (AgentSettings used to raise pydantic's multi-line report)."""
    assert AgentSettings.from_env({"ORCHESTRA_HTTP_PORT": "0"}).http_port == 0
    assert AgentSettings.from_env({"ORCHESTRA_SECURITY_CHECKOV": "0"}).security_checkov is False
    assert BusConfig.from_env({"ORCHESTRA_MAX_BYTES": "0"}).max_bytes == 0
    assert BusConfig.from_env({"ORCHESTRA_MAX_BYTES": ""}).max_bytes == 1 << 30
    for model, variable in ((AgentSettings, "ORCHESTRA_CONCURRENCY"), (BusConfig, "ORCHESTRA_FETCH_BATCH")):
        with pytest.raises(ConfigError):
            model.from_env({variable: "many"})


def test_orchestra_nats_url_wins_over_nats_url() -> None:
    env = {"NATS_URL": "nats://plain:1", "ORCHESTRA_NATS_URL": "nats://ours:2"}
    assert BusConfig.from_env(env).nats_url == "nats://ours:2"


def test_comma_separated_delays_from_the_environment() -> None:
    assert BusConfig.from_env({"ORCHESTRA_NAK_DELAYS_S": "0.5, 2,5"}).nak_delays_s == (0.5, 2.0, 5.0)
    assert BusConfig.from_env({}, nak_delays_s=(1.0,)).nak_delays_s == (1.0,)


def test_secret_files(tmp_path: Path) -> None:
    """ORCHESTRA_PASSWORD_FILE (compose/Kubernetes secrets) and ORCHESTRA_TOKEN_FILE supply the
    secret; the variable itself wins over the file."""
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    assert BusConfig.from_env({"ORCHESTRA_PASSWORD_FILE": str(secret)}).password == "s3cret"
    assert BusConfig.from_env({"ORCHESTRA_TOKEN_FILE": str(secret)}).token == "s3cret"
    both = {"ORCHESTRA_PASSWORD_FILE": str(secret), "ORCHESTRA_PASSWORD": "direct"}
    assert BusConfig.from_env(both).password == "direct"


@pytest.mark.parametrize(
    ("model", "env", "flags", "names"),
    [
        (AgentSettings, {"ORCHESTRA_CONCURRENCY": "abc"}, {}, "ORCHESTRA_CONCURRENCY='abc'"),
        (AgentSettings, {"ORCHESTRA_HTTP_PORT": "99999"}, {}, "ORCHESTRA_HTTP_PORT='99999'"),
        (AgentSettings, {"ORCHESTRA_HTTP_PORT": "1"}, {"http_port": 99999}, "--http-port=99999"),
        (AgentSettings, {"ORCHESTRA_VALIDATORS": "most"}, {}, "ORCHESTRA_VALIDATORS='most'"),
        (BusConfig, {"ORCHESTRA_NAK_DELAYS_S": "a,b"}, {}, "ORCHESTRA_NAK_DELAYS_S='a,b'"),
        (BusConfig, {"ORCHESTRA_REPLICAS": "7"}, {}, "ORCHESTRA_REPLICAS='7'"),
        (BusConfig, {"ORCHESTRA_PASSWORD_FILE": "/no/such/secret"}, {}, "ORCHESTRA_PASSWORD_FILE"),
        (BusConfig, {}, {"ack_wait_s": -1}, "--ack-wait-s=-1"),
    ],
)
def test_a_bad_value_is_one_line_naming_its_flag_or_variable(
    model: type[EnvSettings], env: dict[str, str], flags: dict[str, object], names: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        model.from_env(env, **flags)
    message = str(caught.value)
    assert names in message and "\n" not in message, message


def test_a_secret_in_a_bad_value_is_named_never_shown() -> None:
    class Secretive(EnvSettings):
        pin: int | None = Field(None, repr=False)

    with pytest.raises(ConfigError) as caught:
        Secretive.from_env({"ORCHESTRA_PIN": "hunter2"})
    assert "ORCHESTRA_PIN" in str(caught.value) and "hunter2" not in str(caught.value)


def test_adding_a_setting_is_adding_a_field() -> None:
    """A new field reads ORCHESTRA_<FIELD> with no other edit (how `id_key` and friends joined)."""

    class Extended(AgentSettings):
        new_knob: str | None = None

    assert Extended.from_env({"ORCHESTRA_NEW_KNOB": "k"}).new_knob == "k"
    assert Extended.from_env({"ORCHESTRA_NEW_KNOB": "k"}, new_knob="flag").new_knob == "flag"


def test_plain_construction_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Programs and tests that build a model say exactly what they mean; only from_env reads."""
    monkeypatch.setenv("ORCHESTRA_ACK_WAIT_S", "1")
    monkeypatch.setenv("ORCHESTRA_HTTP_PORT", "1234")
    assert BusConfig().ack_wait_s == 30.0 and AgentSettings().http_port == 0
    assert BusConfig.from_env().ack_wait_s == 1.0 and AgentSettings.from_env().http_port == 1234
