"""The MUG Facial Expression Database in its own layout.

``subjects3/<subject>/[session<N>/]<emotion>/take<NNN>/img_<NNNN>.jpg``. Each take runs
neutral -> apex -> neutral, so the apex frames lie in the middle of the take.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from tinyfer.core.datasets.base import (
    Problem,
    Sample,
    Scan,
    image_files,
    label_folders,
    require_dir,
)
from tinyfer.core.labels import EMOTIONS
from tinyfer.errors import DatasetError

FRAME_MODES = ("apex", "all", "spaced")
_TAKE = re.compile(r"^take(\d+)$")
_FRAME = re.compile(r"(\d+)")


def select_frames(n: int, mode: str = "apex", n_frames: int = 3) -> list[int]:
    """Indices of the frames to keep out of ``n`` frames of one take.

    ``apex``: the ``n_frames`` middle frames; ``all``: every frame; ``spaced``: ``n_frames``
    evenly spaced frames, first and last included.
    """
    if mode not in FRAME_MODES:
        raise DatasetError(f"unknown frame selection {mode!r}; choose one of {FRAME_MODES}")
    if mode == "all" or n <= n_frames:
        return list(range(n))
    if mode == "apex":
        start = (n - n_frames) // 2
        return list(range(start, start + n_frames))
    return sorted(set(np.linspace(0, n - 1, n_frames).round().astype(int).tolist()))


def _emotion_parents(subject_dir: Path) -> list[Path]:
    """The folders holding emotion folders: the subject itself, or its session folders."""
    sessions = sorted(
        p for p in subject_dir.iterdir() if p.is_dir() and p.name.startswith("session")
    )
    return sessions or [subject_dir]


def read_mug(
    root: str | Path,
    *,
    frames: str = "apex",
    n_frames: int = 3,
    skip_unknown: bool = False,
) -> Scan:
    """Read a MUG tree (the ``subjects3`` folder, or its parent)."""
    root = require_dir(root, what="a MUG 'subjects3' folder")
    if (root / "subjects3").is_dir():
        root = root / "subjects3"
    subjects = sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit())
    if not subjects:
        raise DatasetError(
            f"{root}: no subject folders "
            "(expected subjects3/<3-digit subject>/<emotion>/take<NNN>/)"
        )
    samples: list[Sample] = []
    problems: list[Problem] = []
    for subject_dir in subjects:
        found: set[str] = set()
        for parent in _emotion_parents(subject_dir):
            for emotion_dir, label in label_folders(parent, problems, skip_unknown=skip_unknown):
                found.add(label)
                for take_dir in sorted(p for p in emotion_dir.iterdir() if p.is_dir()):
                    if not _TAKE.match(take_dir.name):
                        problems.append(
                            Problem(
                                str(take_dir),
                                "skipped_take",
                                f"take folder {take_dir.name!r} has a suffix; skipped",
                            )
                        )
                        continue
                    files = image_files(take_dir)
                    if not files:
                        problems.append(Problem(str(take_dir), "empty_take", "take has no frames"))
                        continue
                    for i in select_frames(len(files), frames, n_frames):
                        match = _FRAME.findall(files[i].stem)
                        samples.append(
                            Sample(
                                path=str(files[i]),
                                label=label,
                                subject=subject_dir.name,
                                take=f"{subject_dir.name}/{parent.name}/{emotion_dir.name}/{take_dir.name}",
                                frame=int(match[-1]) if match else i,
                            )
                        )
        missing = [e for e in EMOTIONS if e not in found]
        if missing:
            problems.append(
                Problem(
                    str(subject_dir),
                    "missing_emotion",
                    f"subject {subject_dir.name} has no folder for: {', '.join(missing)}",
                )
            )
    if not samples:
        raise DatasetError(f"{root}: no frames found in any take")
    return Scan(format="mug", root=str(root), samples=samples, problems=problems)
