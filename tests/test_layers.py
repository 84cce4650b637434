"""list_layers, resolve_layers and select_layers."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from cnnexplore_nb import create_model, list_layers, resolve_layers, select_layers


def test_list_layers_cnn6():
    model = create_model("cnn6")
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    df = list_layers(model, torch.randn(1, 1, 32, 32))
    assert model.training  # mode restored
    for k, v in model.state_dict().items():  # the dry forward did not touch BN statistics
        assert torch.equal(v, before[k]), k
    assert all(len(m._forward_hooks) + len(m._forward_pre_hooks) == 0 for m in model.modules())
    top = df[df["depth"] == 1]
    assert list(top["path"]) == [f"conv_module{k}" for k in range(1, 7)] + ["classifier"]
    assert list(top["maps"]) == [64] * 6 + [2]
    assert str(df["maps"].dtype) == "Int64" and str(df["receptive_field"].dtype) == "Int64"
    assert "64.0" not in df.to_string()  # counts print as integers
    assert list(top["output_shape"]) == [(1, 64, 32, 32)] * 6 + [(1, 2, 32, 32)]
    # RF of conv_module k is 2k + 1 (k stacked 3x3 convs, stride 1); classifier adds 2
    assert list(top["receptive_field"]) == [2 * k + 1 for k in range(1, 8)]
    # the feature taps (feature_info) are marked
    assert list(df.loc[df["tap"], "path"]) == [f"conv_module{k}" for k in range(1, 7)]
    assert set(top["jump"]) == {1.0}
    conv1 = 1 * 64 * 9 + 64
    conv = 64 * 64 * 9 + 64
    bn = 2 * 64
    assert list(top["params_total"]) == [conv1 + bn] + [conv + bn] * 5 + [64 * 2 * 9 + 2]
    assert list(top["params"])[:6] == [0] * 6  # containers own no parameters
    sub = df.set_index("path")
    assert sub.loc["conv_module1.conv", "params"] == conv1
    assert sub.loc["conv_module3.bn", "params"] == bn
    assert sub.loc["conv_module3.relu", "type"] == "ReLU"
    # execution order, container before its children
    assert list(df["path"][:4]) == [
        "conv_module1",
        "conv_module1.conv",
        "conv_module1.bn",
        "conv_module1.relu",
    ]
    total = sum(p.numel() for p in model.parameters())
    assert top["params_total"].sum() == total


def test_list_layers_leaves_only_and_repeated_calls():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten())
            self.act = nn.ReLU()

        def forward(self, x):
            return self.body(self.act(self.act(x)))

    df = list_layers(Twice(), torch.randn(3, 8, 8), leaves_only=True)
    assert list(zip(df["path"], df["call"])) == [
        ("act", 0),
        ("act", 1),
        ("body.0", 0),
        ("body.1", 0),
    ]
    flat = df.set_index("path").loc["body.1"]
    assert flat["output_shape"] == (1, 144)
    assert flat["maps"] is pd.NA and flat["receptive_field"] is pd.NA
    assert df.set_index("path").loc["body.0", "receptive_field"] == 3.0


def test_list_layers_bad_inputs():
    model = create_model("cnn1")
    with pytest.raises(TypeError, match="torch.nn.Module"):
        list_layers("cnn1", torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) or \(C, H, W\), got shape \(4, 4\)"):
        list_layers(model, torch.zeros(4, 4))
    with pytest.raises(TypeError, match="torch.Tensor"):
        list_layers(model, "image.png")
    with pytest.raises(ValueError, match=r"3 channel\(s\).*'conv_module1.conv' expects 1"):
        list_layers(model, torch.zeros(1, 3, 4, 4))
    assert all(len(m._forward_hooks) + len(m._forward_pre_hooks) == 0 for m in model.modules())


def test_resolve_layers():
    model = create_model("cnn6")
    assert resolve_layers(model, None) == [f"conv_module{i}" for i in range(1, 7)]
    assert resolve_layers(model, "classifier") == ["classifier"]
    assert resolve_layers(model, ["conv_module2.bn", "classifier", "conv_module2.bn"]) == [
        "conv_module2.bn",
        "classifier",
    ]
    with pytest.raises(ValueError, match=r"unknown layer 'conv_module7'; closest: 'conv_module"):
        resolve_layers(model, ["conv_module1", "conv_module7"])
    with pytest.raises(ValueError, match=r"closest: 'conv_module3.bn'"):
        resolve_layers(model, "conv_module3.batchnorm")
    with pytest.raises(ValueError, match="zero layers selected"):
        resolve_layers(model, [])
    with pytest.raises(TypeError, match="must be strings, got 3"):
        resolve_layers(model, [3])
    with pytest.raises(ValueError, match="unknown layer ''"):
        resolve_layers(model, "")  # the root is not a layer
    with pytest.raises(TypeError, match="no feature_info"):
        resolve_layers(nn.Sequential(nn.Conv2d(1, 1, 1)), None)


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (1, [1]),
        (2, [1, 2]),
        (3, [1, 2, 3]),
        (6, [1, 2, 4, 6]),
        (7, [1, 2, 4, 6, 7]),
        (10, [1, 2, 4, 6, 8, 10]),
    ],
)
def test_select_layers_rule(n, expected):
    paths = [f"conv_module{i}" for i in range(1, n + 1)]
    assert select_layers(paths) == [f"conv_module{i}" for i in expected]


def test_select_layers_bad_inputs():
    with pytest.raises(ValueError, match="zero layers selected"):
        select_layers([])
    with pytest.raises(TypeError, match="single string"):
        select_layers("conv_module1")
