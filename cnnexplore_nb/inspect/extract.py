"""Activation extraction with forward hooks: :class:`ActivationRecorder`,
:func:`extract_activations` and :func:`kernels`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch
from torch import nn

from .._arrays import call_model, iter_batches, model_input
from .._checks import check_device, check_positive_int
from .._hooks import Hooks, check_module, first_tensor
from .._layer_origin import note_model_paths
from .layers import resolve_layers
from .taps import feature_layers

__all__ = [
    "ActivationRecorder",
    "InPlaceOverwriteError",
    "LayerNotExecutedError",
    "extract_activations",
    "kernels",
]


class LayerNotExecutedError(RuntimeError):
    """A requested layer did not run in the recorded forward pass."""


class InPlaceOverwriteError(RuntimeError):
    """A recorded, uncopied output was modified in place later in the forward pass.

    ``keys`` names the affected recordings.
    """

    def __init__(self, message: str, keys: list[str]) -> None:
        super().__init__(message)
        self.keys = keys


def call_key(path: str, call: int) -> str:
    """Key of the ``call``-th (0-based) call of layer ``path``: ``path``, ``path#1``..."""
    return path if call == 0 else f"{path}#{call}"


class ActivationRecorder:
    """Record the outputs of chosen layers during forward passes.

    Parameters
    ----------
    model : nn.Module
    layers : str, iterable of str or None
        ``named_modules()`` paths (None: the model's ``feature_info`` taps).
    detach : bool
        Detach recorded tensors from the autograd graph.
    clone : bool or "auto"
        ``True`` (default, always safe): store a copy, so later in-place operations of
        the forward (``ReLU(inplace=True)`` after a BatchNorm) cannot overwrite it.
        ``"auto"``: store a view and copy it only just before an in-place module
        (``inplace=True``) runs on it; an in-place *function* (``x += y``) that modifies
        a recorded view is detected at the end of the forward (version counters) and
        raises :class:`InPlaceOverwriteError`, after which that layer is always copied,
        so running the forward again gives correct results (:func:`extract_activations`
        does this for you). ``False``: never copy; an overwritten view raises.
    device : str, torch.device or None
        Where stored tensors go (default CPU); None keeps them where they are.
    dtype : torch.dtype, optional
        Cast stored tensors (e.g. ``torch.float16`` to halve memory).
    on_activation : callable(key, tensor), optional
        Called with every recorded tensor as soon as it is produced (for streaming into
        :class:`cnnexplore_nb.Moments`).
    store : bool
        Keep the tensors in :attr:`activations` (False with ``on_activation`` streams
        without storing).

    Notes
    -----
    Each forward of the root model starts a new recording. A module called several times
    in one forward is recorded per call: :attr:`calls` maps a path to the list of its
    outputs, and :attr:`activations` uses the keys ``path``, ``path#1``, ``path#2``...
    A module returning a tuple/list/dict is recorded by its first tensor (depth-first).
    Hooks are registered on ``__enter__`` and removed on ``__exit__`` (or :meth:`remove`),
    whatever happens in the ``with`` body. Leaving the ``with`` body normally after a
    forward in which a requested layer never ran raises :class:`LayerNotExecutedError`;
    so does reading :attr:`activations` then.

    Examples
    --------
    >>> with ActivationRecorder(model, ["conv_module1", "conv_module2"]) as rec:
    ...     model(x)
    >>> rec.activations["conv_module1"].shape
    torch.Size([1, 64, 32, 32])
    """

    def __init__(
        self,
        model: nn.Module,
        layers: str | Iterable[str] | None = None,
        *,
        detach: bool = True,
        clone: bool | Literal["auto"] = True,
        device: str | torch.device | None = "cpu",
        dtype: torch.dtype | None = None,
        on_activation: Callable[[str, torch.Tensor], Any] | None = None,
        store: bool = True,
    ) -> None:
        self.model = check_module(model)
        self.layers = resolve_layers(model, layers)
        if clone not in (True, False, "auto"):
            raise ValueError(f"clone must be True, False or 'auto', got {clone!r}")
        if dtype is not None and not isinstance(dtype, torch.dtype):
            raise TypeError(f"dtype must be a torch.dtype or None, got {dtype!r}")
        if on_activation is not None and not callable(on_activation):
            raise TypeError(f"on_activation must be callable, got {type(on_activation).__name__}")
        if not store and on_activation is None:
            raise ValueError("store=False records nothing: pass on_activation to stream")
        self.detach, self.clone, self.dtype = detach, clone, dtype
        self.device = torch.device(device) if device is not None else None
        self.on_activation, self.store = on_activation, store
        self.calls: dict[str, list[torch.Tensor]] = {p: [] for p in self.layers}
        self.counts: dict[str, int] = dict.fromkeys(self.layers, 0)
        self.forwards = 0
        self._always_clone: set[str] = set()
        self._hooks: Hooks | None = None
        # stored views not yet copied: (path, call, storage ptr, version at record time)
        self._views: list[tuple[str, int, int, int]] = []

    # -- hook management -------------------------------------------------------------
    def __enter__(self) -> ActivationRecorder:
        if self._hooks is not None:
            raise RuntimeError("this ActivationRecorder is already active")
        hooks = Hooks(self.model).__enter__()
        try:
            hooks.pre("", self._start)
            for path in self.layers:
                hooks.forward(path, self._make_hook(path))
            if self.clone == "auto":
                for m in self.model.modules():
                    if getattr(m, "inplace", False) is True:
                        hooks.pre(m, self._before_inplace)
            hooks.forward("", self._finish)
        except BaseException:
            hooks.__exit__(None, None, None)
            raise
        self._hooks = hooks
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.remove()
        if exc_type is None and (self.forwards or any(self.counts.values())):
            self._check_all_ran()

    def remove(self) -> None:
        """Remove every hook this recorder registered (idempotent)."""
        hooks, self._hooks = self._hooks, None
        if hooks is not None:
            hooks.__exit__(None, None, None)

    # -- hooks -----------------------------------------------------------------------
    def _start(self, module: nn.Module, args: Any) -> None:
        self.forwards += 1
        for calls in self.calls.values():
            calls.clear()
        self.counts = dict.fromkeys(self.layers, 0)
        self._views.clear()

    def _make_hook(self, path: str) -> Callable:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            out = first_tensor(output)
            if out is None:
                raise TypeError(f"layer {path!r} returned no tensor ({type(output).__name__})")
            t = out.detach() if self.detach else out
            moved = t.to(device=self.device or t.device, dtype=self.dtype or t.dtype)
            copied = moved is not t and moved.data_ptr() != t.data_ptr()
            must = self.clone is True or path in self._always_clone or t.is_inference()
            if not copied and must:
                moved, copied = moved.clone(), True
            call = self.counts[path]
            self.counts[path] = call + 1
            if self.store:
                if not copied:
                    ptr = moved.untyped_storage().data_ptr()
                    self._views.append((path, call, ptr, out._version))
                self.calls[path].append(moved)
            if self.on_activation is not None:
                self.on_activation(call_key(path, call), moved)

        return hook

    def _before_inplace(self, module: nn.Module, args: Any) -> None:
        t = first_tensor(args)
        if t is None or not self._views:
            return
        ptr = t.untyped_storage().data_ptr()
        keep = []
        for path, call, vptr, version in self._views:
            if vptr == ptr:
                self.calls[path][call] = self.calls[path][call].clone()
            else:
                keep.append((path, call, vptr, version))
        self._views = keep

    def _finish(self, module: nn.Module, args: Any, output: Any) -> None:
        bad = [
            (path, call)
            for path, call, _, version in self._views
            if self.calls[path][call]._version != version
        ]
        self._views.clear()
        if bad:
            keys = [call_key(p, c) for p, c in bad]
            msg = f"recorded output(s) {keys} were modified in place later in the forward pass"
            if self.clone == "auto":
                self._always_clone.update(p for p, _ in bad)
                msg += "; clone='auto' copies them from now on: run the forward again"
            else:
                msg += " (clone=False); use clone=True or clone='auto'"
            raise InPlaceOverwriteError(msg, keys)

    # -- results ---------------------------------------------------------------------
    def _check_all_ran(self) -> None:
        missing = [p for p in self.layers if not self.counts[p]]
        if not missing:
            return
        if not self.forwards and len(missing) == len(self.layers):
            raise LayerNotExecutedError("no forward pass has been recorded yet")
        ran = [p for p in self.layers if self.counts[p]]
        raise LayerNotExecutedError(
            f"requested layer(s) {missing} never ran in the forward pass "
            f"(layers that ran: {ran}); check the model's forward uses them"
        )

    @property
    def activations(self) -> dict[str, torch.Tensor]:
        """Layer key -> output tensor of the last forward (see class Notes for keys)."""
        self._check_all_ran()
        return {call_key(p, i): t for p in self.layers for i, t in enumerate(self.calls[p])}


