"""ResNet-32 / VGG-9-BN: layout of the L2T-ww reference, feature taps, width multiplier."""

from __future__ import annotations

import pytest
import torch

from cnnexplore_nb.models import create_model, feature_layers, list_models
from cnnexplore_nb.transfer.matching import tap_features


def test_registered():
    assert {"resnet32", "vgg9_bn"} <= set(list_models())


def test_resnet32_layout_matches_reference_keys():
    model = create_model("resnet32", num_classes=200)
    keys = list(model.state_dict())
    assert len(keys) == 201  # the reference checkpoint holds 201 tensors
    assert "conv1.bias" in keys and "fc.weight" in keys
    for name in ("block3", "block5"):
        assert f"{name}.downsample.0.weight" in keys and f"{name}.downsample.1.running_var" in keys
    assert "block1.downsample.0.weight" not in keys
    assert feature_layers(model) == (
        ["block1"] + [f"blocks2.{i}" for i in range(4)] + ["block3"]
        + [f"blocks4.{i}" for i in range(4)] + ["block5"] + [f"blocks6.{i}" for i in range(4)]
    )  # fmt: skip
    n_params = sum(p.numel() for p in model.parameters())
    # He et al.'s ResNet-32 (10 classes, 464,154) + 1x1 conv/BN shortcuts (16*32 + 2*32 +
    # 32*64 + 2*64) + stem conv bias (16) + 190 more outputs (65 each)
    assert n_params == 464_154 + 2752 + 16 + 190 * 65


@pytest.mark.parametrize("width", [0.25, 0.5])
def test_resnet32_taps_shapes(width):
    torch.manual_seed(0)
    model = create_model("resnet32", width=width, num_classes=3).eval()
    x = torch.randn(2, 3, 16, 16)
    out, feats = tap_features(model, x, list(range(15)))
    assert out.shape == (2, 3)
    for info, f in zip(model.feature_info, feats):
        assert f.shape == (2, info["num_chs"], 16 // info["reduction"], 16 // info["reduction"])
        assert (f >= 0).all()  # block outputs are after the final ReLU
    c = [round(16 * width), round(32 * width), round(64 * width)]
    assert [i["num_chs"] for i in model.feature_info[::5]] == c


def test_vgg9_taps_before_pools():
    torch.manual_seed(0)
    model = create_model("vgg9_bn", width=0.125, num_classes=4, in_channels=3).eval()
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 8 and model.classifier.in_features == 64
    x = torch.randn(2, 3, 32, 32)
    out, feats = tap_features(model, x, range(5))
    assert out.shape == (2, 4)
    assert [tuple(f.shape[1:]) for f in feats] == [
        (8, 32, 32), (16, 16, 16), (32, 8, 8), (64, 4, 4), (64, 2, 2)
    ]  # fmt: skip
    # each tap is the ReLU output right before a max-pool: pooling it gives the next input
    for path in feature_layers(model):
        idx = int(path.split(".")[1])
        assert isinstance(model.features[idx], torch.nn.ReLU)
        assert isinstance(model.features[idx + 1], torch.nn.MaxPool2d)
    assert model.features[0].weight[4, 2, 2, 0].numel() == 1


def test_bad_width():
    with pytest.raises(ValueError, match="width"):
        create_model("vgg9_bn", width=0)
    with pytest.raises(ValueError, match="6 n \\+ 2"):
        from cnnexplore_nb.models.resnet_cifar import ResNetCifar

        ResNetCifar(31)
