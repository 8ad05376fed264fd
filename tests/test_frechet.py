"""Tests for the exact float64 Fréchet distance (numpy and torch)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

from fidlens.core.errors import StatisticsError
from fidlens.metrics.frechet import (
    FewSamplesWarning,
    ReferenceStatistics,
    _psd_factor,
    _trace_sqrt_from_factor,
    frechet_distance,
    frechet_distance_from_features,
    frechet_distance_torch,
    matrix_sqrt_psd,
    mean_and_covariance,
    sqrt_trace_term,
    trace_sqrt_psd,
)


def random_spd(rng: np.random.Generator, d: int, cond: float = 100.0) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    eig = np.geomspace(1.0, 1.0 / cond, d)
    return (q * eig) @ q.T


def sqrtm_reference(mu1, sigma1, mu2, sigma2) -> float:
    """Textbook FID through scipy's general matrix square root."""
    diff = mu1 - mu2
    root = scipy.linalg.sqrtm(sigma1 @ sigma2)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(root).real)


def feature_stats(rng: np.random.Generator, n: int, d: int, shift: float, spectrum):
    """Gaussian features with a non-trivial spectrum, mixed by a random rotation."""
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    x = (rng.standard_normal((n, d)) * spectrum) @ q.T + shift
    return mean_and_covariance(x)


def rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


# ----------------------------------------------------------------------------- closed forms


def test_equal_covariances_give_mean_term_only():
    rng = np.random.default_rng(1)
    d = 64
    sigma = random_spd(rng, d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    expected = float(np.sum((mu1 - mu2) ** 2))
    assert rel(frechet_distance(mu1, sigma, mu2, sigma), expected) < 1e-10


def test_scaled_identities():
    rng = np.random.default_rng(2)
    d, a, b = 50, 2.5, 0.7
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    expected = float(np.sum((mu1 - mu2) ** 2)) + d * (np.sqrt(a) - np.sqrt(b)) ** 2
    got = frechet_distance(mu1, a * np.eye(d), mu2, b * np.eye(d))
    assert rel(got, expected) < 1e-12


@pytest.mark.slow
def test_unit_mean_shift_2048_is_exactly_d():
    d = 2048
    eye = np.eye(d)
    got = frechet_distance(np.zeros(d), eye, np.ones(d), eye)
    assert rel(got, 2048.0) <= 1e-12


def test_identical_statistics_give_zero():
    rng = np.random.default_rng(3)
    sigma = random_spd(rng, 40)
    mu = rng.standard_normal(40)
    got = frechet_distance(mu, sigma, mu, sigma)
    assert 0.0 <= got < 1e-10


# ----------------------------------------------------------------------------- vs scipy sqrtm


def test_matches_sqrtm_reference_256():
    rng = np.random.default_rng(4)
    d = 256
    mu1, s1 = feature_stats(rng, 1024, d, 0.0, np.linspace(0.3, 2.0, d))
    mu2, s2 = feature_stats(rng, 1024, d, 0.1, np.linspace(1.5, 0.5, d))
    ref = sqrtm_reference(mu1, s1, mu2, s2)
    got = frechet_distance(mu1, s1, mu2, s2)
    assert rel(got, ref) <= 1e-9
    # the pieces agree as well
    root_tr = np.trace(scipy.linalg.sqrtm(s1 @ s2)).real
    assert rel(sqrt_trace_term(s1, s2), root_tr) <= 1e-10


@pytest.fixture(scope="module")
def stats_2048():
    rng = np.random.default_rng(5)
    d = 2048
    mu1, s1 = feature_stats(rng, 4096, d, 0.0, np.linspace(0.3, 2.0, d))
    mu2, s2 = feature_stats(rng, 4096, d, 0.05, np.linspace(1.8, 0.4, d))
    return mu1, s1, mu2, s2


@pytest.mark.slow
def test_matches_sqrtm_reference_2048(stats_2048):
    mu1, s1, mu2, s2 = stats_2048
    ref = sqrtm_reference(mu1, s1, mu2, s2)
    got = frechet_distance(mu1, s1, mu2, s2)
    assert np.isfinite(got) and got > 0
    assert rel(got, ref) <= 1e-9


# ----------------------------------------------------------------------------- statistics


@pytest.mark.parametrize("unbiased", [True, False])
@pytest.mark.parametrize("chunk_size", [7, 64, 8192])
def test_mean_and_covariance_matches_np_cov(unbiased, chunk_size):
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((101, 12)) * np.arange(1, 13) + 5.0).astype(np.float32)
    mu, sigma = mean_and_covariance(x, unbiased=unbiased, chunk_size=chunk_size)
    x64 = x.astype(np.float64)
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    assert mu.shape == (12,) and sigma.shape == (12, 12)
    np.testing.assert_allclose(mu, x64.mean(axis=0), rtol=1e-13, atol=1e-13)
    expected = np.cov(x64, rowvar=False, ddof=1 if unbiased else 0)
    np.testing.assert_allclose(sigma, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(sigma, sigma.T)


def test_mean_and_covariance_rejects_bad_input():
    with pytest.raises(StatisticsError, match="NaN"):
        x = np.ones((10, 3))
        x[7, 1] = np.nan
        mean_and_covariance(x, chunk_size=4)
    with pytest.raises(StatisticsError, match="2-D"):
        mean_and_covariance(np.ones(10))
    with pytest.raises(StatisticsError, match="2 samples"):
        mean_and_covariance(np.ones((1, 3)))


def test_few_samples_warns_and_is_finite():
    rng = np.random.default_rng(7)
    x1 = rng.standard_normal((20, 64))
    x2 = rng.standard_normal((30, 64)) + 0.5
    with pytest.warns(FewSamplesWarning, match=r"N=20 < d=64"):
        mu1, s1 = mean_and_covariance(x1)
    with pytest.warns(FewSamplesWarning):
        mu2, s2 = mean_and_covariance(x2)
    value = frechet_distance(mu1, s1, mu2, s2)
    assert np.isfinite(value) and value > 0
    with pytest.warns(FewSamplesWarning):
        value2 = frechet_distance_from_features(x1, x2)
    assert np.isfinite(value2)
    assert rel(value2, value) < 1e-9


def test_no_warning_with_enough_samples():
    x = np.random.default_rng(8).standard_normal((50, 10))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FewSamplesWarning)
        mean_and_covariance(x)


