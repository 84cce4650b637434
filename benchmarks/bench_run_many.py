"""Seeds trained together (``run_many``) vs the same seeds run one after another (``run``).

One (method, N) cell of the limited-data protocol on CIFAR-10-shaped data: each seed draws
its own N per class (N = 10: 100 training images of 3x32x32, 10 classes, plus 10 per class
for validation) from a random uint8 pool, augmented (pad 4, crop, flip), batch 128 (one
step per epoch), a shared test set; ResNet-32 source (random weights: the cost does not
depend on them), VGG-9-BN target. The two ways are interleaved within each round (so load
from other processes hits both alike) and the ratio sequential / grouped is taken per round;
the median and range over rounds are printed, per method, for wall-clock and CPU time
(CPU time of this process: with 1 thread it is barely affected by other processes).

    python benchmarks/bench_run_many.py --methods l2t_www scratch ufm --seeds 8 --epochs 3
    python benchmarks/bench_run_many.py --width 1 --source-width 1 --rounds 1   # full size
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from cnnexplore_nb.data import ImageClassification, per_class_subset
from cnnexplore_nb.data.classification import Augment
from cnnexplore_nb.models import create_model
from cnnexplore_nb.transfer import run, run_many


def cifar_like(n_per_class: int, seeds: list[int], test_size: int, classes: int = 10):
    gen = torch.Generator().manual_seed(0)
    pool_n = classes * (n_per_class + 10) * 2
    pool = ImageClassification(
        torch.randint(0, 256, (pool_n, 3, 32, 32), dtype=torch.uint8, generator=gen),
        torch.arange(pool_n) % classes,
    )
    test = ImageClassification(
        torch.randint(0, 256, (test_size, 3, 32, 32), dtype=torch.uint8, generator=gen),
        torch.arange(test_size) % classes,
    )
    datas = []
    for seed in seeds:
        train, val = per_class_subset(pool, n_per_class, rng=seed, val_per_class=10)
        datas.append({"train": train.with_transform(Augment(pad=4, flip=True)), "val": val,
                      "test": test})  # fmt: skip
    return datas


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=["l2t_www", "scratch", "ufm"])
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--n", type=int, default=10, help="training samples per class")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--width", type=float, default=0.25, help="target width multiplier")
    ap.add_argument("--source-width", type=float, default=0.25)
    ap.add_argument("--test-size", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2, help="torch threads of both ways")
    ap.add_argument("--device", default="cpu", help="device of the grouped runs")
    args = ap.parse_args()
    torch.manual_seed(0)
    source = create_model("resnet32", num_classes=200, width=args.source_width)
    seeds = list(range(args.seeds))
    datas = cifar_like(args.n, seeds, args.test_size)
    kw = dict(target="vgg9_bn", epochs=args.epochs, batch_size=128, progress=False,
              target_kwargs={"width": args.width}, num_threads=args.threads)  # fmt: skip
    print(
        f"{args.seeds} seeds, N = {args.n} ({len(datas[0]['train'])} training images 3x32x32), "
        f"{args.epochs} epochs, batch 128, VGG-9-BN x{args.width:g} target, ResNet-32 "
        f"x{args.source_width:g} source, test {args.test_size} images, {args.threads} threads, "
        f"grouped on {args.device}; {args.rounds} interleaved rounds"
    )
    for method in args.methods:
        src = None if method == "scratch" else source

        def sequential(method=method, src=src):
            return [run(method, source=src, data=d, seed=s, **kw) for s, d in zip(seeds, datas)]

        def grouped(method=method, src=src):
            return run_many(method, source=src, data=datas, seeds=seeds, device=args.device, **kw)

        grouped()  # warm-up (allocator, oneDNN primitives)
        rows = []
        for r in range(args.rounds):
            pair = {}
            for name, fn in (("sequential", sequential), ("grouped", grouped))[:: 1 - 2 * (r % 2)]:
                t0, c0 = time.perf_counter(), time.process_time()
                fn()
                pair[name] = (time.perf_counter() - t0, time.process_time() - c0)
            rows.append(pair)
        for k, clock in enumerate(("wall", "CPU")):
            ratios = [p["sequential"][k] / p["grouped"][k] for p in rows]
            seq = statistics.median(p["sequential"][k] for p in rows)
            grp = statistics.median(p["grouped"][k] for p in rows)
            print(
                f"  {method:<8s} {clock:<4s} sequential {seq:7.1f} s   grouped {grp:7.1f} s   "
                f"throughput x{statistics.median(ratios):.2f} "
                f"(range {min(ratios):.2f}-{max(ratios):.2f})"
            )


if __name__ == "__main__":
    main()
