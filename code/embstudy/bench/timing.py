"""``make bench``: extract against the seed's method, the forward-pass floor, padding, memory, pipeline, and
what the real encoder's vocabulary costs a fine-tuning step.

Reads params.yaml and the demo corpus (artifacts/prepare/cls); the demo encoder is
artifacts/pretrain/camembert (+ artifacts/tokenize/camembert) where the pipeline made them, else a
tokenizer trained here on pretrain's texts and a randomly initialised encoder of the demo size.
The base-size encoder is a random CamemBERT-base (12 x 768) on the same sentences.
Writes ``bench/results.json`` and ``bench/results.md``. Every timing is the median of ``REPEATS``
runs (min-max beside it), on this machine in this run, the timed variants interleaved.

Machine facts, pipeline timings and the markdown are :mod:`embstudy.bench.report`'s; the seed's method is
:mod:`embstudy.bench.seed_method`.

Run: ``make bench`` (``python -m embstudy.bench``, whose ``__main__`` calls :func:`main` here; ~5-10 min on
2 cores); ``make bench PIPELINE=1`` (``--pipeline``) also reruns every demo stage from scratch
(``dvc repro --force``, ~10 min more).
Environment: ``BENCH_REPEATS`` (default 3), ``BENCH_THREADS`` (default every core, as extract; 1 gives
steadier numbers on a machine shared with other jobs, where OpenMP threads wait on each other).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import datasets
import numpy as np
import torch
from threadpoolctl import threadpool_limits
from transformers import CamembertConfig, CamembertModel

from embstudy import (encoders, extract, files, geometry, log, packaged, params, paths, pretrain, stage,
                      variants)
from embstudy import tokenize as tokenize_stage
from embstudy.bench import report, seed_method

NAME = "camembert"
REPEATS = int(os.environ.get("BENCH_REPEATS", 3))
THREADS = int(os.environ.get("BENCH_THREADS", 0)) or stage.n_threads()  # extract's choice: every core
BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
            vocab_size=32005, max_position_embeddings=514)  # camembert-base's shape, random weights
BASE_SUBSET = dict(cos=5, cov=5, erank=10)  # seed's way at base size: sentences timed, then x N / subset
FLOOR_REVIEWS = 600  # per split, for the floor vs full pass (a quarter of the demo corpus)
MEMORY_REVIEWS = 300  # per split at 1x (600 reviews); 4x is 2,400 reviews, the whole demo corpus
SEED_MAX_LENGTH = 512  # the seed padded every sentence to 512 tokens (report/methods.qmd), for both encoders
TOL = 1e-3  # max scaled difference (see summaries) allowed between the seed's way and extract


def timed(fns: dict, repeats: int | None = None) -> tuple[dict, dict]:
    """({name: {median, min, max, runs}} wall seconds, {name: last result}); runs interleaved."""
    times, results = {name: [] for name in fns}, {}
    for _ in range(repeats or REPEATS):
        for name, fn in fns.items():
            start = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - start)
    stats = {n: dict(median=statistics.median(t), min=min(t), max=max(t), runs=len(t))
             for n, t in times.items()}
    return stats, results


def demo_inputs(p: params.Params, work: Path) -> tuple[str, datasets.DatasetDict, str]:
    """(encoder folder, tokenised train/test, what they are)."""
    corpus = datasets.load_from_disk(str(paths.CORPUS))
    model = p.models[NAME]
    if paths.pretrained(NAME).is_dir():
        source = str(paths.pretrained(NAME))
        tokens = (datasets.load_from_disk(str(paths.tokens(NAME))) if paths.tokens(NAME).is_dir() else
                  tokenize_stage.tokenize(corpus, encoders.load_tokenizer(source), p.tokenize.max_length))
        return source, tokens, f"artifacts/pretrain/{NAME} (pre-trained by the pipeline)"
    texts = pretrain.split_texts(corpus, p.pretrain.heldout, p.pretrain.seed)[0]
    from embstudy import vocab  # sentencepiece training: only needed here
    tokenizer = vocab.train(model.arch, texts, model.encoder.vocab_size, work / NAME)
    torch.manual_seed(0)
    encoders.build_mlm(model.arch, model.encoder, tokenizer).save_pretrained(work / NAME)
    tokens = tokenize_stage.tokenize(corpus, tokenizer, p.tokenize.max_length)
    e = model.encoder
    return str(work / NAME), tokens, f"random init, {e.layers} x {e.hidden} (no artifacts/pretrain/{NAME})"


def seed_way(model, test: list[list[int]], subset: dict, full: dict, max_length: int) -> tuple[dict, dict]:
    """Seed's studies: {study: seconds scaled to the full N}, {study: result on the subset}."""
    pad_id = model.config.pad_token_id
    studies = dict(cos=seed_method.cosine_study, cov=seed_method.covariance_study,
                   erank=seed_method.erank_study)
    times, results = timed({s: (lambda f=f, s=s: f(model, test[: subset[s]], max_length, pad_id))
                            for s, f in studies.items()})
    for s, t in times.items():
        scale = full[s] / subset[s]  # forward passes and pair loops grow linearly with sentences
        times[s] = {k: v * scale if k != "runs" else v for k, v in t.items()} | dict(
            sentences=subset[s], of=full[s], extrapolated=scale != 1)
    return times, results


