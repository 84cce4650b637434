"""Streaming sufficient statistics for all-pairs similarity of activation maps.

A :class:`Moments` object accumulates, over images and pixel chunks, the float64 sums
from which Pearson correlation, covariance, cosine similarity, Euclidean distance and
linear CKA between every map of a block ``A`` and every map of a block ``B`` follow.
Memory is O(K_a K_b + K_a² + K_b²) plus one pixel chunk, whatever the number of images.

Notes
-----
Chunks of pixels (16,384 on one torch thread; on several, up to 2^24 floats for all maps,
fewer thread synchronisations; at most ``chunk_pixels``) are centred on their per-map mean
``m`` (summed in float64, rounded to the engine dtype) into a reused buffer, so the fp32
GEMM's products are O(σ²), not O(μ²): the naive ``Σxy − ΣxΣy / n`` in fp32 loses every
digit for maps with mean 1000 and std 1. Each chunk's ``Σuvᵀ`` is added in float64 to sums
shifted by the first chunk's centre ``s``::

    Σ(x−s)(y−t)ᵀ += Σuvᵀ + d Σvᵀ + Σu eᵀ + n_c d eᵀ,   u = x − m, d = m − s (same for y)

with the correction terms of up to 256 chunks added at once (small float64 GEMMs), and the
chunk products added in place to float64 sums (no float64 copy per chunk). The GEMMs are
torch's matmul on the numpy buffers (zero-copy) with matmul precision forced to
``"highest"`` (no TF32) during :meth:`Moments.update`. A block's product with itself
(``Σuuᵀ``) needs only one triangle: on one torch thread it is numpy's ``u @ u.T`` (BLAS
syrk, half the multiply-adds) with numpy's BLAS limited to one thread through threadpoolctl
(optional; without it torch is used); otherwise torch's GEMM on row blocks of ~160 maps,
skipping the blocks above the diagonal. Two blocks with ``within=True`` share the buffer
(A's rows, then B's) and one such product of the stacked rows gives ``Σuuᵀ``, ``Σvvᵀ`` and
``Σuvᵀ``; with ``within=False`` it is one GEMM ``Σuvᵀ`` and ``Σu²`` per row. Two BLAS thread
pools side by side are avoided: on the 2-core test machine with one core busy, a 2-thread
numpy GEMM next to torch's pool ran up to 20x slower. Tensors on a GPU are copied to the
CPU chunk by chunk.

A map is *constant* (std 0 over all pooled pixels; correlation NaN) when every chunk has
exactly zero spread and the same mean. With the float32 engine this test is exact and free:
the data are cast to float32, so the float64 mean of a constant chunk equals its value and
the centred row is exactly 0. The float64 engine tracks per-map min/max instead.
NaN/Inf anywhere in a map makes its float64 chunk mean non-finite and raises ``ValueError``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np

from .._arrays import as_blocks, slab
from .._checks import check_choice, check_positive_int

__all__ = ["Moments", "NonFiniteMapsError", "full_fp32_precision"]

ArrayLike = Any  # numpy array or torch Tensor of shape (C, H, W) or (N, C, H, W)


@contextlib.contextmanager
def full_fp32_precision() -> Iterator[None]:
    """Force full fp32 matmul precision in torch (no TF32/bf16) and restore it afterwards.

    Uses ``torch.set_float32_matmul_precision("highest")`` (which also turns off
    ``torch.backends.cuda.matmul.allow_tf32``); if the process mixed the legacy and the new
    per-backend precision APIs, the per-backend ``fp32_precision`` flags are set to "ieee".
    """
    import torch

    try:
        old: Any = torch.get_float32_matmul_precision()
    except RuntimeError:  # legacy and new APIs mixed: use the new per-backend flags
        backends = [torch.backends.cuda.matmul, torch.backends.mkldnn.matmul]
        old = [b.fp32_precision for b in backends]
        try:
            for b in backends:
                b.fp32_precision = "ieee"
            yield
        finally:
            for b, v in zip(backends, old):
                b.fp32_precision = v
        return
    try:
        torch.set_float32_matmul_precision("highest")
        yield
    finally:
        torch.set_float32_matmul_precision(old)


def _gemm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b for numpy operands through torch's matmul (zero-copy), in the engine dtype."""
    import torch

    return torch.from_numpy(a).matmul(torch.from_numpy(b)).numpy()


_BLAS: list[Any] = []  # [threadpoolctl controller of numpy's BLAS, or None], built once


