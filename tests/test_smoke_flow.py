"""End to end: a task through the in-process orchestra with QA's smoke boot on; the QA report
carries the smoke boot's findings and the task is ready only after the app answered its health
check. Uses the express example (npm installs express once into the test's own cache)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.orchestra_fixtures import copy_example, final, start_orchestra
from tests.test_smoke_boot import _sandbox_missing

pytestmark = [
    pytest.mark.nats,
    pytest.mark.skipif(_sandbox_missing() is not None, reason=_sandbox_missing() or ""),
]


async def test_task_is_ready_after_its_smoke_boot_passed(tmp_path: Path) -> None:
    async for running in start_orchestra(
        tmp_path, smoke_boot=True, smoke_cache=tmp_path / "smoke-cache", validators="fast"
    ):
        project = copy_example("express-service", running.workspace)
        statuses = await running.run_task(
            "Containerize the Node Express application", project, output_dir="out", timeout_s=300
        )
        end = final(statuses)
        assert end.state.value == "ready", end.reason
        rows = await running.stored(statuses[0].task_id)
        artifact_set = next(r for r in rows if r["type"] == "artifact_set.completed")
        assert artifact_set["payload"]["project"] == project  # QA knows where the source is
        report = next(r for r in rows if r["type"] == "report.qa")["payload"]
        smoke = {f["rule"]: f for f in report["findings"] if f.get("tool") == "smoke-boot"}
        assert report["tools"]["smoke-boot"] == "sandbox"
        assert "SMOKE-PASSED" in smoke, report["findings"]
        assert "health check `GET http://127.0.0.1:3000/health` passed" in smoke["SMOKE-PASSED"]["message"]
        assert smoke["SMOKE-PASSED"]["severity"] == "info"