# ----------------------------------------------------------------------------- Gram route


@pytest.mark.parametrize("unbiased", [True, False])
def test_gram_route_equals_covariance_route(unbiased):
    rng = np.random.default_rng(9)
    d = 512
    x1 = (rng.standard_normal((300, d)) * np.linspace(0.5, 2.0, d)).astype(np.float32)
    x2 = rng.standard_normal((200, d)) + 0.2
    with pytest.warns(FewSamplesWarning):
        gram = frechet_distance_from_features(x1, x2, unbiased=unbiased)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewSamplesWarning)
        mu1, s1 = mean_and_covariance(x1, unbiased=unbiased)
        mu2, s2 = mean_and_covariance(x2, unbiased=unbiased)
    cov = frechet_distance(mu1, s1, mu2, s2)
    # noise-level eigenvalues of the singular covariances are dropped, so the two
    # routes agree far better than sqrt(eps)
    assert rel(gram, cov) <= 1e-12


def test_unbiased_flag_changes_gram_result():
    rng = np.random.default_rng(10)
    x1, x2 = rng.standard_normal((30, 40)), rng.standard_normal((20, 40))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewSamplesWarning)
        a = frechet_distance_from_features(x1, x2, unbiased=True)
        b = frechet_distance_from_features(x1, x2, unbiased=False)
    assert abs(a - b) > 1e-3


def test_features_route_with_many_samples_matches_statistics():
    rng = np.random.default_rng(11)
    x1, x2 = rng.standard_normal((200, 16)), rng.standard_normal((150, 16)) * 1.3
    got = frechet_distance_from_features(x1, x2)
    expected = frechet_distance(*mean_and_covariance(x1), *mean_and_covariance(x2))
    assert got == expected


# ----------------------------------------------------------------------------- errors


def test_nan_in_statistics_raises():
    rng = np.random.default_rng(12)
    sigma = random_spd(rng, 5)
    mu = np.zeros(5)
    bad = sigma.copy()
    bad[1, 2] = np.nan
    with pytest.raises(StatisticsError, match="sigma2"):
        frechet_distance(mu, sigma, mu, bad)
    with pytest.raises(StatisticsError, match="mu1"):
        frechet_distance(np.full(5, np.inf), sigma, mu, sigma)
    with pytest.raises(StatisticsError, match="NaN"):
        frechet_distance_from_features(np.full((4, 5), np.nan), np.ones((4, 5)))


