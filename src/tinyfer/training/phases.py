"""Run the thesis's two phases: (1) the encoder trained as an autoencoder, (2) the whole model
trained to classify, initialised from phase 1 or at random. Everything a run produces goes to
its run directory: config, checkpoints, histories, figures, metrics, the final model."""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from tinyfer.core.config import ClassifyConfig, TrainConfig, command_line, from_dict, to_dict
from tinyfer.core.faces.cut import FaceCut
from tinyfer.core.inputs import model_input
from tinyfer.core.model_files import ModelMeta
from tinyfer.core.prepare import Prepared, prepare, with_replay
from tinyfer.core.priors import ClassPrior, prior_shift, shift_probabilities
from tinyfer.core.splits import split_of_run
from tinyfer.errors import TinyferError
from tinyfer.evaluation.calibration import fit_adjustments
from tinyfer.evaluation.figures import plot_history, plot_reconstructions
from tinyfer.evaluation.metrics import score_probabilities
from tinyfer.training.checkpoint import (
    load_encoder_into,
    load_model,
    load_pretrained,
    save_encoder,
    save_model,
)
from tinyfer.training.data import FaceDataModule
from tinyfer.training.distill import distilled_targets, teacher_probabilities
from tinyfer.training.export import export_model, record_in_onnx
from tinyfer.training.fit import best_weights, fit, images_per_s, make_trainer
from tinyfer.training.models import FerNet, count_parameters, create_model
from tinyfer.training.modules import AutoencoderModule, ClassifierModule
from tinyfer.training.run import check_run_dir, default_run_dir, write_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    """What :func:`train` leaves: the run directory, the final model file and that model
    (best on validation, adjusted), per-epoch history and the metrics (validation and test)."""

    run_dir: Path
    checkpoint: Path
    model: FerNet
    history: list[dict[str, Any]]
    metrics: dict[str, Any]


def _fit_phase(cfg: TrainConfig, run_dir: Path, name: str, title: str, module, dm, phase,
               monitor: str, mode: str, resume: bool):  # fmt: skip
    """Fit ``module`` for one phase (``phase``: its epochs and patience), resuming from the
    phase's last checkpoint; ``(trainer, best-checkpoint callback, history, seconds)``."""
    trainer, best, epochs = make_trainer(cfg, run_dir, name, phase.epochs, monitor, mode,
                                         phase.patience)  # fmt: skip
    log.info("phase %s: model %s, %d epochs, in %s", title, cfg.model.name, phase.epochs, run_dir)
    start = time.perf_counter()
    fit(trainer, module, dm, run_dir / "checkpoints" / name / "last.ckpt", resume)
    return trainer, best, epochs, time.perf_counter() - start


def _write_history(rows: list[dict], path: Path) -> None:
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k != "epoch", k))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def load_data(cfg: TrainConfig) -> Prepared:
    return prepare(cfg.data, cfg.prepared_dir, progress=cfg.trainer.progress)


@dataclass
class Setup:
    """What a phase works on: the run folder, the prepared faces, their train/val/test
    indices, the data module over them, and the model."""

    run_dir: Path | None
    data: Prepared
    parts: dict[str, np.ndarray]
    dm: Any
    model: Any


def _begin(
    cfg: TrainConfig, out_dir, resume: bool, data: Prepared | None, parts: dict | None
) -> Setup:
    """Start (or resume) a run directory, seed everything, and build data and model. The
    config is written once the data is ready: a failed preparation leaves no run behind."""
    run_dir = Path(out_dir) if out_dir else default_run_dir(cfg)
    check_run_dir(cfg, run_dir, resume)
    data = data if data is not None else load_data(cfg)
    write_config(cfg, run_dir)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    return dataclasses.replace(_setup(cfg, data, parts), run_dir=run_dir)


def _setup(cfg: TrainConfig, data: Prepared | None, parts: dict | None) -> Setup:
    data = data if data is not None else load_data(cfg)
    if parts is None:
        parts = split_of_run(data, cfg)
    if cfg.data.replay:
        data, parts = with_replay(data, parts, cfg.data, cfg.prepared_dir, seed=cfg.seed,
                                  progress=cfg.trainer.progress)  # fmt: skip
    soft = cfg.classify.soft_labels and data.soft.shape[1] > 0
    if soft:
        log.info("training on soft labels (each face's vote distribution)")
    targets = data.soft if soft else data.y
    if cfg.classify.teachers:
        c, train = cfg.classify, parts["train"]
        teacher = teacher_probabilities(c.teachers, data.X[train], data.labels)
        targets = distilled_targets(targets, teacher, c.distill, train, len(data.labels))
        log.info("distilling from %s: their probabilities (face and mirror image) are %g of "
                 "each training target", ", ".join(c.teachers), c.distill)  # fmt: skip
    dm = FaceDataModule(
        data.X,
        targets,
        parts,
        valid=data.valid,
        augment=cfg.augment,
        batch_size=cfg.trainer.batch_size,
        num_workers=cfg.trainer.num_workers,
        balance=cfg.classify.class_balance,
        sources=data.sources,
        source_weights=_source_weights(cfg, data),
        seed=cfg.seed,
    )
    model = create_model(
        cfg.model.name, len(data.labels), img_size=data.img_size, dropout=cfg.model.dropout
    )
    return Setup(None, data, parts, dm, model)


