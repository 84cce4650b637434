"""Classification training with transfer from a frozen source: ``run(method, ...)``.

SGD (lr 0.1, momentum 0.9, weight decay 1e-4), cosine annealing over the epochs, batch 128;
the record reports the test accuracy of the weights of the best validation epoch.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from .._arrays import channel_error
from .._checks import (
    NonFiniteLossError,
    check_choice,
    check_positive_int,
    check_real,
    non_finite_loss_message,
    resolve_device,
    seed_everything,
    unknown_name_message,
)
from .._hooks import Hooks, model_device
from .l2t import METHODS, TransferStep
from .matching import PairSpec, hint_pair, parse_pairs, tap_features

__all__ = ["DEFAULTS", "build_step", "evaluate", "run"]

Method = Literal["scratch", "ufm", "ufm_hint", "l2t_ww", "l2t_www", "attention"]

DEFAULTS: dict[str, Any] = {
    "batch_size": 128,
    "lr": 0.1,
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "beta": None,  # 0.5, or 1e3 for attention
    "pairs": None,  # default: source {4, 9, 14} x target {0..4}
    "inner_steps": 2,
    "meta_lr": 1e-4,  # 0: the meta-networks keep their initial values (no look-ahead)
    "meta_weight_decay": 1e-4,
    "which_input": "maps",  # h reads each source channel's map (the dissertation), or "pooled"
    "target_kwargs": {},
    "eval_batch_size": 512,
    "snapshot": False,
    "snapshot_weights": (("features.0.weight", (4, 2, 2, 0)),),
    "progress": True,
    "return_model": False,
    "num_threads": None,  # torch threads during the run (restored afterwards)
    "device": "cpu",  # where the networks train: "cpu", "cuda", "cuda:1", or "auto"
}


def _taps(model: nn.Module, role: str) -> list[dict]:
    info = getattr(model, "feature_info", None)
    if not info:
        raise TypeError(f"the {role} {type(model).__name__} has no feature_info listing its taps")
    return info


def _same_resolution_pairs(s_info: list[dict], t_info: list[dict]) -> list[tuple[int, int]] | None:
    """Attention transfer's usual pairing: the last source tap of each reduction with the
    target tap of the same reduction (ResNet-32 / VGG-9: 4-0, 9-1, 14-2)."""
    last = {d["reduction"]: i for i, d in enumerate(s_info)}
    pairs = [(last[d["reduction"]], j) for j, d in enumerate(t_info) if d["reduction"] in last]
    return pairs or None


def build_step(
    method: Method,
    source: nn.Module | None,
    target: nn.Module,
    *,
    pairs: Sequence[PairSpec] | None = DEFAULTS["pairs"],
    beta: float | None = DEFAULTS["beta"],
    inner_steps: int = DEFAULTS["inner_steps"],
    lr: float = DEFAULTS["lr"],
    momentum: float = DEFAULTS["momentum"],
    weight_decay: float = DEFAULTS["weight_decay"],
    meta_lr: float = DEFAULTS["meta_lr"],
    meta_weight_decay: float = DEFAULTS["meta_weight_decay"],
    which_input: str = DEFAULTS["which_input"],
    example: torch.Tensor | None = None,
) -> TransferStep:
    """A :class:`TransferStep` with pairs checked against both networks' ``feature_info``.

    ``pairs=None`` means the L2T-ww default (source {4, 9, 14} x target {0..4}) except for
    ``attention``, which pairs taps of equal resolution (4-0, 9-1, 14-2) as attention
    transfer does, and ``ufm_hint``, FitNets' single hint pair (:func:`~cnnexplore_nb.
    transfer.matching.hint_pair`: the source's middle stage end with the target tap of the
    same resolution, 9-1 for ResNet-32 -> VGG-9); ``beta=None`` means 0.5 (1e3 for
    attention). ``meta_lr=0`` freezes the meta-networks at their initial values.
    ``which_input="maps"`` (the default; L2T-www only) gives h one layer per source channel
    reading its whole map, sized from a dry forward of ``example`` (a batch of training
    images, required then); ``"pooled"`` gives h one layer on the pooled source vector.
    """
    method = check_choice("method", method, list(METHODS))
    if method == "scratch":
        parsed, channels = [], []
    else:
        if source is None:
            raise ValueError(f"method {method!r} needs a source network, got None")
        s_info, t_info = _taps(source, "source"), _taps(target, "target")
        if pairs is None and method == "attention":
            pairs = _same_resolution_pairs(s_info, t_info)
        elif pairs is None and method == "ufm_hint":
            pairs = [hint_pair(s_info, t_info)]
        parsed = parse_pairs(pairs, n_source=len(s_info), n_target=len(t_info))
        channels = [(t_info[t]["num_chs"], s_info[s]["num_chs"]) for s, t in parsed]
    if beta is None:
        beta = 1e3 if method == "attention" else 0.5
    check_choice("which_input", which_input, ["pooled", "maps"])
    sizes = None
    if which_input == "maps" and method == "l2t_www":
        if example is None:
            raise ValueError(
                "L2T-www's which-network reads each source channel's map (which_input='maps', "
                "the default) and is sized from example= (a batch of training images), got "
                "example=None; pass example=, or which_input='pooled'"
            )
        source.eval()  # as TransferStep keeps it: a train-mode forward would move BN stats
        with torch.no_grad():
            feats = tap_features(source, example[:1], [s for s, _ in parsed])[1]
        sizes = [tuple(int(v) for v in f.shape[-2:]) for f in feats]
    return TransferStep(
        method, source, target, pairs=parsed, channels=channels, beta=beta,
        inner_steps=check_positive_int("inner_steps", inner_steps), lr=lr, momentum=momentum,
        weight_decay=weight_decay, meta_lr=meta_lr, meta_weight_decay=meta_weight_decay,
        which_input=which_input, source_sizes=sizes,
    )  # fmt: skip


def check_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """:data:`DEFAULTS` updated with ``settings`` after checking names and values (shared by
    :func:`run` and :func:`~cnnexplore_nb.transfer.run_many`)."""
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise TypeError(unknown_name_message("setting", unknown[0], sorted(DEFAULTS)))
    cfg = {**DEFAULTS, **settings}
    cfg["batch_size"] = check_positive_int("batch_size", cfg["batch_size"])
    for key in ("lr", "meta_lr", "momentum", "weight_decay", "meta_weight_decay"):
        value = check_real(key, cfg[key])
        strict = key == "lr"  # meta_lr = 0 freezes the meta-networks
        if value < 0 or (strict and value == 0):
            raise ValueError(f"{key} must be {'> 0' if strict else '>= 0'}, got {cfg[key]!r}")
    return cfg


def _looks_like_path(value: str) -> bool:
    return os.sep in value or "/" in value or Path(value).suffix in (".pt", ".pth", ".tar", ".ckpt")


def check_source(source: Any, method: str) -> None:
    """A source given as a string must be an existing checkpoint file or a registered name;
    a path that does not exist is named as such (not as an unknown model)."""
    if method == "scratch" or not isinstance(source, (str, os.PathLike)):
        return
    path = Path(source)
    if path.is_file():
        return
    if isinstance(source, os.PathLike) or _looks_like_path(str(source)):
        what = "is a folder" if path.is_dir() else "does not exist"
        raise FileNotFoundError(
            f"source checkpoint {str(source)!r} {what}; expected a checkpoint file (e.g. the "
            "L2T-ww reference ResNet-32, cnnexplore_nb.data.fetch('l2tww_source')), a "
            "registered model name or a module"
        )
    from ..models import list_models

    names = list_models()
    if source not in names:
        raise ValueError(
            unknown_name_message("source model", source, names)
            + f"; no checkpoint file {str(source)!r} either"
        )


def _non_finite_items(dataset: Any, batch_size: int = 1024) -> list[int]:
    """Indices of the items of ``dataset`` whose image holds NaN/Inf (none for uint8 images)."""
    images = getattr(dataset, "images", None)
    if torch.is_tensor(images) and not images.is_floating_point():
        return []
    bad: list[int] = []
    with torch.random.fork_rng(devices=[]):
        for start in range(0, len(dataset), batch_size):
            idx = torch.arange(start, min(len(dataset), start + batch_size))
            x, _ = _batch(dataset, idx, None)
            ok = torch.isfinite(x.reshape(len(idx), -1)).all(1)
            bad.extend(int(i) for i in idx[~ok])
    return bad


def check_eval_data(splits: Mapping[str, Any], where: str = "") -> None:
    """Refuse validation / test data holding NaN/Inf pixels (their accuracy would be computed
    on NaN logits); the message names the split and the items."""
    for name, ds in splits.items():
        if ds is None:
            continue
        bad = _non_finite_items(ds)
        if bad:
            shown = ", ".join(map(str, bad[:10])) + (", ..." if len(bad) > 10 else "")
            raise ValueError(
                f"data[{name!r}]{where} holds NaN/Inf pixels in {len(bad)} of its {len(ds)} images "
                f"(items {shown}); its accuracy would be computed on NaN logits. Remove or "
                "repair those images"
            )


def _batch(ds, idx: torch.Tensor, generator: torch.Generator | None):
    if hasattr(ds, "batch"):
        return ds.batch(idx, generator=generator)
    items = [ds[int(i)] for i in idx]
    return torch.stack([x for x, _ in items]), torch.as_tensor([int(y) for _, y in items])


def evaluate(model: nn.Module, dataset, *, batch_size: int = 512) -> float:
    """Top-1 accuracy (fraction) of ``model`` in eval mode on ``dataset``."""
    correct = 0
    n = len(dataset)
    device = model_device(model)
    with Hooks(model, mode="eval", grad=False):
        for start in range(0, n, batch_size):
            x, y = _batch(dataset, torch.arange(start, min(n, start + batch_size)), None)
            correct += int((model(x.to(device)).argmax(1).cpu() == y).sum())
    return correct / max(n, 1)


def _resolve_source(source: Any) -> nn.Module | None:
    from ..models import create_model
    from .checkpoint import load_l2tww_source

    if source is None or isinstance(source, nn.Module):
        return copy.deepcopy(source)
    if isinstance(source, (str, os.PathLike)) and Path(source).is_file():
        return load_l2tww_source(source)
    if isinstance(source, str):
        return create_model(source)
    raise TypeError(
        f"source must be a model, a registered name or a checkpoint path, got {source!r}"
    )


def _snapshot(step: TransferStep, probe: torch.Tensor, weights: Sequence, epoch: int) -> dict:
    snap: dict[str, Any] = {"epoch": epoch}
    if step.meta is not None:
        with torch.no_grad():
            meta = step.meta_outputs(step.source_features(probe))
        snap["lam"] = [float(v.mean()) for v in meta.lam]
        snap["w"] = [v.mean(0).tolist() for v in meta.w]
        if meta.gamma is not None:
            snap["gamma"] = [v.mean(0).tolist() for v in meta.gamma]
    params = dict(step.student.target.named_parameters())
    for name, index in weights:
        p = params.get(name)
        if p is not None and len(index) == p.ndim and all(i < s for i, s in zip(index, p.shape)):
            snap[f"{name}[{', '.join(map(str, index))}]"] = float(p.detach()[tuple(index)])
    return snap


def _check_finite(out: Mapping[str, float], epoch: int, batch: int, x, items) -> None:
    """Stop at the first NaN/Inf loss or meta-loss of a training step."""
    for key, what in (("loss", "training loss"), ("meta_loss", "meta-loss")):
        if key in out and not math.isfinite(out[key]):
            raise NonFiniteLossError(
                non_finite_loss_message(out[key], epoch, batch, x, items=items, what=what)
            )


def _finite_weights(model: nn.Module) -> bool:
    state = model.state_dict().values()
    return all(bool(torch.isfinite(v).all()) for v in state if v.is_floating_point())


def run(
    method: Method,
    *,
    source: nn.Module | str | os.PathLike | None,
    target: nn.Module | str,
    data: Mapping[str, Any],
    epochs: int,
    seed: int,
    **settings: Any,
) -> dict[str, Any]:
    """Train ``target`` on ``data["train"]`` with ``method`` and report test accuracy.

    Parameters
    ----------
    method : {"scratch", "ufm", "l2t_ww", "l2t_www", "attention"}
    source : nn.Module, registered name, checkpoint path or None
        Frozen source network with ``feature_info`` (copied; ``None`` only for scratch).
    target : nn.Module or registered name
        A name is built with ``num_classes`` (and ``in_channels``) from the data plus
        ``settings["target_kwargs"]`` (e.g. ``{"width": 0.25}``); a module is copied.
    data : mapping
        ``train``, ``val``, ``test`` datasets of ``(image (C, H, W), label)`` items
        (:class:`~cnnexplore_nb.data.ImageClassification` is fastest). ``val`` None (or
        missing): no model selection, the final epoch is reported.
    epochs : int
        Cosine schedule length.
    seed : int
        Seeds initialisation, shuffling and augmentation (same seed: same bits).
    **settings
        Any of :data:`DEFAULTS` (batch_size, lr, momentum, weight_decay, beta, pairs,
        inner_steps, meta_lr, meta_weight_decay, target_kwargs, eval_batch_size, snapshot,
        snapshot_weights, progress, return_model, num_threads, device). ``device``:
        where the networks train (``"cuda"``; ``"auto"`` takes CUDA where present); data
        are read and augmented on the CPU and moved per batch; a returned model stays on
        the device.

    Returns
    -------
    dict
        ``method, seed, epochs, test_acc`` (at the best validation epoch; at the final epoch
        when ``data["val"]`` is None), ``final_test_acc`` (at the final epoch), ``best_epoch``
        (1-based), ``best_val_acc, final_val_acc, seconds, n_train, pairs, history`` (one dict
        per epoch: epoch, lr, loss, ce, matching, meta_loss, train_acc, val_acc),
        ``torch_threads`` (torch threads during training: same seed, same bits holds at a
        fixed count) and, if ``snapshot``, ``snapshots`` (epoch 0 = initialisation): mean
        lambda, w and 3x3 gamma per pair on a fixed probe batch, and the chosen target weights.

    Raises
    ------
    NonFiniteLossError
        At the first NaN/Inf loss or meta-loss, naming the epoch, the batch (0-based) and,
        when the inputs hold NaN/Inf, those items (batch positions and dataset indices); also
        when the target's weights are NaN/Inf at the end of an epoch. Non-finite weights are
        never selected as the best epoch.
    """
    cfg = check_settings(settings)
    method = check_choice("method", method, list(METHODS))
    epochs = check_positive_int("epochs", epochs)
    check_source(source, method)
    missing = [k for k in ("train", "test") if k not in data]
    if missing:
        raise KeyError(
            f"data must hold 'train' and 'test' datasets (and 'val', or None); missing {missing}"
        )
    train_ds, val_ds, test_ds = data["train"], data.get("val"), data["test"]
    if len(train_ds) == 0:
        raise ValueError("data['train'] is empty")
    check_eval_data({"val": val_ds, "test": test_ds})
    cfg["device"] = resolve_device(cfg["device"])
    threads_before = torch.get_num_threads()
    if cfg["num_threads"] is not None:
        torch.set_num_threads(check_positive_int("num_threads", cfg["num_threads"]))
    try:
        return _run(method, source, target, train_ds, val_ds, test_ds, epochs, seed, cfg)
    finally:
        torch.set_num_threads(threads_before)


def _run(method, source, target, train_ds, val_ds, test_ds, epochs, seed, cfg) -> dict[str, Any]:
    from tqdm.auto import tqdm

    batch_size = cfg["batch_size"]
    t_start, cpu_start = time.perf_counter(), time.process_time()
    seed_everything(seed)
    src = None if method == "scratch" else _resolve_source(source)
    if isinstance(target, str):
        from ..models import create_model

        n_classes = getattr(train_ds, "num_classes", None)
        x0, _ = _batch(train_ds, torch.tensor([0]), None)
        if n_classes is None:
            n_classes = int(max(int(y) for _, y in (train_ds[i] for i in range(len(train_ds))))) + 1
        kwargs = {"num_classes": n_classes, "in_channels": x0.shape[1], **cfg["target_kwargs"]}
        tgt = create_model(target, **kwargs)
    else:
        tgt = copy.deepcopy(target)
        with torch.random.fork_rng(devices=[]):  # an augmenting dataset draws: restore RNG
            x0, _ = _batch(train_ds, torch.tensor([0]), None)
    for role, net in (("source", src), ("target", tgt)):
        error = None if net is None else channel_error(net, x0, "data['train'] images")
        if error is not None:
            raise ValueError(f"the {role} network does not fit the data: {error}")
    step = build_step(
        method, src, tgt, pairs=cfg["pairs"], beta=cfg["beta"], inner_steps=cfg["inner_steps"],
        lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"],
        meta_lr=cfg["meta_lr"], meta_weight_decay=cfg["meta_weight_decay"],
        which_input=cfg["which_input"], example=x0 if src is not None else None,
    )  # fmt: skip
    device = cfg["device"]
    if device.type != "cpu":  # Module.to keeps the Parameter objects the optimisers hold
        for net in (step.student, step.source, step.meta):
            if net is not None:
                net.to(device)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(step.optimizer, T_max=epochs)
    gen = torch.Generator().manual_seed(int(seed))
    probe = None
    snapshots: list[dict] = []
    if cfg["snapshot"]:
        probe_ds = (
            train_ds.with_transform(None) if hasattr(train_ds, "with_transform") else train_ds
        )
        probe, _ = _batch(probe_ds, torch.arange(min(len(train_ds), 64)), None)
        probe = probe.to(device)
        snapshots.append(_snapshot(step, probe, cfg["snapshot_weights"], 0))
    history: list[dict] = []
    best = (-math.inf, 0, None)
    bar = tqdm(range(1, epochs + 1), desc=method, disable=not cfg["progress"], leave=False)
    for epoch in bar:
        lr_now = step.lr
        order = torch.randperm(len(train_ds), generator=gen)
        sums: dict[str, float] = {}
        n_seen = 0
        for start in range(0, len(order), batch_size):
            items = order[start : start + batch_size]
            x, y = _batch(train_ds, items, gen)
            out = step.step(x.to(device), y.to(device))
            _check_finite(out, epoch, start // batch_size, x, items.tolist())
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + v * len(y)
            n_seen += len(y)
        sched.step()
        if not _finite_weights(step.student.target):
            raise NonFiniteLossError(
                f"the target's weights hold NaN/Inf after the last batch of epoch {epoch} (its "
                "losses were finite): the optimisation diverged; lower the learning rate"
            )
        val_acc = (
            evaluate(step.student.target, val_ds, batch_size=cfg["eval_batch_size"])
            if val_ds is not None
            else float("nan")
        )
        row = {"epoch": epoch, "lr": lr_now, "val_acc": val_acc}
        row.update({k if k != "acc" else "train_acc": v / n_seen for k, v in sums.items()})
        row.setdefault("meta_loss", float("nan"))
        history.append(row)
        if val_acc > best[0] or (val_ds is None and epoch == epochs):
            best = (val_acc, epoch, copy.deepcopy(step.student.target.state_dict()))
        if probe is not None:
            snapshots.append(_snapshot(step, probe, cfg["snapshot_weights"], epoch))
        bar.set_postfix(loss=f"{row['loss']:.3f}", val=f"{val_acc:.3f}")
    final_state = copy.deepcopy(step.student.target.state_dict())
    final_test = evaluate(step.student.target, test_ds, batch_size=cfg["eval_batch_size"])
    if best[1] == epochs:
        test_acc = final_test
    else:
        step.student.target.load_state_dict(best[2])
        test_acc = evaluate(step.student.target, test_ds, batch_size=cfg["eval_batch_size"])
        step.student.target.load_state_dict(final_state)
    record: dict[str, Any] = {
        "method": method, "seed": seed, "epochs": epochs, "test_acc": test_acc,
        "best_epoch": best[1], "best_val_acc": best[0], "final_val_acc": history[-1]["val_acc"],
        "final_test_acc": final_test,
        "seconds": time.perf_counter() - t_start,
        "cpu_seconds": time.process_time() - cpu_start, "n_train": len(train_ds),
        "pairs": [f"{s}-{t}" for s, t in step.pairs], "history": history,
        "torch_threads": torch.get_num_threads(),
    }  # fmt: skip
    if cfg["snapshot"]:
        record["snapshots"] = snapshots
    if cfg["return_model"]:
        record["model"] = step.student.target
    return record
