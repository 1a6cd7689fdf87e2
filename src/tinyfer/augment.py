"""Augmentation of training faces, both kinds, from one config:
offline expansion (the thesis's kind: K transformed copies added before training) and online
random transforms per batch (kornia, on the training device). Never applied to validation or
test data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class AugmentConfig:
    """Which transforms, with what ranges; a zero range (or False) switches one off."""

    online: bool = True
    offline_copies: int = 0  # K: the training set becomes K + 1 times its size
    brightness: float = 0.25  # factor in [1 - b, 1 + b]
    contrast: float = 0.25  # factor in [1 - c, 1 + c]
    zoom: float = 0.1  # scale in [1 - z, 1 + z]
    rotation: float = 10.0  # degrees, +-
    translation: float = 0.08  # fraction of the side, +-
    hflip: bool = True
    # What a deployed camera or a re-saved photo does to a face: each a probability per face
    # (gamma: a range), 0 switches it off. Online only.
    gamma: float = 0.0  # gamma in [1 - g, 1 + g]
    blur: float = 0.0  # Gaussian blur, sigma 0.2-1.5 px at 48 px
    jpeg: float = 0.0  # JPEG compression at quality 25-90
    erasing: float = 0.0  # a random rectangle (2-15% of the face) set to mid-gray
    # Probability that a training face's area beyond its source crop (the replicated border
    # where the face's frame reaches past a tight dataset crop) shows another face's pixels
    # instead, as a photo shows hair, neck or scene there. Online only.
    context_fill: float = 0.0

    @property
    def any_transform(self) -> bool:
        return bool(
            self.brightness
            or self.contrast
            or self.zoom
            or self.rotation
            or self.translation
            or self.hflip
            or self.gamma
            or self.blur
            or self.jpeg
            or self.erasing
        )


def build_augmenter(cfg: AugmentConfig):
    """A torch module mapping ``(B, C, H, W)`` floats in [0, 1] to randomly transformed ones."""
    import kornia.augmentation as K
    from torch import nn

    ops: list = []
    if cfg.hflip:
        ops.append(K.RandomHorizontalFlip(p=0.5))
    if cfg.rotation or cfg.zoom or cfg.translation:
        ops.append(
            K.RandomAffine(
                degrees=cfg.rotation,
                translate=(cfg.translation, cfg.translation) if cfg.translation else None,
                scale=(1 - cfg.zoom, 1 + cfg.zoom) if cfg.zoom else None,
                padding_mode="reflection",
                p=1.0,
            )
        )
    if cfg.brightness:
        ops.append(K.RandomBrightness((1 - cfg.brightness, 1 + cfg.brightness), p=1.0))
    if cfg.contrast:
        ops.append(K.RandomContrast((1 - cfg.contrast, 1 + cfg.contrast), p=1.0))
    if cfg.gamma:
        ops.append(K.RandomGamma((1 - cfg.gamma, 1 + cfg.gamma), p=1.0))
    if cfg.blur:
        ops.append(K.RandomGaussianBlur((5, 5), (0.2, 1.5), p=cfg.blur))
    if cfg.jpeg:
        ops.append(_on_gray(K.RandomJPEG(jpeg_quality=(25.0, 90.0), p=cfg.jpeg)))
    if cfg.erasing:
        ops.append(K.RandomErasing(scale=(0.02, 0.15), value=0.5, p=cfg.erasing))
    return nn.Sequential(*ops)


def _on_gray(op):
    """``op``, which takes RGB, applied to gray ``(B, 1, H, W)`` faces (as three equal
    channels, averaged back)."""
    from torch import nn

    class OnGray(nn.Module):
        def __init__(self):
            super().__init__()
            self.op = op

        def forward(self, x):
            return self.op(x.expand(-1, 3, -1, -1)).mean(1, keepdim=True)

    return OnGray()


def expand_offline(
    X: np.ndarray, y: np.ndarray, cfg: AugmentConfig, *, seed: int = 0, batch: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(X, y)`` with ``cfg.offline_copies`` transformed copies of every image appended.

    ``X`` is ``(N, H, W)`` uint8; the originals come first, unchanged. Deterministic in ``seed``.
    """
    import torch

    k = cfg.offline_copies
    if k <= 0:
        return X, y
    if not cfg.any_transform:
        raise ValueError("offline_copies > 0 but every transform is switched off")
    aug = build_augmenter(cfg)
    copies = []
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for _ in range(k):
            for start in range(0, len(X), batch):
                x = torch.from_numpy(X[start : start + batch]).float().div_(255).unsqueeze(1)
                out = aug(x).squeeze(1).mul_(255).round_().clamp_(0, 255)
                copies.append(out.to(torch.uint8).numpy())
    return np.concatenate([X, *copies]), np.concatenate([y] * (k + 1))
