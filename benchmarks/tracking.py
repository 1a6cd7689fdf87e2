"""Faces tracked through a video with known truth, and label flicker with and without
smoothing. Needs CK+48 in ../shared/data/ckplus (its faces are the people in the scenes).

Tracking: CK+ faces of different people drift, cross (one hides the other), pass under a
sweeping bar and, for one of them, vanish for six frames (`tinyfer.core.synth.tracking_scene`),
written to a 640x480 MJPG video at 25 fps; `Recognizer.predict_video` (the bundled model, one
thread) tracks them with detection every N frames. Scored by `evaluation.tracking`: identity
switches per 100 matched track-frames, fragmentations, MOTA; frames per second of the whole
loop (decoding, detection, crops, model, tracking).

Flicker: six CK+ subjects' faces, each sequence's last frame held for 2 s in turn, small
(96 px) and jittered like a camera's (per frame: a shift of up to 4 px, size +-5%, gain
+-10%, sensor noise), so that the truth is a label per segment; the top label's changes
per second, raw and smoothed (--smooth), and the share of frames whose top label is the
segment's. The bundled models trained on CK+, so they are near certain on these faces:
--flicker-model takes one that never saw them (the no-CK+ recipe's run).

python benchmarks/tracking.py [--frames 300] [--smooth 0.25 0.5 1.0] [--flicker-model M]
    [--flicker-subjects 6] [--segment-seconds 2] [--name tracking]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from common import write_result

from tinyfer.core.synth import tracking_scene
from tinyfer.evaluation.tracking import score_tracking
from tinyfer.inference.predict import Recognizer
from tinyfer.inference.track import TrackOptions

CKPLUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "ckplus"
FPS = 25.0


def ckplus_faces() -> dict[str, list[tuple[str, Path]]]:
    """Subject -> its (emotion, file) in name order."""
    if not CKPLUS.is_dir():
        raise SystemExit(f"{CKPLUS}: CK+48 is needed (see ../shared/DATA.md)")
    by_subject: dict[str, list[tuple[str, Path]]] = {}
    for file in sorted(CKPLUS.glob("*/*.png")):
        by_subject.setdefault(file.name.split("_")[0], []).append((file.parent.name, file))
    return by_subject


def write(path: Path, frames) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (640, 480))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def tracking(rec: Recognizer, people: int, frames: int, every: int, folder: Path) -> dict:
    subjects = ckplus_faces()
    rng = np.random.default_rng(people)
    chosen = rng.choice(sorted(subjects), people, replace=False)
    faces = [cv2.imread(str(subjects[s][-1][1]), cv2.IMREAD_GRAYSCALE) for s in chosen]
    truth = []
    video = write(folder / f"scene{people}.avi",
                  (frame for frame, t in tracking_scene(faces, frames=frames, seed=people)
                   if not truth.append(t)))  # fmt: skip
    start = time.perf_counter()
    found = [
        [(f.track, f.box) for f in frame.faces]
        for frame in rec.predict_video(video, track=TrackOptions(detect_every=every))
    ]
    seconds = time.perf_counter() - start
    score = score_tracking(truth, found)
    row = {"faces": people, "detect_every": every, "fps": round(frames / seconds, 1),
           **score.to_dict()}  # fmt: skip
    print(
        f"{people} face(s), N={every}: {row['fps']} fps, "
        f"{row['switches_per_100_track_frames']} switches per 100, MOTA {row['mota']}"
    )
    return row


def flicker_clip(folder: Path, subject: str, seconds_each: float = 2.0) -> tuple[Path, list[str]]:
    """``subject``'s faces in turn, jittered like a camera's; the label of each frame."""
    last = dict(ckplus_faces()[subject])  # emotion -> its sequence's last frame
    rng = np.random.default_rng(0)
    labels, frames = [], []
    bg = cv2.GaussianBlur(rng.integers(40, 220, (480, 640)).astype(np.uint8), (0, 0), 12)
    for emotion, file in last.items():
        face = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
        for _ in range(int(seconds_each * FPS)):
            side = int(96 * rng.uniform(0.95, 1.05))  # a small face, as far from the camera
            shown = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
            gain = rng.uniform(0.9, 1.1)
            x, y = 272 + rng.integers(-4, 5), 192 + rng.integers(-4, 5)
            canvas = bg.astype(np.float64)
            canvas[y : y + side, x : x + side] = shown * gain
            noisy = np.clip(canvas + rng.normal(0, 6, canvas.shape), 0, 255).astype(np.uint8)
            frames.append(cv2.cvtColor(noisy, cv2.COLOR_GRAY2BGR))
            labels.append(emotion)
    return write(folder / f"flicker-{subject}.avi", frames), labels


def flicker(rec: Recognizer, folder: Path, smooth: list[float], subjects: int = 6,
            seconds_each: float = 2.0) -> dict:  # fmt: skip
    """Over the ``subjects`` CK+ subjects with the most expressions (one clip each)."""
    faces = ckplus_faces()
    chosen = sorted(faces, key=lambda s: (-len({e for e, _ in faces[s]}), s))[:subjects]
    clips = [flicker_clip(folder, subject, seconds_each) for subject in chosen]
    frames = sum(len(truth) for _, truth in clips)
    needed = sum(len(dict.fromkeys(truth)) - 1 for _, truth in clips)  # the truth's changes
    out: dict = {"subjects": chosen, "frames": frames, "truth_changes": needed}
    for name, seconds in (("raw", 0.0), *((f"smoothed {s:g} s", s) for s in smooth)):
        changes = right = 0
        for video, truth in clips:
            tops = []
            for frame in rec.predict_video(video, track=TrackOptions(smooth=seconds)):
                face = frame.faces[0] if frame.faces else None
                tops.append(None if face is None else face.smoothed_label or face.label)
            changes += sum(a != b for a, b in itertools.pairwise(tops))
            right += sum(t == y for t, y in zip(tops, truth))
        out[name] = {
            "smooth_seconds": seconds,
            "changes_per_second": round(changes * FPS / frames, 3),
            "changes_beyond_the_truths_per_second": round((changes - needed) * FPS / frames, 3),
            "accuracy": round(right / frames, 4),
        }
        print(f"flicker {name}: {out[name]}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--smooth", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--flicker-model", default=None)
    parser.add_argument("--flicker-subjects", type=int, default=6)
    parser.add_argument("--segment-seconds", type=float, default=2.0)
    parser.add_argument("--name", default="tracking")
    args = parser.parse_args()
    rec = Recognizer(args.model, threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = [tracking(rec, people, args.frames, every, folder)
                for people in (1, 4) for every in (1, 2, 5, 10)]  # fmt: skip
        flicker_rec = Recognizer(args.flicker_model, threads=1) if args.flicker_model else rec
        figures = {"model": args.model or "accurate", "frames": args.frames, "tracking": rows,
                   "flicker_model": args.flicker_model or args.model or "accurate",
                   "flicker": flicker(flicker_rec, folder, args.smooth, args.flicker_subjects,
                                      args.segment_seconds)}  # fmt: skip
    print(write_result(args.name, figures, "onnxruntime", "opencv-python-headless"))


if __name__ == "__main__":
    main()
