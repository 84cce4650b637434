"""Bilevel step: the unroll oracle, SGD convention, meta-gradient by finite differences,
rollback, and seeded reproducibility of ``run``."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.utils.data import TensorDataset

from cnnexplore_nb.data import digits, per_class_subset
from cnnexplore_nb.models import create_model
from cnnexplore_nb.training import NonFiniteLossError
from cnnexplore_nb.transfer import run
from cnnexplore_nb.transfer.l2t import TransferStep, pixel_weights, sgd_momentum_step, unrolled_sgd
from cnnexplore_nb.transfer.train import build_step


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny networks: thread start-up and contention cost more than the arithmetic
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_unroll_oracle():
    """The issue's oracle: grad w.r.t. lambda after 10 recorded momentum/weight-decay steps."""
    v1 = torch.tensor([1.0, 3.0], dtype=torch.float64)
    v2 = torch.tensor([[-1.0, -2.0], [1.0, 0.0]], dtype=torch.float64)
    lam = torch.zeros(2, 2, dtype=torch.float64, requires_grad=True)
    params, _ = unrolled_sgd(
        lambda p: p["v1"].square().mean() + (lam * p["v2"].square()).sum(),
        {"v1": v1, "v2": v2}, steps=10, lr=0.1, momentum=0.9, weight_decay=0.01,
    )  # fmt: skip
    (grad,) = torch.autograd.grad((params["v1"] * params["v2"]).mean(), lam)
    expected = torch.tensor([[-1.1952, -7.1712], [1.1952, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(grad, expected, rtol=0, atol=5e-5)


def test_sgd_step_matches_torch_optim():
    torch.manual_seed(0)
    w = torch.randn(4, 3)
    model = torch.nn.Linear(3, 4, bias=False)
    with torch.no_grad():
        model.weight.copy_(w)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=0.01)
    x = torch.randn(6, 3)
    params, bufs = {"w": w.clone()}, {}
    for _ in range(3):
        opt.zero_grad()
        model(x).square().sum().backward()
        opt.step()
        p = params["w"].requires_grad_()
        (g,) = torch.autograd.grad((x @ p.T).square().sum(), p)
        params, bufs = sgd_momentum_step(
            {"w": p.detach()}, {"w": g}, bufs, lr=0.05, momentum=0.9, weight_decay=0.01
        )
    torch.testing.assert_close(params["w"], model.weight.detach(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(bufs["w"], opt.state[model.weight]["momentum_buffer"])


def _tiny_step(method="l2t_www", seed=0, lr=0.05, beta=0.5, which_input="pooled"):
    torch.manual_seed(seed)
    src = create_model("resnet32", width=0.25, num_classes=3)
    tgt = create_model("vgg9_bn", width=0.125, num_classes=3)
    step = build_step(method, src, tgt, pairs=["4-0", "14-2", "9-1"], lr=lr, beta=beta,
                      which_input=which_input, example=torch.zeros(1, 3, 32, 32))  # fmt: skip
    if step.meta is not None:  # random-source features are large: keep lambda = ReLU6(.) > 0
        with torch.no_grad():
            for lin in step.meta.where:
                lin.weight.mul_(0.01)
    return step


def _batch(seed=1, n=4, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=g, dtype=dtype), torch.randint(
        0, 3, (n,), generator=g
    )


def _step1_only(step: TransferStep, x, y):
    captured = {}
    step._meta_step = lambda *args: captured.setdefault("args", args) and 0.0
    step.step(x, y)
    del step._meta_step
    return captured["args"]


def test_rollback_restores_state_after_step1():
    full = _tiny_step()
    only1 = copy.deepcopy(full)
    meta_before = [p.detach().clone() for p in full.meta.parameters()]
    x, y = _batch()
    for _ in range(2):  # the second iteration also starts from non-empty momentum buffers
        only1.meta.load_state_dict(full.meta.state_dict())  # same meta outputs in step 1
        out = full.step(x, y)
        _step1_only(only1, x, y)
    assert out["meta_loss"] > 0
    for (n, a), b in zip(full.student.state_dict().items(), only1.student.state_dict().values()):
        assert torch.equal(a, b), n  # weights and BatchNorm buffers, bit for bit
    for pa, pb in zip(full.student.parameters(), only1.student.parameters()):
        assert torch.equal(
            full.optimizer.state[pa]["momentum_buffer"],
            only1.optimizer.state[pb]["momentum_buffer"],
        )
    changed = [not torch.equal(a, b.detach()) for a, b in zip(meta_before, full.meta.parameters())]
    assert all(changed)  # Adam moved every meta-parameter (f, g and h)


@pytest.mark.parametrize("which_input", ["pooled", "maps"])
def test_meta_gradient_matches_finite_differences(which_input):
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        # a large beta makes the meta-gradient large; "maps": h reads each channel's map
        # (the map-input h multiplies the error by larger gammas: a smaller beta keeps the
        # unrolled steps in their smooth regime, where central differences are meaningful)
        beta = 20.0 if which_input == "pooled" else 5.0
        step = _tiny_step(lr=0.2, beta=beta, which_input=which_input)
        x, y = _batch(dtype=torch.float64)
        with torch.no_grad():  # meta outputs away from their symmetric initial values
            for name, p in step.meta.named_parameters():
                scale = 0.002 if name.startswith("where") else 0.2
                if name.startswith("which") and name.endswith("weight") and p.dim() == 3:
                    scale /= p.shape[-1]  # a map-input h sums H*W inputs
                p.add_(torch.randn_like(p) * scale)
        _, _, src, weights = _step1_only(step, x, y)
        sizes = [tuple(a.shape[-2:]) for a in weights]
        raw = step.source_features(x)
        step.meta_optimizer.param_groups[0]["lr"] = 0.0

        def meta_loss(s: TransferStep) -> float:
            w = pixel_weights(s.meta_outputs(raw), sizes, len(x), s.beta)
            return TransferStep._meta_step(s, x, y, src, w)

        exact = copy.deepcopy(step)
        meta_loss(exact)
        grads = {n: p.grad.clone() for n, p in exact.meta.named_parameters()}
        # directional derivatives along the gradient of each meta-network (f, g, h) and along
        # a random direction: central differences vs the unrolled autograd gradient
        gen = torch.Generator().manual_seed(0)
        directions = {
            part: {n: g if n.startswith(part) else torch.zeros_like(g) for n, g in grads.items()}
            for part in ("what", "where", "which")
        }
        directions["random"] = {n: torch.randn(g.shape, generator=gen) for n, g in grads.items()}
        for label, d in directions.items():
            norm = torch.sqrt(sum(v.square().sum() for v in d.values()))
            d = {n: v / norm for n, v in d.items()}
            exact_dd = float(sum((grads[n] * d[n]).sum() for n in grads))
            # the unrolled ReLU networks have kinks: the step stays below the scale at which one is
            # crossed (about 1e-7 of a unit move of the map-input h, which sums H*W large inputs;
            # float64 keeps the difference quotient accurate to ~1e-6 there)
            eps = 1e-6 / (1 + abs(exact_dd))
            vals = []
            for sign in (1, -1):
                s = copy.deepcopy(step)
                with torch.no_grad():
                    for n, p in s.meta.named_parameters():
                        p.add_(sign * eps * d[n])
                vals.append(meta_loss(s))
            fd = (vals[0] - vals[1]) / (2 * eps)
            assert exact_dd == pytest.approx(fd, rel=1e-3), label
        assert min(float(g.abs().max()) for g in grads.values()) > 0
    finally:
        torch.set_default_dtype(old)


@pytest.fixture(scope="module")
def tiny_data():
    full = digits("train", classes=[0, 1, 2], size=32)
    train, val = per_class_subset(full, 4, rng=0, val_per_class=2)
    test = per_class_subset(digits("test", classes=[0, 1, 2], size=32), 4, rng=0)
    return {"train": train, "val": val, "test": test}


@pytest.fixture(scope="module")
def tiny_source():
    torch.manual_seed(0)
    return create_model("resnet32", width=0.25, num_classes=3)


def test_run_reproducible_bit_for_bit(tiny_data, tiny_source):
    # lr 0.02: at the default 0.1 these tiny networks' matching loss explodes and the
    # meta-loss of some seeds becomes NaN (run stops with NonFiniteLossError)
    kw = dict(source=tiny_source, target="vgg9_bn", data=tiny_data, epochs=2, batch_size=8,
              lr=0.02, target_kwargs={"width": 0.125}, progress=False,
              return_model=True)  # fmt: skip
    a = run("l2t_www", seed=3, **kw)
    b = run("l2t_www", seed=3, **kw)
    c = run("l2t_www", seed=4, **kw)
    assert a["history"] == b["history"] and a["test_acc"] == b["test_acc"]
    for pa, pb in zip(a["model"].state_dict().values(), b["model"].state_dict().values()):
        assert torch.equal(pa, pb)
    assert a["history"] != c["history"]
    assert set(a) >= {"test_acc", "best_epoch", "seconds", "history", "pairs", "best_val_acc"}
    assert 1 <= a["best_epoch"] <= 2 and len(a["pairs"]) == 15
    best = a["history"][a["best_epoch"] - 1]["val_acc"]
    assert best == max(h["val_acc"] for h in a["history"]) == a["best_val_acc"]


@pytest.mark.parametrize("method", ["scratch", "ufm", "l2t_ww", "attention"])
def test_run_methods(method, tiny_data, tiny_source):
    rec = run(method, source=tiny_source, target="vgg9_bn", data=tiny_data, epochs=1, seed=0,
              batch_size=12, target_kwargs={"width": 0.125}, progress=False, snapshot=True)  # fmt: skip
    assert 0.0 <= rec["test_acc"] <= 1.0 and rec["best_epoch"] == 1
    snaps = rec["snapshots"]
    assert [s["epoch"] for s in snaps] == [0, 1]
    assert "features.0.weight[4, 2, 2, 0]" in snaps[1]
    if method == "l2t_ww":
        assert len(snaps[0]["lam"]) == 15 and "gamma" not in snaps[0]
        assert snaps[0]["w"][0] == pytest.approx([1 / 4] * 4)  # zero-init f at epoch 0


def test_run_snapshots_gamma(tiny_data, tiny_source):
    rec = run("l2t_www", source=tiny_source, target="vgg9_bn", data=tiny_data, epochs=1, seed=0,
              batch_size=12, target_kwargs={"width": 0.125}, progress=False, snapshot=True,
              pairs=["14-3"])  # fmt: skip
    g0 = torch.tensor(rec["snapshots"][0]["gamma"][0])
    assert g0.shape == (16, 3, 3)
    torch.testing.assert_close(g0, torch.ones(16, 3, 3))


def test_run_bad_inputs(tiny_data, tiny_source):
    kw = dict(
        source=tiny_source, target="vgg9_bn", data=tiny_data, epochs=1, seed=0, progress=False
    )
    with pytest.raises(ValueError, match="source tap 20"):
        run("l2t_www", pairs=["20-0"], **kw)
    with pytest.raises(ValueError, match="unknown method 'l2t_wwww'.*closest: 'l2t_www'"):
        run("l2t_wwww", **kw)
    with pytest.raises(TypeError, match="unknown setting 'batchsize'.*batch_size"):
        run("scratch", batchsize=3, **kw)
    with pytest.raises(KeyError, match="missing \\['test'\\]"):
        run("scratch", **{**kw, "data": {"train": tiny_data["train"], "val": tiny_data["val"]}})


# ---------------------------------------------------------------- non-finite losses


def _float_data(tiny_data, nan_item=None):
    """The tiny split as float tensors (uint8 images cannot hold NaN), one pixel NaN."""
    x, y = tiny_data["train"].batch(torch.arange(len(tiny_data["train"])))
    if nan_item is not None:
        x = x.clone()
        x[nan_item, 1, 3, 4] = float("nan")
    return {"train": TensorDataset(x, y), "val": tiny_data["val"], "test": tiny_data["test"]}


@pytest.mark.parametrize("method", ["scratch", "l2t_www"])
def test_run_stops_at_a_nan_pixel_naming_epoch_batch_and_item(tiny_data, tiny_source, method):
    data = _float_data(tiny_data, nan_item=5)
    # an independent reference for the batch holding item 5: the same seeded permutation
    order = torch.randperm(len(data["train"]), generator=torch.Generator().manual_seed(0))
    batch, pos = divmod(order.tolist().index(5), 8)
    with pytest.raises(NonFiniteLossError) as err:
        run(method, source=tiny_source, target="vgg9_bn", data=data, epochs=2, seed=0,
            batch_size=8, target_kwargs={"width": 0.125}, progress=False)  # fmt: skip
    assert str(err.value) == (
        f"training loss is nan at epoch 1, batch {batch}: the inputs hold NaN/Inf values in "
        f"items [{pos}] of the batch (dataset items [5]); clean the data (e.g. "
        "numpy.nan_to_num) or drop those items"
    )


@pytest.mark.parametrize(
    ("lr", "match"),
    [
        (1e30, r"training loss is nan at epoch \d, batch \d: the inputs of that batch are "
               r"finite, so the optimisation diverged; lower the learning rate"),
        (1e3, r"target's weights hold NaN/Inf after the last batch of epoch \d"),
    ],
)  # fmt: skip
def test_run_with_a_diverging_lr_stops_instead_of_keeping_nan_weights(tiny_data, lr, match):
    data = _float_data(tiny_data)
    assert torch.isfinite(data["train"].tensors[0]).all()
    with pytest.raises(NonFiniteLossError, match=match):
        run("scratch", source=None, target="vgg9_bn", data=data, epochs=3, seed=0, lr=lr,
            batch_size=8, target_kwargs={"width": 0.125}, progress=False)  # fmt: skip


def test_run_records_its_thread_count(tiny_data, tiny_source):
    kw = dict(source=tiny_source, target="vgg9_bn", data=tiny_data, epochs=1, seed=0,
              batch_size=12, target_kwargs={"width": 0.125}, progress=False)  # fmt: skip
    assert run("scratch", **kw)["torch_threads"] == torch.get_num_threads() == 1
    rec = run("scratch", num_threads=2, **kw)
    assert rec["torch_threads"] == 2 and torch.get_num_threads() == 1  # restored


def test_a_nan_meta_loss_stops_the_run_too():
    from cnnexplore_nb.transfer.train import _check_finite

    x = torch.zeros(3, 1, 2, 2)
    _check_finite({"loss": 1.0, "meta_loss": 0.5}, 1, 0, x, [4, 0, 2])  # finite: no error
    first = r"^meta-loss is nan at epoch 2, batch 1: the inputs of that batch are finite, so"
    with pytest.raises(NonFiniteLossError, match=first):
        _check_finite({"loss": 1.0, "meta_loss": float("nan")}, 2, 1, x, [4, 0, 2])
    x[1, 0, 1, 1] = float("inf")
    with pytest.raises(NonFiniteLossError, match=r"items \[1\] of the batch \(dataset items \[0\]"):
        _check_finite({"loss": float("inf")}, 1, 0, x, [4, 0, 2])
