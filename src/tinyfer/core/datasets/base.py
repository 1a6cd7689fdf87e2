"""What every dataset reader yields: samples, and the problems it met on the way."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyfer.core.io import IMAGE_SUFFIXES, load_image
from tinyfer.core.labels import canonical_label, is_known_label
from tinyfer.errors import DatasetError, UnknownLabelError

#: Split names that hold training faces ("": a dataset without splits).
TRAIN_SPLITS = ("Training", "train", "")


@dataclass(frozen=True)
class Sample:
    """One labelled image of a dataset.

    ``split`` is the dataset's own usage where it has one (FER2013: Training, PublicTest,
    PrivateTest). ``take`` and ``frame`` locate a frame in a video sequence (MUG, CK+).
    ``pixels`` holds the image when it is not a file of its own (FER2013's CSV). ``votes``
    holds annotators' votes per label where a dataset has them (FER+): the soft label.
    """

    path: str
    label: str
    subject: str | None = None
    split: str | None = None
    take: str | None = None
    frame: int | None = None
    pixels: np.ndarray | None = field(default=None, repr=False, compare=False)
    votes: dict[str, int] | None = field(default=None, repr=False, compare=False)

    def load(self, *, gray: bool = False) -> np.ndarray:
        """Decode this sample's image (uint8, gray or BGR); raises ImageError when unreadable."""
        if self.pixels is not None:
            return load_image(self.pixels, gray=gray)
        return load_image(self.path, gray=gray)


@dataclass(frozen=True)
class Problem:
    """Something a reader or the preparation met and did not use: named, never silent."""

    path: str
    kind: str
    message: str


@dataclass
class Scan:
    """A reader's result: the samples found, the problems met, and ``notes``: counts of
    oddities the reader handled while keeping the samples (FER+: tied majorities)."""

    format: str
    root: str
    samples: list[Sample]
    problems: list[Problem] = field(default_factory=list)
    notes: dict[str, int] = field(default_factory=dict)

    def counts(self) -> Counter[str]:
        return Counter(s.label for s in self.samples)

    def problem_counts(self) -> Counter[str]:
        return Counter(p.kind for p in self.problems)


def require_dir(root: str | Path, *, what: str) -> Path:
    """Return ``root`` as a Path, or raise DatasetError if it is not an existing folder."""
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{root}: no such folder (expected {what})")
    if not root.is_dir():
        raise DatasetError(f"{root}: is a file, not a folder (expected {what})")
    return root


def image_files(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def label_folders(
    root: Path, problems: list[Problem], *, skip_unknown: bool
) -> list[tuple[Path, str]]:
    """The label folders under ``root`` with their canonical labels.

    Unknown names raise UnknownLabelError listing all of them, or with ``skip_unknown`` are
    recorded as problems and left out.
    """
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = [p for p in folders if not is_known_label(p.name)]
    if unknown and not skip_unknown:
        names = ", ".join(p.name for p in unknown)
        raise UnknownLabelError(
            f"{root}: folders with unknown labels: {names}. Rename them to an emotion "
            "(anger, disgust, fear, happiness, sadness, surprise, neutral, contempt or an alias "
            "such as angry/happy/sad), or leave them out: --skip-unknown (data inspect, data "
            "prepare, evaluate), --set data.skip_unknown=true (train, experiment) or "
            "skip_unknown=True (Python)."
        )
    for p in unknown:
        problems.append(Problem(str(p), "unknown_label", f"folder {p.name!r} is no known label"))
    return [(p, canonical_label(p.name)) for p in folders if is_known_label(p.name)]


def non_images(folder: Path, problems: list[Problem]) -> None:
    """Record files in ``folder`` that are not images by their suffix (never silently ignored)."""
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() not in IMAGE_SUFFIXES and not p.name.startswith("."):
            problems.append(Problem(str(p), "not_image", "file without an image suffix, left out"))


def labelled_images(
    root: Path, problems: list[Problem], *, skip_unknown: bool
) -> Iterator[tuple[Path, str]]:
    """Every image ``root/<label>/<image>`` with its canonical label; the problems of the label
    folders (unknown labels) and of files that are not images are added to ``problems``."""
    for folder, label in label_folders(root, problems, skip_unknown=skip_unknown):
        non_images(folder, problems)
        for path in image_files(folder):
            yield path, label
