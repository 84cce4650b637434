"""Several seeds of one (method, N) cell in one process: ``run_many(method, ..., seeds=...)``.

Returns the records of ``[run(method, ..., seed=s) for s in seeds]`` (each seed with its own
data, initialisation, shuffling and augmentation stream, optimiser states, meta-networks and
best-epoch selection) while training all seeds as one stacked computation
(:class:`~cnnexplore_nb.transfer.grouped.GroupedStep`).
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
from torch.func import functional_call, vmap

from .._arrays import channel_error
from .._checks import (
    NonFiniteLossError,
    check_choice,
    check_positive_int,
    resolve_device,
    seed_everything,
)
from .grouped import GroupedStep, grouped_accuracy
from .l2t import METHODS
from .train import (
    Method,
    _batch,
    _check_finite,
    _resolve_source,
    _snapshot,
    build_step,
    check_eval_data,
    check_settings,
    check_source,
)

__all__ = ["run_many"]


def _check_data(data: Mapping[str, Any] | Sequence[Mapping[str, Any]], n: int) -> list:
    datas = [data] * n if isinstance(data, Mapping) else list(data)
    if len(datas) != n:
        raise ValueError(f"data must hold one mapping per seed ({n}), got {len(datas)}")
    for i, d in enumerate(datas):
        missing = [k for k in ("train", "test") if k not in d]
        if missing:
            raise KeyError(
                f"data[{i}] must hold 'train' and 'test' datasets (and 'val', or None); "
                f"missing {missing}"
            )
    if len({d.get("val") is None for d in datas}) > 1:
        raise ValueError("either every seed has a 'val' split or none has (None)")
    for split in ("train", "val", "test"):
        if datas[0].get(split) is None:
            continue
        sizes = [len(d[split]) for d in datas]
        if len(set(sizes)) > 1:
            raise ValueError(
                f"every seed's {split!r} split must have the same size to be trained together, "
                f"got sizes {sizes}"
            )
    if len(datas[0]["train"]) == 0:
        raise ValueError("data['train'] is empty")
    return datas


def run_many(
    method: Method,
    *,
    source: nn.Module | str | os.PathLike | None,
    target: nn.Module | str,
    data: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    epochs: int,
    seeds: Sequence[int],
    errors: Literal["raise", "return"] = "raise",
    device: torch.device | str | None = "cpu",
    **settings: Any,
) -> list[dict[str, Any] | NonFiniteLossError]:
    """Train the runs of several seeds together; the records of :func:`run` for each seed.

    Parameters
    ----------
    method : {"scratch", "ufm", "l2t_ww", "l2t_www", "attention"}
    source : nn.Module, checkpoint path or None
        One frozen source shared by every seed (run once per step on the stacked batch). A
        registered name is refused: :func:`run` would build a differently initialised
        source for each seed.
    target : nn.Module or registered name
        As in :func:`run` (built per seed after seeding, so initialisations match ``run``).
    data : mapping or sequence of mappings
        One ``{"train", "val", "test"}`` mapping per seed (its own N-per-class subset), or one
        mapping shared by every seed. Each split must have the same size for every seed.
    epochs : int
    seeds : sequence of int
        Distinct seeds; record ``i`` is the run of ``seeds[i]``.
    errors : {"raise", "return"}
        At a seed's first NaN/Inf loss: raise its :class:`NonFiniteLossError` (``"raise"``,
        as the loop over :func:`run` would), or put the error in that seed's place and carry
        on with the others (``"return"``).
    device : torch.device or str
        Where the stacked computation runs (e.g. ``"cuda"``; ``"auto"`` or None: CUDA where
        present); data are read on the CPU and
        moved per batch, records and returned models are on the CPU.
    **settings
        Any of :data:`~cnnexplore_nb.transfer.DEFAULTS`, as in :func:`run`.

    Returns
    -------
    list of dict (or NonFiniteLossError with ``errors="return"``)
        The records of :func:`run`, equal to a sequential run's up to floating-point
        rounding (the stacked convolutions sum in another order), plus ``group_size``;
        ``seconds`` and ``cpu_seconds`` are the group's times divided by its size.
    """
    cfg = check_settings(settings)
    method = check_choice("method", method, list(METHODS))
    errors = check_choice("errors", errors, ["raise", "return"])
    epochs = check_positive_int("epochs", epochs)
    seeds = [check_positive_int("seed", s, minimum=0) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, got {seeds}")
    check_source(source, method)  # a path that does not exist is named as such
    if isinstance(source, str) and not Path(source).is_file() and method != "scratch":
        raise TypeError(
            f"run_many shares one source between seeds; pass a module or a checkpoint path, "
            f"not the registered name {source!r} (run would initialise it per seed)"
        )
    datas = _check_data(data, len(seeds))
    for i, d in enumerate(datas):
        if i == 0 or d.get("val") is not datas[0].get("val") or d["test"] is not datas[0]["test"]:
            check_eval_data({"val": d.get("val"), "test": d["test"]}, where=f" of seed {seeds[i]}")
    device = resolve_device(device)
    threads_before = torch.get_num_threads()
    if cfg["num_threads"] is not None:
        torch.set_num_threads(check_positive_int("num_threads", cfg["num_threads"]))
    try:
        return _run_many(method, source, target, datas, epochs, seeds, cfg, errors, device)
    finally:
        torch.set_num_threads(threads_before)


def _build(method, source, target, datas, seeds, cfg):
    from ..models import create_model

    src = None if method == "scratch" else _resolve_source(source)
    steps = []
    for seed, d in zip(seeds, datas):
        seed_everything(seed)  # same draws, in the same order, as run()
        if isinstance(target, str):
            train_ds = d["train"]
            n_classes = getattr(train_ds, "num_classes", None)
            x0, _ = _batch(train_ds, torch.tensor([0]), None)
            if n_classes is None:
                labels = (int(train_ds[i][1]) for i in range(len(train_ds)))
                n_classes = max(labels) + 1
            kw = {"num_classes": n_classes, "in_channels": x0.shape[1], **cfg["target_kwargs"]}
            tgt = create_model(target, **kw)
        else:
            tgt = copy.deepcopy(target)
            with torch.random.fork_rng(devices=[]):  # an augmenting dataset draws: restore RNG
                x0, _ = _batch(d["train"], torch.tensor([0]), None)
        for role, net in (("source", src), ("target", tgt)):
            error = None if net is None else channel_error(net, x0, "data['train'] images")
            if error is not None:
                raise ValueError(f"the {role} network does not fit the data: {error}")
        step = build_step(
            method, src, tgt, pairs=cfg["pairs"], beta=cfg["beta"],
            inner_steps=cfg["inner_steps"], lr=cfg["lr"], momentum=cfg["momentum"],
            weight_decay=cfg["weight_decay"], meta_lr=cfg["meta_lr"],
            meta_weight_decay=cfg["meta_weight_decay"], which_input=cfg["which_input"],
            example=x0 if src is not None else None,
        )  # fmt: skip
        steps.append(step)
    return steps


def _accuracy(group: GroupedStep, states: Sequence[dict] | None, datasets, batch_size) -> list:
    """Per-seed accuracy of the current targets (or of ``states``, target state dicts)."""
    if states is None:
        params = {n[7:]: p.detach() for n, p in group.params.items() if n.startswith("target.")}
        buffers = {n[7:]: b for n, b in group.buffers.items() if n.startswith("target.")}
    else:
        names = dict(group.student.target.named_parameters())
        stacked = {k: torch.stack([s[k] for s in states]) for k in states[0]}
        params = {k: v for k, v in stacked.items() if k in names}
        buffers = {k: v for k, v in stacked.items() if k not in names}
    target = group.student.target

    def logits_of(x: torch.Tensor) -> torch.Tensor:
        return vmap(lambda p, b, xs: functional_call(target, (p, b), (xs,)))(params, buffers, x)

    per_seed = max(1, batch_size // len(datasets))  # the memory of one run's eval batch
    return grouped_accuracy(
        logits_of, datasets, _batch, batch_size=per_seed, module=target, device=group.device
    )


def _run_many(method, source, target, datas, epochs, seeds, cfg, errors, device) -> list:
    from tqdm.auto import tqdm

    t_start, cpu_start = time.perf_counter(), time.process_time()
    steps = _build(method, source, target, datas, seeds, cfg)
    group = GroupedStep(steps, device=device)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(group.optimizer, T_max=epochs)
    n_seeds = len(seeds)
    live = list(range(n_seeds))  # positions (in seeds) of the seeds still in the group
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    results: list[Any] = [None] * n_seeds
    history: list[list[dict]] = [[] for _ in seeds]
    best: list[tuple] = [(-math.inf, 0, None) for _ in seeds]
    snapshots: list[list[dict]] = [[] for _ in seeds]
    probes: list[torch.Tensor | None] = [None] * n_seeds
    if cfg["snapshot"]:
        for i, d in enumerate(datas):
            ds = d["train"]
            ds = ds.with_transform(None) if hasattr(ds, "with_transform") else ds
            probes[i] = _batch(ds, torch.arange(min(len(ds), 64)), None)[0]
            snapshots[i].append(_snapshot(steps[i], probes[i], cfg["snapshot_weights"], 0))
    bs, n_train = cfg["batch_size"], len(datas[0]["train"])

    def fail(pos: int, err: NonFiniteLossError) -> None:
        err = NonFiniteLossError(f"seed {seeds[live[pos]]}: {err}")  # which run of the group
        if errors == "raise":
            raise err
        results[live[pos]] = err

    bar = tqdm(range(1, epochs + 1), desc=f"{method} x{n_seeds}", disable=not cfg["progress"],
               leave=False)  # fmt: skip
    for epoch in bar:
        lr_now = group.lr
        orders = [torch.randperm(n_train, generator=gens[i]) for i in live]
        sums: dict[str, torch.Tensor] = {}
        n_seen = 0
        for start in range(0, n_train, bs):
            items = [o[start : start + bs] for o in orders]
            batches = [_batch(datas[i]["train"], it, gens[i]) for i, it in zip(live, items)]
            x, y = torch.stack([b[0] for b in batches]), torch.stack([b[1] for b in batches])
            out = {k: v.cpu() for k, v in group.step(x.to(device), y.to(device)).items()}
            dead = []
            for pos in range(len(live)):
                row = {k: float(v[pos]) for k, v in out.items()}
                try:
                    _check_finite(row, epoch, start // bs, x[pos], items[pos].tolist())
                except NonFiniteLossError as err:
                    fail(pos, err)
                    dead.append(pos)
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + v.double() * y.shape[1]
            n_seen += y.shape[1]
            if dead:
                keep = [p for p in range(len(live)) if p not in dead]
                group.select(keep)
                sums = {k: v[keep] for k, v in sums.items()}
                orders = [orders[p] for p in keep]
                live = [live[p] for p in keep]
                if not live:
                    return results
        sched.step()
        finite = group.finite().cpu()
        for pos in [p for p in range(len(live)) if not finite[p]]:
            fail(pos, NonFiniteLossError(
                f"the target's weights hold NaN/Inf after the last batch of epoch {epoch} (its "
                "losses were finite): the optimisation diverged; lower the learning rate"
            ))  # fmt: skip
        if not bool(finite.all()):
            keep = [p for p in range(len(live)) if finite[p]]
            group.select(keep)
            sums = {k: v[keep] for k, v in sums.items()}
            live = [live[p] for p in keep]
            if not live:
                return results
        no_val = any(datas[i].get("val") is None for i in live)
        val = (
            [float("nan")] * len(live)
            if no_val
            else _accuracy(group, None, [datas[i]["val"] for i in live], cfg["eval_batch_size"])
        )
        for pos, i in enumerate(live):
            row = {"epoch": epoch, "lr": lr_now, "val_acc": val[pos]}
            row.update({k if k != "acc" else "train_acc": float(v[pos]) / n_seen
                        for k, v in sums.items()})  # fmt: skip
            row.setdefault("meta_loss", float("nan"))
            history[i].append(row)
            if val[pos] > best[i][0] or (no_val and epoch == epochs):
                best[i] = (val[pos], epoch, group.seed_state(pos))  # on the group's device
            if probes[i] is not None:
                step = group.write_back(pos)
                snapshots[i].append(_snapshot(step, probes[i], cfg["snapshot_weights"], epoch))
        bar.set_postfix(val=f"{sum(val) / len(val):.3f}")
    tests = [datas[i]["test"] for i in live]
    final = _accuracy(group, None, tests, cfg["eval_batch_size"])
    if all(best[i][1] == epochs for i in live):
        test = final
    else:
        test = _accuracy(group, [best[i][2] for i in live], tests, cfg["eval_batch_size"])
    seconds = (time.perf_counter() - t_start) / n_seeds
    cpu_seconds = (time.process_time() - cpu_start) / n_seeds
    for pos, i in enumerate(live):
        record: dict[str, Any] = {
            "method": method, "seed": seeds[i], "epochs": epochs, "test_acc": test[pos],
            "best_epoch": best[i][1], "best_val_acc": best[i][0],
            "final_val_acc": history[i][-1]["val_acc"], "final_test_acc": final[pos],
            "seconds": seconds,
            "cpu_seconds": cpu_seconds, "n_train": n_train,
            "pairs": [f"{s}-{t}" for s, t in group.pairs], "history": history[i],
            "torch_threads": torch.get_num_threads(), "group_size": n_seeds,
        }  # fmt: skip
        if cfg["snapshot"]:
            record["snapshots"] = snapshots[i]
        if cfg["return_model"]:
            record["model"] = group.write_back(pos).student.target
        results[i] = record
    return results
