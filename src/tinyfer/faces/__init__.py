"""Faces: find them (detect) and cut them out (geometry: the one template; crop: the older
margin cut)."""

from .crop import crop_face
from .detect import DETECTORS, Face, FaceDetector, HaarDetector, WholeImage, create_detector
from .geometry import BOX_FRAMING, TEMPLATE, cut_face

__all__ = [
    "BOX_FRAMING",
    "DETECTORS",
    "TEMPLATE",
    "Face",
    "FaceDetector",
    "HaarDetector",
    "WholeImage",
    "create_detector",
    "crop_face",
    "cut_face",
]
