"""The whole demo pipeline on micro params, offline, in a throw-away copy of the repository; once more in Japanese."""
import json
import tarfile

import pytest
import yaml
from transformers import AutoTokenizer

from conftest import micro_copy, offline, run

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


@pytest.fixture(scope="module")
def japanese_repo(tmp_path_factory):
    """The demo pipeline on micro params in Japanese: synth writes jp/, the encoders learn it from scratch. The
    micro vocabulary (400) is too small for Japanese characters: the first run stops there, the second has 1000."""
    root = micro_copy(tmp_path_factory.mktemp("jp"))
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"]["language"] = "jp"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    too_small = run(offline(["dvc", "repro", "--quiet"]), root, timeout=1200)
    for m in params["models"].values():
        m["encoder"]["vocab_size"] = 1000
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    done = run(offline(["dvc", "repro", "--quiet"]), root, timeout=1200)
    assert done.returncode == 0, f"dvc repro failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return root, too_small


def test_a_vocabulary_too_small_for_the_characters_stops_in_one_line(japanese_repo):
    _, done = japanese_repo
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "vocab: camembert: vocab_size 400 cannot hold the corpus's characters and special tokens; the " \
           "encoder's vocab_size must be at least" in done.stderr


def test_the_demo_runs_in_japanese_and_the_book_counts_characters(japanese_repo):
    root, _ = japanese_repo
    with tarfile.open(root / STAGE_OUTPUTS[0]) as tar:
        assert {m.name.split("/")[1] for m in tar.getmembers() if m.isfile()} == {"jp"}
    prepared = json.loads((root / "metrics" / "prepare.json").read_text())
    assert "mean_characters" in prepared["train"] and "mean_words" not in prepared["train"]
    with tarfile.open(root / STAGE_OUTPUTS[0]) as tar:
        text = tar.extractfile("cls-acl10-unprocessed/jp/books/test.review").read().decode()
    review = text.split("<text>")[1].split("</text>")[0]
    for m in ("camembert", "flaubert"):  # each tokenizer learned the Japanese characters
        tokenizer = AutoTokenizer.from_pretrained(root / "artifacts" / "pretrain" / m)
        assert tokenizer.unk_token_id not in tokenizer(review)["input_ids"], m
        assert (root / f"metrics/probe/{m}.json").exists()
    done = run(["python", "-m", "embstudy.book", "--preview"], root, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    page = (root / "_book" / "preview" / "report" / "data.html").read_text()
    assert "Synthetic Japanese reviews" in page and "characters" in page
