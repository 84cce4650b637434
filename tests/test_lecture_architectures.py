"""Classic architectures (parameters, receptive fields) and convolution over several input
channels, against torch modules built here, gradients, hand counts and torch's conv2d."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnexplore_nb.lecture import (
    RGB_BIAS,
    RGB_KERNEL,
    RGB_PATCH,
    SPECS,
    architecture_table,
    channel_sums,
    classic_architectures,
    conv_multichannel,
)


# ------------------------------------------------- parameters: torch modules on "meta"
def _torch_params(name: str) -> int:
    """Build the specification as torch modules (no memory: device 'meta') and count."""
    c, side, spec = SPECS[name]
    meta = {"device": "meta"}
    mods: list[nn.Module] = []
    for entry in spec:
        kind = entry[0]
        if kind == "conv":
            _, c_out, k, s, p, g, bias = entry
            mods.append(nn.Conv2d(c, c_out, k, s, p, groups=g, bias=bias, **meta))
            c, side = c_out, (side + 2 * p - k) // s + 1
        elif kind == "bn":
            mods.append(nn.BatchNorm2d(c, **meta))
        elif kind in ("pool", "subsample"):
            k, s = entry[1], entry[2]
            p = entry[3] if kind == "pool" else 0
            side = (side + 2 * p - k) // s + 1
            if kind == "subsample":  # LeNet-5: a trainable coefficient and bias per map
                mods.append(nn.Conv2d(c, c, 1, groups=c, **meta))
        elif kind == "conv_table":  # C3: 60 connections of 5 x 5, 16 biases
            mods.append(nn.Conv2d(60, 1, 5, bias=False, **meta))  # 60 kernels of 5 x 5
            mods.append(nn.ParameterList([nn.Parameter(torch.empty(16, **meta))]))
            c, side = 16, side - 4
        elif kind == "inception":
            b1, b3r, b3, b5r, b5, pp = entry[1:]
            mods += [nn.Conv2d(c, b1, 1, **meta), nn.Conv2d(c, b3r, 1, **meta),
                     nn.Conv2d(b3r, b3, 3, **meta), nn.Conv2d(c, b5r, 1, **meta),
                     nn.Conv2d(b5r, b5, 5, **meta), nn.Conv2d(c, pp, 1, **meta)]  # fmt: skip
            c = b1 + b3 + b5 + pp
        elif kind == "bottleneck":
            _, mid, out, s, _ = entry
            mods += [nn.Conv2d(c, mid, 1, bias=False, **meta), nn.BatchNorm2d(mid, **meta),
                     nn.Conv2d(mid, mid, 3, bias=False, **meta), nn.BatchNorm2d(mid, **meta),
                     nn.Conv2d(mid, out, 1, bias=False, **meta), nn.BatchNorm2d(out, **meta)]  # fmt: skip
            if s != 1 or c != out:
                mods += [nn.Conv2d(c, out, 1, bias=False, **meta), nn.BatchNorm2d(out, **meta)]
            c, side = out, (side - 1) // s + 1
        elif kind == "gap":
            side = 1
        elif kind == "fc":
            mods.append(nn.Linear(c * side * side, entry[1], **meta))
            c, side = entry[1], 1
    return sum(p.numel() for m in mods for p in m.parameters())


@pytest.mark.parametrize("name", list(SPECS))
def test_parameter_counts_match_torch_modules_of_the_same_layers(name):
    assert architecture_table(name)["params"].sum() == _torch_params(name)


def test_parameter_counts_match_hand_counts_and_known_totals():
    # LeNet-5 (LeCun et al. 1998): C1, S2, C3 (6 x 3 + 9 x 4 + 1 x 6 = 60 connections), S4,
    # C5, F6 -> the paper's 60,000 trainable parameters
    links = 6 * 3 + 9 * 4 + 1 * 6
    hand = (6 * 25 + 6) + 6 * 2 + (links * 25 + 16) + 16 * 2 + (120 * 400 + 120) + (84 * 120 + 84)
    assert links == 60 and hand == 60_000
    assert list(architecture_table("LeNet-5")["params"]) == [156, 12, 1516, 32, 48120, 10164]
    got = classic_architectures().set_index("name")["params_computed"]
    assert got["LeNet-5"] == 60_000
    assert got["VGG-16"] == 138_357_544  # 13 conv 3 x 3 + 3 FC
    assert got["AlexNet"] == 60_965_224  # with the two-GPU groups ("60 million")
    assert got["ResNet-50"] == 25_557_032 and got["ResNet-152"] == 60_192_808


# ----------------------------------------- receptive fields: gradient support, one channel
def _probe(name: str, side: int) -> nn.Module:
    """The specification with one channel, weights 1, average pools (same support)."""

    def conv(k, s=1, p=0):
        m = nn.Conv2d(1, 1, k, s, p, bias=False)
        nn.init.ones_(m.weight)
        return m

    class Inception(nn.Module):
        def __init__(self):
            super().__init__()
            self.b3, self.b5 = conv(3, p=1), conv(5, p=2)
            self.pool = nn.AvgPool2d(3, 1, 1)

        def forward(self, x):
            return x + self.b3(x) + self.b5(x) + self.pool(x)

    class Bottleneck(nn.Module):
        def __init__(self, s, on):
            super().__init__()
            s1, s3 = (s, 1) if on == "1x1" else (1, s)
            self.branch = nn.Sequential(conv(1, s1), conv(3, s3, 1), conv(1))
            self.short = conv(1, s)

        def forward(self, x):
            return self.branch(x) + self.short(x)

    layers: list[nn.Module] = []
    for entry in SPECS[name][2]:
        kind = entry[0]
        if kind in ("fc", "gap"):
            break
        if kind == "conv":
            layers.append(conv(entry[2], entry[3], entry[4]))
        elif kind in ("pool", "subsample"):
            p = entry[3] if kind == "pool" else 0
            layers.append(nn.AvgPool2d(entry[1], entry[2], p, count_include_pad=True))
        elif kind == "conv_table":
            layers.append(conv(entry[2]))
        elif kind == "inception":
            layers.append(Inception())
        elif kind == "bottleneck":
            layers.append(Bottleneck(entry[3], entry[4]))
    return nn.Sequential(*layers)


def _gradient_support(net: nn.Module, side: int) -> int:
    x = torch.zeros(1, 1, side, side, dtype=torch.float64, requires_grad=True)
    y = net.double()(x)
    c = y.shape[-1] // 2
    y[0, 0, c, c].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(dim=1)).flatten()
    return int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize(
    ("name", "side"),
    [("LeNet-5", 32), ("AlexNet", 451), ("ZFNet", 451), ("VGG-16", 512), ("ResNet-50", 1024),
     ("GoogLeNet", 1504)],
)  # fmt: skip
def test_receptive_fields_are_the_support_of_a_central_unit_gradient(name, side):
    want = classic_architectures().set_index("name").loc[name, "receptive_field"]
    assert _gradient_support(_probe(name, side), side) == want


def test_published_receptive_fields_and_table_columns():
    df = classic_architectures()
    assert list(df.columns) == ["name", "year", "depth", "params_published", "params_computed",
                                "receptive_field", "top1_error", "top5_error", "benchmark",
                                "source"]  # fmt: skip
    got = df.set_index("name")
    # Araujo, Norris, Sim (Distill 2019): AlexNet 195, VGG-16 212, ResNet-50 483, ResNet-152 1507
    assert got.loc[["AlexNet", "VGG-16", "ResNet-50", "ResNet-152"], "receptive_field"].tolist() == [
        195, 212, 483, 1507]  # fmt: skip
    assert got.loc["LeNet-5", "receptive_field"] == 32  # C5 sees the whole 32 x 32 input
    assert got["depth"].tolist() == [7, 8, 8, 16, 22, 50, 152]
    assert got.loc["AlexNet", ["top1_error", "top5_error"]].tolist() == [37.5, 17.0]
    assert np.isnan(got.loc["GoogLeNet", "top1_error"]) and got["source"].str.len().min() > 20
    with pytest.raises(ValueError, match=r"unknown architecture 'VGG16'; closest: 'VGG-16'"):
        architecture_table("VGG16")


# -------------------------------------------------------- several input channels by hand
def test_rgb_example_by_hand_and_against_conv2d():
    df = channel_sums()
    # R: columns 1+0+2 minus 0+3+0 = 0; G: 1+2+1+1 around a centre 0 = 5; B: 4 - 2 = 2
    assert df["value"].tolist() == [0.0, 5.0, 2.0, 1.0, 8.0]
    out = F.conv2d(torch.from_numpy(RGB_PATCH)[None], torch.from_numpy(RGB_KERNEL)[None],
                   torch.tensor([RGB_BIAS], dtype=torch.float64))  # fmt: skip
    assert out.item() == 8.0
    # the output is the sum of three single-channel convolutions plus the bias
    per = [F.conv2d(torch.from_numpy(RGB_PATCH[c])[None, None],
                    torch.from_numpy(RGB_KERNEL[c])[None, None]).item() for c in range(3)]  # fmt: skip
    assert per == df["value"].tolist()[:3]


@pytest.mark.parametrize(("stride", "padding"), [(1, 0), (2, 1), (3, 2)])
def test_conv_multichannel_equals_conv2d(stride, padding):
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(3, 9, 8)), rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4)
    got = conv_multichannel(x, w, b, stride=stride, padding=padding)
    ref = F.conv2d(torch.from_numpy(x)[None], torch.from_numpy(w), torch.from_numpy(b),
                   stride=stride, padding=padding)[0].numpy()  # fmt: skip
    np.testing.assert_allclose(got, ref, atol=1e-12)


def test_the_slides_six_5x5x3_filters():
    # six 5 x 5 x 3 filters on a 32 x 32 x 3 image: a 28 x 28 x 6 volume, 456 parameters
    rng = np.random.default_rng(1)
    w = rng.normal(size=(6, 3, 5, 5))
    assert conv_multichannel(rng.normal(size=(3, 32, 32)), w).shape == (6, 28, 28)
    assert sum(p.numel() for p in nn.Conv2d(3, 6, 5).parameters()) == 6 * (5 * 5 * 3 + 1) == 456
    with pytest.raises(ValueError, match=r"kernels must have shape \(C_out, C_in=3, k, k\)"):
        conv_multichannel(np.zeros((3, 8, 8)), np.zeros((2, 2, 3, 3)))
    with pytest.raises(ValueError, match="same shape"):
        channel_sums(RGB_PATCH[:2], RGB_KERNEL)
