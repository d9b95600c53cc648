"""The extract stage on tiny random CamemBERT / FlauBERT encoders against unbatched single-sentence passes."""
import json
import re
import shutil
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from datasets import Dataset, DatasetDict
from transformers import (AutoModelForSequenceClassification, CamembertConfig, CamembertForMaskedLM,
                          CamembertModel, FlaubertConfig, FlaubertWithLMHeadModel)

import standins
from embstudy import extract, geometry, params

CFG = params.Extract(batch_size=4, cos_sentences=6, cov_sentences=8, erank_sentences=4, erank_tokens=12,
                     baseline_sentences=5, hist_bins=10, cka_sentences=10, reviews=None)
VOCAB = 60


def config(arch, layers=2):
    if arch == "camembert":
        return CamembertConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=layers,
                               num_attention_heads=2, intermediate_size=32, max_position_embeddings=40,
                               pad_token_id=1)
    return FlaubertConfig(vocab_size=VOCAB, emb_dim=16, n_layers=layers, n_heads=2,
                          max_position_embeddings=40)


@pytest.fixture(scope="module", params=["camembert", "flaubert"])
def encoders(request, tmp_path_factory):
    """{variant: folder}: a masked-LM 'pre-trained' checkpoint and a sequence-classification 'epoch-1'."""
    root, arch = tmp_path_factory.mktemp(request.param), request.param
    torch.manual_seed(0)
    mlm = (CamembertForMaskedLM if arch == "camembert" else FlaubertWithLMHeadModel)(config(arch))
    mlm.save_pretrained(root / "pretrained")
    standins.vocab_stub(root / "pretrained", VOCAB)  # [CLS] at id 0, the first id of every review: run.json names it
    AutoModelForSequenceClassification.from_config(config(arch)).save_pretrained(root / "epoch-1")
    return {"pretrained": str(root / "pretrained"), "epoch-1": str(root / "epoch-1")}


def split(n, seed, lengths=None):
    rng = np.random.default_rng(seed)
    lengths = lengths or rng.integers(1, 25, n).tolist()
    ids = [[0, *rng.integers(4, VOCAB, max(k - 1, 0)).tolist()][:k] for k in lengths]  # 0: <s>/[CLS]
    return Dataset.from_dict({"input_ids": ids, "label": rng.integers(0, 2, n).tolist(),
                              "domain": rng.choice(["books", "dvd"], n).tolist(), "idx": list(range(n)),
                              "length": lengths})


def tokens(n_test=12, seed=1):
    # the first test sentences include lengths 1 and 2 (no pair, one pair)
    more = np.random.default_rng(seed).integers(1, 25, n_test - 8).tolist()
    test = split(n_test, seed, [5, 1, 2, 17, 3, 9, 24, 2, *more])
    return DatasetDict(train=split(10, 2), test=test)


SEEDS = {"pretrained": None, "epoch-1": 7}  # the fine-tuned run carries its seed into file names and tables


def todo(sources: dict) -> list[dict]:
    return [extract.run(v, SEEDS[v], src) for v, src in sources.items()]


def run(tmp_path, sources, toks, cfg=CFG, name="out"):
    extract.extract("tiny", todo(sources), toks, cfg, tmp_path / name, device=torch.device("cpu"))
    return tmp_path / name


def rescaled(states, cfg=CFG):
    """Naive centred and standardised mean pair cosines per (layer, sentence): moments over the tokens of the
    first baseline_sentences, cosines of the first cos_sentences."""
    tokens = torch.cat(states[: cfg.baseline_sentences], 1).double()  # (layers, tokens, hidden)
    mean, std = tokens.mean(1, keepdim=True), tokens.std(1, unbiased=False, keepdim=True)
    out = {}
    for kind, f in (("centred", lambda h: h - mean), ("standardised", lambda h: (h - mean) / std)):
        out[kind] = np.stack([geometry.intra_sentence_cosines(f(s.double())[:, None].float(),
                                                              torch.ones(1, s.shape[1]))[0].double().mean(1).numpy()
                              for s in states[: cfg.cos_sentences]], 1)  # (layers, sentences)
    return out


def single_sentence_states(source, sentences):
    """Per sentence (layers + 1, tokens, hidden) float32 from a pass over it alone, unpadded."""
    model = extract.load_encoder(source, torch.device("cpu"))
    with torch.inference_mode():
        outs = [model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
                for ids in sentences]
    return [torch.stack(out)[:, 0].float() for out in outs]


