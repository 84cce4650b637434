# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% tags=["parameters"]
SCALE = "embedded"  # "embedded" (offline, minutes), "cpu" (real data, 2-core budget) or "full"
RETRAIN = False  # True: train the vessel CNN6 again even if it is cached in artifacts/
DATA_DIR = None  # real data folder (VessMAP or images/ + masks/); None: the data cache (cpu, full)
SEED = 0  # training seed of the vessel networks (weights, batch order, crops)

# %% [markdown]
# # 00 · Fundamentals: convolution, pooling, BatchNorm, receptive fields, adversarial examples
#
# The lecture material behind the thesis (SPEC part C; lecture notes in Portuguese, thesis
# chapter 2), computed on real tensors: every number below comes from
# `cnnexplore_nb.lecture` or from torch itself, and the lectures' worked examples are
# reproduced with their exact numbers (the 3×3 patch · vertical-edge filter = 32.64; the
# matched filter w = (3, 7, 5); the 4×4 min-pooling example).
#
# **Scales** (the settings are printed below): the retina's size, the width and input size of
# the networks whose receptive fields are traced, the number of random inputs per effective
# receptive field and the epochs of a tiny digits CNN; the vessel CNN6 is the one of
# notebook 02 at the same scale (trained and cached there; trained here if missing), on
# synthetic vessels (embedded) or VessMAP (cpu, full). Smoke shrinks everything to seconds.

# %%
import holoviews as hv
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import display
from torch import nn

from cnnexplore_nb import create_model, extract_activations, kernels
from cnnexplore_nb import lecture as fu
from cnnexplore_nb.data import retina_image
from cnnexplore_nb.inspect import effective_receptive_field, kernels_of
from cnnexplore_nb.notebook import figures_dir, scale_settings
from cnnexplore_nb.plots import export, kernel_grid, map_image
from cnnexplore_nb.plots.fundamentals import grid_of, line_curves, sequence_bars, value_grid
from cnnexplore_nb.studies.lecture_findings import fundamentals_findings
from cnnexplore_nb.studies.vessels import (
    stack_images,
    trained_vessel_model,
    vessel_data,
    vessel_settings,
)
from cnnexplore_nb.widgets.teaching import output_size_explorer

hv.extension("bokeh", inline=True)
FIG = figures_dir("00_fundamentals")
S = scale_settings(
    SCALE,
    {
        "smoke": {"retina": 96, "rf_width": 8, "rf_input": 48, "erf_n": 2, "digits_epochs": 2},
        "embedded": {
            "retina": 256,
            "rf_width": 16,
            "rf_input": 64,
            "erf_n": 8,
            "digits_epochs": 8,
        },
        "cpu": {"retina": 512, "rf_width": 32, "rf_input": 96, "erf_n": 16, "digits_epochs": 15},
        "full": {"retina": 1024, "rf_width": 64, "rf_input": 96, "erf_n": 64, "digits_epochs": 30},
    },
)
S

# %% [markdown]
# ## 1 · Convolution as a sliding weighted sum
# The lectures' worked example: a 3×3 grey-level patch times a vertical-edge filter,
# element by element, summed. The same number from `torch.nn.functional.conv2d`.

# %%
worked = fu.conv_at(fu.LECTURE_PATCH, fu.LECTURE_FILTER)
torch_value = F.conv2d(
    torch.from_numpy(fu.LECTURE_PATCH)[None, None], torch.from_numpy(fu.LECTURE_FILTER)[None, None]
).item()
print(f"sum(patch * filter) = {worked:.2f}; torch conv2d = {torch_value:.2f}")
example = grid_of(
    [
        value_grid(fu.LECTURE_PATCH, title="patch X"),
        value_grid(fu.LECTURE_FILTER, title="vertical-edge filter F", fmt="{:.0f}"),
        value_grid(fu.LECTURE_PATCH * fu.LECTURE_FILTER, title=f"X ⊙ F (sum = {worked:.2f})"),
    ],
    3,
)
export(example, FIG / "worked_convolution")
example

# %% [markdown]
# **Several input channels.** A kernel of a layer with C_in input channels is a stack of
# C_in 2-D kernels: one output value is the sum, over channels, of each channel's weighted
# sum, plus one bias. The lectures' small RGB example, channel by channel, and a whole
# layer (six 5×5×3 filters on a 32×32×3 image) checked against `torch.nn.functional.conv2d`.

# %%
display(fu.channel_sums())
rgb = np.random.default_rng(0).normal(size=(3, 32, 32))
bank = np.random.default_rng(1).normal(size=(6, 3, 5, 5))
by_hand = fu.conv_multichannel(rgb, bank)
by_torch = F.conv2d(torch.from_numpy(rgb)[None], torch.from_numpy(bank))[0].numpy()
print(f"output volume {by_hand.shape}; max |by hand - conv2d| = {np.abs(by_hand - by_torch).max():.1e}; "
      f"parameters of the layer: {bank.size + bank.shape[0]}")  # fmt: skip

