"""Moments: streaming float64 sums against direct float64 numpy references."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from cnnexplore_nb.similarity import moments
from cnnexplore_nb.similarity.moments import Moments, full_fp32_precision


def _flat(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (C, N*H*W) float64, pixels of all images pooled."""
    return np.asarray(x, dtype=np.float64).transpose(1, 0, 2, 3).reshape(x.shape[1], -1)


def _ref(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    X, Y = _flat(x), _flat(y)
    ka = X.shape[0]
    xc, yc = X - X.mean(1, keepdims=True), Y - Y.mean(1, keepdims=True)
    return {
        "pearson": np.corrcoef(X, Y)[:ka, ka:],
        "cov": np.cov(X, Y)[:ka, ka:],
        "cosine": X @ Y.T / np.outer(np.linalg.norm(X, axis=1), np.linalg.norm(Y, axis=1)),
        "euclidean": np.linalg.norm(X[:, None, :] - Y[None, :, :], axis=2),
        "cka": np.linalg.norm(xc @ yc.T) ** 2
        / (np.linalg.norm(xc @ xc.T) * np.linalg.norm(yc @ yc.T)),
    }


@pytest.mark.parametrize("chunk", [7, 100, 16384])
@pytest.mark.parametrize("within", [True, False])
def test_cross_block_matches_float64_reference(chunk, within):
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, size=(3, 5, 6, 7)).astype(np.float32)
    y = rng.normal(-1.0, 0.5, size=(3, 4, 6, 7)).astype(np.float32)
    y[:, 1] += 0.7 * x[:, 2]
    m = Moments(chunk_pixels=chunk, within=within).update(x, y)
    assert m._stack == within  # one stacked self-product for Σuvᵀ, Σuuᵀ and Σvvᵀ
    ref = _ref(x, y)
    np.testing.assert_allclose(m.pearson(), ref["pearson"], atol=1e-6)
    np.testing.assert_allclose(m.covariance(), ref["cov"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.cosine(), ref["cosine"], atol=1e-6)
    np.testing.assert_allclose(m.euclidean(), ref["euclidean"], rtol=1e-5)
    if within:
        assert m.cka() == pytest.approx(ref["cka"], rel=1e-5)
    else:
        with pytest.raises(ValueError, match="within=True"):
            m.cka()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    ("shape", "chunk", "dtype"),
    [((2, 6, 5, 5), 9, "float32"), ((3, 37, 33, 33), 16384, "float32"),
     ((3, 64, 40, 40), 300, "float64"), ((2, 130, 20, 20), 2048, "float32")],
)  # fmt: skip
def test_self_block_matches_reference_and_is_symmetric(shape, chunk, dtype, threads):
    x = np.random.default_rng(2).normal(3.0, 2.0, size=shape)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        m = Moments(chunk_pixels=chunk, dtype=dtype).update(x).update(x[:1] * 0.5)
    finally:
        torch.set_num_threads(before)
    xs = _flat(np.concatenate([x, x[:1] * 0.5]))
    np.testing.assert_allclose(m.pearson(), np.corrcoef(xs), atol=1e-6)
    np.testing.assert_allclose(m.euclidean(), cdist(xs, xs), rtol=1e-5, atol=1e-4)
    for name in ("pearson", "cosine", "euclidean", "covariance"):
        r = getattr(m, name)()
        # r[i, j] and r[j, i] are the same number, bit for bit (not merely close)
        assert np.array_equal(r, r.T, equal_nan=True), name
    assert np.array_equal(np.diag(m.covariance()), np.diag(m._centred("aa")) / (m.n - 1))
    assert m.cka() == pytest.approx(1.0)
    np.testing.assert_allclose(m.mean_a, xs.mean(1), atol=1e-12)


def _product_path(monkeypatch, path: str) -> None:
    """Force the self-product path: "syrk" (numpy), "torch" (one GEMM), "blocks" (torch row
    blocks, upper ones skipped) or "no-threadpoolctl" (the import fails: torch's GEMM)."""
    monkeypatch.setattr(moments, "_BLAS", [])
    if path == "no-threadpoolctl":
        monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import raises ImportError
        assert moments._numpy_blas() is None
    elif path != "syrk":
        monkeypatch.setattr(moments, "_BLAS", [None])
    if path == "blocks":
        monkeypatch.setattr(moments, "_ROWS_PER_BLOCK", 3)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("path", ["syrk", "torch", "blocks", "no-threadpoolctl"])