def test_batched_stats_equal_single_sentence_passes(tmp_path, encoders):
    toks = tokens()
    out = run(tmp_path, encoders, toks)
    layers, sentences = pd.read_csv(out / "layers.csv"), pd.read_csv(out / "sentences.csv")
    hist = pd.read_csv(out / "hist.csv")
    for variant, source in encoders.items():
        states = single_sentence_states(source, toks["test"]["input_ids"][: CFG.cov_sentences])
        n_layers = states[0].shape[0]
        mine = layers[layers.variant == variant].set_index("layer")
        assert mine["seed"].isna().all() if SEEDS[variant] is None else (mine["seed"] == SEEDS[variant]).all()
        assert list(mine.index) == list(range(n_layers))
        cos = torch.cat([geometry.intra_sentence_cosines(s[:, None], torch.ones(1, s.shape[1]))[0]
                         for s in states[: CFG.cos_sentences]], 1).double().numpy()  # (layers, pairs)
        np.testing.assert_allclose(mine.cos_mean, cos.mean(1), atol=1e-4)
        np.testing.assert_allclose(mine.cos_q50, np.median(cos, 1), atol=1e-4)
        np.testing.assert_allclose(mine.cos_min, cos.min(1), atol=1e-4)
        assert (mine.cos_count == cos.shape[1]).all()
        counts = hist[hist.variant == variant].groupby("layer")["count"].sum()
        assert (counts == cos.shape[1]).all()
        rows = sentences[sentences.variant == variant]
        traces = np.stack([geometry.covariance_trace(s[:, None], torch.ones(1, s.shape[1]))[:, 0]
                           for s in states], 1)
        stored = rows.pivot(index="layer", columns="sentence", values="cov_trace")
        np.testing.assert_allclose(stored, traces, rtol=1e-4)
        var = rows[rows.sentence == 3].cos_var.to_numpy()
        pairs = geometry.intra_sentence_cosines(states[3][:, None], torch.ones(1, 17))[0]  # (layers, pairs)
        np.testing.assert_allclose(var, [np.var(c.numpy(), ddof=1) for c in pairs], rtol=1e-3, atol=1e-6)
        assert rows[rows.sentence.isin([1, 2])].cos_var.isna().all()  # 0 and 1 pair: no variance
        stacked = torch.cat(states[: CFG.erank_sentences], 1)[:, : CFG.erank_tokens]
        np.testing.assert_allclose(mine.erank, geometry.effective_rank(stacked), rtol=1e-4)
        parts = None  # one sentence at a time, no padding
        for s in states[: CFG.baseline_sentences]:
            parts = geometry.add_parts(parts, geometry.baseline_parts(s[:, None], torch.ones(1, s.shape[1])))
        np.testing.assert_allclose(mine.baseline, geometry.baseline_from_parts(parts), atol=1e-4)
        naive = rescaled(states)
        for kind, values in naive.items():
            stored = rows.pivot(index="layer", columns="sentence", values=f"cos_{kind}").iloc[:, : CFG.cos_sentences]
            finite = ~np.isnan(values)  # sentence 1 has one token: no pair
            np.testing.assert_allclose(stored.to_numpy()[finite], values[finite], atol=1e-4)
            assert np.isnan(stored.to_numpy()[~finite]).all()
        with np.load(out / todo(encoders)[list(encoders).index(variant)]["file"]) as npz:
            assert npz["train"].dtype == np.float16 and npz["test"].shape == (12, n_layers, 16)
            np.testing.assert_allclose(npz["test"][3], states[3][:, 0], atol=2e-3, rtol=2e-3)
            assert npz["test_mean"].shape == (CFG.cka_sentences, n_layers, 16)
            np.testing.assert_allclose(npz["test_mean"][3], states[3].mean(1), atol=2e-3, rtol=2e-3)
            assert npz["test_domain"].tolist() == toks["test"]["domain"]
    meta = json.loads((out / "run.json").read_text())
    assert [(r["variant"], r["seed"]) for r in meta["runs"]] == [("pretrained", None), ("epoch-1", 7)]
    assert meta["hidden_states"] == 3 and meta["first_token"] == "[CLS]"


def test_fine_tuned_encoder_weights_really_load(tmp_path, encoders):
    classifier = AutoModelForSequenceClassification.from_pretrained(encoders["epoch-1"])
    encoder = extract.load_encoder(encoders["epoch-1"], torch.device("cpu"))
    base = classifier.base_model.state_dict()
    for key, value in encoder.state_dict().items():
        if not key.startswith("pooler."):
            torch.testing.assert_close(value, base[key], rtol=0, atol=0)


def test_missing_encoder_weights_rejected(tmp_path):
    CamembertModel(config("camembert", layers=1)).save_pretrained(tmp_path / "short")
    cfg = json.loads((tmp_path / "short" / "config.json").read_text())
    (tmp_path / "short" / "config.json").write_text(json.dumps(cfg | {"num_hidden_layers": 2}))
    with pytest.raises(SystemExit, match="encoder weights missing"):
        extract.load_encoder(str(tmp_path / "short"), torch.device("cpu"))


