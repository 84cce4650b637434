# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% tags=["parameters"]
SCALE = "embedded"  # "embedded" (offline, minutes); "cpu" / "full": larger images, longer training
MODEL = None  # your network's constructor, "package.module:function" or a callable; None: below
CHECKPOINT = None  # your trained weights: torch.save(model.state_dict(), path); None: train here
IMAGE_DIR = None  # a folder of your images (PNG, JPEG, TIFF...); None: held-out digits
IMAGE_SIZE = None  # side your images are resized to; None: the default network's training size
N_IMAGES = None  # at most this many images; None: the scale's number
THRESHOLD = 0.8  # max |r| at or above this counts as "well correlated" (thesis)

# %% [markdown]
# # 08 · Your own network
#
# Everything the toolkit does for its own networks, on a network it has never seen: the
# layer catalogue, the **feature taps** (found by one forward pass, no configuration), the
# maps, the thesis correlation tables over layers of **different resolutions**, and the two
# interactive panels, with figures exported.
#
# **To use your own network**, change the parameters cell above and nothing else:
#
# - `MODEL`: the function or class that builds it, as `"package.module:function"` (the
#   module must be importable from this folder) or a callable;
# - `CHECKPOINT`: its weights, a file written by `torch.save(model.state_dict(), path)`;
# - `IMAGE_DIR`: a folder of images (any format scikit-image reads), resized to
#   `IMAGE_SIZE` and normalised as torchvision and timm models expect (ImageNet mean and
#   std); grey images are repeated on the channels the network takes.
#
# The default, so that the notebook runs offline: a ResNet-18 written the usual way in the
# next cell (not a model of the package: 7×7 stem, max-pool, BasicBlocks with in-place
# ReLU and `out += identity`), trained here for a few minutes on scikit-learn's digits
# (8×8 images upsampled; cached), so that its maps are learned, not random. Its images are
# held-out digits.

# %%
import holoviews as hv
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import display
from torch import nn

from cnnexplore_nb import (
    correlation_tables,
    extract_activations,
    feature_layers,
    list_layers,
    select_layers,
)
from cnnexplore_nb.data import digits
from cnnexplore_nb.notebook import artifacts_dir, figures_dir, scale_settings
from cnnexplore_nb.plots import (
    NAMES,
    export,
    layer_heatmap,
    map_grid,
    map_image,
    map_pair,
    percent_bars,
)
from cnnexplore_nb.plots.names import layer_name
from cnnexplore_nb.studies.own_network import (
    first_conv_channels,
    grid_effect,
    load_images,
    load_network,
    tap_names,
    tap_summary,
    train_on_digits,
)
from cnnexplore_nb.widgets import CorrelationPanel, MapBrowser, setup_notebook

NB = "08_your_own_network"
FIG = figures_dir(NB)
setup_notebook(figures=FIG)
settings = scale_settings(
    SCALE,
    {
        "smoke": {"size": 32, "width": 16, "epochs": 1, "per_class": 1},
        "embedded": {"size": 96, "width": 4, "epochs": 4, "per_class": 2},
        "cpu": {"size": 128, "width": 2, "epochs": 8, "per_class": 5},
        "full": {"size": 224, "width": 1, "epochs": 15, "per_class": 10},
    },
)
torch.manual_seed(0)
pd.Series(settings, dtype=object).to_frame("setting")

# %% [markdown]
# ## 1 · The network
# The default network, as a researcher writes it. `width` divides the channels (the
# published ResNet-18 is `width=1`: 64 to 512 maps); the embedded scale trains a narrow one.


# %%
class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        out += identity
        return F.relu(out, inplace=True)


