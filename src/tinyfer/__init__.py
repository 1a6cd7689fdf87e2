"""tinyfer: facial expression recognition with compact neural networks.

``from tinyfer import Recognizer; Recognizer().predict("photo.jpg")``. Public names are
imported on first use, so ``import tinyfer`` stays light (no torch for prediction).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "Recognizer": "inference.predict",
    "Prediction": "inference.predict",
    "FramePrediction": "inference.predict",
    "OnnxClassifier": "inference.classifier",
    "load_image": "core.io",
    "create_model": "training.models",
    "list_models": "training.models",
    "TrainConfig": "core.config",
    "train": "training.phases",
    "evaluate": "evaluation.evaluate",
    "export_onnx": "training.export",
}
__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    raise AttributeError(f"module 'tinyfer' has no attribute {name!r}")
