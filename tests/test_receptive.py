"""Theoretical and effective receptive fields against hand-computed chains and gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from cnnexplore_nb import create_model, effective_receptive_field, receptive_fields
from cnnexplore_nb.inspect import erf_radius


def ones_(model: nn.Module) -> nn.Module:
    """All-ones conv kernels and zero biases: a positive linear network."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                m.weight.fill_(1.0)
                if m.bias is not None:
                    m.bias.zero_()
    return model


def support(erf: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(erf > 0)
    return rows.min(), rows.max(), cols.min(), cols.max()


def test_hand_computed_chain_with_stride_and_dilation():
    net = nn.Sequential(
        nn.Conv2d(1, 1, 3),  # RF 3, j 1, start 1
        nn.Conv2d(1, 1, 3, stride=2),  # RF 5, j 2, start 2
        nn.MaxPool2d(2),  # RF 7, j 4, start 3
        nn.Conv2d(1, 1, 3, dilation=2),  # k_eff 5: RF 7 + 4*4 = 23, start 3 + 2*4 = 11
        nn.BatchNorm2d(1),  # passes the state on
        nn.Conv2d(1, 1, 5, stride=3, padding=2),  # RF 23 + 4*4 = 39, j 12, start 11
    )
    df = receptive_fields(net, torch.zeros(1, 1, 96, 96))
    assert list(df["path"]) == ["0", "1", "2", "3", "4", "5"]
    assert list(df["receptive_field"]) == [3, 5, 7, 23, 23, 39]
    assert list(df["jump"]) == [1, 2, 4, 4, 4, 12]
    assert list(df["start"]) == [1, 2, 3, 11, 11, 11]
    assert list(df["kernel"][:4]) == [3, 3, 2, 3]
    assert list(df["dilation"][:4]) == [1, 1, 1, 2]
    assert math.isnan(df["kernel"][4])
    assert not df["inferred"].any()


@pytest.mark.parametrize(
    "spec",
    [
        [(3, 1), (3, 1), (3, 1)],
        [(7, 2), (3, 2), (3, 1), (3, 2), (1, 1), (3, 1)],
        [(5, 1), (2, 2), (3, 3), (4, 1)],
    ],
)
def test_closed_form_on_plain_chains(spec):
    net = nn.Sequential(*[nn.Conv2d(1, 1, k, stride=s) for k, s in spec])
    df = receptive_fields(net, torch.zeros(1, 1, 128, 128))
    for layer in range(len(spec)):
        closed = 1 + sum(
            (k - 1) * math.prod(s for _, s in spec[:i])
            for i, (k, _) in enumerate(spec[: layer + 1])
        )
        assert df["receptive_field"][layer] == closed
        assert df["jump"][layer] == math.prod(s for _, s in spec[: layer + 1])


@pytest.mark.parametrize(
    "layers",
    [
        [nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 5)],
        [nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, stride=2), nn.Conv2d(1, 1, 3)],
        [nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3, dilation=2, padding=2), nn.AvgPool2d(2)],
        [nn.Conv2d(1, 1, 4, stride=2, padding=1), nn.AvgPool2d(3, stride=2), nn.Conv2d(1, 1, 3)],
    ],
)
def test_linear_chain_effective_field_equals_theory(layers):
    """All-ones kernels, no nonlinearity: the gradient support is the theoretical field."""
    net = ones_(nn.Sequential(*layers))
    x = torch.zeros(1, 1, 41, 41)
    df = receptive_fields(net, x)
    rf, jump, start = (df[c].iloc[-1] for c in ("receptive_field", "jump", "start"))
    erf = effective_receptive_field(net, x, n=2, rng=0)
    assert erf.shape == (41, 41)
    assert erf.sum() == pytest.approx(1.0)
    r0, r1, c0, c1 = support(erf)
    assert r1 - r0 + 1 == rf and c1 - c0 + 1 == rf
    assert (erf[r0 : r1 + 1, c0 : c1 + 1] > 0).all()  # a full square, no holes
    # centre of the support = start + jump * (index of the central output unit)
    h_out = net(x).shape[2]
    assert (r0 + r1) / 2 == start + jump * (h_out // 2)


class TinyUNet(nn.Module):
    def __init__(self, up: str = "transpose") -> None:
        super().__init__()
        self.enc = nn.Conv2d(1, 2, 3, padding=1)
        self.down = nn.AvgPool2d(2)
        self.mid = nn.Conv2d(2, 2, 3, padding=1)
        if up == "transpose":
            self.up = nn.ConvTranspose2d(2, 2, 2, stride=2)
        else:
            self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.dec = nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, x):
        e = self.enc(x)
        u = self.up(self.mid(self.down(e)))
        return self.dec(torch.cat([e, u], dim=1))  # skip connection


