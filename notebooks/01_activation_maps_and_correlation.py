# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% tags=["parameters"]
SCALE = "embedded"  # "embedded" (offline, minutes), "cpu" (real data, 2-core budget) or "full"
RETRAIN = False  # train the vessel model again even if notebook 02 cached it
DATA_DIR = None  # real data folder (VessMAP or images/ + masks/); None: the data cache (cpu, full)
SEED = 0  # training seed of the vessel networks (weights, batch order, crops)
THRESHOLD = 0.8  # max |r| at or above this counts as "well correlated" (thesis)

# %% [markdown]
# # 01 · Activation maps and their correlation: a first tour
#
# The toolkit in one notebook, on one network and one real image:
#
# 1. a **built-in CNN** — the thesis's CNN6 (6 modules of conv 3×3 → BatchNorm → ReLU with 64
#    maps, no down-sampling, then a 3×3 conv to 2 vessel/background logits), trained on
#    synthetic vessel images by notebook 02 (cached; trained here if missing);
# 2. its **layer catalogue** (`list_layers`: path, type, maps, output shape, parameters,
#    receptive field);
# 3. the **maps of one layer** for the scikit-image fundus photograph (`retina_image`, green
#    channel: the model is grey-level);
# 4. the **correlation tables of the network with itself** (`correlation_tables`: every map of
#    the selected layers against every map — pairs, max, min, stats, partners), **saved** as
#    CSV under `artifacts/01_activation_maps_and_correlation/<scale>/`;
# 5. the **interactive panels** (`MapBrowser`, `CorrelationPanel`), whose state is set from
#    Python so that this notebook is reproducible, and a static export of each panel's view.
#
# **Scales.** Every scale uses the CNN6 that notebook 02 trains at the same scale (smoke:
# 8 maps per layer, one epoch; embedded: 64 maps on synthetic vessels; cpu and full: 64
# maps on VessMAP, the thesis lab's public microscopy set) and the fundus photograph at the
# size in the settings table below (a fully convolutional network accepts any size; the
# photograph is shrunk so that its main vessels are a few pixels wide, as in training;
# full scale keeps its native 1411×1411).
#
# The thesis selects the first module, every even module and the last one (for CNN6:
# modules 1, 2, 4, 6) and compares all maps pairwise with Pearson's r; a map whose most
# similar other map has |r| ≥ 0.8 is "well correlated" (largely redundant).

# %%
import numpy as np
import pandas as pd
from holoviews import Layout
from IPython.display import display

from cnnexplore_nb import (
    correlation_tables,
    extract_activations,
    kernels,
    list_layers,
    load_tables,
    save_tables,
    select_layers,
)
from cnnexplore_nb.data import retina_pseudo_label
from cnnexplore_nb.models import feature_layers
from cnnexplore_nb.notebook import artifacts_dir, figures_dir, scale_settings
from cnnexplore_nb.plots import (
    correlation_hist,
    correlation_image,
    export,
    for_print,
    kernel_grid,
    layer_heatmap,
    map_grid,
    percent_bars,
    segmentation_figure,
)
from cnnexplore_nb.plots.names import layer_name, readable_table
from cnnexplore_nb.similarity import dilated_mask
from cnnexplore_nb.studies.vessel_findings import convention_table, retina_findings
from cnnexplore_nb.studies.vessels import retina_input, trained_vessel_model
from cnnexplore_nb.training import predict_masks
from cnnexplore_nb.widgets import CorrelationPanel, LayerPicker, MapBrowser, setup_notebook

NB = "01_activation_maps_and_correlation"
FIG = figures_dir(NB)
setup_notebook(figures=FIG)  # BokehJS inline (offline), the panels' bridge, their export folder
settings = scale_settings(
    SCALE,
    {
        "smoke": {"retina_size": 64, "layer": "conv_module2", "n_show": 4},
        "embedded": {"retina_size": 256, "layer": "conv_module2", "n_show": 8},
        "cpu": {"retina_size": 512, "layer": "conv_module2", "n_show": 8},
        "full": {"retina_size": None, "layer": "conv_module2", "n_show": 16},
    },
)
TABLES = artifacts_dir(NB, SCALE)
pd.Series(settings, dtype=object).to_frame("setting")

