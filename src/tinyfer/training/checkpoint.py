"""Self-describing model files: architecture, labels, input size and preprocessing travel
with the weights, so nothing downstream hard-codes them."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from tinyfer.core.integrity import weights_digest
from tinyfer.core.io import atomic_path
from tinyfer.core.model_files import ModelMeta, resolve_model_file
from tinyfer.core.priors import ClassPrior
from tinyfer.errors import TinyferError
from tinyfer.training.models import EncoderSpec, FerNet

VERSION = 1


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary name, then rename: an interruption never leaves half a file."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def save_model(path: str | Path, model, meta: ModelMeta) -> Path:
    """Write ``model`` (a FerNet) with ``meta`` to ``path``."""
    return atomic_torch_save(
        {
            "format": "tinyfer-model",
            "version": VERSION,
            "name": meta.name,
            "arch": model.arch(),
            "labels": list(meta.labels),
            "img_size": meta.img_size,
            "in_chans": meta.in_chans,
            "preprocessing": meta.preprocessing,
            "config": meta.config,
            "metrics": meta.metrics,
            "class_prior": None if meta.class_prior is None else list(meta.class_prior.training),
            "state_dict": model.state_dict(),
            "weights_sha256": weights_digest(model.state_dict()),
        },
        path,
    )


def _read(path: str | Path, kind: str) -> dict[str, Any]:
    """Load a tinyfer ``kind`` file ("model" or "encoder"), checking its format header."""
    path = Path(path)
    if not path.is_file():
        raise TinyferError(f"{path}: no such {kind} file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        raise TinyferError(f"{path}: not a tinyfer {kind} file ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != f"tinyfer-{kind}":
        raise TinyferError(f"{path}: not a tinyfer {kind} file (no 'tinyfer-{kind}' header)")
    expected = payload.get("weights_sha256")
    if expected and weights_digest(payload["state_dict"]) != expected:
        raise TinyferError(f"{path}: the weights do not match their checksum: the file is "
                           "damaged. Train or download it again.")  # fmt: skip
    return payload


def load_model(path: str | Path):
    """Rebuild the model saved at ``path``; returns ``(model, meta)``, the model in eval mode."""
    payload = _read(path, "model")
    arch = dict(payload["arch"])
    model = FerNet(EncoderSpec.from_dict(arch.pop("spec")), **arch)
    model.load_state_dict(payload["state_dict"])
    meta = ModelMeta(
        name=payload["name"],
        labels=tuple(payload["labels"]),
        img_size=payload["img_size"],
        in_chans=payload["in_chans"],
        preprocessing=payload["preprocessing"],
        config=payload.get("config", {}),
        metrics=payload.get("metrics", {}),
        class_prior=None
        if payload.get("class_prior") is None
        else ClassPrior.of(payload["class_prior"], model.logit_bias, model.temperature),
    )
    return model.eval(), meta


def load_for_inference(path: Path, *, threads: int | None = None):
    """:func:`load_model` as the loader of model.pt files for inference (the ``pt`` entry
    point of ``tinyfer.model_loaders``); ``threads`` is left to torch's own setting."""
    return load_model(path)


def load_pretrained(model: FerNet, labels, path: str | Path, *, head: bool = True) -> list[str]:
    """Initialise ``model`` (classes ``labels``) from a trained model (a model.pt, a run
    directory or a bundled model's name), e.g. FER+ weights before fine-tuning on CK+: its
    encoder, and with ``head`` its head's rows for the classes both have (by name). Returns
    the labels whose rows start untrained (classes the pretrained model does not know)."""
    file = resolve_model_file(path)
    if file.suffix == ".onnx" and file.with_suffix(".pt").is_file():
        file = file.with_suffix(".pt")  # a bundled model's checkpoint
    payload = _read(file, "model")
    _check_architecture(
        model.encoder, payload["arch"]["spec"], payload["in_chans"], file,
        f"a model of another architecture; choose model.name: {payload['name']}",
    )  # fmt: skip
    state = payload["state_dict"]
    model.encoder.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("encoder.")})
    known = list(payload["labels"])
    if not head:
        return list(labels)
    last = len(model.head) - 1
    linear = model.head[last]
    weight, bias = state[f"head.{last}.weight"], state[f"head.{last}.bias"]
    with torch.no_grad():
        for row, label in enumerate(labels):
            if label in known:
                linear.weight[row] = weight[known.index(label)]
                linear.bias[row] = bias[known.index(label)]
    return [label for label in labels if label not in known]


def save_encoder(path: str | Path, encoder) -> Path:
    """Write the phase-1 encoder with the spec it was built from."""
    return atomic_torch_save(
        {
            "format": "tinyfer-encoder",
            "spec": asdict(encoder.spec),
            "in_chans": encoder.in_chans,
            "state_dict": encoder.state_dict(),
            "weights_sha256": weights_digest(encoder.state_dict()),
        },
        path,
    )


def load_encoder_into(encoder, path: str | Path) -> None:
    """Load a phase-1 encoder file into ``encoder``; refuses one made for another architecture."""
    payload = _read(path, "encoder")
    _check_architecture(
        encoder, payload["spec"], payload["in_chans"], path,
        "encoder made for another architecture; run phase 1 again for this model",
    )  # fmt: skip
    encoder.load_state_dict(payload["state_dict"])


def _check_architecture(encoder, spec: dict, in_chans: int, file, problem: str) -> None:
    """Refuse weights saved for an encoder of another shape, naming what differs."""
    mine = {**asdict(encoder.spec), "in_chans": encoder.in_chans}
    theirs = {**asdict(EncoderSpec.from_dict(spec)), "in_chans": in_chans}
    if mine != theirs:
        diff = {k: (theirs.get(k), v) for k, v in mine.items() if theirs.get(k) != v}
        raise TinyferError(f"{file}: {problem} (differences, file vs model: {diff})")
