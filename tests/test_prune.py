"""Tests of cnnexplore_nb.prune: selection, mean ablation, physical removal, reports."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnnexplore_nb import prune
from cnnexplore_nb.models.fcn import FCN

LAYERS = ["conv_module1", "conv_module2", "conv_module3"]


def random_fcn(n_modules=3, width=8, seed=0) -> FCN:
    """CNN-N with random weights and random (non-trivial) BatchNorm statistics, eval mode."""
    torch.manual_seed(seed)
    model = FCN(n_modules, width=width)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.normal_(0, 0.4)
                m.bias.normal_(0, 0.3)
            elif isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.3)
    return model.eval()


def record(model: nn.Module, x: torch.Tensor, layers) -> dict[str, torch.Tensor]:
    """Module outputs by plain forward hooks (independent of the library's extractor)."""
    out, handles = {}, []
    for name in layers:
        mod = model.get_submodule(name)
        handles.append(
            mod.register_forward_hook(lambda m, i, o, n=name: out.__setitem__(n, o.clone()))
        )
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return out


# ------------------------------------------------------------------------ selection
def block_similarity() -> np.ndarray:
    """Groups {0,1,2} (|r| 0.9), {3,4} (r = -0.85), 5 alone, 6 constant (NaN)."""
    s = np.full((7, 7), 0.1)
    s[np.ix_([0, 1, 2], [0, 1, 2])] = 0.9
    s[3, 4] = s[4, 3] = -0.85
    np.fill_diagonal(s, 1.0)
    s[6, :] = s[:, 6] = np.nan
    return s


def test_redundant_maps_known_groups():
    s = block_similarity()
    assert prune.redundant_maps(s, 0.8) == [1, 2, 4, 6]
    assert prune.redundant_maps(s, 0.8, rule="components") == [1, 2, 4, 6]
    # above every |r|: only the dead map goes
    assert prune.redundant_maps(s, 0.95) == [6]
    # threshold 0.86 splits {3, 4} (|r| = 0.85) off
    assert prune.redundant_maps(s, 0.86) == [1, 2, 6]


def test_greedy_and_components_differ_on_a_chain():
    # chain 0 ~ 1 ~ 2 ~ 3 (neighbours 0.9, others 0)
    s = np.eye(4)
    for i in range(3):
        s[i, i + 1] = s[i + 1, i] = 0.9
    # greedy: keep 1 (most partners, lowest id), drop 0 and 2; 3 then has no partner left
    assert prune.redundant_maps(s, 0.8) == [0, 2]
    # components: one component, keep 1, drop the rest
    assert prune.redundant_maps(s, 0.8, rule="components") == [0, 2, 3]


def test_greedy_keeps_no_correlated_pair():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(12, 5))
    s = np.corrcoef(z @ rng.normal(size=(5, 40)))
    removed = prune.redundant_maps(s, 0.6)
    kept = [i for i in range(12) if i not in removed]
    sub = np.abs(s[np.ix_(kept, kept)]) - np.eye(len(kept))
    assert sub.max() < 0.6
    # and every removed map has a kept partner at the threshold (it is represented)
    for r in removed:
        assert np.abs(s[r, kept]).max() >= 0.6


def test_all_constant_keeps_one_map():
    assert prune.redundant_maps(np.full((3, 3), np.nan), 0.5) == [1, 2]


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_threshold_outside_unit_interval(bad):
    with pytest.raises(ValueError, match="threshold"):
        prune.redundant_maps(np.eye(3), bad)
    with pytest.raises(ValueError, match="threshold"):
        prune.select_redundant({"a": torch.rand(1, 2, 4, 4)}, bad)


def test_redundant_maps_bad_matrix_and_rule():
    with pytest.raises(ValueError, match=r"\(K, K\).*\(2, 3\)"):
        prune.redundant_maps(np.ones((2, 3)))
    with pytest.raises(ValueError, match="rule"):
        prune.redundant_maps(np.eye(2), rule="louvain")


