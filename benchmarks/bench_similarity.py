"""Benchmarks of the similarity engine; every ratio is measured in this one run.

1. Pearson all-pairs at K = 256 maps of 1024 x 1024 (~1 M pixels) and at thesis scale
   (K = 640 maps of 1376 x 1104) vs a plain fp32 GEMM of the same shape (the faster of
   numpy's and torch's matmul in the same round).
2. The ``pairs`` table for 64 + 64 maps of 256 x 256 vs a faithful re-implementation of the
   original CNN Explorer per-pair loop (std for both zero flags, stack, corrcoef, abs, one
   row dict per pair, a DataFrame at the end). Like for like: the original builds only
   this table; the time to build the other four tables as well is shown separately.
3. Peak memory (tracemalloc) of the engine while streaming 1, 10 and 100 images.

Usage: ``python benchmarks/bench_similarity.py [--small] [--only gemm,pairs,memory]
[--threads 1 2] [--rounds N]``

[1] and [2] run for each thread count (torch and numpy's BLAS limited alike; 1 and all
cores by default). In each of ``--rounds`` rounds every variant runs once (in [2] the fast
ones ``inner`` times, their median taken), interleaved, so all see the same machine load;
each ratio is computed per round and reported as the median and min-max over the rounds,
beside the median times. [2] checks every variant's table against the original's content.
The load average is printed with each block: on a shared machine the spread is the honest
error bar.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
import tracemalloc

import numpy as np
import pandas as pd
import torch

from cnnexplore_nb.similarity import correlation_tables, similarity_matrix
from cnnexplore_nb.similarity.moments import Moments


def _spread(v) -> str:
    """median [min-max] of a list of numbers."""
    return f"{np.median(v):6.2f} [{np.min(v):.2f}-{np.max(v):.2f}]"


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def bench_gemm(shapes: list[tuple[int, int, int]], threads: list[int], rounds: int) -> None:
    for k, h, w in shapes:
        _bench_gemm_shape(k, h, w, threads, rounds)


def _bench_gemm_shape(k: int, h: int, w: int, threads: list[int], rounds: int) -> None:
    n = h * w
    print(f"\n[1] Pearson all-pairs, K = {k} maps of {h} x {w} = {n:,} pixels")
    rng = np.random.default_rng(0)
    maps = rng.standard_normal((1, k, h, w), dtype=np.float32)
    maps += 3.0  # non-zero means, as real activations
    flops = 2.0 * k * k * n
    # plain fp32 GEMM of the same shape: (K x n) @ (n x K) with two distinct operands,
    # timed on a slab of at most 262,144 pixels and scaled to n
    s = min(n, 262_144)
    x = np.ascontiguousarray(maps.reshape(k, n)[:, :s])
    y = x.copy()
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    runs = {
        "engine": (lambda: similarity_matrix(maps), 1.0),
        "numpy": (lambda: x @ y.T, n / s),
        "torch": (lambda: tx @ ty.T, n / s),
        "syrk": (lambda: x @ x.T, n / s),
    }
    for nt in threads:
        t: dict[str, list[float]] = {name: [] for name in runs}
        with _threads(nt):
            similarity_matrix(maps[:, :, :64])  # warm-up (threads, allocations)
            for _ in range(rounds):  # interleaved: each variant sees the same load
                for name, (fn, scale) in runs.items():
                    t0 = time.perf_counter()
                    fn()
                    t[name].append((time.perf_counter() - t0) * scale)
        gf = {name: flops / np.median(v) / 1e9 for name, v in t.items()}
        ratio = np.minimum(t["numpy"], t["torch"]) / np.asarray(t["engine"])
        print(f"  {nt} thread(s), {rounds} rounds, load average {_load():.1f}; median GFLOP/s:")
        print(f"    numpy fp32 GEMM   {gf['numpy']:7.1f}")
        print(f"    torch fp32 GEMM   {gf['torch']:7.1f}")
        print(f"    numpy x @ x.T     {gf['syrk']:7.1f}  (BLAS syrk, half the work)")
        print(
            f"    engine (pearson)  {gf['engine']:7.1f}  "
            f"({np.median(t['engine']):.2f} s, {min(t['engine']):.2f}-{max(t['engine']):.2f})"
        )
        print(
            f"    engine / best plain GEMM of the round: median [min-max] {_spread(ratio)}"
            "  (goal >= 0.7)"
        )


def original_pairs(maps_a: np.ndarray, maps_b: np.ndarray, a: str, b: str) -> pd.DataFrame:
    """The original tool's per-pair work, re-implemented faithfully (the slow baseline)."""
    rows = []
    for i in range(maps_a.shape[0]):
        for j in range(maps_b.shape[0]):
            fa, fb = maps_a[i].flatten(), maps_b[j].flatten()
            zero_a = int(np.std(fa) == 0)
            zero_b = int(np.std(fb) == 0)
            with np.errstate(invalid="ignore", divide="ignore"):
                corr = np.abs(np.corrcoef(np.stack([fa, fb]))[0, 1])
            rows.append(
                {
                    f"{a}_map_id": i,
                    f"{b}_map_id": j,
                    "correlation": corr,
                    f"{a}_zero_flag": zero_a,
                    f"{b}_zero_flag": zero_b,
                    f"{a}_layer": "layer_a",
                    f"{b}_layer": "layer_b",
                }
            )
    return pd.DataFrame(rows)


