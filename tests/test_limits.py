"""Contract limits that real input reaches: derived text is clipped to its own bound; input over a
limit ends the task once, with one line naming the limit and by how much.

Each case is a task through a real nats-server. Before, these made a handler raise pydantic's
multi-line report: the architect failed five times on a 4,000-character task ("task received: " +
the text is longer than a reason may be), 151 environment variables gave a four-line dump as the
failure reason, and credential references or an artifact set over their bounds were retried until
they were dead-lettered, the task failing only at its deadline. (An artifact set over its bounds,
checked by DevOps before it emits one, is out of reach of real input once the references fit the
task state: the largest found is 914,593 bytes for a 920,576-byte limit.)
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from contracts.payloads import ServiceSpec
from contracts.vocabulary import Target
from tests.orchestra_fixtures import EXAMPLES, Running, assert_delivered_once, final, start_orchestra

pytestmark = pytest.mark.nats


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async for r in start_orchestra(tmp_path, validators="fast"):
        yield r


def fastapi_copy(workspace: Path, name: str = "svc") -> str:
    shutil.copytree(
        EXAMPLES / "fastapi-service", workspace / name, ignore=shutil.ignore_patterns("__pycache__")
    )
    return name


async def assert_handled_once(running: Running, statuses: list) -> None:
    """No handler failed on the way (nothing redelivered or dead-lettered); every state once; the
    reason is one line, not pydantic's report."""
    await assert_delivered_once(running, ["architect", "devops", "credentials", "qa", "security"])
    states = [s.payload.state.value for s in statuses]
    assert len(states) == len(set(states)), states
    reason = final(statuses).reason
    assert "\n" not in reason and "validation error" not in reason and "errors.pydantic.dev" not in reason


async def test_a_task_text_at_the_limit_is_planned_once(running: Running) -> None:
    """Invariant: a 3,995-character task (limit 4,000) ends ready; its "task received" status is
    clipped to the reason's bound, and the architect handled it once."""
    project = fastapi_copy(running.workspace)
    text = "Containerize the Python FastAPI application. " + "context " * 494 + "end"
    assert 3_986 <= len(text) <= 4_000
    statuses = await running.run_task(text, project, output_dir="out")
    assert final(statuses).state.value == "ready", final(statuses)
    received = statuses[0].payload.reason
    assert (
        len(received) == 4_000
        and received.startswith("task received: Containerize")
        and received.endswith("…")
    )
    await assert_handled_once(running, statuses)


async def test_a_text_at_the_limit_that_is_not_understood_fails_once(running: Running) -> None:
    project = fastapi_copy(running.workspace)
    statuses = await running.run_task("paint the walls " * 249, project)
    end = final(statuses)
    assert (end.state.value, end.agent) == ("failed", "architect")
    assert "I do not understand" in end.reason and len(end.reason) <= 4_000
    await assert_handled_once(running, statuses)


async def test_more_environment_variables_than_a_task_carries(running: Running) -> None:
    """Invariant: a project reading 150 environment variables (a task carries 128) fails at
    planning with one line naming env_vars, the count, the limit and by how much."""
    project = fastapi_copy(running.workspace)
    reads = "".join(f'V{i} = os.environ.get("SETTING_{i:03d}")\n' for i in range(150))
    (running.workspace / project / "app" / "many_settings.py").write_text("import os\n\n" + reads)
    statuses = await running.run_task("Containerize the Python FastAPI application", project)
    end = final(statuses)
    assert (end.state.value, end.agent) == ("failed", "architect")
    # 150 read by the code, and what the example's .env.example names
    assert re.search(r"env_vars: 1[56]\d items, over the limit of 128 by \d+;", end.reason), end.reason
    await assert_handled_once(running, statuses)


async def test_a_start_script_argument_longer_than_the_contract(running: Running) -> None:
    project = running.workspace / "node-svc"
    project.mkdir()
    (project / "server.js").write_text("require('express')().listen(3000)\n")
    package = {"name": "node-svc", "scripts": {"start": "node server.js " + "a" * 300}, "dependencies": {}}
    (project / "package.json").write_text(json.dumps(package))
    statuses = await running.run_task("Containerize the Node.js service", "node-svc")
    end = final(statuses)
    assert (end.state.value, end.agent) == ("failed", "architect")
    assert "start_command.2: 300 characters, over the limit of 256 by 44" in end.reason, end.reason
    await assert_handled_once(running, statuses)


async def test_an_output_dir_too_long_for_the_status_event(running: Running) -> None:
    """Invariant: an output dir whose absolute path will not fit the ready status (1,024
    characters) is refused at planning, before anything is generated or written."""
    project = fastapi_copy(running.workspace)
    output = "/".join(["d" * 200] * 5)  # 1,004 characters: valid input, longer once resolved
    statuses = await running.run_task(
        "Containerize the Python FastAPI application", project, output_dir=output
    )
    end = final(statuses)
    assert (end.state.value, end.agent) == ("failed", "architect")
    assert "output dir resolves to" in end.reason and "over the limit of 1,024 by" in end.reason, end.reason
    assert not (running.workspace / ("d" * 200)).exists()
    await assert_handled_once(running, statuses)


@pytest.mark.parametrize(
    ("env_vars", "environments", "expected"),
    [
        # 100 secrets x 8 environments x 3 target families = 2,400 references (limit 2,048)
        (
            [f"SERVICE_TOKEN_{i:03d}" for i in range(100)],
            [f"env{i}" for i in range(8)],
            "credential references for this task: secrets: 2,400 items, over the limit of 2,048 by 352",
        ),
        # a secret store key svc/<environment>/<variable> longer than a name (128)
        (
            ["API_TOKEN"],
            ["e" * 120],
            "credential references for this task: key: 134 characters, over the limit of 128 by 6",
        ),
        # 1,920 references fit their event but not the task state DevOps keeps them in (and the
        # artifacts listing them would not fit theirs: a 300 KiB runbook, a 1 MB artifact set)
        (
            [f"A_VERY_LONG_SERVICE_API_TOKEN_VALUE_NAME_{i:03d}" for i in range(128)],
            ["development", "staging", "production", "qualityassurance", "performance"],
            "credential references for this task (1,920) take",
        ),
    ],
    ids=["too-many-references", "key-too-long", "too-large-for-the-task-state"],
)
async def test_credential_references_over_their_bounds_fail_at_planning(
    running: Running, env_vars: list[str], environments: list[str], expected: str
) -> None:
    """Invariant: a task whose credential references cannot travel or be kept fails at planning,
    once, with one line naming the limit, before any agent works on it."""
    project = fastapi_copy(running.workspace)
    statuses = await running.run_task(
        "Deploy everything",
        project,
        targets=list(Target),
        environments=environments,
        service=ServiceSpec(env_vars=env_vars),
    )
    end = final(statuses)
    assert (end.state.value, end.agent) == ("failed", "architect")
    assert expected in end.reason, end.reason
    await assert_handled_once(running, statuses)
