"""Bad inputs across the public API, one row each: the error type, and a message that names
the problem (what was expected and what was given)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import torch
from _fetch_helpers import can_drop_privileges, md5, run_unprivileged, shared_tmp, tar_with

import cnnexplore_nb as cx
from cnnexplore_nb import data, experiments, training, transfer
from cnnexplore_nb.data.fetch import DATASETS, ArchiveError
from cnnexplore_nb.io import CheckpointError, load_checkpoint, save_checkpoint
from cnnexplore_nb.similarity import EmptyRegionError, TablesFormatError
from cnnexplore_nb.similarity.moments import NonFiniteMapsError
from cnnexplore_nb.training import metrics


class Case(NamedTuple):
    id: str
    call: Callable[[Path], Any]  # gets a fresh tmp_path
    error: type[BaseException]
    match: str  # regex searched in the message


# ------------------------------------------------------------------ small inputs made in code
def _cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return cx.create_model("cnn1", width=4)


def _grey(n: int = 2, size: int = 16) -> np.ndarray:
    return np.random.default_rng(0).random((n, 1, size, size), dtype=np.float32)


X = np.random.default_rng(0).normal(size=(2, 3, 4, 4))
IMGS, MASKS = data.synthetic_vessels(3, 16, rng=0)
SEG = (IMGS, MASKS)


def _tables() -> cx.CorrelationTables:
    return cx.correlation_tables({"l1": X, "l2": X[:, :2] * 2 + 1}, progress=False)


def _saved(tmp: Path, edit: Callable[[Path], None] | None = None, manifest: bool = True) -> Path:
    """A saved set of tables, edited by ``edit`` (and without its manifest if asked)."""
    cx.save_tables(_tables(), tmp / "set")
    if not manifest:
        (tmp / "set" / "manifest.json").unlink()
    if edit is not None:
        edit(tmp / "set")
    return tmp / "set"


def _load_old(tmp: Path, edit: Callable[[Path], None]) -> Any:
    """load_tables on a set saved without a manifest (by an older version), then edited."""
    directory = _saved(tmp, edit, manifest=False)
    with pytest.warns(UserWarning, match="has no manifest.json"):
        return cx.load_tables(directory)


def _cut(name: str, keep: float) -> Callable[[Path], None]:
    def edit(d: Path) -> None:
        raw = (d / name).read_bytes()
        (d / name).write_bytes(raw[: int(len(raw) * keep)])

    return edit


def _lines(name: str, keep: int) -> Callable[[Path], None]:
    def edit(d: Path) -> None:
        lines = (d / name).read_text().splitlines(keepends=True)
        (d / name).write_text("".join(lines[:keep]))

    return edit


def _rename_column(d: Path) -> None:
    text = (d / "pairs.csv").read_text()
    (d / "pairs.csv").write_text(text.replace("signed_correlation", "signed_r", 1))


def _metadata_format(d: Path) -> None:
    meta = json.loads((d / "metadata.json").read_text())
    (d / "metadata.json").write_text(json.dumps({**meta, "format": "xlsx"}))


def _truncated_checkpoint(tmp: Path) -> Path:
    save_checkpoint({"w": torch.ones(200, 200)}, tmp / "ckpt.pt")
    raw = (tmp / "ckpt.pt").read_bytes()
    (tmp / "ckpt.pt").write_bytes(raw[: len(raw) // 2])
    return tmp / "ckpt.pt"


def _unsafe_checkpoint(tmp: Path) -> Path:
    torch.save({"state_dict": {}, "extra": pd.DataFrame({"a": [1]})}, tmp / "unsafe.pt")
    return tmp / "unsafe.pt"


def _vessel_folder(tmp: Path) -> Path:
    from PIL import Image

    for sub in ("images", "masks"):
        (tmp / "vf" / sub).mkdir(parents=True)
    for stem in ("a", "b"):
        Image.fromarray((IMGS[0] * 255).astype(np.uint8)).save(tmp / "vf/images" / f"{stem}.png")
    Image.fromarray(MASKS[0].astype(np.uint8) * 255).save(tmp / "vf/masks/a.png")
    return tmp / "vf"


def _digits() -> data.ImageClassification:
    return data.digits("train", classes=[0, 1], size=8)


def _transfer_data(channels: int = 3) -> dict[str, list]:
    item = [(torch.zeros(channels, 32, 32), 0), (torch.zeros(channels, 32, 32), 1)]
    return {"train": item, "val": item, "test": item}


def _run(method: str = "scratch", **kw: Any) -> dict:
    args = {"source": None, "target": "vgg9_bn", "data": _transfer_data(), "epochs": 1,
            "seed": 0, "progress": False, "target_kwargs": {"width": 0.125}}  # fmt: skip
    return transfer.run(method, **{**args, **kw})


def _nan_split(split: str) -> dict[str, list]:
    """The tiny transfer data with one NaN pixel in item 1 of ``split``."""
    d = _transfer_data()
    bad = torch.zeros(3, 32, 32)
    bad[0, 5, 5] = float("nan")
    d[split] = [d[split][0], (bad, 1)]
    return d


def _run_many(**kw: Any) -> list:
    args = {"source": None, "target": "vgg9_bn", "data": _transfer_data(), "epochs": 1,
            "seeds": [0, 1], "progress": False, "target_kwargs": {"width": 0.125}}  # fmt: skip
    return transfer.run_many(kw.pop("method", "scratch"), **{**args, **kw})


def _source() -> torch.nn.Module:
    torch.manual_seed(0)
    return cx.create_model("resnet32", width=0.25, num_classes=2)


def _widgets():
    from cnnexplore_nb import widgets  # ipywidgets / holoviews: only for these cases

    return widgets


def _set(obj: Any, attr: str, value: Any) -> None:
    setattr(obj, attr, value)


MAPS = {"l1": X, "l2": np.random.default_rng(1).normal(size=(2, 5, 4, 4))}
ONE = torch.zeros(1, 1, 9, 9)

# ------------------------------------------------------------------ the table
CASES = [
    # extraction and inspection
    Case("extract: wrong channel count", lambda p: cx.extract_activations(
        _cnn(), np.zeros((2, 3, 16, 16), np.float32), progress=False), ValueError,
        r"images have 3 channel\(s\) but the model's first convolution 'conv_module1\.conv' "
        r"expects 1 \(shape \(N, 1, H, W\)\)"),
    Case("extract: images of different sizes", lambda p: cx.extract_activations(
        _cnn(), [_grey(1)[0], _grey(1, 8)[0]], progress=False), ValueError,
        r"images\[1\] has shape \(1, 8, 8\) but images\[0\] has shape \(1, 16, 16\)"),
    Case("extract: unknown layer", lambda p: cx.extract_activations(
        _cnn(), _grey(), "conv_modul1", progress=False), ValueError,
        r"unknown layer 'conv_modul1'; closest: 'conv_module1'"),
    Case("extract: batch_size 0", lambda p: cx.extract_activations(
        _cnn(), _grey(), batch_size=0, progress=False), ValueError,
        r"batch_size must be an integer >= 1, got 0"),
    Case("extract: clone 'yes'", lambda p: cx.extract_activations(
        _cnn(), _grey(), clone="yes", progress=False), ValueError,
        r"clone must be True, False or 'auto', got 'yes'"),
    Case("extract: dtype as a string", lambda p: cx.extract_activations(
        _cnn(), _grey(), dtype="float16", progress=False), TypeError,
        r"dtype must be a torch\.dtype or None, got 'float16'"),
    Case("extract: model given by name", lambda p: cx.extract_activations(
        "cnn1", _grey(), progress=False), TypeError, r"model must be a torch\.nn\.Module, got str"),
    Case("extract: 5-D images", lambda p: cx.extract_activations(
        _cnn(), np.zeros((1, 1, 1, 4, 4)), progress=False), ValueError,
        r"images must have shape \(N, C, H, W\) or \(C, H, W\), got shape \(1, 1, 1, 4, 4\)"),
    Case("list_layers: example with 3 channels", lambda p: cx.list_layers(
        _cnn(), torch.zeros(1, 3, 8, 8)), ValueError, r"example have 3 channel\(s\) .* expects 1"),
    Case("kernels: a BatchNorm layer", lambda p: cx.kernels(_cnn(), "conv_module1.bn"),
         ValueError, r"layer 'conv_module1\.bn' \(BatchNorm2d\) contains no convolution"),
    Case("resolve_layers: unknown path", lambda p: cx.resolve_layers(_cnn(), "conv_module9"),
         ValueError, r"unknown layer 'conv_module9'; closest: 'conv_module1'.*Expected one of"),
    Case("effective_receptive_field: n=0", lambda p: cx.effective_receptive_field(
        _cnn(), ONE, n=0), ValueError, r"n must be an integer >= 1, got 0"),
    Case("effective_receptive_field: inputs 'foo'", lambda p: cx.effective_receptive_field(
        _cnn(), ONE, inputs="foo"), ValueError,
        r"unknown inputs 'foo'\. Expected one of: random, given"),
    Case("receptive_fields: 2-channel example", lambda p: cx.receptive_fields(
        _cnn(), torch.zeros(1, 2, 9, 9)), ValueError, r"example have 2 channel\(s\).*expects 1"),
    Case("ActivationRecorder: unknown layer", lambda p: cx.ActivationRecorder(_cnn(), ["nope"]),
         ValueError, r"unknown layer 'nope'\. Expected one of: conv_module1"),
    Case("create_model: misspelt keyword", lambda p: cx.create_model("cnn6", widht=8),
         TypeError, r"unknown keyword argument of model 'cnn6': 'widht'; closest: 'width'"),
    Case("create_model: name in capitals", lambda p: cx.create_model("CNN6"), ValueError,
         r"unknown model 'CNN6'; closest: 'cnn6'.*Expected one of: cnn1, cnn10, cnn6"),
    Case("create_model: negative width", lambda p: cx.create_model("cnn6", width=-1),
         ValueError, r"width must be an integer >= 1, got -1"),
    Case("feature_layers: a plain module", lambda p: cx.feature_layers(torch.nn.Conv2d(1, 1, 3)),
         TypeError, r"Conv2d has no feature_info; pass layer paths explicitly"),
    # similarity
    Case("similarity_matrix: unknown measure", lambda p: cx.similarity_matrix(
        X, measure="spearman"), ValueError, r"unknown measure 'spearman'; closest: 'pearson'"),
    Case("similarity_matrix: reduce 'mean'", lambda p: cx.similarity_matrix(X, reduce="mean"),
         ValueError, r"unknown reduce 'mean'\. Expected one of: pooled, per_image"),
    Case("similarity_matrix: mask on another grid", lambda p: cx.similarity_matrix(
        X, mask=np.ones((3, 3), bool)), ValueError,
        r"mask has H x W \(3, 3\) but the maps are compared on \(4, 4\)"),
    Case("similarity_matrix: empty mask", lambda p: cx.similarity_matrix(
        X, mask=np.zeros((4, 4), bool)), EmptyRegionError, r"mask selects no pixel of the 4 x 4"),
    Case("similarity_matrix: crop -1", lambda p: cx.similarity_matrix(X, crop=-1), TypeError,
         r"crop must be \(top, left, height, width\) ints or \(rows, cols\) slices, got -1"),
    Case("similarity_matrix: NaN maps", lambda p: cx.similarity_matrix(
        np.where(X > 1.5, np.nan, X)), NonFiniteMapsError,
        r"a must be finite, got NaN/Inf in channel"),
    Case("similarity_matrix: a string", lambda p: cx.similarity_matrix("maps"), TypeError,
         r"a must be a torch\.Tensor, a numpy array or a list of images, got str"),
    Case("layer_cka: features 'max'", lambda p: cx.layer_cka(X, X, features="max"), ValueError,
         r"unknown features 'max'; closest: 'mean'"),
    Case("layer_cka: one image as examples", lambda p: cx.layer_cka(X[:1], examples="images"),
         ValueError, r"needs at least 2 examples per batch, got a batch of 1"),
    Case("correlation_tables: threshold 2", lambda p: cx.correlation_tables(
        {"l": X}, threshold=2, progress=False), ValueError,
        r"threshold must be in \[0\.0, 1\.0\], got 2"),
    Case("correlation_tables: names 'AB'", lambda p: cx.correlation_tables(
        {"l": X}, names="AB", progress=False), ValueError,
        r"names must be two non-empty strings, got 'AB'"),
    Case("Moments: chunk_pixels 0", lambda p: cx.Moments(chunk_pixels=0), ValueError,
         r"chunk_pixels must be an integer >= 1, got 0"),
    Case("Moments: results before data", lambda p: cx.Moments().pearson(), ValueError,
         r"no data: call update\(\) with at least one pixel first, got n=0"),
    Case("Moments: other channel count", lambda p: cx.Moments().update(X).update(X[:, :2]),
         ValueError, r"expected \(K_a, K_b\) = \(3, 3\) maps as before, got \(2, 2\)"),
    # tables I/O
    Case("save_tables: not tables", lambda p: cx.save_tables({"pairs": 1}, p / "t"), TypeError,
         r"tables must be a CorrelationTables, got dict"),
    Case("save_tables: format 'xlsx'", lambda p: cx.save_tables(_tables(), p / "t", fmt="xlsx"),
         ValueError, r"unknown format 'xlsx'\. Expected one of: csv, json, parquet"),
    Case("load_tables: empty folder", lambda p: cx.load_tables(p), FileNotFoundError,
         r"no saved correlation tables in .*: metadata\.json is missing"),
    Case("load_tables: pairs.csv cut mid-line", lambda p: cx.load_tables(  # 3 + 2 maps: 25
        _saved(p, _cut("pairs.csv", 0.6))), TablesFormatError,
        r"pairs\.csv' does not match manifest\.json: expected 25 rows, found \d+"),
    Case("load_tables: stats.csv, 1 of 4 rows, no manifest", lambda p: _load_old(
        p, _lines("stats.csv", 2)), TablesFormatError,
        r"stats\.csv' has 1 row\(s\), expected 4 \(one per layer pair of 2 x 2 layers\)"),
    Case("load_tables: stats.csv cut mid-row, no manifest", lambda p: _load_old(
        p, _cut("stats.csv", 0.5)), TablesFormatError,
        r"stats\.csv': column '.+' is empty in row\(s\) \[\d\] \(truncated or edited\)"),
    Case("load_tables: truncated metadata.json", lambda p: _load_old(
        p, _cut("metadata.json", 0.5)), TablesFormatError,
        r"metadata '.*metadata\.json' is not valid JSON \(truncated or corrupt"),
    Case("load_tables: truncated manifest.json", lambda p: cx.load_tables(
        _saved(p, _cut("manifest.json", 0.5))), TablesFormatError,
        r"manifest '.*manifest\.json' is not valid JSON"),
    Case("load_tables: a file of the set deleted", lambda p: cx.load_tables(
        _saved(p, lambda d: (d / "min.csv").unlink())), TablesFormatError,
        r"min\.csv' is missing \(listed in manifest\.json\)"),
    Case("load_tables: renamed column", lambda p: _load_old(p, _rename_column),
         TablesFormatError,
        r"pairs\.csv' lacks the column\(s\) \['signed_correlation'\]"),
    Case("load_tables: unknown format in metadata", lambda p: _load_old(p, _metadata_format),
         ValueError,
        r"unknown format 'xlsx'\. Expected one of: csv, json, parquet"),
    # checkpoints
    Case("load_checkpoint: truncated file", lambda p: load_checkpoint(_truncated_checkpoint(p)),
         CheckpointError, r"cannot read checkpoint '.*ckpt\.pt': it is truncated"),
    Case("load_checkpoint: unsafe pickle", lambda p: load_checkpoint(_unsafe_checkpoint(p)),
         CheckpointError, r"refusing to load '.*unsafe\.pt'.*unpickling them could run code"),
    Case("load_checkpoint: no such file", lambda p: load_checkpoint(p / "none.pt"),
         FileNotFoundError, r"checkpoint '.*none\.pt' does not exist"),
    # data readers
    Case("synthetic_vessels: n=0", lambda p: data.synthetic_vessels(0, 16), ValueError,
         r"n must be an integer >= 1, got 0"),
    Case("synthetic_vessels: vessel_fraction 2", lambda p: data.synthetic_vessels(
        1, 16, vessel_fraction=2), ValueError, r"vessel_fraction must be in \[0\.0, 0\.6\], got 2"),
    Case("VesselArrays: fewer masks than images", lambda p: data.VesselArrays(IMGS, MASKS[:2]),
         ValueError, r"masks must have shape \(N, H, W\) = \(3, 16, 16\) to match images .* "
         r"got \(2, 16, 16\)"),
    Case("VesselArrays: masks valued 0/3", lambda p: data.VesselArrays(IMGS, MASKS * 3),
         ValueError, r"masks is not binary: expected values \{0, 1\} or \{0, 255\}.*found .*0, 3"),
    Case("VesselFolder: missing folder", lambda p: data.VesselFolder(p / "nope"),
         FileNotFoundError, r"root folder '.*nope' does not exist"),
    Case("VesselFolder: image without a mask", lambda p: data.VesselFolder(_vessel_folder(p)),
         ValueError, r"unmatched file stems in '.*vf': images without a mask: \['b'\]"),
    Case("normalize_intensity: mode 'global'", lambda p: data.normalize_intensity(
        IMGS, mode="global"), ValueError, r"unknown mode 'global'\. Expected one of: image, "),
    Case("train_val_split: val_fraction 1.5", lambda p: data.train_val_split(
        10, val_fraction=1.5), ValueError, r"val_fraction must be in \[0\.0, 1\.0\], got 1\.5"),
    Case("digits: split 'val'", lambda p: data.digits("val"), ValueError,
         r"unknown split 'val'.*Expected one of: all, train, test"),
    Case("digits: class 11", lambda p: data.digits(classes=[11]), ValueError,
         r"classes \[11\] out of range 0\.\.9"),
    Case("ImageClassification: float images", lambda p: data.ImageClassification(
        np.zeros((2, 1, 4, 4), np.float32), [0, 1]), ValueError,
        r"images must be uint8 of shape \(N, C, H, W\), got torch\.float32 \(2, 1, 4, 4\)"),
    Case("per_class_subset: more than a class holds", lambda p: data.per_class_subset(
        _digits(), 10**6, rng=0), ValueError, r"class 0 \('0'\) has \d+ samples, but 1000000"),
    Case("imbalanced_subset: small_class 7 of 2", lambda p: data.imbalanced_subset(
        _digits(), 5, small_class=7, n_small=1, rng=0), ValueError,
        r"small_class must be in 0\.\.1, got 7"),
    # metrics
    Case("iou: shapes differ", lambda p: metrics.iou(np.zeros((4, 4)), np.zeros((4, 5))),
         ValueError, r"target and pred must have the same shape, got \(4, 4\) and \(4, 5\)"),
    Case("iou: reduction 'median'", lambda p: metrics.iou(
        np.zeros((4, 4)), np.zeros((4, 4)), reduction="median"), ValueError,
        r"unknown reduction 'median'; closest: 'mean'"),
    Case("iou: empty=2", lambda p: metrics.iou(np.zeros((4, 4)), np.zeros((4, 4)), empty=2),
         ValueError, r"empty \(the score when both masks are empty\) must be a number in "
         r"\[0, 1\] or NaN .*got 2"),
    Case("dice: mask valued 2", lambda p: metrics.dice(np.full((4, 4), 2), np.zeros((4, 4))),
         ValueError, r"target must be binary \(0/1 or bool, vessel = 1\); found other values: 2"),
    Case("cldice: 1-D masks", lambda p: metrics.cldice(np.zeros(4), np.zeros(4)), ValueError,
         r"expected masks of shape \(H, W\) or \(N, H, W\), got shape \(4,\)"),
    Case("confusion_counts: strings", lambda p: metrics.confusion_counts("a", "b"), ValueError,
         r"target must be a binary array \(bool or 0/1\), got dtype <U1"),
    # training
    Case("train: optimizer 'adamw'", lambda p: training.train_segmentation(
        _cnn(), SEG, SEG, optimizer="adamw", progress=False), ValueError,
        r"unknown optimizer 'adamw'; closest: 'adam'"),
    Case("train: model given by name", lambda p: training.train_segmentation(
        "cnn1", SEG, SEG, progress=False), TypeError,
        r"model must be a torch\.nn\.Module \(e\.g\. create_model\('cnn6'\)\), got str 'cnn1'"),
    Case("train: 3-channel images, 1-channel model", lambda p: training.train_segmentation(
        _cnn(), (np.repeat(IMGS[:, None], 3, 1), MASKS), SEG, epochs=1, progress=False),
        ValueError, r"images have 3 channel\(s\) but the model's first convolution "
        r"'conv_module1\.conv' expects 1"),
    Case("train: a 1-class model", lambda p: training.train_segmentation(
        cx.create_model("cnn1", width=4, num_classes=1), SEG, SEG, epochs=1, progress=False),
        ValueError, r"the masks hold class 1 but the model outputs 1 class channel\(s\) per "
        r"pixel.*needs 2 \(background, vessel\)"),
    Case("train: device 'gpu'", lambda p: training.train_segmentation(
        _cnn(), SEG, SEG, device="gpu", progress=False), ValueError,
        r"device must name a torch device such as 'cpu', 'cuda', 'cuda:1' or 'mps', got 'gpu'"),
    Case("train: momentum 'a'", lambda p: training.train_segmentation(
        _cnn(), SEG, SEG, momentum="a", progress=False), TypeError,
        r"momentum must be a real number, got 'a'"),
    Case("train: weight_decay NaN", lambda p: training.train_segmentation(
        _cnn(), SEG, SEG, weight_decay=float("nan"), progress=False), ValueError,
        r"weight_decay must be finite, got nan"),
    Case("train: checkpoint_dir is a file", lambda p: training.train_segmentation(
        _cnn(), SEG, SEG, checkpoint_dir=Path(__file__), progress=False), NotADirectoryError,
        r"expected a directory to write into, got a file: '.*test_bad_inputs\.py'"),
    Case("predict_masks: 3-channel images", lambda p: training.predict_masks(
        _cnn(), np.zeros((2, 3, 16, 16), np.float32)), ValueError,
        r"images have 3 channel\(s\) .* expects 1"),
    Case("evaluate_segmentation: a string", lambda p: training.evaluate_segmentation(
        _cnn(), "data"), TypeError, r"data must be a torch Dataset .* got str"),
    # transfer
    Case("transfer.run: method 'l2t_wwww'", lambda p: _run("l2t_wwww"), ValueError,
         r"unknown method 'l2t_wwww'; closest: 'l2t_www'"),
    Case("transfer.run: setting 'batchsize'", lambda p: _run(batchsize=3), TypeError,
         r"unknown setting 'batchsize'; closest: 'batch_size'"),
    Case("transfer.run: no test data", lambda p: _run(data={"train": [1]}), KeyError,
         r"data must hold 'train' and 'test' datasets \(and 'val', or None\); missing \['test'\]"),
    Case("transfer.run: lr -1", lambda p: _run(lr=-1), ValueError, r"lr must be > 0, got -1"),
    Case("transfer.run: grey data, RGB source", lambda p: _run(
        "ufm", source=_source(), data=_transfer_data(channels=1)), ValueError,
        r"the source network does not fit the data: data\['train'\] images have 1 channel\(s\) "
        r"but the model's first convolution 'conv1' expects 3"),
    Case("transfer.run: unknown target", lambda p: _run(target="vgg99"), ValueError,
         r"unknown model 'vgg99'; closest: 'vgg9_bn'"),
    Case("transfer.run: device 'gpu'", lambda p: _run(device="gpu"), ValueError,
         r"device must name a torch device such as 'cpu', 'cuda', 'cuda:1' or 'mps', got 'gpu'"),
    Case("transfer.run: device 3.5", lambda p: _run(device=3.5), TypeError,
         r"device must be a string such as 'cpu' or 'cuda:0', a CUDA index or a torch\.device, "
         r"got float 3\.5"),
    # issue 22: evaluation data and source paths
    Case("transfer.run: NaN pixel in a test image", lambda p: _run(data=_nan_split("test")),
         ValueError, r"data\['test'\] holds NaN/Inf pixels in 1 of its 2 images \(items 1\); "
         r"its accuracy would be computed on NaN logits"),
    Case("transfer.run: NaN pixel in a validation image", lambda p: _run(
        data=_nan_split("val")), ValueError, r"data\['val'\] holds NaN/Inf pixels .*items 1"),
    Case("run_many: NaN pixel in a validation image", lambda p: _run_many(
        data=_nan_split("val")), ValueError,
        r"data\['val'\] of seed 0 holds NaN/Inf pixels in 1 of its 2 images \(items 1\)"),
    Case("transfer.run: a source path that does not exist", lambda p: _run(
        "ufm", source=str(p / "missing" / "source.pth.tar")), FileNotFoundError,
        r"source checkpoint '.*missing/source\.pth\.tar' does not exist; expected a "
        r"checkpoint file"),
    Case("run_many: a source path that does not exist", lambda p: _run_many(
        method="ufm", source=str(p / "nope.pt")), FileNotFoundError,
        r"source checkpoint '.*nope\.pt' does not exist"),
    Case("transfer.run: a source name that is no model", lambda p: _run(
        "ufm", source="resnet33"), ValueError,
        r"unknown source model 'resnet33'; closest: 'resnet32'.*no checkpoint file"),
    Case("transfer.run: meta_lr -1", lambda p: _run(meta_lr=-1), ValueError,
         r"meta_lr must be >= 0, got -1"),
    Case("transfer.run: lr 0", lambda p: _run(lr=0), ValueError, r"lr must be > 0, got 0"),
    Case("build_step: L2T-www's map-input h without an example", lambda p: transfer.build_step(
        "l2t_www", _source(), cx.create_model("vgg9_bn", num_classes=2)), ValueError,
        r"which_input='maps', the default\) and is sized from example=.*got example=None"),
    Case("parse_pairs: 'a-b'", lambda p: transfer.parse_pairs(["a-b"], n_source=3, n_target=3),
         ValueError, r"a pair must be 'source-target' like '4-0' or a tuple \(4, 0\), got 'a-b'"),
    Case("parse_pairs: source tap 5 of 3", lambda p: transfer.parse_pairs(
        ["5-0"], n_source=3, n_target=3), ValueError,
        r"pair '5-0' names source tap 5, but the source has 3 taps \(0\.\.2\)"),
    Case("build_step: l2t_ww without a source", lambda p: transfer.build_step(
        "l2t_ww", None, cx.create_model("vgg9_bn", num_classes=2)), ValueError,
        r"method 'l2t_ww' needs a source network, got None"),
    Case("load_l2tww_source: unsafe file", lambda p: transfer.load_l2tww_source(
        _unsafe_checkpoint(p)), CheckpointError, r"refusing to load '.*unsafe\.pt'"),
    Case("load_l2tww_source: truncated file", lambda p: transfer.load_l2tww_source(
        _truncated_checkpoint(p)), CheckpointError, r"'.*ckpt\.pt': it is truncated"),
    # sweeps
    Case("expand_grid: a scalar", lambda p: experiments.expand_grid({"seed": 3}), TypeError,
         r"grid\['seed'\] must be a list of values, got int 3; wrap a single value in a list"),
    Case("run_sweep: executor 'dusk'", lambda p: experiments.run_sweep(
        {"seed": [0]}, len, p, executor="dusk"), ValueError,
        r"unknown executor 'dusk'; closest: 'dask'"),
    Case("run_sweep: workers 0", lambda p: experiments.run_sweep(
        {"seed": [0]}, len, p, executor="local", workers=0), ValueError,
        r"workers must be an integer >= 1, got 0"),
    Case("run_sweep: run is a string", lambda p: experiments.run_sweep({"seed": [0]}, "f", p),
         TypeError, r"run must be a callable taking a config dict, got str"),
    Case("run_sweep: a lambda in worker processes", lambda p: experiments.run_sweep(
        {"seed": [0]}, lambda c: {}, p, executor="local"), TypeError,
        r"executor='local' sends the run function to worker processes, so it must be "
        r"picklable"),
    Case("run_sweep: store is a file", lambda p: experiments.run_sweep(
        {"seed": [0]}, len, Path(__file__)), NotADirectoryError,
        r"expected a directory to write into, got a file"),
    Case("ResultStore.write: record without config", lambda p: experiments.ResultStore(
        p).write({"status": "ok"}), TypeError,
        r"a record must be a dict holding 'config', .* got config=None"),
    Case("summarize: unknown column", lambda p: experiments.summarize(
        pd.DataFrame({"method": ["a"], "test_acc": [0.5]}), by="dataset"), KeyError,
        r"unknown column 'dataset'.*Expected one of: method, test_acc"),
    Case("compare_methods: method absent", lambda p: experiments.compare_methods(
        pd.DataFrame({"method": ["a"], "dataset": ["d"], "n": [1], "test_acc": [0.5]})),
        ValueError, r"unknown method 'l2t_www'\. Expected one of: a"),
    Case("holm: p-value 2", lambda p: experiments.holm([0.1, 2.0]), ValueError,
         r"p-values must lie in \[0, 1\], got \[0\.1, 2\.0\]"),
    # widgets
    Case("MapBrowser: unknown layer", lambda p: _widgets().MapBrowser(MAPS, layer="l3"),
         KeyError, r"unknown layer 'l3'; closest: 'l2', 'l1'\. Expected one of: l1, l2"),
    Case("MapBrowser: map_index 7 of 3", lambda p: _widgets().MapBrowser(MAPS, map_index=7),
         IndexError, r"map_index 7 out of range for layer 'l1': expected 0 <= index < 3"),
    Case("MapBrowser: map_index set to 'a'", lambda p: _set(
        _widgets().MapBrowser(MAPS), "map_index", "a"), TypeError,
        r"map_index must be an integer, got 'a'"),
    Case("LayerPicker: unknown value", lambda p: _widgets().LayerPicker(["a", "b"], value="c"),
         KeyError, r"unknown layer 'c'\. Expected one of: a, b"),
    Case("CorrelationPanel: value 'pct'", lambda p: _widgets().CorrelationPanel(
        MAPS, value="pct"), ValueError, r"unknown heatmap value 'pct'; closest: 'percent'"),
    Case("CorrelationPanel: measure set to 'cos'", lambda p: _set(
        _widgets().CorrelationPanel(MAPS), "measure", "cos"), ValueError,
        r"unknown measure 'cos'; closest: 'cosine'\. Expected one of: pearson, cosine"),
    # found by the reliability review, fixed after it
    Case("extract_activations: device 'gpu'", lambda p: cx.extract_activations(
        _cnn(), _grey(), device="gpu", progress=False), ValueError, r"gpu"),
    Case("count_flops: 3 channels for a grey model", lambda p: cx.prune.count_flops(
        _cnn(), torch.zeros(1, 3, 8, 8)), ValueError, r"3 channel\(s\).*expects 1"),
    Case("digits: test_fraction 1.5", lambda p: data.digits("train", test_fraction=1.5),
         ValueError, r"test_fraction must be in \[0.0, 1.0\], got 1.5"),
    Case("normalize_intensity: a NaN image", lambda p: data.normalize_intensity(
        np.where(np.arange(32).reshape(2, 4, 4) == 20, np.nan, 1.0)), ValueError,
        r"must be finite, got NaN/Inf in image\(s\) \[1\]"),
]  # fmt: skip


# ------------------------------------------------------------------ issue 22: data, files (H3)
ROOT = Path(__file__).resolve().parents[1]
GOOD = ("cifar-10-batches-py/data_batch_1", "file", b"data")


def _placed(tmp: Path, members: list) -> Path:
    """A tar.gz placed by hand as CIFAR-10's archive, pinned by its md5 for this call."""
    tmp.mkdir(parents=True, exist_ok=True)
    archive = tmp / "cifar-10-python.tar.gz"
    tar_with(archive, members)
    return archive


