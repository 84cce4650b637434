"""Any CNN, no configuration: networks written outside the package through the whole flow.

catalogue -> inferred taps -> extraction -> tables over mixed resolutions -> both panels
(state set from Python) -> export, for every family of ``_external_models``; then the
studies' helpers and ``layer_cka`` on mixed resolutions.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _external_models import FAMILIES, resnet18

import cnnexplore_nb as cx
from cnnexplore_nb.plots import display_names
from cnnexplore_nb.plots.check import read_reports
from cnnexplore_nb.studies import vessel_correlation as vc
from cnnexplore_nb.widgets import CorrelationPanel, MapBrowser


def _on_grid(x: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """An independent resampling: bilinear, antialiased when shrinking (the documented policy)."""
    t = torch.as_tensor(np.asarray(x, dtype=np.float32))
    if tuple(t.shape[-2:]) == grid:
        return t.numpy()
    shrink = grid[0] < t.shape[-2]
    return F.interpolate(t, size=grid, mode="bilinear", align_corners=False,
                         antialias=shrink).numpy()  # fmt: skip


def _pooled(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (C, N*H*W): each map's pixels over every image."""
    return np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request):
    make, shape, want = FAMILIES[request.param]
    torch.manual_seed(0)
    model = make().eval()
    x = torch.randn(3, *shape, generator=torch.Generator().manual_seed(1))
    return request.param, model, x, want


def test_the_whole_flow(family, tmp_path):
    name, model, x, want = family
    # catalogue and taps
    catalogue = cx.list_layers(model, x[:1])
    assert list(catalogue.loc[catalogue["tap"], "path"]) == want
    taps = cx.feature_layers(model, x[:1])
    assert taps == want
    # extraction: one tensor per tap, the shapes the catalogue announced
    maps = cx.extract_activations(model, x, taps, progress=False)
    shown = catalogue.set_index("path")
    for tap, m in maps.items():
        assert tuple(m.shape[1:]) == tuple(shown.loc[tap, "output_shape"][1:])
    sizes = {tuple(m.shape[-2:]) for m in maps.values()}
    assert len(sizes) > 1  # every family changes resolution
    # the functional API stays explicit ...
    with pytest.raises(ValueError, match=r"maps have different sizes .* pass resample="):
        cx.correlation_tables(maps, progress=False)
    # ... and with a policy, a cross-resolution pair is the Pearson r of the resampled maps
    tables = cx.correlation_tables(maps, resample="bilinear-down", progress=False)
    grid = min(sizes)
    first, last = taps[0], taps[-1]
    a = _pooled(_on_grid(maps[first].numpy(), grid))
    b = _pooled(_on_grid(maps[last].numpy(), grid))
    ok_a, ok_b = a.std(axis=1) > 0, b.std(axis=1) > 0
    ref = np.corrcoef(np.concatenate([a[ok_a], b[ok_b]]))[: ok_a.sum(), ok_a.sum() :]
    got = tables.matrices[first, last][np.ix_(ok_a, ok_b)]
    np.testing.assert_allclose(got, ref, atol=2e-4)

    # the correlation panel: no argument needed, the grid is chosen and said (readable
    # layer names, as a user gives them: features.3 is a module path, not a name)
    with display_names(layer={tap: f"tap {i}" for i, tap in enumerate(taps, start=1)}):
        _panels(maps, taps, x, grid, a, sizes, tmp_path)


