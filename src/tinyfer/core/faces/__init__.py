"""Faces: find them (detect) and cut them out (geometry: the one template; crop: the older
margin cut)."""

from tinyfer.core.faces.crop import crop_face
from tinyfer.core.faces.detect import HaarDetector, WholeImage, create_detector
from tinyfer.core.faces.face import Face, FaceDetector
from tinyfer.core.faces.geometry import BOX_FRAMING, TEMPLATE, cut_face

__all__ = [
    "BOX_FRAMING",
    "TEMPLATE",
    "Face",
    "FaceDetector",
    "HaarDetector",
    "WholeImage",
    "create_detector",
    "crop_face",
    "cut_face",
]
