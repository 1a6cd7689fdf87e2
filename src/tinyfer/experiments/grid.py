"""``tinyfer experiment``: every variant of a grid trained and tested on the same
subject-grouped folds (and repeated seeds), resumable, then aggregated and reported."""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from tinyfer.core.config import (
    EXECUTION_KEYS,
    TrainConfig,
    command_line,
    from_dict,
    set_dotted,
    to_dict,
)
from tinyfer.core.io import atomic_path
from tinyfer.core.prepare import Prepared, prepare
from tinyfer.core.progress import default_workers, track
from tinyfer.core.splits import (
    leave_one_subject_out,
    random_kfold,
    subject_kfold,
    training_rows,
    validation_split,
)
from tinyfer.errors import ConfigError, TinyferError
from tinyfer.evaluation.metrics import score_probabilities
from tinyfer.experiments.executors import run_here, run_processes, run_ray
from tinyfer.experiments.report import write_report
from tinyfer.experiments.stats import judge, mcnemar, paired_test, summary
from tinyfer.training.phases import train
from tinyfer.training.run import config_changes, write_config

log = logging.getLogger(__name__)

COMMAND_FILE = "command.txt"  # the command that started the experiment, for its report


@dataclass(frozen=True)
class Variant:
    name: str
    settings: dict[str, Any]  # grid key -> value
    cfg: TrainConfig


def make_variants(cfg: TrainConfig) -> list[Variant]:
    """Every combination of the grid's values, each as a full, checked TrainConfig."""
    grid = cfg.experiment.grid
    if not grid:
        raise ConfigError("experiment.grid is empty: give at least one key with values")
    keys = list(grid)
    out = []
    for values in itertools.product(*(grid[k] for k in keys)):
        tree = to_dict(cfg)
        values = tuple(_augment_value(k, v) for k, v in zip(keys, values))
        for key, value in zip(keys, values):
            if key == "augment":
                if value not in ("on", "off"):
                    raise ConfigError(f"experiment.grid.augment: {value!r}; use on or off")
                if value == "off":
                    tree["augment"].update(online=False, offline_copies=0)
            else:
                try:
                    set_dotted(tree, key, value, create=False)
                except (KeyError, ConfigError):
                    raise ConfigError(f"experiment.grid: {key!r} names no config key") from None
        name = ",".join(f"{k.split('.')[-1]}={v}" for k, v in zip(keys, values))
        out.append(Variant(name, dict(zip(keys, values)), from_dict(TrainConfig, tree)))
    return out