def test_select_redundant_finds_copied_channels():
    model = random_fcn(n_modules=2, width=6, seed=1)
    with torch.no_grad():
        conv = model.conv_module1.conv
        bn = model.conv_module1.bn
        # channel 2 and 5 copy channel 0 exactly, channel 4 copies channel 1
        for dst, src in [(2, 0), (5, 0), (4, 1)]:
            conv.weight[dst] = conv.weight[src]
            conv.bias[dst] = conv.bias[src]
            for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
                t[dst] = t[src]
    x = torch.randn(3, 1, 12, 12)
    maps = record(model, x, ["conv_module1", "conv_module2"])
    sel = prune.select_redundant(maps, 0.999, layers=["conv_module1"])
    assert sel == {"conv_module1": [2, 4, 5]}
    # the same from a dict of matrices, as correlation tables hold them
    r = np.corrcoef(maps["conv_module1"].transpose(0, 1).reshape(6, -1).numpy())
    assert prune.choose_redundant({("conv_module1", "conv_module1"): r}, "conv_module1", 0.999) == [
        2,
        4,
        5,
    ]
    with pytest.raises(KeyError, match="conv_module2"):
        prune.choose_redundant({("conv_module1", "conv_module1"): r}, "conv_module2")
    with pytest.raises(KeyError, match="conv_modul1"):
        prune.select_redundant(maps, 0.9, layers=["conv_modul1"])


def test_select_redundant_flags_dead_maps():
    x = torch.rand(2, 3, 5, 5)
    x[:, 1] = 0.0  # dead map
    assert prune.select_redundant({"l": x}, 0.99) == {"l": [1]}


def test_choose_redundant_from_correlation_tables():
    from cnnexplore_nb.similarity import correlation_tables

    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 6, 6, 6, generator=g)
    x[:, 3] = 2 * x[:, 0] + 1  # affine copy
    x[:, 5] = -x[:, 2]  # negative copy: |r| = 1
    x[:, 4] = 0.0  # dead map
    tables = correlation_tables({"l": x}, progress=False)
    assert prune.choose_redundant(tables, "l", 0.99) == [3, 4, 5]


def test_l1_smallest_hand_set_norms():
    model = FCN(1, width=5)
    with torch.no_grad():
        scale = torch.tensor([3.0, 0.5, 2.0, 0.1, 1.0])
        model.conv_module1.conv.weight.copy_(torch.ones(5, 1, 3, 3) * scale.view(5, 1, 1, 1))
    assert prune.l1_smallest(model, "conv_module1", 2) == [1, 3]
    assert prune.l1_smallest(model, "conv_module1", 0) == []
    with pytest.raises(ValueError, match="k must be <= 5"):
        prune.l1_smallest(model, "conv_module1", 6)
    with pytest.raises(KeyError, match="classifier"):
        prune.l1_smallest(model, "classifier", 1)


# ----------------------------------------------------------------- ablation and removal
def test_map_means_match_direct_mean_and_dataset_input():
    model = random_fcn()
    x = torch.randn(5, 1, 10, 10)
    means = prune.map_means(model, x, LAYERS, batch_size=2, progress=False)
    ref = record(model, x, LAYERS)
    for layer in LAYERS:
        torch.testing.assert_close(means[layer], ref[layer].double().mean(dim=(0, 2, 3)).float())
    ds = [(x[i, 0].numpy(), 0) for i in range(5)]  # Dataset-like: (image (H, W), label)
    means2 = prune.map_means(model, ds, ["conv_module2"], batch_size=3, progress=False)
    torch.testing.assert_close(means2["conv_module2"], means["conv_module2"])
    assert model.training is False and not model.conv_module1._forward_hooks


def test_mean_ablation_replaces_maps_and_removes_hooks():
    model = random_fcn()
    x = torch.randn(2, 1, 8, 8)
    means = {"conv_module2": torch.arange(8.0)}
    seen = {}
    h = model.conv_module3.register_forward_pre_hook(lambda m, i: seen.__setitem__("in", i[0]))
    with prune.mean_ablation(model, {"conv_module2": [1, 6]}, means):
        model(x)
    h.remove()
    assert torch.all(seen["in"][:, 1] == 1.0) and torch.all(seen["in"][:, 6] == 6.0)
    assert not torch.all(seen["in"][:, 0] == 0.0)
    assert not model.conv_module2._forward_hooks
    with pytest.raises(RuntimeError, match="boom"):
        with prune.mean_ablation(model, {"conv_module2": [1]}, means):
            raise RuntimeError("boom")
    assert not model.conv_module2._forward_hooks


