"""The geometry measures of the study, vectorised over sentences (and layers).

Every function takes ``hidden`` of shape (..., batch, tokens, dim) — the leading
``...`` is usually the layer axis — and ``mask`` (batch, tokens) of 0/1 marking
real tokens (padding excluded, special tokens included; padding may sit anywhere).
Torch tensors or numpy arrays are accepted; everything is computed in float32
(bf16/fp16 are upcast), the sums carried across batches in float64.

* :func:`intra_sentence_cosines` — cosine of every token pair i<j of each sentence;
* :func:`covariance_trace` — trace of each sentence's token covariance (ddof 1);
* :func:`effective_rank` — Roy & Vetterli's effective rank of a (tokens, dim) matrix (NaN for
  an all-zero one), batched over leading axes;
* :func:`anisotropy_baseline` — mean cosine between tokens of *different* sentences
  (Ethayarajh 2019), exact in O(tokens x dim); :func:`baseline_parts` /
  :func:`baseline_from_parts` (summed with :func:`add_parts`) compute it batch by batch;
* :func:`token_moments` / :func:`merge_moments` / :func:`moments_from_parts` — per-dimension mean and
  standard deviation of the tokens, batch by batch, to centre or standardise before cosines (Timkey & van
  Schijndel 2021).

A zero vector has cosine 0 with everything (``F.normalize``'s epsilon), where a
naive ``dot / (norm * norm)`` would give NaN.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _tensor(x, dtype=torch.float32) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).to(dtype)


def _compact(hidden, mask) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each sentence's real tokens to the front: (..., batch, tokens, dim) and lengths (batch,)."""
    hidden, mask = _tensor(hidden), _tensor(mask, torch.bool)
    order = torch.argsort((~mask).to(torch.int8), dim=-1, stable=True)  # real tokens first, in order
    return torch.gather(hidden, -2, order[..., None].expand(hidden.shape)), mask.sum(-1)


def intra_sentence_cosines(hidden, mask) -> list[torch.Tensor]:
    """One tensor (..., pairs) per sentence: cosines of its token pairs i<j, row-major (np.triu_indices)."""
    mask = _tensor(mask, torch.bool)
    # no padding (the kept sentences): nothing to move
    unit, lengths = _compact(hidden, mask) if not mask.all() else (_tensor(hidden), mask.sum(-1))
    unit = F.normalize(unit, dim=-1)
    gram = unit @ unit.transpose(-1, -2)  # (..., batch, tokens, tokens)
    rows, cols = torch.triu_indices(gram.shape[-1], gram.shape[-1], 1, device=gram.device)
    pairs = gram[..., rows, cols]  # (..., batch, all pairs of the longest sentence), row-major
    # pairs (i, j) with j < n are exactly sentence n's pairs, in the same row-major order
    return [pairs[..., s, :][..., cols < n] for s, n in enumerate(lengths.tolist())]


def covariance_trace(hidden, mask) -> torch.Tensor:
    """(..., batch) trace of ``np.cov`` of each sentence's token vectors (ddof 1); NaN for one token."""
    keep = _tensor(mask, torch.bool)[..., None]  # (batch, tokens, 1)
    hidden = torch.where(keep, _tensor(hidden), 0.0)  # padding may hold anything; a new tensor, edited below
    n = keep.sum(-2, dtype=torch.float32)  # (batch, 1)
    mean = hidden.sum(-2) / n  # (..., batch, dim)
    centred = hidden.sub_(mean[..., None, :]).masked_fill_(~keep, 0.0)  # (..., batch, tokens, dim)
    return centred.square_().sum((-2, -1)) / (n[..., 0] - 1)  # 0/0 = NaN for a single token, as np.cov


def effective_rank(matrix) -> torch.Tensor | float:
    """exp(entropy of s / sum(s)) over the singular values of (..., tokens, dim); a float for one matrix."""
    matrix = _tensor(matrix)
    s = torch.linalg.svdvals(matrix)  # (..., min(tokens, dim)), batched SVDs
    p = s / s.sum(-1, keepdim=True)
    erank = torch.exp(-torch.special.xlogy(p, p).sum(-1))  # xlogy: 0 log 0 = 0
    return float(erank) if matrix.dim() == 2 else erank


def baseline_parts(hidden, mask) -> tuple[torch.Tensor, torch.Tensor, float, float]:
    """Additive sums for the baseline: sum of unit vectors (..., dim), sum of per-sentence |S_s|^2 (...),
    token count N and sum of squared sentence lengths. Add the parts of several batches, then
    call :func:`baseline_from_parts`."""
    weight = _tensor(mask, torch.float64)
    unit = F.normalize(_tensor(hidden), dim=-1).masked_fill_(weight[..., None] == 0, 0.0)  # padding: garbage
    per_sentence = unit.sum(-2).double()  # (..., batch, dim): one sentence's unit vectors, summed in float32
    lengths = weight.sum(-1)
    within = (per_sentence**2).sum((-2, -1))
    return per_sentence.sum(-2), within, float(lengths.sum()), float((lengths**2).sum())


def baseline_from_parts(parts) -> torch.Tensor:
    """Mean cosine of token pairs from different sentences: (|S|^2 - sum |S_s|^2) / (N^2 - sum n_s^2)."""
    total, within, n, n2 = parts
    if n * n - n2 <= 0:
        raise ValueError("anisotropy baseline needs tokens from at least two sentences")
    return ((total**2).sum(-1) - within) / (n * n - n2)


def add_parts(a, b):
    """Sum of two :func:`baseline_parts` results (``a`` may be None)."""
    return b if a is None else tuple(x + y for x, y in zip(a, b))


def token_moments(hidden, mask) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Token count, mean (..., dim) and sum of squared deviations from that mean (..., dim) over the real
    tokens, returned in float64 for :func:`merge_moments`. The deviations are squared in float32 around the
    batch's own mean, so nothing cancels (squares of raw values lose the digits ``E[x^2] - mean^2`` needs)."""
    keep = _tensor(mask, torch.bool)[..., None]  # (batch, tokens, 1)
    hidden = torch.where(keep, _tensor(hidden), 0.0)  # a fresh tensor, edited in place below
    n = float(keep.sum())
    mean = hidden.sum((-3, -2)) / n  # (..., dim)
    squares = hidden.sub_(mean[..., None, None, :]).masked_fill_(~keep, 0.0).square_().sum((-3, -2))
    return n, mean.double(), squares.double()


def merge_moments(a, b):
    """Moments of two sets of tokens from theirs (Chan, Golub & LeVeque 1979); ``a`` may be None."""
    if a is None or a[0] == 0:  # an empty part has no mean (0 / 0)
        return b
    if b[0] == 0:
        return a
    (na, ma, sa), (nb, mb, sb) = a, b
    n, delta = na + nb, mb - ma
    return n, ma + delta * (nb / n), sa + sb + delta**2 * (na * nb / n)


def moments_from_parts(parts) -> tuple[torch.Tensor, torch.Tensor]:
    """Float32 mean and standard deviation (ddof 0) from :func:`token_moments` / :func:`merge_moments`. A
    constant dimension (std below 1e-6 of its mean's size: the float32 rounding of a batch mean) gets 1:
    centred, it stays 0."""
    n, mean, squares = parts
    std = (squares / n).sqrt()
    return mean.float(), torch.where(std > 1e-6 * mean.abs(), std, 1.0).float()


def anisotropy_baseline(hidden, mask) -> torch.Tensor:
    """(...) mean cosine between tokens of different sentences of the batch, e.g. one value per layer."""
    return baseline_from_parts(baseline_parts(hidden, mask))