def _fetch_placed(tmp: Path, members: list, cut: float = 1.0) -> Path:
    archive = _placed(tmp, members)
    archive.write_bytes(archive.read_bytes()[: int(archive.stat().st_size * cut)])
    entry = dataclasses.replace(DATASETS["cifar10"], known_hash=md5(archive))
    with (
        mock.patch.dict(DATASETS, {"cifar10": entry}),
        mock.patch.dict(os.environ, {"CNNX_OFFLINE": "1"}),
    ):
        return data.fetch("cifar10", root=tmp, progress=False)


def _big_tar() -> list:
    rng = np.random.default_rng(0)
    return [(f"cifar-10-batches-py/f{i}", "file", rng.bytes(50_000)) for i in range(4)]


def _file(tmp: Path, name: str = "afile") -> Path:
    (tmp / name).write_text("not a folder")
    return tmp / name


def _as_nobody(code: str) -> Any:
    """``code`` run by a user without root's rights (nobody when root); its error raised here."""
    out = run_unprivileged(code)
    if "error" in out:
        import builtins

        raise getattr(builtins, out["error"], RuntimeError)(out["message"])
    return out["ok"]


def _fetch_read_only(tmp: Path) -> Any:
    """fetch('cifar10') into a read-only folder that holds the archive placed by hand."""
    with shared_tmp() as shared:
        archive = _placed(shared / "ro", [GOOD])
        (shared / "ro").chmod(0o555)
        return _as_nobody(
            "import dataclasses\nfrom cnnexplore_nb.data.fetch import DATASETS, fetch\n"
            "DATASETS['cifar10'] = dataclasses.replace(DATASETS['cifar10'], "
            f"known_hash={md5(archive)!r})\nresult = fetch('cifar10', root={str(archive.parent)!r})"
        )


