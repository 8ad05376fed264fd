"""Tests for the Kernel Inception Distance (unbiased polynomial-kernel MMD^2)."""

from __future__ import annotations

import numpy as np
import pytest

from fidlens.core.errors import StatisticsError
from fidlens.metrics.kid import kernel_inception_distance


def brute_force_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Independent reference: explicit kernel matrices with the diagonal masked out."""
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    m, d = x.shape
    kxx = (np.einsum("ik,jk->ij", x, x) / d + 1.0) ** 3
    kyy = (np.einsum("ik,jk->ij", y, y) / d + 1.0) ** 3
    kxy = (np.einsum("ik,jk->ij", x, y) / d + 1.0) ** 3
    off = ~np.eye(m, dtype=bool)
    return float(kxx[off].mean() + kyy[off].mean() - 2.0 * kxy.mean())


def test_same_distribution_near_zero_and_shift_positive():
    rng = np.random.default_rng(0)
    d = 32
    a = rng.standard_normal((400, d))
    b = rng.standard_normal((400, d))
    shifted = rng.standard_normal((400, d)) + 0.5
    same_mean, same_std = kernel_inception_distance(a, b, num_subsets=20, max_subset_size=200)
    shift_mean, shift_std = kernel_inception_distance(
        a, shifted, num_subsets=20, max_subset_size=200
    )
    assert shift_mean > 0
    assert shift_mean > 5 * shift_std
    assert abs(same_mean) < 0.05 * shift_mean
    assert same_std >= 0 and shift_std >= 0


def test_identical_sets_give_about_zero():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((300, 16))
    shifted = a + 1.0
    # different random subsets of the same set: only sampling noise of O(1/m) remains
    same, _ = kernel_inception_distance(a, a.copy(), num_subsets=10, max_subset_size=100)
    diff, _ = kernel_inception_distance(a, shifted, num_subsets=10, max_subset_size=100)
    assert diff > 0
    assert abs(same) < 0.05 * diff


def test_full_permutation_matches_brute_force():
    rng = np.random.default_rng(2)
    n, d = 120, 24
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = (rng.standard_normal((n, d)) * 1.2 + 0.1).astype(np.float32)
    mean, std = kernel_inception_distance(x, y, num_subsets=1, max_subset_size=n, seed=123)
    expected = brute_force_mmd2(x, y)
    assert mean == pytest.approx(expected, rel=1e-12, abs=1e-14)
    assert std == 0.0
    # the subset is a permutation, so the seed does not matter
    other, _ = kernel_inception_distance(x, y, num_subsets=1, max_subset_size=n, seed=7)
    assert other == pytest.approx(expected, rel=1e-12, abs=1e-14)


def test_subset_size_is_capped_by_smaller_set():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 8))
    y = rng.standard_normal((80, 8)) + 0.2
    # m = min(50, 80, 1000) = 50 and x is used whole, so y's 50-subsets vary the result
    mean, std = kernel_inception_distance(x, y, num_subsets=5)
    assert np.isfinite(mean) and std > 0


def test_seeding_is_reproducible():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((200, 10))
    y = rng.standard_normal((150, 10)) + 0.1
    r1 = kernel_inception_distance(x, y, num_subsets=8, max_subset_size=50, seed=5)
    r2 = kernel_inception_distance(x, y, num_subsets=8, max_subset_size=50, seed=5)
    r3 = kernel_inception_distance(x, y, num_subsets=8, max_subset_size=50, seed=6)
    assert r1 == r2
    assert r1 != r3


def test_errors():
    x = np.zeros((10, 4))
    with pytest.raises(StatisticsError, match=r"d=4.*d=5"):
        kernel_inception_distance(x, np.zeros((10, 5)))
    bad = np.ones((10, 4))
    bad[3, 2] = np.nan
    with pytest.raises(StatisticsError, match="NaN"):
        kernel_inception_distance(x, bad)
    with pytest.raises(StatisticsError, match="2 samples"):
        kernel_inception_distance(np.zeros((1, 4)), x)
    with pytest.raises(StatisticsError, match="2-D"):
        kernel_inception_distance(np.zeros(4), x)
