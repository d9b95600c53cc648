"""``make bench``'s machine facts, pipeline timings and markdown table (the measurements are
:mod:`embstudy.bench.timing`'s).

:func:`system` names the CPU, load, torch version and threads; :func:`pipeline` times a no-op
``dvc repro`` and the book build live (only when ``dvc status`` says the pipeline is up to date),
reads each stage's own timer from the last ``dvc repro`` (metrics files, extract's timing.json) and,
with ``--pipeline``, reruns every demo stage from scratch; :func:`markdown` renders ``results.json``.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import time

import torch
import transformers

from embstudy import paths, pretrain

PIPELINE_TARGET = 900  # seconds: the whole demo, book included, on 2 cores (15 min)


def system() -> dict:
    return dict(cpu=pretrain.cpu_name(), cores=os.cpu_count(), threads=torch.get_num_threads(), torch=torch.__version__,
                transformers=transformers.__version__, python=platform.python_version(),
                date=time.strftime("%Y-%m-%d %H:%M"), load_before=[round(x, 2) for x in os.getloadavg()])


def wall(cmd: list[str], timeout: int = 1800) -> float:
    """Seconds ``cmd`` takes in the repository; a one-line error naming it if it fails."""
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=paths.ROOT, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise SystemExit(f"bench: `{' '.join(cmd)}` failed: {(done.stderr or done.stdout).strip()[-300:]}")
    return time.perf_counter() - start


def last_repro(models: list[str]) -> dict:
    """extract's own timer from the last ``dvc repro`` (seconds; None where that output is missing); the other
    stages keep no timings (their outputs must be identical run to run): ``--pipeline`` times them."""
    out = {}
    for m in models:
        timing = paths.extracted(m) / paths.TIMING
        out[f"extract@{m}"] = (round(sum(v["wall_s"] for v in json.loads(timing.read_text()).values()), 1)
                               if timing.exists() else None)
    return out


def stage_names() -> list[str]:
    """Every stage of dvc.yaml, foreach and matrix expanded, in pipeline order (data.dvc's import left out)."""
    listed = subprocess.run(["dvc", "stage", "list", "--name-only"], cwd=paths.ROOT, capture_output=True,
                            text=True, check=True).stdout.split()
    return [s for s in listed if not s.endswith(".dvc")]


def pipeline(models: list[str], from_scratch: bool, previous: dict | None, timed) -> dict:
    """Stage and pipeline wall times; ``timed`` is :func:`embstudy.bench.timing.timed` (median of several
    runs)."""
    out = {}
    if from_scratch:
        stages = stage_names()
        times = {s: round(wall(["dvc", "repro", "--force", "--single-item", s]), 1) for s in stages}
        out["from_scratch"] = dict(stages=times, total=round(sum(times.values()), 1),
                                   date=time.strftime("%Y-%m-%d %H:%M"))
    elif previous and "from_scratch" in previous:
        out["from_scratch"] = previous["from_scratch"] | dict(carried_over=True)
    out["last_repro"] = last_repro(models)  # after a from-scratch run: that run's timers
    current = (paths.ROOT / "dvc.lock").exists() and subprocess.run(  # dvc.yaml: data.dvc is a frozen import
        ["dvc", "status", "--quiet", "dvc.yaml"], cwd=paths.ROOT).returncode == 0  # the demo never fetches
    if not current:
        out["not_current"] = "dvc status: pipeline not up to date, so no-op repro and book were not timed"
        return out
    noop, _ = timed(dict(noop=lambda: wall(["dvc", "repro"])))
    book, _ = timed(dict(book=lambda: wall(["python", "-m", "embstudy.book"])), repeats=1)
    return out | noop | book


def span(t: dict, digits: int = 2) -> str:
    """'median (min-max)' seconds."""
    return f"{t['median']:.{digits}f} ({t['min']:.{digits}f}–{t['max']:.{digits}f})"


def seed_section(r: dict) -> list[str]:
    n = {s: r["seed_demo"]["seed"][s]["of"] for s in ("cos", "cov", "erank")}
    rows = []
    for key, label, target in (("seed_demo", "demo", "≥ 50x"), ("seed_base", "base size", "≥ 10x")):
        v = r[key]
        seed = " / ".join(span(t, 1) + (f" ⚠ extrapolated from {t['sentences']} of {t['of']}"
                                        if t["extrapolated"] else "") for t in v["seed"].values())
        diff = ", ".join(f"{k} {d['scaled']:.0e}" for k, d in v["diff"].items())
        rows.append(f"| {label}: {v['encoder']}, pad {v['max_length']} | {seed} | {v['seed_total']:.1f} | "
                    f"{span(v['extract'])} | **{v['speedup']:.1f}x** | {span(v['floor'])} | "
                    f"{v['ceiling']:.1f}x | {target} | {diff} |")
    return [
        "## 1. The seed's method against `extract`", "",
        f"Same model, same first test sentences: cosines over {n['cos']}, covariance traces over {n['cov']}, "
        f"effective rank over {n['erank']} sentences. Seed: one sentence per pass padded to max_length, "
        "Python pair loop, `np.cov`, `np.linalg.svd`, each study its own passes. `extract`: one "
        "length-sorted pass over the first sentences (`run_variant` + `tables`: also histograms, baseline, "
        "[CLS]).", "",
        "| encoder | seed s: cos / cov / erank | seed total s | extract s | speed-up | floor s | "
        "ceiling: seed / floor | target | max difference |", "|" + "---|" * 9, *rows, "",
        "Floor: a bare forward pass with every hidden state over extract's batches of the same sentences; no "
        "implementation of the statistics can beat seed / floor. Max difference over layers of the per-layer "
        "statistics, |seed − extract| / max(1, |seed|): absolute for cosines, relative for traces and "
        "ranks (float32 either way); checked ≤ 1e-3.", ""]


def floor_and_padding(f: dict, pad: dict) -> list[str]:
    # FLUE-CLS train + test reviews (report/methods.qmd), padded as the seed
    real = "11,996 x 512 = 6,141,952"
    return [
        "## 2. Distance to the floor", "",
        f"{f['reviews']} reviews ({f['tokens']} tokens; first {f['reviews'] // 2} of train and of test), "
        "demo encoder. Floor: a bare forward pass with every hidden state over the same padded batches. The "
        "statistics' cost is fixed (first test sentences), so over the whole corpus the ratio is lower.", "",
        "| floor s | full extract pass s | ratio of medians | ratio of minima | target |", "|---" * 5 + "|",
        f"| {span(f['floor'])} | {span(f['full'])} | **{f['ratio']:.2f}x** | {f['ratio_of_minima']:.2f}x | "
        "≤ 1.3x |", "",
        "## 3. Padding waste (tokens through the encoder, train + test)", "",
        "| corpus | reviews | real tokens | length-sorted batches | padded to max_length | padded to 512 |",
        "|---|---|---|---|---|---|",
        f"| demo ({pad['mean_length']:.0f} tokens on average, longest {pad['max_seen']}) | "
        f"{pad['reviews']} | {pad['real']:,} | {pad['dynamic']:,} (+{pad['dynamic_waste']:.1%}) | "
        f"{pad['padded']:,} "
        f"(max_length {pad['max_length']}, +{pad['padded_waste']:.0%}) | {pad['padded_512']:,} |",
        f"| real FLUE-CLS | 11,996 | {pad['real_corpus']} | {pad['real_corpus']} | — | {real} |", ""]


def pipeline_section(p: dict) -> list[str]:
    last = [f"| {s} | {sec} | last `dvc repro` (the stage's own timer) |"
            for s, sec in p["last_repro"].items() if sec is not None]
    rows = last or ["| stages of the last `dvc repro` | not available | no stage outputs here |"]
    scratch = p.get("from_scratch")
    if scratch:
        how = "last `make bench PIPELINE=1`" if scratch.get("carried_over") else "this run"
        rows += [f"| {s} | {sec} | from scratch, {how} ({scratch['date']}) |"
                 for s, sec in scratch["stages"].items()]
        rows.append(f"| **whole demo `dvc repro`** (sum of the stages) | **{scratch['total']}** "
                    f"(target ≤ {PIPELINE_TARGET}, book included) | {how} |")
    else:
        rows.append("| whole demo `dvc repro` from scratch | not measured | run `make bench PIPELINE=1` |")
    if "noop" in p:
        rows += [f"| no-op `dvc repro` | {span(p['noop'])} (target < 5) | this run |",
                 f"| book build (`python -m embstudy.book`) | {p['book']['median']:.1f} (target < 60) | "
                 "this run, 1 run |"]
    else:
        rows.append(f"| no-op `dvc repro`, book build | not measured | {p['not_current']} |")
    return ["## 5. Pipeline (seconds)", "", "| what | seconds | source |", "|---|---|---|", *rows, ""]


def vocab_section(v: dict | None) -> list[str]:
    if v is None:
        return []
    named = {"pruned": "pruned (the pipeline's)"}
    pieces = {k: v["vocab_pruned"] if k == "pruned" else v["vocab_whole"] for k in v["step"]}
    pruned = v["step"]["pruned"]["median"]
    rows = [f"| {named.get(k, k)} | {pieces[k]:,} | {span(t)} | {t['median'] / pruned:.2f} |"
            for k, t in v["step"].items()]
    return [f"## 6. The real encoder's vocabulary: one fine-tuning step of {v['model']} (seconds)", "",
            f"AdamW on {v['batch']} train reviews, one thread (as the pipeline's runs); timed interleaved.",
            "",
            "| vocabulary | pieces | seconds | vs pruned |", "|---|---|---|---|", *rows, "",
            f"Whole against pruned, largest logit difference: {v['logits_diff_before']:.2g} before any step, "
            f"{v['logits_diff_after']:.2g} after {v['steps']} steps each (same dropout).", ""]


def markdown(r: dict) -> str:
    """The results as markdown tables (what bench/results.md holds)."""
    s, mem = r["system"], r["memory"]
    return "\n".join([
        "# `make bench` results", "",
        f"{s['date']}; CPU {s['cpu']}, {s['cores']} cores, torch {s['torch']} ({s['threads']} thread(s) "
        f"for torch and numpy's BLAS: `BENCH_THREADS`), transformers {s['transformers']}, "
        f"Python {s['python']}. Load average (1/5/15 min) before "
        f"{s['load_before']}, after {s['load_after']} (the machine was shared). Seconds: median of "
        f"{r['repeats']} runs (min–max); variants timed interleaved.", "",
        *seed_section(r), *floor_and_padding(r["floor"], r["padding"]),
        "## 4. Peak memory of `extract` (a fresh process each, VmHWM)", "",
        "| reviews | peak RSS MB | RSS before extract MB |", "|---|---|---|",
        *(f"| {mem[k]['reviews']} ({k}) | {mem[k]['peak_mb']} | {mem[k]['before_extract_mb']} |"
          for k in ("1x", "4x")),
        f"| **4x / 1x** | **{mem['ratio']:.3f}** (target ≤ 1.10) | |", "",
        *pipeline_section(r["pipeline"]), *vocab_section(r.get("vocab"))])