def _png(tmp: Path) -> Path:
    from PIL import Image

    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp / "weights.pt", format="PNG")
    return tmp / "weights.pt"


def _bytes_file(tmp: Path, name: str, raw: bytes) -> Path:
    (tmp / name).write_bytes(raw)
    return tmp / name


def _npy(tmp: Path) -> Path:
    np.save(tmp / "maps.npy", np.zeros((2, 3)))
    return tmp / "maps.npy"


def _split_list(tmp: Path, text: str) -> Path:
    (tmp / "images").mkdir(parents=True)
    (tmp / "train.csv").write_text(text)
    return tmp


def _checkpoints_dir(tmp: Path) -> Path:
    save_checkpoint({"w": torch.ones(2)}, tmp / "run" / "best.pt")
    return tmp / "run"


CASES += [
    Case("fetch: root is a file", lambda p: data.fetch("cifar10", root=_file(p)),
         NotADirectoryError, r"the data folder '.*afile' \(the root given\) is a file, not a "
         r"folder: pass the folder that holds cifar-10-batches-py \(or should receive it\)"),
    Case("fetch: root under a file", lambda p: data.fetch("stl10", root=_file(p) / "sub"),
         NotADirectoryError, r"the data folder '.*afile/sub' \(the root given\) is under "
         r"'.*afile', a file, not a folder"),
    Case("fetch: tar holding ../x", lambda p: _fetch_placed(p, [GOOD, ("../x", "file", b"x")]),
         ArchiveError, r"refusing to extract 'cifar10' from '.*cifar-10-python\.tar\.gz': its "
         r"member '\.\./x' would be written outside the dataset folder"),
    Case("fetch: tar linking to /etc/passwd", lambda p: _fetch_placed(
        p, [GOOD, ("cifar-10-batches-py/pw", "symlink", "/etc/passwd")]), ArchiveError,
        r"refusing to extract 'cifar10' from .*: its member 'cifar-10-batches-py/pw' is a link "
        r"to the absolute path '/etc/passwd'"),
    Case("fetch: truncated tar", lambda p: _fetch_placed(p, _big_tar(), cut=0.5), ArchiveError,
         r"cannot extract 'cifar10' from '.*cifar-10-python\.tar\.gz': the archive is truncated "
         r"or corrupt \(while extracting member 'cifar-10-batches-py/f\d'"),
    Case("VesselFolder: an empty split list", lambda p: data.VesselFolder(
        _split_list(p, "\n\n"), split="train.csv"), ValueError,
        r"split list '.*train\.csv' is empty; expected a header row naming 2 or 3 columns "
        r"\(image, mask\[, roi\], e\.g\. im_paths,gt_paths,mask_paths\) and one row per item"),
    Case("vessmap: a header-only train.csv", lambda p: data.vessmap(root=_split_list(
        p / "VessMAP", "im_paths,gt_paths,mask_paths\n").parent, verify=False), ValueError,
        r"split list '.*VessMAP/train\.csv' has its header \['im_paths', 'gt_paths', "
        r"'mask_paths'\] but no rows; expected one row per item below it"),
    Case("load_checkpoint: a PNG", lambda p: load_checkpoint(_png(p)), CheckpointError,
         r"cannot read '.*weights\.pt': it is not a torch checkpoint but a PNG image; expected a "
         r"file written by torch\.save"),
    Case("load_checkpoint: a .npy", lambda p: load_checkpoint(_npy(p)), CheckpointError,
         r"'.*maps\.npy': it is not a torch checkpoint but a numpy array \(\.npy; read it with "
         r"numpy\.load\)"),
    Case("load_checkpoint: random bytes", lambda p: load_checkpoint(_bytes_file(
        p, "x.pt", bytes(range(1, 255)) * 4)), CheckpointError,
        r"it is not a torch checkpoint but unrecognised binary data \(first bytes "
        r"b'\\x01\\x02"),
    Case("load_checkpoint: text", lambda p: load_checkpoint(_bytes_file(
        p, "x.pt", b"version https://git-lfs\n")), CheckpointError,
        r"not a torch checkpoint but a text file \(it starts 'version https://git-lfs"),
    Case("load_checkpoint: a directory", lambda p: load_checkpoint(_checkpoints_dir(p)),
         IsADirectoryError, r"checkpoint '.*run' is a directory, not a file written by "
         r"torch\.save; it holds best\.pt"),
    *([Case("fetch: read-only root", _fetch_read_only, PermissionError,
            r"cannot write into the data folder '.*ro' \(the root given: Permission denied\), "
            r"so 'cifar10' cannot be downloaded or extracted there")]
      if can_drop_privileges() else []),
]  # fmt: skip


