"""One forward test over the whole model registry, plus the registry's error messages."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnexplore_nb import ActivationRecorder, create_model, list_layers, list_models


def _input_for(model: nn.Module) -> torch.Tensor:
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    size = getattr(model, "default_input_size", None)
    if size is None:
        reduction = max(d["reduction"] for d in model.feature_info)
        size = 32 if reduction > 1 else 16
    if isinstance(size, int):
        size = (size, size)
    return torch.randn(2, first_conv.in_channels, *size[-2:])


@pytest.mark.parametrize("name", list_models())
def test_forward_and_feature_taps(name):
    torch.manual_seed(0)
    model = create_model(name).eval()
    assert model.model_name == name
    x = _input_for(model)
    info = model.feature_info
    assert info, f"{name} lists no feature taps"
    paths = [d["module"] for d in info]
    assert len(set(paths)) == len(paths)
    with torch.no_grad(), ActivationRecorder(model, paths) as rec:
        out = model(x)
    assert all(len(m._forward_hooks) + len(m._forward_pre_hooks) == 0 for m in model.modules())
    out = out[0] if isinstance(out, (tuple, list)) else out
    assert out.shape[0] == 2
    assert torch.isfinite(out).all()
    if out.dim() == 4:  # dense prediction keeps the input's resolution
        assert out.shape[2:] == x.shape[2:]
    acts = rec.activations  # raises if a tap never ran
    for d in info:
        a = acts[d["module"]]
        assert torch.isfinite(a).all()
        assert a.shape[1] == d["num_chs"], d
        if a.dim() == 4:
            assert a.shape[2] * d["reduction"] == x.shape[2], d
            assert a.shape[3] * d["reduction"] == x.shape[3], d


@pytest.mark.parametrize("name", list_models())
def test_catalogue_runs_on_every_model(name):
    torch.manual_seed(0)
    model = create_model(name)
    x = _input_for(model)[:1]
    df = list_layers(model, x)
    assert set(d["module"] for d in model.feature_info) <= set(df["path"])
    first = df.iloc[0]
    assert first["receptive_field"] >= 1 or first["type"] != "Conv2d"
    assert model.training
    # every parameter belongs to exactly one module that ran
    own = df.drop_duplicates("path")["params"].sum()
    assert own == sum(p.numel() for p in model.parameters())


def test_registry_lists_thesis_family():
    names = list_models()
    assert {"cnn1", "cnn6", "cnn10"} <= set(names)
    assert names == sorted(names)
    assert list_models("cnn*") == ["cnn1", "cnn10", "cnn6"]
    assert list_models("nothing*") == []


def test_create_model_unknown_name_lists_choices():
    with pytest.raises(ValueError, match=r"unknown model 'cnn7'; closest: 'cnn[0-9]+'") as err:
        create_model("cnn7")
    for name in list_models():
        assert name in str(err.value).split("Expected one of: ")[1].split(", ")
