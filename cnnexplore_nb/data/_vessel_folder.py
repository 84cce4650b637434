"""Torch Datasets of vessel images and binary masks: over arrays and over a folder.

Both yield ``(image, mask)`` or, with regions of interest, ``(image, mask, roi)``:
image float32 tensor (C, H, W), mask int64 tensor (H, W) in {0, 1}, roi bool tensor (H, W).
A folder is read by matching file stems across sub-folders, or from a split list (a csv file
of image, mask and roi paths, as VessMAP publishes). Files are decoded by their content, not
their suffix (VessMAP's labels are TIFFs named ``.png``). Re-exported by
:mod:`cnnexplore_nb.data.vessels`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from .._checks import check_choice

__all__ = ["VesselArrays", "VesselFolder", "IMAGE_SUFFIXES"]

#: file suffixes read by :class:`VesselFolder` (anything scikit-image / imageio reads)
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm")


def _binary(values: np.ndarray, what: str) -> np.ndarray:
    """Map a mask stored as bool, {0, 1} or {0, 255} to uint8 {0, 1}; else ValueError."""
    arr = np.asarray(values)
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{what} must be numeric or bool, got dtype {arr.dtype}")
    uniq = np.unique(arr)
    if set(uniq.tolist()) <= {0, 1} or set(uniq.tolist()) <= {0, 255}:
        return (arr > 0).astype(np.uint8)
    shown = ", ".join(str(v) for v in uniq[:10]) + (", ..." if uniq.size > 10 else "")
    raise ValueError(
        f"{what} is not binary: expected values {{0, 1}} or {{0, 255}} (or bool), found "
        f"{uniq.size} distinct values: {shown}. Store masks losslessly (PNG, TIFF), not JPEG."
    )


def _as_image_tensor(image: np.ndarray) -> torch.Tensor:
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    return torch.from_numpy(np.ascontiguousarray(arr))


class VesselArrays(Dataset):
    """A Dataset over in-memory arrays, e.g. the output of ``synthetic_vessels``.

    Parameters
    ----------
    images : ndarray of shape (N, H, W) or (N, C, H, W)
        Images (already normalised if wanted, see ``normalize_intensity``).
    masks : ndarray of shape (N, H, W)
        Binary masks: bool, {0, 1} or {0, 255}.
    rois : ndarray of shape (N, H, W), optional
        Binary regions of interest; items then are ``(image, mask, roi)``.

    Items
    -----
    ``(image float32 (C, H, W), mask int64 (H, W))`` or with ``rois`` also a bool roi (H, W).
    """

    def __init__(
        self, images: np.ndarray, masks: np.ndarray, *, rois: np.ndarray | None = None
    ) -> None:
        images = np.asarray(images)
        if images.ndim not in (3, 4) or not np.issubdtype(images.dtype, np.number):
            raise ValueError(
                f"images must be numeric of shape (N, H, W) or (N, C, H, W), got shape "
                f"{images.shape} and dtype {images.dtype}"
            )
        masks = _binary(masks, "masks")
        if masks.shape != (images.shape[0], *images.shape[-2:]):
            raise ValueError(
                f"masks must have shape (N, H, W) = {(images.shape[0], *images.shape[-2:])} "
                f"to match images of shape {images.shape}, got {masks.shape}"
            )
        if rois is not None:
            rois = _binary(rois, "rois")
            if rois.shape != masks.shape:
                raise ValueError(f"rois must have shape {masks.shape}, got {rois.shape}")
        self.images = images.astype(np.float32, copy=False)
        self.masks = masks
        self.rois = rois

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        item = (
            _as_image_tensor(self.images[index]),
            torch.from_numpy(self.masks[index].astype(np.int64)),
        )
        if self.rois is None:
            return item
        return (*item, torch.from_numpy(self.rois[index].astype(bool)))


def _list_folder(folder: Path, label: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{label} folder {str(folder)!r} does not exist")
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        others = sorted(p.name for p in folder.iterdir())[:5]
        raise ValueError(
            f"{label} folder {str(folder)!r} holds no image files (suffixes "
            f"{', '.join(IMAGE_SUFFIXES)}); found: {others or 'nothing'}"
        )
    by_stem: dict[str, Path] = {}
    for p in files:
        if p.stem in by_stem:
            raise ValueError(
                f"{label} folder {str(folder)!r} has two files with stem {p.stem!r}: "
                f"{by_stem[p.stem].name!r} and {p.name!r}"
            )
        by_stem[p.stem] = p
    return by_stem


_SIGNATURES = {
    b"II*\x00": ".tif", b"MM\x00*": ".tif", b"II+\x00": ".tif", b"MM\x00+": ".tif",
    b"\x89PNG": ".png", b"\xff\xd8\xff": ".jpg", b"BM": ".bmp", b"GIF8": ".gif",
}  # fmt: skip


def _sniff(path: Path) -> str | None:
    """The format of ``path`` from its first bytes (``".tif"``, ``".png"``, ...) or None."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    return next((ext for sig, ext in _SIGNATURES.items() if head.startswith(sig)), None)


