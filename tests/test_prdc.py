"""Precision, recall, density, coverage against a brute force on the full distance matrices."""

from __future__ import annotations

import numpy as np
import pytest

from fidlens.core.errors import StatisticsError
from fidlens.metrics.prdc import knn_radii, prdc


def _distances(a, b):
    """Full Euclidean distance matrix from the differences (independent of the chunked fast form)."""
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1))


def _kth_other(dist_self, k):
    """k-th nearest other point: sorting includes the point itself (distance 0) at position 0."""
    return np.sort(dist_self, axis=1)[:, k]


def brute_prdc(real, fake, k_pr=3, k_dc=5):
    d_rr, d_ff, d_rf = _distances(real, real), _distances(fake, fake), _distances(real, fake)
    r_pr, r_dc, f_pr = _kth_other(d_rr, k_pr), _kth_other(d_rr, k_dc), _kth_other(d_ff, k_pr)
    precision = (d_rf <= r_pr[:, None]).any(axis=0).mean()  # closed real balls hold the fake
    recall = (d_rf <= f_pr[None, :]).any(axis=1).mean()  # closed fake balls hold the real
    density = (d_rf < r_dc[:, None]).sum() / (k_dc * fake.shape[0])
    coverage = (d_rf.min(axis=1) < r_dc).mean()
    return precision, recall, density, coverage


def _values(result):
    return result.precision, result.recall, result.density, result.coverage


@pytest.mark.parametrize(("n_real", "n_fake", "d", "k_pr", "k_dc"),
                         [(120, 90, 8, 3, 5), (60, 150, 32, 3, 5), (80, 80, 4, 1, 1), (50, 40, 16, 7, 10)])
def test_random_sets_match_brute_force(n_real, n_fake, d, k_pr, k_dc):
    rng = np.random.default_rng(n_real + d)
    real = rng.standard_normal((n_real, d))
    fake = rng.standard_normal((n_fake, d)) * 1.2 + 0.3
    result = prdc(real, fake, k_pr=k_pr, k_dc=k_dc)
    assert _values(result) == pytest.approx(brute_prdc(real, fake, k_pr, k_dc), abs=1e-15)
    assert 0 < result.precision < 1 and 0 < result.coverage < 1  # not a trivial all-or-nothing case


def test_ties_and_duplicates_on_a_lattice_match_brute_force():
    """Small integer coordinates: many exact ties and duplicates, decided exactly by both."""
    rng = np.random.default_rng(1)
    for trial in range(4):
        real = rng.integers(0, 3, (70, 3)).astype(np.float64)
        fake = rng.integers(0, 3, (55, 3)).astype(np.float64)
        got = _values(prdc(real, fake, block_bytes=512 * (trial + 1)))
        assert got == pytest.approx(brute_prdc(real, fake), abs=1e-15)


def test_boundary_points_follow_each_papers_convention():
    """A fake exactly on a real ball's edge: inside for precision (≤), outside for density/coverage (<)."""
    real = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
    fake = np.array([[3.0], [13.0]])
    result = prdc(real, fake, k_pr=1, k_dc=1)
    assert result.precision == 1.0  # 3 is at distance 1 = radius of 2; 13 likewise of 12
    assert result.density == 0.0 and result.coverage == 0.0
    assert _values(result) == pytest.approx(brute_prdc(real, fake, 1, 1))


def test_duplicates_have_zero_radius():
    real = np.array([[0.0, 0.0], [0.0, 0.0], [5.0, 5.0], [5.0, 5.0], [9.0, 1.0]])
    radii = knn_radii(real, [1, 2])
    np.testing.assert_array_equal(radii[1][:4], [0.0, 0.0, 0.0, 0.0])
    assert radii[2][0] == pytest.approx(np.sqrt(50.0))
    fake = np.array([[0.0, 0.0], [5.0, 5.0]])
    result = prdc(real, fake, k_pr=1, k_dc=1)
    assert result.precision == 1.0  # a fake on a duplicated real: distance 0 <= radius 0
    assert result.density == 0.0  # but not strictly inside a ball of radius 0


def test_knn_radii_match_sorted_distances():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((90, 12))
    radii = knn_radii(x, [1, 3, 5], block_bytes=1000)
    dist = _distances(x, x)
    for k in (1, 3, 5):
        np.testing.assert_allclose(radii[k], _kth_other(dist, k), rtol=1e-12)


def test_chunk_size_does_not_change_anything():
    rng = np.random.default_rng(3)
    real = rng.standard_normal((200, 16))
    fake = np.vstack([rng.standard_normal((100, 16)) + 0.2, real[:30]])  # duplicates across sets too
    reference = _values(prdc(real, fake))
    for block in (8 * 16, 8 * 200 * 7, 10**6):
        assert _values(prdc(real, fake, block_bytes=block)) == reference


def test_float32_features_give_the_float64_answer():
    rng = np.random.default_rng(4)
    real = rng.standard_normal((80, 10)).astype(np.float32)
    fake = (rng.standard_normal((70, 10)) + 0.4).astype(np.float32)
    assert _values(prdc(real, fake)) == _values(prdc(real.astype(np.float64), fake.astype(np.float64)))


def test_identical_sets_score_perfectly_and_labels_are_carried():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((60, 6))
    result = prdc(x, x.copy(), feature_space="Inception-v3 pool3 (default_1.pt)")
    assert result.precision == 1.0 and result.recall == 1.0 and result.coverage == 1.0
    assert result.feature_space == "Inception-v3 pool3 (default_1.pt)"
    assert "VGG16" in result.note and "not comparable" in result.note
    assert result.as_dict()["feature_space"] == result.feature_space


@pytest.mark.parametrize(("n_real", "n_fake", "kwargs", "message"), [
    (3, 10, {"k_pr": 3}, "needs at least 4 real features"),
    (10, 3, {"k_pr": 3}, "needs at least 4 fake features"),
    (5, 10, {"k_pr": 2, "k_dc": 5}, "k = 5 for density/coverage needs at least 6 real"),
    (10, 10, {"k_pr": 0}, "must be a whole number >= 1"),
])
def test_k_too_large_or_small_is_refused(n_real, n_fake, kwargs, message):
    rng = np.random.default_rng(6)
    with pytest.raises(StatisticsError, match=message):
        prdc(rng.standard_normal((n_real, 3)), rng.standard_normal((n_fake, 3)), **kwargs)


def test_bad_features_are_refused():
    rng = np.random.default_rng(7)
    real = rng.standard_normal((20, 3))
    with pytest.raises(StatisticsError, match="dimensions differ"):
        prdc(real, rng.standard_normal((20, 4)))
    bad = real.copy()
    bad[2, 2] = np.inf
    with pytest.raises(StatisticsError, match="NaN or infinite"):
        prdc(real, bad)
    with pytest.raises(StatisticsError, match="2-D"):
        prdc(real, np.zeros(10))
