"""U-Net: shapes, feature taps (checked with our own hooks), parameter count, errors."""

from __future__ import annotations

import pytest
import torch

from cnnexplore_nb import create_model, feature_layers, list_models
from cnnexplore_nb.models.unet import UNet


@pytest.mark.parametrize(
    "depth,width,upsample", [(1, 4, "transpose"), (2, 4, "bilinear"), (3, 2, "transpose")]
)
def test_output_shape_and_finite(depth, width, upsample):
    model = UNet(1, 2, depth=depth, width=width, upsample=upsample)
    x = torch.randn(2, 1, 16, 24)
    out = model(x)
    assert out.shape == (2, 2, 16, 24)
    assert torch.isfinite(out).all()


def test_registered():
    assert {"unet", "unet_small"} <= set(list_models("unet*"))
    small = create_model("unet_small")
    assert small.depth == 2 and small.encoder[0].conv1.out_channels == 16
    rgb = create_model("unet", in_channels=3, depth=2, width=4)
    assert rgb(torch.randn(1, 3, 8, 8)).shape == (1, 2, 8, 8)


@pytest.mark.parametrize("upsample", ["transpose", "bilinear"])
def test_feature_taps_channels_and_resolution(upsample):
    depth, width, size = 3, 4, 32
    model = UNet(1, 2, depth=depth, width=width, upsample=upsample).eval()
    modules = dict(model.named_modules())
    seen = {}
    handles = []

    def recorder(key):
        def hook(module, inputs, output):
            seen[key] = output.shape  # returns None: the output is left alone

        return hook

    for info in model.feature_info:
        mod = modules[info["module"]]  # a KeyError here means a wrong path
        handles.append(mod.register_forward_hook(recorder(info["module"])))
    try:
        model(torch.randn(1, 1, size, size))
    finally:
        for h in handles:
            h.remove()
    names = [f"encoder.{i}" for i in range(depth)] + ["bottleneck"]
    names += [f"decoder.{j}" for j in range(depth)]
    assert feature_layers(model) == names
    reductions = [1, 2, 4, 8, 4, 2, 1]
    channels = [4, 8, 16, 32, 16, 8, 4]
    for info, red, ch in zip(model.feature_info, reductions, channels):
        assert (info["reduction"], info["num_chs"]) == (red, ch)
        assert tuple(seen[info["module"]]) == (1, ch, size // red, size // red)


def test_parameter_count_depth1():
    c_in, w, k = 3, 5, 2
    model = UNet(c_in, k, depth=1, width=w)

    def double(a, b):  # two bias-free 3x3 convs and two BatchNorms (gamma, beta)
        return 9 * a * b + 2 * b + 9 * b * b + 2 * b

    expected = (
        double(c_in, w)  # encoder.0
        + double(w, 2 * w)  # bottleneck
        + (2 * w) * w * 4
        + w  # up.0: ConvTranspose2d(2w, w, 2) with bias
        + double(2 * w, w)  # decoder.0 on [skip, up]
        + w * k
        + k  # 1x1 classifier
    )
    assert sum(p.numel() for p in model.parameters()) == expected


def test_input_size_errors():
    model = UNet(depth=2, width=2)
    with pytest.raises(ValueError, match=r"divisible by 4.*\(1, 1, 10, 12\).*H 8 or 12"):
        model(torch.randn(1, 1, 10, 12))
    with pytest.raises(ValueError, match="upsample"):
        UNet(upsample="nearest")
    with pytest.raises(ValueError, match="depth"):
        UNet(depth=0)
