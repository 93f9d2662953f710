"""`bench/run.py --quick` runs end to end and writes every figure as a number (no timing asserted)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

REQUIRED = (
    "bus_events_per_s",
    "raw_events_per_s",
    "bus_ratio",
    "knowledge_events_per_s",
    "knowledge_raw_events_per_s",
    "knowledge_ratio",
    "tasks_per_s",
    "task_latency_p50_ms",
    "task_latency_p99_ms",
    "tasks_per_s_fast",
    "task_latency_p50_ms_fast",
    "task_latency_p99_ms_fast",
    "agent_rss_mb",
    "all_in_one_rss_mb",
    "generate_cpu_ms",
)

pytestmark = [pytest.mark.slow, pytest.mark.nats]


def test_quick_bench_writes_every_key_as_a_number(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--output", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    for key in REQUIRED:
        value = results.get(key)
        assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
        assert math.isfinite(value) and value > 0, (key, value)
    # Every quick task ended (ready or failed, never silent), in both validator modes.
    assert results["tasks_finished"] == results["tasks_finished_fast"] > 0
    assert "bus throughput" in proc.stdout
