"""Import the ResNet-32 source network released with the L2T-ww reference code.

The file (``*.pth.tar``) is a dict ``{epoch, best, test_prec, num_classes, state_dict}`` whose
metadata are plain numbers, so it loads with ``torch.load(..., weights_only=True)``; nothing
is ever unpickled with ``weights_only=False``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..io import load_checkpoint

__all__ = ["load_l2tww_source", "load_state_dict_checked"]


def load_state_dict_checked(
    model: nn.Module, state_dict: dict[str, torch.Tensor], *, source: str = "checkpoint"
) -> dict[str, list[str]]:
    """Copy matching tensors of ``state_dict`` into ``model`` after checking every shape.

    Parameters
    ----------
    model : nn.Module
        Receives the tensors (in place).
    state_dict : dict of str to Tensor
        Keys as in ``model.state_dict()``.
    source : str
        Name used in error messages.

    Returns
    -------
    dict
        ``{"missing": [...], "ignored": [...]}``: model keys absent from ``state_dict`` and
        ``state_dict`` keys the model has no place for.

    Raises
    ------
    ValueError
        If a tensor's shape differs from the model's (message names key, expected and got).
    """
    own = model.state_dict()
    for key, value in state_dict.items():
        if key in own and tuple(own[key].shape) != tuple(value.shape):
            raise ValueError(
                f"{source}: tensor {key!r} has shape {tuple(value.shape)}, but the model "
                f"expects {tuple(own[key].shape)}; is this the right architecture/num_classes?"
            )
    missing = sorted(k for k in own if k not in state_dict)
    ignored = sorted(k for k in state_dict if k not in own)
    with torch.no_grad():
        for key, value in state_dict.items():
            if key in own:
                own[key].copy_(value)
    return {"missing": missing, "ignored": ignored}


def load_l2tww_source(
    path: str | os.PathLike | None = None,
    *,
    root: str | os.PathLike | None = None,
    strict: bool = True,
    **model_kwargs: Any,
) -> nn.Module:
    """Build ``resnet32`` and load the L2T-ww reference source checkpoint into it.

    Parameters
    ----------
    path : str or PathLike, optional
        The ``.pth.tar`` file (dict with ``state_dict`` and ``num_classes``), or a plain
        state_dict saved with ``torch.save``. ``None``: the reference file from the data
        cache (or ``root``), downloaded and checked against its sha256 on first use
        (:func:`cnnexplore_nb.data.fetch`).
    root : str or PathLike, optional
        Folder holding the reference file (``path=None`` only); default the data cache.
    strict : bool
        Raise if model tensors are missing from the file (ignored extra keys only warn).
    **model_kwargs
        Passed to ``resnet32`` (``num_classes`` defaults to the file's, 200 for Tiny ImageNet).

    Returns
    -------
    nn.Module
        The network in eval mode; ``model.load_report`` holds ``missing``/``ignored`` keys and
        ``model.checkpoint_meta`` the file's metadata (epoch, best, test_prec, num_classes).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CheckpointError
        (a ``ValueError``) if the file is truncated or not a torch checkpoint, or holds
        Python objects that are unsafe to unpickle; the message names the file and why.
    ValueError
        If the file holds something other than a state_dict, or a tensor of the wrong shape.
    KeyError
        With ``strict=True``, if tensors of the network are missing from the file.

    Examples
    --------
    >>> src = load_l2tww_source("l2tww_tinyimagenet_resnet32.pth.tar")  # doctest: +SKIP
    >>> src.fc.out_features  # doctest: +SKIP
    200
    """
    from ..models import create_model

    if path is None:
        from ..data.fetch import fetch

        path = fetch("l2tww_source", root=root)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"source checkpoint {str(path)!r} does not exist; expected the ResNet-32 file "
            "released with the L2T-ww reference code (github.com/alinlab/L2T-ww)"
        )
    blob = load_checkpoint(path, map_location="cpu")  # CheckpointError names file and why
    if isinstance(blob, dict) and "state_dict" in blob:
        state_dict = blob["state_dict"]
        meta = {k: v for k, v in blob.items() if k != "state_dict"}
    elif isinstance(blob, dict) and all(isinstance(v, torch.Tensor) for v in blob.values()):
        state_dict, meta = blob, {}
    else:
        raise ValueError(
            f"{str(path)!r} holds {type(blob).__name__}; expected a dict with a 'state_dict' "
            "entry (L2T-ww format) or a plain state_dict"
        )
    # checkpoints saved from nn.DataParallel prefix every key with "module."
    state_dict = {k.removeprefix("module."): v for k, v in state_dict.items()}
    if "fc.weight" in state_dict:
        model_kwargs.setdefault("num_classes", int(state_dict["fc.weight"].shape[0]))
    elif "num_classes" in meta:
        model_kwargs.setdefault("num_classes", int(meta["num_classes"]))
    model = create_model("resnet32", **model_kwargs)
    report = load_state_dict_checked(model, state_dict, source=str(path))
    if report["missing"] and strict:
        raise KeyError(
            f"{str(path)!r} lacks {len(report['missing'])} tensor(s) of resnet32, e.g. "
            f"{report['missing'][:5]}; pass strict=False to keep their random initialisation"
        )
    if report["ignored"]:
        warnings.warn(
            f"load_l2tww_source ignored {len(report['ignored'])} key(s) of {path.name}: "
            f"{report['ignored'][:10]}",
            stacklevel=2,
        )
    model.load_report = report
    model.checkpoint_meta = meta
    return model.eval()
