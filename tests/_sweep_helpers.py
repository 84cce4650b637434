"""Picklable run functions for the sweep tests (importable by worker processes)."""

from __future__ import annotations

import os
import time

import numpy as np


def score(config: dict) -> dict:
    """Deterministic toy result computed from the configuration."""
    rng = np.random.default_rng(1000 * config["n"] + config["seed"])
    acc = float(np.clip(0.2 + 0.05 * config["n"] / 10 + 0.01 * rng.standard_normal(), 0, 1))
    return {
        "test_acc": np.float32(acc),  # numpy scalar: must be converted to a plain float
        "best_epoch": np.int64(config["seed"] % 3),
        "history": np.arange(3) * config["n"],
        "method_seen": config.get("method", "none"),
    }


def fail_on_odd_seed(config: dict) -> dict:
    if config["seed"] % 2:
        raise RuntimeError(f"boom for seed {config['seed']}")
    return score(config)


def not_serialisable(config: dict) -> dict:
    return {"test_acc": 0.5, "when": object()}


def not_a_dict(config: dict) -> list:
    return [1, 2, 3]


def slow_score(config: dict) -> dict:
    """score() after a pause (the kill test interrupts these)."""
    time.sleep(float(config.get("sleep", 0.2)))
    return score(config)


def record_pid(config: dict) -> dict:
    """Report the worker's pid (to check that work ran in other processes)."""
    time.sleep(0.05)
    return {"worker_pid": os.getpid(), **score(config)}


def die_on_seed_one(config: dict) -> dict:
    """Kill the worker process abruptly for seed 1 (a crash in native code, OOM kill, ...)."""
    if config["seed"] == 1:
        os._exit(13)
    return score(config)


def clashing(config: dict) -> dict:
    """Result names that clash with a setting ("n") and a meta column ("status")."""
    return {"n": 99, "status": "mine", "seconds": 1.5}


def hold(config: dict) -> dict:
    """Leave a mark named after this process, then wait for ``config["release"]`` to exist,
    sleeping (``config["how"] == "sleep"``) or spinning in Python (``"spin"``)."""
    from pathlib import Path

    Path(config["marks"], f"{os.getpid()}-{config['seed']}").touch()
    release = Path(config["release"])
    while not release.exists():
        if config["how"] == "sleep":
            time.sleep(0.05)
    return {"worker_pid": os.getpid(), "seed": config["seed"]}


def reports_threads(config: dict) -> dict:
    """A run that reports the torch thread count it used."""
    return {"torch_threads": 3, **score(config)}


def torch_threads_in_worker(config: dict) -> dict:
    """Import torch in the worker and run at ``config["threads"]`` threads."""
    import torch

    torch.set_num_threads(config["threads"])
    return score(config)
