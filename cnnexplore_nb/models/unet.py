"""U-Net (Ronneberger et al. 2015) with configurable depth and width.

Encoder blocks ``encoder.0 .. encoder.{depth-1}`` (double conv 3x3 -> BN -> ReLU, max-pool
between them), a ``bottleneck`` block, up-sampling ``up.j`` (2x2 transposed conv, or
bilinear up-sampling + 1x1 conv), decoder blocks ``decoder.0 .. decoder.{depth-1}`` on the
concatenation [skip, up-sampled] and a 1x1 ``classifier`` to ``num_classes`` logit maps.
Padding 1 keeps sizes, so the output has the input's size when H and W are divisible by
``2 ** depth``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

import torch
from torch import nn

from .._checks import check_choice, check_positive_int
from ._registry import register_model

__all__ = ["DoubleConv", "UNet", "unet", "unet_small"]


class DoubleConv(nn.Sequential):
    """(Conv2d 3x3, padding 1, no bias -> BatchNorm2d -> ReLU) twice."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            OrderedDict(
                conv1=nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                bn1=nn.BatchNorm2d(out_channels),
                relu1=nn.ReLU(inplace=True),
                conv2=nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
                bn2=nn.BatchNorm2d(out_channels),
                relu2=nn.ReLU(inplace=True),
            )
        )


class UNet(nn.Module):
    """U-Net for dense prediction (segmentation logits at the input resolution).

    Parameters
    ----------
    in_channels : int
        Input channels (1 grey, 3 RGB).
    num_classes : int
        Output logit maps (2: background and vessel).
    depth : int
        Number of down-sampling steps (Ronneberger et al.: 4).
    width : int
        Maps of the first block; block ``i`` has ``width * 2**i`` (Ronneberger: 64).
    upsample : {"transpose", "bilinear"}
        2x2 transposed convolution (stride 2), or bilinear up-sampling followed by a 1x1
        convolution; both halve the channels before the concatenation.

    Attributes
    ----------
    feature_info : list of dict
        Taps ``encoder.i`` (``width * 2**i`` maps, reduction ``2**i``), ``bottleneck``
        (``width * 2**depth``, reduction ``2**depth``) and ``decoder.j`` (``width *
        2**(depth-1-j)`` maps, reduction ``2**(depth-1-j)``): the outputs of the double-conv
        blocks, after their last ReLU.

    Notes
    -----
    Inputs must have H and W divisible by ``2 ** depth`` (otherwise a ValueError names
    the nearest valid sizes); the output is then (N, num_classes, H, W).
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        *,
        depth: int = 4,
        width: int = 64,
        upsample: Literal["transpose", "bilinear"] = "transpose",
    ) -> None:
        super().__init__()
        in_channels = check_positive_int("in_channels", in_channels)
        num_classes = check_positive_int("num_classes", num_classes)
        self.depth = check_positive_int("depth", depth)
        width = check_positive_int("width", width)
        check_choice("upsample", upsample, ["transpose", "bilinear"])
        chans = [width * 2**i for i in range(depth + 1)]
        self.encoder = nn.ModuleList()
        prev = in_channels
        for c in chans[:-1]:
            self.encoder.append(DoubleConv(prev, c))
            prev = c
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = DoubleConv(chans[-2], chans[-1])
        self.up = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for j in range(depth):
            c_in, c_skip = chans[depth - j], chans[depth - 1 - j]
            if upsample == "transpose":
                self.up.append(nn.ConvTranspose2d(c_in, c_skip, 2, stride=2))
            else:
                self.up.append(
                    nn.Sequential(
                        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                        nn.Conv2d(c_in, c_skip, 1),
                    )
                )
            self.decoder.append(DoubleConv(2 * c_skip, c_skip))
        self.classifier = nn.Conv2d(width, num_classes, 1)
        self.feature_info = (
            [
                {"module": f"encoder.{i}", "num_chs": chans[i], "reduction": 2**i}
                for i in range(depth)
            ]
            + [{"module": "bottleneck", "num_chs": chans[-1], "reduction": 2**depth}]
            + [
                {
                    "module": f"decoder.{j}",
                    "num_chs": chans[depth - 1 - j],
                    "reduction": 2 ** (depth - 1 - j),
                }
                for j in range(depth)
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        factor = 2**self.depth
        h, w = x.shape[-2:]
        if x.dim() != 4 or h % factor or w % factor:

            def near(s: int) -> str:
                lo = s // factor * factor
                return str(s) if lo == s else (f"{lo} or {lo + factor}" if lo else str(factor))

            raise ValueError(
                f"UNet(depth={self.depth}) needs input (N, C, H, W) with H and W divisible by "
                f"{factor}, got shape {tuple(x.shape)}; nearest valid sizes: H {near(h)}, "
                f"W {near(w)} (crop or pad the input)"
            )
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, block, skip in zip(self.up, self.decoder, reversed(skips)):
            x = block(torch.cat([skip, up(x)], dim=1))
        return self.classifier(x)


@register_model
def unet(**kwargs) -> UNet:
    """U-Net of Ronneberger et al. (depth 4, width 64) with padded convolutions."""
    return UNet(**kwargs)


@register_model
def unet_small(**kwargs) -> UNet:
    """A small U-Net (depth 2, width 16) for quick CPU experiments and tests."""
    kwargs.setdefault("depth", 2)
    kwargs.setdefault("width", 16)
    return UNet(**kwargs)