PLANS = [
    {"conv_module1": [0, 3]},
    {"conv_module3": [1, 2, 5, 7]},
    {"conv_module1": [0, 3], "conv_module2": [1, 2, 7], "conv_module3": [5]},
]


@pytest.mark.parametrize("plan", PLANS)
def test_folded_removal_matches_mean_ablation_away_from_border(plan):
    model = random_fcn()
    x = torch.randn(2, 1, 16, 16)
    means = prune.map_means(model, x, LAYERS, progress=False)
    pruned = prune.prune_maps(model, plan, fold_means=means)
    with torch.no_grad(), prune.mean_ablation(model, plan, means):
        ablated = model(x)
    with torch.no_grad():
        out = pruned(x)
    # 3x3 convs after the shallowest pruned module (its successors + the classifier)
    first = min(LAYERS.index(k) for k in plan)
    m = len(LAYERS) - first
    torch.testing.assert_close(out[..., m:-m, m:-m], ablated[..., m:-m, m:-m], atol=1e-5, rtol=1e-5)
    # the border does differ (zero padding), so the comparison above is not vacuous
    assert (out - ablated).abs().max() > 1e-3


def test_removal_without_folding_equals_zero_ablation_everywhere():
    model = random_fcn()
    x = torch.randn(2, 1, 9, 11)
    plan = PLANS[2]
    zeros = {k: torch.zeros(8) for k in LAYERS}
    with torch.no_grad(), prune.mean_ablation(model, plan, zeros):
        ref = model(x)
    with torch.no_grad():
        out = prune.prune_maps(model, plan)(x)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_pruned_model_is_smaller_with_hand_counted_params():
    model = random_fcn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plan = {"conv_module1": [0, 3], "conv_module2": [1, 2, 7], "conv_module3": [5]}
    pruned = prune.prune_maps(model, plan)
    k1, k2, k3 = 6, 5, 7
    # conv (C_in*9 + 1) * C_out, BN 2 * C (affine); classifier (k3*9 + 1) * 2
    expected = (9 + 1) * k1 + 2 * k1 + (9 * k1 + 1) * k2 + 2 * k2 + (9 * k2 + 1) * k3 + 2 * k3
    expected += (9 * k3 + 1) * 2
    assert prune.count_params(pruned) == expected
    assert prune.count_params(model) == 2 * 8 * 3 + 10 * 8 + 2 * (73 * 8) + 73 * 2
    sd = pruned.state_dict()
    assert sd["conv_module1.conv.weight"].shape == (6, 1, 3, 3)
    assert sd["conv_module2.conv.weight"].shape == (5, 6, 3, 3)
    assert sd["conv_module2.bn.running_var"].shape == (5,)
    assert sd["classifier.weight"].shape == (2, 7, 3, 3)
    # kept weights and statistics are the original ones
    keep2 = [0, 3, 4, 5, 6]
    torch.testing.assert_close(
        sd["conv_module2.conv.weight"],
        before["conv_module2.conv.weight"][keep2][:, [1, 2, 4, 5, 6, 7]],
    )
    torch.testing.assert_close(
        sd["conv_module2.bn.running_mean"], before["conv_module2.bn.running_mean"][keep2]
    )
    assert [f["num_chs"] for f in pruned.feature_info] == [6, 5, 7]
    assert [f["num_chs"] for f in model.feature_info] == [8, 8, 8]
    # the original is untouched
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    # a pruned model still trains (train-mode BN, backward)
    pruned.train()
    pruned(torch.randn(2, 1, 6, 6)).sum().backward()


def test_prune_maps_bad_inputs():
    model = random_fcn()
    with pytest.raises(ValueError, match="every map of 'conv_module2'"):
        prune.prune_maps(model, {"conv_module2": list(range(8))})
    with pytest.raises(ValueError, match=r"duplicate.*\[3\]"):
        prune.prune_maps(model, {"conv_module2": [3, 1, 3]})
    with pytest.raises(ValueError, match=r"\[0, 7\], got \[8, -1\]"):
        prune.prune_maps(model, {"conv_module2": [8, -1]})
    with pytest.raises(KeyError, match="conv_module4.*closest: 'conv_module3'"):
        prune.prune_maps(model, {"conv_module4": [1]})
    with pytest.raises(KeyError, match="prunable layer 'classifier'"):
        prune.prune_maps(model, {"classifier": [1]})
    with pytest.raises(KeyError, match="fold_means has no entry"):
        prune.prune_maps(model, {"conv_module2": [1]}, fold_means={"conv_module1": torch.ones(8)})
    with pytest.raises(ValueError, match="must have 8 values, got 3"):
        prune.prune_maps(model, {"conv_module2": [1]}, fold_means={"conv_module2": torch.ones(3)})


