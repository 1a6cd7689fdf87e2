"""Evaluate a trained model on a dataset: labels matched by name, metrics, figures."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyfer.core.config import TrainConfig, command_line
from tinyfer.core.faces.cut import FaceCut
from tinyfer.core.model_files import resolve_model_file
from tinyfer.core.prepare import Prepared, load_prepared, prepare
from tinyfer.core.priors import (
    PriorSpec,
    effective_prior,
    prior_name,
    prior_shift,
    shift_probabilities,
)
from tinyfer.core.splits import split_of_run
from tinyfer.errors import TinyferError
from tinyfer.evaluation.figures import plot_confusion, plot_misclassified
from tinyfer.evaluation.metrics import score_probabilities
from tinyfer.evaluation.report import write_eval_report
from tinyfer.inference.classifier import load_classifier

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    """Metrics over the samples whose label the model knows, and what was left out."""

    metrics: dict[str, Any]
    y_true: np.ndarray  # model label indices
    y_pred: np.ndarray
    probabilities: np.ndarray
    kept: np.ndarray  # (N,) bool over the data: the samples evaluated
    excluded: dict[str, int] = field(default_factory=dict)  # data label unknown to the model
    model_labels: tuple[str, ...] = ()

    not_evaluated: dict[str, Any] = field(default_factory=dict)  # left out when prepared

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.metrics,
            "excluded_unknown_labels": self.excluded,
            "not_evaluated": self.not_evaluated,
        }


def evaluate_arrays(
    model, labels: tuple[str, ...], data: Prepared, shift: np.ndarray | None = None
) -> Evaluation:
    """Predict ``data`` with ``model`` (anything with ``predict_proba``) whose classes are
    ``labels``, its output moved to a prior by ``shift`` (:func:`~tinyfer.core.priors.prior_shift`);
    samples of a class the model does not know are counted and left out."""
    index = {name: i for i, name in enumerate(labels)}
    data_labels = np.array(data.labels)[data.y]
    known = np.array([name in index for name in data_labels], dtype=bool)
    excluded = {str(k): int(v) for k, v in zip(*np.unique(data_labels[~known], return_counts=True))}
    if excluded:
        log.warning(
            "left out %d samples of classes the model does not know: %s",
            int((~known).sum()),
            excluded,
        )
    if not known.any():
        raise TinyferError(
            f"no sample has a label the model knows (model: {', '.join(labels)}; "
            f"data: {', '.join(data.labels)})"
        )
    y_true = np.array([index[name] for name in data_labels[known]])
    probs = shift_probabilities(model.predict_proba(data.X[known]), shift)
    y_pred = probs.argmax(1)
    return Evaluation(
        metrics=score_probabilities(y_true, probs, labels),
        y_true=y_true,
        y_pred=y_pred,
        probabilities=probs,
        kept=known,
        excluded=excluded,
        model_labels=labels,
    )


def load_eval_data(
    data: str | Path,
    *,
    img_size: int,
    preprocessing: dict,
    format: str = "auto",
    prepared_dir: str | Path = "prepared",
    progress: bool = True,
    skip_unknown: bool = False,
) -> Prepared:
    """Prepared arrays for evaluation: a ``.npz`` as is (its size must match), or a dataset
    prepared with the model's own input size and face preprocessing."""
    path = Path(data)
    if path.suffix == ".npz":
        prepared = load_prepared(path)
        if prepared.img_size != img_size:
            raise TinyferError(
                f"{path}: faces are {prepared.img_size}x{prepared.img_size}, the model takes "
                f"{img_size}x{img_size}; give the dataset folder so it is prepared at that size"
            )
        return prepared
    cfg = FaceCut.from_meta(preprocessing).data_config(
        path=str(path), format=format, img_size=img_size, skip_unknown=skip_unknown
    )
    return prepare(cfg, prepared_dir, progress=progress)


