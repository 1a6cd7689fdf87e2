from types import SimpleNamespace

import numpy as np
import torch

from tinyfer.core.config import AugmentConfig, ClassifyConfig
from tinyfer.training.augment import build_augmenter, expand_offline
from tinyfer.training.data import FaceDataModule
from tinyfer.training.models import create_model
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


def test_context_fill_replaces_only_the_border_and_only_when_training():
    from tinyfer.training.modules import fill_context

    x = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 1, 8, 8) / 4
    valid = torch.ones(4, 1, 8, 8)
    valid[..., :3] = 0  # the left three columns are replicated border
    torch.manual_seed(0)
    filled = fill_context(x, valid, p=1.0)
    assert torch.equal(filled[..., 3:], x[..., 3:])  # the face's own pixels are kept
    assert torch.equal(filled[..., :3], x.roll(1, 0)[..., :3])  # another face shows through
    assert torch.equal(fill_context(x, valid, p=0.0), x)
    # Through the module: training batches carry the mask and are filled, others are not.
    X, y = _faces(8)
    mask = np.full_like(X, 255)
    mask[:, :, :10] = 0
    module = ClassifierModule(create_model("tiny"), ClassifyConfig(),
                              AugmentConfig(online=True, context_fill=1.0, brightness=0,
                                            contrast=0, zoom=0, rotation=0, translation=0,
                                            hflip=False), channels_last=False)  # fmt: skip
    batch = (torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(mask))
    module.trainer = SimpleNamespace(training=True)
    x_train, _ = module.on_after_batch_transfer(batch, 0)
    plain = torch.from_numpy(X).float().div(255).unsqueeze(1)
    assert torch.equal(x_train[..., 10:], plain[..., 10:])
    assert not torch.equal(x_train[..., :10], plain[..., :10])


def test_training_batches_carry_the_valid_mask_only_when_context_fill_is_on():
    X, y = _faces(30)
    parts = {"train": np.arange(20), "val": np.arange(20, 30)}
    valid = np.zeros_like(X)
    for fill, tensors in ((0.5, 3), (0.0, 2)):
        dm = FaceDataModule(X, y, parts, valid=valid,
                            augment=AugmentConfig(context_fill=fill, offline_copies=1))  # fmt: skip
        dm.setup()
        train = dm.train_dataloader().dataset.tensors
        assert len(train) == tensors and len(dm.val_dataloader().dataset.tensors) == 2
        if fill:  # the offline copies' border is unknown: all of them count as the image
            assert train[2][:20].max() == 0 and train[2][20:].min() == 255


def test_deployment_transforms_each_change_the_face_and_stay_in_range():
    torch.manual_seed(0)
    x = torch.rand(8, 1, 48, 48)
    none = dict(brightness=0, contrast=0, zoom=0, rotation=0, translation=0, hflip=False)
    for name in ("gamma", "blur", "jpeg", "erasing"):
        aug = build_augmenter(AugmentConfig(**none, **{name: 0.5 if name == "gamma" else 1.0}))
        assert len(aug) == 1, name
        y = aug(x)
        assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1, name
        assert not torch.allclose(y, x, atol=1e-3), name
