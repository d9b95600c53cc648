"""The benchmark's re-implementation of the seed's method agrees with extract/geometry (not timing)."""
import numpy as np
import pytest
import torch
from transformers import CamembertConfig, CamembertModel

import standins
from embstudy import extract, geometry, params
from embstudy.bench import report, seed_method, timing

SENTENCES = [[0, 5, 7, 9, 2], [0, 8, 2], [0, 4, 6, 11, 12, 13, 14, 2]]  # 5, 3 and 8 tokens
CFG = params.Extract(batch_size=2, cos_sentences=3, cov_sentences=3, erank_sentences=3, erank_tokens=16,
                     baseline_sentences=3, hist_bins=10, cka_sentences=10, reviews=None)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = CamembertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=32, max_position_embeddings=40, pad_token_id=1)
    return CamembertModel(config).eval()


def seed_results(model, max_length=20):
    return dict(cos=seed_method.cosine_study(model, SENTENCES, max_length, 1),
                cov=seed_method.covariance_study(model, SENTENCES, max_length, 1),
                erank=seed_method.erank_study(model, SENTENCES, max_length, 1))


def test_seed_method_equals_extract_and_geometry(model):
    seed = seed_results(model)
    _, stats = extract.run_variant(model, {"test": SENTENCES}, CFG, "test")
    ours = np.concatenate([stats.cos[s] for s in range(3)], 1)  # (layers, all pairs in order)
    assert ours.shape == (3, 10 + 3 + 28)
    np.testing.assert_allclose(np.array(seed["cos"]), ours, atol=1e-5)
    np.testing.assert_allclose(seed["cov"], np.stack([stats.cov[s] for s in range(3)], 1), rtol=1e-5)
    stacked = torch.cat([stats.erank[s] for s in range(3)], 1)  # all 16 tokens
    np.testing.assert_allclose(seed["erank"], geometry.effective_rank(stacked), rtol=1e-5)
    diff = timing.summaries(seed, stats, dict(cos=3, cov=3, erank=3))
    assert set(diff) == {"cos_median", "cos_mean", "cov_mean", "cov_median", "erank"}
    assert max(d["scaled"] for d in diff.values()) < 1e-4


def test_check_catches_a_difference(model):
    seed = seed_results(model)
    seed["cov"] = seed["cov"] + 0.5  # a wrong seed-side trace must not pass as equal
    _, stats = extract.run_variant(model, {"test": SENTENCES}, CFG, "test")
    diff = timing.summaries(seed, stats, dict(cos=3, cov=3, erank=3))
    assert diff["cov_mean"]["abs"] == pytest.approx(0.5, rel=1e-3) and diff["cov_mean"]["scaled"] > 1e-3
    with pytest.raises(SystemExit, match="seed_base.*cov_mean"):
        equal = {"cos_mean": dict(abs=0.0, scaled=0.0)}
        timing.check(dict(seed_demo=dict(diff=equal), seed_base=dict(diff=diff)))


def test_padding_counts_tokens_of_sorted_batches():
    tokens = {"train": {"length": [3, 5]}, "test": {"length": [2, 4, 1]}}
    cfg = CFG.model_copy(update=dict(batch_size=2))
    out = timing.padding(tokens, cfg, max_length=8)
    # sorted 5, 4 | 3, 2 | 1 -> 2*5 + 2*3 + 1*1
    assert (out["real"], out["dynamic"], out["padded"], out["padded_512"]) == (15, 17, 40, 5 * 512)


