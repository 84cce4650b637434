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
# # 03 · Redundancy of activation maps within one network
#
# Thesis chapter 5: for each trained network (CNN1, CNN6, CNN10 from notebook 02) and each
# of three input images, the maps of the selected layers (first module, every even module,
# last module) are compared pair by pair with Pearson's r. For every map the most similar
# other map (max |r|) is found; per layer pair we show
#
# * the **mean max-|r|** (heatmap; here over *all* maps, the thesis's stats table averages
#   only the maps above the threshold, which is in the saved `stats` tables),
# * the **% of maps with max |r| ≥ 0.8** ("well correlated", bars; same-layer pairs),
# * histograms of |r| within a layer, and 8 random maps of layers 1, 2, 4, 6 of CNN6 with
#   the maps that have a near-duplicate in their layer framed in red.
#
# Then what the original tool could not do: the same statistics over **many images** (mean
# and std across images), and a control with an *untrained* CNN6 (same architecture, random
# weights) to separate what training adds from what the architecture gives for free.
# The three images are the test images of notebook 02 (low, medium, high vessel density);
# the aggregate uses further images never seen in training (how many: printed below).
# Models are loaded from the cache of notebook 02 (trained here if missing).

# %%
import holoviews as hv
import numpy as np
import pandas as pd
from IPython.display import display

from cnnexplore_nb import create_model, seed_everything
from cnnexplore_nb.notebook import artifacts_dir, figures_dir
from cnnexplore_nb.plots import (
    correlation_hist,
    correlation_image,
    errorbar_curves,
    export,
    layer_heatmap,
    percent_bars,
)
from cnnexplore_nb.plots.names import layer_name, readable_table
from cnnexplore_nb.plots.vessels import layer_map_rows
from cnnexplore_nb.similarity import dilated_mask
from cnnexplore_nb.studies.vessel_correlation import (
    aggregate_correlation,
    layer_maps,
    layer_pair_summary,
    layer_values,
    map_blocks,
    module_number,
    random_maps,
    selected_layers,
)
from cnnexplore_nb.studies.vessel_findings import (
    aggregated_profiles,
    block_statistics,
    convention_table,
    same_network_findings,
    table_sets,
)
from cnnexplore_nb.studies.vessel_thesis import redundancy_section, save_section
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
FIG = figures_dir("03_correlation_same_network")
TABLES = artifacts_dir("vessels", SCALE, "tables_same_network")

# %%
models = {
    n: trained_vessel_model(n, SCALE, settings={"seed": SEED}, data_dir=DATA_DIR, progress=False)[0]
    for n in MODELS
}
data = vessel_data(settings, DATA_DIR)
x_test, m_test = stack_images(data["test"])
pd.DataFrame(
    {
        "selected layers": {DISPLAY_NAMES[n]: selected_layers(m) for n, m in models.items()},
    }
)

# %% [markdown]
# ## Per image: the thesis analysis
# One set of tables (pairs, max, min, stats, partners) per model and image, saved as CSV
# under `artifacts/vessels/<scale>/tables_same_network/`.

# %%
maps = {n: layer_maps(model, x_test) for n, model in models.items()}  # one forward per model
tables = {
    (n, i): t
    for n in models
    for i, t in table_sets(maps[n], names=(DISPLAY_NAMES[n],) * 2, threshold=THRESHOLD,
                           save_dir=TABLES, stem=n).items()
}  # fmt: skip
summaries = {key: layer_pair_summary(t) for key, t in tables.items()}
# the thesis's stats table (maps with max |r| >= 0.8), headings in words
readable_table(
    tables["cnn6", 0].explorer("stats"), threshold=THRESHOLD, names=tables["cnn6", 0].names
)

# %% [markdown]
# **CNN Explorer's conventions** (CNN6, image 0): the original correlated maps inside the
# ground truth dilated by a few pixels and counted two constant ("dead") maps as perfectly
# correlated. Inside the region many maps are constant (dead ReLUs), so that convention
# changes the percentages; over the whole image it changes nothing unless maps are dead.

# %%
region = dilated_mask(m_test[:1] > 0, 3)
convention_table({k: v[:1] for k, v in maps["cnn6"].items()}, names=("CNN6", "CNN6"),
                 threshold=THRESHOLD, region=region).round(1)  # fmt: skip

# %%
heatmaps = hv.Layout(
    [
        layer_heatmap(
            s, "mean_max", title=f"{DISPLAY_NAMES[n]} · image {i}", names=(DISPLAY_NAMES[n],) * 2
        )
        for (n, i), s in summaries.items()
    ]
).cols(len(x_test))
export(heatmaps, FIG / "heatmaps_mean_max_per_image")
heatmaps

# %%
bars = hv.Layout(
    [percent_bars(t, title=f"{DISPLAY_NAMES[n]} · image {i}") for (n, i), t in tables.items()]
).cols(len(x_test))
export(bars, FIG / "percent_well_correlated_per_image")
bars

# %% [markdown]
# ## Histograms (CNN6, image 0): each map's max |r| with another map of its layer

# %%
t6 = tables["cnn6", 0]
hists = hv.Layout(
    [
        correlation_hist(layer_values(t6, layer, kind), threshold=THRESHOLD,
                         title=f"{layer_name(layer)} · {'all pairs' if kind == 'pairs' else 'max per map'}",
                         count_label="map pairs" if kind == "pairs" else "maps")
        for kind in ("max",)
        for layer in t6.layers_a
    ]
).cols(len(t6.layers_a))  # fmt: skip
export(hists, FIG / "histograms_cnn6")
hists