def summaries(seed: dict, stats: extract.Accumulator, subset: dict) -> dict:
    """Max difference over layers between the seed's and extract's statistics on the same sentences."""
    cos = np.concatenate([stats.cos[s] for s in range(subset["cos"])], 1).astype(np.float64)
    cov = np.stack([stats.cov[s] for s in range(subset["cov"])], 1)  # (layers, sentences)
    erank = geometry.effective_rank(torch.cat([stats.erank[s] for s in sorted(stats.erank)], 1)).numpy()
    theirs = dict(cos_median=[np.median(c) for c in seed["cos"]], cos_mean=[np.mean(c) for c in seed["cos"]],
                  cov_mean=seed["cov"].mean(1), cov_median=np.median(seed["cov"], 1), erank=seed["erank"])
    ours = dict(cos_median=np.median(cos, 1), cos_mean=cos.mean(1), cov_mean=cov.mean(1),
                cov_median=np.median(cov, 1), erank=erank)
    gaps = {k: np.abs(np.asarray(theirs[k], np.float64) - ours[k]) for k in ours}
    # scaled: the abs difference for values within +-1 (cosines), the relative one beyond (traces, ranks)
    return {k: dict(abs=float(g.max()), scaled=float((g / np.maximum(1, np.abs(theirs[k]))).max()))
            for k, g in gaps.items()}


def floor_pass(model, ids: dict[str, list[list[int]]], batch_size: int):
    """The floor: a bare forward pass with every hidden state over extract's batches (padded beforehand)."""
    padded = [extract.pad([rows[r] for r in b], model.config.pad_token_id) for rows in ids.values()
              for b in extract.batches(list(map(len, rows)), batch_size)]

    @torch.inference_mode()
    def floor():
        for batch, mask in padded:
            model(input_ids=batch, attention_mask=mask, output_hidden_states=True)
    return floor


def versus_seed(model, test: list[list[int]], cfg: params.Extract, subset: dict, max_length: int) -> dict:
    """The seed's three studies against extract's one pass over the same first test sentences."""
    full = dict(cos=cfg.cos_sentences, cov=cfg.cov_sentences, erank=cfg.erank_sentences)
    n = max(full.values())
    # erank over every token of the sentences, as the seed; the baseline within the same sentences
    cfg = cfg.model_copy(update=dict(erank_tokens=sum(map(len, test[: cfg.erank_sentences])),
                                     baseline_sentences=min(cfg.baseline_sentences, n)))

    def ours():
        cls, stats = extract.run_variant(model, {"test": test[:n]}, cfg, "extract (bench)")
        stats.tables("bench", list(range(n)))
        return stats

    seed_t, seed_r = seed_way(model, test, subset, full, max_length)
    ours_t, ours_r = timed(dict(extract=ours, floor=floor_pass(model, {"test": test[:n]}, cfg.batch_size)))
    diff = summaries(seed_r, ours_r["extract"], subset)
    total = sum(seed_t[s]["median"] for s in full)
    return dict(seed=seed_t, seed_total=total, **ours_t, speedup=total / ours_t["extract"]["median"],
                ceiling=total / ours_t["floor"]["median"], diff=diff, sentences=n,
                max_length=max_length, layers=model.config.num_hidden_layers)


def floor_vs_full(model, tokens: datasets.DatasetDict, cfg: params.Extract, n: int) -> dict:
    """The floor against extract's full pass (statistics, [CLS] vectors, tables) over the same reviews."""
    ids = {s: tokens[s]["input_ids"][:n] for s in ("train", "test")}

    def full():
        cls, stats = extract.run_variant(model, ids, cfg, "extract (bench)")
        stats.tables("bench", tokens["test"]["idx"][:n])

    t, _ = timed(dict(floor=floor_pass(model, ids, cfg.batch_size), full=full))
    tokens_n = sum(len(r) for rows in ids.values() for r in rows)
    return t | dict(ratio=t["full"]["median"] / t["floor"]["median"],
                    ratio_of_minima=t["full"]["min"] / t["floor"]["min"], reviews=2 * n, tokens=tokens_n)


