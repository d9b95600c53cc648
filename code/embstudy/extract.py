"""Stage ``extract``: per-layer geometry and first-token vectors of every variant of a model.

Reads ``artifacts/tokenize/<model>`` and the encoders of every run (variant, seed): ``pretrained``
(``encoders.checkpoint``), ``random`` (``artifacts/control/<model>/init``), ``epoch-k`` for k =
1..``finetune.epochs`` and every seed of ``finetune.seeds`` (``artifacts/finetune/<model>/seed-<s>/epoch-k``,
the base encoder of a sequence-classification checkpoint) and ``random-epoch-k`` (the control fine-tuned,
first seed). One length-sorted, dynamically padded pass per variant over all train and
test reviews with every hidden state (layers + 1 of them, the embeddings are layer 0);
statistics of the first test sentences are reduced as the batches stream
(``embstudy.geometry``); ``extract.reviews`` keeps the first N of each split only; the runs come from
the model's whole fine-tuning recipe (``finetune``, epochs and seeds). The model's own values
(``models.<model>.finetune``, ``models.<model>.extract``) go over the stages'. Run:
``python -m embstudy.extract camembert``.

Writes ``artifacts/extract/<model>/`` (every table has ``variant`` and ``seed``, empty for the
runs that were not fine-tuned):

* ``layers.csv`` — one row per (variant, seed, layer): ``cos_count, cos_mean, cos_std`` (ddof 1),
  ``cos_min, cos_q05, cos_q25, cos_q50, cos_q75, cos_q95, cos_max``, ``cos_whislo, cos_whishi``
  (box-plot whiskers: furthest cosines within 1.5 IQR of the quartiles), ``baseline`` (mean
  cross-sentence cosine, first ``baseline_sentences``), ``cos_minus_baseline``, ``cov_mean,
  cov_median`` (first ``cov_sentences``), ``erank``, ``erank_tokens``; cosines over all token
  pairs of the first ``cos_sentences`` test sentences; ``cos_centred_mean`` and
  ``cos_standardised_mean``: the same pairs after subtracting the layer's mean token vector, and after
  also dividing each dimension by its standard deviation (both over the baseline sentences' tokens;
  rogue dimensions inflate raw cosines, Timkey & van Schijndel 2021).
* ``hist.csv`` — ``variant, layer, bin, lo, hi, count``: ``hist_bins`` equal bins over [-1, 1].
* ``sentences.csv`` — ``variant, layer, sentence`` (row of the test split), ``idx, tokens,
  cos_mean, cos_var`` (ddof 1, as pandas; NaN below 2 pairs or past ``cos_sentences``),
  ``cos_centred, cos_standardised`` (mean pair cosine after centring / standardising),
  ``cov_trace`` (NaN for one token or past ``cov_sentences``).
* ``cls-<variant>[-s<seed>].npz`` — ``train``/``test``: float16 (reviews, layers + 1, hidden)
  first-token vectors; ``test_mean``: the mean token vector of each of the first ``cka_sentences`` test
  reviews (for CKA);
  ``train_label, train_domain, train_idx`` and the same for ``test``, in split order.
* ``run.json`` — model, ``runs`` (variant, seed, npz file, checkpoint relative to the repository),
  hidden states (layers + 1), hidden size, ``first_token`` (what the tokenizer puts first: ``[CLS]``, ``<s>``),
  and the ``extract`` params used.
* ``timing.json`` — per run wall seconds, tokens, reviews, tokens/s, device (the one
  non-deterministic file).
"""
from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import transformers
from datasets import DatasetDict, load_from_disk
from tqdm import tqdm

from embstudy import encoders, files, geometry, params, paths, stage, variants

STAGE = "extract"


def fail(message: str):
    raise stage.StageError(f"{STAGE}: {message}")


