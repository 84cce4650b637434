"""Adversarial perturbations (FGSM) on a tiny digits classifier (lecture fundamentals)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_positive_int, check_real, seed_everything
from .._hooks import Hooks

__all__ = ["accuracy_vs_epsilon", "digits_classifier", "fgsm"]


class _DigitsNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 2 * 2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def digits_classifier(
    *, epochs: int = 15, seed: int = 0, test_fraction: float = 0.3, progress: bool = True
) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """A tiny CNN trained on scikit-learn's 8x8 digits (pixels in [0, 1]).

    Returns
    -------
    model : nn.Module
        Two conv + max-pool stages and a linear layer; eval mode.
    data : dict of Tensor
        ``x_train``, ``y_train``, ``x_test``, ``y_test`` (x: (N, 1, 8, 8) float32, y int64);
        a stratified split with ``seed``.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from tqdm.auto import tqdm

    epochs = check_positive_int("epochs", epochs)
    bunch = load_digits()
    x = bunch.images.astype(np.float32)[:, None] / 16.0
    xtr, xte, ytr, yte = train_test_split(
        x, bunch.target, test_size=test_fraction, random_state=seed, stratify=bunch.target
    )
    data = {
        "x_train": torch.from_numpy(xtr),
        "y_train": torch.from_numpy(ytr.astype(np.int64)),
        "x_test": torch.from_numpy(xte),
        "y_test": torch.from_numpy(yte.astype(np.int64)),
    }
    seed_everything(seed)
    model = _DigitsNet()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    n = len(data["y_train"])
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small only loses time to thread hand-offs
    try:
        for _ in tqdm(range(epochs), disable=not progress, desc="digits epochs"):
            order = torch.randperm(n, generator=gen)
            for i in range(0, n, 64):
                idx = order[i : i + 64]
                loss = F.cross_entropy(model(data["x_train"][idx]), data["y_train"][idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval(), data


def fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epsilon: float,
    *,
    clamp: tuple[float, float] | None = (0.0, 1.0),
) -> torch.Tensor:
    """Fast gradient sign method: ``x + epsilon * sign(grad_x J(x, y))``.

    Parameters
    ----------
    model : nn.Module
        A classifier returning logits; J is the mean cross-entropy (eval mode used).
    x : Tensor of shape (N, ...)
    y : Tensor of shape (N,)
        True labels.
    epsilon : float >= 0
        Step in input units (max-norm of the perturbation before clamping).
    clamp : (low, high) or None
        Valid input range the result is clipped to.

    Returns
    -------
    Tensor
        The perturbed inputs (detached).
    """
    epsilon = check_real("epsilon", epsilon)
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon}")
    with Hooks(model, mode="eval"):
        xg = x.detach().clone().requires_grad_(True)
        loss = F.cross_entropy(model(xg), y)
        (grad,) = torch.autograd.grad(loss, xg)
    out = x.detach() + epsilon * grad.sign()
    return out.clamp(*clamp) if clamp is not None else out


def accuracy_vs_epsilon(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epsilons: Sequence[float],
    *,
    clamp: tuple[float, float] | None = (0.0, 1.0),
) -> pd.DataFrame:
    """Accuracy on FGSM-perturbed inputs for each epsilon.

    Returns
    -------
    DataFrame
        ``epsilon, accuracy, max_change`` (largest absolute input change after clamping).
    """
    rows = []
    for eps in epsilons:
        xa = fgsm(model, x, y, float(eps), clamp=clamp)
        with torch.no_grad():
            acc = float((model(xa).argmax(dim=1) == y).float().mean())
        rows.append(
            {"epsilon": float(eps), "accuracy": acc, "max_change": float((xa - x).abs().max())}
        )
    return pd.DataFrame(rows)
