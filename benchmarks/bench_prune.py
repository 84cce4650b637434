"""Benchmark of physical pruning: CNN6 before / after removing a share of every module's maps.

Measured in this one run: parameter ratio, MAC ratio (both exact counts) and the measured
inference speed-up (median of interleaved timed forwards, same thread count), for the
correlation criterion's usual outcome size (25 % of the maps of every module) and a few
other shares. Which maps are removed does not change size or speed, so the L1 criterion
picks them here (no training needed). Also checks that folding the removed maps' means
keeps the pruned output equal to mean ablation away from the border.

Usage: ``python benchmarks/bench_prune.py [--small] [--threads N]``
"""

from __future__ import annotations

import argparse

import torch

from cnnexplore_nb.models.fcn import FCN
from cnnexplore_nb.prune import (
    l1_smallest,
    map_means,
    mean_ablation,
    prune_maps,
    prune_report,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="128 x 128 input, fewer repeats")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args()
    size, repeats = (128, 5) if args.small else (256, 15)
    torch.manual_seed(0)
    model = FCN(6, width=64).eval()
    layers = [f"conv_module{i}" for i in range(1, 7)]
    x = torch.randn(1, 1, size, size)
    means = map_means(model, torch.randn(2, 1, size, size), layers, progress=False)
    print(
        f"CNN6 (width 64), input 1 x 1 x {size} x {size}, threads {args.threads or torch.get_num_threads()}"
    )
    for share in (0.25, 0.5, 0.75):
        k = int(round(64 * share))
        plan = {layer: l1_smallest(model, layer, k) for layer in layers}
        pruned = prune_maps(model, plan, fold_means=means)
        rep = prune_report(model, pruned, x, repeats=repeats, warmup=2, threads=args.threads)
        r = rep.set_index("quantity")
        print(
            f"\nremove {share:.0%} of every module ({k} of 64 maps):\n"
            f"  params  {int(r.loc['params', 'before']):>12,} -> {int(r.loc['params', 'after']):>12,}"
            f"   ratio {r.loc['params', 'ratio']:.2f}x\n"
            f"  MACs    {int(r.loc['macs', 'before']):>12,} -> {int(r.loc['macs', 'after']):>12,}"
            f"   ratio {r.loc['macs', 'ratio']:.2f}x\n"
            f"  time ms {r.loc['time_ms', 'before']:>12.1f} -> {r.loc['time_ms', 'after']:>12.1f}"
            f"   measured speed-up {r.loc['time_ms', 'ratio']:.2f}x"
        )
        if share == 0.25:
            with torch.no_grad(), mean_ablation(model, plan, means):
                ref = model(x)
            with torch.no_grad():
                out = pruned(x)
            m = len(layers)  # 3x3 convs after conv_module1: 5 modules + classifier
            err = (out - ref)[..., m:-m, m:-m].abs().max().item()
            print(f"  max |pruned - mean-ablated| away from the {m}-pixel border: {err:.2e}")


if __name__ == "__main__":
    main()