def vectorised_pairs(maps_a: np.ndarray, maps_b: np.ndarray, a: str, b: str) -> pd.DataFrame:
    """A plain vectorised torch version: standardise each block, one matmul, |r|, DataFrame."""
    x = torch.from_numpy(maps_a).reshape(maps_a.shape[0], -1)
    y = torch.from_numpy(maps_b).reshape(maps_b.shape[0], -1)
    zx, zy = x.std(1) == 0, y.std(1) == 0
    xc, yc = x - x.mean(1, keepdim=True), y - y.mean(1, keepdim=True)
    xn, yn = xc / xc.norm(dim=1, keepdim=True), yc / yc.norm(dim=1, keepdim=True)
    r = (xn @ yn.T).abs().numpy().astype(np.float64)
    ka, kb = r.shape
    return pd.DataFrame(
        {
            f"{a}_map_id": np.repeat(np.arange(ka), kb),
            f"{b}_map_id": np.tile(np.arange(kb), ka),
            "correlation": r.ravel(),
            f"{a}_zero_flag": np.repeat(zx.numpy().astype(np.int64), kb),
            f"{b}_zero_flag": np.tile(zy.numpy().astype(np.int64), ka),
            f"{a}_layer": "layer_a",
            f"{b}_layer": "layer_b",
        }
    )


def same_content(ours: pd.DataFrame, ref: pd.DataFrame) -> bool:
    """Same columns (ours may add ``signed_correlation``), ids, flags, layers; |r| to 1e-5."""
    cols = list(ref.columns)
    if list(ours.columns[: len(cols)]) != cols or len(ours) != len(ref):
        return False
    exact = all(
        np.array_equal(ours[c].astype(str if c.endswith("_layer") else np.int64), ref[c])
        for c in cols
        if c != "correlation"
    )
    close = np.allclose(ours["correlation"], ref["correlation"], atol=1e-5, equal_nan=True)
    return bool(exact and close)


def _threads(n: int):
    """torch and BLAS (numpy) thread limits for one measurement block."""
    torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # numpy's BLAS then keeps its own setting
        return contextlib.nullcontext()
    return threadpool_limits(n)


