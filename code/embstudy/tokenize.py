"""Stage ``tokenize``: each model's own tokenizer over the train and test reviews, once.

Reads ``artifacts/prepare/cls`` and the model's tokenizer (the demo's
``artifacts/pretrain/<model>`` or the hub checkpoint named in ``models``) and
writes ``artifacts/tokenize/<model>``: splits ``train``/``test`` in the same
row order, columns ``input_ids`` (special tokens added, truncated to
``tokenize.max_length``, never padded: batches pad dynamically later),
``length``, ``label``, ``domain``, ``idx``.

Run: ``python -m embstudy.tokenize camembert`` (or ``dvc repro tokenize``).
"""
from __future__ import annotations

import hashlib
import json
import sys

from datasets import DatasetDict, load_from_disk

from embstudy import encoders, files, paths, stage


def tokenize(corpus: DatasetDict, tokenizer, max_length: int) -> DatasetDict:
    """Token ids per review; the text column is dropped (the corpus keeps it)."""

    def encode(batch):
        ids = tokenizer(batch["text"], truncation=True, max_length=max_length)["input_ids"]
        return {"input_ids": ids, "length": [len(x) for x in ids]}

    # keep_in_memory: map() would otherwise write cache-*.arrow files into artifacts/prepare, a DVC output.
    # new_fingerprint: datasets' own hashes the tokenizer object, whose state holds its folder's absolute
    # path, so another clone would save a different state.json (and DVC would rerun everything after).
    return DatasetDict({s: corpus[s].map(encode, batched=True, batch_size=1000, remove_columns=["text"],
                                         desc=f"tokenize {s}", keep_in_memory=True,
                                         new_fingerprint=fingerprint(corpus[s]["text"], tokenizer, max_length))
                        for s in ("train", "test")})


def fingerprint(texts: list[str], tokenizer, max_length: int) -> str:
    """A path-independent name for the tokenised split: its texts, the tokenizer's vocabulary, max_length."""
    digest = hashlib.sha256(f"{type(tokenizer).__name__}|{max_length}|".encode())
    digest.update(json.dumps(tokenizer.get_vocab(), sort_keys=True).encode())
    for text in texts:
        digest.update(text.encode() + b"\0")
    return digest.hexdigest()[:16]


def main(name: str) -> None:
    p, logger = stage.start("tokenize", name)
    model = p.models[name]
    tokenizer = encoders.load_tokenizer(encoders.checkpoint(name, model))
    tokens = tokenize(load_from_disk(str(paths.CORPUS)), tokenizer, p.tokenize.max_length)
    for split, ds in tokens.items():
        lengths = ds["length"]
        truncated = sum(n >= p.tokenize.max_length for n in lengths)
        logger.info("%s: %d reviews, mean %.1f tokens, %d truncated", split, len(ds), sum(lengths) / len(ds), truncated)
    with files.atomic_dir(paths.tokens(name)) as tmp:
        tokens.save_to_disk(str(tmp))


if __name__ == "__main__":
    main(sys.argv[1])