@pytest.mark.parametrize("up", ["transpose", "nearest"])
def test_unet_encoder_decoder(up):
    net = ones_(TinyUNet(up))
    x = torch.zeros(1, 1, 32, 32)
    df = receptive_fields(net, x).set_index("path")
    assert df.loc["enc", "receptive_field"] == 3
    assert df.loc["down", "receptive_field"] == 4 and df.loc["down", "jump"] == 2
    assert df.loc["mid", "receptive_field"] == 8
    assert df.loc["up", "receptive_field"] == 8 and df.loc["up", "jump"] == 1
    # after the concatenation: the union (max) of the two branches, then + 2
    assert df.loc["dec", "inferred"]
    assert df.loc["dec", "receptive_field"] == 10
    erf = effective_receptive_field(net, x, n=1, rng=0)
    r0, r1, c0, c1 = support(erf)
    assert r1 - r0 + 1 == 10 and c1 - c0 + 1 == 10


def test_unknown_resampling_is_nan_not_a_guess():
    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(1, 1, 3)
            self.b = nn.Conv2d(1, 1, 3)

        def forward(self, x):
            return self.b(nn.functional.max_pool2d(self.a(x), 2))

    df = receptive_fields(Functional(), torch.zeros(1, 1, 16, 16)).set_index("path")
    assert df.loc["a", "receptive_field"] == 3
    assert math.isnan(df.loc["b", "receptive_field"]) and df.loc["b", "inferred"]


def test_cnn6_erf_centred_and_smaller_than_theory():
    torch.manual_seed(0)
    model = create_model("cnn6", width=16)
    x = torch.zeros(1, 1, 31, 31)
    rf = receptive_fields(model, x)["receptive_field"].iloc[-1]
    assert rf == 15
    erf = effective_receptive_field(model, x, n=8, rng=0)
    yy, xx = np.indices(erf.shape)
    assert abs((erf * yy).sum() - 15) < 1.0 and abs((erf * xx).sum() - 15) < 1.0
    r0, r1, c0, c1 = support(erf)
    assert r1 - r0 + 1 <= rf and c1 - c0 + 1 <= rf
    assert erf_radius(erf, 0.95) < rf / 2
    # a single module sees its 3x3 neighbourhood only
    erf1 = effective_receptive_field(model, x, layer="conv_module1", n=4, rng=1)
    r0, r1, c0, c1 = support(erf1)
    assert (r0, r1, c0, c1) == (14, 16, 14, 16)


def test_erf_given_inputs_match_manual_gradients():
    torch.manual_seed(0)
    model = create_model("cnn1", width=4)
    imgs = torch.randn(3, 1, 9, 9)
    erf = effective_receptive_field(model, imgs, inputs="given", batch_size=2)
    model.eval()
    total = torch.zeros(9, 9)
    for img in imgs:
        xi = img[None].clone().requires_grad_(True)
        model(xi)[0, :, 4, 4].sum().backward()
        total += xi.grad[0, 0].abs()
    np.testing.assert_allclose(erf, (total / total.sum()).numpy(), rtol=1e-5, atol=1e-7)


def test_erf_seeded_and_no_param_grads():
    model = create_model("cnn1", width=4)
    x = torch.zeros(1, 1, 9, 9)
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # same seed, same bits: at a fixed number of threads
    try:
        a = effective_receptive_field(model, x, n=4, rng=3)
        b = effective_receptive_field(model, x, n=4, rng=3)
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(a, b)
    assert all(p.grad is None for p in model.parameters())
    assert model.training


def test_erf_radius():
    m = np.zeros((9, 9))
    m[4, 4] = 1.0
    assert erf_radius(m) == 0.0
    m[4, 7] = 1.0  # half the mass 3 px away
    assert erf_radius(m, 0.5) == 0.0
    assert erf_radius(m, 0.95) == 3.0
    assert erf_radius(m, 0.95, center=(4, 7)) == 3.0
    m[0, 0] = 2.0
    assert erf_radius(m, 0.95) == pytest.approx(math.hypot(4, 4))


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"inputs": "images"}, ValueError, "unknown inputs 'images'"),
        ({"layer": "conv_modul1"}, ValueError, "closest: 'conv_module1'"),
        ({"n": 0}, ValueError, "n must be an integer >= 1"),
    ],
)
def test_erf_bad_inputs(kwargs, exc, match):
    model = create_model("cnn1", width=2)
    with pytest.raises(exc, match=match):
        effective_receptive_field(model, torch.zeros(1, 1, 5, 5), **kwargs)
    assert all(len(m._forward_hooks) == 0 for m in model.modules())


def test_erf_radius_bad_inputs():
    with pytest.raises(ValueError, match=r"mass must be in \[0.0, 1.0\], got 1.5"):
        erf_radius(np.ones((3, 3)), 1.5)
    with pytest.raises(ValueError, match="non-negative"):
        erf_radius(-np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        erf_radius(np.ones(3))
