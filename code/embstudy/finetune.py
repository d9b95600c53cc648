"""Stage ``finetune``: sentiment classification on FLUE-CLS, a checkpoint kept after every epoch (the seed's
flue-cls-finetune), for every seed of a model and for its random-weight control.

Reads the model's checkpoint (``encoders.checkpoint``: the demo's ``artifacts/pretrain/<name>`` or a hub
id), the control's random encoder (``artifacts/control/<name>/init``), ``artifacts/tokenize/<name>`` (first
``train_size`` train and ``test_size`` test reviews, already shuffled by prepare), ``artifacts/prepare/cls``
(raw text for the TF-IDF yardstick) and params ``finetune`` (the model's own ``models.<name>.finetune`` over
it). One run per seed of ``finetune.seeds`` from the checkpoint, and one from the control with the first
seed. Writes ``artifacts/finetune/<name>/`` (all runs,
or nothing): ``seed-<s>/`` and ``control/``, each with ``epoch-<k>/`` (model + tokenizer, save_pretrained)
and ``hits.npy`` (per epoch, which test reviews the classifier got right); ``metrics/finetune/<name>.json``
(per run) and ``metrics/finetune/<name>-history.csv`` (per run and epoch).

On a CPU the runs go side by side, ``finetune.jobs`` worker processes (default: one per core) of one thread
each: tiny encoders' small matrices keep a second thread half idle, and one thread per run makes its floats
independent of the core count. On a GPU (or under ``torchrun``) they run one after another.

Gates (non-zero exit, nothing written): the final accuracy may trail a TF-IDF logistic regression on the
same reviews by at most ``max_gap_to_tfidf`` points, and the final epoch may not predict one class for more
than ``max_majority_share`` of the test reviews (a collapse, which later looks like perfect "convergence",
all cosines 1, in the geometry). The control, a floor, is not gated. Earlier epochs over that share are not
an error: tiny demo encoders may predict the prior class for their first epoch before they learn, so they
are logged and listed in the metrics (``early_collapsed_epochs``) for extract and probe to flag. GPU with
bf16/fp16 when present, CPU otherwise.

Run: ``python -m embstudy.finetune camembert`` (or ``dvc repro finetune@camembert``).
"""
from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset, DatasetDict, load_from_disk
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from tqdm import tqdm
from transformers import DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_pt_utils import LengthGroupedSampler

import embstudy
from embstudy import encoders, files, log, params, paths, stage, variants
from embstudy.params import Finetune

logger = logging.getLogger("embstudy.finetune")


class EpochSaver(TrainerCallback):
    """Saves model + tokenizer (no optimizer state) into ``folder/epoch-<k>`` at the end of epoch k."""

    def __init__(self, folder: Path, tokenizer):
        self.folder, self.tokenizer = folder, tokenizer

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        target = self.folder / variants.epoch(round(state.epoch))
        model.save_pretrained(target)
        self.tokenizer.save_pretrained(target)


def subsets(tokens: DatasetDict, corpus: DatasetDict, cfg: Finetune) -> dict[str, tuple[Dataset, list[str]]]:
    """Per split: the first N tokenised reviews and their raw texts (matched by ``idx``)."""
    out = {}
    for split, n in (("train", cfg.train_size), ("test", cfg.test_size)):
        if n > len(tokens[split]):
            raise stage.StageError(
                f"finetune: {split}_size {n} > {len(tokens[split])} tokenised {split} reviews")
        ds = tokens[split].select(range(n)).select_columns(["input_ids", "label", "length", "idx"])
        text = dict(zip(corpus[split]["idx"], corpus[split]["text"]))
        out[split] = (ds.remove_columns("idx"), [text[i] for i in ds["idx"]])
    return out


def tfidf_accuracy(train_texts: list[str], train_labels, test_texts: list[str], test_labels) -> float:
    """The yardstick: TF-IDF word uni+bigrams and a logistic regression, on the same reviews."""
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    clf = LogisticRegression(max_iter=2000).fit(vectorizer.fit_transform(train_texts), train_labels)
    return float(accuracy_score(test_labels, clf.predict(vectorizer.transform(test_texts))))


def scorer(hits: list[np.ndarray]):
    """Trainer's compute_metrics; appends each evaluation's per-review correctness (test order) to ``hits``."""
    def scores(eval_pred) -> dict:
        logits, labels = eval_pred.predictions, eval_pred.label_ids
        preds = (logits[0] if isinstance(logits, tuple) else logits).argmax(-1)
        hits.append((preds == labels).astype(np.int8))
        return {"accuracy": accuracy_score(labels, preds), "f1": f1_score(labels, preds),
                "majority_share": np.bincount(preds, minlength=2).max() / len(preds)}
    return scores


