"""Every `orchestra` command fed random and odd arguments, against a real server and a real knowledge
process: each invocation ends with an exit code (never an exception), and a failure says why in
one line (`error: ...`) or as click's usage error; no traceback, ever."""

from __future__ import annotations

import os
import string
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from agents.cli.main import app
from agents.runner import AGENTS
from bus.embedded import EmbeddedServer
from contracts.vocabulary import CIProvider, NoteKind, Strategy, Target
from tests.faults.procs import AgentProcess, provision

pytestmark = pytest.mark.nats

COMMANDS = {
    "up",
    "agent",
    "provision",
    "task",
    "watch",
    "history",
    "contracts",
    "health",
    "demo",
    "knowledge",
    "dlq",
}
CLI = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
EXIT_CODES = {0, 1, 2, 3, 4}

odd_text = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=30),
    st.sampled_from(
        [
            "",
            " ",
            "-",
            "--",
            "a.b",
            ">",
            "*",
            "../../etc/passwd",
            "/etc",
            '"',
            "NEAR(a b)",
            "x" * 5000,
            "é\u0301\u202e\u200b🚀",
            "\x00",
            "AKIAABCDEFGHIJKLMNOP",
        ]
    ),
)


class World:
    def __init__(self, url: str, tmp: Path) -> None:
        self.url = url
        self.tmp = tmp
        self.project = tmp / "project"
        self.project.mkdir()
        (tmp / "a-file").write_text("not a directory")
        self.runner = CliRunner()
        self.env = {
            "NATS_URL": url,
            "ORCHESTRA_PUBLISH_ATTEMPTS": "2",
            "ORCHESTRA_PUBLISH_TIMEOUT_S": "1",
        }
        self.last_error = ""  # the error line of the last invocation, if any

    def invoke(self, args: list[str], env: dict[str, str] | None = None) -> int:
        """The property every invocation must satisfy; returns the exit code."""
        result = self.runner.invoke(app, args, env={**self.env, **(env or {})})
        where = f"orchestra {' '.join(a[:40] for a in args)[:300]}"
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            where,
            repr(result.exception),
        )
        assert result.exit_code in EXIT_CODES, (where, result.exit_code, result.output)
        assert "Traceback" not in result.output, (where, result.output)
        # Log records (JSON, one per line) aside, an error is the last line, and only one. Lines as
        # a terminal shows them: only a newline breaks one (str.splitlines also breaks on
        # \x1c-\x1e, \x85, \u2028, which a user's odd argument may contain).
        lines = [ln for ln in result.output.split("\n") if ln.strip() and not ln.startswith("{")]
        errors = [ln for ln in lines if ln.startswith("error:")]
        self.last_error = errors[-1] if errors else ""
        if result.exit_code in (2, 3, 4) or errors:
            usage = "Usage:" in result.output
            one_line = len(errors) == 1 and lines[-1] == errors[0]
            assert one_line or (usage and not errors), (where, result.output)
        return result.exit_code


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("fuzz-cli")
    server = EmbeddedServer(store_dir=tmp / "nats").start()
    provision(server.url)
    knowledge = AgentProcess("knowledge", server.url, tmp).start()
    deadline = time.monotonic() + 60
    while not knowledge.ready():
        assert knowledge.exited is None and time.monotonic() < deadline, knowledge.log_tail()
        time.sleep(0.1)
    try:
        yield World(server.url, tmp)
    finally:
        knowledge.kill()
        server.stop()
        # The commands configured structlog to print to CliRunner's (now closed) streams.
        structlog.reset_defaults()


def _maybe(flag: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    return st.one_of(st.just([]), values.map(lambda v: [flag, v]))


def _choice_or_odd(enum: type) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from([e.value for e in enum]), odd_text)


@CLI
@given(st.data())
def test_task(world: World, data: st.DataObject) -> None:
    """Invariant: `orchestra task` with any text, project, target, strategy, CI, env and output
    ends with an exit code and, on failure, one error line (World.invoke checks it)."""
    project = data.draw(
        st.sampled_from([str(world.project), str(world.tmp / "missing"), str(world.tmp / "a-file"), ""])
    )
    args = ["task", data.draw(odd_text), "--project", project]
    args += data.draw(_maybe("--target", st.one_of(odd_text, st.just("docker,k8s"), _choice_or_odd(Target))))
    args += data.draw(_maybe("--strategy", _choice_or_odd(Strategy)))
    args += data.draw(_maybe("--ci", _choice_or_odd(CIProvider)))
    args += data.draw(_maybe("--env", odd_text))
    args += data.draw(_maybe("--output", odd_text))
    args += data.draw(st.sampled_from([[], ["--json"]]))
    world.invoke(args)


@CLI
@given(st.data())
def test_knowledge_search_and_store(world: World, data: st.DataObject) -> None:
    """Invariant: `knowledge search|store` with any query, filters, limit, note text, kind, agent and
    task id: an exit code and at most one error line, never a traceback."""
    if data.draw(st.booleans()):
        args = ["knowledge", "search", data.draw(odd_text)]
        args += data.draw(_maybe("--type", odd_text))
        args += data.draw(_maybe("--agent", odd_text))
        args += data.draw(_maybe("--task", odd_text))
        args += data.draw(_maybe("--limit", st.integers(-3, 5000).map(str) | odd_text))
    else:
        args = ["knowledge", "store", data.draw(odd_text), "--type", data.draw(_choice_or_odd(NoteKind))]
        args += ["--agent", data.draw(odd_text)]
        args += data.draw(_maybe("--task", odd_text))
    args += data.draw(st.sampled_from([[], ["--json"]]))
    world.invoke(args)


