"""Tests of cnnexplore_nb.similarity.embedding: PCA map embedding and layer-by-layer linear CKA."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from cnnexplore_nb.similarity import cka_matrix, map_embedding


def toy_maps(seed=0, n=2, size=6):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, 4, size, size, generator=g)
    b = torch.randn(n, 3, size, size, generator=g)
    b[:, 1] = 3 * a[:, 2] + 1  # an affine copy of a map of layer a
    b[:, 2] = 5.0  # constant map
    return {"a": a, "b": b}


def reference_points(maps) -> np.ndarray:
    rows = [x.transpose(0, 1).reshape(x.shape[1], -1).double().numpy() for x in maps.values()]
    x = np.concatenate(rows)
    sd = x.std(axis=1, keepdims=True)
    z = np.zeros_like(x)
    ok = sd[:, 0] > 0
    z[ok] = (x[ok] - x[ok].mean(axis=1, keepdims=True)) / sd[ok]
    return z


def test_pca_matches_sklearn_up_to_sign():
    maps = toy_maps()
    df = map_embedding(maps, n_components=3)
    assert list(df.columns) == ["layer", "map_id", "x", "y", "c3", "constant"]
    assert list(df["layer"]) == ["a"] * 4 + ["b"] * 3
    assert list(df["map_id"]) == [0, 1, 2, 3, 0, 1, 2]
    assert list(df["constant"]) == [False] * 6 + [True]
    ref = PCA(n_components=3).fit_transform(reference_points(maps))
    got = df[["x", "y", "c3"]].to_numpy()
    for i in range(3):
        s = np.sign(got[:, i] @ ref[:, i])
        np.testing.assert_allclose(got[:, i], s * ref[:, i], atol=1e-8)
    # the sign rule: the largest-magnitude score of each component is positive
    assert all(got[np.argmax(np.abs(got[:, i])), i] > 0 for i in range(3))
    # an affine copy is the same standardised vector: same point
    np.testing.assert_allclose(got[2], got[5], atol=1e-6)  # float32 input


def test_pca_tall_case_uses_svd_and_agrees():
    # more maps than features: the SVD branch
    g = torch.Generator().manual_seed(1)
    maps = {"l": torch.randn(1, 30, 2, 3, generator=g)}
    df = map_embedding(maps)
    ref = PCA(n_components=2).fit_transform(reference_points(maps))
    got = df[["x", "y"]].to_numpy()
    for i in range(2):
        np.testing.assert_allclose(np.abs(got[:, i]), np.abs(ref[:, i]), atol=1e-8)


def test_embedding_resamples_layers_of_different_size_and_subsamples():
    g = torch.Generator().manual_seed(2)
    maps = {
        "big": torch.randn(1, 3, 8, 8, generator=g),
        "small": torch.randn(1, 2, 4, 4, generator=g),
    }
    df = map_embedding(maps)
    assert df.shape[0] == 5 and np.isfinite(df[["x", "y"]].to_numpy()).all()
    with pytest.raises(ValueError, match="different sizes"):
        map_embedding(maps, resample=None)
    # subsampling pixel positions is seeded
    a = map_embedding(maps, max_features=10, rng=3)
    b = map_embedding(maps, max_features=10, rng=3)
    np.testing.assert_array_equal(a[["x", "y"]].to_numpy(), b[["x", "y"]].to_numpy())


def test_embedding_bad_inputs_and_missing_umap(monkeypatch):
    maps = toy_maps()
    with pytest.raises(ValueError, match="method"):
        map_embedding(maps, method="tsne")
    with pytest.raises(ValueError, match="same N"):
        map_embedding({"a": torch.rand(2, 2, 4, 4), "b": torch.rand(3, 2, 4, 4)})
    with pytest.raises(
        ValueError, match=r"n_components must be <= min\(maps, features\) = 7, got 8"
    ):
        map_embedding(maps, n_components=8)
    monkeypatch.setitem(sys.modules, "umap", None)  # import umap -> ImportError
    with pytest.raises(ImportError, match=r"cnnexplore_nb\[umap\]"):
        map_embedding(maps, method="umap")


def hsic_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Slow reference: CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)), linear kernels."""
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    k, l_ = x @ x.T, y @ y.T

    def hsic(a, b):
        return np.trace(a @ h @ b @ h)

    return hsic(k, l_) / np.sqrt(hsic(k, k) * hsic(l_, l_))


def as_pixels(t: torch.Tensor) -> np.ndarray:
    return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1]).double().numpy()


def test_cka_against_hsic_reference_and_invariances():
    g = torch.Generator().manual_seed(4)
    a = {"l1": torch.randn(2, 3, 5, 5, generator=g), "l2": torch.randn(2, 4, 5, 5, generator=g)}
    # network B: l1 is an orthogonal transform of A.l1 (over channels), l2 a scaled A.l2
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    b = {
        "m1": torch.einsum("dc,nchw->ndhw", q, a["l1"].double()),
        "m2": 7.5 * a["l2"] + 2.0,
        "m3": torch.randn(2, 5, 5, 5, generator=g),
    }
    df = cka_matrix(a, b)
    assert df.shape == (2, 3)
    assert df.index.name == "layer_a" and df.columns.name == "layer_b"
    assert list(df.index) == ["l1", "l2"] and list(df.columns) == ["m1", "m2", "m3"]
    assert df.loc["l1", "m1"] == pytest.approx(1.0, abs=1e-6)
    assert df.loc["l2", "m2"] == pytest.approx(1.0, abs=1e-6)
    for la in a:
        for lb in b:
            ref = hsic_cka(as_pixels(a[la]), as_pixels(b[lb]))
            assert df.loc[la, lb] == pytest.approx(ref, abs=1e-6)
    assert df.loc["l1", "m3"] < 0.5
    self_ = cka_matrix(a)
    np.testing.assert_allclose(np.diag(self_.to_numpy()), 1.0, atol=1e-6)
    np.testing.assert_allclose(self_.to_numpy(), self_.to_numpy().T, atol=1e-7)


def test_cka_layers_of_different_size_and_errors():
    g = torch.Generator().manual_seed(5)
    a = {"big": torch.randn(1, 2, 8, 8, generator=g)}
    b = {"small": torch.randn(1, 3, 4, 4, generator=g)}
    # default "bilinear-down": A is resampled to 4 x 4 (bilinear, antialiased)
    down = torch.nn.functional.interpolate(
        a["big"], size=(4, 4), mode="bilinear", align_corners=False, antialias=True
    )
    ref = hsic_cka(as_pixels(down), as_pixels(b["small"]))
    assert cka_matrix(a, b).iloc[0, 0] == pytest.approx(ref, abs=1e-6)
    with pytest.raises(ValueError, match="different sizes"):
        cka_matrix(a, b, resample=None)
    with pytest.raises(ValueError, match="same N"):
        cka_matrix(a, {"x": torch.rand(2, 2, 8, 8)})
    with pytest.raises(KeyError, match="bgi.*closest: 'big'"):
        cka_matrix(a, layers_a=["bgi"])