def train(model, tokenizer, train_ds: Dataset, test_ds: Dataset, cfg: Finetune, seed: int,
          out: Path) -> tuple[list[dict], np.ndarray]:
    """Trainer with per-epoch evaluation and checkpoints; returns one row per epoch and the per-review
    correctness, (epochs, test reviews) int8."""
    hits = []
    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    with tempfile.TemporaryDirectory() as workdir:
        args = TrainingArguments(
            output_dir=workdir, num_train_epochs=cfg.epochs, learning_rate=cfg.lr, warmup_steps=cfg.warmup,
            per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=4 * cfg.batch_size,
            train_sampling_strategy="group_by_length",  # batches of similar lengths: little padding
            eval_strategy="epoch", logging_strategy="epoch", save_strategy="no", report_to="none",
            seed=seed, data_seed=seed, bf16=bf16, fp16=cuda and not bf16, use_cpu=not cuda,
            disable_tqdm=multiprocessing.parent_process() is not None)  # a worker: the stage's bar counts runs
        trainer = Trainer(model=model, args=args, train_dataset=train_ds, eval_dataset=test_ds,
                          processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer),
                          compute_metrics=scorer(hits), callbacks=[EpochSaver(out, tokenizer)])
        trainer.train()
    # Trainer evaluates in length-grouped order (a sampler seeded with data_seed): back to test order
    order = np.fromiter(LengthGroupedSampler(args.eval_batch_size, dataset=test_ds, lengths=test_ds["length"],
                                             generator=torch.Generator().manual_seed(seed)), int)
    in_order = np.empty((len(hits), len(order)), np.int8)
    in_order[:, order] = np.stack(hits)
    logs = trainer.state.log_history
    loss = {round(h["epoch"]): h["loss"] for h in logs if "loss" in h}
    return [{"epoch": round(h["epoch"]), "train_loss": loss.get(round(h["epoch"])),
             "eval_accuracy": h["eval_accuracy"], "eval_f1": h["eval_f1"],
             "majority_share": h["eval_majority_share"]}
            for h in logs if "eval_accuracy" in h], in_order


def collapsed(epochs: list[dict], cfg: Finetune) -> list[int]:
    """The epochs predicting one class for more than ``max_majority_share`` of the test reviews."""
    return [e["epoch"] for e in epochs if e["majority_share"] > cfg.max_majority_share]


def check_gates(name: str, epochs: list[dict], tfidf: float, cfg: Finetune) -> list[int]:
    """Raise on a collapsed last epoch or a gap to TF-IDF; return the earlier epochs predicting one class."""
    if epochs[-1]["epoch"] in collapsed(epochs, cfg):
        raise stage.StageError(
            f"finetune: {name}: predictions collapsed to one class at the last epoch "
            f"({epochs[-1]['majority_share']:.1%} of test reviews > {cfg.max_majority_share:.0%}): "
            "lower lr or add warm-up")
    final = epochs[-1]["eval_accuracy"]
    if 100 * final < 100 * tfidf - cfg.max_gap_to_tfidf:
        raise stage.StageError(f"finetune: {name}: accuracy {final:.1%} trails TF-IDF {tfidf:.1%} by "
                                    f"more than {cfg.max_gap_to_tfidf} points: train longer or change lr")
    return collapsed(epochs, cfg)


def checkpoint_bytes(model, epochs: int) -> int:
    """Disk for ``epochs`` save_pretrained copies: the weights as loaded, plus ~5 MB of tokenizer files."""
    return epochs * (sum(p.numel() * p.element_size() for p in model.parameters()) + 5 * 10**6)


def run(name: str, source: str, cfg: Finetune, seed: int, tokens: DatasetDict, corpus: DatasetDict,
        out_dir: Path, gates: bool = True) -> dict:
    """Fine-tune ``source`` for ``name`` with ``seed`` into ``out_dir`` (per-epoch checkpoints and hits);
    returns the metrics. ``gates=False`` (the random-init control, a floor that may fail them) only lists a
    collapse."""
    start = time.perf_counter()
    data = subsets(tokens, corpus, cfg)
    (train_ds, train_texts), (test_ds, test_texts) = data["train"], data["test"]
    tfidf = tfidf_accuracy(train_texts, train_ds["label"], test_texts, test_ds["label"])
    set_seed(seed)  # the fresh classification head is drawn in from_pretrained
    model, tokenizer = encoders.load_classifier(source, num_labels=2)
    top = max(max(ids) for ds in (train_ds, test_ds) for ids in ds["input_ids"])
    if top >= model.config.vocab_size:
        raise encoders.EncoderError(
            f"finetune: {name}: token id {top} >= vocab size {model.config.vocab_size}: "
            f"tokens were made with another tokenizer than {source}'s (rerun tokenize)")
    files.check_free_space(out_dir, checkpoint_bytes(model, cfg.epochs),
                        f"finetune: {name}: {cfg.epochs} epoch checkpoints")
    with files.atomic_dir(out_dir) if writer() else tempfile.TemporaryDirectory() as tmp:
        epochs, hits = train(model, tokenizer, train_ds, test_ds, cfg, seed, Path(tmp))
        early = check_gates(name, epochs, tfidf, cfg) if gates else collapsed(epochs, cfg)
        np.save(paths.hits(tmp), hits)  # for the summary's intervals over test reviews
    if early:
        logger.warning("%s %s: epochs %s still predict one class for > %.0f%% of test reviews", name,
                       out_dir.name, early, 100 * cfg.max_majority_share)
    logger.info("%s %s: accuracy per epoch %s, TF-IDF %.3f, %.0f s", name, out_dir.name,  # seed-42, control
                [round(e["eval_accuracy"], 3) for e in epochs], tfidf, time.perf_counter() - start)
    final = epochs[-1]
    return {"epochs": epochs, "accuracy": final["eval_accuracy"], "f1": final["eval_f1"],
            "majority_share": final["majority_share"], "tfidf_accuracy": tfidf, "early_collapsed_epochs": early,
            "train_size": cfg.train_size, "test_size": cfg.test_size, "seed": seed}


