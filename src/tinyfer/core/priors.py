"""The class prior a model's predictions assume: the deployment prior.

A classifier's probabilities carry the class frequencies of its training data (FER+: a third of
its faces are neutral). Where the faces to come have other frequencies, Bayes' rule moves the
probabilities to them without retraining: ``p'(y|x) ∝ p(y|x) * q(y) / π(y)``, with ``π`` the
training frequencies and ``q`` the deployment prior. A model file records ``π`` and the logit
shift its stored output already applies (logit adjustment over the temperature), so that any
``q`` can be reached from its stored output:

- ``"training"``: the stored output as it is (the model's training frequencies; with logit
  adjustment, the operating point validation chose);
- ``"balanced"``: every class equally likely;
- ``{label: weight}``: weights relative to ``balanced``; a class not named keeps weight 1, so
  ``{"neutral": 0.5}`` makes neutral half as likely as each other class.

Numpy only: the same code shifts the output of an ONNX file and of a torch model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tinyfer.core.labels import canonical_label, is_known_label
from tinyfer.errors import TinyferError

if TYPE_CHECKING:
    import numpy as np

#: ``"training"``, ``"balanced"`` or ``{label: weight}``.
PriorSpec = str | Mapping[str, float]
PRIORS = ("balanced", "training")
#: The prior of every entry point unless one is given (see the README for why).
DEFAULT_PRIOR = "balanced"


@dataclass(frozen=True)
class ClassPrior:
    """What a model file records of its classes' prior: ``training``, the training targets'
    class frequencies, and ``applied``, the shift its stored logits already carry beyond
    ``logits / temperature`` (the logit adjustment's bias over the temperature; zeros without)."""

    training: tuple[float, ...]
    applied: tuple[float, ...]

    @classmethod
    def of(cls, training: Sequence[float], logit_bias=None, temperature: float = 1.0):
        import numpy as np  # here, not above: model_files (and so the CLI's --help) import this

        training = np.asarray(training, np.float64)
        if training.ndim != 1 or not len(training) or (training < 0).any() or training.sum() <= 0:
            raise ValueError(f"class frequencies must be non-negative and not all zero: {training}")
        bias = np.zeros_like(training) if logit_bias is None else np.asarray(logit_bias, float)
        return cls(
            tuple(float(p) for p in training / training.sum()),
            tuple(float(b) for b in bias / float(temperature)),
        )

    def to_meta(self) -> dict:
        return {"training": list(self.training), "applied": list(self.applied)}

    @classmethod
    def from_meta(cls, d: Mapping | str | None) -> ClassPrior | None:
        """The recorded prior (a dict, its JSON, or None: a model file made before priors)."""
        if not d:
            return None
        d = json.loads(d) if isinstance(d, str) else d
        return cls(tuple(map(float, d["training"])), tuple(map(float, d["applied"])))


def parse_prior(text: str) -> PriorSpec:
    """A prior as written on a command line: ``balanced``, ``training``, ``neutral=0.5,anger=2``
    or a JSON object ``{"neutral": 0.5}``."""
    text = text.strip()
    if text in PRIORS:
        return text
    if text.startswith("{"):
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TinyferError(f"--prior {text!r}: not valid JSON ({exc.msg})") from None
        if not isinstance(spec, dict):
            raise TinyferError(f"--prior {text!r}: a JSON prior is an object {{label: weight}}")
        return spec
    spec: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        label, eq, weight = part.partition("=")
        if not eq:
            raise TinyferError(
                f"--prior {text!r}: give {' or '.join(PRIORS)}, or label=weight pairs "
                "separated by commas (e.g. neutral=0.5,anger=2)"
            )
        try:
            spec[label.strip()] = float(weight)
        except ValueError:
            raise TinyferError(f"--prior: the weight of {label.strip()!r} is not a number: "
                               f"{weight.strip()!r}") from None  # fmt: skip
    if not spec:
        raise TinyferError("--prior is empty; give balanced, training or label=weight pairs")
    return spec


def prior_shift(
    prior: PriorSpec, labels: Sequence[str], recorded: ClassPrior | None, *, source: str = ""
) -> np.ndarray | None:
    """The log-weights ``(C,)`` that move a model's stored output to ``prior``; None: the stored
    output is already it (``training``, or a default prior for a model file that records none).
    Raises TinyferError naming the problem for an unknown prior, label or weight."""
    import numpy as np

    where = f"{source}: " if source else ""
    if isinstance(prior, str) and prior not in PRIORS:
        raise TinyferError(f"unknown prior {prior!r}; choose {', '.join(PRIORS)} or give "
                           "{label: weight}")  # fmt: skip
    weights = np.ones(len(labels)) if prior == "balanced" else None
    if isinstance(prior, Mapping):
        weights = _weights(prior, labels, where)
    if weights is None:
        return None
    if recorded is None:
        raise TinyferError(
            f"{where}this model file does not record its training class frequencies (made "
            "before deployment priors), so only the prior 'training' applies to it; export or "
            "adjust it again with this version (tinyfer adjust RUN_DIR) for other priors"
        )
    if len(recorded.training) != len(labels):
        raise TinyferError(f"{where}the recorded prior has {len(recorded.training)} classes, "
                           f"the model {len(labels)}: the file is inconsistent")  # fmt: skip
    with np.errstate(divide="ignore"):
        shift = np.log(weights) - np.log(np.maximum(recorded.training, 1e-12))
    return shift - np.asarray(recorded.applied)


def effective_prior(prior: PriorSpec | None, recorded: ClassPrior | None) -> PriorSpec:
    """``prior``, or when None the default: :data:`DEFAULT_PRIOR` for a model file that records
    its training frequencies, ``training`` (its behaviour as made) for an older one."""
    if prior is not None:
        return prior
    return DEFAULT_PRIOR if recorded is not None else "training"


def shift_probabilities(probs: np.ndarray, shift: np.ndarray | None) -> np.ndarray:
    """``probs`` ``(N, C)`` moved by :func:`prior_shift`'s log-weights (renormalised)."""
    if shift is None or not len(probs):
        return probs
    import numpy as np

    with np.errstate(divide="ignore"):
        z = np.log(np.asarray(probs, np.float64)) + shift
    z -= z.max(1, keepdims=True)
    out = np.exp(z)
    return (out / out.sum(1, keepdims=True)).astype(np.float32)


def prior_name(prior: PriorSpec) -> str:
    """How a prior is written in reports: its name, or ``label=weight`` pairs."""
    if isinstance(prior, str):
        return prior
    return ",".join(f"{k}={float(v):g}" for k, v in prior.items())


def _weights(prior: Mapping[str, float], labels: Sequence[str], where: str) -> np.ndarray:
    import numpy as np

    weights = np.ones(len(labels))
    for name, weight in prior.items():
        if not is_known_label(str(name)):
            raise TinyferError(f"prior: unknown label {name!r}; the model's classes: "
                               f"{', '.join(labels)}")  # fmt: skip
        label = canonical_label(str(name))
        if label not in labels:
            raise TinyferError(f"{where}the prior names {label!r}, a class the model does not "
                               f"have (its classes: {', '.join(labels)})")  # fmt: skip
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise TinyferError(f"prior: the weight of {name!r} is not a number: {weight!r}")
        if not np.isfinite(weight) or weight < 0:
            raise TinyferError(f"prior: the weight of {name!r} must be finite and at least 0; "
                               f"got {weight}")  # fmt: skip
        weights[labels.index(label)] = float(weight)
    if not weights.any():
        raise TinyferError("prior: every weight is 0; at least one class must be possible")
    return weights
