"""Readers of the original formats (tiny files written here), digits, augmentation."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from cnnexplore_nb.data import ImageClassification, cifar10, cifar100, digits, stl10, tiny_imagenet
from cnnexplore_nb.data.classification import IMAGENET_MEAN, IMAGENET_STD, Augment


def _cifar_batch(path, n, seed, label_key=b"labels"):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, n).tolist()
    with open(path, "wb") as fh:
        pickle.dump(
            {b"batch_label": b"x", label_key: labels, b"data": data, b"filenames": []},
            fh,
            protocol=2,
        )
    return data, labels


def test_cifar10_reader(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    parts = [_cifar_batch(folder / f"data_batch_{i}", 3, i) for i in range(1, 6)]
    test_data, test_labels = _cifar_batch(folder / "test_batch", 4, 9)
    train = cifar10(tmp_path, "train")
    assert len(train) == 15 and train.images.shape == (15, 3, 32, 32)
    # row layout: 1024 red, 1024 green, 1024 blue values, each row-major 32x32
    first = parts[0][0][1]
    assert np.array_equal(train.images[1, 1].numpy(), first[1024:2048].reshape(32, 32))
    assert train.labels.tolist() == sum((p[1] for p in parts), [])
    test = cifar10(folder, "test")  # the folder itself is accepted too
    assert test.labels.tolist() == test_labels


def test_a_data_folder_holding_sets_side_by_side_is_searched_one_level_down(tmp_path):
    folder = tmp_path / "b-subset" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    (tmp_path / "a-other").mkdir()  # a sibling without the set is skipped
    test_data, test_labels = _cifar_batch(folder / "test_batch", 4, 9)
    assert cifar10(tmp_path, "test").labels.tolist() == test_labels
    with pytest.raises(FileNotFoundError, match=r"not found in .* or its subfolders"):
        cifar10(tmp_path / "a-other", "test")


def test_cifar100_reader_and_corruption(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    data, labels = _cifar_batch(folder / "train", 5, 0, label_key=b"fine_labels")
    ds = cifar100(tmp_path, "train")
    assert ds.labels.tolist() == labels and ds.num_classes == 100
    assert np.array_equal(ds.images.reshape(5, -1).numpy(), data)
    (folder / "test").write_bytes(b"\x80\x02garbage")
    with pytest.raises(ValueError, match="corrupted"):
        cifar100(tmp_path, "test")


def test_unpickler_refuses_code(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    with open(folder / "train", "wb") as fh:
        pickle.dump({b"data": print}, fh)
    with pytest.raises(ValueError, match="refusing to load global builtins.print"):
        cifar100(tmp_path)


def test_missing_directory_explains_layout(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"(?s)cifar-10-batches-py.*data_batch_1.*cs.toronto.edu"
    ):
        cifar10(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"(?s)stl10_binary.*train_X.bin.*stanford"):
        stl10(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"(?s)tiny-imagenet-200.*val_annotations.txt"):
        tiny_imagenet(tmp_path)


def test_stl10_column_major_and_resize(tmp_path):
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    img = np.zeros((2, 3, 96, 96), np.uint8)  # (N, C, H, W) as displayed
    img[0, 0, :48, :] = 240  # top half of the red channel bright
    img[1, 2, :, :3] = 90  # left 3 columns of blue
    # the file stores each channel column-major, i.e. the transpose of (H, W)
    img.transpose(0, 1, 3, 2).tofile(folder / "train_X.bin")
    np.array([1, 10], np.uint8).tofile(folder / "train_y.bin")
    ds = stl10(tmp_path, "train", size=32)
    assert ds.images.shape == (2, 3, 32, 32) and ds.labels.tolist() == [0, 9]
    assert (ds.images[0, 0, :16] == 240).all() and (ds.images[0, 0, 16:] == 0).all()
    assert (ds.images[1, 2, :, 0] == 90).all() and (ds.images[1, 2, :, 1:] == 0).all()
    full = stl10(tmp_path, "train", size=96)
    assert np.array_equal(full.images.numpy(), img)
    # the reference's transforms.Resize(32) (PIL bilinear, which antialiases when shrinking)
    from PIL import Image

    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (2, 3, 96, 96), dtype=np.uint8)
    noisy.transpose(0, 1, 3, 2).tofile(folder / "train_X.bin")
    bil = stl10(tmp_path, "train", size=32, resize="bilinear").images.numpy()
    ref = np.stack([
        np.stack([np.asarray(Image.fromarray(ch).resize((32, 32), Image.BILINEAR)) for ch in im])
        for im in noisy
    ])  # fmt: skip
    diff = np.abs(bil.astype(int) - ref.astype(int))
    assert diff.mean() < 1.0 and diff.max() <= 4  # PIL's fixed-point filter vs float
    area = stl10(tmp_path, "train", size=32).images.numpy()
    block = noisy.reshape(2, 3, 32, 3, 32, 3).mean(axis=(3, 5))
    assert np.abs(area - np.round(block)).max() <= 1 and np.abs(area.astype(int) - bil).mean() > 1
    with pytest.raises(ValueError, match="unknown resize 'nearest'"):
        stl10(tmp_path, "train", resize="nearest")
    (folder / "train_X.bin").write_bytes(b"\x00" * 1000)
    with pytest.raises(ValueError, match="corrupted STL-10"):
        stl10(tmp_path, "train")


def test_tiny_imagenet(tmp_path):
    from PIL import Image

    root = tmp_path / "tiny-imagenet-200"
    wnids = ["n02", "n01"]
    (root / "val" / "images").mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    colours = {"n02": (200, 30, 30), "n01": (20, 20, 220)}
    for w in wnids:
        d = root / "train" / w / "images"
        d.mkdir(parents=True)
        for k in range(2):
            Image.new("RGB", (64, 64), colours[w]).save(d / f"{w}_{k}.JPEG")
    Image.new("L", (64, 64), 128).save(root / "val" / "images" / "val_0.JPEG")  # greyscale
    Image.new("RGB", (64, 64), colours["n02"]).save(root / "val" / "images" / "val_1.JPEG")
    (root / "val" / "val_annotations.txt").write_text(
        "val_0.JPEG\tn01\t0\t0\t63\t63\nval_1.JPEG\tn02\t1\t2\t3\t4\n"
    )
    train = tiny_imagenet(tmp_path, "train", size=32, progress=False)
    assert train.labels.tolist() == [0, 0, 1, 1] and train.classes == wnids
    assert train.images.shape == (4, 3, 32, 32)
    assert np.allclose(train.images[0].float().mean((1, 2)).numpy(), colours["n02"], atol=4)
    val = tiny_imagenet(tmp_path, "val", size=32, progress=False)
    assert val.labels.tolist() == [1, 0]
    assert np.allclose(val.images[0].float().mean((1, 2)).numpy(), 128, atol=2)
    (root / "val" / "val_annotations.txt").write_text("val_0.JPEG n01\n")
    with pytest.raises(ValueError, match="line 1"):
        tiny_imagenet(tmp_path, "val", progress=False)


def test_digits():
    full = digits()
    assert len(full) == 1797 and full.images.shape[1:] == (3, 32, 32)
    train, test = digits("train"), digits("test")
    assert len(train) + len(test) == 1797
    assert abs(len(test) - 0.3 * 1797) < 10
    target = digits("train", classes=[5, 6, 7, 8, 9])
    assert target.num_classes == 5 and target.classes == ["5", "6", "7", "8", "9"]
    assert target.class_counts().sum() == int(np.isin(train.labels.numpy(), [5, 6, 7, 8, 9]).sum())
    from sklearn.datasets import load_digits

    raw = load_digits().images[0] / 16.0  # 8x8 blocks of the 32x32 image keep its mean
    small = full.images[0, 0].float().reshape(8, 4, 8, 4).mean((1, 3)).numpy() / 255
    assert np.corrcoef(raw.ravel(), small.ravel())[0, 1] > 0.95


def test_batch_normalisation_and_augment():
    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.uint8).reshape(2, 3, 4, 4)
    ds = ImageClassification(images, [0, 1])
    x, y = ds.batch([1])
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    torch.testing.assert_close(x[0], (images[1].float() / 255 - mean) / std)
    aug = Augment(pad=1, crop=4, flip=True)
    a = aug(images.float(), torch.Generator().manual_seed(0))
    b = aug(images.float(), torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    # every output is a 4x4 window of the zero-padded image, possibly mirrored
    padded = torch.nn.functional.pad(images.float(), (1, 1, 1, 1))
    for i in range(2):
        windows = [padded[i, :, r : r + 4, c : c + 4] for r in range(3) for c in range(3)]
        windows += [w.flip(-1) for w in windows]
        assert any(torch.equal(a[i], w) for w in windows)
    seen = {
        tuple(aug(images.float(), torch.Generator().manual_seed(s))[0].flatten().tolist())
        for s in range(30)
    }
    assert len(seen) > 5
    with pytest.raises(ValueError, match="uint8"):
        ImageClassification(images.float(), [0, 1])