class Pooled(nn.Module):
    """U-Net-like encoder piece: a pooling layer between conv blocks."""

    def __init__(self):
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
        self.down = nn.MaxPool2d(2)
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        return self.head(self.down(self.block1(x)))


class Skip(nn.Module):
    """Children that look prunable, but forward adds a skip connection."""

    def __init__(self):
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
        self.block2 = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(4, 2, 3, padding=1)

    def forward(self, x):
        h = self.block1(x)
        return self.head(self.block2(h) + h)


class Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=2), nn.ReLU())
        self.head = nn.Conv2d(4, 2, 3, padding=1)

    def forward(self, x):
        return self.head(self.block1(x))


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (Pooled(), "unsupported layer 'down' \\(MaxPool2d\\)"),
        (Skip(), "unsupported layer 'head'.*skip connection"),
        (Grouped(), "unsupported layer 'block1.0': grouped conv \\(groups=2\\)"),
    ],
)
def test_unsupported_models_name_the_layer(model, match):
    with pytest.raises(TypeError, match=match):
        prune.prune_maps(model, {"block1": [0]})


def test_plain_sequential_chain_is_prunable():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()),
        nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()),
        nn.Conv2d(4, 3, 1, bias=False),
    ).eval()
    x = torch.randn(1, 2, 7, 7)
    means = {"1": torch.tensor([0.1, 0.2, 0.3, 0.4])}
    pruned = prune.prune_maps(model, {"1": [0, 2]}, fold_means=means)
    assert pruned[2].bias is not None  # created to hold the folded means
    with torch.no_grad(), prune.mean_ablation(model, {"1": [0, 2]}, means):
        ref = model(x)
    torch.testing.assert_close(pruned(x), ref, atol=1e-5, rtol=1e-5)  # 1x1 head: no border


# ------------------------------------------------------------------------------ reports
def test_macs_match_hand_formula():
    model = FCN(6, width=4)
    h, w = 10, 7
    x = torch.randn(1, 1, h, w)
    expected = h * w * (4 * 1 * 9 + 5 * 4 * 4 * 9 + 2 * 4 * 9)
    assert prune.count_flops(model, x) == expected
    assert prune.count_flops(model, x, unit="flops") == 2 * expected
    assert prune.count_flops(model, torch.randn(3, 1, h, w)) == 3 * expected
    lin = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 2))
    assert prune.count_flops(lin, torch.randn(2, 3, 2, 2)) == 2 * (12 * 5 + 5 * 2)
    with pytest.raises(ValueError, match="unit"):
        prune.count_flops(model, x, unit="gflops")


def test_prune_report_and_speedup():
    big = FCN(4, width=32).eval()
    small = prune.prune_maps(big, {f"conv_module{i}": list(range(24)) for i in range(1, 5)})
    x = torch.randn(1, 1, 48, 48)
    rep = prune.prune_report(big, small, x, repeats=5, warmup=1)
    assert list(rep.columns) == ["quantity", "before", "after", "ratio"]
    row = rep.set_index("quantity")
    assert row.loc["params", "after"] == prune.count_params(small)
    assert row.loc["macs", "ratio"] == pytest.approx(
        prune.count_flops(big, x) / prune.count_flops(small, x)
    )
    # 32 -> 8 maps: about 16x fewer MACs in the middle layers; measured time drops clearly
    assert row.loc["macs", "ratio"] > 8
    # measured times are reported, never asserted (machine load varies): the ratio is
    # before/after of the reported times, and speedup() returns a positive finite ratio
    assert row.loc["time_ms", "ratio"] == pytest.approx(
        row.loc["time_ms", "before"] / row.loc["time_ms", "after"]
    )
    s = prune.speedup(big, small, x, repeats=3, warmup=1, threads=1)
    assert np.isfinite(s) and s > 0