def _source_weights(cfg: TrainConfig, data: Prepared) -> dict[str, float] | None:
    """Dataset name -> its share of the training draws (``data.weights``); None: by size."""
    names = [s["name"] for s in data.manifest.get("sources", [])]
    if not cfg.data.weights or len(names) != len(cfg.data.weights):
        return None  # one dataset, or data given without its datasets' names
    return dict(zip(names, cfg.data.weights))


def _split_metrics(model, data: Prepared, parts, prior: ClassPrior) -> dict[str, Any]:
    """Validation and test metrics under the training prior (the stored output); with several
    datasets, also each one's (``by_source``); and under the balanced prior."""
    out = {}
    balanced = prior_shift("balanced", data.labels, prior)
    for role in ("val", "test"):
        idx = parts.get(role)
        if idx is None or not len(idx):
            continue
        probs = model.predict_proba(data.X[idx])
        out[role] = score_probabilities(data.y[idx], probs, data.labels)
        names = np.unique(data.sources[idx])
        if len(names) > 1:
            of = data.sources[idx]
            out[role]["by_source"] = {
                str(name): score_probabilities(
                    data.y[idx][of == name], probs[of == name], data.labels
                )
                for name in names
            }
        moved = shift_probabilities(probs, balanced)
        out[role]["balanced_prior"] = score_probabilities(data.y[idx], moved, data.labels)
    return out


def adjust(
    run_dir: str | Path, *, class_balance: str | None = None, calibrate: bool | None = None
) -> dict[str, Any]:
    """Fit a finished run's stored adjustments again on its validation split (logit
    adjustment with ``class_balance="logit_adjustment"``, the temperature with ``calibrate``;
    None keeps the run's setting) and rewrite its ``model.pt``, ``model.onnx`` and
    ``metrics.json``: the weights are not touched. Returns the new metrics."""
    run_dir = Path(run_dir)
    model_file, metrics_file = run_dir / "model.pt", run_dir / "metrics.json"
    if not model_file.is_file() or not metrics_file.is_file():
        raise TinyferError(f"{run_dir}: not a finished run (no model.pt and metrics.json)")
    cfg = TrainConfig.from_yaml(run_dir / "config.yaml")
    if class_balance is not None:
        cfg.classify.class_balance = class_balance
    if calibrate is not None:
        cfg.classify.calibrate = calibrate
    model, meta = load_model(model_file)
    s = _setup(cfg, None, None)
    data, parts, dm = s.data, s.parts, s.dm
    model.logit_bias, model.temperature = None, 1.0
    metrics = json.loads(metrics_file.read_text())
    metrics["adjustments"] = _fit_adjustments(cfg, model, dm, data, parts)
    prior = _class_prior(model, dm, data)
    metrics.update(_split_metrics(model, data, parts, prior))
    metrics["adjusted_by"] = command_line()
    meta = dataclasses.replace(meta, config=to_dict(cfg), class_prior=prior,
                               metrics={k: metrics.get(k) for k in ("val", "test")})  # fmt: skip
    save_model(model_file, model, meta)
    metrics_file.write_text(json.dumps(metrics, indent=2))
    if (run_dir / "model.onnx").is_file():  # the adjustments live in the graph too
        _export(model, meta, model_file, data, parts)
    return metrics


def _class_prior(model: FerNet, dm, data: Prepared) -> ClassPrior:
    """What the model file records for deployment priors (after its adjustments are set)."""
    return ClassPrior.of(dm.class_prior(len(data.labels)), model.logit_bias, model.temperature)


def record_class_prior(model_file: str | Path) -> ClassPrior:
    """Record in a model.pt made before deployment priors (and in the ``.onnx`` beside it) its
    training class frequencies, computed from its own config's training data; weights and
    adjustments untouched, so its ``training`` output stays as it was."""
    model_file = Path(model_file)
    model, meta = load_model(model_file)
    cfg = from_dict(TrainConfig, meta.config, where=str(model_file))
    s = _setup(cfg, None, None)
    meta = dataclasses.replace(meta, class_prior=_class_prior(model, s.dm, s.data))
    save_model(model_file, model, meta)
    if model_file.with_suffix(".onnx").is_file():
        record_in_onnx(model_file.with_suffix(".onnx"), meta)
    return meta.class_prior


