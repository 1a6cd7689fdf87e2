"""Predict over many inputs (image files, folders, globs, videos, a camera), streaming one
record per image or frame to a table, JSON or CSV writer, with optional annotated copies.

A bad input is reported and skipped; the run goes on and the summary counts it.
"""

from __future__ import annotations

import csv
import glob
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO

import cv2
import numpy as np

from tinyfer.core.io import IMAGE_SUFFIXES, VIDEO_SUFFIXES, Frame, iter_frames, load_image
from tinyfer.core.terminal import printable
from tinyfer.errors import TinyferError
from tinyfer.inference.annotate import annotate
from tinyfer.inference.cluster import connect
from tinyfer.inference.predict import Prediction, Recognizer
from tinyfer.inference.track import Follower, TrackedVideo, TrackOptions, track_options

log = logging.getLogger(__name__)

#: Frame rates outside this range are taken as missing (a broken header): the tracker's
#: clock then counts frames at :data:`ASSUMED_FPS`.
SANE_FPS = (1.0, 1000.0)
ASSUMED_FPS = 25.0

FORMATS = ("table", "json", "csv")


@dataclass(frozen=True)
class Record:
    """The faces of one image, or of one video frame (``frame`` and ``time`` set)."""

    file: str
    faces: Sequence[Prediction]
    frame: int | None = None
    time: float | None = None

    def to_dict(self) -> dict:
        d: dict = {"file": printable_name(self.file)}
        if self.frame is not None:
            d |= {"frame": self.frame, "time": self.time}
        return d | {"faces": [f.to_dict() for f in self.faces]}


def printable_name(name: str, *, one_line: bool = False) -> str:
    """A file name as valid UTF-8 text: bytes that are not UTF-8 (kept by Python as lone
    surrogates) become ``\\xNN``; with ``one_line``, control characters (a newline in a
    name) are escaped too, so a name never breaks a line-based table."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return printable(text, one_line=True) if one_line else text


@dataclass
class Summary:
    images: int = 0
    videos: int = 0
    frames: int = 0
    faces: int = 0
    without_face: int = 0  # images and frames where no face was found
    box_framed: int = 0  # faces cut by their box (no landmarks) for a template-geometry model
    skipped: int = 0  # files in given folders that are neither images nor videos
    failed: list[tuple[str, str]] = field(default_factory=list)  # (input, problem)
    tracks: dict[str, TrackedVideo] = field(default_factory=dict)  # video -> what tracking found
    interrupted: str | None = None  # where a run stopped by Ctrl-C stopped

    @property
    def processed(self) -> int:
        return self.images + self.videos

    def add(self, other: Summary) -> None:
        """Count ``other``'s inputs in this one too (a Ray worker's; its problems come back
        apart, as each input's)."""
        for f in fields(self):
            if f.name not in ("failed", "tracks", "interrupted"):  # the counts
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        self.tracks.update(other.tracks)


def expand_inputs(inputs: Sequence[str]) -> tuple[list[Path], list[tuple[str, str]], int]:
    """Files named by ``inputs`` (files, folders searched recursively for images and videos,
    glob patterns): ``(files, problems, skipped)``."""
    files: list[Path] = []
    problems: list[tuple[str, str]] = []
    skipped = 0
    media = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found, unreadable = _walk(path, problems)
            inside = [p for p in found if p.suffix.lower() in media]
            skipped += len(found) - len(inside)
            if not inside:
                why = f" ({unreadable} folder(s) in it could not be read)" if unreadable else ""
                problems.append((item, f"folder holds no image or video{why}"))
            files += inside
        elif path.exists():
            files.append(path)
        elif any(c in item for c in "*?["):
            matches = sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
            if not matches:
                problems.append((item, "no file matches this pattern"))
            files += matches
        else:
            problems.append((item, "no such file or folder"))
    return files, problems, skipped


def _walk(folder: Path, problems: list[tuple[str, str]]) -> tuple[list[Path], int]:
    """Every file under ``folder`` (sorted) and how many sub-folders could not be read. Links
    to folders are not followed (a loop would never end); unreadable folders, links to
    nothing and special files are problems, named."""
    found: list[Path] = []
    unreadable = 0

    def cannot_read(exc: OSError) -> None:
        nonlocal unreadable
        unreadable += 1
        problems.append((str(exc.filename), f"folder cannot be read ({exc.strerror or exc})"))

    for root, dirs, names in os.walk(folder, onerror=cannot_read, followlinks=False):
        dirs.sort()
        for name in dirs:
            if os.path.islink(os.path.join(root, name)):
                problems.append((os.path.join(root, name), "link to a folder, not followed"))
        for name in sorted(names):
            p = Path(root, name)
            if p.is_file():
                found.append(p)
            elif not p.exists():
                problems.append((str(p), "link to nothing (dangling), left out"))
            else:  # a pipe, socket or device, or a link to one: reading it may never end
                problems.append((str(p), "not a regular file (a device, pipe or socket), left out"))
    return sorted(found), unreadable


