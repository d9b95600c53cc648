"""The paper profile end to end without internet: hub-like stand-ins, real data layout, no demo shortcut.

The stand-ins for ``camembert-base`` and ``flaubert/flaubert_base_cased`` are tiny randomly initialised
masked LMs (12 layers of 32, so the paper's probe layers 5..12 exist) with real tokenizers trained by
``embstudy.vocab``, laid out as the Hugging Face client caches a download (blobs, ``refs/main``,
``snapshots/<sha>``). A small corpus in the real Webis-CLS-10 layout is served from 127.0.0.1 and pulled
with ``dvc update data.dvc``. The copy switches to ``conf/paper.yaml`` and shrinks only sizes: the
``models`` section stays the paper's (hub ids, encoder null). ``dvc repro`` then runs with the network
cut, and the book preview must show the paper-only comparison with the original study.
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import MICRO, copy_repo, env_for, offline
from standins import cache_snapshot
from embstudy import encoders, synth, vocab
from embstudy.params import Encoder, Synth

HUB_IDS = {"camembert": "camembert-base", "flaubert": "flaubert/flaubert_base_cased"}
STANDIN = Encoder(layers=12, hidden=32, heads=2, ffn=128, vocab_size=400)  # flaubert needs ffn = 4 x hidden
CORPUS = Synth(seed=7, labelled_per_class=12, unlabeled_per_domain=4, label_noise=0.08, negation_rate=0.15,
               contrast_rate=0.1)  # 72 train and 72 test reviews: above MICRO's 60 / 40
SIZES = {key: value for key, value in MICRO.items() if key != "models"}  # the paper's hub ids stay
SEEDS = MICRO["finetune"]["seeds"]
STAGES = {"synth", "prepare", "summary"} | {f"{s}@{m}" for s in ("pretrain", "tokenize", "control", "finetune", "extract",
                                                                  "probe") for m in HUB_IDS}


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory) -> Path:
    """A Hugging Face cache holding both stand-ins, as `hf download` would have left it."""
    root = tmp_path_factory.mktemp("standins")
    texts = [r["text"] for recs in synth.corpus(CORPUS).values() for r in recs]
    for name, repo_id in HUB_IDS.items():
        folder = root / name
        tokenizer = vocab.train(name, texts, STANDIN.vocab_size, folder)
        torch.manual_seed(0)
        encoders.build_mlm(name, STANDIN, tokenizer).save_pretrained(folder)
        cache_snapshot(root / "hf", repo_id, folder)
    return root / "hf"


@contextlib.contextmanager
def serve(folder: Path):
    """A loopback HTTP server for ``folder``; yields its base URL."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest's output readable
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=folder))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


def run(cmd: list[str], root: Path, hf: Path, timeout: float) -> tuple:
    """``cmd`` in ``root`` with ``HF_HOME=hf`` (HF_HUB_OFFLINE unset); returns (process, seconds)."""
    start = time.monotonic()
    done = subprocess.run(cmd, cwd=root, env=env_for(root) | {"HF_HOME": str(hf)}, capture_output=True,
                          text=True, timeout=timeout)
    return done, time.monotonic() - start


def check(step: str, done) -> None:
    assert done.returncode == 0, f"{step} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"


@pytest.fixture(scope="module")
def paper_repo(tmp_path_factory, hf_home) -> tuple[Path, dict]:
    """A repository copy that ran `dvc repro` and the book in the paper profile; (root, seconds per step)."""
    tmp = tmp_path_factory.mktemp("paper")
    root, www, seconds = copy_repo(tmp / "repo"), tmp / "www", {}
    www.mkdir()
    (www / "cls-acl10-unprocessed.tar.gz").write_bytes(synth.build(synth.corpus(CORPUS)))
    (tmp / "sizes.yaml").write_text(yaml.safe_dump(SIZES))
    done, seconds["profile"] = run(["python", "-m", "embstudy.use_profile", "conf/paper.yaml"], root, hf_home,
                                   60)
    check("profile", done)
    with serve(www) as url:
        dvcfile = root / "data.dvc"
        dvcfile.write_text(dvcfile.read_text().replace("https://zenodo.org/records/3251672/files", url))
        done, seconds["dvc update"] = run(["dvc", "update", "data.dvc"], root, hf_home, 120)
    check("dvc update data.dvc", done)
    done, seconds["sizes"] = run(["python", "-m", "embstudy.use_profile", str(tmp / "sizes.yaml")], root,
                                 hf_home, 60)
    check("size overrides", done)
    done, seconds["dvc repro"] = run(offline(["dvc", "repro"]), root, hf_home, 900)
    check("dvc repro", done)
    done, seconds["book"] = run(["python", "-m", "embstudy.book", "--preview"], root, hf_home, 600)
    check("book preview", done)
    print(f"paper profile, seconds per step: {seconds}")
    return root, seconds