def _read(path: Path) -> np.ndarray:
    """Decode an image file by its content: TIFF with tifffile, others with imageio."""
    try:
        kind = _sniff(path)
        if kind == ".tif":
            import tifffile

            arr = np.array(tifffile.imread(str(path)))
        elif kind is not None:
            import imageio.v3 as iio

            arr = np.array(iio.imread(str(path), extension=kind))
        else:
            from skimage import io

            arr = np.array(io.imread(str(path)))
    except Exception as exc:  # noqa: BLE001 - re-raised with the file name
        raise ValueError(f"cannot read image file {str(path)!r}: {exc}") from exc
    if arr.ndim == 3 and arr.shape[-1] not in (3, 4) and arr.shape[0] in (3, 4):
        arr = np.moveaxis(arr, 0, -1)  # planar (C, H, W) storage -> (H, W, C)
    return arr


def _resolve_listed(root: Path, text: str) -> Path | None:
    """A path from a split list: absolute, relative to ``root``, or relative to a parent.

    Lists written relative to a repository root (VessMAP's ``data/VessMAP/images/x.tiff``)
    resolve by dropping leading components until the file exists under ``root``.
    """
    rel = Path(text.strip())
    if rel.is_absolute():
        return rel if rel.is_file() else None
    parts = rel.parts
    for k in range(len(parts)):
        cand = root.joinpath(*parts[k:])
        if cand.is_file():
            return cand
    return None


def _read_split(
    root: Path, split: str | os.PathLike, columns: Sequence[str] | None
) -> tuple[list[str], dict[str, dict[str, Path]]]:
    """Names (image stems, in list order) and files per kind from a csv split list."""
    path = Path(split) if Path(split).is_absolute() else root / split
    if not path.is_file():
        raise FileNotFoundError(f"split list {str(path)!r} does not exist")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    if not rows:
        raise ValueError(
            f"split list {str(path)!r} is empty; expected a header row naming 2 or 3 columns "
            "(image, mask[, roi], e.g. im_paths,gt_paths,mask_paths) and one row per item"
        )
    header = [c.strip() for c in rows[0]]
    if columns is None:
        columns = header[:3]
    columns = [str(c) for c in columns]
    if not 2 <= len(columns) <= 3 or not set(columns) <= set(header):
        raise ValueError(
            f"split list {str(path)!r}: expected 2 or 3 columns (image, mask[, roi]) among its "
            f"header {header}, got columns={columns}"
        )
    kinds = ["image", "mask", "roi"][: len(columns)]
    where = [header.index(c) for c in columns]
    names: list[str] = []
    found: dict[str, dict[str, Path]] = {k: {} for k in kinds}
    missing: list[str] = []
    for line, row in enumerate(rows[1:], 2):
        if len(row) < len(header):
            raise ValueError(f"split list {str(path)!r} line {line}: {row} has too few cells")
        cells = [row[i] for i in where]
        name = Path(cells[0].strip()).stem
        if name in found["image"]:
            raise ValueError(f"split list {str(path)!r} names image {name!r} twice")
        names.append(name)
        for kind, cell in zip(kinds, cells):
            resolved = _resolve_listed(root, cell)
            if resolved is None:
                missing.append(cell.strip())
            else:
                found[kind][name] = resolved
    if missing:
        raise FileNotFoundError(
            f"split list {str(path)!r} names {len(missing)} file(s) not found under "
            f"{str(root)!r}: {missing[:5]}"
        )
    if not names:
        raise ValueError(
            f"split list {str(path)!r} has its header {header} but no rows; expected one row "
            "per item below it"
        )
    return names, found


