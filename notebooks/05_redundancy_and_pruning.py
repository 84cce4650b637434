# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% tags=["parameters"]
SCALE = "embedded"  # "embedded" (offline, minutes), "cpu" (real data, 2-core budget) or "full"
RETRAIN = False  # True: train CNN6/CNN10 again even if cached in artifacts/ (notebook 02)
DATA_DIR = None  # real data folder (VessMAP or images/ + masks/); None: the data cache (cpu, full)
SEED = 0  # training seed of the vessel networks (weights, batch order, crops)

# %% [markdown]
# # 05 · From redundant maps to a smaller network (and beyond the thesis)
#
# The thesis finds many activation maps of the vessel CNNs strongly correlated with another
# map of the same layer and leaves "acting on it" as future work. Here we act: choose the
# redundant maps from the correlation tables of the trained CNN6 (max |r| ≥ threshold, one
# representative kept per group), **mean-ablate** them, **physically remove** them (a
# smaller conv/BatchNorm, the next conv loses the matching inputs, the removed maps' means
# folded into its bias), measure size, MACs and speed, and evaluate IoU / clDice before,
# after pruning and after a short fine-tuning, against the classical **L1-norm** criterion
# removing the same number of maps per layer.
#
# **Scales**: the models are the ones trained (and cached) by notebook 02 (trained here if
# missing). The maps of all modules are computed on the "aggregate" images of notebook 03
# (never used in training); evaluation uses the validation images; the fine-tuning, the
# thresholds of the curve and the images of the beyond-the-thesis part are set per scale
# in the table printed below.

# %%
import holoviews as hv
import numpy as np
import pandas as pd
import torch
from IPython.display import display

from cnnexplore_nb import correlation_tables, feature_layers
from cnnexplore_nb.notebook import figures_dir, scale_settings
from cnnexplore_nb.plots import embedding_scatter, export, layer_heatmap
from cnnexplore_nb.plots.fundamentals import line_curves, matrix_heatmap
from cnnexplore_nb.plots.names import method_name
from cnnexplore_nb.prune import (
    PruningStudy,
    choose_redundant,
    merge_maps,
    prune_maps,
    prune_report,
)
from cnnexplore_nb.similarity import cka_matrix, map_embedding
from cnnexplore_nb.studies.pruning import (
    ablation_vs_removal,
    criterion_verdicts,
    pruning_comparison,
    pruning_curves,
    pruning_findings,
    readable_pruning,
    selection_table,
)
from cnnexplore_nb.studies.vessel_correlation import layer_maps, layer_pair_summary
from cnnexplore_nb.studies.vessel_thesis import pruning_section, save_section, thesis_report
from cnnexplore_nb.studies.vessels import (
    stack_images,
    trained_vessel_model,
    vessel_data,
    vessel_settings,
)
from cnnexplore_nb.training import evaluate_segmentation
from cnnexplore_nb.widgets.teaching import threshold_explorer

hv.extension("bokeh", inline=True)
FIG = figures_dir("05_redundancy_and_pruning")
S = scale_settings(
    SCALE,
    {
        "smoke": {"threshold": 0.7, "thresholds": [0.5, 0.7, 0.9], "fine_tune_epochs": 1,
                  "fine_tune_lr": 1e-3, "n_beyond": 4, "repeats": 5},
        "embedded": {"threshold": 0.8, "thresholds": [0.5, 0.7, 0.8, 0.9, 0.95, 0.99],
                     "fine_tune_epochs": 1, "fine_tune_lr": 1e-3, "n_beyond": 8, "repeats": 20},
        "cpu": {"threshold": 0.8, "thresholds": [0.5, 0.7, 0.8, 0.9, 0.95, 0.99],
                "fine_tune_epochs": 2, "fine_tune_lr": 1e-3, "n_beyond": 8, "repeats": 10},
        "full": {"threshold": 0.8, "thresholds": [0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99],
                 "fine_tune_epochs": 10, "fine_tune_lr": 1e-3, "n_beyond": 20, "repeats": 50},
    },
)  # fmt: skip
vs = vessel_settings(SCALE, {"seed": SEED})
cnn6, _ = trained_vessel_model(
    "cnn6", SCALE, settings={"seed": SEED}, retrain=RETRAIN, data_dir=DATA_DIR
)
cnn10, _ = trained_vessel_model(
    "cnn10", SCALE, settings={"seed": SEED}, retrain=RETRAIN, data_dir=DATA_DIR
)
data = vessel_data(vs, DATA_DIR)
x_analysis, _ = stack_images(data["aggregate"])
LAYERS = feature_layers(cnn6)
maps = layer_maps(cnn6, x_analysis, LAYERS)
T = S["threshold"]
print(
    f"{len(LAYERS)} layers x {maps[LAYERS[0]].shape[1]} maps, {len(x_analysis)} analysis images, "
    f"{len(data['val'])} validation images; threshold {T}"
)
pd.Series(S, dtype=object).to_frame(f"setting ({SCALE})")

