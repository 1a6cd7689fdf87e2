"""Inference with onnxruntime, OpenCV and numpy only: no torch on this path.

``Recognizer`` finds faces in images and classifies them (with the classifier that
:mod:`tinyfer.inference.classifier` loads).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tinyfer.core.faces import BOX_FRAMING, Face, FaceDetector, create_detector
from tinyfer.core.faces.cut import FaceCut
from tinyfer.core.faces.face import looks_like_a_crop
from tinyfer.core.io import iter_frames, load_image
from tinyfer.core.model_files import DEFAULT_MODEL
from tinyfer.core.priors import PriorSpec, effective_prior, prior_shift, shift_probabilities
from tinyfer.errors import TinyferError
from tinyfer.inference.classifier import load_classifier
from tinyfer.inference.track import Follower, TrackedVideo, TrackOptions, track_options

#: Haar on photos: a larger smallest face and a coarser pyramid than for preparing datasets
#: (the MUG frame in 6.4 ms instead of 41, every face still found; benchmarks/README.md).
HAAR_FOR_PHOTOS: dict[str, float] = {"min_face": 0.2, "scale_factor": 1.2}


@dataclass(frozen=True)
class Prediction:
    """One face: box (x, y, w, h) in the image's pixels, the detector's score, the most likely
    label and the probability of every label (summing to 1); ``landmarks``, where the detector
    gives them (MTCNN), are five (x, y) points: left eye, right eye, nose, left and right mouth
    corner, as seen in the image. In a video, ``track`` is the face's id across frames and
    ``smoothed`` its track's probabilities averaged over the last moments
    (:mod:`tinyfer.inference.track`); ``label`` and ``probabilities`` stay this frame's own."""

    box: tuple[int, int, int, int]
    score: float
    label: str
    probabilities: dict[str, float]
    landmarks: tuple[tuple[float, float], ...] | None = None
    track: int | None = None
    smoothed: dict[str, float] | None = None

    @property
    def smoothed_label(self) -> str | None:
        """The most likely label of the smoothed probabilities (None without smoothing)."""
        return max(self.smoothed, key=self.smoothed.__getitem__) if self.smoothed else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "box": list(self.box),
            "score": self.score,
            "label": self.label,
            "probabilities": self.probabilities,
        }
        if self.landmarks is not None:
            out["landmarks"] = [[round(x, 1), round(y, 1)] for x, y in self.landmarks]
        if self.track is not None:
            out["track"] = self.track
        if self.smoothed is not None:
            out["smoothed"] = {"label": self.smoothed_label, "probabilities": self.smoothed}
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Prediction:
        """The Prediction that :meth:`to_dict` (or ``tinyfer serve``'s JSON) describes."""
        marks, smoothed = d.get("landmarks"), d.get("smoothed")
        return cls(tuple(d["box"]), float(d["score"]), d["label"], dict(d["probabilities"]),
                   tuple(tuple(p) for p in marks) if marks is not None else None,
                   d.get("track"),
                   dict(smoothed["probabilities"]) if smoothed is not None else None)  # fmt: skip


@dataclass(frozen=True)
class FramePrediction:
    """The faces of one video frame: its index in the stream and its time in seconds."""

    index: int
    time: float
    faces: tuple[Prediction, ...]


@dataclass(frozen=True)
class Found:
    """The faces of one image before classification: the image in gray, the faces, and
    whether the one face is the whole image (a crop in its dataset's own framing)."""

    gray: np.ndarray
    faces: list[Face]
    whole: bool = False


