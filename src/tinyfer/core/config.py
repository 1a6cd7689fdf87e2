"""Dataclass configs: built from YAML or dicts, checked key by key, with dotted overrides."""

from __future__ import annotations

import dataclasses
import re
import shlex
import sys
import types
import typing
from collections.abc import Iterator
from dataclasses import Field, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml

from tinyfer.core.kinds import DETECTORS, LAYOUTS
from tinyfer.errors import ConfigError

T = TypeVar("T")

# Choices from tinyfer.core.kinds' tables (Literal of a tuple: one choice per member).
Format = Literal[("auto", *LAYOUTS)]  # type: ignore[valid-type]
Executor = Literal["local", "ray"]  # where an experiment's trainings (or a batch) run


@dataclass(frozen=True)
class Range:
    """The values a number may take: ``low`` to ``high`` (None: unbounded), ends included
    unless ``open_low`` / ``open_high``."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def __contains__(self, v: float) -> bool:
        lo, hi = self.low, self.high
        return (lo is None or v > lo or (v == lo and not self.open_low)) and (
            hi is None or v < hi or (v == hi and not self.open_high)
        )

    def __str__(self) -> str:
        left = "-inf" if self.low is None else f"{self.low:g}"
        right = "inf" if self.high is None else f"{self.high:g}"
        return f"{'(' if self.open_low or self.low is None else '['}{left}, {right}" + (
            ")" if self.open_high or self.high is None else "]"
        )


_POSITIVE, _COUNT, _WHOLE = Range(0, None, open_low=True), Range(1), Range(0)
_FRACTION, _PROBABILITY = Range(0, 1, open_high=True), Range(0, 1)

_MISSING: Any = dataclasses.MISSING


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _field(
    default: Any = _MISSING,
    help: str = "",
    *,
    factory: Any = _MISSING,
    range: Range | None = None,
    resumable: bool = False,
    execution: bool = False,
) -> Any:
    """A config field with its default (or ``factory``) and what is known of it: its one-line
    ``help`` (for options built from it), the ``range`` its numbers must lie in, whether it
    may change when a run is resumed (``resumable``: how long, on what hardware) or an
    experiment is (``execution``: how it runs or reports, not what it trains)."""
    metadata = {"help": help, "range": range, "resumable": resumable, "execution": execution}
    return field(default=default, default_factory=factory, metadata=metadata)


@dataclass
class AugmentConfig:
    """Which transforms, with what ranges; a zero range (or False) switches one off."""

    online: bool = True
    offline_copies: int = _field(
        0, "K: the training set becomes K + 1 times its size", range=Range(0, 100)
    )
    brightness: float = _field(0.25, "factor in [1 - b, 1 + b]", range=_PROBABILITY)
    contrast: float = _field(0.25, "factor in [1 - c, 1 + c]", range=_PROBABILITY)
    zoom: float = _field(0.1, "scale in [1 - z, 1 + z]", range=_FRACTION)
    rotation: float = _field(10.0, "degrees, +-", range=Range(0, 180))
    translation: float = _field(0.08, "fraction of the side, +-", range=Range(0, 0.5))
    hflip: bool = True
    # What a deployed camera or a re-saved photo does to a face: each a probability per face
    # (gamma: a range), 0 switches it off. Online only.
    gamma: float = _field(0.0, "gamma in [1 - g, 1 + g]", range=_FRACTION)
    blur: float = _field(0.0, "Gaussian blur, sigma 0.2-1.5 px at 48 px", range=_PROBABILITY)
    jpeg: float = _field(0.0, "JPEG compression at quality 25-90", range=_PROBABILITY)
    erasing: float = _field(
        0.0, "a random rectangle (2-15% of the face) set to mid-gray", range=_PROBABILITY
    )
    # Probability that a training face's area beyond its source crop (the replicated border
    # where the face's frame reaches past a tight dataset crop) shows another face's pixels
    # instead, as a photo shows hair, neck or scene there. Online only.
    context_fill: float = _field(0.0, range=_PROBABILITY)

    @property
    def any_transform(self) -> bool:
        return bool(
            self.brightness
            or self.contrast
            or self.zoom
            or self.rotation
            or self.translation
            or self.hflip
            or self.gamma
            or self.blur
            or self.jpeg
            or self.erasing
        )


@dataclass
class DataConfig:
    """Where the data is and how faces are made from it.

    ``path`` None means the synthetic demo set. ``geometry`` ``template`` cuts every face by
    its landmarks onto one template (``tinyfer.core.faces.geometry``), falling back to a calibrated
    box framing where none are found; ``margin`` is the older cut (the box widened by
    ``margin``, eyes levelled with ``align``). ``detector`` ``auto`` is MTCNN for ``template``
    (on raw frames, and on face crops to find their landmarks); for ``margin`` it is Haar on raw
    frames (MUG, JAFFE, folders) and none on datasets of face crops (FER2013, CK+).

    ``path`` may list several datasets, trained on as one (``format`` then one layout for all
    or one per path): their labels are mapped onto one vocabulary, and ``weights`` (one per
    path; empty: in proportion to their sizes) set each one's share of the training draws.
    """

    path: str | list[str] | None = None
    format: Format | list[Format] = "auto"
    weights: list[float] = _field(
        help="several paths: each one's share of draws", factory=list, range=_POSITIVE
    )
    # Each ``help`` is also the option's help in `tinyfer data prepare`, whose defaults are these.
    frames: Literal["apex", "all", "spaced"] = _field("apex", "MUG frames per take.")
    n_frames: int = _field(3, "Frames per take for apex/spaced.", range=_COUNT)
    subject_regex: str | None = _field(None, "Regex taking the subject id from file names.")
    skip_unknown: bool = _field(False, "Leave unknown label folders out.")
    geometry: Literal["template", "margin"] = _field(
        "template", "template (landmarks onto one template) or margin (the older cut)."
    )
    detector: Literal[("auto", *DETECTORS)] = _field(  # type: ignore[valid-type]
        "auto", "auto: MTCNN for template, Haar on frames / none on crops for margin."
    )
    min_face: float = _field(
        0.1,
        "Smallest face to find, fraction of the shorter side.",
        range=Range(0, 1, open_low=True),
    )
    img_size: int = _field(48, "Side of the square face crops.", range=Range(16, 512))
    margin: float = _field(
        0.1, "margin geometry: box margin, fraction of the face size.", range=Range(-0.5, 2)
    )
    align: bool = _field(False, "margin geometry: rotate so that the eyes are level.")
    labels: list[str] = field(default_factory=list)  # empty: every label the data has
    # A dataset replayed beside ``path`` in training only (e.g. FER+ beside a user's own):
    # faces of its training split, of ``path``'s classes, drawn anew for each run so that they
    # are ``replay_share`` of the training faces; never in validation, test or folds.
    replay: str | None = None
    replay_format: Format = "auto"
    replay_share: float = _field(0.25, range=Range(0, 1, open_low=True, open_high=True))

    def __post_init__(self):
        paths = self.paths
        if isinstance(self.format, list) and len(self.format) != len(paths):
            raise ConfigError(
                f"data.format lists {len(self.format)} layout(s) for {len(paths)} path(s); "
                "give one layout for all, or one per path"
            )
        if self.weights and len(self.weights) != len(paths):
            raise ConfigError(
                f"data.weights lists {len(self.weights)} weight(s) for {len(paths)} path(s)"
            )

    @property
    def paths(self) -> list[str]:
        """The datasets, as a list (empty for the synthetic demo set)."""
        if self.path is None:
            return []
        return list(self.path) if isinstance(self.path, list) else [self.path]

    def sources(self) -> list[DataConfig]:
        """One single-dataset config per path, each with its own layout."""
        formats = self.format if isinstance(self.format, list) else [self.format] * len(self.paths)
        return [
            dataclasses.replace(self, path=p, format=f, weights=[])
            for p, f in zip(self.paths, formats)
        ]

    def replayed(self, labels: list[str]) -> DataConfig:
        """The replay dataset's config: cut as ``path``'s faces are, only ``labels``."""
        return dataclasses.replace(self, path=self.replay, format=self.replay_format, weights=[],
                                   labels=labels, replay=None)  # fmt: skip


@dataclass
class ModelConfig:
    """Which registered model (``tinyfer.training.models.list_models()``) and its head's dropout."""

    name: str = "tiny"
    dropout: float = _field(0.2, range=_FRACTION)


