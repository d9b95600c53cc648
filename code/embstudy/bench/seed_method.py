"""The seed study's per-layer geometry, computed its way: the benchmark's baseline, nothing else uses it.

One sentence per forward pass, padded to ``max_length`` (padding dropped afterwards), a Python
double loop over token pairs for the cosines, ``np.cov`` per sentence for the covariance trace and
``np.linalg.svd`` for the effective rank (the book's methods chapter, report/methods.qmd, @sec-methods-seed).
Each study runs its own forward passes, as the seed's notebook cells did.
:mod:`embstudy.bench.timing` times these against ``embstudy.extract``; tests/test_bench.py checks they agree
with ``embstudy.geometry``. Token ids come in as lists (special tokens included, not padded).
"""
from __future__ import annotations

import numpy as np
import torch


def hidden_states(model, ids: list[int], max_length: int, pad_id: int) -> list[np.ndarray]:
    """One sentence's (tokens, hidden) float32 per hidden state, from a pass padded to ``max_length``."""
    n = len(ids)
    batch = torch.full((1, max_length), pad_id, dtype=torch.long)
    mask = torch.zeros((1, max_length), dtype=torch.long)
    batch[0, :n], mask[0, :n] = torch.tensor(ids), 1
    with torch.inference_mode():
        out = model(input_ids=batch, attention_mask=mask, output_hidden_states=True)
    return [h[0, :n].float().numpy() for h in out.hidden_states]  # padding tokens excluded


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def cosine_study(model, sentences: list[list[int]], max_length: int, pad_id: int) -> list[list[float]]:
    """Per hidden state, the cosines of every token pair i<j of every sentence, in order."""
    per_layer = None
    for ids in sentences:
        states = hidden_states(model, ids, max_length, pad_id)
        per_layer = per_layer or [[] for _ in states]
        for layer, x in enumerate(states):
            for i in range(len(x)):
                for j in range(i + 1, len(x)):
                    per_layer[layer].append(cosine(x[i], x[j]))
    return per_layer


def covariance_study(model, sentences: list[list[int]], max_length: int, pad_id: int) -> np.ndarray:
    """(hidden states, sentences) trace of ``np.cov`` of each sentence's token vectors (ddof 1)."""
    traces = []
    for ids in sentences:
        states = hidden_states(model, ids, max_length, pad_id)
        traces.append([np.trace(np.cov(x, rowvar=False)) for x in states])  # tokens are observations
    return np.array(traces).T


def erank_study(model, sentences: list[list[int]], max_length: int, pad_id: int) -> np.ndarray:
    """(hidden states,) effective rank of all the sentences' token vectors stacked, per layer."""
    per_layer = None
    for ids in sentences:
        states = hidden_states(model, ids, max_length, pad_id)
        per_layer = per_layer or [[] for _ in states]
        for layer, x in enumerate(states):
            per_layer[layer].append(x)
    ranks = []
    for parts in per_layer:
        s = np.linalg.svd(np.concatenate(parts), compute_uv=False)  # W: (all tokens, hidden)
        p = s / s.sum()
        p = p[p > 0]
        ranks.append(float(np.exp(-(p * np.log(p)).sum())))
    return np.array(ranks)
