"""What a face detector gives and what every detector shares: the ``Face`` record, the
``FaceDetector`` protocol, and the enlargement of small face crops before detection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # x, y, w, h in the original image's pixels
Point = tuple[float, float]


@dataclass(frozen=True)
class Face:
    """A detected face.

    ``score`` is the detector's confidence (Haar: the cascade's level weight, larger is surer;
    MTCNN: its final network's probability, 0-1; ``none``: 1.0). ``eyes`` are the (left, right)
    eye centres in the image, if found; ``landmarks`` the five points MTCNN finds (left eye,
    right eye, nose, left and right mouth corner; left and right as seen in the image).
    """

    box: Box
    score: float
    eyes: tuple[Point, Point] | None = None
    landmarks: tuple[Point, ...] | None = None

    @property
    def area(self) -> int:
        return self.box[2] * self.box[3]


class FaceDetector(Protocol):
    """Anything that finds faces in a gray or BGR uint8 image, largest first."""

    name: str

    def detect(self, image: np.ndarray) -> list[Face]: ...


#: Images whose shorter side is below this are treated as face crops by the detectors.
SMALL_SIDE = 96


def looks_like_a_crop(shape: tuple[int, ...]) -> bool:
    """Whether an image where no face was found may be taken whole as a face crop: small
    (shorter side under :data:`SMALL_SIDE`), yet not tiny, and nearly square, as FER2013's and
    CK+48's crops are (a 1x1 image or a 10x10000 strip is no face)."""
    h, w = shape[:2]
    return 24 <= min(h, w) < SMALL_SIDE and max(h, w) <= 1.5 * min(h, w)


def enlarge_small(image: np.ndarray) -> tuple[np.ndarray, float, int]:
    """``(image, scale, pad)``: a face crop (shorter side under :data:`SMALL_SIDE`: FER2013,
    CK+48) padded with its border and enlarged to 128 px, since detectors miss faces that fill
    the whole image or are tiny (Haar on CK+48: 77% -> 100% found); other images unchanged.
    A point ``p`` of the result is ``p / scale - pad`` in the input."""
    h, w = image.shape[:2]
    if min(h, w) >= SMALL_SIDE:
        return image, 1.0, 0
    pad = round(0.15 * max(h, w))
    image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    scale = 128 / min(image.shape[:2])
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR), scale, pad