@dataclass
class PretrainConfig:
    """Phase 1: the encoder trained as an autoencoder (runs when ``classify.init`` is
    ``autoencoder``, or alone with ``tinyfer pretrain``). With ``adapt`` and ``classify.init:
    pretrained`` it runs too, from the pretrained encoder: an unsupervised adaptation to this
    data's faces before phase 2."""

    epochs: int = _field(10, range=_COUNT, resumable=True)
    lr: float = _field(2e-3, range=_POSITIVE)
    loss: Literal["mse", "l1"] = "mse"
    noise: float = _field(
        0.0, "std of Gaussian noise added to inputs (denoising autoencoder)", range=_WHOLE
    )
    mask: float = _field(0.0, "fraction of input pixels zeroed (masking)", range=_FRACTION)
    augment: bool = True  # reconstruct augmented faces, as the classifier will see them
    patience: int = _field(
        0, "early stopping on validation loss; 0 = off", range=_WHOLE, resumable=True
    )
    adapt: bool = False  # with classify.init: pretrained, phase 1 from the pretrained encoder


@dataclass
class ClassifyConfig:
    """Phase 2: the whole model trained to classify."""

    init: Literal["autoencoder", "random", "pretrained"] = "autoencoder"
    pretrained: str | None = None  # init: pretrained: a model.pt or run directory (e.g. FER2013)
    pretrained_head: bool = False  # also take its head's rows for the classes both have
    encoder_lr: float = _field(
        1.0, "the encoder's learning rate, as a fraction of lr", range=Range(0, 1)
    )
    # Distillation: the (ensemble of) teacher models whose probabilities, on each training face
    # and its mirror image, are mixed into its target with this share.
    teachers: list[str] = field(default_factory=list)
    distill: float = _field(0.5, range=_PROBABILITY)
    epochs: int = _field(30, range=_COUNT, resumable=True)
    lr: float = _field(2e-3, range=_POSITIVE)
    weight_decay: float = _field(1e-4, range=_WHOLE)
    freeze_epochs: int = _field(
        0, "keep the initialised encoder frozen for this many epochs", range=_WHOLE
    )
    label_smoothing: float = _field(0.0, range=_FRACTION)
    soft_labels: bool = True  # train on the vote distribution where the data has one (FER+)
    # weights / sampler: while training; logit_adjustment: after it, a bias per class against
    # the training priors, its strength chosen by validation macro-F1 (stored in the model).
    class_balance: Literal["none", "weights", "sampler", "logit_adjustment"] = "none"
    calibrate: bool = True  # fit a temperature on the validation set (stored in the model)
    patience: int = _field(
        8, "early stopping on validation accuracy; 0 = off", range=_WHOLE, resumable=True
    )

    def __post_init__(self):
        if self.init == "pretrained" and not self.pretrained:
            raise ConfigError(
                "classify.init: pretrained needs classify.pretrained: a model.pt or run directory"
            )


