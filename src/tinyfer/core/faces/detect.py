"""Face detectors behind one small protocol: Haar cascades (OpenCV), and ``none`` for crops."""

from __future__ import annotations

import math

import cv2
import numpy as np

from tinyfer.core.faces.face import Box, Face, FaceDetector, Point, enlarge_small
from tinyfer.core.kinds import DETECTORS
from tinyfer.errors import TinyferError


class WholeImage:
    """The ``none`` detector: the image is already a face crop."""

    name = "none"

    def detect(self, image: np.ndarray) -> list[Face]:
        h, w = image.shape[:2]
        return [Face((0, 0, w, h), 1.0)]


def _cascade(file: str):
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + file)
    if cascade.empty():
        raise TinyferError(
            f"OpenCV's {file} is missing; install opencv-python-headless<5 (OpenCV 5 ships no "
            "Haar cascades)"
        )
    return cascade


WINDOW = 24  # the side of the frontal-face cascade's detection window, in pixels


class HaarDetector:
    """OpenCV's frontal-face Haar cascade, run on a downscaled copy for speed.

    ``min_face`` is the smallest face to find, as a fraction of the image's shorter side; the
    image is downscaled until such a face just covers the cascade's 24-pixel window, so the
    cost follows ``min_face``, not the image's resolution (``benchmarks/detector_sweep.py``).
    ``work_side`` keeps the working copy's shorter side at least that long: coarse copies give
    coarse boxes (a 256-px demo set detected at 128 px lost 11 points of test accuracy), so
    datasets are prepared with it; prediction trades it for speed.
    ``find_eyes`` also locates the eyes in each face (for alignment); it costs time.
    """

    name = "haar"

    def __init__(
        self,
        min_face: float = 0.1,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        find_eyes: bool = False,
        work_side: int = 0,
    ):
        if not 0 < min_face <= 1:
            raise TinyferError(f"min_face is a fraction of the image's side; got {min_face}")
        if not 1 < scale_factor <= 2:
            raise TinyferError(f"scale_factor is the pyramid's step, above 1 and at most 2; "
                               f"got {scale_factor}")  # fmt: skip
        if min_neighbors < 0:
            raise TinyferError(f"min_neighbors must be 0 or more; got {min_neighbors}")
        self.min_face = min_face
        self.work_side = work_side
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.find_eyes = find_eyes
        self._faces = _cascade("haarcascade_frontalface_default.xml")
        self._eyes = _cascade("haarcascade_eye.xml") if find_eyes else None

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in a gray ``(H, W)`` or BGR ``(H, W, 3)`` uint8 image."""
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        h, w = gray.shape[:2]
        small, scale, pad = enlarge_small(gray)
        if pad:
            gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)  # for eyes
        else:
            # The largest integer factor at which the smallest face asked for still covers the
            # cascade's 24-pixel window (OpenCV's area resize is fastest for integer factors).
            factor = math.floor(self.min_face * min(h, w) / WINDOW)
            if self.work_side:
                factor = min(factor, min(h, w) // self.work_side)
            scale = 1 / max(1, factor)
            if scale < 1:
                small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        side = max(12, int(min(small.shape[:2]) * self.min_face))
        rects, _, weights = self._faces.detectMultiScale3(
            cv2.equalizeHist(small),
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(side, side),
            outputRejectLevels=True,
        )
        faces = []
        for (x, y, fw, fh), weight in zip(np.asarray(rects).reshape(-1, 4), np.ravel(weights)):
            x0, y0 = max(0, round(x / scale) - pad), max(0, round(y / scale) - pad)
            x1 = min(w, round((x + fw) / scale) - pad)
            y1 = min(h, round((y + fh) / scale) - pad)
            if x1 <= x0 or y1 <= y0:
                continue
            box = (x0, y0, x1 - x0, y1 - y0)
            eyes = self._locate_eyes(gray, box, pad) if self._eyes is not None else None
            faces.append(Face(box, float(weight), eyes))
        return sorted(faces, key=lambda f: f.area, reverse=True)

    def _locate_eyes(self, gray: np.ndarray, box: Box, pad: int) -> tuple[Point, Point] | None:
        x, y, w, h = box
        upper = gray[pad + y : pad + y + h // 2, pad + x : pad + x + w]
        if upper.size == 0:
            return None
        found = self._eyes.detectMultiScale(upper, 1.1, 5, minSize=(max(8, w // 10),) * 2)
        if len(found) < 2:
            return None
        # The two largest candidates, one on each half of the face.
        best = sorted(np.asarray(found).tolist(), key=lambda r: r[2] * r[3], reverse=True)[:2]
        centres = sorted((x + ex + ew / 2, y + ey + eh / 2) for ex, ey, ew, eh in best)
        (lx, ly), (rx, ry) = centres
        if rx - lx < w * 0.2:
            return None
        return (lx, ly), (rx, ry)


def create_detector(name: str, **kwargs) -> FaceDetector:
    """Make a detector by its name in :data:`tinyfer.core.kinds.DETECTORS` (``mtcnn``,
    ``haar``, ``none``); ``kwargs`` go to its constructor."""
    if name not in DETECTORS:
        raise TinyferError(f"unknown face detector {name!r}; choose one of {', '.join(DETECTORS)}")
    return DETECTORS[name].load()(**kwargs)
