"""What notebook 08 calls: a network and images the user brings, or the embedded default.

:func:`load_network` builds a network from its constructor (a callable or
``"package.module:function"``) and loads a state dict; :func:`load_images` reads a folder
of images as the network's input; :func:`train_on_digits` trains a classifier briefly on
scikit-learn's digits (upsampled), cached, so that the default network's maps are learned
rather than random; :func:`tap_summary` tells what the inferred taps are, :func:`tap_names`
names them for figures and :func:`grid_effect` measures what the common grid does to the
thesis statistic.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._checks import check_positive_int
from ..io import atomic_path, load_checkpoint, save_checkpoint

__all__ = [
    "IMAGE_SUFFIXES",
    "first_conv_channels",
    "grid_effect",
    "load_images",
    "load_network",
    "tap_names",
    "tap_summary",
    "train_on_digits",
]

#: File name endings read by :func:`load_images` (case-insensitive).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp")


def _constructor(spec: Callable[..., nn.Module] | str) -> Callable[..., nn.Module]:
    if callable(spec):
        return spec
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ValueError(
            "the model constructor must be a callable or a string 'package.module:function', "
            f"got {spec!r}"
        )
    module, _, name = spec.partition(":")
    try:
        found = getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module!r} of {spec!r}: {exc}") from None
    except AttributeError:
        raise ValueError(f"module {module!r} has no {name!r} (from {spec!r})") from None
    if not callable(found):
        raise TypeError(f"{spec!r} is a {type(found).__name__}, not a callable")
    return found


def load_network(
    constructor: Callable[..., nn.Module] | str,
    checkpoint: str | os.PathLike | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a network and load its trained weights; returned in eval mode.

    Parameters
    ----------
    constructor : callable or str
        A function or class returning an ``nn.Module`` (called with ``kwargs``), or its
        import path ``"package.module:function"``.
    checkpoint : path, optional
        A file written by ``torch.save(model.state_dict(), path)`` (or a dict holding the
        state dict under ``"state_dict"`` or ``"model"``), loaded with ``weights_only=True``.
        None keeps the constructor's weights.

    Raises
    ------
    ValueError
        For a constructor that cannot be imported, or weights that do not fit the network
        (the message lists the missing and unexpected keys).
    """
    model = _constructor(constructor)(**kwargs)
    if not isinstance(model, nn.Module):
        raise TypeError(f"the constructor returned a {type(model).__name__}, not an nn.Module")
    if checkpoint is not None:
        state = load_checkpoint(checkpoint)
        for key in ("state_dict", "model"):
            if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
                state = state[key]
        result = model.load_state_dict(
            {k.removeprefix("module."): v for k, v in state.items()}, strict=False
        )
        if result.missing_keys or result.unexpected_keys:
            raise ValueError(
                f"the weights in {str(checkpoint)!r} do not fit {type(model).__name__}: "
                f"missing {result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}"
            )
    return model.eval()


def first_conv_channels(model: nn.Module, default: int = 3) -> int:
    """Input channels of the first convolution of ``model`` (``default`` without one)."""
    for m in model.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            return int(m.in_channels)
    return default


def load_images(
    folder: str | os.PathLike,
    *,
    size: int,
    channels: int = 3,
    limit: int | None = None,
) -> tuple[torch.Tensor, list[str]]:
    """Every image of ``folder`` (sorted by name) as a batch for a network.

    Images are resized to ``size`` x ``size`` (antialiased), given ``channels`` channels
    (grey repeated, colour averaged to grey for 1, an alpha channel dropped), scaled to
    [0, 1] and normalised with the ImageNet mean and std, as torchvision and timm models
    expect (and as :func:`train_on_digits` trains).

    Returns
    -------
    images : Tensor of shape (N, channels, size, size)
    names : list of str
        The file names, in the order of ``images``.
    """
    from skimage import io as skio
    from skimage.transform import resize
    from skimage.util import img_as_float

    from ..data.classification import ImageClassification

    size, channels = check_positive_int("size", size), check_positive_int("channels", channels)
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {str(root)!r} does not exist")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if limit is not None:
        files = files[: check_positive_int("limit", limit)]
    if not files:
        raise ValueError(f"no image in {str(root)!r} (looked for {', '.join(IMAGE_SUFFIXES)})")
    out = []
    for path in files:
        img = img_as_float(skio.imread(path))
        if img.ndim == 3 and img.shape[-1] in (2, 4):
            img = img[..., :-1]  # drop alpha
        img = resize(img, (size, size), anti_aliasing=True)
        if img.ndim == 2:
            img = np.repeat(img[None], channels, axis=0)
        elif channels == 1:
            img = img.mean(axis=-1)[None]
        elif img.shape[-1] == channels:
            img = np.moveaxis(img, -1, 0)
        else:
            raise ValueError(
                f"{path.name} has {img.shape[-1]} channels, the network takes {channels}"
            )
        out.append(img)
    pixels = torch.from_numpy((np.clip(np.stack(out), 0, 1) * 255).round().astype(np.uint8))
    data = ImageClassification(pixels, np.zeros(len(out), np.int64))
    return data.batch(torch.arange(len(out)))[0], [p.name for p in files]