@dataclass(frozen=True)
class EvalSet:
    """The faces an evaluation uses (``faces``, the split asked for) out of ``everything``
    from that dataset; ``of_run``: the split is the run's own train/val/test."""

    everything: Prepared
    faces: Prepared
    split: str
    of_run: bool = False


def _run_config(model_path: str | Path):
    """The config of the run that ``model_path`` (its folder or its model.pt) comes from."""
    path = Path(model_path)
    folder = path if path.is_dir() else path.parent
    if path.suffix not in ("", ".pt") or not (folder / "config.yaml").is_file():
        return None
    return TrainConfig.from_yaml(folder / "config.yaml")


def eval_set(
    model_path: str | Path,
    meta,
    data: str | Path,
    *,
    split: str | None = None,
    format: str = "auto",
    prepared_dir: str | Path = "prepared",
    progress: bool = True,
    skip_unknown: bool = False,
) -> EvalSet:
    """The faces of ``data`` to evaluate the model of ``model_path`` (with ``meta``) on.

    When ``data`` is a dataset the run was trained on, it is prepared as the run prepared it
    (frames, face settings), and ``split`` None (or train / val / test where the dataset has
    no split of that name) is the run's own part: by default its held-out ``test`` faces.
    Otherwise the data is prepared with the model's input size and face preprocessing, and
    ``split`` is the dataset's split (None: ``all``)."""
    (chosen,) = eval_sets(model_path, meta, data, [split], format=format,
                          prepared_dir=prepared_dir, progress=progress,
                          skip_unknown=skip_unknown)  # fmt: skip
    return chosen


def eval_sets(
    model_path: str | Path,
    meta,
    data: str | Path,
    splits: list[str | None],
    *,
    format: str = "auto",
    prepared_dir: str | Path = "prepared",
    progress: bool = True,
    skip_unknown: bool = False,
) -> list[EvalSet]:
    """:func:`eval_set` for each of ``splits``, the data prepared (or loaded) once."""
    run = _run_config(model_path) if Path(data).suffix != ".npz" else None
    same = [i for i, p in enumerate(run.data.paths if run else []) if _same_file(p, data)]
    if not same:
        everything = load_eval_data(data, img_size=meta.img_size,
                                    preprocessing=meta.preprocessing, format=format,
                                    prepared_dir=prepared_dir, progress=progress,
                                    skip_unknown=skip_unknown)  # fmt: skip
        return [EvalSet(everything, select_split(everything, s or "all"), s or "all")
                for s in splits]  # fmt: skip
    cache = run.prepared_dir if Path(run.prepared_dir).is_dir() else prepared_dir
    whole = prepare(run.data, cache, progress=progress)
    block = np.ones(len(whole), dtype=bool)
    if len(run.data.paths) > 1:  # this dataset's rows of the run's combined data
        block = whole.sources == list(dict.fromkeys(whole.sources.tolist()))[same[0]]
    everything = whole.subset(np.flatnonzero(block))
    named = set(everything.splits.tolist()) - {""}  # this dataset's own split names
    of_run = [s is None or (s in ("train", "val", "test") and s not in named) for s in splits]
    parts = split_of_run(whole, run) if any(of_run) else {}
    out = []
    for split, is_part in zip(splits, of_run):
        if is_part:
            role = split or "test"
            part = parts[role][block[parts[role]]]
            log.info("%s is the run's own data, prepared as in training: evaluating the run's "
                     "%s part (%d faces)", data, role, len(part))  # fmt: skip
            out.append(EvalSet(everything, whole.subset(part), role, of_run=True))
            continue
        if split == "all":
            log.warning("%s is the data the run was trained on: --split all includes the "
                        "faces it was trained on; leave --split out for its held-out faces",
                        data)  # fmt: skip
        out.append(EvalSet(everything, select_split(everything, split), split))
    return out


