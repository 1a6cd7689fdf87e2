"""Samples -> faces -> one compressed ``.npz`` of arrays plus a ``.json`` manifest, cached.

Training never decodes an image again: it loads the arrays. The cache key hashes the
configuration and every input file's path, size and modification time, so any change
rebuilds and no change re-uses.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tinyfer import __version__
from tinyfer.core.config import DataConfig, to_dict
from tinyfer.core.datasets import (
    CROPPED_FORMATS,
    TRAIN_SPLITS,
    Problem,
    Sample,
    Scan,
    read_dataset,
)
from tinyfer.core.faces import create_detector
from tinyfer.core.faces.cut import FaceCut
from tinyfer.core.faces.face import Face
from tinyfer.core.io import atomic_path, load_image
from tinyfer.core.labels import canonical_label, ordered_labels
from tinyfer.core.progress import parallel_map
from tinyfer.errors import DatasetError, TinyferError

log = logging.getLogger(__name__)

#: Bumped whenever the way crops are made changes, so old caches are not re-used.
PREPARE_VERSION = 6
#: Haar works on copies with at least this shorter side when preparing (precise boxes).
PREPARE_WORK_SIDE = 320


@dataclass(frozen=True)
class Prepared:
    """Face crops and their columns, index-aligned. Missing subject/split/take: ``""``.
    ``soft`` holds each face's label distribution (annotators' votes, FER+) where the dataset
    has one, ``(N, len(labels))`` rows summing to 1; ``(N, 0)`` where it has none. ``valid``
    marks the crop's pixels that show the image rather than its replicated border (where the
    face's frame reaches past the edge of a dataset's tight crop). ``sources`` names each
    face's dataset (the folder's name), which tells the datasets of a :func:`combine` apart."""

    X: np.ndarray  # (N, H, W) uint8
    y: np.ndarray  # (N,) int64, indices into labels
    labels: tuple[str, ...]
    subjects: np.ndarray  # (N,) str
    splits: np.ndarray  # (N,) str: the dataset's own usage (FER2013: Training, PublicTest, ...)
    paths: np.ndarray  # (N,) str
    takes: np.ndarray  # (N,) str
    frames: np.ndarray  # (N,) int64, -1 where none
    soft: np.ndarray  # (N, len(labels)) float32, or (N, 0)
    valid: np.ndarray  # (N, H, W) uint8: 255 where the crop shows its image, 0 on the border
    manifest: dict[str, Any] = field(default_factory=dict, compare=False)
    file: str | None = None
    sources: np.ndarray | None = None  # (N,) str; None: "" for every face

    def __post_init__(self):
        if self.sources is None:
            object.__setattr__(self, "sources", np.full(len(self.y), "", dtype="<U1"))

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx: np.ndarray) -> Prepared:
        """The rows ``idx``, with the same labels and manifest."""
        columns = {name: getattr(self, name)[idx] for name in _COLUMNS}
        return dataclasses.replace(self, **columns)

    @property
    def img_size(self) -> int:
        return int(self.X.shape[1])

    def spread(self, n: int) -> np.ndarray:
        """Up to ``n`` faces taken evenly over the set (every k-th, so every part of a set
        ordered by class or subject is in): faces to check an export or calibrate int8 on."""
        return self.X[:: max(1, len(self) // n)][:n]


_COLUMNS = ("X", "y", "subjects", "splits", "paths", "takes", "frames", "soft", "valid", "sources")


def soft_labels(samples: list[Sample], labels: tuple[str, ...]) -> np.ndarray:
    """Votes as distributions over ``labels`` (votes for other labels left out), ``(N, 0)``
    unless every sample has votes."""
    if not samples or any(s.votes is None for s in samples):
        return np.zeros((len(samples), 0), np.float32)
    soft = np.array([[s.votes.get(name, 0) for name in labels] for s in samples], np.float32)
    # A face keeps its majority label among the labels used, so its row has a vote.
    return soft / soft.sum(1, keepdims=True)


def resolve_detector(cfg: DataConfig, format: str) -> str:
    if cfg.detector != "auto":
        return cfg.detector
    if cfg.geometry == "template":
        return "mtcnn"
    return "none" if format in CROPPED_FORMATS else "haar"


def cache_key(scan: Scan, cfg: DataConfig, detector: str, digests: _Digests | None = None) -> str:
    """Hash of the config, the layout and every input file's path, size and content (its
    digest, remembered in ``digests`` by size and mtime: a dataset copied again to the same
    place, whose times are new, is hashed again, not prepared again)."""
    digests = digests or _Digests(None)
    h = hashlib.sha256()
    settings = {
        **to_dict(cfg),
        "detector": detector,
        "format": scan.format,
        "version": PREPARE_VERSION,
    }
    for key in ("path", "replay", "replay_format", "replay_share"):  # not this dataset's faces
        settings.pop(key)
    h.update(json.dumps(settings, sort_keys=True).encode())
    seen: set[str] = set()
    for s in scan.samples:
        file = s.path.rsplit(":", 1)[0] if s.pixels is not None else s.path
        if file in seen:
            continue
        seen.add(file)
        st = os.stat(file)
        h.update(f"{file}\0{st.st_size}\0{digests.of(file, st)}\n".encode())
    digests.save()
    return h.hexdigest()


class _Digests:
    """Content digests of input files, remembered in ``folder/digests.memo`` (JSON) by path, size
    and mtime, so that an unchanged file is read once (None: remembered nowhere)."""

    def __init__(self, folder: Path | None):
        self.file = None if folder is None else Path(folder) / "digests.memo"  # not a manifest
        self.known: dict[str, list] = {}
        self.changed = False
        if self.file is not None and self.file.is_file():
            try:
                self.known = json.loads(self.file.read_text())
            except (OSError, ValueError):
                self.known = {}  # a damaged memo only costs hashing again

    def of(self, file: str, st: os.stat_result) -> str:
        size, mtime, digest = self.known.get(file, (None, None, None))
        if (size, mtime) != (st.st_size, st.st_mtime_ns):
            with open(file, "rb") as f:
                digest = hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=16)).hexdigest()
            self.known[file] = [st.st_size, st.st_mtime_ns, digest]
            self.changed = True
        return digest

    def save(self) -> None:
        if self.file is None or not self.changed:
            return
        try:
            with atomic_path(self.file) as tmp:
                tmp.write_text(json.dumps(self.known))
        except OSError:
            pass  # not remembered: the next run hashes again
        self.changed = False


# The worker state is per process: each process builds its detector once.
_worker: dict[str, Any] = {}


def _init_worker(detector: str, cfg: DataConfig, cropped: bool) -> None:
    cv2.setNumThreads(1)  # one process per core already; OpenCV's own threads would contend

    if detector == "haar":
        kwargs = {"find_eyes": cfg.align, "min_face": cfg.min_face, "work_side": PREPARE_WORK_SIDE}
    elif detector == "mtcnn":
        # In a dataset of crops the face fills most of the (enlarged) image.
        kwargs = {"min_face": max(cfg.min_face, 0.3) if cropped else cfg.min_face}
    else:
        kwargs = {}
    _worker.update(detector=create_detector(detector, **kwargs), cfg=cfg, cropped=cropped,
                   cut=FaceCut.of(cfg, detector))  # fmt: skip
    if detector == "mtcnn" and not cropped:
        # Where MTCNN finds no face in a frame, Haar's box (calibrated framing) still may.
        haar = {"min_face": cfg.min_face, "work_side": PREPARE_WORK_SIDE}
        _worker["fallback"] = create_detector("haar", **haar)


@dataclass(frozen=True)
class _Cut:
    """One sample's face: its crop and the crop's pixels that show the image (255) rather
    than its replicated border (0), or the problem met; how many faces the image held, and
    how the face was cut (landmarks, box, whole image)."""

    crop: np.ndarray | None = None
    valid: np.ndarray | None = None
    problem: Problem | None = None
    faces: int = 0
    how: str = ""


def _face_of(sample: Sample) -> _Cut:
    """The largest face in ``sample``, cut as ``cfg`` says."""
    cfg: DataConfig = _worker["cfg"]
    cut: FaceCut = _worker["cut"]
    detector = _worker["detector"]
    try:
        image = sample.load(gray=detector.name != "mtcnn")  # MTCNN sees colour where there is
    except TinyferError as exc:
        return _Cut(problem=Problem(sample.path, "unreadable", str(exc)))
    gray = load_image(image, gray=True)
    faces = detector.detect(image)
    no_face = _Cut(problem=Problem(sample.path, "no_face", "no face found; frame left out"))
    if cut.geometry == "margin":
        if not faces:
            return no_face
        crop, valid = cut.cut(gray, faces[0], cfg.img_size, detector.name, with_valid=True)
        return _Cut(crop, valid, faces=len(faces), how="box")
    if faces and faces[0].landmarks is not None:
        face, framing, how = faces[0], detector.name, "landmarks"
    elif _worker["cropped"] or detector.name == "none":
        # A dataset's own crop without landmarks found on it: its framing is the template's.
        face, framing, how = Face((0, 0, gray.shape[1], gray.shape[0]), 0.0), "whole", "whole"
    else:
        framing = detector.name
        if not faces and "fallback" in _worker:
            faces, framing = _worker["fallback"].detect(gray), "haar"
        if not faces:
            return no_face
        face, how = faces[0], "box"
    crop, valid = cut.cut(gray, face, cfg.img_size, framing, with_valid=True)
    return _Cut(crop, valid, faces=len(faces), how=how)


def prepare(
    cfg: DataConfig,
    out_dir: str | Path = "prepared",
    *,
    workers: int | None = None,
    progress: bool = True,
    force: bool = False,
) -> Prepared:
    """Read ``cfg.path``, crop faces and write (or re-use) the cached arrays in ``out_dir``.

    Several paths are prepared (and cached) one by one, then combined (:func:`combine`)."""
    if len(cfg.paths) > 1:
        return combine(
            [
                prepare(c, out_dir, workers=workers, progress=progress, force=force)
                for c in cfg.sources()
            ]
        )
    scan, problems = _selected(cfg)
    detector = resolve_detector(cfg, scan.format)
    out_dir = Path(out_dir)
    key = cache_key(scan, cfg, detector, _Digests(out_dir))
    stem = f"{Path(scan.root).stem or 'data'}-{scan.format}-{key[:12]}"
    npz_file = out_dir / f"{stem}.npz"
    if npz_file.is_file() and (out_dir / f"{stem}.json").is_file() and not force:
        log.info("re-using prepared data %s (inputs and config unchanged)", npz_file)
        return load_prepared(npz_file)

    start = time.perf_counter()
    results = parallel_map(
        _face_of,
        scan.samples,
        workers=workers,
        initializer=_init_worker,
        initargs=(detector, cfg, scan.format in CROPPED_FORMATS),
        description=f"faces ({detector})",
        progress=progress,
    )
    kept, cuts = [], []
    for sample, cut in zip(scan.samples, results):
        if cut.problem is not None:
            problems.append(cut.problem)
        else:
            kept.append(sample)
            cuts.append(cut)
    cut_by = Counter(c.how for c in cuts)
    if cfg.geometry == "template" and cut_by["landmarks"] < len(kept):
        log.info("faces cut by landmarks: %d of %d (box framing: %d, whole crop: %d)",
                 cut_by["landmarks"], len(kept), cut_by["box"], cut_by["whole"])  # fmt: skip
    if not kept:
        raise DatasetError(
            f"{cfg.path}: no usable face in {len(scan.samples)} samples; "
            f"problems: {dict(Counter(p.kind for p in problems))}"
        )
    prepared = _arrays(kept, cuts, scan)
    manifest = {
        "tinyfer_version": __version__,
        "prepare_version": PREPARE_VERSION,
        "key": key,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "root": scan.root,
        "format": scan.format,
        "detector": detector,
        "config": to_dict(cfg),
        "samples_read": len(scan.samples),
        "samples_kept": len(kept),
        "labels": list(prepared.labels),
        "counts": {name: int((prepared.y == i).sum()) for i, name in enumerate(prepared.labels)},
        "splits": dict(Counter(s.split or "" for s in kept)),
        "subjects": len({s.subject for s in kept if s.subject}),
        "multiple_faces": sum(c.faces > 1 for c in cuts),
        "geometry": cfg.geometry,
        "cut_by": dict(cut_by),
        "reader_notes": scan.notes,
        "problem_counts": dict(Counter(p.kind for p in problems)),
        "problems": [dataclasses.asdict(p) for p in problems],
        "seconds": round(time.perf_counter() - start, 2),
    }
    prepared = dataclasses.replace(prepared, manifest=manifest, file=str(npz_file))
    _write(prepared, npz_file)
    return prepared


def _selected(cfg: DataConfig) -> tuple[Scan, list[Problem]]:
    """The dataset's scan, with only the samples of ``data.labels`` (when given), and its
    problems (those left out by the selection among them)."""
    if cfg.path is None:
        raise DatasetError(
            "no dataset path given (data.path); use `tinyfer data synth` for demo data"
        )
    scan = read_dataset(cfg.path, cfg.format, frames=cfg.frames, n_frames=cfg.n_frames,
                        subject_regex=cfg.subject_regex, skip_unknown=cfg.skip_unknown)  # fmt: skip
    problems = list(scan.problems)
    if not cfg.labels:
        return scan, problems
    keep = {canonical_label(name) for name in cfg.labels}
    dropped = Counter(s.label for s in scan.samples if s.label not in keep)
    if dropped:
        problems.append(
            Problem(scan.root, "label_not_selected", f"left out by data.labels: {dict(dropped)}")
        )
    return dataclasses.replace(scan, samples=[s for s in scan.samples if s.label in keep]), problems


def _arrays(kept: list[Sample], cuts: list[_Cut], scan: Scan) -> Prepared:
    """The kept samples and their faces as the arrays of a :class:`Prepared`."""
    labels = ordered_labels(s.label for s in kept)
    index = {name: i for i, name in enumerate(labels)}
    return Prepared(
        X=np.stack([c.crop for c in cuts]),
        y=np.array([index[s.label] for s in kept], dtype=np.int64),
        labels=labels,
        subjects=np.array([s.subject or "" for s in kept]),
        splits=np.array([s.split or "" for s in kept]),
        paths=np.array([s.path for s in kept]),
        takes=np.array([s.take or "" for s in kept]),
        frames=np.array([-1 if s.frame is None else s.frame for s in kept], dtype=np.int64),
        soft=soft_labels(kept, labels),
        valid=np.stack([c.valid for c in cuts]),
        sources=np.full(len(kept), Path(scan.root).name),
    )


def combine(parts: list[Prepared]) -> Prepared:
    """Several prepared datasets as one: labels mapped onto one vocabulary (in the canonical
    order), subject ids prefixed by their dataset's name so that no two datasets share one,
    soft labels kept where a dataset has them and one-hot elsewhere (when any has them)."""
    sizes = {p.img_size for p in parts}
    if len(sizes) > 1:
        raise DatasetError(f"datasets prepared at different sizes cannot be combined: {sizes}")
    names = [str(p.sources[0]) if len(p) else "" for p in parts]
    names = [n if names.count(n) == 1 else f"{n}{i + 1}" for i, n in enumerate(names)]
    labels = ordered_labels(name for p in parts for name in p.labels)
    index = {name: i for i, name in enumerate(labels)}
    any_soft = any(p.soft.shape[1] for p in parts)
    columns: dict[str, list[np.ndarray]] = {name: [] for name in _COLUMNS}
    for name, p in zip(names, parts):
        to_union = np.array([index[label] for label in p.labels], dtype=np.int64)
        soft = np.zeros((len(p), len(labels) if any_soft else 0), np.float32)
        if any_soft and p.soft.shape[1]:
            soft[:, to_union] = p.soft
        elif any_soft:
            soft[np.arange(len(p)), to_union[p.y]] = 1
        prefixed = np.array([f"{name}:{s}" if s else "" for s in p.subjects.tolist()])
        own = {"y": to_union[p.y], "soft": soft, "subjects": prefixed,
               "sources": np.full(len(p), name)}  # fmt: skip
        for column in _COLUMNS:
            columns[column].append(own.get(column, getattr(p, column)))
    arrays = {name: np.concatenate(columns[name]) for name in _COLUMNS}
    y = arrays["y"]
    detectors = sorted({str(p.manifest.get("detector")) for p in parts})
    manifest = {
        "tinyfer_version": __version__,
        "combined": True,
        "sources": [
            {
                "name": n,
                "file": p.file,
                "root": p.manifest.get("root"),
                "format": p.manifest.get("format"),
                "faces": len(p),
            }
            for n, p in zip(names, parts)
        ],
        "detector": detectors[0] if len(detectors) == 1 else "+".join(detectors),
        "geometry": parts[0].manifest.get("geometry"),
        "samples_read": sum(p.manifest.get("samples_read", len(p)) for p in parts),
        "samples_kept": len(y),
        "labels": list(labels),
        "counts": {name: int((y == i).sum()) for i, name in enumerate(labels)},
        "problem_counts": dict(
            sum((Counter(p.manifest.get("problem_counts", {})) for p in parts), Counter())
        ),
    }
    return Prepared(**arrays, labels=labels, manifest=manifest)


def with_replay(
    data: Prepared, parts: dict[str, np.ndarray], cfg: DataConfig, out_dir: str | Path,
    *, seed: int, progress: bool = True,
) -> tuple[Prepared, dict[str, np.ndarray]]:  # fmt: skip
    """``data`` with faces of ``cfg.replay`` added to its training part only: from the replay
    set's training split and ``data``'s classes, drawn at random (by ``seed``) so that they
    are ``cfg.replay_share`` of the training faces (all of them, if it has fewer)."""
    replay = prepare(cfg.replayed(list(data.labels)), out_dir, progress=progress)
    pool = np.flatnonzero(np.isin(replay.splits, TRAIN_SPLITS))
    train = parts["train"]
    wanted = round(len(train) * cfg.replay_share / (1 - cfg.replay_share))
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(pool, min(wanted, len(pool)), replace=False))
    log.info("replaying %d faces of %s (%s) beside %d training faces", len(chosen),
             cfg.replay, ", ".join(replay.labels), len(train))  # fmt: skip
    merged = combine([data, replay.subset(chosen)])
    added = np.arange(len(data), len(merged))
    return merged, {**parts, "train": np.concatenate([train, added])}


def _write(prepared: Prepared, npz_file: Path) -> None:
    """Write arrays and manifest under temporary names, then rename: never half a cache."""
    with atomic_path(npz_file) as tmp_npz, atomic_path(npz_file.with_suffix(".json")) as tmp_json:
        with open(tmp_npz, "wb") as f:
            np.savez_compressed(
                f,
                labels=np.array(prepared.labels),
                **{name: getattr(prepared, name) for name in _COLUMNS},
            )
        tmp_json.write_text(json.dumps(prepared.manifest, indent=2))


def load_prepared(path: str | Path) -> Prepared:
    """Load arrays written by :func:`prepare` (the ``.npz``; its ``.json`` manifest beside it)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such prepared file")
    manifest_file = path.with_suffix(".json")
    manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
    with np.load(path, allow_pickle=False) as data:
        columns = {name: data[name] for name in _COLUMNS if name in data.files}
        labels = tuple(str(x) for x in data["labels"])
    columns.setdefault("soft", np.zeros((len(columns["y"]), 0), np.float32))
    columns.setdefault("valid", np.full_like(columns["X"], 255))
    columns.setdefault("sources", np.full(len(columns["y"]), Path(manifest.get("root", "")).name))
    return Prepared(**columns, labels=labels, manifest=manifest, file=str(path))
