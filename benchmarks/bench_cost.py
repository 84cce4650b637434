"""Wall time of the dissertation's transfer protocol on this machine, from measured steps.

Measures one training step per method (ResNet-32 source, VGG-9-BN target, batch 128, the
given widths and threads; optionally a group of seeds trained together) and prints
``transfer.estimate_cost`` of the protocol: per dataset and method, summed over its N values
and seeds, sequential (and grouped), in hours for ``--workers`` parallel processes.

    python benchmarks/bench_cost.py                      # full protocol, full-size networks
    python benchmarks/bench_cost.py --group-size 2 --width 0.25 --source-width 0.25
"""

from __future__ import annotations

import argparse

from cnnexplore_nb.transfer import estimate_cost, measure_step_seconds

PROTOCOL = {
    "datasets": ["stl10", "cifar10", "cifar100"],
    "n_values": {
        "stl10": [5, 10, 30, 50, 100],
        "cifar10": [10, 30, 50, 100, 150],
        "cifar100": [5, 10, 20, 30, 50],
    },
    "methods": ["scratch", "ufm", "l2t_ww", "l2t_www"],
    "seeds": 30,
    "epochs": 200,
    "batch_size": 128,
    "val_per_class": 10,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--source-width", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2, help="parallel runs (processes)")
    ap.add_argument("--group-size", type=int, default=1, help="also time seeds trained together")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=200)
    args = ap.parse_args()
    protocol = {**PROTOCOL, "seeds": args.seeds, "epochs": args.epochs}
    kw = dict(width=args.width, source_width=args.source_width, threads=args.threads,
              repeats=args.repeats, batch_size=protocol["batch_size"])  # fmt: skip
    seq = measure_step_seconds(protocol["methods"], **kw)
    grp = None
    if args.group_size > 1:
        grp = measure_step_seconds(protocol["methods"], group_size=args.group_size, **kw)
    df = estimate_cost(protocol, seq, grouped_step_seconds=grp, workers=args.workers,
                       group_size=args.group_size)  # fmt: skip
    print(
        f"protocol: {len(protocol['datasets'])} datasets x 5 N x {len(protocol['methods'])} "
        f"methods x {protocol['seeds']} seeds x {protocol['epochs']} epochs, batch 128; "
        f"VGG-9-BN x{args.width:g} <- ResNet-32 x{args.source_width:g}, {args.threads} thread(s) "
        f"per run, {args.workers} runs in parallel"
    )
    print("step seconds (one seed, batch 128):")
    for row in seq.itertuples():
        extra = ""
        if grp is not None:
            g = float(grp.loc[grp["method"] == row.method, "step_seconds"].iloc[0])
            extra = f"   grouped x{args.group_size}: {g:.2f} s per seed"
        print(f"  {row.method:<8s} {row.step_seconds:6.2f} s{extra}")
    cols = ["sequential_hours"] + (["grouped_hours"] if grp is not None else [])
    table = df.groupby(["dataset", "method"], sort=False)[cols].sum().unstack("method")
    print("\nestimated wall time, hours (all N values and seeds of each dataset):")
    print(table.round(0).to_string())
    total = df.attrs["total"]
    print("\ntotal: " + ", ".join(f"{k} {v:,.0f} h ({v / 24:,.1f} days)" for k, v in total.items()))


if __name__ == "__main__":
    main()
