"""Mean ablation of activation maps: dataset means and a hook context manager."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .._arrays import iter_batches, model_input
from .._checks import check_positive_int, unknown_name_message
from .._hooks import Hooks
from .chain import check_ids

__all__ = ["map_means", "mean_ablation"]


@torch.no_grad()
def map_means(
    model: nn.Module,
    images: Any,
    layers: Sequence[str],
    *,
    batch_size: int = 8,
    progress: bool = True,
) -> dict[str, torch.Tensor]:
    """Dataset mean of every map of ``layers`` (output of each module), in eval mode.

    Parameters
    ----------
    model : nn.Module
    images : Tensor or ndarray of shape (N, C, H, W) or (N, H, W), or a Dataset
        A Dataset's items are an image or a tuple whose first element is the image.
    layers : list of str
        Module paths; the mean is over images and pixels of the module's output.
    batch_size : int
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    dict of layer path -> Tensor of shape (C,)
        float32 means (accumulated in float64).
    """
    from tqdm.auto import tqdm

    batch_size = check_positive_int("batch_size", batch_size)
    if isinstance(layers, str):
        layers = [layers]
    sums: dict[str, torch.Tensor] = {}
    counts = dict.fromkeys(layers, 0)

    def hook_for(name: str):
        def hook(_mod, _inp, out):
            o = out.detach().double()
            s = o.sum(dim=(0, 2, 3))
            sums[name] = sums[name] + s if name in sums else s
            counts[name] += o.shape[0] * o.shape[2] * o.shape[3]

        return hook

    n, batches = iter_batches(images, batch_size, three_d="NHW")
    with Hooks(model, mode="eval", grad=False) as hooks:
        for name in layers:
            hooks.forward(name, hook_for(name))
        for batch in tqdm(batches, total=-(-n // batch_size), disable=not progress, desc="means"):
            model(model_input(batch, model))
    if not sums:
        raise ValueError("images is empty: no map means can be computed")
    return {n: (sums[n] / counts[n]).float().cpu() for n in layers}


@contextlib.contextmanager
def mean_ablation(
    model: nn.Module,
    maps: Mapping[str, Sequence[int]],
    means: Mapping[str, Any],
) -> Iterator[nn.Module]:
    """Context manager replacing chosen maps by their dataset mean during forwards.

    A forward hook on each module path replaces channels ``maps[path]`` of the module's
    output by ``means[path][c]`` everywhere. For CNN-N give the ``conv_moduleK`` paths: the
    output of the module is after BatchNorm and ReLU, the map the correlation analysis saw.

    Parameters
    ----------
    model : nn.Module
    maps : dict of module path -> list of int
        Map ids to ablate.
    means : dict of module path -> Tensor of shape (C,)
        Per-map means, e.g. from :func:`map_means`.

    Yields
    ------
    nn.Module
        ``model`` itself; the hooks are removed on exit, even after an exception.
    """
    modules = dict(model.named_modules())
    plans = []
    for layer, ids in maps.items():
        if layer not in modules or layer == "":
            raise KeyError(unknown_name_message("layer", layer, [n for n in modules if n]))
        if layer not in means:
            raise KeyError(f"means has no entry for layer {layer!r}; it has {list(means)}")
        mean = torch.as_tensor(means[layer]).detach().flatten()
        ids = check_ids(layer, ids, mean.numel(), allow_all=True)
        if ids:
            plans.append((layer, ids, mean))

    def hook_for(ids: list[int], mean: torch.Tensor):
        def hook(_mod, _inp, out):
            if out.shape[1] != mean.numel():
                raise ValueError(
                    f"means has {mean.numel()} values but the output has {out.shape[1]} maps"
                )
            out = out.clone()
            out[:, ids] = mean[ids].to(out).view(1, -1, 1, 1)
            return out

        return hook

    with Hooks(model) as hooks:
        for layer, ids, mean in plans:
            hooks.forward(layer, hook_for(ids, mean))
        yield model
