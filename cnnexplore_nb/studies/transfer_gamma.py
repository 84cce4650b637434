"""How far the "which" network's γ can move, and how far it did: the map-input h against the
pooled-vector h, measured on the source's own maps.

The map-input h of a pair gives channel ``c`` the pre-activation ``z_c = W_c · vec(S_c) +
b_c`` (``W_c``: 9 x H W) and γ = softplus(z) (≈ z once z is large). Adam moves every
weight by about its learning rate per step (at most ``(1 - beta1) / sqrt(1 - beta2)`` =
3.16 times it, Kingma & Ba), and coherent gradients move all of them together, so one step
changes ``z_c`` by about ``lr (||S_c||_1 + 1)`` (at most 3.16 times that): the L1 norm of
the whole map, H·W times its mean. The pooled h reads the pooled vector ``p`` (C values,
``p_c`` = the map's mean), so its bound is ``lr (||p||_1 + 1)``. For post-ReLU maps
``||S_c||_1 = H W p_c``: the map-input h can move γ about ``H W / C`` times faster (64x at
the ResNet-32's first stage, 32 x 32 maps of 16 channels; 1x at its last).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ._report import Finding, Findings

__all__ = ["ADAM_MAX_STEP", "gamma_bounds", "gamma_scale"]

#: Adam's largest step in units of its learning rate, (1 - beta1) / sqrt(1 - beta2) for
#: the default betas (0.9, 0.999) (Kingma & Ba 2015, section 2.1).
ADAM_MAX_STEP = (1 - 0.9) / (1 - 0.999) ** 0.5


@torch.no_grad()
def gamma_bounds(
    source: nn.Module, x: torch.Tensor, taps: Sequence[int], *, steps: int, meta_lr: float
) -> pd.DataFrame:
    """Upper bounds of how far γ's pre-activation can move in ``steps`` Adam steps of
    ``meta_lr``, per source tap, for the map-input and the pooled h.

    Columns: ``tap, channels, map (H x W), map_l1`` (mean over images and channels of
    ``||S_c||_1``), ``pooled_l1`` (mean ``||p||_1``), ``typical_maps``, ``typical_pooled``
    (``steps * meta_lr * (mean norm + 1)``), ``bound_maps``, ``bound_pooled``
    (:data:`ADAM_MAX_STEP` ``* steps * meta_lr * (largest norm + 1)``: no image and channel
    can move further) and ``ratio`` (of the mean norms).
    """
    from .._hooks import Hooks
    from ..transfer.matching import tap_features

    taps = sorted({int(t) for t in taps})
    with Hooks(source, mode="eval", grad=False):
        _, feats = tap_features(source, x, taps)
    rows = []
    for t, f in zip(taps, feats):
        b, c, h, w = f.shape
        l1 = f.abs().flatten(2).sum(-1)  # (B, C): each map's L1 norm
        pooled = f.mean(dim=(2, 3)).abs().sum(-1)  # (B,): the pooled vector's
        scale = steps * float(meta_lr)
        rows.append({
            "tap": t, "channels": c, "map": f"{h} x {w}", "map_l1": float(l1.mean()),
            "pooled_l1": float(pooled.mean()),
            "typical_maps": scale * (float(l1.mean()) + 1),
            "typical_pooled": scale * (float(pooled.mean()) + 1),
            "bound_maps": ADAM_MAX_STEP * scale * (float(l1.max()) + 1),
            "bound_pooled": ADAM_MAX_STEP * scale * (float(pooled.max()) + 1),
            "ratio": (float(l1.mean()) + 1) / (float(pooled.mean()) + 1),
        })  # fmt: skip
    return pd.DataFrame(rows)


def _gamma_end(record: Mapping[str, Any]) -> pd.DataFrame:
    """Per source tap: max |γ - 1| and mean γ at the last snapshot of an L2T-www run."""
    snaps = record.get("snapshots") or []
    if not snaps or "gamma" not in snaps[-1]:
        raise ValueError("the record has no γ snapshots: an l2t_www run with snapshot=True")
    rows = []
    for pair, g in zip(record["pairs"], snaps[-1]["gamma"]):
        arr = np.asarray(g, dtype=float)
        rows.append({"tap": int(str(pair).split("-")[0]), "max_dev": float(np.abs(arr - 1).max()),
                     "mean": float(arr.mean())})  # fmt: skip
    df = pd.DataFrame(rows)
    return df.groupby("tap").agg(max_dev=("max_dev", "max"), mean=("mean", "mean"))


def gamma_scale(
    records: Mapping[str, Mapping[str, Any]],
    source: nn.Module,
    x: torch.Tensor,
    *,
    steps: int,
    meta_lr: float,
) -> Findings:
    """Is γ moving by tens expected, and what does it do? Measured per source tap.

    Parameters
    ----------
    records : {"maps": record, "pooled": record}
        L2T-www runs with snapshots, one per "which" network (either may be missing).
    source : nn.Module
        The source network; ``x`` a probe batch of training images.
    steps, meta_lr : int, float
        Meta-updates of the runs (iterations) and Adam's learning rate.
    """
    any_rec = next(iter(records.values()))
    taps = sorted({int(str(p).split("-")[0]) for p in any_rec["pairs"]})
    table = gamma_bounds(source, x, taps, steps=steps, meta_lr=meta_lr).set_index("tap")
    for kind, rec in records.items():
        end = _gamma_end(rec)
        table[f"max |γ − 1| ({kind})"] = end["max_dev"]
        table[f"mean γ ({kind})"] = end["mean"]
    items = []
    if "maps" in records:
        within = bool((table["max |γ − 1| (maps)"] <= table["bound_maps"]).all())
        worst = table["max |γ − 1| (maps)"].idxmax()
        items.append(Finding(
            "γ of the map-input h moving far from 1 is expected",
            within,
            f"In {steps} meta-steps at Adam's learning rate {meta_lr:g} the pre-activation "
            "typically moves by up to "
            + ", ".join(f"{table.loc[t, 'typical_maps']:.2g} (tap {t}, {table.loc[t, 'map']} "
                        f"maps; at most {table.loc[t, 'bound_maps']:.2g})" for t in table.index)
            + " with the map-input h and up to "
            + ", ".join(f"{table.loc[t, 'typical_pooled']:.2g}" for t in table.index)
            + " with the pooled h (the map's L1 norm is "
            + ", ".join(f"{table.loc[t, 'ratio']:.0f}x" for t in table.index)
            + " the pooled vector's). Measured: max |γ − 1| "
            + ", ".join(f"{table.loc[t, 'max |γ − 1| (maps)']:.2g}" for t in table.index)
            + f", largest at tap {worst}, "
            + ("within" if within else "**beyond**") + " the largest move Adam allows.",
            {"bound": table["bound_maps"].to_dict()}, ("yes", "no"),
        ))  # fmt: skip
        mean = table["mean γ (maps)"]
        items.append(Finding(
            "What it does: γ scales the squared error pixel by pixel, so a mean γ above 1 "
            "strengthens that pair's matching against L2T-ww's",
            None if not len(mean) else bool((mean > 1).any()),
            "Mean γ at the end per source tap: "
            + ", ".join(f"tap {t}: {v:.2f}" for t, v in mean.items())
            + (
                "; with the pooled h: "
                + ", ".join(f"{v:.2f}" for v in table["mean γ (pooled)"])
                if "mean γ (pooled)" in table
                else ""
            )
            + ". λ and w weigh the same errors, so the map-input h changes how strongly and "
            "where each pair is matched, not only which pixels count.",
            {"mean_gamma": mean.to_dict()}, ("yes", "no"),
        ))  # fmt: skip
    return Findings(
        "The scale of γ: map-input h against pooled h (measured)",
        items,
        table.reset_index(),
        "Typical move: steps × learning rate × (mean input L1 norm + 1), each weight moving "
        f"about its learning rate per step; at most: Adam's largest step ({ADAM_MAX_STEP:.2f} "
        "times the rate) times the largest input norm of the probe batch.",
    )