def _same_file(a: str | Path, b: str | Path) -> bool:
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def left_out_by_prepare(data: Prepared, examples: int = 20) -> dict[str, Any]:
    """The samples preparation could not use (unreadable, no face found...): counts by kind
    and the first few, so an evaluation says what it did not see."""
    problems = data.manifest.get("problems", [])
    counts = data.manifest.get("problem_counts", {})
    return {"counts": counts, "examples": problems[:examples]} if counts else {}


def select_split(data: Prepared, split: str) -> Prepared:
    if split == "all":
        return data
    names = sorted(set(data.splits.tolist()) - {""})
    if split not in names:
        raise TinyferError(f"split {split!r} not in the data; it has: {', '.join(names) or 'none'}")
    return data.subset(np.flatnonzero(data.splits == split))


def copies_in(data: Prepared, reference: Prepared) -> np.ndarray:
    """``(N,)`` bool over ``data``: the faces with a pixel-identical copy in ``reference``
    (FER2013's test splits share 568 images with Training)."""
    seen = {face.tobytes() for face in reference.X}
    return np.array([face.tobytes() in seen for face in data.X], dtype=bool)


def evaluate(
    model_path: str | Path,
    data: str | Path,
    *,
    format: str = "auto",
    split: str | None = None,
    out_dir: str | Path | None = None,
    prepared_dir: str | Path = "prepared",
    progress: bool = True,
    exclude_copies_of: str | None = None,
    skip_unknown: bool = False,
    prior: PriorSpec | None = None,
) -> tuple[Evaluation, Path]:
    """Evaluate a model file (or run directory) on a dataset (``split`` as
    :func:`eval_set` chooses it); writes metrics.json, confusion.png and misclassified.png
    to ``out_dir``. ``exclude_copies_of`` (a split, e.g. ``Training``) leaves out the faces
    that have a pixel-identical copy in that split. ``prior``: the class prior the predictions
    assume, as :class:`~tinyfer.inference.predict.Recognizer`'s (default: balanced)."""
    model_file = resolve_model_file(model_path)
    model, meta = load_classifier(model_file)
    prior = effective_prior(prior, meta.class_prior)
    shift = prior_shift(prior, meta.labels, meta.class_prior, source=str(model_file))
    chosen = eval_set(model_path, meta, data, split=split, format=format,
                      prepared_dir=prepared_dir, progress=progress,
                      skip_unknown=skip_unknown)  # fmt: skip
    everything, prepared, split = chosen.everything, chosen.faces, chosen.split
    copies = 0
    if exclude_copies_of:
        mask = copies_in(prepared, select_split(everything, exclude_copies_of))
        copies = int(mask.sum())
        log.info("left out %d faces with a copy in %s", copies, exclude_copies_of)
        prepared = prepared.subset(np.flatnonzero(~mask))
    result = evaluate_arrays(model, meta.labels, prepared, shift)
    result.not_evaluated = left_out_by_prepare(everything)
    if out_dir is None:
        # Under the current folder: the model's own may be a read-only installed package.
        name = model_file.parent.name if model_file.stem == "model" else model_file.stem
        out_dir = Path("evaluations") / f"{name}-{Path(data).stem}-{split}"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "model": str(model_file),
        "data": str(data),
        "split": split,
        "split_of_run": chosen.of_run,
        "prior": prior_name(prior),
        "excluded_copies": {"of": exclude_copies_of, "n": copies} if exclude_copies_of else None,
        "command": command_line(),
        **result.to_dict(),
    }
    (out_dir / "metrics.json").write_text(json.dumps(report, indent=2))
    title = f"{Path(data).name} ({split}), n={result.metrics['n']}"
    plot_confusion(
        np.array(result.metrics["confusion"]), meta.labels, out_dir / "confusion.png", title=title
    )
    wrong = np.flatnonzero(result.y_true != result.y_pred)
    plot_misclassified(
        prepared.X[result.kept][wrong],
        result.y_true[wrong],
        result.y_pred[wrong],
        result.probabilities[wrong],
        meta.labels,
        out_dir / "misclassified.png",
    )
    write_eval_report(out_dir, report)
    return result, out_dir