@dataclass
class SplitConfig:
    """How data is split. ``holdout``: subject-disjoint test and validation carve-outs;
    ``dataset``: the dataset's own split (FER2013); ``random``: by image, LEAKY on sequences."""

    protocol: Literal["holdout", "dataset", "random"] = "holdout"
    test_fraction: float = _field(0.2, range=_FRACTION)
    val_fraction: float = _field(0.15, range=_FRACTION)
    train_split: str = "Training"
    val_split: str = "PublicTest"
    test_split: str = "PrivateTest"
    # Train on at most this many of the training subjects (0: all); in an experiment, per fold:
    # a learning curve over dataset size with experiment.grid {split.train_subjects: [3, 6, 0]}.
    train_subjects: int = _field(0, range=_WHOLE)
    # Train on at most this many frames of each take, its last ones (0: all): how many of a
    # take's near-identical apex frames are worth training on.
    train_frames_per_take: int = _field(0, range=_WHOLE)

    def __post_init__(self):
        if self.test_fraction + self.val_fraction >= 1:
            raise ConfigError(
                f"split.test_fraction + split.val_fraction must leave faces to train on; got "
                f"{self.test_fraction} + {self.val_fraction}"
            )


@dataclass
class TrainerConfig:
    """Passed to Lightning; ``devices``/``num_nodes``/``strategy`` give DDP without code changes."""

    accelerator: str = "auto"
    devices: int | str = _field("auto", range=Range(1, 4096))
    num_nodes: int = _field(1, range=_COUNT)
    strategy: str = "auto"
    precision: str = "32-true"
    batch_size: int = _field(64, range=Range(1, 65536))
    num_workers: int = _field(0, range=Range(0, 256))
    channels_last: bool = True
    tensorboard: bool = False
    progress: bool = True


