"""Export a trained model to ONNX (probabilities out, metadata in), checked against torch;
optionally quantised to int8 with calibration faces."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from tinyfer import __version__
from tinyfer.core.inputs import model_input
from tinyfer.core.integrity import seal_onnx
from tinyfer.core.io import atomic_path
from tinyfer.core.model_files import ModelMeta, resolve_model_file
from tinyfer.core.prepare import Prepared
from tinyfer.errors import TinyferError
from tinyfer.evaluation.evaluate import evaluate_arrays
from tinyfer.inference.classifier import OnnxClassifier
from tinyfer.training.checkpoint import load_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportResult:
    path: Path
    max_abs_diff: float | None  # onnxruntime vs torch on the check faces
    size_bytes: int
    accuracy_torch: float | None = None  # on eval_data, when given
    accuracy_onnx: float | None = None
    eval_n: int = 0


def _metadata(meta, tta: bool) -> dict[str, str]:
    out = {
        "tta": "hflip" if tta else "none",
        "tinyfer_version": __version__,
        "model_name": meta.name,
        "labels": json.dumps(list(meta.labels)),
        "img_size": str(meta.img_size),
        "in_chans": str(meta.in_chans),
        "preprocessing": json.dumps(meta.preprocessing),
        "metrics": json.dumps(meta.metrics),
    }
    if meta.class_prior is not None:
        out["class_prior"] = json.dumps(meta.class_prior.to_meta())
    return out


class Probabilities(torch.nn.Module):
    """The exported graph: faces ``(B, 1, H, W)`` in [0, 1] -> probabilities ``(B, C)``; with
    ``tta``, the mean over each face and its mirror image."""

    def __init__(self, model: torch.nn.Module, tta: bool = False):
        super().__init__()
        self.model, self.tta = model, tta

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        if not self.tta:
            return self.model.probabilities(self.model(faces))
        # One batch of faces and mirrors: int8 `base` per face 0.34 vs 0.43 ms as two passes.
        both = self.model.probabilities(self.model(torch.cat([faces, faces.flip(3)])))
        n = faces.shape[0]
        return (both[:n] + both[n:]) / 2

    @torch.no_grad()
    def predict_proba(self, faces: np.ndarray) -> np.ndarray:
        return self(torch.from_numpy(model_input(faces))).numpy()


def record_in_onnx(path: str | Path, meta: ModelMeta) -> None:
    """Write ``meta``'s class prior into the metadata of the exported file ``path`` (the graph
    and the other entries untouched), sealed again."""
    path = Path(path)
    proto = onnx.load(path)
    for i in reversed(range(len(proto.metadata_props))):
        if proto.metadata_props[i].key == "class_prior":
            del proto.metadata_props[i]
    value = _metadata(meta, tta=False).get("class_prior")
    if value is not None:
        entry = proto.metadata_props.add()
        entry.key, entry.value = "class_prior", value
    with atomic_path(path) as tmp:
        onnx.save(proto, tmp)
        seal_onnx(tmp)


def export_onnx(model_path: str | Path, out: str | Path, **options) -> ExportResult:
    """:func:`export_model` of the model in ``model_path`` (run directory or model.pt)."""
    return export_model(*load_model(resolve_model_file(model_path)), out, **options)


def export_model(
    model: torch.nn.Module,
    meta: ModelMeta,
    out: str | Path,
    *,
    check_faces: np.ndarray | None = None,
    int8: bool = False,
    calibration_faces: np.ndarray | None = None,
    eval_data: Prepared | None = None,
    tta: bool = False,
) -> ExportResult:
    """Write ``model`` as one ONNX file with inputs ``faces`` ``(B, 1, H, W)`` float in [0, 1]
    and outputs ``probabilities`` ``(B, C)``, ``meta`` in its metadata.

    ``check_faces`` ``(N, H, W)`` uint8 are run through torch and onnxruntime and the largest
    absolute difference is returned. With ``int8``, weights and activations are quantised
    (static QDQ) using ``calibration_faces``. With ``eval_data`` (a :class:`Prepared`), the
    accuracy of torch's and of the ONNX file's predictions on it is returned, so the cost of
    int8 is measured, not assumed. With ``tta``, the file averages the probabilities of each
    face and its mirror image (test-time augmentation inside the graph, so every user of the
    file gets it and its latency counts it).
    """
    # Their INFO lines, and the exporter's warnings that torchvision (never used) is absent,
    # say nothing to a user.
    for name in ("onnxscript", "onnx_ir"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    wrapped = Probabilities(model, tta).eval()
    out = Path(out)
    dummy = torch.rand(2, meta.in_chans, meta.img_size, meta.img_size)
    batch = torch.export.Dim("batch", min=1, max=65536)
    with atomic_path(out) as tmp:
        torch.onnx.export(
            wrapped, (dummy,), tmp, input_names=["faces"], output_names=["probabilities"],
            dynamic_shapes={"faces": {0: batch}}, external_data=False, verbose=False,
        )  # fmt: skip
        proto = onnx.load(tmp)
        for node in proto.graph.node:
            # The exporter's per-node debug records (stack traces) name paths on the machine
            # that exported; they are not the model and should not ship in it.
            del node.metadata_props[:]
        for key, value in _metadata(meta, tta).items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, tmp)
        if int8:
            if calibration_faces is None or not len(calibration_faces):
                raise TinyferError("--int8 needs calibration faces (give --data)")
            _quantize(tmp, calibration_faces)
        seal_onnx(tmp)
    diff = None
    if check_faces is not None and len(check_faces):
        onnx_probs = OnnxClassifier(out).predict_proba(check_faces)
        torch_probs = wrapped.predict_proba(check_faces)
        diff = float(np.abs(onnx_probs - torch_probs).max())
    accuracy = {}
    if eval_data is not None:
        for name, clf in (("torch", wrapped), ("onnx", OnnxClassifier(out))):
            result = evaluate_arrays(clf, meta.labels, eval_data)
            accuracy[name] = result.metrics["accuracy"]
            accuracy["n"] = result.metrics["n"]
    return ExportResult(
        out, diff, out.stat().st_size, accuracy.get("torch"), accuracy.get("onnx"),
        accuracy.get("n", 0),
    )  # fmt: skip


def _quantize(path: Path, faces: np.ndarray) -> None:
    """Static int8 quantisation (QDQ, per-tensor) of the ONNX file at ``path``."""
    # Its import takes 0.65 s; only --int8 pays it.
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(
                {"faces": model_input(faces[i : i + 32])} for i in range(0, len(faces), 32)
            )

        def get_next(self):
            return next(self.batches, None)

    pre = path.with_suffix(".pre.onnx")
    try:
        quant_pre_process(str(path), str(pre))
        quantize_static(
            str(pre), str(path), Reader(), quant_format=QuantFormat.QDQ, per_channel=False,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            # Only the heavy ops: quantising the softmax or the input scaling costs accuracy.
            # Per-channel weights made 25% of CK+ predictions disagree with fp32 here;
            # per-tensor 3%.
            op_types_to_quantize=["Conv", "Gemm", "MatMul"],
            # 7-bit weights: on x86 without VNNI (AVX2, AVX-512F) onnxruntime multiplies
            # u8 x s8 pairs into int16, which 8-bit weights can overflow; the file must give
            # the same answers on every CPU it meets, not only on the one that made it.
            reduce_range=True,
        )  # fmt: skip
    finally:
        pre.unlink(missing_ok=True)
