"""Training loop: history, best-epoch restore, checkpoints, determinism, resume, ROI loss."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from cnnexplore_nb import create_model
from cnnexplore_nb.data import VesselArrays, normalize_intensity, synthetic_vessels
from cnnexplore_nb.io import CheckpointError, load_checkpoint
from cnnexplore_nb.training import (
    NonFiniteLossError,
    evaluate_segmentation,
    predict_masks,
    train_segmentation,
)
from cnnexplore_nb.training.evaluate import _loss
from cnnexplore_nb.training.metrics import iou
from cnnexplore_nb.training.train import HISTORY_COLUMNS


@pytest.fixture(scope="module")
def data():
    images, masks = synthetic_vessels(6, 32, rng=0, difficulty=0.2)
    x, _ = normalize_intensity(images)
    return (x[:4], masks[:4]), (x[4:], masks[4:])


@pytest.fixture
def pinned_threads():
    """Bit-identical results hold at a fixed number of torch threads: pin it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield 1
    torch.set_num_threads(before)


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


def test_same_seed_bit_identical_other_seed_differs(data, pinned_threads):
    train, val = data
    kw = {"epochs": 2, "batch_size": 2, "progress": False}
    a, ha = train_segmentation(_model(), train, val, seed=3, **kw)
    b, hb = train_segmentation(_model(), train, val, seed=3, **kw)
    c, _ = train_segmentation(_model(), train, val, seed=4, **kw)
    assert _same_weights(a, b)
    pd.testing.assert_frame_equal(ha.drop(columns="seconds"), hb.drop(columns="seconds"))
    assert not _same_weights(a, c)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_resume_equals_uninterrupted_run(data, tmp_path, optimizer, pinned_threads):
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


def test_resume_after_a_kill_between_best_and_last_writes(data, tmp_path, pinned_threads):
    """Killed after an epoch's best.pt write but before its last.pt: the re-run epoch is the
    best again, as in an uninterrupted run (history, best epoch, weights and best.pt)."""
    import shutil

    train, val = data
    kw = {"batch_size": 2, "progress": False, "seed": 1, "checkpoint_dir": tmp_path}
    straight, h_straight = train_segmentation(_model(), train, val, epochs=2, **kw)
    assert bool(h_straight["is_best"].iloc[1])  # epoch 2 improves: best.pt is rewritten
    straight_state = {k: v.clone() for k, v in straight.state_dict().items()}
    for p in tmp_path.iterdir():
        p.unlink()
    train_segmentation(_model(), train, val, epochs=1, **kw)
    shutil.copy(tmp_path / "last.pt", tmp_path / "last_epoch1.pt")
    train_segmentation(_model(), train, val, epochs=2, resume=True, **kw)
    # the kill: best.pt holds epoch 2, last.pt still epoch 1
    shutil.move(tmp_path / "last_epoch1.pt", tmp_path / "last.pt")
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == 2
    resumed, h_resumed = train_segmentation(
        _model(seed=99), train, val, epochs=2, resume=True, **kw
    )
    pd.testing.assert_frame_equal(
        h_straight.drop(columns="seconds"), h_resumed.drop(columns="seconds")
    )
    assert resumed.best_epoch == 2
    for k, v in resumed.state_dict().items():
        assert torch.equal(v, straight_state[k]), k
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == 2


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
        logits = model(torch.from_numpy(xv)[:, None])
    ref = logits.argmax(1).numpy()
    # one image per batch against one batch of all: the logits agree up to float32 rounding
    # (blocking depends on the batch), so only a near tie may flip the argmax
    margin = (logits[:, 1] - logits[:, 0]).abs().numpy()
    clear = margin > 1e-4
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(pred[clear], ref[clear])
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


# ---------------------------------------------------------------- non-finite losses, checkpoints


def _finite_weights(state):
    return all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())


@pytest.mark.parametrize(("batch_size", "batch"), [(4, 0), (2, None)])
def test_one_nan_pixel_stops_at_the_first_batch_naming_the_item(data, tmp_path, batch_size, batch):
    (x, m), val = data
    x = x.copy()
    x[2, 5, 7] = np.nan  # one pixel of dataset item 2
    with pytest.raises(NonFiniteLossError) as err:
        train_segmentation(_model(), (x, m), val, epochs=2, batch_size=batch_size,
                           checkpoint_dir=tmp_path, progress=False)  # fmt: skip
    msg = str(err.value)
    assert re.search(
        rf"training loss is nan at epoch 1, batch {'[01]' if batch is None else batch}", msg
    ), msg
    assert "(dataset items [2])" in msg and "NaN/Inf" in msg
    if batch_size == 4:  # the whole set in one batch: the item's position is its shuffled slot
        assert re.search(r"in items \[[0-3]\] of the batch", msg)
    assert list(tmp_path.iterdir()) == []  # nothing written for the failed epoch


