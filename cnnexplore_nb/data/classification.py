"""Image-classification datasets without torchvision.

:class:`ImageClassification` keeps images as a uint8 tensor ``(N, C, H, W)`` with integer
labels; a batch is converted to float, augmented (optional, seeded) and normalised with the
ImageNet mean/std. Readers parse the original distribution formats: CIFAR-10/100 (python
pickles, read with an allow-listing unpickler), STL-10 (binary, column-major), Tiny ImageNet
(JPEG folders) and scikit-learn's bundled 8x8 digits upsampled to 32x32 (the embedded data).
Each reader takes the folder holding the data (``root``, e.g. ``DATA_DIR``), or ``root=None``
for the cache of :func:`~cnnexplore_nb.data.fetch.fetch`, downloaded on first use.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .._checks import check_choice, check_fraction, check_positive_int

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Augment",
    "ImageClassification",
    "cifar10",
    "cifar100",
    "digits",
    "stl10",
    "tiny_imagenet",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Augment:
    """Batch augmentation: zero-pad ``pad``, random ``crop`` x ``crop``, random horizontal flip.

    Parameters
    ----------
    pad : int
        Zero padding on each side before cropping.
    crop : int or None
        Crop size (default: the input size).
    flip : bool
        Flip each image left-right with probability 1/2 (questionable for digits).

    Notes
    -----
    Called as ``augment(x, generator)`` on a float batch ``(B, C, H, W)`` in [0, 1]; all draws
    come from ``generator`` so an augmented epoch is reproducible from a seed.
    """

    def __init__(self, *, pad: int = 4, crop: int | None = None, flip: bool = True) -> None:
        self.pad = check_positive_int("pad", pad, minimum=0)
        self.crop = crop
        self.flip = bool(flip)

    def __repr__(self) -> str:
        return f"Augment(pad={self.pad}, crop={self.crop}, flip={self.flip})"

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        b, _, h, w = x.shape
        crop = self.crop or h
        padded = F.pad(x, (self.pad,) * 4) if self.pad else x
        oy = torch.randint(0, padded.shape[-2] - crop + 1, (b,), generator=generator)
        ox = torch.randint(0, padded.shape[-1] - crop + 1, (b,), generator=generator)
        out = torch.stack(
            [padded[i, :, oy[i] : oy[i] + crop, ox[i] : ox[i] + crop] for i in range(b)]
        )
        if self.flip:
            flip = torch.rand(b, generator=generator) < 0.5
            out[flip] = out[flip].flip(-1)
        return out


class ImageClassification(Dataset):
    """Images and labels in memory; items are ``(image (C, H, W) float, label int)``.

    Parameters
    ----------
    images : Tensor or ndarray of shape (N, C, H, W), uint8
        Pixel values 0-255.
    labels : Tensor or ndarray of shape (N,), int
        Class indices ``0 .. K-1``.
    classes : sequence of str, optional
        Class names (default ``"0" .. "K-1"``).
    transform : callable, optional
        ``transform(x, generator)`` on a float batch in [0, 1] (e.g. :class:`Augment`).
    normalize : bool
        Subtract the ImageNet mean and divide by its std (3-channel images).
    """

    def __init__(
        self,
        images: torch.Tensor | np.ndarray,
        labels: torch.Tensor | np.ndarray | Sequence[int],
        *,
        classes: Sequence[str] | None = None,
        transform: Callable[..., torch.Tensor] | None = None,
        normalize: bool = True,
    ) -> None:
        images = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64).reshape(-1)
        if images.ndim != 4 or images.dtype != torch.uint8:
            raise ValueError(
                f"images must be uint8 of shape (N, C, H, W), got {images.dtype} {tuple(images.shape)}"
            )
        if len(images) != len(labels):
            raise ValueError(f"got {len(images)} images but {len(labels)} labels")
        n_classes = int(labels.max()) + 1 if len(labels) else 0
        if len(labels) and int(labels.min()) < 0:
            raise ValueError(f"labels must be >= 0, got minimum {int(labels.min())}")
        if classes is None:
            classes = [str(i) for i in range(n_classes)]
        if len(classes) < n_classes:
            raise ValueError(f"labels go up to {n_classes - 1} but only {len(classes)} class names")
        self.images, self.labels, self.classes = images, labels, list(classes)
        self.transform, self.normalize = transform, bool(normalize)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        shape = tuple(self.images.shape[1:])
        return (
            f"ImageClassification(n={len(self)}, image_shape={shape}, classes={self.num_classes}, "
            f"transform={self.transform!r})"
        )

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x, y = self.batch(torch.tensor([int(index)]))
        return x[0], int(y[0])

    def batch(
        self, indices: torch.Tensor | Sequence[int], *, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Float images ``(B, C, H, W)`` (transformed, normalised) and labels ``(B,)``."""
        idx = torch.as_tensor(indices, dtype=torch.int64)
        x = self.images[idx].float().div_(255.0)
        if self.transform is not None:
            x = self.transform(x, generator)
        if self.normalize:
            c = x.shape[1]
            mean = torch.tensor(IMAGENET_MEAN[:c] if c == 3 else [0.449] * c).view(1, c, 1, 1)
            std = torch.tensor(IMAGENET_STD[:c] if c == 3 else [0.226] * c).view(1, c, 1, 1)
            x = (x - mean) / std
        return x, self.labels[idx]

    def subset(self, indices: torch.Tensor | Sequence[int] | np.ndarray) -> ImageClassification:
        """The items at ``indices`` (same classes, transform and normalisation)."""
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.int64)
        return ImageClassification(
            self.images[idx], self.labels[idx], classes=self.classes,
            transform=self.transform, normalize=self.normalize,
        )  # fmt: skip

    def with_transform(self, transform: Callable[..., torch.Tensor] | None) -> ImageClassification:
        """A view of the same tensors with another ``transform`` (an ``Augment()``, or None)."""
        return ImageClassification(
            self.images, self.labels, classes=self.classes, transform=transform,
            normalize=self.normalize,
        )  # fmt: skip

    def select_classes(
        self, classes: Sequence[int], *, relabel: bool = True
    ) -> ImageClassification:
        """Keep the given class indices; ``relabel`` maps them to ``range(len(classes))``."""
        classes = [int(c) for c in classes]
        bad = [c for c in classes if not 0 <= c < self.num_classes]
        if bad:
            raise ValueError(f"classes {bad} out of range 0..{self.num_classes - 1}")
        keep = torch.isin(self.labels, torch.tensor(classes))
        labels = self.labels[keep]
        names = self.classes
        if relabel:
            lut = torch.full((self.num_classes,), -1, dtype=torch.int64)
            lut[torch.tensor(classes)] = torch.arange(len(classes))
            labels, names = lut[labels], [self.classes[c] for c in classes]
        return ImageClassification(
            self.images[keep], labels, classes=names, transform=self.transform,
            normalize=self.normalize,
        )  # fmt: skip

    def class_counts(self) -> np.ndarray:
        """Number of items per class, shape ``(num_classes,)``."""
        return np.bincount(self.labels.numpy(), minlength=self.num_classes)


