"""Inference with onnxruntime, OpenCV and numpy only: no torch on this path.

``OnnxClassifier`` classifies face crops; ``Recognizer`` finds faces in images and
classifies them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import TinyferError


class OnnxClassifier:
    """An exported tinyfer model: ``predict_proba(faces (N, H, W) uint8) -> (N, C)``.

    Labels, input size and preprocessing come from the file's metadata.
    """

    def __init__(self, path: str | Path, *, threads: int | None = None):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise TinyferError(f"{path}: no such model file")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own types for a bad file
            raise TinyferError(f"{path}: not an ONNX model ({type(exc).__name__})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if "labels" not in meta:
            raise TinyferError(f"{path}: an ONNX file without tinyfer's metadata (labels)")
        self.path = path
        self.labels: tuple[str, ...] = tuple(json.loads(meta["labels"]))
        self.img_size = int(meta["img_size"])
        self.preprocessing: dict[str, Any] = json.loads(meta.get("preprocessing", "{}"))
        self.metrics: dict[str, Any] = json.loads(meta.get("metrics", "{}"))

    def predict_proba(self, faces: np.ndarray, batch: int = 256) -> np.ndarray:
        faces = np.asarray(faces)
        if faces.ndim != 3 or faces.shape[1:] != (self.img_size, self.img_size):
            raise TinyferError(
                f"faces must be (N, {self.img_size}, {self.img_size}) gray crops; got {faces.shape}"
            )
        out = [
            self.session.run(
                None, {"faces": (faces[i : i + batch].astype(np.float32) / 255)[:, None]}
            )[0]
            for i in range(0, len(faces), batch)
        ]
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)


@dataclass(frozen=True)
class Prediction:
    """One face: box (x, y, w, h) in the image's pixels, the detector's score, the most likely
    label and the probability of every label (summing to 1)."""

    box: tuple[int, int, int, int]
    score: float
    label: str
    probabilities: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": list(self.box),
            "score": self.score,
            "label": self.label,
            "probabilities": self.probabilities,
        }
