"""Stage ``control``: the floor — the model's architecture with random weights.

Pre-training's effect on the probes and on the geometry is only readable against the same
architecture without it. Reads the model's checkpoint (``encoders.checkpoint``: its config and
tokenizer only, never its weights) and params ``control``. Writes ``artifacts/control/<name>/init``:
the randomly initialised encoder (its own init scheme, seeded by ``control.seed``) and the model's
tokenizer, save_pretrained. Extract reads it as it is; the finetune stage fine-tunes it like the
pre-trained encoder (``artifacts/finetune/<name>/control``), ungated: a floor may trail TF-IDF.

Run: ``python -m embstudy.control camembert`` (or ``dvc repro control@camembert``).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel

from embstudy import encoders, files, paths, stage

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
    random_encoder(encoders.checkpoint(name, p.models[name]), p.control.seed, paths.control_init(name))


if __name__ == "__main__":
    main(sys.argv[1])