def _poke(x: np.ndarray, index: tuple[int, ...], value: float) -> np.ndarray:
    out = x.copy()
    out[index] = value
    return out


def _manifest_version(version: Any) -> Callable[[Path], None]:
    def edit(d: Path) -> None:
        manifest = json.loads((d / "manifest.json").read_text())
        (d / "manifest.json").write_text(json.dumps({**manifest, "format_version": version}))

    return edit


def _metadata_version(d: Path) -> None:
    meta = json.loads((d / "metadata.json").read_text())
    (d / "metadata.json").write_text(json.dumps({**meta, "format_version": 99}))


def _killed_save(d: Path) -> None:
    """The state a save killed after replacing pairs.csv leaves: backups of the old files."""
    for f in sorted(d.iterdir()):
        shutil.copy2(f, d / f".{f.name}.cnnx-0123456789ab.bak")
    other = cx.correlation_tables({"l1": X[::-1], "l2": X[:, :2]}, progress=False)
    other.explorer("pairs").to_csv(d / "pairs.csv", index=False)


def _load_read_only(tmp: Path) -> Any:
    """load_tables as a user who cannot write the folder of a killed save."""
    with shared_tmp() as shared:
        directory = _saved(shared, _killed_save)
        directory.chmod(0o555)
        return _as_nobody(
            f"from cnnexplore_nb import load_tables\nresult = load_tables({str(directory)!r})"
        )


