"""Augmentation of training faces, both kinds, from one config:
offline expansion (the thesis's kind: K transformed copies added before training) and online
random transforms per batch (kornia, on the training device). Never applied to validation or
test data."""

from __future__ import annotations

import kornia.augmentation as K
import numpy as np
import torch
from torch import nn

from tinyfer.core.config import AugmentConfig


def build_augmenter(cfg: AugmentConfig):
    """A torch module mapping ``(B, C, H, W)`` floats in [0, 1] to randomly transformed ones."""
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
