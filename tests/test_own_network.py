"""studies.own_network: the user's network and images, the default trained on digits."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from _external_models import FAMILIES, resnet18
from torch import nn

import cnnexplore_nb as cx
from cnnexplore_nb.data.classification import IMAGENET_MEAN, IMAGENET_STD
from cnnexplore_nb.studies import own_network as own


def test_load_network_from_a_callable_or_an_import_path(tmp_path):
    torch.manual_seed(0)
    trained = resnet18(width=16)
    path = tmp_path / "weights.pt"
    torch.save(trained.state_dict(), path)
    for spec in (resnet18, "_external_models:resnet18"):
        model = own.load_network(spec, path, width=16)
        assert not model.training
        for (k, a), b in zip(trained.state_dict().items(), model.state_dict().values()):
            assert torch.equal(a, b), k
    # a training script's checkpoint: weights under "state_dict", DataParallel's prefix
    wrapped = {"state_dict": {f"module.{k}": v for k, v in trained.state_dict().items()}}
    torch.save(wrapped, tmp_path / "wrapped.pt")
    again = own.load_network(resnet18, tmp_path / "wrapped.pt", width=16)
    assert torch.equal(again.fc.weight, trained.fc.weight)
    untrained = own.load_network(resnet18, width=16)  # no checkpoint: the constructor's weights
    assert not torch.equal(untrained.fc.weight, trained.fc.weight)


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        ("resnet18", ValueError, r"a callable or a string 'package.module:function', got 'resnet18'"),
        ("no_such_module_xyz:f", ValueError, r"cannot import module 'no_such_module_xyz'"),
        ("_external_models:nope", ValueError, r"module '_external_models' has no 'nope'"),
        ("_external_models:VGG16", TypeError, r"is a list, not a callable"),
        (lambda: "a string", TypeError, r"the constructor returned a str, not an nn.Module"),
    ],
)  # fmt: skip
def test_load_network_bad_constructors(spec, error, match):
    with pytest.raises(error, match=match):
        own.load_network(spec)


def test_load_network_weights_that_do_not_fit(tmp_path):
    torch.save(nn.Linear(2, 2).state_dict(), tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"do not fit ResNet: missing \['conv1.weight'"):
        own.load_network(resnet18, tmp_path / "other.pt", width=16)


def test_load_images_resizes_normalises_and_fits_the_channels(tmp_path):
    from skimage import io as skio
    from skimage.transform import resize

    rng = np.random.default_rng(0)
    grey = (rng.random((20, 30)) * 255).astype(np.uint8)
    rgb = (rng.random((16, 16, 3)) * 255).astype(np.uint8)
    rgba = np.concatenate([rgb, np.full((16, 16, 1), 255, np.uint8)], axis=-1)
    deep = (rng.random((12, 12)) * 65535).astype(np.uint16)
    skio.imsave(tmp_path / "a_grey.png", grey, check_contrast=False)
    skio.imsave(tmp_path / "b_rgb.png", rgb, check_contrast=False)
    skio.imsave(tmp_path / "c_rgba.png", rgba, check_contrast=False)
    skio.imsave(tmp_path / "d_deep.tif", deep, check_contrast=False)
    (tmp_path / "notes.txt").write_text("not an image")
    x, names = own.load_images(tmp_path, size=8)
    assert names == ["a_grey.png", "b_rgb.png", "c_rgba.png", "d_deep.tif"]
    assert tuple(x.shape) == (4, 3, 8, 8) and x.dtype == torch.float32
    mean = np.asarray(IMAGENET_MEAN)[:, None, None]
    std = np.asarray(IMAGENET_STD)[:, None, None]

    def expected(img01: np.ndarray) -> np.ndarray:  # resize, 8 bits, ImageNet normalisation
        r = resize(img01, (8, 8), anti_aliasing=True)
        r = np.repeat(r[None], 3, 0) if r.ndim == 2 else np.moveaxis(r, -1, 0)
        return (np.round(np.clip(r, 0, 1) * 255) / 255 - mean) / std

    np.testing.assert_allclose(x[0].numpy(), expected(grey / 255.0), atol=1e-5)
    np.testing.assert_allclose(x[1].numpy(), expected(rgb / 255.0), atol=1e-5)
    np.testing.assert_allclose(x[2].numpy(), x[1].numpy())  # the alpha channel is dropped
    np.testing.assert_allclose(x[3].numpy(), expected(deep / 65535.0), atol=1e-5)
    one, _ = own.load_images(tmp_path, size=8, channels=1, limit=2)
    assert tuple(one.shape) == (2, 1, 8, 8)
    assert own.first_conv_channels(FAMILIES["unet"][0]()) == 1


def test_load_images_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="image folder .* does not exist"):
        own.load_images(tmp_path / "missing", size=8)
    with pytest.raises(ValueError, match=r"no image in .* \(looked for \.png"):
        own.load_images(tmp_path, size=8)
    from skimage import io as skio

    skio.imsave(tmp_path / "rgb.png", np.zeros((4, 4, 3), np.uint8), check_contrast=False)
    with pytest.raises(ValueError, match="rgb.png has 3 channels, the network takes 2"):
        own.load_images(tmp_path, size=4, channels=2)


def test_tap_names_and_summary():
    assert own.tap_names(["relu", "layer1", "features.3", "conv_block"]) == {
        "relu": "relu", "layer1": "layer1", "features.3": "tap 3", "conv_block": "tap 4",
    }  # fmt: skip
    model = resnet18(width=16)
    catalogue = cx.list_layers(model, torch.zeros(1, 3, 64, 64))
    table = own.tap_summary(catalogue, 64)
    assert list(table["layer"]) == ["relu", "layer1", "layer2", "layer3", "layer4"]
    assert list(table["size"]) == ["32×32", "16×16", "8×8", "4×4", "2×2"]
    assert list(table["reduction"]) == [2, 4, 8, 16, 32]
    assert list(table["maps"]) == [4, 4, 8, 16, 32]
    with pytest.raises(ValueError, match="marks no tap"):
        own.tap_summary(catalogue.assign(tap=False))


def test_grid_effect_against_the_tables():
    rng = np.random.default_rng(1)
    base = rng.random((3, 1, 8, 8))
    maps = {"big": base + 0.1 * rng.random((3, 5, 8, 8)), "small": rng.random((3, 4, 4, 4))}
    got = own.grid_effect(maps, threshold=0.8)
    assert list(got.columns) == ["layer", "size", "own", "on 4×4", "on 8×8"]
    assert list(got["size"]) == ["8×8", "4×4"]
    for i, (name, m) in enumerate(maps.items()):
        alone = cx.correlation_tables({name: m}, progress=False).stats["percent"].iloc[0]
        assert got["own"][i] == pytest.approx(alone)
    down = cx.correlation_tables(maps, resample="bilinear-down", progress=False).stats
    assert got["on 4×4"][0] == pytest.approx(down["percent"].iloc[0])  # big with big
    assert got["on 4×4"][1] == pytest.approx(down["percent"].iloc[3])  # small with small
    up = cx.correlation_tables(maps, resample="bilinear-up", progress=False).stats
    assert list(got["on 8×8"]) == pytest.approx([up["percent"].iloc[0], up["percent"].iloc[3]])
    assert got["on 8×8"][0] == pytest.approx(got["own"][0])  # big is already 8 x 8


def test_train_on_digits_caches_the_trained_network(tmp_path, monkeypatch):
    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4, 10)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))

    torch.manual_seed(0)
    start = Tiny()
    cache = tmp_path / "tiny.pt"
    model, record = own.train_on_digits(start, size=8, epochs=1, cache=cache)
    assert set(record) == {"test_acc", "epochs", "seconds", "n_train"}
    assert record["epochs"] == 1 and record["n_train"] == 1258 and 0 <= record["test_acc"] <= 1
    assert not torch.equal(model.conv.weight, start.conv.weight)  # trained a copy
    assert cache.is_file() and cache.with_suffix(".json").is_file()

    def no_training(*args, **kwargs):
        raise AssertionError("trained again instead of reading the cache")

    monkeypatch.setattr("cnnexplore_nb.transfer.run", no_training)
    again, rec2 = own.train_on_digits(Tiny(), size=8, epochs=1, cache=cache)
    assert rec2 == record and torch.equal(again.conv.weight, model.conv.weight)


@pytest.mark.slow
def test_notebook_08_on_a_network_and_images_the_user_brings(tmp_path, monkeypatch):
    """The parameters the notebook's prose tells a user to change: MODEL, CHECKPOINT,
    IMAGE_DIR (here a DenseNet written elsewhere, its weights, three photographs)."""
    import nbformat
    from skimage import data
    from skimage import io as skio

    from cnnexplore_nb.notebook import run_notebook
    from cnnexplore_nb.plots.check import read_reports

    root = Path(__file__).resolve().parents[1]
    (tmp_path / "user_net.py").write_text(
        "from _external_models import DenseNet\n\n\n"
        "def build():\n    return DenseNet(growth=4, blocks=(2, 2, 2))\n"
    )
    torch.manual_seed(0)
    net = FAMILIES["densenet"][0]()
    torch.save(net.state_dict(), tmp_path / "densenet.pt")
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("astronaut", "coffee", "chelsea"):
        skio.imsave(photos / f"{name}.png", getattr(data, name)()[::4, ::4], check_contrast=False)
    here = str(Path(__file__).parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), here, str(root)]))
    for key, folder in (("CNNX_FIGURES", "fig"), ("CNNX_ARTIFACTS", "art")):
        monkeypatch.setenv(key, str(tmp_path / folder))
    monkeypatch.setenv("CNNX_FIGURE_CHECK", "1")
    out = run_notebook(
        root / "notebooks" / "08_your_own_network.ipynb", scale="smoke",
        output_dir=tmp_path / "out", timeout=600, html=False,
        parameters={"MODEL": "user_net:build", "CHECKPOINT": str(tmp_path / "densenet.pt"),
                    "IMAGE_DIR": str(photos), "IMAGE_SIZE": 64},
    )  # fmt: skip
    text = "".join(
        o.get("text", "")
        for c in nbformat.read(out, as_version=4).cells
        for o in c.get("outputs", [])
    )
    assert "3 images of (3, 64, 64)" in text
    assert "4 taps: features.relu0, features.transition1.conv" in text
    assert "DenseNet: 4 taps found without configuration" in text
    assert not list((tmp_path / "art").rglob("*.pt"))  # nothing trained: the user's weights
    reports = read_reports(tmp_path / "fig")
    assert len(reports) >= 5 and all(r.ok for r in reports), [r.summary() for r in reports]
