"""VGG-9 with batch normalisation (the L2T-ww / L2T-www target network).

``features`` is an ``nn.Sequential`` of 3x3 conv -> BN -> ReLU blocks and max-pools with the
configuration [64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M] (times ``width``),
then global average pooling and one linear layer ``classifier``: 8 convolutions + 1 linear.
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_positive_int
from ._registry import register_model

__all__ = ["VGG", "vgg9_bn"]

VGG9_CONFIG: tuple[int | str, ...] = (
    64,
    "M",
    128,
    "M",
    256,
    256,
    "M",
    512,
    512,
    "M",
    512,
    512,
    "M",
)


class VGG(nn.Module):
    """VGG with batch normalisation, global average pooling and one linear layer.

    Parameters
    ----------
    config : sequence of int or "M"
        Conv widths and max-pools.
    width : float
        Channel multiplier (``max(1, round(c * width))`` maps per conv).
    num_classes : int
        Outputs of ``classifier``.
    in_channels : int
        Input channels.

    Notes
    -----
    ``feature_info`` holds one tap per max-pool: the ReLU just before it (for VGG-9 at 32x32:
    64x32², 128x16², 256x8², 512x4², 512x2²). Convolutions use Kaiming-normal (fan_out) init.
    Chosen weights for ablation plots are addressable as ``features[0].weight[4, 2, 2, 0]``.
    """

    def __init__(
        self,
        config: tuple[int | str, ...] = VGG9_CONFIG,
        *,
        width: float = 1.0,
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if not width > 0:
            raise ValueError(f"width must be a positive multiplier, got {width!r}")
        num_classes = check_positive_int("num_classes", num_classes)
        in_channels = check_positive_int("in_channels", in_channels)
        layers: list[nn.Module] = []
        self.feature_info: list[dict] = []
        prev, reduction = in_channels, 1
        for item in config:
            if item == "M":
                self.feature_info.append(
                    {
                        "module": f"features.{len(layers) - 1}",
                        "num_chs": prev,
                        "reduction": reduction,
                    }
                )
                layers.append(nn.MaxPool2d(2, 2))
                reduction *= 2
            else:
                c = max(1, round(int(item) * width))
                layers += [nn.Conv2d(prev, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU()]
                prev = c
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(prev, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.classifier(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))


@register_model
def vgg9_bn(**kwargs) -> VGG:
    """VGG-9 with batch normalisation (8 conv layers + 1 linear)."""
    return VGG(VGG9_CONFIG, **kwargs)
