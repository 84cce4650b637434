"""The L2T-www chapter of the dissertation as a study: settings per scale, the cached source
network, the target data of one run, a picklable sweep run function and the tables/frames
the notebooks plot.

Protocol (``"embedded"``, the default): a ResNet-32 (reduced width) is pre-trained on the
digits 0-4 of scikit-learn's bundled digits (upsampled to 32x32) and cached under
``artifacts_dir("transfer", scale)``; a VGG-9-BN (reduced width) then learns the digits 5-9
from N samples per class with each method. ``"cpu"``: real CIFAR-10 with the L2T-ww reference
source (ResNet-32 trained on Tiny ImageNet, fetched and hash-checked on first use) at a
budget a 2-core CPU runs in about two hours. ``"full"`` is the dissertation's protocol
(CIFAR-10/100 and STL-10 at the published N values, 30 seeds, 200 epochs, the reference
source); ``"smoke"`` exercises the code in seconds.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from .._checks import check_choice
from ..notebook.scales import SCALES, artifacts_dir

__all__ = [
    "DATASETS",
    "scales_table",
    "weights_at_width",
    "EXPERIMENTS",
    "TRANSFER_SETTINGS",
    "VALIDATION",
    "ARMS",
    "ARM_COST",
    "METHODS",
    "arm_method",
    "dataset_split",
    "experiment_grid",
    "fixed_settings",
    "run_experiment",
    "run_transfer_config",
    "run_transfer_group",
    "run_cost",
    "source_key",
    "source_network",
    "sweep_run",
    "target_data",
    "transfer_settings",
]

DATASETS = ("digits", "stl10", "cifar10", "cifar100")
_TRAIN = {
    "batch_size": 32,
    # the reference's Adam rate; the map-input h moves γ H·W / C times faster than the
    # pooled h (studies.transfer_gamma), so even the short embedded runs need no more (at
    # 1e-3 it diverges within a few steps)
    "meta_lr": 1e-4,
    "val_per_class": 10,
    "validation": "fixed",
    # the "which" network: each source channel's map (the dissertation's h), or "pooled"
    "which_input": "maps",
    "methods": (
        "scratch",
        "ufm",
        "ufm_hint",
        "l2t_ww",
        "l2t_ww_frozen",
        "l2t_www",
    ),  # fmt: skip
    "source_classes": (0, 1, 2, 3, 4),
    "target_classes": (5, 6, 7, 8, 9),
    "pad": 4,
    "flip": False,
    "stl10_resize": "area",  # or "bilinear", the reference's transforms.Resize(32)
    # where runs train and how many seeds of a cell train together (transfer.run_many);
    # neither is part of a run's key: a store resumes across devices and group sizes
    "device": "cpu",
    "group_size": 1,  # on a CPU grouping is slower (README, Performance); 4-8 on a GPU
    # target weights recorded per epoch for the ablation (Figure 36): the six weights the
    # dissertation plots, w[0][o][i][kh][kw] of the first conv (64 maps at full width)
    "weights": (
        ("features.0.weight", (4, 2, 2, 0)),
        ("features.0.weight", (9, 2, 2, 0)),
        ("features.0.weight", (63, 1, 0, 0)),
        ("features.0.weight", (61, 0, 0, 0)),
        ("features.0.weight", (53, 0, 0, 0)),
        ("features.0.weight", (52, 0, 0, 0)),
    ),
}


def weights_at_width(
    weights: Any, width: float, full_maps: int = 64
) -> list[tuple[str, tuple[int, ...]]]:
    """The dissertation's weights at a reduced target width: output index modulo the maps.

    At width 1 the indices are the dissertation's; a narrower first conv (``full_maps *
    width`` maps) wraps the output index, so each plotted weight still exists (duplicates
    are dropped).
    """
    maps = max(1, int(round(full_maps * float(width))))
    out: list[tuple[str, tuple[int, ...]]] = []
    for name, index in weights:
        idx = tuple(int(i) for i in index)
        if name == "features.0.weight":
            idx = (idx[0] % maps, *idx[1:])
        if (name, idx) not in out:
            out.append((name, idx))
    return out


#: Settings per scale. ``n_values``: samples per class of the limited-data sweep per
#: dataset; ``imbalanced``: dataset, N of the large classes, the small class and its n;
#: ``ablation``: dataset, N, seed and epochs of the same-initialisation runs (Figures 35-36);
#: ``snapshot_sweep``: record γ/λ/w/weights per epoch in every sweep run (then the ablation
#: reuses the sweep's runs when its settings coincide).
TRANSFER_SETTINGS: dict[str, dict[str, Any]] = {
    "smoke": {
        **_TRAIN,
        "datasets": ("digits",),
        "n_values": {"digits": (5, 10)},
        "seeds": (0,),
        "epochs": 1,
        "source": {"dataset": "digits", "width": 0.25, "epochs": 1},
        "target_width": 0.0625,
        "imbalanced": {"dataset": "digits", "n": 5, "small_class": 3, "n_small": 1},
        "imbalanced_methods": ("scratch", "l2t_ww", "l2t_www"),
        "ablation": {"dataset": "digits", "n": 5, "seed": 0, "epochs": 1},
        "snapshot_sweep": True,
        "executor": "inline",
    },
    "embedded": {
        **_TRAIN,
        "datasets": ("digits",),
        "n_values": {"digits": (5, 10, 15)},
        "seeds": (0, 1, 2),
        "epochs": 10,
        # the L2T-ww reference source when it is already here (DATA_DIR or the data cache;
        # never downloaded at this scale), else a ResNet-32 trained on digits 0-4
        "source": {"dataset": "digits", "width": 0.25, "epochs": 15, "reference": "if-present"},
        "target_width": 0.125,
        "imbalanced": {"dataset": "digits", "n": 10, "small_class": 0, "n_small": 2},
        "imbalanced_methods": ("scratch", "l2t_ww", "l2t_www"),
        "ablation": {"dataset": "digits", "n": 10, "seed": 0, "epochs": 10},
        "snapshot_sweep": True,
        "executor": "local",
    },
    "cpu": {
        **_TRAIN,
        # the documents' protocol where it fits this CPU: full-width VGG-9, 200 epochs,
        # batch 128, the reference source, CIFAR-10 at N = 10 (one batch per epoch), the
        # official code's hold-out of 50 images per class (its CIFAR-100 / STL-10 splits).
        # Seeds: as many as fit two hours on 2 one-thread workers. One run costs about 11-14
        # CPU minutes for scratch, both UFM readings and the frozen arm, 59 for L2T-ww and
        # L2T-www (benchmarks/bench_l2t_run.py): one seed of the six arms plus the pooled
        # which-network is about 1.9 h on two idle cores, a second seed would add 1.4 h.
        # The store resumes: a re-run with more seeds (notebook 07's SEEDS) adds to these.
        "batch_size": 128,
        "meta_lr": 1e-4,
        "flip": True,
        "val_per_class": 50,
        "datasets": ("cifar10",),
        "n_values": {"cifar10": (10,)},
        "seeds": (0,),
        "epochs": 200,
        "source": {"dataset": "tiny_imagenet", "width": 1.0, "epochs": 0, "reference": True},
        "target_width": 1.0,
        # N = 30 per class with a small class: 3 batches per epoch, about 2.5 h per L2T run
        # here; the full scale runs the dissertation's STL-10 version
        "imbalanced": None,
        "imbalanced_methods": ("scratch", "l2t_ww", "l2t_www"),
        "ablation": {"dataset": "cifar10", "n": 10, "seed": 0, "epochs": 200},
        "snapshot_sweep": True,
        "executor": "local",
    },
    "full": {
        **_TRAIN,
        "batch_size": 128,
        "meta_lr": 1e-4,
        "flip": True,
        "datasets": ("stl10", "cifar10", "cifar100"),
        "n_values": {
            "stl10": (5, 10, 30, 50, 100),
            "cifar10": (10, 30, 50, 100, 150),
            "cifar100": (5, 10, 20, 30, 50),
        },
        "val_per_class": 50,  # the official splits' hold-out (CIFAR-100, STL-10)
        "seeds": tuple(range(30)),
        "epochs": 200,
        "source": {"dataset": "tiny_imagenet", "width": 1.0, "epochs": 200, "reference": True},
        "target_width": 1.0,
        "imbalanced": {"dataset": "stl10", "n": 100, "small_class": 0, "n_small": 10},
        "imbalanced_methods": ("scratch", "l2t_ww", "l2t_www"),
        "ablation": {"dataset": "stl10", "n": 100, "seed": 0, "epochs": 200},
        "snapshot_sweep": False,
        "executor": "local",
        "device": "auto",  # CUDA where present
        "group_size": 4,  # seeds per stacked run on a GPU (about 3.7 GB per L2T-www seed)
    },
}
EXPERIMENTS = ("limited", "imbalanced", "ablation", "which")
#: Validation protocols: ``"fixed"`` (default) one hold-out of ``val_per_class`` images per
#: class drawn once from the training pool, shared by every seed and method and never
#: trained on (the L2T-ww reference keeps one fixed split); ``"per_seed"`` a fresh hold-out
#: drawn with each seed beside its N training images; ``"none"`` no model selection: the
#: final epoch's test accuracy is reported (the strictest reading of "N labelled images").
VALIDATION = ("fixed", "per_seed", "none")
_HOLDOUT_SEED = (
    20_190_609  # the fixed hold-out's draw (any constant; this one is L2T-ww's ICML date)
)
#: The study's arms: ``arm -> (method of transfer.run, its own settings)``. Both readings of
#: the dissertation's UFM baseline: ``ufm`` matches the 15 pairs with lambda = 1, w = 1/C;
#: ``ufm_hint`` is FitNets' one hint pair (Romero et al.). ``l2t_ww_frozen`` is L2T-ww with
#: its meta-networks kept at their initial values (``meta_lr=0``: lambda random per seed as
#: initialised, w = 1/C), the ablation of what meta-learning adds.
ARMS: dict[str, tuple[str, dict[str, Any]]] = {
    "scratch": ("scratch", {}),
    "ufm": ("ufm", {}),
    "ufm_hint": ("ufm_hint", {}),
    "l2t_ww": ("l2t_ww", {}),
    "l2t_ww_frozen": ("l2t_ww", {"meta_lr": 0.0}),
    "l2t_www": ("l2t_www", {}),
}
METHODS = tuple(ARMS)
#: Relative cost of one run per arm (an L2T iteration is about 13 plain steps): the sweep
#: starts the longest runs first, so that workers finish together.
ARM_COST = {"scratch": 1.0, "ufm": 1.5, "ufm_hint": 1.3, "l2t_ww_frozen": 1.5, "l2t_ww": 8.0,
            "l2t_www": 8.5}  # fmt: skip


def transfer_settings(scale: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A deep copy of ``TRANSFER_SETTINGS[scale]`` updated with ``overrides`` (known keys)."""
    check_choice("scale", scale, SCALES)
    out = copy.deepcopy(TRANSFER_SETTINGS[scale])
    for key, value in (overrides or {}).items():
        if key not in out:
            raise KeyError(f"unknown transfer setting {key!r}; expected one of {sorted(out)}")
        out[key] = copy.deepcopy(value)
    for arm in (*out["methods"], *out["imbalanced_methods"]):
        check_choice("method (arm)", arm, list(ARMS))
    out["seeds"] = tuple(int(v) for v in out["seeds"])
    out["scale"] = scale
    return out


