"""Stage finetune on micro encoders: per-epoch checkpoints, metrics, gates, determinism, bad checkpoints."""
from __future__ import annotations

import csv
import json
import re
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from datasets import DatasetDict
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

import french_fixture
from embstudy import encoders, finetune, paths, pretrain, stage
from embstudy.params import Encoder, Finetune, Model, Pretrain

PRETRAIN = Pretrain(seed=0, steps=10, batch_size=8, seq_len=32, lr=1e-3, warmup=2, mask_prob=0.15, heldout=20,
                    min_accuracy_ratio=0.0, prune_vocab=True)
ENCODER = Encoder(layers=2, hidden=32, heads=2, ffn=128, vocab_size=300)
MICRO = Finetune(train_size=64, test_size=40, epochs=2, lr=1e-3, warmup=0.1, batch_size=8, seeds=[42], jobs=None,
                 max_gap_to_tfidf=100.0, max_majority_share=1.0)


@pytest.fixture(scope="module")
def corpus():
    return french_fixture.corpus(n_train=80, n_test=50, n_unlabeled=100)


def tokenize(corpus: DatasetDict, tokenizer) -> DatasetDict:
    """As the tokenize stage: input_ids (with special tokens, truncated, unpadded), length, label..."""
    def encode(batch):
        ids = tokenizer(batch["text"], truncation=True, max_length=64)["input_ids"]
        return {"input_ids": ids, "length": [len(x) for x in ids]}
    return DatasetDict({s: corpus[s].map(encode, batched=True, remove_columns=["text"])
                        for s in ("train", "test")})


@pytest.fixture(scope="module", params=encoders.ARCHS)
def source(request, corpus, tmp_path_factory):
    """A micro pre-trained checkpoint and its tokenised corpus."""
    out = tmp_path_factory.mktemp(request.param)
    pretrain.run(request.param, Model(arch=request.param, checkpoint=None, encoder=ENCODER), PRETRAIN, corpus,
                 out / "model", out / "m.json", out / "m.csv")
    return out / "model", tokenize(corpus, AutoTokenizer.from_pretrained(out / "model"))


def run(source, corpus, out, cfg=MICRO, seed=42):
    folder, tokens = source
    return finetune.run("m", str(folder), cfg, seed, tokens, corpus, out / "ft")


