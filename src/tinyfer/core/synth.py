"""A synthetic dataset in MUG's own layout: drawn faces whose identity varies by subject and
whose expression follows the seven classes, each take ramping neutral -> apex -> neutral.

It is what the demo trains on when no dataset is given, and what tests use when the real data
is absent. Expressions are built from facial actions (brows raised, lowered or inner-raised;
eyes widened or narrowed; lip corners up or down; mouth open or stretched; lips pressed; nose
wrinkled; upper lip raised), with subject- and take-level variation, so that fear and
surprise, and anger and disgust, overlap as they do in real faces.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tinyfer.core.faces.face import Box
from tinyfer.core.labels import EMOTIONS

ACTIONS = (
    "brow_raise", "brow_inner", "brow_lower", "eye_open", "lip_corner",
    "mouth_open", "mouth_stretch", "lips_pressed", "nose_wrinkle", "upper_lip",
)  # fmt: skip
# Apex action intensities per emotion (order of ACTIONS).
PROFILES: dict[str, tuple[float, ...]] = {
    "anger":     (0.0, 0.0, 1.0, -0.3, -0.1, 0.0, 0.0, 0.9, 0.2, 0.1),
    "disgust":   (0.0, 0.0, 0.6, -0.5, -0.4, 0.1, 0.1, 0.2, 1.0, 0.8),
    "fear":      (0.6, 0.8, 0.1, 0.8, -0.2, 0.5, 0.8, 0.0, 0.0, 0.1),
    "happiness": (0.0, 0.0, 0.0, -0.4, 1.0, 0.3, 0.5, 0.0, 0.1, 0.2),
    "sadness":   (0.0, 0.9, 0.2, -0.2, -0.8, 0.0, 0.0, 0.3, 0.0, 0.0),
    "surprise":  (1.0, 0.3, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.1),
    "neutral":   (0.0,) * len(ACTIONS),
}  # fmt: skip
SKIN = ((180, 200, 235), (140, 170, 215), (110, 140, 190), (80, 105, 150), (60, 80, 115))
HAIR = ((20, 20, 25), (30, 50, 80), (60, 110, 170), (90, 90, 95), (15, 30, 60))


@dataclass(frozen=True)
class Identity:
    """What makes one synthetic subject look like themself."""

    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    width: float  # face half-width, fraction of the frame
    elongation: float  # face height / width
    eye_sep: float  # eye offset from the centre, fraction of the face half-width
    brow_weight: float
    glasses: bool
    bias: np.ndarray  # the subject's resting face: small offsets to every action
    gain: float  # how strongly this subject expresses


def make_identity(rng: np.random.Generator) -> Identity:
    return Identity(
        skin=SKIN[rng.integers(len(SKIN))],
        hair=HAIR[rng.integers(len(HAIR))],
        width=rng.uniform(0.2, 0.25),
        elongation=rng.uniform(1.2, 1.45),
        eye_sep=rng.uniform(0.36, 0.46),
        brow_weight=rng.uniform(0.6, 1.4),
        glasses=bool(rng.random() < 0.3),
        bias=rng.normal(0, 0.15, len(ACTIONS)),
        gain=rng.uniform(0.6, 1.2),
    )


def _curve(p0, p1, p2, n: int = 16) -> np.ndarray:
    """Points of the quadratic Bezier curve p0 -> p2 pulled towards p1."""
    t = np.linspace(0, 1, n)[:, None]
    p0, p1, p2 = (np.asarray(p, dtype=np.float64) for p in (p0, p1, p2))
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def draw_face(
    ident: Identity, actions: np.ndarray, rng: np.random.Generator, size: int = 256
) -> np.ndarray:
    """One BGR frame of ``ident`` showing ``actions`` (array in ACTIONS order)."""
    a = dict(zip(ACTIONS, actions.tolist()))
    aa = cv2.LINE_AA
    img = np.empty((size, size, 3), np.uint8)
    img[:] = (120 + rng.integers(-15, 15), 70 + rng.integers(-10, 10), 30)  # MUG's dark blue
    s = size * rng.uniform(0.95, 1.05)
    cx = size / 2 + rng.normal(0, size * 0.015)
    cy = size * 0.54 + rng.normal(0, size * 0.015)
    fa = ident.width * s
    fb = fa * ident.elongation

    def pt(x: float, y: float) -> tuple[int, int]:  # face coordinates -> pixels
        return round(cx + x * fa), round(cy + y * fb)

    hair = tuple(int(c) for c in ident.hair)
    cv2.ellipse(img, pt(0, -0.12), (round(fa * 1.12), round(fb * 1.02)), 0, 0, 360, hair, -1, aa)
    cv2.ellipse(img, pt(0, 0), (round(fa), round(fb)), 0, 0, 360, ident.skin, -1, aa)
    cv2.ellipse(img, pt(0, -0.62), (round(fa * 0.98), round(fb * 0.42)), 0, 180, 360, hair, -1, aa)
    shade = tuple(int(c * 0.75) for c in ident.skin)
    dark = tuple(int(c * 0.15 + 15) for c in ident.skin)
    line = max(1, round(size / 128))

    # Eyes: open or narrowed; the iris stays round.
    eye_y = -0.18
    ew = 0.17 * fa
    eh = max(0.012, 0.075 * (1 + 0.7 * a["eye_open"])) * fa
    for side in (-1, 1):
        ex, ey = pt(side * ident.eye_sep, eye_y)
        cv2.ellipse(
            img, (ex, ey), (round(ew), max(1, round(eh))), 0, 0, 360, (235, 235, 235), -1, aa
        )
        r = max(1, round(min(eh, 0.07 * fa)))
        cv2.circle(img, (ex, ey), r, (40, 30, 25), -1, aa)
        cv2.ellipse(img, (ex, ey), (round(ew), max(1, round(eh))), 0, 180, 360, dark, line, aa)
        # Brows: raised, lowered, and the inner end lifted (sadness, fear) or pulled down (anger).
        base = eye_y - 0.17 - 0.09 * a["brow_raise"] + 0.06 * a["brow_lower"]
        inner = base - 0.07 * a["brow_inner"] + 0.05 * a["brow_lower"]
        outer = base + 0.02 * a["brow_inner"]
        x_in, x_out = side * (ident.eye_sep - 0.2), side * (ident.eye_sep + 0.22)
        brow = _curve(
            pt(x_in, inner), pt((x_in + x_out) / 2, min(inner, outer) - 0.04), pt(x_out, outer)
        )
        thick = max(1, round(size / 64 * ident.brow_weight))
        cv2.polylines(img, [brow.round().astype(np.int32)], False, dark, thick, aa)
        if ident.glasses:
            cv2.rectangle(
                img,
                pt(side * ident.eye_sep - 0.26, eye_y - 0.1),
                pt(side * ident.eye_sep + 0.26, eye_y + 0.1),
                (30, 30, 30),
                line,
                aa,
            )
    if ident.glasses:
        cv2.line(
            img,
            pt(-ident.eye_sep + 0.26, eye_y),
            pt(ident.eye_sep - 0.26, eye_y),
            (30, 30, 30),
            line,
            aa,
        )

    # Nose, with wrinkles at the bridge (disgust).
    cv2.line(img, pt(0.02, -0.1), pt(0.06, 0.2), shade, line, aa)
    for side in (-1, 1):
        cv2.ellipse(
            img,
            pt(side * 0.1, 0.23),
            (max(1, round(0.05 * fa)), max(1, round(0.025 * fa))),
            0,
            0,
            360,
            shade,
            -1,
            aa,
        )
    for k in range(3):
        if a["nose_wrinkle"] > 0.3 + 0.2 * k:
            y = -0.08 + 0.05 * k
            cv2.line(img, pt(-0.12, y), pt(0.12, y), shade, line, aa)

    # Mouth: corners up or down, stretched, open, pressed; the upper lip can rise.
    my = 0.5
    mw = 0.3 * (1 + 0.3 * a["mouth_stretch"]) * (1 - 0.15 * max(0.0, a["lips_pressed"]))
    corner = my - 0.1 * a["lip_corner"]
    opening = max(0.0, a["mouth_open"]) * 0.22
    upper = my - 0.06 * max(0.0, a["upper_lip"]) - opening * 0.3
    lower = my + opening + 0.04 * max(0.0, a["lip_corner"])
    top = _curve(pt(-mw, corner), pt(0, upper - 0.02), pt(mw, corner))
    bottom = _curve(pt(mw, corner), pt(0, lower + 0.02), pt(-mw, corner))
    lips = (int(ident.skin[0] * 0.4), int(ident.skin[1] * 0.4), int(ident.skin[2] * 0.6))
    if opening > 0.03:
        cv2.fillPoly(img, [np.vstack([top, bottom]).round().astype(np.int32)], (30, 20, 40), aa)
        cv2.polylines(
            img, [np.vstack([top, bottom]).round().astype(np.int32)], True, lips, line + 1, aa
        )
    else:
        thick = max(1, round(size / 64 * (1.4 - 0.9 * max(0.0, a["lips_pressed"]))))
        cv2.polylines(img, [top.round().astype(np.int32)], False, lips, thick, aa)
    if a["lip_corner"] > 0.3:  # a smile raises the cheeks: folds from nose to mouth corners
        for side in (-1, 1):
            fold = _curve(
                pt(side * 0.2, 0.25),
                pt(side * (mw + 0.12), my - 0.1),
                pt(side * (mw + 0.06), corner + 0.08),
            )
            cv2.polylines(img, [fold.round().astype(np.int32)], False, shade, line, aa)

    # Lighting from one side, a little blur and sensor noise, a small head tilt.
    gradient = 1 + rng.uniform(-0.25, 0.25) * np.linspace(-1, 1, size)[None, :, None]
    img = img * gradient * rng.uniform(0.8, 1.15)
    img = img + rng.normal(0, 4, img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    tilt = cv2.getRotationMatrix2D((cx, cy), rng.normal(0, 4), 1.0)
    img = cv2.warpAffine(img, tilt, (size, size), borderMode=cv2.BORDER_REPLICATE)
    return cv2.GaussianBlur(img, (3, 3), 0)


def write_synthetic_mug(
    out: str | Path,
    *,
    subjects: int = 12,
    takes: int = 2,
    frames: int = 12,
    size: int = 256,
    seed: int = 0,
    quirks: bool = True,
) -> Path:
    """Write ``out/subjects3/<subject>/<emotion>/take<NNN>/img_<NNNN>.jpg``; returns subjects3.

    With ``quirks``, the tree has what real MUG copies have: one subject under a ``session0/``
    level, and one take folder with an ``end`` suffix that readers skip.
    """
    root = Path(out) / "subjects3"
    for n in range(subjects):
        subject = f"{n + 1:03d}"
        rng = np.random.default_rng([seed, n])
        ident = make_identity(rng)
        base = root / subject / "session0" if quirks and n == 1 else root / subject
        for emotion in EMOTIONS:
            profile = np.array(PROFILES[emotion])
            for take in range(takes):
                # Each take: the subject's own intensity, a per-take jitter of every action.
                apex = profile * ident.gain * rng.uniform(0.7, 1.1) + rng.normal(
                    0, 0.2, len(ACTIONS)
                )
                take_dir = base / emotion / f"take{take:03d}"
                take_dir.mkdir(parents=True, exist_ok=True)
                for i in range(frames):
                    ramp = math.sin(math.pi * i / max(1, frames - 1))
                    img = draw_face(ident, ident.bias + ramp * apex, rng, size)
                    cv2.imwrite(
                        str(take_dir / f"img_{i:04d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90]
                    )
        if quirks and n == 0:
            extra = base / "neutral" / "take099end"
            extra.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(extra / "img_0000.jpg"), draw_face(ident, ident.bias, rng, size))
    return root


def paste_face(
    face: np.ndarray, rng: np.random.Generator, canvas: tuple[int, int] = (400, 400)
) -> tuple[np.ndarray, np.ndarray]:
    """A dataset's gray face crop as a photo: enlarged so that the crop's side is 16-64% of
    the canvas's shorter side (the face in it 10-40%), turned by up to 30 degrees in half the
    cases, on a background of noise, a gradient or blurred blobs. Returns the BGR canvas
    ``(H, W, 3)`` and the 2x3 matrix taking crop pixels to canvas pixels."""
    h, w = canvas
    side = rng.uniform(0.1, 0.4) * min(h, w) * 1.6  # a crop is wider than the face in it
    angle = rng.choice([0.0, rng.uniform(-30, 30)])
    centre = np.array([rng.uniform(side * 0.6, w - side * 0.6),
                       rng.uniform(side * 0.6, h - side * 0.6)])  # fmt: skip
    m = cv2.getRotationMatrix2D((face.shape[1] / 2, face.shape[0] / 2), angle, side / face.shape[1])
    m[:, 2] += centre - np.array(face.shape[::-1]) / 2
    kind = rng.integers(3)
    if kind == 0:
        bg = rng.integers(0, 256, (h, w), dtype=np.uint8)
    elif kind == 1:
        bg = np.tile(np.linspace(20, 230, w).astype(np.uint8), (h, 1))
    else:
        bg = cv2.GaussianBlur(rng.integers(0, 256, (h, w)).astype(np.uint8), (0, 0), 8)
    inside = cv2.warpAffine(np.ones_like(face), m, (w, h)) > 0
    bg[inside] = cv2.warpAffine(face, m, (w, h), flags=cv2.INTER_LINEAR)[inside]
    return cv2.cvtColor(bg, cv2.COLOR_GRAY2BGR), m


def tracking_scene(
    faces: list[np.ndarray],
    *,
    frames: int = 150,
    size: tuple[int, int] = (480, 640),
    seed: int = 0,
    hide: tuple[int, int] | None = (60, 66),
) -> Iterator[tuple[np.ndarray, list[tuple[int, Box, bool]]]]:
    """A video with known truth for tracking: the gray face crops ``faces`` (one person
    each), enlarged to 110-150 px, drift and bounce around a ``size`` frame so that their
    paths cross (the first face drawn on top); a bar sweeps across and briefly covers them,
    and the last face vanishes for the frames in ``hide`` (a missed stretch) before going on.
    Yields each BGR frame and its truth: ``(person, box, visible)`` for every face in view,
    ``visible`` False where more than half of it is covered."""
    rng = np.random.default_rng(seed)
    h, w = size
    bg = cv2.GaussianBlur(rng.integers(40, 220, (h, w)).astype(np.uint8), (0, 0), 12)
    sides = rng.integers(110, 151, len(faces))
    pos = np.array([[rng.uniform(0, w - s), rng.uniform(0, h - s)] for s in sides])
    vel = rng.uniform(2.0, 5.0, (len(faces), 2)) * rng.choice([-1, 1], (len(faces), 2))
    crops = [cv2.resize(f, (int(s), int(s)), interpolation=cv2.INTER_CUBIC)
             for f, s in zip(faces, sides)]  # fmt: skip
    for t in range(frames):
        canvas = bg.copy()
        covered = np.zeros((len(faces), h, w), bool)
        boxes: list[Box] = []
        for i in reversed(range(len(faces))):  # the first face last, so on top
            x, y = (int(v) for v in pos[i])
            s = int(sides[i])
            boxes.insert(0, (x, y, s, s))
            if i == len(faces) - 1 and hide and hide[0] <= t < hide[1]:
                continue
            canvas[y : y + s, x : x + s] = crops[i]
            covered[i + 1 :, y : y + s, x : x + s] = True  # faces drawn before are hidden here
        bar = int((t * 9) % (w + 400)) - 200  # a 50 px bar every (w + 400) / 9 frames
        canvas[:, max(bar, 0) : max(bar + 50, 0)] = 90
        truth = []
        for i, (x, y, s, _) in enumerate(boxes):
            if i == len(faces) - 1 and hide and hide[0] <= t < hide[1]:
                continue
            hidden = covered[i, y : y + s, x : x + s].mean()
            in_bar = max(0, min(bar + 50, x + s) - max(bar, x)) / s
            truth.append((i, boxes[i], bool(hidden + in_bar <= 0.5)))
        yield cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR), truth
        pos += vel
        for i, s in enumerate(sides):
            for axis, limit in ((0, w - s), (1, h - s)):
                if not 0 <= pos[i, axis] <= limit:
                    vel[i, axis] *= -1
                    pos[i, axis] = min(max(pos[i, axis], 0), limit)
