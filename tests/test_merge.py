"""Merging redundant maps into their representative, against a hook-based reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnexplore_nb import extract_activations
from cnnexplore_nb.models.fcn import FCN
from cnnexplore_nb.prune import count_params, merge_curve, merge_fits, merge_maps, prune_maps

LAYERS = ["conv_module1", "conv_module2", "conv_module3"]


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = FCN(3, width=6).eval()
    with torch.no_grad():  # non-trivial BN statistics
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    x = torch.randn(3, 1, 20, 20)
    acts = extract_activations(model, x, LAYERS, progress=False)
    return model, x, acts


def test_fits_match_numpy_regression(setup):
    _, _, acts = setup
    plan = {"conv_module2": [1, 4], "conv_module3": [0]}
    fits = merge_fits(acts, plan).set_index(["layer", "map"])
    for layer, ids in plan.items():
        flat = acts[layer].transpose(0, 1).reshape(6, -1).double().numpy()
        keep = [k for k in range(6) if k not in ids]
        for m in ids:
            r = [np.corrcoef(flat[m], flat[k])[0, 1] for k in keep]
            rep = keep[int(np.argmax(np.abs(r)))]
            slope, intercept = np.polyfit(flat[rep], flat[m], 1)
            row = fits.loc[(layer, m)]
            assert row["representative"] == rep
            assert row["r"] == pytest.approx(r[keep.index(rep)], abs=1e-9)
            assert row["slope"] == pytest.approx(slope, rel=1e-6, abs=1e-9)
            assert row["intercept"] == pytest.approx(intercept, rel=1e-6, abs=1e-9)


def test_merged_model_equals_replacing_maps_by_their_fit(setup):
    model, x, acts = setup
    plan = {"conv_module1": [2], "conv_module2": [1, 4], "conv_module3": [0, 5]}
    fits = merge_fits(acts, plan)
    merged = merge_maps(model, plan, acts)
    assert count_params(merged) == count_params(prune_maps(model, plan))
    # reference: hooks replace map m by slope * rep + intercept during the forward
    handles = []
    modules = dict(model.named_modules())
    for layer, group in fits.groupby("layer"):

        def hook(_m, _i, out, group=group):
            out = out.clone()
            for row in group.itertuples():
                rep = out[:, row.representative] if row.representative >= 0 else 0.0
                out[:, row.map] = row.slope * rep + row.intercept
            return out

        handles.append(modules[layer].register_forward_hook(hook))
    try:
        with torch.no_grad():
            ref = model(x)
    finally:
        for h in handles:
            h.remove()
    with torch.no_grad():
        got = merged.eval()(x)
    b = len(LAYERS) + 1
    torch.testing.assert_close(got[..., b:-b, b:-b], ref[..., b:-b, b:-b], atol=1e-5, rtol=1e-5)
    assert model.conv_module1.conv.out_channels == 6  # the original is untouched


def test_duplicate_map_is_merged_exactly():
    torch.manual_seed(1)
    model = FCN(2, width=4).eval()
    with torch.no_grad():  # map 3 of module 1 = 2 x map 0 (same conv, BN scale 2)
        c1, bn = model.conv_module1.conv, model.conv_module1.bn
        c1.weight[3] = c1.weight[0]
        c1.bias[3] = c1.bias[0]
        bn.running_mean[3], bn.running_var[3] = bn.running_mean[0], bn.running_var[0]
        bn.weight[3], bn.bias[3] = 2 * bn.weight[0], 2 * bn.bias[0]
    x = torch.randn(2, 1, 16, 16)
    acts = extract_activations(model, x, ["conv_module1"], progress=False)
    fits = merge_fits(acts, {"conv_module1": [3]})
    assert fits.loc[0, "representative"] == 0 and fits.loc[0, "slope"] == pytest.approx(2.0)
    merged = merge_maps(model, {"conv_module1": [3]}, acts)
    with torch.no_grad():  # exact everywhere: intercept 0, so the border agrees too
        torch.testing.assert_close(merged(x), model(x), atol=1e-5, rtol=1e-5)


def test_errors_and_curve(setup):
    model, _, acts = setup
    with pytest.raises(KeyError, match="prunable layer"):
        merge_maps(model, {"classifier": [0]}, acts)
    with pytest.raises(ValueError):
        merge_maps(model, {"conv_module1": list(range(6))}, acts)
    plans = {0.9: {"conv_module2": [1]}, 0.5: {"conv_module2": [1, 2, 3]}}
    curve = merge_curve(model, acts, plans, lambda m: {"params": count_params(m)})
    assert curve["removed"].tolist() == [1, 3]
    assert curve["params_merged"].iloc[0] > curve["params_merged"].iloc[1]
