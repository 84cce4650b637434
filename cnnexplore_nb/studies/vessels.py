"""The vessel-segmentation study of the thesis (chapters 4-5): settings per scale, data,
cached training of CNN1/CNN6/CNN10 and the training tables (thesis Tables 4 and 5).

The correlation part of the study (maps of the selected layers, per-image tables and their
aggregation over many images) is in :mod:`cnnexplore_nb.studies.vessel_correlation`.

Scales (see :mod:`cnnexplore_nb.notebook.scales`): ``"smoke"`` (seconds, narrow
networks), ``"embedded"`` (a few minutes on a 2-core CPU: synthetic images, 64 maps per
layer as in the thesis), ``"cpu"`` (VessMAP, the public microscopy set of the thesis's lab:
its published train / val / test splits, trained on random 96 x 96 crops in the 8
dihedral orientations, with a warm-up and cosine learning rate and cross-entropy plus
soft Dice, for a budget a loaded 2-core CPU runs in under an hour) and ``"full"`` (the thesis protocol on VessMAP or on a
folder of image/mask pairs: full resolution, 250 epochs, batch sizes 5/3/1). A folder given
as ``data_dir`` replaces VessMAP at the cpu and full scales.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._checks import check_choice, seed_everything
from ..data import (
    normalize_intensity,
    retina_image,
)
from ..io import atomic_path, load_checkpoint
from ..models import create_model
from ..notebook.scales import SCALES, artifacts_dir
from ..training.train import train_segmentation
from .vessel_data import (  # noqa: F401 - the data half of the study, re-exported
    DATA_ENV,
    _random_crop,
    _Repeated,
    _resolve_dir,
    stack_images,
    vessel_data,
)

__all__ = [
    "DISPLAY_NAMES",
    "MODELS",
    "VESSEL_SETTINGS",
    "retina_input",
    "scales_table",
    "stack_images",
    "trained_vessel_model",
    "vessel_data",
    "vessel_settings",
]

MODELS = ("cnn1", "cnn6", "cnn10")
DISPLAY_NAMES = {"cnn1": "CNN1", "cnn6": "CNN6", "cnn10": "CNN10"}

_BATCH = {"cnn1": 5, "cnn6": 3, "cnn10": 1}  # thesis batch sizes (by GPU memory)
_COMMON = {
    "lr": 0.01,
    "optimizer": "adam",
    "seed": 0,
    "difficulty": 0.5,
    "vessel_fraction": 0.12,
    "test_fractions": (0.05, 0.12, 0.25),
    "batch_sizes": _BATCH,
    # the thesis recipe; the cpu scale replaces it (see its entry)
    "loss": "ce",
    "schedule": "constant",
    "warmup_epochs": 0,
    "augment": False,
    "repeats": 1,
}
#: Settings per scale. ``size``/``n_images``: synthetic images (None at full scale: the
#: folder's images at full resolution); ``test_fractions``: vessel fractions of the three
#: test images of Table 5; ``n_aggregate``: images of the aggregated correlation study.
VESSEL_SETTINGS: dict[str, dict[str, Any]] = {
    "smoke": {
        **_COMMON,
        "source": "synthetic",
        "size": 32,
        "n_images": 10,
        "width": 8,
        "epochs": {"cnn1": 1, "cnn6": 1, "cnn10": 1},
        "n_aggregate": 4,
    },
    "embedded": {
        **_COMMON,
        "source": "synthetic",
        "size": 64,
        "n_images": 40,
        "width": 64,
        "epochs": {"cnn1": 8, "cnn6": 5, "cnn10": 5},
        "n_aggregate": 16,
    },
    "cpu": {
        **_COMMON,
        "source": "vessmap",
        "size": None,
        "n_images": None,
        "width": 64,
        # The budget: about one CPU core for <= 60 min, notebooks 00-05. The networks see
        # 3-21 pixels, so a 96 x 96 crop loses almost no context and costs a seventh of a
        # 256 x 256 image: 2 random crops per image per epoch, each in one of the 8
        # dihedral orientations (vessels have no preferred direction), batches of 4 crops
        # (4 x 96^2 pixels keep BatchNorm's statistics stable), Adam with one warm-up
        # epoch then a cosine decay (the last epochs anneal, so the run ends converged),
        # and cross-entropy plus soft Dice (vessels are ~15 % of the pixels; Dice weighs
        # them as IoU does). Selection on val, at full resolution, every epoch. Measured
        # on one core (the other busy): a CNN6 epoch (80 crops + 10 validation images)
        # takes about 14 s; CNN6's validation IoU is 0.75 after 10 epochs and 0.776 after
        # 30 (+0.001 over the last 5: the curve is flat), so 30 epochs; CNN10 costs about
        # 1.7x per epoch, CNN1 a third.
        "crop": 96,
        "augment": True,
        "repeats": 2,
        "lr": 3e-3,
        "loss": "ce+dice",
        "schedule": "cosine",
        "warmup_epochs": 1,
        "batch_sizes": {"cnn1": 4, "cnn6": 4, "cnn10": 4},
        "epochs": {"cnn1": 40, "cnn6": 30, "cnn10": 20},
        "n_aggregate": 12,
    },
    "full": {
        **_COMMON,
        "source": "vessmap",
        "size": None,
        "n_images": None,
        "width": 64,
        "crop": None,
        "epochs": {"cnn1": 250, "cnn6": 250, "cnn10": 250},
        "n_aggregate": 50,
    },
}
for _s in VESSEL_SETTINGS.values():
    _s.setdefault("crop", None)


def vessel_settings(scale: str, settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A deep copy of ``VESSEL_SETTINGS[scale]`` updated with ``settings`` (if given)."""
    check_choice("scale", scale, SCALES)
    out = copy.deepcopy(VESSEL_SETTINGS[scale])
    for key, value in (settings or {}).items():
        if key not in out:
            raise KeyError(f"unknown vessel setting {key!r}; expected one of {sorted(out)}")
        out[key] = copy.deepcopy(value)
    return out


