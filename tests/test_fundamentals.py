"""Lecture fundamentals against torch, scipy and the lectures' hand-computed values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as F
from torch import nn

from cnnexplore_nb import lecture as fu
from cnnexplore_nb.inspect import receptive_fields


# ------------------------------------------------------------------ convolution arithmetic
def test_worked_example_is_32_64_and_matches_conv2d():
    assert fu.conv_at(fu.LECTURE_PATCH, fu.LECTURE_FILTER) == pytest.approx(32.64, abs=1e-9)
    # by hand: right column minus left column
    right = 190.90 + 193.31 + 186.22
    left = 189.59 + 172.70 + 175.50
    assert fu.conv_at(fu.LECTURE_PATCH, fu.LECTURE_FILTER) == pytest.approx(right - left)
    x = torch.from_numpy(fu.LECTURE_PATCH)[None, None]
    k = torch.from_numpy(fu.LECTURE_FILTER)[None, None]
    assert F.conv2d(x, k).item() == pytest.approx(32.64, abs=1e-9)


def test_conv_at_on_random_patches_equals_conv2d():
    gen = np.random.default_rng(0)
    for k in (1, 3, 5):
        p, w = gen.normal(size=(k, k)), gen.normal(size=(k, k))
        ref = F.conv2d(torch.from_numpy(p)[None, None], torch.from_numpy(w)[None, None]).item()
        assert fu.conv_at(p, w) == pytest.approx(ref, rel=1e-12)
    with pytest.raises(ValueError, match="same shape"):
        fu.conv_at(np.ones((3, 3)), np.ones((2, 2)))


def test_lecture_sobel_patches():
    patches = [
        np.full((3, 3), 10.0),
        np.array([[0, 10, 10]] * 3, dtype=float),
        np.array([[10, 10, 10], [0, 10, 10], [0, 0, 10]], dtype=float),
        np.array([[10, 10, 10], [10, 10, 10], [0, 0, 0]], dtype=float),
    ]
    assert [fu.conv_at(p, fu.SOBEL_X) for p in patches] == [0.0, 40.0, 30.0, 0.0]


def test_output_size_matches_torch_conv():
    x_cache = {}
    for w, k, p, s, d in itertools.product(
        range(5, 12, 3), (1, 2, 3), (0, 1, 2), (1, 2, 3), (1, 2)
    ):
        x = x_cache.setdefault(w, torch.zeros(1, 1, w, w))
        if w + 2 * p < fu.effective_kernel(k, d):
            with pytest.raises(ValueError, match="smaller than the effective kernel"):
                fu.output_size(w, k, padding=p, stride=s, dilation=d)
            continue
        ref = F.conv2d(x, torch.zeros(1, 1, k, k), padding=p, stride=s, dilation=d).shape[-1]
        assert fu.output_size(w, k, padding=p, stride=s, dilation=d) == ref, (w, k, p, s, d)


def test_same_and_valid_padding():
    for k, d in [(3, 1), (5, 1), (3, 2), (3, 3)]:
        assert fu.output_size(32, k, padding="same", dilation=d) == 32
        ref = F.conv2d(torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, k, k), dilation=d).shape[-1]
        assert fu.output_size(32, k, padding="valid", dilation=d) == ref
    assert fu.output_size(32, 3, padding="valid") == 30
    with pytest.raises(ValueError, match="'same' or 'valid'"):
        fu.output_size(32, 3, padding="full")
    with pytest.raises(ValueError, match=">= 1"):
        fu.output_size(32, 3, stride=0)


def test_effective_kernel_is_the_span_of_a_dilated_conv():
    assert fu.effective_kernel(3, 2) == 5  # the lecture example
    assert fu.effective_kernel(3, 1) == 3
    for k, d in itertools.product((2, 3, 5), (1, 2, 4)):
        # a dilated conv sees exactly the pixels an undilated K_eff conv spans: same output size
        x = torch.zeros(1, 1, 40, 40)
        dil = F.conv2d(x, torch.zeros(1, 1, k, k), dilation=d).shape[-1]
        k_eff = fu.effective_kernel(k, d)
        assert F.conv2d(x, torch.zeros(1, 1, k_eff, k_eff)).shape[-1] == dil


@pytest.mark.parametrize("bias", [False, True])
def test_conv_params_match_nn_conv2d(bias):
    for c_in, c_out, k in [(3, 8, 3), (16, 32, 5), (64, 64, 3)]:

        def n(m):
            return sum(p.numel() for p in m.parameters())

        assert fu.conv_params(c_in, c_out, k, bias=bias) == n(nn.Conv2d(c_in, c_out, k, bias=bias))
        assert fu.conv_params(c_in, c_out, k, "pointwise", bias=bias) == n(
            nn.Conv2d(c_in, c_out, 1, bias=bias)
        )
        assert fu.conv_params(c_in, c_out, k, "depthwise", bias=bias) == n(
            nn.Conv2d(c_in, c_in, k, groups=c_in, bias=bias)
        )
        sep = n(nn.Conv2d(c_in, c_in, k, groups=c_in, bias=bias)) + n(
            nn.Conv2d(c_in, c_out, 1, bias=bias)
        )
        assert fu.conv_params(c_in, c_out, k, "depthwise_separable", bias=bias) == sep
        for g in (1, 2, 4):
            if c_in % g or c_out % g:
                continue
            ref = n(nn.Conv2d(c_in, c_out, k, groups=g, bias=bias))
            assert fu.conv_params(c_in, c_out, k, "grouped", groups=g, bias=bias) == ref
    # the lecture formulas without bias
    assert fu.conv_params(64, 128, 3) == 9 * 64 * 128
    assert fu.conv_params(64, 128, 3, "depthwise_separable") == 9 * 64 + 64 * 128


def test_conv_param_table_and_errors():
    t = fu.conv_param_table(32, 64, 3, groups=(2, 4, 32))
    assert (t["params"] == t["torch_params"]).all()
    assert t.loc[0, "params"] == 9 * 32 * 64 and t.loc[0, "ratio"] == 1.0
    assert t.set_index("variant").loc["grouped (G=4)", "ratio"] == pytest.approx(4.0)
    with pytest.raises(ValueError, match="groups must divide"):
        fu.conv_params(6, 8, 3, "grouped", groups=4)
    with pytest.raises(ValueError, match="kind"):
        fu.conv_params(6, 8, 3, "dilated")


# ----------------------------------------------------------------------- pooling, BatchNorm
def test_min_pool_lecture_example():
    np.testing.assert_array_equal(fu.pool2d(fu.MIN_POOL_EXAMPLE, "min"), [[14, 13], [55, 12]])


def test_pooling_against_numpy_blocks():
    x = np.random.default_rng(1).normal(size=(2, 3, 6, 8))
    blocks = x.reshape(2, 3, 3, 2, 4, 2)
    np.testing.assert_allclose(fu.pool2d(x, "max"), blocks.max(axis=(3, 5)))
    np.testing.assert_allclose(fu.pool2d(x, "avg"), blocks.mean(axis=(3, 5)))
    np.testing.assert_allclose(fu.pool2d(x, "min"), blocks.min(axis=(3, 5)))
    t = fu.pool2d(torch.from_numpy(x[0, 0]).float(), "max", size=3, stride=1)
    assert isinstance(t, torch.Tensor) and tuple(t.shape) == (4, 6)
    ref = np.lib.stride_tricks.sliding_window_view(x[0, 0], (3, 3)).max(axis=(2, 3))
    np.testing.assert_allclose(t.numpy(), ref, rtol=1e-6)
    with pytest.raises(ValueError, match="kind"):
        fu.pool2d(x, "median")


def test_batchnorm_steps_match_nn_batchnorm2d():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 5, 5, generator=gen, dtype=torch.float64) * 3 + 2
    gamma = torch.tensor([0.5, 2.0, -1.0], dtype=torch.float64)
    beta = torch.tensor([0.1, -0.3, 1.0], dtype=torch.float64)
    steps = fu.batchnorm_steps(x, gamma, beta)
    bn = nn.BatchNorm2d(3, momentum=1.0).double().train()
    with torch.no_grad():
        bn.weight.copy_(gamma)
        bn.bias.copy_(beta)
    y = bn(x)
    torch.testing.assert_close(steps["y"], y.detach())
    # momentum 1: the running stats are this batch's mean and unbiased variance
    torch.testing.assert_close(steps["mean"], bn.running_mean)
    torch.testing.assert_close(steps["var_unbiased"], bn.running_var)
    np_x = x.numpy()
    np.testing.assert_allclose(steps["var"].numpy(), np_x.var(axis=(0, 2, 3)))
    xh = steps["x_hat"]
    torch.testing.assert_close(xh.mean(dim=(0, 2, 3)), torch.zeros(3, dtype=xh.dtype))
    assert torch.allclose(
        xh.var(dim=(0, 2, 3), unbiased=False), torch.ones(3, dtype=xh.dtype), atol=1e-4
    )


def test_batchnorm_steps_bad_input():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        fu.batchnorm_steps(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="gamma and beta"):
        fu.batchnorm_steps(torch.zeros(2, 3, 2, 2), gamma=torch.ones(2))
    with pytest.raises(ValueError, match="eps"):
        fu.batchnorm_steps(torch.zeros(2, 3, 2, 2), eps=-1.0)


# ------------------------------------------------------------------- edges and 1-D signals
def test_sobel_maps_against_scipy():
    img = np.random.default_rng(2).random((9, 12))
    maps = fu.sobel_maps(img)
    gx = scipy.signal.correlate2d(img, fu.SOBEL_X, mode="same", boundary="fill")
    gy = scipy.signal.correlate2d(img, fu.SOBEL_X.T, mode="same", boundary="fill")
    np.testing.assert_allclose(maps["gx"], gx, atol=1e-12)
    np.testing.assert_allclose(maps["gy"], gy, atol=1e-12)
    np.testing.assert_allclose(maps["magnitude"], np.sqrt(gx**2 + gy**2), atol=1e-12)
    # a vertical step edge responds in gx only
    step = np.zeros((6, 6))
    step[:, 3:] = 1
    m = fu.sobel_maps(step)
    assert m["gx"][1:-1, 2:4].min() == 4 and np.abs(m["gy"][1:-1]).max() == 0


def test_lecture_matched_filter_values():
    r = fu.normalized_correlation(fu.MATCHED_FILTER_S, fu.MATCHED_FILTER_W)
    lecture = [-0.98, 0.28, 0.94, -0.5, -0.96, 0.37, 0.62, -0.92, 0.87, np.nan, 0.0, -0.93]
    np.testing.assert_array_equal(np.round(r, 2), lecture)
    assert len(r) == len(fu.MATCHED_FILTER_S) - len(fu.MATCHED_FILTER_W) + 1
    assert int(np.nanargmax(r)) == 2  # the window (3, 8, 4) looks most like (3, 7, 5)


def test_lecture_unnormalised_correlation_and_zero_padding():
    s, w = fu.MATCHED_FILTER_S, fu.MATCHED_FILTER_W
    g = fu.sliding_correlation(s, w)
    np.testing.assert_array_equal(g, [34, 64, 85, 52, 27, 61, 65, 59, 84, 105, 75, 38])
    np.testing.assert_allclose(g, scipy.signal.correlate(s, w, mode="valid"))
    gp = fu.sliding_correlation(s, w, padding=1)
    assert gp[0] == 33 and gp[-1] == 17 and len(gp) == len(s)
    np.testing.assert_allclose(gp, scipy.signal.correlate(s, w, mode="same"))


def test_normalized_correlation_against_corrcoef():
    gen = np.random.default_rng(3)
    s, w = gen.normal(size=30), gen.normal(size=5)
    r = fu.normalized_correlation(s, w, padding=2)
    sp = np.pad(s, 2)
    ref = [np.corrcoef(sp[i : i + 5], w)[0, 1] for i in range(len(sp) - 4)]
    np.testing.assert_allclose(r, ref, atol=1e-12)
    with pytest.raises(ValueError, match="1-D"):
        fu.normalized_correlation(np.ones((2, 3)), w)
    with pytest.raises(ValueError, match="w must have"):
        fu.sliding_correlation(np.ones(3), np.ones(5))


# -------------------------------------------------------------------------- receptive fields
def test_effective_side_of_a_square():
    m = np.zeros((15, 15))
    m[5:10, 5:10] = 1.0
    assert fu.effective_side(m, 1.0) == 5.0
    assert fu.effective_side(m, 0.04) == 1.0  # the centre pixel holds 1/25
    assert fu.effective_side(m, 0.3) == 3.0  # 9/25 inside the 3x3 square
    with pytest.raises(ValueError, match="non-negative"):
        fu.effective_side(-m, 0.5)


def _linear_chain(n: int, dilation: int = 1) -> nn.Sequential:
    layers = []
    for _ in range(n):
        conv = nn.Conv2d(1, 1, 3, padding=dilation, dilation=dilation, bias=False)
        nn.init.constant_(conv.weight, 1.0)
        layers.append(conv)
    chain = nn.Sequential(*layers)
    chain.feature_info = [{"module": str(i), "num_chs": 1, "reduction": 1} for i in range(n)]
    return chain


def test_receptive_growth_on_a_linear_chain():
    # positive linear chain: the gradient covers the whole theoretical field exactly
    chain = _linear_chain(4)
    df = fu.receptive_growth(chain, torch.zeros(1, 1, 25, 25), n=2, mass=1.0)
    assert df["theoretical"].tolist() == [3.0, 5.0, 7.0, 9.0]  # 1 + 2 l
    assert df["effective"].tolist() == df["theoretical"].tolist()
    assert (df["ratio"] == 1.0).all()
    # with 90 % of the mass the (binomial-like) field is smaller than the theory
    part = fu.receptive_growth(chain, torch.zeros(1, 1, 25, 25), n=2, mass=0.9)
    assert (part["effective"] <= part["theoretical"]).all()
    assert part["effective"].iloc[-1] < 9
    dil = fu.receptive_growth(_linear_chain(2, 2), torch.zeros(1, 1, 25, 25), n=1, mass=1.0)
    assert dil["theoretical"].tolist() == [5.0, 9.0]  # K_eff = 5
    assert dil["effective"].tolist() == [5.0, 9.0]


def test_receptive_growth_with_stride_uses_the_units_input_position():
    model = nn.Sequential(nn.Conv2d(1, 1, 3, stride=2, bias=False), nn.Conv2d(1, 1, 3, bias=False))
    for conv in model:
        nn.init.constant_(conv.weight, 1.0)
    x = torch.zeros(1, 1, 21, 21)
    df = fu.receptive_growth(model, x, ["0", "1"], n=1, mass=1.0)
    rf = receptive_fields(model, x)
    assert df["theoretical"].tolist() == [3.0, 7.0]  # 1 + 2 + 2 * 2
    assert rf.set_index("path").loc["1", "receptive_field"] == 7
    assert df["effective"].tolist() == [3.0, 7.0]
    with pytest.raises(ValueError, match="feature_info"):
        fu.receptive_growth(model, x)


# ------------------------------------------------------------------ adversarial examples
def test_fgsm_matches_the_analytic_gradient_of_a_linear_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 4))
    x = torch.rand(5, 1, 3, 4, dtype=torch.float32)
    y = torch.tensor([0, 1, 2, 3, 1])
    w = model[1].weight.detach()
    p = torch.softmax(model(x).detach(), dim=1)
    grad = ((p - F.one_hot(y, 4).float()) @ w / len(y)).view_as(x)  # d mean CE / dx
    eps = 0.1
    expected = x + eps * grad.sign()
    torch.testing.assert_close(fu.fgsm(model, x, y, eps, clamp=None), expected)
    torch.testing.assert_close(fu.fgsm(model, x, y, eps), expected.clamp(0, 1))
    torch.testing.assert_close(fu.fgsm(model, x, y, 0.0), x)
    with pytest.raises(ValueError, match=">= 0"):
        fu.fgsm(model, x, y, -0.1)


def test_digits_classifier_and_accuracy_vs_epsilon():
    model, data = fu.digits_classifier(epochs=3, progress=False)
    assert data["x_train"].shape[1:] == (1, 8, 8) and len(data["x_test"]) == 540
    with torch.no_grad():
        clean = float((model(data["x_test"]).argmax(1) == data["y_test"]).float().mean())
    assert clean > 0.8
    df = fu.accuracy_vs_epsilon(model, data["x_test"], data["y_test"], [0.0, 0.1, 0.3])
    assert df.loc[0, "accuracy"] == pytest.approx(clean)
    assert (df["max_change"] <= df["epsilon"] + 1e-6).all()
    assert df.loc[2, "accuracy"] < clean - 0.3  # FGSM really hurts
    again, _ = fu.digits_classifier(epochs=3, progress=False)
    for a, b in zip(model.parameters(), again.parameters(), strict=True):
        torch.testing.assert_close(a, b)