class VideoPredictions:
    """A video's :class:`FramePrediction` s, made as they are iterated (once); after that,
    :attr:`tracks` holds what tracking found. :meth:`to_dataframe` takes them all as a
    pandas DataFrame."""

    def __init__(self, rec: Recognizer, source, every: int, track: TrackOptions | None):
        self.rec, self.source, self.every, self.track = rec, source, every, track
        self.tracks: TrackedVideo | None = None

    def __iter__(self) -> Iterator[FramePrediction]:
        follower = Follower(self.rec, self.track) if self.track else None
        try:
            for frame in iter_frames(self.source, every=self.every):
                image, time = frame.image, frame.time
                faces = follower.step(image, time) if follower else self.rec.predict(image)
                yield FramePrediction(frame.index, frame.time, tuple(faces))
        finally:
            if follower is not None:
                self.tracks = follower.result()

    def to_dataframe(self):
        """One row per face per frame: frame, time, face, track, x, y, w, h, score, label,
        a ``p_`` column per label and, when smoothing, ``smoothed_label`` and ``s_`` columns
        (a frame without faces gives no row). Needs pandas (not a dependency of tinyfer)."""
        try:
            import pandas as pd
        except ModuleNotFoundError:
            raise TinyferError("to_dataframe needs pandas: pip install pandas") from None
        labels = self.rec.labels
        rows = []
        for frame in self:
            for i, f in enumerate(frame.faces):
                row = {"frame": frame.index, "time": frame.time, "face": i, "track": f.track,
                       **dict(zip("xywh", f.box)), "score": f.score, "label": f.label,
                       **{f"p_{n}": f.probabilities[n] for n in labels}}  # fmt: skip
                if f.smoothed is not None:
                    row["smoothed_label"] = f.smoothed_label
                    row |= {f"s_{n}": f.smoothed[n] for n in labels}
                rows.append(row)
        columns = ["frame", "time", "face", "track", "x", "y", "w", "h", "score", "label",
                   *(f"p_{n}" for n in labels)]  # fmt: skip
        if rows and "smoothed_label" in rows[0]:
            columns += ["smoothed_label", *(f"s_{n}" for n in labels)]
        return pd.DataFrame(rows, columns=columns)


def _as_uint8_faces(crops: np.ndarray) -> np.ndarray:
    if crops.dtype == np.uint8:
        return crops
    values = crops.astype(np.float64)
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 255:
        raise TinyferError(
            f"face crops must be uint8, or floats in [0, 1] or 0-255; got {crops.dtype} values "
            f"from {np.nanmin(values):g} to {np.nanmax(values):g}"
            + (" and NaN/inf" if not np.isfinite(values).all() else "")
        )
    scale = 255.0 if values.max() <= 1.0 and np.issubdtype(crops.dtype, np.floating) else 1.0
    return np.clip(np.round(values * scale), 0, 255).astype(np.uint8)


