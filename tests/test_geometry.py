"""embstudy.geometry against naive one-sentence-at-a-time numpy loops (the seed's way)."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from embstudy import geometry

TOL = dict(rtol=1e-5, atol=1e-5)


def naive_sentences(hidden, mask):
    """Each sentence's real token vectors in float64: list of (n, dim)."""
    return [np.asarray(h, np.float64)[np.asarray(m).astype(bool)] for h, m in zip(hidden, mask)]


def naive_cosines(x):
    i, j = np.triu_indices(len(x), 1)
    norms = np.linalg.norm(x, axis=1)
    return np.array([x[a] @ x[b] / (norms[a] * norms[b]) for a, b in zip(i, j)])


def naive_erank(w):
    s = np.linalg.svd(w, compute_uv=False)
    p = s / s.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def naive_baseline(sentences):
    units = [x / np.linalg.norm(x, axis=1, keepdims=True) for x in sentences]
    total = count = 0.0
    for a, ua in enumerate(units):
        for b, ub in enumerate(units):
            if a != b:
                total += (ua @ ub.T).sum()
                count += len(ua) * len(ub)
    return total / count


def batch(lengths, dim, seed, pad_left=False, scale=1.0, offset=0.0):
    """Random hidden states with padding filled with garbage, so ignoring it is tested."""
    rng = np.random.default_rng(seed)
    tokens = max(lengths) + 3  # heavy padding: every sentence padded
    hidden = rng.normal(offset, scale, (len(lengths), tokens, dim)).astype(np.float32)
    mask = np.zeros((len(lengths), tokens), np.int64)
    for s, n in enumerate(lengths):
        if pad_left:
            mask[s, tokens - n:] = 1
        else:
            mask[s, :n] = 1
    hidden[mask == 0] = 1e3
    return hidden, mask


LENGTHS = [1, 2, 3, 7, 1, 12, 2]


@pytest.mark.parametrize("pad_left", [False, True])
def test_cosines_match_naive_loop(pad_left):
    hidden, mask = batch(LENGTHS, 8, 0, pad_left)
    got = geometry.intra_sentence_cosines(torch.from_numpy(hidden), torch.from_numpy(mask))
    assert [len(g) for g in got] == [n * (n - 1) // 2 for n in LENGTHS]
    for g, x in zip(got, naive_sentences(hidden, mask)):
        np.testing.assert_allclose(g.numpy(), naive_cosines(x), **TOL)


def test_cosines_layer_axis_and_numpy_input():
    hidden, mask = batch(LENGTHS, 6, 1)
    layers = np.stack([hidden, -hidden, hidden * 2 + 1])  # (layers, batch, tokens, dim)
    got = geometry.intra_sentence_cosines(layers, mask)
    for s, x in enumerate(naive_sentences(hidden, mask)):
        assert got[s].shape == (3, len(x) * (len(x) - 1) // 2)
        for layer in range(3):
            want = naive_cosines(naive_sentences(layers[layer], mask)[s])
            np.testing.assert_allclose(got[s][layer].numpy(), want, **TOL)


@given(lengths=st.lists(st.integers(1, 9), min_size=1, max_size=6), seed=st.integers(0, 2**16),
       dim=st.integers(1, 10), offset=st.floats(-3, 3))
@settings(max_examples=40, deadline=None)
def test_all_measures_match_naive_loops(lengths, seed, dim, offset):
    hidden, mask = batch(lengths, dim, seed, offset=offset)
    sentences = naive_sentences(hidden, mask)
    for g, x in zip(geometry.intra_sentence_cosines(hidden, mask), sentences):
        np.testing.assert_allclose(g.numpy(), naive_cosines(x), **TOL)
    traces = geometry.covariance_trace(hidden, mask).numpy()
    for t, x in zip(traces, sentences):
        if len(x) == 1:
            assert np.isnan(t)
        else:
            np.testing.assert_allclose(t, np.trace(np.atleast_2d(np.cov(x.T))), rtol=1e-5)
    stacked = np.concatenate(sentences)
    np.testing.assert_allclose(geometry.effective_rank(stacked), naive_erank(stacked), rtol=1e-5)
    if len(lengths) > 1:
        np.testing.assert_allclose(float(geometry.anisotropy_baseline(hidden, mask)),
                                   naive_baseline(sentences), **TOL)


def test_covariance_trace_single_token_is_nan_and_layers_broadcast():
    hidden, mask = batch([1, 4], 5, 2)
    layers = torch.from_numpy(np.stack([hidden, 3 * hidden]))
    traces = geometry.covariance_trace(layers, mask)
    assert traces.shape == (2, 2) and torch.isnan(traces[:, 0]).all()
    torch.testing.assert_close(traces[1, 1], 9 * traces[0, 1])


def test_effective_rank_batched_and_known_values():
    assert geometry.effective_rank(np.eye(4)) == pytest.approx(4.0)
    rank_one = np.outer(np.arange(1, 6), np.ones(3))
    assert geometry.effective_rank(rank_one) == pytest.approx(1.0)
    rng = np.random.default_rng(3)
    mats = rng.normal(size=(3, 20, 6))
    got = geometry.effective_rank(torch.tensor(mats, dtype=torch.bfloat16))  # upcast to float32
    assert got.shape == (3,) and got.dtype == torch.float32
    want = [naive_erank(torch.tensor(m, dtype=torch.bfloat16).double().numpy()) for m in mats]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5)


def test_baseline_streams_over_batches_and_layers():
    hidden, mask = batch([3, 1, 5, 2, 4], 7, 4, offset=1.0)
    layers = np.stack([hidden, hidden[..., ::-1].copy()])
    whole = geometry.anisotropy_baseline(layers, mask)
    parts = None
    for rows in ([0, 1], [2], [3, 4]):
        parts = geometry.add_parts(parts, geometry.baseline_parts(layers[:, rows], mask[rows]))
    torch.testing.assert_close(geometry.baseline_from_parts(parts), whole)
    want = naive_baseline(naive_sentences(hidden, mask))
    np.testing.assert_allclose(whole.numpy(), [want, want], **TOL)  # reversing dims keeps cosines
    with pytest.raises(ValueError, match="two sentences"):
        geometry.anisotropy_baseline(hidden[:1], mask[:1])
