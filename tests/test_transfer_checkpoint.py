"""load_l2tww_source: the reference layout, safe loading, shape errors, the real file."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from cnnexplore_nb.io import CheckpointError
from cnnexplore_nb.models import create_model
from cnnexplore_nb.transfer.checkpoint import load_l2tww_source

REAL = Path(__file__).resolve().parents[2] / "shared/data/l2tww_tinyimagenet_resnet32.pth.tar"


def _write_reference_like(path, *, num_classes=7, extra=None, seed=0):
    torch.manual_seed(seed)
    model = create_model("resnet32", num_classes=num_classes)
    with torch.no_grad():  # non-default BN statistics, as in a trained network
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
    state = dict(model.state_dict())
    state.update(extra or {})
    torch.save(
        {
            "epoch": 3,
            "best": 12.5,
            "test_prec": 11.0,
            "num_classes": num_classes,
            "state_dict": state,
        },
        path,
    )
    return model.eval()


def test_loads_written_checkpoint_exactly(tmp_path):
    ref = _write_reference_like(tmp_path / "src.pth.tar")
    model = load_l2tww_source(tmp_path / "src.pth.tar")
    assert not model.training and model.fc.out_features == 7
    assert model.load_report == {"missing": [], "ignored": []}
    assert model.checkpoint_meta["epoch"] == 3
    x = torch.randn(3, 3, 32, 32)
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the same computation twice: bit-identical at fixed threads
    try:
        with torch.no_grad():
            torch.testing.assert_close(model(x), ref(x), rtol=0, atol=0)
    finally:
        torch.set_num_threads(before)


def test_extra_keys_are_reported(tmp_path):
    _write_reference_like(tmp_path / "src.pth.tar", extra={"head.weight": torch.zeros(2)})
    with pytest.warns(UserWarning, match="ignored 1 key"):
        model = load_l2tww_source(tmp_path / "src.pth.tar")
    assert model.load_report["ignored"] == ["head.weight"]


def test_wrong_shape_names_key(tmp_path):
    bad = {"blocks4.1.conv1.weight": torch.zeros(32, 16, 3, 3)}
    _write_reference_like(tmp_path / "src.pth.tar", extra=bad)
    with pytest.raises(
        ValueError, match=r"blocks4\.1\.conv1\.weight.*\(32, 16, 3, 3\).*\(32, 32, 3, 3\)"
    ):
        load_l2tww_source(tmp_path / "src.pth.tar")


def test_missing_keys_strict(tmp_path):
    model = create_model("resnet32", num_classes=5)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("block5.")}
    torch.save({"state_dict": state}, tmp_path / "partial.pth")
    with pytest.raises(KeyError, match="block5"):
        load_l2tww_source(tmp_path / "partial.pth")
    loaded = load_l2tww_source(tmp_path / "partial.pth", strict=False)
    assert all(k.startswith("block5.") for k in loaded.load_report["missing"])


def test_corrupted_and_missing_file(tmp_path):
    path = tmp_path / "broken.pth.tar"
    _write_reference_like(path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=rf"{re.escape(repr(str(path)))}.*truncated"):
        load_l2tww_source(path)
    unsafe = tmp_path / "unsafe.pth.tar"
    torch.save({"state_dict": {}, "epoch": Fraction(1, 2)}, unsafe)
    with pytest.raises(CheckpointError, match=r"refusing to load .*unsafe\.pth\.tar.*run code"):
        load_l2tww_source(unsafe)
    with pytest.raises(FileNotFoundError, match="L2T-ww"):
        load_l2tww_source(tmp_path / "nope.pth.tar")


@pytest.mark.skipif(not REAL.is_file(), reason="reference checkpoint not available")
def test_real_reference_checkpoint():
    model = load_l2tww_source(REAL)
    assert model.fc.out_features == 200
    assert model.load_report == {"missing": [], "ignored": []}
    assert model.checkpoint_meta["num_classes"] == 200
    assert model.checkpoint_meta["best"] == pytest.approx(49.27)
    raw = torch.load(REAL, map_location="cpu", weights_only=True)["state_dict"]
    torch.testing.assert_close(model.block3.bn2.running_var, raw["block3.bn2.running_var"])
    assert not torch.allclose(model.bn1.running_var, torch.ones(16))  # trained BN statistics
    torch.manual_seed(0)
    x = torch.randn(4, 3, 32, 32)
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the same computation twice: bit-identical at fixed threads
    try:
        with torch.no_grad():
            a, b = model(x), model(x)
    finally:
        torch.set_num_threads(before)
    assert a.shape == (4, 200) and torch.isfinite(a).all()
    torch.testing.assert_close(a, b, rtol=0, atol=0)  # eval mode: deterministic
    # the trained network is confident on an image far more than uniform over 200 classes
    assert a.softmax(1).max(1).values.min() > 5 / 200
