"""Weighted-FID objective for resampling a candidate pool, with a bounded-memory gradient.

Method (Kynkäänniemi et al., ICLR 2023, Sec. 3): every candidate feature vector f_i
(N of them, dimension d) gets a log-weight w_i. With e_i = exp(w_i) and S = sum e_i,

    mu_w    = sum e_i f_i / S
    Sigma_w = sum e_i d_i d_i^T / (S - 1),        d_i = f_i - mu_w   (frequency weights)
    L(w)    = ||mu_w - mu_r||^2 + tr Sigma_w + tr Sigma_r - 2 tr((S_r Sigma_w S_r)^{1/2})

with S_r = Sigma_r^{1/2}, and w is trained by full-batch SGD. With all w = 0 the
statistics are the ordinary mean and unbiased covariance; with e_i = k_i integer they
are those of the sample in which f_i is repeated k_i times.

Gradient (closed form, evaluated chunk by chunk)
------------------------------------------------
d mu_w / d w_i = e_i d_i / S. With C = sum_j e_j d_j d_j^T, differentiating gives
dC/dw_i = e_i d_i d_i^T: the terms from d mu_w are multiplied by sum_j e_j d_j = 0.
Hence d Sigma_w / d w_i = e_i (d_i d_i^T - Sigma_w) / (S - 1), and with g_mu = dL/d mu_w
and the symmetric G = dL/d Sigma_w (from autograd on the d x d statistics only)

    dL/dw_i = e_i [ d_i^T g_mu / S + (d_i^T G d_i - tr(G Sigma_w)) / (S - 1) ].

Scale handling
--------------
exp(w) overflows for w > 709, so nothing uses e_i or S directly. With the max-shifted
p = softmax(w) and log S = logsumexp(w) (both in float64), dividing numerator and
denominator of each formula by S gives

    mu_w    = sum p_i f_i
    Sigma_w = sum p_i d_i d_i^T / r,              r = (S - 1) / S = -expm1(-log S)
    dL/dw_i = p_i [ d_i^T g_mu + (d_i^T G d_i - tr(G Sigma_w)) / r ].

These are exact rewritings, so the "-1" of S - 1 is kept: r comes from log S through
``expm1``, which is accurate both for huge S (r -> 1) and for S just above 1 (r -> 0, no
cancellation). Only S itself may exceed the float64 range, and no formula needs it.
S <= 1 (log S <= 0) would make the covariance negative and raises ``StatisticsError``.

Memory: the feature array stays in its own dtype and device; each pass casts one chunk
of rows to float64 (``chunk_size`` x d), and the rest is O(N) + O(d^2). One loss and
gradient costs three passes: weighted mean, weighted scatter, gradient.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import StatisticsError
from ..frechet import matrix_sqrt_psd, trace_sqrt_psd

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_LR",
    "ResamplingOptimizer",
    "WeightedFrechet",
    "draw_indices",
    "naive_loss_and_grad",
    "sampling_probabilities",
]

DEFAULT_CHUNK_SIZE = 8192
DEFAULT_LR = 10.0

# math.exp overflows above log(float64 max) ~ 709.78
_LOG_FLOAT64_MAX = math.log(np.finfo(np.float64).max)


# ----------------------------------------------------------------------------- validation


def _as_tensor(x: Any, name: str) -> torch.Tensor:
    """A torch view of a tensor or array (no copy when possible)."""
    if isinstance(x, torch.Tensor):
        return x
    try:
        arr = np.asarray(x)
        with warnings.catch_warnings():
            # read-only arrays (np.load(mmap_mode="r")) are only ever read here
            warnings.filterwarnings("ignore", message=".*not writable.*")
            return torch.as_tensor(arr)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise StatisticsError(f"{name} must be a real numeric array: {exc}") from exc


def _to_numpy64(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        if x.is_complex() or x.dtype == torch.bool:
            raise StatisticsError(f"{name} must be real, got dtype {x.dtype}")
        return x.detach().to(device="cpu", dtype=torch.float64).numpy()
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise StatisticsError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def _check_features(features: Any, chunk_size: int) -> torch.Tensor:
    """2-D floating (N >= 2, d >= 1), finite; the check runs chunk by chunk (no full copy)."""
    f = _as_tensor(features, "features").detach()  # a view: no graph, no copy
    if not f.is_floating_point():
        raise StatisticsError(f"features must have a floating dtype, got {f.dtype}")
    if f.ndim != 2:
        raise StatisticsError(f"features must be 2-D (N, d), got shape {tuple(f.shape)}")
    n, d = f.shape
    if n < 2:
        raise StatisticsError(f"resampling needs at least 2 candidates, got {n}")
    if d < 1:
        raise StatisticsError(f"features have no dimensions (shape {tuple(f.shape)})")
    for start in range(0, n, chunk_size):
        if not bool(torch.isfinite(f[start : start + chunk_size]).all()):
            stop = min(start + chunk_size, n) - 1
            raise StatisticsError(f"features contain NaN or infinite values (rows {start}..{stop})")
    return f


def _check_chunk_size(chunk_size: Any) -> int:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)):
        raise StatisticsError(f"chunk_size must be an integer, got {chunk_size!r}")
    if chunk_size < 1:
        raise StatisticsError(f"chunk_size must be positive, got {chunk_size}")
    return int(chunk_size)


def _real_statistics(mu_real: Any, sigma_real: Any, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 (mu_r, symmetrised Sigma_r) matching feature dimension d."""
    mu = _to_numpy64(mu_real, "mu_real")
    sigma = _to_numpy64(sigma_real, "sigma_real")
    if mu.ndim != 1:
        raise StatisticsError(f"mu_real must be 1-D (d,), got shape {mu.shape}")
    if sigma.ndim != 2 or sigma.shape[0] != sigma.shape[1]:
        raise StatisticsError(f"sigma_real must be square (d, d), got shape {sigma.shape}")
    if mu.shape[0] != d or sigma.shape[0] != d:
        raise StatisticsError(
            f"dimension mismatch: features have d={d}, real statistics have "
            f"mu {mu.shape} and sigma {sigma.shape}"
        )
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise StatisticsError("real statistics contain NaN or infinite values")
    return mu, 0.5 * (sigma + sigma.T)