# %% [markdown]
# ## 1 · The network: CNN6 trained on vessels

# %%
model, history = trained_vessel_model(
    "cnn6", SCALE, settings={"seed": SEED}, retrain=RETRAIN, data_dir=DATA_DIR
)
print(
    f"CNN6 ({SCALE}): best validation IoU {model.best_score:.3f} at epoch {model.best_epoch} "
    f"of {len(history)}"
)

# %% [markdown]
# ## 2 · The input: the fundus photograph, green channel
# Vessels are dark in a fundus photograph but bright in the training images, so the green
# channel is inverted (the black surround of the fundus is first filled with the fundus's
# median, else it would become a bright "vessel"), then z-scored as in training. Next to
# it: a Frangi-vesselness *pseudo-label* (a classic filter, not ground truth) and the
# model's prediction, to see whether a network trained on other vessels (synthetic or
# microscopy, depending on the scale) responds to these.

# %%
green, x = retina_input(settings["retina_size"])  # x: (1, 1, H, W), as in training
prediction = predict_masks(model, x)[0]
pseudo = retina_pseudo_label(green)
retina_fig = segmentation_figure(green, None, {"Frangi pseudo-label": pseudo, "CNN6": prediction})
export(retina_fig, FIG / "retina_input_and_prediction")
retina_fig

# %% [markdown]
# ## 3 · The layer catalogue
# One dry forward pass with the image lists every module: path, type, number of maps, output
# shape, parameters, and receptive field / jump in input pixels. The containers
# `conv_module1..6` are the thesis's layers; their feature taps are selected with the
# thesis rule.

# %%
catalogue = list_layers(model, x)
catalogue

# %%
layers = select_layers(feature_layers(model))
print("selected layers:", layers)
picker = LayerPicker(catalogue, multiple=True, value=layers)
picker

# %% [markdown]
# ## 4 · Maps of one layer
# One forward pass records all selected layers (hooks removed afterwards). Below: the
# first 8 maps (4 at smoke scale) of the chosen layer, each with its own colour range, and
# the 3×3 kernels of the first layer; the map browser further down shows all of them.

# %%
maps = extract_activations(model, x, layers, progress=False)
{name: tuple(m.shape) for name, m in maps.items()}

# %%
layer = settings["layer"]
n_show = min(settings["n_show"], maps[layer].shape[1])
grid = map_grid(maps[layer][0], ids=range(n_show), ncols=8, heading=layer_name(layer))
export(grid, FIG / f"maps_{layer}")
grid

# %%
first_conv = "conv_module1.conv"
kgrid = kernel_grid(kernels(model, first_conv), ids=range(n_show), ncols=8)
export(kgrid, FIG / "kernels_conv_module1")
kgrid

# %% [markdown]
# ## 5 · The network against itself: thesis correlation tables
# Every map of every selected layer against every map of every selected layer (Pearson r
# over the image's pixels, one vectorised computation per layer pair). Tables:
# `pairs` (one row per pair, |r| and signed r, zero flags for constant maps), `max` / `min`
# (per map, its most / least similar map of the other layer; a map is never compared with
# itself), `stats` (per layer pair, maps with max |r| ≥ threshold: count, mean, median, std,
# % of the layer's maps) and `partners` (how often a map is another's best partner).

# %%
tables = correlation_tables(maps, names=("CNN6", "CNN6"), threshold=THRESHOLD, progress=False)
written = save_tables(tables, TABLES)
print(f"{len(tables.pairs):,} pairs; wrote", ", ".join(p.name for p in written))
readable_table(tables.explorer("stats"), threshold=THRESHOLD, names=tables.names)

