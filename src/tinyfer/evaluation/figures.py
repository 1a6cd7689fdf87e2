"""Figures people would rather see than read: training curves, reconstructions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_history(rows: Sequence[dict], path: str | Path, title: str = "") -> Path:
    """Loss and accuracy per epoch (train and validation) from history rows."""
    plt = _plt()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for key, ax, label in [
        ("train_loss", ax_loss, "train"), ("val_loss", ax_loss, "validation"),
        ("train_acc", ax_acc, "train"), ("val_acc", ax_acc, "validation"),
    ]:  # fmt: skip
        points = [(r["epoch"], r[key]) for r in rows if r.get(key) is not None]
        if points:
            ax.plot(*zip(*points), marker="o", markersize=3, label=label)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_reconstructions(
    inputs: np.ndarray, outputs: np.ndarray, path: str | Path, n: int = 8
) -> Path:
    """Faces (top row) beside the autoencoder's reconstructions (bottom row); arrays (N, H, W)."""
    plt = _plt()
    n = min(n, len(inputs))
    fig, axes = plt.subplots(2, n, figsize=(1.3 * n, 2.9), squeeze=False)
    for i in range(n):
        for row, img in ((0, inputs[i]), (1, outputs[i])):
            axes[row, i].imshow(img, cmap="gray", vmin=0, vmax=1)
            axes[row, i].axis("off")
    axes[0, 0].set_title("input", fontsize=9, loc="left")
    axes[1, 0].set_title("reconstruction", fontsize=9, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