def test_params_are_the_papers_models_with_micro_sizes(paper_repo):
    p = yaml.safe_load((paper_repo[0] / "params.yaml").read_text())
    assert p["profile"] == "paper" and p["data"]["source"] == "data/cls-acl10-unprocessed.tar.gz"
    assert {n: (m["checkpoint"], m["encoder"]) for n, m in p["models"].items()} == {
        n: (hub, None) for n, hub in HUB_IDS.items()}
    assert p["probe"]["layers"] == [5, 7, 9, 11, 12] and p["finetune"]["epochs"] == 2


def test_every_stage_ran_and_every_output_exists(paper_repo):
    root = paper_repo[0]
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    assert set(lock) == STAGES
    outs = [o["path"] for stage in lock.values() for o in stage.get("outs", [])]
    assert [o for o in outs if not (root / o).exists()] == []
    status, _ = run(["dvc", "status", "--json"], root, root / "unused-hf", 120)
    assert json.loads(status.stdout) == {}, status.stdout  # no stage wrote into another's output
    prepared = json.loads((root / "metrics" / "prepare.json").read_text())
    served = 3 * 2 * CORPUS.labelled_per_class  # the fetched corpus, not the synth stage's (MICRO sizes)
    assert (prepared["train"]["reviews"], prepared["test"]["reviews"]) == (served, served)
    for name in HUB_IDS:
        for k in (1, 2):
            for folder in [f"seed-{seed}" for seed in SEEDS] + ["control"]:
                assert (root / "artifacts" / "finetune" / name / folder / f"epoch-{k}" / "config.json").is_file()
        assert json.loads((root / "metrics" / "probe" / f"{name}.json").read_text())


def test_pretrain_writes_only_a_note_for_hub_checkpoints(paper_repo):
    root = paper_repo[0]
    for name, hub_id in HUB_IDS.items():
        folder = root / "artifacts" / "pretrain" / name
        assert sorted(p.name for p in folder.iterdir()) == ["SOURCE.json"]
        note = json.loads((folder / "SOURCE.json").read_text())
        assert note == {"checkpoint": hub_id, "pretrained_here": False}
        assert json.loads((root / "metrics" / "pretrain" / f"{name}.json").read_text())["skipped"] is True


def test_later_stages_loaded_the_cached_snapshots(paper_repo, hf_home):
    for name, hub_id in HUB_IDS.items():
        run_json = json.loads((paper_repo[0] / "artifacts" / "extract" / name / "run.json").read_text())
        source = Path(run_json["runs"][0]["source"])  # the pretrained run: the hub snapshot
        assert source.parent.parent.name == "models--" + hub_id.replace("/", "--")
        assert source.is_relative_to(hf_home) and run_json["hidden_states"] == STANDIN.layers + 1


def test_book_preview_shows_the_paper_only_comparison(paper_repo):
    preview = paper_repo[0] / "_book" / "preview"
    for page in ("index.html", "report/data.html", "report/raw.html", "report/finetuned.html",
                 "report/cls.html", "report/beyond.html", "report/methods.html"):
        assert (preview / page).is_file(), page
    cls = (preview / "report" / "cls.html").read_text()
    assert "Against the original study" in cls and 'id="fig-cls-original"' in cls
    assert "Paper profile" in cls and "Demo profile" not in cls


def dvc_tmp(folder: str, names: list[str]) -> list[str]:
    """copytree's ignore: DVC's own state (.dvc/tmp: locks, indexes) stays behind."""
    return ["tmp"] if Path(folder).name == ".dvc" else []


def test_uncached_checkpoint_offline_fails_fast_with_advice(paper_repo, tmp_path):
    """An empty HF_HOME and no network: pretrain only notes the hub id; tokenize, the first stage that
    needs the model, stops within seconds with one line of advice and leaves nothing half-written."""
    root = tmp_path / "repo"
    shutil.copytree(paper_repo[0], root, symlinks=True, ignore=dvc_tmp)
    empty = tmp_path / "hf"
    empty.mkdir()
    noted, _ = run(offline(["dvc", "repro", "--force", "--single-item", "pretrain@camembert"]), root, empty,
                   120)
    check("pretrain with an empty cache (it must never resolve the hub id)", noted)
    done, seconds = run(offline(["dvc", "repro", "--force", "--single-item", "tokenize@camembert"]), root,
                        empty, 120)
    print(f"offline failure after {seconds:.1f} s; stderr:\n{done.stderr}")
    assert done.returncode != 0 and seconds < 30
    advice = [line for line in done.stderr.splitlines() if line.startswith("camembert-base: ")]
    assert len(advice) == 1, done.stderr
    for hint in ("not in the local cache", "hf download camembert-base", str(empty), "HF_HUB_OFFLINE=1",
                 "demo profile"):
        assert hint in advice[0]
    assert "Traceback" not in done.stderr + done.stdout
    assert "failed to reproduce 'tokenize@camembert'" in done.stderr
    assert not list((root / "artifacts" / "tokenize").glob(".camembert.*"))  # nothing half-written
