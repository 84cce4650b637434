"""Display names: one table for every figure and panel, overridable by the user."""

from __future__ import annotations

import pandas as pd
import pytest

from cnnexplore_nb import plots
from cnnexplore_nb.models import create_model
from cnnexplore_nb.plots import names


@pytest.mark.parametrize(
    "path, shown",
    [
        ("conv_module3", "module 3"),
        ("conv_module10", "module 10"),
        ("conv_module1.conv", "module 1 conv"),
        ("block1", "stage 1 block 1"),
        ("blocks2.3", "stage 1 block 5"),
        ("block5", "stage 3 block 1"),
        ("features.0", "conv 1"),
        ("features.2", "conv 1"),
        ("features.27", "conv 8"),
        ("encoder.0", "encoder 1"),
        ("decoder.3", "decoder 4"),
        ("bottleneck", "bottleneck"),
        ("layer1.0.conv1", "layer1.0.conv1"),  # the user's own paths stay as they are
        ("features.3", "features.3"),  # a max-pool of VGG-9: no built-in name
    ],
)
def test_layer_names(path, shown):
    assert names.layer_name(path) == shown


def test_every_builtin_tap_has_a_distinct_readable_name():
    from cnnexplore_nb.models import feature_layers, list_models

    for model in list_models():
        taps = feature_layers(create_model(model))
        shown = names.layer_names(taps)
        assert len(set(shown.values())) == len(taps), (model, shown)
        assert all("_" not in s for s in shown.values()), (model, shown)


@pytest.mark.parametrize(
    "stat, kw, shown",
    [
        ("percent", {"threshold": 0.8}, "% maps with max |r| ≥ 0.8"),
        ("percent", {"threshold": 0.9, "measure": "cosine"}, "% maps with max |cos| ≥ 0.9"),
        ("percent", {}, "% maps with max |r| ≥ threshold"),
        ("mean_max", {}, "mean max |r|"),
        ("mean_max_mean", {}, "mean max |r|, mean over images"),
        ("percent_std", {"threshold": 0.8}, "% maps with max |r| ≥ 0.8, std over images"),
        ("count", {"threshold": 0.8}, "maps with max |r| ≥ 0.8"),
        ("mean", {"threshold": 0.8}, "mean max |r| of maps ≥ 0.8"),
        ("n_maps", {}, "maps in the layer"),
    ],
)
def test_statistic_names_follow_threshold_and_measure(stat, kw, shown):
    assert names.statistic_name(stat, **kw) == shown


@pytest.mark.parametrize(
    "key, shown",
    [
        ("scratch", "scratch"),
        ("ufm", "UFM (15 pairs)"),
        ("ufm_hint", "UFM (one hint)"),
        ("l2t_ww", "L2T-ww"),
        ("l2t_ww_frozen", "L2T-ww (frozen meta)"),
        ("l2t_www", "L2T-www"),
        ("attention", "attention transfer"),
        ("iou", "IoU"),
        ("cldice", "clDice"),
        ("val_iou", "validation IoU"),
        ("val_cldice", "validation clDice"),
        ("val_loss", "validation loss"),
        ("train_loss", "training loss"),
        ("train_acc", "training accuracy"),
        ("pearson", "Pearson r"),
        ("cka", "linear CKA"),
        ("euclidean", "Euclidean distance"),
        ("A_layer", "layer of A"),
        ("something_else", "something else"),
    ],
)
def test_display_name_of_any_key(key, shown):
    assert names.display_name(key) == shown


def test_pair_names_with_and_without_the_models():
    assert names.pair_name("4-0") == "source block 4 → target conv 0"
    assert names.pair_name("14-2", short=True) == "14 → 2"
    assert names.pair_title() == "source block → target conv"
    source, target = create_model("resnet32"), create_model("vgg9_bn")
    assert names.pair_name("4-0", source=source, target=target) == (
        "source stage 1 block 5 → target conv 1"
    )
    with pytest.raises(IndexError, match="tap 20 out of range: the model has 15 feature taps"):
        names.pair_name("20-0", source=source)
    assert names.weight_name("features.0.weight[4, 2, 2, 0]") == "conv 1 weight [4, 2, 2, 0]"


def test_user_overrides_global_and_scoped():
    try:
        plots.NAMES.update(layer={"layer1.0.conv1": "first conv"}, method={"ufm": "UFM [12]"})
        assert names.layer_name("layer1.0.conv1") == "first conv"
        assert names.method_name("ufm") == "UFM [12]"
        with plots.display_names(metric={"iou": "Jaccard"}, method={"ufm": "unsupervised"}):
            assert names.metric_name("iou") == "Jaccard"
            assert names.display_name("ufm") == "unsupervised"
        assert names.metric_name("iou") == "IoU" and names.method_name("ufm") == "UFM [12]"
        plots.NAMES.builtin_layers = False
        assert names.layer_name("conv_module3") == "conv_module3"
    finally:
        plots.NAMES.reset()
        plots.NAMES.builtin_layers = True
    assert names.method_name("ufm") == "UFM (15 pairs)"
    with pytest.raises(ValueError, match="unknown display-name kind 'metrics'; closest: 'metric'"):
        plots.NAMES.update(metrics={"iou": "x"})


