"""Train each architecture's tokenizer from scratch on French text (demo profile; used by ``pretrain``).

:func:`train` writes into a folder that ``AutoTokenizer.from_pretrained`` loads unchanged:

- camembert: a SentencePiece *unigram* model (a BPE one loads wrongly through CamembertTokenizer),
  saved as ``sentencepiece.bpe.model`` (the name CamembertTokenizer looks for), loaded with
  ``CamembertTokenizer.from_pretrained`` (ids as camembert-base: ``<s>NOTUSED`` 0, ``<pad>`` 1,
  ``</s>NOTUSED`` 2, ``<unk>`` 3, ``<s>`` 5, ``</s>`` 6 ... ``<mask>`` last) and re-saved as tokenizer.json.
- flaubert: FlaubertTokenizer's own Moses pre-tokenisation (it maps « » to ``"`` and ’ to ``'``), then
  BPE with the ``tokenizers`` library (word-final pieces end in ``</w>``, as FlaubertTokenizer.bpe
  expects), written as ``vocab.json`` (``<s>`` 0, ``</s>`` 1, ``<pad>`` 2, ``<unk>`` 3,
  ``<special0..9>`` 4-13, then pieces) and ``merges.txt``, loaded by FlaubertTokenizer (cased).

Every ASCII and French character gets a piece, so accents and quotes never become ``<unk>``.
"""
from __future__ import annotations

import functools
import json
import re
import string
import tempfile
from collections.abc import Sequence
from pathlib import Path

import sentencepiece as spm
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from tqdm.auto import tqdm
from transformers import CamembertTokenizer, FlaubertTokenizer

from embstudy import encoders, stage

FRENCH = "àâäæçéèêëîïôöœùûüÿÀÂÄÆÇÉÈÊËÎÏÔÖŒÙÛÜŸ«»‘’“”…–—€°"
REQUIRED_CHARS = "".join(sorted(set(string.ascii_letters + string.digits + string.punctuation + FRENCH)))
FLAUBERT_SPECIALS = ["<s>", "</s>", "<pad>", "<unk>"] + [f"<special{i}>" for i in range(10)]
MAX_LENGTH = 512  # both base models' position limit, as their hub tokenizers say
CAMEMBERT_EXTRA = 5  # <s>NOTUSED, <pad>, </s>NOTUSED, <unk>NOTUSED and <mask> around SentencePiece's pieces


def train(arch: str, texts: Sequence[str], vocab_size: int, folder: Path):
    """Train ``arch``'s tokenizer on ``texts``, save it into ``folder`` and return it loaded from there."""
    if arch not in encoders.ARCHS:
        raise encoders.EncoderError(f"vocab: unknown architecture {arch!r}; expected one of {encoders.ARCHS}")
    if not texts:
        raise encoders.EncoderError(f"vocab: no text to train the {arch} tokenizer on")
    (train_camembert if arch == "camembert" else train_flaubert)(texts, vocab_size, Path(folder))
    return encoders.load_tokenizer(folder)


def train_camembert(texts: Sequence[str], vocab_size: int, folder: Path) -> None:
    """SentencePiece unigram; ``vocab_size`` counts CamemBERT's extra special tokens too."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(texts), model_prefix=f"{tmp}/sentencepiece.bpe", model_type="unigram",
                vocab_size=vocab_size - CAMEMBERT_EXTRA,
                hard_vocab_limit=False,  # a small corpus may support fewer pieces
                required_chars=REQUIRED_CHARS, character_coverage=1.0,
                max_sentence_length=1 << 16,  # long reviews are otherwise dropped silently
                num_threads=stage.n_threads(), minloglevel=2)
        except RuntimeError as e:  # every character is a piece: Japanese text alone has hundreds
            short = re.search(r"smaller than required_chars\. \d+ vs (\d+)", str(e))
            if short is None:
                raise
            raise encoders.EncoderError(
                f"vocab: camembert: vocab_size {vocab_size} cannot hold the corpus's characters and special "
                f"tokens; the encoder's vocab_size must be at least {int(short[1]) + CAMEMBERT_EXTRA}") from None
        Path(tmp, "sentencepiece.bpe.vocab").unlink()  # keeps from_pretrained on the .model file
        CamembertTokenizer.from_pretrained(tmp, model_max_length=MAX_LENGTH).save_pretrained(folder)


@functools.cache
def _bootstrap() -> FlaubertTokenizer:
    """A FlaubertTokenizer with a specials-only vocabulary: its Moses pipeline, without any BPE."""
    with tempfile.TemporaryDirectory() as tmp:
        return write_flaubert_files(Path(tmp), list(FLAUBERT_SPECIALS), [])


@functools.lru_cache(maxsize=1 << 17)  # training the BPE and packing the MLM data split the same texts
def moses_one(text: str) -> str:
    """``text`` pre-tokenised by FlaubertTokenizer's own pipeline, words joined by single spaces."""
    boot = _bootstrap()
    words = boot.moses_tokenize(boot.moses_pipeline(boot.preprocess_text(text), lang="fr"), lang="fr")
    return " ".join(words)


def moses(texts: Sequence[str]) -> list[str]:
    return [moses_one(t) for t in tqdm(texts, desc="moses", mininterval=5)]


def encode(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """``tokenizer(texts)["input_ids"]``; for FlauBERT the same ids via the cached Moses split (2x faster)."""
    if not isinstance(tokenizer, FlaubertTokenizer):
        return tokenizer(list(texts))["input_ids"]
    pieces = ([p for word in words.split() for p in tokenizer.bpe(word).split(" ")] for words in moses(texts))
    return [tokenizer.build_inputs_with_special_tokens(tokenizer.convert_tokens_to_ids(p)) for p in pieces]


def train_flaubert(texts: Sequence[str], vocab_size: int, folder: Path) -> None:
    """Byte-pair merges over Moses tokens; both forms of every character are in the vocabulary."""
    words = moses(texts)
    alphabet = sorted(set(REQUIRED_CHARS) | {c for w in words for c in w if not c.isspace()})
    finals = [c + "</w>" for c in alphabet]
    bpe = Tokenizer(models.BPE(unk_token="<unk>", end_of_word_suffix="</w>"))
    bpe.pre_tokenizer = pre_tokenizers.WhitespaceSplit()  # Moses already split the words
    # Word-final characters listed up front get fixed ids: left to the trainer they are numbered in
    # hash-map order, which breaks ties between equally frequent merges differently on every run.
    bpe.train_from_iterator(words, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=FLAUBERT_SPECIALS + finals, initial_alphabet=alphabet,
        end_of_word_suffix="</w>", show_progress=False))
    merges = json.loads(bpe.to_str())["model"]["merges"]  # [[left, right], ...] in learning order
    pieces = list(dict.fromkeys(FLAUBERT_SPECIALS + alphabet + finals + [a + b for a, b in merges]))
    if set(pieces) != set(bpe.get_vocab()):
        raise encoders.EncoderError("vocab: flaubert BPE vocabulary is not its alphabet plus its merges")
    write_flaubert_files(folder, pieces, merges).save_pretrained(folder)


def write_flaubert_files(folder: Path, pieces: list[str], merges: list) -> FlaubertTokenizer:
    """Write FlauBERT's ``vocab.json`` (piece -> id in list order) and ``merges.txt``; load them, cased."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({p: i for i, p in enumerate(pieces)}, ensure_ascii=False),
                                       encoding="utf-8")
    # FlaubertTokenizer drops the text after the last newline, so every merge line ends with one.
    (folder / "merges.txt").write_text("".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    return FlaubertTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), do_lowercase=False,
                             model_max_length=MAX_LENGTH)
