"""Region restriction (mask, crop), bicubic grids and dilated masks against numpy references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from cnnexplore_nb.similarity import (
    EmptyRegionError,
    common_grid,
    correlation_tables,
    dilated_mask,
    similarity_matrix,
    similarity_stats,
    stream_moments,
)


def _corr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson of every row of x (K_a, n) with every row of y (K_b, n), one pair at a time."""
    out = np.empty((len(x), len(y)))
    for i, u in enumerate(x):
        for j, v in enumerate(y):
            with np.errstate(invalid="ignore", divide="ignore"):
                out[i, j] = np.corrcoef(u, v)[0, 1]
    return out


def _selected(maps: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N, C, H, W) maps at the pixels of a (N, H, W) mask, as (C, n) by an obvious loop."""
    return np.stack([np.concatenate([m[c][k] for m, k in zip(maps, mask)])
                     for c in range(maps.shape[1])])  # fmt: skip


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 4, 6, 7))
    b = rng.normal(size=(3, 3, 6, 7)) + 0.7 * a[:, :3]
    mask = rng.random((3, 6, 7)) > 0.45
    return a, b, mask


def test_mask_per_image_selects_exactly_those_pixels(pair):
    a, b, mask = pair
    ref = _corr(_selected(a, mask), _selected(b, mask))
    for x, y in ((a, b), (torch.from_numpy(a), torch.from_numpy(b).float())):
        np.testing.assert_allclose(similarity_matrix(x, y, mask=mask), ref, atol=1e-6)
    # (N, 1, H, W), a 0/1 float mask and a torch mask mean the same
    as_float = torch.from_numpy(mask[:, None].astype(np.float32))
    np.testing.assert_allclose(similarity_matrix(a, b, mask=as_float), ref, atol=1e-6)
    # a shared (H, W) mask applies to every image
    shared = mask[0]
    ref = _corr(_selected(a, np.broadcast_to(shared, mask.shape)),
                _selected(b, np.broadcast_to(shared, mask.shape)))  # fmt: skip
    np.testing.assert_allclose(similarity_matrix(a, b, mask=shared), ref, atol=1e-6)


def test_mask_zero_mode_is_cnn_explorer_masking(pair):
    a, b, mask = pair
    za, zb = a * mask[:, None], b * mask[:, None]  # the original: maps * mask, all pixels
    ref = _corr(za.transpose(1, 0, 2, 3).reshape(4, -1), zb.transpose(1, 0, 2, 3).reshape(3, -1))
    got = similarity_matrix(a, b, mask=mask, mask_mode="zero")
    np.testing.assert_allclose(got, ref, atol=1e-6)
    assert not np.allclose(got, similarity_matrix(a, b, mask=mask), atol=1e-3)


@pytest.mark.parametrize("crop", [(1, 2, 3, 4), (slice(1, 4), slice(2, 6))])
def test_crop_window_as_numbers_or_slices(pair, crop):
    a, b, _ = pair
    wa, wb = a[:, :, 1:4, 2:6], b[:, :, 1:4, 2:6]
    ref = _corr(wa.transpose(1, 0, 2, 3).reshape(4, -1), wb.transpose(1, 0, 2, 3).reshape(3, -1))
    np.testing.assert_allclose(similarity_matrix(a, b, crop=crop), ref, atol=1e-6)


def test_crop_and_mask_together_and_per_image_reduce(pair):
    a, b, mask = pair
    window = np.zeros_like(mask)
    window[:, 1:4, 2:6] = True
    ref = _corr(_selected(a, mask & window), _selected(b, mask & window))
    np.testing.assert_allclose(
        similarity_matrix(a, b, mask=mask, crop=(1, 2, 3, 4)), ref, atol=1e-6
    )
    per = similarity_matrix(a, b, mask=mask, reduce="per_image")
    for i in range(3):
        ref_i = _corr(
            _selected(a[i : i + 1], mask[i : i + 1]), _selected(b[i : i + 1], mask[i : i + 1])
        )
        np.testing.assert_allclose(per[i], ref_i, atol=1e-6)
    empty = mask.copy()
    empty[1] = False  # image 1 has no pixel in its mask: NaN there, skipped by the stats
    per = similarity_matrix(a, b, mask=empty, reduce="per_image")
    assert np.isnan(per[1]).all() and np.isfinite(per[[0, 2]]).all()
    st = similarity_stats(a, b, mask=empty)
    np.testing.assert_array_equal(st.count, np.full((4, 3), 2))


def test_masked_streaming_keeps_moments_small_and_matches_one_pass():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(40, 5, 16, 16)).astype(np.float32)
    mask = rng.random((40, 16, 16)) > 0.7
    mom = stream_moments([a], mask=mask, progress=False)
    assert mom.n == int(mask.sum())
    assert all(v.nbytes <= 8 * 5 * 5 for v in vars(mom._sums).values() if hasattr(v, "nbytes"))
    x = _selected(a.astype(np.float64), mask)
    np.testing.assert_allclose(mom.pearson(), np.corrcoef(x), atol=1e-6)


def test_a_map_constant_inside_the_mask_is_flagged():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(2, 3, 5, 5))
    mask = np.zeros((5, 5), bool)
    mask[1:3, 1:4] = True
    a[:, 2][:, mask] = 4.0  # constant where it counts, noise elsewhere
    r = similarity_matrix(a, mask=mask)
    assert np.isnan(r[2]).all() and np.isfinite(r[:2, :2]).all()
    t = correlation_tables({"l": a}, mask=mask, progress=False)
    np.testing.assert_array_equal(t.zero_flags_a["l"], [False, False, True])


def test_mask_on_another_grid_is_resampled_by_nearest_neighbour():
    rng = np.random.default_rng(3)
    maps = rng.normal(size=(1, 3, 2, 2))
    fine = np.zeros((4, 4), bool)
    fine[1, 1] = fine[1, 3] = fine[3, 1] = True  # pixel centres of a 2 x 2 grid: rows/cols 1, 3
    fine[0, 0] = fine[2, 2] = True  # never sampled by nearest-exact
    with pytest.raises(ValueError, match=r"mask has H x W \(4, 4\) but the maps are compared on"):
        similarity_matrix(maps, mask=fine)
    got = similarity_matrix(maps, mask=fine, resample="bilinear-down")
    coarse = np.array([[True, True], [True, False]])
    np.testing.assert_allclose(got, similarity_matrix(maps, mask=coarse), atol=1e-12)


def test_masked_tables_use_the_region(pair):
    a, b, mask = pair
    t = correlation_tables({"a": a}, {"b": b}, mask=mask, progress=False)
    np.testing.assert_allclose(
        t.matrices[("a", "b")], _corr(_selected(a, mask), _selected(b, mask)), atol=1e-6
    )


@pytest.mark.parametrize("policy", ["bicubic-down", "bicubic-up", (5, 6, "bicubic")])
def test_bicubic_policies_match_manual_interpolation(policy):
    rng = np.random.default_rng(4)
    big = torch.from_numpy(rng.normal(size=(2, 3, 10, 12)))
    small = torch.from_numpy(rng.normal(size=(2, 2, 5, 6)))
    grid = common_grid([(10, 12), (5, 6)], policy)

    def on(x):
        if tuple(x.shape[-2:]) == grid:
            return x
        shrink = grid[0] < x.shape[-2]
        return F.interpolate(x, size=grid, mode="bicubic", align_corners=False, antialias=shrink)

    ra, rb = on(big).numpy(), on(small).numpy()
    ref = _corr(ra.transpose(1, 0, 2, 3).reshape(3, -1), rb.transpose(1, 0, 2, 3).reshape(2, -1))
    np.testing.assert_allclose(similarity_matrix(big, small, resample=policy), ref, atol=1e-6)
    bilinear = similarity_matrix(big, small, resample="bilinear-down")
    assert not np.allclose(similarity_matrix(big, small, resample="bicubic-down"), bilinear)


def test_dilated_mask_matches_per_image_scipy_and_a_hand_case():
    mask = np.zeros((2, 7, 7), bool)
    mask[0, 3, 3] = True
    mask[1, 0, 6] = True
    got = dilated_mask(mask, 2)
    diamond = np.add.outer(np.abs(np.arange(7) - 3), np.abs(np.arange(7) - 3)) <= 2
    np.testing.assert_array_equal(got[0], diamond)  # 13 pixels: the cross grown twice
    assert got[0].sum() == 13 and got[1].sum() == 6  # corner: clipped, no bleed across images
    for k in (0, 1, 3):
        for conn in (1, 2):
            st = ndimage.generate_binary_structure(2, conn)
            ref = np.stack([ndimage.binary_dilation(m, st, iterations=k) if k else m
                            for m in mask])  # fmt: skip
            np.testing.assert_array_equal(dilated_mask(mask, k, connectivity=conn), ref)
    np.testing.assert_array_equal(dilated_mask(mask[0].astype(np.uint8), 1).sum(), 5)


BAD = [
    (lambda x: similarity_matrix(x, mask=np.ones((3, 5, 6))), ValueError,
     r"mask holds 3 image\(s\) but the maps hold N=2"),
    (lambda x: similarity_matrix(x, mask=np.full((6, 6), 0.5)), ValueError,
     r"mask must be boolean or 0/1, got other values \[0.5\]"),
    (lambda x: similarity_matrix(x, mask=np.zeros((2, 2, 6, 6))), ValueError,
     r"mask must have shape \(H, W\), \(N, H, W\) or \(N, 1, H, W\), got shape \(2, 2, 6, 6\)"),
    (lambda x: similarity_matrix(x, mask=np.zeros((6, 6), bool)), EmptyRegionError,
     r"mask selects no pixel of the 6 x 6 grid"),
    (lambda x: similarity_matrix(x, crop=(4, 0, 3, 6)), ValueError,
     r"crop \(top=4, left=0, height=3, width=6\) must lie inside the 6 x 6 grid"),
    (lambda x: similarity_matrix(x, crop=(0, 0, 2)), TypeError,
     r"crop must be \(top, left, height, width\) ints or \(rows, cols\) slices"),
    (lambda x: similarity_matrix(x, crop=(slice(0, 6, 2), slice(None))), ValueError,
     r"crop slices must select a non-empty window with step 1"),
    (lambda x: similarity_matrix(x, mask=np.ones((6, 6)), mask_mode="multiply"), ValueError,
     r"unknown mask_mode 'multiply'.*Expected one of: select, zero"),
    (lambda x: similarity_matrix(x, x[..., :3], resample=(3, 3, "lanczos")), ValueError,
     r"\(H, W, mode\) with mode in \['bilinear', 'bicubic'\], got \(3, 3, 'lanczos'\)"),
    (lambda x: dilated_mask(np.ones((4, 4)), -1), ValueError, r"k must be"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "exc", "match"), BAD)
def test_bad_regions_are_clear_errors(call, exc, match):
    x = np.random.default_rng(5).normal(size=(2, 3, 6, 6))
    with pytest.raises(exc, match=match):
        call(x)