def test_figures_use_the_overrides():
    import pandas as pd

    df = pd.DataFrame({"epoch": [0, 1], "val_iou": [0.1, 0.2]})
    with plots.display_names(metric={"val_iou": "IoU on held-out images"}):
        fig = plots.training_history(df)
    assert [e.label for e in fig][0] == "IoU on held-out images"


def test_self_comparison_names_drop_the_explorer_suffixes():
    from cnnexplore_nb.plots.names import model_names

    assert model_names(("CNN6(1)", "CNN6(2)")) == ("CNN6 (A)", "CNN6 (B)")
    assert model_names(("CNN6", "CNN6")) == ("CNN6 (A)", "CNN6 (B)")
    assert model_names(("CNN6", "CNN10")) == ("CNN6", "CNN10")
    assert model_names(("A(1)", "B(2)")) == ("A(1)", "B(2)")  # not one network with itself
    from cnnexplore_nb.plots.names import comparison_name

    assert comparison_name(("CNN6(1)", "CNN6(2)")) == "within CNN6"
    assert comparison_name(("CNN6", "CNN6")) == "within CNN6"
    assert comparison_name(("CNN6", "CNN10")) == "CNN6 vs CNN10"


def test_builtin_names_stay_off_a_user_network_with_the_same_paths():
    """VGG-9's ``features.8`` is "conv 3"; ``features.8`` of a VGG-16 written by a user is
    its fourth ReLU and keeps its path once the toolkit has seen that network."""
    import torch
    from _external_models import vgg16

    from cnnexplore_nb import extract_activations, list_layers
    from cnnexplore_nb.models import create_model
    from cnnexplore_nb.plots.names import display_name, layer_name

    ours = create_model("vgg9_bn", width=0.125, num_classes=3)
    theirs = vgg16(num_classes=3, width=8)
    x = torch.zeros(1, 3, 32, 32)
    try:
        extract_activations(ours, x, ["features.8"], progress=False)
        assert layer_name("features.8") == "conv 3"
        list_layers(theirs, x)
        assert layer_name("features.8") == "features.8"
        assert display_name("features.8") == "features.8"
        extract_activations(ours, x, ["features.8"], progress=False)  # ours again
        assert layer_name("features.8") == "conv 3"
    finally:
        extract_activations(ours, x, ["features.8"], progress=False)


def test_readable_table_names_headings_and_index_and_rounds():
    from cnnexplore_nb.plots.names import readable_table

    table4 = pd.DataFrame({"model": ["CNN1"], "batch": [4], "training_s": [66.4883],
                           "parameters": [1922.0], "best_epoch": [38], "IoU": [0.686184],
                           "percent": [12.3456]})  # fmt: skip
    shown = readable_table(table4, threshold=0.8)
    assert list(shown.columns) == ["model", "batch size", "training time (s)", "parameters",
                                   "best epoch", "IoU", "% maps with max |r| ≥ 0.8"]  # fmt: skip
    row = shown.iloc[0]
    assert row["training time (s)"] == 66.5 and row["IoU"] == 0.686
    assert row["% maps with max |r| ≥ 0.8"] == 12.3
    assert str(row["parameters"]) == "1922"  # a count, not 1922.0
    pivot = pd.DataFrame({"kernel_size": [3, 3], "counted": ["all", "conv"], "model": "CNN1",
                          "parameters": [898, 770]}).pivot_table(
        index=["kernel_size", "counted"], columns="model", values="parameters", aggfunc="first")  # fmt: skip
    assert list(readable_table(pivot).index.names) == ["module kernel size", "counted"]
    assert table4.columns[2] == "training_s"  # the input is not changed
    explorer = pd.DataFrame({"CNN6(1)_layer": ["conv_module1"], "CNN6(1)_map_id": [0],
                             "CNN6(2)_map_id": [13], "signed_correlation": [0.979582]})  # fmt: skip
    shown = readable_table(explorer, names=("CNN6", "CNN6"))
    assert list(shown.columns) == ["CNN6 (A) layer", "CNN6 (A) map", "CNN6 (B) map", "signed r"]
    assert shown.iloc[0].tolist()[::3] == ["module 1", 0.98]
    ours = pd.DataFrame({"A_map_id": [0], "B_map_id": [1]})
    assert list(readable_table(ours, names=("CNN6", "CNN10")).columns) == ["CNN6 map", "CNN10 map"]
    assert list(readable_table(ours).columns) == ["map of A", "map of B"]
    conventions = pd.DataFrame(
        {("whole image", "percent"): [79.6875], ("whole image", "n_dead"): [0]},
        index=pd.MultiIndex.from_tuples([("conv_module1", "conv_module2")],
                                        names=["A_layer", "B_layer"]),
    )  # fmt: skip
    shown = readable_table(conventions, threshold=0.8, names=("CNN6", "CNN6"))
    assert shown.index.tolist() == [("module 1", "module 2")]
    assert list(shown.index.names) == ["CNN6 (A) layer", "CNN6 (B) layer"]
    assert list(shown.columns) == [("whole image", "% maps with max |r| ≥ 0.8"),
                                   ("whole image", "constant maps")]  # fmt: skip
    assert shown.iloc[0, 0] == 79.7
