"""The thesis "CNN-N" family: fully convolutional, no down-sampling.

``N`` convolutional modules (Conv2d k x k, padding k // 2 -> BatchNorm2d -> ReLU) at a
constant width of 64 maps, then a last convolution to 2 channels (background / vessel
logits). Every activation map has the input's full resolution.

The thesis text says 3 x 3 kernels (the default), but its reported parameter counts
(CNN6 1.01M, CNN10 1.81M) are those of 7 x 7 kernels at 64 maps: 3 x 3 gives about 0.19M
and 0.34M. ``kernel_size`` and ``classifier_kernel_size`` make either reading one argument
away; :func:`cnnexplore_nb.studies.vessel_tables.parameter_counts` compares the settings
with the reported numbers.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .._checks import check_positive_int
from ._registry import register_model

__all__ = ["ConvModule", "FCN", "cnn1", "cnn6", "cnn10"]


def _odd_kernel(name: str, value: int) -> int:
    k = check_positive_int(name, value)
    if k % 2 == 0:
        raise ValueError(
            f"{name} must be odd (padding {name} // 2 then keeps the resolution), got {value}"
        )
    return k


class ConvModule(nn.Sequential):
    """Conv2d k x k (padding k // 2) -> BatchNorm2d -> ReLU(inplace), as in the thesis."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        k = _odd_kernel("kernel_size", kernel_size)
        super().__init__(
            OrderedDict(
                conv=nn.Conv2d(in_channels, out_channels, k, padding=k // 2),
                bn=nn.BatchNorm2d(out_channels),
                relu=nn.ReLU(inplace=True),
            )
        )


class FCN(nn.Module):
    """CNN-N: ``n_modules`` ConvModules (``conv_module1`` to ``conv_moduleN``) and a
    ``classifier`` conv to ``num_classes`` logit maps.

    Parameters
    ----------
    n_modules : int
        Number of convolutional modules (thesis: 1, 6, 10).
    width : int
        Maps per module (thesis: 64).
    in_channels : int
        Input channels (1 for grey-level microscopy, 3 for RGB).
    num_classes : int
        Output maps (2: background and vessel).
    kernel_size : int
        Odd kernel size of the modules' convolutions (thesis text: 3; its parameter counts
        match 7, see the module docstring).
    classifier_kernel_size : int
        Odd kernel size of the last convolution (default 3).

    Notes
    -----
    Feature taps (``feature_info``) are the module outputs ``conv_module{i}`` (after ReLU),
    which are the activation maps the thesis analyses.
    """

    def __init__(
        self,
        n_modules: int,
        *,
        width: int = 64,
        in_channels: int = 1,
        num_classes: int = 2,
        kernel_size: int = 3,
        classifier_kernel_size: int = 3,
    ) -> None:
        super().__init__()
        n_modules = check_positive_int("n_modules", n_modules)
        width = check_positive_int("width", width)
        in_channels = check_positive_int("in_channels", in_channels)
        num_classes = check_positive_int("num_classes", num_classes)
        k_cls = _odd_kernel("classifier_kernel_size", classifier_kernel_size)
        self.n_modules = n_modules
        self.kernel_size, self.classifier_kernel_size = kernel_size, k_cls
        chans = in_channels
        for i in range(1, n_modules + 1):
            self.add_module(f"conv_module{i}", ConvModule(chans, width, kernel_size))
            chans = width
        self.classifier = nn.Conv2d(chans, num_classes, k_cls, padding=k_cls // 2)
        self.feature_info = [
            {"module": f"conv_module{i}", "num_chs": width, "reduction": 1}
            for i in range(1, n_modules + 1)
        ]

    @property
    def conv_modules(self) -> list[ConvModule]:
        return [getattr(self, f"conv_module{i}") for i in range(1, self.n_modules + 1)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.conv_modules:
            x = module(x)
        return self.classifier(x)


@register_model
def cnn1(**kwargs) -> FCN:
    """CNN1: one convolutional module (thesis)."""
    return FCN(1, **kwargs)


@register_model
def cnn6(**kwargs) -> FCN:
    """CNN6: six convolutional modules (thesis)."""
    return FCN(6, **kwargs)


@register_model
def cnn10(**kwargs) -> FCN:
    """CNN10: ten convolutional modules (thesis)."""
    return FCN(10, **kwargs)
