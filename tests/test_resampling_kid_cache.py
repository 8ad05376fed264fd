"""KID of resampled draws from kernels computed once: the numbers of fidlens.metrics.kid, much faster."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fidlens.core.errors import StatisticsError
from fidlens.metrics.frechet import ReferenceStatistics, mean_and_covariance
from fidlens.metrics.kid import kernel_inception_distance
from fidlens.studies.resampling.kid_cache import PooledKid, drawn_kid
from fidlens.studies.resampling.modes import Mode
from fidlens.studies.resampling.optimizer import WeightedFrechet, draw_indices
from fidlens.studies.resampling.run import FeatureBank, ResamplingRun, ResamplingSettings, RunInputs


@pytest.fixture()
def banks(rng):
    reals = rng.normal(size=(70, 40)).astype(np.float32)
    candidates = np.concatenate([rng.normal(size=(60, 40)), rng.normal(size=(60, 40)) + 0.7]).astype(np.float32)
    return reals, candidates


@pytest.mark.parametrize("replace", [True, False])
@pytest.mark.parametrize("subset", [25, 1000])
def test_cached_kid_equals_kid_of_the_drawn_features(banks, replace, subset):
    reals, candidates = banks
    cache = PooledKid(reals, candidates)
    for seed in range(3):
        indices = np.random.default_rng(seed).choice(len(candidates), size=90, replace=replace) if replace else \
            np.random.default_rng(seed).permutation(len(candidates))[:90]
        expected = kernel_inception_distance(reals, candidates[indices], num_subsets=7, max_subset_size=subset,
                                             seed=seed + 11)
        got = cache(indices, num_subsets=7, max_subset_size=subset, seed=seed + 11)
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_kid_errors_still_come_from_kid(banks):
    reals, candidates = banks
    cache = PooledKid(reals, candidates)
    with pytest.raises(StatisticsError, match="num_subsets"):
        drawn_kid(cache, reals, candidates, np.arange(10), num_subsets=0, max_subset_size=10, seed=0)
    with pytest.raises(StatisticsError, match="max_subset_size"):
        drawn_kid(cache, reals, candidates, np.arange(10), num_subsets=3, max_subset_size=1, seed=0)
    with pytest.raises(StatisticsError, match="at least 2"):
        drawn_kid(cache, reals, candidates, np.arange(1), num_subsets=3, max_subset_size=10, seed=0)


def test_only_pools_whose_kernels_fit_are_cached():
    assert PooledKid.fits(200, 800)
    assert not PooledKid.fits(50_000, 250_000)


def test_a_run_evaluates_with_the_cache_and_the_same_numbers(tmp_path, banks):
    reals, candidates = banks
    inputs = RunInputs(Mode("pre_logits"), FeatureBank(pool3=reals), FeatureBank(pool3=candidates))
    settings = ResamplingSettings(iterations=2, lr=5.0, eval_every=1, eval_samples=80, eval_repeats=2,
                                  kid_subsets=4, kid_subset_size=30)
    run = ResamplingRun(inputs, settings, tmp_path, progress=False, log=lambda m: None)
    assert run.evaluator.kid_cache is not None
    run.run()
    w = run.optimizer.w.numpy()
    seed = settings.seed * 1_000_003 + 2 * 101 + 0  # iteration 2, first repeat
    indices = draw_indices(torch.as_tensor(w), settings.eval_samples, seed)
    kid, _ = kernel_inception_distance(reals, candidates[indices], num_subsets=4, max_subset_size=30, seed=seed)
    fid = ReferenceStatistics(*mean_and_covariance(reals)).fid(*mean_and_covariance(candidates[indices]))
    measured = run.evaluator._measure(indices, seed)
    assert measured["kid_x1000"] == pytest.approx(1000 * kid, rel=1e-12)
    assert measured["fid"] == fid


def test_the_objective_uses_the_evaluations_factor_and_agrees_with_its_fid(banks):
    """At uniform weights the loss is the FID of the whole pool, computed the evaluation's way."""
    reals, candidates = banks
    ref = ReferenceStatistics(*mean_and_covariance(reals))
    objective = WeightedFrechet(torch.from_numpy(candidates), ref.mu, ref.sigma, real_factor=ref._factor)
    own = WeightedFrechet(torch.from_numpy(candidates), ref.mu, ref.sigma)
    zeros = torch.zeros(len(candidates), dtype=torch.float64)
    expected = ref.fid(*mean_and_covariance(candidates))
    assert objective.loss(zeros) == pytest.approx(expected, rel=1e-12)
    assert own.loss(zeros) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(StatisticsError, match="real_factor"):
        WeightedFrechet(torch.from_numpy(candidates), ref.mu, ref.sigma, real_factor=np.zeros((3, 2)))
