"""Cut a face out of an image: margin, optional eye alignment, gray, resize."""

from __future__ import annotations

import math

import cv2
import numpy as np

from tinyfer.core.faces.face import Face


def crop_face(
    image: np.ndarray,
    face: Face,
    *,
    size: int = 48,
    margin: float = 0.1,
    align: bool = False,
    gray: bool = True,
) -> np.ndarray:
    """Return the face as a square ``(size, size)`` uint8 crop (``(size, size, 3)`` if not gray).

    ``margin`` widens the box by that fraction of its size on each side; the crop is square
    around the box centre, and parts outside the image are filled by replicating the border.
    With ``align`` and eyes known, the image is first rotated about the face centre so that the
    eyes are level.
    """
    if gray and image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    x, y, w, h = face.box
    cx, cy = x + w / 2, y + h / 2
    side = max(w, h) * (1 + 2 * margin)
    if align and face.eyes is not None:
        (lx, ly), (rx, ry) = face.eyes
        angle = math.degrees(math.atan2(ry - ly, rx - lx))
        if abs(angle) <= 45:  # larger means the eyes were misfound; keep the face upright
            rot = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
            image = cv2.warpAffine(
                image,
                rot,
                (image.shape[1], image.shape[0]),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
    # The square box, clipped to the image; what falls outside is filled by the border.
    half = side / 2
    x0, y0 = round(cx - half), round(cy - half)
    x1, y1 = x0 + max(1, round(side)), y0 + max(1, round(side))
    h_img, w_img = image.shape[:2]
    patch = image[max(0, y0) : min(h_img, y1), max(0, x0) : min(w_img, x1)]
    pads = (max(0, -y0), max(0, y1 - h_img), max(0, -x0), max(0, x1 - w_img))
    if any(pads):
        patch = cv2.copyMakeBorder(patch, *pads, borderType=cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if patch.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interp)
