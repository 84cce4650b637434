"""Hook extraction of all layers vs the plain forward pass (goal: <= 1.1x).

Records every ``conv_module`` of CNN10 plus the classifier during one forward (eval mode,
``torch.no_grad``) with :class:`cnnexplore_nb.ActivationRecorder` and compares the median
wall time with the plain forward on the same input, measured in the same run. Three
recorder policies: ``clone=True`` (default, always copies), ``clone="auto"`` (copy only
before an in-place module would overwrite a recorded tensor) and ``clone=False``; and
``extract_activations`` (clone="auto"): in one batch (no copy) and in four batches (one
copy of every map into its result tensor). ``--threads 1`` gives steadier figures on a
busy machine.

Usage: ``python benchmarks/bench_extract.py [--small] [--images 8] [--size 256]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from cnnexplore_nb import ActivationRecorder, create_model, extract_activations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn10")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--small", action="store_true", help="4 images of 128 x 128")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.small:
        args.images, args.size = 4, 128

    torch.manual_seed(0)
    model = create_model(args.model).eval()
    layers = [d["module"] for d in model.feature_info] + ["classifier"]
    x = torch.randn(args.images, 1, args.size, args.size)
    print(
        f"{args.model}: {len(layers)} layers recorded, input {tuple(x.shape)}, "
        f"{torch.get_num_threads()} threads, median of {args.repeats}"
    )

    def plain() -> None:
        with torch.no_grad():
            model(x)

    def recorded(clone):
        def run() -> None:
            with torch.no_grad(), ActivationRecorder(model, layers, clone=clone) as rec:
                model(x)
            assert len(rec.activations) == len(layers)

        return run

    # interleave the variants over the repeats so drift affects them alike
    variants = {"plain forward": plain}
    variants.update({f"recorder clone={c!r}": recorded(c) for c in (True, "auto", False)})
    variants["extract_activations, 1 batch"] = lambda: extract_activations(
        model, x, layers, batch_size=args.images, progress=False
    )
    quarter = max(1, args.images // 4)
    variants[f"extract_activations, batch {quarter}"] = lambda: extract_activations(
        model, x, layers, batch_size=quarter, progress=False
    )
    wall = {name: [] for name in variants}
    cpu = {name: [] for name in variants}
    for fn in variants.values():
        fn()  # warm-up
    for _ in range(args.repeats):
        for name, fn in variants.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    # process CPU time is the steadier figure on a shared machine; both are printed
    base_w = statistics.median(wall["plain forward"])
    base_c = statistics.median(cpu["plain forward"])
    print(f"  {'variant':28s} {'wall ms':>9s} {'ratio':>7s} {'cpu ms':>9s} {'ratio':>7s}")
    for name in variants:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        print(f"  {name:28s} {w * 1e3:9.1f} {w / base_w:6.3f}x {c * 1e3:9.1f} {c / base_c:6.3f}x")


if __name__ == "__main__":
    main()
