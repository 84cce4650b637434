"""Array plumbing shared by the whole package: the one (N, C, H, W) coercer, the one
resampler, batch iteration over tensors or datasets, and the block / slab helpers of the
similarity engine.

Inputs are normalised once, at the entry of each public function, by :func:`as_nchw` (arrays
and tensors) or :func:`iter_batches` (also datasets); errors name the argument, the expected
shape and what was given.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "RESAMPLE_MODES",
    "as_blocks",
    "as_layer_maps",
    "as_nchw",
    "call_model",
    "channel_error",
    "iter_batches",
    "model_input",
    "resample",
    "slab",
    "stack_images",
]

RESAMPLE_MODES = ("bilinear", "bicubic")
ThreeD = Literal["CHW", "NHW"]


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(int(s) for s in x.shape)


def _stack(items: Sequence[Any], name: str, keep_numpy: bool) -> Any:
    """A list of same-shaped images as one array (error names the first odd item)."""
    if not items:
        raise ValueError(f"{name} is an empty list: expected at least one image")
    arrays = [i if isinstance(i, torch.Tensor) else np.asarray(i) for i in items]
    first = _shape(arrays[0])
    for k, a in enumerate(arrays):
        if _shape(a) != first:
            raise ValueError(
                f"{name}[{k}] has shape {_shape(a)} but {name}[0] has shape {first}: the images "
                "of a list must all have the same size (resize or crop them first)"
            )
    if all(isinstance(a, np.ndarray) for a in arrays) and keep_numpy:
        return np.stack(arrays)
    return torch.stack([torch.as_tensor(_writable(a)) for a in arrays])


def _writable(a: Any) -> Any:
    if isinstance(a, np.ndarray) and not a.flags.writeable:
        return a.copy()
    return a


def as_nchw(
    x: Any,
    name: str = "images",
    *,
    three_d: ThreeD = "CHW",
    two_d: bool = False,
    keep_numpy: bool = False,
) -> Any:
    """One image, a batch or a list of images as an array of shape (N, C, H, W).

    Parameters
    ----------
    x : Tensor, ndarray or list of them
        Shape (N, C, H, W); (C, H, W) or (N, H, W) (see ``three_d``); (H, W) with
        ``two_d``. A list or tuple holds images of one shape, stacked along N.
    name : str
        Argument name used in error messages.
    three_d : {"CHW", "NHW"}
        How a 3-D input is read: one image with C channels (N = 1), or N grey images.
    two_d : bool
        Accept one grey (H, W) image as (1, 1, H, W).
    keep_numpy : bool
        Return a numpy array for numpy input (else a tensor sharing its memory).

    Returns
    -------
    Tensor or ndarray of shape (N, C, H, W)
        The dtype is not changed (see :func:`model_input` for a model's input).

    Raises
    ------
    TypeError
        For anything that is not an array, a tensor or a list of them.
    ValueError
        For a wrong number of dimensions, an empty axis, or list items of different sizes.
    """
    if isinstance(x, (list, tuple)):
        x = _stack(x, name, keep_numpy)
    elif isinstance(x, np.ndarray):
        x = x if keep_numpy else torch.from_numpy(_writable(x))
    elif not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor, a numpy array or a list of images, "
            f"got {type(x).__name__}"
        )
    third = "(N, H, W)" if three_d == "NHW" else "(C, H, W)"
    accepted = f"(N, C, H, W), {third} or (H, W)" if two_d else f"(N, C, H, W) or {third}"
    if x.ndim == 2 and two_d:
        x = x[None, None]
    elif x.ndim == 3:
        x = x[:, None] if three_d == "NHW" else x[None]
    if x.ndim != 4:
        raise ValueError(f"{name} must have shape {accepted}, got shape {_shape(x)}")
    if any(s == 0 for s in _shape(x)):
        raise ValueError(
            f"{name} is empty: expected N images, C channels and H x W pixels all > 0, "
            f"got shape {_shape(x)}"
        )
    return x


def as_layer_maps(
    maps: Any, name: str = "maps", *, to_numpy: bool = False, same_n: bool = True
) -> dict[str, Any]:
    """A dict layer -> maps, each checked by :func:`as_nchw` as (N, C, H, W).

    Parameters
    ----------
    maps : dict of str -> Tensor or ndarray of shape (N, C, H, W) or (C, H, W)
    name : str
        Argument name used in error messages.
    to_numpy : bool
        Return numpy arrays (tensors are detached and copied to the CPU).
    same_n : bool
        Require the same number of images N in every layer.
    """
    if not isinstance(maps, Mapping):
        raise TypeError(
            f"{name} must be a dict of layer path -> maps of shape (N, C, H, W), "
            f"got {type(maps).__name__}"
        )
    if len(maps) == 0:
        raise ValueError(f"{name} must hold at least one layer, got 0 layers selected")
    out = {}
    for layer, m in maps.items():
        x = as_nchw(m, f"{name}[{str(layer)!r}]", keep_numpy=True)
        if isinstance(x, torch.Tensor):
            x = x.detach()
            if to_numpy:
                x = x.cpu().numpy()
        out[str(layer)] = x
    ns = sorted({int(x.shape[0]) for x in out.values()})
    if same_n and len(ns) > 1:
        raise ValueError(f"all layers of {name} must hold the same N images, got N in {ns}")
    return out


def _is_dataset(x: Any) -> bool:
    """A Dataset-like object: indexable with a length; a list of (image, ...) tuples too."""
    if isinstance(x, list) and x and isinstance(x[0], tuple):
        return True
    if isinstance(x, (torch.Tensor, np.ndarray, list, tuple, str, bytes)):
        return False
    return hasattr(x, "__getitem__") and hasattr(x, "__len__")


def _dataset_item(dataset: Any, i: int, name: str) -> torch.Tensor:
    item = dataset[i]
    if isinstance(item, (tuple, list)):
        item = item[0]
    t = torch.as_tensor(_writable(item))
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3:
        raise ValueError(
            f"{name} item {i} must be an image of shape (C, H, W) or (H, W), got {_shape(t)}"
        )
    return t


def iter_batches(
    images: Any, batch_size: int, name: str = "images", *, three_d: ThreeD = "CHW"
) -> tuple[int, Iterator[torch.Tensor]]:
    """The number of images and an iterator over (B, C, H, W) batches.

    ``images`` is anything :func:`as_nchw` accepts, or a Dataset whose items are images
    (C, H, W) / (H, W) or tuples whose first element is one. Dtypes are kept.
    """
    if _is_dataset(images):
        n = len(images)
        if n == 0:
            raise ValueError(f"{name} is an empty dataset (len 0)")

        def batches() -> Iterator[torch.Tensor]:
            first: tuple[int, ...] | None = None
            for i in range(0, n, batch_size):
                items = [_dataset_item(images, j, name) for j in range(i, min(i + batch_size, n))]
                for j, t in enumerate(items, start=i):
                    first = first or _shape(t)
                    if _shape(t) != first:
                        raise ValueError(
                            f"{name} item {j} has shape {_shape(t)} but item 0 has shape "
                            f"{first}: the images must all have the same size"
                        )
                yield torch.stack(items)

        return n, batches()
    x = as_nchw(images, name, three_d=three_d)
    n = int(x.shape[0])
    return n, (x[i : i + batch_size] for i in range(0, n, batch_size))


def stack_images(images: Any, name: str = "images", *, three_d: ThreeD = "CHW") -> torch.Tensor:
    """All images of a tensor, array, list or Dataset as one (N, C, H, W) tensor."""
    n, batches = iter_batches(images, 64, name, three_d=three_d)
    parts = list(batches)
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def model_input(x: torch.Tensor, model: torch.nn.Module) -> torch.Tensor:
    """A batch cast to the model's floating dtype and moved to its device.

    Integer and boolean images are cast like float64 ones (values unchanged: scale them
    first if the model expects [0, 1]).
    """
    from ._hooks import model_device, model_dtype

    return x.to(device=model_device(model), dtype=model_dtype(model))


def channel_error(model: torch.nn.Module, x: Any, name: str = "images") -> ValueError | None:
    """The error for inputs whose channel count does not fit the model's first convolution
    (None if it fits, or if the model has no convolution)."""
    conv = next(
        ((p, m) for p, m in model.named_modules() if isinstance(m, torch.nn.modules.conv._ConvNd)),
        None,
    )
    if conv is None or x.ndim < 2 or int(x.shape[1]) == conv[1].in_channels:
        return None
    path, c = conv[0], conv[1].in_channels
    return ValueError(
        f"{name} have {int(x.shape[1])} channel(s) but the model's first convolution "
        f"{path!r} expects {c} (shape (N, {c}, H, W)); convert the images (e.g. grey <-> "
        f"RGB) or build the model with in_channels={int(x.shape[1])}"
    )


def call_model(model: torch.nn.Module, x: torch.Tensor, name: str = "images") -> Any:
    """``model(x)``; a channel mismatch becomes a ValueError naming the expected count.

    torch's own message for a wrong number of input channels names weight shapes only;
    this one names the model's first convolution and its ``in_channels``.
    """
    try:
        return model(x)
    except RuntimeError as exc:
        error = channel_error(model, x, name)
        if error is not None:
            raise error from exc
        raise


def resample(
    x: Any, grid: tuple[int, int], *, mode: Literal["bilinear", "bicubic"] = "bilinear"
) -> Any:
    """Resample (G, C, H, W) maps to ``grid`` = (H', W'); unchanged if already there.

    Bilinear or bicubic interpolation (``align_corners=False``), antialiased when shrinking
    (so a large map is averaged, not subsampled). Float64 input stays float64, other
    dtypes become float32.
    """
    if _shape(x)[-2:] == tuple(grid):
        return x
    if mode not in RESAMPLE_MODES:
        from ._checks import unknown_name_message

        raise ValueError(unknown_name_message("interpolation mode", mode, RESAMPLE_MODES))
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
    t = t.detach()
    if t.dtype not in (torch.float32, torch.float64):
        t = t.float()
    shrink = grid[0] < t.shape[-2] or grid[1] < t.shape[-1]
    return F.interpolate(t, size=tuple(grid), mode=mode, align_corners=False, antialias=shrink)


def as_blocks(x: Any, name: str) -> list[Any]:
    """One array or a list of arrays (joined along channels) as a list of (N, C, P) blocks.

    Numpy input stays numpy; tensors are detached. All parts must share N and H x W.
    """
    parts = list(x) if isinstance(x, (list, tuple)) else [x]
    if not parts:
        raise ValueError(f"{name} must hold at least one array, got an empty {type(x).__name__}")
    arrays = [as_nchw(p, name, keep_numpy=True) for p in parts]
    out = [(p.detach() if isinstance(p, torch.Tensor) else p) for p in arrays]
    out = [p.reshape(p.shape[0], p.shape[1], -1) for p in out]
    if len({(int(p.shape[0]), int(p.shape[2])) for p in out}) != 1:
        shapes = [_shape(p) for p in out]
        raise ValueError(f"arrays joined in {name} must share N and H x W, got shapes {shapes}")
    return out


def slab(p: Any, i0: int, i1: int, p0: int, p1: int) -> np.ndarray:
    """Images i0:i1, pixels p0:p1 of one (N, C, P) block as a numpy array (G, C, n).

    Tensors are copied to the CPU (float32 unless float64); numpy arrays are sliced as
    they are.
    """
    s = p[i0:i1, :, p0:p1]
    if isinstance(s, torch.Tensor):
        if s.dtype not in (torch.float32, torch.float64):
            s = s.float()
        s = s.cpu().numpy()
    return s
