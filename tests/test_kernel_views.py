"""Kernel views per output kernel and per input channel, on hand-set weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnnexplore_nb import create_model
from cnnexplore_nb.inspect import kernel_table, kernels_of


def _coded(conv: nn.Conv2d) -> nn.Conv2d:
    """weight[o, i, r, c] = 1000 o + 100 i + 10 r + c: every value says where it sits."""
    o, i, r, c = np.meshgrid(*(np.arange(s) for s in conv.weight.shape), indexing="ij")
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(1000.0 * o + 100 * i + 10 * r + c))
    return conv


@pytest.fixture
def net():
    return nn.Sequential(
        _coded(nn.Conv2d(3, 4, 3)), nn.ReLU(), _coded(nn.Conv2d(4, 6, 2, groups=2))
    )


def test_per_output_kernel_and_per_input_channel(net):
    out = kernels_of(net, "0", by="output", index=2)
    assert out.shape == (3, 3, 3)
    np.testing.assert_array_equal(out[1], 2100 + 10 * np.arange(3)[:, None] + np.arange(3))
    inp = kernels_of(net, "0", by="input", index=1)
    assert inp.shape == (4, 3, 3)
    np.testing.assert_array_equal(inp[:, 0, 0], [100, 1100, 2100, 3100])
    # the two views slice the same tensor: the (output 2, input 1) kernel is in both
    np.testing.assert_array_equal(out[1], inp[2])
    assert out.dtype == np.float64
    out[:] = 0  # a copy: the model is untouched
    assert net[0].weight[2, 1, 0, 0] == 2100


def test_grouped_convolution_returns_the_group_reading_the_channel(net):
    # groups=2: inputs 0, 1 feed outputs 0-2; inputs 2, 3 feed outputs 3-5
    inp = kernels_of(net, "2", by="input", index=3)
    np.testing.assert_array_equal(inp[:, 0, 0], [3100, 4100, 5100])
    assert kernels_of(net, "2", by="output", index=4).shape == (2, 2, 2)


def test_kernel_table_is_tidy_and_names_the_layers_input_channels(net):
    df = kernel_table(net, "2")
    assert list(df.columns) == ["out_channel", "in_channel", "row", "col", "weight"]
    assert len(df) == 6 * 2 * 2 * 2
    w = net[2].weight.detach().numpy()
    np.testing.assert_array_equal(df["weight"], w.ravel())
    row = df[(df["out_channel"] == 4) & (df["row"] == 1) & (df["col"] == 0)]
    assert list(row["in_channel"]) == [2, 3]  # group 1 reads the layer's channels 2 and 3
    l1 = df.groupby(["out_channel", "in_channel"])["weight"].apply(lambda v: v.abs().sum())
    assert l1[(0, 1)] == np.abs(w[0, 1]).sum()


def test_container_paths_use_their_first_convolution():
    cnn = create_model("cnn1", width=4)
    np.testing.assert_array_equal(
        kernels_of(cnn, "conv_module1", by="input", index=0),
        cnn.conv_module1.conv.weight.detach().double().numpy()[:, 0],
    )


BAD = [
    (lambda m: kernels_of(m, "0", by="output", index=4), IndexError,
     r"index 4 out of range for '0': expected 0 <= index < 4 \(output maps\)"),
    (lambda m: kernels_of(m, "0", by="input", index=-1), IndexError,
     r"expected 0 <= index < 3 \(input channels\)"),
    (lambda m: kernels_of(m, "0", by="channel"), ValueError,
     r"unknown by 'channel'.*Expected one of: output, input"),
    (lambda m: kernels_of(m, "1"), ValueError, r"layer '1' \(ReLU\) contains no convolution"),
    (lambda m: kernels_of(m, "0", index=1.0), TypeError, r"index must be an int, got 1.0"),
    (lambda m: kernel_table(m, "3"), ValueError, r"unknown layer '3'"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "exc", "match"), BAD)
def test_bad_arguments_are_clear_errors(net, call, exc, match):
    with pytest.raises(exc, match=match):
        call(net)
