"""The registry of the documents' real data: where each dataset or file comes from and its pins.

A leaf: imports nothing from the package. :mod:`cnnexplore_nb.data.fetch` downloads what
these entries describe.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

__all__ = [
    "DATASETS",
    "VESSMAP_COLUMNS",
    "VESSMAP_COMMIT",
    "VESSMAP_IDS",
    "VESSMAP_SHA256_RESOURCE",
    "VESSMAP_SPLITS",
    "IntegrityError",
    "Remote",
    "check_vessmap_lists",
    "parse_sha256sums",
    "read_sha256sums",
]

Kind = Literal["tar.gz", "zip", "file", "files"]


class IntegrityError(ValueError):
    """A file's content differs from its pin: a hash, a recorded manifest or a file list."""


@dataclass(frozen=True)
class Remote:
    """One registered dataset or file.

    Parameters
    ----------
    name : str
        Registry key (``fetch(name)``).
    url : str
        The archive or file URL; for ``kind="files"`` the base URL the relative paths of
        ``files`` are appended to.
    kind : {"tar.gz", "zip", "file", "files"}
        An archive extracted once, a single file, or a folder of files fetched one by one.
    target : str
        What appears in the cache: the extracted top folder (archives, ``files``) or the
        file name (``file``).
    known_hash : str or None
        ``"md5:<hex>"`` or ``"sha256:<hex>"`` of the archive or file (``None`` for
        ``kind="files"``, whose files are pinned one by one in ``files``).
    files : mapping of str to (str or None)
        ``kind="files"``: relative path -> ``"sha256:<hex>"``, or ``None`` for a file whose
        hash is recorded at first download (trust on first use). VessMAP pins all of its
        files (from the resource :data:`VESSMAP_SHA256_RESOURCE`).
    size : int
        Approximate download size in bytes.
    licence, citation, description : str
        What a user must know to use and cite the data.
    check : callable, optional
        ``check(folder)`` run on a freshly downloaded ``files`` folder before it is published;
        raises :class:`IntegrityError` on unexpected content.
    """

    name: str
    url: str
    kind: Kind
    target: str
    known_hash: str | None = None
    files: Mapping[str, str | None] = field(default_factory=dict)
    size: int = 0
    licence: str = ""
    citation: str = ""
    description: str = ""
    check: Callable[[Path], None] | None = field(default=None, compare=False, repr=False)

    @property
    def filename(self) -> str:
        """The file downloaded into the cache (archives: the archive; ``file``: ``target``)."""
        if self.kind == "file":
            return self.target
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    def with_hashes(self, hashes: Mapping[str, str] | str | os.PathLike) -> Remote:
        """A copy whose ``files`` are pinned by ``hashes`` (a mapping, or a ``sha256sum`` file).

        Examples
        --------
        Pin a re-annotated VessMAP folder of your own to its manifest (the published files
        are pinned already)::

            DATASETS["vessmap"] = DATASETS["vessmap"].with_hashes("SHA256SUMS")
        """
        if self.kind != "files":
            raise ValueError(f"{self.name!r} is one {self.kind} pinned by known_hash, not files")
        if not isinstance(hashes, Mapping):
            hashes = read_sha256sums(hashes)
        unknown = sorted(set(hashes) - set(self.files))
        if unknown:
            raise KeyError(f"{self.name!r} has no files {unknown[:5]} (it has {len(self.files)})")
        pinned = {k: str(v).lower().removeprefix("sha256:") for k, v in hashes.items()}
        bad = {k: v for k, v in pinned.items() if len(v) != 64 or set(v) - set("0123456789abcdef")}
        if bad:
            raise ValueError(f"expected sha256 hex digests (64 characters), got {bad}")
        return replace(self, files={**self.files, **{k: f"sha256:{v}" for k, v in pinned.items()}})


def read_sha256sums(path: str | os.PathLike) -> dict[str, str]:
    """Parse a ``sha256sum``-format file (``<64 hex>  <relative path>`` per line)."""
    return parse_sha256sums(Path(path).read_text(), str(path))