def test_pipeline_times_every_stage_in_order_and_renders(monkeypatch, tmp_path):
    ran, stages = [], report.stage_names()  # the real dvc.yaml, matrix and foreach expanded
    assert stages.index("control@camembert") < stages.index("finetune@camembert") < stages.index(
        "extract@camembert") < stages.index("summary")
    monkeypatch.setattr(report, "stage_names", lambda: stages)
    monkeypatch.setattr(report, "wall", lambda cmd: ran.append(cmd[-1]) or 2.0)
    monkeypatch.setattr(report.paths, "ROOT", tmp_path)  # no dvc.lock: no-op repro and book skipped
    out = report.pipeline(["camembert", "flaubert"], True, None, timing.timed)
    assert ran == stages and ran[:4] == ["synth", "prepare", "pretrain@camembert", "pretrain@flaubert"]
    total = 2.0 * len(ran)
    assert ran[-1] == "summary" and out["from_scratch"]["total"] == total
    assert "not_current" in out
    carried = report.pipeline(["camembert"], False, out, timing.timed)
    assert carried["from_scratch"]["carried_over"] and carried["from_scratch"]["total"] == total
    t = dict(median=2.0, min=1.5, max=3.0, runs=3)
    study = {s: t | dict(sentences=5, of=50, extrapolated=s != "erank") for s in ("cos", "cov", "erank")}
    versus = dict(seed=study, seed_total=60.0, extract=t, floor=t, speedup=30.0, ceiling=30.0, max_length=256,
                  diff={"cos_mean": dict(abs=1e-7, scaled=1e-7)}, encoder="tiny")
    floor = dict(floor=t, full=t, ratio=1.0, ratio_of_minima=1.0, reviews=20, tokens=300)
    system = report.system() | dict(load_after=[1.0, 1.0, 1.0])
    results = dict(system=system, repeats=3, seed_demo=versus, seed_base=versus, floor=floor,
                   padding=timing.padding({"train": {"length": [3]}, "test": {"length": [4]}}, CFG, 8),
                   memory={"1x": dict(reviews=2, peak_mb=500.0, before_extract_mb=400.0),
                           "4x": dict(reviews=8, peak_mb=510.0, before_extract_mb=400.0), "ratio": 1.02},
                   pipeline=carried,
                   vocab=dict(model="e5", batch=8, vocab_whole=250037, vocab_pruned=2418, steps=3,
                              step={"whole": t | dict(median=6.0), "pruned": t}, logits_diff_before=0.0,
                              logits_diff_after=0.0))
    text = report.markdown(results)
    assert "extrapolated from 5 of 50" in text and "**30.0x**" in text and f"| **{total}**" in text
    assert "unknown offline" in text and "not measured" in text and "(target ≤ 900, book included)" in text
    assert "| whole | 250,037 | 6.00 (1.50–3.00) | 3.00 |" in text
    assert "| pruned (the pipeline's) | 2,418 |" in text


def test_memory_child_runs_extract_with_the_committed_params(model, tmp_path, capsys):
    """The memory part runs extract in a child on MEMORY_REVIEWS reviews a split, with the real params."""
    import json

    from datasets import Dataset, DatasetDict

    rng = np.random.default_rng(0)
    n = timing.MEMORY_REVIEWS

    def split():
        # 26-35 tokens a review: the first erank_sentences hold the 256 tokens erank needs
        ids = [[0, *rng.integers(3, 30, int(rng.integers(24, 34))).tolist(), 2] for _ in range(n)]
        return Dataset.from_dict(dict(input_ids=ids, length=list(map(len, ids)), label=[i % 2 for i in range(n)],
                                      domain=["books"] * n, idx=list(range(n))))

    DatasetDict(train=split(), test=split()).save_to_disk(str(tmp_path / "tokens"))
    model.save_pretrained(tmp_path / "model")
    standins.vocab_stub(tmp_path / "model", model.config.vocab_size)
    timing.memory_child(str(tmp_path / "model"), str(tmp_path), n)
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["peak_mb"] >= printed["before_extract_mb"] > 0
    with np.load(tmp_path / f"out-{n}" / "cls-pretrained.npz") as npz:
        assert npz["test"].shape[0] == n
        assert npz["test_mean"].shape[0] == min(n, params.load().extract.cka_sentences)
