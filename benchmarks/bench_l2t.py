"""Cost of one L2T-ww / L2T-www iteration relative to one plain SGD step of the target.

Real architecture: ResNet-32 source (the L2T-ww checkpoint if ../shared/data has it, else
random weights; the cost does not depend on the values), VGG-9-BN target, 15 pairs, T = 2,
one batch of 32x32 images. Times are CPU seconds of this process on one thread by default
(robust to other load on the machine). Prints the median seconds and the ratios (goal <= 8x; the L2T-ww
reference code measured about 33x on the project's 2-core CPU).

    python benchmarks/bench_l2t.py --batch 64 --repeats 5
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
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
        ratio = statistics.median(r[name] / r["plain SGD step"] for r in rounds)
        print(f"  {name:<20s} {sec * 1e3:9.1f} ms   {ratio:5.1f}x")


if __name__ == "__main__":
    main()
