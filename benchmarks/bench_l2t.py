"""Cost of one L2T-ww / L2T-www iteration relative to one plain SGD step of the target.

Real architecture: ResNet-32 source (the L2T-ww checkpoint if ../shared/data has it, else
random weights; the cost does not depend on the values), VGG-9-BN target, 15 pairs, T = 2,
one batch of 32x32 images. Times are CPU seconds of this process on one thread by default
(robust to other load on the machine). Prints the median seconds and the ratios with their
range over the interleaved rounds (goal <= 10x; the L2T-ww reference code measured about
33x on the project's 2-core CPU).

Then one profiled L2T-www iteration and one profiled plain step (torch.profiler, same
conditions): where the iteration's time goes, per phase (the ``l2t.*`` labels of
``TransferStep``) and per kind of operation, in plain steps; and the exact method's floor:
the self time of the convolution kernels alone (the real step, the T + 1 recorded steps,
the meta forward and the second-order backward through them) over the profiled plain
step's total.

    python benchmarks/bench_l2t.py --batch 64 --repeats 5
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F

from cnnexplore_nb.models import create_model
from cnnexplore_nb.transfer.checkpoint import load_l2tww_source
from cnnexplore_nb.transfer.train import build_step

CKPT = Path(__file__).resolve().parents[2] / "shared/data/l2tww_tinyimagenet_resnet32.pth.tar"


def _time(fn) -> float:
    # CPU time of this process: with one thread it is barely affected by other processes
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: default)")
    ap.add_argument("--width", type=float, default=1.0, help="target width multiplier")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    source = (
        load_l2tww_source(CKPT) if CKPT.is_file() else create_model("resnet32", num_classes=200)
    )
    target = create_model("vgg9_bn", num_classes=10, width=args.width)
    x = torch.randn(args.batch, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch,))

    plain_model = copy.deepcopy(target).train()
    opt = torch.optim.SGD(plain_model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

    def plain() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(plain_model(x), y).backward()
        opt.step()

    steps = {
        method: build_step(method, copy.deepcopy(source), copy.deepcopy(target), lr=0.01)
        for method in ("l2t_ww", "l2t_www")
    }
    fns = {"plain SGD step": plain}
    fns.update({f"{m} iteration": (lambda s=s: s.step(x, y)) for m, s in steps.items()})
    for fn in fns.values():  # warm-up (allocator, mkldnn primitives)
        fn()
    # interleave the measurements so that load from other processes hits all of them alike;
    # the ratio is taken within each round, then the median over rounds is reported
    rounds = [{name: _time(fn) for name, fn in fns.items()} for _ in range(args.repeats)]
    print(
        f"batch {args.batch} x 3 x 32 x 32, target width {args.width}, "
        f"threads {torch.get_num_threads()}, median of {args.repeats} interleaved rounds"
    )
    for name in fns:
        sec = statistics.median(r[name] for r in rounds)
        ratios = [r[name] / r["plain SGD step"] for r in rounds]
        print(
            f"  {name:<20s} {sec * 1e3:9.1f} ms   {statistics.median(ratios):5.1f}x "
            f"(range {min(ratios):.1f}-{max(ratios):.1f})"
        )
    profile_breakdown(plain, lambda: steps["l2t_www"].step(x, y))


KINDS = (
    ("convolution", ("conv",)),
    ("batch norm", ("batch_norm",)),
    ("pooling, ReLU", ("max_pool", "threshold", "clamp_min", "relu", "gather")),
    ("resize", ("upsample",)),
)


def _kind(name: str) -> str:
    for kind, keys in KINDS:
        if any(k in name for k in keys):
            return kind
    return "elementwise, other"


def profile_breakdown(plain, iteration) -> None:
    """Self time per phase and per kind of op of one iteration, in profiled plain steps."""
    from torch.profiler import profile

    with profile() as prof_plain:
        plain()
    with profile() as prof:
        iteration()
    unit = sum(e.self_cpu_time_total for e in prof_plain.key_averages())
    by_kind: dict[str, float] = defaultdict(float)
    for e in prof.key_averages():
        if not e.key.startswith("l2t."):
            by_kind[_kind(e.key)] += e.self_cpu_time_total
    total = sum(by_kind.values())
    phases = {e.key: e.cpu_time_total for e in prof.key_averages() if e.key.startswith("l2t.")}
    print(
        f"profiled: plain step {unit / 1e3:.0f} ms, L2T-www iteration {total / unit:.1f} plain steps"
    )
    print("  per phase (plain steps):")
    for key in ("source", "real_backward", "unroll_matching", "unroll_cross_entropy",
                "meta_forward", "meta_backward"):  # fmt: skip
        print(f"    {key:<22s} {phases.get('l2t.' + key, 0.0) / unit:5.2f}")
    rest = total - sum(phases.values())
    print(f"    {'real forward, other':<22s} {rest / unit:5.2f}")
    print("  per kind of operation (plain steps):")
    for kind in [k for k, _ in KINDS] + ["elementwise, other"]:
        print(f"    {kind:<22s} {by_kind[kind] / unit:5.2f}")
    print(
        f"  floor (convolution kernels alone): {by_kind['convolution'] / unit:.1f} plain steps; "
        f"plain step's own convolutions: "
        f"{sum(e.self_cpu_time_total for e in prof_plain.key_averages() if 'conv' in e.key) / unit:.2f}"
    )


if __name__ == "__main__":
    main()