def test_mismatched_dimensions_raise_with_dims():
    rng = np.random.default_rng(13)
    s3, s4 = random_spd(rng, 3), random_spd(rng, 4)
    with pytest.raises(StatisticsError, match=r"d=3.*d=4"):
        frechet_distance(np.zeros(3), s3, np.zeros(4), s4)
    with pytest.raises(StatisticsError, match=r"d=4"):
        frechet_distance(np.zeros(4), s3, np.zeros(3), s3)
    with pytest.raises(StatisticsError, match=r"d=6.*d=7"):
        frechet_distance_from_features(np.ones((10, 6)), np.ones((10, 7)))
    with pytest.raises(StatisticsError, match="square"):
        frechet_distance(np.zeros(3), np.ones((3, 2)), np.zeros(3), s3)
    with pytest.raises(StatisticsError, match="1-D"):
        frechet_distance(np.zeros((3, 1)), s3, np.zeros(3), s3)


# ----------------------------------------------------------------------------- helpers


def test_matrix_sqrt_psd_squares_back_and_handles_singular():
    rng = np.random.default_rng(14)
    sigma = random_spd(rng, 30)
    root = matrix_sqrt_psd(sigma)
    np.testing.assert_allclose(root @ root, sigma, atol=1e-12)
    v = rng.standard_normal((30, 5))
    singular = v @ v.T  # rank 5; eigh gives tiny negative eigenvalues
    root = matrix_sqrt_psd(singular)
    assert np.isrealobj(root) and np.all(np.isfinite(root))
    np.testing.assert_allclose(root @ root, singular, atol=1e-10)


@pytest.mark.parametrize(("cond", "tol"), [(10.0, 1e-13), (1e6, 1e-12), (1e11, 1e-9)])
def test_cholesky_and_eigh_factors_agree(cond, tol):
    # frechet_distance uses a Cholesky factor of sigma1 when it is well conditioned and
    # the eigh factor otherwise; both must give the same trace term
    rng = np.random.default_rng(21)
    s1, s2 = random_spd(rng, 40, cond), random_spd(rng, 40, 50.0)
    s1, s2 = 0.5 * (s1 + s1.T), 0.5 * (s2 + s2.T)  # as the public functions do
    low = np.linalg.cholesky(s1)
    via_chol = _trace_sqrt_from_factor(low, s2)
    via_eigh = _trace_sqrt_from_factor(_psd_factor(s1), s2)
    # a tiny eigenvalue lam makes sqrt(lam) sensitive (d sqrt = d lam / 2 sqrt(lam)), so
    # the attainable agreement loosens with the condition number
    assert rel(via_chol, via_eigh) < tol
    assert rel(sqrt_trace_term(s1, s2), via_eigh) < tol
    ref = np.trace(scipy.linalg.sqrtm(s1 @ s2)).real
    assert rel(via_eigh, ref) < 1e-8


def test_reference_statistics_matches_frechet_distance():
    rng = np.random.default_rng(15)
    d = 48
    mu1, s1 = rng.standard_normal(d), random_spd(rng, d)
    ref = ReferenceStatistics(mu1, s1)
    np.testing.assert_allclose(ref.sqrt_sigma @ ref.sqrt_sigma, s1, atol=1e-12)
    assert ref.trace == pytest.approx(np.trace(s1), rel=1e-14)
    for _ in range(3):
        mu2, s2 = rng.standard_normal(d), random_spd(rng, d, cond=1e3)
        assert rel(ref.fid(mu2, s2), frechet_distance(mu1, s1, mu2, s2)) < 1e-13
    with pytest.raises(StatisticsError, match=r"d=48.*d=5"):
        ref.fid(np.zeros(5), np.eye(5))


def test_reference_statistics_from_features():
    rng = np.random.default_rng(16)
    x = rng.standard_normal((100, 8))
    ref = ReferenceStatistics.from_features(x)
    mu, sigma = mean_and_covariance(x)
    np.testing.assert_allclose(ref.mu, mu)
    np.testing.assert_allclose(ref.sigma, sigma)


# ----------------------------------------------------------------------------- torch


