# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% tags=["parameters"]
SCALE = "embedded"  # "embedded" (offline, minutes), "cpu" (real data, 2-core budget) or "full"
DATA_DIR = None  # real data folder (VessMAP or images/ + masks/); None: the data cache (cpu, full)
SEED = 0  # training seed of the vessel networks (weights, batch order, crops)
THRESHOLD = 0.8  # max |r| at or above this counts as well correlated (thesis)

# %% [markdown]
# # 04 · Do networks of different depth learn the same maps?
#
# Thesis chapter 5, second part: the maps of the selected layers (first, even, last
# modules) of one network are compared with those of another, for the pairs
# **CNN6 vs CNN1, CNN6 vs CNN10, CNN10 vs CNN1 and CNN10 vs CNN6** (rows: layers of the
# first network; for each of its maps the most similar map of the other network's layer).
# Shown per pair: the heatmap of the mean max-|r| and the % of maps with a partner at
# |r| ≥ 0.8, for each of the three test images of notebook 02 and aggregated over many
# images (mean and std). The networks were initialised from different seeds (notebook 02),
# so a similarity here is learned, not inherited from identical initial weights. A control
# pair with an *untrained* CNN6 (vs the trained CNN10) shows how similar maps are by architecture alone.

# %%
import holoviews as hv
import pandas as pd
from IPython.display import display

from cnnexplore_nb import create_model, seed_everything
from cnnexplore_nb.notebook import artifacts_dir, figures_dir
from cnnexplore_nb.plots import export, layer_heatmap
from cnnexplore_nb.plots.names import readable_table
from cnnexplore_nb.similarity import dilated_mask
from cnnexplore_nb.studies.vessel_correlation import (
    aggregate_correlation,
    layer_maps,
    layer_pair_summary,
)
from cnnexplore_nb.studies.vessel_findings import (
    convention_table,
    cross_network_findings,
    table_sets,
)
from cnnexplore_nb.studies.vessel_thesis import between_section, save_section
from cnnexplore_nb.studies.vessels import (
    DISPLAY_NAMES,
    MODELS,
    stack_images,
    trained_vessel_model,
    vessel_data,
    vessel_settings,
)

hv.extension("bokeh", inline=True)
settings = vessel_settings(SCALE, {"seed": SEED})
FIG = figures_dir("04_correlation_between_networks")
TABLES = artifacts_dir("vessels", SCALE, "tables_between_networks")
SHOW_IMAGE = 1  # test image whose per-image heatmaps are drawn (0 sparse, 1 medium, 2 dense)
PAIRS = [("cnn6", "cnn1"), ("cnn6", "cnn10"), ("cnn10", "cnn1"), ("cnn10", "cnn6")]

# %%
models = {
    n: trained_vessel_model(n, SCALE, settings={"seed": SEED}, data_dir=DATA_DIR, progress=False)[0]
    for n in MODELS
}
data = vessel_data(settings, DATA_DIR)
x_test, m_test = stack_images(data["test"])

# %% [markdown]
# ## Per image
# Tables of every pair and image are saved as CSV under
# `artifacts/vessels/<scale>/tables_between_networks/`. The heatmaps are drawn for the
# medium-density image (`SHOW_IMAGE`); the % table below covers all three images and the
# aggregate all layer pairs over many images.

# %%
maps = {n: layer_maps(model, x_test) for n, model in models.items()}  # one forward per model
summaries = {
    (a, b, i): layer_pair_summary(t)
    for a, b in PAIRS
    for i, t in table_sets(maps[a], maps[b], names=(DISPLAY_NAMES[a], DISPLAY_NAMES[b]),
                           threshold=THRESHOLD, save_dir=TABLES, stem=f"{a}_vs_{b}").items()
}  # fmt: skip


