"""Classification metrics from true and predicted class indices (scikit-learn underneath)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from tinyfer.evaluation.calibration import expected_calibration_error


def score_probabilities(
    y_true: np.ndarray, probs: np.ndarray, labels: Sequence[str]
) -> dict[str, Any]:
    """:func:`compute_metrics` of the most likely class of each row of ``probs``: how every
    model's output is scored (training's splits, evaluation, an experiment's folds)."""
    return compute_metrics(y_true, np.asarray(probs).argmax(1), labels, probs)


def compute_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    labels: Sequence[str],
    probs: np.ndarray | None = None,
) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro-F1, per-class precision/recall/F1/support, and the
    confusion matrix (rows: true class, columns: predicted), over the classes in ``labels``;
    with the predicted ``probs``, also the expected calibration error (``ece``)."""

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0:
        raise ValueError("no samples to evaluate")
    idx = list(range(len(labels)))
    present = sorted(set(y_true.tolist()))
    with warnings.catch_warnings():  # a predicted class absent from the data is no news here
        warnings.simplefilter("ignore", UserWarning)
        p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=idx, zero_division=0)
        balanced = float(balanced_accuracy_score(y_true, y_pred))
        # Macro-F1 over the classes the data holds: an absent class is not a zero.
        macro_f1 = float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0))
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": balanced,
        "macro_f1": macro_f1,
        "macro_f1_over": [labels[i] for i in present],
        "per_class": {
            name: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(s[i]),
            }
            for i, name in enumerate(labels)
        },
        "labels": list(labels),
        "confusion": confusion_matrix(y_true, y_pred, labels=idx).tolist(),
        **({} if probs is None else {"ece": expected_calibration_error(probs, y_true)}),
    }