def _panels(maps, taps, x, grid, a, sizes, tmp_path):
    first, last = taps[0], taps[-1]
    tables = cx.correlation_tables(maps, resample="bilinear-down", progress=False)
    panel = CorrelationPanel(maps, names=("Net", "Net"))
    assert panel.resample == "bilinear-down"
    assert f"compared on the smallest grid, {grid[0]}×{grid[1]}" in panel.status.value
    assert panel.grid.widget.layout.display == ""  # the control shows
    la, ma, lb, mb = panel.pair  # the default pair: the best pair without degenerate maps
    assert (la, lb) == (last, last)
    assert not panel.tables.degenerate_a[la][ma] and not panel.tables.degenerate_b[lb][mb]
    assert (ma, mb) == panel.tables.best_pair(la, lb)[:2]
    # state from Python: threshold, a cross-resolution pair, another grid
    panel.threshold = 0.5
    assert panel.tables.threshold == 0.5
    panel.pair = (first, 0, last, 0)
    scatter = [p for p in panel._pair.plot.traverse(lambda p: p) if type(p).__name__ == "PointPlot"]
    xs = np.asarray(scatter[0].handles["source"].data["a"])
    n_pixels = x.shape[0] * grid[0] * grid[1]  # every image, on the common grid
    assert xs.size == min(4000, n_pixels)
    assert scatter[0].state.title.text.endswith(
        " px" if xs.size == n_pixels else f"{xs.size:,} of {n_pixels:,} px"
    )
    assert np.isin(xs.astype(np.float32), a[0].astype(np.float32)).all()  # map 0's pixels
    panel.resample = "bilinear-up"
    big = max(sizes)
    assert f"{big[0]}×{big[1]} grid (bilinear)" in panel.status.value
    assert panel.tables.matrices[first, last].shape == tables.matrices[first, last].shape

    # the map browser: no argument needed either
    browser = MapBrowser(maps, grid=8)
    browser.layer = last
    browser.map_index = 1
    browser.image = 2
    drawn = np.asarray(browser.plot.handles["source"].data["image"][0])[::-1]
    np.testing.assert_allclose(drawn, maps[last][2, 1].numpy())

    # exports: no collision, no raw identifier
    panel.export(tmp_path / "correlation", check=True)
    browser.export(tmp_path / "maps", check=True)
    for report in read_reports(tmp_path):
        assert report.ok, report.summary()
    assert {p.suffix for p in tmp_path.iterdir()} >= {".png", ".svg", ".pdf"}


def test_hand_written_resnet18_on_photographs_needs_no_argument(tmp_path):
    """The issue's case: ResNet-18 written by hand, four photographs at 224 x 224."""
    skimage_data = pytest.importorskip("skimage.data")
    from skimage.transform import resize

    photos = [skimage_data.astronaut(), skimage_data.chelsea(), skimage_data.coffee(),
              skimage_data.rocket()]  # fmt: skip
    x = torch.from_numpy(np.stack([resize(p, (224, 224)) for p in photos]).transpose(0, 3, 1, 2))
    x = ((x - x.mean()) / x.std()).float()
    torch.manual_seed(0)
    model = resnet18().eval()
    taps = cx.feature_layers(model, x[:1])
    assert taps == ["relu", "layer1", "layer2", "layer3", "layer4"]
    maps = cx.extract_activations(model, x, taps[1:], progress=False)
    panel = CorrelationPanel(maps)
    assert "4 sizes (56×56, 28×28, 14×14, 7×7)" in panel.status.value
    t = panel.tables
    for layer in taps[1:]:  # the flags are what they say: support counted by hand
        support = (maps[layer].numpy() != 0).sum(axis=(0, 2, 3))
        np.testing.assert_array_equal(t.support_a[layer], support)
        np.testing.assert_array_equal(t.degenerate_a[layer], t.zero_flags_a[layer] | (support < 5))
    la, ma, lb, mb = panel.pair
    assert support[ma] >= 5 and support[mb] >= 5  # layer4: never a degenerate map
    for cell in [("layer1", "layer4"), ("layer4", "layer1"), ("layer3", "layer3")]:
        chosen = panel.click_cell(*cell)
        assert not t.degenerate_a[chosen[0]][chosen[1]]
        assert not t.degenerate_b[chosen[2]][chosen[3]]
    browser = MapBrowser(maps)
    browser.layer = "layer4"
    browser.export(tmp_path / "maps", check=True)
    panel.export(tmp_path / "panel", check=True)
    assert all(r.ok for r in read_reports(tmp_path)), [r.summary() for r in read_reports(tmp_path)]