def test_nan_at_a_later_epoch_keeps_the_checkpoints_of_the_last_good_one(data, tmp_path):
    (x, m), val = data
    kw = {"batch_size": 2, "checkpoint_dir": tmp_path, "progress": False}
    train_segmentation(_model(), (x, m), val, epochs=1, **kw)
    last_before = (tmp_path / "last.pt").read_bytes()
    best_before = (tmp_path / "best.pt").read_bytes()
    bad = x.copy()
    bad[1, 0, 0] = np.inf
    with pytest.raises(NonFiniteLossError, match=r"at epoch 2, batch \d.*dataset items \[1\]"):
        train_segmentation(_model(), (bad, m), val, epochs=2, resume=True, **kw)
    assert (tmp_path / "last.pt").read_bytes() == last_before
    assert (tmp_path / "best.pt").read_bytes() == best_before


@pytest.mark.parametrize(
    ("lr", "batch_size", "match"),
    [
        # the loss itself becomes NaN at the start of epoch 2
        (1e30, 4, r"training loss is nan at epoch 2, batch 0: the inputs of that batch are "
                  r"finite, so the optimisation diverged; lower the learning rate"),
        # every loss is finite but the last step of an epoch sends the weights to Inf/NaN
        (1e6, 2, r"weights hold NaN/Inf after the last batch of epoch \d \(its loss was finite"),
    ],
)  # fmt: skip
def test_diverging_lr_with_finite_data_stops_and_best_stays_finite(
    data, tmp_path, lr, batch_size, match, pinned_threads
):
    train, val = data
    with pytest.raises(NonFiniteLossError, match=match):
        train_segmentation(
            _model(), train, val, epochs=3, lr=lr, optimizer="sgd", batch_size=batch_size,
            checkpoint_dir=tmp_path, progress=False,
        )  # fmt: skip
    assert np.isfinite(np.asarray(train[0])).all()
    for name in ("best.pt", "last.pt"):  # written for the good epochs only, all finite
        ckpt = load_checkpoint(tmp_path / name)
        assert _finite_weights(ckpt["model"]), name
    assert (
        load_checkpoint(tmp_path / "best.pt")["epoch"]
        <= load_checkpoint(tmp_path / "last.pt")["epoch"]
    )


def test_thread_count_is_recorded_and_a_change_warns_on_resume(data, tmp_path):
    train, val = data
    kw = {"batch_size": 2, "checkpoint_dir": tmp_path, "progress": False}
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        train_segmentation(_model(), train, val, epochs=1, **kw)
        assert load_checkpoint(tmp_path / "last.pt")["threads"] == 1
        assert load_checkpoint(tmp_path / "best.pt")["threads"] == 1
        torch.set_num_threads(2)
        with pytest.warns(RuntimeWarning, match="resuming with 2 torch threads.*written with 1"):
            train_segmentation(_model(), train, val, epochs=2, resume=True, **kw)
        assert load_checkpoint(tmp_path / "last.pt")["threads"] == 2
    finally:
        torch.set_num_threads(before)


def test_truncated_last_pt_names_the_file_and_what_to_do(data, tmp_path):
    train, val = data
    kw = {"batch_size": 2, "checkpoint_dir": tmp_path, "progress": False}
    train_segmentation(_model(), train, val, epochs=1, **kw)
    last = tmp_path / "last.pt"
    last.write_bytes(last.read_bytes()[:200])
    with pytest.raises(CheckpointError) as err:
        train_segmentation(_model(), train, val, epochs=2, resume=True, **kw)
    msg = str(err.value)
    assert repr(str(last)) in msg and "truncated" in msg
    assert f"delete the checkpoints in {str(tmp_path)!r} or pass resume=False" in msg


def test_unsafe_last_pt_is_refused_naming_the_file(data, tmp_path):
    train, val = data
    kw = {"batch_size": 2, "checkpoint_dir": tmp_path, "progress": False}
    train_segmentation(_model(), train, val, epochs=1, **kw)
    torch.save({"model": {}, "payload": pd.DataFrame({"a": [1]})}, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match=r"refusing to load .*last\.pt.*could run code"):
        train_segmentation(_model(), train, val, epochs=2, resume=True, **kw)


