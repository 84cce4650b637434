"""The L2T-www study: settings, data of one run, the sweep run function, frames, verdict."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from cnnexplore_nb.experiments import config_key, expand_grid, run_sweep
from cnnexplore_nb.models import create_model
from cnnexplore_nb.studies import transfer as st
from cnnexplore_nb.studies import transfer_analysis as sta


@pytest.fixture
def smoke():
    return st.transfer_settings("smoke")


def test_settings_per_scale_and_overrides(smoke):
    full = st.transfer_settings("full")
    assert full["seeds"] == tuple(range(30)) and full["epochs"] == 200
    assert full["n_values"]["stl10"] == (5, 10, 30, 50, 100)
    assert full["n_values"]["cifar10"] == (10, 30, 50, 100, 150)
    assert full["n_values"]["cifar100"] == (5, 10, 20, 30, 50)
    assert (full["imbalanced"]["n"], full["imbalanced"]["n_small"]) == (100, 10)
    changed = st.transfer_settings("smoke", {"epochs": 3})
    assert changed["epochs"] == 3 and smoke["epochs"] == 1
    assert st.TRANSFER_SETTINGS["smoke"]["epochs"] == 1  # the table is not mutated
    with pytest.raises(KeyError, match="unknown transfer setting 'epoch'"):
        st.transfer_settings("smoke", {"epoch": 3})
    with pytest.raises(ValueError, match="scale"):
        st.transfer_settings("huge")


def test_target_data_draws_n_per_class_of_the_target_digits(smoke):
    data = st.target_data(smoke, "digits", 5, seed=1)
    assert data["train"].class_counts().tolist() == [5] * 5
    assert data["val"].class_counts().tolist() == [smoke["val_per_class"]] * 5
    assert data["train"].transform is not None and data["val"].transform is None
    # digits 5-9 relabelled 0-4: the test images are exactly sklearn's digits 5-9 of the split
    full_test = st.dataset_split("digits", "test")
    want = np.isin(full_test.labels.numpy(), [5, 6, 7, 8, 9]).sum()
    assert len(data["test"]) == want and set(data["test"].labels.tolist()) == set(range(5))
    # train / val disjoint, seeded
    tr = {bytes(x.numpy()) for x in data["train"].images}
    va = {bytes(x.numpy()) for x in data["val"].images}
    assert not tr & va
    again = st.target_data(smoke, "digits", 5, seed=1)
    assert torch.equal(again["train"].images, data["train"].images)
    other = st.target_data(smoke, "digits", 5, seed=2)
    assert not torch.equal(other["train"].images, data["train"].images)


def test_imbalanced_data_tests_only_the_small_class(smoke):
    imb = {"small_class": 2, "n_small": 1}
    data = st.target_data(smoke, "digits", 4, seed=0, imbalanced=imb)
    assert data["train"].class_counts().tolist() == [4, 4, 1, 4, 4]
    assert set(data["test"].labels.tolist()) == {2}
    with pytest.raises(ValueError, match="samples"):
        st.target_data(smoke, "digits", 1000, seed=0)


def test_grids_and_shared_keys(smoke):
    grid, fixed = st.experiment_grid(smoke, "limited")
    assert grid["method"] == ["scratch", "ufm", "ufm_hint", "l2t_ww", "l2t_ww_frozen", "l2t_www"]
    assert grid["n"] == [5, 10] and grid["seed"] == [0]
    json.dumps(fixed)  # every fixed setting is part of a JSON key
    igrid, ifixed = st.experiment_grid(smoke, "imbalanced")
    assert ifixed["n_small"] == 1 and igrid["method"] == ["scratch", "l2t_ww", "l2t_www"]
    agrid, afixed = st.experiment_grid(smoke, "ablation")
    # smoke: the ablation runs are configurations of the limited-data sweep (reused runs)
    limited = {config_key(c) for c in expand_grid(grid, fixed)}
    ablation = {config_key(c) for c in expand_grid(agrid, afixed)}
    assert ablation <= limited
    # "which": the pooled-vector h on the ablation's cell, a key of its own
    wgrid, wfixed = st.experiment_grid(smoke, "which")
    assert wgrid["method"] == ["l2t_www"] and wgrid["which_input"] == ["maps", "pooled"]
    assert fixed["which_input"] == "maps"  # the sweep's L2T-www reads the maps
    which = [config_key(c) for c in expand_grid(wgrid, wfixed)]
    assert which[0] in limited and which[1] not in limited  # the maps run is shared
    with pytest.raises(ValueError, match="experiment"):
        st.experiment_grid(smoke, "bogus")
    cpu = st.transfer_settings("cpu")
    with pytest.raises(ValueError, match="run no imbalanced experiment"):
        st.experiment_grid(cpu, "imbalanced")


def test_the_cpu_scale_is_the_documents_protocol():
    cpu = st.transfer_settings("cpu")
    assert cpu["target_width"] == 1.0 and cpu["epochs"] == 200 and cpu["batch_size"] == 128
    assert 10 in cpu["n_values"]["cifar10"] and cpu["datasets"] == ("cifar10",)
    assert cpu["methods"] == ("scratch", "ufm", "ufm_hint", "l2t_ww", "l2t_ww_frozen", "l2t_www")
    assert cpu["source"]["reference"] is True and cpu["meta_lr"] == 1e-4
    assert (cpu["pad"], cpu["flip"], cpu["which_input"]) == (4, True, "maps")
    assert cpu["validation"] == "fixed" and cpu["val_per_class"] == 50  # the official splits'
    assert cpu["seeds"] == (0,)  # one seed of the six arms + the pooled h fills the 2 hours
    run = st.arm_method("l2t_ww_frozen")
    assert run == ("l2t_ww", {"meta_lr": 0.0})
    settings = st._run_settings({**st.fixed_settings(cpu), "method": "l2t_ww_frozen"})
    assert settings["meta_lr"] == 0.0 and settings["which_input"] == "maps"
    assert st._run_settings({**st.fixed_settings(cpu), "method": "l2t_ww"})["meta_lr"] == 1e-4


def test_the_sweep_starts_the_longest_runs_first():
    configs = [{"method": m, "n": n, "epochs": 10} for n in (10, 30) for m in st.METHODS]
    order = sorted(configs, key=lambda c: -st.run_cost(c))
    assert [c["method"] for c in order[:2]] == ["l2t_www", "l2t_ww"]
    assert {c["n"] for c in order[:2]} == {30}


@pytest.fixture(scope="module")
def source_path(tmp_path_factory):
    # a tiny random source in the format source_network caches (no training needed)
    model = create_model("resnet32", width=0.25, num_classes=5)
    path = tmp_path_factory.mktemp("src") / "source.pt"
    torch.save({"state_dict": model.state_dict(), "num_classes": 5, "width": 0.25}, path)
    return path


def test_run_function_is_picklable_and_reproducible(smoke, source_path, tmp_path):
    run = st.sweep_run(source_path)
    run2 = pickle.loads(pickle.dumps(run))
    grid, fixed = st.experiment_grid(smoke, "ablation")
    fixed = {**fixed, "target_width": 0.0625}
    cfg = {**expand_grid(grid, fixed)[2], "n": 2}  # l2t_www
    a, b = run(cfg), run2(cfg)
    assert a["test_acc"] == b["test_acc"] and a["snapshots"] == b["snapshots"]
    json.dumps(a)
    assert 0.0 <= a["test_acc"] <= 1.0 and a["n_train"] == 10 and len(a["pairs"]) == 15
    # epoch 0 snapshot: gamma = 1 and w = 1/C exactly (zero-initialised f and h); lambda is
    # ReLU6 of a linear map with bias 1 and random weights: within [0, 6]
    g = sta.gamma_frame(a)
    first = g[g["epoch"] == 0]["gamma"].to_numpy()
    np.testing.assert_allclose(first, 1.0, atol=1e-6)
    assert g["epoch"].max() == fixed["epochs"] and len(first) == 9 * 5 * (4 + 8 + 16)
    lam, w = sta.lambda_w_frame(a)
    lam0 = lam.drop(columns="epoch").iloc[0].to_numpy(float)
    assert lam0.shape == (15,) and ((lam0 >= 0) & (lam0 <= 6)).all()
    w0 = w[w["epoch"] == 0]
    sizes = w0.groupby("pair")["channel"].count()
    np.testing.assert_allclose(w0["w"].to_numpy(), 1.0 / w0["pair"].map(sizes).to_numpy())
    assert sta.gamma_array(a, "14-4").shape == (16, 3, 3)  # 64 * 0.25 channels at tap 14
    assert sta.gamma_array(a, "4-0", epoch=0).shape == (4, 3, 3)


def test_same_seed_gives_the_same_initial_target_weights(smoke, source_path, tmp_path):
    grid, fixed = st.experiment_grid(smoke, "ablation")
    fixed = {**fixed, "target_width": 0.125}  # 8 maps: w[0][4] exists
    df = run_sweep({**grid, "n": [2]}, st.sweep_run(source_path), tmp_path / "store",
                   fixed=fixed, executor="inline", progress=False)  # fmt: skip
    assert (df["status"] == "ok").all(), df["error"].tolist()
    recs = {row["method"]: {"snapshots": row["snapshots"]} for _, row in df.iterrows()}
    traj = sta.weight_trajectories(recs)
    start = traj[traj["epoch"] == 0].pivot(index="weight", columns="method", values="value")
    assert start.shape == (len(fixed["weights"]), 3)
    for w in start.index:  # same seed -> same initialisation for all three methods
        assert start.loc[w].nunique() == 1
    # a rerun reuses the stored runs (no new run)
    again = run_sweep({**grid, "n": [2]}, st.sweep_run(source_path), tmp_path / "store",
                      fixed=fixed, executor="inline", progress=False)  # fmt: skip
    assert again["started"].tolist() == df["started"].tolist()


def test_pairs_table_shapes():
    src = create_model("resnet32", width=0.25, num_classes=5)
    tgt = create_model("vgg9_bn", width=0.125, num_classes=5)
    table = sta.pairs_table(src, tgt, torch.zeros(2, 3, 32, 32))
    assert len(table) == 15 and table["pair"].iloc[0] == "4-0"
    row = table.set_index("pair").loc["14-0"]
    assert row["source_shape"] == (16, 8, 8) and row["target_shape"] == (8, 32, 32)
    assert row["gamma_shape"] == (16, 32, 32) and row["regressor"] == "1x1 conv 8 -> 16"
    assert table.set_index("pair").loc["9-4", "target_shape"] == (64, 2, 2)


def test_pairs_and_meta_init_tables_for_display():
    from cnnexplore_nb.studies.transfer_report import meta_init_display, pairs_display
    from cnnexplore_nb.transfer import build_step

    src = create_model("resnet32", width=0.25, num_classes=5)
    tgt = create_model("vgg9_bn", width=0.125, num_classes=5)
    x = torch.randn(2, 3, 32, 32)
    table = sta.pairs_table(src, tgt, x)
    shown = pairs_display(table, src, tgt).set_index("pair")
    row = shown.loc["14 → 0"]
    assert row["source → target"] == "source stage 3 block 5 → target conv 1"
    assert row["source layer"] == "stage 3 block 5" and row["target layer"] == "conv 1"
    assert row["source maps (C × H × W)"] == "16 × 8 × 8"
    assert row["target maps (C × H × W)"] == "8 × 32 × 32"
    assert row["regressor"] == "1×1 conv 8 → 16" and row["γ (C_s × H_t × W_t)"] == "16 × 32 × 32"
    init = sta.meta_init_table(build_step("l2t_www", src, tgt, example=x), x, table["pair"])
    shown = meta_init_display(init)
    assert shown["pair"].iloc[0] == "4 → 0" and shown["f (what)"].iloc[0] == "4 × 4"
    assert (shown["max |γ − 1|"] == init["max |γ − 1|"].round(3)).all()
    assert str(shown["λ (mean)"].iloc[0]) == str(round(float(init["λ (mean)"].iloc[0]), 3))


def _runs(values: dict) -> pd.DataFrame:
    rows = [
        {"dataset": "digits", "n": n, "method": m, "seed": s, "test_acc": v, "status": "ok"}
        for (n, m), accs in values.items()
        for s, v in enumerate(accs)
    ]
    return pd.DataFrame(rows)


def test_verdict_and_published_comparison():
    df = _runs(
        {
            (5, "scratch"): [0.2, 0.3, 0.4],
            (5, "ufm"): [0.25, 0.25, 0.25],
            (5, "l2t_ww"): [0.5, 0.5, 0.5],
            (5, "l2t_www"): [0.6, 0.7, 0.8],
            (10, "scratch"): [0.9, 0.9, 0.9],
            (10, "l2t_www"): [0.5, 0.5, 0.5],
        }
    )
    v = sta.verdict(df).set_index("n")
    assert v.loc[5, "order"] == "l2t_www > l2t_ww > scratch > ufm"
    assert v.loc[5, "www_minus_ww"] == pytest.approx(20.0)
    assert v.loc[10, "www_minus_scratch"] == pytest.approx(-40.0)
    assert np.isnan(v.loc[10, "www_minus_ww"])
    comp = sta.published_comparison(df)
    # N = 5 exists in STL-10 and CIFAR-100, N = 10 in all three published datasets
    assert set(comp["published_dataset"]) == {"stl10", "cifar10", "cifar100"}
    cell = comp[(comp["published_dataset"] == "cifar100") & (comp["n"] == 5)]
    cell = cell.set_index("method")
    assert cell.loc["l2t_www", "mean_measured"] == pytest.approx(70.0)
    assert cell.loc["l2t_www", "mean_published"] == pytest.approx(14.22)
    assert (
        not (comp["published_dataset"] == "cifar10").any()
        or (comp[comp["published_dataset"] == "cifar10"]["n"] == 10).all()
    )


def test_transfer_findings_state_the_rule_and_the_counts():
    rng = np.random.default_rng(0)
    vals = {}
    for n, shift in ((5, 0.0), (10, 0.3)):
        for m, base in (("scratch", 0.2), ("ufm", 0.3), ("l2t_ww", 0.4)):
            vals[n, m] = list(base + 0.01 * rng.standard_normal(8))
        vals[n, "l2t_www"] = list(0.4 + shift + 0.01 * rng.standard_normal(8))
    df = _runs(vals)
    tests = sta.method_tests(df)
    assert tests.attrs["rule"] == "raw"
    assert {"significant_raw", "significant_holm"} <= set(tests.columns)
    f = sta.transfer_findings(df, tests)
    ww = f[0]
    # N = 5: equal means (not higher), N = 10: +30 points, significant with 8 runs each
    assert ww.values["wins"] == 1 and ww.values["cells"] == 2 and ww.holds is False
    assert ww.values["significant"] == 1 and "per-cell p < 0.05 in 1 of them" in ww.evidence
    assert "dissertation's" in f.note and f[2].holds is True  # beats scratch everywhere
    holm = sta.transfer_findings(df, sta.method_tests(df, rule="holm"))
    assert "Holm-adjusted p < 0.05 across the cells" in holm.note


def test_figure36_records_the_dissertations_six_weights_at_any_width():
    ws = st.TRANSFER_SETTINGS["full"]["weights"]
    assert [i for _, i in ws] == [(4, 2, 2, 0), (9, 2, 2, 0), (63, 1, 0, 0), (61, 0, 0, 0),
                                  (53, 0, 0, 0), (52, 0, 0, 0)]  # fmt: skip
    assert st.weights_at_width(ws, 1.0) == list(ws)
    narrow = st.weights_at_width(ws, 0.125)  # 8 maps in the first conv
    assert all(i[0] < 8 for _, i in narrow) and (4, 2, 2, 0) in [i for _, i in narrow]
    assert len(narrow) == len({i for _, i in narrow}) == 5  # 61 and 53 both wrap to map 5
    fixed = st.fixed_settings(st.transfer_settings("embedded"))
    assert [tuple(i) for _, i in fixed["weights"]] == [i for _, i in narrow]


@pytest.mark.parametrize("mode", ["fixed", "per_seed", "none"])
def test_validation_protocols(mode):
    s = st.transfer_settings("smoke", {"validation": mode, "val_per_class": 4})
    a = st.target_data(s, "digits", 5, seed=0)
    b = st.target_data(s, "digits", 5, seed=1)
    assert len(a["train"]) == len(b["train"]) == 25
    train_ids = {x.numpy().tobytes() for x in a["train"].with_transform(None).images}
    if mode == "none":
        assert a["val"] is None and b["val"] is None
        return
    val_a = [x.numpy().tobytes() for x in a["val"].images]
    val_b = [x.numpy().tobytes() for x in b["val"].images]
    assert len(val_a) == 20 and not (set(val_a) & train_ids)  # never trained on
    assert (val_a == val_b) == (mode == "fixed")  # one hold-out for every seed, or per seed


def test_run_without_validation_reports_the_final_epoch():
    from cnnexplore_nb.transfer import run

    s = st.transfer_settings("smoke", {"validation": "none"})
    data = st.target_data(s, "digits", 5, seed=0)
    rec = run("scratch", source=None, target="vgg9_bn", data=data, epochs=2, seed=0,
              batch_size=16, target_kwargs={"width": 0.0625}, progress=False)  # fmt: skip
    assert rec["best_epoch"] == 2 and rec["test_acc"] == rec["final_test_acc"]
    assert all(np.isnan(h["val_acc"]) for h in rec["history"])


def test_compare_runs_tables_accuracy_and_gamma_movement():
    def snap(epoch, g):
        return {"epoch": epoch, "lam": [1.0], "w": [[1.0]], "gamma": [[[[g] * 3] * 3]]}

    a = {"test_acc": 0.5, "final_test_acc": 0.4, "best_epoch": 1, "seconds": 2.0,
         "pairs": ["4-0"], "snapshots": [snap(0, 1.0), snap(1, 1.3)]}  # fmt: skip
    b = {"test_acc": 0.6, "final_test_acc": 0.6, "best_epoch": 2, "seconds": 3.0}
    t = sta.compare_runs({"a": a, "b": b})
    assert t.loc["a", "test_acc"] == 0.5 and t.loc["b", "best_epoch"] == 2
    assert t.loc["a", "max |γ − 1| at the end"] == pytest.approx(0.3)
    assert np.isnan(t.loc["b", "max |γ − 1| at the end"])


def test_resolve_device_auto_and_unavailable_cuda():
    from cnnexplore_nb._checks import resolve_device

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected and resolve_device(None).type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"device 'cuda:1' asked for, but CUDA is not"):
            resolve_device("cuda:1")


def test_grouped_sweep_stores_one_record_per_seed_under_the_same_keys(source_path, tmp_path):
    """The seeds of a cell trained together (run_many) give the records of separate runs:
    the same keys (a store resumes across group sizes), group_size recorded, and the
    accuracies of the ungrouped runs up to float32 rounding of the stacked convolutions."""
    smoke = st.transfer_settings("smoke", {"seeds": (0, 1), "group_size": 2})
    grid, fixed = st.experiment_grid(smoke, "limited")
    grid = {**grid, "n": [2], "method": ["ufm"]}
    fixed = {**fixed, "snapshot": False, "epochs": 2}
    kw = dict(fixed=fixed, executor="inline", progress=False)
    run = st.sweep_run(source_path)
    grouped = run_sweep(grid, run, tmp_path / "grouped", group_size=2, **kw)
    alone = run_sweep(grid, run, tmp_path / "alone", group_size=1, **kw)
    assert (grouped["status"] == "ok").all(), grouped["error"].tolist()
    assert grouped["key"].tolist() == alone["key"].tolist()
    assert grouped["group_size"].tolist() == [2, 2] and "group_size" not in alone
    for a, b in zip(grouped["val_curve"], alone["val_curve"], strict=True):
        np.testing.assert_allclose(a, b, atol=0.2)  # 10 validation images: a flip is 0.1
    # the grouped store is complete for an ungrouped resume: nothing runs again
    again = run_sweep(grid, run, tmp_path / "grouped", group_size=1, **kw)
    assert again["started"].tolist() == grouped["started"].tolist()


def test_run_experiment_passes_group_size_and_device(source_path, tmp_path, monkeypatch):
    seen = {}

    def fake_sweep(grid, run, store, **kw):
        seen.update(kw, run=run)
        return pd.DataFrame()

    monkeypatch.setattr("cnnexplore_nb.experiments.run_sweep", fake_sweep)
    smoke = st.transfer_settings("smoke", {"group_size": 3, "device": "cpu"})
    st.run_experiment(smoke, "ablation", source_path, store=tmp_path, executor="inline")
    assert seen["group_size"] == 3 and seen["run"].one.keywords["device"] == "cpu"
    assert seen["run"].many.keywords["source_path"] == str(source_path)


def test_reference_source_if_present_else_trained_and_said(tmp_path, monkeypatch):
    import importlib

    fetch_mod = importlib.import_module("cnnexplore_nb.data.fetch")  # the module, not the function

    monkeypatch.setenv("CNNX_ARTIFACTS", str(tmp_path / "artifacts"))
    src = {"dataset": "digits", "width": 0.25, "epochs": 1, "reference": "if-present"}
    smoke = st.transfer_settings("smoke", {"source": src})
    monkeypatch.setattr(fetch_mod, "locate", lambda name, *roots: None)
    monkeypatch.setattr(fetch_mod, "fetch", lambda *a, **k: pytest.fail("must not download"))
    model, path, info = st.source_network(smoke, progress=False)
    assert (
        "trained here" in info["note"]
        and path.parent == tmp_path / "artifacts" / "transfer" / "smoke"
    )
    # present (a full-width ResNet-32 file standing in for the reference): used, not trained
    ref = tmp_path / "l2tww_tinyimagenet_resnet32.pth.tar"
    torch.save({"state_dict": create_model("resnet32", num_classes=200).state_dict(),
                "num_classes": 200}, ref)  # fmt: skip
    monkeypatch.setattr(fetch_mod, "locate", lambda name, *roots: ref)
    model, path, info = st.source_network(smoke, progress=False)
    assert path == ref and info["source"].startswith("L2T-ww reference")
    assert model.fc.out_features == 200
    # runs are keyed by the source file's content: another file, other keys
    assert st.source_key(ref) != st.source_key(
        tmp_path / "artifacts" / "transfer" / "smoke" / "source_resnet32_w0.25_digits_e1.pt"
    )
    assert st.source_key(ref).startswith("l2tww_tinyimagenet_resnet32.pth.tar@")


def _snapshots(lam0, lam1, w0, w1):
    return [{"epoch": 0, "lam": lam0, "w": w0}, {"epoch": 5, "lam": lam1, "w": w1}]


def test_protocol_diagnostics_by_hand():
    # one CIFAR-10 cell, N = 10, 4 seeds: UFM 20, 22, 24, 26 %; L2T-ww 2 points above at the
    # best epoch but 1 below at the final epoch; λ of one of two pairs moves 1 -> 1.5 (50 %)
    ufm = [0.20, 0.22, 0.24, 0.26]
    rows = []
    for seed, u in enumerate(ufm):
        rows.append({"dataset": "cifar10", "n": 10, "method": "ufm", "seed": seed,
                     "test_acc": u, "final_test_acc": u, "status": "ok"})  # fmt: skip
        snaps = _snapshots([1.0, 1.0], [1.5, 1.0], [[0.5, 0.5], [0.5, 0.5]],
                           [[0.55, 0.45], [0.5, 0.5]])  # fmt: skip
        rows.append({"dataset": "cifar10", "n": 10, "method": "l2t_ww", "seed": seed,
                     "test_acc": u + 0.02, "final_test_acc": u - 0.01, "status": "ok",
                     "snapshots": snaps, "pairs": ["4-0", "9-1"]})  # fmt: skip
    f = sta.protocol_diagnostics(pd.DataFrame(rows))
    row = f.table.iloc[0]
    assert row["ww_minus_ufm"] == pytest.approx(2.0)
    assert row["l2t_ww_final"] - row["ufm_final"] == pytest.approx(-1.0)
    assert row["std"] == pytest.approx(np.std([20, 22, 24, 26], ddof=1))
    assert row["published_ww_minus_ufm"] == pytest.approx(24.64 - 20.69)
    assert row["lambda_change"] == pytest.approx(0.5) and row["w_change"] == pytest.approx(0.1)
    assert np.isnan(row["gamma_change"]) and row["seeds"] == 4
    selection, movement, power = f.items
    assert selection.holds is True and "+2.0 at the best-validation epoch" in selection.evidence
    assert movement.holds is True and "λ 50 %, w·C 10 %" in movement.evidence
    assert power.holds is False and "with 4 seeds" in power.evidence
    assert "— yes." in selection.markdown() and "— **no**." in power.markdown()
    # below the threshold the meta-networks have not moved
    assert sta.protocol_diagnostics(pd.DataFrame(rows), threshold=0.6).items[1].holds is False


def test_source_network_finds_the_reference_file_beside_the_data_folder(tmp_path):
    from pathlib import Path

    real = Path(__file__).resolve().parents[2] / "shared/data/l2tww_tinyimagenet_resnet32.pth.tar"
    if not real.is_file():
        pytest.skip(f"the L2T-ww reference file is not at {real}")
    (tmp_path / "cifar10-subset").mkdir()
    (tmp_path / real.name).symlink_to(real)
    settings = st.transfer_settings("cpu")
    model, path, info = st.source_network(settings, data_dir=str(tmp_path / "cifar10-subset"))
    assert path == tmp_path / real.name and info["source"].startswith("L2T-ww reference")
    assert model.fc.out_features == 200
