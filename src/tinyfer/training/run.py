"""A run folder: where a training's config and outputs go, and what a resumed run may
change (how long, on what hardware) and may not (what it trains)."""

from __future__ import annotations

import time
from pathlib import Path

import yaml
from lightning.fabric.utilities.rank_zero import rank_zero_only

from tinyfer.core.config import RESUMABLE_KEYS, TrainConfig, dotted, from_dict, to_dict
from tinyfer.core.io import atomic_path
from tinyfer.errors import ConfigError, TinyferError


def default_run_dir(cfg: TrainConfig, root: str | Path = "runs") -> Path:
    name = "+".join(Path(p).name for p in cfg.data.paths) or "data"
    return Path(root) / f"{name}-{cfg.model.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def is_rank_zero() -> bool:
    """False in the extra processes a DDP launch starts (they re-run the same command)."""
    return getattr(rank_zero_only, "rank", 0) == 0


def config_changes(saved: dict, cfg: TrainConfig, allowed: tuple = RESUMABLE_KEYS) -> str:
    """What ``cfg`` changes from the ``saved`` config besides the keys starting with one of
    ``allowed``, as ``key: old -> new; ...`` ('' when nothing)."""
    old = dotted(to_dict(from_dict(TrainConfig, saved)))
    new = dotted(to_dict(cfg))
    diff = sorted(k for k in new if old.get(k) != new[k] and not k.startswith(allowed))
    return "; ".join(f"{k}: {old.get(k)!r} -> {new[k]!r}" for k in diff)


def check_run_dir(cfg: TrainConfig, run_dir: Path, resume: bool) -> None:
    """Refuse a folder holding a run, unless resuming it with a config that trains the same."""
    saved = run_dir / "config.yaml"
    if not is_rank_zero() or not saved.is_file():
        return  # in a DDP launch, rank 0 checked before it started this process
    if not resume:
        raise TinyferError(
            f"{run_dir} already holds a run; pass --resume to continue it, or another --out"
        )
    # The experiment section is not read by a training (the experiment checks its own
    # folder), so a default changed there since the run started does not stop its resume.
    detail = config_changes(yaml.safe_load(saved.read_text()), cfg,
                            allowed=(*RESUMABLE_KEYS, "experiment."))  # fmt: skip
    if detail:
        raise ConfigError(
            f"cannot resume {run_dir} with a different config ({detail}). Only epochs, "
            "patience and trainer settings may change; start a new run for the rest."
        )


def write_config(cfg: TrainConfig, run_dir: Path) -> None:
    """``run_dir/config.yaml``, written whole or not at all."""
    if not is_rank_zero():
        return
    with atomic_path(run_dir / "config.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
