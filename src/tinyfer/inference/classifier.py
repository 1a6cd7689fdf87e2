"""Models for inference, with onnxruntime and numpy only (no torch): the ONNX classifier of
face crops, and :func:`load_classifier` for any model a name or path gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from tinyfer.core.inputs import model_input
from tinyfer.core.integrity import CHECKSUM_KEY, check_onnx_seal
from tinyfer.core.model_files import (
    Classifier,
    ModelMeta,
    load_model_file,
    register_loader,
    resolve_model_file,
)
from tinyfer.core.priors import ClassPrior
from tinyfer.errors import TinyferError


class OnnxClassifier:
    """An exported tinyfer model: ``predict_proba(faces (N, H, W) uint8) -> (N, C)``.

    Labels, input size and preprocessing come from the file's metadata.
    """

    def __init__(self, path: str | Path, *, threads: int | None = None):
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
        check_onnx_seal(path, meta.get(CHECKSUM_KEY))
        if "labels" not in meta:
            raise TinyferError(f"{path}: an ONNX file without tinyfer's metadata (labels)")
        self.path = path
        labels = tuple(json.loads(meta["labels"]))
        n_out = self.session.get_outputs()[0].shape[-1]
        if isinstance(n_out, int) and n_out != len(labels):
            raise TinyferError(
                f"{path}: the model has {n_out} outputs but its metadata names "
                f"{len(labels)} classes ({', '.join(labels)})"
            )
        self.meta = ModelMeta(
            meta.get("model_name", path.stem), labels, int(meta["img_size"]),
            int(meta.get("in_chans", 1)), json.loads(meta.get("preprocessing", "{}")),
            metrics=json.loads(meta.get("metrics", "{}")),
            class_prior=ClassPrior.from_meta(meta.get("class_prior")),
        )  # fmt: skip
        self.tta: str = meta.get("tta", "none")  # "hflip": mirror averaging inside the graph

    @property
    def labels(self) -> tuple[str, ...]:
        return self.meta.labels

    @property
    def img_size(self) -> int:
        return self.meta.img_size

    @property
    def preprocessing(self) -> dict[str, Any]:
        return self.meta.preprocessing

    @property
    def metrics(self) -> dict[str, Any]:
        return self.meta.metrics

    def predict_proba(self, faces: np.ndarray, batch: int = 256) -> np.ndarray:
        x = model_input(faces, self.img_size)
        out = [
            self.session.run(None, {"faces": x[i : i + batch]})[0] for i in range(0, len(x), batch)
        ]
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)


def load_onnx(path: Path, *, threads: int | None = None) -> tuple[OnnxClassifier, ModelMeta]:
    """The loader of ``.onnx`` files (:func:`~tinyfer.core.model_files.register_loader`)."""
    clf = OnnxClassifier(path, threads=threads)
    return clf, clf.meta


register_loader(".onnx", load_onnx)


def load_classifier(
    path: str | Path | None, *, threads: int | None = None
) -> tuple[Classifier, ModelMeta]:
    """``(model, meta)`` for an exported .onnx file or a run directory holding one
    (onnxruntime, no torch import; ``threads`` sets its intra-op threads), a model.pt or an
    older run directory (torch, by the loader the training layer declares), or ``None`` (the
    bundled model). Every model has ``predict_proba``; the meta is a :class:`ModelMeta`."""
    return load_model_file(resolve_model_file(path, onnx=True), threads=threads)
