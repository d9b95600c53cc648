"""Shared fixtures: a throw-away copy of the repository running the pipeline on micro params; the two tiers.

The copy carries its own ``code/`` on PYTHONPATH, so ``embstudy.paths.ROOT`` is the
copy and nothing is written into the working tree.

Tiers: a test that uses a fixture of :data:`PIPELINES` (a whole pipeline run, or the real encoders' conversion)
or carries ``@pytest.mark.slow`` (a fine-tuning in worker processes, a robustness cell...) is ``slow``;
``make test-fast`` runs the others (``-m "not slow"``), ``make test`` all. Under pytest-xdist (``make test``
runs ``-n auto --dist loadgroup``) every test of one such fixture runs in the same worker, so each
session- or module-scoped pipeline runs once.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: see embstudy/__init__.py
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

# Micro sizes: every stage runs, in seconds; quality gates relaxed (they are tested on their own).
MICRO = {
    "data": {"synth": {"labelled_per_class": 30, "unlabeled_per_domain": 60}},
    "tokenize": {"max_length": 64},
    "models": {  # trained from scratch by the pretrain stage (the demo's shipped checkpoints are 4 x 128)
        name: {"checkpoint": None, "encoder": {"layers": 2, "hidden": 32, "heads": 2, "ffn": 128, "vocab_size": 400}}
        for name in ("camembert", "flaubert")
    },
    "pretrain": {"steps": 8, "batch_size": 8, "seq_len": 32, "warmup": 2, "heldout": 20, "min_accuracy_ratio": 0.0},
    # jobs 1: the runs one after another in the stage's own process, sparing each micro pipeline two spawned
    # workers' imports (~8 s each); the worker pool runs in test_finetune.py and in test_interrupt.py's pipeline
    "finetune": {"train_size": 60, "test_size": 40, "epochs": 2, "batch_size": 8, "seeds": [1, 2], "jobs": 1,
                 "max_gap_to_tfidf": 100.0, "max_majority_share": 1.0},
    "extract": {"batch_size": 16, "cos_sentences": 10, "cov_sentences": 12, "erank_sentences": 4,
                "erank_tokens": 32, "baseline_sentences": 8, "cka_sentences": 20},
    "probe": {"epochs": 3},
    "summary": {"resamples": 100},
}


def merge(base: dict, override: dict) -> dict:
    """``base`` with ``override``'s leaves written over it (nested mappings merged)."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def copy_repo(dest: Path) -> Path:
    """The files git would check out (tracked or not ignored), as a fresh repo at ``dest``."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        # no dvc.lock: a copy runs its own pipeline from scratch, and DVC keeps the lock entries of stages that
        # the copy's params no longer make (another models: a stage per model it lacks)
        if src.is_file() and rel != "dvc.lock":
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


def env_for(root: Path) -> dict:
    """Environment that runs the copy's own code and never reaches the hub."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(PYTHONPATH=str(root / "code"), PATH=f"{Path(sys.executable).parent}:{env['PATH']}",
               HF_HOME=str(root / ".hf"), PYTHONHASHSEED="0", TQDM_DISABLE="1")
    return env


def offline(cmd: list[str]) -> list[str]:
    """Run ``cmd`` with networking cut off (a new network namespace) where the kernel allows it."""
    ok = shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0
    return ["unshare", "-n", *cmd] if ok else cmd


def run(cmd: list[str], root: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=root, env=env_for(root), capture_output=True, text=True, **kw)


def micro_copy(dest: Path, override: dict | None = None) -> Path:
    """A fresh repository copy at ``dest`` whose params.yaml carries the MICRO sizes (and ``override`` over
    them) and MICRO's models only (the packaged real encoder runs in its own test: tests/test_packaged.py)."""
    root = copy_repo(dest)
    params = yaml.safe_load((root / "params.yaml").read_text())
    models = {m: merge(params["models"][m], v) for m, v in MICRO["models"].items()}
    micro = merge(merge(params, MICRO), override or {}) | {"models": models}
    (root / "params.yaml").write_text(yaml.safe_dump(micro, sort_keys=False))
    return root


# fixtures that run a whole pipeline (or convert the real packaged encoders): their tests are slow, and run in
# one xdist worker per fixture so that it is built once. Each with its group's seconds under `make test` on 2
# cores (--durations, fresh clone, 2026-12-03, the 646 s run), to hand out the longest first.
PIPELINES = {"micro_repo": 260, "english_small": 175, "english_repo": 165, "paper_repo": 160,
             "japanese_repo": 115, "e5": 25}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads xdist_group into each node id
def pytest_collection_modifyitems(items):
    for item in items:
        used = [f for f in PIPELINES if f in getattr(item, "fixturenames", ())]
        if used:
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.xdist_group(used[0]))
    # Longest first, so the many short tests fill both workers at the end rather than one waiting out a
    # pipeline (make test runs --no-loadscope-reorder, which keeps this order). A stable sort: each module's
    # tests keep their order, so a module fixture is still set up once where its tests run together.
    items.sort(key=lambda item: -cost(item))


def cost(item) -> float:
    """Seconds to expect from an item's group: a pipeline fixture's, 100 for another slow test, else 0."""
    group = next((m.args[0] for m in item.iter_markers("xdist_group")), None)
    return PIPELINES.get(group, 0) or (100 if item.get_closest_marker("slow") else 0)


@pytest.fixture(scope="session")
def micro_repo(tmp_path_factory) -> Path:
    """A repository copy whose demo pipeline has run once on micro params, offline."""
    root = micro_copy(tmp_path_factory.mktemp("repo"))
    done = run(offline(["dvc", "repro", "--quiet"]), root, timeout=1200)
    assert done.returncode == 0, f"dvc repro failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return root
