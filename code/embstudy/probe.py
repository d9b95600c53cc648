"""Stage ``probe``: the seed's [CLS] study — probes per variant and layer, controls, class cones.

Reads ``artifacts/extract/<model>/`` (``run.json`` and its runs' ``cls-*.npz``: float16
first-token vectors (reviews, layers + 1, hidden) with labels). Every layer in ``probe.layers`` of every
run (variant, seed) is probed at once, one model holding all the probes: each is trained on the train
vectors and scored on the test vectors after every epoch (the last epoch's accuracy is
the result, as the seed). Probes: ``probe.head`` (``linear``: dropout, one linear unit,
sigmoid, as the seed; ``roberta``: dropout, dense tanh, dropout, linear), the same head
on a control task (after Hewitt & Liang 2019): random labels, balanced within each true class, on
train and on test, scored against the random test labels, a standardised logistic regression (scikit-learn)
and the majority class of the train labels. Run: ``python -m embstudy.probe camembert``.

Writes ``artifacts/probe/<model>/`` (every table has ``variant`` and ``seed``, empty for runs not
fine-tuned): ``accuracy.csv`` (model, variant, layer, probe, accuracy;
probe in {linear|roberta, logreg, shuffled, majority}); ``curves.csv`` (variant, layer, epoch, probe,
accuracy; head and shuffled); ``predictions.parquet`` (variant, layer, probe, row, domain, correct: each
test review scored by the head's last epoch and by logreg, for per-domain scores and bootstrap intervals);
``cones.parquet`` (variant, layer, idx, label, domain, cos_first,
cos_pos, cos_neg: every test [CLS] against the first test review's and the train class
centroids); ``separation.csv`` (variant, layer, within, between, separation: mean cosine of
test [CLS] pairs within a class, across classes, and their difference). Also
``metrics/probe/<model>.json`` ({head|logreg: {variant: {layer_k: accuracy}}, majority}) and
``metrics/probe/<model>-curves.csv`` (epoch, accuracy, variant, layer; the head's curves).
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn
from tqdm import tqdm

from embstudy import files, params, paths, stage, variants

STAGE = "probe"


def fail(message: str):
    raise stage.StageError(f"{STAGE}: {message}")


def load_cls(folder: Path) -> list[tuple[dict, dict[str, np.ndarray]]]:
    """[(run: variant, seed, file; arrays of its npz)], in extract's run order."""
    if not (folder / paths.RUN_LIST).is_file():
        fail(f"{folder / paths.RUN_LIST} is missing: run the extract stage first")
    out = []
    for run in json.loads((folder / paths.RUN_LIST).read_text())["runs"]:
        with np.load(folder / run["file"]) as npz:
            out.append((run, dict(npz)))
        if not set(np.unique(out[-1][1]["train_label"])) == {0, 1}:
            fail(f"{folder}/{run['file']}: train labels must hold both classes 0 and 1")
        for key in ("train_label", "test_label"):  # every run's probes train as one model on the same labels
            if not np.array_equal(out[-1][1][key], out[0][1][key]):
                fail(f"{folder}/{run['file']}: {key} differs from {out[0][0]['file']}'s: rerun extract")
    return out


def check_layers(wanted, states: int, logger=None) -> list[int]:
    """Hidden-state indices to probe: ``all``, or the listed ones this model has (a list names the original
    study's 12-layer grid; a shallower model beside deeper ones is probed where it has those layers)."""
    if wanted == "all":
        return list(range(states))
    if not wanted or min(wanted) < 0:
        fail(f"probe.layers {wanted}: name hidden states 0, 1, ... or write all")
    kept = sorted({k for k in wanted if k < states})
    if not kept:
        fail(f"probe.layers {wanted}: none within 0..{states - 1} (embeddings + {states - 1} layers)")
    if len(kept) < len(set(wanted)) and logger:
        logger.warning("probe.layers %s: this model has hidden states 0..%d only: probing %s", wanted, states - 1,
                       kept)
    return kept