class ResNet18(nn.Module):
    def __init__(self, num_classes: int = 10, width: int = 1) -> None:
        super().__init__()
        c = [64 // width, 128 // width, 256 // width, 512 // width]
        self.conv1 = nn.Conv2d(3, c[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(c[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = nn.Sequential(BasicBlock(c[0], c[0]), BasicBlock(c[0], c[0]))
        self.layer2 = nn.Sequential(BasicBlock(c[0], c[1], 2), BasicBlock(c[1], c[1]))
        self.layer3 = nn.Sequential(BasicBlock(c[1], c[2], 2), BasicBlock(c[2], c[2]))
        self.layer4 = nn.Sequential(BasicBlock(c[2], c[3], 2), BasicBlock(c[3], c[3]))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c[3], num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# %%
size = IMAGE_SIZE or settings["size"]
if MODEL is None:
    NAME = "ResNet-18"
    if CHECKPOINT is None:
        cache = artifacts_dir(NB, SCALE) / f"resnet18_w{settings['width']}_digits{size}.pt"
        model, record = train_on_digits(
            ResNet18(width=settings["width"]), size=size, epochs=settings["epochs"], cache=cache
        )
        print(
            f"{NAME} (channels / {settings['width']}) trained on digits at {size}×{size} for "
            f"{record['epochs']} epoch{'s' * (record['epochs'] != 1)} "
            f"({record['seconds']:.0f} s when trained): "
            f"{100 * record['test_acc']:.1f} % of {len(digits('test'))} held-out digits right"
        )
    else:
        model = load_network(ResNet18, CHECKPOINT, width=settings["width"])
else:
    model = load_network(MODEL, CHECKPOINT)
    NAME = type(model).__name__
n_params = sum(p.numel() for p in model.parameters())
print(f"{NAME}: {n_params:,} parameters")

# %% [markdown]
# ## 2 · The images

# %%
if IMAGE_DIR is None:
    test = digits("test", size=size)
    labels = test.labels.numpy()
    pick = [i for c in range(10) for i in np.flatnonzero(labels == c)[: settings["per_class"]]]
    x = test.batch(pick)[0]
    image_names = [f"digit {labels[i]}" for i in pick]
else:
    x, image_names = load_images(
        IMAGE_DIR, size=size, channels=first_conv_channels(model), limit=N_IMAGES
    )
x = x[:N_IMAGES] if N_IMAGES else x
print(f"{len(x)} images of {tuple(x.shape[1:])} (channels, height, width)")
shown = min(len(x), 8)
inputs = map_grid(x[:shown, 0], ncols=8, title="image {id}", label="input (first channel)")
export(inputs, FIG / "images")
inputs

# %% [markdown]
# ## 3 · The catalogue and the feature taps
# One dry forward pass with one image lists every module call (`list_layers`). A model of
# the package says where to tap it (`feature_info`); any other network gets its taps from
# the same forward pass (`feature_layers(model, example)`): **the output of the last module
# at each spatial resolution** — the end of each stage, as timm's `feature_info` and
# torchvision's feature extractors define them — skipping the start of a block that
# changes resolution inside (the 1×1 expansion of an inverted residual), and for a network
# that keeps one resolution, each convolution block. The catalogue's `tap` column marks
# them; the thesis rule (first, every even and last tap) applies on top.

# %%
catalogue = list_layers(model, x[:1])
taps = feature_layers(model, x[:1])
print(f"{len(catalogue)} module calls, {len(taps)} taps: {', '.join(taps)}")
print("thesis rule (first, even, last):", ", ".join(select_layers(taps)))
tap_summary(catalogue, size)

# %% [markdown]
# Figures name layers by their paths; a dotted module path (`features.3`) or a snake_case
# one becomes "tap 1", "tap 2"... Give your own names with `NAMES.update(layer={...})`.

# %%
NAMES.update(layer=tap_names(taps))
maps = extract_activations(model, x, taps, progress=False)
pd.DataFrame(
    {
        "layer": [layer_name(k) for k in maps],
        "maps (N, C, H, W)": [tuple(m.shape) for m in maps.values()],
    }
)

# %% [markdown]
# ## 4 · One map per tap
# For each tap, the map that varies most over the images, for the first image.

# %%
tiles = []
for layer, m in maps.items():
    k = int(m.flatten(2).std(dim=(0, 2)).argmax())
    tiles.append(map_image(m[0, k], title=f"{layer_name(layer)} · map {k}"))
one_per_tap = hv.Layout(tiles).cols(len(tiles)).opts(sublabel_format="", backend="matplotlib")
export(one_per_tap, FIG / "one_map_per_tap")
one_per_tap

# %% [markdown]
# ## 5 · The network against itself, across resolutions
# Comparing maps of different sizes needs a common grid. The functions say so and ask for
# a policy (explicit is right there); the panels below choose one themselves. Here every
# map is shrunk to the smallest grid, bilinear and antialiased (`resample="bilinear-down"`).
#
# A map that is **non-zero at a handful of pixels** over all the images (or constant) has a
# correlation decided by those pixels: two such maps lit at the same pixel have |r| = 1
# whatever they encode. The tables flag them (`A_degenerate`, `B_degenerate`); the panels
# never show them as a best pair.

# %%
tables = correlation_tables(
    maps, names=(NAME, NAME), threshold=THRESHOLD, resample="bilinear-down", progress=False
)
flags = pd.DataFrame(
    {
        "layer": [layer_name(k) for k in taps],
        "maps": [len(tables.degenerate_a[k]) for k in taps],
        "constant": [int(tables.zero_flags_a[k].sum()) for k in taps],
        "degenerate": [int(tables.degenerate_a[k].sum()) for k in taps],
        "median support (pixels)": [int(np.median(tables.support_a[k])) for k in taps],
    }
)
display(flags)
tables.explorer("stats").round(2)

# %%
grid_h, grid_w = min(tuple(m.shape[-2:]) for m in maps.values())
summary = (
    layer_heatmap(tables, "percent", title=f"{NAME}, maps on {grid_h}×{grid_w}")
    + percent_bars(tables, title="each layer with itself")
).cols(2)
export(summary, FIG / "layer_pairs_summary")
summary

# %% [markdown]
# **What the grid does.** The common grid also changes the numbers of a layer with
# itself: a map shrunk to the smallest grid keeps only its coarse structure. The table
# gives, per layer, the % of maps with a partner at |r| ≥ the threshold at the layer's
# own size, on the smallest and on the largest grid.

# %%
effect = grid_effect(maps, threshold=THRESHOLD)
effect["layer"] = effect["layer"].map(layer_name)
display(effect.round(1))
spread = (effect.drop(columns=["layer", "size"]).max(axis=1) - effect.drop(
    columns=["layer", "size"]).min(axis=1))  # fmt: skip
worst = int(spread.to_numpy().argmax())
print(
    f"the grid moves a layer's share of well-correlated maps by up to {spread.max():.1f} "
    f"points ({effect['layer'][worst]}); compare layers with themselves at their own size, "
    "and across layers on a grid you chose"
)

# %% [markdown]
# ## 6 · The panels, with no configuration
# `MapBrowser(maps)` and `CorrelationPanel(maps)` take the maps as they come. The
# correlation panel compares maps of different sizes on the smallest grid, says so in its
# status line and in the exported title, and offers the other grids ("common grid"); its
# pair view shows the two maps for the first image and the scatter of their values at every
# pixel of every image on that grid. Their state is set from Python below, so a re-run
# shows the same view.

# %%
browser = MapBrowser(maps)
browser.layer = taps[len(taps) // 2]
browser.map_index = 1
browser

# %%
browser.export(FIG / "panel_map_browser")
print(f"browser shows {layer_name(browser.layer)}, map {browser.map_index}")

# %%
panel = CorrelationPanel(maps, names=(NAME, NAME), threshold=THRESHOLD)
panel

# %%
la, ma, lb, mb = panel.click_cell(taps[0], taps[-1])  # what a click on that cell does
r = panel.tables.matrices[la, lb][ma, mb]
print(f"the status line says: {panel.grid.text()}")
print(f"best pair between {layer_name(la)} and {layer_name(lb)}: maps {ma} and {mb}, r = {r:.3f}")

# %%
panel.export(FIG / "panel_correlation")  # the whole panel as it stands: a paper figure

# %% [markdown]
# The pair view as a paper figure: the two maps for the first image, and their values at
# every pixel of every image on the common grid (what the tables correlated). The panel's
# export box writes its whole view the same way.

# %%
pixels = panel.grid.pixels(maps[la][:, ma : ma + 1], maps[lb][:, mb : mb + 1])
pair_fig = map_pair(
    maps[la][0, ma], maps[lb][0, mb], r=r, pixels=pixels,
    names=(f"{layer_name(la)} · map {ma}", f"{layer_name(lb)} · map {mb}"),
)  # fmt: skip
export(pair_fig, FIG / "best_pair_across_resolutions")
pair_fig

# %% [markdown]
# ## Conclusion
# Computed from this run: which tap holds the most redundant maps (with themselves, at
# their own size), how many maps are degenerate, and where the best cross-resolution pair
# lies.

# %%
most = effect.loc[effect["own"].idxmax()]
n_degenerate = int(flags["degenerate"].sum())
print(
    f"{NAME}: {len(taps)} taps found without configuration; the most redundant is "
    f"{most['layer']} ({most['own']:.1f} % of its maps have a partner at |r| ≥ {THRESHOLD}); "
    f"{n_degenerate} of {int(flags['maps'].sum())} maps are degenerate over these "
    f"{len(x)} images (never shown as a best pair)."
)
