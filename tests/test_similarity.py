"""similarity_matrix / layer_cka / similarity_stats against slow per-pair numpy references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnexplore_nb.similarity import (
    common_grid,
    layer_cka,
    similarity_matrix,
    similarity_stats,
    zero_flags,
)


def _pooled(x) -> np.ndarray:
    """(N, C, H, W) or (C, H, W) -> list of C float64 vectors over all pooled pixels."""
    x = np.asarray(x, dtype=np.float64)
    x = x[None] if x.ndim == 3 else x
    return [x[:, c].ravel() for c in range(x.shape[1])]


def _slow(a, b, measure: str) -> np.ndarray:
    """Per-pair reference: one np.corrcoef / formula per pair of maps."""
    xs, ys = _pooled(a), _pooled(b)
    out = np.empty((len(xs), len(ys)))
    for i, x in enumerate(xs):
        for j, y in enumerate(ys):
            if measure in ("pearson", "abs_pearson"):
                with np.errstate(invalid="ignore", divide="ignore"):  # constant map -> NaN
                    r = np.corrcoef(x, y)[0, 1]
                out[i, j] = abs(r) if measure == "abs_pearson" else r
            elif measure == "cosine":
                out[i, j] = x @ y / (np.linalg.norm(x) * np.linalg.norm(y))
            else:
                out[i, j] = np.linalg.norm(x - y)
    return out


def _slow_cka(a, b) -> float:
    X, Y = np.stack(_pooled(a), 1), np.stack(_pooled(b), 1)  # (n pixels, K)
    X, Y = X - X.mean(0), Y - Y.mean(0)
    num = np.linalg.norm(X.T @ Y, "fro") ** 2
    return num / (np.linalg.norm(X.T @ X, "fro") * np.linalg.norm(Y.T @ Y, "fro"))


def test_hand_made_affine_copies_negations_and_constant():
    x = np.random.default_rng(0).normal(size=(5, 6))
    maps = np.stack([x, 2 * x + 1, -x, 3 + 0 * x, -0.5 * x + 7])  # (5, 5, 6)
    r = similarity_matrix(maps)
    expected = np.array([[1, 1, -1, np.nan, -1]] * 5, dtype=float)
    expected *= np.array([1, 1, -1, np.nan, -1])[:, None]
    np.testing.assert_allclose(r, expected, atol=1e-6)  # NaN positions must match too
    np.testing.assert_allclose(similarity_matrix(maps, measure="abs_pearson"), np.abs(expected))
    np.testing.assert_array_equal(zero_flags(maps), [False, False, False, True, False])


def test_toy_conv_net_with_hand_set_weights_gives_exact_correlations():
    conv = nn.Conv2d(1, 4, 3, padding=1)
    w = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, 1.0], [-1.0, 0.25, 2.0]])
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0] = w  # channel 0: w * x
        conv.weight[1, 0] = 2 * w  # channel 1 = 2 * channel 0 + 1
        conv.weight[2, 0] = -w  # channel 2 = -channel 0 + 0.5
        conv.bias.copy_(torch.tensor([0.0, 1.0, 0.5, 0.7]))  # channel 3: constant 0.7
    images = torch.rand(3, 1, 10, 12, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        maps = conv(images)  # no ReLU: the affine relations hold exactly
    r = similarity_matrix(maps)
    assert r[0, 1] == pytest.approx(1.0, abs=1e-6)
    assert r[0, 2] == pytest.approx(-1.0, abs=1e-6)
    assert r[1, 2] == pytest.approx(-1.0, abs=1e-6)
    assert np.isnan(r[3]).all() and np.isnan(r[:, 3]).all()
    np.testing.assert_array_equal(zero_flags(maps), [False, False, False, True])
    np.testing.assert_allclose(r, _slow(maps.numpy(), maps.numpy(), "pearson"), atol=1e-6)


@pytest.mark.parametrize("measure", ["pearson", "abs_pearson", "cosine", "euclidean"])
def test_random_maps_match_slow_per_pair_reference(measure):
    rng = np.random.default_rng(1)
    a = rng.normal(0.3, 1.0, size=(3, 7, 8, 9)).astype(np.float32)
    b = rng.normal(size=(3, 5, 8, 9)).astype(np.float32) + 0.4 * a[:, :5]
    got = similarity_matrix(torch.from_numpy(a), b, measure=measure)
    assert got.shape == (7, 5)
    np.testing.assert_allclose(got, _slow(a, b, measure), rtol=1e-5, atol=1e-6)
    self_got = similarity_matrix(a, measure=measure)
    np.testing.assert_allclose(self_got, _slow(a, a, measure), rtol=1e-5, atol=1e-5)


def test_layer_cka_matches_direct_formula():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(2, 6, 7, 7))
    b = np.concatenate([a[:, :3] @ rng.normal(size=(7, 7)), rng.normal(size=(2, 2, 7, 7))], 1)
    assert layer_cka(a, b) == pytest.approx(_slow_cka(a, b), rel=1e-5)
    assert layer_cka(a) == pytest.approx(1.0)
    q = np.linalg.qr(rng.normal(size=(6, 6)))[0]  # CKA is invariant to rotating the maps
    rotated = np.einsum("kc,nchw->nkhw", q, a)
    assert layer_cka(a, rotated) == pytest.approx(1.0, abs=1e-6)


def test_per_image_and_stats_match_numpy():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(4, 3, 6, 6))
    b = rng.normal(size=(4, 2, 6, 6)) + a[:, :2]
    a[2, 1] = 1.0  # constant in image 2 only: NaN there, skipped by the stats
    per = similarity_matrix(a, b, reduce="per_image")
    ref = np.stack([_slow(a[i], b[i], "pearson") for i in range(4)])
    np.testing.assert_allclose(per, ref, atol=1e-6)
    st = similarity_stats(a, b)
    np.testing.assert_allclose(st.mean, np.nanmean(ref, axis=0), atol=1e-6)
    np.testing.assert_allclose(st.std, np.nanstd(ref, axis=0, ddof=1), atol=1e-6)
    np.testing.assert_array_equal(st.count, [[4, 4], [3, 3], [4, 4]])


def test_resampling_policies_match_manual_interpolation():
    rng = np.random.default_rng(4)
    big = torch.from_numpy(rng.normal(size=(2, 3, 16, 12)).astype(np.float32))
    small = torch.from_numpy(rng.normal(size=(2, 2, 8, 6)).astype(np.float32))
    down = F.interpolate(big, size=(8, 6), mode="bilinear", antialias=True)
    got = similarity_matrix(big, small, resample="bilinear-down")
    np.testing.assert_allclose(got, _slow(down.numpy(), small.numpy(), "pearson"), atol=1e-5)
    up = F.interpolate(small, size=(16, 12), mode="bilinear")
    got = similarity_matrix(big, small, resample="bilinear-up")
    np.testing.assert_allclose(got, _slow(big.numpy(), up.numpy(), "pearson"), atol=1e-5)
    got = similarity_matrix(big, small, resample=(8, 6))
    np.testing.assert_allclose(got, _slow(down.numpy(), small.numpy(), "pearson"), atol=1e-5)
    assert common_grid([(16, 12), (8, 20)], "bilinear-down") == (8, 12)
    assert common_grid([(16, 12), (8, 20)], "bilinear-up") == (16, 20)