def _fit_adjustments(cfg: TrainConfig, model, dm, data: Prepared, parts) -> dict | None:
    """Class balance by logit adjustment and a temperature, fitted on the validation split
    and set on ``model``; None (nothing set) without a validation split."""
    c, val = cfg.classify, parts.get("val")
    if val is None or not len(val) or (c.class_balance != "logit_adjustment" and not c.calibrate):
        return None
    found = fit_adjustments(
        model.logits(data.X[val]),
        data.y[val],
        dm.class_prior(len(data.labels)),
        balance=c.class_balance == "logit_adjustment",
        calibrate=c.calibrate,
    )
    model.logit_bias, model.temperature = found["logit_bias"], found["temperature"]
    log.info("adjustments on the validation split: temperature %.3f, logit adjustment tau %s, "
             "ECE %.4f -> %.4f", found["temperature"], found.get("tau", "off"),
             found["ece_before"], found["ece_after"])  # fmt: skip
    return found


def _run_pretrain(cfg: TrainConfig, setup: Setup, resume: bool) -> dict[str, Any]:
    """Phase 1 (it trains ``setup.model.encoder``, and leaves its best weights in it);
    writes encoder.pt, pretrain_history.csv and reconstructions.png."""
    run_dir, model, dm, data, parts = setup.run_dir, setup.model, setup.dm, setup.data, setup.parts
    encoder_file = run_dir / "encoder.pt"
    summary_file = run_dir / "pretrain.json"
    if resume and encoder_file.is_file() and summary_file.is_file():
        log.info("phase 1 already finished: %s", encoder_file)
        load_encoder_into(model.encoder, encoder_file)
        return json.loads(summary_file.read_text())
    p = cfg.pretrain
    module = AutoencoderModule(
        model.encoder, model.make_decoder(), p, cfg.augment, cfg.trainer.channels_last
    )
    trainer, best, epochs, seconds = _fit_phase(
        cfg, run_dir, "pretrain", "1 (autoencoder)", module, dm, p, "val_loss", "min", resume
    )
    module.load_state_dict(best_weights(best.best_model_path, ""))
    history = epochs.rows
    summary = {
        "epochs_run": len(history),
        "best_val_loss": float(best.best_model_score)
        if best.best_model_score is not None
        else None,
        "seconds": round(seconds, 3),  # this session's, when resumed
        "images_per_s": images_per_s(dm.train_size, len(history) - epochs.restored, seconds),
        "loss": p.loss,
    }
    if trainer.is_global_zero:
        save_encoder(encoder_file, model.encoder)
        _write_history(history, run_dir / "pretrain_history.csv")
        faces = data.X[parts["val"][:8]]
        module.eval().to(memory_format=torch.contiguous_format)
        with torch.no_grad():
            x = torch.from_numpy(model_input(faces))
            recon = module(x).squeeze(1).numpy()
        module.train()
        plot_reconstructions(faces / 255.0, recon, run_dir / "reconstructions.png")
        summary_file.write_text(json.dumps(summary, indent=2))
    return summary


def pretrain(
    cfg: TrainConfig,
    out_dir: str | Path | None = None,
    *,
    resume: bool = False,
    data: Prepared | None = None,
    parts: dict | None = None,
) -> Path:
    """Run phase 1 alone; returns the encoder file."""
    setup = _begin(cfg, out_dir, resume, data, parts)
    _run_pretrain(cfg, setup, resume)
    return setup.run_dir / "encoder.pt"


