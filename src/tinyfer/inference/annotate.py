"""Draw predictions onto images: a box per face, its label, and a bar per class."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from tinyfer.inference.predict import Prediction

#: One BGR colour per canonical label (others get gray).
COLOURS = {
    "anger": (40, 40, 220),
    "disgust": (40, 140, 40),
    "fear": (160, 60, 160),
    "happiness": (30, 200, 250),
    "sadness": (200, 120, 40),
    "surprise": (230, 200, 60),
    "neutral": (190, 190, 190),
    "contempt": (60, 110, 170),
}
_MIN_SIDE = 360  # smaller images are enlarged first, or the text would be unreadable
_PANEL_W = 148  # the probability panel's width at text scale 1
_TITLE_BAND = 28  # room for a label above a face at text scale 1


_FONT = cv2.FONT_HERSHEY_SIMPLEX

Rect = tuple[int, int, int, int]  # x, y, w, h


def canvas(image: np.ndarray) -> tuple[np.ndarray, float, tuple[int, int]]:
    """The BGR image that annotations are drawn on, its scale from ``image`` and where
    ``image``'s origin lies in it. An image under :data:`_MIN_SIDE` px (a face crop) is
    enlarged, and gets a dark band above and right of it for the label and the panel: its
    face fills it, and drawn on it they would cover the face."""
    out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    scale = max(1.0, _MIN_SIDE / min(out.shape[:2]))
    if scale == 1:
        return out, scale, (0, 0)
    out = cv2.resize(out, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    top, right = _TITLE_BAND, _PANEL_W + 16
    out = cv2.copyMakeBorder(out, top, 0, 0, right, cv2.BORDER_CONSTANT, value=(32, 32, 32))
    return out, scale, (0, top)


def annotate(image: np.ndarray, predictions: Sequence[Prediction]) -> np.ndarray:
    """A BGR copy of ``image`` (gray or BGR uint8) with each face's box, its label with its
    probability, and a probability bar for every class beside the box (inside the image, on a
    dark ground, under the label when there is no room beside it). A tracked face shows its
    track id and its smoothed label and probabilities."""
    out, scale, (ox, oy) = canvas(image)
    k = (min(image.shape[:2]) * scale / _MIN_SIDE) ** 0.5  # text grows slower than the image
    for pred in predictions:
        x, y, w, h = (round(v * scale) for v in pred.box)
        box = (x + ox, y + oy, w, h)
        label, probs = pred.smoothed_label or pred.label, pred.smoothed or pred.probabilities
        colour = COLOURS.get(label, (160, 160, 160))
        cv2.rectangle(out, box[:2], (box[0] + w, box[1] + h), colour, max(1, round(1.5 * k)))
        title = ("" if pred.track is None else f"#{pred.track} ") + f"{label} {probs[label]:.0%}"
        size = 0.55 * k
        (tw, th), base = cv2.getTextSize(title, _FONT, size, _thickness(size))
        title_rect, panel = layout(out.shape[:2], box, (tw, th + base), k,
                                   len(pred.probabilities))  # fmt: skip
        _text(out, title, (title_rect[0], title_rect[1] + th), colour, size)
        _bars(out, probs, panel, k)
    return out


def layout(shape: tuple[int, int], box: Rect, title: tuple[int, int], k: float,
           rows: int) -> tuple[Rect, Rect]:  # fmt: skip
    """Where a face's label (``title``: its text's width and height) and its probability
    panel (``rows`` classes) go, for a face ``box`` in an image of ``shape`` (h, w): the label
    above the box (inside its top when the image ends there), the panel right of the box, else
    left of it, else inside the image under the label. Both stay wholly in the image."""
    height, width = shape
    x, y, w, _ = box
    gap = round(6 * k)
    tw, th = title
    tx = max(0, min(x, width - tw))
    ty = y - gap - th if y - gap - th >= 0 else min(max(0, y) + gap, height - th)
    pw, ph = round((_PANEL_W - 8) * k) + 8, round(15 * k) * rows + 4
    if x + w + gap + pw <= width:
        px, py = x + w + gap, y
    elif x - gap - pw >= 0:
        px, py = x - gap - pw, y
    else:  # no room beside the face: under the label, at the box's right edge
        px, py = x + w - pw, ty + th + gap
    px, py = max(0, min(px, width - pw)), max(0, min(py, height - ph))
    return (tx, ty, tw, th), (px, py, pw, ph)


def _thickness(size: float) -> int:
    return max(1, round(size * 1.6))


def _text(img: np.ndarray, text: str, org: tuple[int, int], colour, size: float) -> None:
    # A dark outline under the coloured text keeps it legible on any background.
    thick = _thickness(size)
    cv2.putText(img, text, org, _FONT, size, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(img, text, org, _FONT, size, colour, thick, cv2.LINE_AA)


def _bars(img: np.ndarray, probabilities: dict[str, float], panel: Rect, k: float) -> None:
    """Class names and probability bars in ``panel``, on a darkened ground."""
    left, top, pw, ph = panel
    ground = img[top : top + ph, left : left + pw]
    ground[:] = (ground * 0.35).astype(np.uint8)
    row, name_w = round(15 * k), round(72 * k)
    bar_w = pw - name_w - 8
    for i, (name, p) in enumerate(probabilities.items()):
        ry = top + 2 + i * row
        colour = COLOURS.get(name, (160, 160, 160))
        _text(img, name[:9], (left + 2, ry + row - 3), (240, 240, 240), 0.4 * k)
        x0 = left + name_w
        cv2.rectangle(img, (x0, ry + 3), (x0 + bar_w, ry + row - 2), (60, 60, 60), -1)
        cv2.rectangle(img, (x0, ry + 3), (x0 + round(bar_w * p), ry + row - 2), colour, -1)
