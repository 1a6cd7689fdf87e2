from types import SimpleNamespace

import numpy as np
import torch

from tinyfer.augment import AugmentConfig, build_augmenter, expand_offline
from tinyfer.config import ClassifyConfig
from tinyfer.models import create_model
from tinyfer.training.data import FaceDataModule
from tinyfer.training.modules import ClassifierModule


def _faces(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (n, 48, 48), np.uint8), rng.integers(0, 7, n)


def test_offline_expansion_adds_k_copies_and_keeps_originals_first():
    X, y = _faces()
    X2, y2 = expand_offline(X, y, AugmentConfig(offline_copies=2), seed=1)
    assert X2.shape == (60, 48, 48) and X2.dtype == np.uint8
    np.testing.assert_array_equal(X2[:20], X)
    np.testing.assert_array_equal(y2, np.concatenate([y, y, y]))
    assert not np.array_equal(X2[20:40], X) and not np.array_equal(X2[20:40], X2[40:])
    X3, _ = expand_offline(X, y, AugmentConfig(offline_copies=2), seed=1)
    np.testing.assert_array_equal(X2, X3)  # deterministic in the seed
    assert expand_offline(X, y, AugmentConfig(offline_copies=0))[0] is X


def test_offline_expansion_touches_training_data_only():
    X, y = _faces(30)
    parts = {"train": np.arange(20), "val": np.arange(20, 25), "test": np.arange(25, 30)}
    dm = FaceDataModule(X, y, parts, augment=AugmentConfig(offline_copies=3))
    dm.setup()
    assert dm.train_size == 20 * 4
    val_x, val_y = dm.val_dataloader().dataset.tensors
    np.testing.assert_array_equal(val_x.numpy(), X[20:25])
    np.testing.assert_array_equal(val_y.numpy(), y[20:25])
    assert len(dm.test_dataloader().dataset) == 5


def test_every_transform_can_be_switched_off():
    off = AugmentConfig(brightness=0, contrast=0, zoom=0, rotation=0, translation=0, hflip=False)
    assert not off.any_transform and len(build_augmenter(off)) == 0
    only_flip = build_augmenter(
        AugmentConfig(brightness=0, contrast=0, zoom=0, rotation=0, translation=0)
    )
    assert len(only_flip) == 1


def test_online_augmentation_changes_pixels_keeps_labels_and_spares_evaluation():
    X, y = _faces(16)
    module = ClassifierModule(create_model("tiny"), ClassifyConfig(), AugmentConfig(),
                              channels_last=False)  # fmt: skip
    batch = (torch.from_numpy(X), torch.from_numpy(y))
    module.trainer = SimpleNamespace(training=True)
    x_aug, y_aug = module.on_after_batch_transfer(batch, 0)
    plain = torch.from_numpy(X).float().div(255).unsqueeze(1)
    assert x_aug.shape == plain.shape and not torch.allclose(x_aug, plain)
    assert torch.equal(y_aug, batch[1])
    module.trainer = SimpleNamespace(training=False)
    x_eval, _ = module.on_after_batch_transfer(batch, 0)
    assert torch.equal(x_eval, plain)
