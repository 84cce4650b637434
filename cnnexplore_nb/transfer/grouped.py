"""Several seeds of one method trained as one stacked computation: :class:`GroupedStep`.

The ``S`` seeds' students (target + regressors) and meta-networks are built exactly as
:func:`~cnnexplore_nb.transfer.run` builds them, then their parameters, BatchNorm buffers and
optimiser states are stacked along a new first dimension. One forward runs every seed with
``torch.func.vmap`` over ``functional_call`` of one template module (convolutions become
grouped convolutions, linear layers batched matmuls, BatchNorm keeps per-seed batch
statistics and running buffers). The frozen source runs once on the stacked batch.

The seeds never mix: each seed's losses depend only on its own parameters and batch, so the
gradient of the *sum* of the per-seed losses with respect to a stacked parameter is the
stack of the per-seed gradients (also for the meta-gradient through the unrolled steps), and
SGD with momentum / weight decay and Adam act element by element: one optimiser on the
stacked tensors is ``S`` independent optimisers.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch.func import functional_call, vmap

from .._hooks import Hooks
from .l2t import UNWEIGHTED, TransferStep, pixel_weights, unrolled_sgd
from .matching import matching_errors, resize_to
from .meta import MetaOutput

__all__ = ["GroupedStep"]

Params = dict[str, torch.Tensor]


def _stack(dicts: Sequence[Mapping[str, torch.Tensor]], *, grad: bool, device=None) -> Params:
    out = {}
    for name in dicts[0]:
        t = torch.stack([d[name].detach() for d in dicts]).to(device).contiguous()
        out[name] = t.requires_grad_() if grad else t
    return out


def _per_seed(values: Sequence[torch.Tensor], s: int) -> torch.Tensor:
    """Sum of each tensor's elements per seed: ``(S * B, ...)`` tensors -> ``(S,)``."""
    return sum(v.reshape(s, -1).sum(1) for v in values)