def extract_activations(
    model: nn.Module,
    images: Any,
    layers: str | Iterable[str] | None = None,
    *,
    batch_size: int = 8,
    device: str | torch.device | None = None,
    progress: bool = True,
    dtype: torch.dtype | None = None,
    clone: bool | Literal["auto"] = "auto",
) -> dict[str, torch.Tensor]:
    """Activations of ``layers`` for all ``images``, concatenated on the CPU.

    Parameters
    ----------
    model : nn.Module
        Run in eval mode under ``torch.no_grad`` (its mode is restored).
    images : Tensor or ndarray of shape (N, C, H, W) or (C, H, W), or a Dataset
        Dataset items are images (C, H, W) or tuples whose first element is one.
    layers : str, iterable of str or None
        Layer paths. None: the model's feature taps, its ``feature_info`` or, for a model
        without one, the taps :func:`~cnnexplore_nb.feature_layers` infers from the first
        image.
    batch_size : int
    device : str or torch.device, optional
        Where the forward runs (default: the model's device; the model is not moved).
    progress : bool
        Show a tqdm progress bar over batches.
    dtype : torch.dtype, optional
        Cast stored activations.
    clone : bool or "auto"
        See :class:`ActivationRecorder`. With ``"auto"`` (default) activations are copied
        once, straight into the result (not at all when one batch holds every image),
        unless an in-place operation forces an earlier copy; a batch whose recording was
        overwritten by an in-place function is re-run.

    Returns
    -------
    dict of str -> Tensor of shape (N, C, H, W)
        Keys as in :attr:`ActivationRecorder.activations`.
    """
    from tqdm.auto import tqdm

    check_module(model)
    note_model_paths(model)  # display names: a user network's paths stay as they are
    batch_size = check_positive_int("batch_size", batch_size)
    device = None if device is None else check_device(device)
    if layers is None and getattr(model, "feature_info", None) is None:
        _, first = iter_batches(images, 1)
        layers = feature_layers(model, model_input(next(first), model))
    n, batches = iter_batches(images, batch_size)
    out: dict[str, torch.Tensor] = {}
    recorder = ActivationRecorder(model, layers, clone=clone, device="cpu", dtype=dtype)
    with Hooks(model, mode="eval", grad=False), recorder:
        bar = tqdm(total=n, disable=not progress, desc="extract", unit="img")
        with bar:
            start = 0
            for xb in batches:
                xb = model_input(xb, model)
                if device is not None:
                    xb = xb.to(device)
                try:
                    call_model(model, xb)
                except InPlaceOverwriteError:
                    if clone != "auto":
                        raise
                    model(xb)  # the overwritten layers are now copied
                acts = recorder.activations
                if xb.shape[0] == n:  # one batch: the recorded tensors are the result
                    out = acts
                    bar.update(n)
                    break
                if not out:  # one buffer per key, filled batch by batch (a single copy)
                    out = {k: t.new_empty((n, *t.shape[1:])) for k, t in acts.items()}
                if acts.keys() != out.keys():
                    raise RuntimeError(
                        f"recorded layer calls differ between batches: {sorted(acts)} "
                        f"vs {sorted(out)}"
                    )
                stop = start + xb.shape[0]
                for key, t in acts.items():
                    out[key][start:stop].copy_(t)
                start = stop
                bar.update(xb.shape[0])
    return out


def kernels(model: nn.Module, layer: str) -> torch.Tensor:
    """Weights of the convolution of ``layer`` (its first conv if it is a container).

    Returns
    -------
    Tensor of shape (C_out, C_in / groups, kH, kW)
        A detached copy.
    """
    path = resolve_layers(model, layer)[0]
    module = dict(model.named_modules())[path]
    for m in module.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            return m.weight.detach().clone()
    raise ValueError(f"layer {path!r} ({type(module).__name__}) contains no convolution")
