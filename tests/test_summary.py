"""embstudy.summary: linear CKA against its definition, and the bootstrap intervals of means.

Pure numpy, no pipeline run: the whole file takes a few seconds.
"""
import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.stats import spearmanr

from embstudy.summary import Bootstrap, headline, linear_cka, matrix, spearman_rows


# --- linear CKA ------------------------------------------------------------------------------------------

def naive_cka_centred(xc, yc):
    """Kornblith et al. (2019), eq. for linear CKA on already-centred features:
    ||Yc' Xc||_F^2 / (||Xc' Xc||_F ||Yc' Yc||_F), in the feature space (d x d matrices, no Gram matrix)."""
    return (np.linalg.norm(yc.T @ xc) ** 2
            / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)))


def naive_cka(x, y):
    return naive_cka_centred(x - x.mean(0), y - y.mean(0))


def random_orthogonal(d, rng):
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diag(r))


@pytest.mark.parametrize("n, dx, dy", [(50, 8, 8), (40, 3, 12), (30, 60, 5)])
def test_cka_matches_definition(n, dx, dy):
    rng = np.random.default_rng(n + dx + dy)
    x = rng.normal(size=(n, dx)) + rng.normal(size=dx) * 5  # offsets: the features must be centred
    y = x[:, :1] * rng.normal(size=(1, dy)) + rng.normal(size=(n, dy))  # partly related
    got = linear_cka(x, y)
    assert np.ndim(got) == 0
    assert float(got) == pytest.approx(naive_cka(x, y), abs=1e-10)


@pytest.mark.parametrize("n", [8, 30, 80])
def test_a_bootstrap_replicate_is_the_cka_of_the_resampled_reviews(n):
    """Each replicate re-centres the resampled rows (Kornblith's CKA of ``x[picks]``, ``y[picks]``); centring
    once over all n reviews, as before, was off by up to 0.036 at these sizes."""
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 6)) + 3
    y = x[:, :2] @ rng.normal(size=(2, 5)) + rng.normal(size=(n, 5))
    picks = rng.integers(0, n, (20, n))
    w = np.stack([np.bincount(p, minlength=n) for p in picks]).astype(float)  # (resamples, n) multiplicities
    want = [naive_cka(x[p], y[p]) for p in picks]
    np.testing.assert_allclose(linear_cka(x, y, w), want, rtol=0, atol=1e-10)
    once = [naive_cka_centred((x - x.mean(0))[p], (y - y.mean(0))[p]) for p in picks]
    assert np.abs(np.array(once) - want).max() > 1e-4  # the old way would fail the check above


def test_cka_invariant_to_rotation_scale_and_shift():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 10))
    y = x @ random_orthogonal(10, rng) * 3.7 + 11.0  # orthogonal map, isotropic scale, translation
    assert float(linear_cka(x, y)) == pytest.approx(1.0, abs=1e-10)
    assert float(linear_cka(x, x)) == pytest.approx(1.0, abs=1e-12)


def test_cka_of_independent_data_is_small():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(500, 5)), rng.normal(size=(500, 5))  # n >> d: CKA ~ d / n
    assert float(linear_cka(x, y)) < 0.05


