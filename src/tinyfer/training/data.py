"""The Lightning data module: prepared arrays in, uint8 batches out; offline expansion of the
training split only."""

from __future__ import annotations

import logging

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

from tinyfer.core.config import AugmentConfig
from tinyfer.training.augment import expand_offline

log = logging.getLogger(__name__)


class FaceDataModule(L.LightningDataModule):
    """Faces ``X (N, H, W) uint8`` and targets ``y`` (class indices ``(N,)``, or label
    distributions ``(N, C)``), split by index arrays.

    Batches stay uint8 until they reach the device, where the LightningModule scales (and,
    when training, augments) them; with ``augment.context_fill``, training batches also carry
    each face's ``valid`` mask (see :class:`tinyfer.core.prepare.Prepared`). With
    ``balance="sampler"`` training batches are drawn with probabilities inverse to class
    frequency (within each dataset); with ``source_weights`` (dataset name -> weight) and
    ``sources`` (each face's dataset), each dataset's share of the draws is its weight's
    share, whatever its size. Both multiply.
    """

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        parts: dict[str, np.ndarray],
        *,
        valid: np.ndarray | None = None,
        augment: AugmentConfig | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        balance: str = "none",
        sources: np.ndarray | None = None,
        source_weights: dict[str, float] | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self.X, self.y, self.parts, self.valid = X, y, parts, valid
        self.augment = augment or AugmentConfig(online=False)
        self.batch_size, self.num_workers = batch_size, num_workers
        self.balance, self.seed = balance, seed
        self.sources, self.source_weights = sources, source_weights
        self._sets: dict[str, TensorDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if self._sets:
            return
        for role, idx in self.parts.items():
            X, y = self.X[idx], self.y[idx]
            if role != "train":
                self._sets[role] = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
                continue
            X, y = expand_offline(X, y, self.augment, seed=self.seed)
            if self.augment.offline_copies:
                log.info("offline expansion: %d -> %d training faces", len(idx), len(X))
            tensors = [torch.from_numpy(X), torch.from_numpy(y)]
            if self.augment.context_fill and self.valid is not None:
                # Offline copies were transformed whole: their border is no longer known.
                valid = np.full_like(X, 255)
                valid[: len(idx)] = self.valid[idx]
                tensors.append(torch.from_numpy(valid))
            self._sets[role] = TensorDataset(*tensors)

    @property
    def train_size(self) -> int:
        self.setup()
        return len(self._sets["train"])

    def class_prior(self, num_classes: int) -> np.ndarray:
        """The class frequencies of the targets training draws (mean distribution for soft
        labels; weighted as datasets and the sampler draw them)."""
        self.setup()
        y = self._sets["train"].tensors[1].numpy()
        targets = y if y.ndim == 2 else np.eye(num_classes)[y]
        weights = self.draw_weights()
        return np.average(targets, axis=0, weights=weights).astype(np.float64)

    def class_counts(self, num_classes: int) -> np.ndarray:
        return np.bincount(classes_of(self.y[self.parts["train"]]), minlength=num_classes)

    def _loader(self, role: str, shuffle: bool = False, sampler=None) -> DataLoader:
        return DataLoader(
            self._sets[role],
            batch_size=self.batch_size,
            shuffle=shuffle,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def draw_weights(self) -> np.ndarray | None:
        """Each training face's (unnormalised) probability of being drawn; None: uniform."""
        if self.balance != "sampler" and self.source_weights is None:
            return None
        y = classes_of(self._sets["train"].tensors[1].numpy())
        train = self.parts["train"]
        sources = np.zeros(len(self.y), int) if self.sources is None else np.asarray(self.sources)
        # Offline copies follow their originals in order, so they keep their dataset.
        of = np.tile(sources[train], len(y) // len(train))
        weights = np.ones(len(y))
        if self.balance == "sampler":
            # Classes balanced within each dataset: one without neutral faces (CK+) does not
            # make the others' neutral faces rarer.
            pairs = [f"{s}\0{c}" for s, c in zip(of.tolist(), y.tolist())]
            _, group, counts = np.unique(pairs, return_inverse=True, return_counts=True)
            weights /= counts[group]
        if self.source_weights is not None:
            for name, weight in self.source_weights.items():
                mine = of == name
                weights[mine] *= weight / max(weights[mine].sum(), 1e-12)
        return weights

    def train_dataloader(self) -> DataLoader:
        weights = self.draw_weights()
        if weights is None:
            return self._loader("train", shuffle=True)
        gen = torch.Generator().manual_seed(self.seed)
        sampler = WeightedRandomSampler(torch.from_numpy(weights), len(weights), generator=gen)
        return self._loader("train", sampler=sampler)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")


def classes_of(y: np.ndarray) -> np.ndarray:
    """Class indices of targets (numpy or torch): the most likely class of each
    distribution, or the indices as they are."""
    return y.argmax(1) if y.ndim == 2 else y