def test_panels_take_explicit_resample_and_region():
    rng = np.random.default_rng(0)
    maps = {"big": rng.random((2, 4, 16, 16)), "small": rng.random((2, 3, 8, 8))}
    mask = np.zeros((16, 16), bool)
    mask[2:10, 3:12] = True
    panel = CorrelationPanel(maps, resample="bicubic-up", mask=mask)
    assert panel.resample == "bicubic-up" and not panel.grid.auto
    assert "16×16 grid (bicubic)" in panel.status.value and "smallest" not in panel.status.value
    want = cx.correlation_tables(maps, resample="bicubic-up", mask=mask, progress=False)
    for key, mat in want.matrices.items():
        np.testing.assert_allclose(panel.tables.matrices[key], mat)
    panel.pair = ("big", 1, "small", 2)
    scatter = [p for p in panel._pair.plot.traverse(lambda p: p) if type(p).__name__ == "PointPlot"]
    assert len(scatter[0].handles["source"].data["a"]) == 2 * mask.sum()  # the region only
    with pytest.raises(ValueError, match=r"unknown common grid 'nearest'"):
        panel.resample = "nearest"
    assert "unknown common grid" in panel.status.value
    same = CorrelationPanel({"a": rng.random((1, 3, 8, 8))})  # one size: no grid, no control
    assert same.resample is None and same.grid.widget.layout.display == "none"
    assert same.status.value == ""
    with pytest.raises(ValueError, match=r"unknown resample policy 'sideways'"):
        CorrelationPanel(maps, resample="sideways")
    # the map browser on one grid: every layer shown at 16 x 16
    browser = MapBrowser(maps, resample="bilinear-up", grid=0)
    browser.layer = "small"
    drawn = np.asarray(browser.plot.handles["source"].data["image"][0])[::-1]
    np.testing.assert_allclose(drawn, _on_grid(maps["small"], (16, 16))[0, 0], atol=1e-6)


def test_studies_helpers_pass_resample_and_region():
    make, shape, taps = FAMILIES["resnet18"]
    torch.manual_seed(0)
    model = make().eval()
    x = torch.randn(4, *shape)
    layers = vc.selected_layers(model, x[:1])
    assert layers == cx.select_layers(taps)
    maps = vc.layer_maps(model, x)  # inferred taps from the first image
    assert list(maps) == layers
    with pytest.raises(ValueError, match="maps have different sizes"):
        vc.correlation_study(model, x)
    study = vc.correlation_study(model, x, names=("R", "R"), resample="bilinear-down")
    direct = cx.correlation_tables(maps, names=("R", "R"), resample="bilinear-down",
                                   progress=False)  # fmt: skip
    np.testing.assert_allclose(study.stats["percent"], direct.stats["percent"])
    summary = vc.layer_pair_summary(study)  # "relu", "layer1"...: numbered by position
    assert sorted(set(summary["module_a"])) == [1, 2, 3, 4]
    # per-image masks: image i gets mask i
    grid = min(tuple(m.shape[-2:]) for m in maps.values())
    masks = np.zeros((4, *grid), bool)
    for i in range(4):
        masks[i, i % grid[0] :, : grid[1] - i % grid[1]] = True
    per_image, _ = vc.aggregate_correlation(
        model, x, names=("R", "R"), resample="bilinear-down", mask=masks, progress=False
    )
    for i in range(4):
        one = vc.image_tables(maps, i, names=("R", "R"), resample="bilinear-down", mask=masks)
        own = cx.correlation_tables({k: v[i : i + 1] for k, v in maps.items()},
                                    resample="bilinear-down", mask=masks[i], progress=False)  # fmt: skip
        np.testing.assert_allclose(one.stats["percent"], own.stats["percent"])
        rows = per_image[per_image["image"] == i]
        np.testing.assert_allclose(rows["percent"], own.stats["percent"])


def test_layer_cka_on_layers_of_different_sizes():
    rng = np.random.default_rng(3)
    a, b = rng.random((3, 5, 12, 12)), rng.random((3, 4, 6, 6))
    with pytest.raises(ValueError, match="different sizes"):
        cx.layer_cka(a, b)
    got = cx.layer_cka(a, b, resample="bilinear-down")
    xa = _pooled(_on_grid(a, (6, 6))).T
    xb = _pooled(b).T
    xa, xb = xa - xa.mean(0), xb - xb.mean(0)
    ref = np.linalg.norm(xa.T @ xb) ** 2 / (np.linalg.norm(xa.T @ xa) * np.linalg.norm(xb.T @ xb))
    assert got == pytest.approx(ref, rel=1e-5)
    mask = np.ones((6, 6), bool)
    mask[:2] = False
    masked = cx.layer_cka(a, b, resample="bilinear-down", mask=mask)
    xa = _pooled(_on_grid(a, (6, 6))[:, :, 2:]).T
    xb = _pooled(b[:, :, 2:]).T
    xa, xb = xa - xa.mean(0), xb - xb.mean(0)
    ref = np.linalg.norm(xa.T @ xb) ** 2 / (np.linalg.norm(xa.T @ xa) * np.linalg.norm(xb.T @ xb))
    assert masked == pytest.approx(ref, rel=1e-5)
