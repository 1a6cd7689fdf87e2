"""Figures people would rather see than read: training curves, reconstructions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib  # the eval extra: where it is missing, said on import, before any work
import numpy as np


def plt_module():
    """pyplot, on the file-only backend."""
    # pyplot on the first figure, after choosing the file-only backend (no display here);
    # export and adjust, which draw nothing, don't pay for its import.
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path, title: str = "", dpi: int = 130) -> Path:
    """Title, tight layout, write, close: the last steps of every figure."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt_module().close(fig)
    return Path(path)


def plot_history(rows: Sequence[dict], path: str | Path, title: str = "") -> Path:
    """Loss and accuracy per epoch (train and validation) from history rows."""
    plt = plt_module()
    from matplotlib.ticker import MaxNLocator

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for key, ax, label in [
        ("train_loss", ax_loss, "train"),
        ("val_loss", ax_loss, "validation"),
        ("train_acc", ax_acc, "train"),
        ("val_acc", ax_acc, "validation"),
    ]:
        points = [(r["epoch"], r[key]) for r in rows if r.get(key) is not None]
        if points:
            ax.plot(*zip(*points), marker="o", markersize=3, label=label)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1))
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path, title, dpi=120)


def plot_reconstructions(
    inputs: np.ndarray, outputs: np.ndarray, path: str | Path, n: int = 8
) -> Path:
    """Faces (top row) beside the autoencoder's reconstructions (bottom row); arrays (N, H, W)."""
    plt = plt_module()
    n = min(n, len(inputs))
    fig, axes = plt.subplots(2, n, figsize=(1.3 * n, 2.9), squeeze=False)
    for i in range(n):
        for row, img in ((0, inputs[i]), (1, outputs[i])):
            axes[row, i].imshow(img, cmap="gray", vmin=0, vmax=1)
            axes[row, i].axis("off")
    axes[0, 0].set_title("input", fontsize=9, loc="left")
    axes[1, 0].set_title("reconstruction", fontsize=9, loc="left")
    return _save(fig, path, dpi=120)


def plot_confusion(
    confusion: np.ndarray, labels: Sequence[str], path: str | Path, title: str = ""
) -> Path:
    """Counts (left) and row-normalised rates (right): rows are true classes."""
    plt = plt_module()
    confusion = np.asarray(confusion)
    rows = confusion.sum(1, keepdims=True)
    rates = np.divide(confusion, rows, out=np.zeros(confusion.shape), where=rows > 0)
    n = len(labels)
    side = 1.0 + 0.55 * n
    fig, axes = plt.subplots(1, 2, figsize=(2 * side + 1.5, side + 0.6))
    for ax, values, fmt, name in (
        (axes[0], confusion, "d", "counts"),
        (axes[1], rates, ".2f", "row-normalised"),
    ):
        ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        for i in range(n):
            for j in range(n):
                text = format(values[i, j], fmt)
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if rates[i, j] > 0.55 else "black",
                )
        ax.set_xticks(range(n), labels, rotation=45, ha="right")
        ax.set_yticks(range(n), labels)
        ax.set(xlabel="predicted", ylabel="true", title=name)
    return _save(fig, path, title, dpi=130)


def plot_misclassified(
    faces: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    probs: np.ndarray,
    labels: Sequence[str],
    path: str | Path,
    n: int = 32,
) -> Path:
    """A grid of misclassified faces, most confident mistakes first: true -> predicted (p)."""
    plt = plt_module()
    order = np.argsort(-probs[np.arange(len(y_pred)), y_pred])[:n] if len(y_pred) else []
    cols = 8
    rows = max(1, -(-len(order) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.35, rows * 1.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, order):
        ax.imshow(faces[i], cmap="gray", vmin=0, vmax=255)
        ax.set_title(
            f"{labels[y_true[i]]}\n-> {labels[y_pred[i]]} {probs[i, y_pred[i]]:.2f}",
            fontsize=7,
        )
    if not len(order):
        axes[0, 0].text(0, 0.5, "no misclassified samples", fontsize=10)
    return _save(fig, path, dpi=120)
