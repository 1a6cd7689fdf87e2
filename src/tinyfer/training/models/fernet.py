"""FerNet: one compact CNN family (encoder + classification head), and the decoder that
mirrors each encoder for phase-1 autoencoder training."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tinyfer.core.inputs import model_input
from tinyfer.training.models.blocks import BLOCKS, UpBlock, conv_bn


@dataclass(frozen=True)
class EncoderSpec:
    """The shape of an encoder: a stem, then stages that each halve the resolution."""

    block: str = "sep"  # basic | sep | plain
    stem: int = 16
    stem_stride: int = 1
    widths: tuple[int, ...] = (32, 64, 128)
    depths: tuple[int, ...] = (1, 1, 1)

    @classmethod
    def from_dict(cls, d: dict) -> EncoderSpec:
        return cls(**{**d, "widths": tuple(d["widths"]), "depths": tuple(d["depths"])})


class Encoder(nn.Module):
    """The convolutional layers: ``(B, C, H, W)`` in [0, 1] -> ``(B, widths[-1], h, w)``."""

    def __init__(self, spec: EncoderSpec, in_chans: int = 1):
        super().__init__()
        self.spec, self.in_chans = spec, in_chans
        self.stem = nn.Sequential(
            *conv_bn(in_chans, spec.stem, 3, spec.stem_stride), nn.ReLU(inplace=True)
        )
        block = BLOCKS[spec.block]
        stages, c = [], spec.stem
        for width, depth in zip(spec.widths, spec.depths, strict=True):
            layers = [block(c, width, 2)] + [block(width, width, 1) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*layers))
            c = width
        self.stages = nn.Sequential(*stages)
        self.out_channels = c
        self.reduction = spec.stem_stride * 2 ** len(spec.widths)

    def forward(self, x: Tensor) -> Tensor:
        return self.stages(self.stem((x - 0.5) / 0.5))  # inputs centred on 0


class Decoder(nn.Module):
    """Mirror of an :class:`Encoder`: features -> reconstruction in [0, 1] of the input size."""

    def __init__(self, spec: EncoderSpec, in_chans: int = 1):
        super().__init__()
        chans = [*reversed(spec.widths), spec.stem]
        ups = [UpBlock(a, b) for a, b in itertools.pairwise(chans)]
        if spec.stem_stride > 1:
            ups.append(UpBlock(spec.stem, spec.stem))
        self.ups = nn.Sequential(*ups)
        self.out = nn.Conv2d(spec.stem, in_chans, 3, 1, 1)

    def forward(self, z: Tensor, size: tuple[int, int]) -> Tensor:
        x = self.out(self.ups(z))
        if x.shape[-2:] != size:  # input sizes that the strides do not divide
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return torch.sigmoid(x)


class FerNet(nn.Module):
    """Encoder + head (global average pool, dropout, linear). Takes gray faces in [0, 1].

    ``forward`` gives the raw logits (what training sees); :meth:`probabilities` applies the
    post-hoc ``logit_bias`` (class balance) and ``temperature`` (calibration) first.
    """

    def __init__(
        self,
        spec: EncoderSpec,
        num_classes: int = 7,
        in_chans: int = 1,
        img_size: int = 48,
        dropout: float = 0.2,
        logit_bias: list[float] | None = None,
        temperature: float = 1.0,
    ):
        super().__init__()
        self.spec, self.num_classes, self.in_chans = spec, num_classes, in_chans
        self.img_size, self.dropout = img_size, dropout
        self.logit_bias = None if logit_bias is None else [float(b) for b in logit_bias]
        self.temperature = float(temperature)
        self.encoder = Encoder(spec, in_chans)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(self.encoder.out_channels, num_classes),
        )

    def forward_features(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def forward_head(self, features: Tensor) -> Tensor:
        return self.head(features)

    def forward(self, x: Tensor) -> Tensor:  # (B, 1, H, W) -> (B, num_classes)
        return self.forward_head(self.forward_features(x))

    def probabilities(self, logits: Tensor) -> Tensor:
        """Class probabilities from this model's logits, with its stored adjustments."""
        if self.logit_bias is not None:
            logits = logits + torch.tensor(self.logit_bias, dtype=logits.dtype)
        return torch.softmax(logits / self.temperature, dim=1)

    @torch.no_grad()
    def logits(self, faces, batch: int = 256):
        """Raw logits ``(N, num_classes)`` for faces ``(N, H, W)`` uint8 (numpy)."""
        self.eval()
        out = [
            self(torch.from_numpy(model_input(faces[i : i + batch])))
            for i in range(0, len(faces), batch)
        ]
        return torch.cat(out).numpy() if out else np.zeros((0, self.num_classes), np.float32)

    def predict_proba(self, faces, batch: int = 256):
        """Class probabilities ``(N, num_classes)`` for faces ``(N, H, W)`` uint8 (numpy)."""
        return self.probabilities(torch.from_numpy(self.logits(faces, batch))).numpy()

    def make_decoder(self) -> Decoder:
        return Decoder(self.spec, self.in_chans)

    def arch(self) -> dict:
        """What rebuilds this model (saved in checkpoints)."""
        return {
            "spec": asdict(self.spec),
            "num_classes": self.num_classes,
            "in_chans": self.in_chans,
            "img_size": self.img_size,
            "dropout": self.dropout,
            "logit_bias": self.logit_bias,
            "temperature": self.temperature,
        }