CASES += [
    Case("correlation_tables: NaN in one layer", lambda p: cx.correlation_tables(
        {"conv1": X, "conv2": _poke(X, (1, 1, 2, 3), np.nan)}, progress=False),
        NonFiniteMapsError, r"^maps_a\['conv2'\] must be finite, got NaN/Inf in channel\(s\) "
        r"\[1\] of image\(s\) \[1\]$"),
    Case("correlation_tables: Inf in a layer of B (tensor)", lambda p: cx.correlation_tables(
        {"l": X}, {"m1": X, "m2": torch.tensor(_poke(X, (0, 2, 0, 0), np.inf))}, progress=True),
        NonFiniteMapsError, r"^maps_b\['m2'\] must be finite, got NaN/Inf in channel\(s\) "
        r"\[2\] of image\(s\) \[0\]$"),
    Case("load_tables: manifest format_version 99", lambda p: cx.load_tables(
        _saved(p, _manifest_version(99))), TablesFormatError,
        r"'.*manifest\.json' has format_version 99, but cnnexplore_nb \S+ reads format "
        r"versions 1 to 3 \(saved by a newer cnnexplore_nb\? update it to load this set\)"),
    Case("load_tables: manifest format_version 'x'", lambda p: cx.load_tables(
        _saved(p, _manifest_version("x"))), TablesFormatError,
        r"manifest\.json' has format_version 'x', but .* reads format versions 1 to 3 "
        r"\(edited or corrupt\)"),
    Case("load_tables: metadata format_version 99, no manifest", lambda p: cx.load_tables(
        _saved(p, _metadata_version, manifest=False)), TablesFormatError,
        r"metadata\.json' has format_version 99, but .* reads format versions 1 to 3"),
    *([Case("load_tables: read-only folder of a killed save", _load_read_only, PermissionError,
            r"'.*set' holds a save that was interrupted: 1 file\(s\) of the saved set "
            r"\(pairs\.csv\) were replaced .* cannot be put back because the folder cannot be "
            r"written \(Permission denied\)\. Make the folder writable and load again")]
      if can_drop_privileges() else []),
]  # fmt: skip


