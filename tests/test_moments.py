"""Mergeable moments (fidlens.metrics.moments): shards merged equal the one-shot statistics.

The one-shot path is what stats.py does today (`Statistics.from_features` → two-pass
`mean_and_covariance`); merged shard moments must match it within 1e-12 relative whatever the
shard size, batch size and shard order.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

from fidlens.core.errors import StatisticsError
from fidlens.metrics.covariance import Covariance
from fidlens.metrics.frechet import FewSamplesWarning
from fidlens.metrics.moments import Moments, relative_difference, shard_ranges
from fidlens.metrics.stats import Statistics

TOL = 1e-12


def features(n: int, d: int, *, seed: int = 0, dtype=np.float64) -> np.ndarray:
    """Inception-like features: non-negative, a large common offset and a small spread (hard for Σffᵀ)."""
    rng = np.random.default_rng(seed)
    x = 50.0 + rng.gamma(2.0, 0.3, size=(n, d)) + rng.standard_normal((n, 1)) * 0.5
    return x.astype(dtype)


def sharded(x: np.ndarray, shard_size: int, batch_size: int) -> list[Moments]:
    return [Moments.of(x[a:b], batch_size=batch_size) for a, b in shard_ranges(len(x), shard_size)]


def one_shot(x: np.ndarray, convention: str) -> Statistics:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewSamplesWarning)
        return Statistics.from_features(x, covariance=convention)


@pytest.mark.parametrize("n,d,shard_size,batch_size", [
    (1000, 16, 100, 32),      # even shards, batches not dividing shards
    (1003, 16, 250, 64),      # an uneven last shard (3 images)
    (997, 24, 333, 1000),     # batch larger than a shard
    (40, 64, 7, 3),           # N < d: a singular covariance, tiny shards and batches
    (513, 8, 1, 1),           # one image per shard
])
@pytest.mark.parametrize("convention", ["unbiased", "population"])
def test_merged_shards_equal_the_one_shot_statistics(n, d, shard_size, batch_size, convention):
    x = features(n, d, seed=n + d)
    ref = one_shot(x, convention)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewSamplesWarning)
        mu, sigma = Moments.merge_all(sharded(x, shard_size, batch_size)).mean_and_covariance(convention)
    assert relative_difference(mu, ref.mu) <= TOL
    assert relative_difference(sigma, ref.sigma) <= TOL
    assert np.array_equal(sigma, sigma.T)


def test_float32_input_is_read_as_float64_and_matches():
    x = features(600, 32, seed=3, dtype=np.float32)
    ref = one_shot(x, "unbiased")
    merged = Moments.merge_all(sharded(x, 128, 50))
    assert merged.mean.dtype == np.float64 and merged.scatter.dtype == np.float64 and merged.count == 600
    mu, sigma = merged.mean_and_covariance(Covariance.UNBIASED)
    assert relative_difference(mu, ref.mu) <= TOL and relative_difference(sigma, ref.sigma) <= TOL
    # and the float32 array was not promoted whole: a float32 result would differ far beyond 1e-12
    c = x - x.mean(axis=0, dtype=np.float32)
    naive = ((c.T @ c) / np.float32(len(x) - 1)).astype(np.float64)
    assert relative_difference(naive, ref.sigma) > TOL


def test_batch_and_shard_sizes_do_not_change_the_result():
    x = features(777, 12, seed=5)
    results = [Moments.merge_all(sharded(x, s, b)) for s, b in [(777, 777), (100, 7), (50, 64), (13, 1)]]
    for r in results[1:]:
        assert r.count == results[0].count
        assert relative_difference(r.mean, results[0].mean) <= TOL
        assert relative_difference(r.scatter, results[0].scatter) <= TOL


def test_merging_is_associative_and_order_free():
    x = features(500, 10, seed=7)
    parts = sharded(x, 120, 30)  # 5 shards, the last one of 20
    reference = Moments.merge_all(parts)
    for order in itertools.islice(itertools.permutations(range(len(parts))), 0, 120, 7):
        merged = Moments.merge_all([parts[i] for i in order])
        assert merged.count == 500
        assert relative_difference(merged.mean, reference.mean) <= TOL
        assert relative_difference(merged.scatter, reference.scatter) <= TOL
    left = parts[0].merge(parts[1]).merge(parts[2])
    right = parts[0].merge(parts[1].merge(parts[2]))
    assert relative_difference(left.scatter, right.scatter) <= TOL


def test_the_centred_merge_beats_raw_sums_on_offset_features():
    """Σffᵀ - n·μμᵀ loses digits when the mean dwarfs the spread; the centred merge does not."""
    rng = np.random.default_rng(11)
    x = 1e4 + rng.standard_normal((2000, 4))
    ref = one_shot(x, "unbiased")
    mu, sigma = Moments.merge_all(sharded(x, 300, 64)).mean_and_covariance("unbiased")
    raw = (x.T @ x - len(x) * np.outer(x.mean(0), x.mean(0))) / (len(x) - 1)
    assert relative_difference(sigma, ref.sigma) <= TOL < relative_difference(raw, ref.sigma)


def test_moments_files_round_trip(tmp_path):
    m = Moments.of(features(50, 6, seed=2))
    m.save(tmp_path / "m.npz")
    back = Moments.load(tmp_path / "m.npz")
    assert back.count == 50 and np.array_equal(back.mean, m.mean) and np.array_equal(back.scatter, m.scatter)


def test_bad_inputs_give_one_clear_error(tmp_path):
    with pytest.raises(StatisticsError, match="empty"):
        Moments.of(np.zeros((0, 8)))
    with pytest.raises(StatisticsError, match="different widths: d=8 and d=9"):
        Moments.of(features(10, 8)).merge(Moments.of(features(10, 9)))
    bad = features(20, 4)
    bad[13, 2] = np.nan
    with pytest.raises(StatisticsError, match=r"NaN or infinite values \(first in row 13\)"):
        Moments.of(bad, batch_size=100)
    with pytest.raises(StatisticsError, match="rows 10..19"):
        Moments.of(bad, batch_size=10)
    with pytest.raises(StatisticsError, match="zero shards"):
        Moments.merge_all([])
    with pytest.raises(StatisticsError, match="at least 2 images"):
        Moments.of(features(1, 4)).mean_and_covariance()
    with pytest.raises(StatisticsError, match="2-D"):
        Moments.of(np.zeros(5))
    np.savez(tmp_path / "other.npz", mu=np.zeros(3))
    with pytest.raises(StatisticsError, match="not a fidlens moments file"):
        Moments.load(tmp_path / "other.npz")


def test_shard_ranges_cover_the_set_once():
    assert shard_ranges(25, 10) == [(0, 10), (10, 20), (20, 25)]
    assert shard_ranges(10, 10) == [(0, 10)] and shard_ranges(3, 10) == [(0, 3)]
    with pytest.raises(StatisticsError):
        shard_ranges(0, 10)