@dataclass
class Resources:
    """What one training of an experiment asks for: ``cpus``, its torch threads wherever it
    runs (here, in a local process or on Ray: float sums, and so a seed's results, depend on
    them, so they are part of what is trained; 0: this machine's cores shared among the
    jobs, machine-dependent) and ``gpus`` (Ray's share)."""

    cpus: int = _field(1, range=Range(0, 4096))
    gpus: float = _field(0.0, range=Range(0, 1024), execution=True)


@dataclass
class Claim:
    """A comparison an experiment is run to test: variants with ``key`` = ``a`` against their
    twins with ``key`` = ``b`` (all other grid keys equal), on per-fold accuracy. ``expect``:
    A is ``better``, ``worse``, or ``equivalent`` (within ``margin``, a fraction: 0.02 is two
    accuracy points)."""

    name: str
    key: str
    a: Any
    b: Any
    expect: Literal["better", "worse", "equivalent"] = "better"
    margin: float = _field(0.02, range=Range(0, 1, open_low=True))


def _thesis_claims() -> list[Claim]:
    same = Claim("Autoencoder initialisation makes no difference", "classify.init",
                 "autoencoder", "random", "equivalent", 0.02)  # fmt: skip
    return [Claim("Augmentation improves accuracy", "augment", "on", "off", "better"), same]


@dataclass
class ExperimentConfig:
    """A grid of variants x subject-grouped folds (x repeated seeds), for ``tinyfer experiment``.
    ``protocol: loso`` tests on each subject in turn (one fold per subject).

    ``grid`` maps config keys to the values to try; every combination is a variant. The key
    ``augment`` is special: ``on`` keeps the config's augmentation, ``off`` switches both kinds
    off. The default is the thesis's grid: augmentation on/off x autoencoder init on/off.
    """

    folds: int = _field(10, range=Range(2, 1000))
    repeats: int = _field(1, range=Range(1, 1000))
    protocol: Literal["subject", "loso", "random"] = _field(
        "subject",
        "subject: folds subject-grouped; loso: one fold per subject (folds unused); "
        "random: by image, LEAKY on sequences",
    )
    grid: dict[str, list] = field(
        default_factory=lambda: {
            "augment": ["on", "off"],
            "classify.init": ["autoencoder", "random"],
        }
    )
    keep_checkpoints: bool = False
    claims: list[Claim] = _field(
        help="tested where the grid can", factory=_thesis_claims, execution=True
    )
    # How it runs, not what: these may change when an experiment is resumed.
    executor: Executor = _field("local", execution=True)
    jobs: int = _field(
        1, "trainings at once: local processes, or a local Ray instance's CPUs",
        range=Range(1, 1024), execution=True,
    )  # fmt: skip
    address: str | None = _field(
        None, "ray: auto, HOST:PORT or ray://HOST:PORT; None: this machine", execution=True
    )
    resources: Resources = field(default_factory=Resources)
    retries: int = _field(
        2, "times a training whose worker died is run again", range=Range(0, 100), execution=True
    )


