"""Stage ``summary``: intervals over seeds and sentences, CKA, per-domain probes and the study's correlation.

Reads, for every model, ``artifacts/extract/<model>/`` (``run.json``, ``layers.csv``, ``sentences.csv``,
the runs' npz ``test_mean`` vectors), ``artifacts/probe/<model>/predictions.parquet``, the fine-tuning runs'
``hits.npy`` (``artifacts/finetune/<model>/seed-<s>/`` and ``control/``), and params
``summary``, ``probe.head`` and ``models``. Every interval is a percentile bootstrap at ``summary.level`` with ``summary.resamples``
draws, resampling seeds and sentences together (one seed for the runs that have one: then sentences
only). Writes ``artifacts/summary/``:

* ``geometry.csv`` — model, variant, layer, measure, mean, lo, hi, seeds: per-sentence mean token
  cosine (``raw``), the same minus the run's anisotropy baseline (``adjusted``, Ethayarajh 2019),
  after centring and after standardising the dimensions (``centred``, ``standardised``, Timkey & van
  Schijndel 2021), and the covariance trace (``trace``).
* ``probes.csv`` — model, variant, layer, probe, domain (``all``, books, dvd, music), mean, lo, hi, seeds.
* ``cka.csv`` — model, variant, layer, mean, lo, hi, seeds: linear CKA (Kornblith et al. 2019) between a
  fine-tuned run and its starting point (``epoch-k``: the pre-trained encoder; ``random-epoch-k``: the
  random one), same layer, over the mean token vectors extract kept (first ``extract.cka_sentences`` test reviews);
  ``cka-map.csv`` — model, variant, layer_from, layer_to, cka: every layer pair, averaged over seeds.
* ``finetuned.csv`` — model, start (``pretrained`` or ``random``), epoch, mean, lo, hi, seeds: test
  accuracy of the fine-tuned classifiers themselves, seeds and reviews resampled.
* ``correlation.csv`` — model (``all``: every model's cells), measure, cells, rho, lo, hi: Spearman
  correlation, over the (model, variant, seed, layer) cells past the embeddings, between a cosine measure
  and the head probe's accuracy; cells resampled.

and ``metrics/summary.json`` (the correlations, each model's last-layer probe and CKA intervals, and its
last-epoch fine-tuned accuracy from each start).
Run: ``python -m embstudy.summary``.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
from scipy.stats import rankdata, spearmanr

from embstudy import files, paths, stage, variants

STAGE = "summary"
MEASURES = {  # measure: (its column in sentences.csv, its per-layer mean in layers.csv; None: not a cosine)
    "raw": ("cos_mean", "cos_mean"), "adjusted": ("adjusted", "cos_minus_baseline"),
    "centred": ("cos_centred", "cos_centred_mean"),
    "standardised": ("cos_standardised", "cos_standardised_mean"), "trace": ("cov_trace", None)}
KEYS = ["model", "variant", "layer"]


class Bootstrap:
    """Percentile intervals of means over (seeds, items) matrices, resampling both axes at once.

    Resamples are drawn once per number of items (and of seeds) and shared by every statistic of that size:
    intervals are paired across cells (variants, layers, measures), and the stage draws a handful of
    multinomials instead of one per cell."""

    def __init__(self, resamples: int, level: float, seed: int):
        self.rng, self.resamples, self.tails = np.random.default_rng(seed), resamples, [(1 - level) / 2,
                                                                                        (1 + level) / 2]
        self.drawn = {}  # (kind, n) -> resamples, drawn at first use

    def weights(self, n: int) -> np.ndarray:
        """(resamples, n) multiplicities of an n-item resample with replacement."""
        if ("items", n) not in self.drawn:
            draws = self.rng.multinomial(n, np.full(n, 1 / n), size=self.resamples)
            self.drawn["items", n] = draws.astype(np.float64)
        return self.drawn["items", n]

    def picks(self, n: int) -> np.ndarray:
        """(resamples, n) indices of an n-item resample with replacement."""
        if ("picks", n) not in self.drawn:
            self.drawn["picks", n] = self.rng.integers(0, n, (self.resamples, n))
        return self.drawn["picks", n]

    def over_seeds(self, point: float, per_seed: np.ndarray) -> dict:
        """``per_seed`` (seeds, resamples): each seed's statistic under the shared item resamples."""
        pick = self.picks(len(per_seed))  # (resamples, seeds)
        draws = per_seed[pick, np.arange(self.resamples)[:, None]].mean(1)
        lo, hi = np.nanquantile(draws, self.tails)  # NaN: a resample that drew no valid item
        return {"mean": point, "lo": lo, "hi": hi, "seeds": len(per_seed)}

    def mean(self, values: np.ndarray) -> dict:
        """Interval of the mean over seeds of each seed's mean of ``values`` (seeds, items); NaN items (no
        statistic) are left out."""
        valid = ~np.isnan(values)
        w = self.weights(values.shape[1]).T  # (items, resamples)
        counts = valid @ w
        per_seed = np.where(counts > 0, np.where(valid, values, 0) @ w / np.maximum(counts, 1), np.nan)
        return self.over_seeds(float(np.nanmean(np.nanmean(values, 1))), per_seed)


