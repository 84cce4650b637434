"""Linear CKA conventions (pixels / images as examples, biased / unbiased HSIC, minibatches)
against slow numpy references written here: Gram matrices, the centring matrix H, and the
unbiased HSIC as the U-statistic it estimates."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from cnnexplore_nb.similarity import cka_convention, cka_matrix, layer_cka
from cnnexplore_nb.similarity.cka import cka_from_grams


def hsic_biased(k: np.ndarray, l_: np.ndarray) -> float:
    n = len(k)
    h = np.eye(n) - np.ones((n, n)) / n
    return np.trace(k @ h @ l_ @ h) / (n - 1) ** 2


def hsic_unbiased(k: np.ndarray, l_: np.ndarray) -> float:
    """Song et al. (2012), eq. (5): K̃, L̃ with zero diagonals, 1 the ones vector."""
    n = len(k)
    kt, lt = k - np.diag(np.diag(k)), l_ - np.diag(np.diag(l_))
    one = np.ones(n)
    return (np.trace(kt @ lt) + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * one @ kt @ lt @ one) / (n * (n - 3))  # fmt: skip


def hsic_u_statistic(k: np.ndarray, l_: np.ndarray) -> float:
    """The U-statistic HSIC₁ estimates: mean over distinct (i, j, q, r) of
    k_ij l_ij + k_ij l_qr - 2 k_ij l_iq (slow, O(n⁴))."""
    n = len(k)
    total, count = 0.0, 0
    for i, j, q, r in itertools.permutations(range(n), 4):
        total += k[i, j] * l_[i, j] + k[i, j] * l_[q, r] - 2 * k[i, j] * l_[i, q]
        count += 1
    return total / count


def cka_ref(x: np.ndarray, y: np.ndarray, hsic) -> float:
    k, l_ = x @ x.T, y @ y.T
    return hsic(k, l_) / np.sqrt(hsic(k, k) * hsic(l_, l_))


def as_images(t) -> np.ndarray:
    t = np.asarray(t, dtype=np.float64)
    return t.reshape(t.shape[0], -1)


def as_pixels(t) -> np.ndarray:
    t = np.asarray(t, dtype=np.float64)
    return t.transpose(0, 2, 3, 1).reshape(-1, t.shape[1])


@pytest.fixture
def layers():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(9, 4, 3, 3))
    b = np.concatenate([a[:, :2] ** 2, rng.normal(size=(9, 3, 3, 3))], axis=1) + 2.0
    return a, b


def test_the_unbiased_formula_is_the_u_statistic():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(7, 2))
    y[:, 0] += x[:, 0]
    k, l_ = x @ x.T, y @ y.T
    assert hsic_unbiased(k, l_) == pytest.approx(hsic_u_statistic(k, l_), rel=1e-10)


@pytest.mark.parametrize("unbiased", [False, True])
def test_images_as_examples_matches_the_gram_reference(layers, unbiased):
    a, b = layers
    hsic = hsic_unbiased if unbiased else hsic_biased
    want = cka_ref(as_images(a), as_images(b), hsic)
    assert layer_cka(a, b, examples="images", unbiased=unbiased) == pytest.approx(want, rel=1e-9)
    got = layer_cka(torch.from_numpy(a).float(), torch.from_numpy(b).float(),
                    examples="images", unbiased=unbiased)  # fmt: skip
    assert got == pytest.approx(want, rel=1e-5)
    pooled = cka_ref(a.mean(axis=(2, 3)), b.mean(axis=(2, 3)), hsic)
    got = layer_cka(a, b, examples="images", unbiased=unbiased, features="mean")
    assert got == pytest.approx(pooled, rel=1e-9)


@pytest.mark.parametrize("unbiased", [False, True])
def test_pixels_as_examples_matches_the_gram_reference(unbiased):
    rng = np.random.default_rng(2)
    a = rng.normal(size=(2, 3, 4, 5)) + 5.0  # means far from 0: the shift must not matter
    b = np.concatenate([a[:, :1] * 2 - 1, rng.normal(size=(2, 2, 4, 5))], axis=1)
    hsic = hsic_unbiased if unbiased else hsic_biased
    want = cka_ref(as_pixels(a), as_pixels(b), hsic)
    assert layer_cka(a, b, unbiased=unbiased) == pytest.approx(want, rel=1e-6)
    mask = rng.random((2, 4, 5)) > 0.4
    sel = lambda t: np.stack([t[:, c][mask] for c in range(t.shape[1])], axis=1)  # noqa: E731
    want = cka_ref(sel(a), sel(b), hsic)
    assert layer_cka(a, b, unbiased=unbiased, mask=mask) == pytest.approx(want, rel=1e-6)


def test_conventions_differ_and_identical_layers_give_one(layers):
    a, b = layers
    values = {
        (ex, ub): layer_cka(a, b, examples=ex, unbiased=ub)
        for ex in ("pixels", "images")
        for ub in (False, True)
    }
    assert len({round(v, 6) for v in values.values()}) == 4
    for ex in ("pixels", "images"):
        for ub in (False, True):
            assert layer_cka(a, examples=ex, unbiased=ub) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize(("examples", "unbiased"),
                         [("pixels", False), ("pixels", True), ("images", False),
                          ("images", True)])  # fmt: skip
def test_invariant_to_orthogonal_transforms_and_isotropic_scaling(layers, examples, unbiased):
    a, b = layers
    q = np.linalg.qr(np.random.default_rng(3).normal(size=(4, 4)))[0]
    rotated = 3.5 * np.einsum("dc,nchw->ndhw", q, a)  # per pixel: orthogonal over channels
    base = layer_cka(a, b, examples=examples, unbiased=unbiased)
    got = layer_cka(rotated, b, examples=examples, unbiased=unbiased)
    assert got == pytest.approx(base, rel=1e-7)
    assert layer_cka(a, rotated, examples=examples, unbiased=unbiased) == pytest.approx(1.0)
    if examples == "images":  # any orthogonal map of the C·H·W features, not only channels
        qf = np.linalg.qr(np.random.default_rng(4).normal(size=(36, 36)))[0]
        mixed = (as_images(a) @ qf).reshape(a.shape)
        got = layer_cka(mixed, b, examples="images", unbiased=unbiased)
        assert got == pytest.approx(base, rel=1e-7)


@pytest.mark.parametrize("unbiased", [False, True])
def test_minibatch_cka_averages_hsic_over_batches(layers, unbiased):
    a, b = layers
    hsic = hsic_unbiased if unbiased else hsic_biased
    x, y = as_images(a), as_images(b)
    kl = kk = ll = 0.0
    for s in (slice(0, 5), slice(5, 9)):  # batches of 5: the last one has 4 images
        k, l_ = x[s] @ x[s].T, y[s] @ y[s].T
        kl, kk, ll = kl + hsic(k, l_), kk + hsic(k, k), ll + hsic(l_, l_)
    got = layer_cka(a, b, examples="images", unbiased=unbiased, batch_size=5)
    assert got == pytest.approx(kl / np.sqrt(kk * ll), rel=1e-9)
    k, l_ = x @ x.T, y @ y.T
    assert cka_from_grams(k, l_, unbiased=unbiased, batch_size=5) == pytest.approx(got)


def test_cka_matrix_passes_the_convention_through_and_names_it():
    g = torch.Generator().manual_seed(5)
    a = {"l1": torch.randn(6, 3, 6, 6, generator=g), "l2": torch.randn(6, 4, 3, 3, generator=g)}
    b = {"m1": torch.randn(6, 2, 6, 6, generator=g)}
    df = cka_matrix(a, b, examples="images", unbiased=True)
    assert (
        df.attrs["convention"] == "linear CKA, images as examples (C·H·W features), unbiased HSIC"
    )
    assert df.attrs["cka"] == {"examples": "images", "unbiased": True, "features": "flatten",
                               "batch_size": None, "resample": None}  # fmt: skip
    for la in a:  # images as examples: layers of different sizes compared as they are
        want = cka_ref(as_images(a[la]), as_images(b["m1"]), hsic_unbiased)
        assert df.loc[la, "m1"] == pytest.approx(want, rel=1e-5)
    pix = cka_matrix(a, b, unbiased=True)
    assert pix.attrs["convention"] == "linear CKA, pixels as examples, unbiased HSIC"
    assert pix.attrs["cka"]["resample"] == "bilinear-down"
    want = layer_cka(a["l1"], b["m1"], unbiased=True, resample=(3, 3))  # the smallest grid
    assert pix.loc["l1", "m1"] == pytest.approx(want, rel=1e-9)
    default = cka_matrix(a, b)
    assert default.attrs["convention"] == cka_convention() == "linear CKA, pixels as examples"


BAD = [
    (lambda a: layer_cka(a, examples="images", mask=np.ones((3, 3), bool)), ValueError,
     r"mask= selects pixels.*use crop= instead|restrict the features with crop="),
    (lambda a: layer_cka(a, batch_size=2), ValueError,
     r"batch_size= and features= apply to examples='images'"),
    (lambda a: layer_cka(a[:3], examples="images", unbiased=True), ValueError,
     r"unbiased HSIC needs at least 4 examples per batch, got a batch of 3"),
    (lambda a: layer_cka(a, examples="rows"), ValueError,
     r"unknown examples 'rows'.*Expected one of: pixels, images"),
    (lambda a: layer_cka(a, examples="images", features="max"), ValueError,
     r"unknown features 'max'.*Expected one of: flatten, mean"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "exc", "match"), BAD)
def test_bad_cka_options_are_clear_errors(layers, call, exc, match):
    with pytest.raises(exc, match=match):
        call(layers[0])