def train(
    cfg: TrainConfig,
    out_dir: str | Path | None = None,
    *,
    resume: bool = False,
    data: Prepared | None = None,
    parts: dict | None = None,
    onnx: bool = True,
) -> RunResult:
    """Train one model by ``cfg``: the encoder of ``classify.pretrained`` if ``classify.init``
    is ``pretrained``; phase 1 if ``classify.init`` is ``autoencoder`` or ``pretrain.adapt``;
    then phase 2.

    ``data`` and ``parts`` (index arrays for train/val/test) may be given, as experiments do;
    otherwise the data is prepared from ``cfg.data`` and split by ``cfg.split``. With ``onnx``
    the run also holds ``model.onnx``, so that predicting with it needs no torch.
    """
    setup = _begin(cfg, out_dir, resume, data, parts)
    run_dir, data, parts, dm, model = (setup.run_dir, setup.data, setup.parts, setup.dm,
                                       setup.model)  # fmt: skip
    log.info(
        "model %s: %d parameters; train/val/test: %s",
        cfg.model.name,
        count_parameters(model),
        {k: len(v) for k, v in parts.items()},
    )

    if cfg.classify.init == "pretrained":
        _initialise(cfg.classify, model, data.labels)
    pre = None
    if cfg.classify.init == "autoencoder" or cfg.pretrain.adapt:
        # Phase 1 trains model.encoder itself (from random or pretrained weights) and leaves
        # its best weights in it.
        pre = _run_pretrain(cfg, setup, resume)

    c = cfg.classify
    weights = _class_weights(dm, len(data.labels)) if c.class_balance == "weights" else None
    module = ClassifierModule(model, c, cfg.augment, weights, cfg.trainer.channels_last)
    trainer, best, epochs, seconds = _fit_phase(
        cfg, run_dir, "classify", "2 (classify)", module, dm, c, "val_acc", "max", resume
    )
    model.load_state_dict(best_weights(best.best_model_path, "model."))
    model.to(memory_format=torch.contiguous_format).eval()
    history = epochs.rows
    adjustments = _fit_adjustments(cfg, model, dm, data, parts)

    metrics: dict[str, Any] = {
        "model": cfg.model.name,
        "parameters": count_parameters(model),
        "labels": list(data.labels),
        "split_sizes": {k: len(v) for k, v in parts.items()},
        "train_size_after_expansion": dm.train_size,
        "command": command_line(),
        "world_size": trainer.world_size,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "classify": {
            "epochs_run": len(history),
            "seconds": round(seconds, 3),  # this session's, when resumed
            "images_per_s": images_per_s(dm.train_size, len(history) - epochs.restored, seconds),
            "best_epoch": max(history, key=lambda r: r.get("val_acc", -1))["epoch"]
            if history
            else None,  # counted from 1, as in the log
        },
        "pretrain": pre,
        "adjustments": adjustments,
    }
    prior = _class_prior(model, dm, data)
    metrics.update(_split_metrics(model, data, parts, prior))
    checkpoint = run_dir / "model.pt"
    if trainer.is_global_zero:
        _save_run(cfg, run_dir, model, data, parts, metrics, history, prior, onnx)
    return RunResult(run_dir, checkpoint, model, history, metrics)


def _initialise(c: ClassifyConfig, model: FerNet, labels) -> None:
    """``classify.pretrained``'s encoder (and its head's rows, with ``pretrained_head``)."""
    new = load_pretrained(model, labels, c.pretrained, head=c.pretrained_head)
    log.info("initialised from %s: the encoder%s", c.pretrained,
             f"; a new head row for {', '.join(new)} (a class it does not know)"
             if c.pretrained_head and new else
             "" if c.pretrained_head else ", with a new head")  # fmt: skip


def _class_weights(dm: FaceDataModule, classes: int) -> torch.Tensor:
    """Loss weights inverse to the training faces' class frequencies (mean 1)."""
    counts = dm.class_counts(classes).astype(np.float64)
    return torch.tensor(counts.sum() / (len(counts) * np.maximum(counts, 1)), dtype=torch.float32)


def _save_run(cfg: TrainConfig, run_dir: Path, model: FerNet, data: Prepared, parts,
              metrics: dict, history: list, prior, onnx: bool) -> None:  # fmt: skip
    """What a run leaves: model.pt (and model.onnx), history.csv, curves.png, metrics.json."""
    meta = ModelMeta(
        name=cfg.model.name,
        labels=data.labels,
        img_size=data.img_size,
        in_chans=1,
        preprocessing=FaceCut.of(cfg.data, data.manifest.get("detector")).to_meta(),
        config=to_dict(cfg),
        metrics={k: metrics.get(k) for k in ("val", "test")},
        class_prior=prior,
    )
    checkpoint = save_model(run_dir / "model.pt", model, meta)
    _write_history(history, run_dir / "history.csv")
    plot_history(history, run_dir / "curves.png", title=f"{cfg.model.name}: phase 2")
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if onnx:
        _export(model, meta, checkpoint, data, parts)


def _export(model: FerNet, meta: ModelMeta, checkpoint: Path, data: Prepared, parts) -> None:
    """``model.onnx`` of the model just saved as ``checkpoint``, beside it, checked against
    torch on validation faces. A failed export costs only that file: the run and its model.pt
    stand."""
    faces = data.X[parts["val"][:64]] if len(parts["val"]) else None
    try:
        result = export_model(model, meta, checkpoint.with_suffix(".onnx"), check_faces=faces)
    except Exception as exc:  # an exporter fault costs the file, not the run
        log.warning("model.onnx not written (%s); `tinyfer export` can retry. Prediction "
                    "with this run uses model.pt (and torch)", exc)  # fmt: skip
        return
    log.info("model.onnx written (largest difference from torch on %d validation faces: "
             "%.1e)", 0 if faces is None else len(faces), result.max_abs_diff or 0.0)  # fmt: skip