# %%
reloaded = load_tables(TABLES)
same = all(
    getattr(reloaded, t).shape == getattr(tables, t).shape
    for t in ("pairs", "maxima", "minima", "stats", "partners")
)
print(f"tables read back from {TABLES}: same shapes {same}")
readable_table(tables.explorer("max").head(), names=tables.names)

# %% [markdown]
# **CNN Explorer's conventions.** The original tool correlated maps inside a region (the
# ground truth dilated by a few pixels, by multiplying the maps with it), counted two
# constant ("dead") maps as perfectly correlated and filtered its max table by a minimum
# |r|. Here the region is the Frangi pseudo-label dilated by 3 pixels (no ground truth
# exists for this photograph). The table shows the % of well-correlated maps per layer
# under each convention and the number of dead maps, then CNN Explorer's filtered max and
# partner tables.

# %%
region = dilated_mask(pseudo, 3)
conventions = convention_table(maps, names=("CNN6", "CNN6"), threshold=THRESHOLD, region=region)
readable_table(conventions, threshold=THRESHOLD, names=("CNN6", "CNN6"))

# %%
display(readable_table(tables.maxima_between(THRESHOLD).head(), names=tables.names))
tables.partners_between(THRESHOLD).head()

# %%
key = (layer, layer)
corr = correlation_image(tables.matrices[key], names=("CNN6", "CNN6"), title=layer_name(layer))
hist = correlation_hist(
    np.abs(tables.matrices[key][~np.eye(len(tables.matrices[key]), dtype=bool)]),
    threshold=THRESHOLD,
    title=f"|r| between maps of {layer_name(layer)}",
    count_label="map pairs",
)
within = (corr + hist).cols(2)
export(within, FIG / f"correlation_{layer}")
within

# %%
summary = Layout(
    for_print(layer_heatmap(tables, "percent"), percent_bars(tables, title="within a layer"))
).cols(2)
export(summary, FIG / "layer_pairs_summary")
summary

# %% [markdown]
# ## 6 · Interactive panels
# `MapBrowser`: layer picker, map slider, page of maps (the selected map framed). Its state is
# set from Python below, so re-running the notebook shows the same view; the export box (or
# `browser.export(...)`) writes the current view as PNG/SVG/PDF.

# %%
browser = MapBrowser(maps, layer=layer, grid=8 if settings["n_show"] >= 8 else 4, picker=picker)
browser.map_index = min(5, maps[layer].shape[1] - 1)
browser

# %%
print(f"browser shows {browser.layer} map {browser.map_index} (page of {browser.grid})")
browser.export(FIG / "panel_map_browser")

# %% [markdown]
# `CorrelationPanel`: threshold slider (stats table, heatmap and bars follow), measure, and a
# map-pair view (the two maps and their pixel scatter). Clicking a heatmap cell shows that
# layer pair's most correlated maps; here the same is done from Python. The tables are
# computed once per measure: moving the threshold only re-derives `stats`.

# %%
panel = CorrelationPanel(maps, names=("CNN6", "CNN6"), threshold=THRESHOLD)
panel

# %%
counts = {}
for t in (THRESHOLD, 0.9):
    panel.threshold = t
    counts[t] = int(panel.stats["count"].sum())
pair = panel.select_layers(layers[-1], layers[-1])
print(f"maps counted as well correlated: {counts}; pair shown: {pair}")
panel.export(FIG / "panel_correlation")

# %% [markdown]
# ## Conclusion
# The thesis (CNN6 on microscopy vessels) found that many maps of a layer are highly
# correlated with another map of the same layer — largely redundant — and more so in deeper
# layers. Here the network was trained on other vessels (see the scales above) and applied to a fundus
# photograph it never saw; the prediction above shows how well it transfers. With one
# image, r is computed over that image's pixels; notebook 03 repeats the analysis over many
# images. The verdict below is computed from this run's tables.

# %%
findings = retina_findings(tables, layers)
display(readable_table(findings.table.rename(index=layer_name), threshold=THRESHOLD).T)
findings
