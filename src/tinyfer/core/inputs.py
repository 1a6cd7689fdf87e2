"""The input every tinyfer model takes, in one place: gray face crops ``(N, H, W)`` uint8
become ``(N, 1, H, W)`` float32 in [0, 1]. Torch models, ONNX files, int8 calibration and
the recognizer all go through :func:`model_input`; training does the same on its batches
(``training.modules``), after augmentation."""

from __future__ import annotations

import numpy as np

from tinyfer.errors import TinyferError


def model_input(faces: np.ndarray, img_size: int | None = None) -> np.ndarray:
    """``faces`` ``(N, H, W)`` uint8 (H = W = ``img_size`` when given) as the models'
    ``(N, 1, H, W)`` float32 in [0, 1]."""
    faces = np.asarray(faces)
    if faces.ndim != 3 or (img_size is not None and faces.shape[1:] != (img_size, img_size)):
        size = "H, W" if img_size is None else f"{img_size}, {img_size}"
        raise TinyferError(f"faces must be (N, {size}) gray crops; got {faces.shape}")
    if faces.dtype != np.uint8:
        raise TinyferError(f"faces must be uint8 (0-255); got {faces.dtype}")
    return (faces.astype(np.float32) / 255)[:, None]