# ------------------------------------------------------------------------ pruning curve
def test_pruning_curve_counts_cache_and_l1_baseline():
    model = random_fcn(seed=2)
    x = torch.randn(2, 1, 10, 10)
    maps = record(model, x, LAYERS)
    probe = torch.randn(1, 1, 10, 10)
    calls = []

    def evaluate(m):
        calls.append(1)
        with torch.no_grad():
            return {"score": float(m(probe).mean())}

    study = prune.PruningStudy(model, maps, evaluate=evaluate, progress=False)
    curve = study.curve([0.3, 0.6, 0.9, 1.0])
    assert list(curve["criterion"]) == ["correlation", "l1"] * 4
    corr = curve[curve.criterion == "correlation"].reset_index(drop=True)
    l1 = curve[curve.criterion == "l1"].reset_index(drop=True)
    cols = [f"removed_{k}" for k in LAYERS]
    assert (corr[cols].to_numpy() == l1[cols].to_numpy()).all()
    assert list(corr["removed"]) == list(corr[cols].sum(axis=1))
    assert corr["removed"].is_monotonic_decreasing
    # counts agree with the selection on the same maps
    sel = prune.select_redundant(maps, 0.6)
    assert corr.loc[1, "removed"] == sum(len(v) for v in sel.values())
    # metric of the pruned model is the evaluation of prune_maps with folded means
    pruned = prune.prune_maps(
        model, sel, fold_means={k: v.mean(dim=(0, 2, 3)) for k, v in maps.items()}
    )
    assert corr.loc[1, "score_pruned"] == pytest.approx(evaluate(pruned)["score"], rel=1e-5)
    assert corr.loc[1, "params"] == prune.count_params(pruned)
    assert corr.loc[1, "score_change"] == pytest.approx(
        corr.loc[1, "score_pruned"] - corr.loc[1, "score_before"]
    )
    assert np.isnan(corr.loc[1, "score_finetuned"])
    # slider: a repeated threshold costs nothing
    n = len(calls)
    row = study.at(0.6)
    assert len(calls) == n and row.loc[0, "removed"] == corr.loc[1, "removed"]
    with pytest.raises(ValueError, match="threshold"):
        study.at(1.2)


def test_pruning_curve_default_segmentation_metrics_and_fine_tuning():
    from cnnexplore_nb.data.vessels import synthetic_vessels
    from cnnexplore_nb.training import evaluate_segmentation, train_segmentation

    images, masks = synthetic_vessels(3, 24, rng=0)
    data = (images, masks)
    model = random_fcn(n_modules=2, width=4, seed=3)
    maps = record(model, torch.as_tensor(images)[:, None], ["conv_module1", "conv_module2"])
    curve = prune.pruning_curve(
        model,
        maps,
        [0.5],
        data,
        criteria=["correlation"],
        fine_tune_data=data,
        fine_tune_epochs=1,
        batch_size=3,
        seed=0,
        progress=False,
    )
    row = curve.iloc[0]
    assert row["iou_before"] == pytest.approx(evaluate_segmentation(model, data)["iou"].mean())
    plan = prune.select_redundant(maps, 0.5)
    means = {k: v.mean(dim=(0, 2, 3)) for k, v in maps.items()}
    pruned = prune.prune_maps(model, plan, fold_means=means)
    scores = evaluate_segmentation(pruned, data)
    assert row["iou_pruned"] == pytest.approx(scores["iou"].mean(), abs=1e-9)
    assert row["cldice_pruned"] == pytest.approx(scores["cldice"].mean(), abs=1e-9)
    tuned, _ = train_segmentation(
        pruned, data, data, epochs=1, lr=0.01, batch_size=3, seed=0, progress=False
    )
    assert row["iou_finetuned"] == pytest.approx(evaluate_segmentation(tuned, data)["iou"].mean())
    with pytest.raises(ValueError, match="fine_tune_data"):
        prune.PruningStudy(model, maps, data, fine_tune_epochs=2)


def test_registered_non_chain_models_are_rejected():
    from cnnexplore_nb.models import create_model, list_models

    others = [n for n in list_models() if not n.startswith("cnn")]
    for name in others:
        with pytest.raises(TypeError, match=r"unsupported layer '[\w.]+'"):
            prune.prune_maps(create_model(name), {"conv_module1": [0]})
    # the CNN-N family is accepted as is
    for name in ("cnn1", "cnn6"):
        pruned = prune.prune_maps(create_model(name, width=4), {"conv_module1": [0]})
        assert pruned.conv_module1.conv.out_channels == 3