# %% [markdown]
# ## 2 · Output size, padding, stride, dilation
# $W_{out} = \lfloor (W - K_{eff} + 2P)/S \rfloor + 1$ with $K_{eff} = K + (K-1)(D-1)$. Move the
# sliders (the text is computed by `fundamentals.output_size`); the table checks the formula
# against the shape torch actually produces.

# %%
output_size_explorer(size=32, kernel=3)

# %%
rows = []
x32 = torch.zeros(1, 1, 32, 32)
for k, p, s, d in [
    (3, 0, 1, 1),
    (3, 1, 1, 1),
    (5, 2, 1, 1),
    (3, 1, 2, 1),
    (7, 3, 2, 1),
    (3, 2, 1, 2),
    (3, 0, 1, 3),
]:
    torch_out = F.conv2d(x32, torch.zeros(1, 1, k, k), padding=p, stride=s, dilation=d).shape[-1]
    rows.append({"W": 32, "K": k, "P": p, "S": s, "D": d, "K_eff": fu.effective_kernel(k, d),
                 "formula": fu.output_size(32, k, padding=p, stride=s, dilation=d),
                 "torch": torch_out})  # fmt: skip
sizes = pd.DataFrame(rows)
print("formula == torch for every row:", bool((sizes["formula"] == sizes["torch"]).all()))
sizes

# %% [markdown]
# **Same vs valid padding** on the retina: a 3×3 filter keeps the input size with "same" (P = 1)
# and loses one pixel per side with "valid" (P = 0). **Dilation** D = 2 makes a 3×3 kernel
# span 5×5 with the same 9 weights (the lectures' example).

# %%
retina = retina_image(size=S["retina"])
r = torch.from_numpy(retina)[None, None]
k3 = torch.ones(1, 1, 3, 3) / 9
print("input", tuple(r.shape[-2:]))
print("same  (P=1):", tuple(F.conv2d(r, k3, padding=1).shape[-2:]),
      "| valid (P=0):", tuple(F.conv2d(r, k3).shape[-2:]),
      "| dilated D=2, valid:", tuple(F.conv2d(r, k3, dilation=2).shape[-2:]),
      f"= a {fu.effective_kernel(3, 2)}x{fu.effective_kernel(3, 2)} span")  # fmt: skip

# %% [markdown]
# ## 3 · Parameters: standard, grouped, depthwise-separable, 1×1
# Formula counts (`fundamentals.conv_params`) next to `numel()` of the equivalent
# `nn.Conv2d` stack, for C_in = 64 → C_out = 128 with 3×3 kernels (no bias).

# %%
params = fu.conv_param_table(64, 128, 3, groups=(2, 4, 64))
print(
    "formula == nn.Conv2d for every variant:",
    bool((params["params"] == params["torch_params"]).all()),
)
params

# %% [markdown]
# ## 4 · Pooling: max, average, min
# The lectures' 4×4 example with 2×2 windows (min pooling gives [[14, 13], [55, 12]]), then
# the same three operations (4×4 windows) on the retina: max pooling keeps the bright
# background, min pooling keeps the *dark* vessels.

# %%
pool_panels = [value_grid(fu.MIN_POOL_EXAMPLE, title="input", fmt="{:.0f}")]
pool_panels += [
    value_grid(fu.pool2d(fu.MIN_POOL_EXAMPLE, kind), title=f"{kind} pool 2x2", fmt="{:.1f}")
    for kind in ("max", "avg", "min")
]
pooling_example = grid_of(pool_panels, 4)
export(pooling_example, FIG / "pooling_example")
pooling_example

# %%
pooled = {kind: fu.pool2d(retina, kind, size=4) for kind in ("max", "avg", "min")}
pool_retina = grid_of(
    [map_image(retina, title=f"retina {retina.shape[0]}x{retina.shape[1]}", cmap="gray")]
    + [map_image(v, title=f"{k} pool 4x4 -> {v.shape[0]}", cmap="gray") for k, v in pooled.items()],
    4,
)
export(pool_retina, FIG / "pooling_retina")
pool_retina

# %% [markdown]
# ## 5 · BatchNorm step by step
# A real batch: the pre-BatchNorm outputs of the first conv of the vessel CNN6 (notebook 02)
# on four images. Step 1: per-channel batch mean and (biased) variance; step 2: normalise;
# step 3: scale by γ and shift by β (the trained values). The result is compared with
# `nn.BatchNorm2d` in training mode.

