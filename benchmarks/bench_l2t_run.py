"""Cost of one run of the documents' protocol (CIFAR-10, N = 10, 200 epochs, batch 128,
full-width VGG-9 <- ResNet-32) per arm at one thread, and where its time goes.

At N = 10 an epoch is one training iteration on the 100 images, one validation pass over
the hold-out (50 per class: 500 images) and, with snapshots, the meta outputs on a probe
batch; the test split (2,000 images of the class-balanced subset) is evaluated twice per
run (final and best-validation weights). Times are CPU seconds of this process (robust to
other load), median over ``--epochs`` measured epochs after one warm-up. Prints minutes
per run against the issue's goal (10 minutes per L2T run), the L2T iteration's phases (as
``bench_l2t.py`` splits them) and the which-network's own share.

    python benchmarks/bench_l2t_run.py --epochs 3
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import torch

from cnnexplore_nb.models import create_model
from cnnexplore_nb.studies.transfer import ARMS
from cnnexplore_nb.transfer import build_step, evaluate
from cnnexplore_nb.transfer.checkpoint import load_l2tww_source
from cnnexplore_nb.transfer.train import _snapshot

CKPT = Path(__file__).resolve().parents[2] / "shared/data/l2tww_tinyimagenet_resnet32.pth.tar"
GOAL_MINUTES = 10.0


def _cpu(fn) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3, help="measured epochs per arm")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--run-epochs", type=int, default=200, help="epochs of one run")
    ap.add_argument("--arms", default=",".join(ARMS), help="comma-separated study arms")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    source = (
        load_l2tww_source(CKPT) if CKPT.is_file() else create_model("resnet32", num_classes=200)
    )
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(100, 3, 32, 32, generator=g), torch.randint(0, 10, (100,), generator=g)
    val = torch.utils.data.TensorDataset(torch.randn(500, 3, 32, 32, generator=g),
                                         torch.randint(0, 10, (500,), generator=g))  # fmt: skip
    test = torch.utils.data.TensorDataset(torch.randn(2000, 3, 32, 32, generator=g),
                                          torch.randint(0, 10, (2000,), generator=g))  # fmt: skip
    target = create_model("vgg9_bn", num_classes=10)
    weights = (("features.0.weight", (4, 2, 2, 0)),)
    print(f"{'arm':<14s} {'step':>7s} {'val':>6s} {'snap':>6s} {'epoch':>7s}  "
          f"min/run ({args.run_epochs} epochs + 2 test passes)  vs {GOAL_MINUTES:.0f} min")  # fmt: skip
    steps = {}
    for arm in args.arms.split(","):
        method, extra = ARMS[arm]
        step = build_step(method, None if method == "scratch" else copy.deepcopy(source),
                          copy.deepcopy(target), example=x[:1], **extra)  # fmt: skip
        steps[arm] = step
        step.step(x, y)  # warm-up
        parts = {"step": [], "val": [], "snap": []}
        for _ in range(args.epochs):
            parts["step"].append(_cpu(lambda s=step: s.step(x, y)))
            parts["val"].append(_cpu(lambda s=step: evaluate(s.student.target, val)))
            parts["snap"].append(_cpu(lambda s=step: _snapshot(s, x[:64], weights, 1)))
        med = {k: statistics.median(v) for k, v in parts.items()}
        test_s = _cpu(lambda s=step: evaluate(s.student.target, test))
        epoch = sum(med.values())
        minutes = (args.run_epochs * epoch + 2 * test_s) / 60
        verdict = "met" if minutes <= GOAL_MINUTES else f"{minutes / GOAL_MINUTES:.1f}x the goal"
        print(f"{arm:<14s} {med['step']:6.2f}s {med['val']:5.2f}s {med['snap']:5.2f}s "
              f"{epoch:6.2f}s  {minutes:6.1f} min  {verdict}")  # fmt: skip
    for arm in ("l2t_www", "l2t_ww"):
        if arm not in steps:
            continue
        step = steps[arm]
        src = step.source_features(x)
        meta = _cpu(lambda s=step, f=src: [s.meta_outputs(f) for _ in range(5)]) / 5
        print(f"{arm}: meta-networks' forward (f, g{', h' if arm == 'l2t_www' else ''}) "
              f"{meta * 1e3:.1f} ms per iteration")  # fmt: skip
    if "l2t_www" in steps:
        import bench_l2t

        plain_model = copy.deepcopy(target).train()
        opt = torch.optim.SGD(plain_model.parameters(), lr=0.01, momentum=0.9)

        def plain() -> None:
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(plain_model(x), y).backward()
            opt.step()

        plain()
        bench_l2t.profile_breakdown(plain, lambda: steps["l2t_www"].step(x, y))


if __name__ == "__main__":
    main()
