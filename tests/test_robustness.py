"""The demo's fine-tuning outcome does not hang on the float kernels: the cut-down robustness matrix.

One model, one seed, the demo's real params and shipped encoder, fine-tuned under the native kernels and
under ``ATEN_CPU_CAPABILITY=default`` (no vector instructions), on one thread each as the pipeline runs them
(side by side on two cores): both runs pass the fine-tuning gates and their accuracies lie within
``robustness.MAX_SPREAD`` points. ``make robustness`` runs the whole matrix.
"""
from __future__ import annotations

import json

import pytest

from conftest import copy_repo, offline, run
from embstudy.bench import robustness
from embstudy.params import Finetune


@pytest.mark.slow
def test_native_and_default_kernels_agree_on_the_outcome(tmp_path):
    root = copy_repo(tmp_path / "repo")
    done = run(offline(["dvc", "repro", "--quiet", "tokenize@camembert"]), root, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    cmd = ["python", "-m", "embstudy.bench.robustness", "--models", "camembert", "--seeds", "42", "--envs",
           "native", "default", "--threads", "1", "--margin", "0", "--out", str(tmp_path)]
    done = run(offline(cmd), root, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads((tmp_path / "robustness.json").read_text())
    cells = {c["env"]: c for c in found["cells"]}
    assert set(cells) == {"native", "default"} and cells["default"]["capability"] == "DEFAULT"
    for c in cells.values():
        assert c["gap"] <= found["finetune"]["camembert"]["max_gap_to_tfidf"], c
        assert c["majority_share"] <= found["finetune"]["camembert"]["max_majority_share"], c
    assert abs(cells["native"]["accuracy"] - cells["default"]["accuracy"]) <= robustness.MAX_SPREAD


def test_the_verdict_names_each_missed_target():
    """Margin, spread and collapse are judged per cell and per (model, seed); the report lists every cell."""
    cfg = Finetune(train_size=10, test_size=10, epochs=2, lr=1e-4, warmup=0.1, batch_size=8, seeds=[1], jobs=None,
                   max_gap_to_tfidf=5.0, max_majority_share=0.95)

    def cell(env, accuracy, share=0.5):
        return dict(model="m", seed=1, env=env, threads=2, lr=1e-4, capability="AVX2", accuracy=accuracy,
                    tfidf=80.0, gap=80.0 - accuracy, majority_share=share, epoch1_accuracy=50.0,
                    epoch1_majority_share=1.0, epoch1_collapsed=True, accuracies=[50.0, accuracy], seconds=1.0)

    cfgs = {"m": cfg}
    fine = robustness.verdict([cell("native", 79.0), cell("default", 78.5)], cfgs)
    assert fine == {"margin_missed": [], "spread": {"m-1": 0.5}, "spread_missed": [], "collapsed": []}
    bad = robustness.verdict([cell("native", 79.0), cell("default", 76.0), cell("avx2", 50.0, share=1.0)],
                             cfgs)
    assert bad["margin_missed"] == ["m seed 1 default 2 thread(s)", "m seed 1 avx2 2 thread(s)"]
    assert bad["spread_missed"] == ["m-1"] and bad["collapsed"] == ["m seed 1 avx2 2 thread(s)"]
    text = robustness.report([cell("native", 79.0), cell("default", 76.0)], bad, cfgs, "avx2", 2.0)
    assert "**Targets MISSED.**" in text and text.count("\n| m | 1 |") == 2
