"""Vessel data: synthetic generator, retina, normalisation, split, array and folder datasets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import io

from cnnexplore_nb.data import (
    VesselArrays,
    VesselFolder,
    normalize_intensity,
    retina_image,
    retina_pseudo_label,
    synthetic_vessels,
    train_val_split,
)
from cnnexplore_nb.data._vessel_synth import _Canvas

# ------------------------------------------------------------------ synthetic vessels


def test_synthetic_shapes_types_and_seed():
    images, masks = synthetic_vessels(3, (48, 64), rng=7)
    assert images.shape == masks.shape == (3, 48, 64)
    assert images.dtype == np.float32 and masks.dtype == np.uint8
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert set(np.unique(masks)) == {0, 1}
    again = synthetic_vessels(3, (48, 64), rng=np.random.default_rng(7))
    np.testing.assert_array_equal(images, again[0])
    np.testing.assert_array_equal(masks, again[1])
    other = synthetic_vessels(3, (48, 64), rng=8)
    assert not np.array_equal(masks, other[1])
    assert not np.array_equal(masks[0], masks[1])  # images of one call differ


@pytest.mark.parametrize("target", [0.05, 0.12, 0.25])
def test_vessel_fraction_is_approximately_reached(target):
    _, masks = synthetic_vessels(4, 96, rng=1, vessel_fraction=target)
    fractions = masks.mean(axis=(1, 2))
    assert (fractions >= target).all()
    assert (fractions < target * 1.35 + 0.02).all()


def test_vessels_are_bright_and_difficulty_lowers_contrast():
    cnr = []
    for difficulty in (0.0, 0.5, 1.0):
        images, masks = synthetic_vessels(4, 96, rng=3, difficulty=difficulty)
        inside = images[masks == 1].mean()
        outside = images[masks == 0]
        cnr.append((inside - outside.mean()) / outside.std())
    assert cnr[0] > cnr[1] > cnr[2] > 0.3


def test_vessels_are_connected_trees():
    from scipy import ndimage

    _, masks = synthetic_vessels(4, 128, rng=4)
    for m in masks:
        labels, n = ndimage.label(m, structure=np.ones((3, 3)))
        sizes = np.bincount(labels.ravel())[1:]
        # a few trees, no dust: every component is a vessel segment of some length
        assert n <= 40 and sizes.min() >= 3


def test_canvas_mask_is_the_exact_union_of_discs():
    pts = np.array([[10.3, 12.7, 3.2, 1.0], [20.0, 5.5, 1.1, 0.5], [0.5, 29.0, 2.0, 0.8]])
    canvas = _Canvas((32, 32))
    canvas.draw(pts)
    yy, xx = np.mgrid[:32, :32] + 0.5  # pixel centres
    ref = np.zeros((32, 32), bool)
    for y, x, r, _ in pts:  # slow obvious reference
        ref |= (yy - y) ** 2 + (xx - x) ** 2 <= r**2
    np.testing.assert_array_equal(canvas.mask, ref)
    assert canvas.covered == ref.sum()
    # the intensity profile is brightest at a centre and only inside the discs
    assert canvas.layer[10, 12] == pytest.approx(canvas.layer.max())
    assert (canvas.layer[~ref] == 0).all() and (canvas.layer[ref] > 0).all()


def test_synthetic_errors():
    with pytest.raises(ValueError, match="n must be an integer >= 1, got 0"):
        synthetic_vessels(0)
    with pytest.raises(ValueError, match=r"difficulty must be in \[0.0, 1.0\], got 1.5"):
        synthetic_vessels(1, 32, difficulty=1.5)
    with pytest.raises(ValueError, match="vessel_fraction must be > 0"):
        synthetic_vessels(1, 32, vessel_fraction=0)
    with pytest.raises(ValueError, match=r"at least 8 x 8 pixels, got \(4, 4\)"):
        synthetic_vessels(1, 4)
    with pytest.raises(TypeError, match="size must be an int or a pair"):
        synthetic_vessels(1, "big")
    with pytest.raises(ValueError, match="max_radius"):
        synthetic_vessels(1, 32, max_radius=20)


# ------------------------------------------------------------------------------ retina


def test_retina_image_channels():
    from skimage import data

    raw = data.retina()
    green = retina_image()
    assert green.dtype == np.float32 and green.shape == raw.shape[:2]
    np.testing.assert_allclose(green, raw[..., 1] / 255.0, atol=1e-6)
    assert retina_image(channel="rgb").shape == raw.shape
    small = retina_image(channel="gray", size=64)
    assert small.shape == (64, 64) and 0 <= small.min() and small.max() <= 1
    with pytest.raises(ValueError, match="closest: 'green'"):
        retina_image(channel="gren")


def test_retina_pseudo_label_marks_dark_vessels():
    image = retina_image(size=192)
    for method in ("frangi", "sato"):
        label = retina_pseudo_label(image, method=method, sigmas=(1, 2))
        assert label.dtype == np.uint8 and set(np.unique(label)) <= {0, 1}
        assert 0.02 < label.mean() < 0.2
        fov = image > 0.15 * np.percentile(image, 99)
        # the pseudo-label lies inside the fundus and picks darker pixels than the rest
        assert not label[~fov].any()
        assert image[label == 1].mean() < image[fov & (label == 0)].mean()
    otsu = retina_pseudo_label(image, threshold="otsu", sigmas=(1, 2))
    assert 0 < otsu.sum() < label.sum() * 2
    with pytest.raises(ValueError, match=r"grey image of shape \(H, W\)"):
        retina_pseudo_label(np.zeros((8, 8, 3)))


# ----------------------------------------------------------- normalisation and split


def test_normalize_per_image_and_dataset():
    rng = np.random.default_rng(0)
    images = rng.normal(3.0, 2.0, (4, 8, 8)) * np.arange(1, 5)[:, None, None]
    out, stats = normalize_intensity(images)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=(1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(1, 2)), 1, atol=1e-5)
    np.testing.assert_allclose(stats["mean"][:, 0], images.mean(axis=(1, 2)))
    train, st = normalize_intensity(images[:3], mode="dataset")
    assert st["mean"][0] == pytest.approx(images[:3].mean())
    assert st["std"][0] == pytest.approx(images[:3].std())
    val, _ = normalize_intensity(images[3:], mode="dataset", stats=st)
    np.testing.assert_allclose(val, (images[3:] - images[:3].mean()) / images[:3].std(), rtol=1e-5)
    # per channel for (N, C, H, W); a constant image is only centred
    rgb = np.stack([images, images * 10], axis=1)
    out4, st4 = normalize_intensity(rgb, mode="dataset")
    assert st4["mean"].shape == (2,)
    np.testing.assert_allclose(out4[:, 0], out4[:, 1], atol=1e-5)
    const, _ = normalize_intensity(np.full((1, 4, 4), 5.0))
    assert (const == 0).all()


def test_normalize_errors():
    with pytest.raises(ValueError, match=r"\(N, H, W\) or \(N, C, H, W\).*\(8, 8\)"):
        normalize_intensity(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="1 mean.*3 channel"):
        normalize_intensity(np.zeros((2, 3, 4, 4)), mode="dataset", stats={"mean": 0, "std": 1})
    with pytest.raises(ValueError, match="only used with mode='dataset'"):
        normalize_intensity(np.zeros((2, 4, 4)), stats={"mean": 0, "std": 1})


def test_train_val_split():
    tr, va = train_val_split(296)  # the thesis: 296 images, 80/20
    assert len(va) == 59 and len(tr) == 237
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(296))
    tr2, va2 = train_val_split(296)
    np.testing.assert_array_equal(va, va2)
    assert not np.array_equal(va, train_val_split(296, seed=1)[1])
    assert len(train_val_split(5, val_fraction=0.2)[1]) == 1
    with pytest.raises(ValueError, match="leaves 0 training"):
        train_val_split(2, val_fraction=0.9)
    with pytest.raises(ValueError, match="n must be an integer >= 2"):
        train_val_split(1)


# --------------------------------------------------------------------- array dataset


def test_vessel_arrays_items():
    images, masks = synthetic_vessels(3, 16, rng=0)
    ds = VesselArrays(images, masks)
    x, y = ds[1]
    assert len(ds) == 3 and x.shape == (1, 16, 16) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and y.shape == (16, 16)
    np.testing.assert_array_equal(y.numpy(), masks[1])
    rois = np.ones_like(masks)
    x, y, roi = VesselArrays(images, masks * 255, rois=rois)[0]
    assert roi.dtype == torch.bool and roi.all() and y.max() == 1
    bad = masks.copy()
    bad[0, 0, 0] = 7
    with pytest.raises(ValueError, match="masks is not binary.*3 distinct values: 0, 1, 7"):
        VesselArrays(images, bad)
    with pytest.raises(ValueError, match=r"\(3, 16, 16\).*got \(2, 16, 16\)"):
        VesselArrays(images, masks[:2])


# -------------------------------------------------------------------- folder dataset


def _write_folder(root, *, n=3, mask_scale=255, mask_ext=".png", image_ext=".png"):
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    imgs, msks = [], []
    for i in range(n):
        img = rng.integers(0, 256, (12, 10), dtype=np.uint8)
        msk = (rng.random((12, 10)) < 0.3).astype(np.uint8)
        io.imsave(root / "images" / f"im{i}{image_ext}", img, check_contrast=False)
        io.imsave(root / "masks" / f"im{i}{mask_ext}", msk * mask_scale, check_contrast=False)
        imgs.append(img)
        msks.append(msk)
    return np.stack(imgs), np.stack(msks)


@pytest.mark.parametrize("mask_scale,mask_ext", [(255, ".png"), (1, ".png"), (1, ".tif")])
def test_folder_reads_pairs(tmp_path, mask_scale, mask_ext):
    imgs, msks = _write_folder(tmp_path, mask_scale=mask_scale, mask_ext=mask_ext)
    ds = VesselFolder(tmp_path, normalize="none")
    assert len(ds) == 3 and ds.names == ["im0", "im1", "im2"]
    for i in range(3):
        x, y = ds[i]
        assert x.shape == (1, 12, 10) and x.dtype == torch.float32 and y.dtype == torch.int64
        np.testing.assert_allclose(x[0].numpy(), imgs[i] / 255.0, atol=1e-6)
        np.testing.assert_array_equal(y.numpy(), msks[i])
    x, _ = VesselFolder(tmp_path)[0]  # per-image z-score
    assert abs(float(x.mean())) < 1e-5 and float(x.std(unbiased=False)) == pytest.approx(
        1, abs=1e-4
    )
    dset = VesselFolder(tmp_path, normalize="dataset")
    assert dset.stats["mean"][0] == pytest.approx(imgs.mean() / 255.0, rel=1e-6)


def test_folder_tiff_uint16_rgb_and_roi(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "lbl").mkdir()
    (tmp_path / "fov").mkdir()
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0], rgb[..., 1] = 200, 100
    io.imsave(tmp_path / "img" / "a.png", rgb, check_contrast=False)
    deep = np.full((8, 8), 65535, np.uint16)
    io.imsave(tmp_path / "img" / "b.tif", deep, check_contrast=False)
    for s in "ab":
        io.imsave(
            tmp_path / "lbl" / f"{s}.png", np.eye(8, dtype=np.uint8) * 255, check_contrast=False
        )
        io.imsave(tmp_path / "fov" / f"{s}.tif", np.ones((8, 8), np.uint8), check_contrast=False)
    ds = VesselFolder(tmp_path, images="img", masks="lbl", roi="fov", normalize="none")
    x, y, roi = ds[0]
    assert x.shape == (3, 8, 8)
    np.testing.assert_allclose(x[:, 0, 0].numpy(), [200 / 255, 100 / 255, 0], atol=1e-6)
    assert roi.dtype == torch.bool and roi.all() and int(y.sum()) == 8
    x_b, *_ = ds[1]
    assert x_b.shape == (1, 8, 8) and float(x_b.max()) == pytest.approx(1.0)
    gray = VesselFolder(tmp_path, images="img", masks="lbl", normalize="none", as_gray=True)
    assert gray[0][0].shape == (1, 8, 8)
    flipped = VesselFolder(
        tmp_path, images="img", masks="lbl", transform=lambda x, y: (x.flip(-1), y.flip(-1))
    )
    np.testing.assert_array_equal(flipped[0][1].numpy(), np.fliplr(np.eye(8)))


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="root folder"):
        VesselFolder(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="images folder .*images"):
        VesselFolder(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    (tmp_path / "images" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"holds no image files.*notes.txt"):
        VesselFolder(tmp_path)


def test_folder_unmatched_stems(tmp_path):
    _write_folder(tmp_path)
    (tmp_path / "masks" / "im1.png").rename(tmp_path / "masks" / "other.png")
    with pytest.raises(
        ValueError, match=r"images without a mask: \['im1'\].*masks without an image: \['other'\]"
    ):
        VesselFolder(tmp_path)


def test_folder_duplicate_stem(tmp_path):
    _write_folder(tmp_path)
    io.imsave(tmp_path / "images" / "im0.tif", np.zeros((12, 10), np.uint8), check_contrast=False)
    with pytest.raises(ValueError, match="two files with stem 'im0'"):
        VesselFolder(tmp_path)


def test_folder_non_binary_and_jpeg_masks(tmp_path):
    _write_folder(tmp_path)
    io.imsave(
        tmp_path / "masks" / "im2.png",
        np.array([[0, 128], [255, 3]], np.uint8).repeat(6, 0).repeat(5, 1),
        check_contrast=False,
    )
    with pytest.raises(
        ValueError, match=r"im2.png.*not binary.*found 4 distinct values: 0, 3, 128, 255"
    ):
        VesselFolder(tmp_path)


def test_folder_jpeg_mask_is_rejected(tmp_path):
    _write_folder(tmp_path, mask_ext=".jpg")
    with pytest.raises(ValueError, match="not binary.*losslessly"):
        VesselFolder(tmp_path)


def test_folder_size_mismatch(tmp_path):
    _write_folder(tmp_path)
    io.imsave(tmp_path / "masks" / "im1.png", np.zeros((12, 11), np.uint8), check_contrast=False)
    with pytest.raises(ValueError, match=r"size mismatch for 'im1'.*\(12, 10\).*\(12, 11\)"):
        VesselFolder(tmp_path)


# ----------------------------------------------------------- histogram equalisation


def test_equalize_hist_maps_each_plane_to_its_empirical_cdf():
    from scipy.stats import rankdata
    from skimage import exposure

    rng = np.random.default_rng(3)
    images = rng.gamma(2.0, 3.0, (3, 2, 32, 32)) * np.array([1.0, 50.0])[None, :, None, None]
    out, stats = normalize_intensity(images, mode="none", equalize="hist")
    assert out.dtype == np.float32 and out.shape == images.shape
    assert stats == {"mode": "none", "mean": None, "std": None, "equalize": "hist"}
    for i in range(3):
        for c in range(2):
            ecdf = rankdata(images[i, c], method="max").reshape(32, 32) / 32**2
            # 256 bins, the CDF interpolated between bin centres: off by at most one bin's mass
            heaviest = np.histogram(images[i, c], 256)[0].max() / 32**2
            assert np.abs(out[i, c] - ecdf).max() <= heaviest + 1 / 32**2
            np.testing.assert_allclose(out[i, c], exposure.equalize_hist(images[i, c]), rtol=1e-6)
            order = np.argsort(images[i, c], axis=None)
            assert (np.diff(out[i, c].ravel()[order]) >= 0).all()  # monotone within a plane
    # then the z-score, as before: zero mean, unit std per image
    z, st = normalize_intensity(images[:, 0], equalize="hist")
    np.testing.assert_allclose(z.mean(axis=(1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=(1, 2)), 1, atol=1e-5)
    assert st["equalize"] == "hist" and st["mean"].shape == (3, 1)
    # the default is unchanged: no equalisation
    plain, st0 = normalize_intensity(images[:, 0])
    assert st0["equalize"] is None and not np.allclose(plain, z, atol=1e-3)


def test_equalize_adaptive_is_clahe_on_the_unit_range_image():
    from skimage import exposure

    rng = np.random.default_rng(4)
    x = np.linspace(0, 1, 64)[None, :] * np.ones((64, 1))
    img = 500 + 200 * x + 5 * rng.normal(size=(64, 64))  # a ramp: uneven background
    out, _ = normalize_intensity(img[None], mode="none", equalize="adaptive", clip_limit=0.02)
    unit = (img - img.min()) / (img.max() - img.min())
    np.testing.assert_allclose(out[0], exposure.equalize_adapthist(unit, clip_limit=0.02),
                               atol=1e-6)  # fmt: skip
    assert 0 <= out.min() and out.max() <= 1
    # CLAHE flattens the ramp: the columns' means spread less than the input's
    left, right = out[0, :, :16].mean(), out[0, :, -16:].mean()
    assert right - left < 0.9 * (unit[:, -16:].mean() - unit[:, :16].mean())
    const, _ = normalize_intensity(np.full((1, 8, 8), 3.0), mode="none", equalize="adaptive")
    assert (const == 0).all()


def test_equalize_errors():
    with pytest.raises(ValueError, match=r"unknown equalize 'clahe'.*Expected one of: None, hist"):
        normalize_intensity(np.zeros((1, 4, 4)), equalize="clahe")
    with pytest.raises(ValueError, match=r"clip_limit must be in \[0.0, 1.0\], got 2"):
        normalize_intensity(np.zeros((1, 4, 4)), equalize="adaptive", clip_limit=2)
    with pytest.raises(ValueError, match="only used with mode='dataset'"):
        normalize_intensity(np.zeros((1, 4, 4)), mode="none", stats={"mean": 0, "std": 1})