def bench_pairs(k: int, hw: int, threads: list[int], rounds: int, inner: int = 5) -> None:
    print(f"\n[2] pairs table, {k} + {k} maps of {hw} x {hw}")
    rng = np.random.default_rng(1)
    ma = np.maximum(rng.standard_normal((k, hw, hw), dtype=np.float32), 0)  # ReLU-like
    mb = np.maximum(rng.standard_normal((k, hw, hw), dtype=np.float32), 0)
    ma[3] = 0.0  # a dead map

    def tables():
        return correlation_tables(
            {"layer_a": ma}, {"layer_b": mb}, names=("CNN6", "CNN10"), progress=False
        )

    runs = {
        "original per-pair loop": lambda: original_pairs(ma, mb, "CNN6", "CNN10"),
        "plain vectorised torch": lambda: vectorised_pairs(ma, mb, "CNN6", "CNN10"),
        # the pairs table under CNN Explorer's column names, as the original builds it
        "correlation_tables() pairs": lambda: tables().explorer("pairs"),
        "  ... and max/min/stats/partners": lambda: [
            getattr(t, n)
            for t in [tables()]
            for n in ("pairs", "maxima", "minima", "stats", "partners")
        ],
    }
    base = "original per-pair loop"
    for n in threads:
        with _threads(n):
            ref = runs[base]()
            checks = {name: same_content(fn(), ref) for name, fn in list(runs.items())[1:3]}
            # per round: one wall / CPU time per variant (median of its inner repeats)
            wall: dict[str, list[float]] = {name: [] for name in runs}
            cpu: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(rounds):  # interleaved: each variant sees the same machine load
                for name, fn in runs.items():
                    w, c = [], []
                    for _ in range(1 if name == base else inner):
                        t0, c0 = time.perf_counter(), time.process_time()
                        fn()
                        w.append(time.perf_counter() - t0)
                        c.append(time.process_time() - c0)
                    wall[name].append(float(np.median(w)))
                    cpu[name].append(float(np.median(c)))
        print(f"  {n} thread(s) for torch and BLAS, {rounds} rounds, load average {_load():.1f}:")
        print(f"    {'':34s} {'median wall':>12s} {'median CPU':>11s}   speed-up vs original,")
        print(f"    {'':34s} {'':>12s} {'':>11s}   per round: median [min-max]")
        w0, c0 = np.asarray(wall[base]), np.asarray(cpu[base])
        for name in runs:
            w, c = np.asarray(wall[name]), np.asarray(cpu[name])
            line = f"    {name:34s} {np.median(w) * 1e3:9.1f} ms {np.median(c) * 1e3:8.1f} ms"
            if name != base:
                line += f"   wall {_spread(w0 / w)}x  CPU {_spread(c0 / c)}x"
            print(line)
        ok = ", ".join(f"{name}: {v}" for name, v in checks.items())
        print(f"    same content as the original ({len(ref):,} rows): {ok}")
    print("  goal: correlation_tables() pairs >= 100x the original (wall, median)")


def bench_memory(k: int, hw: int) -> None:
    print(f"\n[3] peak extra memory while streaming images of {k} maps {hw} x {hw} (tracemalloc)")
    rng = np.random.default_rng(2)
    for n in (1, 10, 100):
        images = rng.standard_normal((n, k, hw, hw), dtype=np.float32)
        tracemalloc.start()
        mom = Moments()
        for i in range(n):
            mom.update(images[i])
        mom.pearson()
        _, peak_stream = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        similarity_matrix(images)
        _, peak_pooled = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"  N = {n:3d} images ({images.nbytes / 2**20:7.1f} MiB of maps): "
            f"peak {peak_stream / 2**20:6.1f} MiB image by image, "
            f"{peak_pooled / 2**20:6.1f} MiB as one (N, C, H, W) call"
        )
        del images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="quick sizes (256 x 256 maps)")
    parser.add_argument(
        "--only", default="gemm,pairs,memory", help="comma-separated parts: gemm,pairs,memory"
    )
    parser.add_argument(
        "--threads", type=int, nargs="+", default=None,
        help="thread counts for the pairs benchmark (default: 1 and all cores)",
    )  # fmt: skip
    parser.add_argument(
        "--rounds", "--repeat", type=int, default=3, dest="rounds",
        help="interleaved rounds of [1] and [2] (medians and min-max over rounds)",
    )  # fmt: skip
    args = parser.parse_args()
    parts = set(args.only.split(","))
    all_threads = torch.get_num_threads()
    threads = args.threads or sorted({1, all_threads})
    if "gemm" in parts:
        if args.small:
            bench_gemm([(256, 128, 128), (640, 128, 128)], threads, args.rounds)
        else:
            bench_gemm([(256, 1024, 1024), (640, 1376, 1104)], threads, args.rounds)
        torch.set_num_threads(all_threads)
    if "pairs" in parts:
        bench_pairs(64, 128 if args.small else 256, threads, args.rounds)
        torch.set_num_threads(all_threads)
    if "memory" in parts:
        bench_memory(64, 32) if args.small else bench_memory(64, 64)


if __name__ == "__main__":
    main()