def padding(tokens: datasets.DatasetDict, cfg: params.Extract, max_length: int) -> dict:
    """Tokens a pass over train + test processes: real, length-sorted batches, padded to max_length / 512."""
    lengths = [n for s in ("train", "test") for n in tokens[s]["length"]]
    dynamic = sum(len(b) * max(lengths[i] for i in b) for b in extract.batches(lengths, cfg.batch_size))
    real = sum(lengths)
    return dict(reviews=len(lengths), real=real, dynamic=dynamic, max_length=max_length,
                padded=len(lengths) * max_length, padded_512=len(lengths) * 512,
                dynamic_waste=dynamic / real - 1, padded_waste=len(lengths) * max_length / real - 1,
                mean_length=real / len(lengths), max_seen=max(lengths), real_corpus="unknown offline")


def memory(source: str, tokens: datasets.DatasetDict, work: Path) -> dict:
    """Peak RSS of ``extract.extract`` in a fresh process at 1x and 4x the reviews."""
    tokens.save_to_disk(str(work / "tokens"))
    out = {}
    for k in (1, 4):
        n = MEMORY_REVIEWS * k
        done = subprocess.run([sys.executable, "-m", "embstudy.bench", "--memory", source, str(work), str(n)],
                              capture_output=True, text=True, env=os.environ | {"TQDM_DISABLE": "1"})
        if done.returncode:
            why = done.stderr.strip().splitlines()[-1]
            raise SystemExit(f"bench: extract on {n} reviews a split failed: {why}")
        reviews = sum(min(n, len(split)) for split in tokens.values())
        out[f"{k}x"] = json.loads(done.stdout.splitlines()[-1]) | dict(reviews=reviews)
    out["ratio"] = out["4x"]["peak_mb"] / out["1x"]["peak_mb"]
    return out


