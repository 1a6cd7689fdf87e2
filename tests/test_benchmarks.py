"""The benchmark scripts run on tiny inputs (their figures come from full runs, not CI)."""

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[1] / "benchmarks"


def _run(script: str, *args: str, tmp_path: Path):
    env = {**os.environ, "TINYFER_BENCH_RESULTS": str(tmp_path)}
    done = subprocess.run([sys.executable, str(BENCH / script), *args], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


def test_train_speed_runs(tmp_path):
    _run("train_speed.py", "--models", "tiny", "--batch", "4", "--steps", "1", "--name", "t",
         tmp_path=tmp_path)  # fmt: skip
    result = json.loads((tmp_path / "t.json").read_text())
    row = result["images_per_s"][0]
    assert row["model"] == "tiny" and row["channels_last"] > 0 and row["contiguous"] > 0
    assert result["machine"]["cores"] and result["versions"]["torch"]