def train_on_digits(
    model: nn.Module,
    *,
    size: int,
    epochs: int,
    cache: str | os.PathLike | None = None,
    seed: int = 0,
    batch_size: int = 64,
    lr: float = 0.05,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train a 10-class network on scikit-learn's digits at ``size`` x ``size``; cached.

    The digits (1,797 8 x 8 images) are upsampled and made 3-channel
    (:func:`cnnexplore_nb.data.digits`); 70 % train the network (SGD, cosine schedule,
    :func:`cnnexplore_nb.transfer.run` with ``"scratch"``), 30 % measure it.

    Parameters
    ----------
    model : nn.Module
        Untrained, with 10 outputs; not modified (a trained copy is returned).
    cache : path, optional
        Checkpoint file: loaded when it exists (with the record beside it as JSON), else
        written after training.

    Returns
    -------
    model : nn.Module
        Trained, in eval mode.
    record : dict
        ``test_acc`` (fraction of the held-out digits classified right), ``epochs``,
        ``seconds`` (training wall time) and ``n_train``.
    """
    from ..data import digits
    from ..transfer import run

    cache = None if cache is None else Path(cache)
    meta = None if cache is None else cache.with_suffix(".json")
    if cache is not None and cache.is_file() and meta.is_file():
        trained = load_network(lambda: model, cache)
        return trained, json.loads(meta.read_text())
    data = {"train": digits("train", size=size), "val": None, "test": digits("test", size=size)}
    rec = run("scratch", source=None, target=model, data=data, epochs=epochs, seed=seed,
              batch_size=batch_size, lr=lr, progress=False, return_model=True)  # fmt: skip
    trained = rec["model"].eval()
    record = {k: rec[k] for k in ("test_acc", "epochs", "seconds", "n_train")}
    if cache is not None:
        save_checkpoint(trained.state_dict(), cache)
        with atomic_path(meta) as tmp:
            Path(tmp).write_text(json.dumps(record, indent=1))
    return trained, record


def tap_summary(catalogue: pd.DataFrame, input_size: int | None = None) -> pd.DataFrame:
    """The taps of a :func:`~cnnexplore_nb.list_layers` catalogue, one row each.

    Parameters
    ----------
    catalogue : DataFrame
        ``list_layers(model, example)`` (its ``tap`` column marks the taps).
    input_size : int, optional
        Side of the example image: adds ``reduction`` (input side / map side).

    Returns
    -------
    DataFrame
        ``layer`` (path), ``type``, ``maps``, ``size`` ("56×56"), ``receptive_field``
        (input pixels) and ``reduction``.
    """
    taps = catalogue[catalogue["tap"]]
    if taps.empty:
        raise ValueError("the catalogue marks no tap (column 'tap'); see feature_layers")
    rows = []
    for _, r in taps.iterrows():
        h, w = (int(v) for v in r["output_shape"][2:])
        row = {"layer": r["path"], "type": r["type"], "maps": int(r["maps"]),
               "size": f"{h}×{w}", "receptive_field": r["receptive_field"]}  # fmt: skip
        if input_size is not None:
            row["reduction"] = int(round(input_size / h))
        rows.append(row)
    return pd.DataFrame(rows)


def tap_names(taps: list[str]) -> dict[str, str]:
    """Names for figures: a readable path stays (``layer1``, ``relu``); a module path or a
    snake_case name (``features.3``, ``conv_block``) becomes "tap 1", "tap 2"... in order."""
    return {p: (f"tap {i}" if ("." in p or "_" in p) else p) for i, p in enumerate(taps, start=1)}


def grid_effect(
    maps: Mapping[str, Any],
    *,
    threshold: float = 0.8,
    policies: tuple[str, ...] = ("bilinear-down", "bilinear-up"),
) -> pd.DataFrame:
    """The thesis statistic of each layer with itself, at its own size and on common grids.

    Comparing layers of different sizes puts every map on one grid; the within-layer
    numbers then change too (a 56 x 56 map shrunk to 7 x 7 loses its detail). This measures
    by how much.

    Parameters
    ----------
    maps : dict of layer -> Tensor or array of shape (N, C, H, W)
    threshold : float
        Max ``|r|`` at or above which a map counts as well correlated.
    policies : tuple of str
        Common-grid policies (:mod:`cnnexplore_nb.similarity.region`).

    Returns
    -------
    DataFrame
        One row per layer: ``layer``, ``size`` ("56×56"), ``own`` (% of its maps with max
        ``|r|`` >= threshold, compared at its own size) and one column per policy named
        ``on HxW`` (the same, on that grid).
    """
    from ..similarity.region import common_grid
    from ..similarity.tables import correlation_tables

    sizes = {k: tuple(int(v) for v in np.shape(m)[-2:]) for k, m in maps.items()}
    out = pd.DataFrame({"layer": list(maps), "size": [f"{h}×{w}" for h, w in sizes.values()]})
    own = []
    for k, m in maps.items():
        t = correlation_tables({k: m}, threshold=threshold, progress=False)
        own.append(float(t.stats["percent"].iloc[0]))
    out["own"] = own
    for policy in policies:
        h, w = common_grid(list(sizes.values()), policy)
        t = correlation_tables(maps, threshold=threshold, resample=policy, progress=False)
        st = t.stats[t.stats["A_layer"].astype(str) == t.stats["B_layer"].astype(str)]
        out[f"on {h}×{w}"] = st["percent"].to_numpy(float)
    return out