def test_torch_matches_numpy():
    rng = np.random.default_rng(17)
    d = 64
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = random_spd(rng, d, 50.0), random_spd(rng, d, 500.0)
    expected = frechet_distance(mu1, s1, mu2, s2)
    got = frechet_distance_torch(
        torch.tensor(mu1, dtype=torch.float32),  # cast to float64 inside
        torch.tensor(s1),
        torch.tensor(mu2),
        torch.tensor(s2),
    )
    assert got.dtype == torch.float64 and got.ndim == 0
    mu1_32 = torch.tensor(mu1, dtype=torch.float32).double().numpy()
    expected32 = frechet_distance(mu1_32, s1, mu2, s2)
    assert rel(got.item(), expected32) <= 1e-10
    got64 = frechet_distance_torch(*(torch.tensor(a) for a in (mu1, s1, mu2, s2)))
    assert rel(got64.item(), expected) <= 1e-10


def _fd_gradients(fn, mu1, s1, mu2, s2, h=1e-6):
    """Central finite differences w.r.t. mu2 and (symmetric perturbations of) sigma2."""
    d = mu2.shape[0]
    g_mu = np.zeros(d)
    for i in range(d):
        e = np.zeros(d)
        e[i] = h
        g_mu[i] = (fn(mu1, s1, mu2 + e, s2) - fn(mu1, s1, mu2 - e, s2)) / (2 * h)
    g_sig = np.zeros((d, d))  # directional derivative along E_ij + E_ji (or E_ii)
    for i in range(d):
        for j in range(i, d):
            e = np.zeros((d, d))
            e[i, j] = e[j, i] = h
            g_sig[i, j] = g_sig[j, i] = (fn(mu1, s1, mu2, s2 + e) - fn(mu1, s1, mu2, s2 - e)) / (
                2 * h
            )
    return g_mu, g_sig


def _as_directional(grad: np.ndarray) -> np.ndarray:
    """Autograd gradient G -> <G, E_ij + E_ji> for i != j, <G, E_ii> on the diagonal."""
    out = grad + grad.T
    np.fill_diagonal(out, np.diag(grad))
    return out


