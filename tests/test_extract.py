"""ActivationRecorder, extract_activations and kernels against manual forwards."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnexplore_nb import ActivationRecorder, create_model, extract_activations, kernels
from cnnexplore_nb.inspect import InPlaceOverwriteError, LayerNotExecutedError

# Batched and unbatched forwards of the same images are not bit-identical: BLAS/oneDNN choose
# their blocking (and so the order of each sum) from the batch shape and the thread count.
# float32 rounding of these small nets stays far below this; a plumbing error (wrong image,
# wrong layer, overwritten output) is O(1).
BATCHING = {"rtol": 1e-5, "atol": 1e-5}


def all_hooks(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in model.modules()
    )


@pytest.fixture
def cnn():
    torch.manual_seed(0)
    model = create_model("cnn6", width=8)
    model.eval()
    # non-trivial BN statistics so BN is not the identity
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model


class BnRelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.bn = nn.BatchNorm2d(2)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class SharedConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)

    def forward(self, x):
        return self.conv(self.conv(x) * 2.0)


class TupleOut(nn.Module):
    def forward(self, x):
        return x * 3.0, x.sum()


class WithTuple(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pair = TupleOut()
        self.unused = nn.Conv2d(1, 1, 1)

    def forward(self, x):
        y, _ = self.pair(x)
        return y + 1


class InplaceAdd(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1)

    def forward(self, x):
        y = self.conv(x)
        y += 1.0  # functional in-place op, not a module
        return y


def test_records_layers_and_removes_hooks(cnn):
    x = torch.randn(2, 1, 12, 12)
    before = all_hooks(cnn)
    with ActivationRecorder(cnn, ["conv_module1", "classifier"]) as rec:
        out = cnn(x)
    assert all_hooks(cnn) == before == 0
    acts = rec.activations
    assert list(acts) == ["conv_module1", "classifier"]
    torch.testing.assert_close(acts["classifier"], out, rtol=0, atol=0)
    m1 = cnn.conv_module1
    manual = F.relu(m1.bn(m1.conv(x)))
    torch.testing.assert_close(acts["conv_module1"], manual, rtol=0, atol=1e-6)


def test_no_hook_left_after_forward_raises(cnn):
    with pytest.raises(RuntimeError, match="boom"):
        with ActivationRecorder(cnn, ["conv_module1", "conv_module3.bn"], clone="auto"):
            cnn(torch.randn(1, 1, 8, 8))
            raise RuntimeError("boom")
    assert all_hooks(cnn) == 0
    # a forward that itself raises (wrong channel count) inside the with
    with pytest.raises(RuntimeError):
        with ActivationRecorder(cnn, None):
            cnn(torch.randn(1, 3, 8, 8))
    assert all_hooks(cnn) == 0


def test_explicit_remove_and_reuse(cnn):
    rec = ActivationRecorder(cnn, "conv_module2")
    with rec:
        cnn(torch.randn(1, 1, 6, 6))
    first = rec.activations["conv_module2"]
    rec.remove()
    assert all_hooks(cnn) == 0
    with rec:
        cnn(torch.randn(1, 1, 6, 6))
    assert not torch.equal(first, rec.activations["conv_module2"])


@pytest.mark.parametrize("clone", [True, "auto"])
def test_inplace_relu_cannot_overwrite_bn_output(clone):
    torch.manual_seed(1)
    model = BnRelu().eval()
    x = torch.randn(1, 1, 8, 8)
    with ActivationRecorder(model, ["bn", "relu"], clone=clone) as rec:
        model(x)
    bn = model.bn(model.conv(x))
    assert (bn < 0).any()  # otherwise the test proves nothing
    torch.testing.assert_close(rec.activations["bn"], bn, rtol=0, atol=0)
    torch.testing.assert_close(rec.activations["relu"], bn.clamp_min(0), rtol=0, atol=0)


def test_clone_false_detects_overwrite():
    model = BnRelu().eval()
    with pytest.raises(RuntimeError, match=r"modified in place.*clone=True"):
        with ActivationRecorder(model, ["bn"], clone=False):
            model(torch.randn(1, 1, 8, 8))
    assert all_hooks(model) == 0


def test_auto_clone_detects_functional_inplace_then_copies():
    model = InplaceAdd().eval()
    x = torch.randn(1, 1, 4, 4)
    rec = ActivationRecorder(model, ["conv"], clone="auto")
    with pytest.raises(InPlaceOverwriteError, match=r"\['conv'\] were modified in place") as err:
        with rec:
            model(x)
    assert err.value.keys == ["conv"]
    with rec:  # the recorder learnt to copy that layer
        model(x)
    torch.testing.assert_close(rec.activations["conv"], model.conv(x), rtol=0, atol=0)  # same call
    # extract_activations re-runs the batch by itself; one image per batch against a batch of
    # two: GEMM blocking may differ with the batch, so equal up to float32 rounding
    got = extract_activations(model, torch.cat([x, 2 * x]), "conv", batch_size=1, progress=False)
    ref = model.conv(torch.cat([x, 2 * x])).detach()
    torch.testing.assert_close(got["conv"], ref, **BATCHING)
    with pytest.raises(InPlaceOverwriteError):
        extract_activations(model, x, "conv", clone=False, progress=False)
    assert all_hooks(model) == 0


def test_module_called_twice_recorded_per_call():
    model = SharedConv()
    with torch.no_grad():
        model.conv.weight.zero_()
        model.conv.weight[0, 0, 1, 1] = 3.0  # identity times 3
    x = torch.randn(1, 1, 5, 5)
    with ActivationRecorder(model, "conv") as rec:
        out = model(x)
    acts = rec.activations
    assert list(acts) == ["conv", "conv#1"]
    torch.testing.assert_close(acts["conv"], 3 * x)
    torch.testing.assert_close(acts["conv#1"], 18 * x)
    torch.testing.assert_close(acts["conv#1"], out)
    assert len(rec.calls["conv"]) == 2


def test_tuple_output_records_first_tensor_and_missing_layer_errors():
    model = WithTuple()
    x = torch.randn(1, 1, 3, 3)
    with pytest.raises(LayerNotExecutedError, match=r"\['unused'\] never ran"):
        with ActivationRecorder(model, ["pair", "unused"]) as rec:
            model(x)
    assert all_hooks(model) == 0
    torch.testing.assert_close(rec.calls["pair"][0], 3 * x)
    with pytest.raises(LayerNotExecutedError, match="unused"):
        rec.activations  # noqa: B018


def test_no_forward_recorded_error(cnn):
    rec = ActivationRecorder(cnn, "conv_module1")
    with pytest.raises(LayerNotExecutedError, match="no forward pass"):
        rec.activations  # noqa: B018


def test_dtype_device_and_detach(cnn):
    x = torch.randn(1, 1, 6, 6, requires_grad=True)
    with ActivationRecorder(cnn, "conv_module1", dtype=torch.float16) as rec:
        cnn(x)
    a = rec.activations["conv_module1"]
    assert a.dtype == torch.float16 and a.device.type == "cpu" and not a.requires_grad
    with ActivationRecorder(cnn, "conv_module1", detach=False, device=None) as rec2:
        cnn(x)
    b = rec2.activations["conv_module1"]
    assert b.requires_grad
    torch.testing.assert_close(a.float(), b.detach(), atol=1e-2, rtol=1e-2)


def test_streaming_callback_without_storing(cnn):
    seen = {}
    x = torch.randn(2, 1, 6, 6)
    rec = ActivationRecorder(
        cnn, ["conv_module1", "conv_module2"], on_activation=seen.__setitem__, store=False
    )
    with rec:
        cnn(x)
    assert sorted(seen) == ["conv_module1", "conv_module2"]
    assert rec.calls["conv_module1"] == []
    full = extract_activations(cnn, x, ["conv_module2"], progress=False)
    torch.testing.assert_close(seen["conv_module2"], full["conv_module2"])


def test_recorder_bad_inputs(cnn):
    with pytest.raises(ValueError, match=r"unknown layer 'conv_modul1'; closest: 'conv_module1'"):
        ActivationRecorder(cnn, ["conv_modul1"])
    with pytest.raises(ValueError, match="zero layers selected"):
        ActivationRecorder(cnn, [])
    with pytest.raises(TypeError, match="torch.nn.Module"):
        ActivationRecorder("cnn6", ["conv_module1"])
    with pytest.raises(ValueError, match="clone must be"):
        ActivationRecorder(cnn, "conv_module1", clone="yes")
    with pytest.raises(ValueError, match="store=False"):
        ActivationRecorder(cnn, "conv_module1", store=False)


def test_extract_matches_manual_forward_and_restores_mode(cnn):
    cnn.train()
    x = torch.randn(5, 1, 10, 10)
    acts = extract_activations(cnn, x, None, batch_size=2, progress=False)
    assert cnn.training
    assert list(acts) == [f"conv_module{i}" for i in range(1, 7)]
    cnn.eval()
    with torch.no_grad():
        h = x
        for i, m in enumerate(cnn.conv_modules, start=1):
            h = torch.clamp_min(F.batch_norm(
                F.conv2d(h, m.conv.weight, m.conv.bias, padding=1),
                m.bn.running_mean, m.bn.running_var, m.bn.weight, m.bn.bias, eps=m.bn.eps,
            ), 0)  # fmt: skip
            torch.testing.assert_close(acts[f"conv_module{i}"], h, rtol=1e-5, atol=1e-5)
            assert acts[f"conv_module{i}"].shape == (5, 8, 10, 10)


def test_extract_batch_size_invariance_and_auto_clone(cnn):
    x = torch.randn(4, 1, 9, 9)
    layers = ["conv_module1.bn", "conv_module2", "classifier"]
    a = extract_activations(cnn, x, layers, batch_size=1, progress=False)
    b = extract_activations(cnn, x, layers, batch_size=4, progress=False, clone="auto")
    for k in layers:
        torch.testing.assert_close(a[k], b[k], **BATCHING)
    assert (a["conv_module1.bn"] < 0).any()  # BN output kept before the in-place ReLU


def test_extract_dataset_and_single_image(cnn):
    x = torch.randn(3, 1, 7, 7)

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return x[i], i

    ref = extract_activations(cnn, x, "conv_module3", progress=False)["conv_module3"]
    got = extract_activations(cnn, DS(), "conv_module3", batch_size=2, progress=False)
    torch.testing.assert_close(got["conv_module3"], ref, **BATCHING)
    one = extract_activations(cnn, x[1], "conv_module3", progress=False)["conv_module3"]
    torch.testing.assert_close(one, ref[1:2], **BATCHING)


@pytest.mark.parametrize(
    ("images", "layers", "exc", "match"),
    [
        (torch.zeros(0, 1, 4, 4), None, ValueError, "empty"),
        (torch.zeros(4, 4), None, ValueError, r"\(N, C, H, W\).*got shape \(4, 4\)"),
        (torch.zeros(1, 1, 1, 4, 4), None, ValueError, "got shape \\(1, 1, 1, 4, 4\\)"),
        ([], None, ValueError, "empty list"),
        ("img.png", None, TypeError, "torch.Tensor, a numpy array or a list of images"),
        (torch.zeros(1, 1, 4, 4), "conv_module9", ValueError, "unknown layer 'conv_module9'"),
    ],
)
def test_extract_bad_inputs(cnn, images, layers, exc, match):
    with pytest.raises(exc, match=match):
        extract_activations(cnn, images, layers, progress=False)
    assert all_hooks(cnn) == 0


def test_extract_rejects_non_module():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        extract_activations(lambda x: x, torch.zeros(1, 1, 4, 4), progress=False)


def test_kernels(cnn):
    w = kernels(cnn, "conv_module2")
    torch.testing.assert_close(w, cnn.conv_module2.conv.weight.detach(), rtol=0, atol=0)
    assert w.shape == (8, 8, 3, 3)
    w.zero_()  # a copy: the model is untouched
    assert cnn.conv_module2.conv.weight.abs().sum() > 0
    assert kernels(cnn, "classifier").shape == (2, 8, 3, 3)
    with pytest.raises(ValueError, match=r"'conv_module2.bn' \(BatchNorm2d\) contains no conv"):
        kernels(cnn, "conv_module2.bn")
    with pytest.raises(ValueError, match="unknown layer"):
        kernels(cnn, "conv")
