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


def _cnn_n_by_hand(n: int, k: int, k_cls: int, *, width: int = 64, bn: bool = True) -> int:
    """Conv weights + biases (+ BatchNorm's gamma and beta) of CNN-N, counted by hand."""
    first = 1 * width * k * k + width
    rest = (n - 1) * (width * width * k * k + width)
    bns = n * 2 * width if bn else 0
    return first + rest + bns + width * 2 * k_cls * k_cls + 2


@pytest.mark.parametrize("name,n", [("cnn1", 1), ("cnn6", 6), ("cnn10", 10)])
@pytest.mark.parametrize("k,k_cls", [(3, 3), (7, 3), (7, 1), (5, 7)])
def test_cnn_n_kernel_sizes_keep_resolution_and_count_parameters(name, n, k, k_cls):
    model = create_model(name, kernel_size=k, classifier_kernel_size=k_cls, width=8).eval()
    assert model.conv_module1.conv.kernel_size == (k, k)
    assert model.classifier.kernel_size == (k_cls, k_cls)
    with torch.no_grad():
        assert model(torch.randn(1, 1, 11, 13)).shape == (1, 2, 11, 13)
    total = sum(p.numel() for p in model.parameters())
    assert total == _cnn_n_by_hand(n, k, k_cls, width=8)


def test_thesis_parameter_counts_are_7x7_kernels():
    # 64 maps: 3 x 3 gives about 0.19M and 0.34M; 7 x 7 the reported 1.01M and 1.81M
    assert _cnn_n_by_hand(6, 3, 3) == 187_202 and _cnn_n_by_hand(10, 3, 3) == 335_426
    assert _cnn_n_by_hand(6, 7, 3) == 1_008_962 and _cnn_n_by_hand(10, 7, 3) == 1_812_546
    # CNN1's 3.3K: 7 x 7, a 1 x 1 last conv, convolutions only (3,200 + 130)
    assert _cnn_n_by_hand(1, 7, 1, bn=False) == 3_330
    from cnnexplore_nb.studies.vessel_tables import parameter_counts

    df = parameter_counts()
    assert len(df) == 3 * 2 * 2 * 2
    assert list(df.columns) == ["model", "kernel_size", "classifier_kernel_size", "counted",
                                "parameters", "computed", "reported", "matches"]  # fmt: skip
    hits = df[df["matches"]]
    for row in hits.itertuples():
        assert row.kernel_size == 7  # no 3 x 3 setting reproduces any reported count
    every = hits.groupby(["kernel_size", "classifier_kernel_size", "counted"]).size()
    assert every[every == 3].index.tolist() == [(7, 1, "conv")]  # all three at once
    got = df.set_index(["model", "kernel_size", "classifier_kernel_size", "counted"])
    assert got.loc[("CNN6", 3, 3, "all"), "parameters"] == 187_202
    assert got.loc[("CNN10", 7, 1, "conv"), "computed"] == "1.81M"
    assert got.loc[("CNN1", 7, 1, "all"), "computed"] == "3.5K"


def test_cnn_n_even_kernel_is_a_clear_error():
    with pytest.raises(ValueError, match=r"kernel_size must be odd .* got 4"):
        create_model("cnn6", kernel_size=4)
    with pytest.raises(ValueError, match=r"classifier_kernel_size must be odd .* got 2"):
        create_model("cnn1", classifier_kernel_size=2)
    with pytest.raises(TypeError, match=r"keyword argument of model 'cnn6'.*kernel"):
        create_model("cnn6", kernel=7)
