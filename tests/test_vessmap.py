"""VessMAP: split lists in VesselFolder, the vessmap reader, its pinned fetch and the real files.

The fixture is a VessMAP folder in the published format, made in code: the 100 published
ids with small 8-bit TIFF images, TIFF labels named ``.png``, PNG region masks and the four
csv lists with repository-root paths (``data/VessMAP/images/<id>.tiff``). Fetches are served
from 127.0.0.1 only.
"""

from __future__ import annotations

import hashlib
import importlib
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from _fetch_helpers import Server, guard_network, make_vessmap, pin_vessmap, point, real_data_dir
from PIL import Image

from cnnexplore_nb.data import FetchError, IntegrityError, VesselFolder, fetch, vessmap

fetch_module = importlib.import_module("cnnexplore_nb.data.fetch")
sources = importlib.import_module("cnnexplore_nb.data._sources")
DATASETS, IDS = fetch_module.DATASETS, sources.VESSMAP_IDS
SIZES = {"train": 40, "val": 10, "test": 50, "all": 100}
PUBLISHED = DATASETS["vessmap"]  # pinned to the published files
REAL_TESTS = {"test_real_images_read_in_their_published_formats"}
REAL = real_data_dir()
needs_real = pytest.mark.skipif(
    REAL is None,
    reason="the real VessMAP folder is not here: set DATA_DIR to a folder holding VessMAP/ "
    "(github.com/chcomin/vessel_baseline data/VessMAP) or put it in ../shared/data",
)


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    guard_network(monkeypatch)
    monkeypatch.setenv("CNNX_OFFLINE", "1")
    monkeypatch.setenv("CNNX_DATA", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    folder = tmp_path_factory.mktemp("published") / "VessMAP"
    return folder, make_vessmap(folder, IDS)


@pytest.fixture(autouse=True)
def _fixture_pins(request, monkeypatch):
    """Tests on the made-up folder pin the registry to its bytes; real-data tests keep the
    package's pins."""
    if "real_copy" not in request.fixturenames and request.function.__name__ not in REAL_TESTS:
        pin_vessmap(monkeypatch, request.getfixturevalue("published")[0])


@pytest.fixture
def served(published, tmp_path, monkeypatch):
    """The published folder served at /vessmap/ with the registry pointed at it."""
    shutil.copytree(published[0], tmp_path / "srv" / "vessmap")
    srv = Server(tmp_path / "srv")
    monkeypatch.delenv("CNNX_OFFLINE")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    point(monkeypatch, DATASETS, "vessmap", srv.url("vessmap/"))
    yield srv
    srv.close()


def test_fixture_is_in_the_published_format(published):
    folder, _ = published
    assert (folder / "annotator1/labels/5740.png").read_bytes()[:4] == b"II*\x00"  # TIFF
    assert (folder / "images/5740.tiff").read_bytes()[:4] == b"II*\x00"
    assert (folder / "mask/5740.png").read_bytes()[:4] == b"\x89PNG"
    assert (folder / "test.csv").read_text().splitlines()[1] == (
        "data/VessMAP/images/5740.tiff,data/VessMAP/annotator1/labels/5740.png,"
        "data/VessMAP/mask/5740.png"
    )


@pytest.mark.parametrize("split", list(SIZES))
def test_splits_from_a_folder_as_published(published, split):
    folder, truth = published
    ds = vessmap(split, root=folder.parent, normalize="none")
    assert len(ds) == SIZES[split] and ds.names == list(IDS[split])
    for k in (0, len(ds) - 1):
        image, mask, roi = ds[k]
        ref = truth[ds.names[k]]
        assert image.dtype == torch.float32 and tuple(image.shape) == (1, 16, 16)
        assert np.allclose(image[0].numpy(), ref["image"] / 255.0)
        assert mask.dtype == torch.int64 and np.array_equal(mask.numpy(), ref["label"] // 255)
        assert roi.dtype == torch.bool and np.array_equal(roi.numpy(), ref["mask"] > 0)


def test_root_may_be_the_folder_or_a_repository_clone(published, tmp_path):
    folder, _ = published
    assert len(vessmap("val", root=folder)) == 10
    shutil.copytree(folder, tmp_path / "clone" / "data" / "VessMAP")
    assert len(vessmap("val", root=tmp_path / "clone")) == 10
    with pytest.raises(FileNotFoundError, match=r"(?s)VessMAP not found.*annotator1/labels"):
        vessmap(root=tmp_path)
    with pytest.raises(ValueError, match="unknown split 'tset'; closest: 'test'"):
        vessmap("tset", root=folder)


def test_folder_options_pass_through(published):
    folder, _ = published
    ds = vessmap("train", root=folder, normalize="dataset")
    x, _, _ = ds[0]
    assert ds.stats["mean"].shape == (1,) and abs(float(x.mean())) < 1.0
    with pytest.raises(TypeError, match="name sub-folders"):
        vessmap("train", root=folder, images="images")


# ------------------------------------------------------------------- split lists in general
def _write(path, array, fmt):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


def test_split_list_with_folder_relative_paths_and_two_columns(tmp_path):
    rng = np.random.default_rng(0)
    for i in ("a", "b", "c"):
        _write(tmp_path / f"img/{i}.tif", rng.integers(0, 256, (8, 8), dtype=np.uint8), "PNG")
        _write(tmp_path / f"gt/{i}.png", np.eye(8, dtype=np.uint8), "TIFF")
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists/s.csv").write_text(
        "image,label\r\nimg/c.tif,gt/c.png\r\nimg/a.tif,gt/a.png\r\n"
    )
    ds = VesselFolder(tmp_path, split="lists/s.csv", normalize="none")
    assert ds.names == ["c", "a"] and len(ds[0]) == 2  # list order; no roi column
    assert np.array_equal(ds[1][1].numpy(), np.eye(8))  # TIFF content under a .png name
    assert "split='lists/s.csv'" in repr(ds)
    absolute = VesselFolder(tmp_path, split=tmp_path / "lists/s.csv", columns=["image", "label"])
    assert absolute.names == ["c", "a"]


def test_split_list_errors(tmp_path, published):
    folder, _ = published
    (tmp_path / "bad.csv").write_text("im_paths,gt_paths\nimages/1.tiff,labels/1.png\n")
    with pytest.raises(FileNotFoundError, match=r"names 2 file\(s\) not found.*images/1.tiff"):
        VesselFolder(tmp_path, split="bad.csv")
    with pytest.raises(FileNotFoundError, match="split list .*nope.csv"):
        VesselFolder(tmp_path, split="nope.csv")
    with pytest.raises(ValueError, match=r"expected 2 or 3 columns.*columns=\['x', 'y'\]"):
        VesselFolder(folder, split="train.csv", columns=("x", "y"))
    dup = folder.parent / "dup.csv"
    dup.write_text("i,m\nVessMAP/images/5740.tiff,VessMAP/mask/5740.png\n" * 2)
    with pytest.raises(ValueError, match="names image '5740' twice"):
        VesselFolder(folder, split=dup)


# ------------------------------------------------------------- fetch (made-up folder)
def test_fetch_records_a_manifest_and_verifies_it(served, tmp_path, published):
    _, truth = published
    ds = vessmap("test", normalize="none", progress=False)  # root=None: fetched
    home = tmp_path / "cache"
    assert ds.root == home / "VessMAP" and len(ds) == 50 and served.total == 304
    assert sorted(p.name for p in home.iterdir()) == ["VessMAP"]
    assert np.array_equal(ds[0][1].numpy(), truth["5740"]["label"] // 255)
    lines = (home / "VessMAP/SHA256SUMS").read_text().splitlines()
    assert len(lines) == 304
    digest, rel = lines[0].split("  ")
    assert digest == hashlib.sha256((home / "VessMAP" / rel).read_bytes()).hexdigest()
    assert len(vessmap("all", progress=False)) == 100 and served.total == 304  # cache hit
    label = home / "VessMAP/annotator1/labels/9000.png"
    label.write_bytes(label.read_bytes()[:-1] + b"\x01")
    with pytest.raises(IntegrityError, match=r"1 file\(s\).*annotator1/labels/9000.png: expected"):
        vessmap("test")


def test_pinned_hashes_reject_a_different_download(served, tmp_path, monkeypatch):
    entry = DATASETS["vessmap"]
    monkeypatch.setitem(DATASETS, "vessmap", entry.with_hashes({"images/5740.tiff": "0" * 64}))
    with pytest.raises(IntegrityError, match="corrupt and was deleted, not used"):
        fetch("vessmap", progress=False)
    assert list((tmp_path / "cache").iterdir()) == []  # nothing published, no staging left
    monkeypatch.setitem(DATASETS, "vessmap", entry)
    trusted = fetch("vessmap", root=tmp_path / "first", progress=False) / "SHA256SUMS"
    monkeypatch.setitem(DATASETS, "vessmap", entry.with_hashes(trusted))
    assert sum(v is not None for v in DATASETS["vessmap"].files.values()) == 304
    assert len(vessmap("val", progress=False)) == 10
    with pytest.raises(KeyError, match="has no files"):
        entry.with_hashes({"images/nope.tiff": "0" * 64})
    with pytest.raises(ValueError, match="expected sha256 hex digests"):
        entry.with_hashes({"images/5740.tiff": "md5:0"})


def test_split_lists_are_checked_by_content(served, tmp_path, monkeypatch):
    entry = DATASETS["vessmap"]  # unpinned csv: its content is still checked
    monkeypatch.setitem(
        DATASETS, "vessmap", replace(entry, files={**entry.files, "train.csv": None})
    )
    train = served.root / "vessmap/train.csv"
    train.write_text("\n".join(train.read_text().splitlines()[:-1]) + "\n")  # one row fewer
    with pytest.raises(IntegrityError, match=r"train.csv: expected the 40 published ids.*8686"):
        fetch("vessmap", progress=False)
    assert list((tmp_path / "cache").iterdir()) == []


def test_offline_error_says_where_to_put_the_folder(tmp_path):
    with pytest.raises(FetchError) as err:
        vessmap("train")
    msg = str(err.value)
    assert "CNNX_OFFLINE=1" in msg and sources.VESSMAP_COMMIT in msg
    assert str(tmp_path / "cache" / "VessMAP" / "train.csv") in msg
    assert not (tmp_path / "cache").exists()


# ------------------------------------------------------------------ the published files
def test_every_published_file_is_pinned_by_the_package():
    files = PUBLISHED.files
    assert len(files) == 304 and all(str(v).startswith("sha256:") for v in files.values())
    assert {k for k in files if k.endswith(".csv")} == set(sources.VESSMAP_SPLITS.values())
    shared = REAL and REAL.parent / "data" / "VessMAP.sha256"
    if shared and shared.is_file():  # the same digests as the maintainers' manifest
        assert {k: f"sha256:{v}" for k, v in sources.read_sha256sums(shared).items()} == files


@needs_real
def test_real_images_read_in_their_published_formats():
    import tifffile

    ds = vessmap("train", root=REAL, normalize="none")
    assert len(ds) == 40 and ds.names == list(IDS["train"])
    for k in (0, 17, 39):
        image, mask, roi = ds[k]
        name = ds.names[k]
        raw = tifffile.imread(REAL / "VessMAP" / "images" / f"{name}.tiff")
        label = tifffile.imread(REAL / "VessMAP" / "annotator1" / "labels" / f"{name}.png")
        region = np.asarray(Image.open(REAL / "VessMAP" / "mask" / f"{name}.png"))
        assert tuple(image.shape) == (1, 256, 256) and raw.shape == (256, 256)
        assert np.allclose(image[0].numpy() * np.iinfo(raw.dtype).max, raw, atol=1e-3)
        assert np.array_equal(mask.numpy(), (label > 0).astype(np.int64))
        assert np.array_equal(roi.numpy(), region > 0)
        assert 0.02 < float(mask.float().mean()) < 0.6  # vessels: a minority of pixels
    assert len(vessmap("test", root=REAL)) == 50 and len(vessmap("val", root=REAL)) == 10


@pytest.fixture
def real_copy(tmp_path):
    if REAL is None:
        pytest.skip("the real VessMAP folder is not here (DATA_DIR or ../shared/data)")
    shutil.copytree(REAL / "VessMAP", tmp_path / "copy" / "VessMAP")
    return tmp_path / "copy"


@pytest.mark.parametrize("rel", ["images/8686.tiff", "annotator1/labels/5740.png", "val.csv"])
def test_a_changed_byte_is_refused_naming_the_file(real_copy, rel):
    path = real_copy / "VessMAP" / rel
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    pattern = rf"1 file\(s\) of .*VessMAP' differ.*: {rel} \(first: {rel}: expected sha256:"
    with pytest.raises(IntegrityError, match=pattern):
        vessmap("train", root=real_copy)
    with pytest.raises(IntegrityError, match=pattern):
        fetch("vessmap", root=real_copy, progress=False)
    if rel.endswith(".tiff"):  # your own data in VessMAP's layout: read when asked
        assert len(vessmap("train", root=real_copy, verify=False)) == 40


def test_a_removed_file_is_refused_naming_it(real_copy):
    (real_copy / "VessMAP" / "mask" / "12335.png").unlink()
    with pytest.raises(IntegrityError, match=r"mask/12335.png: expected sha256:\w+, got missing"):
        vessmap("test", root=real_copy / "VessMAP")
    with pytest.raises(IntegrityError, match=r"mask/12335.png"):
        fetch_module.verify("vessmap", real_copy / "VessMAP")
    with pytest.raises(ValueError, match="verify checks 'files' datasets; 'cifar10' is one"):
        fetch_module.verify("cifar10", real_copy)


def test_the_real_folder_is_verified_and_used_in_place(real_copy):
    assert fetch("vessmap", root=real_copy, progress=False) == real_copy / "VessMAP"
    assert fetch_module.verify("vessmap", real_copy / "VessMAP") == real_copy / "VessMAP"


def test_the_vessel_study_checks_the_folder_once_and_refuses_a_changed_file(real_copy, monkeypatch):
    """``vessel_data`` at the cpu scale reads four splits from one folder: the pinned hashes
    are checked once (not per split), and a changed file is refused there too."""
    from cnnexplore_nb.studies.vessels import vessel_data, vessel_settings

    calls = []
    real_verify = fetch_module.verify
    monkeypatch.setattr(fetch_module, "verify", lambda *a: calls.append(a) or real_verify(*a))
    data = vessel_data(vessel_settings("cpu"), real_copy)
    assert len(data["val"]) == 10 and len(data["test_all"]) == 50 and len(calls) == 1
    path = real_copy / "VessMAP" / "images" / "8686.tiff"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match=r"images/8686.tiff"):
        vessel_data(vessel_settings("cpu"), real_copy)
