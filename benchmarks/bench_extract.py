"""Hook extraction of all layers vs the plain forward pass (goal: <= 1.1x).

Records every ``conv_module`` of CNN10 plus the classifier during one forward (eval mode,
``torch.no_grad``) with :class:`cnnexplore_nb.ActivationRecorder` and compares the median
wall time with the plain forward on the same input, measured in the same run. Three
recorder policies: ``clone=True`` (default, always copies), ``clone="auto"`` (copy only
before an in-place module would overwrite a recorded tensor) and ``clone=False``; and
``extract_activations`` (clone="auto", one copy of every map into its result tensor).

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
    args = parser.parse_args()
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
    variants["extract_activations (auto)"] = lambda: extract_activations(
        model, x, layers, batch_size=args.images, progress=False
    )
    times = {name: [] for name in variants}
    for fn in variants.values():
        fn()  # warm-up
    for _ in range(args.repeats):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["plain forward"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:28s} {med * 1e3:9.1f} ms   ratio {med / base:5.3f}x")


if __name__ == "__main__":
    main()