# %%
cnn6, _ = trained_vessel_model(
    "cnn6", SCALE, settings={"seed": SEED}, retrain=RETRAIN, data_dir=DATA_DIR
)
vdata = vessel_data(vessel_settings(SCALE, {"seed": SEED}), DATA_DIR)
x_batch, _ = stack_images(vdata["val"], range(min(4, len(vdata["val"]))))
pre_bn = extract_activations(cnn6, x_batch, ["conv_module1.conv"], progress=False)[
    "conv_module1.conv"
]
bn = cnn6.conv_module1.bn
steps = fu.batchnorm_steps(pre_bn.double(), bn.weight.detach(), bn.bias.detach(), eps=bn.eps)
reference = nn.BatchNorm2d(bn.num_features, eps=bn.eps).double().train()
reference.load_state_dict(bn.state_dict())
with torch.no_grad():
    y_torch = reference(pre_bn.double())
print(f"max |by hand - nn.BatchNorm2d| = {float((steps['y'] - y_torch).abs().max()):.2e}")
bn_table = pd.DataFrame({
    "batch mean": steps["mean"].numpy(), "batch var": steps["var"].numpy(),
    "x_hat mean": steps["x_hat"].mean(dim=(0, 2, 3)).numpy(),
    "x_hat var": steps["x_hat"].var(dim=(0, 2, 3), unbiased=False).numpy(),
    "gamma": bn.weight.detach().numpy(), "beta": bn.bias.detach().numpy(),
    "y mean": steps["y"].mean(dim=(0, 2, 3)).numpy(),
})  # fmt: skip
bn_table.head(8).round(4)

# %% [markdown]
# ## 6 · Sobel filters as activation maps; normalised correlation as a matched filter
# The lectures' Sobel example (four 3×3 patches → 0, 40, 30, 0), then Gx, Gy and the
# gradient magnitude of the retina: the activation maps a first conv layer with these two
# fixed filters would produce.

# %%
patches = {
    "flat": np.full((3, 3), 10.0),
    "vertical edge": np.array([[0, 10, 10]] * 3, dtype=float),
    "corner": np.array([[10, 10, 10], [0, 10, 10], [0, 0, 10]], dtype=float),
    "horizontal edge": np.array([[10, 10, 10], [10, 10, 10], [0, 0, 0]], dtype=float),
}
print({name: fu.conv_at(p, fu.SOBEL_X) for name, p in patches.items()})
sob = fu.sobel_maps(retina)
edge = max(float(np.abs(sob["gx"]).max()), float(np.abs(sob["gy"]).max()))
sobel_fig = grid_of(
    [map_image(retina, title="retina (green)", cmap="gray")]
    + [
        map_image(sob[k], title=f"Sobel {k}", cmap="RdBu_r", clim=(-edge, edge))
        for k in ("gx", "gy")
    ]
    + [map_image(sob["magnitude"], title="Sobel magnitude", cmap="gray")],
    4,
)
export(sobel_fig, FIG / "sobel_retina")
sobel_fig

# %% [markdown]
# **Matched filter.** Normalised correlation (Pearson r of each window with the mask) of
# w = (3, 7, 5) along the lectures' sequence s; r is undefined (NaN, no bar) where the
# window is constant (7, 7, 7). The non-normalised correlation (dot products) is shown too,
# with zero padding (length kept: 33 ... 17).

# %%
s, w = fu.MATCHED_FILTER_S, fu.MATCHED_FILTER_W
g_norm = fu.normalized_correlation(s, w)
g_raw = fu.sliding_correlation(s, w, padding=1)
best = int(np.nanargmax(g_norm))
print("normalised r:", np.round(g_norm, 2))
print("zero-padded dot products:", g_raw.astype(int))
print(f"matched-filter peak: r = {g_norm[best]:.2f} at window {s[best:best + 3].astype(int)} "
      f"(centre position {best + 1}), the window most like w = {w.astype(int)}")  # fmt: skip
matched = sequence_bars(
    {"signal s": s, "normalised r": (1, g_norm), "dot product (zero pad)": g_raw},
    title="matched filter w = (3, 7, 5)",
)
export(matched, FIG / "matched_filter")
matched

# %% [markdown]
# ## 7 · Receptive fields: theoretical vs effective
# Theoretical side $RF_l = RF_{l-1} + (k_l - 1) j_{l-1}$ (traced from the modules) against the
# effective field: the gradient of the central unit of each layer with respect to the input,
# averaged over random inputs, measured as the side of the centred square holding 95 % of
# it. Networks at initialisation (the architecture's effect), plus the trained vessel CNN6.

