"""Training loop: history, best-epoch restore, checkpoints, determinism, resume, ROI loss."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from cnnexplore_nb import create_model
from cnnexplore_nb.data import VesselArrays, normalize_intensity, synthetic_vessels
from cnnexplore_nb.io import load_checkpoint
from cnnexplore_nb.training import evaluate_segmentation, predict_masks, train_segmentation
from cnnexplore_nb.training.evaluate import _loss
from cnnexplore_nb.training.metrics import iou
from cnnexplore_nb.training.train import HISTORY_COLUMNS


@pytest.fixture(scope="module")
def data():
    images, masks = synthetic_vessels(6, 32, rng=0, difficulty=0.2)
    x, _ = normalize_intensity(images)
    return (x[:4], masks[:4]), (x[4:], masks[4:])


def _model(seed=0):
    torch.manual_seed(seed)
    return create_model("cnn1", width=8)


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_history_best_restore_and_checkpoints(data, tmp_path):
    train, val = data
    model, hist = train_segmentation(
        _model(), train, val, epochs=3, batch_size=2, checkpoint_dir=tmp_path, progress=False
    )
    assert isinstance(hist, pd.DataFrame) and list(hist.columns) == HISTORY_COLUMNS
    assert hist["epoch"].tolist() == [1, 2, 3]
    # is_best marks each new running maximum of val_iou
    running = hist["val_iou"].cummax()
    expected = [True] + [bool(v > p) for v, p in zip(hist["val_iou"][1:], running[:-1])]
    assert hist["is_best"].tolist() == expected
    best_epoch = int(hist.loc[hist["val_iou"].idxmax(), "epoch"])
    assert model.best_epoch == best_epoch
    assert model.best_score == pytest.approx(hist["val_iou"].max())
    # the returned model holds the best weights: re-evaluating gives the recorded IoU
    scores = evaluate_segmentation(model, val)
    assert scores["iou"].mean() == pytest.approx(model.best_score)
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["epoch"] == best_epoch
    for k, v in model.state_dict().items():
        assert torch.equal(best["model"][k], v)
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["epoch"] == 3 and len(last["history"]) == 3
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_same_seed_bit_identical_other_seed_differs(data):
    train, val = data
    kw = {"epochs": 2, "batch_size": 2, "progress": False}
    a, ha = train_segmentation(_model(), train, val, seed=3, **kw)
    b, hb = train_segmentation(_model(), train, val, seed=3, **kw)
    c, _ = train_segmentation(_model(), train, val, seed=4, **kw)
    assert _same_weights(a, b)
    pd.testing.assert_frame_equal(ha.drop(columns="seconds"), hb.drop(columns="seconds"))
    assert not _same_weights(a, c)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_resume_equals_uninterrupted_run(data, tmp_path, optimizer):
    train, val = data
    kw = {"batch_size": 2, "progress": False, "optimizer": optimizer, "seed": 1}
    straight, h_straight = train_segmentation(_model(), train, val, epochs=2, **kw)
    train_segmentation(_model(), train, val, epochs=1, checkpoint_dir=tmp_path, **kw)
    # a fresh model with other initial weights: everything must come from last.pt
    resumed, h_resumed = train_segmentation(
        _model(seed=99), train, val, epochs=2, checkpoint_dir=tmp_path, resume=True, **kw
    )
    assert _same_weights(straight, resumed)
    assert resumed.best_epoch == straight.best_epoch
    pd.testing.assert_frame_equal(
        h_straight.drop(columns="seconds"), h_resumed.drop(columns="seconds")
    )
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["epoch"] == 2


def test_resume_errors(data, tmp_path):
    train, val = data
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir"):
        train_segmentation(_model(), train, val, epochs=1, resume=True, progress=False)
    train_segmentation(_model(), train, val, epochs=1, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"settings differ.*lr=0.01 vs 0.1"):
        train_segmentation(
            _model(),
            train,
            val,
            epochs=2,
            lr=0.1,
            checkpoint_dir=tmp_path,
            resume=True,
            progress=False,
        )


def test_argument_errors(data):
    train, val = data
    with pytest.raises(ValueError, match="closest: 'adam'"):
        train_segmentation(_model(), train, val, optimizer="adamw", progress=False)
    with pytest.raises(ValueError, match="unknown metric"):
        train_segmentation(_model(), train, val, metric="acc", progress=False)
    with pytest.raises(TypeError, match="torch Dataset"):
        train_segmentation(_model(), train, "val", progress=False)
    with pytest.raises(ValueError, match="lr must be a positive number, got -1"):
        train_segmentation(_model(), train, val, lr=-1, progress=False)


def test_roi_loss_ignores_outside_pixels():
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 5, 5)
    y = torch.randint(0, 2, (2, 5, 5))
    roi = torch.zeros(2, 5, 5, dtype=torch.bool)
    roi[:, 1:4, 1:3] = True
    manual = F.cross_entropy(logits.permute(0, 2, 3, 1)[roi], y[roi])
    assert _loss(logits, y, roi) == pytest.approx(float(manual))
    assert _loss(logits, y, None) == pytest.approx(float(F.cross_entropy(logits, y)))


def test_training_with_rois(data):
    (x, m), (xv, mv) = data
    rois = np.zeros_like(m)
    rois[:, 4:28, 4:28] = 1
    train = VesselArrays(x, m, rois=rois)
    val = VesselArrays(xv, mv, rois=np.ones_like(mv))
    model, hist = train_segmentation(_model(), train, val, epochs=1, batch_size=2, progress=False)
    assert np.isfinite(hist[["train_loss", "val_loss", "val_iou"]].to_numpy()).all()


def test_predict_and_evaluate_agree_with_metrics(data):
    _, (xv, mv) = data
    model = _model().eval()
    pred = predict_masks(model, xv, batch_size=1)
    assert pred.dtype == np.uint8 and pred.shape == mv.shape
    with torch.no_grad():
        ref = model(torch.from_numpy(xv)[:, None]).argmax(1).numpy()
    np.testing.assert_array_equal(pred, ref)
    frame = evaluate_segmentation(model, (xv, mv))
    assert frame.columns[:8].tolist() == [
        "image",
        "precision",
        "recall",
        "f1",
        "dice",
        "iou",
        "cldice",
        "vessel_fraction",
    ]
    np.testing.assert_allclose(frame["iou"], iou(mv, pred, reduction="none"))
    np.testing.assert_allclose(frame["vessel_fraction"], mv.mean(axis=(1, 2)))
    assert model.training is False  # the mode is restored