class _Writer:
    """``frames``: whether any record will come from a video or a camera."""

    def __init__(self, stream: IO[str], labels: Sequence[str], *, frames: bool = True):
        self.stream, self.labels, self.frames = stream, labels, frames

    def write(self, record: Record) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.stream.flush()


class TableWriter(_Writer):
    """Aligned text, one line per face (``-`` for a frame with none); file last. With videos,
    the frame and time columns, and each face's track and smoothed label (``-`` untracked);
    the header with the first line (none for a run that predicted nothing)."""

    def __init__(self, stream, labels, *, frames=True):
        super().__init__(stream, labels, frames=frames)
        self.started = False

    def _line(self, frame: str, time: str, face: str, track: str, rest: str) -> None:
        head = f"{frame:>6} {time:>8} {face:>4} {track:>5} " if self.frames else f"{face:>4} "
        self.stream.write(f"{head}{rest}\n")

    def write(self, record):
        if not self.started:
            smooth = f"{'smoothed':<10} " if self.frames else ""
            self._line("frame", "time", "face", "track",
                       f"{'label':<10} {'prob':>5} {smooth}{'box (x,y,w,h)':<20} file")  # fmt: skip
            self.started = True
        frame = "" if record.frame is None else str(record.frame)
        time = "" if record.time is None else f"{record.time:.2f}"
        file = printable_name(record.file, one_line=True)
        if not record.faces:
            smooth = f"{'':<10} " if self.frames else ""
            self._line(frame, time, "-", "", f"{'no face':<10} {'':>5} {smooth}{'':<20} {file}")
        for i, f in enumerate(record.faces):
            box, p = ",".join(map(str, f.box)), f.probabilities[f.label]
            smooth = f"{f.smoothed_label or '-':<10} " if self.frames else ""
            track = "-" if f.track is None else str(f.track)
            self._line(frame, time, str(i), track,
                       f"{f.label:<10} {p:>5.3f} {smooth}{box:<20} {file}")  # fmt: skip


class JsonWriter(_Writer):
    """One JSON list, written as records arrive (nothing is held back)."""

    def __init__(self, stream, labels, *, frames=True):
        super().__init__(stream, labels, frames=frames)
        self.first = True
        stream.write("[")

    def write(self, record):
        self.stream.write(("\n" if self.first else ",\n") + json.dumps(record.to_dict()))
        self.first = False

    def close(self):
        self.stream.write("\n]\n")
        super().close()


class CsvWriter(_Writer):
    """A row per face (one row with empty face columns for an image or frame with none).
    With videos, also each face's track, smoothed label and smoothed probabilities (empty
    where the face is not tracked or smoothed)."""

    def __init__(self, stream, labels, *, frames=True):
        super().__init__(stream, labels, frames=frames)
        self.csv = csv.writer(stream, lineterminator="\n")
        tracked = ["track", "smoothed_label", *(f"s_{name}" for name in labels)] * frames
        self.csv.writerow(["file", "frame", "time", "face", "x", "y", "w", "h", "score", "label",
                           *(f"p_{name}" for name in labels), *tracked])  # fmt: skip
        self.width = 7 + len(labels) + len(tracked)

    def write(self, record):
        head = [printable_name(record.file), record.frame, record.time]
        if not record.faces:
            self.csv.writerow(head + [""] * self.width)
        for i, f in enumerate(record.faces):
            probs = [f"{f.probabilities[name]:.6f}" for name in self.labels]
            tracked = []
            if self.frames:
                smoothed = [f"{f.smoothed[name]:.6f}" for name in self.labels] if f.smoothed else (
                    [""] * len(self.labels))  # fmt: skip
                tracked = ["" if f.track is None else f.track, f.smoothed_label or "", *smoothed]
            self.csv.writerow([*head, i, *f.box, f"{f.score:.4f}", f.label, *probs, *tracked])


WRITERS = {"table": TableWriter, "json": JsonWriter, "csv": CsvWriter}


class _Annotator:
    """Names the annotated copies in ``out_dir``: images as images, videos as .mp4."""

    def __init__(self, out_dir: Path):
        if out_dir.exists() and not out_dir.is_dir():
            raise TinyferError(f"{out_dir}: --annotate needs a folder, and this is a file")
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TinyferError(f"{out_dir}: cannot create the --annotate folder "
                               f"({exc.strerror or exc})") from None  # fmt: skip
        self.out_dir, self.used = out_dir, set()

    def path_for(self, source: Path | int) -> Path:
        """A new file for ``source``'s annotated copy (two inputs ``a/x.jpg``, ``b/x.jpg``
        get ``x.jpg`` and ``x-2.jpg``)."""
        if isinstance(source, int) or source.suffix.lower() in VIDEO_SUFFIXES:
            stem, suffix = ("webcam" if isinstance(source, int) else source.stem), ".mp4"
        else:
            stem, suffix = source.stem, source.suffix.lower()
            suffix = suffix if suffix in (".jpg", ".jpeg", ".png", ".bmp") else ".png"
        name, n = f"{stem}{suffix}", 1
        while name in self.used:
            n += 1
            name = f"{stem}-{n}{suffix}"
        self.used.add(name)
        return self.out_dir / name