def parse_sha256sums(text: str, source: str = "<text>") -> dict[str, str]:
    """``{relative path: hex digest}`` from ``sha256sum``-format text (``source`` names it
    in errors)."""
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, _, rel = line.partition("  ")
        if len(digest) != 64 or not rel or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"{source!r} line {n}: expected '<64 hex>  <path>', got {line!r}")
        out[rel.lstrip("*")] = digest
    return out


# ----------------------------------------------------------------------------- VessMAP
VESSMAP_COMMIT = "cf18020a2860f70aa442a9d80a54f345516dc692"
_VESSMAP_URL = (
    f"https://raw.githubusercontent.com/chcomin/vessel_baseline/{VESSMAP_COMMIT}/data/VessMAP/"
)
#: split name -> csv file of the published folder
VESSMAP_SPLITS = {"train": "train.csv", "val": "val.csv", "test": "test.csv", "all": "test_all.csv"}
# Image ids of each split, in the order of the csv files at VESSMAP_COMMIT; "all" is
# test_all.csv (the 100 ids sorted as strings).
_STEMS = {
    "train": "17035 5801 12943 10084 7865 6384 16295 15577 8284 4938 2413 13200 13114 15160 "
    "7392 11411 18035 16689 14778 11558 9284 8065 7783 17852 6524 17702 1643 12877 3406 5472 "
    "2071 14787 8196 15375 2050 482 6672 9710 11111 8686",
    "val": "2546 11161 3882 8990 14440 13128 356 8493 17584 14121",
    "test": "5740 15821 14690 12335 9000 10571 14225 7083 12455 525 9523 6887 8256 6818 17630 "
    "2849 1816 8429 2958 6656 7344 9860 6581 16707 8506 5359 4909 8353 12618 17880 7413 2287 "
    "9452 2643 4413 12960 458 11828 4739 9593 4404 12749 1585 18180 12005 17425 16766 13528 "
    "7577 11098",
}
VESSMAP_IDS: dict[str, tuple[str, ...]] = {k: tuple(v.split()) for k, v in _STEMS.items()}
VESSMAP_IDS["all"] = tuple(sorted(sum(VESSMAP_IDS.values(), ())))
VESSMAP_COLUMNS = ("im_paths", "gt_paths", "mask_paths")
#: The resource holding the sha256 of every published VessMAP file at VESSMAP_COMMIT
#: (``sha256sum`` format, paths relative to ``VessMAP/``), computed from the git objects of
#: chcomin/vessel_baseline at that commit.
VESSMAP_SHA256_RESOURCE = "VessMAP.sha256"


def _vessmap_sha256() -> dict[str, str]:
    from importlib.resources import files

    text = files(__package__).joinpath(VESSMAP_SHA256_RESOURCE).read_text(encoding="utf-8")
    return parse_sha256sums(text, VESSMAP_SHA256_RESOURCE)


def _vessmap_files(ids: Sequence[str]) -> dict[str, str | None]:
    files: dict[str, str | None] = {name: None for name in VESSMAP_SPLITS.values()}
    for i in ids:
        for rel in (f"images/{i}.tiff", f"annotator1/labels/{i}.png", f"mask/{i}.png"):
            files[rel] = None
    pins = _vessmap_sha256()
    if set(pins) != set(files):
        odd = sorted(set(pins) ^ set(files))[:5]
        raise RuntimeError(
            f"{VESSMAP_SHA256_RESOURCE} must pin exactly the {len(files)} published files, "
            f"got {len(pins)} (differing: {odd}); the package is damaged: reinstall it"
        )
    return {k: f"sha256:{pins[k]}" for k in files}


