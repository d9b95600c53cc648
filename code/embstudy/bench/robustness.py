"""``make robustness``: does the demo's fine-tuning outcome survive other float kernels and thread counts?

Fine-tunes every model of params.yaml from its pre-trained checkpoint (``artifacts/pretrain/<name>``,
``artifacts/tokenize/<name>``, ``artifacts/prepare/cls``: run ``dvc repro tokenize`` first) with the
demo's ``finetune`` params, once per cell: model x seed x numeric environment (``ATEN_CPU_CAPABILITY``
native, ``avx2``, ``default``) x threads (1, 2). Each cell is a fresh process (the capability is read
when torch loads); a 1-thread cell is pinned to one core, two of them run side by side. An environment
whose kernels are this machine's native ones is run once and listed under both names. Gates are not
enforced in a cell: each records its last-epoch accuracy, gap to TF-IDF, majority share and whether epoch
1 predicted one class, and the report checks the targets:

* every cell passes both gates with ``MARGIN`` points to spare;
* per (model, seed), the last-epoch accuracies across environments lie within ``MAX_SPREAD`` points;
* no last epoch predicts one class.

Writes ``bench/robustness.json`` and ``bench/robustness.md``; exits non-zero when a target is missed.
Run: ``make robustness`` (``python -m embstudy.bench.robustness``; ``--models camembert --seeds 42
--envs native default --threads 2`` runs a subset, as ``tests/test_robustness.py`` does).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from embstudy import files, log, params, paths, stage

ENVS = ("native", "avx2", "default")  # ATEN_CPU_CAPABILITY values; native: unset
SEEDS = (42, 43, 44, 45, 46)  # finetune.seeds' 3 and two more
MARGIN, MAX_SPREAD = 2.0, 3.0  # accuracy points (the targets)


def native_capability() -> str:
    """What torch picks here when ATEN_CPU_CAPABILITY is unset (``avx2``, ``avx512``, ``default``...)."""
    code = "import torch; print(torch.backends.cpu.get_cpu_capability().lower())"
    env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def cell(model: str, seed: int, threads: int, out: Path) -> None:
    """One fine-tuning run (in this process, whose environment picks the kernels) -> ``out`` (JSON)."""
    import torch
    from datasets import load_from_disk

    from embstudy import encoders, finetune

    p = params.load()
    cfg = params.for_model(p, model, "finetune")
    torch.set_num_threads(threads)
    source = encoders.checkpoint(model, stage.model_params(p, model))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        m = finetune.run(model, source, cfg, seed, load_from_disk(str(paths.tokens(model))),
                         load_from_disk(str(paths.CORPUS)), work / "runs", gates=False)
    first, last = m["epochs"][0], m["epochs"][-1]
    files.write_json(out, {
        "model": model, "seed": seed, "threads": threads, "lr": cfg.lr,
        "capability": torch.backends.cpu.get_cpu_capability(),
        "accuracy": 100 * last["eval_accuracy"], "tfidf": 100 * m["tfidf_accuracy"],
        "gap": 100 * (m["tfidf_accuracy"] - last["eval_accuracy"]), "majority_share": last["majority_share"],
        "epoch1_accuracy": 100 * first["eval_accuracy"], "epoch1_majority_share": first["majority_share"],
        "epoch1_collapsed": first["majority_share"] > cfg.max_majority_share,
        "accuracies": [100 * e["eval_accuracy"] for e in m["epochs"]],
        "seconds": time.perf_counter() - start})


def run_cells(models: list[str], seeds: list[int], envs: list[str], threads: list[int], native: str,
              work: Path, logger) -> list[dict]:
    """Every cell in a child process; returns their results, each with its ``env`` name(s); ``native``: the
    capability torch picks here unforced, whose forced twin runs once."""
    runs = [e for e in envs if not (e != "native" and e == native and "native" in envs)]  # same kernels
    pinned = shutil.which("taskset") is not None and len(os.sched_getaffinity(0)) >= 2

    def one(job):
        (model, seed, env, n), core = job, None
        if n == 1 and pinned:
            core = slots.pop()
        out = work / f"{model}-{seed}-{env}-{n}.json"
        envvars = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
        if env != "native":
            envvars["ATEN_CPU_CAPABILITY"] = env
        cmd = [sys.executable, "-m", "embstudy.bench.robustness", "--cell", model, str(seed), str(n),
               str(out)]
        try:
            done = subprocess.run((["taskset", "-c", str(core)] if core is not None else []) + cmd,
                                  env=envvars | {"TQDM_DISABLE": "1"}, capture_output=True, text=True)
        finally:
            if core is not None:
                slots.append(core)
        if done.returncode != 0:
            raise SystemExit(f"robustness: cell {model} seed {seed} {env} {n} thread(s) failed:\n"
                             f"{done.stderr[-2000:]}")
        r = json.loads(out.read_text()) | {"env": env}
        logger.info("%s seed %d %s %d thread(s): %.1f %% (TF-IDF %.1f, epoch 1 %.1f), %.0f s", model, seed,
                    env, n, r["accuracy"], r["tfidf"], r["epoch1_accuracy"], r["seconds"])
        return r

    slots = list(sorted(os.sched_getaffinity(0)))[:2] if pinned else []
    jobs = list(itertools.product(models, seeds, runs, threads))
    results = [one(j) for j in jobs if j[3] != 1]  # multi-threaded cells one at a time
    with ThreadPoolExecutor(2 if pinned else 1) as pool:  # 1-thread cells two at a time, a core each
        results += list(pool.map(one, [j for j in jobs if j[3] == 1]))
    for env in envs:
        if env not in runs:  # the native kernels are this forced environment's: same runs, listed twice
            results += [r | {"env": env} for r in results if r["env"] == "native"]
    return results


def verdict(results: list[dict], cfgs: dict[str, params.Finetune], margin: float = MARGIN) -> dict:
    """The three targets, each with the cells or (model, seed) pairs that miss it; ``cfgs``: each model's
    fine-tuning params (its gates)."""
    short = [r for r in results if r["gap"] > cfgs[r["model"]].max_gap_to_tfidf - margin
             or 100 * r["majority_share"] > 100 * cfgs[r["model"]].max_majority_share - margin]
    spreads = {}
    for r in results:
        spreads.setdefault(f"{r['model']}-{r['seed']}", []).append(r["accuracy"])
    spreads = {k: max(v) - min(v) for k, v in spreads.items()}
    return {"margin_missed": [cell_name(r) for r in short],
            "spread": {k: round(v, 2) for k, v in spreads.items()},
            "spread_missed": [k for k, v in spreads.items() if v > MAX_SPREAD],
            "collapsed": [cell_name(r) for r in results
                          if r["majority_share"] > cfgs[r["model"]].max_majority_share]}


def cell_name(r: dict) -> str:
    return f"{r['model']} seed {r['seed']} {r['env']} {r['threads']} thread(s)"


def report(results: list[dict], verdict_: dict, cfgs: dict[str, params.Finetune], native: str,
           margin: float) -> str:
    """bench/robustness.md: the targets, then every cell."""
    ok = not (verdict_["margin_missed"] or verdict_["spread_missed"] or verdict_["collapsed"])
    twice = (": the cells of that environment are the native runs, listed twice"
             if native in {r["env"] for r in results} - {"native"} else "")
    recipes = "; ".join(f"{m}: lr {c.lr:g}, {c.epochs} epoch{'s' if c.epochs > 1 else ''}, "
                        f"batch {c.batch_size}, {c.train_size} reviews, gates at most {c.max_gap_to_tfidf} "
                        f"points below TF-IDF and {c.max_majority_share:.0%} of reviews in one class"
                        for m, c in cfgs.items())
    lines = [
        "# Robustness of the demo's fine-tuning (`make robustness`)", "",
        f"Every model x seed x numeric environment x threads, fine-tuned with params.yaml's `finetune` and "
        f"each model's own values ({recipes}). Native kernels here: `{native}`{twice}.", "",
        f"**Targets {'met' if ok else 'MISSED'}.**",
        f"- every cell passes both gates with {margin} points to spare: "
        f"{'yes' if not verdict_['margin_missed'] else 'no: ' + ', '.join(verdict_['margin_missed'])}",
        f"- per (model, seed), accuracies across environments within {MAX_SPREAD} points: largest spread "
        f"{max(verdict_['spread'].values()):.1f} ({max(verdict_['spread'], key=verdict_['spread'].get)})",
        f"- no last epoch collapsed: "
        f"{'yes' if not verdict_['collapsed'] else ', '.join(verdict_['collapsed'])}",
        f"- epoch 1 over the majority-share gate in {sum(r['epoch1_collapsed'] for r in results)} of "
        f"{len(results)} cells", "",
        "| model | seed | env | threads | kernels | accuracy % per epoch | last | TF-IDF | gap |"
        " majority share |"
        " epoch 1 one class? | s |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(results, key=lambda r: (r["model"], r["seed"], ENVS.index(r["env"]), r["threads"])):
        lines.append(f"| {r['model']} | {r['seed']} | {r['env']} | {r['threads']} | {r['capability']} | "
                     f"{' / '.join(f'{a:.1f}' for a in r['accuracies'])} | {r['accuracy']:.1f} |"
                     f" {r['tfidf']:.1f} |"
                     f" {r['gap']:.1f} | {r['majority_share']:.2f} | "
                     f"{'yes' if r['epoch1_collapsed'] else 'no'} ({r['epoch1_majority_share']:.2f}) |"
                     f" {r['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m embstudy.bench.robustness",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--envs", nargs="+", choices=ENVS, default=list(ENVS))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--margin", type=float, default=MARGIN, help="points to spare at each gate")
    parser.add_argument("--out", type=Path, default=paths.BENCH, help="folder of robustness.{json,md}")
    parser.add_argument("--cell", nargs=4, metavar=("MODEL", "SEED", "THREADS", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cell:
        model, seed, threads, out = args.cell
        return cell(model, int(seed), int(threads), Path(out))
    p = params.load()
    logger = log.setup("robustness", p.profile)
    models = args.models or list(p.models)
    missing = [str(paths.tokens(m)) for m in models if not paths.tokens(m).is_dir()]
    if missing:
        raise SystemExit(f"robustness: no {', '.join(missing)}: run `dvc repro tokenize` first")
    start, native = time.perf_counter(), native_capability()
    with tempfile.TemporaryDirectory() as work:
        results = run_cells(models, args.seeds, args.envs, args.threads, native, Path(work), logger)
    cfgs = {m: params.for_model(p, m, "finetune") for m in models}
    found = verdict(results, cfgs, args.margin)
    files.write_json(args.out / "robustness.json", {"native": native,
                                                 "finetune": {m: c.model_dump() for m, c in cfgs.items()},
                                                 "verdict": found, "cells": results,
                                                 "wall_seconds": round(time.perf_counter() - start)})
    text = report(results, found, cfgs, native, args.margin)
    files.atomic_write(args.out / "robustness.md", text.encode())
    logger.info("wrote %s in %.0f s", args.out / "robustness.md", time.perf_counter() - start)
    if found["margin_missed"] or found["spread_missed"] or found["collapsed"]:
        raise SystemExit(f"robustness: targets missed: {json.dumps(found)}")


if __name__ == "__main__":
    main()
