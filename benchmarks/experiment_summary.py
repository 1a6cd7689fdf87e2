"""Record a finished `tinyfer experiment` (its summary, never its data or checkpoints) in
benchmarks/results/.

python benchmarks/experiment_summary.py EXP_DIR NAME [--wall-seconds S]
"""

from __future__ import annotations

import json
from pathlib import Path

from common import record_main

KEPT = ("dataset", "format", "samples", "subjects", "labels", "protocol", "folds", "repeats",
        "seeds")  # fmt: skip


def summarize(exp_dir: Path) -> dict:
    results = json.loads((exp_dir / "results.json").read_text())
    protocol = json.loads((exp_dir / "protocol.json").read_text())
    variants = {
        name: {
            "settings": v["settings"],
            "accuracy": v["accuracy"],
            "macro_f1": v["macro_f1"],
            "fold_accuracy": v["fold_accuracy"],
            "pooled_accuracy": v["pooled"]["accuracy"],
            "pooled_confusion": v["pooled"]["confusion"],
        }
        for name, v in results["variants"].items()
    }
    return {
        "run_command": (exp_dir / "command.txt").read_text().strip(),
        "protocol": {k: protocol[k] for k in KEPT},
        "variants": variants,
        "comparisons": results["comparisons"],
        "claims": results["claims"],
    }


if __name__ == "__main__":
    record_main(__doc__, summarize, "torch", "lightning", "kornia", "scipy")
