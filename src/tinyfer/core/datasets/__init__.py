"""Dataset readers, one per on-disk layout, and recognition of the layout from the files."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from tinyfer.core.datasets.base import TRAIN_SPLITS, Problem, Sample, Scan
from tinyfer.core.datasets.ckplus import read_ckplus
from tinyfer.core.datasets.fer2013 import read_fer2013
from tinyfer.core.datasets.ferplus import is_ferplus, read_ferplus
from tinyfer.core.datasets.folder import read_folder
from tinyfer.core.datasets.jaffe import read_jaffe
from tinyfer.core.datasets.mug import read_mug, select_frames
from tinyfer.core.kinds import LAYOUTS
from tinyfer.core.labels import is_known_label
from tinyfer.errors import DatasetError

__all__ = [
    "FORMATS",
    "TRAIN_SPLITS",
    "Problem",
    "Sample",
    "Scan",
    "detect_format",
    "read_ckplus",
    "read_dataset",
    "read_fer2013",
    "read_ferplus",
    "read_folder",
    "read_jaffe",
    "read_mug",
    "select_frames",
]

log = logging.getLogger(__name__)

FORMATS = tuple(LAYOUTS)
#: Layouts whose images are already face crops (``tinyfer.core.kinds.Layout.cropped``).
CROPPED_FORMATS = frozenset(name for name, layout in LAYOUTS.items() if layout.cropped)

_CK_NAME = re.compile(r"^S\d+_\d+_\d+\.png$", re.IGNORECASE)
_JAFFE_NAME = re.compile(r"^[A-Za-z]+\.[A-Za-z]{2}\d*\.\d+\.\w+$")


def _subdirs(path: Path) -> list[Path]:
    return [p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")]


def _has_label_folders(path: Path) -> bool:
    subdirs = _subdirs(path)
    return bool(subdirs) and any(is_known_label(p.name) for p in subdirs)


def detect_format(root: str | Path) -> str:
    """Recognise the layout of ``root``; raises DatasetError listing the known layouts."""
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{root}: no such file or folder")
    if root.is_file():
        if root.suffix.lower() == ".csv":
            return "fer2013"
        raise DatasetError(f"{root}: a dataset is a folder (or FER2013's fer2013.csv)")
    if (root / "subjects3").is_dir() or (root / "fer2013.csv").is_file():
        return "mug" if (root / "subjects3").is_dir() else "fer2013"
    if is_ferplus(root):
        return "ferplus"
    subdirs = _subdirs(root)
    digit_dirs = [p for p in subdirs if p.name.isdigit()]
    if digit_dirs and any(
        _has_label_folders(d) or any(s.name.startswith("session") for s in _subdirs(d))
        for d in digit_dirs[:5]
    ):
        return "mug"
    if any(p.name in ("train", "test") and _has_label_folders(p) for p in subdirs):
        return "fer2013"
    files = [p.name for p in root.iterdir() if p.is_file()]
    if files and sum(bool(_JAFFE_NAME.match(f)) for f in files) >= max(1, len(files) // 2):
        return "jaffe"
    if _has_label_folders(root):
        names = [f.name for d in subdirs if is_known_label(d.name) for f in list(d.iterdir())[:20]]
        if names and all(_CK_NAME.match(n) for n in names):
            return "ckplus"
        return "folder"
    raise DatasetError(
        f"{root}: layout not recognised. Known layouts: MUG (subjects3/<subject>/<emotion>/"
        "take<NNN>/), FER2013 (train/ and test/ class folders, or fer2013.csv), CK+48 "
        "(<emotion>/S010_004_00000017.png), FER+ (FER2013Train/ with label.csv), JAFFE "
        "(KA.AN1.39.tiff), class folders (<label>/*.jpg). Choose one with --layout (a config's "
        "data.format)."
    )


def read_dataset(
    root: str | Path,
    format: str = "auto",
    *,
    frames: str = "apex",
    n_frames: int = 3,
    subject_regex: str | None = None,
    skip_unknown: bool = False,
) -> Scan:
    """Read any supported dataset; ``format="auto"`` recognises the layout and logs its choice."""
    if format == "auto":
        format = detect_format(root)
        log.info("%s: recognised as %s", root, format)
    if format not in LAYOUTS:
        raise DatasetError(f"unknown layout {format!r}; choose one of auto, {', '.join(FORMATS)}")
    options = {"frames": frames, "n_frames": n_frames, "subject_regex": subject_regex,
               "skip_unknown": skip_unknown}  # fmt: skip
    layout = LAYOUTS[format]
    return layout.load()(root, **{k: options[k] for k in layout.options})