class Command(NamedTuple):
    id: str
    args: list[str]  # after the Python executable
    cwd: Path
    status: int
    match: str  # regex searched in stderr


COMMANDS = [
    Command("data CLI: a typo", ["-m", "cnnexplore_nb.data", "cifar1O"], ROOT, 2,
            r"^python -m cnnexplore_nb\.data: error: unknown dataset 'cifar1O'; closest: "
            r"'cifar10', 'cifar100'\. Expected one of: cifar10, cifar100, l2tww_source, stl10, "
            r"tiny_imagenet, vessmap\n$"),
    Command("data CLI: offline", ["-m", "cnnexplore_nb.data", "stl10"], ROOT, 1,
            r"^python -m cnnexplore_nb\.data: error: cannot download 'stl10': CNNX_OFFLINE=1 is "
            r"set\.\n  URL: .*\n  expected file: stl10_binary\.tar\.gz"),
    Command("import from inside the package folder", ["-c", "import cnnexplore_nb"],
            ROOT / "cnnexplore_nb", 1,
            r"ImportError: cannot import cnnexplore_nb with its package folder '.*cnnexplore_nb' "
            r"on sys\.path \(from the working directory\): there its subpackage 'inspect' shadows "
            r"the standard library's 'inspect' module and breaks the import of torch"),
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=[c.id for c in COMMANDS])
def test_a_bad_command_line_is_one_clear_message(command, tmp_path):
    env = {**os.environ, "CNNX_OFFLINE": "1", "CNNX_DATA": str(tmp_path / "cache"),
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    proc = subprocess.run([sys.executable, *command.args], cwd=command.cwd, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == command.status, proc.stderr
    assert re.search(command.match, proc.stderr), proc.stderr
    traceback = proc.stderr.count("Traceback")
    assert traceback == (1 if command.args[0] == "-c" else 0), proc.stderr  # Python's own
    assert not (tmp_path / "cache").exists()  # nothing downloaded, no folder made


def test_the_table_is_large_and_its_ids_unique():
    assert len(CASES) >= 50
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_input_is_a_clear_error(case, tmp_path):
    with pytest.raises(case.error) as err:
        case.call(tmp_path)
    assert type(err.value) is case.error  # that very type, not a subclass raised by chance
    # str(KeyError) is the repr of its message: read the message itself
    message = str(err.value.args[0]) if isinstance(err.value, KeyError) else str(err.value)
    assert re.search(case.match, message), message


# ------------------------------------------------------------------ what is accepted instead
def test_integer_images_are_cast_to_the_model_dtype():
    model = _cnn().eval()
    ints = (np.random.default_rng(0).random((2, 1, 12, 12)) * 255).astype(np.uint8)
    got = cx.extract_activations(model, ints, "conv_module1", progress=False)["conv_module1"]
    ref = cx.extract_activations(model, ints.astype(np.float32), "conv_module1", progress=False)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, ref["conv_module1"], rtol=0, atol=0)  # same batch, same op
    masks = training.predict_masks(model, ints[:, 0])
    assert masks.shape == (2, 12, 12) and masks.dtype == np.uint8


def _edit_a_value(d: Path) -> None:
    text = (d / "pairs.csv").read_text().splitlines(keepends=True)
    head, row = text[0].split(","), text[1].split(",")
    row[head.index("correlation")] = "0.123"  # the first pair: 1.0 (a map with itself)
    (d / "pairs.csv").write_text("".join([text[0], ",".join(row), *text[2:]]))


@pytest.mark.parametrize("saved_by", ["format 3", "format 1"])
def test_a_set_without_manifest_warns_that_it_cannot_be_verified(tmp_path, saved_by):
    def edit(d: Path) -> None:
        _edit_a_value(d)
        if saved_by == "format 1":  # metadata as format 1 wrote it
            meta = json.loads((d / "metadata.json").read_text())
            del meta["format_version"], meta["constant"]
            (d / "metadata.json").write_text(json.dumps(meta))

    directory = _saved(tmp_path, edit, manifest=False)
    found = (
        r"though its metadata\.json says it was saved with one \(format 3\): the manifest was "
        r"deleted or not copied"
        if saved_by == "format 3"
        else r"and its metadata\.json records no format version: saved before manifests "
        r"existed \(format 1\), or its manifest was deleted"
    )
    with pytest.warns(UserWarning) as record:
        back = cx.load_tables(directory)
    (warning,) = record
    message = str(warning.message)
    assert re.search(rf"'.*set' has no manifest\.json, {found}\. Its files cannot be "
                     r"verified: only the row counts .* so an edited value goes unnoticed",
                     message), message  # fmt: skip
    assert "older version" not in message
    assert back.pairs["correlation"].iloc[0] == pytest.approx(0.123)  # as the rule says


def test_the_tables_of_a_failed_load_are_left_alone(tmp_path):
    directory = _saved(tmp_path, _cut("pairs.csv", 0.6))
    before = {p.name: p.read_bytes() for p in directory.iterdir()}
    with pytest.raises(TablesFormatError):
        cx.load_tables(directory)
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == before
    shutil.rmtree(directory)
