"""Record a finished training run's summary (never its data) in benchmarks/results/.

python benchmarks/train_summary.py RUN_DIR NAME [--wall-seconds S]
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from common import record_main


def summarize(run_dir: Path) -> dict:
    m = json.loads((run_dir / "metrics.json").read_text())
    config = yaml.safe_load((run_dir / "config.yaml").read_text())

    def scores(role: str) -> dict | None:
        r = m.get(role)
        if not r:
            return None
        return {
            "n": r["n"],
            "accuracy": r["accuracy"],
            "balanced_accuracy": r["balanced_accuracy"],
            "macro_f1": r["macro_f1"],
            "per_class_f1": {k: v["f1"] for k, v in r["per_class"].items()},
            "per_class_recall": {k: v["recall"] for k, v in r["per_class"].items()},
            "ece": r.get("ece"),
            "confusion": r["confusion"],
        }

    return {
        "run_command": m["command"],
        "model": m["model"],
        "parameters": m["parameters"],
        "labels": m["labels"],
        "split_sizes": m["split_sizes"],
        "train_size_after_expansion": m["train_size_after_expansion"],
        "pretrain": m["pretrain"],
        "classify": m["classify"],
        "adjustments": m.get("adjustments"),
        "adjusted_by": m.get("adjusted_by"),
        "peak_rss_mb": m.get("peak_rss_mb"),
        "val": scores("val"),
        "test": scores("test"),
        "config": config,
    }


if __name__ == "__main__":
    record_main(__doc__, summarize, "torch", "lightning", "kornia")
