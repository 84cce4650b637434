"""The lectures' classic CNN architectures as layer specifications and one summary table.

Each architecture is written here layer by layer (:data:`SPECS`), as its paper describes it,
and :func:`architecture_table` walks the specification to count parameters and the
theoretical receptive field (``RF_l = RF_{l-1} + (k_l - 1) j_{l-1}``, ``j_l = j_{l-1} s_l``).
:func:`classic_architectures` puts the computed numbers beside the published ones (depth,
parameters, top-1 / top-5 error as reported, with the source of each).

Specification entries (``c`` = channels, ``k`` = kernel, ``s`` = stride, ``p`` = padding):

``("conv", c, k, s, p, groups, bias)``, ``("pool", k, s, p)``, ``("fc", n)``, ``("bn",)``,
``("lrn",)`` (no parameters), ``("gap",)`` (global average pooling),
``("subsample", k, s)`` (LeNet-5's trainable subsampling: one coefficient and one bias per
map), ``("conv_table", c, k, connections)`` (LeNet-5's C3, 60 input-output map connections),
``("inception", 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj)`` (GoogLeNet) and
``("bottleneck", mid, out, s, stride_on)`` (ResNet, projection shortcut when the shape
changes, BatchNorm after every convolution). A branching block's receptive field is the one
of its widest path (the 5 x 5 branch; the residual branch).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._checks import unknown_name_message

__all__ = ["SPECS", "architecture_table", "classic_architectures"]


def _vgg16() -> list[tuple]:
    spec: list[tuple] = []
    for widths in ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)):
        spec += [("conv", c, 3, 1, 1, 1, True) for c in widths] + [("pool", 2, 2, 0)]
    return spec + [("fc", 4096), ("fc", 4096), ("fc", 1000)]


def _resnet(blocks: tuple[int, ...]) -> list[tuple]:
    spec: list[tuple] = [("conv", 64, 7, 2, 3, 1, False), ("bn",), ("pool", 3, 2, 1)]
    for i, (n, mid) in enumerate(zip(blocks, (64, 128, 256, 512))):
        for b in range(n):
            spec.append(("bottleneck", mid, 4 * mid, 2 if (b == 0 and i > 0) else 1, "1x1"))
    return spec + [("gap",), ("fc", 1000)]


_INCEPTION = {  # GoogLeNet, Szegedy et al. 2015, Table 1
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128), "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}  # fmt: skip


def _googlenet() -> list[tuple]:
    inc = [("inception", *_INCEPTION[k]) for k in _INCEPTION]
    return [
        ("conv", 64, 7, 2, 3, 1, True), ("pool", 3, 2, 1), ("lrn",),
        ("conv", 64, 1, 1, 0, 1, True), ("conv", 192, 3, 1, 1, 1, True), ("lrn",),
        ("pool", 3, 2, 1), *inc[:2], ("pool", 3, 2, 1), *inc[2:7], ("pool", 3, 2, 1),
        *inc[7:], ("gap",), ("fc", 1000),
    ]  # fmt: skip


#: name -> (input channels, input side, layer specification).
SPECS: dict[str, tuple[int, int, list[tuple]]] = {
    "LeNet-5": (1, 32, [
        ("conv", 6, 5, 1, 0, 1, True), ("subsample", 2, 2), ("conv_table", 16, 5, 60),
        ("subsample", 2, 2), ("conv", 120, 5, 1, 0, 1, True), ("fc", 84),
    ]),  # the RBF output layer's 84 x 10 parameters were set by hand, not trained
    "AlexNet": (3, 227, [
        ("conv", 96, 11, 4, 0, 1, True), ("lrn",), ("pool", 3, 2, 0),
        ("conv", 256, 5, 1, 2, 2, True), ("lrn",), ("pool", 3, 2, 0),
        ("conv", 384, 3, 1, 1, 1, True), ("conv", 384, 3, 1, 1, 2, True),
        ("conv", 256, 3, 1, 1, 2, True), ("pool", 3, 2, 0),
        ("fc", 4096), ("fc", 4096), ("fc", 1000),
    ]),  # two GPUs: conv2, conv4, conv5 see half the maps (groups=2)
    "ZFNet": (3, 224, [
        ("conv", 96, 7, 2, 1, 1, True), ("pool", 3, 2, 1), ("conv", 256, 5, 2, 0, 1, True),
        ("pool", 3, 2, 1), ("conv", 384, 3, 1, 1, 1, True), ("conv", 384, 3, 1, 1, 1, True),
        ("conv", 256, 3, 1, 1, 1, True), ("pool", 3, 2, 0),
        ("fc", 4096), ("fc", 4096), ("fc", 1000),
    ]),
    "VGG-16": (3, 224, _vgg16()),
    "GoogLeNet": (3, 224, _googlenet()),  # without the two auxiliary classifiers
    "ResNet-50": (3, 224, _resnet((3, 4, 6, 3))),
    "ResNet-152": (3, 224, _resnet((3, 8, 36, 3))),
}  # fmt: skip


def _conv_params(c_in: int, c_out: int, k: int, groups: int = 1, bias: bool = True) -> int:
    return c_out * (c_in // groups) * k * k + (c_out if bias else 0)


def _block(entry: tuple, c: int) -> tuple[str, int, int, int, int]:
    """(kind, params, out channels, RF kernel, stride) of one entry reading c channels."""
    kind = entry[0]
    if kind == "conv":
        _, c_out, k, s, _, groups, bias = entry
        return kind, _conv_params(c, c_out, k, groups, bias), c_out, k, s
    if kind in ("pool", "subsample"):
        return kind, 2 * c if kind == "subsample" else 0, c, entry[1], entry[2]
    if kind == "conv_table":
        _, c_out, k, links = entry
        return kind, links * k * k + c_out, c_out, k, 1
    if kind == "inception":
        b1, b3r, b3, b5r, b5, pp = entry[1:]
        params = sum(_conv_params(ci, co, k) for ci, co, k in (
            (c, b1, 1), (c, b3r, 1), (b3r, b3, 3), (c, b5r, 1), (b5r, b5, 5), (c, pp, 1)))  # fmt: skip
        return kind, params, b1 + b3 + b5 + pp, 5, 1
    if kind == "bottleneck":
        _, mid, out, s, _ = entry
        params = _conv_params(c, mid, 1, bias=False) + _conv_params(mid, mid, 3, bias=False)
        params += _conv_params(mid, out, 1, bias=False) + 2 * (mid + mid + out)
        if s != 1 or c != out:  # projection shortcut (option B) with its BatchNorm
            params += _conv_params(c, out, 1, bias=False) + 2 * out
        return kind, params, out, 3, s
    if kind == "bn":
        return kind, 2 * c, c, 1, 1
    return kind, 0, c, 1, 1  # lrn, gap


def architecture_table(name: str) -> pd.DataFrame:
    """The layers of one classic architecture with their parameters and receptive fields.

    Parameters
    ----------
    name : str
        One of :data:`SPECS` (``"LeNet-5"``, ``"AlexNet"``, ``"ZFNet"``, ``"VGG-16"``,
        ``"GoogLeNet"``, ``"ResNet-50"``, ``"ResNet-152"``).

    Returns
    -------
    DataFrame
        One row per specification entry: ``layer`` (1, 2, ...), ``kind``, ``channels`` and
        ``side`` of its output, ``params``, ``receptive_field`` and ``jump`` (input pixels
        between neighbouring outputs). After global pooling or a fully connected layer the
        receptive field is the whole input (``side`` 1).
    """
    if name not in SPECS:
        raise ValueError(unknown_name_message("architecture", name, list(SPECS)))
    c, side, spec = SPECS[name]
    rf, jump, rows = 1, 1, []
    for i, entry in enumerate(spec, start=1):
        kind, params, c_out, k, s = _block(entry, c)
        if kind == "fc":
            params, c_out, side = entry[1] * c * side * side + entry[1], entry[1], 1
            rf = max(rf, int(SPECS[name][1]))
        elif kind == "gap":
            side = 1
        elif kind == "bottleneck" and entry[4] == "1x1":  # stride on the first 1x1 conv
            jump *= s
            rf += (k - 1) * jump
            side = (side - 1) // s + 1
        else:
            pad = entry[4] if kind == "conv" else entry[3] if kind == "pool" else k // 2
            pad = 0 if kind in ("subsample", "conv_table") else pad
            side = (side + 2 * pad - k) // s + 1 if kind not in ("bn", "lrn") else side
            rf += (k - 1) * jump
            jump *= s
        rows.append({"layer": i, "kind": kind, "channels": c_out, "side": side,
                     "params": params, "receptive_field": rf, "jump": jump})  # fmt: skip
        c = c_out
    return pd.DataFrame(rows)


#: Published numbers: (year, depth, parameters, top-1 error %, top-5 error %, benchmark,
#: source). Depth counts the layers with weights; NaN where the paper states no value.
_PUBLISHED = {
    "LeNet-5": (1998, 7, 60_000, 0.95, np.nan, "MNIST test error, no distortions",
                "LeCun, Bottou, Bengio, Haffner 1998, Proc. IEEE, Sec. II-B and III-C "
                "(60,000 trainable parameters; 7 layers: C1, S2, C3, S4, C5, F6, output)"),
    "AlexNet": (2012, 8, 60e6, 37.5, 17.0, "ILSVRC-2010 test, one CNN",
                "Krizhevsky, Sutskever, Hinton 2012, NeurIPS, abstract"),
    "ZFNet": (2013, 8, np.nan, 38.3, 16.4, "ILSVRC-2012 val, one convnet",
              "Zeiler, Fergus, arXiv:1311.2901 (ECCV 2014), Table 2 (ECCV version: "
              "38.4 / 16.5)"),
    "VGG-16": (2014, 16, 138e6, 24.4, 7.2, "ILSVRC-2012 val, multi-crop and dense",
               "Simonyan, Zisserman 2015, ICLR, Tables 2 and 5 (configuration D)"),
    "GoogLeNet": (2014, 22, 5e6, np.nan, 10.07, "ILSVRC-2014 val, 1 model, 1 crop (top-1 "
                  "not reported; 6.67 % top-5 test with 7 models)",
                  "Szegedy et al. 2015, CVPR, Table 3; 5 M parameters: Szegedy et al. "
                  "2016, CVPR (Rethinking the Inception architecture), Sec. 1"),
    "ResNet-50": (2015, 50, np.nan, 22.85, 6.71, "ILSVRC-2012 val, 10-crop",
                  "He, Zhang, Ren, Sun 2016, CVPR, Table 3 (parameters not stated; "
                  "3.8 billion FLOPs)"),
    "ResNet-152": (2015, 152, np.nan, 21.43, 5.71, "ILSVRC-2012 val, 10-crop",
                   "He, Zhang, Ren, Sun 2016, CVPR, Table 3 (parameters not stated; "
                   "11.3 billion FLOPs)"),
}  # fmt: skip


def classic_architectures() -> pd.DataFrame:
    """LeNet-5, AlexNet, ZFNet, VGG-16, GoogLeNet, ResNet-50 and ResNet-152 side by side.

    Returns
    -------
    DataFrame
        One row per architecture: ``name``, ``year``, ``depth`` (layers with weights, as
        published), ``params_published`` (NaN when the paper gives none),
        ``params_computed`` (from :data:`SPECS`: weights, biases and BatchNorm scales and
        shifts), ``receptive_field`` (theoretical, of the last spatial feature map, from
        :data:`SPECS`), ``top1_error`` and ``top5_error`` (%, as published; NaN if not
        reported), ``benchmark`` (data and protocol of those errors) and ``source``.

    Notes
    -----
    The computed counts differ from the published ones where the papers round (AlexNet's
    "60 million" is 60,965,224 with its two-GPU grouping), or count otherwise (LeNet-5's
    60,000 leaves out the hand-set RBF output layer). ResNets follow the original models
    (stride 2 in the first 1 x 1 convolution of a block, receptive fields 483 and 1507;
    with the stride in the 3 x 3 convolution, as torchvision, ResNet-50's is 427).
    """
    rows = []
    for name, (year, depth, params, top1, top5, bench, source) in _PUBLISHED.items():
        table = architecture_table(name)
        spatial = table[~table["kind"].isin(["fc", "gap"])]
        rows.append({
            "name": name, "year": year, "depth": depth, "params_published": params,
            "params_computed": int(table["params"].sum()),
            "receptive_field": int(spatial["receptive_field"].iloc[-1]),
            "top1_error": top1, "top5_error": top5, "benchmark": bench, "source": source,
        })  # fmt: skip
    return pd.DataFrame(rows)