# ---------------------------------------------------------------------------- training
def _fingerprint(name: str, s: Mapping[str, Any], data_dir: Path | None) -> dict[str, Any]:
    keys = ("size", "n_images", "difficulty", "vessel_fraction", "width", "lr", "optimizer")
    fp = {k: s[k] for k in keys} | {"seed": s["seed"], "model": name}
    fp |= {"source": s["source"], "crop": s.get("crop")}
    fp |= {k: s[k] for k in ("loss", "schedule", "warmup_epochs", "augment", "repeats")}
    fp["batch_size"] = int(s["batch_sizes"][name])
    fp["data_dir"] = None if data_dir is None else str(data_dir)
    return json.loads(json.dumps(fp))


def _read_meta(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return None


def _write_meta(folder: Path, meta: dict[str, Any]) -> None:
    with atomic_path(folder / "meta.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=2))


def init_seed(name: str, seed: int) -> int:
    """Seed of a model's initial weights: distinct per model, so CNN6 and CNN10 do not
    start from the same first-layer weights (which would fake similar first layers)."""
    return int(seed) + 7919 * (MODELS.index(name) + 1)


def _build(name: str, s: Mapping[str, Any], in_channels: int) -> nn.Module:
    seed_everything(init_seed(name, s["seed"]))
    return create_model(name, width=int(s["width"]), in_channels=int(in_channels))


def trained_vessel_model(
    name: str,
    scale: str,
    *,
    settings: Mapping[str, Any] | None = None,
    retrain: bool = False,
    data_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> tuple[nn.Module, pd.DataFrame]:
    """A CNN-N trained on the vessel data of ``scale``, cached in the artifacts folder.

    The checkpoints live in ``artifacts_dir("vessels", scale, name)`` (``best.pt``,
    ``last.pt``, ``history.csv``, ``meta.json``). A finished run with the same settings is
    loaded without touching the data; an interrupted one resumes from ``last.pt``; changed
    settings (data, width, learning rate, batch size, seed...) start over with a warning.

    Parameters
    ----------
    name : {"cnn1", "cnn6", "cnn10"}
    scale : {"smoke", "embedded", "cpu", "full"}
    settings : dict, optional
        Overrides of :data:`VESSEL_SETTINGS` entries (e.g. ``{"epochs": {...}}``).
    retrain : bool
        Discard any cached run and train again.
    data_dir : path, optional
        See :func:`vessel_data` (required at full scale unless a run is cached).
    progress : bool
        tqdm progress over epochs.

    Returns
    -------
    model : nn.Module
        On the CPU, in eval mode, holding the best-validation weights; attributes
        ``best_epoch`` and ``best_score`` (validation IoU).
    history : DataFrame
        Per-epoch history of :func:`~cnnexplore_nb.train.train_segmentation`.
    """
    name = check_choice("model", name, MODELS)
    s = vessel_settings(scale, settings)
    epochs = int(s["epochs"][name])
    folder = artifacts_dir("vessels", scale, name)
    meta = _read_meta(folder)
    if data_dir is None and not os.environ.get(DATA_ENV) and meta and s["source"] != "synthetic":
        data_dir = meta["fingerprint"].get("data_dir")
    path = _resolve_dir(s, data_dir)
    fp = _fingerprint(name, s, path)
    files_ok = all((folder / f).is_file() for f in ("best.pt", "history.csv"))
    same = meta is not None and meta.get("fingerprint") == fp
    if not retrain and same and files_ok and meta.get("epochs_done") == epochs:
        model = _build(name, s, meta["in_channels"])
        best = load_checkpoint(folder / "best.pt")
        model.load_state_dict(best["model"])
        model.best_epoch, model.best_score = int(best["epoch"]), float(best["score"])
        return model.eval(), pd.read_csv(folder / "history.csv")
    last_epoch = 0
    if same and not retrain and (folder / "last.pt").is_file():
        last_epoch = int(load_checkpoint(folder / "last.pt")["epoch"])
    if retrain or not same or last_epoch > epochs:
        if meta is not None and not same and not retrain:
            warnings.warn(
                f"cached {name} run in {str(folder)!r} used other settings "
                f"({meta.get('fingerprint')} vs {fp}); training again",
                UserWarning,
                stacklevel=2,
            )
        for f in ("best.pt", "last.pt", "history.csv", "meta.json"):
            (folder / f).unlink(missing_ok=True)
    data = vessel_data(s, path)
    in_channels = int(data["train"][0][0].shape[0])
    _write_meta(folder, {"fingerprint": fp, "epochs_done": None, "in_channels": in_channels})
    model = _build(name, s, in_channels)
    model, history = train_segmentation(
        model, data["train"], data["val"], epochs=epochs, lr=s["lr"],
        batch_size=int(s["batch_sizes"][name]), optimizer=s["optimizer"], seed=int(s["seed"]),
        checkpoint_dir=folder, resume=True, progress=progress, loss=s["loss"],
        schedule=s["schedule"],
        warmup_epochs=min(int(s["warmup_epochs"]), epochs - 1),  # a 1-epoch run: no warm-up
    )  # fmt: skip
    with atomic_path(folder / "history.csv") as tmp:
        history.to_csv(tmp, index=False)
    _write_meta(folder, {"fingerprint": fp, "epochs_done": epochs, "in_channels": in_channels})
    return model.cpu().eval(), history


def retina_input(size: int | None = 256) -> tuple[np.ndarray, torch.Tensor]:
    """The scikit-image fundus photograph prepared like the training images.

    Vessels are dark in a fundus photograph but bright in the training images, so the green
    channel is inverted, after the black surround of the fundus is filled with the fundus's
    median (else it would become a bright "vessel"), then z-scored as in training.

    Returns
    -------
    green : ndarray of shape (H, W)
        The green channel in [0, 1] (for display).
    x : Tensor of shape (1, 1, H, W)
        The model input.
    """
    green = retina_image(channel="green", size=size)
    fundus = green > 0.2 * np.percentile(green, 99)
    filled = np.where(fundus, green, np.median(green[fundus]))
    x, _ = normalize_intensity((1.0 - filled)[None, None])
    return green, torch.from_numpy(x)


def scales_table() -> pd.DataFrame:
    """The vessel study's settings at every scale, side by side (for the notebooks).

    Returns
    -------
    DataFrame
        One row per setting (data, maps per layer, epochs and batch size per model,
        aggregate images), one column per scale.
    """

    def data(s: Mapping[str, Any]) -> str:
        if s["source"] == "synthetic":
            return f"{s['n_images']} synthetic {s['size']}×{s['size']}"
        return "DATA_DIR (or VessMAP), full resolution"

    rows = {
        "data": data,
        "maps per layer": lambda s: s["width"],
        "epochs CNN1/6/10": lambda s: "/".join(str(s["epochs"][m]) for m in MODELS),
        "batch CNN1/6/10": lambda s: "/".join(str(s["batch_sizes"][m]) for m in MODELS),
        "images aggregated (03-05)": lambda s: s["n_aggregate"],
        "optimizer, lr": lambda s: f"{s['optimizer']}, {s['lr']:g}",
        "lr schedule": lambda s: (
            s["schedule"]
            + (f", {s['warmup_epochs']} warm-up epoch(s)" if s["warmup_epochs"] else "")
        ),
        "loss": lambda s: {"ce": "cross-entropy", "ce+dice": "cross-entropy + soft Dice"}[
            s["loss"]
        ],
        "training inputs": lambda s: (
            (
                f"{s['repeats']} random {s['crop']}×{s['crop']} crop(s) per image per epoch"
                if s["crop"]
                else "whole images"
            )
            + (", 8 dihedral orientations" if s["augment"] else "")
        ),
    }
    return pd.DataFrame(
        {
            scale: {k: f(VESSEL_SETTINGS[scale]) for k, f in rows.items()}
            for scale in VESSEL_SETTINGS
        }
    )