def test_self_product_paths_match_reference_and_each_other(monkeypatch, path, threads):
    rng = np.random.default_rng(12)
    x = rng.normal(2.0, 1.5, size=(3, 11, 9, 10)).astype(np.float32)
    y = rng.normal(size=(3, 7, 9, 10)).astype(np.float32) + 0.5 * x[:, :7]
    x[:, 4] = 0.0  # a constant map (also after x * 0.5)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _product_path(monkeypatch, path)
        m = Moments(chunk_pixels=50).update(x).update(x[:1] * 0.5)
        mc = Moments(chunk_pixels=50, within=True).update(x, y)
        syrk_used = m._syrk
        monkeypatch.setattr(moments, "_BLAS", [None])
        monkeypatch.setattr(moments, "_ROWS_PER_BLOCK", 160)
        ref = Moments(chunk_pixels=50).update(x).update(x[:1] * 0.5)  # torch, one GEMM
    finally:
        torch.set_num_threads(before)
    assert syrk_used == (path == "syrk" and threads == 1)
    xs = _flat(np.concatenate([x, x[:1] * 0.5]))
    with np.errstate(invalid="ignore", divide="ignore"):
        want, full = np.corrcoef(xs), _ref(x, y)
    np.testing.assert_allclose(m.pearson(), want, atol=1e-6)
    np.testing.assert_allclose(m.pearson(), ref.pearson(), atol=1e-6)
    np.testing.assert_allclose(m.covariance(), np.cov(xs), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(m.constant_a, np.arange(11) == 4)
    for name in ("pearson", "covariance"):
        r = getattr(m, name)()
        assert np.array_equal(r, r.T, equal_nan=True), name
    keep = np.arange(11) != 4
    np.testing.assert_allclose(mc.pearson()[keep], full["pearson"][keep], atol=1e-6)
    xc = _flat(x)[keep]
    xc = xc - xc.mean(1, keepdims=True)
    np.testing.assert_allclose(
        mc._centred("aa")[np.ix_(keep, keep)], xc @ xc.T, rtol=1e-5, atol=1e-3
    )
    yc = _flat(y) - _flat(y).mean(1, keepdims=True)
    np.testing.assert_allclose(mc._centred("bb"), yc @ yc.T, rtol=1e-5, atol=1e-3)


def test_streaming_image_by_image_equals_all_at_once():
    rng = np.random.default_rng(3)
    x = rng.normal(5.0, 1.0, size=(6, 4, 9, 9))
    y = rng.normal(size=(6, 3, 9, 9)) + x[:, :3] * 0.5
    whole = Moments(dtype="float64").update(x, y)
    streamed = Moments(dtype="float64")
    for i in range(6):
        streamed.update(torch.from_numpy(x[i]), torch.from_numpy(y[i]))  # (C, H, W) each
    assert streamed.n == whole.n == 6 * 81
    for name in ("pearson", "cosine", "euclidean", "covariance"):
        np.testing.assert_allclose(getattr(streamed, name)(), getattr(whole, name)(), rtol=1e-12)
    assert streamed.cka() == pytest.approx(whole.cka(), rel=1e-12)


def test_fp32_engine_precise_at_a_million_pixels_with_large_offset():
    rng = np.random.default_rng(4)
    n = 1_048_576
    base = rng.standard_normal((3, n))
    x = np.stack([base[0], 0.6 * base[0] + 0.8 * base[1], -0.3 * base[0] + base[2]])
    x = (1000.0 + x).astype(np.float32).reshape(1, 3, 1024, 1024)
    X = _flat(x)
    ref = np.corrcoef(X)
    m = Moments().update(torch.from_numpy(x))
    assert np.abs(m.pearson() - ref).max() < 1e-5
    np.testing.assert_allclose(m.covariance(ddof=1), np.cov(X), rtol=1e-5)
    # the naive one-pass fp32 formula fails on the same data (so the test can fail)
    xf = x.reshape(3, -1)
    s, ss = xf.sum(1, dtype=np.float32), (xf @ xf.T)
    cov = (ss - np.outer(s, s) / np.float32(n)) / np.float32(n)
    sd = np.sqrt(np.abs(np.diag(cov)))
    assert np.nanmax(np.abs(cov / np.outer(sd, sd) - ref)) > 1e-2


@pytest.mark.parametrize("engine", ["float32", "float64"])
@pytest.mark.parametrize("data", [np.float32, np.float64])
def test_constant_maps_give_nan_correlation_and_zero_covariance(engine, data):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 4, 4, 4)).astype(data)
    x[:, 1] = 0.1  # constant, non-zero (0.1 is not exact in binary)
    x[:, 2] = 0.0  # all zeros
    x[0, 3], x[1, 3] = 0.1, 0.3  # constant within each image, not over both
    m = Moments(dtype=engine, chunk_pixels=10).update(x)
    r = m.pearson()
    assert np.isnan(r[1]).all() and np.isnan(r[:, 2]).all()
    assert r[0, 0] == pytest.approx(1.0)
    np.testing.assert_array_equal(m.covariance()[1], 0.0)
    np.testing.assert_array_equal(m.constant_a, [False, True, True, False])
    assert r[3, 3] == pytest.approx(1.0)
    c = m.cosine()
    assert np.isnan(c[2]).all() and np.isnan(c[:, 2]).all()
    assert c[1, 1] == pytest.approx(1.0)  # a constant non-zero map has a direction
    assert m.euclidean()[1, 2] == pytest.approx(0.1 * np.sqrt(32))


def test_failed_update_leaves_sums_unchanged():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, 3, 4, 4))
    m = Moments().update(x)
    before = m.pearson()
    bad = rng.normal(size=(2, 3, 4, 4))
    bad[1, 2, 3, 3] = np.nan
    with pytest.raises(ValueError, match=r"finite.*channel\(s\) \[2\]"):
        m.update(bad)
    np.testing.assert_array_equal(m.pearson(), before)
    assert m.n == 32


def test_update_must_keep_the_same_blocks():
    x = np.zeros((1, 3, 2, 2)) + np.arange(4).reshape(2, 2)
    m = Moments().update(x)
    with pytest.raises(ValueError, match=r"expected \(K_a, K_b\) = \(3, 3\).*got \(2, 2\)"):
        m.update(x[:, :2])
    with pytest.raises(ValueError, match="started with b=None; got b=given"):
        m.update(x, x)
    with pytest.raises(ValueError, match="n=0"):
        Moments().pearson()


def test_full_fp32_precision_restores_settings_even_on_error():
    old = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("high")  # TF32 allowed, as a notebook may set
        assert torch.backends.cuda.matmul.allow_tf32 is True
        with pytest.raises(RuntimeError, match="boom"), full_fp32_precision():
            assert torch.get_float32_matmul_precision() == "highest"
            assert torch.backends.cuda.matmul.allow_tf32 is False
            raise RuntimeError("boom")
        assert torch.get_float32_matmul_precision() == "high"
        Moments().update(np.random.default_rng(0).normal(size=(2, 3, 3)))
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(old)
