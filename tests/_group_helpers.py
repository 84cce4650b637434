"""Picklable grouped run functions for the sweep-grouping tests (imported by workers)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cnnexplore_nb.experiments import GroupedRun


def score(config: dict) -> dict:
    """A deterministic result of one configuration (the reference for grouped runs)."""
    return {
        "test_acc": (config["n"] * 7 + config["seed"] * 3) % 11 / 10,
        "seed_seen": config["seed"],
    }


def _log(configs: list[dict]) -> None:
    """Append this call's seeds (and the process) to ``config["log"]`` (one JSON line)."""
    line = json.dumps({"n": configs[0]["n"], "seeds": [c["seed"] for c in configs],
                       "pid": os.getpid()})  # fmt: skip
    with open(configs[0]["log"], "a") as fh:
        fh.write(line + "\n")


def many(configs: list[dict]) -> list:
    _log(configs)
    out = []
    for c in configs:
        if c.get("fail_seed") == c["seed"]:
            out.append(FloatingPointError(f"seed {c['seed']} diverged"))
        else:
            out.append(score(c))
    return out


def many_raises(configs: list[dict]) -> list:
    _log(configs)
    raise RuntimeError("the whole group broke")


def one(config: dict) -> dict:
    _log([config])
    return score(config)


GROUPED = GroupedRun(one, many)
BROKEN = GroupedRun(one, many_raises)


def calls(log: str | Path) -> list[dict]:
    path = Path(log)
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
