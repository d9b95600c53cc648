"""Stage ``control``: the floor — the model's architecture with random weights, as it is and fine-tuned.

Pre-training's effect on the probes and on the geometry is only readable against the same
architecture without it. Reads the model's checkpoint (``encoders.checkpoint``: its config and
tokenizer only, never its weights), ``artifacts/tokenize/<name>``, ``artifacts/prepare/cls`` and
params ``control`` and ``finetune``. Writes ``artifacts/control/<name>/init`` (the randomly
initialised encoder + the model's tokenizer, save_pretrained; seeded by ``control.seed``) and
``artifacts/control/<name>/finetune/epoch-k`` (that encoder fine-tuned exactly like the model, with
the first of ``finetune.seeds``), ``metrics/control/<name>.json`` and ``-history.csv``.

The fine-tuning gates do not apply: a floor may trail TF-IDF or predict one class; a collapse is
logged and listed (``early_collapsed_epochs``) so the book can say so.

Run: ``python -m embstudy.control camembert`` (or ``dvc repro control``).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import torch
from datasets import load_from_disk
from transformers import AutoConfig, AutoModel

from embstudy import encoders, files, finetune, paths, stage

logger = logging.getLogger("embstudy.control")


def random_encoder(source: str, seed: int, out: Path) -> None:
    """``source``'s architecture and tokenizer with freshly drawn weights (its own init scheme), into ``out``."""
    config = AutoConfig.from_pretrained(source)
    tokenizer = encoders.load_tokenizer(source)
    encoders.check_special_tokens(tokenizer, config)
    torch.manual_seed(seed)
    model = AutoModel.from_config(config)  # the base encoder: fine-tuning adds its head, extract reads it as is
    with files.atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    logger.info("random %s encoder, %d parameters, seed %d", config.model_type, model.num_parameters(), seed)


def main(name: str) -> None:
    p, _ = stage.start("control", name)
    source = encoders.checkpoint(name, p.models[name])
    random_encoder(source, p.control.seed, paths.control_init(name))
    finetune.run(name, str(paths.control_init(name)), finetune.recipe(p, name), p.finetune.seeds[0],
                 load_from_disk(str(paths.tokens(name))), load_from_disk(str(paths.CORPUS)),
                 paths.control_finetuned(name), paths.metrics("control", name),
                 paths.metrics("control", name, "-history.csv"), gates=False)


if __name__ == "__main__":
    main(sys.argv[1])
