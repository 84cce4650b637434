"""Wall time of the dissertation's transfer protocol on this machine, from measured steps.

Measures one training step per method (ResNet-32 source, VGG-9-BN target, batch 128, the
given widths and threads; optionally a group of seeds trained together) and prints
``transfer.estimate_cost`` of the protocol: per dataset and method, summed over its N values
and seeds, sequential (and grouped), in hours for ``--workers`` parallel processes.

    python benchmarks/bench_cost.py                      # full protocol, full-size networks
    python benchmarks/bench_cost.py --scale cpu          # the cpu scale: full widths, six arms
    python benchmarks/bench_cost.py --group-size 2 --width 0.25 --source-width 0.25
"""

from __future__ import annotations

import argparse

from cnnexplore_nb.studies.transfer import ARMS, transfer_settings
from cnnexplore_nb.transfer import estimate_cost, measure_step_seconds


def protocol_of(scale: str) -> dict:
    """The limited-data protocol of a scale of the transfer study (its settings dict)."""
    settings = transfer_settings(scale)
    return {**settings, "methods": list(settings["methods"]), "seeds": len(settings["seeds"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="full", help="the transfer study's scale (full, cpu, ...)")
    ap.add_argument("--width", type=float, default=None, help="target width (the scale's)")
    ap.add_argument("--source-width", type=float, default=None, help="(the scale's)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2, help="parallel runs (processes)")
    ap.add_argument("--group-size", type=int, default=1, help="also time seeds trained together")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=None, help="(the scale's)")
    ap.add_argument("--epochs", type=int, default=None, help="(the scale's)")
    args = ap.parse_args()
    protocol = protocol_of(args.scale)
    protocol["seeds"] = args.seeds or protocol["seeds"]
    protocol["epochs"] = args.epochs or protocol["epochs"]
    args.width = args.width or protocol["target_width"]
    args.source_width = args.source_width or protocol["source"]["width"]
    kw = dict(width=args.width, source_width=args.source_width, threads=args.threads,
              repeats=args.repeats, batch_size=protocol["batch_size"], arms=ARMS)  # fmt: skip
    seq = measure_step_seconds(protocol["methods"], **kw)
    grp = None
    if args.group_size > 1:
        grp = measure_step_seconds(protocol["methods"], group_size=args.group_size, **kw)
    df = estimate_cost(protocol, seq, grouped_step_seconds=grp, workers=args.workers,
                       group_size=args.group_size)  # fmt: skip
    print(
        f"protocol ({args.scale}): {', '.join(protocol['datasets'])} at N = "
        f"{'; '.join(str(protocol['n_values'][d]) for d in protocol['datasets'])} x "
        f"{len(protocol['methods'])} methods x {protocol['seeds']} seeds x {protocol['epochs']} "
        f"epochs, batch {protocol['batch_size']}; "
        f"VGG-9-BN x{args.width:g} <- ResNet-32 x{args.source_width:g}, {args.threads} thread(s) "
        f"per run, {args.workers} runs in parallel"
    )
    print(f"step seconds (one seed, batch {protocol['batch_size']}):")
    for row in seq.itertuples():
        extra = ""
        if grp is not None:
            g = float(grp.loc[grp["method"] == row.method, "step_seconds"].iloc[0])
            extra = f"   grouped x{args.group_size}: {g:.2f} s per seed"
        print(f"  {row.method:<14s} {row.step_seconds:6.2f} s{extra}")
    cols = ["sequential_hours"] + (["grouped_hours"] if grp is not None else [])
    table = df.groupby(["dataset", "method"], sort=False)[cols].sum().unstack("method")
    digits = 0 if df["sequential_hours"].sum() > 100 else 2
    print(f"\nestimated wall time, hours, {args.workers} workers (all N and seeds per dataset):")
    print(table.round(digits).to_string())
    # the imbalanced experiment: the N of its large classes (an upper bound; one class is
    # smaller); the ablation reuses the sweep's runs when snapshots are on, else 3 runs
    imb = protocol["imbalanced"]
    if imb is None:
        total = df.attrs["total"]
        print("\ntotal: " + ", ".join(f"{k} {v:,.{digits}f} h" for k, v in total.items())
              + f" (no imbalanced experiment at the {args.scale} scale)")  # fmt: skip
        return
    imb_protocol = {**protocol, "datasets": [imb["dataset"]],
                    "n_values": {imb["dataset"]: [imb["n"]]},
                    "methods": list(protocol["imbalanced_methods"])}  # fmt: skip
    imb_df = estimate_cost(imb_protocol, seq, grouped_step_seconds=grp, workers=args.workers,
                           group_size=args.group_size)  # fmt: skip
    total = dict(df.attrs["total"])
    for k, v in imb_df.attrs["total"].items():
        print(f"imbalanced ({imb['dataset']}, N = {imb['n']}): {k} {v:,.{digits}f} h")
        total[k] = total.get(k, 0.0) + v
    print(
        "\ntotal (sweep + imbalanced): "
        + ", ".join(f"{k} {v:,.{digits}f} h ({v / 24:,.1f} days)" for k, v in total.items())
    )


if __name__ == "__main__":
    main()