@CLI
@given(st.data())
def test_history_watch_dlq(world: World, data: st.DataObject) -> None:
    """Invariant: `history`, `watch --task`, `dlq list|show|replay` with any id: an answer or one
    error line (a malformed task id is refused before it reaches a subject)."""
    key = data.draw(odd_text)
    command = data.draw(st.sampled_from(["history", "watch", "dlq show", "dlq replay", "dlq list"]))
    if command == "watch":
        # A well-formed task id would be followed (forever): only ids that are not task ids.
        key = key if set(key) - set(string.ascii_letters + string.digits + "_-") or not key else key + "."
        args = ["watch", "--task", key]
    elif command == "dlq list":
        args = ["dlq", "list", *data.draw(_maybe("--consumer", odd_text))]
    else:
        args = [*command.split(), key]
    world.invoke([*args, *data.draw(st.sampled_from([[], ["--json"]]))])


@CLI
@given(st.lists(odd_text, max_size=5), st.sampled_from(["agent", "rebuild", "other"]))
def test_random_argv(world: World, argv: list[str], kind: str) -> None:
    """Invariant: random argument vectors, unknown agent names and odd rebuild targets: click's
    usage error or one error line, never a traceback."""
    if kind == "agent":
        # A real agent name would start that agent: only names that are not agents.
        name = argv[0] if argv and argv[0] not in AGENTS and not argv[0].startswith("-") else "chef"
        world.invoke(["agent", name, "--nats-url", world.url])
    elif kind == "rebuild":
        name = (argv[0] if argv else "") or "x"
        out = world.tmp / "rebuilds" / name.replace("/", "_").replace("\x00", "_")[:100]
        world.invoke(["knowledge", "rebuild", "--out", str(out)])
        world.invoke(["knowledge", "rebuild", "--out", str(world.tmp / "a-file")])
    else:
        if argv and argv[0] in COMMANDS:
            argv = ["no-such-command", *argv]
        world.invoke(argv)


def test_oversized_and_wrong_inputs_say_why_in_one_line(world: World) -> None:
    """The named cases of the issue: payloads over the size limits, a wrong target, odd unicode."""
    project = str(world.project)
    for args in (
        ["task", "x" * 5000, "--project", project],
        ["task", "Deploy", "--project", project, "--env", "e" * 300],
        ["task", "Deploy", "--project", project, "--target", "moon"],
        ["knowledge", "store", "y" * 5000, "--type", "edit", "--agent", "qa"],
        ["knowledge", "store", "hi", "--type", "edit", "--agent", "z" * 300],
        ["knowledge", "store", "hi", "--type", "gossip", "--agent", "qa"],
        ["knowledge", "store", "hi", "--type", "edit", "--agent", "qa", "--task", "a.b"],
        ["watch", "--task", ">"],
        ["dlq", "show", "\u202e\x00"],
        ["task", "é\u0301\u202e🚀", "--project", project],
    ):
        world.invoke(args)
    assert os.environ.get("NATS_URL") != world.url  # CliRunner's env did not leak


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ORCHESTRA_CONCURRENCY", "abc"),
        ("ORCHESTRA_CONCURRENCY", "0"),
        ("ORCHESTRA_ACK_WAIT_S", "-1"),
        ("ORCHESTRA_MAX_DELIVER", "0"),
        ("ORCHESTRA_NAK_DELAYS_S", "a,b"),
        ("ORCHESTRA_HTTP_PORT", "99999"),
        ("ORCHESTRA_REPLICAS", "7"),
        ("ORCHESTRA_KNOWLEDGE_DB", "/proc/no-such-dir/knowledge.sqlite3"),
        ("ORCHESTRA_PASSWORD_FILE", "/no/such/secret"),
        ("ORCHESTRA_VALIDATORS", "most"),
    ],
)
def test_an_agent_with_a_bad_setting_says_which_in_one_line(world: World, variable: str, value: str) -> None:
    """The container entrypoint with a bad ORCHESTRA_* value: a one-line error naming the variable
    (or, for a path the process cannot use, the path), no traceback."""
    code = world.invoke(["agent", "knowledge", "--connect-wait", "1"], env={variable: value})
    assert code in (1, 2)
    assert variable in world.last_error or value in world.last_error, world.last_error


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["up", "--http-port", "99999"], {}, "--http-port=99999"),
        (["up"], {"ORCHESTRA_HTTP_PORT": "http"}, "ORCHESTRA_HTTP_PORT='http'"),
        (
            ["task", "x", "--project", "."],
            {"ORCHESTRA_PUBLISH_TIMEOUT_S": "soon"},
            "ORCHESTRA_PUBLISH_TIMEOUT_S",
        ),
        (["history", "T"], {"ORCHESTRA_FETCH_BATCH": "0"}, "ORCHESTRA_FETCH_BATCH='0'"),
        (["knowledge", "search", "x"], {"ORCHESTRA_NATS_URL": "", "ORCHESTRA_MAX_BYTES": "x"}, "MAX_BYTES"),
        (["report"], {"ORCHESTRA_KNOWLEDGE_DB": "/no/such.sqlite3"}, "/no/such.sqlite3"),
        (["health"], {"ORCHESTRA_HTTP_PORT": "-1"}, "ORCHESTRA_HTTP_PORT='-1'"),
    ],
)
def test_every_command_names_a_bad_flag_or_variable_in_one_line(
    world: World, args: list[str], env: dict[str, str], named: str
) -> None:
    """A bad setting given to any command, by flag or variable: exit 2 and one error line that says
    which flag or variable was wrong (and never starts anything first)."""
    code = world.invoke(args, env=env)
    assert code == 2 and world.last_error, world.last_error
    assert named in world.last_error, world.last_error
