"""Faces: find them (detect) and cut them out (crop)."""

from .crop import crop_face
from .detect import DETECTORS, Face, FaceDetector, HaarDetector, WholeImage, create_detector

__all__ = [
    "DETECTORS",
    "Face",
    "FaceDetector",
    "HaarDetector",
    "WholeImage",
    "create_detector",
    "crop_face",
]
