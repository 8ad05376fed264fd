"""FID∞ / KID∞: the grid, the fit, the per-N values against brute force, and the closed form."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from file_writers import plot_inverse_n

from fidlens.core.errors import StatisticsError
from fidlens.metrics.fid_infinity import (
    check_sizes,
    fid_infinity,
    fit_inverse_n,
    size_grid,
    subset_indices,
)
from fidlens.metrics.frechet import FewSamplesWarning, frechet_distance, mean_and_covariance


@pytest.fixture(autouse=True)
def _quiet_few_samples():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewSamplesWarning)
        yield


def test_fit_recovers_an_exact_line():
    sizes = np.array([100, 200, 400, 800, 1600])
    values = 3.25 + 150.0 / sizes
    fit = fit_inverse_n("FID", sizes, values)
    assert fit.intercept == pytest.approx(3.25, rel=1e-12)
    assert fit.slope == pytest.approx(150.0, rel=1e-10)
    assert fit.r_squared == pytest.approx(1.0, abs=1e-12)
    assert np.abs(fit.residuals).max() < 1e-12


def test_fit_matches_an_independent_least_squares():
    rng = np.random.default_rng(0)
    sizes = np.arange(50, 800, 50)
    values = 2.0 + 90.0 / sizes + rng.normal(0, 0.05, sizes.size)
    fit = fit_inverse_n("FID", sizes, values)
    slope, intercept = np.polyfit(1.0 / sizes, values, 1)
    assert fit.intercept == pytest.approx(intercept, rel=1e-10)
    assert fit.slope == pytest.approx(slope, rel=1e-10)
    predicted = intercept + slope / sizes
    r2 = 1 - ((values - predicted) ** 2).sum() / ((values - values.mean()) ** 2).sum()
    assert fit.r_squared == pytest.approx(r2, rel=1e-10)
    np.testing.assert_allclose(fit.residuals, values - predicted, atol=1e-12)


def test_grid_is_the_papers_for_large_sets():
    sizes, note = size_grid(60_000)
    assert note is None
    np.testing.assert_array_equal(sizes, np.rint(np.linspace(5000, 50000, 15)).astype(int))


def test_grid_scales_down_with_a_note():
    sizes, note = size_grid(10_000)
    assert sizes[0] == 1000 and sizes[-1] == 10_000 and sizes.size == 15
    assert "10000 images" in note and "linspace(1000, 10000)" in note
    small, note = size_grid(200)
    assert small[0] == 50 and small[-1] == 200  # the floor, not 20
    assert "floor 50" in note
    with pytest.raises(StatisticsError, match="at least 100 generated images"):
        size_grid(99)


def test_explicit_sizes_are_checked():
    np.testing.assert_array_equal(check_sizes([300, 100, 200, 200], 300), [100, 200, 300])
    with pytest.raises(StatisticsError, match="impossible"):
        check_sizes([100, 200, 301], 300)
    with pytest.raises(StatisticsError, match="impossible"):
        check_sizes([1, 100, 200], 300)
    with pytest.raises(StatisticsError, match="at least 3 different"):
        check_sizes([100, 200, 200], 300)


def _mmd2(x, y):
    """Independent brute force: unbiased MMD² with the cubic kernel, any sizes."""
    d = x.shape[1]
    kxx, kyy, kxy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    n, m = len(x), len(y)
    return ((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
            - 2 * kxy.mean())


def test_values_at_each_n_equal_brute_force():
    rng = np.random.default_rng(1)
    ref = rng.standard_normal((150, 6))
    gen = rng.standard_normal((240, 6)) * 1.2 + 0.1
    sizes = [60, 120, 180, 240]
    result = fid_infinity(ref, gen, sizes=sizes, seed=4)
    subsets = subset_indices(240, sizes, 4)
    mu_r, sigma_r = mean_and_covariance(ref)
    for j, rows in enumerate(subsets):
        assert len(set(rows)) == sizes[j]
        want = frechet_distance(mu_r, sigma_r, *mean_and_covariance(gen[rows]))
        assert result.fid.values[j] == pytest.approx(want, rel=1e-10)
        assert result.kid.values[j] == pytest.approx(_mmd2(gen[rows], ref), rel=1e-10, abs=1e-14)
    assert result.notes == ()
    assert result.n_reference == 150


def test_seeded_and_reference_statistics_give_no_kid():
    rng = np.random.default_rng(2)
    ref = rng.standard_normal((150, 5))
    gen = rng.standard_normal((300, 5)) + 0.2
    a = fid_infinity(ref, gen, seed=3)
    b = fid_infinity(ref, gen, seed=3)
    c = fid_infinity(ref, gen, seed=4)
    np.testing.assert_array_equal(a.fid.values, b.fid.values)
    assert not np.array_equal(a.fid.values[:-1], c.fid.values[:-1])
    assert a.fid.values[-1] == pytest.approx(c.fid.values[-1], rel=1e-12)  # N = all: the same set
    stats = fid_infinity(mean_and_covariance(ref), gen, seed=3)
    np.testing.assert_allclose(stats.fid.values, a.fid.values, rtol=1e-10)
    assert stats.kid is None and any("no KID∞" in n for n in stats.notes)
    assert any("linspace(50, 300)" in n for n in a.notes)


def test_fid_infinity_approaches_the_true_frechet_distance():
    """Gaussians with known parameters: FID_N is biased by ~1/N, its extrapolation is not.

    The reference is the exact (mu, sigma), so all bias comes from the N generated samples.
    Equal means remove the O(1/sqrt(N)) linear noise term; the tolerance is four standard
    errors of FID∞ over independent generated sets, and must be far below the bias.
    """
    rng = np.random.default_rng(3)
    d, n_total, repeats = 32, 4000, 8
    a = np.eye(d) + 0.25 * rng.standard_normal((d, d))
    sigma_g = a @ a.T
    mu_r, sigma_r = np.zeros(d), np.eye(d)
    true = frechet_distance(mu_r, sigma_r, np.zeros(d), sigma_g)
    chol = np.linalg.cholesky(sigma_g)
    sizes = np.linspace(400, n_total, 10).astype(int)
    infinities, smallest, slopes = [], [], []
    for seed in range(repeats):
        gen = rng.standard_normal((n_total, d)) @ chol.T
        result = fid_infinity((mu_r, sigma_r), gen, sizes=sizes, seed=seed, kid=False)
        infinities.append(result.fid.intercept)
        smallest.append(result.fid.values[0])
        slopes.append(result.fid.slope)
    bias_small = np.mean(smallest) - true
    tolerance = 4 * np.std(infinities, ddof=1) / np.sqrt(repeats)
    assert bias_small > 0.5  # FID at N = 400 is clearly biased upwards
    assert np.mean(slopes) > 0  # ... and the bias falls with N
    assert tolerance < 0.5 * bias_small
    assert abs(np.mean(infinities) - true) < tolerance


def test_kid_infinity_is_flat_for_an_unbiased_metric():
    rng = np.random.default_rng(4)
    ref = rng.standard_normal((400, 4))
    gen = rng.standard_normal((600, 4)) * 1.3
    result = fid_infinity(ref, gen, seed=0)
    full = _mmd2(gen, ref)
    # KID has no 1/N bias: the intercept stays near the full-set value while FID's slope is large
    assert abs(result.kid.intercept - full) < 0.5 * full
    assert result.fid.slope > 0


def test_figure_is_written_atomically(tmp_path):
    rng = np.random.default_rng(5)
    ref = rng.standard_normal((150, 4))
    gen = rng.standard_normal((200, 4)) + 0.3
    result = fid_infinity(ref, gen, seed=1)
    path = tmp_path / "figs" / "fid_vs_inverse_n.png"
    plot_inverse_n(result, path)
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] > 2 * image.size[1] * 0.9  # two panels side by side
    assert sorted(p.name for p in path.parent.iterdir()) == ["fid_vs_inverse_n.png"]


def test_bad_inputs_are_refused():
    rng = np.random.default_rng(6)
    ref = rng.standard_normal((150, 4))
    with pytest.raises(StatisticsError, match="at least 100"):
        fid_infinity(ref, rng.standard_normal((60, 4)))
    with pytest.raises(StatisticsError, match="dimensions differ"):
        fid_infinity(ref, rng.standard_normal((200, 5)))
    with pytest.raises(StatisticsError, match="seed"):
        fid_infinity(ref, rng.standard_normal((200, 4)), seed=-2)
    with pytest.raises(StatisticsError, match="at least 3 sizes"):
        fid_infinity(ref, rng.standard_normal((200, 4)), points=2)
