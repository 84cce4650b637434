"""The bilevel step of L2T-ww / L2T-www and the per-method training step.

One iteration on a batch (Jang et al. 2019, Algorithm 1):

1. a real SGD step of the target and regressors on ``CE + beta * L_wfm`` (meta outputs
   detached);
2. ``T`` recorded SGD steps on ``beta * L_wfm`` only, from the state after 1 (weights and
   momentum buffers), with ``torch.func.functional_call`` and ``create_graph=True``;
3. one recorded SGD step on cross-entropy; the meta-loss is the cross-entropy after it and
   its gradient w.r.t. the meta-networks flows back through all recorded steps (momentum and
   weight decay included); Adam updates the meta-networks.

The recorded steps never write into the modules or the optimizer: they run on new tensors
(and on clones of the BatchNorm buffers), so weights, buffers and momentum are exactly the
state after step 1 when the iteration ends (the "rollback").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.profiler import record_function
from torch.func import functional_call

from .matching import Regressors, attention_loss, matching_errors, resize_to, tap_features
from .meta import MetaNetworks, MetaOutput, expand_gamma

__all__ = [
    "METHODS",
    "TransferStep",
    "fuse_pairs",
    "pixel_weights",
    "sgd_momentum_step",
    "unrolled_sgd",
]

METHODS = ("scratch", "ufm", "ufm_hint", "l2t_ww", "l2t_www", "attention")
#: Methods that match features without meta-networks (lambda = 1, w = 1/C, gamma = 1).
UNWEIGHTED = ("ufm", "ufm_hint")
Params = dict[str, torch.Tensor]


def sgd_momentum_step(
    params: Mapping[str, torch.Tensor],
    grads: Mapping[str, torch.Tensor | None],
    buffers: Mapping[str, torch.Tensor | None],
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
) -> tuple[Params, Params]:
    """One differentiable step of PyTorch's SGD (dampening 0, no Nesterov).

    ``d = g + weight_decay * p``; ``buf = momentum * buf + d`` (``buf = d`` if none yet);
    ``p = p - lr * buf``. A missing gradient counts as zero. Returns new params and buffers.
    """
    new_p: Params = {}
    new_b: Params = {}
    for name, p in params.items():
        g = grads.get(name)
        # fused multiply-adds (torch.add with alpha): fewer passes over large weight tensors
        if g is None:
            d = p * weight_decay
        else:
            d = torch.add(g, p, alpha=weight_decay) if weight_decay else g
        buf = buffers.get(name)
        if buf is not None and momentum:
            d = torch.add(d, buf, alpha=momentum)
        new_b[name] = d
        new_p[name] = torch.add(p, d, alpha=-lr)
    return new_p, new_b


def unrolled_sgd(
    loss_fn: Callable[[Params], torch.Tensor],
    params: Mapping[str, torch.Tensor],
    *,
    steps: int,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    momentum_buffers: Mapping[str, torch.Tensor | None] | None = None,
) -> tuple[Params, Params]:
    """``steps`` recorded SGD steps on ``loss_fn(params)``, differentiable end to end.

    Parameters that do not require grad are detached copies made to require it (leaves);
    the graph (``create_graph=True``) keeps every dependence on tensors captured by
    ``loss_fn`` (e.g. meta-network outputs), so ``torch.autograd.grad`` of a function of the
    result reaches them.
    """
    cur = {n: p if p.requires_grad else p.detach().requires_grad_() for n, p in params.items()}
    bufs: Mapping[str, torch.Tensor | None] = dict(momentum_buffers or {})
    for _ in range(steps):
        loss = loss_fn(cur)
        names = list(cur)
        grads = torch.autograd.grad(
            loss, [cur[n] for n in names], create_graph=True, allow_unused=True
        )
        cur, bufs = sgd_momentum_step(
            cur, dict(zip(names, grads)), bufs, lr=lr, momentum=momentum,
            weight_decay=weight_decay,
        )  # fmt: skip
    return cur, dict(bufs)


def pixel_weights(
    meta: MetaOutput, sizes: Sequence[tuple[int, int]], batch: int, beta: float
) -> list[torch.Tensor]:
    """Fold beta, lambda, w, gamma and the means into one weight per error element.

    ``weighted_matching_loss(errors, w, lam, gamma, beta) == sum_k (A_k * errors_k).sum()``
    with ``A_k = beta * lambda_b * w_bc * gamma_bcij / (B H W)``, shape (B, C, H or 1, W or 1).
    """
    out = []
    for k, (h, w) in enumerate(sizes):
        a = (
            (beta / (batch * h * w))
            * meta.lam[k][:, None, None, None]
            * meta.w[k][:, :, None, None]
        )
        if meta.gamma is not None:
            a = a * expand_gamma(meta.gamma[k], (h, w))
        out.append(a)
    return out


def _fused(errors: Sequence[torch.Tensor], weights: Sequence[torch.Tensor]) -> torch.Tensor:
    return sum((a * e).sum() for a, e in zip(weights, errors))


class _Student(nn.Module):
    """Target network plus regressors: the parameters ``theta`` trained by SGD.

    ``forward(x, with_features, fused)``: with ``fused`` the regressors of the pairs that
    share a target tap run as one 1x1 convolution (their weights concatenated), giving one
    map per distinct target tap, the pairs' channels side by side (see :attr:`groups`).
    """

    def __init__(self, target: nn.Module, regressors: Regressors | None, taps: list[int]) -> None:
        super().__init__()
        self.target, self.regressors, self.taps = target, regressors, taps
        #: (target tap, positions of its pairs) in order of first appearance
        self.groups: list[tuple[int, list[int]]] = []
        for k, t in enumerate(taps):
            for tap, members in self.groups:
                if tap == t:
                    members.append(k)
                    break
            else:
                self.groups.append((t, [k]))

    def forward(self, x: torch.Tensor, with_features: bool = True, fused: bool = False):
        if not with_features or not self.taps:
            return self.target(x), None
        if not fused or self.regressors is None:
            logits, feats = tap_features(self.target, x, self.taps)
            if self.regressors is not None:
                feats = self.regressors(feats)
            return logits, feats
        logits, feats = tap_features(self.target, x, [t for t, _ in self.groups])
        convs = self.regressors.convs
        out = []
        for f, (_, members) in zip(feats, self.groups):
            if len(members) == 1:
                out.append(convs[members[0]](f))
                continue
            w = torch.cat([convs[k].weight for k in members])
            b = torch.cat([convs[k].bias for k in members])
            out.append(F.conv2d(f, w, b))
        return logits, out


def fuse_pairs(tensors: Sequence[torch.Tensor], groups: Sequence[tuple[int, list[int]]]):
    """Per-pair tensors ``(B, C_k, H, W)`` concatenated along channels per target tap."""
    return [
        tensors[m[0]] if len(m) == 1 else torch.cat([tensors[k] for k in m], 1) for _, m in groups
    ]


class TransferStep:
    """Training step of one method on a (frozen) source and a target.

    Parameters
    ----------
    method : {"scratch", "ufm", "ufm_hint", "l2t_ww", "l2t_www", "attention"}
        ``ufm_hint`` is ``ufm`` on its (one) hint pair: the step is the same.
    source : nn.Module or None
        Frozen, eval mode (unused for ``scratch``).
    target : nn.Module
        Trained; both carry ``feature_info``.
    pairs : list of (source tap, target tap)
    channels : list of (C_target, C_source) per pair
    beta : float
        Matching weight (0.5; 1e3 for attention).
    inner_steps : int
        ``T`` recorded matching steps (2).
    lr, momentum, weight_decay : float
        Target SGD (``lr`` is changed by the scheduler through ``optimizer``).
    meta_lr, meta_weight_decay : float
        Adam on the meta-networks. ``meta_lr=0`` freezes them at their initial values (as
        the L2T-ww reference does with ``--meta-lr 0``): lambda keeps its random start, w =
        1/C, gamma = 1, and the recorded look-ahead steps are skipped (the step then costs
        what UFM costs).
    """

    def __init__(
        self,
        method: str,
        source: nn.Module | None,
        target: nn.Module,
        *,
        pairs: list[tuple[int, int]],
        channels: list[tuple[int, int]],
        beta: float,
        inner_steps: int = 2,
        lr: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        meta_lr: float = 1e-4,
        meta_weight_decay: float = 1e-4,
        which_input: str = "pooled",
        source_sizes: Sequence[tuple[int, int]] | None = None,
    ) -> None:
        self.method, self.beta, self.inner_steps = method, float(beta), int(inner_steps)
        self.momentum, self.weight_decay = momentum, weight_decay
        self.pairs = pairs if method != "scratch" else []
        self.source = source
        if source is not None:
            source.eval().requires_grad_(False)
        regs = Regressors(channels) if method in (*UNWEIGHTED, "l2t_ww", "l2t_www") else None
        self.student = _Student(target, regs, [t for _, t in self.pairs])
        self.optimizer = torch.optim.SGD(
            self.student.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay
        )
        self.meta: MetaNetworks | None = None
        #: meta-networks kept at their initial values (``meta_lr == 0``): no look-ahead
        self.frozen = method in ("l2t_ww", "l2t_www") and float(meta_lr) == 0.0
        self.meta_optimizer: torch.optim.Optimizer | None = None
        if method in ("l2t_ww", "l2t_www"):
            self.meta = MetaNetworks(
                [cs for _, cs in channels], which=method == "l2t_www", which_input=which_input,
                source_sizes=source_sizes,
            )  # fmt: skip
            if self.frozen:
                self.meta.requires_grad_(False)
            else:
                self.meta_optimizer = torch.optim.Adam(
                    self.meta.parameters(), lr=meta_lr, weight_decay=meta_weight_decay
                )

    # ------------------------------------------------------------------ helpers
    @torch.no_grad()
    def source_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Source maps of every pair (computed once per batch, no grad)."""
        if not self.pairs:
            return []
        _, feats = tap_features(self.source, x, [s for s, _ in self.pairs])
        return feats

    def meta_outputs(self, source_feats: Sequence[torch.Tensor]) -> MetaOutput:
        return self.meta(source_feats)

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    # ------------------------------------------------------------------ the step
    def step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """One training iteration on batch ``(x, y)``; returns loss terms and batch accuracy."""
        self.student.train()
        with record_function("l2t.source"):
            src = self.source_features(x)
        self.optimizer.zero_grad(set_to_none=True)
        fused = self.meta is not None
        logits, feats = self.student(x, True, fused)
        ce = F.cross_entropy(logits, y)
        match = ce.new_zeros(())
        weights = None
        if self.method == "attention":
            match = attention_loss(feats, src, beta=self.beta)
        elif self.method in UNWEIGHTED:
            errs = matching_errors(feats, src)
            match = self.beta * sum(e.mean(dim=(1, 2, 3)).mean() for e in errs)
        elif self.meta is not None:
            # meta outputs, resized source maps and pixel weights: once per batch; the pairs
            # of one target tap are matched as one map (their channels side by side)
            groups = self.student.groups
            group_of = {k: g for g, (_, members) in enumerate(groups) for k in members}
            sizes = [tuple(feats[group_of[k]].shape[-2:]) for k in range(len(self.pairs))]
            with torch.set_grad_enabled(not self.frozen):
                weights = pixel_weights(self.meta_outputs(src), sizes, len(x), self.beta)
            src = [resize_to(s, size) for s, size in zip(src, sizes)]
            fused_w = [a.detach() for a in fuse_pairs(weights, groups)]
            match = _fused(matching_errors(feats, fuse_pairs(src, groups)), fused_w)
        with record_function("l2t.real_backward"):
            (ce + match).backward()
            self.optimizer.step()
        ce, match = float(ce.detach()), float(match.detach())
        out = {
            "loss": ce + match, "ce": ce, "matching": match,
            "acc": float((logits.detach().argmax(1) == y).float().mean()),
        }  # fmt: skip
        if weights is not None and not self.frozen:
            out["meta_loss"] = self._meta_step(x, y, src, weights)
        return out

    def _meta_step(
        self, x: torch.Tensor, y: torch.Tensor, src: list[torch.Tensor], weights: list[torch.Tensor]
    ) -> float:
        """The recorded steps and the meta-update; ``src`` and ``weights`` per pair."""
        student, opt = self.student, self.optimizer
        named = dict(student.named_parameters())
        bn = {n: b.clone() for n, b in student.named_buffers()}
        moms = {n: opt.state[p].get("momentum_buffer") for n, p in named.items()}
        hyper = dict(lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        src, weights = fuse_pairs(src, student.groups), fuse_pairs(weights, student.groups)
        fixed: Params = {}  # regressors held fixed in the last recorded matching step

        def matching(params: Params) -> torch.Tensor:
            _, feats = functional_call(student, ({**fixed, **params}, bn), (x, True, True),
                                       strict=False)  # fmt: skip
            return _fused(matching_errors(feats, src), weights)

        def cross_entropy(params: Params) -> torch.Tensor:
            logits, _ = functional_call(student, (params, bn), (x, False), strict=False)
            return F.cross_entropy(logits, y)

        params = {n: p.detach() for n, p in named.items()}
        with record_function("l2t.unroll_matching"):
            if self.inner_steps > 1:
                params, moms = unrolled_sgd(
                    matching, params, steps=self.inner_steps - 1, momentum_buffers=moms, **hyper
                )
            # the regressors' last update would feed nothing (cross-entropy does not use
            # them): the last matching step differentiates the target's weights only
            keep = [n for n in params if n.startswith("target.")]
            fixed.update({n: p for n, p in params.items() if n not in keep})
            params, moms = unrolled_sgd(
                matching, {n: params[n] for n in keep}, steps=1,
                momentum_buffers={n: moms[n] for n in keep}, **hyper,
            )  # fmt: skip
        with record_function("l2t.unroll_cross_entropy"):
            params, _ = unrolled_sgd(cross_entropy, params, steps=1, momentum_buffers=moms, **hyper)
        with record_function("l2t.meta_forward"):
            meta_loss = cross_entropy(params)
        with record_function("l2t.meta_backward"):
            meta_params = list(self.meta.parameters())
            grads = torch.autograd.grad(meta_loss, meta_params, allow_unused=True)
            self.meta_optimizer.zero_grad(set_to_none=True)
            for p, g in zip(meta_params, grads):
                p.grad = g
            self.meta_optimizer.step()
        return float(meta_loss.detach())