def _write_annotated(path: Path, image: np.ndarray, faces: Sequence[Prediction]) -> None:
    if not cv2.imwrite(str(path), annotate(image, faces)):
        raise TinyferError(f"{path}: cannot write the annotated image")


class _VideoSink:
    """An annotated video at the source's rate divided by ``every`` (10 fps if it has none)."""

    def __init__(self, path: Path, every: int):
        self.path, self.every, self.writer = path, every, None

    def add(self, frame: Frame, faces: Sequence[Prediction]) -> None:
        image = annotate(frame.image, faces)
        if self.writer is None:  # size and rate are known at the first frame
            h, w = image.shape[:2]
            fps = (frame.fps or 10.0) / self.every
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self.writer = cv2.VideoWriter(str(self.path), fourcc, fps, (w, h))
            if not self.writer.isOpened():
                raise TinyferError(f"{self.path}: cannot write the annotated video")
        self.writer.write(image)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


@dataclass(frozen=True)
class _Job:
    """One input to predict: an image or video file, or a camera; where its annotated copy
    goes (None: nowhere)."""

    source: Path | int
    annotate_to: Path | None
    every: int
    max_frames: int | None
    track: TrackOptions | None = None  # videos and cameras: faces followed across frames

    @property
    def name(self) -> str:
        return str(self.source) if isinstance(self.source, Path) else f"camera {self.source}"


def _process(recognizer: Recognizer, job: _Job, emit: Callable[[Record], None],
             summary: Summary) -> str | None:  # fmt: skip
    """Predict one input, ``emit`` its records as they come and count them in ``summary``;
    what was wrong with it (its records so far stay emitted), or None."""
    source, name = job.source, job.name
    try:
        if isinstance(source, Path) and source.suffix.lower() not in VIDEO_SUFFIXES:
            image = load_image(source)
            faces = recognizer.predict(image)
            emit(Record(name, faces))
            if job.annotate_to:
                _write_annotated(job.annotate_to, image, faces)
            summary.images += 1
            _count(recognizer, faces, summary)
        else:
            _run_video(recognizer, job, emit, summary)
    except TinyferError as exc:
        message = str(exc).removeprefix(f"{name}: ")
        if isinstance(source, Path) and "unrecognised format" in message:
            message = "not an image or a video (unrecognised format)"
        return message
    return None


def run_predictions(
    recognizer: Recognizer,
    inputs: Sequence[str],
    stream: IO[str],
    *,
    fmt: str = "table",
    annotate_dir: Path | None = None,
    every: int = 1,
    camera: int | None = None,
    max_frames: int | None = None,
    track: TrackOptions | bool = True,
    on_problem: Callable[[str, str], None] = lambda source, problem: None,
    on_record: Callable[[Record], None] = lambda record: None,
    ray: RayOptions | None = None,
) -> Summary:
    """Predict every input (and the camera, if given), writing records to ``stream`` in
    ``fmt`` as they come; ``on_problem(input, message)`` hears of each bad input and
    ``on_record`` sees each record once written. In videos and from the camera, faces are
    tracked (``track``: :class:`TrackOptions`, or False) and the summary holds each video's
    tracks. Interrupted (Ctrl-C), the output written so far is closed validly and the
    summary says where it stopped.

    Here, inputs are taken in their order. With ``ray``, they are shared among Ray workers
    (one recognizer each, made like ``recognizer``) and each input's records are written when
    it is done, so inputs come in the order they finish; a video's frames stay together."""
    if fmt not in WRITERS:
        raise TinyferError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if ray is not None and camera is not None:
        raise TinyferError("--webcam reads this machine's camera: not with --executor ray")
    annotator = _Annotator(annotate_dir) if annotate_dir is not None else None  # before output
    files, problems, skipped = expand_inputs(inputs)
    summary = Summary(skipped=skipped)
    for source, problem in problems:
        summary.failed.append((source, problem))
        on_problem(source, problem)
    sources: list[Path | int] = [*files, *([camera] if camera is not None else [])]
    frames = any(isinstance(s, int) or s.suffix.lower() in VIDEO_SUFFIXES for s in sources)
    writer = WRITERS[fmt](stream, recognizer.labels, frames=frames)
    options = track_options(track)
    jobs = [_Job(s, annotator.path_for(s) if annotator else None, every, max_frames, options)
            for s in sources]  # fmt: skip
    last: list[Record] = []

    def emit(record: Record) -> None:
        writer.write(record)
        last[:] = [record]
        on_record(record)

    try:
        if ray is None:
            done = ((job, _process(recognizer, job, emit, summary)) for job in jobs)
        else:
            done = _on_ray(ray, jobs, emit, summary)
        for job, problem in done:
            if problem is not None:
                summary.failed.append((job.name, problem))
                on_problem(job.name, problem)
    except KeyboardInterrupt:  # the way to stop a camera; what was written stays valid
        summary.interrupted = _where(last[0]) if last else "before the first record"
    finally:
        writer.close()
    return summary


