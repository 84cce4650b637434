"""The study's new arms at the level of transfer.run: FitNets' one hint pair (ufm_hint), the
frozen meta-networks (meta_lr=0) and the map-input which-network as L2T-www's default."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnexplore_nb.data import digits, per_class_subset
from cnnexplore_nb.models import create_model
from cnnexplore_nb.transfer import build_step, run
from cnnexplore_nb.transfer.matching import hint_pair


def test_hint_pair_of_the_reference_networks_is_the_middle_stage_end_at_its_resolution():
    src = create_model("resnet32", num_classes=200)
    tgt = create_model("vgg9_bn", num_classes=10)
    # ResNet-32: stage ends 4, 9, 14 at reductions 1, 2, 4; VGG-9 taps at 1, 2, 4, 8, 16
    assert hint_pair(src.feature_info, tgt.feature_info) == (9, 1)


def _info(reductions: list[int]) -> list[dict]:
    return [{"module": f"m{i}", "num_chs": 8, "reduction": r} for i, r in enumerate(reductions)]


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        # four stages (ends 1, 3, 5, 6): the earlier middle end, tap 3 at reduction 4; the
        # target's last tap at reduction 4 is 3
        ([2, 2, 4, 4, 8, 8, 16], [2, 4, 4, 4, 8], (3, 3)),
        # no target tap at the hint's resolution (4): the closest on a log scale (8 over 1)
        ([1, 4, 16], [1, 8, 32], (1, 1)),
        # a one-resolution source (an FCN): its single stage end, the last tap
        ([1, 1, 1], [1, 2], (2, 0)),
    ],
)  # fmt: skip
def test_hint_pair_rules_on_hand_written_tap_lists(source, target, expected):
    assert hint_pair(_info(source), _info(target)) == expected


class _TwoStage(nn.Module):
    """A source written outside the package: two stages, its own feature_info."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU())
        self.c = nn.Sequential(nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Linear(8, 3)
        self.feature_info = [{"module": "a", "num_chs": 4, "reduction": 1},
                             {"module": "b", "num_chs": 6, "reduction": 2},
                             {"module": "c", "num_chs": 8, "reduction": 4}]  # fmt: skip

    def forward(self, x):
        return self.head(self.c(self.b(self.a(x))).mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def tiny():
    pool = digits("train", classes=[0, 1, 2], size=32)
    train, val = per_class_subset(pool, 4, rng=0, val_per_class=2)
    test = per_class_subset(digits("test", classes=[0, 1, 2], size=32), 3, rng=0)
    torch.manual_seed(0)
    return {"train": train, "val": val, "test": test}


KW = dict(target="vgg9_bn", epochs=2, batch_size=6, lr=0.02, target_kwargs={"width": 0.125},
          progress=False, num_threads=1)  # fmt: skip


def test_ufm_hint_is_ufm_on_its_one_derived_pair(tiny):
    source = _TwoStage()
    hint = run("ufm_hint", source=source, data=tiny, seed=1, return_model=True, **KW)
    assert hint["pairs"] == ["1-1"]  # the middle of the three stage ends, at reduction 2
    same = run("ufm", source=source, data=tiny, seed=1, pairs=["1-1"], return_model=True, **KW)

    def losses(rec):  # meta_loss is NaN for both (no meta-networks), and NaN != NaN
        return [{k: v for k, v in h.items() if k != "meta_loss"} for h in rec["history"]]

    assert losses(hint) == losses(same)  # the very same computation, bit for bit
    for a, b in zip(hint["model"].state_dict().values(), same["model"].state_dict().values()):
        assert torch.equal(a, b)
    ref = run("ufm_hint", source=create_model("resnet32", width=0.25, num_classes=3),
              data=tiny, seed=0, **{**KW, "epochs": 1})  # fmt: skip
    assert ref["pairs"] == ["9-1"]
    override = run("ufm_hint", source=source, data=tiny, seed=0, pairs=["2-3"], **KW)
    assert override["pairs"] == ["2-3"]


@pytest.mark.parametrize("method", ["l2t_ww", "l2t_www"])
def test_frozen_meta_networks_keep_their_initial_values_and_skip_the_look_ahead(method):
    torch.manual_seed(0)
    src = create_model("resnet32", width=0.25, num_classes=3).eval()
    x, y = torch.randn(6, 3, 32, 32), torch.randint(0, 3, (6,))
    torch.manual_seed(1)
    frozen = build_step(method, src, create_model("vgg9_bn", width=0.125, num_classes=3),
                        meta_lr=0, lr=0.02, example=x)  # fmt: skip
    torch.manual_seed(1)
    learning = build_step(method, src, create_model("vgg9_bn", width=0.125, num_classes=3),
                          lr=0.02, example=x)  # fmt: skip
    start = {k: v.clone() for k, v in frozen.meta.state_dict().items()}
    for a, b in zip(start.values(), learning.meta.state_dict().values()):
        assert torch.equal(a, b)  # the same seed: the same random λ start as the learning arm
    called = []
    frozen._meta_step = lambda *a: called.append(1)  # the look-ahead must never run
    for _ in range(3):
        out = frozen.step(x, y)
    assert not called and "meta_loss" not in out and frozen.meta_optimizer is None
    for k, v in frozen.meta.state_dict().items():
        assert torch.equal(v, start[k]), k
    # the target's first update is the learning arm's real step (the same weights, λ, w, γ)
    torch.manual_seed(1)
    first = build_step(method, src, create_model("vgg9_bn", width=0.125, num_classes=3),
                       meta_lr=0, lr=0.02, example=x)  # fmt: skip
    learning._meta_step = lambda *a: 0.0  # step 1 only
    first.step(x, y)
    learning.step(x, y)
    for a, b in zip(first.student.parameters(), learning.student.parameters()):
        assert torch.equal(a, b)


def test_a_frozen_run_records_constant_meta_outputs_and_the_learning_arms_start(tiny):
    torch.manual_seed(0)
    source = create_model("resnet32", width=0.25, num_classes=3)
    frozen = run("l2t_ww", source=source, data=tiny, seed=2, meta_lr=0, snapshot=True,
                 pairs=["4-0", "14-2"], **KW)  # fmt: skip
    learned = run("l2t_ww", source=source, data=tiny, seed=2, snapshot=True,
                  pairs=["4-0", "14-2"], **KW)  # fmt: skip
    for key in ("lam", "w"):  # the same probe: the same frozen λ and w every epoch
        values = [s[key] for s in frozen["snapshots"]]
        assert all(v == values[0] for v in values), key
        assert frozen["snapshots"][0][key] == learned["snapshots"][0][key], key
    # (λ of this random source sits at ReLU6's ends, where it cannot move; w learns)
    assert learned["snapshots"][-1]["w"] != learned["snapshots"][0]["w"]
    assert all(h["meta_loss"] != h["meta_loss"] for h in frozen["history"])  # NaN: none
    key = "features.0.weight[4, 2, 2, 0]"
    assert frozen["snapshots"][0][key] == learned["snapshots"][0][key]  # same target init


def test_the_map_input_which_network_is_l2t_wwws_default(tiny):
    x, _ = tiny["train"].batch(torch.arange(4))
    step = build_step("l2t_www", create_model("resnet32", width=0.25, num_classes=3),
                      create_model("vgg9_bn", width=0.125, num_classes=3), example=x)  # fmt: skip
    assert step.meta.which_input == "maps"
    assert [tuple(h.size) for h in step.meta.which] == [(32, 32)] * 5 + [(16, 16)] * 5 + [
        (8, 8)
    ] * 5
    one_batch = {**KW, "epochs": 1, "batch_size": 12}  # the first loss: before any meta step
    source = create_model("resnet32", width=0.25, num_classes=3)
    rec = run("l2t_www", source=source, data=tiny, seed=0, snapshot=True, pairs=["14-3"],
              **one_batch)  # fmt: skip
    pooled = run("l2t_www", source=source, data=tiny, seed=0, snapshot=True, pairs=["14-3"],
                 which_input="pooled", **one_batch)  # fmt: skip
    # both start at gamma = 1: the same first loss; then each h learns its own gamma
    assert rec["history"][0]["loss"] == pytest.approx(pooled["history"][0]["loss"], rel=1e-5)
    assert rec["snapshots"][-1]["gamma"] != pooled["snapshots"][-1]["gamma"]
