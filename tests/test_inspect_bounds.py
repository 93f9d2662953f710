"""Inspection of a project of any size: bounded reads, what was skipped said, and off the event loop.

A checkout with hundreds of megabytes of sources (generated modules, bundles, data) once blocked
the agents' event loop for minutes: no heartbeat, so the server redelivered the task to another
handler while the first was still reading. Reading is now bounded per file, per scan and per walk
(agents/inspection/tree.py), and both agents inspect in a worker thread.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agents.inspection import tree as tree_module
from agents.inspection.inspect import inspect_project
from agents.inspection.tree import MAX_SOURCE_BYTES, MAX_SOURCE_FILES, ProjectTree
from tests.orchestra_fixtures import EXAMPLES, Running, assert_delivered_once, final, start_orchestra

STATES = ["received", "planning", "generating", "validating", "ready"]
# A realistic generated module: about 1 MB of plain Python per file.
_LINE = 'def handler_{n:05d}(request):\n    return {{"status": "ok", "value": compute(request, {n})}}\n\n'
MEGABYTE_OF_PYTHON = "".join(_LINE.format(n=n) for n in range(12_000)).encode()[:1_000_000]


def fastapi_copy(root: Path, name: str = "svc") -> Path:
    shutil.copytree(EXAMPLES / "fastapi-service", root / name, ignore=shutil.ignore_patterns("__pycache__"))
    return root / name


def test_file_budget_is_kept_and_the_rest_counted(tmp_path: Path) -> None:
    """Invariant: at most MAX_SOURCE_FILES sources are scanned; how many more there were is said."""
    project = fastapi_copy(tmp_path)
    own = len(list(ProjectTree(project).files(".py")))
    generated = project / "app" / "generated"
    generated.mkdir()
    for i in range(MAX_SOURCE_FILES + 10):
        (generated / f"m{i:05d}.py").write_text(f"X_{i} = {i}\n")
    tree = ProjectTree(project)
    assert len(list(tree.files(".py"))) == MAX_SOURCE_FILES
    skipped = tree.skipped()
    over = own + 10
    assert skipped[0] == f"skipped {over:,} source files over the {MAX_SOURCE_FILES:,}-file budget"
    assert "not detected" in skipped[-1]


def test_large_sources_are_skipped_and_said(tmp_path: Path) -> None:
    """Invariant: a source file over MAX_SOURCE_BYTES is not read; the facts' assumptions say so."""
    project = fastapi_copy(tmp_path)
    (project / "app" / "bundle.py").write_bytes(b"# generated\n" + b"x = 1\n" * (MAX_SOURCE_BYTES // 6 + 1))
    facts = inspect_project(project)
    assert any(
        "skipped 1 source files over 256 KiB each" in a and "app/bundle.py" in a for a in facts.assumptions
    )
    assert facts.start_command[0] == "uvicorn", "the project is still detected from what was read"


def test_read_budget_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Invariant: one scan holds at most MAX_SOURCE_TOTAL bytes of source text; the rest is counted."""
    project = fastapi_copy(tmp_path)
    for i in range(5):
        (project / "app" / f"big{i}.py").write_bytes(b"y = 2\n" * 10_000)  # 60 KB each
    monkeypatch.setattr(tree_module, "MAX_SOURCE_TOTAL", 100_000)
    tree = ProjectTree(project)
    read = sum(len(text) for _, text in tree.sources(".py"))
    assert read <= 100_000
    assert any("MiB read budget" in line for line in tree.skipped())


def test_vendored_folders_are_not_walked(tmp_path: Path) -> None:
    project = fastapi_copy(tmp_path)
    for vendored in ("third_party", "bower_components", "node_modules"):
        (project / vendored).mkdir()
        (project / vendored / "lib.py").write_text("import os\nos.environ['VENDORED']\n")
    assert not any(
        p.startswith(("third_party", "bower", "node_modules")) for p in ProjectTree(project).files(".py")
    )
    assert "VENDORED" not in inspect_project(project).env_vars


# -- on the bus -------------------------------------------------------------------------------


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    # ack_wait 2 s: a handler that blocks the loop for longer loses its message to a redelivery.
    async for r in start_orchestra(tmp_path, validators="fast", ack_wait_s=2.0):
        yield r


async def assert_one_clean_run(running: Running, task_statuses: list) -> None:
    """Every state once, in order; no message of any agent was redelivered (a loop blocked past the
    ack wait shows as a redelivery) and no status was published twice."""
    states = [s.payload.state.value for s in task_statuses]
    assert states == STATES, [(s.payload.state.value, s.payload.reason) for s in task_statuses]
    assert len({s.id for s in task_statuses}) == len(task_statuses)
    await assert_delivered_once(running, ["architect", "devops", "credentials", "qa", "security"])


@pytest.mark.nats
@pytest.mark.slow
async def test_300_one_megabyte_sources_keep_the_agents_responsive(running: Running) -> None:
    """Invariant: a project with 300 sources of 1 MB each ends ready with every status once, no
    redelivery (the consumers kept heart-beating), and the skipped files on record."""
    project = fastapi_copy(running.workspace)
    generated = project / "app" / "generated"
    generated.mkdir()
    for i in range(300):
        (generated / f"module_{i:03d}.py").write_bytes(MEGABYTE_OF_PYTHON)
    statuses = await running.run_task("Containerize the Python FastAPI application", "svc", output_dir="out")
    await assert_one_clean_run(running, statuses)
    rows = await running.stored(statuses[0].task_id)
    notes = [r["payload"]["text"] for r in rows if r["type"] == "knowledge.note"]
    assert any("skipped 300 source files over 256 KiB each" in n for n in notes), notes


@pytest.mark.nats
async def test_a_slow_inspection_runs_off_the_event_loop(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Invariant: inspection runs in a worker thread in both agents; one that takes longer than
    the ack wait (a slow disk: 2.5 s here) neither blocks heartbeats nor causes a redelivery."""
    from agents.inspection import inspect as inspect_module

    real = inspect_module.inspect_project
    threads: list[bool] = []

    def slow_disk(*args, **kwargs):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread() is threading.main_thread())
        time.sleep(2.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(inspect_module, "inspect_project", slow_disk)
    fastapi_copy(running.workspace)
    statuses = await running.run_task("Containerize the Python FastAPI application", "svc", output_dir="out")
    assert final(statuses).state.value == "ready"
    assert threads == [False, False], "the architect and DevOps each inspected once, off the loop"
    await assert_one_clean_run(running, statuses)
