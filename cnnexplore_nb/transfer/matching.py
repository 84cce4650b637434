"""Layer pairs, feature taps, 1x1 regressors and the weighted feature-matching loss.

For a pair (m, n) of source tap m and target tap n, the target map ``T`` (B, C_t, H, W) is
mapped to the source's channels by a 1x1 conv ``r``; the source map ``S`` is resized
bilinearly to (H, W); the per-pixel squared error ``e = (r(T) - S)^2`` is weighted::

    L_pair = beta * mean_b [ lambda_b * sum_c w_bc * mean_ij gamma_bcij * e_bcij ]

(L2T-ww: gamma = 1; UFM: w = 1/C, lambda = 1, gamma = 1). The total loss adds the pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._hooks import Hooks

__all__ = [
    "Regressors",
    "attention_loss",
    "default_pairs",
    "hint_pair",
    "matching_errors",
    "pair_loss",
    "parse_pairs",
    "resize_to",
    "tap_features",
    "weighted_matching_loss",
]

PairSpec = str | tuple[int, int]


def default_pairs(
    source_taps: Sequence[int] = (4, 9, 14), n_target: int = 5
) -> list[tuple[int, int]]:
    """Every listed source tap with every target tap (L2T-ww: {4, 9, 14} x {0..4}, 15 pairs)."""
    return [(int(s), t) for s in source_taps for t in range(n_target)]


def _stage_ends(info: Sequence[dict]) -> list[int]:
    """Taps after which the resolution changes (and the last tap): the ends of the stages."""
    return [
        i for i, d in enumerate(info)
        if i == len(info) - 1 or info[i + 1]["reduction"] != d["reduction"]
    ]  # fmt: skip


def hint_pair(source_info: Sequence[dict], target_info: Sequence[dict]) -> tuple[int, int]:
    """FitNets' single hint pair from two ``feature_info`` lists: ``(source tap, target tap)``.

    Romero et al. guide the middle of the student with the middle of the teacher. Here the
    hint is the source's middle stage end (the stage ends are the taps after which the
    resolution changes; with an even number of stages the earlier of the two middle ones),
    and the guided layer is the target's last tap at the same resolution (``reduction``)
    or, when the target has none, at the closest one (on a log scale). ResNet-32 -> VGG-9:
    source stage ends 4, 9, 14 (reductions 1, 2, 4), target taps at reductions 1, 2, 4, 8,
    16: the pair ``(9, 1)``.
    """
    if not source_info or not target_info:
        raise ValueError(
            f"a hint pair needs taps in both networks' feature_info, got {len(source_info)} "
            f"source and {len(target_info)} target taps"
        )
    ends = _stage_ends(source_info)
    s = ends[(len(ends) - 1) // 2]
    red = float(source_info[s]["reduction"])
    gaps = [abs(math.log2(float(d["reduction"]) / red)) for d in target_info]
    best = min(gaps)
    t = max(j for j, g in enumerate(gaps) if g == best)
    return s, t


def parse_pairs(
    pairs: Sequence[PairSpec] | None, *, n_source: int, n_target: int
) -> list[tuple[int, int]]:
    """Normalise pairs given as ``"4-0"`` strings or ``(4, 0)`` tuples and check the taps exist.

    ``None`` gives :func:`default_pairs` (source stage ends {4, 9, 14} when the source has 15
    taps, otherwise its last tap of each third).
    """
    if pairs is None:
        if n_source == 15:
            src = (4, 9, 14)
        else:
            src = tuple(sorted({max(0, (n_source * k) // 3 - 1) for k in (1, 2, 3)}))
        return default_pairs(src, n_target)
    out: list[tuple[int, int]] = []
    for spec in pairs:
        try:
            if isinstance(spec, str):
                s, t = (int(v) for v in spec.split("-"))
            else:
                s, t = (int(v) for v in spec)
        except (TypeError, ValueError):
            raise ValueError(
                f"a pair must be 'source-target' like '4-0' or a tuple (4, 0), got {spec!r}"
            ) from None
        if not 0 <= s < n_source:
            raise ValueError(
                f"pair {spec!r} names source tap {s}, but the source has {n_source} taps "
                f"(0..{n_source - 1})"
            )
        if not 0 <= t < n_target:
            raise ValueError(
                f"pair {spec!r} names target tap {t}, but the target has {n_target} taps "
                f"(0..{n_target - 1})"
            )
        out.append((s, t))
    if not out:
        raise ValueError("pairs must name at least one 'source-target' pair, got none")
    return out


def tap_features(
    model: nn.Module, x: torch.Tensor, indices: Sequence[int]
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run ``model(x)`` and return ``(output, [tap outputs])`` for ``feature_info`` indices.

    Hooks are removed in ``finally``. Works inside ``torch.func.functional_call``.
    """
    info = getattr(model, "feature_info", None)
    if info is None:
        raise TypeError(f"{type(model).__name__} has no feature_info listing its feature taps")
    wanted = sorted(set(indices))
    store: dict[int, torch.Tensor] = {}

    def hook_for(i: int):
        def hook(_m, _inp, out):
            store[i] = out

        return hook

    with Hooks(model) as hooks:
        for i in wanted:
            hooks.forward(info[i]["module"], hook_for(i))
        out = model(x)
    return out, [store[i] for i in indices]


