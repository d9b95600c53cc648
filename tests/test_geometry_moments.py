"""embstudy.geometry.token_moments / moments_from_parts: per-dimension mean and std over real tokens only,
streamed batch by batch (merged with merge_moments), against numpy over the stacked real tokens."""
import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from embstudy import geometry

GARBAGE = [1e30, -1e30, np.inf, np.nan, 7e4]  # padding may hold anything: it must never reach a sum


def batch(rng, lengths, dim, layers=None, left=False):
    """(layers?, batch, tokens, dim) float32 states, garbage padded; mask (batch, tokens); the real tokens."""
    width = max(lengths)
    lead = () if layers is None else (layers,)
    scale, shift = np.linspace(0.5, 3, dim), np.linspace(-2, 20, dim)  # a rogue-like dimension: mean 20
    real = rng.normal(size=(*lead, len(lengths), width, dim)) * scale + shift
    mask = np.zeros((len(lengths), width), np.int64)
    for b, n in enumerate(lengths):
        cols = np.sort(rng.choice(width, n, replace=False)) if left else np.arange(n)  # padding anywhere
        mask[b, cols] = 1
    hidden = np.where(mask[..., None].astype(bool), real, rng.choice(GARBAGE, real.shape)).astype(np.float32)
    per_token = hidden if layers is None else np.moveaxis(hidden, 0, -2)  # (batch, tokens, layers?, dim)
    tokens = per_token[mask.astype(bool)]  # (real tokens, layers?, dim)
    return hidden, mask, np.asarray(tokens, np.float64)


def assert_std_close(got, tokens):
    """std as numpy's up to float32 rounding: token_moments squares deviations from each batch's float32 mean,
    each off by at most a few units of roundoff u = 2^-24 of the token's size |x| <= |mean| + spread; a
    version squaring raw values instead (E[x^2] - mean^2) misses by up to sqrt(u) |mean| (see
    test_small_spread_around_a_large_mean)."""
    want = tokens.std(0, ddof=0)
    slack = 8 * 2.0**-24 * np.abs(tokens).max(0) + 1e-6 * want + 1e-12
    bad = np.abs(np.asarray(got, np.float64) - want) > slack
    assert not bad.any(), f"std {np.asarray(got)[bad]} != numpy {want[bad]} (slack {slack[bad]})"


def streamed(batches):
    parts = None
    for hidden, mask, _ in batches:
        parts = geometry.merge_moments(parts, geometry.token_moments(hidden, mask))
    return parts


@pytest.mark.parametrize("layers", [None, 3])
@pytest.mark.parametrize("left", [False, True])
def test_moments_over_batches_equal_numpy_over_real_tokens(layers, left):
    rng = np.random.default_rng(0 if layers is None else layers)
    batches = [batch(rng, lengths, 6, layers, left) for lengths in ([5, 1, 3], [7], [2, 2, 6, 4])]
    parts = streamed(batches)
    tokens = np.concatenate([t for *_, t in batches])  # (all real tokens, layers?, dim)
    assert parts[0] == len(tokens) == 30
    mean, std = geometry.moments_from_parts(parts)
    assert mean.dtype == std.dtype == torch.float32
    assert mean.shape == std.shape == tokens.shape[1:]
    np.testing.assert_allclose(mean.numpy(), tokens.mean(0), rtol=1e-6, atol=1e-6)
    assert_std_close(std, tokens)


def test_torch_inputs_and_one_batch_equal_the_stream():
    rng = np.random.default_rng(1)
    pieces = [batch(rng, lengths, 4, 2) for lengths in ([3, 4], [1, 6, 2])]
    whole = [np.concatenate([np.pad(h, [(0, 0), (0, 0), (0, 6 - h.shape[2]), (0, 0)], constant_values=np.nan)
                             for h, *_ in pieces], 1),
             np.concatenate([np.pad(m, [(0, 0), (0, 6 - m.shape[1])]) for _, m, _ in pieces])]
    one = geometry.token_moments(torch.from_numpy(whole[0]), torch.from_numpy(whole[1]))
    for a, b in zip(geometry.moments_from_parts(one), geometry.moments_from_parts(streamed(pieces))):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("value", [0.0, 3.0, -2.5, 1024.0])
