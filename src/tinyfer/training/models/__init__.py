"""The model zoo: one factory over a registry of compact FerNet variants."""

from __future__ import annotations

from dataclasses import dataclass

from tinyfer.errors import TinyferError
from tinyfer.training.models.fernet import Decoder, Encoder, EncoderSpec, FerNet


@dataclass(frozen=True)
class ModelInfo:
    name: str
    spec: EncoderSpec
    description: str


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(name: str, spec: EncoderSpec, description: str) -> None:
    _REGISTRY[name] = ModelInfo(name, spec, description)


register_model(
    "tiny",
    EncoderSpec("sep", stem=8, widths=(16, 32, 64, 128), depths=(1, 1, 1, 1)),
    "mini-Xception's shape: separable residual modules, under 60k parameters",
)
register_model(
    "small",
    EncoderSpec("basic", stem=16, widths=(32, 64, 128), depths=(1, 1, 1)),
    "ResNet basic blocks, about 300k parameters",
)
register_model(
    "base",
    EncoderSpec("basic", stem=32, stem_stride=2, widths=(64, 128, 192), depths=(1, 1, 1)),
    "ResNet basic blocks after a stride-2 stem, under 1M parameters",
)
register_model(
    "wide",
    EncoderSpec("basic", stem=48, stem_stride=2, widths=(96, 192, 288), depths=(1, 1, 1)),
    "base at 1.5x its width, about 2M parameters: a teacher to distil into base",
)
register_model(
    "plain",
    EncoderSpec("plain", stem=16, widths=(32, 64, 128), depths=(2, 2, 2)),
    "the thesis's kind: plain 3x3 convolutions and max-pooling",
)


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def model_info(name: str) -> ModelInfo:
    if name not in _REGISTRY:
        raise TinyferError(f"unknown model {name!r}; choose one of {', '.join(list_models())}")
    return _REGISTRY[name]


def create_model(
    name: str, num_classes: int = 7, *, in_chans: int = 1, img_size: int = 48, dropout: float = 0.2
) -> FerNet:
    """Build a registered model, e.g. ``create_model("tiny", num_classes=7)``."""
    return FerNet(model_info(name).spec, num_classes, in_chans, img_size, dropout)


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "Decoder",
    "Encoder",
    "EncoderSpec",
    "FerNet",
    "count_parameters",
    "create_model",
    "list_models",
    "model_info",
    "register_model",
]
