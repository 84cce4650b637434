"""Meta-networks of L2T-ww / L2T-www: f (what), g (where), h (which), one set per pair.

All take the globally average-pooled source feature ``p`` (B, C) of the pair's source tap:

- f (what):  ``w = softmax(Linear(C, C)(p))`` over channels, weights and bias zero-initialised
  (so w = 1/C at the start).
- g (where): ``lambda = ReLU6(Linear(C, 1)(p))`` per sample, bias initialised to 1.
- h (which): ``softplus(Linear(C, 9 C)(p))`` reshaped to (C, 3, 3), bilinearly resized to the
  target map's (H, W) -> gamma; weights zero and bias ``log(e - 1)`` so gamma = 1 at the start
  (L2T-www starts exactly as L2T-ww).

Notes
-----
The dissertation's text puts ReLU6 on f and softmax on g, while it also requires
``sum_c w_c = 1`` (which only a softmax over channels gives) and one non-negative weight
per pair (a softmax over a single output would always be 1). We follow the L2T-ww reference:
softmax for w, ReLU6 for lambda.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .matching import resize_to

__all__ = ["MetaNetworks", "MetaOutput", "expand_gamma"]

GAMMA_BIAS = math.log(math.e - 1.0)


@dataclass
class MetaOutput:
    """Per-pair outputs: ``w`` (B, C), ``lam`` (B,), ``gamma`` (B, C, 3, 3) or None."""

    w: list[torch.Tensor]
    lam: list[torch.Tensor]
    gamma: list[torch.Tensor] | None

    def detach(self) -> MetaOutput:
        return MetaOutput(
            [t.detach() for t in self.w],
            [t.detach() for t in self.lam],
            None if self.gamma is None else [t.detach() for t in self.gamma],
        )


def expand_gamma(gamma_small: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize the 3x3 pixel weights ``(B, C, 3, 3)`` bilinearly to ``(B, C, H, W)``."""
    return resize_to(gamma_small, size)


class MetaNetworks(nn.Module):
    """f, g (and h if ``which``) for every pair.

    Parameters
    ----------
    source_channels : sequence of int
        ``C`` of the source tap of each pair.
    which : bool
        Build h (L2T-www); without it this is L2T-ww.
    """

    def __init__(self, source_channels: Sequence[int], *, which: bool = True) -> None:
        super().__init__()
        self.channels = [int(c) for c in source_channels]
        self.what = nn.ModuleList(nn.Linear(c, c) for c in self.channels)
        self.where = nn.ModuleList(nn.Linear(c, 1) for c in self.channels)
        self.which = nn.ModuleList(nn.Linear(c, 9 * c) for c in self.channels) if which else None
        with torch.no_grad():
            for lin in self.what:
                lin.weight.zero_()
                lin.bias.zero_()
            for lin in self.where:
                lin.bias.fill_(1.0)
            for lin in self.which or []:
                lin.weight.zero_()
                lin.bias.fill_(GAMMA_BIAS)

    def forward(self, pooled: Sequence[torch.Tensor]) -> MetaOutput:
        """Meta outputs from pooled source features, one ``(B, C)`` tensor per pair."""
        w = [F.softmax(f(p), dim=1) for f, p in zip(self.what, pooled)]
        lam = [F.relu6(g(p)).squeeze(1) for g, p in zip(self.where, pooled)]
        gamma = None
        if self.which is not None:
            gamma = [
                F.softplus(h(p)).view(p.shape[0], c, 3, 3)
                for h, p, c in zip(self.which, pooled, self.channels)
            ]
        return MetaOutput(w, lam, gamma)