@pytest.fixture(scope="module")
def tuned(source, corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("ft")
    return out, run(source, corpus, out)


def test_one_full_checkpoint_per_epoch(tuned):
    out, metrics = tuned
    assert sorted(p.name for p in (out / "ft").iterdir()) == ["epoch-1", "epoch-2", "hits.npy"]
    for k in (1, 2):
        names = {p.name for p in (out / "ft" / f"epoch-{k}").iterdir()}
        assert {"config.json", "model.safetensors", "tokenizer_config.json"} <= names
        assert not names & {"optimizer.pt", "scheduler.pt", "trainer_state.json", "training_args.bin"}
        AutoTokenizer.from_pretrained(out / "ft" / f"epoch-{k}")
    assert not list(out.glob("ft/checkpoint-*"))


def test_last_epoch_checkpoint_reproduces_the_reported_accuracy(tuned, source, corpus):
    out, metrics = tuned
    folder = out / "ft" / f"epoch-{MICRO.epochs}"
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    test = source[1]["test"].select(range(MICRO.test_size))
    batch = DataCollatorWithPadding(tokenizer)([{"input_ids": ids} for ids in test["input_ids"]])
    with torch.inference_mode():
        preds = model(**batch).logits.argmax(-1).numpy()
    assert np.mean(preds == np.array(test["label"])) == pytest.approx(metrics["accuracy"])
    hits = np.load(paths.hits(out / "ft"))  # (epochs, test reviews): the summary's intervals read these
    assert hits.shape == (MICRO.epochs, MICRO.test_size) and hits.dtype == np.int8
    np.testing.assert_array_equal(hits[-1], preds == np.array(test["label"]))
    assert [h.mean() for h in hits] == pytest.approx([e["eval_accuracy"] for e in metrics["epochs"]])
    assert np.bincount(preds, minlength=2).max() / len(preds) == pytest.approx(metrics["majority_share"])


def test_metrics_and_history(tuned, tmp_path):
    out, metrics = tuned
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]
    assert 0.5 <= metrics["tfidf_accuracy"] <= 1 and 0.5 <= metrics["majority_share"] <= 1
    finetune.save_metrics({"seed-42": metrics, "control": metrics}, tmp_path / "m.json", tmp_path / "h.csv")
    assert json.loads((tmp_path / "m.json").read_text()) == {"seed-42": metrics, "control": metrics}
    with open(tmp_path / "h.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["run", "epoch", "train_loss", "eval_accuracy", "eval_f1"]
    assert [r["run"] for r in rows] == ["seed-42", "seed-42", "control", "control"]
    accuracies = [e["eval_accuracy"] for e in metrics["epochs"]]
    assert [float(r["eval_accuracy"]) for r in rows[:2]] == pytest.approx(accuracies)
    assert float(rows[1]["eval_f1"]) == pytest.approx(metrics["f1"])


def test_same_params_same_metrics(tuned, source, corpus, tmp_path):
    again = run(source, corpus, tmp_path)
    assert again == tuned[1]  # no timings in the metrics: the whole file is reproducible


def pool_tasks(source, corpus, tmp_path, seeds=(1, 2)) -> list[dict]:
    """What finetune.tasks makes, for the micro encoder: datasets on disk, a folder per run."""
    folder, tokens = source
    tokens.save_to_disk(tmp_path / "tokens")
    corpus.save_to_disk(tmp_path / "corpus")
    (tmp_path / "stage").mkdir()
    return [{"name": "m", "source": str(folder), "cfg": MICRO, "seed": s, "tokens": str(tmp_path / "tokens"),
             "corpus": str(tmp_path / "corpus"), "out_dir": tmp_path / "stage" / f"seed-{s}"} for s in seeds]


@pytest.mark.slow  # spawns worker processes
def test_runs_side_by_side_give_the_metrics_of_runs_one_after_another(source, corpus, tmp_path):
    todo = pool_tasks(source, corpus, tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what the stage gives an in-process run, as each worker has
    try:
        alone = finetune.run_all(todo, 1, "test")
    finally:
        torch.set_num_threads(threads)
    first = {r: (tmp_path / "stage" / r / "hits.npy").read_bytes() for r in alone}
    side_by_side = finetune.run_all(todo, 2, "test")
    assert list(side_by_side) == ["seed-1", "seed-2"] and side_by_side == alone
    assert {r: (tmp_path / "stage" / r / "hits.npy").read_bytes() for r in alone} == first


@pytest.mark.slow  # spawns worker processes
def test_a_failed_run_in_a_worker_stops_the_stage_with_its_line(source, corpus, tmp_path):
    todo = pool_tasks(source, corpus, tmp_path)
    todo[1]["source"] = str(tmp_path / "nowhere")
    with pytest.raises(stage.StageError, match="does not exist .*pretrain stage"):
        finetune.run_all(todo, 2, "test")
    assert not (tmp_path / "stage" / "seed-2").exists()


def test_jobs_one_per_core_on_a_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setattr(stage, "n_threads", lambda: 2)
    assert finetune.n_jobs(MICRO, 4) == 2 and finetune.n_jobs(MICRO, 1) == 1
    assert finetune.n_jobs(MICRO.model_copy(update={"jobs": 3}), 4) == 3
    monkeypatch.setenv("RANK", "0")  # torchrun: every rank runs each run, one after another
    assert finetune.n_jobs(MICRO, 4) == 1


def test_gap_to_tfidf_fails_loudly_and_writes_nothing(source, corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(finetune, "tfidf_accuracy", lambda *a: 1.01)  # no model can reach it
    with pytest.raises(stage.StageError, match=r"trails TF-IDF 101.0% by more than 0.0 points"):
        run(source, corpus, tmp_path, cfg=MICRO.model_copy(update={"max_gap_to_tfidf": 0.0, "epochs": 1}))
    assert not any(tmp_path.iterdir())


def test_a_collapsed_last_epoch_is_an_error_an_early_one_is_listed():
    cfg = MICRO.model_copy(update={"max_majority_share": 0.9, "max_gap_to_tfidf": 5.0})
    rows = [{"epoch": 1, "majority_share": 1.0, "eval_accuracy": 0.5},
            {"epoch": 2, "majority_share": 0.6, "eval_accuracy": 0.8}]
    assert finetune.check_gates("m", rows, 0.8, cfg) == [1]
    assert finetune.check_gates("m", rows[1:], 0.8, cfg) == []
    with pytest.raises(stage.StageError, match=r"collapsed to one class at the last epoch \(100.0%"):
        finetune.check_gates("m", rows[::-1], 0.8, cfg)
    with pytest.raises(stage.StageError, match=r"accuracy 80.0% trails TF-IDF 85.5% by more than 5.0"):
        finetune.check_gates("m", rows, 0.855, cfg)
    finetune.check_gates("m", rows, 0.849, cfg)  # within 5 points


def test_sizes_larger_than_the_splits(source, corpus, tmp_path):
    with pytest.raises(stage.StageError, match="test_size 500 > 50 tokenised test reviews"):
        run(source, corpus, tmp_path, cfg=MICRO.model_copy(update={"test_size": 500}))


TOKENIZER_FILES = ["tokenizer.json", "vocab.json", "merges.txt"]  # camembert's, and flaubert's


@pytest.mark.parametrize("removed, named", [(["model.safetensors"], "model.safetensors"),
                                            (["config.json"], "config.json"),
                                            (TOKENIZER_FILES, "tokenizer files")])
def test_incomplete_checkpoint_folder(source, corpus, tmp_path, removed, named):
    broken = tmp_path / "broken"
    shutil.copytree(source[0], broken)
    for name in removed:
        (broken / name).unlink(missing_ok=True)
    with pytest.raises(encoders.EncoderError, match=f"{broken} lacks .*{named}"):
        run((broken, source[1]), corpus, tmp_path)
    assert not (tmp_path / "ft").exists()


def test_missing_checkpoint_folder(source, corpus, tmp_path):
    with pytest.raises(encoders.EncoderError, match="does not exist .*pretrain stage"):
        run((tmp_path / "nowhere", source[1]), corpus, tmp_path)


def test_config_disagreeing_with_tokenizer(source, corpus, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(source[0], broken)
    config = json.loads((broken / "config.json").read_text())
    config["pad_token_id"] = 7
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(encoders.EncoderError, match="disagree: pad_token_id=7 but tokenizer has"):
        run((broken, source[1]), corpus, tmp_path)


def test_tokens_from_another_tokenizer(source, corpus, tmp_path):
    folder, tokens = source
    alien = tokens.map(lambda row: {"input_ids": [10_000] + row["input_ids"][1:]})
    with pytest.raises(encoders.EncoderError, match="token id 10000 >= vocab size .* another tokenizer"):
        run((folder, alien), corpus, tmp_path)


def test_unknown_model_name():
    class P:
        models = {"camembert": None}
    with pytest.raises(stage.StageError, match="unknown model 'bert'.*camembert"):
        stage.model_params(P, "bert")


def test_short_disk_fails_before_training_and_writes_nothing(source, corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: SimpleNamespace(free=10**6))  # io reads .free only
    monkeypatch.setattr(finetune, "train", lambda *a: pytest.fail("trained with too little disk"))
    with pytest.raises(SystemExit, match=rf"^finetune: m: 2 epoch checkpoints: need ~\d+\.\d MB free in "
                                         rf"{re.escape(str(tmp_path / 'ft'))}, only 1\.0 MB free$"):
        run(source, corpus, tmp_path)
    assert not any(tmp_path.iterdir())


def test_disk_estimate_covers_the_checkpoints_written(tuned):
    out, _ = tuned
    model = AutoModelForSequenceClassification.from_pretrained(out / "ft" / "epoch-1")
    need = finetune.checkpoint_bytes(model, MICRO.epochs)
    files = [f for f in (out / "ft").rglob("*") if f.is_file()]
    weights = sum(f.stat().st_size for f in files if f.name == "model.safetensors")
    assert sum(f.stat().st_size for f in files) <= need
    # not a blind over-estimate: its weight part is the weights (the safetensors header, ~4 KB, is 2 % of
    # a 50 k-parameter model and nothing at 110 M)
    assert need - MICRO.epochs * 5 * 10**6 == pytest.approx(weights, rel=0.05)