# %% [markdown]
# ## 1 · Choosing the redundant maps from the correlation tables
# Within every layer, two maps are "mutually correlated" when |r| ≥ threshold over all
# pixels of the analysis images. Greedy grouping: keep the map with most partners, remove
# its partners, repeat; constant (dead) maps are removed too.

# %%
tables = correlation_tables(maps, names=("CNN6", "CNN6"), threshold=T, progress=False)
chosen = {layer: choose_redundant(tables, layer, T) for layer in LAYERS}
selection = selection_table(chosen, maps, tables.zero_flags_a)
readable_pruning(selection)

# %% [markdown]
# ## 2 · Mean ablation and physical removal
# Mean ablation replaces the chosen maps by their dataset mean (hooks, after BatchNorm and
# ReLU). Physical removal rebuilds the network without them and folds the same means into the
# next conv's bias, so both agree except within the zero-padded border (checked below).

# %%
study = PruningStudy(
    cnn6, maps, data["val"], layers=LAYERS, fine_tune_data=data["train"],
    lr=S["fine_tune_lr"], batch_size=3, progress=False,
)  # fmt: skip
print("the study's selection is the tables' selection:", study.removal(T) == chosen)
agreement = ablation_vs_removal(cnn6, chosen, study.means, x_analysis[:4])
pruned = prune_maps(cnn6, chosen, fold_means=study.means)
report = prune_report(cnn6, pruned, x_analysis[:4], repeats=S["repeats"])
print(
    f"max |ablated - pruned| logits: {agreement['inside']:.2e} inside a "
    f"{agreement['border_px']}-pixel border, {agreement['overall']:.2e} overall"
)
readable_pruning(report)


# %% [markdown]
# ## 3 · IoU and clDice: before, mean-ablated, pruned, merged, fine-tuned — correlation vs L1
# Two ways to remove a map: **mean folding** (above: the map becomes a constant) and
# **merging** (`cnnexplore_nb.prune.merge`: the removed map is replaced by the linear fit
# a·m_rep + b on its most correlated kept map, folded into the next conv's weights, so a
# near-copy loses almost nothing). Each with two selections removing the same number of maps
# per layer: the correlation tables, and the L1 baseline (smallest filter L1 norms). Then a
# short fine-tuning of three of the pruned networks. Evaluation: the validation images.

# %%
comparison = pruning_comparison(study, maps, T, fine_tune_epochs=S["fine_tune_epochs"])
readable_pruning(comparison, decimals=4)

# %% [markdown]
# ## 4 · Threshold → maps removed → IoU after pruning (no fine-tuning)
# One pruning and evaluation per distinct removal (the `PruningStudy` caches mean-fold
# results; the slider below reads that cache), for both actions and both selections.

# %%
curves = pruning_curves(study, maps, S["thresholds"])
ACTIONS = {"mean-fold": "mean folding", "merge": "merging"}
tidy = curves.assign(
    method=[f"{ACTIONS[a]} · {method_name(sel)}" for a, sel in zip(curves["action"], curves["selection"])]
)  # fmt: skip
removed = curves[(curves["action"] == "mean-fold") & (curves["selection"] == "correlation")]
removed_plot = line_curves(
    removed, "threshold", "removed", title=f"maps removed (all {len(LAYERS)} modules)",
    xlabel="|r| threshold", ylabel="maps removed",
)  # fmt: skip
iou_plot = line_curves(
    tidy, "threshold", "iou", "method",
    title=f"validation IoU after pruning (before: {study.before['iou']:.3f})",
    xlabel="|r| threshold", ylabel="validation IoU",
)  # fmt: skip
curve_fig = (removed_plot + iou_plot).cols(2)
export(curve_fig, FIG / "pruning_curve")
curve_fig

# %%
threshold_explorer(study, S["thresholds"], value=T if T in S["thresholds"] else None)

# %% [markdown]
# ## 5 · Which criterion is better here?
# Computed from the curve above: at each threshold that removes maps, the two selections
# (same number of maps per layer) are compared under the same action.

# %%
verdicts = criterion_verdicts(curves)
readable_pruning(verdicts)