def _numpy_blas() -> Any:
    """threadpoolctl controller of the BLAS libraries loaded (numpy's), or None."""
    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS.append(ThreadpoolController().select(user_api="blas") or None)
        except Exception:  # threadpoolctl missing or failing: torch's GEMM is used instead
            _BLAS.append(None)
    return _BLAS[0]


_ROWS_PER_BLOCK = 160  # torch path: row blocks of about this many maps


def _self_product(u: np.ndarray, syrk: bool) -> list[tuple[int, int, np.ndarray]]:
    """Lower block triangle of u @ uᵀ as [(r0, r1, u[r0:r1] @ u[:r1]ᵀ)], engine dtype.

    ``syrk``: numpy's ``u @ u.T`` (BLAS syrk, half the multiply-adds of a GEMM; one block,
    both triangles), used on one thread with numpy's BLAS limited to one thread. Otherwise
    torch's GEMM on row blocks of ~160 maps, the blocks above the diagonal skipped (a single
    GEMM below 320 maps). The caller mirrors the lower triangle.
    """
    k = u.shape[0]
    if syrk:
        return [(0, k, u @ u.T)]
    edges = np.linspace(0, k, max(1, k // _ROWS_PER_BLOCK) + 1).astype(int)
    return [(r0, r1, _gemm(u[r0:r1], u[:r1].T)) for r0, r1 in zip(edges[:-1], edges[1:])]


def _mirror(g: np.ndarray) -> np.ndarray:
    """The symmetric matrix whose lower triangle (with the diagonal) is that of g."""
    low = np.tril(g)
    return low + np.tril(low, -1).T


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _symmetric(c: np.ndarray) -> np.ndarray:
    """(c + cᵀ) / 2: exactly symmetric (a + b == b + a in IEEE arithmetic), in place."""
    c += c.T.copy()
    c *= 0.5
    return c


def _rowdot(w: np.ndarray) -> np.ndarray:
    """Σw² per row of a (K, n) array, as float64 (BLAS dot per row)."""
    return np.matmul(w[:, None, :], w[:, :, None])[:, 0, 0].astype(np.float64)


class _Sums:
    """float64 shifted sums of one update (merged into Moments at the end); None = unused.

    ``varies_*``: a chunk had non-zero spread or a centre other than the shift (float32
    engine); ``lo_*``/``hi_*``: per-map min/max (float64 engine, its chunk means not exact).
    """

    def __init__(self, k_a: int, k_b: int, cross: bool, within: bool) -> None:
        self.n, kb = 0, k_b if cross else None
        full_a = within or not cross
        self.s_aa = np.zeros((k_a, k_a)) if full_a else np.zeros(k_a)
        self.s_bb = None if kb is None else np.zeros((kb, kb) if within else kb)
        self.s_ab = None if kb is None else np.zeros((k_a, kb))
        for side, k in (("a", k_a), ("b", kb)):
            for name, v in (("s", 0.0), ("varies", False), ("lo", np.inf), ("hi", -np.inf)):
                setattr(self, f"{name}_{side}", None if k is None else np.full(k, v))

    def merge(self, other: _Sums) -> None:
        self.n += other.n
        for key, mine in vars(self).items():
            op = {"varies": np.logical_or, "lo": np.minimum, "hi": np.maximum}.get(
                key.split("_")[0], np.add
            )
            if isinstance(mine, np.ndarray):
                op(mine, getattr(other, key), out=mine)


class NonFiniteMapsError(ValueError):
    """Maps hold NaN or Inf (callers that know the layers' names say which one)."""


class _Side:
    """One block (A or B) during an update: its centred chunks and per-chunk records."""

    def __init__(self, parts: list[Any], dtype: np.dtype, buf: np.ndarray) -> None:
        self.parts, self.dtype = parts, dtype
        self.k = sum(int(p.shape[1]) for p in parts)
        self.buf = buf  # (K, width) rows of the update's chunk buffer
        self.exact = dtype == np.float32  # else float64 engine: min/max find constant maps
        self.lo, self.hi = np.full(self.k, np.inf), np.full(self.k, -np.inf)
        self.rec: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (m, Σu, Σu²)

    def load(self, i0: int, i1: int, p0: int, p1: int, name: str) -> np.ndarray:
        """Centre one chunk on its float64 mean, rounded to the engine dtype; (K, n_c) view."""
        n_c = (i1 - i0) * (p1 - p0)
        self.m, self.su = np.empty(self.k), np.empty(self.k)
        c0 = 0
        for p in self.parts:
            s = slab(p, i0, i1, p0, p1)  # (G, C_j, n)
            c1 = c0 + s.shape[1]
            if self.exact and s.dtype != np.float32:
                s = s.astype(np.float32)
            mj = np.einsum("gcn->c", s, dtype=np.float64) / n_c  # NaN/Inf propagate
            if not self.exact:
                np.minimum(self.lo[c0:c1], s.min(axis=(0, 2)), out=self.lo[c0:c1])
                np.maximum(self.hi[c0:c1], s.max(axis=(0, 2)), out=self.hi[c0:c1])
            bad = ~np.isfinite(mj)
            if bad.any():
                raise NonFiniteMapsError(
                    f"{name} must be finite, got NaN/Inf in channel(s) "
                    f"{(c0 + np.flatnonzero(bad)).tolist()[:10]} of images {i0}..{i1 - 1}"
                )
            centre = mj.astype(self.dtype)
            out = self.buf[c0:c1, :n_c].reshape(c1 - c0, i1 - i0, p1 - p0)
            np.subtract(s.transpose(1, 0, 2), centre[:, None, None], out=out, casting="unsafe")
            self.m[c0:c1] = centre
            # Σu = n_c (true mean − centre used), up to the rounding of each subtraction
            self.su[c0:c1] = (mj - self.m[c0:c1]) * n_c
            c0 = c1
        return self.buf[:, :n_c]

    def record(self, sq: np.ndarray) -> None:
        self.rec.append((self.m, self.su, sq))

    def fold(self, shift: np.ndarray) -> tuple[np.ndarray, ...]:
        """Recorded chunks as (d, Σu, Σu², varies) with d = m − shift of shape (K, chunks)."""
        m, su, sq = (np.stack(v, axis=1) for v in zip(*self.rec))
        self.rec = []
        d = m - shift[:, None]
        varies = ((sq > 0) | (d != 0)).any(axis=1) if self.exact else np.zeros(self.k, bool)
        return d, su, sq, varies


class Moments:
    """Streaming float64 moments of two blocks of maps, for all-pairs similarity.

    Parameters
    ----------
    within : bool
        Keep the full within-block Gram matrices (needed for :meth:`cka`); if False and the
        blocks differ, only their diagonals (variances) are kept.
    chunk_pixels : int
        Maximum number of pixels per GEMM chunk. Chunks have 16,384 pixels on one torch
        thread; on several, up to 2^24 / (K_a + K_b) (fewer thread synchronisations).
    dtype : {"float32", "float64"}
        Precision of the per-chunk GEMM (sums are always float64).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(2, 3, 8, 8))
    >>> m = Moments().update(x)            # compares x with itself
    >>> m.pearson().shape
    (3, 3)
    >>> bool(np.allclose(np.diag(m.pearson()), 1))
    True
    """

    _FOLD = 256  # chunks recorded before their corrections are folded into the sums
    _PIXELS = 16384  # pixels per chunk on one thread, and at least on several
    _FLOATS = 1 << 24  # several threads: chunk of up to this many floats (all maps)

    def __init__(
        self,
        *,
        within: bool = True,
        chunk_pixels: int = 65536,
        dtype: Literal["float32", "float64"] = "float32",
    ) -> None:
        self.within = bool(within)
        self.chunk_pixels = check_positive_int("chunk_pixels", chunk_pixels)
        self.dtype = np.dtype(check_choice("dtype", dtype, ["float32", "float64"]))
        self.n = 0
        self.k_a = self.k_b = 0
        self.cross: bool | None = None
        self._sums: _Sums | None = None
        self.shift_a: np.ndarray | None = None
        self.shift_b: np.ndarray | None = None
        self._syrk = self._stack = False  # set by update(): how the products were made

    # ------------------------------------------------------------------ update
    def update(
        self, a: ArrayLike | Sequence[ArrayLike], b: ArrayLike | Sequence[ArrayLike] | None = None
    ) -> Moments:
        """Add the pixels of ``a`` (and ``b``) to the sums.

        Parameters
        ----------
        a : Tensor or ndarray of shape (C, H, W) or (N, C, H, W), or a list of them
            Maps of block A; a list is joined along channels (same N, H, W).
        b : same as ``a``, optional
            Maps of block B, same N and H x W as ``a``. ``None`` compares A with itself; the
            choice is fixed by the first update.

        Returns
        -------
        Moments
            ``self``. The update is all-or-nothing: on an error the sums are unchanged.
        """
        pa = as_blocks(a, "a")
        pb = None if b is None else as_blocks(b, "b")
        k_a = sum(int(p.shape[1]) for p in pa)
        k_b = k_a if pb is None else sum(int(p.shape[1]) for p in pb)
        if pb is not None and (pa[0].shape[0], pa[0].shape[2]) != (pb[0].shape[0], pb[0].shape[2]):
            raise ValueError(
                "a and b must have the same number of images N and pixels H x W, got "
                f"N={int(pa[0].shape[0])}, H*W={int(pa[0].shape[2])} for a and "
                f"N={int(pb[0].shape[0])}, H*W={int(pb[0].shape[2])} for b"
            )
        cross = pb is not None
        if self.cross is not None:
            if cross != self.cross:
                raise ValueError(
                    f"this Moments was started with b={'given' if self.cross else 'None'}; "
                    f"got b={'given' if cross else 'None'}"
                )
            if (k_a, k_b) != (self.k_a, self.k_b):
                raise ValueError(
                    f"expected (K_a, K_b) = ({self.k_a}, {self.k_b}) maps as before, "
                    f"got ({k_a}, {k_b})"
                )
        n_img, n_pix = int(pa[0].shape[0]), int(pa[0].shape[2])
        # measured on 2 cores: on one thread 8k..32k-pixel chunks do alike (cache-sized ones
        # are slower); on several, every GEMM synchronises the threads (costly when a core is
        # busy): fewer, larger chunks, the buffer up to ~64 MB (at least 16,384 pixels)
        k_tot = k_a + (k_b if cross else 0)
        c = self._PIXELS if _torch_threads() == 1 else max(self._PIXELS, self._FLOATS // k_tot)
        c = min(self.chunk_pixels, c)
        g = min(n_img, max(1, c // n_pix)) if n_pix < c else 1  # images per chunk
        width = min(c, g * n_pix)
        # both blocks in one buffer: A's rows, then B's (one product for aa, bb and ab)
        buf = np.empty((k_a + (k_b if cross else 0), width), self.dtype)
        sa = _Side(pa, self.dtype, buf[:k_a])
        sb = _Side(pb, self.dtype, buf[k_a:]) if cross else None
        # within=True: one self-product of the stacked rows gives Σuuᵀ, Σvvᵀ and Σuvᵀ for the
        # multiply-adds of the three; within=False: Σuvᵀ alone and Σu², Σv² per row (the
        # stacked product, (K_a + K_b)² / 2 multiply-adds instead of K_a K_b, measured slower
        # even at 64 + 64 maps)
        self._stack = cross and self.within
        acc, grams = _Sums(k_a, k_b, cross, self.within), {}
        shifts, ns = (self.shift_a, self.shift_b), []
        # numpy's syrk on one thread only: a multi-threaded BLAS pool beside torch's stalls
        # when a core is busy (measured 20x slower on 2 cores with one taken)
        selfprod = self.within or not cross
        blas = _numpy_blas() if _torch_threads() == 1 and selfprod else None
        self._syrk = blas is not None
        limit = blas.limit(limits=1) if blas else contextlib.nullcontext()
        with full_fp32_precision(), limit:
            for i0 in range(0, n_img, g):
                i1 = min(n_img, i0 + g)
                for p0 in range(0, n_pix, width if g == 1 else n_pix):
                    p1 = min(n_pix, p0 + width) if g == 1 else n_pix
                    self._chunk(sa, sb, buf, grams, (i0, i1, p0, p1))
                    ns.append((i1 - i0) * (p1 - p0))
                    if shifts[0] is None:
                        shifts = (sa.rec[0][0].copy(), sb.rec[0][0].copy() if cross else None)
                    if len(ns) == self._FOLD:
                        self._fold(acc, sa, sb, grams, ns, shifts)
                        ns = []
            self._fold(acc, sa, sb, grams, ns, shifts)
        acc.lo_a, acc.hi_a = sa.lo, sa.hi
        if cross:
            acc.lo_b, acc.hi_b = sb.lo, sb.hi
        self._commit(acc, k_a, k_b, cross, *shifts)
        return self

    def _chunk(self, sa: _Side, sb: _Side | None, buf: np.ndarray, grams: dict, r: tuple) -> None:
        """Centre one chunk of each block into ``buf`` (A's rows, then B's), multiply,
        record Σu², add the Gram matrices."""
        u = sa.load(*r, "a")
        v = None if sb is None else sb.load(*r, "b")
        if v is None or self._stack:
            x = u if v is None else buf[:, : u.shape[1]]  # A's rows, then B's
            blocks = _self_product(x, self._syrk)
            self._add(grams, "all", blocks)
            sq = np.concatenate([np.diagonal(p[:, r0:r1]) for r0, r1, p in blocks])
            sq = sq.astype(np.float64)
            sa.record(sq[: sa.k])
            if sb is not None:
                sb.record(sq[sa.k :])
            return
        self._add(grams, "ab", [(0, u.shape[0], _gemm(u, v.T))])  # within=False only
        sa.record(_rowdot(u))
        sb.record(_rowdot(v))

    @staticmethod
    def _add(grams: dict, key: str, blocks: list[tuple[int, int, np.ndarray]]) -> None:
        """Add row blocks (r0, r1, rows r0:r1 of the first columns) to a float64 sum."""
        if key not in grams:
            r1, p = blocks[-1][1], blocks[-1][2]
            grams[key] = np.zeros((r1, p.shape[1]))
        g = grams[key]
        for r0, r1, p in blocks:  # in place: no float64 copy per chunk
            np.add(g[r0:r1, : p.shape[1]], p, out=g[r0:r1, : p.shape[1]])

    def _fold(self, acc: _Sums, sa, sb, grams, ns, shifts) -> None:
        """Add the recorded chunks, with their centre corrections, to the float64 sums."""
        if not ns:
            return
        n = np.asarray(ns, dtype=np.float64)
        acc.n += int(n.sum())
        da, sua, sqa, va = sa.fold(shifts[0])
        acc.s_a += sua.sum(axis=1) + da @ n
        acc.varies_a |= va
        g = _mirror(grams.pop("all")) if "all" in grams else None  # A's rows, then B's
        if sb is None:
            t = da @ sua.T
            acc.s_aa += g + t + t.T + (da * n) @ da.T
            return
        db, sub, sqb, vb = sb.fold(shifts[1])
        acc.s_b += sub.sum(axis=1) + db @ n
        acc.varies_b |= vb
        k_a = sa.k
        g_ab = grams.pop("ab") if g is None else g[:k_a, k_a:]
        acc.s_ab += g_ab + da @ sub.T + sua @ db.T + (da * n) @ db.T
        for s_xx, d, su, sq, sl in (
            (acc.s_aa, da, sua, sqa, slice(None, k_a)),
            (acc.s_bb, db, sub, sqb, slice(k_a, None)),
        ):
            if self.within:
                t = d @ su.T
                s_xx += g[sl, sl] + t + t.T + (d * n) @ d.T
            else:
                s_xx += sq.sum(axis=1) + 2 * (d * su).sum(axis=1) + (d * d) @ n

    def _commit(self, acc: _Sums, k_a, k_b, cross, shift_a, shift_b) -> None:
        if self._sums is None:
            self._sums = acc
            self.k_a, self.k_b, self.cross = k_a, k_b, cross
            self.shift_a, self.shift_b = shift_a, shift_b
        else:
            self._sums.merge(acc)
        self.n = self._sums.n

    # ----------------------------------------------------------------- results
    def _state(self) -> _Sums:
        if self._sums is None or self.n == 0:
            raise ValueError("no data: call update() with at least one pixel first, got n=0")
        return self._sums

    @property
    def constant_a(self) -> np.ndarray:
        """ndarray of bool, shape (K_a,): maps of A with one value over all pixels."""
        s = self._state()
        return ~s.varies_a & (s.hi_a == s.lo_a) if self.dtype == np.float64 else ~s.varies_a

    @property
    def constant_b(self) -> np.ndarray:
        """ndarray of bool, shape (K_b,): maps of B with one value over all pixels."""
        s = self._state()
        if not self.cross:
            return self.constant_a
        return ~s.varies_b & (s.hi_b == s.lo_b) if self.dtype == np.float64 else ~s.varies_b

    @property
    def mean_a(self) -> np.ndarray:
        """ndarray of shape (K_a,): mean of each map of A over all pixels."""
        s = self._state()
        return self.shift_a + s.s_a / s.n

    @property
    def mean_b(self) -> np.ndarray:
        """ndarray of shape (K_b,): mean of each map of B over all pixels."""
        s = self._state()
        return self.mean_a if not self.cross else self.shift_b + s.s_b / s.n

    def _centred(self, which: str) -> np.ndarray:
        """Centred co-moment Σ(x−x̄)(y−ȳ)ᵀ for ``which`` in {"aa", "bb", "ab"} (or diag).

        A block compared with itself gives a matrix symmetric bit for bit: the float64
        sums of the GEMM blocks and corrections need not be (their rounding depends on the
        order of the terms), so the matrix is replaced by (C + Cᵀ) / 2, whose entries
        C[i, j] + C[j, i] are the same sum both ways; the diagonal is unchanged.
        """
        s = self._state()
        if not self.cross:
            c = _symmetric(s.s_aa - np.outer(s.s_a, s.s_a) / s.n)
            keep = ~self.constant_a
            return c * keep[:, None] * keep[None, :]
        x = {"aa": s.s_aa, "bb": s.s_bb, "ab": s.s_ab}[which]
        sa = s.s_a if which[0] == "a" else s.s_b
        sb = s.s_b if which[1] == "b" else s.s_a
        ka = ~(self.constant_a if which[0] == "a" else self.constant_b)
        kb = ~(self.constant_b if which[1] == "b" else self.constant_a)
        if x.ndim == 1:
            return (x - sa * sa / s.n) * ka
        c = x - np.outer(sa, sb) / s.n
        if which != "ab":  # within-block Gram matrices (CKA) are self-blocks too
            c = _symmetric(c)
        return c * ka[:, None] * kb[None, :]

    def _var_sums(self) -> tuple[np.ndarray, np.ndarray]:
        caa = self._centred("aa")
        cbb = self._centred("bb") if self.cross else caa
        va = np.diag(caa) if caa.ndim == 2 else caa
        vb = np.diag(cbb) if cbb.ndim == 2 else cbb
        return np.maximum(va, 0.0), np.maximum(vb, 0.0)

    def covariance(self, ddof: int = 1) -> np.ndarray:
        """ndarray of shape (K_a, K_b): covariance over pixels (``ddof`` as in np.cov)."""
        s = self._state()
        if s.n - ddof <= 0:
            raise ValueError(f"covariance needs more than ddof={ddof} pixels, got n={s.n}")
        return self._centred("ab") / (s.n - ddof)

    def pearson(self) -> np.ndarray:
        """ndarray of shape (K_a, K_b): signed Pearson r; NaN where a map is constant."""
        va, vb = self._var_sums()
        den = np.sqrt(np.outer(va, vb))
        bad = np.outer(self.constant_a, np.ones(self.k_b, bool)) | self.constant_b[None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            r = self._centred("ab") / den
        r[bad | (den == 0)] = np.nan
        return np.clip(r, -1.0, 1.0)

    def _raw(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw Σxyᵀ (K_a, K_b) and Σx², Σy² recovered from the centred sums and means."""
        n = self._state().n
        ma, mb = self.mean_a, self.mean_b
        va, vb = self._var_sums()
        return self._centred("ab") + n * np.outer(ma, mb), va + n * ma**2, vb + n * mb**2

    def cosine(self) -> np.ndarray:
        """ndarray of shape (K_a, K_b): x·y / (‖x‖ ‖y‖); NaN where a map is all zeros."""
        xy, xx, yy = self._raw()
        den = np.sqrt(np.outer(xx, yy))
        zero = np.outer(self.constant_a & (self.mean_a == 0), np.ones(self.k_b, bool))
        zero |= (self.constant_b & (self.mean_b == 0))[None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            c = xy / den
        c[zero | (den == 0)] = np.nan
        return np.clip(c, -1.0, 1.0)

    def euclidean(self) -> np.ndarray:
        """ndarray of shape (K_a, K_b): ‖x − y‖₂ over all pixels (clamped at 0 before sqrt)."""
        n = self._state().n
        va, vb = self._var_sums()
        d2 = va[:, None] + vb[None, :] - 2 * self._centred("ab")
        d2 += n * (self.mean_a[:, None] - self.mean_b[None, :]) ** 2
        return np.sqrt(np.maximum(d2, 0.0))

    def cka(self) -> float:
        """Linear CKA with pixels as samples: ‖XᵀY‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F), X, Y centred.

        NaN if all maps of A or of B are constant. Needs ``within=True`` for two blocks.
        """
        caa = self._centred("aa")
        if caa.ndim != 2:
            raise ValueError("cka() needs the within-block Gram matrices: use Moments(within=True)")
        cbb, cab = self._centred("bb"), self._centred("ab")
        den = np.linalg.norm(caa) * np.linalg.norm(cbb)
        return float(np.linalg.norm(cab) ** 2 / den) if den > 0 else float("nan")