class Accumulator:
    """Statistics of the first test sentences, reduced while batches stream in (bounded by the sizes)."""

    def __init__(self, cfg: params.Extract, lengths: list[int], layers: int):
        self.cfg, self.lengths, self.layers = cfg, lengths, layers
        self.cos, self.cov, self.erank, self.parts = {}, {}, {}, None  # keyed by test row
        self.kept, self.moments = {}, None  # cos sentences' states; token sums over the baseline sentences
        self.needed = max(cfg.cos_sentences, cfg.cov_sentences, cfg.erank_sentences, cfg.baseline_sentences)
        starts = np.cumsum([0, *lengths[: cfg.erank_sentences]])
        # erank stacks the sentences in order and keeps exactly the first erank_tokens tokens
        self.erank_keep = {s: int(np.clip(cfg.erank_tokens - starts[s], 0, lengths[s]))
                           for s in range(cfg.erank_sentences)}

    def update(self, rows: np.ndarray, states, mask: torch.Tensor) -> None:
        """Take the batch's rows below ``needed`` (test rows ``rows``, hidden ``states``, ``mask``)."""
        assert len(states) == self.layers, f"{len(states)} hidden states, expected {self.layers}"
        pick = np.flatnonzero(rows < self.needed)
        if len(pick) == 0:
            return
        rows, sel = rows[pick], torch.as_tensor(pick, device=mask.device)
        mask = mask[sel][:, : int(mask[sel].sum(1).max())]  # right-padded: trim to the longest kept
        hidden = torch.stack([h[sel, : mask.shape[1]] for h in states]).float()  # (layers, kept, tokens, dim)

        def only(below: int):  # (test rows, hidden, mask) of the kept rows < below; no copy when all are
            keep = rows < below
            flags = torch.as_tensor(keep, device=mask.device)
            return (rows, hidden, mask) if keep.all() else (rows[keep], hidden[:, flags], mask[flags])

        cos_rows, *cos_batch = only(self.cfg.cos_sentences)
        if len(cos_rows):
            pairs = geometry.intra_sentence_cosines(*cos_batch)
            self.cos.update(zip(cos_rows.tolist(), (c.cpu().numpy() for c in pairs)))
            for i, r in enumerate(cos_rows.tolist()):  # re-read once the centre and scale are known
                self.kept[r] = cos_batch[0][:, i, : int(cos_batch[1][i].sum())].cpu()  # (layers, tokens, dim)
        cov_rows, *cov_batch = only(self.cfg.cov_sentences)
        if len(cov_rows):
            traces = geometry.covariance_trace(*cov_batch).cpu().numpy()  # (layers, cov rows)
            self.cov.update((r, traces[:, i]) for i, r in enumerate(cov_rows.tolist()))
        base_rows, *base_batch = only(self.cfg.baseline_sentences)
        if len(base_rows):
            self.parts = geometry.add_parts(self.parts, geometry.baseline_parts(*base_batch))
            self.moments = geometry.merge_moments(self.moments, geometry.token_moments(*base_batch))
        for i, r in enumerate(rows.tolist()):
            if self.erank_keep.get(r):
                self.erank[r] = hidden[:, i, : self.erank_keep[r]].cpu()  # (layers, kept tokens, hidden)

    def tables(self, variant: str, idx: list[int]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """layers.csv, hist.csv and sentences.csv rows of one variant."""
        cfg, layer_rows, hist_rows = self.cfg, [], []
        cos = np.concatenate([self.cos[s] for s in range(cfg.cos_sentences)], 1).astype(np.float64)
        pairs = [self.cos[s].shape[1] for s in range(cfg.cos_sentences)]  # weights: the mean over all pairs
        cov = np.stack([self.cov[s] for s in range(cfg.cov_sentences)], 1)  # (layers, sentences)
        erank = geometry.effective_rank(torch.cat([self.erank[s] for s in sorted(self.erank)], 1))
        baseline = geometry.baseline_from_parts(self.parts).cpu().numpy()
        per_sentence = self.rescaled_cosines()  # {kind: {sentence: (layers,) mean pair cosine}}
        rescaled = {k: np.stack([v[s] for s in range(cfg.cos_sentences)], 1) for k, v in per_sentence.items()}
        edges = np.linspace(-1, 1, cfg.hist_bins + 1)
        for layer, v in enumerate(cos):
            q = np.quantile(v, [0, 0.05, 0.25, 0.5, 0.75, 0.95, 1])
            reach = 1.5 * (q[4] - q[2])
            row = dict(zip(["cos_min", "cos_q05", "cos_q25", "cos_q50", "cos_q75", "cos_q95", "cos_max"], q))
            layer_rows.append(dict(variant=variant, layer=layer, cos_count=len(v), cos_mean=v.mean(),
                                   cos_std=v.std(ddof=1), **row, cos_whislo=v[v >= q[2] - reach].min(),
                                   cos_whishi=v[v <= q[4] + reach].max(), baseline=baseline[layer],
                                   cos_minus_baseline=v.mean() - baseline[layer],
                                   **{f"cos_{k}_mean": np.nansum(r[layer] * pairs) / sum(pairs)
                                      for k, r in rescaled.items()},  # over all pairs, as cos_mean
                                   cov_mean=cov[layer].mean(),
                                   cov_median=np.median(cov[layer]), erank=float(erank[layer]),
                                   erank_tokens=cfg.erank_tokens))
            counts = np.histogram(np.clip(v, -1, 1), edges)[0]  # clip: float noise past +-1
            hist_rows += [dict(variant=variant, layer=layer, bin=b, lo=edges[b], hi=edges[b + 1], count=c)
                          for b, c in enumerate(counts)]
        return pd.DataFrame(layer_rows), pd.DataFrame(hist_rows), self.sentences(variant, idx, per_sentence)

    def rescaled_cosines(self) -> dict[str, dict[int, np.ndarray]]:
        """Mean pair cosine per kept sentence and layer after centring, and after standardising, the tokens."""
        mean, std = geometry.moments_from_parts(self.moments)  # (layers, dim) each
        out = {"centred": {}, "standardised": {}}
        for s, h in self.kept.items():  # h: (layers, tokens, dim)
            centred = h - mean[:, None]
            for kind, x in (("centred", centred), ("standardised", centred / std[:, None])):
                pairs = geometry.intra_sentence_cosines(x[:, None], torch.ones(1, h.shape[1]))[0]  # (layers, pairs)
                out[kind][s] = pairs.double().mean(-1).numpy() if pairs.shape[-1] else np.full(len(h), np.nan)
        return out

    def sentences(self, variant: str, idx: list[int], per_sentence: dict) -> pd.DataFrame:
        n, layers, cfg = max(self.cfg.cos_sentences, self.cfg.cov_sentences), self.layers, self.cfg
        columns = {c: np.full((n, layers), np.nan)  # (sentence, layer)
                   for c in ("cos_mean", "cos_var", "cov_trace")}
        for s in range(cfg.cos_sentences):
            pairs = self.cos[s].astype(np.float64)  # (layers, pairs)
            if pairs.shape[1]:
                columns["cos_mean"][s] = pairs.mean(1)
            if pairs.shape[1] > 1:
                columns["cos_var"][s] = pairs.var(1, ddof=1)  # as pandas
        columns["cov_trace"][: cfg.cov_sentences] = np.stack([self.cov[s] for s in range(cfg.cov_sentences)])
        for kind, by_sentence in per_sentence.items():
            columns[f"cos_{kind}"] = np.full((n, layers), np.nan)
            for s, v in by_sentence.items():
                columns[f"cos_{kind}"][s] = v
        order = ["cos_mean", "cos_var", *(f"cos_{k}" for k in per_sentence), "cov_trace"]
        return pd.DataFrame(dict(variant=variant, layer=np.tile(np.arange(layers), n),
                                 sentence=np.repeat(np.arange(n), layers), idx=np.repeat(idx[:n], layers),
                                 tokens=np.repeat(self.lengths[:n], layers),
                                 **{c: columns[c].ravel() for c in order}))  # sentence-major rows


def runs(name: str, model: params.Model, ft: params.Finetune) -> list[dict]:
    """Every encoder to read, as {variant, seed, source, file}; a missing checkpoint fails before any work."""
    out = [run(variants.PRETRAINED, None, encoders.checkpoint(name, model)),
           run(variants.RANDOM, None, paths.control_init(name))]
    out += [run(variants.epoch(k), s, paths.finetuned(name, s) / variants.epoch(k))
            for s in ft.seeds for k in range(1, ft.epochs + 1)]
    out += [run(variants.epoch(k, control=True), ft.seeds[0], paths.control_finetuned(name) / variants.epoch(k))
            for k in range(1, ft.epochs + 1)]
    for r in out:
        local = r["variant"] != variants.PRETRAINED or model.checkpoint is None
        if local and not Path(r["source"]).is_dir():
            fail(f"{name}: checkpoint {r['source']} of {r['variant']} (seed {r['seed']}) is missing: "
                 "run the pretrain, finetune and control stages (finetune.epochs and seeds must match)")
    return out


def run(variant: str, seed: int | None, source) -> dict:
    """One encoder to read: its variant, seed (None if not fine-tuned), checkpoint and npz file name."""
    return dict(variant=variant, seed=seed, source=str(source), file=paths.cls_file(variant, seed))


def check_inputs(tokens: DatasetDict, cfg: params.Extract) -> dict[str, list[list[int]]]:
    """Token ids per split; one-line errors for sizes past the test split, empty reviews, short erank."""
    ids = {split: tokens[split]["input_ids"][:] for split in ("train", "test")}
    lengths = {split: list(map(len, rows)) for split, rows in ids.items()}
    for split, ns in lengths.items():
        if 0 in ns:
            fail(f"{split} review at row {ns.index(0)} is empty (length 0)")
    n_test = len(lengths["test"])
    for key in ("cos_sentences", "cov_sentences", "erank_sentences", "baseline_sentences", "cka_sentences"):
        if getattr(cfg, key) > n_test:
            fail(f"extract.{key} = {getattr(cfg, key)} exceeds the {n_test} test sentences")
    if all(n < 2 for n in lengths["test"][: cfg.cos_sentences]):
        fail(f"the first {cfg.cos_sentences} test sentences have no token pair (all one token long)")
    available = sum(lengths["test"][: cfg.erank_sentences])
    if available < cfg.erank_tokens:
        fail(f"extract.erank_tokens = {cfg.erank_tokens} but the first {cfg.erank_sentences} test sentences "
             f"hold only {available} tokens")
    return ids


def load_encoder(source: str, device: torch.device):
    """The base encoder of any checkpoint; fails if an encoder weight would be newly initialised."""
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # its loading report is checked here instead
    try:
        model, info = transformers.AutoModel.from_pretrained(source, output_loading_info=True)
    finally:
        transformers.logging.set_verbosity(verbosity)
    fresh = sorted(k for k in info["missing_keys"] if not k.startswith("pooler."))  # pooler unused
    if fresh:
        fail(f"{source}: encoder weights missing from the checkpoint: {', '.join(fresh[:3])}")
    return model.eval().to(device)


def batches(lengths: list[int], batch_size: int) -> list[np.ndarray]:
    """Row indices, longest reviews first, so each batch pads little (and memory peaks at once)."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        ids[r, : len(row)], mask[r, : len(row)] = torch.tensor(row), 1
    return ids, mask


def mean_tokens(states, mask: torch.Tensor, pick: np.ndarray) -> np.ndarray:
    """(picked rows, layers + 1, hidden) mean of each picked row's real token vectors."""
    pick = torch.as_tensor(pick, device=mask.device)
    weight = (mask[pick] / mask[pick].sum(1, keepdim=True))[:, None, :]  # (rows, 1, tokens)
    weight = weight.to(states[0].dtype)
    return torch.cat([weight @ h[pick] for h in states], 1).float().cpu().numpy()  # (rows, 1, hidden) each


@torch.inference_mode()
def run_variant(model, ids: dict[str, list[list[int]]], cfg: params.Extract, desc: str):
    """First-token vectors {split: (reviews, layers + 1, hidden) float16} and the filled Accumulator."""
    device, config = next(model.parameters()).device, model.config
    states_n = config.num_hidden_layers + 1  # the embeddings are hidden state 0
    pad_id = config.pad_token_id if config.pad_token_id is not None else 0
    stats = Accumulator(cfg, list(map(len, ids["test"])), states_n)
    plan = {split: batches(list(map(len, rows)), cfg.batch_size) for split, rows in ids.items()}
    cls = {split: np.zeros((len(rows), states_n, config.hidden_size), np.float16)
           for split, rows in ids.items()}  # (reviews, layers + 1, hidden)
    cls["test_mean"] = np.zeros_like(cls["test"][: cfg.cka_sentences])  # mean token vectors, for CKA
    with tqdm(total=sum(map(len, plan.values())), desc=desc, unit="batch") as bar:
        for split, todo in plan.items():
            for rows in todo:
                batch, mask = (t.to(device) for t in pad([ids[split][r] for r in rows], pad_id))
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
                    out = model(input_ids=batch, attention_mask=mask, output_hidden_states=True)
                states = out.hidden_states  # layers + 1 of (batch, tokens, hidden)
                cls[split][rows] = torch.stack([h[:, 0] for h in states], 1).float().cpu().numpy()
                if split == "test":
                    stats.update(rows, states, mask)
                    if (keep := rows < cfg.cka_sentences).any():
                        cls["test_mean"][rows[keep]] = mean_tokens(states, mask, np.flatnonzero(keep))
                bar.update()
    return cls, stats


def vector_bytes(todo: list[dict], n_reviews: int, n_mean: int) -> int:
    """Disk for the runs' npz files: float16 (reviews, layers + 1, hidden) first-token vectors and (n_mean, ...)
    mean vectors per run, plus margin."""
    total = 0
    for run in todo:
        config = transformers.AutoConfig.from_pretrained(run["source"])
        total += (n_reviews + n_mean) * (config.num_hidden_layers + 1) * config.hidden_size * 2
    return int(1.05 * total) + 10 * 10**6  # labels, csv tables, npz headers: small next to the vectors


def extract(name: str, todo: list[dict], tokens: DatasetDict, cfg: params.Extract, out: Path,
            device: torch.device | None = None, logger=None) -> None:
    """Everything the stage writes, into ``out`` atomically (see the module docstring)."""
    logger = logger or logging.getLogger(f"embstudy.{STAGE}")
    if cfg.reviews is not None:  # the first N of each split (prepare shuffled them)
        tokens = DatasetDict({s: tokens[s].select(range(min(cfg.reviews, len(tokens[s]))))
                              for s in ("train", "test")})
    ids = check_inputs(tokens, cfg)
    n_tokens, n_reviews = sum(len(r) for rows in ids.values() for r in rows), sum(map(len, ids.values()))
    files.check_free_space(out, vector_bytes(todo, n_reviews, cfg.cka_sentences),
                        f"{STAGE}: {name}: first-token vectors of {len(todo)} runs")
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = False  # statistics in true float32 (TF32 keeps 10 mantissa bits)
    listed = [dict(r, source=os.path.relpath(r["source"], paths.ROOT)
                   if Path(r["source"]).is_relative_to(paths.ROOT) else r["source"])
              for r in todo]  # run.json stays the same in another clone
    first = encoders.load_tokenizer(todo[0]["source"]).convert_ids_to_tokens(ids["test"][0][0])
    tables, timing, meta = [], {}, {"model": name, "runs": listed, "first_token": first}
    labels = {f"{s}_{c}": np.asarray(tokens[s][c]) for s in ("train", "test") for c in ("label", "domain", "idx")}
    with files.atomic_dir(out) as tmp:
        for run in todo:
            start = time.perf_counter()
            which = variants.run_name(run["variant"], run["seed"])  # e.g. epoch-1-s42
            model = load_encoder(run["source"], device)
            cls, stats = run_variant(model, ids, cfg, f"{STAGE} {name} {which}")
            np.savez(tmp / run["file"], **cls, **labels)
            tables.append([t.assign(seed=run["seed"]).astype({"seed": "Int64"})
                           for t in stats.tables(run["variant"], tokens["test"]["idx"])])
            wall = time.perf_counter() - start
            timing[which] = dict(wall_s=round(wall, 2), device=str(device), tokens=n_tokens,
                                 reviews=n_reviews, tokens_per_s=round(n_tokens / wall))
            meta.update(hidden_states=stats.layers, hidden=int(cls["test"].shape[-1]))
            logger.info("%s: %d hidden states, %.1f s", which, stats.layers, timing[which]["wall_s"])
        for i, file in enumerate((paths.LAYERS, paths.HIST, paths.SENTENCES)):
            pd.concat([t[i] for t in tables]).to_csv(tmp / file, index=False)
        files.write_json(tmp / paths.RUN_LIST, meta | {"extract": cfg.model_dump()})
        files.write_json(tmp / paths.TIMING, timing)


def main(name: str) -> None:
    p, logger = stage.start(STAGE, name)
    model = p.models[name]
    todo = runs(name, model, params.for_model(p, name, "finetune"))
    tokens = load_from_disk(str(paths.tokens(name)))
    extract(name, todo, tokens, params.for_model(p, name, "extract"), paths.extracted(name), logger=logger)


if __name__ == "__main__":
    main(sys.argv[1])
