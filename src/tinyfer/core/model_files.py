"""Which model file a name or a path means (the bundled models by name, run folders, model
files) and what a model file says about itself. No torch, no onnxruntime: both the inference
and the training side build on it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyfer.core.priors import ClassPrior
from tinyfer.errors import TinyferError

ASSETS = Path(__file__).parents[1] / "assets"
#: The pretrained models shipped inside the package, by name; each has a card (``<name>.md``)
#: and its torch checkpoint (``<name>.pt``, for fine-tuning) beside it. ``--model NAME`` /
#: ``Recognizer(NAME)`` choose one.
BUNDLED_MODELS = {"accurate": ASSETS / "accurate.onnx", "fast": ASSETS / "fast.onnx"}
#: The default: the most accurate bundled model within 0.5 ms per face on one core.
DEFAULT_MODEL = "accurate"
BUNDLED_MODEL = BUNDLED_MODELS[DEFAULT_MODEL]


@dataclass(frozen=True)
class ModelMeta:
    """What a model file says about itself."""

    name: str
    labels: tuple[str, ...]
    img_size: int
    in_chans: int
    preprocessing: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    #: The training class frequencies and the shift the stored output carries (None: a file
    #: made before deployment priors, which predicts under its training prior only).
    class_prior: ClassPrior | None = None


def resolve_model_file(path: str | Path | None, *, onnx: bool = False) -> Path:
    """The model file that ``path`` names: a bundled model's name (``fast``, ``accurate``;
    ``None``: the default) unless a file or folder of that name exists here, a run directory
    (its ``model.pt``; with ``onnx``, its ``model.onnx`` when that is at least as new), or a
    model file."""
    name = DEFAULT_MODEL if path is None else str(path)
    if name in BUNDLED_MODELS and not Path(name).exists():
        if not BUNDLED_MODELS[name].is_file():
            raise TinyferError(
                f"{BUNDLED_MODELS[name]}: the bundled model {name!r} is missing from this "
                "install; give a model (run directory, model.pt or .onnx)"
            )
        return BUNDLED_MODELS[name]
    path = Path(path)
    if path.is_dir():
        pt, exported = path / "model.pt", path / "model.onnx"
        fresh = exported.is_file() and (
            not pt.is_file() or exported.stat().st_mtime >= pt.stat().st_mtime
        )
        path = exported if onnx and fresh else pt
    if not path.is_file():
        names = ", ".join(BUNDLED_MODELS)
        raise TinyferError(f"{path}: no model file (give a bundled model's name: {names}; a run "
                           "directory, a model.pt or a .onnx)")  # fmt: skip
    return path
