"""Tokenizers trained here: AutoTokenizer loads them, no <unk> in French text, each model's special ids."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoTokenizer, CamembertTokenizer, FlaubertTokenizer

import french_fixture
from embstudy import encoders, vocab

SAMPLES = ["L'été dernier, « Où est passée la qualité ? » m’a déçu : ça arrive.",
           "Noël à Besançon : œuvre ÉMOUVANTE, très réussie !", "Un critique l’a qualifié de « génial »."]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    corpus = french_fixture.corpus(n_train=100, n_unlabeled=200)
    return list(corpus["unlabeled"]["text"]) + list(corpus["train"]["text"])


@pytest.fixture(scope="module")
def folders(texts, tmp_path_factory) -> dict:
    """Each architecture's tokenizer, trained once for the module."""
    out = {arch: tmp_path_factory.mktemp(arch) for arch in encoders.ARCHS}
    for arch, folder in out.items():
        vocab.train(arch, texts, 300, folder)
    return out


@pytest.fixture(scope="module")
def loaded(folders) -> list:
    return [AutoTokenizer.from_pretrained(folder) for folder in folders.values()]


@pytest.fixture(params=encoders.ARCHS)
def trained(request, folders):
    return request.param, folders[request.param]


def test_autotokenizer_loads_the_architecture_class(trained):
    arch, folder = trained
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert isinstance(tokenizer, {"camembert": CamembertTokenizer, "flaubert": FlaubertTokenizer}[arch])
    assert tokenizer.model_max_length == 512


@pytest.mark.parametrize("text", SAMPLES)
def test_french_round_trip_without_unk(trained, text):
    arch, folder = trained
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.unk_token_id not in ids
    decoded = tokenizer.decode(ids, skip_special_tokens=True)
    if arch == "camembert":
        assert decoded == text
    else:  # FlauBERT's Moses pipeline maps « » to " and ’ to ', and splits punctuation off words
        assert decoded.split() == vocab.moses([text])[0].split()
        assert '"' in decoded if "«" in text else True


@settings(max_examples=30, deadline=None)
@given(st.text(alphabet=vocab.REQUIRED_CHARS + " ", min_size=1, max_size=40))
def test_no_unk_for_any_french_or_ascii_text(loaded, text):
    for tokenizer in loaded:
        assert tokenizer.unk_token_id not in tokenizer(text)["input_ids"], (type(tokenizer).__name__, text)


def test_camembert_ids_match_camembert_base_layout(folders):
    tokenizer = AutoTokenizer.from_pretrained(folders["camembert"])
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3]) == ["<s>NOTUSED", "<pad>", "</s>NOTUSED", "<unk>"]
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (5, 6, 1)
    assert tokenizer.mask_token_id == len(tokenizer) - 1
    assert len(tokenizer) <= 300
    ids = tokenizer("été")["input_ids"]
    assert ids[0] == 5 and ids[-1] == 6


def test_flaubert_files_match_flaubert_layout(folders):
    folder = folders["flaubert"]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    pieces = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    assert [t for t, _ in sorted(pieces.items(), key=lambda kv: kv[1])[:14]] == vocab.FLAUBERT_SPECIALS
    assert sorted(pieces.values()) == list(range(len(pieces)))
    merges = (folder / "merges.txt").read_text(encoding="utf-8")
    assert merges.endswith("\n") and all(len(line.split()) == 2 for line in merges.splitlines())
    assert (tokenizer.bos_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id, tokenizer.unk_token_id,
            tokenizer.mask_token_id) == (0, 1, 2, 3, 5)
    for c in "éàç«»'":  # both the word-inner and the word-final form of each character
        assert c in pieces and c + "</w>" in pieces


def test_flaubert_pieces_equal_the_trained_bpe(texts, folders):
    """FlaubertTokenizer's own BPE over our files splits words exactly as the `tokenizers` BPE does."""
    folder = folders["flaubert"]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    bpe = Tokenizer(models.BPE.from_file(str(folder / "vocab.json"), str(folder / "merges.txt"),
                                         unk_token="<unk>", end_of_word_suffix="</w>"))
    bpe.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    for text, words in zip(texts[:50], vocab.moses(texts[:50])):
        assert tokenizer.tokenize(text) == bpe.encode(words).tokens


@pytest.mark.parametrize("arch", encoders.ARCHS)
def test_training_is_deterministic(arch, texts, folders, tmp_path):
    a, b = AutoTokenizer.from_pretrained(folders[arch]), vocab.train(arch, texts, 300, tmp_path)
    assert a.get_vocab() == b.get_vocab()
    assert [a(t)["input_ids"] for t in texts[:20]] == [b(t)["input_ids"] for t in texts[:20]]


def test_unknown_architecture_is_rejected(texts, tmp_path):
    with pytest.raises(encoders.EncoderError, match="unknown architecture 'bert'"):
        vocab.train("bert", texts, 300, tmp_path)
    assert not any(tmp_path.iterdir())


def test_empty_corpus_is_rejected(tmp_path):
    with pytest.raises(encoders.EncoderError, match="no text"):
        vocab.train("camembert", [], 300, tmp_path)


def test_encode_equals_calling_the_tokenizer(trained, texts):
    tokenizer = AutoTokenizer.from_pretrained(trained[1])
    assert vocab.encode(tokenizer, texts[:60] + SAMPLES) == tokenizer(texts[:60] + SAMPLES)["input_ids"]
