"""Draw predictions onto images: a box per face, its label, and a bar per class."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .predict import Prediction

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


def annotate(image: np.ndarray, predictions: Sequence[Prediction]) -> np.ndarray:
    """A BGR copy of ``image`` (gray or BGR uint8) with each face's box, its label with its
    probability, and a probability bar for every class beside the box."""
    import cv2

    out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    scale = max(1.0, _MIN_SIDE / min(out.shape[:2]))
    if scale > 1:
        out = cv2.resize(out, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    k = (min(out.shape[:2]) / _MIN_SIDE) ** 0.5  # text and bars grow, slower than the image
    for pred in predictions:
        x, y, w, h = (round(v * scale) for v in pred.box)
        colour = COLOURS.get(pred.label, (160, 160, 160))
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, max(1, round(1.5 * k)))
        title = f"{pred.label} {pred.probabilities[pred.label]:.0%}"
        _text(out, title, (x, max(round(16 * k), y - round(6 * k))), colour, 0.55 * k)
        _bars(out, pred, (x, y, w, h), k)
    return out


def _text(img: np.ndarray, text: str, org: tuple[int, int], colour, size: float) -> None:
    import cv2

    # A dark outline under the coloured text keeps it legible on any background.
    thick = max(1, round(size * 1.6))
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, size, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, size, colour, thick, cv2.LINE_AA)


def _bars(img: np.ndarray, pred: Prediction, box: tuple[int, int, int, int], k: float) -> None:
    """Class names and probability bars in a panel right of the box (left if no room)."""
    import cv2

    row, name_w, bar_w = round(15 * k), round(72 * k), round(60 * k)
    panel_w = name_w + bar_w + 8
    x, y, w, _ = box
    left = x + w + 6 if x + w + 6 + panel_w <= img.shape[1] else max(0, x - panel_w - 6)
    top = max(0, min(y, img.shape[0] - row * len(pred.probabilities) - 4))
    for i, (name, p) in enumerate(pred.probabilities.items()):
        ry = top + i * row
        colour = COLOURS.get(name, (160, 160, 160))
        _text(img, name[:9], (left, ry + row - 3), (240, 240, 240), 0.4 * k)
        x0 = left + name_w
        cv2.rectangle(img, (x0, ry + 3), (x0 + bar_w, ry + row - 2), (60, 60, 60), -1)
        cv2.rectangle(img, (x0, ry + 3), (x0 + round(bar_w * p), ry + row - 2), colour, -1)
