"""Vessel study orchestration: data, cached training, Tables 4/5 and the correlation helpers,
checked against independent computations (numpy correlations, metric formulas by hand)."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest
import torch

from cnnexplore_nb import metrics
from cnnexplore_nb.models.fcn import FCN
from cnnexplore_nb.studies import vessel_correlation as vc
from cnnexplore_nb.studies import vessel_tables as svt
from cnnexplore_nb.studies import vessels as sv
from cnnexplore_nb.training import predict_masks

TINY = {
    "size": 16,
    "n_images": 5,
    "width": 4,
    "epochs": {"cnn1": 2, "cnn6": 1, "cnn10": 1},
    "n_aggregate": 3,
}


@pytest.fixture
def artifacts(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNX_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.delenv(sv.DATA_ENV, raising=False)
    return tmp_path / "artifacts"


# ------------------------------------------------------------------------------ settings
def test_settings_per_scale_and_overrides():
    full = sv.vessel_settings("full")
    assert full["batch_sizes"] == {"cnn1": 5, "cnn6": 3, "cnn10": 1}
    assert set(full["epochs"].values()) == {250} and full["lr"] == 0.01
    assert sv.vessel_settings("embedded")["width"] == 64
    s = sv.vessel_settings("smoke", {"size": 20})
    assert s["size"] == 20 and sv.VESSEL_SETTINGS["smoke"]["size"] != 20
    s["batch_sizes"]["cnn1"] = 99  # a deep copy: the table is untouched
    assert sv.VESSEL_SETTINGS["smoke"]["batch_sizes"]["cnn1"] == 5
    with pytest.raises(KeyError, match="unknown vessel setting 'epoch'"):
        sv.vessel_settings("smoke", {"epoch": 3})
    with pytest.raises(ValueError, match="scale"):
        sv.vessel_settings("medium")


# ---------------------------------------------------------------------------------- data
def test_synthetic_data_split_test_densities_and_normalisation():
    s = sv.vessel_settings("smoke", {"size": 24, "n_images": 10})
    d = sv.vessel_data(s)
    assert d["source"] == "synthetic"
    assert (len(d["train"]), len(d["val"]), len(d["test"])) == (8, 2, 3)
    assert sorted([*d["train_idx"], *d["val_idx"]]) == list(range(10))
    fractions = [float(d["test"][i][1].float().mean()) for i in range(3)]
    assert fractions[0] < fractions[1] < fractions[2]
    x = d["train"][0][0]
    assert x.shape == (1, 24, 24)
    assert abs(float(x.mean())) < 1e-5 and abs(float(x.std(unbiased=False)) - 1) < 1e-4
    assert d["test_display"].shape == (3, 24, 24) and d["test_display"].min() >= 0
    assert len(d["aggregate"]) == s["n_aggregate"]
    # the aggregate images are not training images
    train_x = torch.stack([d["train"][i][0] for i in range(8)])
    agg0 = d["aggregate"][0][0]
    assert not any(torch.equal(agg0, t) for t in train_x)
    again = sv.vessel_data(s)
    assert torch.equal(again["val"][1][0], d["val"][1][0])


def _write_folder(root, fractions, size=12):
    from skimage import io

    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i, f in enumerate(fractions):
        mask = np.zeros((size, size), np.uint8)
        mask.flat[: int(round(f * size * size))] = 255
        image = (rng.random((size, size)) * 200 + mask / 5).astype(np.uint8)
        io.imsave(root / "images" / f"im{i}.png", image, check_contrast=False)
        io.imsave(root / "masks" / f"im{i}.png", mask, check_contrast=False)


def test_folder_data_picks_low_median_high_density(tmp_path):
    fractions = [0.1, 0.5, 0.3, 0.2, 0.05, 0.4, 0.15, 0.25, 0.35, 0.45]
    _write_folder(tmp_path, fractions)
    s = sv.vessel_settings("full", {"n_aggregate": 2})
    d = sv.vessel_data(s, tmp_path)
    assert d["source"] == "folder" and (len(d["train"]), len(d["val"])) == (8, 2)
    # no test/ folder: the three test images come from the validation images
    val_f = sorted(fractions[i] for i in d["val_idx"])
    got = sorted(float(d["test"][i][1].float().mean()) for i in range(len(d["test"])))
    assert np.allclose(got, sorted({val_f[0], val_f[len(val_f) // 2], val_f[-1]}), atol=0.01)
    test_root = tmp_path / "test"
    _write_folder(test_root, [0.3, 0.1, 0.2, 0.5, 0.4])
    d = sv.vessel_data(s, tmp_path)
    got = [float(d["test"][i][1].float().mean()) for i in range(3)]
    assert np.allclose(sorted(got), [0.1, 0.3, 0.5], atol=0.01)
    assert d["test_display"].shape == (3, 12, 12) and len(d["aggregate"]) == 2


def test_real_data_scales_fetch_vessmap_or_read_a_folder(artifacts, tmp_path, monkeypatch):
    from cnnexplore_nb.data import FetchError

    monkeypatch.setenv("CNNX_OFFLINE", "1")
    monkeypatch.setenv("CNNX_DATA", str(tmp_path / "cache"))
    for scale in ("cpu", "full"):  # VessMAP from the cache: offline, a clear error
        with pytest.raises(FetchError, match="(?s)CNNX_OFFLINE=1.*VessMAP"):
            sv.vessel_data(sv.vessel_settings(scale))
    with pytest.raises(FileNotFoundError, match="not a folder"):
        sv.vessel_data(sv.vessel_settings("full"), tmp_path / "missing")
    with pytest.raises(FetchError):
        sv.trained_vessel_model("cnn1", "full", progress=False)


# ------------------------------------------------------------------------------ training
def test_signature_used_by_other_notebooks():
    params = inspect.signature(sv.trained_vessel_model).parameters
    assert list(params) == ["name", "scale", "settings", "retrain", "data_dir", "progress"]
    assert all(params[k].kind is inspect.Parameter.KEYWORD_ONLY for k in list(params)[2:])


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_training_is_cached_resumed_and_retrained(artifacts, monkeypatch):
    model, hist = sv.trained_vessel_model("cnn1", "smoke", settings=TINY, progress=False)
    folder = artifacts / "vessels" / "smoke" / "cnn1"
    assert {"best.pt", "last.pt", "history.csv", "meta.json"} <= {p.name for p in folder.iterdir()}
    assert len(hist) == 2 and not model.training
    assert model.best_epoch == int(hist.loc[hist["val_iou"].idxmax(), "epoch"])
    first = _weights(model)

    def no_training(*a, **k):
        raise AssertionError("a cached run must not train again")

    monkeypatch.setattr(sv, "train_segmentation", no_training)
    cached, hist2 = sv.trained_vessel_model("cnn1", "smoke", settings=TINY, progress=False)
    assert all(torch.equal(first[k], v) for k, v in cached.state_dict().items())
    pd.testing.assert_frame_equal(hist.reset_index(drop=True), hist2, check_dtype=False)
    assert cached.best_epoch == model.best_epoch
    monkeypatch.undo()
    monkeypatch.setenv("CNNX_ARTIFACTS", str(artifacts))

    again, _ = sv.trained_vessel_model("cnn1", "smoke", settings=TINY, retrain=True, progress=False)
    assert all(torch.equal(first[k], v) for k, v in again.state_dict().items())  # seeded

    with pytest.warns(UserWarning, match="other settings"):
        _, h3 = sv.trained_vessel_model(
            "cnn1", "smoke", settings={**TINY, "lr": 0.005}, progress=False
        )
    assert len(h3) == 2


def test_interrupted_run_resumes_to_the_same_result(artifacts, tmp_path, monkeypatch):
    one = {**TINY, "epochs": {**TINY["epochs"], "cnn1": 1}}
    sv.trained_vessel_model("cnn1", "smoke", settings=one, progress=False)
    resumed, h_res = sv.trained_vessel_model("cnn1", "smoke", settings=TINY, progress=False)
    assert list(h_res["epoch"]) == [1, 2]
    monkeypatch.setenv("CNNX_ARTIFACTS", str(tmp_path / "other"))
    straight, h_str = sv.trained_vessel_model("cnn1", "smoke", settings=TINY, progress=False)
    assert all(torch.equal(v, straight.state_dict()[k]) for k, v in resumed.state_dict().items())
    assert np.allclose(h_res["val_iou"], h_str["val_iou"])


def test_models_start_from_different_weights():
    s = sv.vessel_settings("smoke")
    a, b = sv._build("cnn6", s, 1), sv._build("cnn10", s, 1)
    assert not torch.equal(a.conv_module1.conv.weight, b.conv_module1.conv.weight)
    assert torch.equal(a.conv_module1.conv.weight, sv._build("cnn6", s, 1).conv_module1.conv.weight)


def _fcn_params(n, w):
    first = 9 * w + w + 2 * w  # conv (1 input channel) + bias + BN weight/bias
    return first + (n - 1) * (9 * w * w + w + 2 * w) + (9 * w * 2 + 2)


def test_tables_4_and_5_against_hand_computation(artifacts):
    s = sv.vessel_settings("smoke", TINY)
    res = {n: sv.trained_vessel_model(n, "smoke", settings=TINY, progress=False) for n in sv.MODELS}
    t4 = svt.training_table(res, s)
    assert list(t4["model"]) == ["CNN1", "CNN6", "CNN10"]
    assert list(t4["modules"]) == [1, 6, 10] and list(t4["layers"]) == [2, 7, 11]
    assert list(t4["batch"]) == [5, 3, 1]
    assert list(t4["parameters"]) == [_fcn_params(n, 4) for n in (1, 6, 10)]
    hist = res["cnn1"][1]
    assert t4.loc[0, "IoU"] == pytest.approx(hist["val_iou"].max())
    assert t4.loc[0, "training_s"] == pytest.approx(hist["seconds"].sum())

    data = sv.vessel_data(s)
    t5 = svt.per_image_table({n: m for n, (m, _) in res.items()}, data)
    assert len(t5) == 9 and set(t5["model"]) == {"CNN1", "CNN6", "CNN10"}
    x, masks = sv.stack_images(data["test"])
    pred = predict_masks(res["cnn1"][0], x)
    for i in range(3):
        t, p = masks[i].astype(bool), pred[i].astype(bool)
        tp, fp, fn = (t & p).sum(), (~t & p).sum(), (t & ~p).sum()
        row = t5[(t5["model"] == "CNN1") & (t5["image"] == i)].iloc[0]
        ref = tp / (tp + fp + fn) if tp + fp + fn else 1.0
        assert row["IoU"] == pytest.approx(ref)
        assert row["clDice"] == pytest.approx(metrics.cldice(masks[i], pred[i]))
        assert row["vessel_fraction"] == pytest.approx(t.mean())


# ------------------------------------------------------------------------- correlation
@pytest.fixture
def tiny_net():
    torch.manual_seed(0)
    model = FCN(4, width=5).eval()
    x = torch.randn(3, 1, 10, 10)
    return model, x


def _maps_by_hand(model, x):
    out, h = {}, x
    with torch.no_grad():
        for i, m in enumerate(model.conv_modules, start=1):
            h = m(h)
            out[f"conv_module{i}"] = h.clone()
    return out


def _max_abs_r(a, b, same):
    """Max |r| of each map of a (C_a, P) over the maps of b (C_b, P), by np.corrcoef;
    constant maps have no correlation (NaN) and are skipped."""
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.abs(np.corrcoef(np.concatenate([a, b]))[: len(a), len(a) :])
    if same:
        np.fill_diagonal(r, np.nan)
    ok = np.isfinite(r)
    return np.where(ok.any(axis=1), np.where(ok, r, -1.0).max(axis=1), np.nan)


def test_layer_pair_summary_matches_numpy(tiny_net):
    model, x = tiny_net
    assert vc.selected_layers(model) == ["conv_module1", "conv_module2", "conv_module4"]
    tables = vc.correlation_study(model, x[0], names=("N", "N"), threshold=0.5)
    summ = vc.layer_pair_summary(tables)
    assert len(summ) == 9 and list(summ.columns[:2]) == ["A_layer", "B_layer"]
    maps = _maps_by_hand(model, x[:1])
    for _, row in summ.iterrows():
        la, lb = str(row["A_layer"]), str(row["B_layer"])
        a = maps[la][0].reshape(5, -1).double().numpy()
        b = maps[lb][0].reshape(5, -1).double().numpy()
        best = _max_abs_r(a, b, la == lb)
        assert row["mean_max"] == pytest.approx(np.nanmean(best), abs=1e-6)
        assert row["percent"] == pytest.approx(100 * (best >= 0.5).sum() / 5)
        assert (row["module_a"], row["module_b"]) == (int(la[-1]), int(lb[-1]))


def test_cross_network_study_and_aggregation(tiny_net):
    model, x = tiny_net
    torch.manual_seed(1)
    other = FCN(2, width=3).eval()
    per_image, summ = vc.aggregate_correlation(
        model, x, other, names=("A", "B"), threshold=0.6, progress=False
    )
    assert list(summ.columns[:2]) == ["A_layer", "B_layer"]
    assert len(per_image) == 3 * 3 * 2 and (summ["n_images"] == 3).all()
    maps_a, maps_b = _maps_by_hand(model, x), _maps_by_hand(other, x)
    row = summ[(summ["module_a"] == 4) & (summ["module_b"] == 2)].iloc[0]
    vals = []
    for i in range(3):
        a = maps_a["conv_module4"][i].reshape(5, -1).double().numpy()
        b = maps_b["conv_module2"][i].reshape(3, -1).double().numpy()
        vals.append(np.nanmean(_max_abs_r(a, b, False)))
    assert row["mean_max_mean"] == pytest.approx(np.mean(vals), abs=1e-6)
    assert row["mean_max_std"] == pytest.approx(np.std(vals, ddof=1), abs=1e-6)
    # chunked extraction (eval-mode BatchNorm) gives the per-image results of chunk=1
    _, by_one = vc.aggregate_correlation(
        model, x, other, names=("A", "B"), threshold=0.6, chunk=1, progress=False
    )
    pd.testing.assert_frame_equal(by_one, summ)
    maps_a, maps_b = vc.layer_maps(model, x), vc.layer_maps(other, x)
    single = vc.correlation_study(model, x[2], other, names=("A", "B"), threshold=0.6)
    from_maps = vc.image_tables(maps_a, 2, maps_b, names=("A", "B"), threshold=0.6)
    pd.testing.assert_frame_equal(single.maxima, from_maps.maxima)
    with pytest.raises(ValueError, match="number of images must be an integer >= 2"):
        vc.aggregate_correlation(model, x[:1], progress=False)


def test_profiles_on_hand_made_summaries():
    summ = pd.DataFrame(
        {
            "module_a": [1, 1, 2, 2, 4, 4, 1, 4],
            "module_b": [1, 2, 2, 1, 4, 1, 4, 2],
            "percent": [50.0, 1, 10.0, 2, 70.0, 3, 4, 5],
        }
    )
    prof = vc.redundancy_profile(summ)
    assert list(prof["module"]) == [1, 2, 4] and list(prof["value"]) == [50, 10, 70]
    assert list(prof["position"]) == ["first", "middle", "last"]
    verdict = vc.redundancy_verdict(summ)
    assert verdict == {
        "first": 50.0, "middle": 10.0, "last": 70.0, "first_above_middle": True,
        "last_above_middle": True, "last_highest": True,
    }  # fmt: skip
    one = vc.redundancy_verdict(summ[(summ["module_a"] == 2) & (summ["module_b"] == 2)])
    assert one["first"] == one["last"] == 10.0 and one["first_above_middle"] is None
    cross = vc.cross_network_profile(summ, "percent")
    assert cross == {
        "first": 50.0,
        "last": 70.0,
        "others": pytest.approx(np.mean([1, 10, 2, 3, 4, 5])),
    }
    with pytest.raises(KeyError, match="'mean_max' is not a column"):
        vc.redundancy_profile(summ, "mean_max")
    with pytest.raises(ValueError, match="module number"):
        vc.module_number("classifier")


def test_map_blocks_and_random_maps(tiny_net):
    r = np.full((6, 6), 0.1)
    for block in ([0, 2, 5], [1, 4]):
        r[np.ix_(block, block)] = -0.95
    r[3, 3] = 1.0
    labels, order = vc.map_blocks(r, 0.8)
    assert labels[0] == labels[2] == labels[5] and labels[1] == labels[4]
    assert len(set(labels)) == 3
    assert list(order) == [0, 2, 5, 1, 4, 3]
    with pytest.raises(ValueError, match="square"):
        vc.map_blocks(np.zeros((2, 3)))

    model, x = tiny_net
    tables = vc.correlation_study(model, x[0], names=("N", "N"), threshold=0.3)
    ids, similar = vc.random_maps(tables, "conv_module2", n=4, rng=3)
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert (ids, similar) == vc.random_maps(tables, "conv_module2", n=4, rng=3)
    m = _maps_by_hand(model, x[:1])["conv_module2"][0].reshape(5, -1).double().numpy()
    best = _max_abs_r(m, m, True)
    assert similar == [i for i in ids if best[i] >= 0.3]
    with pytest.raises(KeyError, match="conv_module3"):
        vc.random_maps(tables, "conv_module3")


# ---------------------------------------------------------------------------------- plot
def test_layer_map_rows_draws_the_given_maps():
    pytest.importorskip("holoviews")
    from cnnexplore_nb.plots.vessels import layer_map_rows

    rng = np.random.default_rng(0)
    a, b = rng.random((6, 5, 5)), rng.random((4, 5, 5))
    fig = layer_map_rows({"L1": (a, [5, 0], [0]), "L2": (b, [1, 2, 3], [])})
    panels = list(fig)
    assert len(panels) == 5
    assert [p.opts.get("plot", "matplotlib").kwargs.get("title") for p in panels][:2] == [
        "L1 #5",
        "L1 #0",
    ]
    np.testing.assert_allclose(panels[0].dimension_values(2, flat=False), a[5][::-1], atol=0)
    with pytest.raises(IndexError, match="out of range"):
        layer_map_rows({"L1": (a, [6], [])})
    with pytest.raises(ValueError, match="at least one layer"):
        layer_map_rows({})


def test_layer_values_and_block_summary(tiny_net):
    model, x = tiny_net
    tables = vc.correlation_study(model, x[0], names=("N", "N"), threshold=0.3)
    m = _maps_by_hand(model, x[:1])["conv_module4"][0].reshape(5, -1).double().numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.abs(np.corrcoef(m))
    pairs = vc.layer_values(tables, "conv_module4")
    np.testing.assert_allclose(pairs, r[np.triu_indices(5, 1)], atol=1e-6)
    np.testing.assert_allclose(vc.layer_values(tables, "conv_module4", "max"),
                               _max_abs_r(m, m, True), atol=1e-6)  # fmt: skip
    with pytest.raises(ValueError, match="kind"):
        vc.layer_values(tables, "conv_module4", "min")

    blocks = vc.block_summary(tables)
    assert list(blocks["module"]) == [1, 2, 4] and (blocks["n_maps"] == 5).all()
    for _, row in blocks.iterrows():
        mat = tables.matrices[row["layer"], row["layer"]]
        labels, _ = vc.map_blocks(mat, 0.3)
        sizes = np.bincount(labels)
        assert row["largest"] == sizes.max() and row["blocks"] == (sizes >= 2).sum()
    # a hand-made layer: maps 0-2 copies (one block of 3), maps 3, 4 independent
    rng = np.random.default_rng(0)
    base = rng.normal(size=(3, 64))
    maps = np.stack([base[0], 2 * base[0] + 1, -base[0], base[1], base[2]]).reshape(1, 5, 8, 8)
    from cnnexplore_nb.similarity import correlation_tables

    t = correlation_tables({"conv_module1": maps}, names=("H", "H"), progress=False)
    row = vc.block_summary(t, 0.99).iloc[0]
    assert (row["blocks"], row["largest"], row["in_blocks"]) == (1, 3, 60.0)


def test_cpu_scale_reads_vessmap_splits_and_trains_on_crops(tmp_path, monkeypatch):
    import importlib

    from _fetch_helpers import make_vessmap, pin_vessmap

    monkeypatch.setenv("CNNX_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.setenv("CNNX_OFFLINE", "1")
    ids = importlib.import_module("cnnexplore_nb.data._sources").VESSMAP_IDS
    truth = make_vessmap(tmp_path / "VessMAP", ids, size=24)
    pin_vessmap(monkeypatch, tmp_path / "VessMAP")
    s = sv.vessel_settings("cpu", {"crop": 16, "width": 4, "n_aggregate": 5})
    data = sv.vessel_data(s, tmp_path)
    assert data["source"] == "vessmap" and s["repeats"] == 2
    assert (len(data["train"]), len(data["val"]), len(data["aggregate"])) == (80, 10, 5)
    assert len(data["test_all"]) == 50 and list(data["train_idx"]) == list(range(40))
    image, mask, roi = data["train"][0]
    assert image.shape == (1, 16, 16) and mask.shape == roi.shape == (16, 16)  # random crop
    full = data["val"][0]
    assert full[0].shape == (1, 24, 24) and full[2].dtype == torch.bool
    fractions = [float(np.asarray(data["test"][i][1]).mean()) for i in range(3)]
    pool = [float((truth[i]["label"] > 0).mean()) for i in ids["test"]]
    assert fractions[0] == pytest.approx(min(pool)) and fractions[-1] == pytest.approx(max(pool))
    model, hist = sv.trained_vessel_model(
        "cnn1", "cpu", settings={"crop": 16, "width": 4, "epochs": {"cnn1": 1, "cnn6": 1,
                                 "cnn10": 1}}, data_dir=tmp_path, progress=False,
    )  # fmt: skip
    assert len(hist) == 1 and np.isfinite(hist["val_iou"]).all()
    with pytest.raises(ValueError, match="is VessMAP; use SCALE='cpu' or 'full'"):
        sv.vessel_data(sv.vessel_settings("embedded"), tmp_path)


def test_training_crops_are_windows_of_the_image_in_one_of_8_orientations():
    image = torch.arange(36.0).reshape(1, 6, 6)
    mask = (image[0] % 2).long()
    roi = image[0] > 3
    torch.manual_seed(0)
    crop = sv._random_crop(4, dihedral=True)
    # the 8 dihedral images of every 4 x 4 window of the image: an independent enumeration
    windows = [image[0, t : t + 4, u : u + 4].numpy() for t in range(3) for u in range(3)]
    variants = [np.rot90(w, k) for w in windows for k in range(4)]
    variants += [np.rot90(w[:, ::-1], k) for w in windows for k in range(4)]
    seen = set()
    for _ in range(200):
        x, m, r = crop(image, mask, roi)
        assert x.shape == (1, 4, 4) and m.shape == r.shape == (4, 4) and x.is_contiguous()
        hit = [i for i, v in enumerate(variants) if np.array_equal(v, x[0].numpy())]
        assert len(hit) == 1  # a window, flipped/rotated as a whole
        assert np.array_equal(m.numpy(), x[0].numpy().astype(int) % 2)  # the same transform
        assert np.array_equal(r.numpy(), x[0].numpy() > 3)
        seen.add(hit[0] // 9 % 4 + 4 * (hit[0] >= 36))  # which of the 8 orientations
    assert seen == set(range(8))
    whole = sv._random_crop(None, dihedral=False)(image, mask)
    assert torch.equal(whole[0], image) and torch.equal(whole[1], mask)


def test_repeated_dataset_cycles_its_items():
    base = [(torch.tensor([i]),) for i in range(3)]
    rep = sv._Repeated(base, 2)
    assert len(rep) == 6 and [int(rep[i][0]) for i in range(6)] == [0, 1, 2, 0, 1, 2]


def test_cpu_recipe_in_the_scales_table():
    table = sv.scales_table()
    assert table.loc["loss", "cpu"] == "cross-entropy + soft Dice"
    assert table.loc["loss", "full"] == "cross-entropy"  # the thesis protocol
    assert table.loc["lr schedule", "cpu"] == "cosine, 1 warm-up epoch(s)"
    assert "8 dihedral" in table.loc["training inputs", "cpu"]


# ---------------------------------------------------------- the thesis's numbers, verdicts
def test_number_verdicts():
    from cnnexplore_nb.studies.vessel_thesis import number_verdict

    assert number_verdict(0.90, 0.91, 0.03) == "matches"
    assert number_verdict(0.77, 0.91, 0.03) == "below"
    assert number_verdict(0.95, 0.91, 0.03) == "above"
    assert number_verdict(float("nan"), 0.91, 0.03) == "undecided"


def test_table4_section_sets_test_means_beside_the_thesis():
    from cnnexplore_nb.studies.vessel_thesis import COLUMNS, table4_section

    scores = pd.DataFrame({
        "model": ["CNN1"] * 2 + ["CNN6"] * 2,
        "iou": [0.70, 0.80, 0.90, 0.94], "cldice": [0.8, 0.9, 0.96, 0.98],
    })  # fmt: skip
    t4 = pd.DataFrame({
        "model": ["CNN1", "CNN6"], "IoU": [0.7, 0.9], "clDice": [0.8, 0.9],
        "best_epoch": [3, 5], "epochs": [4, 5], "parameters": [1922, 187202],
    })  # fmt: skip
    out = table4_section(scores, t4).set_index(["network", "quantity"])
    assert list(out.reset_index().columns) == ["network", "quantity"] + [
        c for c in COLUMNS if c not in ("network", "quantity")
    ]
    assert out.loc[("CNN1", "IoU (test)"), "measured"] == pytest.approx(0.75)
    assert out.loc[("CNN1", "IoU (test)"), "verdict"] == "below"  # thesis 0.81
    assert out.loc[("CNN6", "IoU (test)"), "verdict"] == "matches"  # 0.92 vs 0.91
    assert out.loc[("CNN6", "clDice (test)"), "measured"] == pytest.approx(0.97)
    assert out.loc[("CNN6", "parameters"), "verdict"] == "below"  # 0.19M vs 1.01M
    assert "epoch 5 of 5" in out.loc[("CNN6", "IoU (test)"), "evidence"]


def test_redundancy_between_and_pruning_sections_compute_their_verdicts(tmp_path, monkeypatch):
    from cnnexplore_nb.studies import vessel_thesis as vt

    monkeypatch.setenv("CNNX_ARTIFACTS", str(tmp_path))
    prof = pd.DataFrame({
        "model": ["CNN6"] * 4, "module": [1, 2, 4, 6],
        "position": ["first", "middle", "middle", "last"],
        "value": [60.0, 40.0, 70.0, 90.0], "std": [5.0] * 4,
    })  # fmt: skip
    red = vt.redundancy_section(prof, {"percent": 52.0, "mean": 0.9, "n_images": 3})
    claims = red.set_index("quantity")["verdict"]
    assert claims["deeper layers are more redundant"] == "reproduced"
    assert claims["first layer fairly redundant, middle layers the most varied"] == "reproduced"
    assert red["verdict"].iloc[-1] == "matches"  # 52.0 vs 48.43, within 10 points
    flat = prof.assign(value=[90.0, 40.0, 70.0, 60.0])
    claims = vt.redundancy_section(flat).set_index("quantity")["verdict"]
    assert claims["deeper layers are more redundant"] == "not reproduced"
    cross = pd.DataFrame({
        "pair": ["CNN6 vs CNN1", "CNN6 untrained vs CNN10"], "first-first max|r|": [0.9, 0.9],
        "last-last max|r|": [0.5, 0.2], "other pairs max|r|": [0.6, 0.5],
        "control": [False, True],
    })  # fmt: skip
    btw = vt.between_section(cross)
    assert list(btw["verdict"]) == ["reproduced", "not reproduced"] and len(btw) == 2
    pr = vt.pruning_section(
        {"before": {"iou": 0.8, "cldice": 0.9}, "pruned": {"iou": 0.7, "cldice": 0.8},
         "fine-tuned": {"iou": 0.79, "cldice": 0.9}},
        {"before": 1000, "pruned": 500}, 1.6, threshold=0.8, removed=10, total=64,
    )  # fmt: skip
    assert list(pr["verdict"])[:3] == ["no thesis number", "IoU lost", "IoU kept"]
    assert pr["measured"].iloc[3] == "1,000 → 500" and pr["measured"].iloc[4] == 1.6
    vt.save_section(btw, "smoke", "between")
    vt.save_section(red, "smoke", "redundancy")
    report = vt.thesis_report("smoke")
    assert list(report["section"].unique()) == ["Redundancy within a network", "Between networks"]
    assert report.attrs["missing"] == ["table4", "table5", "pruning"]
    with pytest.raises(ValueError, match="unknown section 'tabel4'"):
        vt.save_section(btw, "smoke", "tabel4")
