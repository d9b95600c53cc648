"""Stage ``pretrain``: a tokenizer and a small masked-LM encoder trained from scratch (demo profile).

Reads ``artifacts/prepare/cls`` (unlabeled + train text; never test) and params ``models.<name>``
and ``pretrain``. Writes ``artifacts/pretrain/<name>`` (model + tokenizer via save_pretrained, so
AutoTokenizer and AutoModelForSequenceClassification load it; ``SOURCE.json`` says where the
weights come from), ``metrics/pretrain/<name>.json`` and ``metrics/pretrain/<name>-loss.csv``.
When ``models.<name>.checkpoint`` names a hub model (paper profile) it only writes those notes.

Gate: masked-token accuracy on held-out unlabeled reviews must reach ``min_accuracy_ratio`` times
the accuracy of always predicting the most frequent masked token, else it exits non-zero, writing
nothing. Training uses transformers' Trainer rather than a hand loop: the same seeded sampler, warm-up and
decay schedule and logging as fine-tuning, for an overhead lost in the ~150 ms steps of the demo encoders.
Reviews are packed into full ``seq_len`` blocks, so no step computes on padding.

Run: ``python -m embstudy.pretrain camembert`` (or ``dvc repro pretrain``).
"""
from __future__ import annotations

import itertools
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset, DatasetDict, load_from_disk
from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments

from embstudy import encoders, io, log, params, paths, vocab
from embstudy.params import Model, Pretrain

logger = logging.getLogger("embstudy.pretrain")


def split_texts(corpus: DatasetDict, heldout: int, seed: int) -> tuple[list[str], list[str]]:
    """``(training texts, held-out texts)``: a seeded random ``heldout`` of unlabeled reviews kept apart."""
    unlabeled = list(corpus["unlabeled"]["text"])
    if heldout >= len(unlabeled):
        raise encoders.EncoderError(f"pretrain: heldout {heldout} >= {len(unlabeled)} unlabeled reviews")
    order = np.random.default_rng(seed).permutation(len(unlabeled))
    kept = [unlabeled[i] for i in sorted(order[heldout:])] + list(corpus["train"]["text"])
    return kept, [unlabeled[i] for i in sorted(order[:heldout])]


def pack(tokenizer, texts: list[str], seq_len: int) -> list[list[int]]:
    """Reviews (with their special tokens) concatenated and cut into full ``seq_len`` blocks: no padding."""
    ids = list(itertools.chain.from_iterable(vocab.encode(tokenizer, texts)))
    return [ids[i:i + seq_len] for i in range(0, len(ids) - seq_len + 1, seq_len)]


def train(model, tokenizer, blocks: list[list[int]], cfg: Pretrain, workdir: str) -> list[dict]:
    """MLM with Trainer (linear warm-up then decay, seeded order and masking); returns the log history."""
    args = TrainingArguments(
        output_dir=workdir, max_steps=cfg.steps, per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.lr, warmup_steps=min(cfg.warmup, cfg.steps), lr_scheduler_type="linear",
        weight_decay=0.01, adam_beta2=0.98,  # RoBERTa's pre-training values, stabler at a high lr
        logging_steps=max(1, cfg.steps // 100), save_strategy="no", report_to="none",
        seed=cfg.seed, data_seed=cfg.seed, use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=cfg.mask_prob, seed=cfg.seed)
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_dict({"input_ids": blocks}),
                      data_collator=collator)
    trainer.train()
    return trainer.state.log_history


@torch.inference_mode()
def evaluate(model, tokenizer, blocks: list[list[int]], cfg: Pretrain) -> dict:
    """Masked-LM loss and accuracy on held-out blocks masked once (fixed seed), and the constant baseline."""
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=cfg.mask_prob, seed=cfg.seed + 1)
    model.eval()
    device = next(model.parameters()).device
    loss, correct, targets = 0.0, 0, []
    for start in range(0, len(blocks), cfg.batch_size):
        batch = collator([{"input_ids": b} for b in blocks[start:start + cfg.batch_size]])
        labels = batch["labels"].to(device)
        masked = labels != -100  # (batch, seq_len)
        logits = model(input_ids=batch["input_ids"].to(device)).logits[masked]  # (n_masked, vocab)
        loss += torch.nn.functional.cross_entropy(logits.float(), labels[masked], reduction="sum").item()
        correct += (logits.argmax(-1) == labels[masked]).sum().item()
        targets.append(labels[masked].cpu())
    targets = torch.cat(targets)
    n = len(targets)
    return {"mlm_loss": loss / n, "masked_accuracy": correct / n, "masked_tokens": n,
            "baseline_accuracy": torch.bincount(targets).max().item() / n}


