"""One face geometry: every face reaches a model cut the same way, from a photo or a dataset crop.

A face with landmarks is mapped by the similarity transform (rotation, scale, shift) that puts
its five points nearest to :data:`TEMPLATE`, so faces turned in the image plane come out
upright. A face known only by its box is framed by :data:`BOX_FRAMING`, calibrated so that on
average it cuts the same square as the landmarks would.

The template is FER2013's own framing: the mean MTCNN landmarks of 510 FER2013 training crops
(of 600 sampled), made left-right symmetric. A FER2013 or CK+48 crop re-cut by it changes little,
and a photo is cut the way those datasets were.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from tinyfer.core.faces.face import Face
from tinyfer.core.kinds import DETECTORS

#: Five points (left eye, right eye, nose, left and right mouth corner) as fractions of the
#: crop's side. Measured means were eyes (0.313, 0.377), (0.675, 0.370), nose (0.494, 0.585),
#: mouth (0.347, 0.775), (0.647, 0.771); CK+48's are within 0.02 of these.
TEMPLATE = ((0.319, 0.374), (0.681, 0.374), (0.5, 0.585), (0.35, 0.773), (0.65, 0.773))

#: Box framing per detector (``tinyfer.core.kinds.Detector.framing``, calibrated there) and
#: ``whole``: a face crop taken as it is (a dataset's own framing, or no landmarks found on it).
BOX_FRAMING = {
    **{name: d.framing for name, d in DETECTORS.items() if d.framing is not None},
    "whole": (0.5, 0.5, 1.0),
}


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 matrix of the similarity transform taking points ``src`` nearest to ``dst``
    (least squares, Umeyama's method; no reflection)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sv, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ d @ vt
    scale = np.trace(np.diag(sv) @ d) / (a**2).sum() * len(src)
    return np.hstack([scale * rot, (mu_d - scale * rot @ mu_s)[:, None]])


Template = tuple[tuple[float, float], ...]


def face_transform(
    face: Face, size: int, framing: str, template: Template = TEMPLATE
) -> np.ndarray:
    """The 2x3 matrix taking image pixels to the ``size`` x ``size`` crop of ``face``: by its
    landmarks onto ``template`` if it has them, otherwise by the box framing of ``framing``."""
    if face.landmarks is not None:
        return similarity(face.landmarks, np.array(template) * size)
    fx, fy, fside = BOX_FRAMING[framing]
    x, y, w, h = face.box
    cx, cy, side = x + fx * w, y + fy * h, fside * max(w, h)
    s = size / side
    return np.array([[s, 0.0, size / 2 - s * cx], [0.0, s, size / 2 - s * cy]])


def cut_face(
    image: np.ndarray,
    face: Face,
    size: int,
    framing: str,
    *,
    with_valid: bool = False,
    template: Template = TEMPLATE,
):
    """The face as a ``(size, size)`` crop of ``image`` (gray, or BGR then ``(size, size, 3)``)
    in the one geometry; what falls outside the image is filled by replicating its border.
    ``with_valid``: also the ``(size, size)`` uint8 mask of the crop's pixels inside the image
    (255; 0 on the replicated border, partial at its edge)."""
    m = face_transform(face, size, framing, template)
    valid = None
    if with_valid:
        inside = np.full(image.shape[:2], 255, np.uint8)
        valid = cv2.warpAffine(inside, m, (size, size), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # fmt: skip
    scale = math.hypot(m[0, 0], m[1, 0])
    shrink = int(1 / (2 * scale)) if scale < 0.5 else 1
    if shrink > 1:
        # warpAffine has no area filter: shrink the face's region by a whole factor first, so
        # that the warp itself never shrinks by more than 2 (no aliasing, and much less work).
        inv = cv2.invertAffineTransform(m)
        corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]]) @ inv.T
        h, w = image.shape[:2]
        x0, y0 = (max(0, int(v) - shrink) for v in corners.min(0))
        x1, y1 = (
            min(w, int(corners[:, 0].max()) + shrink),
            min(h, int(corners[:, 1].max()) + shrink),
        )
        if x1 > x0 and y1 > y0:
            region = image[y0:y1, x0:x1]
            region = cv2.resize(
                region,
                (max(1, region.shape[1] // shrink), max(1, region.shape[0] // shrink)),
                interpolation=cv2.INTER_AREA,
            )
            fx, fy = (x1 - x0) / region.shape[1], (y1 - y0) / region.shape[0]
            m = np.hstack([m[:, :1] * fx, m[:, 1:2] * fy, m[:, :2] @ [[x0], [y0]] + m[:, 2:]])
            image = region
    crop = cv2.warpAffine(
        image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return (crop, valid) if with_valid else crop
