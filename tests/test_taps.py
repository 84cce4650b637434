"""feature_layers: feature_info taps, and taps inferred for networks written elsewhere."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _external_models import FAMILIES, resnet18
from torch import nn

import cnnexplore_nb as cx
from cnnexplore_nb.inspect import feature_layers


def _no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


@pytest.mark.parametrize("family", list(FAMILIES))
def test_inferred_taps_of_every_family(family):
    make, shape, want = FAMILIES[family]
    torch.manual_seed(0)
    model = make().train()
    example = torch.randn(1, *shape)
    assert feature_layers(model, example) == want
    assert model.training and _no_hooks(model)  # mode restored, hooks removed
    # one tap per run of resolutions: neighbouring taps never share H x W
    catalogue = cx.list_layers(model, example)
    taps = catalogue[catalogue["tap"]]
    assert list(taps["path"]) == want  # the catalogue marks the same taps
    sizes = [shape[2:] for shape in taps["output_shape"]]
    assert all(a != b for a, b in zip(sizes, sizes[1:])), sizes
    assert (taps["maps"] > 0).all()


def test_resnet18_taps_are_the_stem_and_the_four_stage_ends():
    """The issue's network: a hand-written ResNet-18 at 224 x 224 (timm's act1, layer1-4)."""
    model = resnet18()
    x = torch.randn(2, 3, 224, 224)
    taps = cx.feature_layers(model, x)
    assert taps == ["relu", "layer1", "layer2", "layer3", "layer4"]
    catalogue = cx.list_layers(model, x[:1]).set_index("path")
    assert [catalogue.loc[t, "output_shape"][2] for t in taps] == [112, 56, 28, 14, 7]
    # the last module at each resolution: nothing after a tap keeps its resolution ...
    order = list(cx.list_layers(model, x[:1])["path"])
    for tap, size in zip(taps, [112, 56, 28, 14, 7]):
        later = [p for p in order[order.index(tap) + 1 :] if not p.startswith(tap + ".")]
        shapes = [catalogue.loc[p, "output_shape"] for p in later]
        assert all(len(s) != 4 or s[2] != size for s in shapes), tap
    # ... and the thesis rule applies on top
    assert cx.select_layers(taps) == ["relu", "layer1", "layer3", "layer4"]
    maps = cx.extract_activations(model, x, taps, progress=False)
    assert [tuple(m.shape) for m in maps.values()] == [
        (2, 64, 112, 112), (2, 64, 56, 56), (2, 128, 28, 28), (2, 256, 14, 14), (2, 512, 7, 7),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "shape"),
    [("cnn6", (1, 1, 32, 32)), ("unet_small", (1, 1, 32, 32)), ("vgg9_bn", (1, 3, 32, 32))],
)
def test_inferred_taps_equal_the_builtin_feature_info(name, shape):
    """The rule, run on the built-in models without their feature_info, finds the taps
    their authors listed by hand (CNN6: one resolution, its conv modules)."""
    model = cx.create_model(name, **({"width": 8} if name == "cnn6" else {}))
    listed = cx.feature_layers(model)
    del model.feature_info
    assert feature_layers(model, torch.randn(*shape)) == listed


def test_resnet32_inferred_taps_are_its_stage_ends():
    model = cx.create_model("resnet32")
    del model.feature_info  # it lists every block; the rule gives the last of each stage
    assert feature_layers(model, torch.randn(1, 3, 32, 32)) == ["blocks2", "blocks4", "blocks6"]


def test_registered_model_needs_no_example_and_keeps_its_feature_info():
    model = cx.create_model("cnn6", width=4)
    assert cx.feature_layers(model) == [f"conv_module{i}" for i in range(1, 7)]
    assert cx.feature_layers(model, torch.zeros(1, 1, 8, 8)) == cx.feature_layers(model)


def test_no_example_and_no_feature_info_is_the_clear_error():
    with pytest.raises(TypeError, match=r"ResNet has no feature_info; pass layer paths .*"
                       r"an example batch to infer its taps"):  # fmt: skip
        cx.feature_layers(resnet18(width=8))


def test_a_model_without_spatial_maps_is_an_error_naming_the_fix():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    with pytest.raises(ValueError, match=r"no module of the model produces a spatial map"):
        cx.feature_layers(model, torch.zeros(1, 3, 2, 2))
    assert not cx.list_layers(model, torch.zeros(1, 3, 2, 2))["tap"].any()


def test_flat_fcn_taps_are_the_last_module_of_each_conv_block():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
        nn.Conv2d(4, 2, 1),  # the logits: the model's output, not a tap
    )  # fmt: skip
    assert cx.feature_layers(model, torch.zeros(1, 1, 8, 8)) == ["2", "4"]


class _SharedModules(nn.Module):
    """One ReLU and one pool module called at every stage (a common hand-written style),
    with a squeeze-and-excitation gate (1 x 1 maps) inside the second stage."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 8, 3, padding=1)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(8, 8, 1), nn.Sigmoid())
        self.post = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        x = self.relu(self.conv2(x))
        x = self.post(x * self.gate(x))
        return self.fc(F.adaptive_avg_pool2d(self.pool(x), 1).flatten(1))


def test_shared_modules_give_way_and_gates_are_skipped():
    # 16 x 16: conv1 then the shared relu (called twice) -> conv1 is the last module
    # called once; 8 x 8: conv2, relu, the gate (1 x 1, skipped), post -> post
    assert cx.feature_layers(_SharedModules(), torch.zeros(1, 3, 16, 16)) == ["conv1", "post"]


def test_extraction_without_layers_uses_the_inferred_taps():
    make, shape, want = FAMILIES["resnet18"]
    model = make().eval()
    x = torch.randn(2, *shape)
    maps = cx.extract_activations(model, x, progress=False)  # no feature_info, no layers
    assert list(maps) == want
    maps_ds = cx.extract_activations(model, torch.utils.data.TensorDataset(x), progress=False)
    assert list(maps_ds) == want  # a Dataset: the first item is the example
    for k in want:
        torch.testing.assert_close(maps_ds[k], maps[k])
    with pytest.raises(TypeError, match="no feature_info"):  # a recorder has no example
        cx.ActivationRecorder(model)


def test_taps_feed_extraction_tables_and_the_thesis_rule():
    make, shape, want = FAMILIES["unet"]
    model = make().eval()
    x = torch.randn(3, *shape)
    layers = cx.select_layers(cx.feature_layers(model, x))
    assert layers == ["inc", "down1", "down3", "up2", "up3"]
    maps = cx.extract_activations(model, x, layers, progress=False)
    tables = cx.correlation_tables(maps, resample="bilinear-down", progress=False)
    assert tables.layers_a == layers