# %% [markdown]
# ## 6 · Beyond the thesis: all maps in 2-D, and CKA between two networks
# Every map of every CNN6 module as one point (PCA of the standardised maps, so nearby
# points are correlated maps; hover shows layer and map id); UMAP only if `umap-learn` is
# installed. Then CNN6 vs CNN10 layer by layer: linear CKA under three conventions beside the
# thesis's mean max-|r| (mean over all maps of the CNN6 layer of their best |r| in the CNN10
# layer). CKA with pixels as examples (maps as features) is this toolkit's default; the usual
# layer CKA of Kornblith et al. (2019) takes images as examples (activations flattened as
# features), and with few images its biased estimate is pulled towards 1, which the
# unbiased HSIC estimator (Nguyen et al. 2021) corrects.

# %%
n_b = min(S["n_beyond"], len(x_analysis))
maps_b6 = {la: m[:n_b] for la, m in maps.items()}
emb = map_embedding(maps_b6, method="pca")
emb_fig = embedding_scatter(emb, hover=["map_id"], title="CNN6 maps, PCA (colour = layer)")
export(emb_fig, FIG / "map_embedding_pca")
try:
    import umap  # noqa: F401

    emb_u = map_embedding(maps_b6, method="umap")
    emb_fig = emb_fig + embedding_scatter(emb_u, hover=["map_id"], title="CNN6 maps, UMAP")
except ImportError:
    print("umap-learn not installed: PCA only")
emb_fig

# %%
maps_b10 = layer_maps(cnn10, x_analysis[:n_b], feature_layers(cnn10))
ckas = {
    "pixels": cka_matrix(maps_b6, maps_b10),
    "images": cka_matrix(maps_b6, maps_b10, examples="images"),
    "images, unbiased": cka_matrix(maps_b6, maps_b10, examples="images", unbiased=True),
}
for c in ckas.values():
    c.index.name, c.columns.name = "CNN6 layer", "CNN10 layer"
cka = ckas["pixels"]
cross = correlation_tables(maps_b6, maps_b10, names=("CNN6", "CNN10"), threshold=T, progress=False)
cka_fig = hv.Layout(
    [matrix_heatmap(c, value="CKA", title=c.attrs["convention"]) for c in ckas.values()]
    + [layer_heatmap(layer_pair_summary(cross), "mean_max", names=cross.names,
                     title="mean max-|r| (thesis), CNN6 vs CNN10")]
).cols(2)  # fmt: skip
export(cka_fig, FIG / "cka_vs_max_r")
cka_fig

# %% [markdown]
# ## Conclusions
# The findings below are computed from this run (the tables above hold every number). The
# beyond-the-thesis part compares CKA, which is invariant to rotations of the map basis, with
# the thesis's mean max-|r|, which needs one-to-one partners.

# %%
findings = pruning_findings(comparison, report, selection, verdicts, T)
diag = float(np.nanmean([cka.iloc[i, i] for i in range(min(cka.shape))]))
print(f"mean CKA of same-depth layers {diag:.3f}; CKA first layers {cka.iloc[0, 0]:.3f}, "
      f"last CNN6 vs last CNN10 {cka.iloc[-1, -1]:.3f}")  # fmt: skip
findings

# %% [markdown]
# ## The thesis's numbers beside this run's: the whole vessel chapter
# Pruning was the thesis's future work, so it gives no number: here CNN6 before pruning,
# with the maps chosen at |r| ≥ the threshold merged into their partners, and after the
# short fine-tuning (on the training images, the epoch chosen on validation), all scored on
# the **test** images. Then every section saved by notebooks 02-05 in one table: the
# thesis's value, this run's and the computed verdict.

# %%
merged = merge_maps(cnn6, study.removal(T, "correlation"), maps)
tuned = study.fine_tune(merged, epochs=S["fine_tune_epochs"])


def test_score(model):
    scores = evaluate_segmentation(model, data["test_all"])
    return {"iou": float(scores["iou"].mean()), "cldice": float(scores["cldice"].mean())}


rep = report.set_index("quantity")
pruning_rows = pruning_section(
    {"before": test_score(cnn6), "pruned": test_score(merged), "fine-tuned": test_score(tuned)},
    {"before": int(rep.loc["params", "before"]), "pruned": int(rep.loc["params", "after"])},
    float(rep.loc["time_ms", "ratio"]),
    threshold=T, removed=int(selection["removed"].sum()), total=int(selection["maps"].sum()),
)  # fmt: skip
save_section(pruning_rows, SCALE, "pruning")
chapter = thesis_report(SCALE)
if chapter.attrs["missing"]:
    print("sections not computed yet (run notebooks 02-04 first):", chapter.attrs["missing"])
chapter.groupby("section", sort=False)["verdict"].value_counts().unstack(fill_value=0)

# %%
with pd.option_context("display.max_rows", 200, "display.max_colwidth", 120):
    display(chapter)
