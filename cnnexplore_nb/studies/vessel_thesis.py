"""Every number of the thesis's vessel chapter beside this run's, with a computed verdict.

Notebooks 02-05 each compute one section (:func:`table4_section`, :func:`table5_section`,
:func:`redundancy_section`, :func:`between_section`, :func:`pruning_section`), save it with
:func:`save_section` and notebook 05 shows them together (:func:`thesis_report`). A row is
one number: the thesis's value as published (or its statement, where it gives no number),
this run's value, and the verdict computed from the two.

Verdicts: for a number, ``"matches"`` when ``|measured - thesis| <= tol``, else
``"above"`` / ``"below"``; for a statement, ``"reproduced"`` / ``"not reproduced"``; where
the thesis gives no number (pruning was its future work), ``"no thesis number"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..io import atomic_path
from ..notebook.scales import artifacts_dir

__all__ = [
    "COLUMNS",
    "SECTIONS",
    "THESIS_LAYER1_CNN6",
    "between_section",
    "number_verdict",
    "pruning_section",
    "redundancy_section",
    "save_section",
    "table4_section",
    "table5_section",
    "thesis_report",
]

#: Columns of every section: ``section``, ``quantity``, ``network`` (or layer / pair),
#: ``thesis`` (as published), ``measured`` (this run), ``verdict`` and ``evidence``.
COLUMNS = ["section", "quantity", "network", "thesis", "measured", "verdict", "evidence"]
#: Section file names in the order of the chapter.
SECTIONS = ("table4", "table5", "redundancy", "between", "pruning")
#: The thesis's example statistics row (one image): CNN6 ``conv_module1`` against itself,
#: 31 maps with a partner at max |r| >= 0.8, mean 0.90, median 0.91, std 0.056, 48.43 %.
THESIS_LAYER1_CNN6 = {"count": 31, "mean": 0.90, "median": 0.91, "std": 0.056, "percent": 48.43}
_THESIS_IOU = {"CNN1": 0.81, "CNN6": 0.91, "CNN10": 0.92}
_THESIS_CLDICE = {"CNN1": 0.88, "CNN6": 0.97, "CNN10": 0.98}
_THESIS_PARAMS = {"CNN1": "3.3K", "CNN6": "1.01M", "CNN10": "1.81M"}


def number_verdict(measured: float, thesis: float, tol: float) -> str:
    """``"matches"`` if ``|measured - thesis| <= tol``, else ``"above"`` or ``"below"``."""
    if not np.isfinite(measured):
        return "undecided"
    if abs(measured - thesis) <= tol:
        return "matches"
    return "above" if measured > thesis else "below"


def _claim(ok: bool | None) -> str:
    return "undecided" if ok is None else ("reproduced" if ok else "not reproduced")


def _row(section: str, quantity: str, network: str, thesis: Any, measured: Any, verdict: str,
         evidence: str = "") -> dict[str, Any]:  # fmt: skip
    return dict(zip(COLUMNS, [section, quantity, network, thesis, measured, verdict, evidence]))


def _reported(text: str) -> float:
    return float(text[:-1]) * {"K": 1e3, "M": 1e6}[text[-1]]


def table4_section(
    test_scores: pd.DataFrame, table4: pd.DataFrame, *, tol: float = 0.03
) -> pd.DataFrame:
    """Table 4: IoU, clDice and parameters per network, the thesis's beside this run's.

    Parameters
    ----------
    test_scores : DataFrame
        Per-image scores on the test images: ``model`` (CNN1...), ``iou``, ``cldice``
        (:func:`~cnnexplore_nb.training.evaluate_segmentation` of each model).
    table4 : DataFrame
        :func:`~cnnexplore_nb.studies.vessel_tables.training_table` (validation scores at
        the best epoch, parameters, epochs).
    tol : float
        Largest difference still called a match.

    Returns
    -------
    DataFrame
        :data:`COLUMNS`; ``measured`` is the mean over the test images (the validation
        score, which chose the epoch, is in ``evidence``).
    """
    means = test_scores.groupby("model", sort=False)[["iou", "cldice"]].agg(["mean", "std"])
    t4 = table4.set_index("model")
    rows = []
    for model in [m for m in _THESIS_IOU if m in means.index]:
        n = int((test_scores["model"] == model).sum())
        for metric, thesis, val_col in (("IoU", _THESIS_IOU, "IoU"),
                                        ("clDice", _THESIS_CLDICE, "clDice")):  # fmt: skip
            mean, std = (
                means.loc[model, (metric.lower(), "mean")],
                means.loc[model, (metric.lower(), "std")],
            )
            rows.append(_row(
                "Table 4", f"{metric} (test)", model, thesis[model], round(float(mean), 3),
                number_verdict(float(mean), thesis[model], tol),
                f"mean ± std {mean:.3f} ± {std:.3f} over {n} test images; validation "
                f"{float(t4.loc[model, val_col]):.3f} at epoch {int(t4.loc[model, 'best_epoch'])}"
                f" of {int(t4.loc[model, 'epochs'])} (thesis: validation, 250 epochs)",
            ))  # fmt: skip
        params = int(t4.loc[model, "parameters"])
        reported = _reported(_THESIS_PARAMS[model])
        rows.append(_row(
            "Table 4", "parameters", model, _THESIS_PARAMS[model], params,
            number_verdict(params / reported, 1.0, 0.05),
            f"{params:,} = {params / reported:.2f}× the reported count (3×3 kernels as the "
            "text says; the reported counts are those of 7×7 modules, see parameter_counts)",
        ))  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def table5_section(table5: pd.DataFrame) -> pd.DataFrame:
    """Table 5: on each of the three test images, do deeper networks segment better?

    The thesis reports the per-image IoU and clDice of its three images (its private data;
    the images differ here), with the deeper networks ahead on each: that ordering is
    what can be checked. ``table5`` is :func:`~cnnexplore_nb.studies.vessel_tables.
    per_image_table`.
    """
    rows = []
    for metric in ("IoU", "clDice"):
        wide = table5.pivot_table(index="image", columns="model", values=metric, observed=True)
        models = [m for m in _THESIS_IOU if m in wide.columns]
        for image, r in wide.iterrows():
            vals = [float(r[m]) for m in models]
            ok = bool(vals[0] < min(vals[1:])) if len(vals) > 1 else None
            frac = float(table5.loc[table5["image"] == image, "vessel_fraction"].iloc[0])
            rows.append(_row(
                "Table 5", f"{metric}: CNN1 below the deeper networks", f"image {image}",
                "CNN1 lowest", ", ".join(f"{m} {v:.3f}" for m, v in zip(models, vals)),
                _claim(ok), f"vessel fraction {frac:.3f}",
            ))  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def redundancy_section(
    profiles: pd.DataFrame,
    layer1_stats: Mapping[str, float] | None = None,
    *,
    trained: Sequence[str] = ("CNN6", "CNN10"),
    tol_points: float = 10.0,
) -> pd.DataFrame:
    """Chapter 5, within one network: % of maps with a partner at |r| >= 0.8, per layer.

    Parameters
    ----------
    profiles : DataFrame
        :func:`~cnnexplore_nb.studies.vessel_findings.aggregated_profiles` with
        ``"percent"``: ``model``, ``module``, ``position``, ``value`` (mean over images),
        ``std``.
    layer1_stats : dict, optional
        This run's CNN6 ``conv_module1`` statistics (``percent``, ``mean`` max |r|,
        ``n_images``), means over images, for the thesis's example row.
    trained : sequence of str
        The trained deep networks the statements are about.
    tol_points : float
        Percentage points still called a match for the example row.
    """
    rows = []
    for model in [m for m in trained if m in set(profiles["model"])]:
        p = profiles[profiles["model"] == model].sort_values("module")
        v = p["value"].to_numpy(float)
        for _, r in p.iterrows():
            rows.append(_row(
                "Redundancy within a network", f"% maps with a partner at |r| ≥ 0.8, "
                f"module {int(r['module'])} ({r['position']})", model, "—",
                round(float(r["value"]), 1), "no thesis number",
                f"mean ± std over images {r['value']:.1f} ± {r['std']:.1f}",
            ))  # fmt: skip
        middle = v[1:-1] if len(v) > 2 else np.array([])
        rising = bool(v[-1] > v[0])
        rows.append(_row(
            "Redundancy within a network", "deeper layers are more redundant", model,
            "yes (the last layers most)", f"first {v[0]:.1f} %, last {v[-1]:.1f} %",
            _claim(rising and bool(v[-1] >= v.max())),
            f"last layer the most redundant: {bool(v[-1] >= v.max())}",
        ))  # fmt: skip
        if len(middle):
            ok = bool(v[0] > middle.min() and middle.min() <= v.min())
            rows.append(_row(
                "Redundancy within a network",
                "first layer fairly redundant, middle layers the most varied", model, "yes",
                f"first {v[0]:.1f} %, middle min {middle.min():.1f} %, last {v[-1]:.1f} %",
                _claim(ok), "the least redundant layer is a middle one, below the first",
            ))  # fmt: skip
    if layer1_stats is not None:
        got = float(layer1_stats["percent"])
        rows.append(_row(
            "Redundancy within a network", "example row: conv_module1 vs itself, % maps at "
            "|r| ≥ 0.8", "CNN6", THESIS_LAYER1_CNN6["percent"], round(got, 1),
            number_verdict(got, THESIS_LAYER1_CNN6["percent"], tol_points),
            f"mean max |r| {float(layer1_stats.get('mean', np.nan)):.2f} (thesis 0.90); "
            f"thesis: one image, here the mean over {int(layer1_stats.get('n_images', 0))} "
            "images",
        ))  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def between_section(cross_table: pd.DataFrame) -> pd.DataFrame:
    """Chapter 5, between networks: similar first layers and similar last layers.

    ``cross_table`` is the table of
    :func:`~cnnexplore_nb.studies.vessel_findings.cross_network_findings` (``pair``,
    ``first-first max|r|``, ``last-last max|r|``, ``other pairs max|r|``, ``control``).
    """
    rows = []
    for _, r in cross_table[~cross_table["control"]].iterrows():
        for which in ("first", "last"):
            mine, others = float(r[f"{which}-{which} max|r|"]), float(r["other pairs max|r|"])
            rows.append(_row(
                "Between networks", f"{which} layers similar (mean max |r| above the other "
                "layer pairs)", r["pair"], "yes", round(mine, 3), _claim(mine > others),
                f"{which}-{which} {mine:.3f} vs other layer pairs {others:.3f}",
            ))  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def pruning_section(
    scores: Mapping[str, Mapping[str, float]],
    params: Mapping[str, int],
    speedup: float,
    *,
    threshold: float,
    removed: int,
    total: int,
    tol: float = 0.05,
) -> pd.DataFrame:
    """Redundancy → pruning (the thesis's future work): test IoU before / after / fine-tuned.

    Parameters
    ----------
    scores : dict
        ``{"before" | "pruned" | "fine-tuned": {"iou": ..., "cldice": ...}}`` on the test
        images.
    params : dict
        Parameter counts ``{"before": n, "pruned": n}``.
    speedup : float
        Measured forward-time ratio before / after.
    threshold : float
        The |r| threshold that chose the removed maps.
    removed, total : int
        Maps removed, and maps in the pruned layers.
    tol : float
        The IoU loss still called "kept".
    """
    before = float(scores["before"]["iou"])
    rows = []
    for stage in ("before", "pruned", "fine-tuned"):
        if stage not in scores:
            continue
        iou, cl = float(scores[stage]["iou"]), float(scores[stage]["cldice"])
        rows.append(_row(
            "Pruning (future work in the thesis)", f"test IoU {stage}", "CNN6", "—",
            round(iou, 3),
            "no thesis number" if stage == "before" else (
                "IoU kept" if iou >= before - tol else "IoU lost"),
            f"clDice {cl:.3f}; {removed} of {total} maps removed at |r| ≥ {threshold:g}"
            + ("" if stage == "before" else f"; change {iou - before:+.3f}"),
        ))  # fmt: skip
    rows.append(_row(
        "Pruning (future work in the thesis)", "parameters before → after", "CNN6", "—",
        f"{params['before']:,} → {params['pruned']:,}", "no thesis number",
        f"{params['before'] / max(params['pruned'], 1):.2f}× fewer",
    ))  # fmt: skip
    rows.append(_row(
        "Pruning (future work in the thesis)", "measured speed-up (forward)", "CNN6", "—",
        round(float(speedup), 2), "no thesis number", "wall-time ratio before / after",
    ))  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def save_section(frame: pd.DataFrame, scale: str, name: str) -> None:
    """Write one section to ``artifacts/vessels/<scale>/thesis/<name>.csv`` (atomically)."""
    if name not in SECTIONS:
        raise ValueError(f"unknown section {name!r}; expected one of {list(SECTIONS)}")
    with atomic_path(artifacts_dir("vessels", scale, "thesis") / f"{name}.csv") as tmp:
        frame.to_csv(tmp, index=False)


def thesis_report(scale: str) -> pd.DataFrame:
    """The sections saved by notebooks 02-05 at ``scale``, in the chapter's order.

    Sections not computed yet are listed in ``attrs["missing"]``.
    """
    folder = artifacts_dir("vessels", scale, "thesis")
    frames, missing = [], []
    for name in SECTIONS:
        path = folder / f"{name}.csv"
        if path.is_file():
            frames.append(pd.read_csv(path, dtype={"thesis": object, "measured": object}))
        else:
            missing.append(name)
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    out.attrs["missing"] = missing
    return out