def scales_table() -> pd.DataFrame:
    """The transfer study's settings at every scale, side by side (for the notebooks)."""

    def data(s: Mapping[str, Any]) -> str:
        return "; ".join(
            f"{ds} N = {', '.join(str(n) for n in s['n_values'][ds])}" for ds in s["datasets"]
        )

    def source(s: Mapping[str, Any]) -> str:
        src = s["source"]
        return f"ResNet-32 ×{src['width']:g} on {src['dataset']}, {src['epochs']} epochs"

    rows = {
        "limited-data sweep": data,
        "seeds × epochs": lambda s: f"{len(s['seeds'])} × {s['epochs']}",
        "source": source,
        "target": lambda s: f"VGG-9-BN ×{s['target_width']:g}",
        "arms": lambda s: ", ".join(s["methods"]),
        "validation": lambda s: f"{s['validation']}, {s['val_per_class']} per class",
        "imbalanced": lambda s: (
            "not run (see the notebook)"
            if s["imbalanced"] is None
            else f"{s['imbalanced']['dataset']}: {s['imbalanced']['n']} per class, class "
            f"{s['imbalanced']['small_class']} with {s['imbalanced']['n_small']}"
        ),
        "ablation run": lambda s: (
            f"{s['ablation']['dataset']}, N = {s['ablation']['n']}, {s['ablation']['epochs']} epochs"
        ),
        "batch, meta lr": lambda s: f"{s['batch_size']}, {s['meta_lr']:g}",
        "executor": lambda s: s["executor"],
        "device, seeds per group": lambda s: f"{s['device']}, {s['group_size']}",
    }
    return pd.DataFrame(
        {sc: {k: f(TRANSFER_SETTINGS[sc]) for k, f in rows.items()} for sc in TRANSFER_SETTINGS}
    )