# %% [markdown]
# ## Eight random maps of layers 1, 2, 4 and 6 of CNN6 (image 0)
# Red frame: the map has a partner with |r| ≥ 0.8 in the same layer.

# %%
rows = {
    f"L{module_number(layer)}": (maps["cnn6"][layer][0], *random_maps(t6, layer, n=8, rng=k))
    for k, layer in enumerate(t6.layers_a)
}
grid = layer_map_rows(rows)
export(grid, FIG / "cnn6_random_maps")
grid

# %% [markdown]
# ## Blocks of correlated maps
# A block is a group of maps linked by |r| ≥ 0.8. The correlation matrices of the first, a
# middle and the last layer of CNN10 (image 0), reordered so each block is contiguous
# (largest first), and the block statistics of every layer (mean over the three images).

# %%
t10 = tables["cnn10", 0]
shown = [t10.layers_a[0], t10.layers_a[len(t10.layers_a) // 2], t10.layers_a[-1]]
images = []
for layer in shown:
    mat = t10.matrices[layer, layer]
    _, order = map_blocks(mat, THRESHOLD)
    images.append(correlation_image(mat[np.ix_(order, order)], names=(layer, layer),
                                    title=f"CNN10 {layer_name(layer)}, reordered"))  # fmt: skip
blocks_fig = hv.Layout(images).cols(3)
export(blocks_fig, FIG / "cnn10_blocks")
blocks_fig

# %%
blocks = block_statistics({(DISPLAY_NAMES[n], i): t for (n, i), t in tables.items()})
block_means = blocks.groupby(["model", "module"], sort=False)[["blocks", "largest", "in_blocks"]]
block_means = block_means.mean()
block_means.round(1)

# %% [markdown]
# ## Aggregated over many images (mean ± std across images)
# Each image is analysed separately, as above, and the per-layer-pair statistics are then
# averaged. The untrained CNN6 (random weights, BatchNorm at its initial statistics) is the
# control.

# %%
seed_everything(123)
untrained = create_model("cnn6", width=settings["width"]).eval()
agg_models = {**{DISPLAY_NAMES[n]: m for n, m in models.items()}, "CNN6 untrained": untrained}
aggregated = {
    name: aggregate_correlation(m, data["aggregate"], names=(name, name), threshold=THRESHOLD,
                                progress=False)
    for name, m in agg_models.items()
}  # fmt: skip
for name, (_, summary) in aggregated.items():
    summary.to_csv(TABLES / f"aggregate_{name.replace(' ', '_')}.csv", index=False)
n_agg = len(data["aggregate"])
agg_heat = hv.Layout(
    [
        layer_heatmap(s, "mean_max_mean", title=name, names=(name, name))
        for name, (_, s) in aggregated.items()
    ]
).cols(1)  # one column: side by side at a page's width the first y label is clipped
export(agg_heat, FIG / "heatmaps_mean_max_aggregated", title=f"mean over {n_agg} images")
agg_heat

# %% [markdown]
# Spread across images: the std of the mean max-|r| of each within-layer pair (the error
# bars of the next figure show the std of the % well correlated).

# %%
pd.concat(
    [
        s[s["module_a"] == s["module_b"]].assign(model=name)[
            ["model", "module_a", "mean_max_mean", "mean_max_std", "percent_mean", "percent_std"]
        ]
        for name, (_, s) in aggregated.items()
    ]
).pipe(readable_table, threshold=THRESHOLD)

# %%
profiles = aggregated_profiles({k: s for k, (_, s) in aggregated.items()}, "percent")
mean_profiles = aggregated_profiles({k: s for k, (_, s) in aggregated.items()}, "mean_max")
profiles = profiles.rename(columns={"value": "percent"})
mean_profiles = mean_profiles.rename(columns={"value": "mean max |r|"})
curves = errorbar_curves(
    profiles, "module", "percent", "model", err="std",
    title=f"mean ± std over {n_agg} images", ylabel=f"% maps with max |r| ≥ {THRESHOLD}",
) + errorbar_curves(
    mean_profiles, "module", "mean max |r|", "model", err="std",
    title="within a layer", ylabel="mean max |r|",
)  # fmt: skip
export(curves, FIG / "profiles_aggregated")
curves

# %% [markdown]
# ## Does the thesis finding appear?
# The thesis reports: redundancy highest in the **last** layers (blocks of highly
# correlated maps in the deeper networks), the **first** layer also fairly redundant, the
# **middle** layers the most varied. Each statement is checked below on the aggregated
# numbers of this run (% of maps with max |r| ≥ the threshold, mean over images) and the
# block statistics of the per-image tables; the untrained CNN6 is the control that tells
# what training adds. The verdicts and every number in them are computed.

# %%
findings = same_network_findings(
    {k: s for k, (_, s) in aggregated.items()}, blocks, trained=["CNN6", "CNN10"],
    control="CNN6 untrained",
)  # fmt: skip
display(readable_table(findings.table.round(1)))
findings

# %% [markdown]
# ## The thesis's numbers beside this run's
# Per layer, % of maps with a partner at |r| ≥ the threshold (mean over images), the
# thesis's statements on that profile and its one example row (CNN6, first layer, one
# image), each with its computed verdict.

# %%
own = aggregated["CNN6"][1]
first = own[(own["module_a"] == 1) & (own["module_b"] == 1)].iloc[0]
redundancy_rows = redundancy_section(
    profiles.rename(columns={"percent": "value"}),
    {"percent": first["percent_mean"], "mean": first["mean_max_mean"], "n_images": n_agg},
)
save_section(redundancy_rows, SCALE, "redundancy")
redundancy_rows
