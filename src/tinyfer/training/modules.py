"""The two phases as LightningModules. The classifier takes its model (whose encoder may come
from phase 1) as an argument, so phase 2 re-uses the phase-1 encoder object as is."""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tinyfer.core.config import AugmentConfig, ClassifyConfig, PretrainConfig
from tinyfer.training.augment import build_augmenter
from tinyfer.training.data import classes_of


class _FaceModule(L.LightningModule):
    """Scales uint8 batches to [0, 1] floats on the device and augments them when training."""

    def __init__(self, augment: AugmentConfig | None, channels_last: bool):
        super().__init__()
        use = augment is not None and augment.online and augment.any_transform
        self.augmenter = build_augmenter(augment) if use else None
        self.context_fill = augment.context_fill if augment is not None and augment.online else 0
        self.channels_last = channels_last

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        x, y, *valid = batch
        x = x.float().div_(255).unsqueeze(1)  # (B, 1, H, W)
        if self.trainer.training and valid and self.context_fill:
            x = fill_context(x, valid[0].float().div_(255).unsqueeze(1), self.context_fill)
        if self.trainer.training and self.augmenter is not None:
            x = self.augmenter(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    def on_fit_start(self) -> None:
        if self.channels_last:
            self.to(memory_format=torch.channels_last)


def fill_context(x: Tensor, valid: Tensor, p: float) -> Tensor:
    """Each face, with probability ``p``, shows another face of the batch (mirrored half the
    time) where ``valid`` says its own pixels are a replicated border."""
    other = x.roll(1, dims=0)
    mirror = torch.rand(len(x), 1, 1, 1, device=x.device) < 0.5
    other = torch.where(mirror, other.flip(3), other)
    pick = (torch.rand(len(x), 1, 1, 1, device=x.device) < p).to(x.dtype)
    weight = 1 - pick * (1 - valid)  # 1 keeps the face's own pixel
    return x * weight + other * (1 - weight)


def _adamw_cosine(module: L.LightningModule, lr: float, weight_decay: float, epochs: int,
                  groups: list[dict] | None = None):  # fmt: skip
    opt = torch.optim.AdamW(groups or module.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


class AutoencoderModule(_FaceModule):
    """Phase 1: encoder + decoder reconstruct the (optionally noised or masked) faces."""

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        cfg: PretrainConfig,
        augment: AugmentConfig | None = None,
        channels_last: bool = True,
    ):
        super().__init__(augment if cfg.augment else None, channels_last)
        self.encoder, self.decoder, self.cfg = encoder, decoder, cfg
        self.loss_fn = F.mse_loss if cfg.loss == "mse" else F.l1_loss

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x), x.shape[-2:])

    def _corrupt(self, x: Tensor) -> Tensor:
        if self.cfg.noise:
            x = (x + self.cfg.noise * torch.randn_like(x)).clamp(0, 1)
        if self.cfg.mask:
            x = x * (torch.rand_like(x) >= self.cfg.mask)
        return x

    def training_step(self, batch, batch_idx):
        x, _ = batch
        loss = self.loss_fn(self(self._corrupt(x)), x)
        self.log("train_loss", loss, on_epoch=True, on_step=False, prog_bar=True, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, _ = batch
        loss = self.loss_fn(self(x), x)
        self.log("val_loss", loss, prog_bar=True, sync_dist=True)

    def configure_optimizers(self):
        return _adamw_cosine(self, self.cfg.lr, 0.0, self.cfg.epochs)


class ClassifierModule(_FaceModule):
    """Phase 2: the whole model trained with cross-entropy, against class indices or against
    label distributions (soft labels); accuracy counts the distribution's most likely class."""

    def __init__(
        self,
        model: nn.Module,
        cfg: ClassifyConfig,
        augment: AugmentConfig | None = None,
        class_weights: Tensor | None = None,
        channels_last: bool = True,
    ):
        super().__init__(augment, channels_last)
        self.model, self.cfg = model, cfg
        self.register_buffer("class_weights", class_weights, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def on_train_epoch_start(self) -> None:
        frozen = self.current_epoch < self.cfg.freeze_epochs
        self.model.encoder.requires_grad_(not frozen)
        # Frozen: keep the initialised batch-norm statistics too.
        self.model.encoder.train(not frozen)

    def _step(self, batch, stage: str):
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(
            logits, y, weight=self.class_weights, label_smoothing=self.cfg.label_smoothing
        )
        acc = (logits.argmax(1) == classes_of(y)).float().mean()
        metrics = {f"{stage}_loss": loss, f"{stage}_acc": acc}
        self.log_dict(metrics, on_epoch=True, on_step=False, prog_bar=True, sync_dist=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def configure_optimizers(self):
        c = self.cfg
        groups = None
        if c.encoder_lr != 1.0:  # discriminative learning rates: the initialised encoder slower
            encoder = list(self.model.encoder.parameters())
            mine = {id(p) for p in encoder}
            rest = [p for p in self.parameters() if id(p) not in mine]
            groups = [{"params": encoder, "lr": c.lr * c.encoder_lr}, {"params": rest}]
        return _adamw_cosine(self, c.lr, c.weight_decay, c.epochs, groups)
