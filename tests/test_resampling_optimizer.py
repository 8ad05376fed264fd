"""Weighted-FID resampling objective: statistics, closed-form gradient, SGD, checkpoints, sampling."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from fidlens.core.errors import FidlensError, StatisticsError
from fidlens.metrics.frechet import (
    FewSamplesWarning,
    frechet_distance,
    matrix_sqrt_psd,
    mean_and_covariance,
)
from fidlens.studies.resampling.optimizer import (
    ResamplingOptimizer,
    WeightedFrechet,
    draw_indices,
    naive_loss_and_grad,
    sampling_probabilities,
)


def _rel(a, b) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def _problem(seed: int = 0, n: int = 300, d: int = 16, dtype=np.float32):
    """Candidates, real statistics (fitted to a shifted, scaled sample), random log-weights."""
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((d, d)) / math.sqrt(d) + np.eye(d)
    feats = (rng.standard_normal((n, d)) @ mix).astype(dtype)
    real = rng.standard_normal((4 * n, d)) * 1.2 + 0.3
    mu_r, sigma_r = mean_and_covariance(real)
    w = torch.from_numpy(rng.standard_normal(n))
    return torch.from_numpy(feats), mu_r, sigma_r, w


# ----------------------------------------------------------------------------- statistics


def test_integer_weights_equal_replicated_sample():
    feats, mu_r, sigma_r, _ = _problem(n=200, d=24, dtype=np.float64)
    counts = np.random.default_rng(5).integers(1, 6, size=200)
    obj = WeightedFrechet(feats, mu_r, sigma_r, chunk_size=37)
    mu_w, sigma_w, total = obj.statistics(torch.from_numpy(np.log(counts)))
    mu_rep, sigma_rep = mean_and_covariance(np.repeat(feats.numpy(), counts, axis=0))
    assert total == pytest.approx(counts.sum(), rel=1e-12)
    assert _rel(mu_w.numpy(), mu_rep) <= 1e-10
    assert _rel(sigma_w.numpy(), sigma_rep) <= 1e-10


def test_zero_weights_give_plain_mean_and_covariance():
    feats, mu_r, sigma_r, _ = _problem(n=500, d=32)
    obj = WeightedFrechet(feats, mu_r, sigma_r, chunk_size=64)
    mu_w, sigma_w, total = obj.statistics(torch.zeros(500, dtype=torch.float64))
    mu, sigma = mean_and_covariance(feats.numpy())
    assert total == pytest.approx(500.0, rel=1e-14)
    assert _rel(mu_w.numpy(), mu) <= 1e-10
    assert _rel(sigma_w.numpy(), sigma) <= 1e-10
    assert torch.equal(sigma_w, sigma_w.T)


def test_loss_equals_frechet_distance_of_weighted_statistics():
    feats, mu_r, sigma_r, w = _problem(n=400, d=20)
    obj = WeightedFrechet(feats, mu_r, sigma_r, chunk_size=128)
    mu_w, sigma_w, _ = obj.statistics(w)
    expected = frechet_distance(mu_w.numpy(), sigma_w.numpy(), mu_r, sigma_r)
    assert obj.loss(w) == pytest.approx(expected, rel=1e-10)
    value, _ = obj.loss_and_grad(w)
    assert value == pytest.approx(expected, rel=1e-10)


def test_features_are_not_copied_and_any_float_dtype_works():
    feats, mu_r, sigma_r, w = _problem(n=300, d=16)
    obj = WeightedFrechet(feats, mu_r, sigma_r, chunk_size=50)
    assert obj.features.data_ptr() == feats.data_ptr()
    obj64 = WeightedFrechet(feats.double(), mu_r, sigma_r, chunk_size=50)
    assert _rel(obj.loss_and_grad(w)[1], obj64.loss_and_grad(w)[1]) <= 1e-12
    obj16 = WeightedFrechet(feats.half(), torch.from_numpy(mu_r), torch.from_numpy(sigma_r))
    assert math.isfinite(obj16.loss(w))
    # numpy input works as well (also read-only, e.g. a memory map)
    arr = feats.numpy().copy()
    arr.setflags(write=False)
    assert WeightedFrechet(arr, mu_r, sigma_r).loss(w) == pytest.approx(obj.loss(w), rel=1e-13)


# ----------------------------------------------------------------------------- gradient


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 299, 300, 10_000])
def test_chunked_gradient_matches_naive_autograd(chunk_size):
    feats, mu_r, sigma_r, w = _problem(n=300, d=16)
    value, grad = WeightedFrechet(feats, mu_r, sigma_r, chunk_size=chunk_size).loss_and_grad(w)
    ref_value, ref_grad = naive_loss_and_grad(feats, w, mu_r, sigma_r)
    assert grad.dtype == torch.float64 and grad.shape == w.shape and grad.device == w.device
    assert value == pytest.approx(ref_value, rel=1e-12)
    assert _rel(grad, ref_grad) <= 1e-6
    # and not only in the max norm: every coordinate
    assert np.allclose(
        grad.numpy(), ref_grad.numpy(), rtol=1e-6, atol=1e-9 * ref_grad.abs().max().item()
    )


def test_chunked_gradient_matches_naive_moderate_size():
    feats, mu_r, sigma_r, w = _problem(seed=3, n=2000, d=64)
    _, grad = WeightedFrechet(feats, mu_r, sigma_r, chunk_size=333).loss_and_grad(w)
    _, ref_grad = naive_loss_and_grad(
        feats, w, mu_r, sigma_r, sqrt_sigma_real=matrix_sqrt_psd(sigma_r)
    )
    assert _rel(grad, ref_grad) <= 1e-6


def _central_difference(
    obj: WeightedFrechet, w: torch.Tensor, direction: torch.Tensor, h: float = 1e-2
) -> float:
    """Central difference with one Richardson step (error O(h^4)): h = 1e-2 suffices here."""

    def diff(step: float) -> float:
        return (obj.loss(w + step * direction) - obj.loss(w - step * direction)) / (2 * step)

    return (4 * diff(h / 2) - diff(h)) / 3


def test_gradient_matches_finite_differences():
    feats, mu_r, sigma_r, w = _problem(seed=1, n=250, d=16)
    obj = WeightedFrechet(feats, mu_r, sigma_r, chunk_size=60)
    _, grad = obj.loss_and_grad(w)
    for i in (0, 13, 101, 249, int(torch.argmax(w))):
        e = torch.zeros_like(w)
        e[i] = 1.0
        assert _central_difference(obj, w, e) == pytest.approx(grad[i].item(), rel=1e-6)
    # a random direction, and the all-ones direction: scaling every exp(w) by a constant
    # changes only the "- 1" in S - 1, so this checks that term exactly
    v = torch.from_numpy(np.random.default_rng(9).standard_normal(250))
    assert _central_difference(obj, w, v) == pytest.approx(float(grad @ v), rel=1e-6)
    ones = torch.ones_like(w)
    assert _central_difference(obj, w, ones) == pytest.approx(grad.sum().item(), rel=1e-6)
    assert abs(grad.sum().item()) > 1e-6  # really not shift invariant


def test_gradient_near_total_weight_one():
    # S just above 1 (r = 1 - 1/S small): the covariance is large, formulas stay exact
    feats, mu_r, sigma_r, _ = _problem(seed=2, n=200, d=16)
    w = torch.full((200,), math.log(1.05 / 200), dtype=torch.float64)
    obj = WeightedFrechet(feats, mu_r, sigma_r, chunk_size=33)
    _, _, total = obj.statistics(w)
    assert total == pytest.approx(1.05, rel=1e-12)
    _, grad = obj.loss_and_grad(w)
    _, ref_grad = naive_loss_and_grad(feats, w, mu_r, sigma_r)
    assert _rel(grad, ref_grad) <= 1e-6
    # S - 1 = 0.05 varies fast along the all-ones direction: a smaller step
    ones = torch.ones_like(w)
    assert _central_difference(obj, w, ones, h=1e-4) == pytest.approx(grad.sum().item(), rel=1e-6)


# ----------------------------------------------------------------------------- scale


def test_large_log_weights_do_not_overflow():
    feats, mu_r, sigma_r, _ = _problem(seed=4, n=300, d=16)
    rng = np.random.default_rng(4)
    w = torch.from_numpy(rng.uniform(0.0, 700.0, size=300))
    probs = sampling_probabilities(w)
    assert torch.isfinite(probs).all()
    assert _rel(probs, torch.softmax(w, 0)) <= 1e-13
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-12)

    obj = WeightedFrechet(feats, mu_r, sigma_r, chunk_size=64)
    value, grad = obj.loss_and_grad(w)
    assert math.isfinite(value) and torch.isfinite(grad).all()
    _, _, total = obj.statistics(w + 100.0)  # S ~ exp(800): beyond float64
    assert total == math.inf
    assert obj.log_total_weight(w + 100.0) == pytest.approx(
        torch.logsumexp(w, 0).item() + 100, rel=1e-14
    )
    # far beyond exp's range the results are those of the shifted weights (S - 1 ~ S). On a
    # 2**-39 grid w + 5000 is exact (5700 < 2**13, 52-bit mantissa); otherwise its rounding
    # alone (ulp 9e-13) would move the loss by ~1e-11 and say nothing about overflow
    w = torch.round(w * 2.0**39) / 2.0**39
    value, grad = obj.loss_and_grad(w)
    assert torch.equal(w + 5000.0 - 5000.0, w)
    value2, grad2 = obj.loss_and_grad(w + 5000.0)
    assert value2 == pytest.approx(value, rel=1e-12)
    assert _rel(grad2, grad) <= 1e-10


def test_huge_integer_scale_gives_biased_frequency_covariance():
    # w_i = 700 + log k_i: S = e^700 sum k, so S - 1 = S to rounding and the covariance is
    # the replicated sample's covariance divided by sum k (not sum k - 1)
    feats, mu_r, sigma_r, _ = _problem(seed=6, n=150, d=12, dtype=np.float64)
    counts = np.random.default_rng(6).integers(1, 5, size=150)
    obj = WeightedFrechet(feats, mu_r, sigma_r, chunk_size=40)
    mu_w, sigma_w, _ = obj.statistics(torch.from_numpy(700.0 + np.log(counts)))
    mu_rep, sigma_rep = mean_and_covariance(
        np.repeat(feats.numpy(), counts, axis=0), unbiased=False
    )
    assert _rel(mu_w.numpy(), mu_rep) <= 1e-10
    assert _rel(sigma_w.numpy(), sigma_rep) <= 1e-10


def test_negative_infinite_weight_excludes_candidate():
    feats, mu_r, sigma_r, w = _problem(seed=7, n=100, d=8, dtype=np.float64)
    w = w.clone()
    w[:10] = -math.inf
    obj = WeightedFrechet(feats, mu_r, sigma_r, chunk_size=16)
    sub = WeightedFrechet(feats[10:], mu_r, sigma_r, chunk_size=16)
    assert obj.loss(w) == pytest.approx(sub.loss(w[10:]), rel=1e-12)
    _, grad = obj.loss_and_grad(w)
    assert torch.all(grad[:10] == 0)
    assert _rel(grad[10:], sub.loss_and_grad(w[10:])[1]) <= 1e-10


# ----------------------------------------------------------------------------- errors


def test_input_errors():
    feats, mu_r, sigma_r, w = _problem(n=50, d=8)
    bad = feats.clone()
    bad[17, 3] = float("nan")
    with pytest.raises(StatisticsError, match="NaN"):
        WeightedFrechet(bad, mu_r, sigma_r, chunk_size=8)
    with pytest.raises(StatisticsError, match="dimension mismatch"):
        WeightedFrechet(feats, mu_r[:7], sigma_r[:7, :7])
    with pytest.raises(StatisticsError, match="dimension mismatch"):
        WeightedFrechet(feats, mu_r, np.eye(9))
    with pytest.raises(StatisticsError, match="at least 2"):
        WeightedFrechet(feats[:1], mu_r, sigma_r)
    with pytest.raises(StatisticsError, match="floating"):
        WeightedFrechet(feats.to(torch.int32), mu_r, sigma_r)
    with pytest.raises(StatisticsError, match="chunk_size"):
        WeightedFrechet(feats, mu_r, sigma_r, chunk_size=0)
    with pytest.raises(StatisticsError, match="NaN"):
        WeightedFrechet(feats, mu_r * np.nan, sigma_r)

    obj = WeightedFrechet(feats, mu_r, sigma_r)
    with pytest.raises(StatisticsError, match="49"):
        obj.loss(w[:49])
    w_nan = w.clone()
    w_nan[3] = float("nan")
    with pytest.raises(StatisticsError, match="NaN"):
        obj.loss_and_grad(w_nan)
    # S = 50 * exp(-5) < 1: the frequency-weighted covariance is undefined
    with pytest.raises(StatisticsError, match="exceed 1"):
        obj.statistics(torch.full((50,), -5.0, dtype=torch.float64))
    assert issubclass(StatisticsError, FidlensError)


# ----------------------------------------------------------------------------- optimiser


def _outlier_pool(seed: int = 1, inliers: int = 400, outliers: int = 40, d: int = 16):
    rng = np.random.default_rng(seed)
    good = rng.standard_normal((inliers, d))
    bad = rng.standard_normal((outliers, d)) * 0.5 + 3.0
    return torch.from_numpy(np.vstack([good, bad]).astype(np.float32)), np.zeros(d), np.eye(d)


def test_sgd_decreases_loss_and_downweights_outliers():
    feats, mu_r, sigma_r = _outlier_pool()
    opt = ResamplingOptimizer.from_features(feats, mu_r, sigma_r, lr=10.0, chunk_size=100)
    assert opt.iteration == 0 and torch.all(opt.w == 0) and opt.w.dtype == torch.float64
    outlier_mass_before = opt.probabilities()[400:].sum().item()
    losses = [opt.step() for _ in range(30)]
    assert opt.iteration == 30
    assert all(b < a for a, b in itertools.pairwise(losses))
    assert opt.loss() < 0.05 * losses[0]
    outlier_mass = opt.probabilities()[400:].sum().item()
    assert outlier_mass < 0.1 * outlier_mass_before
    assert opt.w[400:].max() < opt.w[:400].mean()


def test_step_is_plain_sgd():
    feats, mu_r, sigma_r, _ = _problem(n=120, d=8)
    obj = WeightedFrechet(feats, mu_r, sigma_r, chunk_size=50)
    opt = ResamplingOptimizer(obj, lr=3.5)
    opt.step()
    w1 = opt.w.clone()
    value, grad = obj.loss_and_grad(w1)
    assert opt.step() == value
    assert torch.allclose(opt.w, w1 - 3.5 * grad, rtol=1e-15, atol=1e-16)


def test_checkpoint_resume_is_bit_identical(tmp_path):
    feats, mu_r, sigma_r = _outlier_pool(seed=2, inliers=300, outliers=30)
    obj = WeightedFrechet(feats, mu_r, sigma_r, chunk_size=97)

    straight = ResamplingOptimizer(obj, lr=10.0)
    straight_losses = [straight.step() for _ in range(10)]

    first = ResamplingOptimizer(obj, lr=10.0)
    losses = [first.step() for _ in range(5)]
    path = tmp_path / "state.pt"
    torch.save(first.state_dict(), path)
    del first

    resumed = ResamplingOptimizer(WeightedFrechet(feats, mu_r, sigma_r, chunk_size=97), lr=1.0)
    resumed.load_state_dict(torch.load(path, weights_only=True))
    assert resumed.iteration == 5 and resumed.lr == 10.0
    losses += [resumed.step() for _ in range(5)]
    assert resumed.iteration == 10
    assert torch.equal(resumed.w, straight.w)
    assert losses == straight_losses


def test_state_dict_is_a_copy_and_load_validates():
    feats, mu_r, sigma_r, _ = _problem(n=60, d=8)
    opt = ResamplingOptimizer.from_features(feats, mu_r, sigma_r)
    state = opt.state_dict()
    assert set(state) == {"w", "iteration", "lr"}
    opt.step()
    assert torch.all(state["w"] == 0)  # not aliased to the live weights
    with pytest.raises(StatisticsError, match="candidates"):
        opt.load_state_dict({"w": torch.zeros(59, dtype=torch.float64), "iteration": 0, "lr": 1.0})
    with pytest.raises(StatisticsError, match="lacks"):
        opt.load_state_dict({"w": torch.zeros(60, dtype=torch.float64)})
    with pytest.raises(StatisticsError, match="iteration"):
        opt.load_state_dict({"w": torch.zeros(60, dtype=torch.float64), "iteration": -1, "lr": 1.0})
    with pytest.raises(StatisticsError, match="lr"):
        ResamplingOptimizer(opt.objective, lr=0.0)


# ----------------------------------------------------------------------------- sampling


def test_draw_indices_reproducible_and_follows_probabilities():
    n = 1000
    w = torch.zeros(n, dtype=torch.float64)
    heavy = torch.tensor([3, 500, 998])
    w[heavy] = torch.log(torch.tensor([2000.0, 3000.0, 5000.0], dtype=torch.float64))
    p = sampling_probabilities(w).numpy()
    assert p.sum() == pytest.approx(1.0, abs=1e-14)

    a = draw_indices(w, 50_000, seed=123)
    b = draw_indices(w.numpy(), 50_000, seed=123)
    c = draw_indices(w, 50_000, seed=124)
    assert a.shape == (50_000,) and a.dtype.kind == "i"
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() < n

    freq = np.bincount(a, minlength=n) / a.size
    for i in heavy.tolist():  # binomial standard error here is <= 0.0022
        assert abs(freq[i] - p[i]) < 0.01
    assert abs(freq[heavy].sum() - p[heavy].sum()) < 0.01
    assert draw_indices(w, 0, seed=1).shape == (0,)


def test_draw_indices_with_concentrated_and_huge_weights():
    w = torch.full((100,), -1e4, dtype=torch.float64)
    w[[7, 42]] = 1e4  # exp overflows; only these two carry mass
    idx = draw_indices(w, 1000, seed=0)
    assert set(np.unique(idx).tolist()) == {7, 42}
    w2 = torch.full((10,), -math.inf, dtype=torch.float64)
    w2[4] = 0.0
    assert np.all(draw_indices(w2, 20, seed=0) == 4)


def test_draw_indices_errors():
    w = torch.zeros(10, dtype=torch.float64)
    with pytest.raises(StatisticsError):
        draw_indices(w, -1, seed=0)
    with pytest.raises(StatisticsError):
        draw_indices(w, 2.5, seed=0)
    with pytest.raises(StatisticsError):
        draw_indices(w, 5, seed=None)
    with pytest.raises(StatisticsError):
        draw_indices(w, 5, seed=-3)
    with pytest.raises(StatisticsError, match="NaN"):
        draw_indices(torch.tensor([0.0, float("nan")], dtype=torch.float64), 5, seed=0)
    with pytest.raises(StatisticsError, match="1-D"):
        draw_indices(torch.zeros(2, 3), 5, seed=0)
    with pytest.raises(StatisticsError, match="empty"):
        draw_indices(torch.zeros(0), 5, seed=0)
    with pytest.raises(StatisticsError, match="-inf"):
        draw_indices(torch.full((3,), -math.inf), 5, seed=0)


# ----------------------------------------------------------------------------- few reals (k < d)


def _few_reals(seed: int = 5, n: int = 120, d: int = 40, n_real: int = 15):
    """Fewer reals than dimensions, as in the demo (200 reals, d = 2048): Sigma_r has rank n_real - 1."""
    rng = np.random.default_rng(seed)
    feats = torch.from_numpy(rng.standard_normal((n, d)))
    with pytest.warns(FewSamplesWarning):
        mu_r, sigma_r = mean_and_covariance(rng.standard_normal((n_real, d)) * 1.3 + 0.2)
    return feats, mu_r, sigma_r, torch.from_numpy(rng.standard_normal(n) * 0.5)


def test_rank_deficient_reals_use_a_k_column_factor_and_match_the_d_by_d_route():
    feats, mu_r, sigma_r, w = _few_reals()
    obj = WeightedFrechet(feats, mu_r, sigma_r, chunk_size=17)
    assert tuple(obj.real_factor.shape) == (40, 14)  # k = n_real - 1 columns, not d
    value, grad = obj.loss_and_grad(w)
    ref_value, ref_grad = naive_loss_and_grad(feats, w, mu_r, sigma_r)
    assert value == pytest.approx(ref_value, rel=1e-10)
    assert obj.loss(w) == pytest.approx(value, rel=1e-13)
    assert np.allclose(grad.numpy(), ref_grad.numpy(), rtol=1e-6, atol=1e-9 * ref_grad.abs().max().item())
    v = torch.from_numpy(np.random.default_rng(2).standard_normal(len(w)))
    assert _central_difference(obj, w, v) == pytest.approx(float(grad @ v), rel=1e-6)


def test_a_given_real_factor_is_used_and_checked():
    feats, mu_r, sigma_r, w = _few_reals()
    own = WeightedFrechet(feats, mu_r, sigma_r)
    given = WeightedFrechet(feats, mu_r, sigma_r, real_factor=own.real_factor.numpy())
    assert given.loss_and_grad(w)[0] == own.loss_and_grad(w)[0]
    with pytest.raises(StatisticsError, match="real_factor"):
        WeightedFrechet(feats, mu_r, sigma_r, real_factor=np.zeros((39, 14)))


def test_identical_reals_leave_only_the_mean_and_trace_terms():
    feats, _, _, w = _few_reals()
    mu_r, sigma_r = np.full(40, 0.5), np.zeros((40, 40))
    obj = WeightedFrechet(feats, mu_r, sigma_r)
    value, grad = obj.loss_and_grad(w)
    mu_w, sigma_w, _ = obj.statistics(w)
    expected = float(((mu_w.numpy() - mu_r) ** 2).sum() + np.trace(sigma_w.numpy()))
    assert obj.real_factor.shape[1] == 0 and value == pytest.approx(expected, rel=1e-12)
    assert torch.isfinite(grad).all()