def _where(record: Record) -> str:
    name = printable_name(record.file, one_line=True)
    return f"after {name}" + (f", frame {record.frame}" if record.frame is not None else "")


@dataclass(frozen=True)
class RayOptions:
    """Batch prediction on Ray: ``workers`` actors, each with its own recognizer made by
    ``make_recognizer`` (picklable, e.g. ``functools.partial(Recognizer, model, ...)``) and
    one CPU; on the cluster at ``address`` (None: a Ray instance on this machine). The input
    files (and the --annotate folder) must be at the same paths on every node."""

    make_recognizer: Callable[[], Recognizer]
    workers: int = 2
    address: str | None = None


class _RayWorker:
    """A Ray actor: one recognizer, kept for every input it is given."""

    def __init__(self, make_recognizer: Callable[[], Recognizer]):
        self.recognizer = make_recognizer()

    def run(self, job: _Job) -> tuple[_Job, list[Record], Summary, str | None]:
        records: list[Record] = []
        summary = Summary()
        problem = _process(self.recognizer, job, records.append, summary)
        return job, records, summary, problem


def _on_ray(options: RayOptions, jobs: list[_Job], emit, summary: Summary):
    """Yield ``(job, problem)`` as Ray's workers finish them, emitting their records."""
    from ray.util import ActorPool  # the ray extra, as in cluster.connect

    with connect(options.address, num_cpus=options.workers) as ray:  # num_cpus: a local Ray
        # A worker that dies (a crash, a lost node) is restarted and its input run again.
        actor = ray.remote(num_cpus=1, max_restarts=2, max_task_retries=2)(_RayWorker)
        pool = ActorPool([actor.remote(options.make_recognizer) for _ in range(options.workers)])
        for job, records, counts, problem in pool.map_unordered(
            lambda worker, job: worker.run.remote(job), jobs
        ):
            for record in records:
                emit(record)
            summary.add(counts)
            yield job, problem


def _frames(source: Path | int, every: int, max_frames: int | None) -> Iterator:
    for n, frame in enumerate(iter_frames(source, every=every)):
        if max_frames is not None and n >= max_frames:
            return
        yield frame


def _count(recognizer: Recognizer, faces: Sequence[Prediction], summary: Summary) -> None:
    summary.faces += len(faces)
    summary.without_face += not faces
    if recognizer.cut.geometry == "template":  # faces cut by their box, for want of landmarks
        summary.box_framed += sum(f.landmarks is None for f in faces)


def _run_video(recognizer: Recognizer, job: _Job, emit, summary: Summary) -> None:
    sink = _VideoSink(job.annotate_to, job.every) if job.annotate_to else None
    follower = Follower(recognizer, job.track) if job.track else None
    try:
        for n, frame in enumerate(_frames(job.source, job.every, job.max_frames)):
            if n == 0:  # a video counts once its first frame is read
                summary.videos += 1
            if follower is None:
                faces = recognizer.predict(frame.image)
            else:
                faces = follower.step(frame.image, _clock(job, frame, n == 0))
            emit(Record(job.name, faces, frame.index, frame.time))
            if sink:
                sink.add(frame, faces)
            summary.frames += 1
            _count(recognizer, faces, summary)
    finally:
        if sink:
            sink.close()
        if follower is not None and follower.frames:  # an interrupted video's tracks too
            summary.tracks[job.name] = follower.result()


def _clock(job: _Job, frame: Frame, first: bool) -> float:
    """The time the tracker sees: the frame's, unless a video file's frame rate is missing or
    absurd, when frames are counted at :data:`ASSUMED_FPS` (said once per video)."""
    if isinstance(job.source, int) or SANE_FPS[0] <= frame.fps <= SANE_FPS[1]:
        return frame.time
    if first:
        log.warning("%s: frame rate missing or absurd (%g fps): smoothing and time on screen "
                    "count frames at %g per second", printable_name(job.name, one_line=True),
                    frame.fps, ASSUMED_FPS)  # fmt: skip
    return frame.index / ASSUMED_FPS
