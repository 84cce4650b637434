"""The dissertation's "which" network reading each source channel's map, and runs without a
validation split (final epoch reported), in run and run_many."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _transfer_helpers import F64, float64_one_thread  # noqa: F401 (a fixture)

from cnnexplore_nb.data import digits, per_class_subset
from cnnexplore_nb.models import create_model
from cnnexplore_nb.transfer import build_step, run, run_many
from cnnexplore_nb.transfer.meta import GAMMA_BIAS, ChannelMapLinear, MetaNetworks


def test_channel_map_linear_is_one_linear_layer_per_channel():
    torch.manual_seed(0)
    lin = ChannelMapLinear(3, (4, 5), out=9)
    with torch.no_grad():
        lin.weight.normal_()
        lin.bias.normal_()
    x = torch.randn(2, 3, 4, 5)
    got = lin(x)
    for b in range(2):
        for c in range(3):  # the slow obvious way: channel c's map, flattened, its own layer
            want = lin.weight[c] @ x[b, c].flatten() + lin.bias[c]
            torch.testing.assert_close(got[b, c], want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"built for 4 x 5 source maps, got \(6, 6\)"):
        lin(torch.randn(1, 3, 6, 6))


def test_both_which_networks_start_at_gamma_one_and_keep_w_and_lambda():
    torch.manual_seed(1)
    maps = [torch.randn(2, 4, 8, 8), torch.randn(2, 6, 4, 4)]
    pooled = MetaNetworks([4, 6], which_input="pooled")
    by_map = MetaNetworks([4, 6], which_input="maps", source_sizes=[(8, 8), (4, 4)])
    shared = {k: v for k, v in pooled.state_dict().items() if not k.startswith("which.")}
    by_map.load_state_dict(shared, strict=False)  # the same f and g
    a, b = pooled(maps), by_map(maps)
    for k in range(2):
        torch.testing.assert_close(a.w[k], b.w[k])
        torch.testing.assert_close(a.lam[k], b.lam[k])
        torch.testing.assert_close(b.gamma[k], torch.ones_like(b.gamma[k]))
    assert math.isclose(torch.nn.functional.softplus(torch.tensor(GAMMA_BIAS)).item(), 1.0,
                        rel_tol=1e-6)  # fmt: skip
    n_h = sum(p.numel() for p in by_map.which.parameters())
    assert n_h == 4 * 9 * 64 + 4 * 9 + 6 * 9 * 16 + 6 * 9  # one (H W -> 9) layer per channel
    with pytest.raises(ValueError, match="needs source_sizes"):
        MetaNetworks([4], which_input="maps")


@pytest.fixture(scope="module")
def tiny():
    train_pool = digits("train", classes=[0, 1, 2], size=32)
    test = per_class_subset(digits("test", classes=[0, 1, 2], size=32), 3, rng=0)
    train, val = per_class_subset(train_pool, 4, rng=0, val_per_class=2)
    torch.manual_seed(0)
    source = create_model("resnet32", width=0.25, num_classes=3)
    return {"train": train, "val": val, "test": test}, source


def test_the_meta_gradient_reaches_the_map_weights(tiny):
    data, source = tiny
    x, y = data["train"].batch(torch.arange(8))
    target = create_model("vgg9_bn", width=0.125, num_classes=3)
    step = build_step("l2t_www", source, target, pairs=["4-0", "14-4"], which_input="maps",
                      example=x, lr=0.05)  # fmt: skip
    assert [tuple(h.size) for h in step.meta.which] == [(32, 32), (8, 8)]
    before = [h.weight.detach().clone() for h in step.meta.which]
    step.step(x, y)
    moved = [float((h.weight.detach() - b).abs().max()) for h, b in zip(step.meta.which, before)]
    assert all(m > 0 for m in moved)  # h learned from the maps through the unrolled steps
    with pytest.raises(ValueError, match="is sized from example=.*got example=None"):
        build_step("l2t_www", source, target, which_input="maps")
    with pytest.raises(ValueError, match="which_input='maps', the default"):
        build_step("l2t_www", source, target)  # the dissertation's h is the default


KW = dict(target="vgg9_bn", epochs=2, batch_size=8, lr=0.02, target_kwargs={"width": 0.125},
          pairs=["4-0", "9-2", "14-4"], progress=False, num_threads=1)  # fmt: skip


@pytest.mark.usefixtures("float64_one_thread")
def test_run_many_with_map_input_and_without_validation_matches_run(tiny):
    data, source = tiny
    source = create_model("resnet32", width=0.25, num_classes=3).double()
    source.load_state_dict(tiny[1].state_dict())
    no_val = {"train": F64(data["train"]), "val": None, "test": F64(data["test"])}
    seeds = (1, 2)
    many = run_many("l2t_www", source=source, data=[no_val, no_val], seeds=seeds,
                    which_input="maps", **KW)  # fmt: skip
    for seed, rec in zip(seeds, many):
        ref = run("l2t_www", source=source, data=no_val, seed=seed, which_input="maps", **KW)
        assert rec["best_epoch"] == ref["best_epoch"] == 2  # no validation: the final epoch
        assert rec["test_acc"] == rec["final_test_acc"]
        assert np.isnan(rec["best_val_acc"]) and np.isnan(ref["best_val_acc"])
        for got, want in zip(rec["history"], ref["history"]):
            assert got["ce"] == pytest.approx(want["ce"], rel=1e-6)
