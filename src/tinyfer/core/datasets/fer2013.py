"""FER2013: the image-folder edition and the original ``fer2013.csv``.

Usage (Training, PublicTest, PrivateTest) comes from the file-name prefix in the folder
edition and from the ``Usage`` column in the CSV.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from tinyfer.core.datasets.base import Problem, Sample, Scan, labelled_images, require_dir
from tinyfer.core.labels import EMOTIONS
from tinyfer.errors import DatasetError

USAGES = ("Training", "PublicTest", "PrivateTest")


def read_fer2013(root: str | Path, *, skip_unknown: bool = False) -> Scan:
    """Read FER2013 from ``root`` holding ``train/`` and ``test/`` folders, or a ``fer2013.csv``."""
    root = Path(root)
    if root.is_file() or (root / "fer2013.csv").is_file():
        return read_fer2013_csv(root if root.is_file() else root / "fer2013.csv")
    root = require_dir(root, what="FER2013's train/ and test/ folders or fer2013.csv")
    parts = [root / name for name in ("train", "test") if (root / name).is_dir()]
    if not parts:
        raise DatasetError(f"{root}: no train/ or test/ folder and no fer2013.csv")
    samples: list[Sample] = []
    problems: list[Problem] = []
    for part in parts:
        for path, label in labelled_images(part, problems, skip_unknown=skip_unknown):
            usage = path.stem.split("_", 1)[0]
            if usage not in USAGES:
                # Re-distributed copies sometimes lose the prefix; the folder still says
                # train or test, but not which test half, so say so.
                usage = "Training" if part.name == "train" else "Test"
            samples.append(Sample(str(path), label, split=usage))
    if not samples:
        raise DatasetError(f"{root}: no images under train/ or test/")
    return Scan(format="fer2013", root=str(root), samples=samples, problems=problems)


def read_fer2013_csv(path: str | Path) -> Scan:
    """Read the original CSV (columns emotion, pixels, Usage; ids 0..6 in EMOTIONS order)."""
    path = Path(path)
    samples: list[Sample] = []
    problems: list[Problem] = []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = {"emotion", "pixels"} - set(reader.fieldnames or ())
        if missing:
            raise DatasetError(
                f"{path}: missing column(s) {sorted(missing)}; expected emotion, pixels, Usage"
            )
        for row_no, row in enumerate(reader, start=2):
            where = f"{path}:{row_no}"
            try:
                label = EMOTIONS[int(row["emotion"])]
                pixels = np.array(row["pixels"].split(), dtype=np.uint8)
                side = round(len(pixels) ** 0.5)
                if side * side != len(pixels) or side == 0:
                    raise ValueError(f"{len(pixels)} pixel values do not make a square image")
            except (ValueError, IndexError, TypeError, OverflowError) as exc:
                problems.append(Problem(where, "unreadable", f"bad row: {exc}"))
                continue
            usage = (row.get("Usage") or "").strip() or None
            samples.append(Sample(where, label, split=usage, pixels=pixels.reshape(side, side)))
    if not samples:
        raise DatasetError(f"{path}: no usable rows")
    return Scan(format="fer2013", root=str(path), samples=samples, problems=problems)