def test_cka_not_invariant_to_anisotropic_scaling():
    """Linear CKA is invariant to orthogonal maps and isotropic scaling only: this guards the test above."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 4))
    assert float(linear_cka(x, x * [1.0, 1.0, 1.0, 30.0])) < 0.9


def test_weighted_cka_with_unit_weights_is_the_point_estimate():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(25, 4)), rng.normal(size=(25, 7))
    got = linear_cka(x, y, np.ones((3, 25)))
    np.testing.assert_allclose(got, float(linear_cka(x, y)), rtol=0, atol=1e-12)


def representations(n, d):
    return hnp.arrays(np.float64, (n, d), elements=st.floats(-100, 100, allow_subnormal=False))


@st.composite
def pairs(draw):
    n = draw(st.integers(3, 12))
    x = draw(representations(n, draw(st.integers(1, 5))))
    y = draw(representations(n, draw(st.integers(1, 5))))
    for a in (x, y):  # a constant representation has no CKA (0 / 0)
        assume(np.linalg.norm(a - a.mean(0)) > 1e-3 * max(1.0, np.abs(a).max()))
    return x, y


@given(xy=pairs(), seed=st.integers(0, 2**16))
@settings(max_examples=60, deadline=None)
def test_cka_symmetric_and_in_unit_interval(xy, seed):
    x, y = xy
    point, back = float(linear_cka(x, y)), float(linear_cka(y, x))
    assert point == pytest.approx(back, abs=1e-12)
    assert -1e-12 <= point <= 1 + 1e-12
    assert point == pytest.approx(naive_cka(x, y), abs=1e-8)
    w = Bootstrap(resamples=4, level=0.95, seed=seed).weights(len(x))
    forth, back = linear_cka(x, y, w), linear_cka(y, x, w)
    ok = ~np.isnan(forth)  # a resample can repeat a single item: 0 / 0 there
    np.testing.assert_allclose(forth[ok], back[ok], rtol=0, atol=1e-9)  # re-centring rounds a little more
    assert ((forth[ok] >= -1e-12) & (forth[ok] <= 1 + 1e-12)).all()


# --- Bootstrap.mean -----------------------------------------------------------------------------------------

def test_single_seed_interval_matches_normal_approximation():
    rng = np.random.default_rng(6)
    values = (rng.random((1, 400)) < 0.3).astype(float)  # Bernoulli
    out = Bootstrap(resamples=2000, level=0.95, seed=0).mean(values)
    m, half = values.mean(), 1.96 * values.std(ddof=1) / np.sqrt(400)
    assert out["mean"] == m and out["seeds"] == 1
    assert out["lo"] <= m <= out["hi"]
    assert out["hi"] - out["lo"] == pytest.approx(2 * half, rel=0.2)
    assert out["lo"] == pytest.approx(m - half, abs=0.2 * half)
    assert out["hi"] == pytest.approx(m + half, abs=0.2 * half)


def test_level_orders_interval_widths():
    values = np.random.default_rng(7).normal(size=(1, 300))
    outs = [Bootstrap(1000, level, 0).mean(values) for level in (0.5, 0.8, 0.99)]
    widths = [o["hi"] - o["lo"] for o in outs]
    assert widths[0] < widths[1] < widths[2]


def test_nan_items_are_left_out():
    rng = np.random.default_rng(8)
    values = rng.normal(1.0, 1.0, size=(2, 300))
    values[:, rng.choice(300, 60, replace=False)] = np.nan  # no statistic, as cosines past cos_sentences
    values[0, 5] = np.nan  # and one seed's item only
    out = Bootstrap(1000, 0.95, 0).mean(values)
    assert out["mean"] == pytest.approx(np.nanmean(np.nanmean(values, 1)), abs=1e-15)  # mean of seed means
    assert np.isfinite([out["lo"], out["hi"]]).all()
    assert out["lo"] <= out["mean"] <= out["hi"]
    # the width is that of the ~240 valid items, not shrunk toward 0 by the NaN ones counted as zeros
    dense = values[:, ~np.isnan(values).any(0)]
    wanted = Bootstrap(1000, 0.95, 1).mean(dense)
    assert out["hi"] - out["lo"] == pytest.approx(wanted["hi"] - wanted["lo"], rel=0.3)
    # centred on the mean of the valid items: NaN counted as zeros would pull the whole interval down by ~20 %
    assert abs((out["lo"] + out["hi"]) / 2 - out["mean"]) < 0.25 * (out["hi"] - out["lo"])


def test_resample_without_any_valid_item_is_not_a_zero():
    """A resample drawing only NaN items of a seed has no mean (not 0, as sum 0 / max(count, 1) would say)."""
    values = np.full((1, 20), np.nan)
    values[0, :2] = 10.0  # every valid item is 10: any mean over valid items is 10
    out = Bootstrap(1000, 0.95, 0).mean(values)  # P(no valid item in a resample) = 0.9**20 = 12 %
    assert out["mean"] == 10.0
    assert out["lo"] == pytest.approx(10.0) and out["hi"] == pytest.approx(10.0)


def test_seeds_are_resampled():
    rng = np.random.default_rng(9)
    noise = rng.normal(0, 0.5, size=(3, 200))
    offsets = np.array([[0.0], [1.0], [2.0]])
    spread = Bootstrap(1000, 0.95, 0).mean(noise + offsets)
    same = Bootstrap(1000, 0.95, 0).mean(noise + 1.0)
    assert spread["seeds"] == same["seeds"] == 3
    assert spread["mean"] == pytest.approx(same["mean"], abs=1e-12)
    width_spread, width_same = spread["hi"] - spread["lo"], same["hi"] - same["lo"]
    assert width_spread > 5 * width_same
    # three seeds at 0, 1, 2: resampled means range over k / 3, so the 95 % interval spans most of [0, 2]
    assert spread["lo"] < 0.5 and spread["hi"] > 1.5


def test_same_seed_same_interval_other_seed_close_but_different():
    values = np.random.default_rng(10).normal(size=(2, 150))
    a, b = Bootstrap(500, 0.9, 123).mean(values), Bootstrap(500, 0.9, 123).mean(values)
    c = Bootstrap(500, 0.9, 124).mean(values)
    assert a == b
    assert (a["lo"], a["hi"]) != (c["lo"], c["hi"])
    width = a["hi"] - a["lo"]
    assert c["lo"] == pytest.approx(a["lo"], abs=0.3 * width)
    assert c["hi"] == pytest.approx(a["hi"], abs=0.3 * width)


def test_over_seeds_picks_each_resample_of_the_drawn_seeds():
    """over_seeds averages, for resample r, the r-th statistic of the drawn seeds (not another resample's)."""
    per_seed = np.tile(np.arange(100.0), (4, 1))  # every seed has statistic r under resample r
    out = Bootstrap(100, 0.9, 0).over_seeds(7.0, per_seed)
    assert out["mean"] == 7.0 and out["seeds"] == 4
    assert (out["lo"], out["hi"]) == pytest.approx(tuple(np.quantile(np.arange(100.0), [0.05, 0.95])))


def test_resamples_are_shared_by_cells_of_the_same_size():
    """Paired intervals: two statistics over the same items see the same resamples (one draw per size)."""
    boot = Bootstrap(200, 0.9, 0)
    assert boot.weights(30) is boot.weights(30) and boot.weights(30).shape == (200, 30)
    assert boot.weights(31).shape == (200, 31) and (boot.weights(30).sum(1) == 30).all()
    values = np.random.default_rng(1).normal(size=(1, 30))
    assert boot.mean(values) == boot.mean(values)  # a second cell of the same size: the same draws
    shifted = boot.mean(values + 1.0)
    assert shifted["lo"] == pytest.approx(boot.mean(values)["lo"] + 1.0)


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float64, (3, 12), elements=st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.5])),
       hnp.arrays(np.float64, (3, 12), elements=st.floats(-5, 5)))
