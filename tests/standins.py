"""Tiny stand-ins for hub encoders of every family the study reads, offline.

Each is a randomly initialised masked LM of its family (layers x 32) with a tokenizer in the family's real
format, trained on a few texts: WordPiece ``vocab.txt`` (BERT, DistilBERT, ELECTRA), byte-level BPE
``vocab.json`` + ``merges.txt`` (RoBERTa), SentencePiece (XLM-R's ``sentencepiece.bpe.model``, DeBERTa-v2's
``spm.model``), a BPE ``tokenizer.json`` (ModernBERT), and the project's own unigram and Moses + BPE
tokenizers (CamemBERT, FlauBERT: ``embstudy.vocab``). :func:`cache_snapshot` lays a folder out as the hub
client caches a download.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import sentencepiece as spm
import torch
import transformers
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoModelForMaskedLM, AutoTokenizer, PreTrainedTokenizerFast

from embstudy import encoders, vocab
from embstudy.params import Encoder

WORDPIECE = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
ROBERTA = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
# family -> (config class, tokenizer class, its special tokens) for the families not built by embstudy.vocab
FAMILIES = {
    "bert": ("BertConfig", "BertTokenizer", WORDPIECE),
    "distilbert": ("DistilBertConfig", "DistilBertTokenizer", WORDPIECE),
    "electra": ("ElectraConfig", "ElectraTokenizer", WORDPIECE),
    "roberta": ("RobertaConfig", "RobertaTokenizer", ROBERTA),
    "xlm-roberta": ("XLMRobertaConfig", "XLMRobertaTokenizer", ROBERTA),
    "deberta-v2": ("DebertaV2Config", "DebertaV2Tokenizer", WORDPIECE),
    "modernbert": ("ModernBertConfig", None, WORDPIECE),
}
ALL = ("camembert", "flaubert", *FAMILIES)


def vocab_stub(folder: Path, size: int) -> None:
    """A WordPiece tokenizer of ``size`` ids in ``folder``, ``[CLS]`` at id 0: for encoders built from a config
    alone, read by stages that load a checkpoint's tokenizer (extract names the first token from it)."""
    words = ["[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]"] + [f"w{i}" for i in range(size - 5)]
    (folder / "vocab.txt").write_text("".join(w + "\n" for w in words))
    (folder / "tokenizer_config.json").write_text('{"tokenizer_class": "BertTokenizer"}')


def wordpiece(texts: list[str], folder: Path) -> Path:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=300, special_tokens=WORDPIECE))
    words = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    (folder / "vocab.txt").write_text("".join(w + "\n" for w, _ in words), encoding="utf-8")
    return folder / "vocab.txt"


def byte_bpe(texts: list[str], folder: Path) -> tuple[Path, Path]:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=ROBERTA,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return tuple(Path(p) for p in tok.model.save(str(folder)))  # vocab.json, merges.txt


def sentencepiece(texts: list[str], folder: Path, name: str, specials: list[str]) -> Path:
    """A unigram SentencePiece model whose first ids are ``specials`` (as the family's tokenizer expects)."""
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_prefix=str(folder / name), vocab_size=150, hard_vocab_limit=False,
        model_type="unigram",
        pad_id=0, unk_id=3 if specials is ROBERTA else 1, bos_id=-1, eos_id=-1,
        user_defined_symbols=[s for s in specials if s not in ("[PAD]", "<s>", "<pad>", "[UNK]", "<unk>")],
        minloglevel=2)
    (folder / f"{name}.vocab").unlink()
    return folder / f"{name}.model"


def modernbert_tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=WORDPIECE))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")


def family_tokenizer(family: str, texts: list[str], folder: Path):
    """The family's tokenizer files written into ``folder`` as the hub has them (vocab.txt, vocab.json +
    merges.txt, a SentencePiece model; tokenizer.json for ModernBERT) with a tokenizer_config.json naming the
    class, then loaded back by AutoTokenizer from those files."""
    _, tokenizer_cls, specials = FAMILIES[family]
    if family == "modernbert":
        modernbert_tokenizer(texts).save_pretrained(folder)
    elif family == "roberta":
        byte_bpe(texts, folder)
    elif specials is WORDPIECE and family != "deberta-v2":
        wordpiece(texts, folder)
    else:
        sentencepiece(texts, folder, "spm" if family == "deberta-v2" else "sentencepiece.bpe", specials)
    if tokenizer_cls:
        lower = {"do_lower_case": True} if specials is WORDPIECE and family != "deberta-v2" else {}
        (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": tokenizer_cls, **lower}))
    return AutoTokenizer.from_pretrained(folder)


def build(family: str, texts: list[str], folder: Path, layers: int = 2) -> Path:
    """A stand-in of ``family`` saved in ``folder`` (config, safetensors, tokenizer files)."""
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    if family in encoders.ARCHS:  # the project's own builders, as the demo's encoders
        tokenizer = vocab.train(family, texts, 400, folder)
        encoders.build_mlm(family, Encoder(layers=layers, hidden=32, heads=2, ffn=128, vocab_size=400),
                           tokenizer).save_pretrained(folder)
        return folder
    tokenizer = family_tokenizer(family, texts, folder)
    ids = {"pad_token_id": tokenizer.pad_token_id}
    ids_of_a = tokenizer("a")["input_ids"]
    first, last = ids_of_a[0], ids_of_a[-1]
    if family in ("roberta", "xlm-roberta", "modernbert"):
        ids |= {"bos_token_id": first, "eos_token_id": last}
    if family == "modernbert":
        ids |= {"cls_token_id": first, "sep_token_id": last}
    sizes = ({"dim": 32, "n_layers": layers, "n_heads": 2, "hidden_dim": 128} if family == "distilbert" else
             {"hidden_size": 32, "num_hidden_layers": layers, "num_attention_heads": 2, "intermediate_size": 128})
    if family == "electra":
        sizes["embedding_size"] = 32
    config = getattr(transformers, FAMILIES[family][0])(vocab_size=len(tokenizer), max_position_embeddings=128,
                                                        **sizes, **ids)
    AutoModelForMaskedLM.from_config(config).save_pretrained(folder)
    return folder


def cache_snapshot(hf_home: Path, repo_id: str, folder: Path) -> Path:
    """Lay out ``folder``'s files as the hub client caches a download: blobs, refs/main, snapshot links."""
    repo = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    sha = hashlib.sha1(repo_id.encode()).hexdigest()  # a commit id of the right shape
    snap = repo / "snapshots" / sha
    for d in (repo / "blobs", repo / "refs", snap):
        d.mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)
    for file in sorted(folder.iterdir()):
        blob = repo / "blobs" / hashlib.sha256(file.read_bytes()).hexdigest()
        shutil.copyfile(file, blob)
        (snap / file.name).symlink_to(Path("..", "..", "blobs", blob.name))
    return snap
