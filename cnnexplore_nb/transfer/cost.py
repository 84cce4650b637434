"""What a transfer protocol costs on this machine: measured step times -> wall-time estimate.

:func:`measure_step_seconds` times one training step of each method (and one evaluation
forward) on random CIFAR-shaped data, run alone or as a group of seeds
(:class:`~cnnexplore_nb.transfer.grouped.GroupedStep`); :func:`estimate_cost` turns such
times into the wall time of a protocol (datasets x N x methods x seeds x epochs), run one
seed after another or in groups, on ``workers`` parallel processes.

Notes
-----
A run of N samples per class and ``epochs`` epochs costs

    epochs * (ceil(n_train / batch) steps, scaled by the images they hold)
    + epochs * n_val + n_test evaluated images

with ``n_train = N * classes`` and ``n_val = val_per_class * classes``. A step of ``b``
images is taken to cost ``b / batch`` of a full step (convolution work grows with the
images; per-step overhead makes small steps relatively dearer, so small N is
underestimated a little).
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch

from .._checks import check_choice, check_positive_int
from .l2t import METHODS

__all__ = ["DATASET_SHAPES", "estimate_cost", "measure_step_seconds"]

#: classes, test images per dataset as the L2T-ww protocol uses them (32 x 32 images).
DATASET_SHAPES: dict[str, dict[str, int]] = {
    "cifar10": {"classes": 10, "test": 10_000},
    "cifar100": {"classes": 100, "test": 10_000},
    "stl10": {"classes": 10, "test": 8_000},
    "digits": {"classes": 5, "test": 900},
}


def measure_step_seconds(
    methods: Sequence[str] = ("scratch", "ufm", "l2t_ww", "l2t_www"),
    *,
    batch_size: int = 128,
    group_size: int = 1,
    width: float = 1.0,
    source_width: float = 1.0,
    classes: int = 10,
    threads: int | None = 1,
    repeats: int = 3,
    arms: Mapping[str, tuple[str, Mapping[str, Any]]] | None = None,
) -> pd.DataFrame:
    """Median seconds of one training step per seed, and of evaluating one image.

    Parameters
    ----------
    methods : sequence of str
        Methods to time (ResNet-32 source, VGG-9-BN target, default pairs), or names of
        ``arms``.
    batch_size : int
        Images per step and seed.
    group_size : int
        1: one seed (:class:`~cnnexplore_nb.transfer.l2t.TransferStep`); more: that many
        seeds as one stacked step, whose time is divided by ``group_size``.
    width, source_width : float
        Channel multipliers of target and source.
    classes : int
        Outputs of the target.
    threads : int, optional
        torch threads while timing (restored afterwards; None keeps the current count).
    repeats : int
        Timed steps per method after one warm-up step (the median is reported).
    arms : mapping, optional
        ``name -> (method, settings of build_step)`` for named variants of a method, e.g.
        ``{"l2t_ww_frozen": ("l2t_ww", {"meta_lr": 0.0})}`` (a study's arms).

    Returns
    -------
    pandas.DataFrame
        One row per method: ``method, group_size, batch_size, step_seconds`` (per seed),
        ``eval_image_seconds`` (one image through the target in eval mode), ``threads``.
    """
    from ..models import create_model
    from .grouped import GroupedStep
    from .train import build_step

    arms = dict(arms or {})
    for m in methods:
        check_choice("method", m, [*METHODS, *arms])
    group_size = check_positive_int("group_size", group_size)
    repeats = check_positive_int("repeats", repeats)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(check_positive_int("threads", threads))
    try:
        torch.manual_seed(0)
        source = create_model("resnet32", num_classes=200, width=source_width)
        target = create_model("vgg9_bn", num_classes=classes, width=width)
        x = torch.randn(group_size, batch_size, 3, 32, 32)
        y = torch.randint(0, classes, (group_size, batch_size))
        rows = []
        for method in methods:
            base, extra = arms.get(method, (method, {}))
            src = None if base == "scratch" else source
            steps = [
                build_step(base, src, copy.deepcopy(target), lr=0.01, example=x[0, :1],
                           **dict(extra))
                for _ in range(group_size)
            ]  # fmt: skip
            runner = steps[0] if group_size == 1 else GroupedStep(steps)
            xs, ys = (x[0], y[0]) if group_size == 1 else (x, y)
            seconds = _median_seconds(runner.step, (xs, ys), repeats)
            rows.append({"method": method, "group_size": group_size, "batch_size": batch_size,
                         "step_seconds": seconds / group_size})  # fmt: skip
        model = copy.deepcopy(target).eval()
        with torch.no_grad():
            per_image = _median_seconds(model, (x[0],), repeats) / batch_size
        for row in rows:
            row.update(eval_image_seconds=per_image, threads=torch.get_num_threads())
        return pd.DataFrame(rows)
    finally:
        torch.set_num_threads(before)


def _median_seconds(fn, args, repeats: int) -> float:
    """Median wall seconds of ``fn(*args)`` over ``repeats`` calls after one warm-up."""
    fn(*args)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _run_seconds(n_per_class, classes, test, epochs, batch, step, per_image, val_per_class):
    n_train = n_per_class * classes
    full, rest = divmod(n_train, batch)
    train = epochs * (full + rest / batch) * step
    evaluate = (epochs * val_per_class * classes + test) * per_image
    return train + evaluate, epochs * math.ceil(n_train / batch)


def estimate_cost(
    protocol: Mapping[str, Any],
    step_seconds: pd.DataFrame | Mapping[str, float] | None = None,
    *,
    grouped_step_seconds: pd.DataFrame | Mapping[str, float] | None = None,
    eval_image_seconds: float | None = None,
    workers: int = 1,
    **measure: Any,
) -> pd.DataFrame:
    """Estimated wall time of a protocol, per (dataset, N, method), sequential and grouped.

    Parameters
    ----------
    protocol : mapping
        ``datasets`` (names of :data:`DATASET_SHAPES`), ``n_values`` (dataset -> N values),
        ``methods``, ``seeds`` (a count or a list), ``epochs``, and optionally
        ``batch_size`` (128) and ``val_per_class`` (10); e.g. a study's settings dict.
    step_seconds : DataFrame or mapping, optional
        Seconds of one training step per method at ``batch_size``, run alone (the output
        of :func:`measure_step_seconds`, or ``{method: seconds}``). None: measured now.
    grouped_step_seconds : DataFrame or mapping, optional
        The same per seed when seeds are trained together; None: measured now with
        ``group_size`` of ``measure`` (default 8); the ``grouped_*`` columns are left out
        if ``measure`` sets ``group_size=1``.
    eval_image_seconds : float, optional
        Seconds to evaluate one image (default: from the measurement).
    workers : int
        Parallel processes sharing the work (the hours are divided by it).
    **measure
        Passed to :func:`measure_step_seconds` (``width``, ``threads``, ``repeats``, ...).

    Returns
    -------
    pandas.DataFrame
        One row per (dataset, n, method): ``dataset, n, method, seeds, epochs, steps_per_run,
        run_seconds`` (one seed alone), ``sequential_hours`` (all seeds one after another),
        ``grouped_hours`` (seeds trained together), ``speedup``. ``df.attrs["total"]`` holds
        the totals in hours.
    """
    workers = check_positive_int("workers", workers)
    batch = int(protocol.get("batch_size", 128))
    group = int(measure.pop("group_size", 8))
    methods = list(protocol.get("methods", ("scratch", "ufm", "l2t_ww", "l2t_www")))
    if step_seconds is None:
        step_seconds = measure_step_seconds(methods, batch_size=batch, **measure)
    if grouped_step_seconds is None and group > 1:
        grouped_step_seconds = measure_step_seconds(
            methods, batch_size=batch, group_size=group, **measure
        )
    seq, per_image = _as_map(step_seconds)
    grp, _ = _as_map(grouped_step_seconds) if grouped_step_seconds is not None else ({}, None)
    if eval_image_seconds is None:
        eval_image_seconds = per_image if per_image is not None else 0.0
    seeds = protocol["seeds"]
    n_seeds = seeds if isinstance(seeds, int) else len(seeds)
    epochs, vpc = int(protocol["epochs"]), int(protocol.get("val_per_class", 10))
    rows = []
    for ds in protocol["datasets"]:
        shape = DATASET_SHAPES[check_choice("dataset", ds, list(DATASET_SHAPES))]
        for n in protocol["n_values"][ds]:
            for method in methods:
                if method not in seq:
                    raise KeyError(f"no step time for method {method!r}; have {sorted(seq)}")
                args = (n, shape["classes"], shape["test"], epochs, batch)
                run_s, steps = _run_seconds(*args, seq[method], eval_image_seconds, vpc)
                row = {"dataset": ds, "n": n, "method": method, "seeds": n_seeds,
                       "epochs": epochs, "steps_per_run": steps, "run_seconds": run_s,
                       "sequential_hours": run_s * n_seeds / 3600 / workers}  # fmt: skip
                if method in grp:
                    g_s, _ = _run_seconds(*args, grp[method], eval_image_seconds, vpc)
                    row["grouped_hours"] = g_s * n_seeds / 3600 / workers
                    row["speedup"] = run_s / g_s
                rows.append(row)
    df = pd.DataFrame(rows)
    df.attrs["total"] = {
        k: float(df[k].sum()) for k in ("sequential_hours", "grouped_hours") if k in df
    }
    return df


def _as_map(times) -> tuple[dict[str, float], float | None]:
    if isinstance(times, pd.DataFrame):
        per_image = (
            float(times["eval_image_seconds"].iloc[0]) if "eval_image_seconds" in times else None
        )
        return dict(zip(times["method"], times["step_seconds"].astype(float))), per_image
    return {str(k): float(v) for k, v in times.items()}, None
