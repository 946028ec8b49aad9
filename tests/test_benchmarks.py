"""The benchmark harness's smoke pass: it must keep running, whatever the figures say.

No wall-clock assertions (these machines are shared and noisy): only that every workload
produced a figure or said why it was skipped, and that the JSON is written. One repetition a
side is enough for that; the figures themselves come from full passes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.timeout(300)
def test_quick_pass_writes_a_figure_for_every_workload(tmp_path: Path) -> None:
    # Unmeasured even under `coverage run`: tracing every process the harness starts would
    # take minutes, and what it measures is wtflow's speed, not the harness's code.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--reps", "1", "--out", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (result,) = tmp_path.glob("*-quick.json")
    figures = json.loads(result.read_text())["figures"]
    measured = [f for f in figures if not f["skipped"]]
    assert all(f["ratio"] is not None and f["ratio"] > 0 for f in measured), figures
