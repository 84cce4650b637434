"""Seeds trained together (``run_many``) against the sequential ``run`` of each seed."""

from __future__ import annotations

import math

import pytest
import torch
from _transfer_helpers import F64, float64_on_one_thread
from torch.utils.data import TensorDataset

from cnnexplore_nb.data import digits, per_class_subset
from cnnexplore_nb.data.classification import Augment
from cnnexplore_nb.models import create_model
from cnnexplore_nb.training import NonFiniteLossError
from cnnexplore_nb.transfer import run, run_many

SEEDS = (3, 8)


@pytest.fixture(autouse=True, scope="module")
def _float64_one_thread():
    """float64 for the whole module (its module-scoped networks too): the stacked
    convolutions sum in another order, and in float64 the difference stays far below the
    1e-4 tolerance over several epochs, whatever the BLAS blocking."""
    with float64_on_one_thread():
        yield


@pytest.fixture(scope="module")
def pool():
    return digits("train", classes=[0, 1, 2], size=32), digits("test", classes=[0, 1, 2], size=32)


def _data(pool, seed):
    """One seed's split: its own 4-per-class draw, augmented (crops and flips per seed)."""
    train_pool, test = pool
    train, val = per_class_subset(train_pool, 4, rng=seed, val_per_class=2)
    test = per_class_subset(test, 3, rng=0)
    return {"train": F64(train.with_transform(Augment(pad=2, flip=True))), "val": F64(val),
            "test": F64(test)}  # fmt: skip


@pytest.fixture(scope="module")
def source():
    torch.manual_seed(0)
    return create_model("resnet32", width=0.25, num_classes=3)


def _flat(value) -> list[float]:
    """Nested lists (per-pair w / gamma of different lengths) as one flat list."""
    if isinstance(value, (list, tuple)):
        return [v for item in value for v in _flat(item)]
    return [float(value)]


KW = dict(target="vgg9_bn", epochs=3, batch_size=8, lr=0.02, target_kwargs={"width": 0.125},
          progress=False, snapshot=True)  # fmt: skip
PAIRS = ["4-0", "9-1", "14-2", "4-3", "14-4"]  # every target tap, every source stage
LOSSES = ("loss", "ce", "matching", "meta_loss", "train_acc")


@pytest.mark.parametrize("method", ["scratch", "ufm", "l2t_ww", "l2t_www", "attention"])
def test_each_seed_matches_its_sequential_run(method, pool, source):
    datas = [_data(pool, s) for s in SEEDS]
    kw = KW if method in ("scratch", "attention") else {**KW, "pairs": PAIRS}
    many = run_many(method, source=source, data=datas, seeds=SEEDS, **kw)
    for seed, d, rec in zip(SEEDS, datas, many):
        ref = run(method, source=source, data=d, seed=seed, **kw)
        assert rec["seed"] == seed and rec["group_size"] == len(SEEDS)
        assert len(rec["history"]) == len(ref["history"]) == 3
        for got, want in zip(rec["history"], ref["history"]):
            for key in LOSSES:
                if math.isnan(want[key]):
                    assert math.isnan(got[key]), key
                else:
                    assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-7), key
            assert got["lr"] == want["lr"]
        # accuracies count items: equal unless a logit tie is decided by rounding
        assert [h["val_acc"] for h in rec["history"]] == [h["val_acc"] for h in ref["history"]]
        for key in ("test_acc", "best_epoch", "best_val_acc", "n_train", "pairs"):
            assert rec[key] == ref[key], key
        assert len(rec["snapshots"]) == len(ref["snapshots"]) == 4
        for got, want in zip(rec["snapshots"], ref["snapshots"]):
            assert set(got) == set(want)
            for key in set(want) - {"epoch"}:
                assert _flat(got[key]) == pytest.approx(_flat(want[key]), rel=1e-4, abs=1e-7)


def test_one_shared_mapping_and_returned_models(pool, source):
    d = _data(pool, 0)
    many = run_many("l2t_www", source=source, data=d, seeds=[1, 2], return_model=True,
                    **{**KW, "epochs": 1, "snapshot": False})  # fmt: skip
    ref = run("l2t_www", source=source, data=d, seed=2, return_model=True,
              **{**KW, "epochs": 1, "snapshot": False})  # fmt: skip
    state, want = many[1]["model"].state_dict(), ref["model"].state_dict()
    for name in want:
        torch.testing.assert_close(state[name], want[name], rtol=1e-4, atol=1e-5)
    assert many[0]["history"] != many[1]["history"]


def test_a_diverging_seed_fails_alone(pool):
    """Seed 1's data hold a NaN pixel: its error takes its place, the others train on."""
    datas = []
    for s in (0, 1, 2):
        d = _data(pool, s)
        x, y = d["train"].ds.with_transform(None).batch(torch.arange(len(d["train"])))
        x = x.double()
        if s == 1:
            x = x.clone()
            x[2, 0, 5, 5] = float("nan")
        datas.append({**d, "train": TensorDataset(x, y)})
    kw = {**KW, "snapshot": False, "epochs": 2}
    out = run_many("scratch", source=None, data=datas, seeds=[0, 1, 2], errors="return", **kw)
    assert isinstance(out[1], NonFiniteLossError) and "epoch 1" in str(out[1])
    for i in (0, 2):
        ref = run("scratch", source=None, data=datas[i], seed=i, **kw)
        assert [h["loss"] for h in out[i]["history"]] == pytest.approx(
            [h["loss"] for h in ref["history"]], rel=1e-4
        )
    with pytest.raises(NonFiniteLossError, match="training loss is nan at epoch 1"):
        run_many("scratch", source=None, data=datas, seeds=[0, 1, 2], **kw)


def test_bad_inputs(pool, source):
    d = _data(pool, 0)
    kw = dict(source=source, target="vgg9_bn", epochs=1, progress=False)
    with pytest.raises(ValueError, match="one mapping per seed \\(2\\), got 1"):
        run_many("scratch", data=[d], seeds=[0, 1], **kw)
    small = {**d, "train": F64(per_class_subset(pool[0], 2, rng=0))}
    with pytest.raises(ValueError, match="'train' split must have the same size.*\\[12, 6\\]"):
        run_many("scratch", data=[d, small], seeds=[0, 1], **kw)
    with pytest.raises(ValueError, match="distinct"):
        run_many("scratch", data=d, seeds=[1, 1], **kw)
    with pytest.raises(TypeError, match="registered name 'resnet32'"):
        run_many("ufm", data=d, seeds=[0], **{**kw, "source": "resnet32"})
    with pytest.raises(TypeError, match="unknown setting 'batchsize'"):
        run_many("scratch", data=d, seeds=[0], batchsize=3, **kw)
