"""Lightning's side of a phase: the Trainer (checkpoints best and last, early stopping, the
history callback, a bar on a terminal), fitting with resume from a checkpoint that loads,
and the best epoch's weights."""

from __future__ import annotations

import faulthandler
import logging
import sys
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import TensorBoardLogger

from tinyfer.core.config import TrainConfig
from tinyfer.errors import TinyferError

log = logging.getLogger(__name__)


def make_trainer(
    cfg: TrainConfig, run_dir: Path, phase: str, epochs: int, monitor: str, mode: str, patience: int
):
    t = cfg.trainer
    # Saved at train-epoch end, after validation, so a checkpoint holds a finished epoch.
    # "last" is its own callback: Lightning's save_last skips epochs that did not improve.
    folder = run_dir / "checkpoints" / phase
    best = ModelCheckpoint(
        folder,
        "best",
        monitor,
        mode=mode,
        save_on_train_epoch_end=True,
        enable_version_counter=False,
    )
    last = ModelCheckpoint(
        folder, "last", save_on_train_epoch_end=True, enable_version_counter=False
    )
    # A bar on a terminal; in a log (not a terminal) a bar shows only when it ends, so there
    # a line per epoch says how training goes (always logged).
    bar = t.progress and sys.stderr.isatty()
    history = History(phase)
    callbacks = [best, last, history]
    if patience > 0:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=patience))
    if bar:
        callbacks.append(ProgressBar())
    loggers = (
        [TensorBoardLogger(run_dir, name="tensorboard", version=phase)] if t.tensorboard else []
    )
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=t.precision,
        callbacks=callbacks,
        logger=loggers or False,
        enable_progress_bar=bar,
        enable_model_summary=False,
        log_every_n_steps=1,
        default_root_dir=run_dir,
    )
    return trainer, best, history


class History(Callback):
    """Keeps one row per finished epoch of ``phase`` (its number from 1, losses, accuracies,
    learning rate) and logs it as a line. The rows travel in the checkpoints, so a resumed
    phase continues its history; ``restored`` of them came from one."""

    SHOWN = ("train_loss", "train_acc", "val_loss", "val_acc")

    def __init__(self, phase: str):
        self.phase, self.rows, self.restored = phase, [], 0

    def on_train_epoch_start(self, trainer, module):
        self.start = time.perf_counter()
        self.lr = trainer.optimizers[0].param_groups[0]["lr"]  # the epoch's own

    def on_train_epoch_end(self, trainer, module):
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k in self.SHOWN}
        row = {"epoch": trainer.current_epoch + 1, **metrics, "lr": self.lr}
        self.rows = [r for r in self.rows if r["epoch"] < row["epoch"]] + [row]
        if trainer.is_global_zero:
            text = ", ".join(f"{k} {metrics[k]:.4f}" for k in self.SHOWN if k in metrics)
            log.info("%s epoch %d/%d: %s (%.0f s)", self.phase, row["epoch"], trainer.max_epochs,
                     text, time.perf_counter() - self.start)  # fmt: skip

    def state_dict(self):
        return {"rows": self.rows}

    def load_state_dict(self, state):
        self.rows = list(state["rows"])
        self.restored = len(self.rows)


class ProgressBar(RichProgressBar):
    """Lightning's rich bar, with epochs counted from 1 (``Epoch 8/8`` for the last of 8,
    not ``7/7``) and without the logger's version (``v_num``), which means nothing here."""

    def _get_train_description(self, current_epoch: int) -> str:
        text = f"Epoch {current_epoch + 1}/{self.trainer.max_epochs}"
        return f"{text:{len(self.validation_description)}}"

    def get_metrics(self, trainer, module):
        metrics = super().get_metrics(trainer, module)
        metrics.pop("v_num", None)
        return metrics


#: Lightning warnings that say nothing to a tinyfer user (the batch hook is on the module on
#: purpose; a resumed run's checkpoint folder is of course not empty).
_QUIET = (
    r".*treespec, LeafSpec.*",
    r"You have overridden `on_after_batch_transfer`.*",
    r"Checkpoint directory .* exists and is not empty.*",
)


def images_per_s(train_size: int, epochs: int, seconds: float) -> float:
    """Training images per second over the epochs this session ran (not those resumed)."""
    return round(train_size * max(epochs, 0) / max(seconds, 1e-9), 1)


def _loads(ckpt: Path) -> str | None:
    """None if ``ckpt`` loads, else what is wrong with it."""
    try:
        torch.load(ckpt, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or overwritten file fails in many ways
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def _resume_from(last: Path) -> str | None:
    """The checkpoint to resume a phase from: ``last.ckpt``, or where it is damaged the
    phase's best one (said aloud); TinyferError if neither loads."""
    if not last.is_file():
        return None
    problem = _loads(last)
    if problem is None:
        return str(last)
    best = last.with_name("best.ckpt")
    if best.is_file() and _loads(best) is None:
        log.warning("%s is damaged (%s); resuming from the best epoch's checkpoint %s instead, "
                    "so the epochs after it are trained again", last, problem, best)  # fmt: skip
        return str(best)
    raise TinyferError(
        f"{last} is damaged ({problem}) and no other checkpoint of this phase loads. Delete "
        f"{last.parent} to train this phase again from its start in the same run directory, "
        "or start a new run without --resume."
    )


def fit(trainer, module, dm, last: Path, resume: bool) -> None:
    ckpt = _resume_from(last) if resume else None
    if ckpt:
        log.info("resuming from %s", ckpt)
    with warnings.catch_warnings():
        for pattern in _QUIET:
            warnings.filterwarnings("ignore", message=pattern)
        trainer.fit(module, datamodule=dm, ckpt_path=ckpt)
    if faulthandler.is_enabled():
        # Lightning's teardown resets every signal to its Python-level handler, SIGSEGV to
        # SIG_DFL, which silently removes faulthandler's: the next crash would say nothing.
        # enable() alone is a no-op while faulthandler believes it is still installed.
        faulthandler.disable()
        faulthandler.enable(all_threads=True)
    if trainer.interrupted:
        raise TinyferError(
            f"training interrupted; the last good checkpoint is {last}. Continue with --resume."
        )


def best_weights(best_path: str, prefix: str) -> dict:
    state = torch.load(best_path, map_location="cpu", weights_only=True)["state_dict"]
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
