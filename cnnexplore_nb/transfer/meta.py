"""Meta-networks of L2T-ww / L2T-www: f (what), g (where), h (which), one set per pair.

f and g take the globally average-pooled source feature ``p`` (B, C) of the pair's source
tap; h takes it too (``which_input="pooled"``, the default) or, as the dissertation's text
describes, each channel's own map (``which_input="maps"``: one fully connected layer per
source channel from its flattened H x W map to 9 outputs):

- f (what):  ``w = softmax(Linear(C, C)(p))`` over channels, weights and bias zero-initialised
  (so w = 1/C at the start).
- g (where): ``lambda = ReLU6(Linear(C, 1)(p))`` per sample, bias initialised to 1.
- h (which): ``softplus(Linear(C, 9 C)(p))`` reshaped to (C, 3, 3) - or, map input,
  ``softplus(W_c · vec(S_c) + b_c)`` with ``W_c`` (9, H W) per channel c - bilinearly resized
  to the target map's (H, W) -> gamma; weights zero and bias ``log(e - 1)`` so gamma = 1 at
  the start in both variants (L2T-www starts exactly as L2T-ww).

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

__all__ = ["ChannelMapLinear", "MetaNetworks", "MetaOutput", "expand_gamma"]

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


class ChannelMapLinear(nn.Module):
    """One linear layer per channel from its flattened (H, W) map to ``out`` values.

    ``weight`` (C, out, H W), ``bias`` (C, out); input (B, C, H, W) -> output (B, C, out).
    """

    def __init__(self, channels: int, size: tuple[int, int], out: int = 9) -> None:
        super().__init__()
        self.size = (int(size[0]), int(size[1]))
        self.weight = nn.Parameter(torch.zeros(channels, out, self.size[0] * self.size[1]))
        self.bias = nn.Parameter(torch.zeros(channels, out))

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        if tuple(maps.shape[-2:]) != self.size:
            raise ValueError(
                f"the map-input h network was built for {self.size[0]} x {self.size[1]} source "
                f"maps, got {tuple(maps.shape[-2:])}: use the input size it was built for, or "
                "which_input='pooled'"
            )
        return torch.einsum("bcp,cop->bco", maps.flatten(2), self.weight) + self.bias


class MetaNetworks(nn.Module):
    """f, g (and h if ``which``) for every pair.

    Parameters
    ----------
    source_channels : sequence of int
        ``C`` of the source tap of each pair.
    which : bool
        Build h (L2T-www); without it this is L2T-ww.
    which_input : {"pooled", "maps"}
        h reads the pooled source vector (default) or each channel's own map.
    source_sizes : sequence of (int, int), optional
        (H, W) of the source map of each pair; required for ``which_input="maps"``.
    """

    def __init__(
        self,
        source_channels: Sequence[int],
        *,
        which: bool = True,
        which_input: str = "pooled",
        source_sizes: Sequence[tuple[int, int]] | None = None,
    ) -> None:
        super().__init__()
        if which_input not in ("pooled", "maps"):
            raise ValueError(f"which_input must be 'pooled' or 'maps', got {which_input!r}")
        self.channels = [int(c) for c in source_channels]
        self.which_input = which_input
        self.what = nn.ModuleList(nn.Linear(c, c) for c in self.channels)
        self.where = nn.ModuleList(nn.Linear(c, 1) for c in self.channels)
        self.which: nn.ModuleList | None = None
        if which and which_input == "pooled":
            self.which = nn.ModuleList(nn.Linear(c, 9 * c) for c in self.channels)
        elif which:
            if source_sizes is None or len(source_sizes) != len(self.channels):
                raise ValueError(
                    "which_input='maps' needs source_sizes, one (H, W) per pair "
                    f"({len(self.channels)} pairs), got {source_sizes!r}"
                )
            self.which = nn.ModuleList(
                ChannelMapLinear(c, hw) for c, hw in zip(self.channels, source_sizes)
            )
        with torch.no_grad():
            for lin in self.what:
                lin.weight.zero_()
                lin.bias.zero_()
            for lin in self.where:
                lin.bias.fill_(1.0)
            for lin in self.which or []:
                lin.weight.zero_()
                lin.bias.fill_(GAMMA_BIAS)

    def forward(self, source: Sequence[torch.Tensor]) -> MetaOutput:
        """Meta outputs from the source maps ``(B, C, H, W)`` of every pair (or, with the
        pooled h, from pooled ``(B, C)`` vectors)."""
        maps = [t if t.dim() == 4 else None for t in source]
        pooled = [t.mean(dim=(2, 3)) if t.dim() == 4 else t for t in source]
        w = [F.softmax(f(p), dim=1) for f, p in zip(self.what, pooled)]
        lam = [F.relu6(g(p)).squeeze(1) for g, p in zip(self.where, pooled)]
        gamma = None
        if self.which is not None and self.which_input == "pooled":
            gamma = [
                F.softplus(h(p)).view(p.shape[0], c, 3, 3)
                for h, p, c in zip(self.which, pooled, self.channels)
            ]
        elif self.which is not None:
            if any(m is None for m in maps):
                raise ValueError("which_input='maps' needs the source maps (B, C, H, W)")
            gamma = [
                F.softplus(h(m)).view(m.shape[0], c, 3, 3)
                for h, m, c in zip(self.which, maps, self.channels)
            ]
        return MetaOutput(w, lam, gamma)
