"""The whole demo pipeline on micro params, offline, in a throw-away copy of the repository."""
import json

import yaml

from conftest import offline, run

STAGE_OUTPUTS = [
    "artifacts/synth/cls-acl10-unprocessed.tar.gz",
    "artifacts/prepare/cls/dataset_dict.json",
    "metrics/prepare.json",
    "artifacts/summary/correlation.csv",
    "metrics/summary.json",
]
PER_MODEL = [
    "artifacts/pretrain/{m}/config.json",
    "artifacts/tokenize/{m}/dataset_dict.json",
    "artifacts/control/{m}/init/config.json",
    "artifacts/finetune/{m}/control/epoch-2/config.json",
    "metrics/pretrain/{m}.json",
    "metrics/finetune/{m}.json",
    "metrics/finetune/{m}-history.csv",
    "metrics/probe/{m}.json",
    "artifacts/extract/{m}/cls-random-epoch-2-s1.npz",
]
PER_SEED = [  # MICRO's finetune.seeds
    "artifacts/finetune/{m}/seed-{s}/epoch-1/config.json",
    "artifacts/finetune/{m}/seed-{s}/epoch-2/config.json",
    "artifacts/extract/{m}/cls-epoch-2-s{s}.npz",
]


def test_every_stage_wrote_its_outputs(micro_repo):
    models = ("camembert", "flaubert")
    expected = STAGE_OUTPUTS + [p.format(m=m) for p in PER_MODEL for m in models]
    expected += [p.format(m=m, s=s) for p in PER_SEED for m in models for s in (1, 2)]
    missing = [p for p in expected if not (micro_repo / p).exists()]
    assert not missing


def test_second_repro_is_a_noop_and_status_clean(micro_repo):
    again = run(offline(["dvc", "repro"]), micro_repo, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "Running stage" not in again.stdout
    status = run(["dvc", "status", "--json", "dvc.yaml"], micro_repo, timeout=120)  # data.dvc: unfetched in the demo
    assert json.loads(status.stdout) == {}


def test_metrics_show_lists_the_probe_grid(micro_repo):
    shown = run(["dvc", "metrics", "show", "--json"], micro_repo, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "metrics/probe/camembert.json" in shown.stdout and "metrics/probe/flaubert.json" in shown.stdout


def test_lock_records_every_stage(micro_repo):
    lock = yaml.safe_load((micro_repo / "dvc.lock").read_text())["stages"]
    for stage in ("synth", "prepare", "pretrain@camembert", "finetune@flaubert", "control@camembert",
                  "extract@camembert", "probe@flaubert", "summary"):
        assert stage in lock


def test_book_builds_from_the_pipeline_outputs(micro_repo):
    done = run(["python", "-m", "embstudy.book", "--preview"], micro_repo, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    pages = micro_repo / "_book" / "preview"
    for page in ("index.html", "report/data.html", "report/raw.html", "report/finetuned.html", "report/cls.html",
                 "report/beyond.html", "report/methods.html"):
        assert (pages / page).exists(), page
    assert "fig-cls-grid" in (pages / "report" / "cls.html").read_text()
    assert "fig-beyond-correlation" in (pages / "report" / "beyond.html").read_text()