def test_spearman_rows_is_scipy_per_row(x, y):
    """Ties included (x takes 5 values): average ranks, as scipy; a constant row gives NaN."""
    got = spearman_rows(x, y)
    for row, (a, b) in enumerate(zip(x, y)):
        want = spearmanr(a, b).statistic if np.ptp(a) and np.ptp(b) else np.nan
        np.testing.assert_allclose(got[row], want, atol=1e-12)


# --- matrix and headline ------------------------------------------------------------------------------------

def test_matrix_rows_are_seeds_columns_items_nan_kept():
    frame = pd.DataFrame(dict(seed=pd.array([2, 2, 2, 1, 1, 1], dtype="Int64"), sentence=[0, 1, 2, 2, 1, 0],
                              v=[4.0, np.nan, np.nan, 3.0, np.nan, 1.0]))
    # rows: seeds sorted; the all-NaN column is kept
    values, first = matrix(frame, "v", "sentence")
    np.testing.assert_array_equal(values, [[1.0, np.nan, 3.0], [4.0, np.nan, np.nan]])
    np.testing.assert_array_equal(frame["sentence"].to_numpy()[first], [0, 1, 2])  # each item's first row
    unseeded = pd.DataFrame(dict(seed=pd.array([None] * 3, dtype="Int64"), sentence=[2, 0, 1],
                                 v=[3.0, 1.0, 2.0]))
    np.testing.assert_array_equal(matrix(unseeded, "v", "sentence")[0], [[1.0, 2.0, 3.0]])


def test_headline_keeps_last_layer_of_the_head_probe():
    row = dict(mean=0.5, lo=0.4, hi=0.6)
    prob = [dict(model="m", variant="pretrained", layer=layer, probe=probe, domain=domain,
                 **(row | {"mean": 0.9} if (layer, probe, domain) == (2, "linear", "all") else row))
            for layer in range(3) for probe in ("linear", "roberta") for domain in ("all", "books")]
    same = [dict(model="m", variant="epoch-1", layer=layer, **row) for layer in range(3)]
    corr = [dict(model=m, measure="cosine", cells=10, rho=-0.123456 if m == "all" else 0.9, lo=-0.5, hi=0.2)
            for m in ("all", "m")]  # per model too: the metrics keep the pooled one
    tuned = [dict(model="m", start=start, epoch=k, **(row | {"mean": 0.7 + k / 10})) for start in ("pretrained",
             "random") for k in (1, 2)]
    out = headline(corr, prob, same, tuned, "linear")
    assert out["correlation"] == {"cosine": {"rho": -0.1235, "lo": -0.5, "hi": 0.2}}
    assert out["probe_last_layer"] == {"m": {"pretrained": {"mean": 0.9, "lo": 0.4, "hi": 0.6}}}
    assert out["cka_last_layer"] == {"m": {"epoch-1": row}}
    assert out["finetuned_last_epoch"] == {"m": {s: row | {"mean": 0.9} for s in ("pretrained", "random")}}
