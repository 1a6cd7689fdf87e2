"""tinyfer's closed sets as tables: face detectors and dataset layouts. Each entry names the
module that implements it, imported only when one is made or read, so that the config's and
the CLI's choices come from here without loading OpenCV. Adding a detector or a layout is
one entry here plus its module (README, "Extending tinyfer")."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Kind:
    """One member of a closed set: its ``name``, what it is (``help``) and the
    ``module:attribute`` that implements it."""

    name: str
    target: str
    help: str

    def load(self) -> Any:
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class Detector(Kind):
    """A face detector class, made with keyword settings. ``framing``: for faces it finds
    without landmarks, the crop square's centre as fractions of its box (cx / w, cy / h) and
    the square's side as a fraction of the box's longer side, calibrated so that on average
    it cuts the square the landmarks would (``tinyfer.core.faces.geometry``); ``finds_faces``
    is false for ``none``, which takes every image to be one face crop."""

    framing: tuple[float, float, float] | None = None
    finds_faces: bool = True


@dataclass(frozen=True)
class Layout(Kind):
    """A dataset reader ``read(root, **options) -> Scan``; ``options`` are the DataConfig
    fields it takes; ``cropped``: its images are already face crops (found again on an
    enlarged copy to cut them by their landmarks; taken whole where none are found)."""

    options: tuple[str, ...] = ()
    cropped: bool = False


# Framing medians over 561 (MTCNN) and 503 (Haar) CK+48 and FER2013 faces enlarged into
# 576-px images, against their landmark crops.
DETECTORS: dict[str, Detector] = {
    d.name: d
    for d in (
        Detector("mtcnn", "tinyfer.core.faces.mtcnn:MtcnnDetector",
                 "faces and their five landmarks (MTCNN on onnxruntime)",
                 framing=(0.5, 0.5, 0.978)),
        Detector("haar", "tinyfer.core.faces.detect:HaarDetector",
                 "OpenCV's Haar cascade, the fastest: boxes (eyes with find_eyes)",
                 framing=(0.5, 0.515, 1.033)),
        Detector("none", "tinyfer.core.faces.detect:WholeImage",
                 "no detection: every image is one face crop", finds_faces=False),
    )
}  # fmt: skip

LAYOUTS: dict[str, Layout] = {
    lay.name: lay
    for lay in (
        Layout("mug", "tinyfer.core.datasets.mug:read_mug",
               "MUG: subjects3/<subject>/<emotion>/take<NNN>/ frames",
               options=("frames", "n_frames", "skip_unknown")),
        Layout("fer2013", "tinyfer.core.datasets.fer2013:read_fer2013",
               "FER2013: fer2013.csv, or train/ and test/ class folders",
               options=("skip_unknown",), cropped=True),
        Layout("ferplus", "tinyfer.core.datasets.ferplus:read_ferplus",
               "FER+: FER2013Train/ (Valid, Test) with label.csv's ten votes", cropped=True),
        Layout("ckplus", "tinyfer.core.datasets.ckplus:read_ckplus",
               "CK+48: <emotion>/S010_004_00000017.png", options=("skip_unknown",),
               cropped=True),
        Layout("jaffe", "tinyfer.core.datasets.jaffe:read_jaffe", "JAFFE: KA.AN1.39.tiff"),
        Layout("folder", "tinyfer.core.datasets.folder:read_folder",
               "class folders: <label>/*.jpg", options=("subject_regex", "skip_unknown")),
    )
}  # fmt: skip