def writer() -> bool:
    """Under torchrun / accelerate launch every rank trains and only rank 0 writes."""
    return int(os.environ.get("RANK", "0")) == 0


def save_metrics(metrics: dict[str, dict], json_path: Path, history_path: Path) -> None:
    """Every run's metrics, keyed by run (``seed-42``, ``control``), and one history row per run and epoch."""
    files.write_json(json_path, metrics)
    rows = "".join(f"{run},{e['epoch']},{e['train_loss']:.6g},{e['eval_accuracy']:.6g},{e['eval_f1']:.6g}\n"
                   for run, m in metrics.items() for e in m["epochs"])
    files.atomic_write(history_path, ("run,epoch,train_loss,eval_accuracy,eval_f1\n" + rows).encode())


def tasks(name: str, source: str, cfg: Finetune, folder: Path) -> list[dict]:
    """Every run of ``name`` as keyword arguments of :func:`task`, writing under ``folder``: each seed from
    ``source``, then the control from its random encoder with the first seed."""
    common = {"name": name, "cfg": cfg, "tokens": str(paths.tokens(name)), "corpus": str(paths.CORPUS)}
    runs = [common | {"source": source, "seed": s, "out_dir": folder / paths.finetuned(name, s).name}
            for s in cfg.seeds]
    return runs + [common | {"source": str(paths.control_init(name)), "seed": cfg.seeds[0], "gates": False,
                             "out_dir": folder / paths.control_finetuned(name).name}]


def task(kwargs: dict) -> tuple[str, dict | str]:
    """One run, in this process or a worker: (its folder's name, its metrics or the one line that stopped it)."""
    kwargs = kwargs | {"tokens": load_from_disk(kwargs["tokens"]), "corpus": load_from_disk(kwargs["corpus"])}
    try:
        return kwargs["out_dir"].name, run(**kwargs)
    except stage.StageError as e:  # a SystemExit would end the pool's worker: hand its line back
        return kwargs["out_dir"].name, str(e)


def worker(stage_name: str, profile: str, model: str) -> None:
    """A pool worker: the stage's log lines, one thread."""
    embstudy.imports_done()
    log.setup(stage_name, profile, model)
    torch.set_num_threads(1)


def run_all(todo: list[dict], jobs: int, profile: str) -> dict[str, dict]:
    """The metrics of every run, keyed by folder name; ``jobs`` > 1 runs them in that many spawned workers.
    The first failed run stops the others and raises its line."""
    name = todo[0]["name"]
    with contextlib.ExitStack() as stack:
        if jobs > 1:  # spawn, not fork: a forked child would inherit torch's OpenMP state
            pool = stack.enter_context(
                multiprocessing.get_context("spawn").Pool(jobs, worker, ("finetune", profile, name)))
            results = pool.imap_unordered(task, todo)
        else:
            results = map(task, todo)
        done = {}
        for folder, result in tqdm(results, total=len(todo), desc=f"finetune {name}", unit="run"):
            if isinstance(result, str):
                raise stage.StageError(result)  # leaving the block terminates the other workers
            done[folder] = result
    return {t["out_dir"].name: done[t["out_dir"].name] for t in todo}  # in plan order


def n_jobs(cfg: Finetune, n_runs: int) -> int:
    """Workers: 1 on a GPU or under torchrun (one run at a time); else ``jobs`` or one per core."""
    if torch.cuda.is_available() or "RANK" in os.environ:
        return 1
    return min(n_runs, cfg.jobs or stage.n_threads())


def main(name: str) -> None:
    p, _ = stage.start("finetune", name)
    cfg = params.for_model(p, name, "finetune")  # finetune with models.<name>.finetune over it
    if not torch.cuda.is_available():
        torch.set_num_threads(1)  # as in every worker: a run's floats must not depend on jobs or cores
    source = encoders.checkpoint(name, p.models[name])
    if not paths.control_init(name).is_dir():
        raise stage.StageError(f"finetune: {name}: {paths.control_init(name)} is missing: run the control stage")
    with files.atomic_dir(paths.finetuned(name)) if writer() else tempfile.TemporaryDirectory() as tmp:
        todo = tasks(name, source, cfg, Path(tmp))
        metrics = run_all(todo, n_jobs(cfg, len(todo)), p.profile)
    if writer():
        save_metrics(metrics, paths.finetune_metrics(name), paths.finetune_metrics(name, "-history.csv"))


if __name__ == "__main__":
    main(sys.argv[1])
