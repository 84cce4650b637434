"""CIFAR-style ResNet-32 (He et al. 2016) with the L2T-ww reference module layout.

Stem ``conv1`` (3x3, with bias) -> ``bn1`` -> ReLU, three stages of ``n`` BasicBlocks at
16/32/64 (x ``width``) channels, global average pool, ``fc``. Module names follow the
checkpoint released with the L2T-ww reference code, so its state_dict maps key for key:
``block1``, ``blocks2.0..``, ``block3`` (stride 2, ``downsample.0/1``), ``blocks4.*``,
``block5``, ``blocks6.*``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_positive_int
from ._registry import register_model

__all__ = ["BasicBlock", "ResNetCifar", "resnet32"]


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 conv + BN) shortcut, ReLU after the sum."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class ResNetCifar(nn.Module):
    """CIFAR ResNet of depth ``6 n + 2``.

    Parameters
    ----------
    depth : int
        ``6 n + 2`` (32 gives ResNet-32 with 5 blocks per stage).
    width : float
        Channel multiplier: stages have ``round(16 w)``, ``round(32 w)``, ``round(64 w)`` maps.
    num_classes : int
        Outputs of ``fc``.
    in_channels : int
        Input channels.

    Notes
    -----
    ``feature_info`` lists every block output (``3 n`` taps; for ResNet-32 indices 0-14,
    the stages end at 4, 9 and 14) with reductions 1, 2 and 4.
    """

    def __init__(
        self, depth: int = 32, *, width: float = 1.0, num_classes: int = 10, in_channels: int = 3
    ) -> None:
        super().__init__()
        depth = check_positive_int("depth", depth, minimum=8)
        if (depth - 2) % 6:
            raise ValueError(f"depth must be 6 n + 2 (8, 14, 20, 32, ...), got {depth}")
        if not width > 0:
            raise ValueError(f"width must be a positive multiplier, got {width!r}")
        num_classes = check_positive_int("num_classes", num_classes)
        in_channels = check_positive_int("in_channels", in_channels)
        n = (depth - 2) // 6
        chans = [max(1, round(c * width)) for c in (16, 32, 64)]
        self.conv1 = nn.Conv2d(in_channels, chans[0], 3, 1, 1, bias=True)
        self.bn1 = nn.BatchNorm2d(chans[0])
        self.feature_info: list[dict] = []
        prev = chans[0]
        for stage, c in enumerate(chans):
            first, rest = 2 * stage + 1, 2 * stage + 2
            stride = 1 if stage == 0 else 2
            setattr(self, f"block{first}", BasicBlock(prev, c, stride))
            setattr(self, f"blocks{rest}", nn.Sequential(*[BasicBlock(c, c) for _ in range(n - 1)]))
            red = 2**stage
            self.feature_info.append({"module": f"block{first}", "num_chs": c, "reduction": red})
            self.feature_info += [
                {"module": f"blocks{rest}.{i}", "num_chs": c, "reduction": red}
                for i in range(n - 1)
            ]
            prev = c
        self.fc = nn.Linear(prev, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        for i in range(1, 7):
            x = getattr(self, f"block{i}" if i % 2 else f"blocks{i}")(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@register_model
def resnet32(**kwargs) -> ResNetCifar:
    """ResNet-32 for 32x32 inputs (the L2T-ww / L2T-www source network)."""
    return ResNetCifar(32, **kwargs)