def test_more_sentences_change_nothing_kept(tmp_path, encoders):
    """Statistics depend only on the first sentences, and the accumulator keeps no more than those."""
    small = run(tmp_path, encoders, tokens(12), name="small")
    large = run(tmp_path, encoders, tokens(40), name="large")
    for file in ("layers.csv", "hist.csv", "sentences.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(small / file), pd.read_csv(large / file), atol=1e-5)
    toks = tokens(40)
    model = extract.load_encoder(encoders["pretrained"], torch.device("cpu"))
    _, stats = extract.run_variant(model, extract.check_inputs(toks, CFG), CFG, "test")
    assert sorted(stats.cos) == list(range(CFG.cos_sentences))
    assert sorted(stats.cov) == list(range(CFG.cov_sentences))
    assert sum(t.shape[1] for t in stats.erank.values()) == CFG.erank_tokens


def test_reviews_keeps_the_first_of_each_split_and_the_same_statistics(tmp_path, encoders):
    """extract.reviews = 12 on 40 test and 10 train reviews: the first 12 and all 10 are read; the statistics
    of the first sentences are those of reading everything."""
    whole = run(tmp_path, encoders, tokens(40), name="whole")
    capped = run(tmp_path, encoders, tokens(40), cfg=CFG.model_copy(update={"reviews": 12}), name="capped")
    with np.load(capped / "cls-pretrained.npz") as npz, np.load(whole / "cls-pretrained.npz") as full:
        assert npz["test"].shape[0] == 12 and npz["train"].shape[0] == 10
        np.testing.assert_array_equal(npz["test_idx"], full["test_idx"][:12])
        np.testing.assert_allclose(npz["test"], full["test"][:12], atol=1e-3)
    pd.testing.assert_frame_equal(pd.read_csv(capped / "layers.csv"), pd.read_csv(whole / "layers.csv"),
                                  atol=1e-5)


@pytest.mark.parametrize("change, message", [
    (dict(cov_sentences=13), "cov_sentences = 13 exceeds the 12 test"),
    (dict(erank_tokens=100), "erank_tokens = 100"),
])
def test_bad_sizes_fail_before_writing(tmp_path, encoders, change, message):
    with pytest.raises(SystemExit, match=message):
        run(tmp_path, encoders, tokens(), CFG.model_copy(update=change))
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []


def test_empty_review_and_missing_epoch_rejected(tmp_path, monkeypatch):
    toks = tokens()
    toks["train"] = split(3, 0, [4, 0, 2])
    with pytest.raises(SystemExit, match="train review at row 1 is empty"):
        run(tmp_path, {}, toks)
    monkeypatch.setattr(extract.paths, "finetuned",
                        lambda name, seed=None: tmp_path / name / ("" if seed is None else f"seed-{seed}"))
    monkeypatch.setattr(extract.paths, "control", lambda name: tmp_path / "control" / name)
    for folder in ("tiny/seed-3/epoch-1", "control/tiny/init", "tiny/control/epoch-1", "hub-snapshot"):
        (tmp_path / folder).mkdir(parents=True)  # hub-snapshot stands for a resolved hub checkpoint
    model = params.Model(arch="camembert", checkpoint=str(tmp_path / "hub-snapshot"))
    ft = params.Finetune(train_size=4, test_size=4, epochs=1, lr=1e-3, warmup=0, batch_size=2, seeds=[3], jobs=None,
                         max_gap_to_tfidf=5, max_majority_share=0.9)
    found = [(r["variant"], r["seed"], r["file"]) for r in extract.runs("tiny", model, ft)]
    assert found == [("pretrained", None, "cls-pretrained.npz"), ("random", None, "cls-random.npz"),
                     ("epoch-1", 3, "cls-epoch-1-s3.npz"), ("random-epoch-1", 3, "cls-random-epoch-1-s3.npz")]
    with pytest.raises(SystemExit, match="seed-3/epoch-2 of epoch-2 .seed 3. is missing"):
        extract.runs("tiny", model, ft.model_copy(update={"epochs": 2}))
    with pytest.raises(SystemExit, match="seed-4/epoch-1 of epoch-1 .seed 4. is missing"):
        extract.runs("tiny", model, ft.model_copy(update={"seeds": [3, 4]}))


def test_short_disk_fails_before_any_pass(tmp_path, encoders, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: SimpleNamespace(free=10**6))  # io reads .free only
    monkeypatch.setattr(extract, "run_variant", lambda *a: pytest.fail("ran with too little disk"))
    where = re.escape(str(tmp_path / "out"))
    with pytest.raises(SystemExit, match=rf"^extract: tiny: first-token vectors of 2 runs: "
                                         rf"need ~10\.0 MB free in {where}, only 1\.0 MB free$"):
        run(tmp_path, encoders, tokens())
    assert list(tmp_path.iterdir()) == []


def test_disk_estimate_is_the_vectors_written(tmp_path, encoders):
    out, toks = run(tmp_path, encoders, tokens()), tokens()
    vectors = 0
    for run_ in todo(encoders):
        with np.load(out / run_["file"]) as npz:
            vectors += sum(npz[k].nbytes for k in ("train", "test", "test_mean"))  # float16 (reviews, layers + 1, hidden)
    estimate = extract.vector_bytes(todo(encoders), len(toks["train"]) + len(toks["test"]), CFG.cka_sentences)
    assert estimate - 10 * 10**6 == pytest.approx(1.05 * vectors, abs=1)  # the margin on top of the vectors