def run(name: str, model_params: Model, cfg: Pretrain, corpus: DatasetDict,
        out_dir: Path, metrics_path: Path, loss_path: Path) -> dict:
    """Pre-train ``name`` and write its checkpoint and metrics; returns the metrics."""
    if model_params.checkpoint is not None:
        return skip(model_params.checkpoint, out_dir, metrics_path, loss_path)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(encoders.n_threads())
    texts, heldout = split_texts(corpus, cfg.heldout, cfg.seed)
    start = time.perf_counter()
    with io.atomic_dir(out_dir) as tmp:
        tokenizer = vocab.train(model_params.arch, texts, model_params.encoder.vocab_size, tmp)
        model = encoders.build_mlm(model_params.arch, model_params.encoder, tokenizer)
        blocks, held = pack(tokenizer, texts, cfg.seq_len), pack(tokenizer, heldout, cfg.seq_len)
        if not held:
            raise encoders.EncoderError(
                f"pretrain: {name}: held-out text is shorter than one {cfg.seq_len}-token block")
        logger.info("%s: %d params, vocab %d, %d training blocks of %d tokens, %d held out",
                    name, model.num_parameters(), len(tokenizer), len(blocks), cfg.seq_len, len(held))
        tick = time.perf_counter()
        with tempfile.TemporaryDirectory() as workdir:
            history = train(model, tokenizer, blocks, cfg, workdir)
        train_seconds = time.perf_counter() - tick
        metrics = evaluate(model, tokenizer, held, cfg)
        if metrics["masked_accuracy"] < cfg.min_accuracy_ratio * metrics["baseline_accuracy"]:
            raise encoders.EncoderError(
                f"pretrain: {name}: masked-token accuracy {metrics['masked_accuracy']:.4f} is below "
                f"{cfg.min_accuracy_ratio} x the most-frequent-token baseline "
                f"{metrics['baseline_accuracy']:.4f} "
                f"(mlm loss {metrics['mlm_loss']:.3f} after {cfg.steps} steps): train longer or change lr")
        model.save_pretrained(tmp)
        io.write_json(tmp / "SOURCE.json", {"checkpoint": None, "pretrained_here": True})
        # no timings in the metrics: two runs must give identical files (times are logged; `make bench`)
        metrics |= {"steps": cfg.steps, "n_params": model.num_parameters(), "vocab_size": len(tokenizer),
                    "skipped": False}
    write_metrics(metrics, [(h["step"], h["loss"]) for h in history if "loss" in h], metrics_path, loss_path)
    logger.info("%s: masked accuracy %.3f vs baseline %.3f, loss %.3f; %.0f s, %.0f training tokens/s", name,
                metrics["masked_accuracy"], metrics["baseline_accuracy"], metrics["mlm_loss"],
                time.perf_counter() - start, cfg.steps * cfg.batch_size * cfg.seq_len / train_seconds)
    return metrics


def skip(checkpoint: str, out_dir: Path, metrics_path: Path, loss_path: Path) -> dict:
    """A hub checkpoint: nothing to train or download; notes only, so every DVC output exists."""
    with io.atomic_dir(out_dir) as tmp:
        io.write_json(tmp / "SOURCE.json", {"checkpoint": checkpoint, "pretrained_here": False})
    metrics = {"skipped": True, "checkpoint": checkpoint}
    write_metrics(metrics, [], metrics_path, loss_path)
    logger.info("hub checkpoint %s: nothing to pre-train", checkpoint)
    return metrics


def write_metrics(metrics: dict, curve: list[tuple[int, float]], metrics_path: Path, loss_path: Path) -> None:
    io.write_json(metrics_path, metrics)
    io.atomic_write(loss_path, ("step,loss\n" + "".join(f"{s},{v:.6g}\n" for s, v in curve)).encode())


def main(name: str) -> None:
    p = params.load()
    log.setup("pretrain", p.profile, name)
    model_params = encoders.model_params(p, name)
    corpus = load_from_disk(str(paths.CORPUS)) if model_params.checkpoint is None else None
    run(name, model_params, p.pretrain, corpus, paths.pretrained(name),
        paths.metrics("pretrain", name), paths.metrics("pretrain", name, "-loss.csv"))


if __name__ == "__main__":
    main(sys.argv[1])
