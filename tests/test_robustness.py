"""The demo's fine-tuning outcome does not hang on the float kernels: the cut-down robustness matrix.

One model, one seed, the demo's real params and shipped encoder, fine-tuned under the native kernels and
under ``ATEN_CPU_CAPABILITY=default`` (no vector instructions): both runs pass the fine-tuning gates and
their accuracies lie within ``robustness.MAX_SPREAD`` points. ``make robustness`` runs the whole matrix.
"""
from __future__ import annotations

import json

from conftest import copy_repo, offline, run
from embstudy.bench import robustness


def test_native_and_default_kernels_agree_on_the_outcome(tmp_path):
    root = copy_repo(tmp_path / "repo")
    done = run(offline(["dvc", "repro", "--quiet", "tokenize@camembert"]), root, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    cmd = ["python", "-m", "embstudy.bench.robustness", "--models", "camembert", "--seeds", "42", "--envs",
           "native", "default", "--threads", "2", "--margin", "0", "--out", str(tmp_path)]
    done = run(offline(cmd), root, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads((tmp_path / "robustness.json").read_text())
    cells = {c["env"]: c for c in found["cells"]}
    assert set(cells) == {"native", "default"} and cells["default"]["capability"] == "DEFAULT"
    for c in cells.values():
        assert c["gap"] <= found["finetune"]["max_gap_to_tfidf"], c
        assert c["majority_share"] <= found["finetune"]["max_majority_share"], c
    assert abs(cells["native"]["accuracy"] - cells["default"]["accuracy"]) <= robustness.MAX_SPREAD