heat = hv.Layout(
    [
        layer_heatmap(s, "mean_max", title=f"{DISPLAY_NAMES[a]} vs {DISPLAY_NAMES[b]}",
                      names=(DISPLAY_NAMES[a], DISPLAY_NAMES[b]), threshold=THRESHOLD)
        for (a, b, i), s in summaries.items()
        if i == SHOW_IMAGE
    ]
).cols(2)  # fmt: skip
export(heat, FIG / f"heatmaps_mean_max_image{SHOW_IMAGE}")
heat

# %% [markdown]
# **CNN Explorer's conventions** (CNN6 vs CNN10, image 0, inside the ground truth dilated
# by 3 pixels, as the original correlated).

# %%
region = dilated_mask(m_test[:1] > 0, 3)
convention_table({k: v[:1] for k, v in maps["cnn6"].items()},
                 {k: v[:1] for k, v in maps["cnn10"].items()}, names=("CNN6", "CNN10"),
                 threshold=THRESHOLD, region=region).round(1)  # fmt: skip

# %% [markdown]
# % of maps with a partner at |r| ≥ 0.8 on the diagonal of the layer order (first vs
# first, ..., last vs last) per image; the full % heatmaps follow in the aggregate.

# %%
pd.concat(
    [
        s.assign(pair=f"{DISPLAY_NAMES[a]} vs {DISPLAY_NAMES[b]}", image=i)
        for (a, b, i), s in summaries.items()
    ]
).pivot_table(
    index=["pair", "module_a", "module_b"], columns="image", values="percent", observed=True
).round(1)

# %% [markdown]
# ## Aggregated over many images (mean and std across images)

# %%
seed_everything(123)
untrained6 = create_model("cnn6", width=settings["width"]).eval()
agg_pairs = {(DISPLAY_NAMES[a], DISPLAY_NAMES[b]): (models[a], models[b]) for a, b in PAIRS}
agg_pairs["CNN6 untrained", "CNN10"] = (untrained6, models["cnn10"])
aggregated = {
    names: aggregate_correlation(ma, data["aggregate"], mb, names=names, threshold=THRESHOLD,
                                 progress=False)[1]
    for names, (ma, mb) in agg_pairs.items()
}  # fmt: skip
for (na, nb), s in aggregated.items():
    s.to_csv(TABLES / f"aggregate_{na}_vs_{nb}.csv".replace(" ", "_"), index=False)
n_agg = len(data["aggregate"])
shown = sorted(aggregated, key=lambda k: "CNN1" in k)  # the one-layer CNN1 pairs last
agg_figs = {
    value: hv.Layout(
        [
            layer_heatmap(aggregated[na, nb], value, title=f"{na} vs {nb}", names=(na, nb),
                          threshold=THRESHOLD)
            for na, nb in shown
        ]
    ).cols(2)
    for value in ("mean_max_mean", "percent_mean")
}  # fmt: skip
for value, fig in agg_figs.items():
    export(fig, FIG / f"heatmaps_aggregated_{value}")
agg_figs["mean_max_mean"] + agg_figs["percent_mean"]

# %% [markdown]
# Mean ± std across images of every layer pair (aggregated tables also saved as CSV).

# %%
pd.concat([s.assign(pair=f"{na} vs {nb}") for (na, nb), s in aggregated.items()])[
    ["pair", "module_a", "module_b", "mean_max_mean", "mean_max_std", "percent_mean", "percent_std"]
].pipe(readable_table, threshold=THRESHOLD)

# %% [markdown]
# ## Does the thesis finding appear?
# The thesis reports that networks of different depth learn similar maps, above all in the
# first and the last layers. For every pair the first-vs-first and last-vs-last layer pairs
# are compared with all other layer pairs (aggregated mean max-|r| and % of maps with a
# partner at |r| ≥ the threshold), for the trained pairs and the untrained control. The
# verdicts and every number in them are computed from this run.

# %%
findings = cross_network_findings(aggregated, control=("CNN6 untrained", "CNN10"))
display(readable_table(findings.table.round(2)))
findings

# %% [markdown]
# ## The thesis's statements beside this run's numbers

# %%
between_rows = between_section(findings.table)
save_section(between_rows, SCALE, "between")
between_rows