class Recognizer:
    """Find faces and recognise their expressions, on onnxruntime (torch is never imported
    for the bundled model or an ``.onnx`` file).

    ``Recognizer()`` uses the default bundled model (``"accurate"``), ``Recognizer("fast")`` the
    fastest one; ``Recognizer("run_dir" | "model.pt" | "model.onnx")`` another model.
    ``detector`` is ``mtcnn`` (faces with five landmarks), ``haar`` (fastest), ``none`` (inputs
    are face crops) or any object with ``detect(image) -> list[Face]``. Faces are cut the way
    the model's training faces were, as its file records: by the landmarks onto one template
    (``tinyfer.core.faces.geometry``; a face without landmarks by the detector's calibrated box
    framing), or, for model files made before that geometry, the box widened by a margin.
    ``min_face`` is the smallest face to find as a fraction of the image's shorter side
    (default: MTCNN's 0.1; for Haar :data:`HAAR_FOR_PHOTOS`, 0.2 with pyramid step
    ``scale_factor`` 1.2, which keeps an 896x896 frame under 10 ms on one core). With
    ``small_images_are_faces``, a nearly square image of 24 to 95 px where no face is found
    is taken to be a face crop (FER2013, CK+48 style) and classified whole, with detector
    score 0.0. ``prior`` is the class prior the predictions assume (:mod:`tinyfer.core.priors`):
    ``"balanced"`` (the default), ``"training"`` (the model's training frequencies) or
    ``{label: weight}``; a model file made before priors predicts under ``training``.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        detector: str | FaceDetector = "mtcnn",
        min_face: float | None = None,
        scale_factor: float = HAAR_FOR_PHOTOS["scale_factor"],
        threads: int | None = None,
        small_images_are_faces: bool = True,
        prior: PriorSpec | None = None,
    ):
        if not 1 < scale_factor <= 2:
            raise TinyferError(f"scale_factor is Haar's pyramid step, above 1 and at most 2; "
                               f"got {scale_factor}")  # fmt: skip
        if threads is not None and threads < 1:
            raise TinyferError(f"threads must be 1 or more; got {threads}")
        self.classifier, meta = load_classifier(model, threads=threads)
        self.labels: tuple[str, ...] = tuple(meta.labels)
        self.prior: PriorSpec = effective_prior(prior, meta.class_prior)
        source = str(DEFAULT_MODEL if model is None else model)
        self._shift = prior_shift(self.prior, self.labels, meta.class_prior, source=source)
        self.img_size: int = meta.img_size
        self.cut: FaceCut = meta.cut
        if isinstance(detector, str):
            kwargs: dict[str, Any] = {}
            if detector == "haar":
                kwargs = {**HAAR_FOR_PHOTOS, "scale_factor": scale_factor,
                          "find_eyes": self.cut.align}  # fmt: skip
            elif detector == "mtcnn":
                kwargs = {"threads": threads or 1}  # min_face: MTCNN's own default
            if min_face is not None and detector != "none":
                kwargs["min_face"] = min_face
            detector = create_detector(detector, **kwargs)
        self.detector = detector
        self.small_images_are_faces = small_images_are_faces

    def predict(self, image: Any) -> list[Prediction]:
        """The faces in one image (a path, a BGR or gray numpy array, or a PIL image), largest
        first; ``[]`` when there is none."""
        return self.predict_batch([image])[0]

    def predict_batch(self, images: Iterable[Any]) -> list[list[Prediction]]:
        """:meth:`predict` for many images, with one classifier call for all their faces."""
        return self.classify([self.find(image) for image in images])

    def find(self, image: Any, faces: list[Face] | None = None) -> Found:
        """The faces of ``image`` (detected, or ``faces`` where they are known already)."""
        pixels = load_image(image)
        gray = load_image(pixels, gray=True)
        if faces is not None:
            return Found(gray, faces)
        faces = self.detector.detect(pixels)
        if not faces and self.small_images_are_faces and looks_like_a_crop(gray.shape):
            return Found(gray, [Face((0, 0, gray.shape[1], gray.shape[0]), 0.0)], whole=True)
        return Found(gray, faces)

    def classify(self, found: Iterable[Found]) -> list[list[Prediction]]:
        """The predictions of each image's faces, with one classifier call for all."""
        found = list(found)
        crops = [self.crop(f.gray, face, whole=f.whole) for f in found for face in f.faces]
        probs = self.predict_faces(np.stack(crops)) if crops else np.zeros((0, len(self.labels)))
        out, start = [], 0
        for f in found:
            out.append([self._prediction(face, p) for face, p in zip(f.faces, probs[start:])])
            start += len(f.faces)
        return out

    def predict_faces(self, crops: Any) -> np.ndarray:
        """Class probabilities ``(N, C)`` (columns in :attr:`labels` order) for face crops, no
        detection: an ``(N, H, W)`` uint8 array at the model's size, or a sequence of images of
        any size (gray or BGR), which are resized. Float arrays are taken as [0, 1] (or 0-255 if
        any value is above 1); NaN or values outside 0-255 are refused. Crops are taken as they
        are, so they must already be in the model's framing: FER2013's and CK+48's own framing
        is the template's; a photo goes through :meth:`predict`, which cuts faces to match."""
        if isinstance(crops, np.ndarray) and crops.shape[1:] == (self.img_size,) * 2:
            crops = _as_uint8_faces(crops)
        else:
            crops = [self._resize(load_image(c, gray=True)) for c in crops]
            if not crops:
                return np.zeros((0, len(self.labels)), np.float32)
            crops = np.stack(crops)
        return shift_probabilities(self.classifier.predict_proba(crops), self._shift)

    def predict_video(
        self, source: str | Path | int, *, every: int = 1, track: TrackOptions | bool = True
    ) -> VideoPredictions:
        """The faces of every ``every``-th frame of a video file or camera index, frame by
        frame as it is iterated (frames are read one at a time, so memory stays flat).
        ``track``: faces followed across frames (ids, smoothing, detection every N frames:
        :class:`TrackOptions`), or False."""
        return VideoPredictions(self, source, every, track_options(track))

    def crop(self, gray: np.ndarray, face: Face, *, whole: bool = False) -> np.ndarray:
        """The crop the model sees of ``face`` in ``gray``, cut as its training faces were;
        ``whole``: the face is the whole image, a crop in its dataset's own framing."""
        name = getattr(self.detector, "name", "")
        framing = name if not whole and name in BOX_FRAMING else "whole"
        return self.cut.cut(gray, face, self.img_size, framing)

    def _resize(self, gray: np.ndarray) -> np.ndarray:
        if gray.shape == (self.img_size, self.img_size):
            return gray
        interp = cv2.INTER_AREA if gray.shape[0] > self.img_size else cv2.INTER_LINEAR
        return cv2.resize(gray, (self.img_size, self.img_size), interpolation=interp)

    def _prediction(self, face: Face, probs: np.ndarray) -> Prediction:
        return Prediction(
            box=tuple(int(v) for v in face.box),
            score=float(face.score),
            label=self.labels[int(probs.argmax())],
            probabilities={name: float(p) for name, p in zip(self.labels, probs)},
            landmarks=face.landmarks,
        )
