"""The probe stage on synthetic [CLS] vectors: separable layers are learnt, controls stay at chance."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from embstudy import files, params, probe

CFG = params.Probe(layers="all", head="linear", epochs=15, lr=1e-2, batch_size=32, dropout=0.1, seed=0)
HIDDEN = 8


def reviews(n, rng, label=None):
    """(n, 3 hidden states, HIDDEN) float16 of ``label`` (drawn if None): state 0 is noise, 1 weakly and 2
    strongly separable."""
    label = rng.integers(0, 2, n) if label is None else label
    x = rng.normal(size=(n, 3, HIDDEN))
    x[:, 1, 0] += 1.5 * (2 * label - 1)
    x[:, 2, :3] += 3.0 * (2 * label - 1)[:, None]
    return x.astype(np.float16), label


@pytest.fixture(autouse=True)
def one_thread():
    """These probes (2 runs x 3 layers x 8 dims) are far smaller than the stage's: one thread is faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


FILES = {"pretrained": "cls-pretrained.npz", "epoch-1": "cls-epoch-1-s5.npz"}


@pytest.fixture
def extracted(tmp_path):
    """An extract folder with two runs in its format (run.json + their npz): pretrained, epoch-1 of seed 5;
    the same reviews (labels, domains), other vectors."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "extract"
    folder.mkdir()
    labels = {"train": rng.integers(0, 2, 300), "test": rng.integers(0, 2, 200)}
    domains = {split: rng.choice(["books", "dvd", "music"], len(y)) for split, y in labels.items()}
    for variant in ("pretrained", "epoch-1"):
        arrays = {}
        for split, y in labels.items():
            arrays[split], arrays[f"{split}_label"] = reviews(len(y), rng, y)
            arrays[f"{split}_domain"], arrays[f"{split}_idx"] = domains[split], np.arange(len(y))
        np.savez(folder / FILES[variant], **arrays)
    files.write_json(folder / "run.json", {"runs": [{"variant": "pretrained", "seed": None, "file": FILES["pretrained"]},
                                                 {"variant": "epoch-1", "seed": 5, "file": FILES["epoch-1"]}]})
    return folder


def run(tmp_path, folder, cfg=CFG, name="out"):
    out = tmp_path / name
    probe.probe("tiny", folder, cfg, out / "probe", out / "m.json", out / "m-curves.csv")
    return out


def test_probes_learn_separable_layers_and_controls_stay_at_chance(tmp_path, extracted):
    out = run(tmp_path, extracted)
    acc = pd.read_csv(out / "probe" / "accuracy.csv").pivot_table(index=["variant", "probe"], columns="layer",
                                                                   values="accuracy")
    for variant in ("pretrained", "epoch-1"):
        for kind in ("linear", "logreg"):
            assert acc.loc[(variant, kind), 2] > 0.95 and acc.loc[(variant, kind), 1] > 0.7
            assert abs(acc.loc[(variant, kind), 0] - 0.5) < 0.12  # noise layer
        assert (abs(acc.loc[(variant, "shuffled")] - 0.5) < 0.15).all()  # chance, up to sampling
        assert (abs(acc.loc[(variant, "majority")] - 0.5) < 0.1).all()
    grid = json.loads((out / "m.json").read_text())
    assert set(grid) == {"linear", "logreg", "majority"}
    assert grid["linear"]["epoch-1-s5"]["layer_2"] == pytest.approx(acc.loc[("epoch-1", "linear"), 2], abs=1e-6)
    curves = pd.read_csv(out / "probe" / "curves.csv")
    assert len(curves) == 2 * 3 * 2 * CFG.epochs  # variants x layers x (head, shuffled) x epochs
    last = curves[(curves.epoch == CFG.epochs) & (curves.probe == "linear") & (curves.variant == "epoch-1")]
    np.testing.assert_allclose(last.sort_values("layer").accuracy, acc.loc[("epoch-1", "linear")])
    assert list(pd.read_csv(out / "m-curves.csv").columns) == ["epoch", "accuracy", "variant", "seed", "layer"]
    seeds = pd.read_csv(out / "probe" / "accuracy.csv").groupby("variant")["seed"].unique()
    assert np.isnan(seeds["pretrained"]).all() and seeds["epoch-1"].tolist() == [5]
    predictions = pd.read_parquet(out / "probe" / "predictions.parquet")
    assert len(predictions) == 2 * 3 * 2 * 200  # runs x layers x (head, logreg) x test reviews
    scored = predictions.groupby(["variant", "probe", "layer"])["correct"].mean()
    for (variant, kind, layer), share in scored.items():  # the per-review hits give the stored accuracy
        assert share == pytest.approx(acc.loc[(variant, kind), layer], abs=1e-6)  # float32 curves


def test_cones_and_separation(tmp_path, extracted):
    out = run(tmp_path, extracted, CFG.model_copy(update=dict(epochs=1, layers=[0, 2])))
    cones = pd.read_parquet(out / "probe" / "cones.parquet")
    assert len(cones) == 2 * 2 * 200 and set(cones.layer) == {0, 2}
    first = cones[cones.idx == 0]
    np.testing.assert_allclose(first.cos_first, 1.0, atol=1e-6)
    strong = cones[(cones.layer == 2) & (cones.variant == "pretrained")]
    assert (strong.cos_pos > strong.cos_neg).eq(strong.label == 1).mean() > 0.95
    sep = pd.read_csv(out / "probe" / "separation.csv").set_index(["variant", "layer"])
    with np.load(extracted / FILES["pretrained"]) as npz:
        x, y = npz["test"][:, 2].astype(np.float64), npz["test_label"]
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    cos, same = unit @ unit.T, y[:, None] == y[None]
    off_diagonal = ~np.eye(len(y), dtype=bool)
    assert sep.loc[("pretrained", 2), "within"] == pytest.approx(cos[same & off_diagonal].mean(), abs=1e-5)
    assert sep.loc[("pretrained", 2), "between"] == pytest.approx(cos[~same].mean(), abs=1e-5)
    assert sep.loc[("pretrained", 2), "separation"] > 0.5 > abs(sep.loc[("pretrained", 0), "separation"])


def test_roberta_head_and_determinism(tmp_path, extracted):
    cfg = CFG.model_copy(update=dict(head="roberta", layers=[2], epochs=5))
    first, again = run(tmp_path, extracted, cfg, "a"), run(tmp_path, extracted, cfg, "b")
    acc = pd.read_csv(first / "probe" / "accuracy.csv")
    assert (acc[acc.probe == "roberta"].accuracy > 0.95).all()
    for file in ("probe/accuracy.csv", "probe/curves.csv", "m.json"):
        assert (first / file).read_bytes() == (again / file).read_bytes()


def test_bad_layers_and_missing_extract_rejected(tmp_path, extracted):
    with pytest.raises(SystemExit, match=r"probe.layers \[3, 4\]: none within 0..2"):
        run(tmp_path, extracted, CFG.model_copy(update=dict(layers=[3, 4])))
    with pytest.raises(SystemExit, match=r"probe.layers \[-1\]: name hidden states"):
        run(tmp_path, extracted, CFG.model_copy(update=dict(layers=[-1])))
    with pytest.raises(SystemExit, match="run the extract stage first"):
        run(tmp_path, tmp_path / "nowhere")
    assert not (tmp_path / "out").exists()


def test_shuffled_labels_are_uncorrelated_with_the_true_ones():
    y = np.random.default_rng(1).integers(0, 2, 501)
    fake = probe.shuffled_labels(y, seed=3)
    share = y.mean()
    for c in (0, 1):
        assert fake[y == c].mean() == pytest.approx(share, abs=1 / (y == c).sum())
    assert not np.array_equal(fake, probe.shuffled_labels(y, seed=4))


def test_a_probe_does_not_depend_on_the_probes_trained_beside_it():
    """All runs' probes train as one model; without dropout a probe's hits are the same whatever the
    other stacked layers hold (its initial weights sit at the same place, its gradient is its own)."""
    rng = np.random.default_rng(2)
    (train, y_train), (test, y_test) = reviews(300, rng), reviews(200, rng)
    x = {s: torch.from_numpy(v).float().transpose(0, 1) for s, v in (("train", train), ("test", test))}
    cfg = CFG.model_copy(update=dict(dropout=0.0, epochs=3))
    data = {"train_label": y_train, "test_label": y_test}
    noise = {s: torch.randn_like(v) for s, v in x.items()}
    beside = [probe.train_all({s: torch.cat([x[s], other[s]]) for s in x}, data, cfg)
              for other in (x, noise)]  # (3 states + 3 others) stacked
    for i in (0, 1):  # curves, hits: the first 3 stacked probes are the same run
        np.testing.assert_array_equal(beside[0][i][..., :3, :] if i else beside[0][i][..., :3],
                                      beside[1][i][..., :3, :] if i else beside[1][i][..., :3])
    assert not np.array_equal(beside[0][0][..., 3:], beside[1][0][..., 3:])  # the others did differ


def test_runs_with_other_labels_rejected(tmp_path, extracted):
    with np.load(extracted / FILES["epoch-1"]) as npz:
        arrays = dict(npz)
    arrays["test_label"] = 1 - arrays["test_label"]  # train labels unchanged
    np.savez(extracted / FILES["epoch-1"], **arrays)
    with pytest.raises(SystemExit, match="test_label differs from cls-pretrained.npz's: rerun extract"):
        run(tmp_path, extracted)


def test_listed_layers_past_a_shallower_model_are_left_out():
    """The paper grid's layers 5..12 beside a 6-layer model: it is probed where it has them."""
    assert probe.check_layers([5, 7, 9, 11, 12], 7) == [5]
    assert probe.check_layers([12, 5, 5], 13) == [5, 12]
    assert probe.check_layers("all", 3) == [0, 1, 2]