# %%
example_in = torch.zeros(1, 1, S["rf_input"], S["rf_input"])
nets = {
    name.upper(): create_model(name, width=S["rf_width"], in_channels=1)
    for name in ("cnn1", "cnn6", "cnn10")
}
nets["U-Net (small)"] = create_model("unet_small", in_channels=1)
nets["CNN6 trained"] = cnn6
growth = pd.concat(
    [
        fu.receptive_growth(m, example_in, n=S["erf_n"], mass=0.95).assign(network=name)
        for name, m in nets.items()
    ],  # fmt: skip
    ignore_index=True,
)
growth[["network", "layer", "depth", "jump", "theoretical", "effective", "ratio"]].round(2)

# %%
curves = pd.concat(
    [
        growth.assign(kind="theoretical", side=growth["theoretical"]),
        growth.assign(kind="effective (95 %)", side=growth["effective"]),
    ],  # fmt: skip
)
curves["series"] = curves["network"] + " · " + curves["kind"]
rf_plot = line_curves(
    curves[curves["network"].isin(["CNN10", "U-Net (small)", "CNN6 trained"])],
    "depth", "side", "series", title="receptive field side (input pixels)",
)  # fmt: skip
export(rf_plot, FIG / "receptive_field_growth")
rf_plot

# %%
erf_maps = {
    name: effective_receptive_field(nets[name], example_in, n=S["erf_n"], rng=0)
    for name in ("CNN1", "CNN10", "CNN6 trained")
}
erf_fig = grid_of([map_image(m, title=f"ERF {k} (output)") for k, m in erf_maps.items()], 3)
export(erf_fig, FIG / "effective_receptive_fields")
erf_fig

# %% [markdown]
# ## 8 · First-layer filters of the trained vessel CNN6
# The first 16 of the 3×3 kernels (shared diverging scale: red positive, blue negative).

# %%
first = kernel_grid(
    kernels(cnn6, "conv_module1"), ids=range(min(16, cnn6.conv_module1.conv.out_channels)), ncols=8
)
export(first, FIG / "first_layer_filters")
first

# %% [markdown]
# CNN Explorer also showed the kernels of one layer per output map (the C_in 2-D kernels that
# produce one map) and per input channel (what every output map reads from one map of the
# previous layer). For module 2 of the trained CNN6:

# %%
views = grid_of(
    [
        kernel_grid(kernels_of(cnn6, "conv_module2", by=by, index=0)[:8, None], ncols=8)
        for by in ("output", "input")
    ],
    1,
)  # fmt: skip
export(views, FIG / "kernel_views_module2")
views

# %% [markdown]
# ## 9 · Adversarial perturbations: x + ε·sign(∇x J)
# A tiny CNN trained on scikit-learn's 8×8 digits (pixels in [0, 1]); FGSM moves every pixel
# by ±ε in the direction that increases the loss (clipped to [0, 1]).

# %%
digits_net, digits = fu.digits_classifier(epochs=S["digits_epochs"], seed=0)
epsilons = [0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3]
adv = fu.accuracy_vs_epsilon(digits_net, digits["x_test"], digits["y_test"], epsilons)
adv_plot = line_curves(adv, "epsilon", "accuracy", title="digits test accuracy under FGSM")
export(adv_plot, FIG / "fgsm_accuracy")
print(adv.round(3).to_string(index=False))
adv_plot

# %%
eps_show = 0.1
x0, y0 = digits["x_test"][:4], digits["y_test"][:4]
x_adv = fu.fgsm(digits_net, x0, y0, eps_show)
with torch.no_grad():
    p_clean, p_adv = digits_net(x0).argmax(1), digits_net(x_adv).argmax(1)
panels = [
    map_image(x0[i, 0], title=f"label {int(y0[i])} → {int(p_clean[i])}", cmap="gray")
    for i in range(len(x0))
]
panels += [
    map_image(x_adv[i, 0], title=f"ε={eps_show} → {int(p_adv[i])}", cmap="gray")
    for i in range(len(x0))
]
adv_examples = grid_of(panels, 4)
export(adv_examples, FIG / "fgsm_examples")
adv_examples

# %% [markdown]
# ## 10 · Classic architectures
# Depth, parameters (computed here from each network's layer list and checked against the
# published counts), theoretical receptive field and the published top-1 error, with the
# source of each number.

# %%
fu.classic_architectures()

# %% [markdown]
# ## Conclusions
# Each worked example of the lectures is recomputed above and compared with the slides'
# numbers; each statement is checked on this run's results (the receptive fields and the
# FGSM accuracies depend on the scale). The verdicts below are computed.

# %%
fundamentals_findings(
    sobel={name: fu.conv_at(p, fu.SOBEL_X) for name, p in patches.items()},
    params=params, bn_error=float((steps["y"] - y_torch).abs().max()),
    matched=(s, w, g_norm), growth=growth, fgsm=adv,
)  # fmt: skip