class GroupedStep:
    """The training step of :class:`~cnnexplore_nb.transfer.l2t.TransferStep` for ``S``
    seeds at once.

    Parameters
    ----------
    steps : sequence of TransferStep
        One per seed, freshly built (same method, pairs, hyper-parameters and source; their
        initial weights are taken, their optimisers' empty states are matched). The first
        one's modules serve as the functional template.
    device : torch.device or str, optional
        Where the stacked states live and the steps run (default: the CPU); the per-seed
        modules stay on the CPU (snapshots and returned models are made from them).

    Notes
    -----
    Inputs are stacked per seed: ``x`` of shape (S, B, C, H, W), ``y`` of shape (S, B).
    :meth:`step` returns per-seed tensors of shape (S,). :meth:`select` drops seeds (e.g.
    one whose loss became NaN) and keeps the others' states.
    """

    def __init__(self, steps: Sequence[TransferStep], *, device=None) -> None:
        first = steps[0]
        self.device = torch.device(device or "cpu")
        self.steps = list(steps)
        self.method, self.beta, self.inner_steps = first.method, first.beta, first.inner_steps
        self.momentum, self.weight_decay = first.momentum, first.weight_decay
        self.pairs, self.source, self.frozen = first.pairs, first.source, first.frozen
        self.student, self.meta = first.student, first.meta
        if self.source is not None and self.device.type != "cpu":
            self.source = copy.deepcopy(self.source).to(self.device)
        dev = self.device
        named = [dict(s.student.named_parameters()) for s in steps]
        self.params = _stack(named, grad=True, device=dev)
        self.buffers = _stack(
            [dict(s.student.named_buffers()) for s in steps], grad=False, device=dev
        )
        opt = first.optimizer.param_groups[0]
        self.optimizer = torch.optim.SGD(
            list(self.params.values()), lr=opt["lr"], momentum=opt["momentum"],
            weight_decay=opt["weight_decay"],
        )  # fmt: skip
        self.meta_params: Params = {}
        if first.meta is not None:
            named = [dict(s.meta.named_parameters()) for s in steps]
            self.meta_params = _stack(named, grad=not self.frozen, device=dev)
        if first.meta_optimizer is not None:
            mopt = first.meta_optimizer.param_groups[0]
            self.meta_optimizer = torch.optim.Adam(
                list(self.meta_params.values()), lr=mopt["lr"], weight_decay=mopt["weight_decay"]
            )

    @property
    def size(self) -> int:
        """Number of seeds ``S`` in the group."""
        return len(self.steps)

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    # ------------------------------------------------------------------ forwards
    def _run_student(
        self, params: Params, buffers: Params, x: torch.Tensor, features: bool = True
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits (S, B, K) and regressed target taps, each (S * B, C, H, W)."""
        student = self.student

        def one(p, b, xs):
            logits, feats = functional_call(student, (p, b), (xs, features), strict=False)
            return logits, (feats or [])

        logits, feats = vmap(one)(params, buffers, x)
        return logits, [f.flatten(0, 1) for f in feats]

    def target_logits(self, params: Params, buffers: Params, x: torch.Tensor) -> torch.Tensor:
        """Logits (S, B, K) of the targets alone (``params`` / ``buffers`` named as in the
        student, ``target.`` prefix included; extra entries are ignored)."""
        return self._run_student(params, buffers, x, features=False)[0]

    @torch.no_grad()
    def source_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Source maps of every pair for the flattened batch ``(S * B, C, H, W)``."""
        if not self.pairs:
            return []
        from .matching import tap_features

        return tap_features(self.source, x, [s for s, _ in self.pairs])[1]

    def meta_outputs(self, params: Params, source_feats: Sequence[torch.Tensor]) -> MetaOutput:
        """Meta outputs of every seed, flattened to ``S * B`` rows (as one big batch)."""
        s = self.size
        meta = self.meta
        if meta.which_input == "maps":
            feats = [f.unflatten(0, (s, -1)) for f in source_feats]
        else:  # the pooled vectors are all the meta-networks read
            feats = [f.mean(dim=(2, 3)).unflatten(0, (s, -1)) for f in source_feats]

        def one(p, inputs):
            out = functional_call(meta, p, (inputs,))
            return out.w, out.lam, out.gamma or []

        w, lam, gamma = vmap(one)(params, feats)
        flat = lambda ts: [t.flatten(0, 1) for t in ts]  # noqa: E731
        return MetaOutput(flat(w), flat(lam), flat(gamma) if meta.which is not None else None)

    # ------------------------------------------------------------------ the step
    def step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """One training iteration of every seed; per-seed loss terms and accuracy, each (S,)."""
        s, b = y.shape
        self.student.train()
        src = self.source_features(x.flatten(0, 1))
        self.optimizer.zero_grad(set_to_none=True)
        logits, feats = self._run_student(self.params, self.buffers, x)
        ce = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
        ce = ce.view(s, b).mean(1)
        match = torch.zeros_like(ce)
        weights = None
        if self.method == "attention":
            match = self._attention(feats, src)
        elif self.method in UNWEIGHTED:
            match = self.beta * sum(e.reshape(s, -1).mean(1) for e in matching_errors(feats, src))
        elif self.meta is not None:
            sizes = [tuple(f.shape[-2:]) for f in feats]
            with torch.set_grad_enabled(not self.frozen):
                meta = self.meta_outputs(self.meta_params, src)
            weights = pixel_weights(meta, sizes, b, self.beta)
            src = [resize_to(m, size) for m, size in zip(src, sizes)]
            errors = [a.detach() * e for a, e in zip(weights, matching_errors(feats, src))]
            match = _per_seed(errors, s)
        (ce + match).sum().backward()
        self.optimizer.step()
        out = {
            "ce": ce.detach(), "matching": match.detach(), "loss": (ce + match).detach(),
            "acc": (logits.detach().argmax(-1) == y).float().mean(1),
        }  # fmt: skip
        if weights is not None and not self.frozen:
            out["meta_loss"] = self._meta_step(x, y, src, weights)
        return out

    def _attention(self, feats: list[torch.Tensor], src: list[torch.Tensor]) -> torch.Tensor:
        s = self.size

        def amap(t: torch.Tensor, size) -> torch.Tensor:
            return F.normalize(resize_to(t.square().mean(1, keepdim=True), size).flatten(1), dim=1)

        total = 0.0
        for t, m in zip(feats, src):
            size = tuple(t.shape[-2:])
            total = total + (amap(t, size) - amap(m, size)).square().reshape(s, -1).mean(1)
        return self.beta / 2 * total

    def _meta_step(
        self, x: torch.Tensor, y: torch.Tensor, src: list[torch.Tensor], weights: list[torch.Tensor]
    ) -> torch.Tensor:
        s = self.size
        bn = {n: v.clone() for n, v in self.buffers.items()}
        moms = {n: self.optimizer.state[p].get("momentum_buffer") for n, p in self.params.items()}
        hyper = dict(lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)

        def matching(params: Params) -> torch.Tensor:
            _, feats = self._run_student(params, bn, x)
            return sum((a * e).sum() for a, e in zip(weights, matching_errors(feats, src)))

        def cross_entropy(params: Params) -> torch.Tensor:
            logits = self.target_logits(params, bn, x)
            ce = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
            return ce.view(s, -1).mean(1)

        params, moms = unrolled_sgd(
            matching, {n: p.detach() for n, p in self.params.items()}, steps=self.inner_steps,
            momentum_buffers=moms, **hyper,
        )  # fmt: skip
        keep = [n for n in params if n.startswith("target.")]
        params, _ = unrolled_sgd(
            lambda p: cross_entropy(p).sum(), {n: params[n] for n in keep}, steps=1,
            momentum_buffers={n: moms[n] for n in keep}, **hyper,
        )  # fmt: skip
        meta_loss = cross_entropy(params)
        meta_params = list(self.meta_params.values())
        grads = torch.autograd.grad(meta_loss.sum(), meta_params, allow_unused=True)
        self.meta_optimizer.zero_grad(set_to_none=True)
        for p, g in zip(meta_params, grads):
            p.grad = g
        self.meta_optimizer.step()
        return meta_loss.detach()

    # ------------------------------------------------------------------ per-seed views
    def seed_state(self, i: int, prefix: str = "target.") -> dict[str, torch.Tensor]:
        """Copy of seed ``i``'s weights and buffers under ``prefix`` (a ``state_dict`` of that
        submodule: the prefix is stripped)."""
        out = {}
        for name, t in {**self.params, **self.buffers}.items():
            if name.startswith(prefix):
                out[name[len(prefix) :]] = t.detach()[i].clone()
        return out

    def write_back(self, i: int) -> TransferStep:
        """Copy seed ``i``'s current state into its own :class:`TransferStep` and return it."""
        step = self.steps[i]
        with torch.no_grad():
            for name, t in step.student.named_parameters():
                t.copy_(self.params[name][i])
            for name, t in step.student.named_buffers():
                t.copy_(self.buffers[name][i])
            if step.meta is not None:
                for name, t in step.meta.named_parameters():
                    t.copy_(self.meta_params[name][i])
        return step

    def finite(self) -> torch.Tensor:
        """Per seed: are all the targets' weights and buffers finite? Bool (S,)."""
        ok = torch.ones(self.size, dtype=torch.bool, device=self.device)
        for name, t in {**self.params, **self.buffers}.items():
            if name.startswith("target.") and t.is_floating_point():
                ok &= torch.isfinite(t.detach()).flatten(1).all(1)
        return ok

    def select(self, keep: Sequence[int]) -> None:
        """Keep only the seeds at positions ``keep`` (weights, buffers, optimiser states)."""
        idx = torch.as_tensor(list(keep), dtype=torch.long)
        self.steps = [self.steps[i] for i in idx.tolist()]
        self.buffers = {n: t.index_select(0, idx) for n, t in self.buffers.items()}
        self.params = _reselect(self.optimizer, self.params, idx)
        if self.meta_params and self.frozen:
            self.meta_params = {n: t.index_select(0, idx) for n, t in self.meta_params.items()}
        elif self.meta_params:
            self.meta_params = _reselect(self.meta_optimizer, self.meta_params, idx)


def _reselect(opt: torch.optim.Optimizer, params: Params, idx: torch.Tensor) -> Params:
    """New leaf tensors holding rows ``idx``; the optimiser's single group and per-parameter
    state follow them (scalar state such as Adam's step count is shared and kept)."""
    new = {n: p.detach().index_select(0, idx).requires_grad_() for n, p in params.items()}
    state = {}
    for old_p, new_p in zip(params.values(), new.values()):
        st = opt.state.get(old_p, {})
        state[new_p] = {
            k: v.index_select(0, idx) if torch.is_tensor(v) and v.ndim == old_p.ndim else v
            for k, v in st.items()
        }
    opt.state.clear()
    opt.state.update(state)
    opt.param_groups[0]["params"] = list(new.values())
    return new


def grouped_accuracy(
    logits_of: Callable[[torch.Tensor], torch.Tensor],
    datasets: Sequence,
    batch: Callable,
    *,
    batch_size: int,
    module: torch.nn.Module,
    device: torch.device | None = None,
) -> list[float]:
    """Top-1 accuracy per seed: ``logits_of(x (S, b, C, H, W)) -> (S, b, K)`` in eval mode.

    When every seed evaluates the same dataset object, each batch is read once and shared.
    """
    n = len(datasets[0])
    shared = all(d is datasets[0] for d in datasets)
    correct = torch.zeros(len(datasets), dtype=torch.long)
    with Hooks(module, mode="eval", grad=False):
        for start in range(0, n, batch_size):
            idx = torch.arange(start, min(n, start + batch_size))
            if shared:
                x, y = batch(datasets[0], idx, None)
                x, y = x.expand(len(datasets), *x.shape), y.expand(len(datasets), *y.shape)
            else:
                xs, ys = zip(*(batch(d, idx, None) for d in datasets))
                x, y = torch.stack(xs), torch.stack(ys)
            x, y = x.to(device), y.to(device)
            correct += (logits_of(x).argmax(-1) == y).sum(1).cpu()
    return [int(c) / max(n, 1) for c in correct]