def test_torch_gradient_matches_finite_differences():
    rng = np.random.default_rng(18)
    d = 7
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = random_spd(rng, d, 20.0), random_spd(rng, d, 30.0)
    t_mu2 = torch.tensor(mu2, requires_grad=True)
    t_s2 = torch.tensor(s2, requires_grad=True)
    value = frechet_distance_torch(torch.tensor(mu1), torch.tensor(s1), t_mu2, t_s2)
    value.backward()

    def fid(a, b, c, e):
        return frechet_distance_torch(*(torch.tensor(v) for v in (a, b, c, e))).item()

    g_mu, g_sig = _fd_gradients(fid, mu1, s1, mu2, s2)
    np.testing.assert_allclose(t_mu2.grad.numpy(), g_mu, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(t_mu2.grad.numpy(), 2 * (mu2 - mu1), rtol=1e-12)
    np.testing.assert_allclose(_as_directional(t_s2.grad.numpy()), g_sig, rtol=1e-5, atol=1e-7)
    # also against the numpy implementation, which shares no autograd code
    _, g_sig_np = _fd_gradients(frechet_distance, mu1, s1, mu2, s2)
    np.testing.assert_allclose(_as_directional(t_s2.grad.numpy()), g_sig_np, rtol=1e-5, atol=1e-7)


def test_torch_gradient_into_sigma1_and_mu1():
    rng = np.random.default_rng(19)
    d = 6
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = random_spd(rng, d, 10.0), random_spd(rng, d, 40.0)
    t_mu1 = torch.tensor(mu1, requires_grad=True)
    t_s1 = torch.tensor(s1, requires_grad=True)
    frechet_distance_torch(t_mu1, t_s1, torch.tensor(mu2), torch.tensor(s2)).backward()

    # FID is symmetric in its two Gaussians: differentiate in the "sigma2" slot numerically
    def swapped(a, b, c, e):
        return frechet_distance(c, e, a, b)

    g_mu, g_sig = _fd_gradients(swapped, mu2, s2, mu1, s1)
    np.testing.assert_allclose(t_mu1.grad.numpy(), g_mu, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(_as_directional(t_s1.grad.numpy()), g_sig, rtol=1e-5, atol=1e-7)


def test_trace_sqrt_psd_gradient_with_repeated_eigenvalues():
    # M = 4 I (all eigenvalues repeated): d tr(M^{1/2}) / dM = 1/2 M^{-1/2} = I / 4
    m = (4.0 * torch.eye(5, dtype=torch.float64)).requires_grad_(True)
    out = trace_sqrt_psd(m)
    out.backward()
    assert out.item() == pytest.approx(10.0, rel=1e-14)
    assert torch.allclose(m.grad, torch.eye(5, dtype=torch.float64) / 4.0, atol=1e-14)
    assert torch.isfinite(m.grad).all()


def test_torch_gradient_finite_for_singular_sigma1():
    rng = np.random.default_rng(20)
    v = rng.standard_normal((6, 2))
    s1 = torch.tensor(v @ v.T, requires_grad=True)  # rank 2
    s2 = torch.tensor(random_spd(rng, 6), requires_grad=True)
    mu = torch.zeros(6, dtype=torch.float64)
    value = frechet_distance_torch(mu, s1, mu, s2)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(s1.grad).all()
    assert torch.isfinite(s2.grad).all()
    expected = frechet_distance(mu.numpy(), v @ v.T, mu.numpy(), s2.detach().numpy())
    assert rel(value.item(), expected) < 1e-9


def test_torch_rejects_bad_input():
    s = torch.eye(3, dtype=torch.float64)
    with pytest.raises(StatisticsError, match=r"d=3.*d=4"):
        frechet_distance_torch(torch.zeros(3), s, torch.zeros(4), torch.eye(4))
    bad = s.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(StatisticsError, match="NaN"):
        frechet_distance_torch(torch.zeros(3), s, torch.zeros(3), bad)


# ----------------------------------------------------------------------------- refused statistics


def pool3_like(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Non-negative, skewed features like Inception pool3 averages (ReLU outputs, varied scales)."""
    return np.maximum(rng.standard_normal((n, d)), 0.0) * rng.gamma(2.0, 1.0, size=d)


@pytest.mark.parametrize("n, d", [(50, 64), pytest.param(200, 2048, marks=pytest.mark.slow)])
def test_few_samples_round_off_negatives_are_accepted(n, d):
    """N < d: the covariances are singular and eigh returns ~-1e-16 eigenvalues; FID is still given."""
    rng = np.random.default_rng(n)
    x1, x2 = pool3_like(rng, n, d), pool3_like(rng, n, d) + 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewSamplesWarning)
        mu1, s1 = mean_and_covariance(x1)
        mu2, s2 = mean_and_covariance(x2)
        exact = frechet_distance_from_features(x1, x2)
    assert np.linalg.eigvalsh(s1).min() < 0  # the rounding negatives this test is about
    assert rel(frechet_distance(mu1, s1, mu2, s2), exact) < 1e-9
    # Stored as float32 (as some tools write them), the negatives grow to ~1e-8 relative: still accepted.
    f32 = [a.astype(np.float32) for a in (mu1, s1, mu2, s2)]
    assert rel(frechet_distance(*f32), exact) < 1e-4


def test_materially_indefinite_covariance_is_refused_with_its_eigenvalues():
    d = 32
    eye = np.eye(d)
    for args in ((np.zeros(d), -1000 * eye, np.zeros(d), eye), (np.zeros(d), eye, np.zeros(d), -1000 * eye)):
        with pytest.raises(StatisticsError, match=r"indefinite, smallest eigenvalue -1000, largest -1000"):
            frechet_distance(*args)
    with pytest.raises(StatisticsError, match="smallest eigenvalue -1000"):
        ReferenceStatistics(np.zeros(d), -1000 * eye)
    with pytest.raises(StatisticsError, match="smallest eigenvalue -1000"):
        ReferenceStatistics(np.zeros(d), eye).fid(np.zeros(d), -1000 * eye)
    with pytest.raises(StatisticsError, match="smallest eigenvalue -1000"):
        matrix_sqrt_psd(-1000 * eye)
    # 50 eigenvalues at -50 among positive ones, in a random basis: the old code printed a number.
    rng = np.random.default_rng(7)
    d = 64
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    lam = np.concatenate([np.full(50, -50.0), np.linspace(1.0, 100.0, d - 50)])
    bad = (q * lam) @ q.T
    bad = 0.5 * (bad + bad.T)
    for args in ((np.zeros(d), bad, np.ones(d), eye_d := np.eye(d)), (np.zeros(d), eye_d, np.ones(d), bad)):
        with pytest.raises(StatisticsError, match=r"smallest eigenvalue -50(\.0+\d*)?, largest 100 \(50 eigen"):
            frechet_distance(*args)


def test_negative_total_is_reported_not_clipped():
    """Eigenvalues at -5e-6 x the largest pass the PSD tolerance, but the FID they give is -6e-4: refused."""
    sigma = np.diag(np.concatenate([[1.0], np.full(127, -5e-6)]))
    with pytest.raises(StatisticsError, match=r"FID came out negative \(-0\.00127"):
        frechet_distance(np.zeros(128), sigma, np.zeros(128), sigma)
    # Identical valid statistics: the rounding negative (~-1e-13) is still reported as 0.
    rng = np.random.default_rng(3)
    s = random_spd(rng, 64)
    assert frechet_distance(np.zeros(64), s, np.zeros(64), s) == pytest.approx(0.0, abs=1e-10)


def test_psd_proof_needs_no_eigensolve_for_singular_covariances(monkeypatch):
    """certify_psd proves a rank-deficient covariance with a pivoted Cholesky: no O(d^3) eigvalsh."""
    from fidlens.metrics.frechet import certify_psd

    rng = np.random.default_rng(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewSamplesWarning)
        _, sigma = mean_and_covariance(pool3_like(rng, 40, 256))

    def tripwire(*_a, **_k):
        raise AssertionError("eigvalsh was called")

    monkeypatch.setattr(np.linalg, "eigvalsh", tripwire)
    certify_psd(sigma, "sigma")
    certify_psd(random_spd(rng, 64), "sigma")
    with pytest.raises(AssertionError, match="eigvalsh was called"):
        certify_psd(-np.eye(8), "sigma")  # an indefinite matrix does need the spectrum, for the message


def test_structurally_bad_statistics_are_refused():
    d = 8
    mu, eye = np.zeros(d), np.eye(d)
    skew = eye.copy()
    skew[0, 1] = 0.01
    with pytest.raises(StatisticsError, match=r"sigma2 is not symmetric: max\|S - S\^T\| / max\|S\| = 0\.01"):
        frechet_distance(mu, eye, mu, skew)
    rounding = eye.copy()
    rounding[0, 1] = 1e-12
    assert frechet_distance(mu, rounding, mu + 1.0, eye) == pytest.approx(d, rel=1e-12)
    with pytest.raises(StatisticsError, match=r"mu1 is complex"):
        frechet_distance(mu + 1j, eye, mu, eye)
    with pytest.raises(StatisticsError, match=r"sigma2 is complex"):
        frechet_distance(mu, eye, mu, eye.astype(complex))
    with pytest.raises(StatisticsError, match=r"holds text"):
        frechet_distance(np.array(["1"] * d), eye, mu, eye)
    with pytest.raises(StatisticsError, match=r"d=0"):
        frechet_distance(np.zeros(0), np.zeros((0, 0)), np.zeros(0), np.zeros((0, 0)))
    with pytest.raises(StatisticsError, match=r"d=100001 .*more than the 100000"):
        frechet_distance(np.zeros(100_001), eye, mu, eye)
    with pytest.raises(StatisticsError, match=r"a\.npz has d=8, b\.npz has d=4"):
        frechet_distance(mu, eye, np.zeros(4), np.eye(4), names=("a.npz", "b.npz"))


@pytest.mark.parametrize("d", [1, 2, 255, 256, 257, 700])
def test_blocked_symmetrisation_equals_the_plain_formula_bit_for_bit_and_leaves_its_input_alone(d: int) -> None:
    from fidlens.metrics.frechet import _symmetrised

    rng = np.random.default_rng(d)
    a = rng.standard_normal((d, d))
    a[0, -1] += 1e-9  # a little asymmetry, as rounding leaves it
    before = a.copy()
    sym, skew = _symmetrised(a)
    assert np.array_equal(sym, 0.5 * (a + a.T))
    assert skew == np.abs(a - a.T).max() / np.abs(a).max()
    assert np.array_equal(a, before)


@pytest.mark.parametrize("n", [30, 300])
def test_reference_fid_of_features_is_fid_of_their_statistics_to_the_bit(n: int) -> None:
    from fidlens.metrics.frechet import ReferenceStatistics, mean_and_covariance

    rng = np.random.default_rng(n)
    ref = ReferenceStatistics(*mean_and_covariance(rng.standard_normal((200, 64))))
    x = (rng.standard_normal((n, 64)) * 1.3 + 0.2).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert ref.fid_of_features(x) == ref.fid(*mean_and_covariance(x))