def _read_mask(path: Path, what: str) -> np.ndarray:
    arr = _read(path)
    if arr.ndim == 3:  # a mask saved as RGB(A): fine if the colour channels agree
        rgb = arr[..., :3]
        if not (rgb == rgb[..., :1]).all():
            raise ValueError(f"{what} {str(path)!r} is a colour image with differing channels")
        arr = rgb[..., 0]
    return _binary(arr, f"{what} {str(path)!r}")


class VesselFolder(Dataset):
    """A Dataset over a folder of image/mask pairs matched by file stem, or from a split list.

    Layout: ``root/<images>/a.png``, ``root/<masks>/a.png`` (any suffix scikit-image
    reads, e.g. ``a.tif`` beside ``a.png``) and optionally ``root/<roi>/a.png``. With
    ``split``, the items are the rows of a csv file instead (VessMAP's ``train.csv``:
    ``im_paths,gt_paths,mask_paths`` then ``images/5740.tiff,annotator1/labels/5740.png,
    mask/5740.png``), in the order of the list.

    Parameters
    ----------
    root : str or PathLike
        Folder holding the sub-folders (or the files a split list names).
    images, masks : str, optional
        Sub-folder names of the images and the masks (0/1, 0/255 or bool); default
        ``"images"`` and ``"masks"``. Not used with ``split``.
    roi : str, optional
        Sub-folder of binary region-of-interest masks (e.g. a field of view).
    split : str or PathLike, optional
        A csv split list (relative to ``root`` or absolute) with a header row; each row
        gives an image, its mask and optionally its roi. Paths are absolute, relative to
        ``root``, or relative to a folder above it (leading components are dropped until
        the file exists under ``root``, so lists written from a repository root work).
    columns : sequence of str, optional
        The (image, mask[, roi]) column names of ``split``; default its first three
        columns (or two, if it has two).
    normalize : {"image", "dataset", "none"}
        Per-image z-score, a z-score with the statistics of the whole folder (or of
        ``stats`` from a training folder), or the raw intensities scaled to [0, 1]
        (integer files are divided by their dtype's maximum).
    stats : dict, optional
        ``{"mean": (C,), "std": (C,)}`` for ``normalize="dataset"``; see ``self.stats``.
    as_gray : bool
        Convert colour images to one grey channel (else RGB gives C = 3).
    transform : callable, optional
        Applied to the item tuple of tensors, returning a tuple of the same form.

    Raises
    ------
    FileNotFoundError
        Missing root or sub-folder.
    ValueError
        Empty folder, duplicate or unmatched stems (listed), non-binary masks (values
        shown), image/mask size mismatch (shapes shown), a split list without the columns.
    TypeError
        ``images``, ``masks`` or ``roi`` given together with ``split``.

    Notes
    -----
    Every file is read once at construction to check it, and again when its item is
    requested (nothing is cached, so folders of any size fit).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        images: str | None = None,
        masks: str | None = None,
        roi: str | None = None,
        split: str | os.PathLike | None = None,
        columns: Sequence[str] | None = None,
        normalize: Literal["image", "dataset", "none"] = "image",
        stats: dict[str, Any] | None = None,
        as_gray: bool = False,
        transform: Callable[..., tuple[torch.Tensor, ...]] | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"root folder {str(self.root)!r} does not exist")
        self.normalize = check_choice("normalize", normalize, ["image", "dataset", "none"])
        self.as_gray = bool(as_gray)
        self.transform = transform
        if split is not None:
            given = [k for k, v in (("images", images), ("masks", masks), ("roi", roi)) if v]
            if given:
                raise TypeError(
                    f"{', '.join(given)} name sub-folders, but split={str(split)!r} lists the "
                    "files; name the list's columns with columns=(image, mask[, roi]) instead"
                )
            self.names, self._files = _read_split(self.root, split, columns)
        else:
            self.names, self._files = self._match(images or "images", masks or "masks", roi)
        self.split = split
        self.stats = None
        sums = None
        for name in self.names:  # validate everything once, gathering dataset moments
            image, *_ = self._load(name)
            if normalize == "dataset" and stats is None:
                x = image.reshape(image.shape[0], -1).astype(np.float64)
                s = np.stack([x.sum(1), (x**2).sum(1), np.full(len(x), x.shape[1])])
                sums = s if sums is None else sums + s
        if normalize == "dataset":
            if stats is None:
                mean = sums[0] / sums[2]
                std = np.sqrt(np.maximum(sums[1] / sums[2] - mean**2, 0.0))
                stats = {"mean": mean, "std": std}
            self.stats = {
                k: np.atleast_1d(np.asarray(stats[k], dtype=np.float64)) for k in ("mean", "std")
            }

    def _match(
        self, images: str, masks: str, roi: str | None
    ) -> tuple[list[str], dict[str, dict[str, Path]]]:
        found = {"image": _list_folder(self.root / images, "images")}
        found["mask"] = _list_folder(self.root / masks, "masks")
        if roi is not None:
            found["roi"] = _list_folder(self.root / roi, "roi")
        stems = set(found["image"])
        problems = []
        for kind, files in found.items():
            if kind != "image" and set(files) != stems:
                missing = sorted(stems - set(files))
                extra = sorted(set(files) - stems)
                if missing:
                    problems.append(f"images without a {kind}: {missing}")
                if extra:
                    problems.append(f"{kind}s without an image: {extra}")
        if problems:
            raise ValueError(
                "unmatched file stems in " + f"{str(self.root)!r}: " + "; ".join(problems)
            )
        return sorted(stems), found

    def __repr__(self) -> str:
        how = f"split={str(self.split)!r}" if self.split is not None else "folders"
        return (
            f"VesselFolder({str(self.root)!r}, {how}, n={len(self)}, roi={'roi' in self._files}, "
            f"normalize={self.normalize!r})"
        )

    def _load(self, name: str) -> tuple[np.ndarray, ...]:
        from skimage.color import rgb2gray
        from skimage.util import img_as_float32

        path = self._files["image"][name]
        raw = _read(path)
        if raw.ndim == 3 and raw.shape[-1] == 4:
            raw = raw[..., :3]
        if raw.ndim not in (2, 3) or (raw.ndim == 3 and raw.shape[-1] != 3):
            raise ValueError(
                f"image {str(path)!r} must be grey (H, W) or RGB (H, W, 3), got {raw.shape}"
            )
        image = img_as_float32(raw) if raw.dtype.kind in "uib" else raw.astype(np.float32)
        if raw.ndim == 3 and self.as_gray:
            image = rgb2gray(image).astype(np.float32)
        image = image[None] if image.ndim == 2 else np.moveaxis(image, -1, 0)
        out = [image]
        for kind in ("mask", "roi"):
            if kind in self._files:
                other = _read_mask(self._files[kind][name], kind)
                if other.shape != image.shape[1:]:
                    raise ValueError(
                        f"size mismatch for {name!r}: image {path.name!r} is {image.shape[1:]} "
                        f"(H, W) but {kind} {self._files[kind][name].name!r} is {other.shape}"
                    )
                out.append(other)
        return tuple(out)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        image, mask, *roi = self._load(self.names[index])
        if self.normalize == "image":
            mean = image.mean(axis=(1, 2), keepdims=True)
            std = image.std(axis=(1, 2), keepdims=True)
            image = (image - mean) / np.where(std > 0, std, 1.0)
        elif self.normalize == "dataset":
            mean, std = self.stats["mean"], self.stats["std"]
            if mean.size != image.shape[0]:
                raise ValueError(f"stats hold {mean.size} channel(s), images have {image.shape[0]}")
            image = (image - mean[:, None, None]) / np.where(std > 0, std, 1.0)[:, None, None]
        item = (_as_image_tensor(image), torch.from_numpy(mask.astype(np.int64)))
        if roi:
            item = (*item, torch.from_numpy(roi[0].astype(bool)))
        if self.transform is not None:
            item = tuple(self.transform(*item))
        return item