# --------------------------------------------------------------------------- helpers
def _resize_uint8(
    images: torch.Tensor, size: int, resize: Literal["area", "bilinear"] = "area"
) -> torch.Tensor:
    """Resize a uint8 batch: ``"area"`` (box: exact block means for integer factors) or
    ``"bilinear"`` (antialiased, as PIL / torchvision ``Resize`` in the L2T-ww reference)."""
    check_choice("resize", resize, ["area", "bilinear"])
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    if resize == "area":
        out = F.interpolate(images.float(), size=(size, size), mode="area")
    else:
        out = F.interpolate(
            images.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
    return out.round_().clamp_(0, 255).to(torch.uint8)


def _find_dir(
    root: str | os.PathLike | None,
    name: str,
    layout: str,
    how: str,
    fetch_name: str,
    progress: bool = True,
) -> Path:
    """The dataset folder ``name``: under ``root``, ``root`` itself, or under one of its
    subfolders (a data folder holding several sets side by side, e.g.
    ``root/cifar10-subset/cifar-10-batches-py``; the first in name order); or the cache.

    ``root=None`` means the cache of :func:`~cnnexplore_nb.data.fetch.fetch`, filled on first
    use; a folder given by the user is never downloaded into.
    """
    if root is None:
        from .fetch import fetch

        return fetch(fetch_name, progress=progress)
    root = Path(root).expanduser()
    below = sorted(p / name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    for cand in (root / name, root, *below):
        if cand.is_dir() and cand.name == name:
            return cand
    hint = ""
    if str(root) in ("train", "test", "val"):
        hint = f" (the first argument is the data folder; did you mean split={str(root)!r}?)"
    raise FileNotFoundError(
        f"dataset folder {name!r} not found in {str(root)!r} or its subfolders{hint}. "
        "Expected layout:\n"
        f"{layout}\nHow to obtain it: {how}, or pass root=None to download it into the cache "
        f"(cnnexplore_nb.data.fetch({fetch_name!r}))."
    )


class _SafeUnpickler(pickle.Unpickler):
    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return super().find_class(module, name)


def _read_pickle(path: Path, keys: Sequence[bytes]) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"missing data file {str(path)!r}")
    try:
        with open(path, "rb") as fh:
            blob = _SafeUnpickler(fh, encoding="bytes").load()
        missing = [k for k in keys if k not in blob]
        if missing:
            raise KeyError(f"keys {missing} absent (has {sorted(blob)[:8]})")
        data = np.asarray(blob[keys[0]], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(blob[keys[1]]):
            raise ValueError(f"data of shape {data.shape} with {len(blob[keys[1]])} labels")
    except Exception as exc:
        raise ValueError(
            f"could not read {str(path)!r}: {type(exc).__name__}: {exc}. The file looks "
            "corrupted or is not in the CIFAR python format; download it again."
        ) from exc
    return blob


_CIFAR10_LAYOUT = (
    "  <root>/cifar-10-batches-py/{data_batch_1 .. data_batch_5, test_batch, batches.meta}"
)
_CIFAR100_LAYOUT = "  <root>/cifar-100-python/{train, test, meta}"
_CIFAR_HOW = "download the 'python version' from https://www.cs.toronto.edu/~kriz/cifar.html and untar it into <root>"


def cifar10(
    root: str | os.PathLike | None = None, split: Literal["train", "test"] = "train"
) -> ImageClassification:
    """CIFAR-10 from ``<root>/cifar-10-batches-py`` (python pickles; 50000/10000 images 32x32).

    ``root=None`` reads the cache, downloading the data on first use (``fetch("cifar10")``).
    """
    split = check_choice("split", split, ["train", "test"])
    folder = _find_dir(root, "cifar-10-batches-py", _CIFAR10_LAYOUT, _CIFAR_HOW, "cifar10")
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    blobs = [_read_pickle(folder / n, [b"data", b"labels"]) for n in names]
    data = np.concatenate([np.asarray(b[b"data"], np.uint8) for b in blobs])
    labels = np.concatenate([np.asarray(b[b"labels"], np.int64) for b in blobs])
    classes = [str(i) for i in range(10)]
    meta = folder / "batches.meta"
    if meta.is_file():
        try:
            with open(meta, "rb") as fh:
                classes = [
                    c.decode() for c in _SafeUnpickler(fh, encoding="bytes").load()[b"label_names"]
                ]
        except Exception:  # names are cosmetic; keep the indices
            pass
    return ImageClassification(data.reshape(-1, 3, 32, 32), labels, classes=classes)


def cifar100(
    root: str | os.PathLike | None = None,
    split: Literal["train", "test"] = "train",
    *,
    label: Literal["fine", "coarse"] = "fine",
) -> ImageClassification:
    """CIFAR-100 from ``<root>/cifar-100-python`` (``fine_labels``: 100 classes).

    ``root=None`` reads the cache, downloading the data on first use (``fetch("cifar100")``).
    """
    split = check_choice("split", split, ["train", "test"])
    label = check_choice("label", label, ["fine", "coarse"])
    folder = _find_dir(root, "cifar-100-python", _CIFAR100_LAYOUT, _CIFAR_HOW, "cifar100")
    key = f"{label}_labels".encode()
    blob = _read_pickle(folder / split, [b"data", key])
    labels = np.asarray(blob[key], np.int64)
    n = 100 if label == "fine" else 20
    return ImageClassification(
        np.asarray(blob[b"data"], np.uint8).reshape(-1, 3, 32, 32), labels,
        classes=[str(i) for i in range(n)],
    )  # fmt: skip


_STL_LAYOUT = "  <root>/stl10_binary/{train_X.bin, train_y.bin, test_X.bin, test_y.bin}"
_STL_HOW = "download stl10_binary.tar.gz from https://ai.stanford.edu/~acoates/stl10/ and untar it into <root>"


def stl10(
    root: str | os.PathLike | None = None,
    split: Literal["train", "test"] = "train",
    *,
    size: int = 32,
    resize: Literal["area", "bilinear"] = "area",
) -> ImageClassification:
    """STL-10 labelled images from ``<root>/stl10_binary`` resized 96 -> ``size``.

    The ``*_X.bin`` files hold uint8 images of 3 x 96 x 96 stored column-major (each channel
    transposed); ``*_y.bin`` holds labels 1..10 (returned as 0..9). ``root=None`` reads the
    cache, downloading the data on first use (``fetch("stl10")``, 2.6 GB). ``resize``:
    ``"area"`` (default: exact 3 x 3 block means for 96 -> 32) or ``"bilinear"``
    (antialiased bilinear, what the L2T-ww reference's ``transforms.Resize(32)`` does).
    """
    split = check_choice("split", split, ["train", "test"])
    size = check_positive_int("size", size)
    check_choice("resize", resize, ["area", "bilinear"])
    folder = _find_dir(root, "stl10_binary", _STL_LAYOUT, _STL_HOW, "stl10")
    xf, yf = folder / f"{split}_X.bin", folder / f"{split}_y.bin"
    for f in (xf, yf):
        if not f.is_file():
            raise FileNotFoundError(
                f"missing data file {str(f)!r}. Expected layout:\n{_STL_LAYOUT}"
            )
    raw = np.fromfile(xf, dtype=np.uint8)
    labels = np.fromfile(yf, dtype=np.uint8).astype(np.int64)
    per = 3 * 96 * 96
    if raw.size % per or raw.size // per != labels.size or labels.size == 0:
        raise ValueError(
            f"corrupted STL-10 files: {xf.name} has {raw.size} bytes (expected a multiple of "
            f"{per}) for {labels.size} labels in {yf.name}; download them again"
        )
    if labels.min() < 1 or labels.max() > 10:
        raise ValueError(
            f"corrupted {yf.name}: labels must be 1..10, got {labels.min()}..{labels.max()}"
        )
    images = torch.from_numpy(raw.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2).copy())
    classes = "airplane bird car cat deer dog horse monkey ship truck".split()
    return ImageClassification(_resize_uint8(images, size, resize), labels - 1, classes=classes)


_TINY_LAYOUT = (
    "  <root>/tiny-imagenet-200/wnids.txt\n"
    "  <root>/tiny-imagenet-200/train/<wnid>/images/<wnid>_<k>.JPEG\n"
    "  <root>/tiny-imagenet-200/val/images/val_<k>.JPEG + val/val_annotations.txt"
)
_TINY_HOW = "download http://cs231n.stanford.edu/tiny-imagenet-200.zip and unzip it into <root>"


def _read_jpegs(paths: Sequence[Path], size: int, progress: bool) -> torch.Tensor:
    from PIL import Image
    from tqdm.auto import tqdm

    out = torch.empty((len(paths), 3, size, size), dtype=torch.uint8)
    for i, p in enumerate(tqdm(paths, desc="tiny-imagenet", disable=not progress)):
        try:
            with Image.open(p) as im:
                arr = np.array(im.convert("RGB"), dtype=np.uint8)  # writable copy
        except Exception as exc:
            raise ValueError(f"could not decode image {str(p)!r}: {exc}") from exc
        out[i] = _resize_uint8(torch.from_numpy(arr).permute(2, 0, 1)[None], size)[0]
    return out


def tiny_imagenet(
    root: str | os.PathLike | None = None,
    split: Literal["train", "val"] = "train",
    *,
    size: int = 32,
    progress: bool = True,
) -> ImageClassification:
    """Tiny ImageNet (200 classes, 64x64 JPEGs resized to ``size``) from ``<root>/tiny-imagenet-200``.

    Class indices follow the order of ``wnids.txt``; ``val`` uses ``val/val_annotations.txt``
    (tab-separated: file name, wnid, box). ``root=None`` reads the cache, downloading the
    data on first use (``fetch("tiny_imagenet")``).
    """
    split = check_choice("split", split, ["train", "val"])
    size = check_positive_int("size", size)
    folder = _find_dir(
        root, "tiny-imagenet-200", _TINY_LAYOUT, _TINY_HOW, "tiny_imagenet", progress
    )
    wnids_file = folder / "wnids.txt"
    if not wnids_file.is_file():
        raise FileNotFoundError(f"missing {str(wnids_file)!r}. Expected layout:\n{_TINY_LAYOUT}")
    wnids = [w.strip() for w in wnids_file.read_text().splitlines() if w.strip()]
    index = {w: i for i, w in enumerate(wnids)}
    paths: list[Path] = []
    labels: list[int] = []
    if split == "train":
        for w in wnids:
            files = sorted((folder / "train" / w / "images").glob("*.JPEG"))
            if not files:
                raise FileNotFoundError(
                    f"no JPEG images for class {w!r} in {str(folder / 'train' / w / 'images')!r}"
                )
            paths += files
            labels += [index[w]] * len(files)
    else:
        ann = folder / "val" / "val_annotations.txt"
        if not ann.is_file():
            raise FileNotFoundError(f"missing {str(ann)!r}. Expected layout:\n{_TINY_LAYOUT}")
        for n, line in enumerate(ann.read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) < 2 or parts[1] not in index:
                raise ValueError(
                    f"corrupted {ann.name} line {n}: {line!r} (expected 'file<TAB>wnid<TAB>...')"
                )
            paths.append(folder / "val" / "images" / parts[0])
            labels.append(index[parts[1]])
    return ImageClassification(_read_jpegs(paths, size, progress), labels, classes=wnids)


def digits(
    split: Literal["train", "test", "all"] = "all",
    *,
    classes: Sequence[int] | None = None,
    size: int = 32,
    test_fraction: float = 0.3,
    seed: int = 0,
) -> ImageClassification:
    """scikit-learn's bundled 8x8 digits (1797 images) upsampled to ``size`` and made 3-channel.

    Parameters
    ----------
    split : {"all", "train", "test"}
        A fixed stratified split (``test_fraction`` of each class to ``test``, drawn with
        ``seed``) so the embedded protocol has a test set.
    classes : sequence of int, optional
        Keep these digits, relabelled ``0 .. len(classes)-1`` (e.g. source 0-4, target 5-9).
    size : int
        Output side (bilinear upsampling of the 0-16 intensities to 0-255).
    """
    from sklearn.datasets import load_digits

    split = check_choice("split", split, ["all", "train", "test"])
    size = check_positive_int("size", size)
    test_fraction = check_fraction("test_fraction", test_fraction, low=0.0, high=1.0)
    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)[:, None]
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    images = (x.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    labels = np.asarray(bunch.target, np.int64)
    if split != "all":
        rng = np.random.default_rng(seed)
        test = np.zeros(len(labels), bool)
        for c in range(10):
            idx = rng.permutation(np.flatnonzero(labels == c))
            test[idx[: int(round(test_fraction * len(idx)))]] = True
        keep = test if split == "test" else ~test
        images, labels = images[torch.from_numpy(keep)], labels[keep]
    ds = ImageClassification(images, labels, classes=[str(i) for i in range(10)])
    return ds if classes is None else ds.select_classes(classes)
