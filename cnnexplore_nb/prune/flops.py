"""Size and speed reports: parameters, multiply-accumulates, measured inference time."""

from __future__ import annotations

import contextlib
import statistics
import time
from typing import Any, Literal

import pandas as pd
import torch
from torch import nn

from .._arrays import call_model
from .._checks import check_choice, check_positive_int
from .._hooks import Hooks

__all__ = ["count_flops", "count_params", "prune_report", "speedup"]


def count_params(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (elements of all parameters; buffers such as BN running
    statistics are not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(
    model: nn.Module, example: torch.Tensor, *, unit: Literal["macs", "flops"] = "macs"
) -> int:
    """Multiply-accumulates (MACs) of one forward of ``example`` through convs and linears.

    Parameters
    ----------
    model : nn.Module
    example : Tensor of shape (B, C, H, W)
        The count is for this whole batch (use B = 1 for a per-image figure).
    unit : {"macs", "flops"}
        ``"macs"`` (default): multiply-accumulates; ``"flops"``: ``2 * MACs``.

    Returns
    -------
    int

    Notes
    -----
    Counted through forward hooks, so only modules actually called count (once per call).
    A ``Conv2d`` costs ``out.numel() * C_in / groups * kh * kw`` MACs (for a 3x3 conv with
    padding 1 on an H x W map: ``H * W * C_out * C_in * 9`` per image); an ``nn.Linear``
    ``out.numel() * in_features``. Bias additions, BatchNorm, activations and pooling are not
    counted (they are a few percent of a conv's cost).
    """
    check_choice("unit", unit, ["macs", "flops"])
    total = [0]

    def conv_hook(mod, _inp, out):
        kh, kw = mod.kernel_size
        total[0] += out.numel() * (mod.in_channels // mod.groups) * kh * kw

    def linear_hook(mod, _inp, out):
        total[0] += out.numel() * mod.in_features

    with Hooks(model, mode="eval", grad=False) as hooks:
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                hooks.forward(m, conv_hook)
            elif isinstance(m, nn.Linear):
                hooks.forward(m, linear_hook)
        call_model(model, example, "example")
    return int(total[0] * (2 if unit == "flops" else 1))


def _timings(
    models: list[nn.Module], example: torch.Tensor, repeats: int, warmup: int
) -> list[list[float]]:
    times: list[list[float]] = [[] for _ in models]
    with contextlib.ExitStack() as stack:
        for m in models:
            stack.enter_context(Hooks(m, mode="eval"))
        with torch.inference_mode():
            for _ in range(warmup):
                for m in models:
                    m(example)
            for _ in range(repeats):  # interleaved, so drifts in machine load hit both
                for i, m in enumerate(models):
                    t0 = time.perf_counter()
                    m(example)
                    times[i].append(time.perf_counter() - t0)
    return times


def speedup(
    model_a: nn.Module,
    model_b: nn.Module,
    example: torch.Tensor,
    *,
    repeats: int = 20,
    warmup: int = 3,
    threads: int | None = None,
) -> float:
    """Measured inference speed-up of ``model_b`` over ``model_a``: ``t_a / t_b``.

    Both run in eval mode under ``torch.inference_mode`` with the same thread count
    (``threads`` or the current ``torch.get_num_threads()``), ``warmup`` untimed forwards,
    then ``repeats`` interleaved timed forwards; ``t`` is the median wall time.

    Returns
    -------
    float
        > 1 when ``model_b`` is faster.
    """
    t = _median_times([model_a, model_b], example, repeats, warmup, threads)
    return t[0] / t[1]


def _median_times(models, example, repeats, warmup, threads) -> list[float]:
    repeats = check_positive_int("repeats", repeats)
    warmup = check_positive_int("warmup", warmup, minimum=0)
    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(check_positive_int("threads", threads))
    try:
        times = _timings(models, example, repeats, warmup)
    finally:
        torch.set_num_threads(old)
    return [statistics.median(t) for t in times]


def prune_report(
    before: nn.Module,
    after: nn.Module,
    example: torch.Tensor,
    *,
    repeats: int = 20,
    warmup: int = 3,
    threads: int | None = None,
) -> pd.DataFrame:
    """Size and speed of a model before and after pruning.

    Returns
    -------
    DataFrame
        One row per quantity (``params``, ``macs``, ``flops`` = 2 MACs, ``time_ms`` = median
        forward time of ``example``) with columns ``quantity, before, after, ratio`` where
        ``ratio = before / after``: how many times smaller (or, for ``time_ms``, faster) the
        pruned model is.
    """
    t_before, t_after = _median_times([before, after], example, repeats, warmup, threads)
    rows: list[dict[str, Any]] = []
    for q, b, a in [
        ("params", count_params(before), count_params(after)),
        ("macs", count_flops(before, example), count_flops(after, example)),
        (
            "flops",
            count_flops(before, example, unit="flops"),
            count_flops(after, example, unit="flops"),
        ),
        ("time_ms", 1e3 * t_before, 1e3 * t_after),
    ]:
        rows.append({"quantity": q, "before": float(b), "after": float(a), "ratio": b / a})
    return pd.DataFrame(rows)
