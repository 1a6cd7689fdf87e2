"""Mirror test-time augmentation on a finished `tinyfer experiment`'s test folds: each fold's
saved model scores its test faces alone and averaged with their mirror images, paired by fold
and by face. Run from the checkout (the experiment's data is prepared again, from its cache).

python benchmarks/fold_tta.py EXP_DIR NAME
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from common import record_main

from tinyfer.core.config import TrainConfig, load_yaml
from tinyfer.core.prepare import prepare
from tinyfer.experiments.stats import mcnemar, paired_test, summary
from tinyfer.training.checkpoint import load_model


def fold_scores(model_file: Path, predictions: Path, X: np.ndarray) -> tuple[float, float, list]:
    """Accuracy without and with mirror TTA on one fold, and each face's correctness."""
    saved = np.load(predictions)
    faces = X[saved["test_idx"]]
    model, _ = load_model(model_file)
    plain = model.predict_proba(faces)
    if not np.allclose(plain, saved["probabilities"], atol=1e-4):
        raise SystemExit(f"{model_file}: does not reproduce the experiment's saved predictions")
    both = (plain + model.predict_proba(np.ascontiguousarray(faces[:, :, ::-1]))) / 2
    y = saved["y_true"]
    right = plain.argmax(1) == y, both.argmax(1) == y
    return float(right[0].mean()), float(right[1].mean()), [r.tolist() for r in right]


def summarize(exp_dir: Path) -> dict:
    cfg = load_yaml(TrainConfig, exp_dir / "config.yaml")
    X = prepare(cfg.data, cfg.prepared_dir, progress=False).X
    variants = {}
    for variant in sorted(p for p in (exp_dir / "runs").iterdir() if p.is_dir()):
        folds = sorted(variant.glob("repeat*/fold*/predictions.npz"))
        scores = [fold_scores(p.parent / "model.pt", p, X) for p in folds]
        plain, tta = np.array([s[0] for s in scores]), np.array([s[1] for s in scores])
        right_plain = np.concatenate([s[2][0] for s in scores])
        right_tta = np.concatenate([s[2][1] for s in scores])
        variants[variant.name] = {
            "folds": len(folds),
            "accuracy": summary(plain),
            "accuracy_tta": summary(tta),
            "fold_accuracy": plain.tolist(),
            "fold_accuracy_tta": tta.tolist(),
            "tta_vs_plain": paired_test(tta, plain),
            "tta_vs_plain_mcnemar": mcnemar(right_tta, right_plain),
        }
        print(f"{variant.name}: {plain.mean():.2%} -> {tta.mean():.2%} with mirror TTA")
    return {"run_command": (exp_dir / "command.txt").read_text().strip(), "variants": variants}


if __name__ == "__main__":
    record_main(__doc__, summarize, "torch")
