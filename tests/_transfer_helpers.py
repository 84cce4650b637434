"""Shared helpers of the transfer tests."""

from __future__ import annotations

import contextlib

import pytest
import torch


class F64:
    """A dataset whose batches are float64 (ImageClassification batches are float32)."""

    def __init__(self, ds):
        self.ds, self.num_classes = ds, ds.num_classes

    def __len__(self):
        return len(self.ds)

    def batch(self, idx, *, generator=None):
        x, y = self.ds.batch(idx, generator=generator)
        return x.double(), y

    def with_transform(self, transform):
        return F64(self.ds.with_transform(transform))


@contextlib.contextmanager
def float64_on_one_thread():
    """float64 on one thread: stacked (run_many) and sequential runs sum in other orders; the
    tiny nets amplify rounding by about 10x per step, which float64 keeps far below 1e-4."""
    before, dtype = torch.get_num_threads(), torch.get_default_dtype()
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(dtype)
        torch.set_num_threads(before)


@pytest.fixture
def float64_one_thread():
    """:func:`float64_on_one_thread` for one test."""
    with float64_on_one_thread():
        yield
