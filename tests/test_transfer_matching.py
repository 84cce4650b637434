"""Pairs, weighted feature-matching loss (against loops), gradchecks, meta-network init."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cnnexplore_nb.transfer.l2t import pixel_weights
from cnnexplore_nb.transfer.matching import (
    attention_loss,
    matching_errors,
    pair_loss,
    parse_pairs,
    tap_features,
    weighted_matching_loss,
)
from cnnexplore_nb.transfer.meta import MetaNetworks


def test_default_pairs_and_parsing():
    pairs = parse_pairs(None, n_source=15, n_target=5)
    assert len(pairs) == 15 and pairs[0] == (4, 0) and pairs[-1] == (14, 4)
    assert {s for s, _ in pairs} == {4, 9, 14}
    assert parse_pairs(["4-0", (9, 2)], n_source=15, n_target=5) == [(4, 0), (9, 2)]


@pytest.mark.parametrize(
    "spec, match",
    [("15-0", "source tap 15.*15 taps \\(0..14\\)"), ("4-5", "target tap 5.*5 taps"),
     ("4:0", "'source-target'"), ("a-b", "'source-target'")],
)  # fmt: skip
def test_bad_pair(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_pairs([spec], n_source=15, n_target=5)


def _loop_pair_loss(err, w, lam, gamma):
    e, w, lam, g = (t.detach().double().numpy() for t in (err, w, lam, gamma))
    b, c, h, wd = e.shape
    total = 0.0
    for i in range(b):
        s = 0.0
        for k in range(c):
            s += (
                w[i, k]
                * sum(g[i, k, y, x] * e[i, k, y, x] for y in range(h) for x in range(wd))
                / (h * wd)
            )
        total += lam[i] * s
    return total / b


def test_pair_loss_matches_loops():
    g = torch.Generator().manual_seed(0)
    err = torch.rand(3, 4, 5, 6, generator=g)
    w = torch.rand(3, 4, generator=g)
    lam = torch.rand(3, generator=g)
    gamma = torch.rand(3, 4, 5, 6, generator=g)
    assert float(pair_loss(err, w, lam, gamma)) == pytest.approx(
        _loop_pair_loss(err, w, lam, gamma), rel=1e-6
    )
    # defaults: w = 1/C, lambda = 1, gamma = 1 (UFM)
    assert float(pair_loss(err, None, None, None)) == pytest.approx(float(err.mean()), rel=1e-6)


def test_gradcheck_weighted_loss():
    g = torch.Generator().manual_seed(1)
    opts = dict(dtype=torch.float64, requires_grad=True)
    t_feat = torch.rand(2, 3, 4, 4, generator=g, dtype=torch.float64)
    s_feat = torch.rand(2, 5, 2, 2, generator=g, dtype=torch.float64)  # resized 2x2 -> 4x4
    reg_w = torch.rand(5, 3, 1, 1, generator=g, dtype=torch.float64).requires_grad_()
    w = torch.rand(2, 5, generator=g, dtype=torch.float64).requires_grad_()
    lam = torch.rand(2, generator=g, dtype=torch.float64).requires_grad_()
    gamma = torch.rand(2, 5, 3, 3, generator=g, dtype=torch.float64).requires_grad_()
    del opts

    def f(reg_w, w, lam, gamma):
        proj = torch.nn.functional.conv2d(t_feat, reg_w)
        errs = matching_errors([proj], [s_feat])
        big = torch.nn.functional.interpolate(
            gamma, size=(4, 4), mode="bilinear", align_corners=False
        )
        return weighted_matching_loss(errs, w=[w], lam=[lam], gamma=[big], beta=0.5)

    assert torch.autograd.gradcheck(f, (reg_w, w, lam, gamma))


def test_fused_pixel_weights_equal_loss():
    torch.manual_seed(0)
    meta = MetaNetworks([4, 6], which=True)
    with torch.no_grad():
        for p in meta.parameters():
            p.normal_(0, 0.3)  # away from the initial constants
    pooled = [torch.rand(3, 4), torch.rand(3, 6)]
    out = meta(pooled)
    errs = [torch.rand(3, 4, 8, 8), torch.rand(3, 6, 2, 2)]
    big = [
        torch.nn.functional.interpolate(gm, size=e.shape[-2:], mode="bilinear")
        for gm, e in zip(out.gamma, errs)
    ]
    ref = weighted_matching_loss(errs, w=out.w, lam=out.lam, gamma=big, beta=0.5)
    weights = pixel_weights(out, [(8, 8), (2, 2)], 3, 0.5)
    fused = sum((a * e).sum() for a, e in zip(weights, errs))
    torch.testing.assert_close(fused, ref, rtol=1e-5, atol=1e-7)


def test_meta_init_gamma_one_and_www_equals_ww():
    torch.manual_seed(3)
    ww = MetaNetworks([4, 8], which=False)
    torch.manual_seed(3)
    www = MetaNetworks([4, 8], which=True)
    pooled = [torch.rand(5, 4), torch.rand(5, 8)]
    a, b = ww(pooled), www(pooled)
    assert b.gamma[0].shape == (5, 4, 3, 3)
    torch.testing.assert_close(
        torch.cat([g.flatten() for g in b.gamma]), torch.ones(5 * 12 * 9), rtol=1e-6, atol=0
    )
    torch.testing.assert_close(a.w[1], torch.full((5, 8), 1 / 8))  # zero-init f: uniform w
    assert (b.lam[0] >= 0).all() and (b.lam[0] <= 6).all()
    errs = [torch.rand(5, 4, 16, 16), torch.rand(5, 8, 4, 4)]
    la = sum((x * e).sum() for x, e in zip(pixel_weights(a, [(16, 16), (4, 4)], 5, 0.5), errs))
    lb = sum((x * e).sum() for x, e in zip(pixel_weights(b, [(16, 16), (4, 4)], 5, 0.5), errs))
    torch.testing.assert_close(lb, la, rtol=1e-6, atol=0)
    assert math.isclose(float(www.where[0].bias.detach()), 1.0)


def test_attention_loss_reference():
    g = torch.Generator().manual_seed(0)
    t, s = torch.rand(2, 3, 4, 4, generator=g), torch.rand(2, 5, 4, 4, generator=g)
    at = t.square().mean(1).reshape(2, -1).numpy()
    as_ = s.square().mean(1).reshape(2, -1).numpy()
    at, as_ = (
        at / np.linalg.norm(at, axis=1, keepdims=True),
        as_ / np.linalg.norm(as_, axis=1, keepdims=True),
    )
    expected = 1e3 / 2 * float(((at - as_) ** 2).mean())
    assert float(attention_loss([t], [s], beta=1e3)) == pytest.approx(expected, rel=1e-5)


def test_tap_hooks_removed_even_on_error():
    from cnnexplore_nb.models import create_model

    model = create_model("vgg9_bn", width=0.125)
    with pytest.raises(RuntimeError):
        tap_features(model, torch.randn(1, 5, 16, 16), [0, 2])  # wrong channel count
    assert all(not m._forward_hooks for m in model.modules())