def resize_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (align_corners=False) of ``(B, C, h, w)`` to ``size``; no-op if equal.

    Differentiable and without antialiasing, as in the L2T-ww reference (unlike
    :func:`cnnexplore_nb._arrays.resample`, which prepares maps for analysis).
    """
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class Regressors(nn.Module):
    """One 1x1 conv per pair mapping target channels to source channels.

    Parameters
    ----------
    channels : sequence of (C_target, C_source)
    """

    def __init__(self, channels: Sequence[tuple[int, int]]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(ct, cs, 1) for ct, cs in channels)

    def forward(self, target_feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [conv(t) for conv, t in zip(self.convs, target_feats)]


def matching_errors(
    projected: Sequence[torch.Tensor], source_feats: Sequence[torch.Tensor]
) -> list[torch.Tensor]:
    """Squared errors ``(r(T) - resize(S))^2`` per pair, each ``(B, C_s, H_t, W_t)``."""
    return [(p - resize_to(s, p.shape[-2:])).square() for p, s in zip(projected, source_feats)]


def pair_loss(
    err: torch.Tensor,
    w: torch.Tensor | None,
    lam: torch.Tensor | None,
    gamma: torch.Tensor | None,
) -> torch.Tensor:
    """``mean_b lambda_b sum_c w_bc mean_ij gamma_bcij err_bcij`` for one pair.

    Parameters
    ----------
    err : Tensor of shape (B, C, H, W)
    w : Tensor of shape (B, C), optional
        Channel weights (None: 1/C each).
    lam : Tensor of shape (B,), optional
        Pair weights (None: 1).
    gamma : Tensor of shape (B, C, H, W), optional
        Pixel weights (None: 1).
    """
    per_pixel = err if gamma is None else gamma * err
    per_channel = per_pixel.mean(dim=(2, 3))
    per_sample = per_channel.mean(1) if w is None else (w * per_channel).sum(1)
    if lam is not None:
        per_sample = lam * per_sample
    return per_sample.mean()


def weighted_matching_loss(
    errors: Sequence[torch.Tensor],
    *,
    w: Sequence[torch.Tensor] | None = None,
    lam: Sequence[torch.Tensor] | None = None,
    gamma: Sequence[torch.Tensor | None] | None = None,
    beta: float = 0.5,
) -> torch.Tensor:
    """``beta * sum over pairs of pair_loss`` (see :func:`pair_loss`)."""
    total = errors[0].new_zeros(())
    for k, err in enumerate(errors):
        total = total + pair_loss(
            err,
            None if w is None else w[k],
            None if lam is None else lam[k],
            None if gamma is None else gamma[k],
        )
    return beta * total


def _attention_map(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    a = resize_to(x.square().mean(1, keepdim=True), size)
    return F.normalize(a.flatten(1), dim=1)


def attention_loss(
    target_feats: Sequence[torch.Tensor],
    source_feats: Sequence[torch.Tensor],
    *,
    beta: float = 1e3,
) -> torch.Tensor:
    """Attention transfer (Zagoruyko & Komodakis 2017): ``beta/2 * sum_pairs mean (a_T - a_S)^2``.

    ``a`` is the channel-mean of the squared map, L2-normalised over pixels; the source's
    attention map is resized bilinearly to the target's size first.
    """
    total = target_feats[0].new_zeros(())
    for t, s in zip(target_feats, source_feats):
        size = tuple(t.shape[-2:])
        total = total + (_attention_map(t, size) - _attention_map(s, size)).square().mean()
    return beta / 2 * total