def linear_cka(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> np.ndarray | float:
    """Linear CKA of (n, d) representations, and with ``w`` (resamples, n) item multiplicities the CKA of
    each resample, re-centred as the resampled rows would be. Returns (resamples,) with ``w``, a float without.

    The centred Gram of a resample is K - a_i - a_j + c with a = K w / W and c = w'K w / W**2 (W = sum w), so
    its HSIC with L's is w'(K o L) w - 2/W sum_i w_i (Kw)_i (Lw)_i + (w'Kw)(w'Lw)/W**2: O(resamples x n**2)."""
    x, y = x - x.mean(0), y - y.mean(0)  # a shift of every row leaves each resample's centring unchanged
    k, l_ = x @ x.T, y @ y.T  # (n, n) Gram matrices
    weights = np.ones((1, len(x))) if w is None else w  # (resamples, n)
    total = weights.sum(1)
    kw, lw = weights @ k, weights @ l_  # (resamples, n)

    def hsic(a, aw, b, bw):
        return (((weights @ (a * b)) * weights).sum(1) - 2 * (weights * aw * bw).sum(1) / total
                + (aw * weights).sum(1) * (bw * weights).sum(1) / total ** 2)

    kk, ll = hsic(k, kw, k, kw), hsic(l_, lw, l_, lw)
    # a resample of (nearly) one distinct review has no spread: 0 / 0, not the rounding noise of the expansion
    scale = lambda a: ((weights @ (a * a)) * weights).sum(1)  # noqa: E731  (the uncentred size)
    flat = (kk <= 1e-6 * scale(k)) | (ll <= 1e-6 * scale(l_))
    out = np.where(flat, np.nan, hsic(k, kw, l_, lw) / np.sqrt(np.where(flat, 1.0, kk * ll)))
    out = np.clip(out, 0.0, 1.0)  # Cauchy-Schwarz bounds CKA to [0, 1]; the expansion rounds past 1 by ~1e-11
    return out if w is not None else float(out[0])


def load(model: str) -> tuple[list[dict], pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    folder = paths.extracted(model)
    if not (folder / paths.RUN_LIST).is_file():
        raise stage.StageError(f"{STAGE}: {folder / paths.RUN_LIST} is missing: run the extract stage first")
    runs = json.loads((folder / paths.RUN_LIST).read_text())["runs"]
    layers = pd.read_csv(folder / paths.LAYERS, dtype={"seed": "Int64"})
    sentences = pd.read_csv(folder / paths.SENTENCES, dtype={"seed": "Int64"})
    sentences = sentences.merge(layers[["variant", "seed", "layer", "baseline"]], how="left")
    predictions = pd.read_parquet(paths.probed(model) / paths.PREDICTIONS)
    return runs, sentences.assign(adjusted=sentences["cos_mean"] - sentences["baseline"]), layers, predictions


def finetuned(model: str, runs: list[dict], boot: Bootstrap) -> list[dict]:
    """Fine-tuned classifiers' test accuracy per start and epoch: pre-trained (every seed) and random weights."""
    seeds = sorted({r["seed"] for r in runs if r["seed"] is not None and not variants.is_control(r["variant"])})
    starts = {variants.PRETRAINED: [paths.finetuned(model, s) for s in seeds],
              variants.RANDOM: [paths.control_finetuned(model)]}
    rows = []
    for start, folders in starts.items():
        hits = np.stack([np.load(paths.hits(f)) for f in folders]).astype(np.float64)  # (seeds, epochs, reviews)
        rows += [{"model": model, "start": start, "epoch": k + 1} | boot.mean(hits[:, k])
                 for k in range(hits.shape[1])]
    return rows


def matrix(frame: pd.DataFrame, value: str, item: str) -> tuple[np.ndarray, np.ndarray]:
    """(seeds, items) of ``value`` (a run without a seed is one row; seeds and items sorted, a missing cell
    NaN) and the row of ``frame`` where each item first appears."""
    seeds, seed_of = np.unique(frame["seed"].to_numpy(np.int64, na_value=-1), return_inverse=True)
    items, first, item_of = np.unique(frame[item].to_numpy(), return_index=True, return_inverse=True)
    out = np.full((len(seeds), len(items)), np.nan)
    out[seed_of, item_of] = frame[value].to_numpy(np.float64)
    return out, first


def geometry(model: str, sentences: pd.DataFrame, boot: Bootstrap) -> list[dict]:
    rows = []
    for (variant, layer), g in sentences.groupby(["variant", "layer"], sort=False):
        for measure, (column, _) in MEASURES.items():
            rows.append({"model": model, "variant": variant, "layer": layer, "measure": measure,
                         **boot.mean(matrix(g, column, "sentence")[0])})
    return rows


def probes(model: str, predictions: pd.DataFrame, boot: Bootstrap) -> list[dict]:
    rows = []
    for (variant, layer, probe), g in predictions.groupby(["variant", "layer", "probe"], sort=False):
        hits, first = matrix(g, "correct", "row")  # (seeds, test reviews)
        domain = g["domain"].to_numpy()[first]  # (test reviews,)
        for name in ["all", *sorted(set(domain))]:
            mine = hits if name == "all" else hits[:, domain == name]
            rows.append({"model": model, "variant": variant, "layer": layer, "probe": probe, "domain": name,
                         **boot.mean(mine)})
    return rows


def cka(model: str, runs: list[dict], boot: Bootstrap) -> tuple[list[dict], list[dict]]:
    """Same-layer CKA intervals and the layer-by-layer map of every fine-tuned run against its start."""
    vectors = {}
    for run in runs:
        with np.load(paths.extracted(model) / run["file"]) as npz:
            vectors[run["file"]] = npz["test_mean"].astype(np.float64)  # (n, layers + 1, hidden)
    start = {r["variant"]: r["file"] for r in runs if r["seed"] is None}  # pretrained, random
    tuned = pd.DataFrame([r for r in runs if r["seed"] is not None])
    w, rows, cells = boot.weights(len(next(iter(vectors.values())))), [], []
    for variant, g in tuned.groupby("variant", sort=False):
        before = vectors[start[variants.start_of(variant)]]
        after = [vectors[f] for f in g["file"]]
        for layer in range(before.shape[1]):
            per_seed = np.stack([linear_cka(before[:, layer], a[:, layer], w) for a in after])
            point = np.mean([linear_cka(before[:, layer], a[:, layer]) for a in after])
            rows.append({"model": model, "variant": variant, "layer": layer,
                         **boot.over_seeds(float(point), per_seed)})
            cells += [{"model": model, "variant": variant, "layer_from": layer, "layer_to": j,
                       "cka": float(np.mean([linear_cka(before[:, layer], a[:, j]) for a in after]))}
                      for j in range(before.shape[1])]
    return rows, cells


def correlation(layers: pd.DataFrame, accuracy: pd.DataFrame, boot: Bootstrap) -> list[dict]:
    """Spearman rho of each cosine measure with probe accuracy over cells past layer 0, cells resampled: over
    every model's cells (``model`` = ``all``) and each model's own. Layer 0 is left out: the first token's
    embedding is the same vector for every review (chance probes)."""
    cells = layers.merge(accuracy, on=[*KEYS, "seed"])
    cells = cells[cells["layer"] > 0]
    rows = []
    for model, group in [("all", cells), *cells.groupby("model", sort=True)]:
        y = group["accuracy"].to_numpy()
        for measure, (_, column) in MEASURES.items():
            if column is None:
                continue
            x = group[column].to_numpy()
            picks = boot.picks(len(x))  # (resamples, cells)
            with np.errstate(invalid="ignore"):  # a measure constant over a model's cells has no rank order
                draws = spearman_rows(x[picks], y[picks])
                rho = spearmanr(x, y).statistic if np.ptp(x) > 0 and np.ptp(y) > 0 else np.nan
            lo, hi = np.nanquantile(draws, boot.tails) if np.isfinite(draws).any() else (np.nan, np.nan)
            rows.append({"model": model, "measure": measure, "cells": len(x), "rho": rho, "lo": lo, "hi": hi})
    return rows


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman rho of each row pair of (rows, n) arrays: Pearson's r of the ranks (ties averaged, as scipy);
    NaN for a constant row."""
    rx, ry = (rankdata(a, axis=1) for a in (x, y))
    rx, ry = rx - rx.mean(1, keepdims=True), ry - ry.mean(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rx * ry).sum(1) / np.sqrt((rx**2).sum(1) * (ry**2).sum(1))


def main() -> None:
    p, logger = stage.start(STAGE)
    cfg, head = p.summary, p.probe.head
    boot = Bootstrap(cfg.resamples, cfg.level, cfg.seed)
    geo, prob, same, maps, layer_tables, acc, tuned = [], [], [], [], [], [], []
    for model in p.models:
        runs, sentences, layers, predictions = load(model)
        geo += geometry(model, sentences, boot)
        prob += probes(model, predictions, boot)
        tuned += finetuned(model, runs, boot)
        rows, cells = cka(model, runs, boot)
        same, maps = same + rows, maps + cells
        layer_tables.append(layers.assign(model=model))
        main_probe = predictions[predictions["probe"] == head]
        acc.append(main_probe.groupby(["variant", "seed", "layer"], dropna=False)["correct"].mean()
                   .rename("accuracy").reset_index().assign(model=model))
        logger.info("%s: %d runs summarised", model, len(runs))
    corr = correlation(pd.concat(layer_tables), pd.concat(acc), boot)
    tables = {paths.GEOMETRY_CI: geo, paths.PROBES_CI: prob, paths.CKA: same, paths.CKA_MAP: maps,
              paths.FINETUNED_CI: tuned, paths.CORRELATION: corr}
    with files.atomic_dir(paths.summary()) as tmp:
        for name, rows in tables.items():
            pd.DataFrame(rows).to_csv(tmp / name, index=False, float_format="%.6g")
        files.write_json(paths.SUMMARY_METRICS, headline(corr, prob, same, tuned, head))
    for r in corr:
        logger.info("%s: spearman(%s cosine, %s accuracy) = %.3f [%.3f, %.3f] over %d cells", r["model"],
                    r["measure"], head, r["rho"], r["lo"], r["hi"], r["cells"])


def headline(corr: list[dict], prob: list[dict], same: list[dict], tuned: list[dict], head: str) -> dict:
    """The metrics: correlations, per model and variant the last layer's probe and CKA intervals, and per
    model and start the last epoch's fine-tuned accuracy."""
    def last(rows, **where):
        rows = [r for r in rows if all(r[k] == v for k, v in where.items())]
        top = max(r["layer"] for r in rows)
        return {r["variant"]: {k: round(float(r[k]), 4) for k in ("mean", "lo", "hi")}
                for r in rows if r["layer"] == top}

    models = sorted({r["model"] for r in prob})
    return {"correlation": {r["measure"]: {k: round(float(r[k]), 4) for k in ("rho", "lo", "hi")} for r in corr
                            if r["model"] == "all"},
            "probe_last_layer": {m: last(prob, model=m, probe=head, domain="all") for m in models},
            "cka_last_layer": {m: last(same, model=m) for m in models},
            "finetuned_last_epoch": {m: {r["start"]: {k: round(float(r[k]), 4) for k in ("mean", "lo", "hi")}
                                         for r in tuned if r["model"] == m
                                         and r["epoch"] == max(t["epoch"] for t in tuned if t["model"] == m)}
                                     for m in models}}


if __name__ == "__main__":
    main()