# ------------------------------------------------------------------------------- data
@functools.lru_cache(maxsize=8)
def dataset_split(
    name: str, split: str, data_dir: str | None = None, size: int = 32, resize: str = "area"
):
    """One split (``"train"``/``"test"``) of a dataset, cached per process.

    ``digits`` ships with scikit-learn; the others are read from ``data_dir``, or from the
    data cache when it is None (Tiny ImageNet's ``val`` split stands in for ``test``).
    ``resize`` is STL-10's 96 -> 32 resampling: ``"area"`` or the reference's ``"bilinear"``.
    """
    from .. import data

    check_choice("dataset", name, [*DATASETS, "tiny_imagenet"])
    if name == "digits":
        return data.digits(split, size=size)
    # data_dir None: the data cache, filled on first use (cnnexplore_nb.data.fetch)
    if name == "tiny_imagenet":
        return data.tiny_imagenet(data_dir, "val" if split == "test" else "train", size=size)
    if name == "stl10":
        return data.stl10(data_dir, split, size=size, resize=resize)
    return getattr(data, name)(data_dir, split)


def _augment(settings: Mapping[str, Any]):
    from ..data.classification import Augment

    return Augment(pad=int(settings["pad"]), flip=bool(settings["flip"]))


def target_data(
    settings: Mapping[str, Any],
    dataset: str,
    n: int,
    seed: int,
    *,
    data_dir: str | None = None,
    imbalanced: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """``{"train", "val", "test"}`` of one run: N samples per class drawn with ``seed``.

    Digits use the target classes (5-9, relabelled 0-4). With ``imbalanced``
    (``small_class``, ``n_small``) that class gets ``n_small`` training samples and
    ``test`` holds only that class, so ``test_acc`` is the accuracy on the small class.
    """
    from ..data import imbalanced_subset, per_class_subset

    resize = str(settings.get("stl10_resize", "area"))
    pool = dataset_split(dataset, "train", data_dir, resize=resize)
    test = dataset_split(dataset, "test", data_dir, resize=resize)
    if dataset == "digits":
        classes = list(settings["target_classes"])
        pool, test = pool.select_classes(classes), test.select_classes(classes)
    vpc = int(settings["val_per_class"])
    mode = check_choice("validation", settings.get("validation", "fixed"), VALIDATION)
    val = None
    if mode == "fixed":  # one hold-out for every seed and method, never trained on
        val, pool = _fixed_holdout(pool, vpc)
    draw_val = vpc if mode == "per_seed" else 0
    if imbalanced is None:
        drawn = per_class_subset(pool, int(n), rng=int(seed), val_per_class=draw_val)
    else:
        small = int(imbalanced["small_class"])
        drawn = imbalanced_subset(
            pool, int(n), small_class=small, n_small=int(imbalanced["n_small"]),
            rng=int(seed), val_per_class=draw_val,
        )  # fmt: skip
        test = test.subset(np.flatnonzero(test.labels.numpy() == small))
    train, val = drawn if draw_val else (drawn, val)
    return {"train": train.with_transform(_augment(settings)), "val": val, "test": test}


def _fixed_holdout(pool: Any, per_class: int) -> tuple[Any, Any]:
    """``(holdout, rest)``: ``per_class`` samples of every class drawn once with a fixed seed
    (the same for every run), and the pool without them."""
    rng = np.random.default_rng(_HOLDOUT_SEED)
    labels = pool.labels.numpy()
    hold = np.concatenate(
        [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in range(pool.num_classes)]
    )
    keep = np.ones(len(labels), bool)
    keep[hold] = False
    return pool.subset(np.sort(hold)), pool.subset(np.flatnonzero(keep))


# ----------------------------------------------------------------------------- source
def source_network(
    settings: Mapping[str, Any],
    *,
    data_dir: str | None = None,
    checkpoint: str | os.PathLike | None = None,
    retrain: bool = False,
    progress: bool = True,
    threads: int | None = 1,
) -> tuple[nn.Module, Path, dict[str, Any]]:
    """The frozen source ResNet-32: pre-trained once and cached, or imported.

    Returns ``(model, path, info)``; ``path`` is a file :func:`~cnnexplore_nb.transfer.
    load_l2tww_source` reads (workers load it from there) and ``info`` says how it was made.
    ``checkpoint`` imports a source file instead of training. ``settings["source"]
    ["reference"]``: True takes the L2T-ww reference file (from ``data_dir``, the folder
    holding ``data_dir`` (data sets side by side), the data cache, or downloaded), ``"if-present"`` takes it only when it is already there (no
    download) and trains otherwise; ``info`` says which. ``threads``:
    torch threads while training (1 is fastest on a shared 2-core CPU; None keeps torch's).
    """
    from ..io import load_checkpoint, save_checkpoint
    from ..transfer import load_l2tww_source, run

    src = settings["source"]
    what = "checkpoint"
    if checkpoint is None and src.get("reference"):
        from ..data.fetch import fetch, locate

        near = [data_dir, str(Path(data_dir).expanduser().parent)] if data_dir else []
        checkpoint = locate("l2tww_source", *near, None)
        if checkpoint is None and src["reference"] != "if-present":
            checkpoint = fetch("l2tww_source", progress=progress)
        what = "L2T-ww reference (ResNet-32 on Tiny ImageNet)"
    if checkpoint is not None:
        model = load_l2tww_source(checkpoint)
        return model, Path(checkpoint), {"source": what, "path": str(checkpoint)}
    name = f"resnet32_w{src['width']}_{src['dataset']}_e{src['epochs']}"
    path = artifacts_dir("transfer", str(settings.get("scale", "custom"))) / f"source_{name}.pt"
    note = {}
    if src.get("reference") == "if-present":
        note = {"note": "no L2T-ww reference source in DATA_DIR or the data cache: trained here"}
    if path.is_file() and not retrain:
        blob = load_checkpoint(path)
        model = load_l2tww_source(path, width=float(src["width"]))
        return model, path, {"source": name, "cached": True, "test_acc": blob["test_acc"], **note}
    pool, test = (
        dataset_split(src["dataset"], "train", data_dir),
        dataset_split(src["dataset"], "test", data_dir),
    )
    if src["dataset"] == "digits":
        pool = pool.select_classes(list(settings["source_classes"]))
        test = test.select_classes(list(settings["source_classes"]))
    rng = np.random.default_rng(0)
    hold = np.concatenate(
        [
            rng.permutation(np.flatnonzero(pool.labels.numpy() == c))[:10]
            for c in range(pool.num_classes)
        ]
    )
    mask = np.ones(len(pool), bool)
    mask[hold] = False
    data = {
        "train": pool.subset(np.flatnonzero(mask)).with_transform(_augment(settings)),
        "val": pool.subset(hold),
        "test": test,
    }
    rec = run(
        "scratch", source=None, target="resnet32", data=data, epochs=int(src["epochs"]), seed=0,
        batch_size=32, target_kwargs={"width": float(src["width"])}, return_model=True,
        progress=progress, num_threads=threads,
    )  # fmt: skip
    model = rec["model"].eval()
    state = {"state_dict": model.state_dict(), "num_classes": pool.num_classes,
             "test_acc": float(rec["test_acc"]), "width": float(src["width"])}  # fmt: skip
    save_checkpoint(state, path)
    return (
        model,
        path,
        {"source": name, "cached": False, "test_acc": float(rec["test_acc"]), **note},
    )


@functools.lru_cache(maxsize=2)
def _load_source(path: str, mtime: float) -> nn.Module:
    """The source file as a module (cached per process); the width of a source trained here
    is stored in its file, the reference file is full width."""
    from ..io import load_checkpoint
    from ..transfer import load_l2tww_source

    width = float(load_checkpoint(path).get("width", 1.0))
    return load_l2tww_source(path, width=width) if width != 1.0 else load_l2tww_source(path)


# ----------------------------------------------------------------------------- runs
def _imbalanced(config: Mapping[str, Any]) -> dict[str, int] | None:
    if config.get("n_small") is None:
        return None
    return {"small_class": config["small_class"], "n_small": config["n_small"]}


def _config_data(config: Mapping[str, Any], data_dir: str | None) -> dict[str, Any]:
    return target_data(
        config, config["dataset"], config["n"], config["seed"], data_dir=data_dir,
        imbalanced=_imbalanced(config),
    )  # fmt: skip


def _config_source(config: Mapping[str, Any], source_path: str) -> nn.Module | None:
    if config["method"] == "scratch":
        return None
    return _load_source(str(source_path), os.path.getmtime(source_path))


def arm_method(arm: str) -> tuple[str, dict[str, Any]]:
    """``(method of transfer.run, the arm's own settings)`` of a study arm (:data:`ARMS`)."""
    method, extra = ARMS[check_choice("method (arm)", arm, list(ARMS))]
    return method, dict(extra)


def _run_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The :func:`~cnnexplore_nb.transfer.run` settings of one configuration (its arm's own
    settings, e.g. ``meta_lr=0`` of ``l2t_ww_frozen``, win)."""
    _, extra = arm_method(config["method"])
    return dict(
        epochs=int(config["epochs"]), batch_size=int(config["batch_size"]),
        meta_lr=float(config["meta_lr"]), target_kwargs={"width": float(config["target_width"])},
        which_input=str(config.get("which_input", "maps")),
        snapshot=bool(config.get("snapshot", False)),
        snapshot_weights=tuple((w, tuple(i)) for w, i in config.get("weights", ()))
        or (("features.0.weight", (4, 2, 2, 0)),),
        progress=False, num_threads=int(config.get("threads", 1)),
    ) | extra  # fmt: skip


def _sweep_record(config: Mapping[str, Any], rec: Mapping[str, Any]) -> dict[str, Any]:
    """A run's record as the sweep stores it: no model, the validation curve, and the
    small class's accuracy under its own name in the imbalanced experiment."""
    out = {k: v for k, v in rec.items() if k not in ("method", "seed", "epochs", "model")}
    out["val_curve"] = [h["val_acc"] for h in out["history"]]  # history: losses per epoch
    if _imbalanced(config) is not None:
        out["small_class_acc"] = out.pop("test_acc")
    return out


def run_transfer_config(
    config: Mapping[str, Any],
    *,
    source_path: str,
    data_dir: str | None = None,
    device: str | None = "cpu",
) -> dict[str, Any]:
    """Run one sweep configuration (picklable through :func:`sweep_run`).

    ``config`` holds ``dataset, n, method, seed`` and the fixed settings ``epochs,
    target_width, batch_size, meta_lr, val_per_class, pad, flip, target_classes,
    source`` plus, optionally, ``small_class``/``n_small`` (imbalanced) and
    ``snapshot``. Returns a JSON-serialisable record (no model).
    """
    from ..transfer import run

    rec = run(
        arm_method(config["method"])[0], source=_config_source(config, source_path),
        target="vgg9_bn",
        data=_config_data(config, data_dir), seed=int(config["seed"]), device=device,
        **_run_settings(config),
    )  # fmt: skip
    return _sweep_record(config, rec)


def run_transfer_group(
    configs: list[dict[str, Any]],
    *,
    source_path: str,
    data_dir: str | None = None,
    device: str | None = "cpu",
) -> list[dict[str, Any] | BaseException]:
    """Run the configurations of one cell (they differ only in their seed) together with
    :func:`~cnnexplore_nb.transfer.run_many`; one record (or the error of a seed that
    failed alone) per configuration, in order."""
    from ..transfer import run_many

    first = configs[0]
    recs = run_many(
        arm_method(first["method"])[0], source=_config_source(first, source_path),
        target="vgg9_bn",
        data=[_config_data(c, data_dir) for c in configs],
        seeds=[int(c["seed"]) for c in configs], errors="return", device=device,
        **_run_settings(first),
    )  # fmt: skip
    return [
        r if isinstance(r, BaseException) else _sweep_record(c, r)
        for c, r in zip(configs, recs, strict=True)
    ]


def sweep_run(
    source_path: str | os.PathLike, data_dir: str | None = None, device: str | None = "cpu"
):
    """The picklable run function for :func:`~cnnexplore_nb.experiments.run_sweep`: one
    configuration at a time, or the seeds of a cell together (a
    :class:`~cnnexplore_nb.experiments.GroupedRun`; the sweep's ``group_size`` decides)."""
    from ..experiments import GroupedRun

    kw = {"source_path": str(source_path), "data_dir": data_dir, "device": device}
    return GroupedRun(
        functools.partial(run_transfer_config, **kw), functools.partial(run_transfer_group, **kw)
    )


def fixed_settings(settings: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """The settings every configuration of a sweep shares (part of each run's key)."""
    keys = (
        "epochs",
        "batch_size",
        "meta_lr",
        "val_per_class",
        "pad",
        "flip",
        "target_width",
        "stl10_resize",
        "validation",
        "which_input",
    )
    out: dict[str, Any] = {k: settings[k] for k in keys}
    out["target_classes"] = list(settings["target_classes"])
    src = settings["source"]
    out["source"] = src.get("id") or f"resnet32_w{src['width']}_{src['dataset']}_e{src['epochs']}"
    out["snapshot"] = bool(settings["snapshot_sweep"])
    out["weights"] = [
        [name, list(index)]
        for name, index in weights_at_width(settings["weights"], settings["target_width"])
    ]
    out.update(extra)
    return out


def experiment_grid(
    settings: Mapping[str, Any], experiment: str
) -> tuple[dict[str, list], dict[str, Any]]:
    """``(grid, fixed)`` of one experiment for :func:`~cnnexplore_nb.experiments.run_sweep`.

    ``"limited"``: N x method x seed for the single dataset of ``settings["datasets"]``
    (datasets have different N values: :func:`run_experiment` loops over them);
    ``"imbalanced"``: the imbalanced methods x seeds; ``"ablation"``: scratch, L2T-ww and
    L2T-www from one seed (same initialisation) with snapshots; ``"which"``: L2T-www with
    each "which" network (``which_input`` "maps" and "pooled") on the ablation's cell (the
    "maps" run is the sweep's own when the settings coincide).
    """
    check_choice("experiment", experiment, EXPERIMENTS)
    if experiment == "limited":
        ds = settings["datasets"][0] if len(settings["datasets"]) == 1 else None
        if ds is None:
            raise ValueError("several datasets: use experiment_grid(dict(settings, datasets=[d]))")
        grid = {"dataset": [ds], "n": list(settings["n_values"][ds]),
                "method": list(settings["methods"]), "seed": list(settings["seeds"])}  # fmt: skip
        return grid, fixed_settings(settings)
    if experiment == "imbalanced":
        imb = settings["imbalanced"]
        if imb is None:
            raise ValueError(
                f"the {settings.get('scale', 'given')!r} settings run no imbalanced experiment "
                "(settings['imbalanced'] is None)"
            )
        grid = {"dataset": [imb["dataset"]], "n": [imb["n"]],
                "method": list(settings["imbalanced_methods"]), "seed": list(settings["seeds"])}  # fmt: skip
        extra = {"small_class": imb["small_class"], "n_small": imb["n_small"]}
        return grid, fixed_settings(settings, **extra)
    abl = settings["ablation"]
    if experiment == "which":  # both "which" networks on the ablation's cell, once
        grid = {"dataset": [abl["dataset"]], "n": [abl["n"]], "method": ["l2t_www"],
                "seed": [abl["seed"]], "which_input": ["maps", "pooled"]}  # fmt: skip
        fixed = fixed_settings(settings, epochs=abl["epochs"], snapshot=True)
        fixed.pop("which_input")
        return grid, fixed
    grid = {"dataset": [abl["dataset"]], "n": [abl["n"]],
            "method": ["scratch", "l2t_ww", "l2t_www"], "seed": [abl["seed"]]}  # fmt: skip
    return grid, fixed_settings(settings, epochs=abl["epochs"], snapshot=True)


def run_experiment(
    settings: Mapping[str, Any],
    experiment: str,
    source_path: str | os.PathLike,
    *,
    data_dir: str | None = None,
    executor: str = "local",
    workers: int | None = None,
    client: Any = None,
    store: str | os.PathLike | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run (or resume) one experiment through :func:`~cnnexplore_nb.experiments.run_sweep`.

    The result store defaults to ``artifacts_dir("transfer", scale, "runs")`` (shared by the
    experiments: identical configurations are run once). The limited-data experiment loops
    over ``settings["datasets"]`` and concatenates the sweeps. ``settings["device"]`` is
    where each run trains and ``settings["group_size"]`` how many seeds of a cell train
    together (:func:`~cnnexplore_nb.transfer.run_many`); a local executor on a CUDA device
    defaults to one worker process.
    """
    from .._checks import resolve_device
    from ..experiments import run_sweep

    store = store or artifacts_dir("transfer", str(settings.get("scale", "custom")), "runs")
    device = settings.get("device", "cpu")  # resolved where the runs train (Dask workers)
    if executor != "dask" and resolve_device(device).type != "cpu" and workers is None:
        workers = 1  # one process drives the GPU; its seeds are grouped instead
    run = sweep_run(source_path, data_dir, device=device)
    kw = dict(
        executor=executor, workers=workers, client=client, progress=progress,
        group_size=int(settings.get("group_size", 1)), priority=run_cost,
    )  # fmt: skip
    source = source_key(source_path)
    if experiment == "limited":
        frames = []
        for ds in settings["datasets"]:
            grid, fixed = experiment_grid({**settings, "datasets": (ds,)}, experiment)
            frames.append(run_sweep(grid, run, store, fixed={**fixed, "source": source}, **kw))
        return pd.concat(frames, ignore_index=True)
    grid, fixed = experiment_grid(settings, experiment)
    return run_sweep(grid, run, store, fixed={**fixed, "source": source}, **kw)


def run_cost(config: Mapping[str, Any]) -> float:
    """Relative cost of one configuration (arm x samples x epochs): the sweep's priority."""
    return (
        ARM_COST.get(str(config.get("method")), 1.0)
        * float(config.get("n", 1))
        * float(config.get("epochs", 1))
    )


def source_key(source_path: str | os.PathLike) -> str:
    """The source's part of a run's key: the file's name and content hash (a different
    source file never reuses another's runs)."""
    import hashlib

    digest = hashlib.sha256(Path(source_path).read_bytes()).hexdigest()[:12]
    return f"{Path(source_path).name}@{digest}"