def test_constant_dimension_gets_std_one(value):
    """A dimension constant over the real tokens (garbage in the padding) scales to 1, not to 0 or inf."""
    rng = np.random.default_rng(2)
    batches = [batch(rng, lengths, 3) for lengths in ([4, 2], [5, 1, 3])]
    for hidden, mask, _ in batches:
        hidden[..., 1] = np.where(mask.astype(bool), np.float32(value), hidden[..., 1])
    mean, std = geometry.moments_from_parts(streamed(batches))
    assert mean[1] == np.float32(value)
    assert std[1] == 1.0
    assert (std[[0, 2]] > 0.1).all() and (std[[0, 2]] != 1.0).all()


# A constant value not exactly representable in binary: the float32 batch mean may miss it by an ulp, so the
# deviations are ~1e-8, not 0 (std ~1e-8, not 1): moments_from_parts cuts relative to the mean.


def test_constant_non_dyadic_dimension_gets_std_one():
    """Any constant value and token count gets std 1 (squares of raw values, even in float64, left 0.1 over 10
    tokens at std 2e-5: the float64 sum of n copies of v is not always n * v)."""
    rng = np.random.default_rng(3)
    spread = rng.normal(size=40) * 10 ** rng.uniform(-3, 3, 40)
    values = np.float32([0.1, 1 / 3, -7.3, 0.7, 123.456, *spread])
    for value, n in zip(values, [10, 99, 199, 99, 7, *rng.integers(2, 300, 40)]):
        hidden = np.full((1, n, 2), value, np.float32)
        hidden[0, :, 0] = np.arange(n)
        mean, std = geometry.moments_from_parts(geometry.token_moments(hidden, np.ones((1, n))))
        assert mean[1] == pytest.approx(value, rel=1e-6)
        assert std[1] == 1.0, f"constant {value} over {n} tokens: std {float(std[1])}"


def test_small_spread_around_a_large_mean():
    """Two tokens 5e-4 apart around 9 (relative spread 3e-5): the std is 2.5e-4. Squares of raw values in
    float32 err by up to sqrt(2^-24) * 9 ~ 2e-3, several times the std (the first dimension's squares even
    cancel exactly, so it was taken for constant); deviations from the batch mean keep it to ~1e-6."""
    values = np.float32([[9.0, 9.0005], [-20.0, -20.0007], [100.0, 100.004]]).T  # (2 tokens, 3 dims)
    hidden = np.stack([values, np.full_like(values, np.nan)], 1).reshape(1, 4, 3)  # tokens 1, 3: padding
    mask = np.array([[1, 0, 1, 0]])
    tokens = hidden[0, [0, 2]].astype(np.float64)
    _, std = geometry.moments_from_parts(geometry.token_moments(hidden, mask))
    np.testing.assert_allclose(std.numpy(), tokens.std(0), rtol=1e-4)


@given(lengths=st.lists(st.lists(st.integers(1, 6), min_size=1, max_size=4), min_size=1, max_size=4),
       seed=st.integers(0, 2**16), left=st.booleans())
@settings(max_examples=40, deadline=None)
def test_moments_any_batching(lengths, seed, left):
    rng = np.random.default_rng(seed)
    batches = [batch(rng, b, 5, 2, left) for b in lengths]
    tokens = np.concatenate([t for *_, t in batches])
    mean, std = geometry.moments_from_parts(streamed(batches))
    np.testing.assert_allclose(mean.numpy(), tokens.mean(0), rtol=1e-6, atol=1e-6)
    # (a single token makes every dimension constant: see the constant-dimension tests)
    assume(len(tokens) > 1)
    assert_std_close(std, tokens)


def test_an_empty_part_leaves_the_moments_unchanged():
    """A batch without real tokens has no mean (0 / 0): merging it must not turn the moments into NaN."""
    rng = np.random.default_rng(4)
    hidden, mask, tokens = batch(rng, [3, 5], 4)
    full = geometry.token_moments(hidden, mask)
    empty = geometry.token_moments(hidden, np.zeros_like(mask))
    assert empty[0] == 0
    for merged in (geometry.merge_moments(full, empty), geometry.merge_moments(empty, full)):
        for a, b in zip(geometry.moments_from_parts(merged), geometry.moments_from_parts(full)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
