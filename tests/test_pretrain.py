"""Stage pretrain on micro encoders: reloadable checkpoint, metrics, gate, hub skip, determinism, errors."""
from __future__ import annotations

import csv
import json
import math
import shutil

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

import french_fixture
from embstudy import encoders, pretrain
from embstudy.params import Encoder, Model, Pretrain

MICRO = Pretrain(seed=0, steps=12, batch_size=8, seq_len=32, lr=1e-3, warmup=2, mask_prob=0.15, heldout=20,
                 min_accuracy_ratio=0.0, prune_vocab=True)
ENCODER = Encoder(layers=2, hidden=32, heads=2, ffn=128, vocab_size=300)


@pytest.fixture(scope="module")
def corpus():
    return french_fixture.corpus(n_train=60, n_test=10, n_unlabeled=120)


def run(arch, corpus, out, cfg=MICRO, encoder=ENCODER, checkpoint=None):
    model = Model(arch=arch, checkpoint=checkpoint, encoder=encoder)
    return pretrain.run(arch, model, cfg, corpus, out / "model", out / "m.json", out / "m-loss.csv")


@pytest.fixture(scope="module", params=encoders.ARCHS)
def trained(request, corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    return request.param, out, run(request.param, corpus, out)


def test_checkpoint_loads_as_classifier_and_tokenizer(trained):
    arch, out, metrics = trained
    tokenizer = AutoTokenizer.from_pretrained(out / "model")
    model = AutoModelForSequenceClassification.from_pretrained(out / "model", num_labels=2)
    assert model.config.model_type == arch and model.config.num_hidden_layers == ENCODER.layers
    encoders.check_special_tokens(tokenizer, model.config)
    assert model(**tokenizer(["Très « réussi », l’été."], return_tensors="pt")).logits.shape == (1, 2)
    source = json.loads((out / "model" / "SOURCE.json").read_text())
    assert source == {"checkpoint": None, "pretrained_here": True}
    assert metrics["vocab_size"] == len(tokenizer) and metrics["n_params"] == sum(
        p.numel() for p in AutoModelForMaskedLM.from_pretrained(out / "model").parameters())


def test_saved_weights_are_the_evaluated_ones(trained):
    """Reloaded from disk, the MLM scores the held-out blocks exactly as the recorded metrics say."""
    arch, out, metrics = trained
    tokenizer = AutoTokenizer.from_pretrained(out / "model")
    model = AutoModelForMaskedLM.from_pretrained(out / "model")
    corpus = french_fixture.corpus(n_train=60, n_test=10, n_unlabeled=120)
    _, heldout = pretrain.split_texts(corpus, MICRO.heldout, MICRO.seed)
    again = pretrain.evaluate(model, tokenizer, pretrain.pack(tokenizer, heldout, MICRO.seq_len), MICRO)
    assert again["masked_accuracy"] == metrics["masked_accuracy"]
    assert again["mlm_loss"] == pytest.approx(metrics["mlm_loss"], rel=1e-5)


def test_metrics_and_loss_curve(trained):
    arch, out, metrics = trained
    assert json.loads((out / "m.json").read_text()) == metrics
    assert 0 <= metrics["baseline_accuracy"] <= 1 and 0 <= metrics["masked_accuracy"] <= 1
    assert metrics["steps"] == MICRO.steps
    assert not {"wall_seconds", "tokens_per_second"} & set(metrics)  # timings would make two runs' files differ
    with open(out / "m-loss.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(1, MICRO.steps + 1))
    assert all(math.isfinite(float(r["loss"])) for r in rows)


def test_held_out_reviews_are_not_trained_on(corpus):
    texts, heldout = pretrain.split_texts(corpus, 20, seed=3)
    assert len(heldout) == 20 and not set(heldout) & set(texts[:-len(corpus["train"])])
    assert len(texts) == len(corpus["unlabeled"]) - 20 + len(corpus["train"])
    assert not set(corpus["test"]["text"]) & set(texts)


def test_packing_leaves_no_padding(trained, corpus):
    texts = list(corpus["train"]["text"])
    tokenizer = AutoTokenizer.from_pretrained(trained[1] / "model")
    blocks = pretrain.pack(tokenizer, texts, 16)
    assert blocks and all(len(b) == 16 for b in blocks)
    assert tokenizer.pad_token_id not in {i for b in blocks for i in b}
    assert sum(len(b) for b in blocks) > sum(len(tokenizer(t)["input_ids"]) for t in texts) - 16


def test_same_params_same_weights(trained, corpus, tmp_path):
    again = run(trained[0], corpus, tmp_path)
    first = load_file(trained[1] / "model" / "model.safetensors")
    second = load_file(tmp_path / "model" / "model.safetensors")
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    timing = {"wall_seconds", "tokens_per_second"}
    drop = lambda m: {k: v for k, v in m.items() if k not in timing}  # noqa: E731
    assert drop(again) == drop(trained[2])


def test_gate_fails_loudly_and_writes_nothing(corpus, tmp_path):
    cfg = MICRO.model_copy(update={"min_accuracy_ratio": 50.0})
    with pytest.raises(encoders.EncoderError, match=r"masked-token accuracy .* below 50.0 x"):
        run("camembert", corpus, tmp_path, cfg=cfg)
    assert not any(tmp_path.iterdir())


def test_hub_checkpoint_is_only_noted(tmp_path):
    metrics = run("flaubert", None, tmp_path, encoder=None, checkpoint="flaubert/flaubert_base_cased")
    assert metrics["skipped"] is True
    assert json.loads((tmp_path / "model" / "SOURCE.json").read_text()) == {
        "checkpoint": "flaubert/flaubert_base_cased", "pretrained_here": False}
    assert (tmp_path / "m-loss.csv").read_text() == "step,loss\n"
    assert [p.name for p in (tmp_path / "model").iterdir()] == ["SOURCE.json"]


def test_a_shipped_checkpoint_is_copied_with_the_metrics_of_its_training(trained, tmp_path, monkeypatch):
    """The demo's way: a folder of the repository (``checkpoints/<name>``, written by ``--out``) is copied
    whole into the stage's output, and its training's metrics and loss curve become the stage's."""
    arch, out, metrics = trained
    monkeypatch.setattr(encoders.paths, "ROOT", out)
    got = run(arch, None, tmp_path, encoder=None, checkpoint="model")
    assert got == {k: v for k, v in metrics.items() if not k.endswith("_seconds")} | {"checkpoint": "model"}
    assert json.loads((tmp_path / "m.json").read_text()) == got
    assert (tmp_path / "m-loss.csv").read_bytes() == (out / "model" / pretrain.LOSS).read_bytes()
    assert (tmp_path / "model" / "model.safetensors").read_bytes() == (out / "model" / "model.safetensors").read_bytes()
    assert json.loads((tmp_path / "model" / "SOURCE.json").read_text()) == {"checkpoint": "model",
                                                                            "pretrained_here": True}
    assert encoders.checkpoint(arch, Model(arch=arch, checkpoint="model")) == str(encoders.paths.pretrained(arch))


def test_a_shipped_folder_without_its_training_metrics_is_refused(trained, tmp_path, monkeypatch):
    arch, out, _ = trained
    bare = tmp_path / "bare"
    shutil.copytree(out / "model", bare)
    (bare / pretrain.METRICS).unlink()
    monkeypatch.setattr(encoders.paths, "ROOT", tmp_path)
    with pytest.raises(encoders.EncoderError, match=r"bare lacks pretrain.json \(written with the weights by"):
        run(arch, None, tmp_path / "o", encoder=None, checkpoint="bare")
    assert not (tmp_path / "o").exists()


def test_make_encoders_writes_the_shipped_folder_with_its_training_notes(trained, corpus, tmp_path):
    """``--out`` (``make encoders``): the same weights as the stage trains, plus TRAINING.json."""
    arch, out, _ = trained
    metrics = pretrain.train_here(arch, Model(arch=arch, checkpoint=None, encoder=ENCODER), MICRO, corpus,
                                  tmp_path / "ship")
    notes = pretrain.training_notes(MICRO, metrics, threads=1, language="de")
    assert notes["steps"] == MICRO.steps and notes["threads"] == 1 and notes["train_seconds"] > 0
    assert notes["language"] == "de"  # params refuse the folder with another data.language
    for name in ("model.safetensors", pretrain.METRICS, pretrain.LOSS):
        assert (tmp_path / "ship" / name).read_bytes() == (out / "model" / name).read_bytes(), name


def test_flaubert_feed_forward_must_be_four_times_hidden(corpus, tmp_path):
    with pytest.raises(encoders.EncoderError, match="4 x hidden = 128, got encoder.ffn 100"):
        run("flaubert", corpus, tmp_path, encoder=ENCODER.model_copy(update={"ffn": 100}))
    assert not any(tmp_path.iterdir())


def test_too_many_held_out_reviews(corpus, tmp_path):
    with pytest.raises(encoders.EncoderError, match="heldout 500 >= 120 unlabeled"):
        run("camembert", corpus, tmp_path, cfg=MICRO.model_copy(update={"heldout": 500}))


def test_unknown_architecture_at_encoder_level():
    with pytest.raises(encoders.EncoderError, match="unknown architecture 'bert'"):
        encoders.build_config("bert", ENCODER, tokenizer=None)


def test_special_token_mismatch_is_caught(trained):
    tokenizer = AutoTokenizer.from_pretrained(trained[1] / "model")
    config = encoders.build_config(trained[0], ENCODER, tokenizer)
    encoders.check_special_tokens(tokenizer, config)  # consistent as built
    config.pad_token_id = tokenizer.pad_token_id + 1
    config.vocab_size = len(tokenizer) - 1
    with pytest.raises(encoders.EncoderError, match=r"pad_token_id=\d+ but tokenizer has \d+; vocab_size="):
        encoders.check_special_tokens(tokenizer, config)
