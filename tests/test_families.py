"""Any encoder family, any language, offline: stand-ins of every family the study reads, the English profile end
to end on three of them, an unsupported family, and the corpus step without the network.

The stand-ins (``standins.py``) are tiny random masked LMs with tokenizers in their families' real file formats.
The pipeline test lays three of them out as a local hub cache (``bert-base-uncased``, ``roberta-base`` and a
shallower DeBERTa-v2, ``microsoft/deberta-v3-xsmall``), puts synth's English corpus in the real Webis-CLS-10 layout
where ``data.dvc`` expects the tarball, records it with ``python -m embstudy.fetch`` (``make data``), and runs
``conf/english.yaml`` at micro sizes with the network cut: ``dvc repro`` and the book preview.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

import french_fixture
import standins
from conftest import MICRO, copy_repo, env_for, offline
from embstudy import encoders, extract, params, synth

ENGLISH = params.Synth(seed=3, labelled_per_class=30, unlabeled_per_domain=60, label_noise=0.08, negation_rate=0.15,
                       contrast_rate=0.1)  # synth's English corpus: the tarball a user downloads, at micro sizes

EXTRACT = params.Extract(batch_size=4, cos_sentences=4, cov_sentences=4, erank_sentences=4, erank_tokens=8,
                         baseline_sentences=4, hist_bins=10, cka_sentences=10, reviews=None)
# the English profile's models, and a third of another depth and tokenizer format
HUB_IDS = {"bert": "bert-base-uncased", "roberta": "roberta-base", "deberta": "microsoft/deberta-v3-xsmall"}
FAMILY = {"bert": "bert", "roberta": "roberta", "deberta": "deberta-v2"}
DEPTH = {"bert": 12, "roberta": 12, "deberta": 6}  # the profile probes layers 5, 7, 9, 11, 12


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return list(french_fixture.corpus(n_train=40, n_test=12, n_unlabeled=60)["unlabeled"]["text"])


@pytest.fixture(scope="module")
def built(tmp_path_factory, texts) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("families")
    return {family: standins.build(family, texts, root / family) for family in standins.ALL}


@pytest.mark.parametrize("family", standins.ALL)
def test_each_family_loads_as_a_classifier_and_extracts_every_layer(built, texts, family):
    folder = built[family]
    model, tokenizer = encoders.load_classifier(folder)  # special tokens checked against the config
    ids = [tokenizer(t, truncation=True, max_length=64)["input_ids"] for t in texts[:12]]
    assert all(row[0] in tokenizer.all_special_ids for row in ids)  # the first-token vector is a special token's
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids[0]])).logits
    assert logits.shape == (1, 2)
    encoder = extract.load_encoder(str(folder), torch.device("cpu"))
    cls, stats = extract.run_variant(encoder, {"train": ids[:6], "test": ids}, EXTRACT, family)
    assert cls["test"].shape == (12, 3, 32) and stats.layers == 3  # embeddings + 2 layers, hidden 32


def test_a_config_disagreeing_with_its_tokenizer_is_named(built, tmp_path):
    folder = tmp_path / "bert"
    shutil.copytree(built["bert"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["pad_token_id"] = 4
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(encoders.EncoderError, match=r"bert config and tokenizer disagree: pad_token_id=4 but "
                                                    r"tokenizer has 0$"):
        encoders.load_classifier(folder)


def test_an_unsupported_family_stops_in_one_line_before_any_work(built, tmp_path):
    """GPT-2 has a sequence-classification head but no masked LM: a decoder, whose first token is a word."""
    folder = tmp_path / "gpt2"
    GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=400)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(built["bert"]).save_pretrained(folder)
    for load in (encoders.load_tokenizer, encoders.load_classifier):  # tokenize, the first stage, loads a tokenizer
        with pytest.raises(encoders.EncoderError) as err:
            load(folder)
        assert str(err.value) == (
            f"encoders: {folder}: model type 'gpt2' has no masked-LM class (an encoder) in transformers "
            f"{encoders.transformers.__version__}: it is not an encoder this study reads (BERT, RoBERTa, XLM-R, "
            "CamemBERT, XLM, FlauBERT, DistilBERT, ELECTRA, DeBERTa-v2, ModernBERT...)")


def run(cmd: list[str], root: Path, hf: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=root, env=env_for(root) | {"HF_HOME": str(hf)}, capture_output=True, text=True,
                          timeout=timeout)


def check(step: str, done) -> None:
    assert done.returncode == 0, f"{step} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"


@pytest.fixture(scope="module")
def english_repo(tmp_path_factory, texts) -> Path:
    """A repository copy that ran the English profile on three stand-in families, offline."""
    tmp = tmp_path_factory.mktemp("english")
    root, hf = copy_repo(tmp / "repo"), tmp / "hf"
    for name, repo_id in HUB_IDS.items():
        folder = standins.build(FAMILY[name], texts, tmp / "standins" / name, layers=DEPTH[name])
        standins.cache_snapshot(hf, repo_id, folder)
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "cls-acl10-unprocessed.tar.gz").write_bytes(synth.build(synth.corpus(ENGLISH, "en"), "en"))
    sizes = {k: v for k, v in MICRO.items() if k not in ("models", "data")}
    sizes["models"] = {name: {"checkpoint": repo_id} for name, repo_id in HUB_IDS.items()}
    (tmp / "sizes.yaml").write_text(yaml.safe_dump(sizes))
    for step in (["python", "-m", "embstudy.use_profile", "conf/english.yaml"],
                 ["python", "-m", "embstudy.use_profile", str(tmp / "sizes.yaml")],
                 offline(["python", "-m", "embstudy.fetch"])):
        check(" ".join(step), run(step, root, hf))
    check("dvc repro", run(offline(["dvc", "repro"]), root, hf, 900))
    check("book preview", run(["python", "-m", "embstudy.book", "--preview"], root, hf, 600))
    return root


def test_the_english_profile_runs_on_three_families_and_the_book_names_their_first_tokens(english_repo):
    root = english_repo
    p = yaml.safe_load((root / "params.yaml").read_text())
    assert (p["profile"], p["data"]["language"], sorted(p["models"])) == ("english", "en", sorted(HUB_IDS))
    prepared = json.loads((root / "metrics" / "prepare.json").read_text())
    assert prepared["train"]["reviews"] > 60 and "mean_words" in prepared["train"]
    for name in HUB_IDS:
        run_json = json.loads((root / "artifacts" / "extract" / name / "run.json").read_text())
        assert run_json["hidden_states"] == DEPTH[name] + 1
        assert run_json["first_token"] == ("<s>" if name == "roberta" else "[CLS]")
        grid = json.loads((root / "metrics" / "probe" / f"{name}.json").read_text())
        layers = {key for by_layer in grid["linear"].values() for key in by_layer}
        assert layers == {f"layer_{k}" for k in (5, 7, 9, 11, 12) if k <= DEPTH[name]}  # the shallower: layer 5
    status = run(["dvc", "status", "--json", "dvc.yaml"], root, root / "unused-hf")
    assert json.loads(status.stdout) == {}, status.stdout
    cls = (root / "_book" / "preview" / "report" / "cls.html").read_text()
    assert "English profile" in cls and "Demo profile" not in cls
    assert "<code>[CLS]</code> for bert" in cls and "<code>&lt;s&gt;</code> for roberta" in cls


def test_fetch_recorded_the_hand_downloaded_tarball_and_rejects_another(english_repo, tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(english_repo, root, symlinks=True, ignore=shutil.ignore_patterns("tmp", "artifacts", "_book"))
    recorded = yaml.safe_load((root / "data.dvc").read_text())["outs"][0]
    tarball = root / "data" / "cls-acl10-unprocessed.tar.gz"
    assert recorded["size"] == tarball.stat().st_size and len(recorded["md5"]) == 32
    status = run(["dvc", "status", "--json", "data.dvc"], root, tmp_path)
    assert json.loads(status.stdout) == {}, status.stdout  # DVC agrees with the recorded file
    tarball.write_bytes(synth.build(synth.corpus(ENGLISH.model_copy(update={"seed": 4}), "en"), "en"))
    done = run(offline(["python", "-m", "embstudy.fetch"]), root, tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"data: {tarball} has md5 ")


def test_fetch_without_the_network_says_so_with_the_way_out(tmp_path):
    root = copy_repo(tmp_path / "repo")
    done = run(offline(["python", "-m", "embstudy.fetch"]), root, tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("data: zenodo.org cannot be reached from here (no network?)")
    for hint in ("https://zenodo.org/records/3251672/files/cls-acl10-unprocessed.tar.gz",
                 "put it at data/cls-acl10-unprocessed.tar.gz", "`make data`"):
        assert hint in line