def make_folds(
    data: Prepared, cfg: TrainConfig, repeat: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The folds of one repeat: subject-grouped (refused with numbers when impossible), one
    per subject, or by image."""
    k, seed = cfg.experiment.folds, cfg.seed + repeat
    if cfg.experiment.protocol == "random":
        return random_kfold(data.y, k, seed=seed)
    if cfg.experiment.protocol == "loso":
        return leave_one_subject_out(data.subjects)
    return subject_kfold(data.y, data.subjects, k, seed=seed, labels=data.labels)


def fold_dir(exp_dir: Path, variant: str, repeat: int, fold: int) -> Path:
    return exp_dir / "runs" / variant / f"repeat{repeat}" / f"fold{fold:02d}"


def _protocol(data: Prepared, cfg: TrainConfig, all_folds) -> dict[str, Any]:
    return {
        "dataset": data.manifest.get("root"),
        "format": data.manifest.get("format"),
        "frames": f"{cfg.data.frames} ({cfg.data.n_frames} per take)"
        if data.manifest.get("format") == "mug"
        else None,
        "samples": len(data),
        "subjects": len(set(data.subjects.tolist()) - {""}),
        "labels": list(data.labels),
        "protocol": cfg.experiment.protocol,
        "folds": len(all_folds[0]),
        "repeats": cfg.experiment.repeats,
        "seeds": [cfg.seed + r for r in range(cfg.experiment.repeats)],
        "torch_threads_per_training": training_threads(cfg.experiment),
        "fold_sizes": [[len(te) for _, te in folds] for folds in all_folds],
        "subjects_per_fold": [
            [len(set(data.subjects[te].tolist())) for _, te in folds] for folds in all_folds
        ],
    }


@dataclass(frozen=True)
class FoldTask:
    """One training of the grid: a variant on one fold of one repeat, trained in ``out``."""

    variant: Variant
    repeat: int
    fold: int
    out: Path

    def __str__(self) -> str:
        return f"{self.variant.name}, repeat {self.repeat}, fold {self.fold}"


def _start(exp_dir: Path, cfg: TrainConfig) -> None:
    """Write the experiment's config; refuse a folder holding one that trains otherwise."""
    saved = exp_dir / "config.yaml"
    if saved.is_file():
        changed = config_changes(yaml.safe_load(saved.read_text()), cfg,
                                 allowed=(*EXECUTION_KEYS, "trainer.progress"))  # fmt: skip
        if changed:
            raise ConfigError(f"{exp_dir} holds an experiment with another config ({changed}); "
                              "use another --out")  # fmt: skip
    write_config(cfg, exp_dir)
    (exp_dir / COMMAND_FILE).write_text(command_line() + "\n")


class _InTraining:
    """The trainings running now, kept in a file, so that the next run names those a crash or
    a kill of this one lost."""

    def __init__(self, path: Path):
        self.path, self.names = path, []

    def start(self, task: FoldTask) -> None:
        self.names.append(str(task))
        self.path.write_text(json.dumps(self.names))
        log.info("%s: training in %s", task, task.out)

    def end(self, task: FoldTask) -> None:
        self.names.remove(str(task))
        self.path.write_text(json.dumps(self.names))


def training_threads(exp) -> int:
    """Torch threads of each training: ``resources.cpus``, or for 0 (configs made before it
    defaulted to 1) this machine's cores divided among the jobs, 1 on Ray."""
    if exp.resources.cpus:
        return exp.resources.cpus
    return 1 if exp.executor == "ray" else max(1, default_workers() // exp.jobs)


def _execute(cfg: TrainConfig, tasks: list[FoldTask], shared: tuple, on_start):
    """The executor ``cfg.experiment`` names, over ``tasks``; yields their outcomes."""
    exp = cfg.experiment
    cpus = training_threads(exp)
    if exp.executor == "ray" or exp.jobs > 1:  # workers' bars would fight over the terminal
        data, run_cfg, folds = shared
        quiet = dataclasses.replace(run_cfg.trainer, progress=False)
        shared = (data, dataclasses.replace(run_cfg, trainer=quiet), folds)
    if exp.executor == "ray":
        return run_ray(_fold_task, tasks, shared, address=exp.address,
                       num_cpus=exp.jobs * cpus if exp.jobs > 1 else None, cpus=cpus,
                       gpus=exp.resources.gpus, retries=exp.retries,
                       on_start=on_start)  # fmt: skip
    if exp.jobs == 1:
        return run_here(_fold_task, tasks, shared, threads=cpus, on_start=on_start)
    return run_processes(_fold_task, tasks, shared, jobs=exp.jobs, threads=cpus,
                         retries=exp.retries, on_start=on_start)  # fmt: skip


def run_experiment(cfg: TrainConfig, exp_dir: str | Path, *, progress: bool = True) -> Path:
    """Train and test every variant on every fold; finished folds are never re-run.

    The trainings run where ``cfg.experiment`` says (here, in local processes, or on Ray);
    each fold's predictions are saved as it finishes. Returns the experiment directory, which
    then holds ``results.json`` and the report.
    """
    if cfg.experiment.executor == "ray":
        import ray  # noqa: F401  (without the extra, said before any work)

    exp_dir = Path(exp_dir)
    variants = make_variants(cfg)
    data = prepare(cfg.data, cfg.prepared_dir, progress=progress)
    all_folds = [make_folds(data, cfg, r) for r in range(cfg.experiment.repeats)]
    _start(exp_dir, cfg)
    protocol = _protocol(data, cfg, all_folds)
    (exp_dir / "protocol.json").write_text(json.dumps(protocol, indent=2))

    tasks = [
        FoldTask(v, r, f, fold_dir(exp_dir, v.name, r, f))
        for r, folds in enumerate(all_folds)
        for f in range(len(folds))
        for v in variants
    ]
    todo = [t for t in tasks if not (t.out / "predictions.npz").is_file()]
    running = exp_dir / "running.json"
    if running.is_file():
        lost = json.loads(running.read_text())
        log.warning(
            "the last run of this experiment stopped while training %s (a crash or a kill); "
            "trained again now, finished folds are kept",
            "; ".join(lost),
        )
    if todo:
        log.info("%d of %d trainings to run (%s executor)", len(todo), len(tasks),
                 cfg.experiment.executor)  # fmt: skip
    failed, durations = [], []
    in_training = _InTraining(running)
    outcomes = _execute(cfg, todo, (data, cfg, all_folds), in_training.start)
    for n, done in enumerate(
        track(outcomes, total=len(todo), description="trainings", enabled=progress), start=1
    ):
        in_training.end(done.item)
        if done.error is not None:
            log.error("%s failed: %s", done.item, done.error)
            failed.append(f"{done.item}: {done.error}")
            continue
        _save_predictions(done.item.out, done.result)
        durations.append(done.seconds)
        left = np.mean(durations) * (len(todo) - n) / cfg.experiment.jobs
        log.info("[%d/%d] %s done in %.0f s; ETA %s", n, len(todo), done.item, done.seconds,
                 time.strftime("%H:%M:%S", time.gmtime(left)))  # fmt: skip
    running.unlink(missing_ok=True)
    if failed:
        raise TinyferError(
            f"{len(failed)} of {len(todo)} trainings failed: "
            + "; ".join(failed)
            + f". The finished ones are kept: the same command with --out {exp_dir} runs "
            "only the rest"
        )
    results = aggregate(exp_dir, data, variants, cfg, [len(folds) for folds in all_folds])
    runs = {v.name: [t.out for t in tasks if t.variant is v] for v in variants}
    command = (exp_dir / COMMAND_FILE).read_text().strip()
    write_report(exp_dir, results, protocol, cfg, runs, command)
    return exp_dir


def _fold_task(shared: tuple, task: FoldTask) -> dict[str, np.ndarray]:
    data, cfg, all_folds = shared
    return _run_fold(data, cfg, task.variant, all_folds[task.repeat][task.fold], task.out,
                     task.repeat)  # fmt: skip


def _run_fold(data, cfg, variant: Variant, fold, out: Path, repeat: int) -> dict[str, np.ndarray]:
    """Train ``variant`` on one fold (resuming a training left half done) and predict its
    test faces."""
    train_idx, test_idx = fold
    by_image = cfg.experiment.protocol == "random"
    groups = np.full(len(data), "") if by_image else data.subjects
    tr, va = validation_split(
        train_idx, data.y, groups, cfg.split.val_fraction, seed=cfg.seed + repeat
    )
    tr = training_rows(tr, data, variant.cfg.split, seed=cfg.seed + repeat)
    tree = to_dict(variant.cfg)
    tree["trainer"]["progress"] = cfg.trainer.progress
    vcfg = from_dict(TrainConfig, {**tree, "seed": cfg.seed + repeat})
    parts = {"train": tr, "val": va, "test": test_idx}
    result = train(vcfg, out, resume=True, data=data, parts=parts, onnx=False)
    probs = result.model.predict_proba(data.X[test_idx])
    if not cfg.experiment.keep_checkpoints:
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    return {
        "train_idx": tr,
        "val_idx": va,
        "test_idx": test_idx,
        "y_true": data.y[test_idx],
        "y_pred": probs.argmax(1),
        "probabilities": probs,
    }


def _save_predictions(out: Path, predictions: dict[str, np.ndarray]) -> None:
    """Written by the driver, so that on a cluster without a shared folder the grid still
    knows which folds are done."""
    with atomic_path(out / "predictions.npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, **predictions)


def load_predictions(exp_dir: Path, variant: str, repeat: int, fold: int) -> dict[str, np.ndarray]:
    with np.load(fold_dir(exp_dir, variant, repeat, fold) / "predictions.npz") as f:
        return {k: f[k] for k in f.files}


def aggregate(
    exp_dir: Path, data: Prepared, variants: list[Variant], cfg: TrainConfig, n_folds: list[int]
) -> dict:
    """Per-variant fold scores, summaries and pooled confusion; paired comparisons
    (``n_folds``: the folds of each repeat)."""
    exp = cfg.experiment
    per_variant: dict[str, Any] = {}
    correct: dict[str, np.ndarray] = {}
    for v in variants:
        accs, f1s, pooled_true, pooled_probs = [], [], [], []
        hits = np.zeros((exp.repeats, len(data)), dtype=bool)
        for r in range(exp.repeats):
            seen = np.zeros(len(data), dtype=int)
            for f in range(n_folds[r]):
                p = load_predictions(exp_dir, v.name, r, f)
                m = score_probabilities(p["y_true"], p["probabilities"], data.labels)
                accs.append(m["accuracy"])
                f1s.append(m["macro_f1"])
                pooled_true.append(p["y_true"])
                pooled_probs.append(p["probabilities"])
                seen[p["test_idx"]] += 1
                hits[r, p["test_idx"]] = p["y_true"] == p["y_pred"]
            if not (seen == 1).all():
                raise RuntimeError(
                    f"{v.name}, repeat {r}: a sample was tested "
                    f"{int(seen.max())} times or never; the folds are broken"
                )
        pooled = score_probabilities(
            np.concatenate(pooled_true), np.concatenate(pooled_probs), data.labels
        )
        correct[v.name] = hits.ravel()
        per_variant[v.name] = {
            "settings": v.settings,
            "fold_accuracy": accs,
            "fold_macro_f1": f1s,
            "accuracy": summary(np.array(accs)),
            "macro_f1": summary(np.array(f1s)),
            "pooled": pooled,
        }
    comparisons = []
    names = [v.name for v in variants]
    for a, b in itertools.combinations(names, 2):
        comparisons.append(
            {
                "a": a,
                "b": b,
                "accuracy": paired_test(
                    per_variant[a]["fold_accuracy"], per_variant[b]["fold_accuracy"]
                ),
                "macro_f1": paired_test(
                    per_variant[a]["fold_macro_f1"], per_variant[b]["fold_macro_f1"]
                ),
                "mcnemar": mcnemar(correct[a], correct[b]),
            }
        )
    results = {
        "variants": per_variant,
        "comparisons": comparisons,
        "claims": test_claims(cfg.experiment.claims, variants, per_variant, comparisons),
    }
    (exp_dir / "results.json").write_text(json.dumps(results, indent=2))
    return results


def _augment_value(key: str, value: Any) -> Any:
    """YAML reads a bare on/off as true/false: for ``augment`` both spellings mean the same."""
    return {True: "on", False: "off"}.get(value, value) if key == "augment" else value


def test_claims(claims, variants: list[Variant], per_variant, comparisons) -> list[dict]:
    """Each claim judged on every pair of variants it names (A with its twin B, the other grid
    keys equal): the per-fold accuracy differences, their effect and CI, and the verdict of
    :func:`~tinyfer.experiments.stats.judge`. Claims whose key the grid does not vary are left
    out."""
    out = []
    for claim in claims:
        a, b = (_augment_value(claim.key, v) for v in (claim.a, claim.b))
        if not any(v.settings.get(claim.key) == a for v in variants) or not any(
            v.settings.get(claim.key) == b for v in variants
        ):
            log.info("claim %r not tested: the grid has no %s=%s and %s=%s pair", claim.name,
                     claim.key, a, claim.key, b)  # fmt: skip
            continue
        for v in variants:
            if v.settings.get(claim.key) != a:
                continue
            others = {k: x for k, x in v.settings.items() if k != claim.key}
            twin = next((w for w in variants if w.settings == {**others, claim.key: b}), None)
            if twin is None:
                continue
            d = np.subtract(per_variant[v.name]["fold_accuracy"],
                            per_variant[twin.name]["fold_accuracy"])  # fmt: skip
            pair = next(c for c in comparisons if {c["a"], c["b"]} == {v.name, twin.name})
            out.append({"claim": claim.name, "expect": claim.expect, "with": v.name,
                        "against": twin.name, "differences": d.tolist(),
                        **judge(d, claim.expect, claim.margin),
                        "p_value": pair["accuracy"]["p_value"], "test": pair["accuracy"]["test"],
                        "mcnemar_p": pair["mcnemar"]["p_value"]})  # fmt: skip
    return out
