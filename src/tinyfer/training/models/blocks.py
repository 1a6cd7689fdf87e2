"""Building blocks: residual stages of plain or depthwise-separable convolutions, and the
upsampling blocks of the decoders that mirror them."""

from __future__ import annotations

from torch import Tensor, nn


def conv_bn(c_in: int, c_out: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    )


class SubsampledPointwise(nn.Conv2d):
    """A 1x1 convolution with stride ``s``, computed as every ``s``-th pixel followed by a 1x1
    convolution with stride 1: the same function and weights as ``nn.Conv2d(c_in, c_out, 1, s)``.

    Why: oneDNN's backward-weights kernel for strided 1x1 convolutions in channels-last layout
    corrupts memory and returns wrong weight gradients when ``c_in`` is below the ISA's channel
    block (8 on AVX2, 16 on AVX-512) in torch 2.13's CPU build (scripts/onednn_repro.py).
    Stride 1 takes another kernel, which is correct on both.
    """

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__(c_in, c_out, 1, bias=False)
        self.subsample = stride

    def forward(self, x: Tensor) -> Tensor:
        s = self.subsample
        return super().forward(x[:, :, ::s, ::s] if s > 1 else x)


def shortcut(c_in: int, c_out: int, stride: int) -> nn.Module:
    """A residual block's shortcut: identity, or a 1x1 projection with batch norm."""
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return nn.Sequential(SubsampledPointwise(c_in, c_out, stride), nn.BatchNorm2d(c_out))


class SepConv(nn.Sequential):
    """Depthwise 3x3 then pointwise 1x1 convolution, batch norm: Xception's unit."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(
            nn.Conv2d(c_in, c_in, 3, 1, 1, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 convolutions and a shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv_bn(c_in, c_out, 3, stride)
        self.conv2 = conv_bn(c_out, c_out, 3)
        self.act = nn.ReLU(inplace=True)
        self.short = shortcut(c_in, c_out, stride)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv2(self.act(self.conv1(x))) + self.short(x))


class SepBlock(nn.Module):
    """Mini-Xception's module: two separable convolutions, a stride-2 max-pool when
    downsampling, and a 1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            SepConv(c_in, c_out),
            nn.ReLU(inplace=True),
            SepConv(c_out, c_out),
            nn.MaxPool2d(3, stride, 1) if stride > 1 else nn.Identity(),
        )
        self.short = shortcut(c_in, c_out, stride)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.body(x) + self.short(x))


class PlainBlock(nn.Sequential):
    """VGG's unit: 3x3 convolution, batch norm, ReLU; a max-pool first when downsampling."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        layers: list[nn.Module] = [nn.MaxPool2d(stride)] if stride > 1 else []
        super().__init__(*layers, *conv_bn(c_in, c_out), nn.ReLU(inplace=True))


BLOCKS: dict[str, type[nn.Module]] = {"basic": BasicBlock, "sep": SepBlock, "plain": PlainBlock}


class UpBlock(nn.Sequential):
    """Decoder unit: nearest upsampling x2, then a 3x3 convolution with batch norm and ReLU."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(
            nn.Upsample(scale_factor=2, mode="nearest"),
            *conv_bn(c_in, c_out),
            nn.ReLU(inplace=True),
        )
