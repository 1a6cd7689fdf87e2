"""Speed on this machine: per-face classification, batches, face detection, and the whole
pipeline on one frame. Medians of repeated runs after a warm-up, at a stated thread count."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tinyfer.core.io import load_image
from tinyfer.core.synth import PROFILES, draw_face, make_identity
from tinyfer.inference.predict import Recognizer


@dataclass(frozen=True)
class Speed:
    """Medians in milliseconds (throughput in faces per second)."""

    model: str
    threads: int
    image: str
    image_shape: tuple[int, ...]
    faces_found: int
    classify_ms: float  # one face, batch 1
    batch: int
    batch_faces_per_s: float
    detect_ms: float  # the detector alone, on the gray frame
    end_to_end_ms: float  # BGR frame -> predictions: gray, detect, crop, classify
    repeats: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def median_ms(fn: Callable[[], Any], repeats: int, warmup: int = 5) -> float:
    """The median wall time of ``fn()`` in milliseconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def demo_frame(size: int = 896, seed: int = 0) -> np.ndarray:
    """A drawn face (BGR) for timing when no photo is given."""
    rng = np.random.default_rng(seed)
    return draw_face(make_identity(rng), np.array(PROFILES["happiness"]), rng, size=size)


def measure_speed(
    model: str | Path | None = None,
    image: str | Path | None = None,
    *,
    threads: int = 1,
    repeats: int = 100,
    batch: int = 32,
    min_face: float | None = None,
) -> Speed:
    """Time the model (default: bundled) and the default detector on ``image`` (default: a
    drawn 896x896 face) with ``threads`` threads for onnxruntime and OpenCV."""
    cv2.setNumThreads(threads)
    rec = Recognizer(model, threads=threads, min_face=min_face)
    frame = demo_frame() if image is None else load_image(image)
    gray = load_image(frame, gray=True)
    found = rec.predict(frame)
    faces = rec.detector.detect(frame)
    crop = rec.crop(gray, faces[0]) if faces else cv2.resize(gray, (rec.img_size,) * 2)
    one, many = crop[None], np.repeat(crop[None], batch, axis=0)
    batch_ms = median_ms(lambda: rec.classifier.predict_proba(many), max(5, repeats // 5))
    return Speed(
        model=str(getattr(rec.classifier, "path", model)),
        threads=threads,
        image="drawn face" if image is None else str(image),
        image_shape=tuple(frame.shape),
        faces_found=len(found),
        classify_ms=median_ms(lambda: rec.classifier.predict_proba(one), repeats),
        batch=batch,
        batch_faces_per_s=batch / batch_ms * 1000,
        detect_ms=median_ms(lambda: rec.detector.detect(frame), repeats),
        end_to_end_ms=median_ms(lambda: rec.predict(frame), repeats),
        repeats=repeats,
    )