def test_resume_removes_leftover_temporary_files(data, tmp_path):
    train, val = data
    kw = {"batch_size": 2, "checkpoint_dir": tmp_path, "progress": False}
    train_segmentation(_model(), train, val, epochs=1, **kw)
    stale = [tmp_path / ".last.pt.k1ll3d.tmp", tmp_path / ".best.pt.abc123.tmp"]
    for p in stale:
        p.write_bytes(b"PK\x03\x04 half a checkpoint")
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    train_segmentation(_model(), train, val, epochs=2, resume=True, **kw)
    assert not any(p.exists() for p in stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt", "notes.txt"]
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 2


# --------------------------------------------------- schedule, Dice loss (the cpu recipe)
def test_ce_plus_dice_loss_matches_a_direct_computation():
    torch.manual_seed(1)
    logits = torch.randn(2, 2, 6, 6)
    y = torch.randint(0, 2, (2, 6, 6))
    roi = torch.rand(2, 6, 6) > 0.3
    p = np.exp(logits.numpy())
    p = (p[:, 1] / p.sum(1))[roi.numpy()]  # softmax vessel probability inside the roi
    t = (y.numpy() == 1)[roi.numpy()]
    dice = 1 - (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1)
    ce = float(_loss(logits, y, roi))
    assert float(_loss(logits, y, roi, "ce+dice")) == pytest.approx(ce + dice, rel=1e-5)
    perfect = torch.where(y == 1, 20.0, -20.0)[:, None] * torch.tensor([-1.0, 1.0])[:, None, None]
    assert float(_loss(perfect, y, None, "ce+dice")) == pytest.approx(0.0, abs=1e-6)


def test_warmup_then_cosine_learning_rates(data):
    train, val = data  # 4 training items, batch 2: 2 steps per epoch
    seen = []

    class Spy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _model()

        def forward(self, x):
            return self.net(x)

    spy = Spy()
    run_kw = {"epochs": 4, "batch_size": 2, "lr": 0.1, "progress": False}
    orig_step = torch.optim.Adam.step

    def step(self, *a, **k):
        seen.append(self.param_groups[0]["lr"])
        return orig_step(self, *a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.optim.Adam, "step", step)
        train_segmentation(spy, train, val, schedule="cosine", warmup_epochs=1, **run_kw)
    total, warm = 8, 2
    expected = [0.1 * (s + 1) / warm for s in range(warm)] + [
        0.1 * 0.5 * (1 + np.cos(np.pi * (s - warm) / (total - warm))) for s in range(warm, total)
    ]
    assert np.allclose(seen, expected)
    seen.clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.optim.Adam, "step", step)
        train_segmentation(_model(), train, val, **run_kw)  # the thesis: constant
    assert np.allclose(seen, 0.1)


def test_schedule_and_loss_arguments_are_checked(data):
    train, val = data
    with pytest.raises(ValueError, match="unknown loss 'dice'; closest: 'ce\\+dice'"):
        train_segmentation(_model(), train, val, loss="dice", progress=False)
    with pytest.raises(ValueError, match="unknown schedule"):
        train_segmentation(_model(), train, val, schedule="step", progress=False)
    with pytest.raises(
        ValueError, match="warmup_epochs must be smaller than epochs \\(2\\), got 2"
    ):
        train_segmentation(_model(), train, val, epochs=2, warmup_epochs=2, progress=False)


def test_resume_with_the_cpu_recipe_equals_one_run(data, tmp_path, pinned_threads):
    from cnnexplore_nb.training import train as train_module

    train, val = data
    kw = {"batch_size": 2, "progress": False, "seed": 2, "loss": "ce+dice",
          "schedule": "cosine", "warmup_epochs": 1, "epochs": 3}  # fmt: skip
    straight, h_straight = train_segmentation(_model(), train, val, **kw)
    original = train_module._Run.checkpoint

    def killed_after_epoch_1(self, row):
        original(self, row)
        if row["epoch"] == 1:
            raise RuntimeError("killed")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_module._Run, "checkpoint", killed_after_epoch_1)
        with pytest.raises(RuntimeError, match="killed"):
            train_segmentation(_model(), train, val, checkpoint_dir=tmp_path, **kw)
    resumed, h_resumed = train_segmentation(
        _model(seed=5), train, val, checkpoint_dir=tmp_path, resume=True, **kw
    )
    assert _same_weights(straight, resumed)
    pd.testing.assert_frame_equal(
        h_straight.drop(columns="seconds"), h_resumed.drop(columns="seconds")
    )
    with pytest.raises(ValueError, match="settings differ.*schedule='cosine' vs 'constant'"):
        train_segmentation(_model(), train, val, checkpoint_dir=tmp_path, resume=True,
                           **{**kw, "schedule": "constant"})  # fmt: skip