def glorot(fan_in: int, fan_out: int, *shape: int) -> nn.Parameter:
    """Keras' default initialiser (the seed's Dense layers); biases start at zero."""
    bound = (6 / (fan_in + fan_out)) ** 0.5
    return nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))


class Heads(nn.Module):
    """copies x layers probes as one model: x (layers, batch, hidden) -> logits (copies, layers, batch).

    The loss sums the probes' own losses and Adam is elementwise: each probe trains as if alone (with
    dropout 0, bit for bit: tests/test_probe.py), only the dropout masks come from one shared stream."""

    def __init__(self, copies: int, layers: int, hidden: int, head: str, dropout: float):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.dense = glorot(hidden, hidden, copies, layers, hidden, hidden) if head == "roberta" else None
        self.dense_bias = nn.Parameter(torch.zeros(copies, layers, 1, hidden)) if head == "roberta" else None
        self.weight = glorot(hidden, 1, copies, layers, hidden)
        self.bias = nn.Parameter(torch.zeros(copies, layers, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # training: (copies, layers, batch, hidden), a dropout mask per copy; eval: (1, ...), broadcast
        x = self.drop(x.expand(self.weight.shape[0], *x.shape)) if self.training else x[None]
        if self.dense is not None:
            x = self.drop(torch.tanh(x @ self.dense.transpose(-1, -2) + self.dense_bias))  # (copies, ...)
        return (x @ self.weight[..., None])[..., 0] + self.bias  # (copies, layers, batch)


def train_probes(x_train, y_train, x_test, y_test, cfg: params.Probe, desc: str = ""):
    """Test accuracy after each epoch (epochs, copies, layers) and the last epoch's hits (copies, layers, n);
    x (layers, n, hidden), y (copies, n)."""
    torch.manual_seed(cfg.seed)
    model = Heads(len(y_train), len(x_train), x_train.shape[-1], cfg.head, cfg.dropout).to(x_train.device)
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    order = torch.Generator().manual_seed(cfg.seed)
    curves = []
    for _ in tqdm(range(cfg.epochs), desc=desc, unit="epoch", leave=False):
        model.train()
        shuffle = torch.randperm(x_train.shape[1], generator=order).to(x_train.device)
        for rows in shuffle.split(cfg.batch_size):
            logits = model(x_train[:, rows])
            target = y_train[:, None, rows].expand_as(logits)
            loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(-1).sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        model.eval()
        with torch.inference_mode():  # chunks: the roberta head's (copies, layers, n, hidden) is large
            chunks = torch.arange(y_test.shape[1], device=x_test.device).split(1024)
            hits = torch.cat([(model(x_test[:, r]) > 0) == y_test[:, None, r].bool() for r in chunks], -1)
        curves.append(hits.float().mean(-1).cpu().numpy())
    return np.stack(curves), hits.cpu().numpy()


def logreg(x_train: np.ndarray, x_test: np.ndarray, y_train, y_test) -> np.ndarray:
    """Hits (layers, n) of a standardised logistic regression per layer (lbfgs: deterministic); x (layers, n,
    hidden)."""
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return np.stack([model.fit(a, y_train).predict(b) == y_test for a, b in zip(x_train, x_test)])


def cones(train, test, train_y, test_y) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cosines (layers, n) of each test vector to the first one and to the train centroids of classes 1
    and 0, and (2, layers) mean cosines of test pairs within a class and across classes."""
    train_y, test_y = (torch.as_tensor(y, device=test.device) for y in (train_y, test_y))
    unit = F.normalize(test, dim=-1)  # (layers, n, hidden)
    targets = [unit[:, 0]] + [F.normalize(train[:, train_y == c].mean(1), dim=-1) for c in (1, 0)]
    cos = [unit @ t[..., None] for t in targets]  # (layers, n, 1) each
    sums = torch.stack([unit[:, test_y == c].double().sum(1) for c in (0, 1)])  # (2, layers, hidden)
    n = torch.stack([(test_y == c).sum() for c in (0, 1)]).double()
    within = ((sums**2).sum(-1).sum(0) - n.sum()) / (n * (n - 1)).sum()
    between = (sums[0] * sums[1]).sum(-1) / (n[0] * n[1])
    return (*(c[..., 0].cpu().numpy() for c in cos), torch.stack([within, between]).cpu().numpy())


def shuffled_labels(y: np.ndarray, seed: int) -> np.ndarray:
    """Random labels uncorrelated with ``y`` on the train set: each true class gets the overall share of
    ones at random rows (a plain permutation agrees with ``y`` a little by chance, and a strongly
    separable layer turns that little into far-from-chance test accuracy)."""
    rng, out = np.random.default_rng(seed), np.zeros_like(y)
    for c in (0, 1):
        rows = rng.permutation(np.flatnonzero(y == c))
        out[rows[: round(len(rows) * y.mean())]] = 1
    return out


def train_all(x: dict, data: dict, cfg: params.Probe) -> tuple[np.ndarray, np.ndarray]:
    """The head on the true labels (copy 0) and on the control task (copy 1) for every stacked layer of
    ``x`` {split: (runs x layers, reviews, hidden)}: curves (epochs, 2, runs x layers), hits (2, runs x
    layers, reviews). One model trains them all: each probe's gradient is its own (see Heads)."""
    as_y = lambda y: torch.as_tensor(y, dtype=torch.float32, device=x["train"].device)  # noqa: E731
    # copy 1: the control task (Hewitt & Liang), random labels on train AND test, so its test accuracy
    # says what fitting labels that carry no information scores here (~chance).
    labels = torch.stack([as_y(data["train_label"]), as_y(shuffled_labels(data["train_label"], cfg.seed))])
    targets = torch.stack([as_y(data["test_label"]), as_y(shuffled_labels(data["test_label"], cfg.seed + 1))])
    return train_probes(x["train"], labels, x["test"], targets, cfg, f"{STAGE} {x['train'].shape[0]} probes")


def accuracies(variant: str, curves: np.ndarray, hits: np.ndarray, x: dict, data: dict, layers: list[int],
               cfg: params.Probe):
    """Tidy accuracy, per-epoch curve and per-review rows of one run from its slice of train_all's results;
    x: {split: (layers, reviews, hidden)} of the run (for logreg)."""
    train_y, test_y = data["train_label"], data["test_label"]
    majority = float((test_y == float(train_y.mean() >= 0.5)).mean())
    scored = {cfg.head: hits[0], "logreg": logreg(x["train"].cpu().numpy(), x["test"].cpu().numpy(),
                                                  train_y, test_y)}  # (layers, n)
    acc = {cfg.head: curves[-1, 0], "shuffled": curves[-1, 1], "majority": [majority] * len(layers),
           "logreg": scored["logreg"].mean(-1)}
    table = pd.DataFrame([dict(variant=variant, layer=k, probe=p, accuracy=float(a[i]))
                          for p, a in acc.items() for i, k in enumerate(layers)])
    epoch, kind, layer = (a.ravel() for a in np.indices(curves.shape))  # curves' own axes
    curve = pd.DataFrame(dict(variant=variant, layer=np.asarray(layers)[layer], epoch=epoch + 1,
                              probe=np.array([cfg.head, "shuffled"])[kind], accuracy=curves.ravel()))
    n = len(test_y)
    predictions = pd.concat([pd.DataFrame(dict(variant=variant, layer=np.repeat(layers, n), probe=name,
                                               row=np.tile(np.arange(n), len(layers)),
                                               domain=np.tile(data["test_domain"], len(layers)),
                                               correct=h.ravel())) for name, h in scored.items()])
    return table, curve, predictions


def cone_tables(variant: str, x: dict, data: dict, layers: list[int]):
    """cones.parquet and separation.csv rows of one variant (rows layer-major, test order)."""
    first, pos, neg, (within, between) = cones(x["train"], x["test"], data["train_label"], data["test_label"])
    tile = lambda a: np.tile(a, len(layers))  # noqa: E731
    cone = pd.DataFrame(dict(variant=variant, layer=np.repeat(layers, len(data["test_label"])),
                             idx=tile(data["test_idx"]), label=tile(data["test_label"]),
                             domain=tile(data["test_domain"]), cos_first=first.ravel(), cos_pos=pos.ravel(),
                             cos_neg=neg.ravel()))
    separation = pd.DataFrame(dict(variant=variant, layer=layers, within=within, between=between,
                                   separation=within - between))
    return cone, separation


def probe_runs(data: list[tuple[dict, dict]], layers: list[int], cfg: params.Probe, device: str = "cpu"):
    """accuracy, curves, predictions, cones and separation tables of every run (``data``: extract's runs and
    npz arrays); the head probes of all runs and layers train at once."""
    x = {s: torch.from_numpy(np.concatenate([d[s][:, layers] for _, d in data], 1)).transpose(0, 1)
         .float().contiguous().to(device) for s in ("train", "test")}  # (runs x layers, reviews, hidden)
    curves, hits = train_all(x, data[0][1], cfg)
    parts = []
    for r, (run, d) in enumerate(data):
        mine = slice(r * len(layers), (r + 1) * len(layers))  # this run's probes, run-major
        x_run = {s: v[mine] for s, v in x.items()}
        tables = (*accuracies(run["variant"], curves[..., mine], hits[:, mine], x_run, d, layers, cfg),
                  *cone_tables(run["variant"], x_run, d, layers))
        parts.append([t.assign(seed=run["seed"]).astype({"seed": "Int64"}) for t in tables])
    return (pd.concat(p, ignore_index=True) for p in zip(*parts))


def probe(name: str, folder: Path, cfg: params.Probe, out: Path, metrics_json: Path, metrics_curves: Path,
          logger=None) -> None:
    """Every output of the stage for ``name`` from extract's ``folder`` (see the module docstring)."""
    logger = logger or logging.getLogger(f"embstudy.{STAGE}")
    data = load_cls(folder)
    layers = check_layers(cfg.layers, data[0][1]["test"].shape[1], logger)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    accuracy, curves, predictions, cones_, separation = probe_runs(data, layers, cfg, device)
    accuracy.insert(0, "model", name)
    key = pd.Series([variants.run_name(v, None if pd.isna(s) else s)
                     for v, s in zip(accuracy["variant"], accuracy["seed"])], index=accuracy.index)
    grid = {p: {v: {f"layer_{r.layer}": round(r.accuracy, 6) for r in g.itertuples()}
                for v, g in accuracy[accuracy.probe == p].groupby(key[accuracy.probe == p], sort=False)}
            for p in (cfg.head, "logreg")}
    grid["majority"] = round(float(accuracy[accuracy.probe == "majority"].accuracy.iloc[0]), 6)
    for v, by_layer in grid[cfg.head].items():
        logger.info("%s %s by layer: %s", v, cfg.head, " ".join(f"{a:.3f}" for a in by_layer.values()))
    with files.atomic_dir(out) as tmp:
        accuracy.to_csv(tmp / paths.ACCURACY, index=False)
        curves.to_csv(tmp / paths.CURVES, index=False)
        predictions.to_parquet(tmp / paths.PREDICTIONS, index=False)
        cones_.to_parquet(tmp / paths.CONES, index=False)
        separation.to_csv(tmp / paths.SEPARATION, index=False)
        files.write_json(metrics_json, grid)
        main_curves = curves[curves.probe == cfg.head][["epoch", "accuracy", "variant", "seed", "layer"]]
        files.atomic_write(metrics_curves, main_curves.to_csv(index=False).encode())


def main(name: str) -> None:
    p, logger = stage.start(STAGE, name)  # 2 threads: all runs' probes in one step, 0.79 s an epoch (1.03 on 1)
    probe(name, paths.extracted(name), p.probe, paths.probed(name), paths.metrics(STAGE, name),
          paths.metrics(STAGE, name, "-curves.csv"), logger)


if __name__ == "__main__":
    main(sys.argv[1])
