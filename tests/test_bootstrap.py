"""Bootstrap intervals of FID and KID, and the paired comparison, against explicit recomputation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fidlens.metrics.bootstrap import (
    FrechetResampler,
    bootstrap_fid,
    bootstrap_kid,
    compare_fid,
    draw_counts,
    resampling_streams,
    summarize,
)
from fidlens.core.errors import StatisticsError
from fidlens.metrics.frechet import (
    FewSamplesWarning,
    frechet_distance,
    frechet_distance_from_features,
    mean_and_covariance,
)
from fidlens.metrics.kid import polynomial_mmd2_unbiased


@pytest.fixture(autouse=True)
def _quiet_few_samples():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewSamplesWarning)
        yield


def _sets(rng, n_ref, n_gen, d, shift=0.2, scale=1.3):
    ref = rng.standard_normal((n_ref, d))
    gen = rng.standard_normal((n_gen, d)) * scale + shift
    return ref, gen


def _replicated_fid(ref, gen, gen_counts, ref_counts=None, unbiased=True):
    """Independent: build the resampled sets row by row and compute FID from scratch."""
    big_gen = np.repeat(gen, gen_counts, axis=0)
    big_ref = ref if ref_counts is None else np.repeat(ref, ref_counts, axis=0)
    mu_r, s_r = mean_and_covariance(big_ref, unbiased=unbiased)
    mu_g, s_g = mean_and_covariance(big_gen, unbiased=unbiased)
    return frechet_distance(mu_r, s_r, mu_g, s_g)


# (n_ref, n_gen, d): covariance route, Gram route (N < d), and mixed sizes
SHAPES = [(300, 200, 16), (40, 30, 64), (300, 30, 64), (30, 300, 64)]


@pytest.mark.parametrize("resample_reference", [False, True])
@pytest.mark.parametrize("shape", SHAPES, ids=[f"ref{a}-gen{b}-d{c}" for a, b, c in SHAPES])
def test_weighted_fid_equals_replicated_set(shape, resample_reference):
    rng = np.random.default_rng(sum(shape))
    n_ref, n_gen, d = shape
    ref, gen = _sets(rng, n_ref, n_gen, d)
    engine = FrechetResampler(ref, [gen], resample_reference=resample_reference)
    for _ in range(3):
        counts = draw_counts(rng, n_gen)
        ref_counts = draw_counts(rng, n_ref) if resample_reference else None
        got = engine.fids([counts], ref_counts)[0]
        want = _replicated_fid(ref, gen, counts, ref_counts)
        assert got == pytest.approx(want, rel=1e-10)


def test_both_routes_are_taken():
    rng = np.random.default_rng(0)
    ref, gen = _sets(rng, 300, 30, 64)
    assert FrechetResampler(ref, [gen]).routes == ["gram"]
    ref, gen = _sets(rng, 300, 200, 16)
    assert FrechetResampler(ref, [gen]).routes == ["covariance"]
    small_ref, small_gen = _sets(rng, 40, 30, 64)
    assert FrechetResampler(small_ref, [small_gen], resample_reference=True).routes == ["gram"]


def test_population_convention_and_statistics_reference():
    rng = np.random.default_rng(1)
    ref, gen = _sets(rng, 200, 150, 12)
    counts = draw_counts(rng, 150)
    engine = FrechetResampler(ref, [gen], unbiased=False)
    assert engine.fids([counts])[0] == pytest.approx(_replicated_fid(ref, gen, counts, unbiased=False), rel=1e-10)
    mu, sigma = mean_and_covariance(ref)
    from_stats = FrechetResampler((mu, sigma), [gen]).fids([counts])[0]
    assert from_stats == pytest.approx(_replicated_fid(ref, gen, counts), rel=1e-10)


@pytest.mark.parametrize("resample_reference", [False, True])
def test_bootstrap_replicates_are_the_seeded_resamples(resample_reference):
    rng = np.random.default_rng(2)
    ref, gen = _sets(rng, 120, 90, 10)
    result = bootstrap_fid(ref, gen, resamples=6, seed=7, resample_reference=resample_reference)
    rng_ref, rng_gen, _ = resampling_streams(7)
    for value in result.replicates:
        counts = draw_counts(rng_gen, 90)
        ref_counts = draw_counts(rng_ref, 120) if resample_reference else None
        assert value == pytest.approx(_replicated_fid(ref, gen, counts, ref_counts), rel=1e-10)
    assert result.estimate == pytest.approx(frechet_distance_from_features(ref, gen), rel=1e-12)


def test_estimate_is_what_fidlens_fid_prints():
    """Statistics of each side, then frechet_distance (as `fidlens fid`), also when N < d."""
    rng = np.random.default_rng(3)
    ref, gen = _sets(rng, 40, 30, 64)
    ref32, gen32 = ref.astype(np.float32), gen.astype(np.float32)  # feature files store float32
    result = bootstrap_fid(ref32, gen32, resamples=4)
    assert result.estimate == frechet_distance(*mean_and_covariance(ref32), *mean_and_covariance(gen32))
    assert result.estimate == pytest.approx(frechet_distance_from_features(ref32, gen32), rel=1e-10)


def test_seeded_runs_are_identical_and_seeds_differ():
    rng = np.random.default_rng(4)
    ref, gen = _sets(rng, 100, 80, 8)
    first = bootstrap_fid(ref, gen, resamples=20, seed=11)
    again = bootstrap_fid(ref, gen, resamples=20, seed=11)
    other = bootstrap_fid(ref, gen, resamples=20, seed=12)
    np.testing.assert_array_equal(first.replicates, again.replicates)
    assert (first.low, first.high) == (again.low, again.high)
    assert not np.array_equal(first.replicates, other.replicates)


def test_interval_contains_estimate_and_methods_relate():
    rng = np.random.default_rng(5)
    ref, gen = _sets(rng, 600, 500, 8, shift=0.3)
    corrected = bootstrap_fid(ref, gen, resamples=200, seed=0)
    raw = bootstrap_fid(ref, gen, resamples=200, seed=0, method="percentile")
    assert corrected.contains(corrected.estimate)
    assert corrected.low < corrected.estimate < corrected.high
    np.testing.assert_array_equal(corrected.replicates, raw.replicates)
    lo, hi = np.quantile(raw.replicates, [0.025, 0.975])
    assert (raw.low, raw.high) == pytest.approx((lo, hi), rel=1e-15)
    assert corrected.bias == pytest.approx(raw.replicates.mean() - raw.estimate, rel=1e-12)
    assert corrected.low == pytest.approx(lo - corrected.bias, rel=1e-12)
    assert corrected.high == pytest.approx(hi - corrected.bias, rel=1e-12)
    narrower = bootstrap_fid(ref, gen, resamples=200, seed=0, level=0.5)
    assert corrected.low < narrower.low < narrower.high < corrected.high


def test_bias_correction_matters_when_fid_is_strongly_biased():
    """N < d: the replicates of resampled sets sit far above the estimate; the raw interval misses it."""
    rng = np.random.default_rng(6)
    ref, gen = _sets(rng, 60, 50, 80, shift=0.05, scale=1.0)
    raw = bootstrap_fid(ref, gen, resamples=100, seed=1, method="percentile")
    corrected = bootstrap_fid(ref, gen, resamples=100, seed=1)
    assert raw.low > raw.estimate  # the raw percentile interval lies entirely above FID
    assert corrected.contains(corrected.estimate)


def test_coverage_sanity_on_gaussians():
    """Intervals for E[FID_N] from independent samples cover it about as often as promised."""
    rng = np.random.default_rng(7)
    d, n = 3, 300
    mu_r, sigma_r = np.zeros(d), np.eye(d)
    mean_g, scale = np.full(d, 0.4), 1.2

    def draw():
        return rng.standard_normal((n, d)) * scale + mean_g

    expected = np.mean([frechet_distance(mu_r, sigma_r, *mean_and_covariance(draw())) for _ in range(400)])
    hits = [bootstrap_fid((mu_r, sigma_r), draw(), resamples=100, seed=s, level=0.9).contains(expected)
            for s in range(40)]
    assert 0.75 <= np.mean(hits) <= 1.0


def test_paired_comparison_shares_the_draws():
    rng = np.random.default_rng(8)
    ref = rng.standard_normal((150, 8))
    a = rng.standard_normal((120, 8)) * 1.05
    b = rng.standard_normal((110, 8)) * 1.4 + 0.3
    result = compare_fid(ref, a, b, resamples=30, seed=5)
    alone = bootstrap_fid(ref, a, resamples=30, seed=5)
    np.testing.assert_array_equal(result.fid_a.replicates, alone.replicates)
    assert result.difference.estimate == pytest.approx(result.fid_a.estimate - result.fid_b.estimate, rel=1e-12)
    np.testing.assert_allclose(result.difference.replicates, result.fid_a.replicates - result.fid_b.replicates)
    assert result.p_a_better > 0.95
    assert result.difference.high < 0
    swapped = compare_fid(ref, b, a, resamples=30, seed=5)
    assert swapped.p_a_better < 0.05


def test_paired_comparison_resamples_the_reference_jointly():
    rng = np.random.default_rng(9)
    ref = rng.standard_normal((70, 6))
    a, b = rng.standard_normal((60, 6)) + 0.1, rng.standard_normal((50, 6)) * 1.2
    result = compare_fid(ref, a, b, resamples=3, seed=2, resample_reference=True)
    rng_ref, rng_a, rng_b = resampling_streams(2)
    for i in range(3):
        counts_a, counts_b, counts_r = draw_counts(rng_a, 60), draw_counts(rng_b, 50), draw_counts(rng_ref, 70)
        assert result.fid_a.replicates[i] == pytest.approx(_replicated_fid(ref, a, counts_a, counts_r), rel=1e-10)
        assert result.fid_b.replicates[i] == pytest.approx(_replicated_fid(ref, b, counts_b, counts_r), rel=1e-10)


def test_equal_sets_are_a_coin_toss():
    rng = np.random.default_rng(10)
    ref = rng.standard_normal((200, 5))
    a = rng.standard_normal((200, 5)) + 0.2
    result = compare_fid(ref, a, a.copy(), resamples=200, seed=3)
    assert 0.3 < result.p_a_better < 0.7
    assert result.difference.contains(0.0)


def test_kid_replicates_equal_the_replicated_sets():
    rng = np.random.default_rng(11)
    ref, gen = _sets(rng, 50, 50, 8)
    result = bootstrap_kid(ref, gen, resamples=5, seed=3, resample_reference=True)
    rng_ref, rng_gen, _ = resampling_streams(3)
    for value in result.replicates:
        counts, ref_counts = draw_counts(rng_gen, 50), draw_counts(rng_ref, 50)
        want = polynomial_mmd2_unbiased(np.repeat(ref, ref_counts, axis=0), np.repeat(gen, counts, axis=0))
        assert value == pytest.approx(want, rel=1e-10, abs=1e-13)
    assert result.estimate == pytest.approx(polynomial_mmd2_unbiased(ref, gen), rel=1e-12)


def test_kid_estimate_for_unequal_sizes_and_fixed_reference():
    rng = np.random.default_rng(12)
    ref, gen = _sets(rng, 70, 40, 6)
    d = 6
    kxx = (ref @ ref.T / d + 1) ** 3
    kyy = (gen @ gen.T / d + 1) ** 3
    kxy = (ref @ gen.T / d + 1) ** 3
    brute = ((kxx.sum() - np.trace(kxx)) / (70 * 69) + (kyy.sum() - np.trace(kyy)) / (40 * 39)
             - 2 * kxy.mean())
    result = bootstrap_kid(ref, gen, resamples=4, seed=0)
    assert result.estimate == pytest.approx(brute, rel=1e-12)
    _, rng_gen, _ = resampling_streams(0)
    counts = draw_counts(rng_gen, 40)
    big = np.repeat(gen, counts, axis=0)
    kyy = (big @ big.T / d + 1) ** 3
    kxy = (ref @ big.T / d + 1) ** 3
    want = ((kxx.sum() - np.trace(kxx)) / (70 * 69) + (kyy.sum() - np.trace(kyy)) / (40 * 39) - 2 * kxy.mean())
    assert result.replicates[0] == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"level": 1.0}, "strictly between 0 and 1"),
        ({"level": 0.0}, "strictly between 0 and 1"),
        ({"resamples": 1}, "from 2 to"),
        ({"method": "bca"}, "unknown interval method"),
        ({"seed": -1}, "non-negative"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    rng = np.random.default_rng(13)
    ref, gen = _sets(rng, 30, 30, 4)
    with pytest.raises(StatisticsError, match=message):
        bootstrap_fid(ref, gen, **{"resamples": 5, **kwargs})


def test_bad_inputs_are_refused():
    rng = np.random.default_rng(14)
    ref, gen = _sets(rng, 30, 30, 4)
    mu, sigma = mean_and_covariance(ref)
    with pytest.raises(StatisticsError, match="cannot be resampled"):
        bootstrap_fid((mu, sigma), gen, resample_reference=True, resamples=3)
    with pytest.raises(StatisticsError, match="dimensions differ"):
        bootstrap_fid(ref, gen[:, :3], resamples=3)
    bad = gen.copy()
    bad[3, 1] = np.nan
    with pytest.raises(StatisticsError, match="NaN"):
        bootstrap_fid(ref, bad, resamples=3)
    with pytest.raises(StatisticsError, match="at least 2 samples"):
        bootstrap_kid(ref, gen[:1], resamples=3)
    engine = FrechetResampler(ref, [gen])
    with pytest.raises(StatisticsError, match="counts"):
        engine.fids([np.ones(29, dtype=int)])


def test_summarize_floor_and_replicate_checks():
    result = summarize("FID", 0.01, np.array([0.0, 0.02, 0.5, 0.03]), level=0.9, method="percentile", floor=0.0)
    assert result.low >= 0.0
    with pytest.raises(StatisticsError, match="finite"):
        summarize("FID", 1.0, np.array([1.0, np.inf]))
