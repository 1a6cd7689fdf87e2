"""Faces followed across a video's frames: an id per face, kept while it stays in view and
across a short loss, its probabilities smoothed over time, and a summary per track.

The association is written here rather than taken from a tracking package: the maintained
ones do not fit the light install (norfair needs numpy < 2; supervision and Roboflow's
trackers need opencv-python, a second OpenCV beside the headless one). Each face's motion
is OpenCV's Kalman filter on its box centre and size, at constant velocity; detections are
matched to the tracks' predicted boxes greedily by overlap, one to one, so no id is ever
given to two faces of a frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import cv2
import numpy as np

from tinyfer.core.faces import Face


class Recognizes(Protocol):
    """What following faces needs of a recognizer (``inference.predict.Recognizer`` has it):
    its labels, the faces found (or placed) in an image, and their predictions."""

    labels: tuple[str, ...]

    def find(self, image: Any, faces: list[Face] | None = None) -> Any: ...

    def classify(self, found: Any) -> list[list[Any]]: ...


#: Faces whose boxes overlap less than this (intersection over union) are matched only by
#: closeness of their centres: within this fraction of the face's size.
MIN_IOU = 0.2
NEAR = 0.6


@dataclass(frozen=True)
class TrackOptions:
    """How faces are followed. ``smooth``: the time constant, in seconds, of the exponential
    average of each track's probabilities (0: none); ``detect_every``: run the detector on
    every N-th used frame, following the tracks' predicted boxes in between; ``keep``: how
    long, in seconds, a face that is not found keeps its id for when it comes back."""

    smooth: float = 0.25  # benchmarks/README.md, "Video": flicker down 4.6x for -2.6 points
    detect_every: int = 1
    keep: float = 1.0

    def __post_init__(self):
        if not (0 <= self.smooth <= 3600 and math.isfinite(self.smooth)):
            raise ValueError(f"smooth is in seconds, 0 to 3600; got {self.smooth}")
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be 1 or more; got {self.detect_every}")
        if not 0 <= self.keep <= 3600:
            raise ValueError(f"keep is in seconds, 0 to 3600; got {self.keep}")


def track_options(track: TrackOptions | bool) -> TrackOptions | None:
    """``track`` as the entry points take it (options, True for the defaults, False for
    none) as options or None."""
    if isinstance(track, TrackOptions):
        return track
    return TrackOptions() if track else None


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = min(ax + aw, bx + bw) - max(ax, bx)
    h = min(ay + ah, by + bh) - max(ay, by)
    inter = max(w, 0) * max(h, 0)
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


class _Motion:
    """A box's centre and size (square root of its area) at constant velocity, with its
    aspect ratio taken from the last detection."""

    def __init__(self, box: Sequence[float]):
        x, y, w, h = (float(v) for v in box)
        size = math.sqrt(w * h)
        kf = cv2.KalmanFilter(6, 3)
        kf.transitionMatrix = np.eye(6, dtype=np.float32)
        kf.transitionMatrix[[0, 1, 2], [3, 4, 5]] = 1.0
        kf.measurementMatrix = np.eye(3, 6, dtype=np.float32)
        # noise in proportion to the face's size: the same filter for near and far faces
        kf.processNoiseCov = (
            np.diag([1, 1, 1, 0.25, 0.25, 0.25]).astype(np.float32) * (0.03 * size) ** 2
        )
        kf.measurementNoiseCov = np.eye(3, dtype=np.float32) * (0.05 * size) ** 2
        kf.errorCovPost = np.diag([1, 1, 1, 4, 4, 4]).astype(np.float32) * (0.1 * size) ** 2
        kf.statePost = np.array([[x + w / 2], [y + h / 2], [size], [0], [0], [0]], np.float32)
        self.kf, self.aspect = kf, w / h if h > 0 else 1.0

    def _box(self, state: np.ndarray) -> tuple[float, float, float, float]:
        cx, cy, size = (float(v) for v in state[:3, 0])
        size = max(size, 1.0)
        w, h = size * math.sqrt(self.aspect), size / math.sqrt(self.aspect)
        return cx - w / 2, cy - h / 2, w, h

    def predict(self) -> tuple[float, float, float, float]:
        return self._box(self.kf.predict())

    def correct(self, box: Sequence[float]) -> None:
        x, y, w, h = (float(v) for v in box)
        self.aspect = w / h if h > 0 else self.aspect
        self.kf.correct(np.array([[x + w / 2], [y + h / 2], [math.sqrt(w * h)]], np.float32))


@dataclass
class _Track:
    id: int
    motion: _Motion
    face: Face  # as last detected
    last_seen: float
    predicted: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    probabilities: np.ndarray | None = None  # smoothed
    time: float | None = None  # of the last smoothed update


def follow(face: Face, box: Sequence[float]) -> Face:
    """``face`` moved to ``box``: its landmarks and eyes carried along by the same shift and
    scale, so that a followed face is cut as a detected one would be."""
    x0, y0, w0, _ = face.box
    x1, y1, w1, h1 = box
    scale = w1 / w0 if w0 else 1.0

    def move(points):
        if points is None:
            return None
        return tuple(((px - x0) * scale + x1, (py - y0) * scale + y1) for px, py in points)

    new_box = (round(x1), round(y1), max(round(w1), 1), max(round(h1), 1))
    return Face(new_box, face.score, move(face.eyes), move(face.landmarks))


class FaceTracker:
    """Ids for the faces of successive frames (:meth:`update` after a detection) and their
    predicted boxes between detections (:meth:`coast`)."""

    def __init__(self, keep: float = 1.0):
        self.keep = keep
        self.tracks: list[_Track] = []
        self.next_id = 1
        self.detected_at: float | None = None

    def _predict(self) -> None:
        for t in self.tracks:
            t.predicted = t.motion.predict()

    def update(self, faces: Sequence[Face], time: float) -> list[int]:
        """The track id of each of ``faces`` (detected in the frame at ``time`` seconds): an
        existing track's where one's predicted box is close, a new one otherwise."""
        self.tracks = [t for t in self.tracks if time - t.last_seen <= self.keep]
        self._predict()
        pairs = []
        for i, t in enumerate(self.tracks):
            for j, f in enumerate(faces):
                score = _closeness(t.predicted, f.box, time - t.last_seen)
                if score > 0:
                    pairs.append((score, i, j))
        ids: list[int | None] = [None] * len(faces)
        used: set[int] = set()
        for _, i, j in sorted(pairs, reverse=True):
            if i in used or ids[j] is not None:
                continue
            used.add(i)
            t = self.tracks[i]
            t.motion.correct(faces[j].box)
            t.face, t.last_seen, ids[j] = faces[j], time, t.id
        for j, f in enumerate(faces):
            if ids[j] is None:
                track = _Track(self.next_id, _Motion(f.box), f, time)
                self.tracks.append(track)
                ids[j] = track.id
                self.next_id += 1
        self.detected_at = time
        return [int(i) for i in ids]  # type: ignore[arg-type]

    def coast(self) -> list[tuple[int, Face]]:
        """The faces of the tracks found at the last detection, moved to where their motion
        predicts them in this frame (one without detection)."""
        self._predict()
        return [(t.id, follow(t.face, t.predicted)) for t in self.tracks
                if t.last_seen == self.detected_at]  # fmt: skip

    def smooth(self, track_id: int, probs: np.ndarray, time: float, seconds: float) -> np.ndarray:
        """Track ``track_id``'s probabilities averaged exponentially over time, with the time
        constant ``seconds`` (a frame ``dt`` after the last weighs ``1 - exp(-dt / seconds)``)."""
        t = next(t for t in self.tracks if t.id == track_id)
        if t.probabilities is None or seconds <= 0 or t.time is None:
            t.probabilities = probs.astype(np.float64)
        else:
            weight = 1.0 - math.exp(-max(time - t.time, 0.0) / seconds)
            t.probabilities = t.probabilities + weight * (probs - t.probabilities)
        t.time = time
        return t.probabilities


def _closeness(predicted: Sequence[float], box: Sequence[float], lost: float) -> float:
    """How well a detection fits a track's predicted box: their overlap when it is enough,
    otherwise a smaller score for centres within :data:`NEAR` of the face's size, a reach
    that grows with the seconds the track has been ``lost`` (its prediction grows less
    sure), 0 beyond. Sizes must be alike (a face does not double between two sightings)."""
    overlap = iou(predicted, box)
    if overlap >= MIN_IOU:
        return overlap
    (px, py, pw, ph), (x, y, w, h) = predicted, box
    size = math.sqrt(max(pw * ph, w * h, 1.0))
    distance = math.hypot(px + pw / 2 - x - w / 2, py + ph / 2 - y - h / 2) / size
    reach = NEAR * (1 + 2 * max(lost, 0.0))
    similar = min(pw * ph, w * h) / max(pw * ph, w * h, 1.0) > 0.4
    return MIN_IOU * (1 - distance / reach) if distance < reach and similar else 0.0


@dataclass
class TrackSummary:
    """What one track showed: when, in how many frames, and how often each emotion led."""

    track: int
    first: float
    last: float
    frames: int = 0
    label_frames: dict[str, int] = field(default_factory=dict)
    sums: np.ndarray | None = None  # of the probabilities it was given

    def add(self, time: float, label: str, probabilities: np.ndarray) -> None:
        self.last, self.frames = time, self.frames + 1
        self.label_frames[label] = self.label_frames.get(label, 0) + 1
        self.sums = probabilities.copy() if self.sums is None else self.sums + probabilities

    def to_dict(self, labels: Sequence[str], interval: float) -> dict:
        """``interval``: seconds between the video's used frames (time on screen is frames
        times that)."""
        share = {name: self.label_frames.get(name, 0) / self.frames for name in labels}
        mean = dict(zip(labels, (self.sums / self.frames).tolist()))
        return {
            "track": self.track,
            "first_seen": round(self.first, 3),
            "last_seen": round(self.last, 3),
            "frames": self.frames,
            "seconds_on_screen": round(self.frames * interval, 3),
            "dominant": max(share, key=share.__getitem__),
            "share_of_time": {k: round(v, 4) for k, v in share.items()},
            "mean_probabilities": {k: round(v, 4) for k, v in mean.items()},
            "valence": round(valence(mean), 4),
        }


#: The valence-like score: the probability of the one positive basic emotion minus that of
#: the negative ones; surprise (either way) and neutral count for nothing. In [-1, 1].
VALENCE_POSITIVE = "happiness"
VALENCE_NEGATIVE = ("anger", "disgust", "fear", "sadness", "contempt")


def valence(probabilities: dict[str, float]) -> float:
    """``P(happiness) - P(anger, disgust, fear, sadness, contempt)``: a crude, stated valence,
    not a measured one."""
    negative = sum(probabilities.get(name, 0.0) for name in VALENCE_NEGATIVE)
    return probabilities.get(VALENCE_POSITIVE, 0.0) - negative


@dataclass
class TrackedVideo:
    """What tracking found in one video: each track's summary (:meth:`TrackSummary.to_dict`,
    in the order the tracks appeared) and a small BGR picture of its surest face."""

    tracks: list[dict]
    thumbnails: dict[int, np.ndarray]


#: A track's thumbnail: its face with a margin, this many pixels high.
THUMBNAIL = 96


def _thumbnail(image: np.ndarray, box: Sequence[int]) -> np.ndarray:
    x, y, w, h = box
    m = round(0.15 * max(w, h))
    crop = image[max(y - m, 0) : y + h + m, max(x - m, 0) : x + w + m]
    if crop.ndim == 2:
        crop = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
    scale = THUMBNAIL / max(crop.shape[0], 1)
    size = (max(round(crop.shape[1] * scale), 1), THUMBNAIL)
    return cv2.resize(crop, size, interpolation=cv2.INTER_AREA)


class Follower:
    """One video's faces, frame by frame (:meth:`step`): each with its track id and, when
    smoothing, its track's smoothed probabilities; :meth:`summary`, per track, at the end."""

    def __init__(self, recognizer: Recognizes, options: TrackOptions):
        self.rec, self.options = recognizer, options
        self.tracker = FaceTracker(self.options.keep)
        self.tracks: dict[int, TrackSummary] = {}
        self.best: dict[int, tuple[float, np.ndarray]] = {}  # track -> (score, thumbnail)
        self.frames = 0
        self.first = self.last = 0.0

    def step(
        self, image: np.ndarray, time: float, recognizer: Recognizes | None = None
    ) -> list[Any]:
        """The faces of the next used frame, shown at ``time`` seconds; ``recognizer``: another
        of the same model to use for it (a worker thread's own)."""
        rec = recognizer or self.rec
        if self.frames % self.options.detect_every == 0:
            found = rec.find(image)
            ids = self.tracker.update(found.faces, time)
        else:
            followed = self.tracker.coast()
            found = rec.find(image, faces=[face for _, face in followed])
            ids = [track for track, _ in followed]
        if self.frames == 0:
            self.first = time
        self.frames, self.last = self.frames + 1, time
        labels = self.rec.labels
        out = []
        for track, pred in zip(ids, rec.classify([found])[0]):
            probs = np.array([pred.probabilities[name] for name in labels])
            if self.options.smooth > 0:
                mean = self.tracker.smooth(track, probs, time, self.options.smooth)
                pred = replace(pred, smoothed=dict(zip(labels, mean.tolist())))
            pred = replace(pred, track=track)
            summary = self.tracks.setdefault(track, TrackSummary(track, time, time))
            summary.add(time, pred.smoothed_label or pred.label, probs)
            if pred.score > self.best.get(track, (-math.inf,))[0]:
                self.best[track] = (pred.score, _thumbnail(image, pred.box))
            out.append(pred)
        return out

    def result(self) -> TrackedVideo:
        """Each track's summary and thumbnail so far."""
        interval = (self.last - self.first) / (self.frames - 1) if self.frames > 1 else 0.0
        tracks = [s.to_dict(self.rec.labels, interval) for _, s in sorted(self.tracks.items())]
        return TrackedVideo(tracks, {track: thumb for track, (_, thumb) in self.best.items()})