@dataclass
class TrainConfig:
    """Everything one training run needs; saved as ``config.yaml`` in its run directory."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    # How long and on what hardware, not what: may change when a run is resumed.
    trainer: TrainerConfig = _field(factory=TrainerConfig, resumable=True)
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    seed: int = _field(0, range=Range(0, 2**32 - 1))
    prepared_dir: str = "prepared"

    def __post_init__(self):
        if self.pretrain.adapt and self.classify.init != "pretrained":
            raise ConfigError("pretrain.adapt adapts a pretrained encoder: it needs "
                              f"classify.init: pretrained (not {self.classify.init})")  # fmt: skip

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
        return load_yaml(cls, path, overrides)


def config_fields(cls: type = TrainConfig, where: str = "") -> Iterator[tuple[str, Field]]:
    """``(dotted key, field)`` of every field of config dataclass ``cls``, sections (and lists
    of them, ``experiment.claims``) followed by their own fields."""
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key, tp = _join(where, f.name), hints[f.name]
        yield key, f
        inner = get_args(tp)[0] if get_origin(tp) is list and get_args(tp) else None
        if dataclasses.is_dataclass(tp) or dataclasses.is_dataclass(inner):
            yield from config_fields(tp if inner is None else inner, key)


def _keys_where(flag: str) -> tuple[str, ...]:
    # A section's key ends in "." so that it names all of the section's keys as a prefix.
    return tuple(
        key + "." * dataclasses.is_dataclass(f.default_factory)
        for key, f in config_fields()
        if f.metadata.get(flag)
    )


#: Every number a config holds, with the values that make sense; checked before any work.
RANGES: dict[str, Range] = {k: f.metadata["range"] for k, f in config_fields()
                            if f.metadata.get("range")}  # fmt: skip
#: The experiment settings that say how a grid runs or what it reports, not what it trains:
#: they may change when an experiment (or one of its folds) is resumed.
EXECUTION_KEYS = _keys_where("execution")
#: The keys (or section prefixes) that may change when a run is resumed: how long and on
#: what hardware; an experiment's folds carry the execution keys too.
RESUMABLE_KEYS = (*_keys_where("resumable"), *EXECUTION_KEYS)


def dotted(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config mapping as ``{"a.b": value}``: the inverse of :func:`set_dotted`."""
    out = {}
    for k, v in tree.items():
        out.update(dotted(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def set_dotted(tree: dict[str, Any], key: str, value: Any, *, create: bool = True) -> None:
    """Set ``tree["a"]["b"] = value`` for ``key`` ``a.b``; sections missing from ``tree`` are
    made, unless not ``create`` (then a key ``tree`` lacks raises KeyError)."""
    *parents, last = key.split(".")
    node = tree
    for part in parents:
        if part not in node and create:
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise ConfigError(f"{key!r}: {part!r} is not a section")
    if last not in node and not create:
        raise KeyError(key)
    node[last] = value


def command_line() -> str:
    """This process's command, quoted so that it can be pasted back into a shell (the entry
    point as ``tinyfer``, not the path it was installed at)."""
    argv = list(sys.argv)
    if argv and Path(argv[0]).name in ("tinyfer", "__main__.py"):
        argv[0] = "tinyfer"
    return shlex.join(argv)


def from_dict(cls: type[T], data: dict[str, Any] | None, *, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys, wrong types and numbers out of
    their :data:`RANGES` raise ConfigError."""
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(_join(where, k) for k in unknown)}; "
            f"valid keys{' in ' + where if where else ''}: {', '.join(names)}"
        )
    values = {k: _coerce(hints[k], v, _join(where, k)) for k, v in data.items()}
    for key, value in values.items():
        allowed = RANGES.get(re.sub(r"\[\d+\]", "", _join(where, key)))  # a[2].b -> a.b
        for v in value if isinstance(value, list) else [value]:
            if allowed is not None and isinstance(v, (int, float)) and v not in allowed:
                raise ConfigError(f"{_join(where, key)}: {v!r} is out of range; "
                                  f"allowed: {allowed}")  # fmt: skip
    return cls(**values)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A config as plain data (for YAML and JSON)."""
    return dataclasses.asdict(cfg)


def load_yaml(cls: type[T], path: str | Path, overrides: list[str] | None = None) -> T:
    """Read ``cls`` from a YAML file, then apply ``key.sub=value`` overrides."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    for item in overrides or []:
        apply_override(data, item)
    return from_dict(cls, data)


def apply_override(data: dict[str, Any], item: str) -> None:
    """Set ``a.b=value`` in nested ``data``; the value is parsed as YAML (``3``, ``[a]``)."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(
            f"override {item!r} is not of the form key=value (e.g. classify.epochs=5)"
        )
    try:
        set_dotted(data, key.strip(), yaml.safe_load(raw) if raw.strip() else None)
    except ConfigError as exc:
        raise ConfigError(f"override {item!r}: {exc}") from None


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where=where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []

        # Try the list types first for a list, the others first for anything else, so that
        # the error reported is the one of the type the value was meant to have.
        def misfit(arg) -> bool:
            return (get_origin(arg) in (list, tuple)) != isinstance(value, list)

        for arg in sorted((a for a in args if a is not type(None)), key=misfit):
            try:
                return _coerce(arg, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if origin is Literal:
        if value not in args:
            raise ConfigError(
                f"{where}: {value!r} is not allowed; choose one of {', '.join(map(repr, args))}"
            )
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        return origin(_coerce(inner, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int and (not isinstance(value, int) or isinstance(value, bool)):
        raise ConfigError(f"{where}: expected a whole number, got {value!r}")
    if tp is str and not isinstance(value, str):
        raise ConfigError(f"{where}: expected text, got {value!r}")
    return value