def rss_mb() -> dict:
    """This process's resident memory now and at its peak (VmHWM: unlike ru_maxrss, not inherited through
    fork + exec from a large parent), from /proc/self/status."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return {key: int(status[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}  # kB -> MB


def memory_child(source: str, work: str, n: int) -> None:
    """Run extract on the first ``n`` reviews of each split; print its peak RSS (MB) as JSON."""
    torch.set_num_threads(THREADS)
    cfg = params.load().extract
    cfg = cfg.model_copy(update=dict(cka_sentences=min(cfg.cka_sentences, MEMORY_REVIEWS)))  # same at 1x and 4x
    tokens = datasets.load_from_disk(str(Path(work) / "tokens"))
    tokens = datasets.DatasetDict({s: tokens[s].select(range(min(n, len(tokens[s])))) for s in tokens})
    before = rss_mb()
    todo = [extract.run(variants.PRETRAINED, None, source)]
    extract.extract(NAME, todo, tokens, cfg, Path(work) / f"out-{n}", torch.device("cpu"))
    print(json.dumps(dict(peak_mb=round(rss_mb()["VmHWM"], 1), before_extract_mb=round(before["VmRSS"], 1),
                          peak_before_extract_mb=round(before["VmHWM"], 1))))


def measure(p: params.Params, work: Path, logger) -> dict:
    """Parts 1-4 and 6: the seed's way, the floor, padding, memory and the real encoder's vocabulary."""
    source, tokens, what = demo_inputs(p, work)
    demo = extract.load_encoder(source, torch.device("cpu"))
    test = tokens["test"]["input_ids"][:]
    full = dict(cos=p.extract.cos_sentences, cov=p.extract.cov_sentences, erank=p.extract.erank_sentences)
    out = dict(seed_demo=versus_seed(demo, test, p.extract, full, SEED_MAX_LENGTH) | dict(encoder=what))
    logger.info("demo: %s", json.dumps(out["seed_demo"]))  # the numbers survive a failed check
    torch.manual_seed(0)
    base = CamembertModel(CamembertConfig(pad_token_id=demo.config.pad_token_id, **BASE)).eval()
    out["seed_base"] = versus_seed(base, test, p.extract, BASE_SUBSET, SEED_MAX_LENGTH) | dict(
        encoder="random init, 12 x 768 (camembert-base's shape)")
    logger.info("base size: %s", json.dumps(out["seed_base"]))
    del base
    out["floor"] = floor_vs_full(demo, tokens, p.extract, FLOOR_REVIEWS)
    logger.info("floor: %s", json.dumps(out["floor"]))
    out["padding"] = padding(tokens, p.extract, p.tokenize.max_length)
    out["memory"] = memory(source, tokens, work)
    logger.info("memory: %s", json.dumps(out["memory"]))
    out["vocab"] = vocab_cost(p, work)
    logger.info("vocabulary: %s", json.dumps(out["vocab"]))
    return out


def vocab_cost(p: params.Params, work: Path) -> dict | None:
    """Part 6: what the real encoder's vocabulary costs a fine-tuning step on a CPU. One AdamW step on the
    first ``batch_size`` train reviews (one thread, as the pipeline's runs) with the whole packaged table,
    with that table frozen, and pruned to the corpus's pieces (the pipeline's), timed interleaved; and the
    largest difference between whole and pruned logits before any step and after the timed ones (same
    dropout)."""
    name = next((m for m, mp in p.models.items() if params.packaged(mp.checkpoint)), None)
    if name is None:
        return None
    from transformers import set_seed

    corpus = datasets.load_from_disk(str(paths.CORPUS))
    texts = [t for split in corpus.values() for t in split["text"]]
    cfg = params.for_model(p, name, "finetune")
    folders = {prune: work / f"{name}-{'pruned' if prune else 'whole'}" for prune in (False, True)}
    sizes = {prune: packaged.convert(p.models[name].checkpoint, texts, f, prune)["vocab_size"]
             for prune, f in folders.items()}
    train = corpus["train"].select(range(cfg.batch_size))

    def setup(folder: Path, freeze: bool):
        set_seed(0)  # the same fresh head for every variant
        model, tokenizer = encoders.load_classifier(folder)
        model.get_input_embeddings().weight.requires_grad_(not freeze)
        opt = torch.optim.AdamW([w for w in model.parameters() if w.requires_grad], lr=cfg.lr)
        batch = tokenizer(list(train["text"]), padding=True, return_tensors="pt")
        labels, steps = torch.tensor(list(train["label"])), []

        def step():
            torch.manual_seed(len(steps))  # the k-th step of every variant draws the same dropout
            model.train()
            model(**batch, labels=labels).loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # as Trainer
            opt.step(), opt.zero_grad()
            steps.append(1)

        def logits():
            with torch.inference_mode():
                return model.eval()(**batch).logits
        return step, logits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runs = {"whole": setup(folders[False], False),
                "whole, embeddings frozen": setup(folders[False], True),
                "pruned": setup(folders[True], False)}  # pruned: the pipeline's
        whole, pruned = runs["whole"][1], runs["pruned"][1]
        before = float((whole() - pruned()).abs().max())
        times, _ = timed({k: step for k, (step, _) in runs.items()})
        after = float((whole() - pruned()).abs().max())
    finally:
        torch.set_num_threads(threads)
    return dict(model=name, batch=cfg.batch_size, vocab_whole=sizes[False], vocab_pruned=sizes[True],
                step=times, logits_diff_before=before, logits_diff_after=after, steps=REPEATS)


def check(results: dict) -> None:
    for key in ("seed_demo", "seed_base"):
        bad = {k: v for k, v in results[key]["diff"].items() if not v["scaled"] <= TOL}
        if bad:
            raise SystemExit(f"bench: {key}: the seed's way and extract differ by more than {TOL}: {bad}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m embstudy.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", action="store_true", help="also rerun every demo stage from scratch")
    parser.add_argument("--memory", nargs=3, metavar=("SOURCE", "WORKDIR", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory:
        return memory_child(args.memory[0], args.memory[1], int(args.memory[2]))
    p = params.load()
    logger = log.setup("bench", p.profile, NAME)
    torch.set_num_threads(THREADS)
    results = dict(system=report.system(), repeats=REPEATS)
    with threadpool_limits(THREADS), tempfile.TemporaryDirectory() as tmp:  # numpy's BLAS too
        results |= measure(p, Path(tmp), logger)
    check(results)
    previous = paths.BENCH / "results.json"
    previous = json.loads(previous.read_text()).get("pipeline") if previous.exists() else None
    results["pipeline"] = report.pipeline(list(p.models), args.pipeline, previous, timed)
    results["system"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    files.write_json(paths.BENCH / "results.json", results)
    files.atomic_write(paths.BENCH / "results.md", report.markdown(results).encode())
    logger.info("wrote %s", paths.BENCH)


if __name__ == "__main__":
    main()
