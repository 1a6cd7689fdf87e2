"""Which model file a name or a path means (the bundled models by name, run folders, model
files), what a model file says about itself, and the loaders of model files by kind. No
torch, no onnxruntime: both the inference and the training side build on it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tinyfer.core.priors import ClassPrior
from tinyfer.errors import TinyferError

if TYPE_CHECKING:
    import numpy as np

    from tinyfer.core.faces.cut import FaceCut

ASSETS = Path(__file__).parents[1] / "assets"
#: The pretrained models shipped inside the package, by name; each has a card (``<name>.md``)
#: and its torch checkpoint (``<name>.pt``, for fine-tuning) beside it. ``--model NAME`` /
#: ``Recognizer(NAME)`` choose one.
BUNDLED_MODELS = {"accurate": ASSETS / "accurate.onnx", "fast": ASSETS / "fast.onnx"}
#: The default: the most accurate bundled model within 0.5 ms per face on one core.
DEFAULT_MODEL = "accurate"


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

    @property
    def cut(self) -> FaceCut:
        """How the model's faces are cut (:class:`~tinyfer.core.faces.cut.FaceCut`)."""
        from tinyfer.core.faces.cut import FaceCut  # OpenCV; the CLI's help reads this module

        return FaceCut.from_meta(self.preprocessing)


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


class Classifier(Protocol):
    """What every loaded model offers, whatever its file: class probabilities ``(N, C)``, in
    its meta's label order, for ``(N, H, W)`` uint8 face crops at its input size."""

    def predict_proba(self, faces: np.ndarray) -> np.ndarray: ...


#: ``loader(path, threads=N) -> (classifier, meta)``; ``threads`` is a hint a loader may ignore.
Loader = Callable[..., tuple[Classifier, ModelMeta]]
#: Entry-point group of loaders that a package declares (name: the file suffix without its
#: dot), loaded when a file of that kind is first asked for: tinyfer's training declares the
#: one of model.pt, so that inference never imports training.
LOADER_GROUP = "tinyfer.model_loaders"
_LOADERS: dict[str, Loader] = {}


def register_loader(suffix: str, loader: Loader) -> None:
    """Load files ending in ``suffix`` (e.g. ``".onnx"``) with ``loader`` in this process."""
    _LOADERS[suffix] = loader


def load_model_file(path: Path, *, threads: int | None = None) -> tuple[Classifier, ModelMeta]:
    """``(classifier, meta)`` of the model file ``path`` (resolved already), by the loader of
    its kind: one registered here, or else one declared in :data:`LOADER_GROUP`."""
    loader = _LOADERS.get(path.suffix)
    if loader is None:
        from importlib.metadata import entry_points  # about 0.1 s: only for an unseen kind

        declared = {e.name: e for e in entry_points(group=LOADER_GROUP)}
        kind = path.suffix.lstrip(".")
        if kind not in declared:
            known = ", ".join(sorted({*(s.lstrip(".") for s in _LOADERS), *declared}))
            raise TinyferError(f"{path}: no loader for {path.suffix or 'suffix-less'} model "
                               f"files (known: {known})")  # fmt: skip
        try:
            loader = declared[kind].load()
        except ImportError as exc:
            needs = exc.name or "a module"
            raise TinyferError(f"{path}: loading a .{kind} model needs {needs} (pip install "
                               "'tinyfer[train]'), or give its .onnx") from None  # fmt: skip
        register_loader(path.suffix, loader)
    return loader(path, threads=threads)