def check_vessmap_lists(folder: Path) -> None:
    """Check that the split csv files list exactly the published ids, in order.

    Their bytes are pinned by hash too; this checks their *content* (columns ``im_paths,
    gt_paths, mask_paths`` and, per split, the image ids of :data:`VESSMAP_IDS` with the
    label and region mask of the same id), so an entry re-pinned to another manifest still
    holds the published splits.
    """
    for split, name in VESSMAP_SPLITS.items():
        with open(folder / name, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
        header = tuple(c.strip() for c in rows[0]) if rows else ()
        if header != VESSMAP_COLUMNS:
            raise IntegrityError(f"{name}: expected columns {VESSMAP_COLUMNS}, got {header}")
        got = []
        for row in rows[1:]:
            ids = {Path(c.strip()).stem for c in row}
            if len(row) != 3 or len(ids) != 1:
                raise IntegrityError(f"{name}: row {row} does not name one id three times")
            got.append(ids.pop())
        if tuple(got) != VESSMAP_IDS[split]:
            diff = sorted(set(got) ^ set(VESSMAP_IDS[split]))[:6]
            raise IntegrityError(
                f"{name}: expected the {len(VESSMAP_IDS[split])} published ids of split "
                f"{split!r}, got {len(got)} (differing ids: {diff or 'none; order differs'})"
            )


# ---------------------------------------------------------------------------- registry
_CIFAR_CITE = "A. Krizhevsky, Learning Multiple Layers of Features from Tiny Images, tech. report, U. Toronto, 2009."
_CIFAR_LICENCE = "no licence stated by the publisher; cite the technical report"

DATASETS: dict[str, Remote] = {
    "cifar10": Remote(
        "cifar10", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "tar.gz",
        "cifar-10-batches-py", "md5:c58f30108f718f92721af3b95e74349a", size=170_498_071,
        licence=_CIFAR_LICENCE, citation=_CIFAR_CITE,
        description="CIFAR-10, python version: 50000 + 10000 colour images 32x32, 10 classes",
    ),
    "cifar100": Remote(
        "cifar100", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "tar.gz",
        "cifar-100-python", "md5:eb9058c3a382ffc7106e4002c42a8d85", size=169_001_437,
        licence=_CIFAR_LICENCE, citation=_CIFAR_CITE,
        description="CIFAR-100, python version: 50000 + 10000 images 32x32, 100 classes",
    ),
    "stl10": Remote(
        "stl10", "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz", "tar.gz",
        "stl10_binary", "md5:91f7769df0f17e558f3565bffb0c7dfb", size=2_640_397_119,
        licence="no licence stated; images from ImageNet (its terms apply); cite the paper",
        citation="A. Coates, H. Lee, A. Y. Ng, An Analysis of Single-Layer Networks in "
        "Unsupervised Feature Learning, AISTATS 2011.",
        description="STL-10 binary: 5000 + 8000 labelled images 96x96 (+100000 unlabelled)",
    ),
    "tiny_imagenet": Remote(
        "tiny_imagenet", "http://cs231n.stanford.edu/tiny-imagenet-200.zip", "zip",
        "tiny-imagenet-200", "md5:90528d7ca1a48142e341f4ef8d21d0de", size=248_100_043,
        licence="images from ImageNet: non-commercial research and education (ImageNet terms)",
        citation="Y. Le, X. Yang, Tiny ImageNet Visual Recognition Challenge, CS231N, 2015.",
        description="Tiny ImageNet 200: 100000 train + 10000 val JPEGs 64x64, 200 classes",
    ),
    "l2tww_source": Remote(
        "l2tww_source",
        "https://github.com/alinlab/L2T-ww/raw/master/logs/tinyimagenet-200-resnet32/0/model_best.pth.tar",
        "file", "l2tww_tinyimagenet_resnet32.pth.tar",
        "sha256:049f81f8bea8504e90818d6c614f15c485ac2d891348330b433110e161f66d68",
        size=1_961_387, licence="MIT (github.com/alinlab/L2T-ww)",
        citation="Y. Jang, H. Lee, S. J. Hwang, J. Shin, Learning What and Where to Transfer, "
        "ICML 2019.",
        description="L2T-ww reference source network: ResNet-32 trained on Tiny ImageNet 32x32",
    ),
    "vessmap": Remote(
        "vessmap", _VESSMAP_URL, "files", "VessMAP", files=_vessmap_files(VESSMAP_IDS["all"]),
        size=14_000_000, check=check_vessmap_lists,
        licence="no licence file in chcomin/vessel_baseline; cite the paper",
        citation="M. V. da Silva, N. de Carvalho Santos, J. Ouellette, B. Lacoste, C. H. Comin, "
        "A new dataset for measuring the performance of blood vessel segmentation methods "
        "under distribution shifts, PLOS ONE 20(5): e0322048, 2025.",
        description="VessMAP: 100 fluorescence microscopy images 256x256 of mouse brain "
        "vessels, expert labels, region masks, train/val/test splits 40/10/50",
    ),
}  # fmt: skip
