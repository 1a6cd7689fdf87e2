"""Distillation targets: what one or more teacher models say of each training face, mixed into
the target the student learns (``classify.teachers``, ``classify.distill``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from tinyfer.core.model_files import resolve_model_file
from tinyfer.errors import ConfigError

log = logging.getLogger(__name__)


def teacher_probabilities(teachers: Sequence[str], faces: np.ndarray, labels: Sequence[str]):
    """The teachers' mean raw probabilities ``(N, len(labels))`` (no class balance, no
    temperature: what each learned) on ``faces`` ``(N, H, W)`` uint8 and their mirror images,
    as distributions over ``labels``. A teacher is a model.pt, a run directory or a bundled
    model's name; one that lacks a label or takes another input size is refused."""
    from tinyfer.training.checkpoint import load_model

    total = np.zeros((len(faces), len(labels)), np.float64)
    for teacher in teachers:
        file = resolve_model_file(teacher)
        model, meta = load_model(file.with_suffix(".pt"))
        missing = [label for label in labels if label not in meta.labels]
        if missing:
            raise ConfigError(f"classify.teachers: {teacher} does not know "
                              f"{', '.join(missing)}; a teacher needs every class")  # fmt: skip
        if meta.img_size != faces.shape[1]:
            raise ConfigError(f"classify.teachers: {teacher} takes {meta.img_size} px faces, "
                              f"these are {faces.shape[1]} px")  # fmt: skip
        order = [meta.labels.index(label) for label in labels]
        for view in (faces, faces[:, :, ::-1]):
            logits = model.logits(np.ascontiguousarray(view))[:, order].astype(np.float64)
            logits -= logits.max(1, keepdims=True)
            p = np.exp(logits)
            total += p / p.sum(1, keepdims=True)
    return (total / (2 * len(teachers))).astype(np.float32)


def distilled_targets(
    targets: np.ndarray, teacher: np.ndarray, share: float, train: np.ndarray, num_classes: int
) -> np.ndarray:
    """Targets as distributions ``(N, C)``, the training faces' (index array ``train``) mixed
    with the teachers' probabilities ``teacher`` (one row per training face) at ``share``;
    validation and test faces keep their labels."""
    base = targets if targets.ndim == 2 else np.eye(num_classes, dtype=np.float32)[targets]
    out = base.astype(np.float32, copy=True)
    out[train] = (1 - share) * base[train] + share * teacher
    return out