def _check_log_weights(w: Any, n: int | None = None) -> torch.Tensor:
    """A detached float64 1-D tensor; NaN and +inf are refused, -inf (weight 0) is allowed."""
    t = _as_tensor(w, "w")
    if not (t.is_floating_point() or t.dtype in (torch.int16, torch.int32, torch.int64)):
        raise StatisticsError(f"w must be real, got dtype {t.dtype}")
    if t.ndim != 1:
        raise StatisticsError(f"w must be 1-D, got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise StatisticsError("w is empty")
    if n is not None and t.numel() != n:
        raise StatisticsError(f"w has {t.numel()} entries but there are {n} candidates")
    t = t.detach().to(torch.float64)
    if bool(torch.isnan(t).any()) or bool(torch.isposinf(t).any()):
        raise StatisticsError("w contains NaN or +inf")
    if bool(torch.isneginf(t).all()):
        raise StatisticsError("all weights are zero (every w is -inf)")
    return t


# ----------------------------------------------------------------------------- objective


@dataclass
class _Weighted:
    p: torch.Tensor  # softmax(w), float64 (N,)
    log_total: float  # log S = logsumexp(w)
    ratio: float  # r = (S - 1) / S
    mu: torch.Tensor  # (d,)
    sigma: torch.Tensor  # (d, d), symmetric


class WeightedFrechet:
    """FID between the exp(w)-weighted candidate pool and fixed real statistics.

    ``features`` (N, d) is kept as given (any floating dtype, any device, never copied
    whole); every pass casts ``chunk_size`` rows at a time to float64. The real
    statistics are converted to float64 on the features' device, and Sigma_r^{1/2} is
    computed once. See the module docstring for the formulas and the scale handling.
    """

    def __init__(
        self,
        features: Any,
        mu_real: Any,
        sigma_real: Any,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.chunk_size = _check_chunk_size(chunk_size)
        self.features = _check_features(features, self.chunk_size)
        self.num_candidates, self.dim = (int(s) for s in self.features.shape)
        self.device = self.features.device
        mu_r, sigma_r = _real_statistics(mu_real, sigma_real, self.dim)
        as_dev = lambda a: torch.as_tensor(a, dtype=torch.float64).to(self.device)
        self.mu_real = as_dev(mu_r)
        self.sqrt_sigma_real = as_dev(matrix_sqrt_psd(sigma_r))
        self.trace_sigma_real = float(np.trace(sigma_r))

    def __repr__(self) -> str:
        return (
            f"WeightedFrechet(N={self.num_candidates}, d={self.dim}, "
            f"dtype={self.features.dtype}, device={self.device}, chunk_size={self.chunk_size})"
        )

    # -- chunked passes ---------------------------------------------------------------------

    def _chunks(self) -> range:
        return range(0, self.num_candidates, self.chunk_size)

    def _weighted(self, w: Any) -> _Weighted:
        w64 = _check_log_weights(w, self.num_candidates).to(self.device)
        log_total = float(torch.logsumexp(w64, 0))
        if not log_total > 0.0:
            raise StatisticsError(
                f"total weight S = sum exp(w) = exp({log_total:.6g}) must exceed 1 "
                "for the frequency-weighted covariance (divides by S - 1)"
            )
        ratio = -math.expm1(-log_total)
        p = torch.softmax(w64, 0)

        mu = torch.zeros(self.dim, dtype=torch.float64, device=self.device)
        for start in self._chunks():
            stop = start + self.chunk_size
            block = self.features[start:stop].to(torch.float64)
            mu += p[start:stop] @ block
        del block

        # centred two-pass scatter: sum p_i d_i d_i^T as (sqrt(p) d)^T (sqrt(p) d)
        scatter = torch.zeros(self.dim, self.dim, dtype=torch.float64, device=self.device)
        for start in self._chunks():
            stop = start + self.chunk_size
            delta = self.features[start:stop] - mu  # promotes to a fresh float64 chunk
            delta.mul_(p[start:stop].sqrt().unsqueeze(1))
            scatter.addmm_(delta.T, delta)
        del delta
        sigma = scatter.div_(ratio)
        sigma = 0.5 * (sigma + sigma.T)
        return _Weighted(p=p, log_total=log_total, ratio=ratio, mu=mu, sigma=sigma)

    def _frechet(self, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        diff = mu - self.mu_real
        m = self.sqrt_sigma_real @ sigma @ self.sqrt_sigma_real
        m = 0.5 * (m + m.T)
        return diff @ diff + torch.trace(sigma) + self.trace_sigma_real - 2.0 * trace_sqrt_psd(m)

    # -- public API --------------------------------------------------------------------------

    def statistics(self, w: Any) -> tuple[torch.Tensor, torch.Tensor, float]:
        """(mu_w (d,), Sigma_w (d, d), S) in float64 on the features' device; not differentiable.

        S = sum exp(w) as a Python float: ``inf`` when log S > 709.78 (outside float64);
        the statistics themselves only use log S and are exact for any S > 1.
        """
        st = self._weighted(w)
        total = math.exp(st.log_total) if st.log_total < _LOG_FLOAT64_MAX else math.inf
        return st.mu, st.sigma, total

    def log_total_weight(self, w: Any) -> float:
        """log S = logsumexp(w), finite even where S overflows."""
        return float(torch.logsumexp(_check_log_weights(w, self.num_candidates), 0))

    def loss(self, w: Any) -> float:
        """L(w) = FID(mu_w, Sigma_w; mu_r, Sigma_r) in float64 (not clipped at 0)."""
        st = self._weighted(w)
        with torch.no_grad():
            return float(self._frechet(st.mu, st.sigma))

    def loss_and_grad(self, w: Any) -> tuple[float, torch.Tensor]:
        """(L(w), dL/dw): the gradient in float64 on w's device, by the closed form per chunk."""
        out_device = w.device if isinstance(w, torch.Tensor) else torch.device("cpu")
        st = self._weighted(w)

        mu = st.mu.detach().requires_grad_(True)
        sigma = st.sigma.detach().requires_grad_(True)
        with torch.enable_grad():
            value = self._frechet(mu, sigma)
            g_mu, g_sigma = torch.autograd.grad(value, (mu, sigma))
        g_sigma = 0.5 * (g_sigma + g_sigma.T)
        tr_g_sigma = torch.sum(g_sigma * st.sigma)

        grad = torch.empty(self.num_candidates, dtype=torch.float64, device=self.device)
        for start in self._chunks():
            stop = start + self.chunk_size
            delta = self.features[start:stop] - st.mu  # fresh float64 chunk
            linear = delta @ g_mu
            quad = (delta @ g_sigma).mul_(delta).sum(dim=1)
            grad[start:stop] = st.p[start:stop] * (linear + (quad - tr_g_sigma) / st.ratio)
        return float(value.detach()), grad.to(out_device)


# ----------------------------------------------------------------------------- optimiser


def _check_lr(lr: Any) -> float:
    try:
        value = float(lr)
    except (TypeError, ValueError) as exc:
        raise StatisticsError(f"lr must be a number, got {lr!r}") from exc
    if not (math.isfinite(value) and value > 0.0):
        raise StatisticsError(f"lr must be positive and finite, got {lr!r}")
    return value


class ResamplingOptimizer:
    """Plain full-batch SGD on the log-weights: w <- w - lr * dL/dw.

    ``w`` (float64, on the objective's device) starts at 0 (uniform weights). The whole
    state is (w, iteration, lr), so ``state_dict`` / ``load_state_dict`` resume a run
    bit-identically on the same device.
    """

    def __init__(self, objective: WeightedFrechet, *, lr: float = DEFAULT_LR) -> None:
        self.objective = objective
        self.lr = _check_lr(lr)
        self.w = torch.zeros(objective.num_candidates, dtype=torch.float64, device=objective.device)
        self.iteration = 0

    @classmethod
    def from_features(
        cls,
        features: Any,
        mu_real: Any,
        sigma_real: Any,
        *,
        lr: float = DEFAULT_LR,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> ResamplingOptimizer:
        return cls(WeightedFrechet(features, mu_real, sigma_real, chunk_size=chunk_size), lr=lr)

    def step(self) -> float:
        """One SGD step; returns the loss at the weights *before* the update."""
        value, grad = self.objective.loss_and_grad(self.w)
        self.w.sub_(grad, alpha=self.lr)
        self.iteration += 1
        return value

    def loss(self) -> float:
        """The loss at the current weights."""
        return self.objective.loss(self.w)

    def probabilities(self) -> torch.Tensor:
        """softmax(w): the sampling probability of every candidate."""
        return sampling_probabilities(self.w)

    def state_dict(self) -> dict[str, Any]:
        return {"w": self.w.detach().cpu().clone(), "iteration": self.iteration, "lr": self.lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = {"w", "iteration", "lr"} - set(state)
        if missing:
            raise StatisticsError(f"optimizer state lacks {sorted(missing)}")
        w = state["w"]
        if not isinstance(w, torch.Tensor) or w.dtype != torch.float64:
            raise StatisticsError("optimizer state 'w' must be a float64 tensor")
        if tuple(w.shape) != (self.objective.num_candidates,):
            raise StatisticsError(
                f"optimizer state has {tuple(w.shape)} weights, the pool has "
                f"{self.objective.num_candidates} candidates"
            )
        if bool(torch.isnan(w).any()):
            raise StatisticsError("optimizer state 'w' contains NaN")
        iteration = state["iteration"]
        if (
            isinstance(iteration, bool)
            or not isinstance(iteration, (int, np.integer))
            or iteration < 0
        ):
            raise StatisticsError(
                f"optimizer state 'iteration' must be a non-negative int, got {iteration!r}"
            )
        self.lr = _check_lr(state["lr"])
        self.w = w.detach().to(self.objective.device).clone()
        self.iteration = int(iteration)


# ----------------------------------------------------------------------------- sampling


def sampling_probabilities(w: Any) -> torch.Tensor:
    """softmax(w) in float64 (max-shifted, so any finite w is safe), on w's device."""
    return torch.softmax(_check_log_weights(w), 0)


def draw_indices(w: Any, m: int, seed: Any) -> np.ndarray:
    """m candidate indices drawn with replacement with p = softmax(w), reproducibly.

    ``np.random.default_rng(seed).choice(N, size=m, replace=True, p=p)`` on the float64
    probabilities divided by their sum (numpy's inverse-CDF sampling). ``seed`` is
    anything ``default_rng`` accepts except None.
    """
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 0:
        raise StatisticsError(f"m must be a non-negative integer, got {m!r}")
    if seed is None:
        raise StatisticsError("draw_indices needs a seed (None would not be reproducible)")
    p = sampling_probabilities(w).cpu().numpy()
    p = p / p.sum()
    try:
        rng = np.random.default_rng(seed)
    except (TypeError, ValueError) as exc:
        raise StatisticsError(f"invalid seed {seed!r}: {exc}") from exc
    return rng.choice(p.size, size=int(m), replace=True, p=p)


# ----------------------------------------------------------------------------- reference


def naive_loss_and_grad(
    features: Any,
    w: Any,
    mu_real: Any,
    sigma_real: Any,
    *,
    sqrt_sigma_real: Any = None,
) -> tuple[float, torch.Tensor]:
    """Reference: full-batch float64 autograd over the whole pool (what the paper's code does).

    Converts all features to float64 at once and keeps the N x d intermediates for the
    backward pass (3 N d float64 arrays; about 6.5 N d at the backward's peak), and uses
    exp(w) without a shift, so it overflows for w > 709. Only for tests and benchmarks.
    ``sqrt_sigma_real`` (Sigma_r^{1/2}) may be passed precomputed, so that timing
    comparisons do not charge the naive path a d x d ``eigh`` per call.
    """
    f = _as_tensor(features, "features")
    if not f.is_floating_point() or f.ndim != 2 or f.shape[0] < 2:
        raise StatisticsError(f"features must be floating (N >= 2, d), got {tuple(f.shape)}")
    mu_r, sigma_r = _real_statistics(mu_real, sigma_real, int(f.shape[1]))
    device = f.device
    f64 = f.to(torch.float64)
    w64 = _check_log_weights(w, int(f.shape[0])).to(device).clone().requires_grad_(True)
    mu_real_t = torch.as_tensor(mu_r).to(device)
    if sqrt_sigma_real is None:
        sqrt_sigma_real = matrix_sqrt_psd(sigma_r)
    sqrt_r = torch.as_tensor(_to_numpy64(sqrt_sigma_real, "sqrt_sigma_real")).to(device)
    if sqrt_r.shape != (f.shape[1], f.shape[1]):
        raise StatisticsError(f"sqrt_sigma_real has shape {tuple(sqrt_r.shape)}, expected d x d")

    with torch.enable_grad():
        e = torch.exp(w64)
        total = e.sum()
        mu = (e[:, None] * f64).sum(dim=0) / total
        delta = f64 - mu
        sigma = (delta * e[:, None]).T @ delta / (total - 1.0)
        m = sqrt_r @ sigma @ sqrt_r
        m = 0.5 * (m + m.T)
        diff = mu - mu_real_t
        value = (
            diff @ diff + torch.trace(sigma) + float(np.trace(sigma_r)) - 2.0 * trace_sqrt_psd(m)
        )
        (grad,) = torch.autograd.grad(value, (w64,))
    out_device = w.device if isinstance(w, torch.Tensor) else torch.device("cpu")
    return float(value.detach()), grad.to(out_device)
