"""Distillation targets: teachers' probabilities on faces and mirror images, mixed into the
training targets only."""

import numpy as np
import pytest
import torch

from tinyfer.core.model_files import ModelMeta
from tinyfer.errors import ConfigError
from tinyfer.training.checkpoint import save_model
from tinyfer.training.distill import distilled_targets, teacher_probabilities
from tinyfer.training.models import create_model

LABELS = ("anger", "happiness", "neutral")


def _teacher(path, seed, labels=LABELS, img_size=48):
    torch.manual_seed(seed)
    model = create_model("tiny", num_classes=len(labels)).eval()
    model.logit_bias, model.temperature = [5.0] + [0.0] * (len(labels) - 1), 0.5
    meta = ModelMeta("tiny", tuple(labels), img_size, 1, {"geometry": "template"})
    save_model(path, model, meta)
    return model


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_teachers_average_raw_probabilities_of_face_and_mirror(tmp_path):
    faces = np.random.default_rng(0).integers(0, 255, (5, 48, 48), np.uint8)
    a = _teacher(tmp_path / "a.pt", 0)
    b = _teacher(tmp_path / "b.pt", 1, labels=("neutral", "anger", "happiness", "fear"))
    got = teacher_probabilities([str(tmp_path / "a.pt"), str(tmp_path / "b.pt")], faces, LABELS)
    mirror = np.ascontiguousarray(faces[:, :, ::-1])
    expected = np.zeros((5, 3))
    for model, order in ((a, [0, 1, 2]), (b, [1, 2, 0])):
        for view in (faces, mirror):
            expected += _softmax(model.logits(view)[:, order].astype(np.float64))
    np.testing.assert_allclose(got, expected / 4, atol=1e-6)
    np.testing.assert_allclose(got.sum(1), 1, atol=1e-6)  # the bias and temperature ignored


def test_a_teacher_without_a_class_or_of_another_size_is_refused(tmp_path):
    faces = np.zeros((2, 48, 48), np.uint8)
    _teacher(tmp_path / "two.pt", 0, labels=("anger", "happiness"))
    with pytest.raises(ConfigError, match="two.pt does not know neutral"):
        teacher_probabilities([str(tmp_path / "two.pt")], faces, LABELS)
    _teacher(tmp_path / "big.pt", 0, img_size=64)
    with pytest.raises(ConfigError, match="big.pt takes 64 px faces, these are 48 px"):
        teacher_probabilities([str(tmp_path / "big.pt")], faces, LABELS)


def test_only_training_targets_are_mixed():
    y = np.array([0, 1, 2, 1])
    teacher = np.array([[0.2, 0.6, 0.2], [0.1, 0.1, 0.8]], np.float32)
    out = distilled_targets(y, teacher, 0.25, np.array([0, 2]), 3)
    np.testing.assert_allclose(out[0], 0.75 * np.eye(3)[0] + 0.25 * teacher[0])
    np.testing.assert_allclose(out[2], 0.75 * np.eye(3)[2] + 0.25 * teacher[1])
    np.testing.assert_array_equal(out[[1, 3]], np.eye(3)[[1, 1]])
    soft = np.full((4, 3), 1 / 3, np.float32)
    np.testing.assert_allclose(distilled_targets(soft, teacher, 1.0, np.array([0, 2]), 3)[2],
                               teacher[1])  # fmt: skip
